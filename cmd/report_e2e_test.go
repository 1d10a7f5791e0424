package cmd

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/leakcheck/leakcheck/probes/bounded"
	"github.com/leakcheck/leakcheck/report"
)

// The end-to-end tests of `leakcheck report` build leakcheck and the test
// programs testdata/programs/heapgrow (heap, tracker profiles, snapshots) and
// testdata/programs/goroutines (goroutine profiles and dumps), run the
// programs, leaky and steady, to write profiles in every form or to serve
// them, and check the reports and exit codes of leakcheck on them.

type reportBinaries struct {
	leakcheck, heapgrow, goroutines, goroutinesLeak string
}

func buildReportE2E(t *testing.T, dir string) reportBinaries {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("no go command to build with: %v", err)
	}
	start := time.Now()
	build := func(env []string, out string, pkgs ...string) {
		c := exec.Command(goTool, append([]string{"build", "-o", out}, pkgs...)...)
		c.Dir = ".." // the module root
		c.Env = append(os.Environ(), env...)
		if b, err := c.CombinedOutput(); err != nil {
			t.Fatalf("go build %s: %v\n%s", strings.Join(pkgs, " "), err, b)
		}
	}
	build(nil, dir+string(filepath.Separator), ".", "./testdata/programs/heapgrow", "./testdata/programs/goroutines")
	// The goroutineleak profile exists only with this experiment.
	leak := filepath.Join(dir, "goroutines-leak")
	build([]string{"GOEXPERIMENT=goroutineleakprofile"}, leak, "./testdata/programs/goroutines")
	t.Logf("built leakcheck and the test programs in %v", time.Since(start).Round(time.Millisecond))
	return reportBinaries{
		leakcheck:      filepath.Join(dir, "leakcheck"),
		heapgrow:       filepath.Join(dir, "heapgrow"),
		goroutines:     filepath.Join(dir, "goroutines"),
		goroutinesLeak: leak,
	}
}

// runProgram runs a test program to its end and fails the test if it fails.
func runProgram(t *testing.T, env []string, bin string, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := exec.CommandContext(ctx, bin, args...)
	c.Env = append(os.Environ(), env...)
	c.Stdin = strings.NewReader("") // the goroutines program runs until its input ends
	if out, err := c.CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", filepath.Base(bin), strings.Join(args, " "), err, out)
	}
}

// reportResult is how one `leakcheck report` went.
type reportResult struct {
	code   int
	r      *report.Report // nil unless the run wrote one
	stderr string
}

// reportE2E runs leakcheck report with args and --format json.
func reportE2E(t *testing.T, lc string, args ...string) reportResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := exec.CommandContext(ctx, lc, append([]string{"report", "--format", "json"}, args...)...)
	var stdout, stderr bytes.Buffer
	c.Stdout, c.Stderr = &stdout, &stderr
	err := c.Run()
	res := reportResult{code: c.ProcessState.ExitCode(), stderr: stderr.String()}
	if _, ok := err.(*exec.ExitError); err != nil && !ok {
		t.Fatalf("leakcheck report %s: %v", strings.Join(args, " "), err)
	}
	if stdout.Len() > 0 {
		if res.r, err = report.ReadReport(&stdout); err != nil {
			t.Fatalf("leakcheck report %s: %v", strings.Join(args, " "), err)
		}
	}
	return res
}

func files(dir string, names ...string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = filepath.Join(dir, n)
	}
	return out
}

func numbered(dir, prefix, ext string, n int) []string {
	var out []string
	for i := 1; i <= n; i++ {
		out = append(out, filepath.Join(dir, fmt.Sprintf("%s-%02d%s", prefix, i, ext)))
	}
	return out
}

// startServing starts heapgrow serving its debug endpoints and returns
// their base URL. The program ends when the test does.
func startServing(t *testing.T, heapgrow, mode string) string {
	t.Helper()
	c := exec.Command(heapgrow, "-mode", mode, "-pprof", "127.0.0.1:0", "-tick", "1ms")
	stdin, err := c.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := c.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close() // heapgrow returns when its input ends
		done := make(chan error, 1)
		go func() { done <- c.Wait() }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			c.Process.Kill()
			<-done
		}
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	addr, ok := strings.CutPrefix(strings.TrimSpace(line), "listening on ")
	if err != nil || !ok {
		t.Fatalf("heapgrow -pprof: %q, %v", line, err)
	}
	go io.Copy(io.Discard, stdout)
	return "http://" + addr
}

// crashDump starts the goroutines program, waits for it to park its
// goroutines, and returns what SIGQUIT makes it print.
func crashDump(t *testing.T, bin string) []byte {
	t.Helper()
	c := exec.Command(bin)
	c.Env = append(os.Environ(), "GOTRACEBACK=all")
	stdin, err := c.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	defer stdin.Close()
	stdout, err := c.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	c.Stderr = &stderr
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	if line, err := bufio.NewReader(stdout).ReadString('\n'); err != nil || strings.TrimSpace(line) != "written" {
		c.Process.Kill()
		c.Wait()
		t.Fatalf("goroutines: %q, %v", line, err)
	}
	c.Process.Signal(syscall.SIGQUIT)
	go io.Copy(io.Discard, stdout)
	c.Wait() // exits with status 2, as a Go program does on SIGQUIT
	if !bytes.Contains(stderr.Bytes(), []byte("SIGQUIT")) {
		t.Fatalf("no crash dump on stderr:\n%s", stderr.String())
	}
	return stderr.Bytes()
}

func TestReportEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds programs and runs them for seconds; skipped with -short")
	}
	bin := buildReportE2E(t, t.TempDir())
	lc := bin.leakcheck

	leaky, steady, text, gor := t.TempDir(), t.TempDir(), t.TempDir(), t.TempDir()
	// 16 leaky profiles: the trend test asks the recent half to grow too, and
	// 6 points of a real heap are too few to be sure of that (see
	// report.TestAnalyzeRealProfiles).
	runProgram(t, nil, bin.heapgrow, "-mode", "leaky", "-out", leaky, "-profiles", "16", "-tracker")
	runProgram(t, nil, bin.heapgrow, "-mode", "steady", "-out", steady, "-profiles", "12", "-tracker")
	runProgram(t, nil, bin.heapgrow, "-mode", "leaky", "-out", text, "-profiles", "2", "-text")
	runProgram(t, nil, bin.goroutines, "-out", gor, "-series", "12")
	runProgram(t, nil, bin.goroutinesLeak, "-out", gor, "-forms", "goroutineleak0,goroutineleak1")
	crash := filepath.Join(gor, "crash.txt")
	if err := os.WriteFile(crash, crashDump(t, bin.goroutines), 0o644); err != nil {
		t.Fatal(err)
	}
	var goroutineSeries []string
	for i := range 12 {
		goroutineSeries = append(goroutineSeries, filepath.Join(gor, fmt.Sprintf("series-%02d.prof", i)))
	}

	const (
		entries  = "heap grows at main.(*cache).put (main.go:58)"
		sessions = "heap grows at main.openSession (main.go:87)"
		set      = "map or slice grows at main.(*dedup).mark (main.go:65)"
		journal  = "map or slice grows at main.(*journal).add (main.go:76)"
		records  = "live client records grow at main.openSession (main.go:87)"
	)
	tests := []struct {
		name  string
		args  []string
		code  int
		want  []string      // findings' subjects, or substrings of them
		kinds []report.Kind // kinds that must all be found
		check func(*testing.T, *report.Report)
	}{
		{"heap series, leaky", numbered(leaky, "heap", ".pb.gz", 16), 3, []string{entries, sessions, set, journal}, nil, nil},
		{"heap series, steady", numbered(steady, "heap", ".pb.gz", 12), 0, nil, nil, nil},
		{"heap series, shuffled: ordered by time", slices.Concat(numbered(leaky, "heap", ".pb.gz", 16)[8:], numbered(leaky, "heap", ".pb.gz", 16)[:8]), 3,
			[]string{entries, sessions, set, journal}, nil, nil},
		{"heap base and target, leaky", slices.Concat([]string{"--base"}, files(leaky, "heap-01.pb.gz", "heap-12.pb.gz")), 3, []string{set, journal}, nil, nil},
		{"heap base and target, steady", slices.Concat([]string{"--base"}, files(steady, "heap-01.pb.gz", "heap-12.pb.gz")), 0, nil, nil, nil},
		{"legacy text heap profiles", slices.Concat([]string{"--min-growth", "50KiB"}, files(text, "heap-01.txt", "heap-02.txt")), 3, []string{entries, set, journal}, nil, nil},
		{"one legacy text heap profile", files(text, "heap-02.txt"), 0, nil, nil, func(t *testing.T, r *report.Report) {
			if len(r.Tables) != 2 || !slices.ContainsFunc(r.Tables[1].Rows, func(row []string) bool { return row[len(row)-1] == "main.(*dedup).mark (main.go:65)" }) {
				t.Errorf("tables %+v lack the set's site", r.Tables)
			}
		}},
		{"tracker profiles, leaky", numbered(leaky, "tracker", ".pb.gz", 16), 3, []string{records}, nil, nil},
		{"tracker profiles, steady", numbered(steady, "tracker", ".pb.gz", 12), 0, nil, nil, nil},
		{"tracker snapshots, leaky", numbered(leaky, "snapshot", ".json", 16), 3, []string{"cache", "tracker.live.client"}, nil, nil},
		{"tracker snapshots, steady", numbered(steady, "snapshot", ".json", 12), 0, nil, nil, nil},
		{"tracker snapshot at exit, steady", slices.Concat([]string{"--at-exit"}, files(steady, "snapshot-12.json")), 3, nil, []report.Kind{report.KindLeftover}, nil},
		{"goroutine profile debug=0", files(gor, "goroutine0.prof"), 0, nil, nil, wantGoroutineTable(25)},
		{"goroutine profile debug=1", files(gor, "goroutine1.prof"), 0, nil, nil, wantGoroutineTable(25)},
		{"goroutine dump debug=2", files(gor, "goroutine2.prof"), 0, nil, nil, wantGoroutineTable(25)},
		{"goroutine crash dump", []string{crash}, 0, nil, nil, wantGoroutineTable(-1)}, // with the runtime's own goroutines
		{"goroutineleak profile debug=0", files(gor, "goroutineleak0.prof"), 3, nil, []report.Kind{report.KindGoroutine}, nil},
		{"goroutineleak profile debug=1", files(gor, "goroutineleak1.prof"), 3, nil, []report.Kind{report.KindGoroutine}, nil},
		{"goroutine series", goroutineSeries, 3, []string{"main.leakOne"}, nil, nil},
		{"everything at once", slices.Concat(numbered(leaky, "heap", ".pb.gz", 16), files(gor, "goroutineleak0.prof"), numbered(leaky, "snapshot", ".json", 16)), 3,
			[]string{entries, set, "cache"}, []report.Kind{report.KindGrowth, report.KindGoroutine}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := reportE2E(t, lc, tt.args...)
			if res.r == nil {
				t.Fatalf("exit %d and no report: %s", res.code, res.stderr)
			}
			got := findingSubjects(res.r)
			if res.code != tt.code {
				t.Fatalf("exit %d, want %d; findings %q\n%s", res.code, tt.code, got, res.stderr)
			}
			for _, w := range tt.want {
				if !slices.ContainsFunc(got, func(s string) bool { return strings.Contains(s, w) }) {
					t.Errorf("no finding %q among %q", w, got)
				}
			}
			for _, k := range tt.kinds {
				if res.r.Summary.ByKind[k] == 0 {
					t.Errorf("no %s finding among %q", k, got)
				}
			}
			if tt.code == 0 && len(res.r.Findings) > 0 && tt.check == nil {
				// Findings that do not fail the default policy are fine
				// for single goroutine dumps; a steady program has none.
				t.Errorf("findings %q in a steady program", got)
			}
			if tt.check != nil {
				tt.check(t, res.r)
			}
		})
	}

	t.Run("bad inputs", func(t *testing.T) {
		dir := t.TempDir()
		pb, err := os.ReadFile(filepath.Join(leaky, "heap-12.pb.gz"))
		if err != nil {
			t.Fatal(err)
		}
		truncated := filepath.Join(dir, "truncated.pb.gz")
		os.WriteFile(truncated, pb[:len(pb)/3], 0o644)
		var bomb bytes.Buffer
		zw := gzip.NewWriter(&bomb)
		zw.Write(make([]byte, 8<<20))
		zw.Close()
		bombFile := filepath.Join(dir, "bomb.pb.gz")
		os.WriteFile(bombFile, bomb.Bytes(), 0o644)
		// A profile repeated is still a protocol buffer, with a head that
		// passes for a profile's: refused at the limit, as it decompresses.
		plain, err := bounded.Gunzip(pb, 1<<30)
		if err != nil {
			t.Fatal(err)
		}
		bomb.Reset()
		zw = gzip.NewWriter(&bomb)
		for range (8<<20)/len(plain) + 1 {
			zw.Write(plain)
		}
		zw.Close()
		profileBomb := filepath.Join(dir, "pbomb.pb.gz")
		os.WriteFile(profileBomb, bomb.Bytes(), 0o644)
		for _, tt := range []struct {
			args []string
			want string
		}{
			{[]string{truncated}, "truncated.pb.gz: decompressing: unexpected end of data (truncated?)"},
			// Zeros are no profile: refused on their first 64 KiB.
			{[]string{"--max-size", "4MiB", bombFile}, "bomb.pb.gz: not a profile leakcheck reads"},
			{[]string{"--max-size", "4MiB", profileBomb}, "pbomb.pb.gz: decompresses to more than the size limit of 4 MiB"},
			{[]string{filepath.Join(gor, "goroutine0.prof"), filepath.Join(dir, "nosuch")}, "nosuch: no such file or directory"},
		} {
			res := reportE2E(t, lc, tt.args...)
			if res.code != exitUsage || res.r != nil || !strings.Contains(res.stderr, tt.want) {
				t.Errorf("%q: exit %d, stderr %q; want exit 2 and %q", tt.args, res.code, res.stderr, tt.want)
			}
		}
	})

	t.Run("poll a leaky daemon", func(t *testing.T) {
		base := startServing(t, bin.heapgrow, "leaky")
		save := t.TempDir()
		res := reportE2E(t, lc, "--every", "100ms", "--count", "16", "--save", save, base+"/debug/pprof/heap?gc=1")
		if res.r == nil || res.code != exitLeaks {
			t.Fatalf("exit %d: %s", res.code, res.stderr)
		}
		got := findingSubjects(res.r)
		// How far the set grows in 1.6 s depends on how busy the machine
		// is; the objects that accumulate are found in any case.
		for _, w := range []string{entries, sessions} {
			if !slices.Contains(got, w) {
				t.Errorf("no finding %q among %q", w, got)
			}
		}
		saved, _ := filepath.Glob(filepath.Join(save, "heap-*.pb.gz"))
		if len(saved) != 16 {
			t.Fatalf("saved %q, want 16 profiles", saved)
		}
		again := reportE2E(t, lc, saved...)
		if again.code != exitLeaks || !slices.Equal(findingSubjects(again.r), got) {
			t.Errorf("the saved profiles: exit %d, findings %q; want %q", again.code, findingSubjects(again.r), got)
		}

		res = reportE2E(t, lc, "--every", "100ms", "--count", "16", base+"/debug/leakcheck/snapshot.json")
		if res.r == nil || res.code != exitLeaks || !slices.Contains(findingSubjects(res.r), "tracker.live.client") {
			t.Errorf("tracker snapshots: exit %d, findings %q: %s", res.code, findingSubjects(res.r), res.stderr)
		}
	})

	t.Run("poll a steady daemon", func(t *testing.T) {
		base := startServing(t, bin.heapgrow, "steady")
		res := reportE2E(t, lc, "--every", "100ms", "--count", "12", base+"/debug/pprof/heap?gc=1", base+"/debug/pprof/goroutine?debug=2")
		if res.r == nil || res.code != exitOK || len(res.r.Findings) > 0 {
			t.Fatalf("exit %d, findings %q: %s", res.code, findingSubjects(res.r), res.stderr)
		}
		if in := res.r.Metadata["inputs"]; in != "12 heap, 12 goroutine" {
			t.Errorf("inputs %q, want 12 of each", in)
		}
	})
}

// wantGoroutineTable checks that a report lists the goroutines of the test
// program: n in all (unless n is -1), the 5 receivers in one group.
func wantGoroutineTable(n int) func(*testing.T, *report.Report) {
	return func(t *testing.T, r *report.Report) {
		t.Helper()
		if len(r.Tables) != 1 {
			t.Fatalf("%d tables, want 1", len(r.Tables))
		}
		tb := r.Tables[0]
		if n >= 0 && !strings.Contains(tb.Title, fmt.Sprintf("(%d in all)", n)) {
			t.Errorf("title %q, want %d goroutines", tb.Title, n)
		}
		if !slices.ContainsFunc(tb.Rows, func(row []string) bool { return row[0] == "5" && strings.HasPrefix(row[3], "main.recvForever") }) {
			t.Errorf("no group of 5 in main.recvForever: %q", tb.Rows)
		}
		if len(r.Findings) > 0 {
			t.Errorf("findings %q in a dump of fresh goroutines", findingSubjects(r))
		}
	}
}
