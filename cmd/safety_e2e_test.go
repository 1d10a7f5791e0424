package cmd

import (
	"bytes"
	"context"
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

// TestRunSafety checks that `leakcheck run` is safe to point at production:
// what it starts dies with it, it can always be stopped, and its output
// never clobbers what is at the path.
func TestRunSafety(t *testing.T) {
	skipUnlessE2E(t)
	bin := buildE2E(t, t.TempDir())
	lc := bin.leakcheck

	t.Run("SIGKILL to leakcheck", func(t *testing.T) {
		t.Parallel()
		// The command, and a grandchild that daemonized (its own session,
		// reparented to leakcheck), both die with leakcheck.
		child, grandchild := proctest.SleepArg(41), proctest.SleepArg(42)
		script := `(setsid sleep ` + grandchild + ` &); sleep ` + child
		run := startE2E(t, lc, false, "", slices.Concat([]string{"run"}, e2eFlags, []string{"--", "sh", "-c", script})...)
		if !proctest.PollUntil(10*time.Second, func() bool {
			return len(proctest.WithArg(t, child)) > 0 && len(proctest.WithArg(t, grandchild)) > 0
		}) {
			t.Fatal("the command and its daemonized grandchild never started")
		}
		time.Sleep(500 * time.Millisecond) // a few samples: leakcheck has seen both
		if err := run.cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		run.wait()
		if !proctest.PollUntil(2*time.Second, func() bool {
			return len(proctest.WithArg(t, child)) == 0 && len(proctest.WithArg(t, grandchild)) == 0
		}) {
			t.Errorf("2 s after SIGKILL to leakcheck, still running: command %v, daemonized grandchild %v",
				proctest.WithArg(t, child), proctest.WithArg(t, grandchild))
		}
	})

	t.Run("SIGKILL to leakcheck, grandchild never sampled", func(t *testing.T) {
		t.Parallel()
		// One sample, at the start (--interval 1h); the grandchild
		// daemonizes after it, so the guard knows it only by the marker
		// in its environment.
		child, grandchild := proctest.SleepArg(46), proctest.SleepArg(47)
		script := `sleep 0.5; setsid sh -c "sleep ` + grandchild + `" & sleep ` + child
		run := startE2E(t, lc, false, "", "run", "--interval", "1h", "--warmup", "0s", "--", "sh", "-c", script)
		if !proctest.PollUntil(10*time.Second, func() bool { return len(proctest.WithArg(t, grandchild)) > 0 }) {
			t.Fatal("the daemonized grandchild never started")
		}
		if err := run.cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		if !proctest.PollUntil(2*time.Second, func() bool {
			return len(proctest.WithArg(t, child)) == 0 && len(proctest.WithArg(t, grandchild)) == 0
		}) {
			t.Errorf("2 s after SIGKILL to leakcheck, still running: command %v, daemonized grandchild %v",
				proctest.WithArg(t, child), proctest.WithArg(t, grandchild))
		}
		run.wait()
	})

	t.Run("second SIGTERM", func(t *testing.T) {
		t.Parallel()
		// A command that ignores SIGTERM, no --duration, a long --grace:
		// the second SIGTERM to leakcheck kills it, and the run reports.
		dir := t.TempDir()
		ready := filepath.Join(dir, "ready")
		arg := proctest.SleepArg(43)
		run := startE2E(t, lc, true, "", "run", "--interval", "100ms", "--warmup", "300ms", "--grace", "60s", "--",
			"sh", "-c", `trap "" TERM; : > "$1"; sleep `+arg, "sh", ready)
		if !proctest.PollUntil(10*time.Second, func() bool { _, err := os.Stat(ready); return err == nil }) {
			t.Fatal("the command never started")
		}
		time.Sleep(300 * time.Millisecond)
		run.cmd.Process.Signal(syscall.SIGTERM)
		time.Sleep(500 * time.Millisecond)
		if len(proctest.WithArg(t, arg)) == 0 {
			t.Fatal("the command did not ignore SIGTERM")
		}
		start := time.Now()
		run.cmd.Process.Signal(syscall.SIGTERM)
		res := run.wait()
		if res.code != exitOK || res.report == nil || !strings.Contains(res.report.Metadata["exit"], "signal 9") || time.Since(start) > 3*time.Second {
			t.Errorf("exit %d %v after the second SIGTERM, want 0 and a report of the command killed\n%s\nstderr: %s",
				res.code, time.Since(start), describeReport(res.report), res.stderr)
		}
		if left := proctest.WithArg(t, arg); len(left) > 0 {
			t.Errorf("left running: %v", left)
		}
	})

	t.Run("199 leftovers, 20 runs of 20", func(t *testing.T) {
		t.Parallel()
		// leaky starts after the baseline, leaks 199 of each in about
		// 0.2 s, then holds them: every run must count all 199 files.
		for i := range 20 {
			args := slices.Concat([]string{"run", "--interval", "50ms", "--warmup", "200ms", "--max-cpu", "100", "--duration", "1200ms", "--"},
				[]string{bin.leaky, "-dir", t.TempDir(), "-after", "500ms", "-tick", "1ms", "-max", "199"})
			res := runE2E(t, lc, true, args...)
			if !strings.Contains(res.stderr, "holding 199 files") {
				t.Fatalf("run %d: leaky did not finish leaking in time; stderr: %s", i, res.stderr)
			}
			fs := findingsOf(res.report, report.KindLeftover, func(s string) bool { return strings.HasSuffix(s, "/leak-*.log") })
			if len(fs) != 1 || fs[0].Count != 199 {
				t.Errorf("run %d: leftover files %v, want one finding of 199\n%s", i, fs, describeReport(res.report))
			}
		}
	})

	t.Run("path replaced", func(t *testing.T) {
		t.Parallel()
		// A file held open since before the baseline, removed and
		// recreated at its path during the run (as /dev/null or a
		// rotated log can be): the same descriptor, not a new leak.
		dir := t.TempDir()
		held, ready := filepath.Join(dir, "held"), filepath.Join(dir, "ready")
		run := startE2E(t, lc, true, "", slices.Concat([]string{"run"}, e2eFlags, []string{"--duration", "2s", "--",
			"sh", "-c", `exec 3>"$1"; : > "$2"; sleep ` + proctest.SleepArg(45), "sh", held, ready})...)
		if !proctest.PollUntil(10*time.Second, func() bool { _, err := os.Stat(ready); return err == nil }) {
			t.Fatal("the command never started")
		}
		time.Sleep(time.Second) // past the baseline
		if err := os.Remove(held); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(held, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		res := run.wait()
		if fs := findingsOf(res.report, report.KindLeftover, func(string) bool { return true }); res.code != exitOK || len(fs) > 0 {
			t.Errorf("exit %d, leftovers %v\n%s", res.code, fs, describeReport(res.report))
		}
	})

	t.Run("output", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		run := func(output string) e2eResult {
			t.Helper()
			return runE2E(t, lc, false, slices.Concat([]string{"run"}, e2eFlags, []string{"--format", "json", "--output", output, "--", "sleep", "0.5"})...)
		}
		// A symbolic link: the report replaces its target, which keeps its mode.
		target, link := filepath.Join(dir, "target.json"), filepath.Join(dir, "link.json")
		if err := os.WriteFile(target, []byte("old"), 0o640); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink("target.json", link); err != nil {
			t.Fatal(err)
		}
		if res := run(link); res.code != exitOK {
			t.Fatalf("--output symlink: exit %d: %s", res.code, res.stderr)
		}
		if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
			t.Errorf("the symlink was replaced: %v %v", fi.Mode(), err)
		}
		if fi, err := os.Stat(target); err != nil || fi.Mode().Perm() != 0o640 || fi.Size() < 100 {
			t.Errorf("the target: %v, %v", fi, err)
		}
		if ents, _ := os.ReadDir(dir); len(ents) != 2 {
			t.Errorf("temporary files left: %v", ents)
		}
		// A FIFO: written into, as a shell's redirection would.
		fifo := filepath.Join(dir, "fifo")
		if err := syscall.Mkfifo(fifo, 0o600); err != nil {
			t.Fatal(err)
		}
		got := make(chan []byte, 1)
		go func() {
			f, err := os.Open(fifo) // blocks until leakcheck opens it to write
			if err != nil {
				got <- nil
				return
			}
			defer f.Close()
			b, _ := io.ReadAll(f)
			got <- b
		}()
		if res := run(fifo); res.code != exitOK {
			t.Fatalf("--output FIFO: exit %d: %s", res.code, res.stderr)
		}
		if b := <-got; !bytes.Contains(b, []byte(`"findings"`)) {
			t.Errorf("read from the FIFO: %q", b)
		}
		if fi, err := os.Lstat(fifo); err != nil || fi.Mode()&os.ModeNamedPipe == 0 {
			t.Errorf("the FIFO is now %v (%v)", fi.Mode(), err)
		}
		// /dev/stdout, here a pipe: written into, as a shell's redirection would.
		res := run("/dev/stdout")
		if res.code != exitOK || !strings.Contains(res.stdout, `"findings"`) {
			t.Errorf("--output /dev/stdout: exit %d, stdout %q, stderr %s", res.code, res.stdout, res.stderr)
		}
		// A character device (a null device of our own, never /dev/null).
		if os.Geteuid() != 0 {
			t.Skip("making a device node needs root")
		}
		dev := filepath.Join(dir, "null")
		if err := syscall.Mknod(dev, syscall.S_IFCHR|0o666, 1<<8|3); err != nil {
			t.Skipf("mknod: %v", err)
		}
		if res := run(dev); res.code != exitOK {
			t.Fatalf("--output device: exit %d: %s", res.code, res.stderr)
		}
		if fi, err := os.Lstat(dev); err != nil || fi.Mode()&os.ModeCharDevice == 0 {
			t.Errorf("the device is now %v (%v)", fi.Mode(), err)
		}
	})

	t.Run("closed stdout", func(t *testing.T) {
		t.Parallel()
		// As in "leakcheck run ... | head -c 1": the report's writes fail
		// with EPIPE; leakcheck still stops the command and exits with
		// its own status, 3 (leaks), not 141 (SIGPIPE).
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		args := slices.Concat([]string{"run"}, e2eFlags, []string{"--duration", "1500ms", "--", bin.leaky, "-dir", t.TempDir()})
		c := exec.CommandContext(ctx, lc, args...)
		var stderr bytes.Buffer
		c.Stdout, c.Stderr = w, &stderr
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		w.Close()
		var one [1]byte
		if _, err := r.Read(one[:]); err != nil {
			t.Fatal(err)
		}
		r.Close()
		c.Wait()
		if code := c.ProcessState.ExitCode(); code != exitLeaks {
			t.Errorf("exit %d (%v), want %d; stderr: %s", code, c.ProcessState, exitLeaks, stderr.String())
		}
		if !strings.Contains(stderr.String(), "stopping with") {
			t.Errorf("leaky was not stopped by leakcheck; stderr: %s", stderr.String())
		}

		// watch, its stdout closed before the report: exit 3 too.
		dir := t.TempDir()
		d := startDaemon(t, filepath.Join(dir, "signals"), bin.leaky, "-dir", dir, "-signals", filepath.Join(dir, "signals"))
		if r, w, err = os.Pipe(); err != nil {
			t.Fatal(err)
		}
		r.Close()
		c = exec.CommandContext(ctx, lc, slices.Concat([]string{"watch"}, watchFlags, []string{"--duration", "1s", strconv.Itoa(d.cmd.Process.Pid)})...)
		stderr.Reset()
		c.Stdout, c.Stderr = w, &stderr
		err = c.Run()
		w.Close()
		if code := c.ProcessState.ExitCode(); code != exitLeaks {
			t.Errorf("watch: exit %d (%v), want %d; stderr: %s", code, err, exitLeaks, stderr.String())
		}
		d.checkUntouched(t)
	})
}
