package cmd

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	_ "net/http/pprof" // the endpoint of "pprof endpoint goes down"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/leakcheck/leakcheck/internal/proctest"
	"github.com/leakcheck/leakcheck/report"
)

// The end-to-end tests of `leakcheck run` build leakcheck and the daemons in
// testdata/daemons once, run the daemons and shell commands under it, and
// check its JSON report, its exit status and what it leaves behind. Runs are
// short: samples every 100 ms, a 300 ms warm-up, a few seconds each.

// e2eBinaries are the programs the end-to-end tests run.
type e2eBinaries struct {
	leakcheck, leaky, steady string
}

// skipUnlessE2E skips an end-to-end test with -short, where runs of
// seconds are not wanted, and off Linux, where leakcheck cannot sample
// /proc.
func skipUnlessE2E(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end runs take seconds; skipped with -short")
	}
	if runtime.GOOS != "linux" {
		t.Skip("leakcheck samples /proc: Linux only")
	}
}

// buildE2E builds leakcheck and the test daemons into dir.
func buildE2E(t *testing.T, dir string) e2eBinaries {
	t.Helper()
	buildPrograms(t, dir, nil, ".", "./testdata/daemons/leaky", "./testdata/daemons/steady")
	return e2eBinaries{
		leakcheck: filepath.Join(dir, "leakcheck"),
		leaky:     filepath.Join(dir, "leaky"),
		steady:    filepath.Join(dir, "steady"),
	}
}

// buildPrograms builds the packages pkgs of the module ("." is leakcheck)
// into dir, without the race detector whatever the test binary has, with
// env added to the go command's environment. Each program is named after
// its directory.
func buildPrograms(t *testing.T, dir string, env []string, pkgs ...string) {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("no go command to build with: %v", err)
	}
	start := time.Now()
	c := exec.Command(goTool, append([]string{"build", "-o", dir + string(filepath.Separator)}, pkgs...)...)
	c.Dir = ".." // the module root
	c.Env = append(os.Environ(), env...)
	if out, err := c.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", strings.Join(pkgs, " "), err, out)
	}
	t.Logf("built %s in %v", strings.Join(pkgs, " "), time.Since(start).Round(time.Millisecond))
}

// e2eFlags are the run flags that keep a run to a few seconds. At ten ticks a
// second, every tick takes a full sample (--max-cpu 100), so that the
// per-type series have enough points for the trend test in so short a run;
// the demo runs below keep the default schedule.
var e2eFlags = []string{"--interval", "100ms", "--warmup", "300ms", "--grace", "1s", "--max-cpu", "100"}

// e2eResult is how one run of leakcheck went.
type e2eResult struct {
	code           int
	stdout, stderr string
	elapsed        time.Duration
	report         *report.Report // nil without --output
}

// e2eRun is a leakcheck process the test has started.
type e2eRun struct {
	t       *testing.T
	cmd     *exec.Cmd
	cancel  context.CancelFunc
	out     string // the report file, or ""
	start   time.Time
	stdout  bytes.Buffer
	stderr  bytes.Buffer
	waited  bool
	command string
}

// startE2E starts leakcheck with args; with output set it adds
// "--format json --output FILE" before the "--" and reads the report when
// the run ends. A run that takes over a minute is stopped.
func startE2E(t *testing.T, bin string, output bool, stdin string, args ...string) *e2eRun {
	t.Helper()
	r := &e2eRun{t: t}
	if output {
		r.out = filepath.Join(t.TempDir(), "report.json")
		flags := []string{"--format", "json", "--output", r.out}
		if i := slices.Index(args, "--"); i >= 0 {
			args = slices.Concat(args[:i], flags, args[i:])
		} else {
			args = append(args, flags...)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	r.cancel = cancel
	r.cmd = exec.CommandContext(ctx, bin, args...)
	// On timeout, SIGTERM lets leakcheck stop its command; SIGKILL follows.
	r.cmd.Cancel = func() error { return r.cmd.Process.Signal(syscall.SIGTERM) }
	r.cmd.WaitDelay = 10 * time.Second
	r.cmd.Stdin = strings.NewReader(stdin)
	r.cmd.Stdout, r.cmd.Stderr = &r.stdout, &r.stderr
	r.command = "leakcheck " + strings.Join(args, " ")
	r.start = time.Now()
	if err := r.cmd.Start(); err != nil {
		cancel()
		t.Fatalf("%s: %v", r.command, err)
	}
	t.Cleanup(func() {
		cancel() // a run the test gave up on gets SIGTERM, so it stops its command too
		if !r.waited {
			r.cmd.Wait()
		}
	})
	return r
}

// wait waits for the run to end and reads its report.
func (r *e2eRun) wait() e2eResult {
	r.t.Helper()
	err := r.cmd.Wait()
	r.waited = true
	r.cancel()
	res := e2eResult{code: r.cmd.ProcessState.ExitCode(), stdout: r.stdout.String(), stderr: r.stderr.String(), elapsed: time.Since(r.start)}
	if ee := (*exec.ExitError)(nil); err != nil && !errors.As(err, &ee) {
		r.t.Fatalf("%s: %v\nstderr:\n%s", r.command, err, res.stderr)
	}
	r.t.Logf("%s: exit %d after %v", r.command, res.code, res.elapsed.Round(time.Millisecond))
	if r.out == "" {
		return res
	}
	f, err := os.Open(r.out)
	if err != nil {
		if res.code == exitUsage || res.code == exitNotFound {
			return res // no report, as expected of these
		}
		r.t.Fatalf("%s: exit %d and no report: %v\nstderr:\n%s", r.command, res.code, err, res.stderr)
	}
	defer f.Close()
	if res.report, err = report.ReadReport(f); err != nil {
		r.t.Fatalf("%s: %v", r.command, err)
	}
	return res
}

// runE2E runs leakcheck to the end; see startE2E.
func runE2E(t *testing.T, bin string, output bool, args ...string) e2eResult {
	t.Helper()
	return startE2E(t, bin, output, "", args...).wait()
}

// describe lists a report's findings and metadata for a failure message.
func describeReport(r *report.Report) string {
	if r == nil {
		return "(no report)"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "metadata %v\n", r.Metadata)
	for _, f := range r.Findings {
		fmt.Fprintf(&b, "  %s %s %q x%d\n", f.Kind, f.Severity, f.Subject, f.Count)
	}
	return b.String()
}

// findings returns the findings of kind whose subject matches match.
func findingsOf(r *report.Report, kind report.Kind, match func(subject string) bool) []report.Finding {
	var out []report.Finding
	for _, f := range r.Findings {
		if f.Kind == kind && match(f.Subject) {
			out = append(out, f)
		}
	}
	return out
}

func subjectIs(s string) func(string) bool { return func(subject string) bool { return subject == s } }

// grew reports whether the report says a series matching match grew: as a
// growth finding of its own, or as the evidence of another finding (one
// leak seen through several series is one finding).
func grew(r *report.Report, match func(series string) bool) bool {
	for _, f := range r.Findings {
		if f.Kind == report.KindGrowth && match(f.Subject) || slices.ContainsFunc(f.Evidence.Related, match) {
			return true
		}
	}
	return false
}

// freeLoopbackPort returns a loopback port that nothing listens on at the moment.
func freeLoopbackPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return port
}

func TestRunEndToEnd(t *testing.T) {
	skipUnlessE2E(t)
	bin := buildE2E(t, t.TempDir())
	lc := bin.leakcheck

	t.Run("leaky", func(t *testing.T) {
		t.Parallel()
		port := freeLoopbackPort(t)
		args := slices.Concat([]string{"run"}, e2eFlags, []string{
			"--duration", "3s", "--pprof", fmt.Sprintf("http://127.0.0.1:%d", port), "--",
			bin.leaky, "-dir", t.TempDir(), "-pprof", fmt.Sprintf("127.0.0.1:%d", port),
		})
		res := runE2E(t, lc, true, args...)
		r := res.report
		if res.code != exitLeaks {
			t.Errorf("exit %d, want %d", res.code, exitLeaks)
		}
		m := regexp.MustCompile(`listening on (127\.0\.0\.1:\d+)`).FindStringSubmatch(res.stdout)
		if m == nil {
			t.Fatalf("leaky's stdout did not pass through: %q", res.stdout)
		}
		closeWait := "tcp connections accepted on " + m[1] + " in CLOSE_WAIT"
		if !grew(r, func(s string) bool { return s == "fds" || s == "fds.file" }) {
			t.Error(`no growth of "fds" or "fds.file", as a finding or as evidence`)
		}
		if !grew(r, subjectIs("sockets.tcp.CLOSE_WAIT")) {
			t.Error("no growth of sockets.tcp.CLOSE_WAIT, as a finding or as evidence")
		}
		want := []struct {
			kind  report.Kind
			what  string
			match func(string) bool
		}{
			// From --pprof, by stack: the goroutines parked on a channel.
			{report.KindGoroutine, "growing goroutines blocked in chan receive", func(s string) bool {
				return strings.HasPrefix(s, "growing goroutines in chan receive at main.")
			}},
			{report.KindLeftover, closeWait, subjectIs(closeWait)},
			{report.KindLeftover, "fd file .../leak-*.log", func(s string) bool {
				return strings.HasPrefix(s, "fd file ") && strings.HasSuffix(s, "/leak-*.log")
			}},
		}
		for _, w := range want {
			fs := findingsOf(r, w.kind, w.match)
			if len(fs) == 0 {
				t.Errorf("no %s finding for %s", w.kind, w.what)
				continue
			}
			// One leak every 20 ms for ~2.7 s after the baseline: far more than a few.
			if w.kind == report.KindLeftover && fs[0].Count < 20 {
				t.Errorf("%s %q: count %d, want at least 20", w.kind, fs[0].Subject, fs[0].Count)
			}
		}
		if t.Failed() {
			t.Logf("report:\n%s\nstderr:\n%s", describeReport(r), res.stderr)
		}
	})

	t.Run("steady", func(t *testing.T) {
		t.Parallel()
		port := freeLoopbackPort(t)
		args := slices.Concat([]string{"run"}, e2eFlags, []string{
			"--duration", "3s", "--pprof", fmt.Sprintf("http://127.0.0.1:%d", port), "--",
			bin.steady, "-dir", t.TempDir(), "-pprof", fmt.Sprintf("127.0.0.1:%d", port),
		})
		res := runE2E(t, lc, true, args...)
		r := res.report
		if res.code != exitOK {
			t.Errorf("exit %d, want %d", res.code, exitOK)
		}
		// A steady daemon may hold what it opened after the baseline (info),
		// but nothing that grows.
		for _, f := range r.Findings {
			if (f.Kind == report.KindLeftover || f.Kind == report.KindGrowth) && f.Severity > report.SeverityInfo {
				t.Errorf("unexpected finding: %s %s %q x%d", f.Severity, f.Kind, f.Subject, f.Count)
			}
		}
		// It was busy: the churn really happened, and was sampled.
		m := regexp.MustCompile(`stopping after (\d+) rounds, (\d+) cache flushes`).FindStringSubmatch(res.stderr)
		if m == nil {
			t.Errorf("steady did not stop cleanly; stderr:\n%s", res.stderr)
		} else if rounds, _ := strconv.Atoi(m[1]); rounds < 50 {
			t.Errorf("steady did only %d rounds of work", rounds)
		} else if flushes, _ := strconv.Atoi(m[2]); flushes < 2 {
			t.Errorf("steady flushed its cache %d times: no saw-tooth", flushes)
		}
		for _, name := range []string{"fds", "sockets.tcp", "goroutines", "rss_bytes"} {
			i := slices.IndexFunc(r.Series, func(s report.Series) bool { return s.Name == name })
			if i < 0 || len(r.Series[i].Points) < 20 {
				t.Errorf("series %s missing or short", name)
			}
		}
		if t.Failed() {
			t.Logf("report:\n%s", describeReport(r))
			for _, s := range r.Series {
				var vs []float64
				for _, p := range s.Points {
					vs = append(vs, p.Value)
				}
				t.Logf("series %s: %v", s.Name, vs)
			}
		}
	})

	t.Run("demo", func(t *testing.T) {
		t.Parallel()
		// Both runs at once, to save time.
		clean := startE2E(t, lc, true, "", "run", "--leak", "none", "--duration", "4s", "--interval", "200ms", "--warmup", "1s")
		// Every tick a full sample, so that the pool's few keep-alive
		// sockets are judged steady (info), as in longer runs, not rising.
		leaky := startE2E(t, lc, true, "", "run", "--duration", "6s", "--interval", "200ms", "--warmup", "1s", "--max-cpu", "100")

		res := clean.wait()
		if res.code != exitOK {
			t.Errorf("--leak none: exit %d, want 0", res.code)
		}
		for _, f := range res.report.Findings {
			// Memory rising over a few seconds is said, at info, to be too
			// short a window to judge; anything else is a false finding.
			if f.Kind == report.KindGrowth && f.Severity == report.SeverityInfo && strings.HasSuffix(f.Subject, "_bytes") {
				continue
			}
			t.Errorf("--leak none: unexpected finding %s %s %q x%d", f.Severity, f.Kind, f.Subject, f.Count)
		}

		res = leaky.wait()
		r := res.report
		if res.code != exitLeaks {
			t.Errorf("default leaks: exit %d, want %d", res.code, exitLeaks)
		}
		// One finding per leak the demo commits, the other views of the
		// leak as its evidence, and a fix that names the leak's own code
		// or cause.
		type view struct {
			kind  report.Kind
			match func(string) bool
		}
		prefix := func(p string) func(string) bool { return func(s string) bool { return strings.HasPrefix(s, p) } }
		contains := func(p string) func(string) bool { return func(s string) bool { return strings.Contains(s, p) } }
		// shows reports whether f, as its subject or as related evidence,
		// is a view v.
		shows := func(f report.Finding, v view) bool {
			if f.Kind == v.kind && v.match(f.Subject) {
				return true
			}
			for _, rel := range f.Evidence.Related {
				if k, subject, ok := strings.Cut(rel, ": "); ok && k == string(v.kind) && v.match(subject) {
					return true
				}
			}
			return false
		}
		leaks := []struct {
			name  string
			views []view // each must be the finding or in its evidence
			fix   string // the suggestion names it
		}{
			{"extra-filehandle", []view{{report.KindLeftover, prefix("file ")}, {report.KindLeftover, prefix("socket udp ")}}, "runExtraFilehandle"},
			{"session-cycle", []view{{report.KindCycle, contains("peerHeap")}, {report.KindRetained, prefix("heap ping ")}, {report.KindRetained, prefix("heap pong ")}}, "peerHeap"},
			{"growing-map", []view{{report.KindGrowth, contains("growing-map")}}, "growing-map"},
			{"closure-capture", []view{{report.KindLeftover, prefix("timer after func 1h")}, {report.KindRetained, prefix("payload job ")}}, "runClosureCapture"},
			{"forgotten-connection", []view{{report.KindUnreleased, prefix("connection 127.0.0.1:")}}, "pooledRequest"},
			{"goroutine", []view{{report.KindLeftover, prefix("goroutine waiter")}}, "runDemoClients"},
			{"close-wait", []view{{report.KindLeftover, contains("in CLOSE_WAIT")}}, "close the socket on EOF"},
		}
		var leading []report.Finding
		for _, f := range r.Findings {
			if f.Severity > report.SeverityInfo {
				leading = append(leading, f)
			}
		}
		if len(leading) != len(leaks) {
			t.Errorf("default leaks: %d findings above info, want %d, one per leak", len(leading), len(leaks))
		}
		claimed := map[int]string{} // finding: the leak it is
		for _, l := range leaks {
			found := false
			for i, f := range leading {
				if !slices.ContainsFunc(l.views, func(v view) bool { return shows(f, v) }) {
					continue
				}
				if prev, ok := claimed[i]; ok {
					t.Errorf("default leaks: %s and %s are one finding, %q", prev, l.name, f.Subject)
				}
				claimed[i], found = l.name, true
				for _, v := range l.views {
					if !shows(f, v) {
						t.Errorf("default leaks: %s: finding %q lacks a %s view of the leak in its evidence %q", l.name, f.Subject, v.kind, f.Evidence.Related)
					}
				}
				if !strings.Contains(f.Suggestion, l.fix) {
					t.Errorf("default leaks: %s: fix %q does not name %q", l.name, f.Suggestion, l.fix)
				}
			}
			if !found {
				t.Errorf("default leaks: no finding for %s", l.name)
			}
		}
		for i, f := range leading {
			if _, ok := claimed[i]; !ok {
				t.Errorf("default leaks: finding %s %s %q is none of the leaks", f.Severity, f.Kind, f.Subject)
			}
		}
		if t.Failed() {
			t.Logf("report:\n%s", describeReport(r))
		}
	})

	t.Run("exits at once", func(t *testing.T) {
		t.Parallel()
		for _, tt := range []struct {
			command []string
			want    int
		}{
			{[]string{"true"}, 0},
			{[]string{"sh", "-c", "exit 7"}, 7},
			// The command's own status wins, even where it means something
			// else to leakcheck (3: findings failed --fail-on).
			{[]string{"sh", "-c", "exit 3"}, 3},
		} {
			res := runE2E(t, lc, true, slices.Concat([]string{"run"}, e2eFlags, []string{"--"}, tt.command)...)
			if tt.want == 0 && res.code == exitUsage && strings.Contains(res.stderr, "no sample of true was taken") {
				continue // it exited before the first sample: no report, never "no leaks found"
			}
			if res.code != tt.want {
				t.Errorf("%q: exit %d, want %d\nstderr: %s", tt.command, res.code, tt.want, res.stderr)
			}
			if res.elapsed > 5*time.Second {
				t.Errorf("%q: took %v", tt.command, res.elapsed)
			}
			if len(res.report.Findings) > 0 {
				t.Errorf("%q: findings\n%s", tt.command, describeReport(res.report))
			}
		}
	})

	t.Run("ignores SIGTERM", func(t *testing.T) {
		t.Parallel()
		arg := proctest.SleepArg(30)
		run := startE2E(t, lc, true, "", "run", "--interval", "100ms", "--warmup", "300ms", "--duration", "1s", "--grace", "500ms", "--",
			"sh", "-c", `trap "" TERM; sleep `+arg)
		var pid int
		if !proctest.PollUntil(5*time.Second, func() bool {
			pids := proctest.WithArg(t, arg)
			if len(pids) > 0 {
				pid = pids[0]
			}
			return pid != 0
		}) {
			t.Error("sleep never started")
		}
		res := run.wait()
		// leakcheck stopped it, so its death by SIGKILL is not a failure.
		if res.code != exitOK {
			t.Errorf("exit %d, want 0\n%s\nstderr: %s", res.code, describeReport(res.report), res.stderr)
		}
		// --duration 1s, then 500 ms of grace, then SIGKILL.
		if res.elapsed > 4*time.Second {
			t.Errorf("run took %v", res.elapsed)
		}
		if pid != 0 {
			if st := procState(pid); st != "" && st != "Z" {
				t.Errorf("sleep (pid %d) survived leakcheck: state %s", pid, st)
			}
		}
		if left := proctest.WithArg(t, arg); len(left) > 0 {
			t.Errorf("processes left behind: %v", left)
		}
	})

	t.Run("leaves no process behind", func(t *testing.T) {
		t.Parallel()
		if _, err := exec.LookPath("setsid"); err != nil {
			t.Skip("no setsid command")
		}
		for i, tt := range []struct {
			name   string
			script string // %s is the marker
			// leftover is whether a "process sleep" finding is required (1)
			// or forbidden (-1). An orphan is reparented to leakcheck, the
			// subreaper, so it is found even if no sample saw it.
			leftover int
		}{
			{"grandchild, parent exits at once", "sleep %s & exit 0", 1},
			{"grandchild in its own session, parent exits at once", "setsid sleep %s & exit 0", 1},
			{"grandchild outlives its parent", "sleep %s & sleep 0.5; exit 0", 1},
			{"grandchild in its own session", "setsid sleep %s & sleep 0.5; exit 0", 1},
			// Stopped at --duration, both get SIGTERM: sleep dies with sh
			// (the "; exit 0" keeps sh from exec'ing sleep in its place).
			{"child stopped with its parent", "sleep %s; exit 0", -1},
		} {
			arg := proctest.SleepArg(40 + i)
			script := fmt.Sprintf(tt.script, arg)
			res := runE2E(t, lc, true, slices.Concat([]string{"run"}, e2eFlags, []string{"--duration", "1s", "--", "sh", "-c", script})...)
			left := findingsOf(res.report, report.KindLeftover, subjectIs("process sleep"))
			wantCode := exitOK
			switch {
			case tt.leftover > 0 && len(left) == 0:
				t.Errorf("%s: no \"process sleep\" leftover\n%s", tt.name, describeReport(res.report))
			case tt.leftover < 0 && len(left) > 0:
				t.Errorf("%s: a \"process sleep\" leftover\n%s", tt.name, describeReport(res.report))
			}
			if len(left) > 0 {
				wantCode = exitLeaks
			}
			if res.code != wantCode {
				t.Errorf("%s: exit %d, want %d\n%s", tt.name, res.code, wantCode, describeReport(res.report))
			}
			if pids := proctest.WithArg(t, arg); len(pids) > 0 {
				t.Errorf("%s: processes left behind: %v", tt.name, pids)
				for _, pid := range pids {
					syscall.Kill(pid, syscall.SIGKILL)
				}
			}
		}
	})

	t.Run("killed by a signal", func(t *testing.T) {
		t.Parallel()
		for _, tt := range []struct {
			script string
			want   int
		}{
			{"kill -s KILL $$", 128 + 9},
			{"ulimit -c 0; kill -s SEGV $$", 128 + 11},
			{"sleep 0.3; kill -s TERM $$", 128 + 15},
		} {
			res := runE2E(t, lc, true, slices.Concat([]string{"run"}, e2eFlags, []string{"--", "sh", "-c", tt.script})...)
			if res.code != tt.want {
				t.Errorf("%q: exit %d, want %d\nstderr: %s", tt.script, res.code, tt.want, res.stderr)
			}
		}
	})

	t.Run("command not found", func(t *testing.T) {
		t.Parallel()
		for _, name := range []string{"leakcheck-test-no-such-command", "/nonexistent/leakcheck-test-daemon"} {
			res := runE2E(t, lc, true, "run", "--", name, "arg")
			if res.code != exitNotFound {
				t.Errorf("%s: exit %d, want %d", name, res.code, exitNotFound)
			}
			if !strings.Contains(res.stderr, "leakcheck: starting "+name) || !strings.Contains(res.stderr, name) ||
				!(strings.Contains(res.stderr, "not found") || strings.Contains(res.stderr, "no such file")) {
				t.Errorf("%s: unclear message on stderr: %q", name, res.stderr)
			}
		}
	})

	t.Run("pprof endpoint down", func(t *testing.T) {
		t.Parallel()
		// Never answered: an input error that says why, not "no leaks".
		port := freeLoopbackPort(t)
		addr := fmt.Sprintf("127.0.0.1:%d", port) // no scheme: http
		res := runE2E(t, lc, true, slices.Concat([]string{"run"}, e2eFlags, []string{"--duration", "1s", "--pprof", addr, "--", "sleep", proctest.SleepArg(33)})...)
		if res.code != exitUsage || !strings.Contains(res.stderr, "never answered") ||
			!strings.Contains(res.stderr, "http://"+addr+"/debug/pprof/") || !strings.Contains(res.stderr, "refused") {
			t.Errorf("exit %d, want %d and the last error; stderr: %s", res.code, exitUsage, res.stderr)
		}
	})

	t.Run("pprof endpoint goes down", func(t *testing.T) {
		t.Parallel()
		// Answered, then failed: gaps in the report, not an error.
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		srv := &http.Server{Handler: http.DefaultServeMux} // net/http/pprof's, for this test process
		go srv.Serve(l)
		time.AfterFunc(time.Second, func() { srv.Close() })
		url := "http://" + l.Addr().String()
		res := runE2E(t, lc, true, slices.Concat([]string{"run"}, e2eFlags, []string{"--duration", "2s", "--pprof", url, "--", "sleep", proctest.SleepArg(34)})...)
		if res.code != exitOK {
			t.Fatalf("exit %d, want 0\n%s\nstderr: %s", res.code, describeReport(res.report), res.stderr)
		}
		gaps := res.report.Metadata["gaps"]
		if !strings.Contains(gaps, url) || !strings.Contains(gaps, "refused") {
			t.Errorf("metadata gaps = %q, want the failures to reach %s", gaps, url)
		}
		if !slices.ContainsFunc(res.report.Series, func(s report.Series) bool { return s.Name == "goroutines" }) {
			t.Error("no goroutines series from the samples before the endpoint closed")
		}
	})

	t.Run("forwards signals", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		ready, got := filepath.Join(dir, "ready"), filepath.Join(dir, "got-usr1")
		script := `trap 'echo usr1 > "$2"' USR1; : > "$1"; while :; do sleep 0.05; done`
		run := startE2E(t, lc, true, "", slices.Concat([]string{"run"}, e2eFlags, []string{"--duration", "20s", "--", "sh", "-c", script, "sh", ready, got})...)
		if !proctest.PollUntil(10*time.Second, func() bool { _, err := os.Stat(ready); return err == nil }) {
			t.Fatal("the command never became ready")
		}
		if err := run.cmd.Process.Signal(syscall.SIGUSR1); err != nil {
			t.Fatal(err)
		}
		if !proctest.PollUntil(5*time.Second, func() bool { _, err := os.Stat(got); return err == nil }) {
			t.Error("SIGUSR1 sent to leakcheck did not reach the command")
		}
		// SIGTERM too is passed on, and ends the run long before
		// --duration: the command dies of it, and the run reports.
		if err := run.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		res := run.wait()
		if res.code != exitOK || res.report == nil || res.report.Metadata["exit"] != "stopped by leakcheck: was killed by signal 15 (terminated)" {
			t.Errorf("exit %d after SIGTERM, want 0 and a report of the command stopped by it\n%s\nstderr: %s", res.code, describeReport(res.report), res.stderr)
		}
		if res.elapsed > 5*time.Second {
			t.Errorf("the command outlived the forwarded SIGTERM: run took %v", res.elapsed)
		}
	})

	t.Run("passes input and output through", func(t *testing.T) {
		t.Parallel()
		// The sleep: a command gone before the first sample is an error.
		script := `read line; echo "out: $line"; echo "err: to stderr" >&2; sleep 0.3`
		res := startE2E(t, lc, true, "hello from stdin\n", slices.Concat([]string{"run"}, e2eFlags, []string{"--", "sh", "-c", script})...).wait()
		if res.code != exitOK {
			t.Errorf("exit %d, want 0; stderr: %s", res.code, res.stderr)
		}
		// The report goes to --output, so stdout is the command's alone.
		if res.stdout != "out: hello from stdin\n" {
			t.Errorf("stdout = %q", res.stdout)
		}
		if !strings.Contains(res.stderr, "err: to stderr\n") {
			t.Errorf("stderr = %q", res.stderr)
		}
	})

	t.Run("usage errors", func(t *testing.T) {
		t.Parallel()
		started := "leakcheck-test-started"
		for _, tt := range []struct {
			args   []string
			stderr string
		}{
			{[]string{"--leak", "x"}, "--leak applies only to the built-in demo"},
			{[]string{"--format", "nope"}, `unknown --format "nope"`},
			{[]string{"--interval", "0"}, "--interval 0s: want a positive duration"},
			{[]string{"--interval", "-1s"}, "--interval -1s: want a positive duration"},
			{[]string{"--duration", "-1s"}, "--duration -1s: want a positive duration"},
			{[]string{"--grace", "-1s"}, "--grace -1s: want a positive duration"},
			{[]string{"--max-cpu", "0"}, "--max-cpu 0: want a percentage above 0"},
			{[]string{"--max-cpu", "-5"}, "--max-cpu -5: want a percentage above 0"},
			{[]string{"--output", "/nonexistent/dir/report.json"}, "output /nonexistent/dir/report.json: cannot create files in its directory"},
			{[]string{"--interval", "soon"}, "invalid argument"},
			{[]string{"--fail-on", "everything"}, "fail-on"},
			{[]string{"--ignore", "/nonexistent/ignore-rules"}, "reading ignore file"},
		} {
			args := slices.Concat([]string{"run"}, tt.args, []string{"--", "sh", "-c", "echo " + started})
			res := runE2E(t, lc, false, args...)
			if res.code != exitUsage {
				t.Errorf("%q: exit %d, want %d", tt.args, res.code, exitUsage)
			}
			if !strings.Contains(res.stderr, tt.stderr) {
				t.Errorf("%q: stderr %q, want it to say %q", tt.args, res.stderr, tt.stderr)
			}
			if strings.Contains(res.stdout, started) {
				t.Errorf("%q: the command ran", tt.args)
			}
		}
		// And the demo's own check of --leak.
		res := runE2E(t, lc, false, "run", "--leak", "nosuch")
		if res.code != exitUsage || !strings.Contains(res.stderr, `unknown leak "nosuch"`) {
			t.Errorf("run --leak nosuch: exit %d, stderr %q", res.code, res.stderr)
		}
	})
}
