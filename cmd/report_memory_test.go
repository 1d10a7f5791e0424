//go:build linux

package cmd

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/pprof/profile"
)

// The memory tests run the built leakcheck on bad inputs and on a series of
// profiles, and read its peak resident memory from the kernel (the
// process's rusage), so that they measure what a user would see.

// refusedPeak bounds the peak resident memory of leakcheck refusing an input.
const refusedPeak = 64 << 20

// peakFileEnv makes the test binary, run as a child, run the command its
// arguments name and write that command's peak resident memory to the file
// the variable names (see peakRSS).
const peakFileEnv = "LEAKCHECK_TEST_PEAK_FILE"

// peakRSS runs c to its end and returns its exit code, its stderr and its
// peak resident memory in bytes. Linux counts in a process's peak the peak
// of the process it was forked from, up to its exec: a command started by
// this test binary (hundreds of megabytes under -race) would inherit the
// test's. So c runs under the test binary started afresh, whose own peak is
// small, and which reports c's.
func peakRSS(t *testing.T, c *exec.Cmd) (code int, stderr string, peak int64) {
	t.Helper()
	file := filepath.Join(t.TempDir(), "peak")
	via := exec.Command(os.Args[0], c.Args...)
	via.Env = append(c.Environ(), peakFileEnv+"="+file)
	via.Stdin, via.Stdout = c.Stdin, c.Stdout
	var errb bytes.Buffer
	via.Stderr = &errb
	err := via.Run()
	if _, ok := err.(*exec.ExitError); err != nil && !ok {
		t.Fatalf("%s: %v", strings.Join(c.Args, " "), err)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("%s: no peak measured: %v\n%s", strings.Join(c.Args, " "), err, errb.String())
	}
	if _, err := fmt.Sscan(string(b), &peak); err != nil {
		t.Fatalf("peak file %q: %v", b, err)
	}
	return via.ProcessState.ExitCode(), errb.String(), peak
}

// measurePeak runs args with this process's standard streams, writes its
// peak resident memory in bytes to file, and returns its exit code.
func measurePeak(file string, args []string) int {
	c := exec.Command(args[0], args[1:]...)
	c.Stdin, c.Stdout, c.Stderr = os.Stdin, os.Stdout, os.Stderr
	os.Unsetenv(peakFileEnv) // the command may be this test binary too
	c.Env = os.Environ()
	err := c.Run()
	if c.ProcessState == nil {
		fmt.Fprintln(os.Stderr, err)
		return 125
	}
	ru, ok := c.ProcessState.SysUsage().(*syscall.Rusage)
	if !ok {
		return 125
	}
	if err := os.WriteFile(file, fmt.Appendf(nil, "%d", ru.Maxrss<<10), 0o644); err != nil { // kilobytes on Linux
		fmt.Fprintln(os.Stderr, err)
		return 125
	}
	return c.ProcessState.ExitCode()
}

// endless is a reader of random bytes that never ends.
type endless struct{}

func (endless) Read(p []byte) (int, error) { return rand.Read(p) }

// TestReportRefusesInBoundedMemory feeds leakcheck report inputs that cost
// hundreds of megabytes before they were refused: each must be refused
// with a clear error in less than refusedPeak.
func TestReportRefusesInBoundedMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("builds leakcheck")
	}
	dir := t.TempDir()
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("no go command: %v", err)
	}
	lc := filepath.Join(dir, "leakcheck")
	runIn(t, "..", goTool, "build", "-o", lc, ".")

	pb, err := os.ReadFile(filepath.Join("..", "report", "testdata", "heap", "leaky-03.pb.gz"))
	if err != nil {
		t.Fatal(err)
	}
	write := func(name string, data []byte) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	// The gzip trailer's size field, which the reader once trusted: a
	// truncated file ends in compressed bytes, a lying one claims 4 GiB.
	truncated := write("truncated.pb.gz", pb[:300])
	lying := write("lying.pb.gz", append(bytes.Clone(pb[:len(pb)-4]), 0xff, 0xff, 0xff, 0xff))
	garbage := make([]byte, 1<<20)
	rand.Read(garbage)
	random := write("random.bin", garbage)
	sparse := func(name string, size int64) string {
		path := filepath.Join(dir, name)
		f, err := os.Create(path)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if err := f.Truncate(size); err != nil {
			t.Fatal(err)
		}
		return path
	}
	huge := sparse("huge.bin", 2<<30)     // past the size limit
	zeros := sparse("zeros.bin", 200<<20) // within it

	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(w, endless{}) // until the client hangs up
	}))
	defer srv.Close()

	tests := []struct {
		name  string
		arg   string
		stdin io.Reader
		want  string
	}{
		{"truncated gzip", truncated, nil, "truncated.pb.gz: decompressing: unexpected end of data (truncated?)"},
		{"gzip with a lying size", lying, nil, "lying.pb.gz: decompressing: gzip: invalid checksum"},
		{"/dev/zero", "/dev/zero", nil, "/dev/zero: not a profile leakcheck reads"},
		{"random bytes", random, nil, "random.bin: not a profile leakcheck reads"},
		{"2 GiB file", huge, nil, "huge.bin: 2 GiB: larger than the size limit of 256 MiB"},
		{"200 MiB of zeros", zeros, nil, "zeros.bin: not a profile leakcheck reads"},
		{"endless URL body", srv.URL + "/debug/pprof/heap", nil, "/debug/pprof/heap: not a profile leakcheck reads"},
		{"endless standard input", "-", endless{}, "-: not a profile leakcheck reads"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			c := exec.CommandContext(ctx, lc, "report", tt.arg)
			c.Stdin = tt.stdin
			code, stderr, peak := peakRSS(t, c)
			t.Logf("peak RSS %.1f MiB: %s", float64(peak)/(1<<20), strings.TrimSpace(stderr))
			if code != 2 || !strings.Contains(stderr, tt.want) {
				t.Errorf("exit %d, stderr %q; want exit 2 and %q", code, stderr, tt.want)
			}
			if peak > refusedPeak {
				t.Errorf("peak RSS %.1f MiB, want under %d MiB", float64(peak)/(1<<20), refusedPeak>>20)
			}
		})
	}
}

// parseHelperEnv names the profile that TestParseHelper parses, when the
// memory test runs this test binary as a child to measure profile.Parse.
const parseHelperEnv = "LEAKCHECK_TEST_PARSE"

// TestParseHelper parses the profile named by parseHelperEnv with
// profile.Parse and nothing else; without it, it does nothing.
func TestParseHelper(t *testing.T) {
	name := os.Getenv(parseHelperEnv)
	if name == "" {
		t.Skip("a helper for TestReportSeriesMemory")
	}
	f, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	p, err := profile.Parse(f)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Println(len(p.Sample), "samples")
}

// TestReportSeriesMemory checks that leakcheck report on a series of 30
// heap profiles peaks at less than twice the memory profile.Parse takes on
// the largest of them: the series is held as values by site.
func TestReportSeriesMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs a program with thousands of allocation sites")
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("no go command: %v", err)
	}
	dir := t.TempDir()
	allocs, lc := buildAllocs(t, goTool, dir)
	const n = 30
	runIn(t, dir, allocs, dir, fmt.Sprint(n))
	series := numbered(dir, "heap", ".pb.gz", n)
	last := series[n-1]

	parse := exec.Command(os.Args[0], "-test.run=^TestParseHelper$", "-test.count=1")
	parse.Env = append(os.Environ(), parseHelperEnv+"="+last)
	code, stderr, parsePeak := peakRSS(t, parse)
	if code != 0 {
		t.Fatalf("parse helper: exit %d: %s", code, stderr)
	}
	code, stderr, seriesPeak := peakRSS(t, exec.Command(lc, append([]string{"report", "--fail-on", "none", "--format", "json", "--output", filepath.Join(dir, "series.json")}, series...)...))
	if code != 0 {
		t.Fatalf("leakcheck report of %d profiles: exit %d: %s", n, code, stderr)
	}
	ratio := float64(seriesPeak) / float64(parsePeak)
	t.Logf("profile.Parse of %s: peak RSS %.1f MiB; leakcheck report of %d profiles: %.1f MiB (%.2fx)",
		filepath.Base(last), float64(parsePeak)/(1<<20), n, float64(seriesPeak)/(1<<20), ratio)
	if ratio >= 2 {
		t.Errorf("a series of %d profiles peaks at %.2fx the parse of the largest; want under 2x", n, ratio)
	}
}
