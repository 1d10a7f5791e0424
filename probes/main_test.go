package probes

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/leakcheck/leakcheck/tracker/leaktest"
)

// helperEnv, when set in the environment, turns the test binary into a
// helper process. "pipes N" opens N pipes, prints "ready" and waits for its
// standard input to close, then exits. "zombie" starts a child that exits at
// once and does not reap it until its own input closes: the child stays a
// zombie meanwhile; it prints "ready PID" with the child's pid. "exit" exits.
const helperEnv = "LEAKCHECK_PROBES_HELPER"

func TestMain(m *testing.M) {
	if mode := os.Getenv(helperEnv); mode != "" {
		os.Exit(runHelper(mode))
	}
	leaktest.VerifyTestMain(m)
}

func runHelper(mode string) int {
	switch mode {
	case "exit":
		return 0
	case "zombie":
		return runZombieHelper()
	}
	var n int
	if _, err := fmt.Sscanf(mode, "pipes %d", &n); err != nil {
		fmt.Fprintln(os.Stderr, "helper: bad mode:", mode)
		return 2
	}
	files := make([]*os.File, 0, 2*n)
	for range n {
		r, w, err := os.Pipe()
		if err != nil {
			fmt.Fprintln(os.Stderr, "helper:", err)
			return 1
		}
		files = append(files, r, w)
	}
	fmt.Println("ready")
	io.Copy(io.Discard, os.Stdin)
	for _, f := range files {
		f.Close()
	}
	return 0
}

func runZombieHelper() int {
	env := []string{helperEnv + "=exit", "GORACE=atexit_sleep_ms=0"}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, helperEnv+"=") && !strings.HasPrefix(kv, "GORACE=") {
			env = append(env, kv)
		}
	}
	p, err := os.StartProcess(os.Args[0], []string{os.Args[0]}, &os.ProcAttr{Env: env})
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		return 1
	}
	fmt.Println("ready", p.Pid)
	io.Copy(io.Discard, os.Stdin)
	p.Wait()
	return 0
}

// helperCommand returns the command that runs the test binary as a helper.
func helperCommand(mode string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	// Under the race detector a process sleeps a second before it exits;
	// helpers need not.
	cmd.Env = append(os.Environ(), helperEnv+"="+mode, "GORACE="+os.Getenv("GORACE")+" atexit_sleep_ms=0")
	return cmd
}

// A helper is a child process started from the test binary.
type helper struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	done  chan error
}

// startHelper starts a helper process holding npipes pipes and waits until
// they are open. The helper is stopped when the test ends.
func startHelper(t testing.TB, npipes int) *helper {
	t.Helper()
	h, _ := startHelperMode(t, "pipes "+strconv.Itoa(npipes))
	return h
}

// startHelperMode starts a helper in the given mode and returns it and the
// rest of its "ready" line.
func startHelperMode(t testing.TB, mode string) (*helper, string) {
	t.Helper()
	cmd := helperCommand(mode)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	h := &helper{cmd: cmd, stdin: stdin, done: make(chan error, 1)}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "ready") {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("helper did not start: %q, %v", line, err)
	}
	go func() { h.done <- cmd.Wait() }()
	t.Cleanup(func() { h.stop(t) })
	return h, strings.TrimSpace(strings.TrimPrefix(line, "ready"))
}

func (h *helper) pid() int { return h.cmd.Process.Pid }

// stop closes the helper's input, which makes it exit, and waits for it;
// it is killed if it does not exit in time. It may be called twice.
func (h *helper) stop(t testing.TB) {
	if h.done == nil {
		return
	}
	h.stdin.Close()
	select {
	case <-h.done:
	case <-time.After(10 * time.Second):
		h.cmd.Process.Kill()
		<-h.done
		t.Error("helper did not exit when its input closed")
	}
	h.done = nil
}
