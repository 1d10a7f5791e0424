package cmd

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/leakcheck/leakcheck/report"
)

// TestReportHeapDumpEndToEnd runs the built leakcheck on heap dumps that a
// real program wrote: who holds the sessions of a global cache, the paths
// to a site, the growth between two dumps, and a truncated dump refused
// with the record and offset where it broke.
func TestReportHeapDumpEndToEnd(t *testing.T) {
	skipUnlessE2E(t)
	dir := t.TempDir()
	buildPrograms(t, dir, nil, ".", "./testdata/programs/heapdump")
	lc, prog := filepath.Join(dir, "leakcheck"), filepath.Join(dir, "heapdump")
	dump := func(name string, n string) string {
		out := filepath.Join(dir, name)
		if msg, err := exec.Command(prog, "-scenario", "cache", "-n", n, "-out", out).CombinedOutput(); err != nil {
			t.Fatalf("heapdump: %v\n%s", err, msg)
		}
		return out
	}
	before, after := dump("before.dump", "20"), dump("after.dump", "200")
	run := func(args ...string) (int, *report.Report, string) {
		out := filepath.Join(t.TempDir(), "report.json")
		cmd := exec.Command(lc, append([]string{"report", "--format", "json", "-o", out}, args...)...)
		msg, _ := cmd.CombinedOutput()
		var r *report.Report
		if f, err := os.Open(out); err == nil {
			defer f.Close()
			r, _ = report.ReadReport(f)
		}
		return cmd.ProcessState.ExitCode(), r, string(msg)
	}
	const holder = "main.sessions (global, map[string]*main.Session)"

	code, r, msg := run("--binary", prog, "--path-to", "main.newSession", before, after)
	if code != exitLeaks || r == nil {
		t.Fatalf("two dumps: exit %d, want %d (growth)\n%s", code, exitLeaks, msg)
	}
	var held, grew bool
	for _, f := range r.Findings {
		held = held || f.Kind == report.KindRetained && f.Owner == holder
		grew = grew || f.Kind == report.KindGrowth && strings.HasPrefix(f.Subject, "objects allocated at main.newSession") && len(f.Evidence.Path) > 0 && f.Evidence.Path[0] == holder
	}
	if !held || !grew || r.Metadata["inputs"] != "2 heapdump" {
		t.Errorf("two dumps: holder found %v, growth held by %s found %v, inputs %q\n%s", held, holder, grew, r.Metadata["inputs"], describeReport(r))
	}

	data, err := os.ReadFile(after)
	if err != nil {
		t.Fatal(err)
	}
	cut := filepath.Join(dir, "cut.dump")
	if err := os.WriteFile(cut, data[:len(data)/3], 0o644); err != nil {
		t.Fatal(err)
	}
	if code, _, msg := run(cut); code != exitUsage || !strings.Contains(msg, "cut.dump") || !strings.Contains(msg, "offset") {
		t.Errorf("a truncated dump: exit %d, want %d with the record and offset\n%s", code, exitUsage, msg)
	}
}
