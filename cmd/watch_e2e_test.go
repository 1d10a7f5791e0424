package cmd

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/leakcheck/leakcheck/internal/proctest"
	"github.com/leakcheck/leakcheck/report"
)

// watchFlags keep a watch to a couple of seconds, a full sample every tick.
var watchFlags = []string{"--interval", "100ms", "--warmup", "300ms", "--max-cpu", "100"}

// daemon is a process a test started for leakcheck watch to attach to.
type daemon struct {
	cmd     *exec.Cmd
	signals string // the file where it records the signals it receives
}

// startDaemon starts argv, whose last argument but extra is the signal log
// it keeps, waits until it has created that log (it is running its own code
// then, not an interpreter's start-up), and kills it when the test ends.
func startDaemon(t *testing.T, signals string, argv ...string) *daemon {
	t.Helper()
	c := exec.Command(argv[0], argv[1:]...)
	c.Stdout, c.Stderr = io.Discard, os.Stderr
	if err := c.Start(); err != nil {
		t.Fatalf("starting %q: %v", argv, err)
	}
	t.Cleanup(func() {
		c.Process.Kill()
		c.Wait()
	})
	if !proctest.PollUntil(20*time.Second, func() bool { _, err := os.Stat(signals); return err == nil }) {
		t.Fatalf("%q never started", argv)
	}
	return &daemon{cmd: c, signals: signals}
}

// checkUntouched fails the test unless the daemon is running and has
// received no signal.
func (d *daemon) checkUntouched(t *testing.T) {
	t.Helper()
	if err := d.cmd.Process.Signal(syscall.Signal(0)); err != nil {
		t.Errorf("the watched process is gone: %v", err)
	} else if st := procState(d.cmd.Process.Pid); st != "S" && st != "R" && st != "D" {
		t.Errorf("the watched process is in state %q, want running or sleeping", st)
	}
	if b, err := os.ReadFile(d.signals); err != nil || len(b) > 0 {
		t.Errorf("the watched process received signals %q (%v)", b, err)
	}
}

func TestWatchEndToEnd(t *testing.T) {
	skipUnlessE2E(t)
	bin := buildE2E(t, t.TempDir())
	python, err := exec.LookPath("python3")
	if err != nil {
		t.Fatalf("python3, which CI's image has, is needed for the watch of a Python daemon: %v", err)
	}
	scripts, err := filepath.Abs("../testdata/daemons/python")
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name  string
		argv  func(dir, signals string) []string
		leaky bool
	}{
		{"go leaky", func(dir, sig string) []string { return []string{bin.leaky, "-dir", dir, "-signals", sig} }, true},
		{"go steady", func(dir, sig string) []string { return []string{bin.steady, "-dir", dir, "-signals", sig} }, false},
		{"python leaky", func(dir, sig string) []string { return []string{python, filepath.Join(scripts, "leaky.py"), dir, sig} }, true},
		{"python steady", func(dir, sig string) []string { return []string{python, filepath.Join(scripts, "steady.py"), dir, sig} }, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			d := startDaemon(t, filepath.Join(dir, "signals"), tt.argv(dir, filepath.Join(dir, "signals"))...)
			// watch attaches to a daemon that has been running: a young Go
			// process's memory still creeps up for its first seconds.
			time.Sleep(2 * time.Second)
			// For the steady daemons, the policy is descriptors and
			// sockets: a Go daemon's resident set can still creep for a
			// few seconds on a loaded machine, which is real, if benign.
			failOn := "leftover,growth"
			if !tt.leaky {
				failOn = "leftover"
			}
			args := slices.Concat([]string{"watch"}, watchFlags, []string{"--warmup", "1s", "--duration", "3s", "--fail-on", failOn, strconv.Itoa(d.cmd.Process.Pid)})
			res := runE2E(t, bin.leakcheck, true, args...)
			d.checkUntouched(t)
			r := res.report
			if r.Metadata["exit"] != "still running" {
				t.Errorf("metadata exit = %q", r.Metadata["exit"])
			}
			leftovers := findingsOf(r, report.KindLeftover, func(s string) bool {
				return strings.HasPrefix(s, "fd file ") && strings.HasSuffix(s, "/leak-*.log")
			})
			// The growth of the files' series is the evidence of the
			// leftover group it counts: one leak, one finding.
			fdsGrew := grew(r, func(s string) bool { return s == "fds" || s == "fds.file" })
			grewAny := grew(r, func(s string) bool {
				return strings.HasPrefix(s, "fds") || strings.HasPrefix(s, "sockets") || s == "threads"
			})
			warned := findingsOf(r, report.KindLeftover, func(string) bool { return true })
			warned = slices.DeleteFunc(warned, func(f report.Finding) bool { return f.Severity < report.SeverityWarning })
			switch {
			case tt.leaky && (res.code != exitLeaks || len(leftovers) == 0 || leftovers[0].Count < 20 || !fdsGrew):
				t.Errorf("exit %d, want %d with leftover leak-*.log files (20 or more) and fds growth\n%s", res.code, exitLeaks, describeReport(r))
			case !tt.leaky && (res.code != exitOK || len(warned) > 0 || grewAny):
				t.Errorf("exit %d, want 0 and no leftover that grew, and no growth of descriptors, sockets or threads\n%s", res.code, describeReport(r))
			}
		})
	}

	t.Run("low ulimit -n", func(t *testing.T) {
		t.Parallel()
		// A Python daemon started with 256 descriptors at most: the
		// report's fds series carries that limit (the lead's analysis
		// projects when a growing series reaches it).
		dir := t.TempDir()
		sig := filepath.Join(dir, "signals")
		d := startDaemon(t, sig, "sh", "-c", `ulimit -n 256 && exec "$0" "$@"`, python, filepath.Join(scripts, "leaky.py"), dir, sig, "0.05")
		res := runE2E(t, bin.leakcheck, true, slices.Concat([]string{"watch"}, watchFlags, []string{"--duration", "2s", strconv.Itoa(d.cmd.Process.Pid)})...)
		d.checkUntouched(t)
		i := slices.IndexFunc(res.report.Series, func(s report.Series) bool { return s.Name == "fds" })
		if i < 0 || res.report.Series[i].Limit != 256 {
			t.Errorf("fds series %v, want limit 256\n%s", i, describeReport(res.report))
		}
	})

	t.Run("go pprof", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		port := freeLoopbackPort(t)
		d := startDaemon(t, filepath.Join(dir, "signals"), bin.leaky, "-dir", dir, "-signals", filepath.Join(dir, "signals"), "-pprof", fmt.Sprintf("127.0.0.1:%d", port))
		// --pprof without a scheme is http.
		res := runE2E(t, bin.leakcheck, true, slices.Concat([]string{"watch"}, watchFlags, []string{"--duration", "2s", "--pprof", fmt.Sprintf("127.0.0.1:%d", port), strconv.Itoa(d.cmd.Process.Pid)})...)
		d.checkUntouched(t)
		if len(findingsOf(res.report, report.KindGoroutine, func(s string) bool { return strings.HasPrefix(s, "growing goroutines in chan receive at main.") })) == 0 {
			t.Errorf("no growing goroutines from --pprof\n%s\nstderr: %s", describeReport(res.report), res.stderr)
		}
	})

	t.Run("the process exits", func(t *testing.T) {
		t.Parallel()
		c := exec.Command("sleep", "1")
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		go c.Wait() // reaped as it exits, as its parent would
		res := runE2E(t, bin.leakcheck, true, slices.Concat([]string{"watch"}, watchFlags, []string{"--duration", "30s", strconv.Itoa(c.Process.Pid)})...)
		if res.code != exitOK || res.report.Metadata["exit"] != "exited while watched" || !strings.HasSuffix(res.report.Metadata["command"], "(sleep)") || res.elapsed > 10*time.Second {
			t.Errorf("exit %d after %v, want 0 soon after the process exits\n%s", res.code, res.elapsed, describeReport(res.report))
		}
	})

	t.Run("SIGTERM ends it", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		d := startDaemon(t, filepath.Join(dir, "signals"), bin.steady, "-dir", dir, "-signals", filepath.Join(dir, "signals"))
		run := startE2E(t, bin.leakcheck, true, "", slices.Concat([]string{"watch"}, watchFlags, []string{strconv.Itoa(d.cmd.Process.Pid)})...)
		time.Sleep(time.Second)
		run.cmd.Process.Signal(syscall.SIGTERM)
		res := run.wait()
		if res.code != exitOK || res.report == nil || res.elapsed > 5*time.Second {
			t.Errorf("exit %d after %v, want 0 and a report soon after SIGTERM", res.code, res.elapsed)
		}
		d.checkUntouched(t)
	})

	t.Run("no such process", func(t *testing.T) {
		t.Parallel()
		c := exec.Command("true")
		if err := c.Run(); err != nil {
			t.Fatal(err)
		}
		pid := strconv.Itoa(c.Process.Pid) // exited and reaped: no such process, unless reused at once
		for _, arg := range []string{pid, "0", "nope"} {
			res := runE2E(t, bin.leakcheck, false, "watch", arg)
			if res.code != exitUsage || !(strings.Contains(res.stderr, "no process "+arg) || strings.Contains(res.stderr, "want the process id")) {
				t.Errorf("watch %s: exit %d, stderr %q", arg, res.code, res.stderr)
			}
		}
	})

	t.Run("unreadable process", func(t *testing.T) {
		t.Parallel()
		if os.Geteuid() != 0 {
			t.Skip("needs root, to run leakcheck as another user against a root process")
		}
		// leakcheck as nobody, against a daemon of root's: its /proc
		// descriptors are not nobody's to read.
		exe, err := os.MkdirTemp("", "leakcheck-nobody-")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(exe) })
		b, err := os.ReadFile(bin.leakcheck)
		if err == nil {
			err = os.WriteFile(filepath.Join(exe, "leakcheck"), b, 0o755)
		}
		if err != nil || os.Chmod(exe, 0o755) != nil {
			t.Fatal(err)
		}
		dir := t.TempDir()
		d := startDaemon(t, filepath.Join(dir, "signals"), bin.steady, "-dir", dir, "-signals", filepath.Join(dir, "signals"))
		c := exec.Command(filepath.Join(exe, "leakcheck"), "watch", "--duration", "1s", strconv.Itoa(d.cmd.Process.Pid))
		c.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		out, err := c.CombinedOutput()
		if c.ProcessState == nil || c.ProcessState.ExitCode() != exitUsage ||
			!strings.Contains(string(out), "cannot read the descriptors of process") || !strings.Contains(string(out), "as root") {
			t.Errorf("as nobody: %v, output %q", err, out)
		}
		d.checkUntouched(t)
	})
}
