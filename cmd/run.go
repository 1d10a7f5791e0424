package cmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/leakcheck/leakcheck/keepalive/demo"
	"github.com/leakcheck/leakcheck/probes"
	"github.com/leakcheck/leakcheck/report"
	"github.com/leakcheck/leakcheck/tracker"
)

// defaultRunFailOn is the --fail-on default of run and watch: leftovers,
// growth, goroutines (with --pprof) and resources at their limit, with
// evidence of a leak (warnings
// and errors; info findings, such as a set opened after the baseline that
// holds steady, are reported but do not fail).
const defaultRunFailOn = "leftover,growth,goroutine,limit,severity>=warning"

// demoDuration is how long `leakcheck run` with no command runs the demo.
const demoDuration = 20 * time.Second

type runOptions struct {
	interval  time.Duration
	trend     trendFlags
	duration  time.Duration
	grace     time.Duration
	pprof     string
	format    string
	output    string
	series    string
	ignore    string
	failOn    report.Policy
	maxCPU    float64       // percent of a core that full samples may use
	leakEvery time.Duration // time between goroutineleak profiles
	reaper    bool          // make leakcheck the subreaper of the command's tree (the CLI; not tests, which share a process)
	leaks     string        // for the demo, when no command is given
	readyFile string        // the demo writes its --pprof URL here
	args      []string
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
through (and, in a terminal, the terminal), forwards signals to it, and samples
its descriptors, sockets, threads, memory and child processes every --interval
(and its goroutines and heap when --pprof points at its net/http/pprof
endpoint). It stops the command after --duration or at the first SIGINT or
SIGTERM to leakcheck (SIGTERM, then SIGKILL after --grace or at a second
one), or when it exits, then reports descriptors and sockets left open since
the baseline, series that grow under a trend test, child processes left
behind, and, from a Go daemon that uses the tracker, its own exit report
(LEAKCHECK_REPORT). The command dies with leakcheck, even by SIGKILL. To look
at a daemon that is already running, use watch.

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
			return exitWith(runRun(c.Context(), opts, c.OutOrStdout(), c.ErrOrStderr()))
		},
	}
	addSamplingFlags(c, &opts, 2*time.Second, "stop the command after this long (0: wait for it to exit; the demo runs 20s)")
	c.Flags().DurationVar(&opts.grace, "grace", 5*time.Second, "time between SIGTERM and SIGKILL when stopping the command")
	c.Flags().StringVar(&opts.leaks, "leak", demo.DefaultLeaks, "demo only: leaks to commit: "+demo.LeakNames()+", all or none")
	return c
}

// runRun runs the command (or the demo), samples it, reports, and returns the
// exit code: the command's own failure first, then the fail policy.
func runRun(ctx context.Context, opts runOptions, stdout, stderr io.Writer) (int, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	trend, rules, err := opts.check()
	if err != nil {
		return exitUsage, err
	}
	tmp, err := os.MkdirTemp("", "leakcheck-run-")
	if err != nil {
		return exitUsage, fmt.Errorf("creating a temporary directory: %w", err)
	}
	defer os.RemoveAll(tmp)
	exitReport := filepath.Join(tmp, "exit-report.json")
	readyFile := filepath.Join(tmp, "pprof-url")
	args, err := commandArgs(&opts, readyFile, stderr)
	if err != nil {
		return exitUsage, err
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
	fg := opts.reaper && terminalForeground()
	child.SysProcAttr = sysProcAttr(fg)
	release, err := startChild(child)
	if err != nil {
		code := exitNotFound
		if errors.Is(err, os.ErrPermission) {
			code = exitCannotRun
		}
		return code, fmt.Errorf("starting %s: %w", args[0], err)
	}
	defer release()
	if fg {
		// In the background now: writing to the terminal (with stty
		// tostop) and taking it back would stop leakcheck on SIGTTOU.
		signal.Ignore(syscall.SIGTTOU)
		defer signal.Reset(syscall.SIGTTOU)
		defer reclaimTerminal()
	}
	return supervise(ctx, opts, trend, rules, child, args, exitReport, stdout, stderr, sigc)
}

// supervise samples the started command until it ends or is stopped, then
// sweeps its leftovers and reports.
func supervise(ctx context.Context, opts runOptions, trend report.TrendOptions, rules []report.IgnoreRule, child *exec.Cmd, args []string, exitReport string, stdout, stderr io.Writer, sigc chan os.Signal) (int, error) {
	w := newWatch(opts, trend, child.Process.Pid)
	w.forward = true
	if opts.reaper {
		w.guard = startGuard(child.Process.Pid, stderr)
		defer w.guard.done()
	}
	exited := make(chan error, 1)
	go func() { exited <- child.Wait() }()
	end := w.loop(ctx, exited, sigc, stderr)
	status := childStatus{err: end.err}
	if !end.exited {
		w.sched.Final(ctx)
		status = w.stop(exited, sigc, end.sig != nil)
	}
	left := w.killLeftovers()
	code, err := w.finish(ctx, stdout, exitReport, left, rules, args, status.String())
	if c := status.code(); c != 0 {
		// The command's status passes through, and may equal one of
		// leakcheck's own: say whose it is.
		if err != nil {
			fmt.Fprintf(stderr, "leakcheck: %v\n", err)
		}
		fmt.Fprintf(stderr, "leakcheck: %s %s; leakcheck exits with its status, %d\n", filepath.Base(args[0]), status, c)
		return c, nil
	}
	return code, err
}

// commandArgs returns the command line to run: opts.args, or the demo's.
func commandArgs(opts *runOptions, readyFile string, stderr io.Writer) ([]string, error) {
	if len(opts.args) > 0 {
		return opts.args, nil
	}
	leaks, err := demo.ParseLeaks(opts.leaks)
	if err != nil {
		return nil, err
	}
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("finding leakcheck's own binary for the demo: %w", err)
	}
	leakArg := strings.Join(leaks, ",")
	if leakArg == "" {
		leakArg = "none"
	}
	if opts.duration == 0 {
		opts.duration = demoDuration
	}
	opts.readyFile = readyFile
	fmt.Fprintf(stderr, "leakcheck: running the built-in demo daemon for %s (leaks: %s)\n", opts.duration, opts.leaks)
	return []string{self, "demo", "--leak", leakArg, "--pprof", "127.0.0.1:0", "--ready-file", readyFile}, nil
}

// startChild starts child from an OS thread locked until release is called:
// the parent-death signal (sysProcAttr) fires when the thread that started
// the child ends, not the process, and Go ends threads as it pleases.
func startChild(child *exec.Cmd) (release func(), err error) {
	errc := make(chan error)
	done := make(chan struct{})
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		errc <- child.Start()
		<-done
	}()
	if err := <-errc; err != nil {
		close(done)
		return nil, err
	}
	return func() { close(done) }, nil
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

// stop ends the command: sig (SIGTERM when leakcheck was not signalled, else
// the signal already forwarded) to its process group, then SIGKILL after
// --grace or at a second SIGINT or SIGTERM to leakcheck.
func (w *watch) stop(exited <-chan error, sigc <-chan os.Signal, signalled bool) childStatus {
	if !signalled {
		syscall.Kill(-w.pid, syscall.SIGTERM)
	}
	t := time.NewTimer(w.opts.grace)
	defer t.Stop()
	for {
		select {
		case err := <-exited:
			return childStatus{err: err, stoppedBy: true}
		case sig := <-sigc:
			if sig != syscall.SIGINT && sig != syscall.SIGTERM {
				syscall.Kill(-w.pid, sig.(syscall.Signal))
				continue
			}
		case <-t.C:
		}
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
	alive := procs[:0]
	for _, c := range procs {
		switch {
		case c.PID == w.pid || c.PID == w.guard.pid():
		case c.Zombie:
			// Ours to reap; another's is reaped by its parent or, once
			// that dies, comes to us.
			if c.PPID == self {
				var ws syscall.WaitStatus
				syscall.Wait4(c.PID, &ws, syscall.WNOHANG, nil)
			}
		default:
			w.seen[c.PID] = c
			w.guard.tell(c)
			alive = append(alive, c)
		}
	}
	return alive
}
