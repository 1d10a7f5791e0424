package fleet

import (
	"cmp"
	"context"
	"fmt"
	"iter"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/common/model"

	"github.com/leakcheck/leakcheck/report"
)

// Result is what Analyze found, in the shape every analysis of leakcheck
// returns: findings, the series they rest on, tables and notes.
type Result struct {
	// Result holds one growth finding per leaking instance (its most
	// urgent resource the subject, the others that grew with it as
	// evidence), the series of the leaking instances named
	// RESOURCE{LABELS} with the trend of the run that decided the verdict,
	// a table ranking them, and notes on what was analysed and which
	// metrics some instances lack.
	report.Result
	// Instances and Points count what was read and analysed.
	Instances, Points int
}

// Analyze reads the series of every instance the selector picks from the
// Prometheus API at opts.URL, splits each at the restarts of its process,
// trend-tests every run, and reports the instances that leak. Instances are
// fetched in batches and analysed as each batch arrives, so memory is bounded
// by the batch, not the fleet. A server that cannot be reached, a query that
// fails and a selector that matches nothing are errors; a metric that some
// instances lack is a note.
func Analyze(ctx context.Context, opts Options) (*Result, error) {
	o, err := opts.withDefaults(time.Now())
	if err != nil {
		return nil, err
	}
	c, err := newClient(o)
	if err != nil {
		return nil, err
	}
	sel, _ := selectorMatchers(o.Selector)
	a := &analyzer{opts: o, missing: map[string]int{}}

	// Extra queries are run once, whole; their series join the instances
	// their labels name as those come by.
	extra := map[string][]namedStream{}
	for _, q := range o.Queries {
		m, warn, err := c.queryRange(ctx, q.PromQL)
		if err != nil {
			return nil, err
		}
		a.warn(warn)
		if len(m) == 0 {
			return nil, fmt.Errorf("query %s (%s): no series over the last %v at %s", q.Name, q.PromQL, o.Range, o.URL)
		}
		for _, s := range m {
			id := identity(s.Metric, "")
			extra[id] = append(extra[id], namedStream{name: q.Name, unit: q.Name, values: s.Values})
		}
	}

	values, byInstance, warn, err := c.instances(ctx, sel)
	if err != nil {
		return nil, err
	}
	a.warn(warn)
	if len(values) == 0 && byInstance && len(o.Queries) == 0 {
		what := "any instance"
		if o.Selector != "" {
			what = "selector " + o.Selector
		}
		return nil, fmt.Errorf("prometheus at %s has no process_*, go_* or leakcheck_tracker_* series for %s over the last %v", o.URL, what, o.Range)
	}
	// The default metrics are read through remote read, which sends the
	// stored chunks, unless the server refuses it or the selector is
	// beyond the small parser remote read's matchers need; then through
	// the query API.
	remote := !o.queryAPIOnly
	selMatchers, err := parseMatchers(sel)
	a.via = "remote read (streamed chunks)"
	switch {
	case o.queryAPIOnly:
		a.via = "the query API (query_range)"
	case err != nil:
		remote = false
		a.via = fmt.Sprintf("the query API (query_range), as the selector is beyond remote read's matchers: %v", err)
	}
	var batches []batch
	switch {
	case !byInstance:
		batches = []batch{{promql: sel, remote: selMatchers}}
	default:
		for b := range slices.Chunk(values, o.Batch) {
			batches = append(batches, batch{
				promql: strings.Join(nonEmpty(sel, instanceMatcher(b)), ","),
				remote: append(slices.Clip(selMatchers), instanceRemoteMatcher(b)),
			})
		}
	}
	metrics := defaultMetrics()
	fetch := func(ctx context.Context, b batch) ([]fetched, error) {
		if remote {
			return c.readBatch(ctx, metrics, b.remote)
		}
		return c.fetchAll(ctx, metrics, b.promql)
	}
	// The first batch says whether remote read is offered; the others are
	// fetched ahead while the one before is analysed.
	if remote && len(batches) > 0 {
		answers, err := fetch(ctx, batches[0])
		if isRefused(err) {
			remote = false
			a.via = fmt.Sprintf("the query API (query_range), as prometheus at %s refused remote read (%v)", o.URL, err)
			answers, err = fetch(ctx, batches[0])
		}
		if err != nil {
			return nil, err
		}
		batches[0].answers = answers
	}
	for answers, err := range prefetch(ctx, batches, o.Concurrency, fetch) {
		if err != nil {
			return nil, err
		}
		insts := map[string]*instance{}
		var order []string
		for _, f := range answers {
			a.warn(f.warning)
			for _, s := range f.matrix {
				id := identity(s.Metric, f.metric.byLabel)
				in := insts[id]
				if in == nil {
					in = &instance{id: id}
					insts[id] = in
					order = append(order, id)
				}
				in.add(f.metric, s)
			}
		}
		for _, id := range order {
			in := insts[id]
			// An extra query may name the instance by its instance
			// label alone (sum by (instance) (...)).
			short, _, _ := strings.Cut(id, " ")
			in.extra = append(extra[id], extra[short]...)
			delete(extra, id)
			delete(extra, short)
			a.analyse(in)
		}
	}
	// Extra series of instances the default set did not see.
	ids := make([]string, 0, len(extra))
	for id := range extra {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		a.analyse(&instance{id: id, extra: extra[id]})
	}
	if a.instances == 0 {
		return nil, fmt.Errorf("prometheus at %s: no instance to analyse over the last %v", o.URL, o.Range)
	}
	return a.result(), nil
}

// batch is one request's worth of instances.
type batch struct {
	promql  string         // matchers for the query API
	remote  []labelMatcher // the same for remote read
	answers []fetched      // when already fetched
}

// prefetch yields the answers to the batches in order, fetching up to ahead
// batches beyond the one being consumed, so that reading the next batches
// overlaps analysing this one while memory stays bounded by a few batches.
// It stops at the first error, which it yields.
func prefetch(ctx context.Context, batches []batch, ahead int, fetch func(context.Context, batch) ([]fetched, error)) iter.Seq2[[]fetched, error] {
	type answer struct {
		fetched []fetched
		err     error
	}
	return func(yield func([]fetched, error) bool) {
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		pending := make(chan chan answer, max(ahead-1, 0))
		go func() {
			defer close(pending)
			for _, b := range batches {
				ch := make(chan answer, 1)
				select {
				case pending <- ch:
				case <-ctx.Done():
					return
				}
				if b.answers != nil {
					ch <- answer{fetched: b.answers}
					continue
				}
				go func() {
					f, err := fetch(ctx, b)
					ch <- answer{f, err}
				}()
			}
		}()
		for ch := range pending {
			a := <-ch
			if !yield(a.fetched, a.err) || a.err != nil {
				return
			}
		}
	}
}

func nonEmpty(ss ...string) []string {
	return slices.DeleteFunc(ss, func(s string) bool { return s == "" })
}

// identity names an instance by its labels, without the metric name and the
// label that names a series within it: its instance label first, then the
// others in braces, e.g. `10.0.0.7:9100 {job="api"}`.
func identity(m model.Metric, byLabel string) string {
	ls := make(model.LabelSet, len(m))
	for k, v := range m {
		if k == model.MetricNameLabel || k == model.InstanceLabel || string(k) == byLabel {
			continue
		}
		ls[k] = v
	}
	inst, ok := m[model.InstanceLabel]
	switch {
	case !ok:
		return ls.String()
	case len(ls) == 0:
		return string(inst)
	}
	return string(inst) + " " + ls.String()
}

// namedStream is one resource series of an instance.
type namedStream struct {
	name, unit, source string
	values             []model.SamplePair
}

// instance gathers the series of one instance.
type instance struct {
	id        string
	resources []namedStream
	extra     []namedStream
	start     []model.SamplePair
	counters  [][]model.SamplePair
	limits    map[string][]model.SamplePair // by resource
	has       map[string]bool               // by metric source
}

func (in *instance) add(m metric, s *model.SampleStream) {
	if in.has == nil {
		in.has = map[string]bool{}
	}
	in.has[m.source] = true
	switch m.role {
	case roleStart:
		in.start = append(in.start, s.Values...)
	case roleCounter:
		in.counters = append(in.counters, s.Values)
	case roleLimit:
		if in.limits == nil {
			in.limits = map[string][]model.SamplePair{}
		}
		in.limits[m.limitOf] = s.Values
	default:
		name := m.name
		if m.byLabel != "" {
			name += "." + string(s.Metric[model.LabelName(m.byLabel)])
		}
		in.resources = append(in.resources, namedStream{name: name, unit: m.unit, source: m.source, values: s.Values})
	}
}

// analyzer accumulates the verdicts over the batches.
type analyzer struct {
	opts      Options
	leaks     []leak
	instances int
	points    int
	missing   map[string]int // instances without a default metric, by metric
	warnings  []string
	via       string // how the default metrics were read, for a note
}

func (a *analyzer) warn(ws []string) {
	for _, w := range ws {
		if !slices.Contains(a.warnings, w) {
			a.warnings = append(a.warnings, w)
		}
	}
}

// verdict is the outcome for one resource of one instance.
type verdict struct {
	stream  namedStream
	points  []report.Point
	runs    int // runs of the process seen in the series
	tested  int // runs long enough to test
	growing int // runs found growing
	// decisive is the trend of the run that decided: the last growing one.
	decisive report.Trend
	// runSeries are the runs as series, each with its trend, when the
	// process restarted: a chart then shows each run and its fit.
	runSeries    []report.Series
	decisiveName string // the series that shows the decisive run
	sawtooth     bool   // grows in most runs, and restarts cut it down
	leaking      bool
	last         float64 // the latest value
	limit        float64 // 0 when there is none
	toLimit      time.Duration
	relRate      float64 // slope per hour relative to the median level
}

// leak is one leaking instance: its resources that grow, most urgent first.
type leak struct {
	instance string
	grows    []verdict
	restarts int
	interval time.Duration // median duration of the complete runs
	series   []report.Series
}

// analyse decides for each resource of in whether it leaks.
func (a *analyzer) analyse(in *instance) {
	a.instances++
	for _, m := range defaultMetrics() {
		if !m.optional && !in.has[m.source] && len(in.resources) > 0 {
			a.missing[m.source]++
		}
	}
	a.points += len(in.start)
	for _, c := range in.counters {
		a.points += len(c)
	}
	for _, l := range in.limits {
		a.points += len(l)
	}
	restarts := restartTimes(in.start, in.counters, a.opts.Step)
	var verdicts []verdict
	for _, s := range slices.Concat(in.resources, in.extra) {
		a.points += len(s.values)
		v := a.judge(s, restarts, in.limits[s.name])
		if v.leaking {
			verdicts = append(verdicts, v)
		}
	}
	if len(verdicts) == 0 {
		return
	}
	slices.SortStableFunc(verdicts, compareUrgency)
	for i := range verdicts {
		v := &verdicts[i]
		v.decisiveName = seriesName(v.stream.name, in.id)
		if v.runs > 1 {
			v.runSeries, v.decisiveName = a.runSeries(v, restarts, in.id)
		}
	}
	l := leak{instance: in.id, grows: verdicts, restarts: len(restarts), interval: medianRun(in, restarts)}
	for _, v := range verdicts {
		if len(v.runSeries) > 0 {
			l.series = append(l.series, v.runSeries...)
			continue
		}
		t := v.decisive
		l.series = append(l.series, report.Series{Name: v.decisiveName, Unit: v.stream.unit, Owner: in.id, Points: v.points, Trend: &t})
	}
	a.leaks = append(a.leaks, l)
}

// runSeries returns each run of v's series as a series with its own trend,
// and the name of the one that decided the verdict.
func (a *analyzer) runSeries(v *verdict, restarts []time.Time, id string) ([]report.Series, string) {
	runs := split(v.points, restarts)
	out := make([]report.Series, 0, len(runs))
	decisive := ""
	for i, run := range runs {
		tr := report.AnalyzeTrend(run, a.opts.Trend)
		name := fmt.Sprintf("%s, run %d of %d", seriesName(v.stream.name, id), i+1, len(runs))
		if tr.Verdict == report.VerdictGrowing && tr.Window == v.decisive.Window {
			decisive = name
		}
		out = append(out, report.Series{Name: name, Unit: v.stream.unit, Owner: id, Points: run, Trend: &tr})
	}
	return out, decisive
}

// compareUrgency orders verdicts by time to their limit (those with one
// first, soonest first), then by growth relative to their level.
func compareUrgency(x, y verdict) int {
	switch {
	case x.toLimit > 0 && y.toLimit > 0:
		if c := cmp.Compare(x.toLimit, y.toLimit); c != 0 {
			return c
		}
	case x.toLimit > 0:
		return -1
	case y.toLimit > 0:
		return 1
	}
	return cmp.Compare(y.relRate, x.relRate)
}

// judge splits a series at the restarts and tests each run.
func (a *analyzer) judge(s namedStream, restarts []time.Time, limit []model.SamplePair) verdict {
	v := verdict{stream: s, points: toPoints(s.values)}
	if len(v.points) == 0 {
		return v
	}
	v.last = v.points[len(v.points)-1].Value
	runs := split(v.points, restarts)
	v.runs = len(runs)
	lastTested := -1
	growingLast := false
	for i, run := range runs {
		tr := report.AnalyzeTrend(run, a.opts.Trend)
		if tr.Verdict == report.VerdictNotEnoughData {
			continue
		}
		v.tested++
		lastTested = i
		growingLast = tr.Verdict == report.VerdictGrowing && material(s, run, tr)
		if growingLast {
			v.growing++
			v.decisive = tr
		}
	}
	if lastTested < 0 {
		return v
	}
	v.sawtooth = v.runs > 1 && v.growing >= 2 && 2*v.growing >= v.tested
	v.leaking = growingLast || v.sawtooth
	if !v.leaking {
		return v
	}
	slope := v.decisive.Window.SlopePerHour
	vals := make([]float64, len(v.points))
	for i, p := range v.points {
		vals[i] = p.Value
	}
	if med := median(vals); med > 0 {
		v.relRate = slope / med
	}
	if len(limit) > 0 {
		v.limit = float64(limit[len(limit)-1].Value)
		if slope > 0 && v.limit > v.last {
			v.toLimit = time.Duration((v.limit - v.last) / slope * float64(time.Hour))
		}
	}
	return v
}

// material reports whether a growing run rose enough to matter: a few
// descriptors, goroutines or records, and for memory at least 4MiB and a
// tenth of its level, so that a young process's heap settling is no leak.
func material(s namedStream, run []report.Point, tr report.Trend) bool {
	hours := run[len(run)-1].Time.Sub(tr.Window.From).Hours()
	rise := tr.Window.SlopePerHour * hours
	if s.unit == "bytes" {
		vals := make([]float64, len(run))
		for i, p := range run {
			vals[i] = p.Value
		}
		return rise >= max(4<<20, median(vals)/10)
	}
	return rise >= 3
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if n := len(s); n%2 == 1 {
		return s[n/2]
	} else {
		return (s[n/2-1] + s[n/2]) / 2
	}
}

func toPoints(vs []model.SamplePair) []report.Point {
	pts := make([]report.Point, 0, len(vs))
	for _, v := range vs {
		f := float64(v.Value)
		if math.IsNaN(f) || math.IsInf(f, 0) {
			continue
		}
		pts = append(pts, report.Point{Time: v.Timestamp.Time().UTC(), Value: f})
	}
	slices.SortStableFunc(pts, func(a, b report.Point) int { return a.Time.Compare(b.Time) })
	return pts
}

// restartTimes returns when a new process started: where the start time
// changes, or a counter falls. Restarts closer than two steps are one.
func restartTimes(start []model.SamplePair, counters [][]model.SamplePair, step time.Duration) []time.Time {
	var ts []time.Time
	for i := 1; i < len(start); i++ {
		if math.Abs(float64(start[i].Value-start[i-1].Value)) > 0.5 {
			ts = append(ts, start[i].Timestamp.Time())
		}
	}
	for _, c := range counters {
		for i := 1; i < len(c); i++ {
			if c[i].Value < c[i-1].Value {
				ts = append(ts, c[i].Timestamp.Time())
			}
		}
	}
	slices.SortFunc(ts, time.Time.Compare)
	out := ts[:0]
	for _, t := range ts {
		if len(out) > 0 && t.Sub(out[len(out)-1]) < 2*step {
			continue
		}
		out = append(out, t)
	}
	return out
}

// split cuts points (in time order) into runs at the restarts.
func split(points []report.Point, restarts []time.Time) [][]report.Point {
	var runs [][]report.Point
	from := 0
	for _, r := range restarts {
		to := from
		for to < len(points) && points[to].Time.Before(r) {
			to++
		}
		if to > from {
			runs = append(runs, points[from:to])
		}
		from = to
	}
	if from < len(points) {
		runs = append(runs, points[from:])
	}
	return runs
}

// medianRun is the median time between the instance's restarts, over the
// runs bounded by two of them; 0 with fewer than two restarts.
func medianRun(in *instance, restarts []time.Time) time.Duration {
	if len(restarts) < 2 {
		return 0
	}
	ds := make([]float64, 0, len(restarts)-1)
	for i := 1; i < len(restarts); i++ {
		ds = append(ds, float64(restarts[i].Sub(restarts[i-1])))
	}
	return time.Duration(median(ds))
}

// result turns the leaks into findings, series, a table and notes.
func (a *analyzer) result() *Result {
	r := &Result{Instances: a.instances, Points: a.points}
	slices.SortStableFunc(a.leaks, func(x, y leak) int {
		if c := compareUrgency(x.grows[0], y.grows[0]); c != 0 {
			return c
		}
		return cmp.Compare(x.instance, y.instance)
	})
	table := report.Table{
		Title:   "leaking instances, most urgent first",
		Columns: []string{"INSTANCE", "LEAK", "NOW", "LIMIT", "RATE/H", "TIME TO LIMIT", "RESTARTS", "ALSO GROWING"},
		Rows:    [][]string{},
	}
	for _, l := range a.leaks {
		r.Findings = append(r.Findings, l.finding())
		r.Series = append(r.Series, l.series...)
		p := l.grows[0]
		limit, toLimit := "-", "-"
		if p.limit > 0 {
			limit = formatValue(p.limit, p.stream.unit)
		}
		if p.toLimit > 0 {
			toLimit = toDuration(p.toLimit)
		}
		restarts := strconv.Itoa(l.restarts)
		if p.sawtooth && l.interval > 0 {
			restarts += " (every " + toDuration(l.interval) + ")"
		}
		var also []string
		for _, v := range l.grows[1:] {
			also = append(also, v.stream.name)
		}
		table.Rows = append(table.Rows, []string{
			l.instance, p.stream.name, formatValue(p.last, p.stream.unit), limit,
			formatValue(p.decisive.Window.SlopePerHour, p.stream.unit), toLimit, restarts, cmp.Or(strings.Join(also, ", "), "-"),
		})
	}
	r.Tables = append(r.Tables, table)
	r.Notes = append(r.Notes, fmt.Sprintf("%d instances analysed from %s over %v at a %v step (%d points): %d leaking",
		a.instances, a.opts.URL, a.opts.Range, a.opts.Step, a.points, len(a.leaks)))
	if a.via != "" {
		r.Notes = append(r.Notes, "series read through "+a.via)
	}
	sources := make([]string, 0, len(a.missing))
	for s := range a.missing {
		sources = append(sources, s)
	}
	slices.Sort(sources)
	for _, s := range sources {
		n := a.missing[s]
		if n == a.instances {
			r.Notes = append(r.Notes, fmt.Sprintf("no instance has %s", s))
			continue
		}
		r.Notes = append(r.Notes, fmt.Sprintf("%s is missing on %d of %d instances", s, n, a.instances))
	}
	for _, w := range a.warnings {
		r.Notes = append(r.Notes, "prometheus warns: "+w)
	}
	return r
}

// seriesName names the series of a resource of an instance in the report.
func seriesName(resource, instance string) string { return resource + " of " + instance }

// finding makes the leak one finding.
func (l leak) finding() report.Finding {
	p := l.grows[0]
	subject := p.stream.name + " of " + l.instance
	if p.sawtooth {
		subject += ", restarted before it runs out"
	}
	values := map[string]float64{
		"slope_per_hour": p.decisive.Window.SlopePerHour,
		"value":          p.last,
	}
	if l.restarts > 0 {
		values["restarts"] = float64(l.restarts)
		values["runs_growing"] = float64(p.growing)
		values["runs_tested"] = float64(p.tested)
	}
	if p.limit > 0 {
		values["limit"] = p.limit
	}
	if p.toLimit > 0 {
		values["time_to_limit_seconds"] = p.toLimit.Seconds()
	}
	if l.interval > 0 {
		values["restart_interval_seconds"] = l.interval.Seconds()
	}
	for _, v := range l.grows[1:] {
		values[v.stream.name+"_slope_per_hour"] = v.decisive.Window.SlopePerHour
	}
	sev := report.SeverityWarning
	if p.sawtooth || p.toLimit > 0 && p.toLimit <= 24*time.Hour {
		sev = report.SeverityError
	}
	t := p.decisive
	return report.Finding{
		Kind:       report.KindGrowth,
		Severity:   sev,
		Subject:    subject,
		Owner:      l.instance,
		Count:      1,
		Evidence:   report.Evidence{Values: values, Series: p.decisiveName, Trend: &t},
		Suggestion: suggestion(l, p),
		Signature:  report.Signature(report.KindGrowth, "prometheus\x00"+l.instance+"\x00"+p.stream.name, nil),
	}
}

// suggestion says what to do about a leak.
func suggestion(l leak, p verdict) string {
	var what string
	switch {
	case p.stream.name == "fds":
		what = "descriptors leak: take `leakcheck watch PID` on this instance to see which kind (socket, pipe, file) grows"
	case p.stream.name == "goroutines":
		what = "goroutines leak: fetch /debug/pprof/goroutine?debug=2 twice and run `leakcheck report` on both"
	case p.stream.name == "threads":
		what = "OS threads leak: look for blocking syscalls or cgo calls that never return, or LockOSThread without UnlockOSThread"
	case p.stream.unit == "bytes":
		what = "memory grows: take two heap profiles hours apart and run `leakcheck report` on them"
	case strings.HasPrefix(p.stream.name, "tracker."):
		what = "tracked records grow: fetch the tracker's snapshot (/debug/leakcheck/) for their owners and stacks"
	default:
		what = p.stream.name + " grows: find what adds to it and is never removed"
	}
	if len(l.grows) > 1 {
		what += fmt.Sprintf("; %d other series grow with it, likely the same leak", len(l.grows)-1)
	}
	if p.sawtooth && l.interval > 0 {
		what += fmt.Sprintf("; restarts every ~%s hide it", toDuration(l.interval))
	}
	return what
}

// formatValue prints v in its unit: bytes in KiB/MiB/GiB.
func formatValue(v float64, unit string) string {
	if unit == "bytes" {
		a := math.Abs(v)
		switch {
		case a >= 1<<30:
			return fmt.Sprintf("%.1fGiB", v/(1<<30))
		case a >= 1<<20:
			return fmt.Sprintf("%.1fMiB", v/(1<<20))
		case a >= 1<<10:
			return fmt.Sprintf("%.1fKiB", v/(1<<10))
		}
	}
	return strconv.FormatFloat(v, 'g', 4, 64)
}
