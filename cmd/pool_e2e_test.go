package cmd

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/leakcheck/leakcheck/report"
)

// TestHealthyPoolPasses runs the built leakcheck on a healthy program with a
// pool of 200 goroutines idle on one channel (and a signal loop and a ticker
// loop): its goroutine dump, read by leakcheck report, and the program
// itself, watched by leakcheck run --pprof, pass the default gate. The pool
// is at most an info finding: its size alone is no evidence of a leak.
func TestHealthyPoolPasses(t *testing.T) {
	skipUnlessE2E(t)
	dir := t.TempDir()
	buildPrograms(t, dir, nil, ".", "./testdata/programs/verdicts")
	lc, prog := filepath.Join(dir, "leakcheck"), filepath.Join(dir, "verdicts")
	if out, err := exec.Command(prog, "-mode", "pool", "-workers", "200", "-forms", "goroutine2,goroutine0", "-out", dir).CombinedOutput(); err != nil {
		t.Fatalf("verdicts: %v\n%s", err, out)
	}
	check := func(what string, args ...string) *report.Report {
		t.Helper()
		out := filepath.Join(t.TempDir(), "report.json")
		cmd := exec.Command(lc, append(args[:1:1], append([]string{"--format", "json", "-o", out}, args[1:]...)...)...)
		msg, _ := cmd.CombinedOutput()
		f, err := os.Open(out)
		if err != nil {
			t.Fatalf("%s: exit %d, no report: %v\n%s", what, cmd.ProcessState.ExitCode(), err, msg)
		}
		defer f.Close()
		r, err := report.ReadReport(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range r.Findings {
			if f.Severity >= report.SeverityWarning {
				t.Errorf("%s: %s %s %q x%d: %s", what, f.Severity, f.Kind, f.Subject, f.Count, f.Evidence.Because)
			}
		}
		if code := cmd.ProcessState.ExitCode(); code != exitOK {
			t.Errorf("%s: exit %d, want 0\n%s", what, code, msg)
		}
		return r
	}
	check("report of a debug=2 dump", "report", filepath.Join(dir, "goroutine2.prof"))
	check("report of a debug=0 profile", "report", filepath.Join(dir, "goroutine0.prof"))
	port := freeLoopbackPort(t)
	r := check("run --pprof", "run", "--duration", "4s", "--interval", "200ms", "--warmup", "500ms",
		"--pprof", fmt.Sprintf("http://127.0.0.1:%d", port), "--", prog, "-mode", "pool", "-workers", "200", "-serve", fmt.Sprintf("127.0.0.1:%d", port))
	// The pool was really sampled through --pprof.
	i := slices.IndexFunc(r.Series, func(s report.Series) bool { return s.Name == "goroutines" })
	if i < 0 {
		t.Fatalf("run --pprof: no goroutines series (metadata %v)", r.Metadata)
	}
	if pts := r.Series[i].Points; len(pts) < 10 || pts[len(pts)-1].Value < 200 {
		t.Errorf("goroutines series %v: want 10 samples or more of 200 goroutines or more", pts)
	}
}

// TestRunLeakProfile runs leakcheck run --pprof over a program that serves
// the goroutineleak profile (built with the experiment that adds it on Go
// 1.26), 50 of whose goroutines can never run again beside a live pool of
// 50 with the same stack: exactly the 50 marked are an error finding.
func TestRunLeakProfile(t *testing.T) {
	skipUnlessE2E(t)
	dir := t.TempDir()
	lc, prog := filepath.Join(dir, "leakcheck"), filepath.Join(dir, "verdicts")
	buildPrograms(t, dir, nil, ".")
	buildPrograms(t, dir, []string{"GOEXPERIMENT=goroutineleakprofile"}, "./testdata/programs/verdicts")
	port := freeLoopbackPort(t)
	out := filepath.Join(t.TempDir(), "report.json")
	cmd := exec.Command(lc, "run", "--duration", "3s", "--interval", "200ms", "--warmup", "500ms", "--format", "json", "-o", out,
		"--pprof", fmt.Sprintf("http://127.0.0.1:%d", port), "--", prog, "-mode", "mix", "-workers", "50", "-serve", fmt.Sprintf("127.0.0.1:%d", port))
	msg, _ := cmd.CombinedOutput()
	f, err := os.Open(out)
	if err != nil {
		t.Fatalf("exit %d, no report: %v\n%s", cmd.ProcessState.ExitCode(), err, msg)
	}
	defer f.Close()
	r, err := report.ReadReport(f)
	if err != nil {
		t.Fatal(err)
	}
	leaked := 0
	for _, f := range r.Findings {
		if f.Kind == report.KindGoroutine && f.Severity == report.SeverityError {
			leaked += f.Count
		}
	}
	if leaked != 50 || cmd.ProcessState.ExitCode() != exitLeaks {
		t.Errorf("exit %d, %d goroutines in error findings, want exit %d and the 50 the runtime marked\n%s", cmd.ProcessState.ExitCode(), leaked, exitLeaks, describeReport(r))
	}
}

// TestRunWildcardListener runs leakcheck run over a server listening on every
// address (":0") that never closes the connections it accepts: they are one
// finding named by the listening port, not one per client port, whatever
// the address family the kernel gives them.
func TestRunWildcardListener(t *testing.T) {
	skipUnlessE2E(t)
	bin := buildE2E(t, t.TempDir())
	res := runE2E(t, bin.leakcheck, true, slices.Concat([]string{"run"}, e2eFlags, []string{
		"--duration", "3s", "--", bin.leaky, "-dir", t.TempDir(), "-listen", ":0"})...)
	r := res.report
	var accepted []report.Finding
	for _, f := range r.Findings {
		if strings.Contains(f.Subject, "connections accepted on") || strings.Contains(f.Subject, "sockets to") {
			accepted = append(accepted, f)
		}
	}
	if len(accepted) != 1 || !strings.HasPrefix(accepted[0].Subject, "tcp connections accepted on *:") || accepted[0].Count < 20 {
		t.Errorf("accepted connections: %d findings, want one on *:PORT with 20 or more\n%s", len(accepted), describeReport(r))
	}
}
