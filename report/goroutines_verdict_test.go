package report

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// buildVerdicts builds testdata/programs/verdicts, with a GOEXPERIMENT when
// experiment is set, and returns the binary.
func buildVerdicts(t *testing.T, experiment string) string {
	t.Helper()
	return buildTestProgram(t, "./testdata/programs/verdicts", experiment)
}

// buildTestProgram builds the program pkg (relative to the module root) with
// the toolchain the go command picks (GOTOOLCHAIN=go1.27.3 picks that one)
// and GOEXPERIMENT=experiment where the toolchain knows it.
func buildTestProgram(t *testing.T, pkg, experiment string) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs a program")
	}
	bin := filepath.Join(t.TempDir(), filepath.Base(pkg))
	c := exec.Command("go", "build", "-trimpath", "-o", bin, pkg)
	c.Dir = ".."
	c.Env = os.Environ()
	if experiment != "" {
		c.Env = append(c.Env, "GOEXPERIMENT="+experiment)
	}
	out, err := c.CombinedOutput()
	if err != nil && experiment != "" && strings.Contains(string(out), "unknown GOEXPERIMENT") {
		// Go 1.27 and later have the goroutineleak profile without the
		// experiment, and refuse its name.
		c = exec.Command("go", "build", "-trimpath", "-o", bin, pkg)
		c.Dir = ".."
		out, err = c.CombinedOutput()
	}
	if err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, out)
	}
	return bin
}

// runVerdicts runs the program and returns the dumps it wrote, by form.
func runVerdicts(t *testing.T, bin string, args ...string) map[string]*GoroutineDump {
	t.Helper()
	out := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := exec.CommandContext(ctx, bin, append([]string{"-out", out}, args...)...)
	if b, err := c.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", bin, err, b)
	}
	files, err := filepath.Glob(filepath.Join(out, "*.prof"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no profiles written (%v)", err)
	}
	dumps := make(map[string]*GoroutineDump)
	for _, f := range files {
		dumps[strings.TrimSuffix(filepath.Base(f), ".prof")] = parseFile(t, f)
	}
	return dumps
}

// describe lists findings one a line, for failures.
func describe(fs []Finding) string {
	var b strings.Builder
	for _, f := range fs {
		fmt.Fprintf(&b, "  %s %s (%d) %v: %s\n", f.Severity, f.Subject, f.Count, f.Evidence.Basis, f.Evidence.Because)
	}
	return b.String()
}

// TestVerdictHealthyPool: a worker pool of 200 idle goroutines, a signal
// loop and a ticker loop are no leak in any form of a single dump: at most a
// suspect at info, which a gate at warning passes.
func TestVerdictHealthyPool(t *testing.T) {
	bin := buildVerdicts(t, "")
	dumps := runVerdicts(t, bin, "-mode", "pool", "-workers", "200")
	gate, err := ParsePolicy("leftover,growth,goroutine,severity>=warning")
	if err != nil {
		t.Fatal(err)
	}
	for _, form := range []string{"goroutine0", "goroutine1", "goroutine2"} {
		t.Run(form, func(t *testing.T) {
			d := dumps[form]
			fs := GoroutineFindings(d, GoroutineOptions{})
			if gate.FailsAny(fs) {
				t.Errorf("the pool fails a gate at warning:\n%s", describe(fs))
			}
			if len(fs) != 1 || fs[0].Severity != SeverityInfo || fs[0].Count != 200 ||
				!slices.Equal(fs[0].Evidence.Basis, []string{BasisShape}) || !strings.Contains(fs[0].Subject, "main.worker") ||
				!strings.HasPrefix(fs[0].Evidence.Because, "suspect by shape: 200 goroutines") {
				t.Errorf("want one info suspect by shape for the pool at main.worker:\n%s", describe(fs))
			}
			// A series of the same steady dump shows no growth and
			// nothing stuck.
			var series []*GoroutineDump
			for i := range 8 {
				c := *d
				c.Time = time.Unix(1700000000, 0).Add(time.Duration(i) * time.Minute)
				series = append(series, &c)
			}
			_, fs = AnalyzeGoroutines(series, GoroutineOptions{}, TrendOptions{})
			if gate.FailsAny(fs) {
				t.Errorf("a steady series of the pool fails a gate at warning:\n%s", describe(fs))
			}
		})
	}
}

// TestVerdictLeakProfile: with the goroutineleak profile, the leaked
// goroutines are exactly those the runtime marked. 150 idle workers on a
// live channel and 150 with the same stack on unreachable channels: one
// error finding of 150 in every form, and the live ones never join it.
func TestVerdictLeakProfile(t *testing.T) {
	bin := buildVerdicts(t, "goroutineleakprofile")
	dumps := runVerdicts(t, bin, "-mode", "mix", "-workers", "150",
		"-forms", "goroutineleak0,goroutineleak1,goroutineleak2,goroutine0")
	for _, form := range []string{"goroutineleak0", "goroutineleak1", "goroutineleak2"} {
		t.Run(form, func(t *testing.T) {
			fs := GoroutineFindings(dumps[form], GoroutineOptions{})
			var errs []Finding
			for _, f := range fs {
				if f.Severity == SeverityError {
					errs = append(errs, f)
				} else if slices.Contains(f.Evidence.Basis, BasisRuntime) || f.Severity > SeverityInfo {
					t.Errorf("unmarked goroutines judged above info: %s", describe([]Finding{f}))
				}
			}
			if len(errs) != 1 || errs[0].Count != 150 || !slices.Equal(errs[0].Evidence.Basis, []string{BasisRuntime}) ||
				!strings.Contains(errs[0].Subject, "main.worker") || !strings.Contains(errs[0].Evidence.Because, "marked leaked by the runtime") {
				t.Fatalf("want one error of 150 marked goroutines at main.worker:\n%s", describe(fs))
			}
			// Merging with the findings of an unmarked profile of the
			// same goroutines keeps the leak's count.
			merged := Group(append(fs, GoroutineFindings(dumps["goroutine0"], GoroutineOptions{})...))
			for _, f := range merged {
				if f.Severity == SeverityError && f.Count != 150 {
					t.Errorf("the leak merged with unmarked goroutines: %s", describe([]Finding{f}))
				}
			}
		})
	}
}

// TestVerdictForever: goroutines blocked on a nil channel or in an empty
// select are leaks by construction, at warning, in the forms that can tell.
func TestVerdictForever(t *testing.T) {
	bin := buildVerdicts(t, "")
	dumps := runVerdicts(t, bin, "-mode", "forever", "-forms", "goroutine0,goroutine2")
	for form, want := range map[string][]string{
		"goroutine2": {"chan receive (nil chan) at main.nilReceive", "select (no cases) at main.emptySelect"},
		// The proto form has no wait reason: an empty select shows as
		// runtime.block, a receive on a nil channel as any receive.
		"goroutine0": {"select (no cases) at main.emptySelect"},
	} {
		fs := GoroutineFindings(dumps[form], GoroutineOptions{})
		var got []string
		for _, f := range fs {
			if f.Severity == SeverityWarning && slices.Equal(f.Evidence.Basis, []string{BasisConstruction}) && f.Count == 3 {
				subject, _ := strings.CutPrefix(f.Subject, "goroutines blocked forever in ")
				got = append(got, subject[:strings.LastIndex(subject, " (")])
			}
		}
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Errorf("%s: findings by construction %q, want %q:\n%s", form, got, want, describe(fs))
		}
	}
}

// timedDump parses a debug=2 dump and stamps it with a time.
func timedDump(t *testing.T, text string, at time.Time) *GoroutineDump {
	t.Helper()
	d, err := ParseGoroutineText([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	d.Time = at
	return d
}

const (
	loopStack  = "main.(*Server).reloadLoop(0x1)\n\t/src/d/server.go:80 +0x2c\ncreated by main.main in goroutine 1\n\t/src/d/main.go:20 +0x5f\n"
	leakStack  = "main.handle.func1()\n\t/src/d/handler.go:31 +0x2c\ncreated by main.handle in goroutine 9\n\t/src/d/handler.go:30 +0x5f\n"
	stuckStack = "main.(*Cache).refresh(0x1)\n\t/src/d/cache.go:12 +0x2c\ncreated by main.main in goroutine 1\n\t/src/d/main.go:25 +0x5f\n"
	mainStack  = "main.main()\n\t/src/d/main.go:50 +0x1d\n"
	stdStack   = "net/http.(*persistConn).readLoop(0x1)\n\tnet/http/transport.go:2450 +0x2c\ncreated by main.fetch in goroutine 1\n\t/src/d/fetch.go:9 +0x5f\n"
)

// TestVerdictServiceLoops: in a single dump with waits, goroutines alone on
// their stack (or a few) that have waited as long as the process has run
// are service loops; goroutines that keep arriving, with spread waits, are
// blocked leaks.
func TestVerdictServiceLoops(t *testing.T) {
	text := blocks(1, 1, "chan receive, 600 minutes", mainStack) +
		blocks(5, 1, "select, 600 minutes", loopStack) +
		blocks(10, 2, "chan receive, 599 minutes", stuckStack)
	for i := range 30 {
		text += blocks(100+i, 1, fmt.Sprintf("chan send, %d minutes", 15+i*13), leakStack)
	}
	fs := GoroutineFindings(timedDump(t, text, time.Time{}), GoroutineOptions{})
	if len(fs) != 1 || fs[0].Count != 30 || fs[0].Severity != SeverityWarning ||
		fs[0].Subject != "goroutines blocked in chan send at main.handle.func1 (handler.go:31)" ||
		fs[0].Owner != "created by main.handle (handler.go:30)" ||
		!slices.Equal(fs[0].Evidence.Basis, []string{BasisBlocked}) ||
		fs[0].Evidence.Because != "blocked 15m to 6h32m by the dump's clock, in a process up at least 10h" {
		t.Errorf("want only the arriving goroutines, blocked:\n%s", describe(fs))
	}
}

// TestVerdictStuckAndMerged: across a series of debug=2 dumps, goroutines
// that keep their ids and frame while their wait grows are stuck, whatever
// their number; a group both blocked and growing is one finding with both.
func TestVerdictStuckAndMerged(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	var dumps []*GoroutineDump
	for i := range 12 {
		// 8 minutes apart: the main goroutine and a service loop wait all
		// along; two refreshers are stuck since before the first dump; the
		// handler leak adds 3 goroutines a dump, each waiting since it came.
		m := 60 + 8*i
		text := blocks(1, 1, fmt.Sprintf("chan receive, %d minutes", m), mainStack) +
			blocks(5, 1, fmt.Sprintf("select, %d minutes", m), loopStack) +
			blocks(10, 2, fmt.Sprintf("chan receive, %d minutes", 20+8*i), stuckStack)
		for j := range 3 * (i + 1) {
			text += blocks(1000+j, 1, fmt.Sprintf("chan send, %d minutes", 8*(i-j/3)), leakStack)
		}
		// Goroutines that come and go at the same frame are not stuck.
		text += blocks(5000+100*i, 2, "chan receive", stdStack)
		dumps = append(dumps, timedDump(t, text, t0.Add(time.Duration(8*i)*time.Minute)))
	}
	_, fs := AnalyzeGoroutines(dumps, GoroutineOptions{}, TrendOptions{})
	bySubject := make(map[string]Finding)
	for _, f := range fs {
		bySubject[f.Subject] = f
	}
	// Two goroutines alone: blocked long by the latest dump's clock, but
	// shorter than the process has run, and stuck by the series.
	stuck, ok := bySubject["goroutines blocked in chan receive at main.(*Cache).refresh (cache.go:12)"]
	if !ok || stuck.Count != 2 || stuck.Severity != SeverityWarning || !slices.Equal(stuck.Evidence.Basis, []string{BasisBlocked, BasisStuck}) ||
		stuck.Evidence.Because != "blocked 1h48m by the dump's clock, in a process up at least 2h28m; "+
			"stuck across 12 dumps for 1h28m: the same 2 goroutines blocked at the same frame while their wait grew with the clock" {
		t.Errorf("want the two refreshers stuck:\n%s", describe(fs))
	}
	leak, ok := bySubject["goroutines blocked in chan send at main.handle.func1 (handler.go:31)"]
	// The first three have been there since the first dump: stuck too.
	if !ok || leak.Count != 36 || !slices.Equal(leak.Evidence.Basis, []string{BasisBlocked, BasisStuck, BasisGrowing}) ||
		!strings.HasPrefix(leak.Evidence.Because, "blocked up to 1h28m by the dump's clock") ||
		leak.Evidence.Trend == nil || leak.Evidence.Series == "" || !strings.Contains(leak.Evidence.Because, "; growing at +") {
		t.Errorf("want the handler leak as one finding, blocked and growing:\n%s", describe(fs))
	}
	if len(fs) != 2 {
		t.Errorf("%d findings, want 2 (no service loop, no goroutine that came and went):\n%s", len(fs), describe(fs))
	}
	// All in the standard library: named at the user's creating frame.
	if s := goroutineSubject("goroutines", "chan receive", dumps[0].Goroutines[len(dumps[0].Goroutines)-1].Stack, Frame{Func: "main.fetch", File: "/src/d/fetch.go", Line: 9}); s != "goroutines in chan receive created by main.fetch (fetch.go:9)" {
		t.Errorf("subject %q, want it named at the creator in the user's code", s)
	}
}
