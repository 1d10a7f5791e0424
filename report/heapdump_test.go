package report

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/leakcheck/leakcheck/tracker/heapdump"
)

// heapDumpOf builds testdata/programs/heapdump into dir (once per dir),
// runs its scenario and returns the dump and the binary.
func heapDumpOf(t *testing.T, dir, scenario string, args ...string) ([]byte, string) {
	t.Helper()
	bin := filepath.Join(dir, "heapdump")
	if _, err := os.Stat(bin); err != nil {
		goTool, err := exec.LookPath("go")
		if err != nil {
			t.Skipf("no go command to build the test program with: %v", err)
		}
		c := exec.Command(goTool, "build", "-trimpath", "-o", bin, "./testdata/programs/heapdump")
		c.Dir = ".." // the module root
		if out, err := c.CombinedOutput(); err != nil {
			t.Fatalf("go build: %v\n%s", err, out)
		}
	}
	out := filepath.Join(t.TempDir(), scenario+".dump")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	msg, err := exec.CommandContext(ctx, bin, append([]string{"-scenario", scenario, "-out", out}, args...)...).CombinedOutput()
	if err != nil || !bytes.Contains(msg, []byte("dumped")) {
		t.Fatalf("heapdump -scenario %s: %v\n%s", scenario, err, msg)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return data, bin
}

func TestIsHeapDump(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want bool
	}{
		{"go1.7 heap dump\n\x06", true},
		{"go1.7 heap dump\n", true},
		{"go1.7 heap dum", false},
		{"\x1f\x8b\x08", false},
		{"goroutine 1 [running]:\n", false},
		{"", false},
	} {
		if got := IsHeapDump([]byte(tt.in)); got != tt.want {
			t.Errorf("IsHeapDump(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

// TestAnalyzeHeapDump runs the heap dump test program twice (20 sessions,
// then 200, in a global map) and checks every part of the analysis: the
// holder finding and tables from one dump, the paths to a site, the growth
// between the two, and that the result renders.
func TestAnalyzeHeapDump(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs a program")
	}
	dir := t.TempDir()
	base, bin := heapDumpOf(t, dir, "cache", "-n", "20")
	target, _ := heapDumpOf(t, dir, "cache", "-n", "200")
	if !IsHeapDump(target[:16]) {
		t.Fatalf("IsHeapDump(a real dump) = false; it starts %q", target[:16])
	}
	// Through the input path that `leakcheck report old.dump new.dump`
	// takes: recognized by content, the older of the two is the base.
	var inputs []*Input
	for _, d := range []struct {
		name string
		data []byte
	}{{"old.dump", base}, {"new.dump", target}} {
		in, err := ParseInput(d.name, d.data, 0)
		if err != nil {
			t.Fatal(err)
		}
		if in.Kind != InputHeapDump {
			t.Fatalf("%s is a %s, want a heap dump", d.name, in.Kind)
		}
		inputs = append(inputs, in)
	}
	res, err := Analyze(inputs, nil, Options{Binary: bin, PathTo: "main.newSession", Top: 10})
	if err != nil {
		t.Fatal(err)
	}
	findings, tables, notes := res.Findings, res.Tables, res.Notes
	if !strings.Contains(strings.Join(notes, "\n"), "every allocation was sampled") {
		t.Errorf("notes do not say every allocation was sampled: %q", notes)
	}
	const holder = "main.sessions (global, map[string]*main.Session)"
	var held, path, grew *Finding
	for i := range findings {
		f := &findings[i]
		switch {
		case f.Kind == KindRetained && f.Owner == holder && f.Severity == SeverityInfo:
			held = f
		case path == nil && f.Kind == KindRetained && f.Severity == SeverityWarning && strings.HasPrefix(f.Subject, "200 × object (alloc at main.newSession main.go:") && strings.HasSuffix(f.Subject, "held by "+holder):
			path = f
		case f.Kind == KindGrowth && strings.HasPrefix(f.Subject, "objects allocated at main.newSession"):
			grew = f
		}
	}
	if held == nil {
		t.Fatalf("no retained finding owned by %s in %+v", holder, findings)
	}
	if r := held.Evidence.Values["retained_bytes"]; r < 200*64<<10 {
		t.Errorf("%s retains %.0f bytes, want at least 200 × 64 KiB", holder, r)
	}
	if len(held.Evidence.Path) < 2 || held.Evidence.Path[0] != holder {
		t.Errorf("holder's path %q does not start at %s", held.Evidence.Path, holder)
	} else if last := held.Evidence.Path[len(held.Evidence.Path)-1]; !strings.HasPrefix(last, "map storage") {
		t.Errorf("holder's path ends at %q, want the map storage the sessions fan out from", last)
	}
	if path == nil {
		t.Errorf("no path finding for main.newSession held by main.sessions: %+v", findings)
	} else if last := path.Evidence.Path[len(path.Evidence.Path)-1]; !strings.HasPrefix(last, "object (alloc at main.newSession main.go:") {
		t.Errorf("path ends at %q, want a session", last)
	}
	if grew == nil {
		t.Fatalf("no growth finding for main.newSession: %+v", findings)
	}
	// Each session is two objects: the Session and its heap map. The
	// buffers grew too, held the same way: one cause, one finding.
	if grew.Evidence.Values["objects"] < 400 || grew.Evidence.Values["objects_before"] < 40 || grew.Evidence.Values["objects_before"] > 50 ||
		grew.Owner != holder || grew.Evidence.Path[0] != holder || !strings.Contains(grew.Subject, "more sites held the same way") {
		t.Errorf("growth finding %+v: want 40 → 400 objects held by %s, with the buffers' growth folded in", grew, holder)
	}
	for _, f := range findings {
		if f.Kind == KindGrowth && f.Subject != grew.Subject && f.Owner == holder {
			t.Errorf("a second growth finding for the same holder: %s", f.Subject)
		}
	}

	var roots, paths *Table
	for i := range tables {
		switch {
		case strings.HasPrefix(tables[i].Title, "top holders"):
			roots = &tables[i]
		case strings.HasPrefix(tables[i].Title, "paths to objects allocated at main.newSession"):
			paths = &tables[i]
		}
	}
	if roots == nil || len(roots.Rows) == 0 || roots.Rows[0][1] != holder {
		t.Errorf("top holders table does not list %s first: %+v", holder, roots)
	}
	if paths == nil || len(paths.Rows) == 0 || paths.Rows[0][0] != "200" || !strings.HasPrefix(paths.Rows[0][2], holder) {
		t.Errorf("paths table: %+v, want 200 sessions held by %s", paths, holder)
	}

	r := New(findings, nil, nil)
	r.Tables = tables
	var out bytes.Buffer
	if err := Render(&out, r, "text"); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "-> object (alloc at main.newSession") {
		t.Errorf("text report lacks the path:\n%s", out.String())
	}
}

// TestAnalyzeHeapDumpErrors: a truncated dump is an error that names the
// record and offset; a missing binary is an error naming it.
func TestAnalyzeHeapDumpErrors(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs a program")
	}
	data, _ := heapDumpOf(t, t.TempDir(), "closure")
	_, err := ParseInput("cut.dump", data[:len(data)/2], 0)
	var fe *heapdump.FormatError
	if !errors.As(err, &fe) || !strings.Contains(err.Error(), "cut.dump") || !strings.Contains(err.Error(), "offset") {
		t.Errorf("truncated dump: %v, want a FormatError naming cut.dump and an offset", err)
	}
	in, err := ParseInput("closure.dump", data, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, err = AnalyzeHeapDump(in.HeapDump, HeapDumpOptions{Binary: filepath.Join(t.TempDir(), "missing")})
	if err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("missing binary: %v", err)
	}
}
