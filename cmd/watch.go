package cmd

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/google/pprof/profile"
	"github.com/spf13/cobra"

	"github.com/leakcheck/leakcheck/probes"
	"github.com/leakcheck/leakcheck/report"
	"github.com/leakcheck/leakcheck/supervise"
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
			return exitWith(runWatch(c.Context(), opts, pid, c.OutOrStdout(), c.ErrOrStderr()))
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
	f.Float64Var(&opts.maxCPU, "max-cpu", 100*probes.DefaultCPUBudget, "percent of one core that full samples (which name every descriptor) may use; ticks between them only count descriptors. 100: a full sample every tick")
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
	if err := probes.CheckProcess(pid); err != nil {
		return exitUsage, err
	}
	sigc := make(chan os.Signal, 2)
	signal.Notify(sigc, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigc)
	name := "pid " + strconv.Itoa(pid) + " (" + probes.ProcessName(pid) + ")" // while it runs
	w := newWatch(opts, trend, pid)
	end := w.loop(ctx, sigc, stderr)
	status := "still running"
	if end.exited {
		status = "exited while watched"
	} else {
		w.sched.Final(ctx)
	}
	return w.finish(ctx, stdout, "", nil, rules, []string{name}, status)
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
	case w.sched.Unanswered() != nil:
		failed = fmt.Errorf("--pprof %s never answered: %v", w.sched.Endpoint(), w.sched.Unanswered())
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

// watch samples one process tree, `leakcheck watch` as it is, `leakcheck
// run` around the command it started, and records what it samples.
type watch struct {
	opts   runOptions
	trend  report.TrendOptions
	pid    int
	start  time.Time
	sched  *probes.Schedule
	rec    *report.ProcRecorder
	last   *probes.ProcSample // the last sample, full or counted, for the status line
	goNow  int                // goroutines in the last Go sample, for the status line
	proc   *supervise.Process // run: the command, which gets leakcheck's signals
	status *statusLine        // while sampling
}

// newWatch returns a watch of pid that starts now.
func newWatch(opts runOptions, trend report.TrendOptions, pid int) *watch {
	start := time.Now()
	w := &watch{
		opts:  opts,
		trend: trend,
		pid:   pid,
		start: start,
		rec:   report.NewProcRecorder(start, trend.Warmup),
	}
	so := probes.ScheduleOptions{
		PID:       pid,
		Start:     start,
		Interval:  opts.interval,
		Duration:  opts.duration,
		Warmup:    trend.Warmup,
		CPUBudget: opts.maxCPU / 100,
		Endpoint:  opts.pprof,
		LeakEvery: opts.leakEvery,
		Proc:      w.addProc,
		Go:        w.addGo,
		Leaks:     w.addLeaks,
		Sampled:   func() { w.status.update(w) },
	}
	if opts.readyFile != "" {
		so.FindEndpoint = func() string { // the demo's, once it serves
			b, _ := os.ReadFile(opts.readyFile)
			return string(b)
		}
	}
	w.sched = probes.NewSchedule(so)
	return w
}

// addProc records a sample of the process, and the descendants it names.
func (w *watch) addProc(ps *probes.ProcSample) {
	w.rec.AddProc(ps)
	w.last = ps
	if w.proc != nil {
		w.proc.Track(ps.Children)
	}
}

// addGo records a sample of the Go daemon's endpoints.
func (w *watch) addGo(gs *probes.GoSample) error {
	w.goNow = gs.Goroutines
	return w.rec.AddGo(gs)
}

// addLeaks records a goroutineleak profile, or that there is none (p nil).
func (w *watch) addLeaks(p *profile.Profile) error {
	if p == nil {
		w.rec.AddLeakProfile(nil)
		return nil
	}
	d, err := report.GoroutinesFromProfile(p)
	if err == nil {
		w.rec.AddLeakProfile(d)
	}
	return err
}

// ending is why sampling stopped.
type ending struct {
	exited bool // the process exited (run: err is the command's status)
	err    error
	sig    os.Signal // a SIGINT or SIGTERM to leakcheck (nil: --duration or ctx)
}

// loop samples, with the status line on stderr, until the process exits,
// --duration passes, leakcheck gets SIGINT or SIGTERM, or ctx ends. In a
// run, every signal on sigc goes on to the command's process group first.
func (w *watch) loop(ctx context.Context, sigc <-chan os.Signal, stderr io.Writer) ending {
	w.status = newStatusLine(stderr) // watch: the terminal is leakcheck's alone
	var exited <-chan struct{}
	if w.proc != nil {
		exited = w.proc.Done()
		w.status.show = min(w.opts.interval/2, time.Second) // run: shared with the command
	}
	defer w.status.stop()
	stop, done := make(chan struct{}), make(chan bool, 1)
	go func() { done <- w.sched.Run(ctx, stop) }()
	halt := func(e ending) ending {
		close(stop)
		<-done
		return e
	}
	for {
		select {
		case gone := <-done:
			switch {
			case !gone: // --duration or ctx
				return ending{}
			case w.proc != nil:
				return ending{exited: true, err: w.proc.Wait()}
			}
			return ending{exited: true}
		case <-exited:
			return halt(ending{exited: true, err: w.proc.Wait()})
		case sig := <-sigc:
			if w.proc != nil {
				w.proc.Signal(sig.(syscall.Signal))
			}
			if sig == syscall.SIGINT || sig == syscall.SIGTERM {
				return halt(ending{sig: sig})
			}
		}
	}
}

// report turns the samples, the leftovers and the daemon's own tracker
// snapshot (its exit report, or else the last one it served) into a report.
func (w *watch) report(ctx context.Context, exitReport string, left []probes.Child, rules []report.IgnoreRule, args []string) (*report.Report, error) {
	snap, atExit, err := w.rec.Snapshot(ctx, exitReport)
	if err != nil {
		return nil, err
	}
	res := w.rec.Analyze(report.ProcOptions{Trend: w.trend, Left: left, Own: w.sched.Client().Own, Snapshot: snap, AtExit: atExit})
	r := res.Report(rules)
	r.Metadata["command"] = strings.Join(args, " ")
	r.Metadata["duration"] = time.Since(w.start).Round(time.Millisecond).String()
	r.Metadata["samples"] = fmt.Sprint(w.rec.Samples())
	if gaps := w.sched.Gaps(); len(gaps) > 0 {
		r.Metadata["gaps"] = fmt.Sprintf("%d (first: %s)", len(gaps), gaps[0])
	}
	return r, nil
}
