package cmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/leakcheck/leakcheck/report"
)

// defaultReportFailOn is the --fail-on default of `leakcheck report`: what
// its inputs show as leaks for certain, or growing.
const defaultReportFailOn = "leftover,growth,goroutine,limit,severity>=warning"

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
	trend       trendFlags
	failOnSet   bool // --fail-on was given: it overrides a saved report's policy
	binary      string
	pathTo      string
	inputs      []string
	prom        promOptions
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
                      finding. The trend test needs 12 profiles: with fewer, a
                      site must rise in 3 of 4 of its steps; a site that rose
                      once and held (a start-up allocation) is not growing
A site is the first frame of the program's own code; a map or slice that keeps
growing is named as such at the function that assigns or appends. The default
--min-growth is a share of the heap in use (5% between two profiles, 1% over a
series) and, for sampled bytes, at least twice the sampling period and three
standard deviations of the sampling noise; the notes say the figures.

Goroutine dumps are grouped by stack and state; goroutines blocked longer than
--blocked-for, in large groups, or leaked are findings, and several dumps of one
process make series by stack. Tracker snapshots give their leftovers, misuse,
cycles and growing gauges; with --at-exit, every live record is a leftover.

With --every, each URL is polled --count times and the profiles collected are
analysed as a series; --save keeps them. Interrupting stops the polling early.

With --prometheus URL, the instances of a fleet are read from the series a
Prometheus server holds (INPUTs are then optional): each instance's
descriptors, goroutines, threads and memory over --range, split at restarts,
trend-tested run by run; leaking instances are findings, ranked by time to
the descriptor limit. Credentials come from --token-file, --token-env or
--basic-auth-file, never from a flag's value.

Exit status: 0 nothing fails --fail-on (default ` + defaultReportFailOn + `);
3 findings fail it; 2 usage or input error.`,
		Example: `  leakcheck report heap.pb.gz
  leakcheck report --base before.pb.gz after.pb.gz
  leakcheck report --fail-on growth --min-growth 4MiB base.pb.gz new.pb.gz
  leakcheck report heap-*.pb.gz                      # a series, by time
  leakcheck report profiles/                         # every file in a directory
  leakcheck report goroutines.txt snapshot.json
  leakcheck report --every 30s --count 16 --save profiles/ 'http://127.0.0.1:6060/debug/pprof/heap?gc=1'
  leakcheck report --format json -o report.json heap.pb.gz && leakcheck report report.json
  leakcheck report --prometheus http://127.0.0.1:9090 --range 6h --selector '{job="api"}'`,
		Args: func(c *cobra.Command, args []string) error {
			if opts.prom.url != "" { // INPUTs are optional with --prometheus
				return nil
			}
			return cobra.MinimumNArgs(1)(c, args)
		},
		RunE: func(c *cobra.Command, args []string) error {
			opts.inputs = args
			opts.failOnSet = c.Flags().Changed("fail-on")
			return exitWith(runReport(c.Context(), opts, c.OutOrStdout(), c.ErrOrStderr()))
		},
	}
	addReportFlags(c.Flags(), &opts)
	return c
}

// addReportFlags defines the flags of `leakcheck report`.
func addReportFlags(f *pflag.FlagSet, opts *reportOptions) {
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
	f.StringVar(&opts.minGrowth, "min-growth", "", "least growth of a site from the first profile to the last that is a finding, e.g. 4MiB or 5000 (default: by share of the heap)")
	f.BoolVar(&opts.atExit, "at-exit", false, "tracker snapshots were taken at exit: every live record is a leftover")
	f.DurationVar(&opts.blockedFor, "blocked-for", report.DefaultBlockedFor, "goroutines blocked at least this long are findings")
	f.StringVar(&opts.binary, "binary", "", "heap dumps: the dumped program's executable, whose symbols name the globals that hold memory")
	f.StringVar(&opts.pathTo, "path-to", "", "heap dumps: report the paths from the roots to objects allocated at this site (a function, or file:line)")
	addTrendFlags(f, &opts.trend, 0, "ignore the profiles taken within this time of the first of a series in trend tests")
	addPrometheusFlags(f, &opts.prom)
}

// runReport reads the inputs, analyses them, writes the report, and returns
// the exit code the fail policy gives.
func runReport(ctx context.Context, opts reportOptions, stdout, stderr io.Writer) (int, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	if opts.every > 0 {
		// Interrupting a poll ends it; what was collected is still
		// analysed.
		var stop context.CancelFunc
		ctx, stop = signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
		defer stop()
	}
	heapOpts, inOpts, rules, err := checkReportOptions(opts)
	if err != nil {
		return exitUsage, err
	}
	trend, err := opts.trend.options()
	if err != nil {
		return exitUsage, err
	}
	status := newStatusLine(stderr)
	inputs, notes, err := report.Load(ctx, opts.inputs, report.LoadOptions{
		Input: inOpts, Heap: report.HeapOptions{SampleIndex: opts.sampleIndex, Top: opts.top},
		Base: opts.base, Every: opts.every, Count: opts.count, Save: opts.save, Log: stderr,
		Progress: func(i, n int) { status.print(fmt.Sprintf("leakcheck: poll %d of %d", i, n)) },
	})
	status.clear()
	if err != nil {
		return exitUsage, err
	}
	var base *report.Input
	all := inputs
	if opts.base != "" {
		base, inputs = inputs[0], inputs[1:]
	}
	res, err := report.Analyze(inputs, base, report.Options{
		Trend: trend, Heap: heapOpts, BlockedFor: opts.blockedFor, AtExit: opts.atExit, Top: opts.top,
		Binary: opts.binary, PathTo: opts.pathTo,
	})
	if err != nil {
		return exitUsage, err
	}
	if opts.prom.url != "" {
		opts.prom.timeout = opts.timeout
		fleet, err := runPrometheus(ctx, opts.prom, trend)
		if err != nil {
			return exitUsage, err
		}
		res.Add(fleet)
	}
	r, failOn := newReport(res, all, notes, rules, opts)
	if err := writeReport(stdout, r, opts.output, opts.format); err != nil {
		return exitUsage, err
	}
	return policyExit(failOn, r.Findings), nil
}

// newReport makes the report of what the analyses found, and returns it with
// the policy that judges it: --fail-on; or, when the one input is a saved
// report and --fail-on is not given, the policy it was saved with. A saved
// report rendered again keeps what it said about its run.
func newReport(res report.Result, inputs []*report.Input, notes []string, rules []report.IgnoreRule, opts reportOptions) (*report.Report, report.Policy) {
	res.Notes = slices.Concat(notes, res.Notes) // the loading's first
	r := res.Report(rules)
	r.Time = time.Now()
	r.Metadata["inputs"] = report.DescribeInputs(inputs)
	failOn := opts.failOn
	if saved := savedReport(inputs); saved != nil {
		r.Time, r.Metadata = saved.Time, saved.Metadata
		if p, err := report.ParsePolicy(saved.Policy); err == nil && !opts.failOnSet {
			failOn = p
		}
	}
	r.Policy = failOn.String()
	return r, failOn
}

// savedReport returns the report when the only input is a saved report.
func savedReport(inputs []*report.Input) *report.Report {
	if len(inputs) != 1 || inputs[0].Kind != report.InputReport {
		return nil
	}
	return inputs[0].Report
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
