package leaktest

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"runtime/pprof"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/leakcheck/leakcheck/tracker"
	"github.com/leakcheck/leakcheck/tracker/stack"
)

// fakeTB stands for a test: VerifyNone's cleanup runs when finish is called,
// and what it reports is captured.
type fakeTB struct {
	name     string
	mu       sync.Mutex
	failed   bool
	errors   []string
	logs     []string
	cleanups []func()
}

func (f *fakeTB) Helper()      {}
func (f *fakeTB) Name() string { return f.name }

func (f *fakeTB) Cleanup(fn func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cleanups = append(f.cleanups, fn)
}

func (f *fakeTB) Errorf(format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failed = true
	f.errors = append(f.errors, fmt.Sprintf(format, args...))
}

func (f *fakeTB) Logf(format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.logs = append(f.logs, fmt.Sprintf(format, args...))
}

func (f *fakeTB) Failed() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.failed
}

// finish runs the cleanups, last registered first, as the testing package
// does when a test ends.
func (f *fakeTB) finish() {
	for i := len(f.cleanups) - 1; i >= 0; i-- {
		f.cleanups[i]()
	}
}

// report returns the one error the check reported, or "".
func (f *fakeTB) report(t *testing.T) string {
	t.Helper()
	switch len(f.errors) {
	case 0:
		return ""
	case 1:
		return f.errors[0]
	}
	t.Fatalf("%s: %d errors, want one report:\n%s", f.name, len(f.errors), strings.Join(f.errors, "\n"))
	return ""
}

// fakeTest runs body as the test name, checked by VerifyNone with opts, on the
// calling goroutine, and returns what the test reported.
func fakeTest(name string, opts []Option, body func(f *fakeTB)) *fakeTB {
	f := &fakeTB{name: name}
	verifyNone(f, opts...)
	body(f)
	f.finish()
	return f
}

// leaker starts goroutines that park until release is called, and waits for
// them to exit there.
type leaker struct {
	stop chan struct{}
	wg   sync.WaitGroup
}

func newLeaker() *leaker { return &leaker{stop: make(chan struct{})} }

func (l *leaker) leak(n int) {
	var started sync.WaitGroup
	for range n {
		l.wg.Add(1)
		started.Add(1)
		go func() {
			defer l.wg.Done()
			started.Done()
			parkUntil(l.stop)
		}()
	}
	started.Wait()
}

func (l *leaker) release() {
	close(l.stop)
	l.wg.Wait()
}

// sync2 returns a func that returns once two goroutines have called it, each
// time; it skips the test when subtests cannot run two at a time.
func sync2(t *testing.T) func() {
	if p := flag.Lookup("test.parallel"); p != nil && p.Value.String() == "1" {
		t.Skip("needs -parallel 2 or more")
	}
	var (
		mu      sync.Mutex
		waiting int
		gen     = make(chan struct{})
	)
	return func() {
		mu.Lock()
		if waiting++; waiting == 2 {
			close(gen)
			gen, waiting = make(chan struct{}), 0
			mu.Unlock()
			return
		}
		ch := gen
		mu.Unlock()
		<-ch
	}
}

func wantContains(t *testing.T, what, s string, subs ...string) {
	t.Helper()
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			t.Errorf("%s does not contain %q:\n%s", what, sub, s)
		}
	}
}

func TestGoroutineLeak(t *testing.T) {
	l := newLeaker()
	defer l.release()
	leaky := fakeTest(t.Name()+"/leaky", nil, func(*fakeTB) { l.leak(1) })
	wantContains(t, "report", leaky.report(t),
		"leaktest: "+t.Name()+"/leaky leaked 1 goroutine:",
		"1 goroutine [chan receive], created by "+pkgPath+".(*leaker).leak at ",
		pkgPath+".parkUntil\n",
		"leaktest_test.go:",
		"To fix: stop them")

	clean := fakeTest(t.Name()+"/clean", nil, func(*fakeTB) {
		c := newLeaker()
		c.leak(3)
		c.release()
	})
	if r := clean.report(t); r != "" {
		t.Errorf("clean test reported:\n%s", r)
	}
}

// TestGoroutineCount checks the counters that let a clean check skip the
// closing traceback: any goroutine started since the first count, even one
// that has exited, must make them differ.
func TestGoroutineCount(t *testing.T) {
	for _, c := range []struct {
		name string
		do   func(l *leaker)
		want bool
	}{
		{"nothing", func(*leaker) {}, true},
		{"started-and-exited", func(l *leaker) { l.leak(1); l.release() }, false},
		{"started-and-running", func(l *leaker) { l.leak(1) }, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			l := newLeaker()
			defer func() {
				select {
				case <-l.stop:
				default:
					l.release()
				}
			}()
			before := countGoroutines()
			if !before.ok {
				t.Fatal("the runtime does not count created goroutines")
			}
			c.do(l)
			if got := before.unchanged(countGoroutines()); got != c.want {
				t.Errorf("unchanged = %v, want %v", got, c.want)
			}
		})
	}
	if (goroutineCount{}).unchanged(countGoroutines()) {
		t.Error("a count the runtime did not give is unchanged")
	}
}

func TestGoroutinesGrouped(t *testing.T) {
	l := newLeaker()
	defer l.release()
	f := fakeTest(t.Name(), nil, func(*fakeTB) { l.leak(200) })
	r := f.report(t)
	wantContains(t, "report", r, "leaked 200 goroutines:", "  200 goroutines [chan receive]")
	if n := strings.Count(r, "goroutine"); n != 3 {
		t.Errorf("report names goroutines %d times, want 3 (headline, group, hint):\n%s", n, r)
	}
}

// TestParallelAttribution runs two tests at once: one leaks a goroutine and
// a record, its twin does the same work but cleans up. Only the first fails.
func TestParallelAttribution(t *testing.T) {
	reg := tracker.New()
	var leaky, clean *fakeTB
	l := newLeaker()
	defer l.release()
	t.Run("group", func(t *testing.T) {
		both := sync2(t)
		t.Run("leaky", func(t *testing.T) {
			t.Parallel()
			leaky = fakeTest(t.Name(), []Option{Registry(reg)}, func(*fakeTB) {
				both()
				l.leak(1)
				reg.Track("widget", nil, "leaky widget")
				both()
			})
		})
		t.Run("clean", func(t *testing.T) {
			t.Parallel()
			clean = fakeTest(t.Name(), []Option{Registry(reg)}, func(*fakeTB) {
				both()
				c := newLeaker()
				c.leak(1)
				reg.Track("widget", nil, "clean widget").Release()
				c.release()
				both()
			})
		})
	})
	if t.Skipped() || leaky == nil {
		return
	}
	wantContains(t, "leaky report", leaky.report(t),
		"TestParallelAttribution/group/leaky leaked 1 goroutine, 1 record:",
		`1 record: widget "leaky widget", owner root, created by TestParallelAttribution/group/leaky, age `,
		"acquired at:\n      "+pkgPath+".TestParallelAttribution.func1.1.1\n")
	if r := clean.report(t); r != "" {
		t.Errorf("clean twin reported:\n%s", r)
	}
	for _, rec := range reg.Leftovers() {
		if rec.Stack == nil || !strings.HasPrefix(rec.Creator, "TestParallelAttribution/group/leaky#") {
			t.Errorf("record %+v: want a stack and the leaky test as creator", rec)
		}
	}
	if got := reg.StackMode(); got != tracker.StacksOff {
		t.Errorf("stack mode after the checks = %v, want it restored to off", got)
	}
}

func TestRecordsBeforeTheTestAreNotBlamed(t *testing.T) {
	reg := tracker.New()
	before := reg.Track("widget", nil, "before")
	defer before.Release()
	f := fakeTest(t.Name(), []Option{Registry(reg)}, func(*fakeTB) {})
	if r := f.report(t); r != "" {
		t.Errorf("record tracked before the test was blamed on it:\n%s", r)
	}
}

// TestRecordCreatorThroughRunningParent tracks a record from a goroutine two
// go statements away from the test, like a connection handler started by a
// server goroutine: the creator func follows the chain through the server.
func TestRecordCreatorThroughRunningParent(t *testing.T) {
	reg := tracker.New()
	var h tracker.Handle
	f := fakeTest(t.Name(), []Option{Registry(reg)}, func(*fakeTB) {
		stop, done := make(chan struct{}), make(chan struct{})
		go func() { // the server: tracks nothing itself
			go func() { // the handler
				h = reg.Track("conn", nil, "handler")
				close(done)
			}()
			<-stop
		}()
		<-done
		close(stop)
	})
	defer h.Release()
	wantContains(t, "report", f.report(t), `1 record: conn "handler", owner root, created by `+t.Name()+",")
}

func TestDescriptorLeak(t *testing.T) {
	if !descriptorsSupported {
		t.Skip("descriptors are listed on Linux only")
	}
	name := filepath.Join(t.TempDir(), "leaked.txt")
	if err := os.WriteFile(name, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	var file *os.File
	defer func() { file.Close() }()
	leaky := fakeTest(t.Name()+"/leaky", nil, func(*fakeTB) {
		var err error
		if file, err = os.Open(name); err != nil {
			t.Fatal(err)
		}
	})
	wantContains(t, "report", leaky.report(t),
		t.Name()+"/leaky leaked 1 descriptor:",
		fmt.Sprintf("  fd %d -> %s\n", file.Fd(), name))

	clean := fakeTest(t.Name()+"/clean", nil, func(*fakeTB) {
		f, err := os.Open(name)
		if err != nil {
			t.Fatal(err)
		}
		f.Close()
	})
	if r := clean.report(t); r != "" {
		t.Errorf("clean twin reported:\n%s", r)
	}
}

// TestDescriptorWhileOthersRun opens a file in one of two tests that run at
// once: no goroutine ties a descriptor to a test, so neither fails, and both
// leave it to an enclosing check.
func TestDescriptorWhileOthersRun(t *testing.T) {
	if !descriptorsSupported {
		t.Skip("descriptors are listed on Linux only")
	}
	name := filepath.Join(t.TempDir(), "shared.txt")
	if err := os.WriteFile(name, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	var file *os.File
	defer func() { file.Close() }()
	var leaky, clean *fakeTB
	t.Run("group", func(t *testing.T) {
		both := sync2(t)
		t.Run("leaky", func(t *testing.T) {
			t.Parallel()
			leaky = fakeTest(t.Name(), nil, func(*fakeTB) {
				both()
				var err error
				if file, err = os.Open(name); err != nil {
					t.Error(err)
				}
				both()
			})
		})
		t.Run("clean", func(t *testing.T) {
			t.Parallel()
			clean = fakeTest(t.Name(), nil, func(*fakeTB) {
				both()
				both()
			})
		})
	})
	if t.Skipped() || leaky == nil {
		return
	}
	for _, f := range []*fakeTB{leaky, clean} {
		if r := f.report(t); r != "" {
			t.Errorf("%s was blamed:\n%s", f.name, r)
		}
		wantContains(t, f.name+"'s log", strings.Join(f.logs, "\n"),
			fmt.Sprintf("leaktest: fd %d -> %s appeared during this test, but ", file.Fd(), name),
			"it is left to an enclosing check")
	}
}

// TestDescriptorOfTestGoneByTheEnd opens a file in an unverified test that
// was running its own code when a verified test began, and had returned by
// the time the check ran: the start's profile is what shows it ran alongside,
// so the verified test is not blamed.
func TestDescriptorOfTestGoneByTheEnd(t *testing.T) {
	if !descriptorsSupported {
		t.Skip("descriptors are listed on Linux only")
	}
	if p := flag.Lookup("test.parallel"); p != nil && p.Value.String() == "1" {
		t.Skip("needs -parallel 2 or more")
	}
	name := filepath.Join(t.TempDir(), "opened-by-unverified.txt")
	if err := os.WriteFile(name, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	var file *os.File
	defer func() { file.Close() }()
	ready, open, gone := make(chan struct{}), make(chan struct{}), make(chan struct{})
	var verified *fakeTB
	t.Run("group", func(t *testing.T) {
		t.Run("unverified", func(t *testing.T) {
			t.Parallel()
			t.Cleanup(func() { close(gone) }) // after the test function returned
			close(ready)
			<-open
			var err error
			if file, err = os.Open(name); err != nil {
				t.Error(err)
			}
		})
		t.Run("verified", func(t *testing.T) {
			t.Parallel()
			<-ready
			verified = fakeTest(t.Name(), []Option{Checks(Descriptors)}, func(*fakeTB) {
				close(open)
				<-gone
			})
		})
	})
	if verified == nil {
		t.Fatal("the verified test did not run")
	}
	if r := verified.report(t); r != "" {
		t.Errorf("the verified test was blamed:\n%s", r)
	}
	wantContains(t, "log", strings.Join(verified.logs, "\n"),
		fmt.Sprintf("leaktest: fd %d -> %s appeared during this test, but ", file.Fd(), name),
		"an unverified test (in "+shortFunc(pkgPath)+".TestDescriptorOfTestGoneByTheEnd.func2.1) ran at the same time")
}

func TestMaxWait(t *testing.T) {
	// exiting returns funcs to start a goroutine that sleeps for d, and to
	// wait until it has exited.
	exiting := func(d time.Duration) (start func(), wait func()) {
		started, done := make(chan struct{}), make(chan struct{})
		return func() {
				go func() {
					close(started)
					time.Sleep(d)
					close(done)
				}()
				<-started
			}, func() {
				<-done
			}
	}

	start, wait := exiting(20 * time.Millisecond)
	f := fakeTest(t.Name()+"/default", nil, func(*fakeTB) { start() })
	wait()
	if r := f.report(t); r != "" {
		t.Errorf("a goroutine that exits within 20ms was reported:\n%s", r)
	}

	start, wait = exiting(300 * time.Millisecond)
	f = fakeTest(t.Name()+"/short", []Option{MaxWait(30 * time.Millisecond)}, func(*fakeTB) { start() })
	wait()
	wantContains(t, "report with MaxWait(30ms)", f.report(t), "1 goroutine [sleep]")

	// A real leak is reported once MaxWait has passed, not later.
	l := newLeaker()
	defer l.release()
	begin := time.Now()
	f = fakeTest(t.Name()+"/leak", []Option{MaxWait(30 * time.Millisecond)}, func(*fakeTB) { l.leak(1) })
	took := time.Since(begin)
	wantContains(t, "report", f.report(t), "leaked 1 goroutine")
	if took < 30*time.Millisecond || took > 2*time.Second {
		t.Errorf("reporting a leak took %v with MaxWait(30ms)", took)
	}
}

func TestOptions(t *testing.T) {
	reg := tracker.New()
	name := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(name, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	var (
		l     *leaker
		files []*os.File
		recs  []tracker.Handle
	)
	defer func() {
		for _, f := range files {
			f.Close()
		}
		for _, h := range recs {
			h.Release()
		}
	}()
	leakAll := func(*fakeTB) {
		l.leak(1)
		f, err := os.Open(name)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
		recs = append(recs, reg.Track("widget", nil, "w"))
	}
	for _, tc := range []struct {
		name string
		opts []Option
		want []Check // kinds reported
	}{
		{"none", nil, []Check{Goroutines, Descriptors, Records}},
		{"top", []Option{IgnoreTopFunction(pkgPath + ".parkUntil")}, []Check{Descriptors, Records}},
		{"top-not-below", []Option{IgnoreTopFunction(pkgPath + ".(*leaker).leak.func1")}, []Check{Goroutines, Descriptors, Records}},
		{"any", []Option{IgnoreAnyFunction(pkgPath + ".(*leaker).leak.func1")}, []Check{Descriptors, Records}},
		{"created-by", []Option{IgnoreCreatedBy(pkgPath + ".(*leaker).leak")}, []Check{Descriptors, Records}},
		{"descriptor", []Option{IgnoreDescriptor(func(target string) bool { return target == name })}, []Check{Goroutines, Records}},
		{"record", []Option{IgnoreRecord(func(r tracker.Record) bool { return r.Kind == "widget" })}, []Check{Goroutines, Descriptors}},
		{"checks", []Option{Checks(Records)}, []Check{Records}},
		{"no-checks", []Option{Checks()}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l = newLeaker()
			defer l.release()
			opts := append([]Option{Registry(reg), MaxWait(50 * time.Millisecond)}, tc.opts...)
			r := fakeTest(t.Name(), opts, leakAll).report(t)
			for _, ck := range []Check{Goroutines, Descriptors, Records} {
				if ck == Descriptors && !descriptorsSupported {
					continue
				}
				want := false
				for _, w := range tc.want {
					want = want || w == ck
				}
				if got := strings.Contains(r, "\n"+ck.String()+":\n"); got != want {
					t.Errorf("%s reported: %v, want %v:\n%s", ck, got, want, r)
				}
			}
		})
	}
}

func TestSkipIfFailed(t *testing.T) {
	l := newLeaker()
	defer l.release()
	body := func(f *fakeTB) {
		f.Errorf("failed on its own")
		l.leak(1)
	}
	f := fakeTest(t.Name()+"/checked", []Option{MaxWait(0)}, body)
	if len(f.errors) != 2 || !strings.Contains(f.errors[1], "leaked 1 goroutine") {
		t.Errorf("a failed test's leak was not reported: %q", f.errors)
	}
	f = fakeTest(t.Name()+"/skipped", []Option{MaxWait(0), SkipIfFailed()}, body)
	if len(f.errors) != 1 {
		t.Errorf("SkipIfFailed: errors %q, want only the test's own", f.errors)
	}
}

func TestLabels(t *testing.T) {
	ctx := pprof.WithLabels(context.Background(), pprof.Labels("user", "kept"))
	pprof.SetGoroutineLabels(ctx)
	defer pprof.SetGoroutineLabels(context.Background())
	labels := func() map[string]string {
		coord.startMu.Lock()
		defer coord.startMu.Unlock()
		m, _, err := ownLabels()
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	var during map[string]string
	fakeTest(t.Name(), nil, func(*fakeTB) { during = labels() })
	if during["user"] != "kept" || !strings.HasPrefix(during[labelKey], t.Name()+"#") {
		t.Errorf("labels during the test = %v, want user=kept and %s=%s#N", during, labelKey, t.Name())
	}
	if after := labels(); !reflect.DeepEqual(after, map[string]string{"user": "kept"}) {
		t.Errorf("labels after the test = %v, want them restored", after)
	}
}

type fakeM func() int

func (m fakeM) Run() int { return m() }

func TestVerifyTestMain(t *testing.T) {
	l := newLeaker()
	defer l.release()
	var out bytes.Buffer
	code := verifyTestMain(fakeM(func() int { l.leak(2); return 0 }), &out, IgnoreCurrent(), Checks(Goroutines))
	if code != 1 {
		t.Errorf("exit code %d, want 1 on a leak", code)
	}
	wantContains(t, "report", out.String(), "leaktest: the tests leaked 2 goroutines:", pkgPath+".parkUntil")

	out.Reset()
	code = verifyTestMain(fakeM(func() int { return 3 }), &out, IgnoreCurrent(), Checks(Goroutines))
	if code != 3 || out.Len() != 0 {
		t.Errorf("clean run that failed: exit code %d, output %q; want 3 and nothing", code, out.String())
	}
}

func TestCheckString(t *testing.T) {
	for c, want := range map[Check]string{
		Goroutines:                         "goroutines",
		Goroutines | Records:               "goroutines+records",
		0:                                  "none",
		Descriptors | Check(1<<10):         "descriptors+Check(0x400)",
		Goroutines | Descriptors | Records: "goroutines+descriptors+records",
	} {
		if got := c.String(); got != want {
			t.Errorf("Check(%#x).String() = %q, want %q", uint(c), got, want)
		}
	}
}

func TestDefaultIgnored(t *testing.T) {
	f := func(names ...string) *gsample {
		g := &gsample{count: 1}
		for _, n := range names {
			g.frames = append(g.frames, stack.Frame{Func: n})
		}
		return g
	}
	for _, tc := range []struct {
		g       *gsample
		ignored bool
		active  bool
	}{
		// A subtest's goroutine returning after its test.
		{f("runtime.gopark", "testing.tRunner.func1", "testing.tRunner", "runtime.goexit"), true, false},
		// A test waiting for its turn to run in parallel.
		{f("runtime.gopark", "runtime.chanrecv1", "testing.(*T).Parallel", "example.com/p.TestX", "testing.tRunner"), false, false},
		// A test waiting for its subtests.
		{f("runtime.gopark", "testing.(*T).Run", "example.com/p.TestX", "testing.tRunner"), false, false},
		// A test at work.
		{f("runtime.gopark", "sync.runtime_SemacquireMutex", "sync.(*Mutex).Lock", "example.com/p.TestX.func1", "testing.tRunner"), false, true},
		// Background services.
		{f("os/signal.signal_recv", "os/signal.loop"), true, false},
		{f("runtime.gopark", "runtime/trace.Start.func1"), true, false},
		// A leak.
		{f("runtime.gopark", "example.com/p.worker"), false, false},
	} {
		if got := defaultIgnored(tc.g); got != tc.ignored {
			t.Errorf("defaultIgnored(%v) = %v, want %v", tc.g.frames, got, tc.ignored)
		}
		fn, active := activeTest(tc.g)
		if active != tc.active || (active && fn != "example.com/p.TestX.func1") {
			t.Errorf("activeTest(%v) = %q, %v; want %v", tc.g.frames, fn, active, tc.active)
		}
	}
}

func TestTopAndShownFrames(t *testing.T) {
	g := &gsample{frames: []stack.Frame{
		{Func: "runtime.gopark"}, {Func: "runtime.chanrecv1"},
		{Func: "example.com/p.(*T).M-fm", File: "<autogenerated>"},
		{Func: "runtime.Goexit"}, {Func: "example.com/p.f"}, {Func: "runtime.goexit"},
	}}
	if got := g.top(); got != "runtime.Goexit" {
		t.Errorf("top = %q, want the first frame a traceback shows", got)
	}
	if got := len(g.shownFrames()); got != 2 {
		t.Errorf("%d shown frames, want 2", got)
	}
}

// TestLoopbackServer checks a test that serves HTTP on loopback: cleaned up,
// it passes; with the server left running, its accept loop and listening
// socket are reported.
func TestLoopbackServer(t *testing.T) {
	get := func(url string) {
		tr := &http.Transport{}
		defer tr.CloseIdleConnections()
		resp, err := (&http.Client{Transport: tr}).Get(url)
		if err != nil {
			t.Error(err)
			return
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	handler := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") })

	clean := fakeTest(t.Name()+"/clean", nil, func(*fakeTB) {
		srv := httptest.NewServer(handler)
		defer srv.Close()
		get(srv.URL)
	})
	if r := clean.report(t); r != "" {
		t.Errorf("clean server test reported:\n%s", r)
	}

	var srv *httptest.Server
	leaky := fakeTest(t.Name()+"/leaky", []Option{MaxWait(20 * time.Millisecond)}, func(*fakeTB) {
		srv = httptest.NewServer(handler)
		get(srv.URL)
	})
	srv.Close()
	want := []string{"net/http.(*Server).Serve\n"}
	if descriptorsSupported {
		want = append(want, " -> socket:[")
	}
	wantContains(t, "report", leaky.report(t), want...)
}

// parkUntil blocks until stop is closed: the leak of this package's tests.
func parkUntil(stop chan struct{}) { <-stop }
