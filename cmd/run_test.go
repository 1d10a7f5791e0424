package cmd

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/leakcheck/leakcheck/internal/proctest"
	"github.com/leakcheck/leakcheck/report"
	"github.com/leakcheck/leakcheck/tracker/leaktest"
)

// TestMain fails the package's run if its tests leave goroutines,
// descriptors or tracked records behind. The end-to-end tests of `leakcheck
// run` (run_e2e_test.go) build their e2eBinaries themselves, into a directory
// that the testing package removes.
func TestMain(m *testing.M) {
	if n := os.Getenv(holdFDsEnv); n != "" {
		holdFDs(n)
		return
	}
	if f := os.Getenv(peakFileEnv); f != "" {
		os.Exit(measurePeak(f, os.Args[1:]))
	}
	leaktest.VerifyTestMain(m)
}

// exitErrorOfScript runs sh -c script and returns how it ended.
func exitErrorOfScript(t *testing.T, script string) error {
	t.Helper()
	err := exec.Command("sh", "-c", script).Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("sh -c %q: %v", script, err)
	}
	return err
}

func TestChildStatusCode(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		script    string // run to get the error, unless err is set
		err       error
		stoppedBy bool
		want      int
		says      string
	}{
		{name: "success", script: "exit 0", want: 0, says: "exited with status 0"},
		{name: "own status", script: "exit 7", want: 7, says: "exited with status 7"},
		{name: "status 1", script: "exit 1", want: 1, says: "exited with status 1"},
		{name: "status 255", script: "exit 255", want: 255, says: "exited with status 255"},
		{name: "SIGKILL", script: "kill -s KILL $$", want: exitSignalBase + 9, says: "was killed by signal 9 (killed)"},
		{name: "SIGTERM", script: "kill -s TERM $$", want: exitSignalBase + 15, says: "was killed by signal 15 (terminated)"},
		{name: "SIGSEGV", script: "ulimit -c 0; kill -s SEGV $$", want: exitSignalBase + 11, says: "was killed by signal 11 (segmentation fault)"},
		{name: "stopped by leakcheck, killed", script: "kill -s KILL $$", stoppedBy: true, want: 0, says: "stopped by leakcheck: was killed by signal 9 (killed)"},
		{name: "stopped by leakcheck, failed", script: "exit 3", stoppedBy: true, want: 0, says: "stopped by leakcheck: exited with status 3"},
		{name: "not an exit error", err: errors.New("copying output: broken pipe"), want: exitUsage, says: "copying output: broken pipe"},
	}
	for _, tt := range tests {
		err := tt.err
		if err == nil {
			err = exitErrorOfScript(t, tt.script)
		}
		st := childStatus{err: err, stoppedBy: tt.stoppedBy}
		if got := st.code(); got != tt.want {
			t.Errorf("%s: childStatus{%v, stoppedBy: %v}.code() = %d, want %d", tt.name, err, tt.stoppedBy, got, tt.want)
		}
		if got := st.String(); got != tt.says {
			t.Errorf("%s: String() = %q, want %q", tt.name, got, tt.says)
		}
	}
}

// procState returns the one-letter state of pid, or "" when it is gone.
func procState(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ""
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if f := strings.Fields(s[i+1:]); i >= 0 && len(f) > 0 {
		return f[0]
	}
	return ""
}

// TestNoSample checks that a watch that took no sample is an input error,
// never "no leaks found", and still reports how the process ended.
func TestNoSample(t *testing.T) {
	c := exec.Command("true")
	if err := c.Run(); err != nil {
		t.Fatal(err)
	}
	w := newWatch(runOptions{interval: time.Second, format: "json"}, report.TrendOptions{}, c.Process.Pid)
	w.sched.Sample(t.Context())
	if !w.sched.Gone() || w.rec.Samples() != 0 || len(w.sched.Gaps()) != 0 {
		t.Fatalf("sample of an exited process: gone %v, %d samples, gaps %v", w.sched.Gone(), w.rec.Samples(), w.sched.Gaps())
	}
	var out bytes.Buffer
	code, err := w.finish(t.Context(), &out, "", nil, nil, []string{"true"}, "exited with status 0")
	if code != exitUsage || err == nil || !strings.Contains(err.Error(), "no sample of true was taken") {
		t.Errorf("finish: %d, %v; want %d and no sample taken", code, err, exitUsage)
	}
	r, rerr := report.ReadReport(&out)
	if rerr != nil || !strings.Contains(r.Metadata["error"], "no sample") {
		t.Errorf("the report: %v, %v", r, rerr)
	}
}

// TestRunInProcess runs runRun, in this process (without the subreaper and
// the guard, which belong to a process of its own), on real commands: the
// supervision, the schedule and the report meet here, under the race
// detector when it is on.
func TestRunInProcess(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("run samples /proc: Linux only")
	}
	grandchild := proctest.SleepArg(48)
	tests := []struct {
		name   string
		script string
		code   int
		exit   string
	}{
		{name: "stopped at --duration", script: "exec sleep 30", code: exitOK, exit: "stopped by leakcheck: was killed by signal 15 (terminated)"},
		{name: "own status", script: "sleep 0.3; exit 3", code: 3, exit: "exited with status 3"},
		{name: "a child in its own session left", script: "setsid sleep " + grandchild + " & sleep 0.5", code: exitLeaks, exit: "exited with status 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "report.json")
			opts := runOptions{interval: 100 * time.Millisecond, duration: time.Second, grace: time.Second, format: "json", output: out,
				maxCPU: 100, leakEvery: time.Minute, args: []string{"sh", "-c", tt.script}}
			opts.failOn, _ = report.ParsePolicy(defaultRunFailOn)
			// Files, not buffers: the command's leftovers would hold
			// the pipes that copy to buffers, and Wait with them.
			stderr, err := os.Create(filepath.Join(t.TempDir(), "stderr"))
			if err != nil {
				t.Fatal(err)
			}
			defer stderr.Close()
			code, err := runRun(t.Context(), opts, stderr, stderr)
			if code != tt.code || err != nil {
				b, _ := os.ReadFile(stderr.Name())
				t.Errorf("runRun: %d, %v; want %d; stderr: %s", code, err, tt.code, b)
			}
			b, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			r, err := report.ReadReport(bytes.NewReader(b))
			if err != nil {
				t.Fatal(err)
			}
			if r.Metadata["exit"] != tt.exit {
				t.Errorf("exit %q, want %q", r.Metadata["exit"], tt.exit)
			}
			if left := proctest.WithArg(t, grandchild); len(left) > 0 {
				t.Errorf("the child in its own session is still running: %v", left)
			}
		})
	}
}
