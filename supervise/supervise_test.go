package supervise

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/leakcheck/leakcheck/internal/proctest"
	"github.com/leakcheck/leakcheck/probes"
)

// supervisorEnv makes the test binary a supervisor (see supervisor) of the
// script it holds, for the tests that kill the supervisor.
const supervisorEnv = "SUPERVISE_TEST_SUPERVISOR"

func TestMain(m *testing.M) {
	switch {
	case len(os.Args) > 1 && os.Args[1] == "guard": // Options.GuardArgs of supervisor
		Guard(os.Stdin)
		os.Exit(0)
	case os.Getenv(supervisorEnv) != "":
		os.Exit(supervisor(os.Getenv(supervisorEnv)))
	}
	goleak.VerifyTestMain(m)
}

// supervisor starts sh -c script as leakcheck run does (subreaper, guard),
// prints the command's pid, and then, for each line on its standard input,
// tracks the processes orphaned under it and prints "tracked". It runs until
// killed.
func supervisor(script string) int {
	p, err := Start([]string{"sh", "-c", script}, Options{
		Subreaper: true, // the command's output: /dev/null, or a survivor holds the test's pipe
		GuardArgs: []string{"guard"},
		Warn:      func(err error) { fmt.Fprintln(os.Stderr, err) },
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	fmt.Println(p.PID())
	for sc := bufio.NewScanner(os.Stdin); sc.Scan(); {
		p.Track(nil)
		fmt.Println("tracked")
	}
	select {}
}

func skipUnlessLinux(t *testing.T) {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skip("supervision reads /proc and needs Linux's prctl: Linux only")
	}
}

// killAll kills, at the end of the test, the processes left with arg.
func killAll(t *testing.T, args ...string) {
	t.Cleanup(func() {
		for _, a := range args {
			for _, pid := range proctest.WithArg(t, a) {
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	})
}

// start starts sh -c script under supervision, without subreaper or guard
// (tests share their process), and closes it at the end of the test.
func start(t *testing.T, script string, opts Options) *Process {
	t.Helper()
	p, err := Start([]string{"sh", "-c", script, "sh", t.TempDir()}, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.Signal(syscall.SIGKILL)
		p.Wait()
		p.Close()
	})
	return p
}

// waitFile waits for the command to create path.
func waitFile(t *testing.T, path string) {
	t.Helper()
	if !proctest.PollUntil(10*time.Second, func() bool { _, err := os.Stat(path); return err == nil }) {
		t.Fatalf("%s never appeared", path)
	}
}

// ending describes how a command ended: "exited with status N" or "was
// killed by signal N (name)".
func ending(err error) string { return EndingOf(err).String() }

func TestStartWait(t *testing.T) {
	skipUnlessLinux(t)
	t.Parallel()
	dir := t.TempDir()
	notExec := filepath.Join(dir, "not-executable")
	if err := os.WriteFile(notExec, []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		args    []string
		startIs error // what Start's error must be
		want    string
		ending  Ending
	}{
		{name: "success", args: []string{"true"}, want: "exited with status 0"},
		{name: "own status", args: []string{"sh", "-c", "exit 3"}, want: "exited with status 3", ending: Ending{Status: 3}},
		{name: "killed", args: []string{"sh", "-c", "kill -s KILL $$"}, want: "was killed by signal 9 (killed)", ending: Ending{Status: -1, Signal: syscall.SIGKILL}},
		{name: "not found", args: []string{filepath.Join(dir, "missing")}, startIs: os.ErrNotExist},
		{name: "not executable", args: []string{notExec}, startIs: os.ErrPermission},
		{name: "no command", args: nil, startIs: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Start(tt.args, Options{})
			if tt.want == "" {
				if err == nil || tt.startIs != nil && !errors.Is(err, tt.startIs) {
					t.Fatalf("Start: %v, want an error that is %v", err, tt.startIs)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			<-p.Done()
			if got := EndingOf(p.Wait()); got != tt.ending || got.String() != tt.want {
				t.Errorf("ended %+v (%s), want %+v (%s)", got, got, tt.ending, tt.want)
			}
			if got := ending(p.Wait()); got != tt.want {
				t.Errorf("second Wait: %s, want %s", got, tt.want)
			}
		})
	}
}

// TestEnvironment checks the command's process group and environment: its
// own group, Env added, and the run's marker, unique to the run.
func TestEnvironment(t *testing.T) {
	skipUnlessLinux(t)
	t.Parallel()
	var out [2]bytes.Buffer
	var ps [2]*Process
	for i := range ps {
		p, err := Start([]string{"sh", "-c", `printf '%s %s %s' "$(ps -o pgid= $$ | tr -d ' ')" "$LEAKCHECK_RUN" "$EXTRA"`},
			Options{Stdout: &out[i], Env: []string{"EXTRA=x" + strconv.Itoa(i)}})
		if err != nil {
			t.Fatal(err)
		}
		ps[i] = p
	}
	for i, p := range ps {
		if err := p.Wait(); err != nil {
			t.Fatal(err)
		}
		p.Close()
		want := fmt.Sprintf("%d %s x%d", p.PID(), p.Marker(), i)
		if got := out[i].String(); got != want {
			t.Errorf("command %d printed %q (pgid, marker, Env), want %q", i, got, want)
		}
		if len(p.Marker()) != 32 {
			t.Errorf("marker %q, want 32 hexadecimal digits", p.Marker())
		}
	}
	if ps[0].Marker() == ps[1].Marker() {
		t.Errorf("two runs share the marker %s", ps[0].Marker())
	}
}

func TestStop(t *testing.T) {
	skipUnlessLinux(t)
	t.Parallel()
	const ignoreTERM = `trap "" TERM; `
	tests := []struct {
		name    string
		script  string // $1: a directory; the script creates $1/ready when set up
		first   syscall.Signal
		grace   time.Duration
		more    []os.Signal // sent on the channel, 200 ms apart, once ready
		want    string
		atLeast time.Duration // the stop takes at least this long
		within  time.Duration // and at most this long
	}{
		{name: "SIGTERM", script: `: > "$1/ready"; exec sleep 60`, first: syscall.SIGTERM, grace: time.Minute,
			want: "was killed by signal 15 (terminated)", within: 5 * time.Second},
		{name: "SIGTERM ignored: SIGKILL after grace", script: ignoreTERM + `: > "$1/ready"; sleep 60; exit 0`,
			first: syscall.SIGTERM, grace: 300 * time.Millisecond, want: "was killed by signal 9 (killed)", atLeast: 300 * time.Millisecond, within: 5 * time.Second},
		{name: "SIGTERM ignored: SIGKILL at a second SIGTERM", script: ignoreTERM + `: > "$1/ready"; sleep 60; exit 0`,
			first: syscall.SIGTERM, grace: time.Minute, more: []os.Signal{syscall.SIGTERM},
			want: "was killed by signal 9 (killed)", atLeast: 200 * time.Millisecond, within: 5 * time.Second},
		{name: "already signalled, SIGINT kills", script: ignoreTERM + `: > "$1/ready"; sleep 60; exit 0`,
			grace: time.Minute, more: []os.Signal{syscall.SIGINT}, want: "was killed by signal 9 (killed)", within: 5 * time.Second},
		{name: "other signals pass on", script: `trap 'exit 7' USR1; : > "$1/ready"; while :; do sleep 0.05; done`,
			grace: time.Minute, more: []os.Signal{syscall.SIGUSR1}, want: "exited with status 7", within: 5 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := start(t, tt.script, Options{})
			waitFile(t, filepath.Join(p.cmd.Args[4], "ready"))
			more := make(chan os.Signal, len(tt.more))
			go func() {
				for _, s := range tt.more {
					time.Sleep(200 * time.Millisecond)
					more <- s
				}
			}()
			begin := time.Now()
			got := ending(p.Stop(tt.first, tt.grace, more))
			took := time.Since(begin)
			if got != tt.want || took < tt.atLeast || took > tt.within {
				t.Errorf("Stop: ended %s after %v, want %s after %v to %v", got, took, tt.want, tt.atLeast, tt.within)
			}
		})
	}
}

// TestSweep checks that Sweep kills and names what the command left: a
// tracked descendant that left the process group, and one that stayed in it.
func TestSweep(t *testing.T) {
	skipUnlessLinux(t)
	t.Parallel()
	tests := []struct {
		name   string
		script string // $1: a directory; the script creates $1/ready when its descendants run
		track  bool   // Track the descendants once ready
		left   []string
	}{
		{name: "nothing left", script: `: > "$1/ready"; exec sleep 60`},
		{name: "daemonized, tracked", script: `setsid sh -c ': > "$0/ready"; exec sleep @1' "$1" & exec sleep 60`, track: true, left: []string{"@1"}},
		{name: "in the group, ignoring SIGTERM", script: `sh -c 'trap "" TERM; : > "$0/ready"; exec sleep @2' "$1" & exec sleep 60`,
			track: true, left: []string{"@2"}},
		{name: "in the group, untracked", script: `sh -c 'trap "" TERM; : > "$0/ready"; exec sleep @3' "$1" & exec sleep 60`},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			script := tt.script
			var markers []string
			for j := 1; j <= 3; j++ {
				m := proctest.SleepArg(100*(i+1) + j)
				script = strings.ReplaceAll(script, "@"+strconv.Itoa(j), m)
				markers = append(markers, m)
			}
			killAll(t, markers...)
			p := start(t, script, Options{})
			waitFile(t, filepath.Join(p.cmd.Args[4], "ready"))
			// The processes Sweep must name, found before it kills them.
			var want []int
			for _, l := range tt.left {
				m := markers[l[1]-'1']
				if !proctest.PollUntil(10*time.Second, func() bool { return len(proctest.WithArg(t, m)) > 0 }) {
					t.Fatalf("sleep %s never started", m)
				}
				want = append(want, proctest.WithArg(t, m)...)
			}
			if tt.track {
				d, err := probes.Descendants(p.PID())
				if err != nil {
					t.Fatal(err)
				}
				p.Track(d)
			}
			p.Stop(syscall.SIGTERM, time.Minute, nil)
			var got []int
			for _, c := range p.Sweep(200 * time.Millisecond) {
				got = append(got, c.PID)
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("left %v, want %v (the sleeps %v)", got, want, tt.left)
			}
			if !proctest.PollUntil(2*time.Second, func() bool {
				for _, m := range markers {
					if len(proctest.WithArg(t, m)) > 0 {
						return false
					}
				}
				return true
			}) {
				for _, m := range markers {
					if pids := proctest.WithArg(t, m); len(pids) > 0 {
						t.Errorf("sleep %s still running after Sweep: %v", m, pids)
					}
				}
			}
		})
	}
}

// TestKillMarked checks that the marker scan kills exactly the processes
// that carry the marker, not one whose marker merely begins the same.
func TestKillMarked(t *testing.T) {
	skipUnlessLinux(t)
	t.Parallel()
	marker := fmt.Sprintf("test%d", os.Getpid())
	procs := []struct {
		env    string
		killed bool
	}{
		{env: MarkerEnv + "=" + marker, killed: true},
		{env: MarkerEnv + "=" + marker + "x"},
		{env: "X" + MarkerEnv + "=" + marker},
		{env: "OTHER=1"},
	}
	cmds := make([]*exec.Cmd, len(procs))
	for i, pr := range procs {
		c := exec.Command("sleep", "60")
		c.Env = []string{"PATH=" + os.Getenv("PATH"), pr.env, "LAST=1"}
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		cmds[i] = c
		defer func() { c.Process.Kill(); c.Wait() }()
	}
	if n := killMarked(marker); n < 1 {
		t.Errorf("killMarked: %d killed, want at least 1", n)
	}
	for i, pr := range procs {
		exited := make(chan struct{})
		go func() { cmds[i].Process.Wait(); close(exited) }()
		select {
		case <-exited:
			if !pr.killed {
				t.Errorf("%s: killed", pr.env)
			}
		case <-time.After(time.Second):
			if pr.killed {
				t.Errorf("%s: still running", pr.env)
			}
			cmds[i].Process.Kill()
			<-exited
		}
	}
}

// TestGuard kills a supervisor (this test binary, as supervisor) with
// SIGKILL and checks what its guard kills: the command, by its parent-death
// signal and its process group; a daemonized grandchild the supervisor
// tracked; one it never saw, by the marker in its environment; and, the
// limit, not one that was never seen and cleared its environment.
func TestGuard(t *testing.T) {
	skipUnlessLinux(t)
	if testing.Short() {
		t.Skip("starts supervisors; skipped with -short")
	}
	t.Parallel()
	tests := []struct {
		name     string
		script   string // @1: the command's own sleep; @2: a daemonized grandchild
		track    bool   // the supervisor tracks the grandchild before it dies
		survives bool   // the grandchild survives the supervisor
	}{
		{name: "command", script: `exec sleep @1`},
		{name: "daemonized, tracked, clean environment", script: `(setsid env -i sleep @2 &); exec sleep @1`, track: true},
		{name: "daemonized, never seen", script: `(setsid sleep @2 &); exec sleep @1`},
		{name: "double fork, never seen", script: `(setsid sh -c 'sleep @2 & exit' &); exec sleep @1`},
		{name: "daemonized, never seen, clean environment", script: `(setsid env -i sleep @2 &); exec sleep @1`, survives: true},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			own, grand := proctest.SleepArg(200+10*i+1), proctest.SleepArg(200+10*i+2)
			killAll(t, own, grand)
			script := strings.NewReplacer("@1", own, "@2", grand).Replace(tt.script)
			sup := exec.Command(os.Args[0])
			sup.Env = append(os.Environ(), supervisorEnv+"="+script)
			in, err := sup.StdinPipe()
			if err != nil {
				t.Fatal(err)
			}
			defer in.Close()
			out, err := sup.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			var stderr bytes.Buffer
			sup.Stderr = &stderr
			if err := sup.Start(); err != nil {
				t.Fatal(err)
			}
			defer func() { sup.Process.Kill(); sup.Wait() }()
			lines := bufio.NewScanner(out)
			if !lines.Scan() {
				t.Fatalf("the supervisor printed no pid; stderr: %s", stderr.String())
			}
			wantGrand := strings.Contains(tt.script, "@2")
			if !proctest.PollUntil(10*time.Second, func() bool {
				return len(proctest.WithArg(t, own)) > 0 && (!wantGrand || len(proctest.WithArg(t, grand)) > 0)
			}) {
				t.Fatal("the command or its grandchild never started")
			}
			time.Sleep(100 * time.Millisecond) // env -i has run sleep
			if tt.track {
				fmt.Fprintln(in, "track")
				if !lines.Scan() {
					t.Fatal("the supervisor did not track")
				}
			}
			sup.Process.Kill()
			sup.Wait()
			gone := func() bool { return len(proctest.WithArg(t, own)) == 0 && len(proctest.WithArg(t, grand)) == 0 }
			if !tt.survives && !proctest.PollUntil(2*time.Second, gone) {
				t.Errorf("2 s after SIGKILL to the supervisor, still running: command %v, grandchild %v; stderr: %s",
					proctest.WithArg(t, own), proctest.WithArg(t, grand), stderr.String())
			}
			if tt.survives {
				if !proctest.PollUntil(2*time.Second, func() bool { return len(proctest.WithArg(t, own)) == 0 }) {
					t.Errorf("the command survived the supervisor: %v", proctest.WithArg(t, own))
				}
				time.Sleep(300 * time.Millisecond) // time for the guard to act
				if len(proctest.WithArg(t, grand)) == 0 {
					t.Errorf("a grandchild never seen that cleared its environment was killed: the limit documented in Guard has gone; update the doc")
				}
			}
		})
	}
}

func TestEndingOf(t *testing.T) {
	t.Parallel()
	other := errors.New("copying output: broken pipe")
	tests := []struct {
		name string
		err  error
		want Ending
		says string
	}{
		{name: "success", err: nil, want: Ending{}, says: "exited with status 0"},
		{name: "not an exit status", err: other, want: Ending{Status: -1, Err: other}, says: "copying output: broken pipe"},
		{name: "wrapped not an exit status", err: fmt.Errorf("waiting: %w", other), want: Ending{Status: -1, Err: fmt.Errorf("waiting: %w", other)}, says: "waiting: copying output: broken pipe"},
	}
	for _, tt := range tests {
		got := EndingOf(tt.err)
		if got.Status != tt.want.Status || got.Signal != tt.want.Signal || (got.Err == nil) != (tt.want.Err == nil) || got.String() != tt.says {
			t.Errorf("%s: EndingOf(%v) = %+v (%q), want %+v (%q)", tt.name, tt.err, got, got, tt.want, tt.says)
		}
	}
}
