package cmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/leakcheck/leakcheck/keepalive/demo"
	"github.com/leakcheck/leakcheck/report"
	"github.com/leakcheck/leakcheck/supervise"
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
	// Catch the signals to forward before the command starts: one that came
	// in between would be lost, or kill leakcheck and leave the command, in
	// its own process group, running.
	sigc := make(chan os.Signal, 4)
	signal.Notify(sigc, forwarded...)
	defer signal.Stop(sigc)
	so := supervise.Options{
		Stdin: os.Stdin, Stdout: stdout, Stderr: stderr,
		Env:       []string{tracker.SnapshotEnv + "=" + exitReport},
		Subreaper: opts.reaper,
		Terminal:  opts.reaper,
		Warn:      func(err error) { fmt.Fprintf(stderr, "leakcheck: %v\n", err) },
	}
	if opts.reaper {
		so.GuardArgs = []string{"guard"}
	}
	proc, err := supervise.Start(args, so)
	if err != nil {
		code := exitNotFound
		if errors.Is(err, os.ErrPermission) {
			code = exitCannotRun
		}
		return code, fmt.Errorf("starting %s: %w", args[0], err)
	}
	defer proc.Close()
	return superviseRun(ctx, opts, trend, rules, proc, args, exitReport, stdout, stderr, sigc)
}

// superviseRun samples the started command until it ends or is stopped, then
// sweeps its leftovers and reports.
func superviseRun(ctx context.Context, opts runOptions, trend report.TrendOptions, rules []report.IgnoreRule, proc *supervise.Process, args []string, exitReport string, stdout, stderr io.Writer, sigc chan os.Signal) (int, error) {
	w := newWatch(opts, trend, proc.PID())
	w.proc = proc
	end := w.loop(ctx, sigc, stderr)
	status := childStatus{err: end.err}
	if !end.exited {
		w.sched.Final(ctx)
		first := syscall.SIGTERM
		if end.sig != nil {
			first = 0 // already forwarded
		}
		status = childStatus{err: proc.Stop(first, opts.grace, sigc), stoppedBy: true}
	}
	left := proc.Sweep(leftoverSettle)
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

// childStatus is how the wrapped command ended.
type childStatus struct {
	err       error
	stoppedBy bool // leakcheck stopped it at --duration
}

// String says how the command ended, e.g. "exited with status 3".
func (s childStatus) String() string {
	e := supervise.EndingOf(s.err)
	switch {
	case s.err == nil && s.stoppedBy:
		return "stopped by leakcheck"
	case s.stoppedBy && e.Err == nil:
		return "stopped by leakcheck: " + e.String()
	}
	return e.String()
}

// code returns the exit code the command's own ending asks for: 0 when it
// succeeded or leakcheck stopped it, its status, or 128+n for signal n.
func (s childStatus) code() int {
	switch e := supervise.EndingOf(s.err); {
	case s.err == nil || s.stoppedBy:
		return 0
	case e.Err != nil:
		return exitUsage
	case e.Signal != 0:
		return exitSignalBase + int(e.Signal)
	default:
		return e.Status
	}
}

// leftoverSettle is how long descendants get, once the command has ended, to
// finish exiting before they count as left behind. The SIGTERM or SIGKILL that
// ended the command reached its whole process group at once, but each process
// exits only when the scheduler next runs it.
const leftoverSettle = 500 * time.Millisecond
