package report

import (
	"bytes"
	"flag"
	"math"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

// fixtureReport is what `leakcheck run` would build at the end of a run: the
// daemon's final snapshot, four series sampled from /proc, and an ignore file
// that accepts the listener.
func fixtureReport(t *testing.T) *Report {
	t.Helper()
	snap := FromSnapshot(testSnapshot(), SnapshotOptions{AtExit: true})
	findings, series := snap.Findings, snap.Series
	probes := []Series{
		{Name: "fds", Unit: "fds", Points: gen(24, 10*time.Second, func(i int) float64 { return 40 + float64(1000+i*7/3) })},
		{Name: "threads", Unit: "threads", Points: gen(24, 10*time.Second, func(int) float64 { return 12 })},
		{Name: "rss_bytes", Unit: "bytes", Points: gen(24, 10*time.Second, func(i int) float64 { return 48<<20 + float64(i%5)*(1<<20) })},
		{Name: "sockets.tcp.CLOSE_WAIT", Unit: "sockets", Points: gen(6, 10*time.Second, func(i int) float64 { return float64(i) })},
		{Name: "sockets.tcp.ESTABLISHED", Unit: "sockets", Points: gen(24, 10*time.Second, func(i int) float64 { return float64(2 * min(i, 12)) })},
	}
	findings = append(findings, Growth(probes, TrendOptions{})...)
	series = append(series, probes...)
	rules, err := ParseIgnore(strings.NewReader("# accepted\nleftover \"listener *\"\n"), "leakcheck.ignore")
	if err != nil {
		t.Fatal(err)
	}
	r := New(findings, series, rules)
	r.Tool = "leakcheck v0.1.0"
	r.Time = clock.Add(time.Hour)
	r.Metadata = map[string]string{
		"command":  "leakcheck run --fail-on leftover,growth -- ./mydaemon -listen :8080",
		"duration": "1h0m0s",
	}
	return r
}

func emptyReport() *Report {
	r := New(nil, nil, nil)
	r.Tool = "leakcheck v0.1.0"
	r.Time = clock
	return r
}

func render(t *testing.T, r *Report, format string) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := Render(&b, r, format); err != nil {
		t.Fatalf("Render %s: %v", format, err)
	}
	return b.Bytes()
}

// golden compares got with testdata/golden/name, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", "golden", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run: go test ./report -run Golden -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (run: go test ./report -run Golden -update, and review the diff):\n%s", path, got)
	}
}

func TestGolden(t *testing.T) {
	reports := map[string]*Report{"report": fixtureReport(t), "empty": emptyReport()}
	for name, r := range reports {
		for _, format := range Formats() {
			t.Run(name+"."+format, func(t *testing.T) {
				golden(t, name+"."+format, render(t, r, format))
			})
		}
	}
}

func TestTextLayout(t *testing.T) {
	text := string(render(t, fixtureReport(t), "text"))
	for i, line := range strings.Split(text, "\n") {
		if n := utf8.RuneCountInString(line); n > textWidth {
			t.Errorf("line %d is %d columns wide: %q", i+1, n, line)
		}
		if strings.TrimRight(line, " ") != line {
			t.Errorf("line %d has trailing blanks: %q", i+1, line)
		}
	}
	for _, hidden := range []string{"runtime.main", "tracker.WrapConn", "main.main (main.go"} {
		if strings.Contains(text, hidden) {
			t.Errorf("text shows the frame %s, which should be hidden or below the top 3", hidden)
		}
	}
	lines := strings.Split(strings.TrimSpace(text), "\n")
	if last, want := lines[len(lines)-1], "13 findings (5 errors, 8 warnings), 1 suppressed"; last != want {
		t.Errorf("summary line %q, want %q", last, want)
	}
	if got := strings.TrimSpace(string(render(t, emptyReport(), "text"))); !strings.HasSuffix(got, "no leaks found") {
		t.Errorf("empty report ends %q, want no leaks found", got)
	}
}

func TestSummaryLine(t *testing.T) {
	tests := []struct {
		s    Summary
		want string
	}{
		{Summary{}, "no leaks found"},
		{Summary{Suppressed: 2}, "no leaks found, 2 suppressed"},
		{Summary{Findings: 1, BySeverity: map[Severity]int{SeverityError: 1}}, "1 finding (1 error)"},
		{Summary{Findings: 3, Suppressed: 2, BySeverity: map[Severity]int{SeverityError: 1, SeverityWarning: 2}}, "3 findings (1 error, 2 warnings), 2 suppressed"},
		{Summary{Findings: 2, BySeverity: map[Severity]int{SeverityInfo: 2}}, "2 findings (2 info)"},
	}
	for _, tt := range tests {
		if got := summaryLine(tt.s); got != tt.want {
			t.Errorf("summaryLine(%+v) = %q, want %q", tt.s, got, tt.want)
		}
	}
}

// value joins formatValue's label and value.
func value(label, v string) string { return label + ": " + v }

func TestFormatting(t *testing.T) {
	tests := []struct{ got, want string }{
		{formatRate(180, "fds"), "+180 fds/h"},
		{formatRate(-0.25, "items"), "-0.25 items/h"},
		{formatRate(0, ""), "0/h"},
		{formatRate(1.5*(1<<20), "bytes"), "+1.5 MiB/h"},
		{formatQuantity(512, "bytes"), "512 B"},
		{formatQuantity(3*(1<<40)+1, "bytes"), "3.0 TiB"},
		{formatQuantity(12.345, "fds"), "12.3 fds"},
		{formatP(0.0001), "<0.001"},
		{formatP(0.0123), "0.012"},
		{formatDuration(3725.4), "1h2m5s"},
		{formatDuration(0.0123), "12ms"},
		{formatDuration(math.Inf(1)), "+Infs"},
		{value(formatValue("age_seconds", 90)), "age: 1m30s"},
		{value(formatValue("max_wait_seconds", 1200)), "max wait: 20m0s"},
		{value(formatValue("growth_bytes", 3<<20)), "growth: 3.0 MiB"},
		{value(formatValue("gcs", 1)), "gcs: survived 1 garbage collection"},
		{value(formatValue("gcs", 4)), "gcs: survived 4 garbage collections"},
		{value(formatValue("fd", 7)), "fd: 7"},
		{shorten("socket 127.0.0.1:6379", 12), "soc...1:6379"},
		{shorten("short", 12), "short"},
		{shorten("goroutines blocked in select at net/http.(*persistConn).readLoop (transport.go:2450)", 60),
			"goroutines blocked ...sistConn).readLoop (transport.go:2450)"},
		{shorten("growing goroutines at net/http.(*persistConn).writeLoop (transport.go:2600)", 72),
			"growing goroutines at http.(*persistConn).writeLoop (transport.go:2600)"},
		{shorten("fd file /tmp/TestRunEndToEndleaky123/001/leak-*.log", 30), "fd file /...123/001/leak-*.log"},
		{shorten("tcp connections accepted on 127.0.0.1:16431 in ESTABLISHED", 40), "tcp connecti....0.1:16431 in ESTABLISHED"},
		{oneLine("a\nb\tc"), "a b c"},
		{stableName("tcp connections accepted on 127.0.0.1:40313 in ESTABLISHED"), "tcp connections accepted on 127.0.0.1:* in ESTABLISHED"},
		{stableName("tcp sockets to [::1]:6379 in CLOSE_WAIT (+2 more)"), "tcp sockets to [::1]:* in CLOSE_WAIT (+* more)"},
		{stableName("fd file /tmp/TestRun123/001/leak-*.log"), "fd file /tmp/TestRun*/*/leak-*.log"},
		{stableName("goroutines blocked in chan receive at main.main.func2 (main.go:98)"), "goroutines blocked in chan receive at main.main.func2 (main.go:98)"},
	}
	for i, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("case %d: got %q, want %q", i, tt.got, tt.want)
		}
	}
}

func TestRoundTrip(t *testing.T) {
	for name, r := range map[string]*Report{"report": fixtureReport(t), "empty": emptyReport()} {
		t.Run(name, func(t *testing.T) {
			js := render(t, r, "json")
			back, err := ReadReport(bytes.NewReader(js))
			if err != nil {
				t.Fatal(err)
			}
			for _, format := range Formats() {
				if want, got := render(t, r, format), render(t, back, format); !bytes.Equal(got, want) {
					t.Errorf("%s of the read-back report differs:\n%s\nwant:\n%s", format, got, want)
				}
			}
		})
	}
}

func TestReadReportErrors(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", "not a JSON report"},
		{"[1,2]", "not a JSON report"},
		{`{"findings": []}`, `no "schema" field`},
		{`{"schema": 1, "records": []}`, "a tracker snapshot has a number there"},
		{`{"schema": "other/1.0"}`, `not a leakcheck report: schema "other/1.0"`},
		{`{"schema": "leakcheck.report/1"}`, "malformed schema"},
		{`{"schema": "leakcheck.report/x.0"}`, "malformed schema"},
		{`{"schema": "leakcheck.report/2.0"}`, "major version 2; this leakcheck reads leakcheck.report/1.x"},
		{`{"schema": "leakcheck.report/1.0"} trailing`, "not a JSON report"},
		{`{"schema": "leakcheck.report/1.0", "findings": [{"kind": "leftover", "severity": "fatal"}]}`, `unknown severity "fatal"`},
		{`{"schema": "leakcheck.report/1.0", "findings": [{"severity": "error"}]}`, "finding 1 has no kind"},
		{`{"schema": "leakcheck.report/1.0", "findings": [{"kind": "leftover", "count": -1}]}`, "negative count"},
		{`{"schema": "leakcheck.report/1.0", "series": [{"name": "fds", "trend": {"verdict": "up"}}]}`, `series "fds": unknown verdict "up"`},
		{`{"schema": "leakcheck.report/1.0", "findings": [{"kind": "growth", "evidence": {"trend": {"verdict": "up"}}}]}`, `finding 1: unknown verdict "up"`},
		{`{"schema": "leakcheck.report/1.0", "time": "yesterday"}`, "reading report"},
	}
	for _, tt := range tests {
		_, err := ReadReport(strings.NewReader(tt.in))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ReadReport(%q) error = %v, want one containing %q", tt.in, err, tt.want)
		}
	}
	// A newer minor version with fields this version does not know is read.
	r, err := ReadReport(strings.NewReader(`{"schema": "leakcheck.report/1.7", "future": {"x": 1}, "findings": [{"kind": "leftover", "count": 2, "new": true}]}`))
	if err != nil || len(r.Findings) != 1 || r.Findings[0].Count != 2 {
		t.Errorf("newer minor version: %+v, %v", r, err)
	}
}

func TestRenderUnknownFormat(t *testing.T) {
	err := Render(new(bytes.Buffer), emptyReport(), "yaml")
	if err == nil || !strings.Contains(err.Error(), `unknown report format "yaml" (want one of text, json,`) {
		t.Errorf("Render yaml: %v", err)
	}
	var b bytes.Buffer
	if err := Render(&b, emptyReport(), ""); err != nil || !bytes.Equal(b.Bytes(), render(t, emptyReport(), DefaultFormat)) {
		t.Errorf("Render with no format is not the default: %v", err)
	}
}

func TestWriteFile(t *testing.T) {
	dir := t.TempDir()
	name := filepath.Join(dir, "report.json")
	if err := os.WriteFile(name, []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := fixtureReport(t)
	if err := WriteFile(name, r, "json"); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(name)
	if err != nil || !bytes.Equal(got, render(t, r, "json")) {
		t.Errorf("file holds %d bytes, %v; want the JSON report", len(got), err)
	}
	// The file it replaced keeps its mode; a new file is 0644.
	if fi, err := os.Stat(name); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, %v; want the old file's 0600", fi.Mode(), err)
	}
	fresh := filepath.Join(t.TempDir(), "new.json")
	if err := WriteFile(fresh, r, "json"); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(fresh); err != nil || fi.Mode().Perm() != 0o644 {
		t.Errorf("a new file's mode %v, %v; want 0644", fi.Mode(), err)
	}
	// A FIFO is written into, never replaced by a regular file.
	fifo := filepath.Join(t.TempDir(), "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	read := make(chan []byte)
	go func() {
		b, _ := os.ReadFile(fifo)
		read <- b
	}()
	if err := WriteFile(fifo, r, "json"); err != nil {
		t.Fatal(err)
	}
	if b := <-read; !bytes.Equal(b, render(t, r, "json")) {
		t.Errorf("the FIFO's reader got %d bytes", len(b))
	}
	if fi, err := os.Lstat(fifo); err != nil || fi.Mode()&os.ModeNamedPipe == 0 {
		t.Errorf("the FIFO is now %v, %v", fi.Mode(), err)
	}
	// A failed render leaves the old file and no temporary files.
	if err := WriteFile(name, r, "yaml"); err == nil {
		t.Error("WriteFile with an unknown format succeeded")
	}
	if err := WriteFile(filepath.Join(dir, "missing", "r.txt"), r, "text"); err == nil || !strings.Contains(err.Error(), "writing report to") {
		t.Errorf("WriteFile into a missing directory: %v", err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("directory holds %d entries, want only report.json", len(entries))
	}
}

func TestNewSuppressesBeforeGrouping(t *testing.T) {
	stack := []Frame{{Func: "main.dial"}}
	var fs []Finding
	for _, subject := range []string{"socket a", "socket b", "socket a"} {
		fs = append(fs, Finding{Kind: KindLeftover, Severity: SeverityError, Subject: subject, Count: 1,
			Evidence: Evidence{Stack: stack}, Signature: Signature(KindLeftover, "socket", stack)})
	}
	rules, _ := ParseIgnore(strings.NewReader(`leftover "socket b"`), "f")
	r := New(fs, nil, rules)
	if len(r.Findings) != 1 || r.Findings[0].Count != 2 || r.Findings[0].Subject != "socket a" {
		t.Errorf("findings %+v; want socket a twice", r.Findings)
	}
	if r.Summary.Suppressed != 1 || r.Summary.Occurrences != 2 || r.Summary.ByKind[KindLeftover] != 1 || r.Summary.BySeverity[SeverityError] != 1 {
		t.Errorf("summary %+v", r.Summary)
	}
	if r.Series == nil || r.Schema != SchemaVersion {
		t.Errorf("report %+v", r)
	}
}
