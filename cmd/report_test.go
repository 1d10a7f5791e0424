package cmd

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/leakcheck/leakcheck/report"
)

// The heap profiles, tracker profile and snapshot in report/testdata/heap
// were written by testdata/programs/heapgrow (see report/heap_test.go).
var heapFixtures = filepath.Join("..", "report", "testdata", "heap")

func heapFixture(name string) string { return filepath.Join(heapFixtures, name) }

// reportRun runs `leakcheck report` with args and returns its exit code,
// stdout and stderr.
func reportRun(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := Run(append([]string{"report"}, args...), &out, &errOut)
	return code, out.String(), errOut.String()
}

// reportJSON runs `leakcheck report --format json` and decodes its report.
func reportJSON(t *testing.T, args ...string) (int, *report.Report) {
	t.Helper()
	code, out, errOut := reportRun(t, append([]string{"--format", "json"}, args...)...)
	if code == exitUsage {
		t.Fatalf("leakcheck report %s: exit 2: %s", strings.Join(args, " "), errOut)
	}
	r, err := report.ReadReport(strings.NewReader(out))
	if err != nil {
		t.Fatalf("leakcheck report %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return code, r
}

func findingSubjects(r *report.Report) []string {
	var out []string
	for _, f := range r.Findings {
		out = append(out, f.Subject)
	}
	return out
}

func TestReportCommand(t *testing.T) {
	dir := t.TempDir()
	ignore := filepath.Join(dir, "leakcheck.ignore")
	if err := os.WriteFile(ignore, []byte("growth \"* grows at main.*\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	truncated := filepath.Join(dir, "truncated.pb.gz")
	data, err := os.ReadFile(heapFixture("leaky-03.pb.gz"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(truncated, data[:len(data)/2], 0o644); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty.pb.gz")
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	base, target := heapFixture("leaky-01.pb.gz"), heapFixture("leaky-03.pb.gz")

	tests := []struct {
		name       string
		args       []string
		code       int
		stdout     string
		stderr     string
		notStdout  string
		subjectsIn []string
	}{
		{"no input", nil, 2, "", "requires at least 1 arg", "", nil},
		{"missing file", []string{filepath.Join(dir, "nosuch")}, 2, "", "nosuch: no such file or directory", "", nil},
		{"empty file", []string{empty}, 2, "", "empty.pb.gz: empty: want a heap, goroutine or tracker profile", "", nil},
		{"truncated file", []string{truncated}, 2, "", "truncated.pb.gz: decompressing: unexpected end of data (truncated?)", "", nil},
		{"one heap profile", []string{target}, 0, "top allocation sites by inuse_space", "", "growth", nil},
		// The default threshold is 5% of the heap in use: the set's +830
		// KiB of 1.9 MiB passes it, the sessions' +75 KiB does not.
		{"two profiles, default threshold", []string{base, target}, 3, "from the larger of +98.9 KiB", "", "grows at main.openSession", nil},
		{"two profiles, lower threshold", []string{"--min-growth", "64KiB", target, base}, 3, "map or slice grows at main.(*dedup).mark", "", "", nil},
		{"--base", []string{"--min-growth", "64KiB", "--base", base, target}, 3, "from " + base + " to", "", "", nil},
		{"--fail-on none", []string{"--fail-on", "none", "--min-growth", "64KiB", base, target}, 0, "4 findings", "", "", nil},
		{"--fail-on leftover", []string{"--fail-on", "leftover", "--min-growth", "64KiB", base, target}, 0, "4 findings", "", "", nil},
		{"--ignore", []string{"--ignore", ignore, "--min-growth", "64KiB", base, target}, 0, "no leaks found, 4 suppressed", "", "", nil},
		{"--sample-index", []string{"--sample-index", "inuse_objects", "--min-growth", "100", base, target}, 3, "heap inuse_objects grows at main.openSession", "", "", nil},
		{"--top", []string{"--top", "2", target}, 0, "main.(*journal).add (main.go:76)", "", "main.(*cache).put", nil},
		{"tracker profile", []string{heapFixture("tracker-03.pb.gz")}, 0, "client   main.openSession (main.go:87)", "", "", nil},
		{"snapshot, live", []string{heapFixture("snapshot-03.json")}, 0, "no leaks found", "", "", nil},
		{"snapshot at exit", []string{"--at-exit", heapFixture("snapshot-03.json")}, 3, "leftover", "", "", nil},
		{"unknown sample index", []string{"--sample-index", "cpu", target}, 2, "", `no sample type "cpu"`, "", nil},
		{"bad --min-growth", []string{"--min-growth", "lots", target}, 2, "", `--min-growth "lots"`, "", nil},
		{"bad --max-size", []string{"--max-size", "0", target}, 2, "", "--max-size", "", nil},
		{"--max-size too small", []string{"--max-size", "1KiB", target}, 2, "", "larger than the size limit of 1 KiB", "", nil},
		{"bad format", []string{"--format", "yaml", target}, 2, "", `unknown --format "yaml"`, "", nil},
		{"--save without --every", []string{"--save", dir, target}, 2, "", "--save keeps polled profiles", "", nil},
		{"--every without a URL", []string{"--every", "1s", target}, 2, "", "no input is an http(s) URL", "", nil},
		{"--base not a profile", []string{"--base", heapFixture("snapshot-03.json"), target}, 2, "", "not a heap or tracker profile", "", nil},
		{"--base with nothing to compare", []string{"--base", base, heapFixture("snapshot-03.json")}, 2, "", "no heap to compare it with", "", nil},
		{"heap and tracker profiles together", []string{target, heapFixture("tracker-03.pb.gz")}, 0, "live tracked records", "", "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := reportRun(t, tt.args...)
			if code != tt.code {
				t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tt.code, stdout, stderr)
			}
			if !strings.Contains(stdout, tt.stdout) || !strings.Contains(stderr, tt.stderr) {
				t.Fatalf("stdout:\n%s\nstderr:\n%s\nwant %q and %q", stdout, stderr, tt.stdout, tt.stderr)
			}
			if tt.notStdout != "" && strings.Contains(stdout, tt.notStdout) {
				t.Errorf("stdout has %q:\n%s", tt.notStdout, stdout)
			}
		})
	}
}

// TestReportSavedReport checks that a saved report is read back, re-rendered
// in another format, merged with other inputs, and judged again.
func TestReportSavedReport(t *testing.T) {
	dir := t.TempDir()
	saved := filepath.Join(dir, "report.json")
	code, _, stderr := reportRun(t, "--format", "json", "-o", saved, "--min-growth", "64KiB", heapFixture("leaky-01.pb.gz"), heapFixture("leaky-03.pb.gz"))
	if code != exitLeaks {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	f, err := os.Open(saved)
	if err != nil {
		t.Fatal(err)
	}
	first, err := report.ReadReport(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	if first.Policy != defaultReportFailOn || len(first.Tables) != 1 || len(first.Findings) != 4 {
		t.Fatalf("saved report: policy %q, %d tables, findings %q", first.Policy, len(first.Tables), findingSubjects(first))
	}

	code, again := reportJSON(t, saved)
	if code != exitLeaks || !slices.Equal(findingSubjects(again), findingSubjects(first)) || len(again.Tables) != 1 {
		t.Errorf("read back: exit %d, findings %q, %d tables", code, findingSubjects(again), len(again.Tables))
	}
	code, merged := reportJSON(t, saved, heapFixture("tracker-03.pb.gz"))
	if code != exitLeaks || len(merged.Findings) != 4 || len(merged.Tables) != 2 || merged.Metadata["inputs"] != "1 report, 1 tracker-profile" {
		t.Errorf("merged: exit %d, findings %q, %d tables, inputs %q", code, findingSubjects(merged), len(merged.Tables), merged.Metadata["inputs"])
	}
	code, text, _ := reportRun(t, "--fail-on", "none", saved)
	if code != 0 || !strings.Contains(text, "#1 warning growth:") {
		t.Errorf("text of the saved report: exit %d\n%s", code, text)
	}

	// A report saved under a policy that passed keeps passing when it is
	// rendered again, and keeps what it said about its run.
	passed := filepath.Join(dir, "passed.json")
	if code, _, stderr := reportRun(t, "--fail-on", "none", "--format", "json", "-o", passed, heapFixture("leaky-01.pb.gz"), heapFixture("leaky-03.pb.gz")); code != 0 {
		t.Fatalf("saving under --fail-on none: exit %d: %s", code, stderr)
	}
	code, github, _ := reportRun(t, "--format", "github", passed)
	if code != 0 || strings.Contains(github, "::error") {
		t.Errorf("the passed report as GitHub annotations: exit %d\n%s", code, github)
	}
	code, rendered := reportJSON(t, passed)
	if code != 0 || rendered.Policy != "none" || rendered.Metadata["inputs"] != "2 heap" {
		t.Errorf("the passed report again: exit %d, policy %q, metadata %v", code, rendered.Policy, rendered.Metadata)
	}
}

// TestReportPoll polls a server on the loopback interface that serves real
// heap profiles, one after the other, and fails once.
func TestReportPoll(t *testing.T) {
	var profiles [][]byte
	for _, name := range []string{"leaky-01.pb.gz", "leaky-03.pb.gz", "leaky-03.pb.gz"} {
		data, err := os.ReadFile(heapFixture(name))
		if err != nil {
			t.Fatal(err)
		}
		profiles = append(profiles, data)
	}
	var n, bad atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/debug/pprof/heap":
			i := int(n.Add(1)) - 1
			if i == 1 {
				http.Error(w, "busy", http.StatusServiceUnavailable)
				return
			}
			w.Write(profiles[min(i, len(profiles)-1)])
		default:
			bad.Add(1)
			http.Error(w, "profiling is off", http.StatusNotFound)
		}
	}))
	defer srv.Close()

	save := filepath.Join(t.TempDir(), "polled")
	url := srv.URL + "/debug/pprof/heap"
	var stdout, stderr bytes.Buffer
	opts := reportOptions{
		format: "json", failOn: mustPolicy(t, "growth"), every: 20 * time.Millisecond, count: 3, save: save,
		timeout: time.Second, maxSize: "1MiB", top: 10, minGrowth: "64KiB", blockedFor: time.Minute, inputs: []string{url},
	}
	code, err := runReport(context.Background(), opts, &stdout, &stderr)
	if err != nil || code != exitLeaks {
		t.Fatalf("exit %d, %v\n%s", code, err, stderr.String())
	}
	r, err := report.ReadReport(&stdout)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stderr.String(), "poll 2 of 3: GET "+url+": 503 Service Unavailable: busy") {
		t.Errorf("stderr does not tell of the failed poll:\n%s", stderr.String())
	}
	if note := r.Metadata["note 1"]; !strings.Contains(note, "1 of 3 polls of "+url+" failed") {
		t.Errorf("metadata %v: no note of the failed poll", r.Metadata)
	}
	saved, _ := filepath.Glob(filepath.Join(save, "*"))
	want := []string{"heap-001.pb.gz", "heap-003.pb.gz"}
	var got []string
	for _, s := range saved {
		got = append(got, filepath.Base(s))
	}
	if !slices.Equal(got, want) {
		t.Fatalf("saved %q, want %q", got, want)
	}
	for i, s := range saved {
		b, _ := os.ReadFile(s)
		if !bytes.Equal(b, profiles[[]int{0, 2}[i]]) {
			t.Errorf("%s is not the profile as served", s)
		}
	}
	// Two profiles, the failed poll between them: judged first to last.
	// (A series of three would ask every site to rise in both steps.)
	if !slices.Contains(findingSubjects(r), "map or slice grows at main.(*dedup).mark (main.go:65)") {
		t.Errorf("findings %q", findingSubjects(r))
	}
	// The saved profiles are the same series when read back.
	code, again := reportJSON(t, "--fail-on", "growth", "--min-growth", "64KiB", saved[0], saved[1])
	if code != exitLeaks || !slices.Equal(findingSubjects(again), findingSubjects(r)) {
		t.Errorf("saved profiles: exit %d, findings %q; want %q", code, findingSubjects(again), findingSubjects(r))
	}

	// A URL that never answers with a profile is an input error.
	opts.inputs, opts.save, opts.count = []string{srv.URL + "/nosuch"}, "", 2
	code, err = runReport(context.Background(), opts, &stdout, &stderr)
	if code != exitUsage || err == nil || !strings.Contains(err.Error(), "no poll of "+srv.URL+"/nosuch succeeded: GET "+srv.URL+"/nosuch: 404 Not Found") {
		t.Errorf("polling a missing endpoint: exit %d, %v", code, err)
	}
	if bad.Load() != 2 {
		t.Errorf("%d polls of the missing endpoint, want --count 2", bad.Load())
	}

	// Interrupted before the first poll ended: nothing to analyse.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	opts.inputs = []string{url}
	if code, err = runReport(ctx, opts, &stdout, &stderr); code != exitUsage || err == nil {
		t.Errorf("interrupted at once: exit %d, %v", code, err)
	}
}

func mustPolicy(t *testing.T, s string) report.Policy {
	t.Helper()
	p, err := report.ParsePolicy(s)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestParseSize(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		ok   bool
	}{
		{"5000", 5000, true},
		{"512KiB", 512 << 10, true},
		{"4MiB", 4 << 20, true},
		{" 1 GiB ", 1 << 30, true},
		{"3MB", 3e6, true},
		{"10kB", 1e4, true},
		{"7B", 7, true},
		{"", 0, false},
		{"MiB", 0, false},
		{"1.5MiB", 0, false},
		{"-1", 0, false},
		{"4mib", 0, false},
		{"9223372036854775807", 1<<63 - 1, true},
		{"9999999999999GiB", 0, false},
	}
	for _, tt := range tests {
		got, err := parseSize(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("parseSize(%q) = %d, %v; want %d, ok %v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

func FuzzParseSize(f *testing.F) {
	for _, s := range []string{"5000", "512KiB", "4MiB", "1GiB", "3MB", "", "MiB", "-1", "1e9", "99999999999999999999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := parseSize(s)
		if err == nil && n < 0 {
			t.Fatalf("parseSize(%q) = %d", s, n)
		}
	})
}

// TestReportDirectory checks that a directory stands for the files in it, as
// --save leaves them, and that an empty one is an input error.
func TestReportDirectory(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"leaky-01.pb.gz", "leaky-03.pb.gz"} {
		data, err := os.ReadFile(heapFixture(name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, ".notes"), []byte("not a profile"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, byDir := reportJSON(t, "--min-growth", "64KiB", dir)
	_, byFiles := reportJSON(t, "--min-growth", "64KiB", filepath.Join(dir, "leaky-01.pb.gz"), filepath.Join(dir, "leaky-03.pb.gz"))
	if code != exitLeaks || !slices.Equal(findingSubjects(byDir), findingSubjects(byFiles)) || len(byDir.Findings) == 0 {
		t.Errorf("a directory: exit %d, findings %q; the files: %q", code, findingSubjects(byDir), findingSubjects(byFiles))
	}
	empty := t.TempDir()
	if code, _, stderr := reportRun(t, empty); code != exitUsage || !strings.Contains(stderr, "no file to read") {
		t.Errorf("an empty directory: exit %d, %q", code, stderr)
	}
}
