package cmd

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/leakcheck/leakcheck/probes/bounded"
	"github.com/leakcheck/leakcheck/report"
	"github.com/leakcheck/leakcheck/tracker"
)

// defaultReportFailOn is the --fail-on default of `leakcheck report`: what
// its inputs show as leaks for certain, or growing.
const defaultReportFailOn = "leftover,growth,goroutine"

type reportOptions struct {
	base        string
	sampleIndex string
	format      string
	output      string
	failOn      report.Policy
	ignore      string
	every       time.Duration
	count       int
	save        string
	timeout     time.Duration
	maxSize     string
	top         int
	minGrowth   string
	atExit      bool
	blockedFor  time.Duration
	inputs      []string
}

func newReportCommand() *cobra.Command {
	opts := reportOptions{}
	opts.failOn, _ = report.ParsePolicy(defaultReportFailOn)
	c := &cobra.Command{
		Use:   "report [flags] INPUT...",
		Short: "Analyse heap and goroutine profiles, tracker snapshots and saved reports",
		Long: `report reads each INPUT, a file or an http(s) URL, recognizes it by its content,
and reports where memory is held, what grows, and which goroutines are stuck.

Inputs:
  heap profiles       gzipped protocol buffers (heap?debug=0) or the legacy text
                      form (heap?debug=1)
  goroutine profiles  protocol buffer (debug=0), debug=1 and debug=2 texts, crash
                      dumps, and the goroutineleak profile (leaks by construction)
  tracker profiles    leakcheck's profiles of live records (tracker.WriteProfile)
  tracker snapshots   leakcheck's JSON snapshots and exit reports
  reports             leakcheck's own JSON reports: re-rendered, merged with the rest

Heap (and tracker) profiles of one process:
  one profile         the top holders by function and by allocation site (--top)
  two, or --base      the growth of each allocation site from the base (or the
                      older) to the target, by --sample-index; sites that grew by
                      --min-growth or more are growth findings
  three or more       ordered by the time in each profile; every site's series is
                      trend-tested, and a site that keeps growing is a growth
                      finding. The trend test needs 12 profiles: fewer are judged
                      like two, the first against the last
A site is the first frame of the program's own code; a map or slice that keeps
growing is named as such at the function that assigns or appends. The default
--min-growth is 1MiB for bytes, 1000 objects, 10 tracker records.

Goroutine dumps are grouped by stack and state; goroutines blocked longer than
--blocked-for, in large groups, or leaked are findings, and several dumps of one
process make series by stack. Tracker snapshots give their leftovers, misuse,
cycles and growing gauges; with --at-exit, every live record is a leftover.

With --every, each URL is polled --count times and the profiles collected are
analysed as a series; --save keeps them. Interrupting stops the polling early.

Exit status: 0 nothing fails --fail-on (default ` + defaultReportFailOn + `);
3 findings fail it; 2 usage or input error.`,
		Example: `  leakcheck report heap.pb.gz
  leakcheck report --base before.pb.gz after.pb.gz
  leakcheck report --fail-on growth --min-growth 4MiB base.pb.gz new.pb.gz
  leakcheck report heap-*.pb.gz                      # a series, by time
  leakcheck report goroutines.txt snapshot.json
  leakcheck report --every 30s --count 16 --save profiles/ 'http://127.0.0.1:6060/debug/pprof/heap?gc=1'
  leakcheck report --format json -o report.json heap.pb.gz && leakcheck report report.json`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			opts.inputs = args
			ctx := c.Context()
			if ctx == nil {
				ctx = context.Background()
			}
			if opts.every > 0 {
				// Interrupting a poll ends it; what was collected is
				// still analysed.
				var stop context.CancelFunc
				ctx, stop = signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
				defer stop()
			}
			code, err := runReport(ctx, opts, c.OutOrStdout(), c.ErrOrStderr())
			if err != nil || code != 0 {
				return &exitError{code: code, err: err}
			}
			return nil
		},
	}
	f := c.Flags()
	f.StringVar(&opts.base, "base", "", "heap or tracker profile to compare the others with")
	f.StringVar(&opts.sampleIndex, "sample-index", "", "heap sample type to rank and compare by: inuse_space (default), inuse_objects, alloc_space, alloc_objects")
	f.StringVar(&opts.format, "format", report.DefaultFormat, "output format: "+strings.Join(report.Formats(), ", "))
	f.StringVarP(&opts.output, "output", "o", "", "write the report to this file instead of stdout")
	f.Var(&opts.failOn, "fail-on", "finding kinds (and severity>=LEVEL) that fail: e.g. growth, all, none")
	f.StringVar(&opts.ignore, "ignore", "", "file of rules suppressing known findings")
	f.DurationVar(&opts.every, "every", 0, "poll each URL at this interval, --count times")
	f.IntVar(&opts.count, "count", report.DefaultMinSamples, "with --every: how many times to poll")
	f.StringVar(&opts.save, "save", "", "with --every: keep the polled profiles in this directory")
	f.DurationVar(&opts.timeout, "timeout", report.DefaultFetchTimeout, "time limit on each fetch of a URL")
	f.StringVar(&opts.maxSize, "max-size", "256MiB", "largest input accepted, read and decompressed")
	f.IntVar(&opts.top, "top", 20, "rows in each table, and most growth findings per analysis")
	f.StringVar(&opts.minGrowth, "min-growth", "", "least growth of a site between two profiles that is a finding, e.g. 4MiB or 5000 (default by unit)")
	f.BoolVar(&opts.atExit, "at-exit", false, "tracker snapshots were taken at exit: every live record is a leftover")
	f.DurationVar(&opts.blockedFor, "blocked-for", report.DefaultBlockedFor, "goroutines blocked at least this long are findings")
	return c
}

// runReport reads the inputs, analyses them, writes the report, and returns
// the exit code the fail policy gives.
func runReport(ctx context.Context, opts reportOptions, stdout, stderr io.Writer) (int, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	heapOpts, inOpts, rules, err := checkReportOptions(opts)
	if err != nil {
		return report.ExitUsage, err
	}
	inputs, notes, err := loadInputs(ctx, opts, inOpts, stderr)
	if err != nil {
		return report.ExitUsage, err
	}
	a, err := analyse(inputs, opts, heapOpts)
	if err != nil {
		return report.ExitUsage, err
	}
	r := report.New(a.findings, a.series, rules)
	r.Tables = a.tables
	r.Time = time.Now()
	r.Policy = opts.failOn.String()
	r.Metadata = map[string]string{"inputs": describeInputs(inputs)}
	for i, n := range slices.Concat(notes, a.notes) {
		r.Metadata[fmt.Sprintf("note %d", i+1)] = n
	}
	if err := writeReport(stdout, r, opts.output, opts.format); err != nil {
		return report.ExitUsage, err
	}
	return opts.failOn.ExitCode(r.Findings), nil
}

// checkReportOptions validates the flags and turns them into the report
// package's options.
func checkReportOptions(opts reportOptions) (report.HeapOptions, report.InputOptions, []report.IgnoreRule, error) {
	var (
		h   report.HeapOptions
		in  report.InputOptions
		err error
	)
	if err := checkFormat(opts.format); err != nil {
		return h, in, nil, err
	}
	if opts.top < 1 {
		return h, in, nil, fmt.Errorf("--top %d: want at least 1", opts.top)
	}
	if opts.every < 0 || opts.every > 0 && opts.count < 1 {
		return h, in, nil, errors.New("--every wants a positive interval and --count at least 1")
	}
	if opts.save != "" && opts.every == 0 {
		return h, in, nil, errors.New("--save keeps polled profiles: it needs --every")
	}
	if opts.timeout <= 0 {
		return h, in, nil, errors.New("--timeout must be positive")
	}
	if in.MaxSize, err = parseSize(opts.maxSize); err != nil || in.MaxSize <= 0 {
		return h, in, nil, fmt.Errorf("--max-size %q: want a positive size such as 64MiB", opts.maxSize)
	}
	in.Timeout = opts.timeout
	if opts.minGrowth != "" {
		if h.MinGrowth, err = parseSize(opts.minGrowth); err != nil || h.MinGrowth <= 0 {
			return h, in, nil, fmt.Errorf("--min-growth %q: want a positive amount such as 4MiB or 5000", opts.minGrowth)
		}
	}
	h.SampleIndex, h.Top = opts.sampleIndex, opts.top
	rules, err := report.ReadIgnoreFile(opts.ignore)
	return h, in, rules, err
}

// parseSize reads a count or a size in bytes: "5000", "512KiB", "4MiB",
// "1GiB", or with the decimal units kB, MB and GB.
func parseSize(s string) (int64, error) {
	s = strings.TrimSpace(s)
	num := strings.TrimRightFunc(s, func(r rune) bool { return r < '0' || r > '9' })
	unit := strings.TrimSpace(s[len(num):])
	mult := map[string]int64{
		"": 1, "B": 1,
		"KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30,
		"kB": 1e3, "KB": 1e3, "MB": 1e6, "GB": 1e9,
	}[unit]
	if mult == 0 {
		return 0, fmt.Errorf("unknown unit %q in %q (want KiB, MiB, GiB, kB, MB or GB)", unit, s)
	}
	if num == "" || strings.TrimLeft(num, "0123456789") != "" {
		return 0, fmt.Errorf("size %q: want digits and a unit", s)
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("size %q: %w", s, err)
	}
	if n > (1<<63-1)/mult {
		return 0, fmt.Errorf("size %q is too large", s)
	}
	return n * mult, nil
}

// sourced is an input and its source, which groups the inputs of one
// process: the files named on the command line are one source, each polled
// URL another.
type sourced struct {
	*report.Input
	source string
}

// loadInputs reads the files and URLs, polling the URLs with --every. It
// returns notes on polls that failed.
func loadInputs(ctx context.Context, opts reportOptions, inOpts report.InputOptions, stderr io.Writer) ([]sourced, []string, error) {
	var (
		out   []sourced
		urls  []string
		notes []string
	)
	// Profiles are kept as values by site, in one table of sites: a long
	// series costs little more than one profile.
	sites := report.NewSiteTable(report.HeapOptions{SampleIndex: opts.sampleIndex, Top: opts.top})
	profiles := 0
	names := opts.inputs
	if opts.base != "" {
		names = append([]string{opts.base}, names...)
	}
	for _, name := range names {
		if opts.every > 0 && isURL(name) {
			if name == opts.base {
				return nil, nil, fmt.Errorf("--base %s: a base is read once; give a file, or poll without --base", name)
			}
			urls = append(urls, name)
			continue
		}
		// A profile read is garbage once summarized, but for its values
		// by site: in a series of three or more, collect each before the
		// next is read and before the analysis, so that the heap's goal
		// is set by what is kept and a series peaks at one profile's
		// parse, not two. (A base and a target are not worth it.)
		if profiles == 2 {
			runtime.GC()
		}
		in, err := report.ReadInput(ctx, name, inOpts)
		if err == nil && (in.Kind == report.InputHeap || in.Kind == report.InputTrackerProfile) {
			err = in.Summarize(sites)
			if profiles++; profiles >= 3 {
				runtime.GC()
			}
		}
		if err != nil {
			return nil, nil, err
		}
		out = append(out, sourced{in, ""})
	}
	if len(urls) == 0 {
		if opts.every > 0 {
			return nil, nil, errors.New("--every polls URLs, and no input is an http(s) URL")
		}
		return out, nil, nil
	}
	if opts.save != "" {
		if err := os.MkdirAll(opts.save, 0o755); err != nil {
			return nil, nil, fmt.Errorf("--save: %w", err)
		}
	}
	polled, notes, err := poll(ctx, urls, opts, inOpts, sites, stderr)
	if err != nil {
		return nil, nil, err
	}
	return append(out, polled...), notes, nil
}

func isURL(name string) bool {
	return strings.HasPrefix(name, "http://") || strings.HasPrefix(name, "https://")
}

// poll fetches every URL --count times, --every apart, until ctx ends. A
// failed fetch is reported on stderr and skipped; a URL that never answered
// is an error.
func poll(ctx context.Context, urls []string, opts reportOptions, inOpts report.InputOptions, sites *report.SiteTable, stderr io.Writer) ([]sourced, []string, error) {
	inOpts.Client = &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
	inOpts.KeepRaw = opts.save != ""
	defer inOpts.Client.CloseIdleConnections()
	var (
		out    []sourced
		failed = map[string]int{}
		got    = map[string]int{}
		errs   = map[string]error{}
	)
	tick := time.NewTicker(opts.every)
	defer tick.Stop()
	status := newStatusLine(stderr)
polls:
	for i := 1; i <= opts.count; i++ {
		for _, u := range urls {
			in, err := report.ReadInput(ctx, u, inOpts)
			if ctx.Err() != nil {
				break polls
			}
			if err != nil {
				failed[u]++
				errs[u] = err
				fmt.Fprintf(stderr, "leakcheck: poll %d of %d: %v\n", i, opts.count, err)
				continue
			}
			got[u]++
			in.Name = fmt.Sprintf("%s [%d]", u, i)
			if opts.save != "" {
				name, err := saveInput(opts.save, u, i, in)
				if err != nil {
					return nil, nil, err
				}
				in.Name, in.Raw = name, nil
			}
			if err := in.Summarize(sites); err != nil {
				return nil, nil, err
			}
			out = append(out, sourced{in, u})
		}
		if status.w != nil {
			fmt.Fprintf(status.w, "\r\x1b[Kleakcheck: poll %d of %d", i, opts.count)
			status.shown = true
		}
		if i == opts.count {
			break
		}
		select {
		case <-ctx.Done():
			break polls
		case <-tick.C:
		}
	}
	status.clear()
	var notes []string
	for _, u := range urls {
		if got[u] == 0 {
			if err := errs[u]; err != nil {
				return nil, nil, fmt.Errorf("no poll of %s succeeded: %w", u, err)
			}
			return nil, nil, fmt.Errorf("%s was not polled: interrupted", u)
		}
		if n := failed[u]; n > 0 {
			notes = append(notes, fmt.Sprintf("%d of %d polls of %s failed (last: %v)", n, n+got[u], u, errs[u]))
		}
	}
	return out, notes, nil
}

// saveInput writes a polled input into dir as it was received, named after
// the URL's last path element, the poll's number and the content:
// "heap-003.pb.gz", "goroutine-003.txt", "snapshot.json-003.json".
func saveInput(dir, rawURL string, n int, in *report.Input) (string, error) {
	base := "profile"
	if u, err := url.Parse(rawURL); err == nil && path.Base(u.Path) != "/" && path.Base(u.Path) != "." {
		base = path.Base(u.Path)
	}
	base = strings.Map(func(r rune) rune {
		if r == '/' || r == '\\' || r < ' ' {
			return '_'
		}
		return r
	}, base)
	ext := ".txt"
	switch {
	case bounded.IsGzip(in.Raw):
		ext = ".pb.gz"
	case in.Snapshot != nil || in.Report != nil:
		ext = ".json"
	case in.Profile != nil || in.Goroutines != nil && in.Goroutines.Form == "proto":
		ext = ".pb"
	}
	name := filepath.Join(dir, fmt.Sprintf("%s-%03d%s", base, n, ext))
	if err := os.WriteFile(name, in.Raw, 0o644); err != nil {
		return "", fmt.Errorf("--save: %w", err)
	}
	// The saved file keeps the time the profile was taken, so that a later
	// `leakcheck report` of the directory orders files without a time of
	// their own (legacy text, goroutine dumps) as they were polled.
	os.Chtimes(name, in.Time, in.Time)
	return name, nil
}

// describeInputs says how many inputs of each kind the report read.
func describeInputs(inputs []sourced) string {
	counts := map[report.InputKind]int{}
	var kinds []report.InputKind
	for _, in := range inputs {
		k := in.Kind
		if k == report.InputGoroutine && in.Goroutines.Leak {
			k = "goroutineleak"
		}
		if counts[k] == 0 {
			kinds = append(kinds, k)
		}
		counts[k]++
	}
	var parts []string
	for _, k := range kinds {
		parts = append(parts, fmt.Sprintf("%d %s", counts[k], k))
	}
	return strings.Join(parts, ", ")
}

// analysis is everything the analyses found, to be made a report.
type analysis struct {
	findings []report.Finding
	series   []report.Series
	tables   []report.Table
	notes    []string
}

// analyse runs the analyses each kind of input asks for.
func analyse(inputs []sourced, opts reportOptions, heapOpts report.HeapOptions) (*analysis, error) {
	a := &analysis{}
	var base *report.Input
	if opts.base != "" {
		base = inputs[0].Input
		if base.Kind != report.InputHeap && base.Kind != report.InputTrackerProfile {
			return nil, fmt.Errorf("--base %s: a %s, not a heap or tracker profile", base.Name, base.Kind)
		}
		inputs = inputs[1:]
	}
	for _, group := range groupInputs(inputs) {
		switch group[0].Kind {
		case report.InputHeap, report.InputTrackerProfile:
			profiles := group
			if base != nil && base.Kind == group[0].Kind {
				profiles = append([]*report.Input{base}, group...)
				base = nil
			}
			pa, err := report.AnalyzeProfiles(profiles, heapOpts)
			if err != nil {
				return nil, err
			}
			a.findings = append(a.findings, pa.Findings...)
			a.series = append(a.series, pa.Series...)
			a.tables = append(a.tables, pa.Tables...)
			a.notes = append(a.notes, pa.Notes...)
		case report.InputGoroutine:
			analyseGoroutines(a, group, opts)
		case report.InputSnapshot:
			analyseSnapshots(a, group, opts)
		case report.InputReport:
			for _, in := range group {
				r := in.Report
				a.findings = append(a.findings, r.Findings...)
				a.series = append(a.series, r.Series...)
				a.tables = append(a.tables, r.Tables...)
			}
		}
	}
	if base != nil {
		return nil, fmt.Errorf("--base %s: no %s to compare it with", base.Name, base.Kind)
	}
	return a, nil
}

// groupInputs groups the inputs by source and kind, each group in time order
// (inputs with equal times stay in command-line order), the groups in the
// order their first inputs came.
func groupInputs(inputs []sourced) [][]*report.Input {
	type key struct {
		source string
		kind   report.InputKind
	}
	var order []key
	groups := map[key][]*report.Input{}
	for _, in := range inputs {
		k := key{in.source, in.Kind}
		if groups[k] == nil {
			order = append(order, k)
		}
		groups[k] = append(groups[k], in.Input)
	}
	out := make([][]*report.Input, 0, len(order))
	for _, k := range order {
		g := groups[k]
		if k.kind != report.InputReport {
			slices.SortStableFunc(g, func(a, b *report.Input) int { return a.Time.Compare(b.Time) })
		}
		out = append(out, g)
	}
	return out
}

// analyseGoroutines groups the latest dump's goroutines and reports its
// findings; several dumps of one process also make series by stack.
func analyseGoroutines(a *analysis, group []*report.Input, opts reportOptions) {
	dumps := make([]*report.GoroutineDump, len(group))
	for i, in := range group {
		dumps[i] = in.Goroutines
		if dumps[i].Time.IsZero() {
			dumps[i].Time = in.Time
		}
	}
	last := group[len(group)-1]
	a.findings = append(a.findings, report.GoroutineFindings(last.Goroutines, report.GoroutineOptions{BlockedFor: opts.blockedFor})...)
	a.tables = append(a.tables, goroutineTable(last, opts.top))
	if len(dumps) > 1 {
		series, findings := report.GoroutineSeries(dumps, report.TrendOptions{})
		a.series = append(a.series, series...)
		a.findings = append(a.findings, findings...)
	}
}

// goroutineTable lists the goroutines of a dump grouped by state and stack,
// largest groups first.
func goroutineTable(in *report.Input, top int) report.Table {
	d := in.Goroutines
	what := "goroutines"
	if d.Leak {
		what = "leaked goroutines"
	}
	t := report.Table{
		Title:   fmt.Sprintf("%s by state and stack in %s (%d in all)", what, in.Name, d.Total),
		Columns: []string{"COUNT", "STATE", "WAIT", "WHERE", "CREATED BY"},
		Rows:    [][]string{},
	}
	groups := report.GroupGoroutines(d)
	slices.SortStableFunc(groups, func(a, b report.GoroutineGroup) int { return cmp.Compare(b.Count, a.Count) })
	for _, g := range groups[:min(top, len(groups))] {
		where := "-"
		if f := report.TopFrames(g.Stack, 1); len(f) > 0 {
			where = f[0].String()
		}
		wait := "-"
		if g.MaxWait > 0 {
			wait = g.MaxWait.String()
			if g.MinWait != g.MaxWait {
				wait = g.MinWait.String() + "-" + wait
			}
		}
		created := "-"
		if g.CreatedBy.Func != "" {
			created = g.CreatedBy.String()
		}
		state := cmp.Or(g.State, "-")
		t.Rows = append(t.Rows, []string{strconv.Itoa(g.Count), state, wait, where, created})
	}
	return t
}

// analyseSnapshots reports the findings of the latest snapshot, and
// trend-tests the gauges of all of them merged, with the count of live
// records of each kind, snapshot by snapshot.
func analyseSnapshots(a *analysis, group []*report.Input, opts reportOptions) {
	last := group[len(group)-1].Snapshot
	fs, gauges := report.FromSnapshot(last, report.SnapshotOptions{AtExit: opts.atExit})
	if len(group) == 1 {
		a.findings = append(a.findings, fs...)
		a.series = append(a.series, gauges...)
		return
	}
	// Drop the last snapshot's growth findings: its gauges are tested
	// again below with the points of every snapshot.
	fs = slices.DeleteFunc(fs, func(f report.Finding) bool { return f.Kind == report.KindGrowth })
	a.findings = append(a.findings, fs...)

	type gaugeKey struct{ name, owner string }
	merged := map[gaugeKey]*report.Series{}
	var order []gaugeKey
	add := func(name, unit, owner string, p report.Point) {
		k := gaugeKey{name, owner}
		s := merged[k]
		if s == nil {
			s = &report.Series{Name: name, Unit: unit, Owner: owner}
			merged[k] = s
			order = append(order, k)
		}
		s.Points = append(s.Points, p)
	}
	live := make([]map[tracker.Kind]int, len(group))
	var kinds []tracker.Kind
	for i, in := range group {
		live[i] = map[tracker.Kind]int{}
		for _, r := range in.Snapshot.Records {
			if r.State != tracker.Live {
				continue
			}
			if !slices.Contains(kinds, r.Kind) {
				kinds = append(kinds, r.Kind)
			}
			live[i][r.Kind]++
		}
	}
	slices.Sort(kinds)
	for i, in := range group {
		_, gs := report.FromSnapshot(in.Snapshot, report.SnapshotOptions{})
		for _, g := range gs {
			for _, p := range g.Points {
				add(g.Name, g.Unit, g.Owner, p)
			}
		}
		// A kind with no live record in a snapshot counts 0 there.
		for _, k := range kinds {
			add("tracker.live."+string(k), "records", "", report.Point{Time: in.Time, Value: float64(live[i][k])})
		}
	}
	series := make([]report.Series, 0, len(order))
	for _, k := range order {
		s := merged[k]
		// Snapshots of one process repeat the gauges' recent points.
		slices.SortStableFunc(s.Points, func(a, b report.Point) int { return a.Time.Compare(b.Time) })
		s.Points = slices.CompactFunc(s.Points, func(a, b report.Point) bool { return a.Time.Equal(b.Time) })
		series = append(series, *s)
	}
	a.findings = append(a.findings, report.Growth(series, report.TrendOptions{})...)
	a.series = append(a.series, series...)
}
