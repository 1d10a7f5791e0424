package fleet

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/api"
	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"
)

// role says what a metric is for in the analysis.
type role int

const (
	roleResource role = iota // trend-tested
	roleLimit                // the limit of the resource named by limitOf
	roleStart                // process start time: a change is a restart
	roleCounter              // a counter: a reset is a restart
)

// metric is one series of the default set.
type metric struct {
	name   string // series name in the report; tracker metrics add a label's value
	source string // the Prometheus metric, for messages
	unit   string
	role   role
	// limitOf names the resource a limit metric bounds.
	limitOf string
	// byLabel names the label whose value completes the series name; it is
	// not part of the instance's identity.
	byLabel string
	// expr makes the PromQL from the matchers of the selector and batch.
	expr func(matchers string) string
	// optional metrics are not noted when absent: leakcheck's own tracker
	// metrics, which only daemons that export them have.
	optional bool
	// sumWithout is the label expr sums away; remote read, which reads
	// the raw series, sums them the same way.
	sumWithout string
}

// plain is the metric name selected with the matchers.
func plain(name string) func(string) string {
	return func(m string) string { return withMatchers(name, m) }
}

// defaultMetrics is what every instance is read for; see the package doc.
func defaultMetrics() []metric {
	return []metric{
		{name: "start", source: "process_start_time_seconds", role: roleStart, expr: plain("process_start_time_seconds")},
		{name: "cpu", source: "process_cpu_seconds_total", role: roleCounter, expr: plain("process_cpu_seconds_total"), optional: true},
		{name: "fds", source: "process_open_fds", unit: "fds", expr: plain("process_open_fds")},
		{name: "max_fds", source: "process_max_fds", unit: "fds", role: roleLimit, limitOf: "fds", expr: plain("process_max_fds")},
		{name: "threads", source: "go_threads", unit: "threads", expr: plain("go_threads")},
		{name: "goroutines", source: "go_goroutines", unit: "goroutines", expr: plain("go_goroutines")},
		{name: "heap_inuse_bytes", source: "go_memstats_heap_inuse_bytes", unit: "bytes", expr: plain("go_memstats_heap_inuse_bytes")},
		{name: "rss_bytes", source: "process_resident_memory_bytes", unit: "bytes", expr: plain("process_resident_memory_bytes")},
		{name: "tracker.live", source: "leakcheck_tracker_live_records", unit: "records", byLabel: "kind", optional: true, sumWithout: "owner_kind",
			expr: func(m string) string {
				return "sum without (owner_kind) (" + withMatchers("leakcheck_tracker_live_records", m) + ")"
			}},
		{name: "tracker.collection", source: "leakcheck_tracker_collection_items", unit: "items", byLabel: "collection", optional: true,
			expr: plain("leakcheck_tracker_collection_items")},
	}
}

// isDefaultName reports whether name is taken by the default set.
func isDefaultName(name string) bool {
	for _, m := range defaultMetrics() {
		if m.name == name || strings.HasPrefix(name, m.name+".") && m.byLabel != "" {
			return true
		}
	}
	return false
}

// client queries one Prometheus API with bounded concurrency.
type client struct {
	api  v1.API
	http *http.Client // for remote read, which the API client does not speak
	url  string
	opts Options
	sem  chan struct{}
}

func newClient(o Options) (*client, error) {
	auth, err := o.Credentials.header()
	if err != nil {
		return nil, err
	}
	rt := o.Transport
	if rt == nil {
		rt = http.DefaultTransport
	}
	if auth != "" {
		rt = authTransport{next: rt, auth: auth}
	}
	c, err := api.NewClient(api.Config{Address: o.URL, RoundTripper: rt})
	if err != nil {
		return nil, fmt.Errorf("prometheus client for %s: %w", o.URL, err)
	}
	return &client{api: v1.NewAPI(c), http: &http.Client{Transport: rt}, url: o.URL, opts: o, sem: make(chan struct{}, o.Concurrency)}, nil
}

// authTransport sets the Authorization header on every request.
type authTransport struct {
	next http.RoundTripper
	auth string
}

func (t authTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", t.auth)
	return t.next.RoundTrip(r)
}

// explain wraps an error of a request to the API so that it says what
// failed on which server.
func (c *client) explain(what string, err error) error {
	var apiErr *v1.Error
	switch {
	case errors.As(err, &apiErr):
		return fmt.Errorf("prometheus at %s rejected %s: %w", c.url, what, err)
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("prometheus at %s: %s took longer than %v: %w", c.url, what, c.opts.Timeout, err)
	}
	return fmt.Errorf("prometheus at %s: %s: %w", c.url, what, err)
}

// instances lists the values of the instance label of the series the
// default metrics select over the range; all is false when some series have
// no instance label, so that instances cannot be asked for by that label.
func (c *client) instances(ctx context.Context, matchers string) (values []string, all bool, warnings []string, err error) {
	ctx, cancel := context.WithTimeout(ctx, c.opts.Timeout)
	defer cancel()
	start := c.opts.End.Add(-c.opts.Range)
	var matches []string
	for _, name := range []string{"process_start_time_seconds", "process_open_fds", "go_goroutines", "leakcheck_tracker_live_records"} {
		matches = append(matches, withMatchers(name, matchers))
	}
	sets, warn, _, err := c.api.Series(ctx, matches, start, c.opts.End)
	if err != nil {
		return nil, false, nil, c.explain("the list of series", err)
	}
	seen := map[string]bool{}
	all = true
	for _, ls := range sets {
		v, ok := ls[model.InstanceLabel]
		if !ok {
			all = false
			continue
		}
		if !seen[string(v)] {
			seen[string(v)] = true
			values = append(values, string(v))
		}
	}
	slices.Sort(values)
	return values, all, warn, nil
}

// instanceMatcher selects the series of the given instance label values.
func instanceMatcher(values []string) string {
	quoted := make([]string, len(values))
	for i, v := range values {
		quoted[i] = regexp.QuoteMeta(v)
	}
	return model.InstanceLabel + "=~" + strconv.Quote(strings.Join(quoted, "|"))
}

// instanceRemoteMatcher is instanceMatcher for remote read.
func instanceRemoteMatcher(values []string) labelMatcher {
	quoted := make([]string, len(values))
	for i, v := range values {
		quoted[i] = regexp.QuoteMeta(v)
	}
	return labelMatcher{typ: matchRegexp, name: model.InstanceLabel, value: strings.Join(quoted, "|")}
}

// queryRange runs a range query over the options' range, in pieces of at
// most maxPointsPerQuery steps, and returns its series with the pieces
// joined. It holds one of the client's concurrency slots per request.
func (c *client) queryRange(ctx context.Context, q string) (model.Matrix, []string, error) {
	start := c.opts.End.Add(-c.opts.Range)
	piece := c.opts.Step * maxPointsPerQuery
	byFP := map[model.Fingerprint]*model.SampleStream{}
	var out model.Matrix
	var warnings []string
	for from := start; !from.After(c.opts.End); from = from.Add(piece + c.opts.Step) {
		to := from.Add(piece)
		if to.After(c.opts.End) {
			to = c.opts.End
		}
		select {
		case c.sem <- struct{}{}:
		case <-ctx.Done():
			return nil, nil, ctx.Err()
		}
		qctx, cancel := context.WithTimeout(ctx, c.opts.Timeout)
		v, warn, _, err := c.api.QueryRange(qctx, q, v1.Range{Start: from, End: to, Step: c.opts.Step})
		cancel()
		<-c.sem
		if err != nil {
			return nil, nil, c.explain(fmt.Sprintf("query %s", q), err)
		}
		warnings = append(warnings, warn...)
		m, ok := v.(model.Matrix)
		if !ok {
			return nil, nil, fmt.Errorf("prometheus at %s: query %s returned a %s, not a range vector", c.url, q, v.Type())
		}
		for _, s := range m {
			fp := s.Metric.Fingerprint()
			if prev := byFP[fp]; prev != nil {
				prev.Values = append(prev.Values, s.Values...)
				continue
			}
			byFP[fp] = s
			out = append(out, s)
		}
	}
	return out, warnings, nil
}

// fetched is the answer to one query of a batch.
type fetched struct {
	metric  metric
	matrix  model.Matrix
	warning []string
	err     error
}

// fetchAll runs every metric's query with the matchers, concurrently within
// the client's bound, and returns the answers in the metrics' order; the
// first error cancels the rest.
func (c *client) fetchAll(ctx context.Context, metrics []metric, matchers string) ([]fetched, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	out := make([]fetched, len(metrics))
	var wg sync.WaitGroup
	for i, m := range metrics {
		wg.Add(1)
		go func() {
			defer wg.Done()
			mat, warn, err := c.queryRange(ctx, m.expr(matchers))
			out[i] = fetched{metric: m, matrix: mat, warning: warn, err: err}
			if err != nil {
				cancel()
			}
		}()
	}
	wg.Wait()
	// Report the first error that is not only the cancellation it caused.
	var first error
	for _, f := range out {
		if f.err != nil && !errors.Is(f.err, context.Canceled) {
			return nil, f.err
		}
		if f.err != nil && first == nil {
			first = f.err
		}
	}
	if first != nil {
		return nil, first
	}
	return out, nil
}

// toDuration is a helper for messages: d rounded for people.
func toDuration(d time.Duration) string {
	switch {
	case d >= time.Hour:
		return d.Round(time.Minute).String()
	case d >= time.Minute:
		return d.Round(time.Second).String()
	}
	return d.Round(100 * time.Millisecond).String()
}
