package cmd

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/leakcheck/leakcheck/probes"
)

// The guard kills what a run started when leakcheck itself is killed by
// SIGKILL. The command dies with leakcheck by its parent-death signal, but
// a descendant that daemonized (left the process group and session, and was
// reparented to leakcheck as subreaper) moves on to init when leakcheck dies,
// and nothing in the kernel kills it. So `leakcheck run` starts its own binary
// as a guard, in a process group of its own, and tells it on a pipe the
// command's process group and every descendant it samples; when the pipe
// ends without "done", leakcheck has died, and the guard kills them all.
// What it covers: the process group, and each descendant sampled at least
// once (every --interval); one born since the last sample can escape.

func newGuardCommand() *cobra.Command {
	return &cobra.Command{
		Use:    "guard",
		Short:  "Kill a run's processes if leakcheck dies (started by leakcheck run)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			guard(c.InOrStdin())
			return nil
		},
	}
}

// guard reads "g PGID" and "p PID START" lines from r until "done"; if r
// ends first, it kills the process group and each process still running
// (the same pid and start time: not a reused pid) with SIGKILL.
func guard(r io.Reader) {
	signal.Ignore(syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT)
	var pgid int
	var procs []probes.Child
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		var c probes.Child
		switch line := sc.Text(); {
		case line == "done":
			return
		case len(line) > 2 && line[0] == 'g':
			fmt.Sscan(line[2:], &pgid)
		case len(line) > 2 && line[0] == 'p':
			if _, err := fmt.Sscan(line[2:], &c.PID, &c.Start); err == nil {
				procs = append(procs, c)
			}
		}
	}
	if pgid > 0 {
		syscall.Kill(-pgid, syscall.SIGKILL)
	}
	for _, c := range procs {
		if probes.Running(c) {
			syscall.Kill(c.PID, syscall.SIGKILL)
		}
	}
}

// guardian is leakcheck's end of the guard.
type guardian struct {
	cmd  *exec.Cmd
	w    io.WriteCloser
	told map[int]bool
}

// startGuard starts the guard of the command whose process group is pgid,
// or returns nil, saying why on stderr, when it cannot.
func startGuard(pgid int, stderr io.Writer) *guardian {
	self, err := os.Executable()
	g := &guardian{told: map[int]bool{}}
	if err == nil {
		g.cmd = exec.Command(self, "guard")
		g.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		g.w, err = g.cmd.StdinPipe()
	}
	if err == nil {
		err = g.cmd.Start()
	}
	if err != nil {
		fmt.Fprintf(stderr, "leakcheck: starting the guard: %v; if leakcheck is killed, a daemonized descendant may survive it\n", err)
		return nil
	}
	fmt.Fprintf(g.w, "g %d\n", pgid)
	return g
}

// pid returns the guard's pid, or 0.
func (g *guardian) pid() int {
	if g == nil {
		return 0
	}
	return g.cmd.Process.Pid
}

// tell has the guard kill c if leakcheck dies.
func (g *guardian) tell(c probes.Child) {
	if g != nil && !g.told[c.PID] {
		g.told[c.PID] = true
		fmt.Fprintf(g.w, "p %d %d\n", c.PID, c.Start)
	}
}

// done ends the guard: the run ended, and its processes with it.
func (g *guardian) done() {
	if g != nil {
		fmt.Fprintln(g.w, "done")
		g.w.Close()
		g.cmd.Wait()
	}
}
