package cmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/leakcheck/leakcheck/probes"
	"github.com/leakcheck/leakcheck/report"
)

func newWatchCommand() *cobra.Command {
	opts := runOptions{}
	opts.failOn, _ = report.ParsePolicy(defaultRunFailOn)
	c := &cobra.Command{
		Use:   "watch [flags] PID",
		Short: "Watch a running process, without touching it, and report leftovers and growth",
		Long: `watch attaches to the running process PID, in any language, and samples its
descriptors, sockets, threads, memory and child processes every --interval
(and its goroutines and heap when --pprof points at its net/http/pprof
endpoint), as run does. It never starts, stops or signals the process. It ends
at --duration, at Ctrl-C or SIGTERM, or when the process exits, then reports
the descriptors and sockets opened since the baseline and still open, and the
series that grow under a trend test.

Exit status: 0 clean; 3 findings fail --fail-on; 2 usage or input error (a pid
that does not exist or whose /proc cannot be read, no sample taken, a --pprof
endpoint that never answered).`,
		Example: `  leakcheck watch $(pidof mydaemon)                # until Ctrl-C
  leakcheck watch --duration 10m --pprof 127.0.0.1:6060 1234
  leakcheck watch --duration 1h --interval 10s --format json --output watch.json 1234`,
		Args: cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			pid, err := strconv.Atoi(args[0])
			if err != nil || pid <= 0 {
				return usageError(fmt.Errorf("watch %q: want the process id of a running process", args[0]))
			}
			code, err := runWatch(c.Context(), opts, pid, c.OutOrStdout(), c.ErrOrStderr())
			if err != nil || code != 0 {
				return &exitError{code: code, err: err}
			}
			return nil
		},
	}
	addSamplingFlags(c, &opts, 0, "stop watching after this long (0: until Ctrl-C, SIGTERM or the process exits)")
	return c
}

// addSamplingFlags defines the flags run and watch share.
func addSamplingFlags(c *cobra.Command, opts *runOptions, warmup time.Duration, durationHelp string) {
	f := c.Flags()
	f.DurationVar(&opts.interval, "interval", time.Second, "time between samples")
	f.DurationVar(&opts.duration, "duration", 0, durationHelp)
	f.StringVar(&opts.pprof, "pprof", "", "base URL of the process's net/http/pprof endpoint, e.g. http://127.0.0.1:6060 (no scheme: http)")
	f.StringVar(&opts.format, "format", report.DefaultFormat, "output format: "+strings.Join(report.Formats(), ", "))
	f.StringVarP(&opts.output, "output", "o", "", "write the report to this file instead of stdout")
	f.StringVar(&opts.series, "series", "", "write every sample to this file (.csv or .json)")
	f.StringVar(&opts.ignore, "ignore", "", "file of rules suppressing known findings")
	f.Var(&opts.failOn, "fail-on", "finding kinds (and severity>=LEVEL) that fail the run: e.g. leftover,growth, all, none")
	addTrendFlags(f, &opts.trend, warmup, "time after start before the baseline sample; trend tests ignore it")
	f.Float64Var(&opts.maxCPU, "max-cpu", 100*fullSampleBudget, "percent of one core that full samples (which name every descriptor) may use; ticks between them only count descriptors. 100: a full sample every tick")
	f.DurationVar(&opts.leakEvery, "leak-profile-every", time.Minute, "with --pprof: time between reads of the goroutineleak profile (each costs the daemon about one garbage collection); it is also read at the end")
}

// check validates the options run and watch share, before anything starts,
// and returns the trend options and ignore rules they ask for.
func (o *runOptions) check() (report.TrendOptions, []report.IgnoreRule, error) {
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"--interval", o.interval}, {"--duration", o.duration}, {"--grace", o.grace}, {"--leak-profile-every", o.leakEvery}} {
		if d.v < 0 || d.v == 0 && d.name == "--interval" {
			return report.TrendOptions{}, nil, fmt.Errorf("%s %v: want a positive duration", d.name, d.v)
		}
	}
	if !(o.maxCPU > 0 && o.maxCPU <= 100) {
		return report.TrendOptions{}, nil, fmt.Errorf("--max-cpu %v: want a percentage above 0 and at most 100", o.maxCPU)
	}
	if o.pprof != "" && !strings.Contains(o.pprof, "://") {
		o.pprof = "http://" + o.pprof
	}
	if err := checkFormat(o.format); err != nil {
		return report.TrendOptions{}, nil, err
	}
	for _, path := range []string{o.output, o.series} {
		if err := report.CheckOutput(path); err != nil {
			return report.TrendOptions{}, nil, err
		}
	}
	trend, err := o.trend.options()
	if err != nil {
		return report.TrendOptions{}, nil, err
	}
	rules, err := report.ReadIgnoreFile(o.ignore)
	return trend, rules, err
}

// runWatch watches process pid until --duration, a signal or its exit,
// reports, and returns the exit code the fail policy gives the findings.
func runWatch(ctx context.Context, opts runOptions, pid int, stdout, stderr io.Writer) (int, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	trend, rules, err := opts.check()
	if err != nil {
		return exitUsage, err
	}
	if err := checkReadable(pid); err != nil {
		return exitUsage, err
	}
	sigc := make(chan os.Signal, 2)
	signal.Notify(sigc, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigc)
	name := "pid " + strconv.Itoa(pid) + " (" + comm(pid) + ")" // while it runs
	w := newWatch(opts, trend, pid)
	end := w.loop(ctx, nil, sigc, stderr, func() {})
	status := "still running"
	if end.exited {
		status = "exited while watched"
	} else {
		w.finalSamples(ctx)
	}
	return w.finish(ctx, stdout, "", nil, rules, []string{name}, status)
}

// checkReadable returns an error that says what to do when process pid does
// not exist or its descriptors cannot be read.
func checkReadable(pid int) error {
	dir := "/proc/" + strconv.Itoa(pid)
	if _, err := os.Stat(dir); err != nil {
		return fmt.Errorf("no process %d (%s): check the pid, e.g. with pgrep or ps", pid, dir)
	}
	f, err := os.Open(dir + "/fd")
	if err == nil {
		_, err = f.Readdirnames(1)
		f.Close()
	}
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("cannot read the descriptors of process %d: %w: run leakcheck as the process's user, or as root", pid, err)
	}
	return nil
}

// comm returns the name of process pid, or "?".
func comm(pid int) string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/comm")
	if err != nil {
		return "?"
	}
	return strings.TrimSpace(string(b))
}

// finish reports what w sampled: it writes the series and the report, and
// returns the fail policy's exit code. A run without a sample, or whose
// --pprof endpoint never answered, is reported too, with an error, and is an
// input error unless what was seen fails the policy: never "no leaks found".
func (w *watch) finish(ctx context.Context, stdout io.Writer, exitReport string, left []probes.Child, rules []report.IgnoreRule, args []string, status string) (int, error) {
	var failed error
	switch {
	case w.rec.Samples() == 0:
		failed = fmt.Errorf("no sample of %s was taken (it %s): nothing to report", args[0], status)
	case w.opts.pprof != "" && !w.goOK:
		failed = fmt.Errorf("--pprof %s never answered: %v", w.opts.pprof, w.goErr)
	}
	r, err := w.report(ctx, exitReport, left, rules, args)
	if err != nil {
		return exitUsage, err
	}
	r.Metadata["exit"] = status
	if failed != nil {
		r.Metadata["error"] = failed.Error()
	}
	r.Policy = w.opts.failOn.String() // what the CI formats mark as failing
	if w.opts.series != "" {
		if err := report.WriteOutput(w.opts.series, func(f io.Writer) error {
			return report.WriteSeries(f, w.rec.Series(), strings.ToLower(filepath.Ext(w.opts.series)) == ".csv")
		}); err != nil {
			return exitUsage, fmt.Errorf("writing series: %w", err)
		}
	}
	if err := writeReport(stdout, r, w.opts.output, w.opts.format); err != nil {
		return exitUsage, err
	}
	code := policyExit(w.opts.failOn, r.Findings)
	if failed != nil && code == exitOK {
		code = exitUsage // what was not seen cannot be "no leaks found"
	}
	return code, failed
}

// watch samples one process tree: `leakcheck watch` as it is, `leakcheck
// run` around the command it started.
type watch struct {
	opts     runOptions
	trend    report.TrendOptions
	pid      int
	start    time.Time
	http     *probes.Client // to --pprof; it knows its own connections
	rec      *report.ProcRecorder
	last     *probes.ProcSample // the last sample, full or counted, for the status line
	goNow    int                // goroutines in the last Go sample, for the status line
	goOK     bool               // --pprof answered at least once
	goErr    error              // the last error from --pprof
	gone     bool               // the process was gone at the last sample
	nextFull time.Time          // the earliest time for the next full sample
	budget   float64            // fullSampleBudget; 1 takes a full sample every tick
	reaper   bool               // leakcheck is the subreaper: its orphaned descendants count
	forward  bool               // signals to leakcheck go on to the process group (run)
	gaps     []string
	seen     map[int]probes.Child // every descendant ever sampled
	sampled  time.Time            // when the last sample ended
	lastFull time.Time            // when the last full sample was taken
	prevFull time.Time            // and the one before it
	guard    *guardian            // kills the descendants if leakcheck dies (run)
	leakNext time.Time            // the earliest time for the next goroutineleak profile
	noLeaks  bool                 // the daemon does not serve that profile
}

// newWatch returns a watch of pid that starts now.
func newWatch(opts runOptions, trend report.TrendOptions, pid int) *watch {
	start := time.Now()
	return &watch{
		opts:   opts,
		trend:  trend,
		pid:    pid,
		start:  start,
		http:   probes.NewClient(max(opts.interval, time.Second)),
		rec:    report.NewProcRecorder(start, trend.Warmup),
		budget: opts.maxCPU / 100,
		reaper: opts.reaper,
	}
}

// ending is why sampling stopped.
type ending struct {
	exited bool // the process exited (run: err is the command's status)
	err    error
	sig    os.Signal // a SIGINT or SIGTERM to leakcheck (nil: --duration or ctx)
}

// loop samples until the process exits, --duration passes, leakcheck gets
// SIGINT or SIGTERM, or ctx ends. With w.forward, every signal on sigc goes
// on to the process group first. ready runs before each sample.
func (w *watch) loop(ctx context.Context, exited <-chan error, sigc <-chan os.Signal, stderr io.Writer, ready func()) ending {
	tick := time.NewTicker(w.opts.interval)
	defer tick.Stop()
	var deadline <-chan time.Time
	if w.opts.duration > 0 {
		t := time.NewTimer(w.opts.duration)
		defer t.Stop()
		deadline = t.C
	}
	status := newStatusLine(stderr) // watch: the terminal is leakcheck's alone
	if w.forward {
		status.show = min(w.opts.interval/2, time.Second) // run: shared with the command
	}
	defer status.stop()
	for first := true; ; first = false {
		if !first {
			select {
			case err := <-exited:
				return ending{exited: true, err: err}
			case sig := <-sigc:
				if w.forward {
					syscall.Kill(-w.pid, sig.(syscall.Signal))
				}
				if sig == syscall.SIGINT || sig == syscall.SIGTERM {
					return ending{sig: sig}
				}
				continue
			case <-ctx.Done():
				return ending{}
			case <-deadline:
				return ending{}
			case <-tick.C:
				ready()
			}
		}
		w.sample(ctx)
		if w.gone {
			if exited != nil {
				return ending{exited: true, err: <-exited}
			}
			return ending{exited: true}
		}
		status.update(w)
	}
}

// finalSamples ends sampling with two full samples a short gap apart, both
// after the baseline: descriptorFindings counts what both hold (a descriptor
// open in one sample may be in passing), so the pair must be at the very end
// for every descriptor held at the end to count. A full sample just taken
// counts as the first of the pair.
func (w *watch) finalSamples(ctx context.Context) {
	defer func() { w.sampleLeaks(ctx, time.Now(), true) }()
	gap := min(w.opts.interval/2, 200*time.Millisecond)
	for range 2 {
		if w.finalPair(gap) || w.gone {
			return
		}
		if last := w.rec.LastFull(); last != nil && time.Since(last.Time) < gap {
			time.Sleep(gap - time.Since(last.Time))
		}
		w.nextFull = time.Time{}
		w.sample(ctx)
	}
}

// finalPair reports whether the last two full samples are both after the
// baseline (the one before it, too, is not the baseline), the last taken within gap of now and the one before it within
// two gaps of the last.
func (w *watch) finalPair(gap time.Duration) bool {
	last, base := w.rec.LastFull(), w.rec.Baseline()
	if last == nil || base == nil || last == base {
		return false
	}
	apart := last.Time.Sub(w.prevFull)
	return time.Since(last.Time) < gap && w.prevFull.After(base.Time) && apart <= 2*gap
}

// fullSampleBudget is the default share of a core that full samples may
// take (--max-cpu): after a full sample that used d of CPU time, the next
// waits at least d/budget. A full sample reads every descriptor's target
// (about a microsecond each), so against a daemon with tens of thousands of
// descriptors it runs every few seconds, and the ticks between count
// descriptors instead (SampleCounts), which costs microseconds. Half of
// the 1% budget (docs/benchmarks.md) leaves the rest for counting and --pprof.
const fullSampleBudget = 0.005

// sample takes one sample of the process and, with --pprof, of its endpoint.
// The sample is full when its time has come, and always for the baseline and
// the final sample, which name the leftover descriptors. Failures become gaps.
func (w *watch) sample(ctx context.Context) {
	now := time.Now()
	defer func() { w.sampled = time.Now() }()
	full := !now.Before(w.nextFull) || (w.rec.Baseline() == nil && w.rec.Warm(now))
	var ps *probes.ProcSample
	var err error
	if full {
		var took time.Duration
		took, ps, err = threadCPU(func() (*probes.ProcSample, error) { return probes.SampleProcess(w.pid) })
		budget := w.budget
		if budget <= 0 {
			budget = fullSampleBudget
		}
		w.nextFull = now.Add(time.Duration(float64(took) / budget))
	} else {
		ps, err = probes.SampleCounts(w.pid)
	}
	switch {
	case errors.Is(err, os.ErrNotExist):
		w.gone = true // the end of the watch, not a gap
		return
	case err != nil:
		w.gaps = append(w.gaps, fmt.Sprintf("%s: %v", now.Format(time.RFC3339), err))
	default:
		if !ps.Counted {
			w.prevFull = w.lastFull
			w.lastFull = ps.Time
		}
		w.rec.AddProc(ps)
		w.last = ps
		if w.seen == nil {
			w.seen = map[int]probes.Child{}
		}
		for _, c := range ps.Children {
			w.seen[c.PID] = c
			w.guard.tell(c)
		}
		w.adopt()
	}
	if w.opts.pprof != "" {
		w.sampleGo(ctx, now)
	}
}

// sampleGo samples the Go daemon's --pprof endpoint; failures become gaps.
func (w *watch) sampleGo(ctx context.Context, now time.Time) {
	gctx, cancel := context.WithTimeout(ctx, max(w.opts.interval, time.Second))
	defer cancel()
	gs, err := probes.SampleGo(gctx, w.http.Client, w.opts.pprof, probes.DefaultTrackerPath)
	if err != nil {
		w.goErr = err
		w.gaps = append(w.gaps, fmt.Sprintf("%s: --pprof: %v", now.Format(time.RFC3339), err))
		return
	}
	w.goOK = true
	if err := w.rec.AddGo(gs); err != nil {
		w.gaps = append(w.gaps, fmt.Sprintf("%s: %v", now.Format(time.RFC3339), err))
	}
	w.goNow = gs.Goroutines
	w.sampleLeaks(ctx, now, false)
}

// sampleLeaks reads the daemon's goroutineleak profile, whose leaked
// goroutines the runtime proves, when its time has come: at the first Go
// sample (to learn whether the daemon serves it), every --leak-profile-every
// after, and, with final, at the end.
func (w *watch) sampleLeaks(ctx context.Context, now time.Time, final bool) {
	if w.opts.pprof == "" || w.noLeaks || !w.goOK || w.gone || !final && now.Before(w.leakNext) {
		return
	}
	w.leakNext = now.Add(w.opts.leakEvery)
	gctx, cancel := context.WithTimeout(ctx, max(w.opts.interval, 5*time.Second))
	defer cancel()
	p, found, err := probes.SampleLeaks(gctx, w.http.Client, w.opts.pprof)
	if err == nil && found {
		var d *report.GoroutineDump
		if d, err = report.GoroutinesFromProfile(p); err == nil {
			w.rec.AddLeakProfile(d)
		}
	}
	switch {
	case err != nil:
		w.gaps = append(w.gaps, fmt.Sprintf("%s: goroutineleak profile: %v", now.Format(time.RFC3339), err))
	case !found:
		w.noLeaks = true
		w.rec.AddLeakProfile(nil)
	}
}

// threadCPU runs sample on one locked thread and returns the CPU time the
// thread used meanwhile: the sample's own cost, whatever else the machine is
// doing. Where a thread's CPU time cannot be read, it returns the wall time,
// which only makes full samples rarer on a busy machine.
func threadCPU(sample func() (*probes.ProcSample, error)) (time.Duration, *probes.ProcSample, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	start := time.Now()
	before, ok := threadCPUTime()
	ps, err := sample()
	after, ok2 := threadCPUTime()
	if !ok || !ok2 {
		return time.Since(start), ps, err
	}
	return after - before, ps, err
}

// report turns the samples, the leftovers and the daemon's own tracker
// snapshot (its exit report, or else the last one it served) into a report.
func (w *watch) report(ctx context.Context, exitReport string, left []probes.Child, rules []report.IgnoreRule, args []string) (*report.Report, error) {
	snap, atExit, err := w.rec.Snapshot(ctx, exitReport)
	if err != nil {
		return nil, err
	}
	res := w.rec.Analyze(report.ProcOptions{Trend: w.trend, Left: left, Own: w.http.Own, Snapshot: snap, AtExit: atExit})
	r := report.New(res.Findings, res.Series, rules)
	r.Tables = res.Tables
	r.Metadata = map[string]string{
		"command":  strings.Join(args, " "),
		"duration": time.Since(w.start).Round(time.Millisecond).String(),
		"samples":  fmt.Sprint(w.rec.Samples()),
	}
	for i, n := range res.Notes {
		r.Metadata[fmt.Sprintf("note %d", i+1)] = n
	}
	if len(w.gaps) > 0 {
		r.Metadata["gaps"] = fmt.Sprintf("%d (first: %s)", len(w.gaps), w.gaps[0])
	}
	return r, nil
}
