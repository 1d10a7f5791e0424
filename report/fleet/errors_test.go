package fleet

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestOptionsErrors checks that bad options are clear errors before any
// request is made.
func TestOptionsErrors(t *testing.T) {
	tests := []struct {
		name string
		opts Options
		want string
	}{
		{"no URL", Options{}, "no Prometheus URL"},
		{"not http", Options{URL: "ftp://127.0.0.1:9090"}, "want http://HOST:PORT"},
		{"no host", Options{URL: "http://"}, "want http://HOST:PORT"},
		{"negative range", Options{URL: "http://127.0.0.1:9", Range: -time.Hour}, "range -1h0m0s"},
		{"too few points", Options{URL: "http://127.0.0.1:9", Range: time.Minute, Step: time.Minute}, "fewer than 4 points"},
		{"selector without braces", Options{URL: "http://127.0.0.1:9", Selector: `job="api"`}, "want label matchers in braces"},
		{"nested braces", Options{URL: "http://127.0.0.1:9", Selector: `{job="{x}"}`}, "nested braces"},
		{"query name twice", Options{URL: "http://127.0.0.1:9", Queries: []Query{{"a", "up"}, {"a", "up"}}}, `"a" is used twice`},
		{"query name of the default set", Options{URL: "http://127.0.0.1:9", Queries: []Query{{"fds", "up"}}}, `"fds" is used twice`},
		{"two credentials", Options{URL: "http://127.0.0.1:9", Credentials: Credentials{TokenEnv: "A", TokenFile: "b"}}, "give one of"},
		{"unset token variable", Options{URL: "http://127.0.0.1:9", Credentials: Credentials{TokenEnv: "LEAKCHECK_TEST_NO_SUCH_VARIABLE"}}, "is empty or unset"},
		{"missing token file", Options{URL: "http://127.0.0.1:9", Credentials: Credentials{TokenFile: filepath.Join(t.TempDir(), "none")}}, "no such file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Analyze(context.Background(), tt.opts)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Analyze: %v, want an error with %q", err, tt.want)
			}
		})
	}
}

func TestParseQuery(t *testing.T) {
	tests := []struct {
		in      string
		want    Query
		wantErr bool
	}{
		{in: "conns=sum by (instance) (open_conns)", want: Query{"conns", "sum by (instance) (open_conns)"}},
		{in: "a.b-c = x == 1", want: Query{"a.b-c", "x == 1"}},
		{in: "noequals", wantErr: true},
		{in: "=up", wantErr: true},
		{in: "name=", wantErr: true},
		{in: "bad name=up", wantErr: true},
	}
	for _, tt := range tests {
		got, err := ParseQuery(tt.in)
		if (err != nil) != tt.wantErr || err == nil && got != tt.want {
			t.Errorf("ParseQuery(%q) = %+v, %v; want %+v, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

// FuzzParseQuery checks that any --query text gives a query or an error,
// and that a query it accepts parses again to itself.
func FuzzParseQuery(f *testing.F) {
	for _, s := range []string{"a=up", "x = rate(y[5m])", "=", "a==b", "é=1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		q, err := ParseQuery(s)
		if err != nil {
			return
		}
		again, err := ParseQuery(q.Name + "=" + q.PromQL)
		if err != nil || again != q {
			t.Errorf("ParseQuery(%q) = %+v, but its text parses to %+v, %v", s, q, again, err)
		}
	})
}

// smallHistory writes an hour of three instances, a and b Go programs, c
// not (no go_goroutines); b leaks descriptors.
func smallHistory(end time.Time) func(string) error {
	return func(path string) error {
		var b strings.Builder
		fams := []struct {
			name string
			val  func(inst string, i int) float64
		}{
			{"process_start_time_seconds", func(string, int) float64 { return float64(end.Add(-2 * time.Hour).Unix()) }},
			{"process_open_fds", func(inst string, i int) float64 {
				if inst == "b" {
					return float64(20 + 2*i)
				}
				return float64(20 + i%3)
			}},
			{"process_max_fds", func(string, int) float64 { return 1024 }},
			{"go_goroutines", func(string, int) float64 { return 10 }},
		}
		for _, f := range fams {
			fmt.Fprintf(&b, "# TYPE %s gauge\n", f.name)
			for _, inst := range []string{"a", "b", "c"} {
				if inst == "c" && f.name == "go_goroutines" {
					continue
				}
				for i := range 60 {
					ts := end.Add(time.Duration(i-59) * time.Minute).Unix()
					fmt.Fprintf(&b, "%s{job=\"small\",instance=\"%s\"} %g %d\n", f.name, inst, f.val(inst, i), ts)
				}
			}
		}
		b.WriteString("# EOF\n")
		return os.WriteFile(path, []byte(b.String()), 0o644)
	}
}

// TestAgainstPrometheus checks, against a real Prometheus holding a small
// history, the errors and notes a user meets, credentials through an
// authenticating proxy, and that batching does not change the verdicts.
func TestAgainstPrometheus(t *testing.T) {
	end := time.Now().Add(-2 * time.Minute).Truncate(time.Minute)
	prom := backfillWith(t, "3 instances, an hour", smallHistory(end))
	base := Options{URL: prom, End: end, Range: time.Hour, Step: time.Minute, Selector: `{job="small"}`}
	ctx := waitCtx(t, 2*time.Minute)

	t.Run("found, with a note on the missing metric", func(t *testing.T) {
		for _, batch := range []int{1, 2, 100} {
			o := base
			o.Batch, o.Concurrency = batch, batch
			res, err := Analyze(ctx, o)
			if err != nil {
				t.Fatal(err)
			}
			if got := flagged(res); !slices.Equal(got, []string{"b"}) {
				t.Errorf("batch %d: flagged %v, want [b]", batch, got)
			}
			if !slices.ContainsFunc(res.Notes, func(n string) bool { return n == "go_goroutines is missing on 1 of 3 instances" }) {
				t.Errorf("batch %d: notes %q lack the missing go_goroutines", batch, res.Notes)
			}
		}
	})

	// 12,000 steps: more than Prometheus answers in one query (11,000), so
	// the range is asked for in pieces and joined.
	t.Run("range in pieces", func(t *testing.T) {
		o := base
		o.Step = 300 * time.Millisecond
		res, err := Analyze(ctx, o)
		if err != nil {
			t.Fatal(err)
		}
		if got := flagged(res); !slices.Equal(got, []string{"b"}) {
			t.Errorf("flagged %v, want [b]", got)
		}
		// Every series holds a point per step from its first sample, 59
		// minutes before the end: 11,801 of them, none twice.
		for _, s := range res.Series {
			if len(s.Points) != 11801 {
				t.Errorf("series %s: %d points, want 11801", s.Name, len(s.Points))
			}
			for i := 1; i < len(s.Points); i++ {
				if !s.Points[i].Time.After(s.Points[i-1].Time) {
					t.Fatalf("series %s: point %d at %v, not after %v", s.Name, i, s.Points[i].Time, s.Points[i-1].Time)
				}
			}
		}
	})

	errCases := []struct {
		name string
		edit func(*Options)
		want string
	}{
		{"selector matches nothing", func(o *Options) { o.Selector = `{job="none"}` }, `no process_*, go_* or leakcheck_tracker_* series for selector {job="none"}`},
		{"bad selector syntax", func(o *Options) { o.Selector = `{job=}` }, "rejected"},
		{"query error", func(o *Options) { o.Queries = []Query{{"bad", "rate(process_open_fds"}} }, "rejected query rate(process_open_fds"},
		{"query with no series", func(o *Options) { o.Queries = []Query{{"none", `up{job="none"}`}} }, "query none (up{job=\"none\"}): no series"},
	}
	for _, tt := range errCases {
		t.Run(tt.name, func(t *testing.T) {
			o := base
			tt.edit(&o)
			_, err := Analyze(ctx, o)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Analyze: %v, want an error with %q", err, tt.want)
			}
		})
	}

	for _, q := range []string{`2 * process_open_fds{job="small"}`, `sum by (instance) (2 * process_open_fds{job="small"})`} {
		t.Run("extra query joins its instance/"+q, func(t *testing.T) {
			o := base
			o.Queries = []Query{{"fds_doubled", q}}
			res, err := Analyze(ctx, o)
			if err != nil {
				t.Fatal(err)
			}
			if res.Instances != 3 || len(res.Findings) != 1 || res.Findings[0].Evidence.Values["fds_doubled_slope_per_hour"] <= 0 {
				t.Errorf("want 3 instances and one finding on b with fds_doubled as evidence, got %d and %+v", res.Instances, res.Findings)
			}
		})
	}

	// A proxy in front of Prometheus that wants credentials, as a real
	// deployment's does.
	const token, user, pass = "s3cret-token", "ops", "pa:ss"
	target, _ := url.Parse(prom)
	proxy := httputil.NewSingleHostReverseProxy(target)
	// A fresh connection to Prometheus for each request: over a reused one,
	// httputil's proxy lost a streamed remote read answer midway in about
	// one request of eight ("use of closed network connection" on its read
	// from Prometheus 2.42). leakcheck reads such a batch again (tested in
	// TestRemoteReadAgainstPrometheus); these cases test credentials.
	proxy.Transport = &http.Transport{DisableKeepAlives: true}
	guard := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, p, basic := r.BasicAuth()
		if r.Header.Get("Authorization") != "Bearer "+token && !(basic && u == user && p == pass) {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	defer guard.Close()
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	t.Setenv("LEAKCHECK_TEST_TOKEN", token)
	credCases := []struct {
		name    string
		creds   Credentials
		wantErr string
	}{
		{"token file", Credentials{TokenFile: write("token", token+"\n")}, ""},
		{"token variable", Credentials{TokenEnv: "LEAKCHECK_TEST_TOKEN"}, ""},
		{"basic auth file", Credentials{BasicAuthFile: write("basic", user+":"+pass+"\n")}, ""},
		{"wrong token", Credentials{TokenFile: write("wrong", "nope")}, "401"},
		{"none", Credentials{}, "401"},
		{"basic auth without colon", Credentials{BasicAuthFile: write("bad", "ops")}, "want user:password"},
	}
	for _, tt := range credCases {
		t.Run("credentials/"+tt.name, func(t *testing.T) {
			o := base
			o.URL, o.Credentials = guard.URL, tt.creds
			res, err := Analyze(ctx, o)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatal(err)
			case tt.wantErr == "" && !slices.Equal(flagged(res), []string{"b"}):
				t.Errorf("flagged %v through the proxy, want [b]", flagged(res))
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("Analyze: %v, want an error with %q", err, tt.wantErr)
			}
		})
	}
}

// TestUnreachable checks the errors for a server that is not there and one
// that does not answer in time.
func TestUnreachable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + l.Addr().String()
	l.Close()
	_, err = Analyze(context.Background(), Options{URL: closed, Range: time.Hour})
	if err == nil || !strings.Contains(err.Error(), "prometheus at "+closed) || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("closed port: %v, want a connection refused error naming %s", err, closed)
	}

	hang := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-hang:
		case <-r.Context().Done():
		}
	}))
	defer slow.Close()
	defer close(hang)
	start := time.Now()
	_, err = Analyze(context.Background(), Options{URL: slow.URL, Range: time.Hour, Timeout: 300 * time.Millisecond})
	if err == nil || !strings.Contains(err.Error(), "took longer than 300ms") {
		t.Errorf("silent server: %v, want a timeout error", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("timeout of 300ms took %v", d)
	}
}
