package fleet

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"
)

// gappyHistory writes an hour of two instances, as smallHistory, where
// instance g stops reporting for 12 minutes (longer than PromQL's lookback)
// and then for 3 (shorter), and its values are fractions, so that the XOR
// chunks hold more than repeated integers.
func gappyHistory(end time.Time) func(string) error {
	return func(path string) error {
		var b strings.Builder
		for _, name := range []string{"process_start_time_seconds", "process_open_fds", "process_max_fds", "go_goroutines", "process_resident_memory_bytes"} {
			fmt.Fprintf(&b, "# TYPE %s gauge\n", name)
			for _, inst := range []string{"f", "g"} {
				for i := range 60 {
					if inst == "g" && (i >= 20 && i < 32 || i >= 40 && i < 43) {
						continue
					}
					v := 1e6/float64(i+3) + float64(i)*0.1
					if name == "process_start_time_seconds" {
						v = float64(end.Add(-2 * time.Hour).Unix())
					}
					ts := end.Add(time.Duration(i-59) * time.Minute).Unix()
					fmt.Fprintf(&b, "%s{job=\"gappy\",instance=\"%s\"} %g %d\n", name, inst, v, ts)
				}
			}
		}
		b.WriteString("# EOF\n")
		return os.WriteFile(path, []byte(b.String()), 0o644)
	}
}

// samePaths checks that remote read gives, for every default metric of the
// instances the matchers pick, exactly the series and points the query API
// gives, at each of the steps.
func samePaths(t *testing.T, ctx context.Context, base Options, steps []time.Duration) {
	t.Helper()
	sel, _ := selectorMatchers(base.Selector)
	remoteMatchers, err := parseMatchers(sel)
	if err != nil {
		t.Fatal(err)
	}
	for _, step := range steps {
		o := base
		o.Step = step
		o, err := o.withDefaults(time.Now())
		if err != nil {
			t.Fatal(err)
		}
		c, err := newClient(o)
		if err != nil {
			t.Fatal(err)
		}
		viaRemote, err := c.readBatch(ctx, defaultMetrics(), remoteMatchers)
		if err != nil {
			t.Fatalf("step %v: remote read: %v", step, err)
		}
		viaQuery, err := c.fetchAll(ctx, defaultMetrics(), sel)
		if err != nil {
			t.Fatalf("step %v: query API: %v", step, err)
		}
		points := 0
		for i, m := range defaultMetrics() {
			got, want := byIdentity(viaRemote[i].matrix), byIdentity(viaQuery[i].matrix)
			if len(got) != len(want) {
				t.Errorf("step %v, %s: %d series through remote read, %d through the query API", step, m.source, len(got), len(want))
			}
			for id, w := range want {
				g := got[id]
				points += len(g)
				if !slices.Equal(g, w) {
					t.Errorf("step %v, %s of %s: remote read and the query API differ:\n%s", step, m.source, id, firstDifference(g, w))
				}
			}
		}
		if points == 0 {
			t.Errorf("step %v: no points compared", step)
		}
		t.Logf("step %v: %d points the same through both paths", step, points)
	}
}

func byIdentity(m model.Matrix) map[string][]model.SamplePair {
	out := map[string][]model.SamplePair{}
	for _, s := range m {
		out[identity(s.Metric, "")+" "+string(s.Metric[model.MetricNameLabel])] = s.Values
	}
	return out
}

func firstDifference(got, want []model.SamplePair) string {
	for i := range min(len(got), len(want)) {
		if got[i] != want[i] {
			return fmt.Sprintf("point %d: remote read %v, query API %v", i, got[i], want[i])
		}
	}
	return fmt.Sprintf("remote read %d points, query API %d", len(got), len(want))
}

// TestRemoteReadAgainstPrometheus checks against a real Prometheus that the
// series read through remote read are exactly those of the query API, over
// gaps and at steps that fall between the samples, and that Analyze falls
// back to the query API when a server refuses remote read.
func TestRemoteReadAgainstPrometheus(t *testing.T) {
	end := time.Now().Add(-2 * time.Minute).Truncate(time.Minute)
	prom := backfillWith(t, "2 instances with gaps, an hour", gappyHistory(end))
	ctx := waitCtx(t, 2*time.Minute)
	base := Options{URL: prom, End: end, Range: time.Hour, Selector: `{job="gappy", instance=~"f|g"}`}

	t.Run("same points", func(t *testing.T) {
		samePaths(t, ctx, base, []time.Duration{time.Minute, 7 * time.Second, 150 * time.Second, 300 * time.Millisecond})
	})

	// Servers that do not offer remote read: one that does not know the
	// path, one that answers it in a format leakcheck does not read.
	target, _ := url.Parse(prom)
	proxy := httputil.NewSingleHostReverseProxy(target)
	refusals := []struct {
		name   string
		refuse http.HandlerFunc
		want   string
	}{
		{"not found", func(w http.ResponseWriter, r *http.Request) { http.NotFound(w, r) }, "404 Not Found"},
		{"samples, not chunks", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/x-protobuf")
			w.Write([]byte{0})
		}, `answered "application/x-protobuf"`},
	}
	for _, tt := range refusals {
		t.Run("fallback/"+tt.name, func(t *testing.T) {
			reads := 0
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/api/v1/read" {
					reads++
					tt.refuse(w, r)
					return
				}
				proxy.ServeHTTP(w, r)
			}))
			defer srv.Close()
			for _, batch := range []int{1, 100} {
				reads = 0
				o := base
				o.URL, o.Step, o.Batch = srv.URL, time.Minute, batch
				res, err := Analyze(ctx, o)
				if err != nil {
					t.Fatal(err)
				}
				direct := base
				direct.Step, direct.Batch = time.Minute, batch
				want, err := Analyze(ctx, direct)
				if err != nil {
					t.Fatal(err)
				}
				if res.Instances != 2 || res.Points != want.Points || !slices.Equal(flagged(res), flagged(want)) {
					t.Errorf("batch %d: through the refusing server %d instances, %d points, flagged %v; directly %d, %d, %v",
						batch, res.Instances, res.Points, flagged(res), want.Instances, want.Points, flagged(want))
				}
				if reads != 1 {
					t.Errorf("batch %d: remote read tried %d times, want once and then no more", batch, reads)
				}
				if !hasNote(res, "series read through the query API (query_range), as prometheus at "+srv.URL+" refused remote read") ||
					!hasNote(res, tt.want) {
					t.Errorf("batch %d: notes %q do not say remote read was refused with %q", batch, res.Notes, tt.want)
				}
				if !hasNote(want, "series read through remote read (streamed chunks)") {
					t.Errorf("batch %d: directly, notes %q do not say remote read was used", batch, want.Notes)
				}
			}
		})
	}

	// A proxy that loses the first two answers midway, as a proxy whose
	// connection to Prometheus breaks can: the batch is read again.
	t.Run("answer cut short", func(t *testing.T) {
		// Fresh connections to Prometheus: see the credentials proxy of
		// TestAgainstPrometheus.
		proxy := httputil.NewSingleHostReverseProxy(target)
		proxy.Transport = &http.Transport{DisableKeepAlives: true}
		cuts := 0
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/api/v1/read" && cuts < 2 {
				cuts++
				rec := httptest.NewRecorder()
				proxy.ServeHTTP(rec, r)
				for k, v := range rec.Header() {
					w.Header()[k] = v
				}
				body := rec.Body.Bytes()
				w.Write(body[:len(body)/2])
				panic(http.ErrAbortHandler) // the client sees the answer end early
			}
			proxy.ServeHTTP(w, r)
		}))
		defer srv.Close()
		o := base
		o.URL, o.Step = srv.URL, time.Minute
		res, err := Analyze(ctx, o)
		if err != nil {
			t.Fatal(err)
		}
		if cuts != 2 || res.Instances != 2 || !hasNote(res, "series read through remote read (streamed chunks)") {
			t.Errorf("%d answers cut, %d instances, notes %q: want the batch read again through remote read", cuts, res.Instances, res.Notes)
		}
	})

	t.Run("selector beyond remote read's matchers", func(t *testing.T) {
		o := base
		o.Step, o.Selector = time.Minute, `{job='gappy'}`
		res, err := Analyze(ctx, o)
		if err != nil {
			t.Fatal(err)
		}
		if res.Instances != 2 || !hasNote(res, "the query API (query_range), as the selector is beyond remote read's matchers") {
			t.Errorf("%d instances, notes %q", res.Instances, res.Notes)
		}
	})
}

// hasNote reports whether a note of res contains s.
func hasNote(res *Result, s string) bool {
	return slices.ContainsFunc(res.Notes, func(n string) bool { return strings.Contains(n, s) })
}
