package cmd

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/leakcheck/leakcheck/internal/proctest"
)

// ptyRun is leakcheck running on a pseudo-terminal, as in an interactive shell.
type ptyRun struct {
	cmd  *exec.Cmd
	tty  *os.File // the terminal's master side
	mu   sync.Mutex
	out  bytes.Buffer
	done chan struct{}
}

func startPTY(t *testing.T, bin string, args ...string) *ptyRun {
	t.Helper()
	return startPTYSize(t, 80, bin, args...)
}

// startPTYSize starts bin on a terminal cols columns wide.
func startPTYSize(t *testing.T, cols uint16, bin string, args ...string) *ptyRun {
	t.Helper()
	r := &ptyRun{cmd: exec.Command(bin, args...), done: make(chan struct{})}
	// A new session, the terminal its controlling one.
	tty, err := pty.StartWithSize(r.cmd, &pty.Winsize{Rows: 24, Cols: cols})
	if err != nil {
		t.Fatal(err)
	}
	r.tty = tty
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := tty.Read(buf)
			r.mu.Lock()
			r.out.Write(buf[:n])
			r.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	go func() { r.cmd.Wait(); close(r.done) }()
	t.Cleanup(func() {
		r.cmd.Process.Kill()
		<-r.done
		tty.Close()
	})
	return r
}

func (r *ptyRun) output() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.out.String()
}

// tail is the end of the terminal's output, for a failure message.
func (r *ptyRun) tail() string {
	s := r.output()
	return s[max(0, len(s)-1000):]
}

// wait waits up to d for leakcheck to exit and returns its exit code, or -1.
func (r *ptyRun) wait(d time.Duration) int {
	select {
	case <-r.done:
		return r.cmd.ProcessState.ExitCode()
	case <-time.After(d):
		return -1
	}
}

func TestRunTerminal(t *testing.T) {
	skipUnlessE2E(t)
	bin := buildE2E(t, t.TempDir())
	flags := []string{"--interval", "100ms", "--warmup", "300ms", "--format", "json"}

	t.Run("cat", func(t *testing.T) {
		t.Parallel()
		// cat reads the terminal: it must be in the foreground, or it
		// stops on SIGTTIN and leakcheck waits for ever.
		r := startPTY(t, bin.leakcheck, slices.Concat([]string{"run"}, flags, []string{"--output", filepath.Join(t.TempDir(), "r.json"), "--", "cat"})...)
		time.Sleep(500 * time.Millisecond)
		r.tty.Write([]byte("hello from the terminal\n"))
		if !proctest.PollUntil(10*time.Second, func() bool { return strings.Count(r.output(), "hello from the terminal") >= 2 }) {
			t.Fatalf("cat did not echo its input (the terminal's echo, then cat's): %q", r.tail())
		}
		r.tty.Write([]byte{4}) // ^D: end of input
		if code := r.wait(20 * time.Second); code != exitOK {
			t.Errorf("exit %d after ^D, want 0 (-1: still running); terminal: %q", code, r.tail())
		}
	})

	t.Run("Ctrl-C", func(t *testing.T) {
		t.Parallel()
		// ^C reaches the command, in the foreground; it dies of it and the
		// run ends, with the report on the terminal.
		r := startPTY(t, bin.leakcheck, slices.Concat([]string{"run"}, flags, []string{"--", "sleep", proctest.SleepArg(44)})...)
		time.Sleep(700 * time.Millisecond)
		r.tty.Write([]byte{3})
		if code := r.wait(20 * time.Second); code != 128+2 {
			t.Errorf("exit %d after ^C, want 130 (-1: still running); terminal: %q", code, r.tail())
		}
		if !strings.Contains(r.output(), `"findings"`) {
			t.Errorf("no report on the terminal: %q", r.tail())
		}
	})
}

// TestStatusLine checks the live status line on a 40-column terminal: each
// redraw fits the width (a wrapped line leaves a stale row at every redraw),
// and the line is erased at the end.
func TestStatusLine(t *testing.T) {
	skipUnlessE2E(t)
	bin := buildE2E(t, t.TempDir())
	sleep := exec.Command("sleep", "30")
	if err := sleep.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sleep.Process.Kill(); sleep.Wait() })
	for _, tt := range []struct {
		name string
		args []string
	}{
		{"watch", []string{"watch", "--interval", "100ms", "--duration", "1500ms", strconv.Itoa(sleep.Process.Pid)}},
		{"run", []string{"run", "--interval", "100ms", "--duration", "1500ms", "--", "sh", "-c", "while :; do echo child-line; sleep 0.3; done"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			args := slices.Concat(tt.args[:1], []string{"--output", filepath.Join(t.TempDir(), "r.txt")}, tt.args[1:])
			r := startPTYSize(t, 40, bin.leakcheck, args...)
			if code := r.wait(20 * time.Second); code != exitOK {
				t.Fatalf("exit %d; terminal: %q", code, r.tail())
			}
			time.Sleep(100 * time.Millisecond) // the reader drains the terminal
			out := r.output()
			draws := strings.Split(out, "\r\x1b[K")
			n := 0
			for _, d := range draws[1:] {
				// The child's output may follow, on the same line if it
				// wrote while the status was shown: run erases the line
				// after a moment, but cannot know when the child writes.
				status, _, _ := strings.Cut(d, "\r")
				status, _, _ = strings.Cut(status, "child-line")
				if !strings.HasPrefix(status, "leakcheck: ") {
					continue
				}
				n++
				if len(status) > 39 || strings.Contains(status, "\n") {
					t.Errorf("status line %q: longer than 39 columns, or more than a line", status)
				}
			}
			if n < 5 || !strings.HasSuffix(strings.TrimRight(out, "\r\n"), "\r\x1b[K") && tt.name == "watch" {
				t.Errorf("%d status lines, want 5 or more, and the last erased; terminal: %q", n, r.tail())
			}
		})
	}
}
