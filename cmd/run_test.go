package cmd

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

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

// TestSampleSchedule checks that the watch takes full samples for the
// baseline and then only as often as fullSampleBudget allows, counting
// descriptors in between.
func TestSampleSchedule(t *testing.T) {
	w := newWatch(runOptions{interval: time.Second}, report.TrendOptions{}, os.Getpid())
	ctx := context.Background()
	w.sample(ctx)
	base := w.rec.Baseline()
	if w.rec.Full() != 1 || base == nil || base != w.last || base.Counted {
		t.Fatalf("first sample after the warm-up: %d full samples, baseline %v", w.rec.Full(), base)
	}
	if !w.nextFull.After(base.Time) {
		t.Fatalf("next full sample at %v, not after the first at %v", w.nextFull, base.Time)
	}
	w.sample(ctx) // long before nextFull: counted
	if w.rec.Samples() != 2 || w.rec.Full() != 1 || !w.last.Counted || w.last.NumFDs == 0 {
		t.Fatalf("second sample: %d samples, %d full, last %+v", w.rec.Samples(), w.rec.Full(), w.last)
	}
	w.nextFull = time.Now()
	w.sample(ctx)
	if w.rec.Full() != 3-1 || w.last.Counted {
		t.Fatalf("third sample, when due: %d full samples, counted %v", w.rec.Full(), w.last.Counted)
	}
	// Every sample feeds the descriptor count; only full ones the types.
	defer func() {
		// When the only full sample after the warm-up is the baseline,
		// the end takes two, apart, for descriptorFindings.
		w := newWatch(runOptions{interval: time.Second}, report.TrendOptions{}, os.Getpid())
		w.sample(ctx)
		w.sample(ctx)
		prevFull := w.rec.LastFull()
		w.finalSamples(ctx)
		n := w.rec.Full()
		if n != 3 || prevFull != w.rec.Baseline() || w.rec.LastFull() == w.rec.Baseline() ||
			!w.rec.LastFull().Time.After(w.rec.Baseline().Time.Add(200*time.Millisecond)) {
			t.Errorf("final samples: %d full samples, the last at %v, the baseline at %v", n, w.rec.LastFull().Time, w.rec.Baseline().Time)
		}
		// Right after a full sample, one more adds nothing.
		w.finalSamples(ctx)
		if w.rec.Full() != n {
			t.Errorf("final samples right after a full one: %d full samples, want %d", w.rec.Full(), n)
		}
	}()
	for _, s := range w.rec.Series() {
		want := 3
		if strings.HasPrefix(s.Name, "fds.") || strings.HasPrefix(s.Name, "sockets") {
			want = 2
		}
		if len(s.Points) != want {
			t.Errorf("series %s has %d points, want %d", s.Name, len(s.Points), want)
		}
	}
}

// TestNoSample checks that a watch that took no sample is an input error,
// never "no leaks found", and still reports how the process ended.
func TestNoSample(t *testing.T) {
	c := exec.Command("true")
	if err := c.Run(); err != nil {
		t.Fatal(err)
	}
	w := newWatch(runOptions{interval: time.Second, format: "json"}, report.TrendOptions{}, c.Process.Pid)
	w.sample(t.Context())
	if !w.gone || w.rec.Samples() != 0 || len(w.gaps) != 0 {
		t.Fatalf("sample of an exited process: gone %v, %d samples, gaps %v", w.gone, w.rec.Samples(), w.gaps)
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
