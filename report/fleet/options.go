package fleet

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/leakcheck/leakcheck/report"
)

// Defaults for Options.
const (
	DefaultRange       = 24 * time.Hour
	DefaultTimeout     = 30 * time.Second
	DefaultConcurrency = 4
	DefaultBatch       = 100
	// DefaultPoints is how many points the default step gives a range.
	DefaultPoints = 1800
	// maxPointsPerQuery stays under Prometheus's limit of 11,000 points per
	// series in one range query; longer ranges are queried in pieces.
	maxPointsPerQuery = 10000
)

// Query is an extra series to analyse: Name labels it in the report, PromQL
// is sent as it is (the selector is not added to it). Each series the query
// returns belongs to the instance its labels name.
type Query struct {
	Name   string
	PromQL string
}

// ParseQuery reads NAME=PROMQL, as the --query flag takes it.
func ParseQuery(s string) (Query, error) {
	name, q, ok := strings.Cut(s, "=")
	name, q = strings.TrimSpace(name), strings.TrimSpace(q)
	if !ok || name == "" || q == "" {
		return Query{}, fmt.Errorf("query %q: want NAME=PROMQL", s)
	}
	if !validName.MatchString(name) {
		return Query{}, fmt.Errorf("query %q: the name %q may hold only letters, digits, '_', '.' and '-'", s, name)
	}
	return Query{Name: name, PromQL: q}, nil
}

var validName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.\-]*$`)

// Credentials says where the secret for the Prometheus API is read from: a
// bearer token or "user:password" for basic auth, from a file or an
// environment variable. Secrets are never given as values, so that they
// stay out of shell history and process listings.
type Credentials struct {
	TokenFile     string // a file holding a bearer token
	TokenEnv      string // an environment variable holding a bearer token
	BasicAuthFile string // a file holding user:password
}

// header returns the Authorization header value the credentials give, or ""
// when none are set.
func (c Credentials) header() (string, error) {
	set := 0
	for _, s := range []string{c.TokenFile, c.TokenEnv, c.BasicAuthFile} {
		if s != "" {
			set++
		}
	}
	if set > 1 {
		return "", errors.New("credentials: give one of a token file, a token variable or a basic auth file")
	}
	switch {
	case c.TokenFile != "":
		b, err := readSecret(c.TokenFile)
		if err != nil {
			return "", err
		}
		return "Bearer " + b, nil
	case c.TokenEnv != "":
		v := strings.TrimSpace(os.Getenv(c.TokenEnv))
		if v == "" {
			return "", fmt.Errorf("credentials: environment variable %s is empty or unset", c.TokenEnv)
		}
		return "Bearer " + v, nil
	case c.BasicAuthFile != "":
		b, err := readSecret(c.BasicAuthFile)
		if err != nil {
			return "", err
		}
		user, pass, ok := strings.Cut(b, ":")
		if !ok || user == "" {
			return "", fmt.Errorf("credentials: %s: want user:password on one line", c.BasicAuthFile)
		}
		r := http.Request{Header: http.Header{}}
		r.SetBasicAuth(user, pass)
		return r.Header.Get("Authorization"), nil
	}
	return "", nil
}

// readSecret reads a small file holding one secret, without its trailing
// newline.
func readSecret(name string) (string, error) {
	f, err := os.Open(name)
	if err != nil {
		return "", fmt.Errorf("credentials: %w", err)
	}
	defer f.Close()
	b := make([]byte, 64<<10)
	n, err := f.Read(b)
	if err != nil && n == 0 {
		return "", fmt.Errorf("credentials: reading %s: %w", name, err)
	}
	if n == len(b) {
		return "", fmt.Errorf("credentials: %s is larger than 64KiB: not a secret", name)
	}
	s := strings.TrimSpace(string(b[:n]))
	if s == "" || strings.ContainsAny(s, "\r\n") {
		return "", fmt.Errorf("credentials: %s: want the secret alone on one line", name)
	}
	return s, nil
}

// Options configures Analyze. Only URL is required.
type Options struct {
	// URL is the Prometheus HTTP API's base, e.g. http://127.0.0.1:9090
	// (Thanos, Mimir and VictoriaMetrics speak the same API).
	URL string
	// Range is how far back from End to look; 0 means DefaultRange.
	Range time.Duration
	// End is the end of the range; zero means now.
	End time.Time
	// Step is the resolution of the range queries; 0 chooses one that gives
	// about DefaultPoints points over the range, at least one second.
	Step time.Duration
	// Selector is a label matcher set, e.g. `{job="api"}`, added to every
	// default metric; empty selects every instance.
	Selector string
	// Queries are extra series to analyse.
	Queries []Query
	// Credentials are sent with every request.
	Credentials Credentials
	// Timeout bounds each request; 0 means DefaultTimeout.
	Timeout time.Duration
	// Concurrency bounds the requests in flight; 0 means DefaultConcurrency.
	Concurrency int
	// Batch is how many instances one query asks for; 0 means DefaultBatch.
	// It bounds the memory a query's answer takes.
	Batch int
	// Trend configures the trend test of each run of a process. The zero
	// value uses report's defaults and drops the first point of each run,
	// taken while the process was starting.
	Trend report.TrendOptions
	// Transport, if set, carries the requests (for proxies or TLS settings);
	// nil means http.DefaultTransport.
	Transport http.RoundTripper

	// queryAPIOnly reads through the query API even where remote read is
	// offered: the benchmarks compare the two paths.
	queryAPIOnly bool
}

// withDefaults fills in the defaults and checks the options.
func (o Options) withDefaults(now time.Time) (Options, error) {
	if o.URL == "" {
		return o, errors.New("no Prometheus URL")
	}
	u, err := url.Parse(o.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return o, fmt.Errorf("Prometheus URL %q: want http://HOST:PORT or https://HOST:PORT", o.URL)
	}
	if o.Range == 0 {
		o.Range = DefaultRange
	}
	if o.Range < 0 {
		return o, fmt.Errorf("range %v: want a positive duration", o.Range)
	}
	if o.Step < 0 {
		return o, fmt.Errorf("step %v: want a positive duration", o.Step)
	}
	if o.Step == 0 {
		o.Step = max((o.Range / DefaultPoints).Round(time.Second), time.Second)
	}
	if o.Range/o.Step < 4 {
		return o, fmt.Errorf("step %v over range %v: fewer than 4 points", o.Step, o.Range)
	}
	if o.End.IsZero() {
		o.End = now
	}
	if o.Timeout == 0 {
		o.Timeout = DefaultTimeout
	}
	if o.Timeout < 0 {
		return o, fmt.Errorf("timeout %v: want a positive duration", o.Timeout)
	}
	if o.Concurrency <= 0 {
		o.Concurrency = DefaultConcurrency
	}
	if o.Batch <= 0 {
		o.Batch = DefaultBatch
	}
	if _, err := selectorMatchers(o.Selector); err != nil {
		return o, err
	}
	names := map[string]bool{}
	for _, q := range o.Queries {
		if _, err := ParseQuery(q.Name + "=" + q.PromQL); err != nil {
			return o, err
		}
		if names[q.Name] || isDefaultName(q.Name) {
			return o, fmt.Errorf("query name %q is used twice", q.Name)
		}
		names[q.Name] = true
	}
	if o.Trend == (report.TrendOptions{}) {
		o.Trend.WarmupSamples = 1
	}
	return o, nil
}

// selectorMatchers returns the matchers inside a selector's braces, e.g.
// `job="api"` for `{job="api"}`; "" for an empty selector.
func selectorMatchers(sel string) (string, error) {
	s := strings.TrimSpace(sel)
	if s == "" {
		return "", nil
	}
	if !strings.HasPrefix(s, "{") || !strings.HasSuffix(s, "}") {
		return "", fmt.Errorf("selector %q: want label matchers in braces, e.g. {job=\"api\"}", sel)
	}
	inner := strings.TrimSpace(s[1 : len(s)-1])
	if strings.ContainsAny(inner, "{}") {
		return "", fmt.Errorf("selector %q: nested braces", sel)
	}
	return strings.TrimSuffix(inner, ","), nil
}

// withMatchers returns the selector of metric with matchers added: name{a,b}.
func withMatchers(metric string, matchers ...string) string {
	var ms []string
	for _, m := range matchers {
		if m != "" {
			ms = append(ms, m)
		}
	}
	return metric + "{" + strings.Join(ms, ",") + "}"
}
