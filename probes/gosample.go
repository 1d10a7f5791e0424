package probes

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/google/pprof/profile"
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
	// GoroutineProfile is the goroutine profile as served (debug=0: a
	// gzipped protocol buffer readable by github.com/google/pprof/profile).
	GoroutineProfile []byte
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
	n, err := sumProfile(body, "goroutine")
	if err != nil {
		return nil, fmt.Errorf("probes: goroutine profile from %s: %w", u, err)
	}
	s.Goroutines, s.GoroutineProfile = int(n), body

	u = base + "/debug/pprof/heap?debug=0"
	body, _, err = fetch(ctx, client, u, false)
	if err == nil {
		if s.HeapInuse, err = sumProfile(body, "inuse_space"); err != nil {
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

// fetch GETs u and returns its body, at most MaxBodySize bytes. With
// notFoundOK, a 404 answer returns found == false and no error.
func fetch(ctx context.Context, client *http.Client, u string, notFoundOK bool) (body []byte, found bool, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, false, fmt.Errorf("probes: GET %s: %w", u, err)
	}
	resp, err := client.Do(req)
	if err != nil {
		// The client's error repeats the URL; say it once.
		if ue, ok := errors.AsType[*url.Error](err); ok {
			err = ue.Err
		}
		return nil, false, fmt.Errorf("probes: GET %s: %w", u, err)
	}
	defer func() {
		// Drain a little so that the connection can serve the next
		// sample; the client drops it if more is left.
		io.CopyN(io.Discard, resp.Body, 64<<10)
		resp.Body.Close()
	}()
	if resp.StatusCode == http.StatusNotFound && notFoundOK {
		return nil, false, nil
	}
	if resp.StatusCode != http.StatusOK {
		return nil, false, fmt.Errorf("probes: GET %s: %s", u, resp.Status)
	}
	if resp.ContentLength > MaxBodySize {
		return nil, false, fmt.Errorf("probes: GET %s: body of %d bytes exceeds the %d-byte limit", u, resp.ContentLength, MaxBodySize)
	}
	body, err = readLimited(resp.Body, MaxBodySize)
	if err != nil {
		return nil, false, fmt.Errorf("probes: GET %s: %w", u, err)
	}
	return body, true, nil
}

// errTooLarge reports data beyond MaxBodySize.
var errTooLarge = fmt.Errorf("exceeds the %d-byte limit", MaxBodySize)

// readLimited reads r to the end, failing when it holds more than limit
// bytes.
func readLimited(r io.Reader, limit int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("body %w", errTooLarge)
	}
	return b, nil
}

func isGzip(b []byte) bool { return len(b) >= 2 && b[0] == 0x1f && b[1] == 0x8b }

// decodeProfile parses a pprof profile, gzipped or not. Unlike
// profile.ParseData it bounds the decompressed size (MaxBodySize), and it
// turns a panic of the parser on a malformed profile into an error.
func decodeProfile(data []byte) (p *profile.Profile, err error) {
	if isGzip(data) {
		zr, err := gzip.NewReader(bytes.NewReader(data))
		if err != nil {
			return nil, fmt.Errorf("decompressing profile: %w", err)
		}
		data, err = io.ReadAll(io.LimitReader(zr, MaxBodySize+1))
		if err != nil {
			return nil, fmt.Errorf("decompressing profile: %w", err)
		}
		if len(data) > MaxBodySize {
			return nil, fmt.Errorf("decompressed profile %w", errTooLarge)
		}
		if isGzip(data) {
			// profile.ParseData would decompress this layer without a
			// limit.
			return nil, errors.New("profile is compressed twice")
		}
	}
	// The profile comes from another process: a parser bug on a malformed
	// profile must cost this sample, not the sampler.
	defer func() {
		if r := recover(); r != nil {
			p, err = nil, fmt.Errorf("malformed profile (parser panicked: %v)", r)
		}
	}()
	return profile.ParseData(data)
}

// sumProfile parses a profile and sums its values of the given sample type.
func sumProfile(data []byte, sampleType string) (int64, error) {
	p, err := decodeProfile(data)
	if err != nil {
		return 0, err
	}
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
