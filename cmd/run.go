package cmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/leakcheck/leakcheck/keepalive/demo"
	"github.com/leakcheck/leakcheck/probes"
	"github.com/leakcheck/leakcheck/report"
	"github.com/leakcheck/leakcheck/tracker"
)

// defaultRunFailOn is the --fail-on default of run: leftovers, growth, and
// resources at their limit, with evidence of a leak (warnings and errors;
// info findings, such as a set opened after the baseline that holds steady,
// are reported but do not fail).
const defaultRunFailOn = "leftover,growth,limit,severity>=warning"

// demoDuration is how long `leakcheck run` with no command runs the demo.
const demoDuration = 20 * time.Second

type runOptions struct {
	interval time.Duration
	trend    trendFlags
	duration time.Duration
	grace    time.Duration
	pprof    string
	format   string
	output   string
	series   string
	ignore   string
	failOn   report.Policy
	maxCPU   float64 // percent of a core that full samples may use
	reaper   bool    // make leakcheck the subreaper of the command's tree (the CLI; not tests, which share a process)
	leaks    string  // for the demo, when no command is given
	args     []string
}

// forwarded are the signals leakcheck passes on to the wrapped command.
var forwarded = []os.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT, syscall.SIGUSR1, syscall.SIGUSR2}

func newRunCommand() *cobra.Command {
	opts := runOptions{}
	opts.failOn, _ = report.ParsePolicy(defaultRunFailOn)
	c := &cobra.Command{
		Use:   "run [flags] [-- COMMAND [ARGS...]]",
		Short: "Run a daemon, watch its resources, and report leftovers and growth",
		Long: `run starts COMMAND in its own process group, passes its input and output
through, forwards signals to it, and samples its descriptors, sockets, threads,
memory and child processes every --interval (and its goroutines and heap when
--pprof points at its net/http/pprof endpoint). It stops the command after
--duration (SIGTERM, then SIGKILL after --grace) or when it exits, then reports
descriptors and sockets left open since the baseline, series that grow under a
trend test, child processes left behind, and, from a Go daemon that uses the
tracker, its own exit report (LEAKCHECK_REPORT).

With no COMMAND, run starts leakcheck's built-in demo daemon for 20 seconds:
an echo server on the keepalive runtime, clients using its kept-alive pool,
and the leaks named by --leak, committed for real (by default one of every
finding kind).

Exit status: 0 clean; 3 findings fail --fail-on; 2 usage or input error;
otherwise the command's own failure (127 not found, 128+n killed by signal n).`,
		Example: `  leakcheck run                                   # the demo daemon, about 20 s
  leakcheck run --leak none                       # the demo, leaking nothing: exit 0
  leakcheck run --duration 10m -- ./mydaemon -listen :8080
  leakcheck run --pprof http://127.0.0.1:6060 --format json --output run.json -- ./mydaemon
  leakcheck run --fail-on all --series samples.csv -- redis-server --port 7000`,
		RunE: func(c *cobra.Command, args []string) error {
			opts.args = args
			opts.reaper = true
			if len(args) > 0 && c.Flags().Changed("leak") {
				return usageError(errors.New("--leak applies only to the built-in demo (no COMMAND)"))
			}
			code, err := runRun(c.Context(), opts, c.OutOrStdout(), c.ErrOrStderr())
			if err != nil || code != 0 {
				return &exitError{code: code, err: err}
			}
			return nil
		},
	}
	f := c.Flags()
	f.DurationVar(&opts.interval, "interval", time.Second, "time between samples")
	f.DurationVar(&opts.duration, "duration", 0, "stop the command after this long (0: wait for it to exit; the demo runs 20s)")
	f.DurationVar(&opts.grace, "grace", 5*time.Second, "time between SIGTERM and SIGKILL when stopping the command")
	f.StringVar(&opts.pprof, "pprof", "", "base URL of the command's net/http/pprof endpoint, e.g. http://127.0.0.1:6060")
	f.StringVar(&opts.format, "format", report.DefaultFormat, "output format: "+strings.Join(report.Formats(), ", "))
	f.StringVarP(&opts.output, "output", "o", "", "write the report to this file instead of stdout")
	f.StringVar(&opts.series, "series", "", "write every sample to this file (.csv or .json)")
	f.StringVar(&opts.ignore, "ignore", "", "file of rules suppressing known findings")
	f.Var(&opts.failOn, "fail-on", "finding kinds (and severity>=LEVEL) that fail the run: e.g. leftover,growth, all, none")
	addTrendFlags(f, &opts.trend, 2*time.Second, "time after start before the baseline sample; trend tests ignore it")
	f.Float64Var(&opts.maxCPU, "max-cpu", 100*fullSampleBudget, "percent of one core that full samples (which name every descriptor) may use; ticks between them only count descriptors. 100: a full sample every tick")
	f.StringVar(&opts.leaks, "leak", demo.DefaultLeaks, "demo only: leaks to commit: "+demo.LeakNames()+", all or none")
	return c
}

// runRun runs the command (or the demo), samples it, reports, and returns the
// exit code: the command's own failure first, then the fail policy.
func runRun(ctx context.Context, opts runOptions, stdout, stderr io.Writer) (int, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	if opts.interval <= 0 {
		return exitUsage, errors.New("--interval must be positive")
	}
	if opts.maxCPU == 0 {
		opts.maxCPU = 100 * fullSampleBudget
	}
	if opts.maxCPU < 0 || opts.maxCPU > 100 {
		return exitUsage, fmt.Errorf("--max-cpu %v: want a percentage above 0 and at most 100", opts.maxCPU)
	}
	if err := checkFormat(opts.format); err != nil {
		return exitUsage, err
	}
	trend, err := opts.trend.options()
	if err != nil {
		return exitUsage, err
	}
	rules, err := report.ReadIgnoreFile(opts.ignore)
	if err != nil {
		return exitUsage, err
	}

	tmp, err := os.MkdirTemp("", "leakcheck-run-")
	if err != nil {
		return exitUsage, fmt.Errorf("creating a temporary directory: %w", err)
	}
	defer os.RemoveAll(tmp)
	exitReport := filepath.Join(tmp, "exit-report.json")

	args := opts.args
	isDemo := len(args) == 0
	readyFile := filepath.Join(tmp, "pprof-url")
	if isDemo {
		leaks, err := demo.ParseLeaks(opts.leaks)
		if err != nil {
			return exitUsage, err
		}
		self, err := os.Executable()
		if err != nil {
			return exitUsage, fmt.Errorf("finding leakcheck's own binary for the demo: %w", err)
		}
		leakArg := strings.Join(leaks, ",")
		if leakArg == "" {
			leakArg = "none"
		}
		args = []string{self, "demo", "--leak", leakArg, "--pprof", "127.0.0.1:0", "--ready-file", readyFile}
		if opts.duration == 0 {
			opts.duration = demoDuration
		}
		fmt.Fprintf(stderr, "leakcheck: running the built-in demo daemon for %s (leaks: %s)\n", opts.duration, opts.leaks)
	}

	if opts.reaper {
		// Orphans of the command's tree, even those that left its
		// process group and session, become leakcheck's children
		// instead of init's, so they cannot escape the final sweep.
		if err := becomeSubreaper(); err != nil {
			fmt.Fprintf(stderr, "leakcheck: %v; a process that leaves the command's session may escape\n", err)
		}
	}

	// Catch the signals to forward before the command starts: one that came
	// in between would be lost, or kill leakcheck and leave the command, in
	// its own process group, running.
	sigc := make(chan os.Signal, 4)
	signal.Notify(sigc, forwarded...)
	defer signal.Stop(sigc)

	child := exec.Command(args[0], args[1:]...)
	child.Stdin, child.Stdout, child.Stderr = os.Stdin, stdout, stderr
	child.Env = append(os.Environ(), tracker.SnapshotEnv+"="+exitReport)
	child.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := child.Start(); err != nil {
		code := exitNotFound
		if errors.Is(err, os.ErrPermission) {
			code = exitCannotRun
		}
		return code, fmt.Errorf("starting %s: %w", args[0], err)
	}
	own := &ownConns{}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.DialContext = own.dial
	w := newWatch(opts, trend, child.Process.Pid)
	w.http = &http.Client{Timeout: max(opts.interval, time.Second), Transport: transport}
	w.own = own
	exited := make(chan error, 1)
	go func() { exited <- child.Wait() }()

	status := w.loop(ctx, exited, sigc, stderr, func() {
		if isDemo && w.opts.pprof == "" {
			if b, err := os.ReadFile(readyFile); err == nil {
				w.opts.pprof = string(b)
			}
		}
	})
	left := w.killLeftovers()

	r, err := w.report(ctx, exitReport, left, rules, args)
	if err != nil {
		return exitUsage, err
	}
	r.Metadata["exit"] = status.String()
	r.Policy = opts.failOn.String() // what the CI formats mark as failing
	if opts.series != "" {
		if err := w.writeSeries(opts.series); err != nil {
			return exitUsage, err
		}
	}
	if err := writeReport(stdout, r, opts.output, opts.format); err != nil {
		return exitUsage, err
	}
	if code := status.code(); code != 0 {
		// The command's status passes through, and may equal one of
		// leakcheck's own: say whose it is.
		fmt.Fprintf(stderr, "leakcheck: %s %s; leakcheck exits with its status, %d\n", filepath.Base(args[0]), status, code)
		return code, nil
	}
	return policyExit(opts.failOn, r.Findings), nil
}

// childStatus is how the wrapped command ended.
type childStatus struct {
	err       error
	stoppedBy bool // leakcheck stopped it at --duration
}

// String says how the command ended, e.g. "exited with status 3".
func (s childStatus) String() string {
	var ee *exec.ExitError
	switch {
	case s.err == nil && s.stoppedBy:
		return "stopped by leakcheck"
	case s.err == nil:
		return "exited with status 0"
	case !errors.As(s.err, &ee):
		return s.err.Error()
	}
	what := fmt.Sprintf("exited with status %d", ee.ExitCode())
	if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		what = fmt.Sprintf("was killed by signal %d (%s)", int(ws.Signal()), ws.Signal())
	}
	if s.stoppedBy {
		what = "stopped by leakcheck: " + what
	}
	return what
}

// code returns the exit code the command's own ending asks for: 0 when it
// succeeded or leakcheck stopped it, its status, or 128+n for signal n.
func (s childStatus) code() int {
	if s.err == nil || s.stoppedBy {
		return 0
	}
	var ee *exec.ExitError
	if !errors.As(s.err, &ee) {
		return exitUsage
	}
	if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return exitSignalBase + int(ws.Signal())
	}
	return ee.ExitCode()
}

// watch samples one process tree.
type watch struct {
	opts     runOptions
	trend    report.TrendOptions
	pid      int
	start    time.Time
	http     *http.Client
	rec      *report.ProcRecorder
	last     *probes.ProcSample // the last sample, full or counted, for the status line
	goNow    int                // goroutines in the last Go sample, for the status line
	nextFull time.Time          // the earliest time for the next full sample
	budget   float64            // fullSampleBudget; 1 takes a full sample every tick
	reaper   bool               // leakcheck is the subreaper: its orphaned descendants count
	stacks   map[string][]report.Frame
	snapshot []byte // the tracker's latest snapshot, served live
	gaps     []string
	seen     map[int]probes.Child // every descendant ever sampled
	sampled  time.Time            // when the last sample ended
	own      *ownConns            // leakcheck's connections to --pprof
}

// newWatch returns a watch of pid that starts now.
func newWatch(opts runOptions, trend report.TrendOptions, pid int) *watch {
	start := time.Now()
	return &watch{
		opts:   opts,
		trend:  trend,
		pid:    pid,
		start:  start,
		rec:    report.NewProcRecorder(start, trend.Warmup),
		budget: opts.maxCPU / 100,
		reaper: opts.reaper,
	}
}

// ownConns records the local addresses of leakcheck's own connections to the
// command's --pprof endpoint: the command's ends of them are not its leftovers.
type ownConns struct {
	mu    sync.Mutex
	addrs map[string]bool
}

func (o *ownConns) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, network, addr)
	if err == nil {
		o.mu.Lock()
		if o.addrs == nil {
			o.addrs = map[string]bool{}
		}
		o.addrs[c.LocalAddr().String()] = true
		o.mu.Unlock()
	}
	return c, err
}

// has reports whether addr is the local address of one of the connections.
func (o *ownConns) has(addr string) bool {
	if o == nil || addr == "" {
		return false
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.addrs[addr]
}

// loop samples until the command exits, --duration passes, or ctx ends, and
// forwards signals meanwhile. ready runs before each sample.
func (w *watch) loop(ctx context.Context, exited <-chan error, sigc <-chan os.Signal, stderr io.Writer, ready func()) childStatus {
	tick := time.NewTicker(w.opts.interval)
	defer tick.Stop()
	var deadline <-chan time.Time
	if w.opts.duration > 0 {
		t := time.NewTimer(w.opts.duration)
		defer t.Stop()
		deadline = t.C
	}
	status := newStatusLine(stderr)
	defer status.clear()
	w.sample(ctx)
	for {
		select {
		case err := <-exited:
			return childStatus{err: err}
		case sig := <-sigc:
			syscall.Kill(-w.pid, sig.(syscall.Signal))
		case <-ctx.Done():
			return w.stop(exited)
		case <-deadline:
			w.finalSamples(ctx)
			return w.stop(exited)
		case <-tick.C:
			ready()
			w.sample(ctx)
			status.update(w)
		}
	}
}

// finalSamples takes the samples that name the leftovers: the last two
// full samples must both come after the baseline, and apart, since
// descriptorFindings counts only what both hold (a descriptor open in one
// sample may be in passing). Right after a full sample one more suffices;
// when full samples were rare, two are taken, a short gap apart.
func (w *watch) finalSamples(ctx context.Context) {
	gap := min(w.opts.interval/2, 250*time.Millisecond)
	if w.rec.Full() < 2 || w.rec.LastFull() == w.rec.Baseline() {
		w.nextFull = time.Time{}
		w.sample(ctx)
		time.Sleep(gap)
	} else if w.last != nil && !w.last.Counted && time.Since(w.sampled) < gap {
		return // the last tick's full sample is final
	}
	w.nextFull = time.Time{}
	w.sample(ctx)
}

// stop ends the command: SIGTERM to its process group, SIGKILL after --grace.
func (w *watch) stop(exited <-chan error) childStatus {
	syscall.Kill(-w.pid, syscall.SIGTERM)
	t := time.NewTimer(w.opts.grace)
	defer t.Stop()
	select {
	case err := <-exited:
		return childStatus{err: err, stoppedBy: true}
	case <-t.C:
		syscall.Kill(-w.pid, syscall.SIGKILL)
		return childStatus{err: <-exited, stoppedBy: true}
	}
}

// leftoverSettle is how long descendants get, once the command has ended, to
// finish exiting before they count as left behind. The SIGTERM or SIGKILL that
// ended the command reached its whole process group at once, but each process
// exits only when the scheduler next runs it.
const leftoverSettle = 500 * time.Millisecond

// killLeftovers kills what remains of the command's process group and every
// descendant seen while sampling, and returns the descendants that were still
// running: child processes the command left behind.
func (w *watch) killLeftovers() []probes.Child {
	var left []probes.Child
	deadline := time.Now().Add(leftoverSettle)
	for {
		w.adopt()
		left = left[:0]
		for pid, c := range w.seen {
			if pid != w.pid && probes.Running(c) {
				left = append(left, c)
			}
		}
		if len(left) == 0 || !time.Now().Before(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	syscall.Kill(-w.pid, syscall.SIGKILL)
	for _, c := range left {
		syscall.Kill(c.PID, syscall.SIGKILL)
	}
	// Reap the adopted ones; killed, they exit as soon as they run. One
	// that is still alive and was not killed above (orphaned just now) is
	// left behind too: kill it as well.
	for w.reaper && time.Now().Before(deadline.Add(leftoverSettle)) {
		alive := w.adopt()
		if len(alive) == 0 {
			break
		}
		for _, c := range alive {
			if !slices.ContainsFunc(left, func(l probes.Child) bool { return l.PID == c.PID }) {
				left = append(left, c)
				syscall.Kill(c.PID, syscall.SIGKILL)
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	return left
}

// adopt, when leakcheck is the subreaper, records the processes orphaned
// under it (besides the command) as descendants seen, reaps those that
// exited, and returns those that remain.
func (w *watch) adopt() []probes.Child {
	if !w.reaper {
		return nil
	}
	self := os.Getpid()
	procs, err := probes.Descendants(self)
	if err != nil {
		return nil
	}
	if w.seen == nil {
		w.seen = map[int]probes.Child{}
	}
	alive := procs[:0]
	for _, c := range procs {
		switch {
		case c.PID == w.pid:
		case c.Zombie:
			// Ours to reap; another's is reaped by its parent or, once
			// that dies, comes to us.
			if c.PPID == self {
				var ws syscall.WaitStatus
				syscall.Wait4(c.PID, &ws, syscall.WNOHANG, nil)
			}
		default:
			w.seen[c.PID] = c
			alive = append(alive, c)
		}
	}
	return alive
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
	case err != nil:
		w.gaps = append(w.gaps, fmt.Sprintf("%s: %v", now.Format(time.RFC3339), err))
	default:
		w.rec.AddProc(ps)
		w.last = ps
		if w.seen == nil {
			w.seen = map[int]probes.Child{}
		}
		for _, c := range ps.Children {
			w.seen[c.PID] = c
		}
		w.adopt()
	}
	if w.opts.pprof == "" {
		return
	}
	gctx, cancel := context.WithTimeout(ctx, max(w.opts.interval, time.Second))
	defer cancel()
	gs, err := probes.SampleGo(gctx, w.http, w.opts.pprof, probes.DefaultTrackerPath)
	if err != nil {
		w.gaps = append(w.gaps, fmt.Sprintf("%s: %v", now.Format(time.RFC3339), err))
		return
	}
	d, err := w.goroutines(gs)
	if err != nil {
		w.gaps = append(w.gaps, fmt.Sprintf("%s: goroutine profile: %v", now.Format(time.RFC3339), err))
	}
	w.rec.AddGo(gs, d)
	w.goNow = gs.Goroutines
	if gs.Tracker != nil {
		w.snapshot = gs.Tracker // only the latest is kept
	}
}

// goroutines parses a sample's goroutine profile, sharing each distinct
// stack with the dumps before, so that an hour of samples of a daemon whose
// goroutines stay put costs little more than one dump.
func (w *watch) goroutines(gs *probes.GoSample) (*report.GoroutineDump, error) {
	d, err := report.GoroutinesFromProfile(gs.GoroutineProfile)
	if err != nil {
		return nil, err
	}
	if d.Time.IsZero() {
		d.Time = gs.Time
	}
	if w.stacks == nil {
		w.stacks = map[string][]report.Frame{}
	}
	var key strings.Builder
	for i := range d.Goroutines {
		g := &d.Goroutines[i]
		key.Reset()
		for _, f := range g.Stack {
			fmt.Fprintf(&key, "%s %s:%d\n", f.Func, f.File, f.Line)
		}
		if s, ok := w.stacks[key.String()]; ok {
			g.Stack = s
		} else {
			w.stacks[key.String()] = g.Stack
		}
	}
	return d, nil
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
	snap, atExit, err := w.trackerSnapshot(ctx, exitReport)
	if err != nil {
		return nil, err
	}
	res := w.rec.Analyze(report.ProcOptions{Trend: w.trend, Left: left, Own: w.own.has, Snapshot: snap, AtExit: atExit})
	r := report.New(res.Findings, res.Series, rules)
	r.Tables = res.Tables
	r.Metadata = map[string]string{
		"command":  strings.Join(args, " "),
		"duration": time.Since(w.start).Round(time.Millisecond).String(),
		"samples":  fmt.Sprint(w.rec.Samples()),
	}
	if len(w.gaps) > 0 {
		r.Metadata["gaps"] = fmt.Sprintf("%d (first: %s)", len(w.gaps), w.gaps[0])
	}
	return r, nil
}

// trackerSnapshot returns the daemon's exit report when it wrote one, read
// with the limits and schema check of every input; otherwise the last
// snapshot its tracker handler served, if any. atExit says which.
func (w *watch) trackerSnapshot(ctx context.Context, exitReport string) (snap *tracker.Snapshot, atExit bool, err error) {
	in, err := report.ReadInput(ctx, exitReport, report.InputOptions{})
	switch {
	case errors.Is(err, os.ErrNotExist):
		if w.snapshot == nil {
			return nil, false, nil
		}
		in, err = report.ParseInput("the tracker's last snapshot", w.snapshot, probes.MaxBodySize)
		if err != nil {
			return nil, false, err
		}
	case err != nil:
		return nil, false, fmt.Errorf("reading the command's exit report: %w", err)
	default:
		atExit = true
	}
	if in.Kind != report.InputSnapshot {
		return nil, false, fmt.Errorf("the command's tracker snapshot %s is a %s", in.Name, in.Kind)
	}
	return in.Snapshot, atExit, nil
}
