package cmd

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/leakcheck/leakcheck/report"
)

var soak = flag.Bool("soak", false, "also run the steady twins for 30 s and 2 min")

// TestSteadyTwins runs leakcheck over healthy daemons that take their time to
// settle, in Go and in Python: a cache that fills to its bound (memory rises,
// then holds), a pool of keep-alive connections opened a few seconds after
// start and kept, files opened and closed on every tick. None of it may fail
// the default gate: the rise is over before the recent half of the window,
// the pool is a set opened after the baseline that holds steady (info), and
// the pages the interpreter adds are too small to matter. The 30 s and
// 2-minute runs, and the Go daemon watched through --pprof for 2 minutes,
// run with -soak.
func TestSteadyTwins(t *testing.T) {
	skipUnlessE2E(t)
	dir := t.TempDir()
	buildPrograms(t, dir, nil, ".", "./testdata/daemons/warmup")
	lc, warmup := filepath.Join(dir, "leakcheck"), filepath.Join(dir, "warmup")
	python, err := exec.LookPath("python3")
	if err != nil && os.Getenv("LEAKCHECK_REQUIRE_PYTHON") == "" {
		t.Logf("no python3 (%v): the Python twin is skipped", err)
	}
	script, _ := filepath.Abs(filepath.Join("..", "testdata", "daemons", "warmup.py"))

	tests := []struct {
		name     string
		duration time.Duration
		soak     bool
		pprof    bool
		python   bool
	}{
		{"go 10s", 10 * time.Second, false, false, false},
		{"go with pprof 10s", 10 * time.Second, false, true, false},
		{"python 10s", 10 * time.Second, false, false, true},
		{"go 30s", 30 * time.Second, true, false, false},
		{"python 30s", 30 * time.Second, true, false, true},
		{"go 2m", 2 * time.Minute, true, false, false},
		{"python 2m", 2 * time.Minute, true, false, true},
		{"go with pprof 2m", 2 * time.Minute, true, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.soak && !*soak {
				t.Skip("a soak: run with -soak")
			}
			if tt.python && python == "" {
				if os.Getenv("LEAKCHECK_REQUIRE_PYTHON") != "" {
					t.Fatal("python3 is required (LEAKCHECK_REQUIRE_PYTHON) and missing")
				}
				t.Skip("no python3")
			}
			t.Parallel()
			out := filepath.Join(t.TempDir(), "report.json")
			args := []string{"run", "--duration", tt.duration.String(), "--interval", "250ms", "--warmup", "1s",
				"--format", "json", "--output", out}
			if tt.pprof {
				port := freeLoopbackPort(t)
				args = append(args, "--pprof", fmt.Sprintf("http://127.0.0.1:%d", port), "--", warmup, "-dir", t.TempDir(), "-pprof", fmt.Sprintf("127.0.0.1:%d", port))
			} else if tt.python {
				args = append(args, "--", python, script, t.TempDir())
			} else {
				args = append(args, "--", warmup, "-dir", t.TempDir())
			}
			ctx, cancel := context.WithTimeout(t.Context(), tt.duration+time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, lc, args...)
			outText, err := cmd.CombinedOutput()
			code := cmd.ProcessState.ExitCode()
			f, ferr := os.Open(out)
			if ferr != nil {
				t.Fatalf("exit %d (%v), no report: %v\n%s", code, err, ferr, outText)
			}
			defer f.Close()
			r, err := report.ReadReport(f)
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range r.Findings {
				if f.Severity >= report.SeverityWarning {
					t.Errorf("%s %s %q x%d", f.Severity, f.Kind, f.Subject, f.Count)
				}
			}
			if code != exitOK {
				t.Errorf("exit %d, want 0\n%s", code, outText)
			}
			if t.Failed() {
				t.Logf("report:\n%s", describeReport(r))
			}
		})
	}
}
