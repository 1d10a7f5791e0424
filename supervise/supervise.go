// Package supervise runs one command the way a wrapper such as `leakcheck run`
// must: so that it cannot outlive the wrapper, can always be stopped, and
// leaves nothing running behind it.
//
// It is os/exec plus what a wrapper needs. [Start] starts the command in a
// process group of its own (its pid is the group's id), with a parent-death
// signal set from an OS thread locked for the whole run (the kernel sends the
// signal when the thread that started the child ends, not the process), and
// a marker in its environment ([MarkerEnv]) that its descendants inherit.
// With [Options.Subreaper] the caller becomes the subreaper of the command's
// tree, so that a descendant that daemonizes is reparented to it rather than
// to init; with [Options.Terminal] the command gets the terminal's foreground
// and [Process.Close] takes it back. [Process.Stop] stops the command with a
// signal, then SIGKILL after a grace period or at a second interrupt;
// [Process.Sweep] kills what the command left behind and says what it was.
//
// A wrapper killed by SIGKILL cannot clean up. The command dies with it by
// its parent-death signal, but a daemonized descendant does not. For that
// [Start] can start a guard: the wrapper's own binary, in a process group of
// its own, running [Guard], told on a pipe what to kill. When the pipe ends
// without the word that the run is over, the wrapper has died, and the guard
// kills the command's process group, every descendant it was told about
// ([Process.Track]) and every process whose environment holds the run's
// marker. What escapes it: a descendant born after the last [Process.Track]
// that also cleared or replaced its environment (env -i, a service manager)
// and left the process group.
//
// Supervision needs Linux for the parent-death signal, the subreaper and the
// terminal handover; elsewhere Start runs the command in its own process
// group and reports the rest as unsupported through [Options.Warn].
package supervise

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/leakcheck/leakcheck/probes"
)

// MarkerEnv is the environment variable that carries a run's marker, a
// random token, to the command and every descendant that keeps its
// environment. The guard kills the processes that carry it.
const MarkerEnv = "LEAKCHECK_RUN"

// Options says how to start and supervise a command.
type Options struct {
	// Stdin, Stdout and Stderr are the command's, as in exec.Cmd.
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	// Env is added to the caller's environment for the command.
	Env []string
	// Subreaper makes the calling process the subreaper of its descendants
	// (for good: it is a property of the process), so that orphans of the
	// command's tree, even those that left its session, come to it and
	// cannot escape Sweep. For a program that supervises one command, not
	// for a test binary that runs many.
	Subreaper bool
	// Terminal hands the terminal's foreground to the command's process
	// group when standard input is a terminal whose foreground is the
	// caller's group; Close takes it back.
	Terminal bool
	// GuardArgs, when set, starts a guard: the caller's own binary
	// (os.Executable) with these arguments, which must run Guard on its
	// standard input.
	GuardArgs []string
	// Warn, when set, is told of each protection that could not be set up;
	// the command runs without it.
	Warn func(error)
}

// Process is a command started by Start.
type Process struct {
	cmd     *exec.Cmd
	pid     int
	marker  string
	reaper  bool
	release func()    // ends the locked thread that started the command
	fg      bool      // the command has the terminal's foreground
	guard   *guardian // nil without a guard
	done    chan struct{}
	err     error      // the command's ending, once done is closed
	mu      sync.Mutex // guards seen
	seen    map[int]probes.Child
}

// Start starts the command args[0] with arguments args[1:]. The error is
// exec.Cmd.Start's (errors.Is os.ErrNotExist or os.ErrPermission tell a
// command not found from one that cannot run). The caller must call Close
// once the command has ended.
func Start(args []string, opts Options) (*Process, error) {
	if len(args) == 0 {
		return nil, errors.New("supervise: no command")
	}
	warn := opts.Warn
	if warn == nil {
		warn = func(error) {}
	}
	if opts.Subreaper {
		if err := becomeSubreaper(); err != nil {
			warn(fmt.Errorf("%w; a process that leaves the command's session may escape", err))
		}
	}
	marker, err := newMarker()
	if err != nil {
		return nil, err
	}
	c := exec.Command(args[0], args[1:]...)
	c.Stdin, c.Stdout, c.Stderr = opts.Stdin, opts.Stdout, opts.Stderr
	c.Env = slices.Concat(os.Environ(), opts.Env, []string{MarkerEnv + "=" + marker})
	fg := opts.Terminal && terminalForeground()
	c.SysProcAttr = sysProcAttr(fg)
	release, err := startLocked(c)
	if err != nil {
		return nil, err
	}
	p := &Process{cmd: c, pid: c.Process.Pid, marker: marker, reaper: opts.Subreaper, release: release, fg: fg,
		done: make(chan struct{}), seen: map[int]probes.Child{}}
	if fg {
		// In the background now: writing to the terminal (with stty
		// tostop) and taking it back would stop the caller on SIGTTOU.
		signal.Ignore(syscall.SIGTTOU)
	}
	if opts.GuardArgs != nil {
		p.guard, err = startGuard(opts.GuardArgs, p.pid, marker)
		if err != nil {
			warn(fmt.Errorf("starting the guard: %w; if this process is killed, a daemonized descendant may survive it", err))
		}
	}
	go func() {
		p.err = c.Wait()
		close(p.done)
	}()
	return p, nil
}

// newMarker returns a random token for MarkerEnv.
func newMarker() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("supervise: making the run's marker: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

// startLocked starts c from an OS thread locked until release is called: the
// parent-death signal (sysProcAttr) fires when the thread that started the
// child ends, not the process, and Go ends threads as it pleases.
func startLocked(c *exec.Cmd) (release func(), err error) {
	errc := make(chan error)
	done := make(chan struct{})
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		errc <- c.Start()
		<-done
	}()
	if err := <-errc; err != nil {
		close(done)
		return nil, err
	}
	return func() { close(done) }, nil
}

// PID returns the command's process id, which is also its process group's.
func (p *Process) PID() int { return p.pid }

// Marker returns the run's marker: the value of MarkerEnv in the command's
// environment.
func (p *Process) Marker() string { return p.marker }

// Done is closed when the command has exited and been reaped.
func (p *Process) Done() <-chan struct{} { return p.done }

// Wait waits for the command to exit and returns how it ended, as
// exec.Cmd.Wait does. It may be called any number of times.
func (p *Process) Wait() error {
	<-p.done
	return p.err
}

// Signal sends sig to the command's process group.
func (p *Process) Signal(sig syscall.Signal) error {
	return syscall.Kill(-p.pid, sig)
}

// Stop stops the command and returns how it ended: it sends first (unless 0:
// already sent) to the process group, then SIGKILL after grace or at a
// SIGINT or SIGTERM on more, the caller's own signals; any other signal on
// more is passed on to the group.
func (p *Process) Stop(first syscall.Signal, grace time.Duration, more <-chan os.Signal) error {
	if first != 0 {
		p.Signal(first)
	}
	t := time.NewTimer(grace)
	defer t.Stop()
	for {
		select {
		case <-p.done:
			return p.err
		case sig := <-more:
			if sig != syscall.SIGINT && sig != syscall.SIGTERM {
				if s, ok := sig.(syscall.Signal); ok {
					p.Signal(s)
				}
				continue
			}
		case <-t.C:
		}
		p.Signal(syscall.SIGKILL)
		return p.Wait()
	}
}

// Track records descendants of the command, such as those of a sample, so
// that Sweep and the guard kill them too; with Subreaper it also records the
// processes orphaned under the caller, and reaps those that exited.
func (p *Process) Track(children []probes.Child) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range children {
		p.seen[c.PID] = c
		p.guard.tell(c)
	}
	p.adopt()
}

// Sweep kills what remains of the command's process group and every
// descendant tracked, and returns the descendants that were still running:
// the processes the command left behind. It gives them settle, once the
// command has ended, to finish exiting before they count as left behind: the
// signal that ended the command reached its whole group at once, but each
// process exits only when the scheduler next runs it. Call it once the
// command has ended.
func (p *Process) Sweep(settle time.Duration) []probes.Child {
	p.mu.Lock()
	defer p.mu.Unlock()
	var left []probes.Child
	deadline := time.Now().Add(settle)
	for {
		p.adopt()
		left = left[:0]
		for pid, c := range p.seen {
			if pid != p.pid && probes.Running(c) {
				left = append(left, c)
			}
		}
		if len(left) == 0 || !time.Now().Before(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	p.Signal(syscall.SIGKILL)
	for _, c := range left {
		syscall.Kill(c.PID, syscall.SIGKILL)
	}
	// Reap the adopted ones; killed, they exit as soon as they run. One
	// that is still alive and was not killed above (orphaned just now) is
	// left behind too: kill it as well.
	for p.reaper && time.Now().Before(deadline.Add(settle)) {
		alive := p.adopt()
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

// adopt, with Subreaper, records the processes orphaned under the caller
// (besides the command and the guard) as tracked, reaps those that exited,
// and returns those that remain. p.mu is held.
func (p *Process) adopt() []probes.Child {
	if !p.reaper {
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
		case c.PID == p.pid || c.PID == p.guard.pid():
		case c.Zombie:
			// Ours to reap; another's is reaped by its parent or, once
			// that dies, comes to us.
			if c.PPID == self {
				var ws syscall.WaitStatus
				syscall.Wait4(c.PID, &ws, syscall.WNOHANG, nil)
			}
		default:
			p.seen[c.PID] = c
			p.guard.tell(c)
			alive = append(alive, c)
		}
	}
	return alive
}

// Close ends the supervision once the command has ended (and Sweep is done):
// it tells the guard the run is over, gives the terminal back to the
// caller's process group, and ends the thread that started the command.
func (p *Process) Close() {
	p.guard.done()
	if p.fg {
		reclaimTerminal()
		signal.Reset(syscall.SIGTTOU)
	}
	p.release()
}
