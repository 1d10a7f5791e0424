package probes

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/google/pprof/profile"

	"github.com/leakcheck/leakcheck/probes/bounded"
)

const (
	// MaxBodySize bounds every response body SampleGo reads, and the size of
	// a profile once decompressed, so that a misbehaving endpoint cannot make
	// the sampler use unbounded memory.
	MaxBodySize = 64 << 20

	// DefaultTrackerPath is where leakcheck's tracker handler serves its
	// JSON snapshot, relative to the daemon's debug server.
	DefaultTrackerPath = "/debug/leakcheck/snapshot.json"

	// DefaultTimeout bounds a SampleGo call made with a nil client.
	DefaultTimeout = 10 * time.Second
)

var defaultClient = &http.Client{Timeout: DefaultTimeout}

// A GoSample is what SampleGo read from a Go daemon's debug endpoints at one
// time.
type GoSample struct {
	// Time is when the sample was started.
	Time time.Time
	// Goroutines is the number of goroutines in the goroutine profile.
	Goroutines int
	// HeapInuse is the sum of inuse_space in the heap profile, in bytes: the
	// runtime's estimate, from its sampled allocations, of the memory held
	// by live objects as of the last garbage collection.
	HeapInuse int64
	// GoroutineProfile is the goroutine profile as served (debug=0),
	// decoded once here so that a caller turns it into a dump
	// (report.GoroutinesFromProfile) without decoding it again.
	GoroutineProfile *profile.Profile
	// HeapProfile is the heap profile as served, decoded; nil when it could
	// not be read (see Gaps).
	HeapProfile *profile.Profile
	// Tracker is the JSON snapshot served by leakcheck's tracker handler, or
	// nil when the daemon does not serve one.
	Tracker []byte
	// Gaps lists the parts that could not be read: "heap" or "tracker".
	Gaps []Gap
}

// Metrics returns the sample as named series ("goroutines",
// "heap_inuse_bytes"); a part listed in Gaps is left out.
func (s *GoSample) Metrics() []Metric {
	m := []Metric{{Name: "goroutines", Value: float64(s.Goroutines), Unit: "goroutines"}}
	if !missing(s.Gaps, "heap") {
		m = append(m, Metric{Name: "heap_inuse_bytes", Value: float64(s.HeapInuse), Unit: "bytes"})
	}
	return m
}

// SampleGo reads the debug endpoints that a Go daemon serves with
// net/http/pprof under base (for example "http://127.0.0.1:6060"): the
// goroutine profile at /debug/pprof/goroutine?debug=0, the heap profile at
// /debug/pprof/heap?debug=0, and leakcheck's tracker snapshot at trackerPath
// (DefaultTrackerPath when empty).
//
// SampleGo fails, with an error naming the URL, when the goroutine profile
// cannot be read or parsed: the endpoint is down, slow past ctx's deadline or
// the client's timeout, or broken. The heap profile and the tracker are best
// effort: their failures are recorded in the sample's Gaps. A tracker path
// that answers 404 Not Found is not a failure; it means the daemon does not
// embed the tracker, and Tracker is nil. No body larger than MaxBodySize is
// read. A nil client means one with DefaultTimeout.
func SampleGo(ctx context.Context, client *http.Client, base, trackerPath string) (*GoSample, error) {
	if client == nil {
		client = defaultClient
	}
	if trackerPath == "" {
		trackerPath = DefaultTrackerPath
	} else if !strings.HasPrefix(trackerPath, "/") {
		trackerPath = "/" + trackerPath
	}
	base = strings.TrimRight(base, "/")
	s := &GoSample{Time: time.Now()}

	u := base + "/debug/pprof/goroutine?debug=0"
	body, _, err := fetch(ctx, client, u, false)
	if err != nil {
		return nil, err
	}
	gp, n, err := sumProfile(body, "goroutine")
	if err != nil {
		return nil, fmt.Errorf("probes: goroutine profile from %s: %w", u, err)
	}
	s.Goroutines, s.GoroutineProfile = int(n), gp

	u = base + "/debug/pprof/heap?debug=0"
	body, _, err = fetch(ctx, client, u, false)
	if err == nil {
		if s.HeapProfile, s.HeapInuse, err = sumProfile(body, "inuse_space"); err != nil {
			err = fmt.Errorf("probes: heap profile from %s: %w", u, err)
		}
	}
	if err != nil {
		if ctx.Err() != nil {
			return nil, err
		}
		s.Gaps = append(s.Gaps, Gap{Part: "heap", Err: err})
	}

	u = base + trackerPath
	body, found, err := fetch(ctx, client, u, true)
	if err == nil && found && !json.Valid(body) {
		err = fmt.Errorf("probes: tracker snapshot from %s is not JSON", u)
	}
	switch {
	case err != nil && ctx.Err() != nil:
		return nil, err
	case err != nil:
		s.Gaps = append(s.Gaps, Gap{Part: "tracker", Err: err})
	case found:
		s.Tracker = body
	}
	return s, nil
}

// SampleLeaks reads the goroutineleak profile under base
// (/debug/pprof/goroutineleak?debug=0), which marks the goroutines blocked on
// something no running goroutine can reach: leaks the runtime proves. Go
// 1.27 serves it; Go 1.26 does when built with
// GOEXPERIMENT=goroutineleakprofile. found is false when the daemon does not
// serve it (404 Not Found). Taking it costs the daemon about one garbage
// collection, so callers take it rarely.
func SampleLeaks(ctx context.Context, client *http.Client, base string) (p *profile.Profile, found bool, err error) {
	if client == nil {
		client = defaultClient
	}
	u := strings.TrimRight(base, "/") + "/debug/pprof/goroutineleak?debug=0"
	body, found, err := fetch(ctx, client, u, true)
	if err != nil || !found {
		return nil, found, err
	}
	if p, err = bounded.ParseProfile(body, MaxBodySize); err != nil {
		return nil, true, fmt.Errorf("probes: goroutineleak profile from %s: %w", u, err)
	}
	return p, true, nil
}

// fetch GETs u and returns its body, at most MaxBodySize bytes. With
// notFoundOK, a 404 answer returns found == false and no error.
func fetch(ctx context.Context, client *http.Client, u string, notFoundOK bool) (body []byte, found bool, err error) {
	body, err = bounded.Get(ctx, client, u, MaxBodySize)
	if se, ok := errors.AsType[*bounded.StatusError](err); ok && notFoundOK && se.Code == http.StatusNotFound {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("probes: %w", err)
	}
	return body, true, nil
}

// sum sums a profile's values of the given sample type.
func sum(p *profile.Profile, sampleType string) (int64, error) {
	i := -1
	for j, st := range p.SampleType {
		if st.Type == sampleType {
			i = j
			break
		}
	}
	if i < 0 {
		return 0, fmt.Errorf("profile has no %q sample type", sampleType)
	}
	var sum int64
	for _, s := range p.Sample {
		if i < len(s.Value) {
			sum += s.Value[i]
		}
	}
	return sum, nil
}

// sumProfile decodes a profile, gzipped or not, at most MaxBodySize bytes
// decompressed, and sums its values of the given sample type.
func sumProfile(data []byte, sampleType string) (*profile.Profile, int64, error) {
	p, err := bounded.ParseProfile(data, MaxBodySize)
	if err != nil {
		return nil, 0, err
	}
	n, err := sum(p, sampleType)
	return p, n, err
}
