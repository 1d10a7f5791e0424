package supervise

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/leakcheck/leakcheck/probes"
)

// The guard's protocol, one line each on its standard input:
//
//	g PGID        the command's process group
//	m MARKER      the run's marker (the value of MarkerEnv)
//	p PID START   a descendant (pid and start time: not a reused pid)
//	done          the run is over: exit without killing

// Guard is the body of the guard process that Options.GuardArgs starts: it
// reads what to kill from r, its standard input, until the supervisor says
// the run is over; if r ends first, the supervisor has died, and Guard kills
// the command's process group, each descendant it was told of that is still
// running, and each process it can read whose environment holds the run's
// marker, all with SIGKILL. It ignores the signals of a terminal's Ctrl-C and
// of a shutdown so that it outlives the supervisor.
func Guard(r io.Reader) {
	signal.Ignore(syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT)
	var pgid int
	var marker string
	var procs []probes.Child
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		var c probes.Child
		switch line := sc.Text(); {
		case line == "done":
			return
		case len(line) > 2 && line[0] == 'g':
			fmt.Sscan(line[2:], &pgid)
		case len(line) > 2 && line[0] == 'm':
			marker = line[2:]
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
	if marker != "" {
		killMarked(marker)
	}
}

// markerPasses bounds the scans of killMarked: a marked process may fork
// between a scan and its kill, and its child is found by the next scan.
const markerPasses = 10

// killMarked sends SIGKILL to every process, other than the caller, whose
// environment, as /proc/PID/environ shows it, holds MarkerEnv=marker, and
// returns how many it signalled. It scans until a scan finds none, at most a
// few times. Processes whose environment it may not read (another user's)
// are not seen.
func killMarked(marker string) int {
	entry := []byte("\x00" + MarkerEnv + "=" + marker + "\x00")
	self := os.Getpid()
	killed := 0
	for range markerPasses {
		n := 0
		for _, pid := range marked(entry, self) {
			if syscall.Kill(pid, syscall.SIGKILL) == nil {
				n++
			}
		}
		if n == 0 {
			break
		}
		killed += n
		time.Sleep(5 * time.Millisecond) // time for the killed to exit
	}
	return killed
}

// marked returns the live processes, other than self, whose environment
// holds entry (NUL-delimited on both sides).
func marked(entry []byte, self int) []int {
	d, err := os.Open("/proc")
	if err != nil {
		return nil
	}
	names, _ := d.Readdirnames(-1)
	d.Close()
	var pids []int
	buf := []byte{0}
	for _, name := range names {
		pid, err := strconv.Atoi(name)
		if err != nil || pid == self {
			continue
		}
		b, err := os.ReadFile("/proc/" + name + "/environ")
		if err != nil || len(b) == 0 { // gone, not ours, or a zombie
			continue
		}
		buf = append(append(buf[:1], b...), 0)
		if bytes.Contains(buf, entry) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// guardian is the supervisor's end of the guard.
type guardian struct {
	cmd  *exec.Cmd
	w    io.WriteCloser
	told map[int]bool
}

// startGuard starts the guard of the command whose process group is pgid
// and whose marker is marker: this binary run with args.
func startGuard(args []string, pgid int, marker string) (*guardian, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	g := &guardian{cmd: exec.Command(self, args...), told: map[int]bool{}}
	g.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if g.w, err = g.cmd.StdinPipe(); err != nil {
		return nil, err
	}
	if err := g.cmd.Start(); err != nil {
		return nil, err
	}
	fmt.Fprintf(g.w, "g %d\nm %s\n", pgid, marker)
	return g, nil
}

// pid returns the guard's pid, or 0.
func (g *guardian) pid() int {
	if g == nil {
		return 0
	}
	return g.cmd.Process.Pid
}

// tell has the guard kill c if the supervisor dies.
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
