package cmd

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/creack/pty"
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
	r := &ptyRun{cmd: exec.Command(bin, args...), done: make(chan struct{})}
	tty, err := pty.Start(r.cmd) // a new session, the terminal its controlling one
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
	if runtime.GOOS != "linux" {
		t.Skip("Linux only")
	}
	if testing.Short() {
		t.Skip("end-to-end runs take seconds; skipped with -short")
	}
	bin := buildE2E(t, t.TempDir())
	flags := []string{"--interval", "100ms", "--warmup", "300ms", "--format", "json"}

	t.Run("cat", func(t *testing.T) {
		t.Parallel()
		// cat reads the terminal: it must be in the foreground, or it
		// stops on SIGTTIN and leakcheck waits for ever.
		r := startPTY(t, bin.leakcheck, slices.Concat([]string{"run"}, flags, []string{"--output", filepath.Join(t.TempDir(), "r.json"), "--", "cat"})...)
		time.Sleep(500 * time.Millisecond)
		r.tty.Write([]byte("hello from the terminal\n"))
		if !pollUntil(10*time.Second, func() bool { return strings.Count(r.output(), "hello from the terminal") >= 2 }) {
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
		r := startPTY(t, bin.leakcheck, slices.Concat([]string{"run"}, flags, []string{"--", "sleep", sleepMarker(44)})...)
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
