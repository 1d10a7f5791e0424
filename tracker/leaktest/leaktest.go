package leaktest

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"runtime/pprof"
	"slices"
	"testing"
	"time"

	"github.com/leakcheck/leakcheck/tracker/stack"
)

// VerifyNone checks that the test leaves nothing behind: no goroutine it
// started still running, no descriptor it opened still open, no record it
// created in the registry still live. Call it first thing in the test (after
// t.Parallel, if the test calls it): it notes the state of the process, and
// registers the check with t.Cleanup, so the check runs when the test and its
// subtests are done and after every cleanup registered later. Leaks fail the
// test with one error that lists them all.
//
//	func TestServer(t *testing.T) {
//		t.Parallel()
//		leaktest.VerifyNone(t)
//		...
//	}
func VerifyNone(t testing.TB, opts ...Option) {
	t.Helper()
	verifyNone(t, opts...)
}

// VerifyTestMain runs the package's tests, then checks that the whole run left
// nothing behind, and exits: with the tests' status, or with status 1 and a
// report on standard error if something leaked. Leftovers that a VerifyNone
// check has judged are not reported again; those it could not attribute to
// one test are reported here.
//
//	func TestMain(m *testing.M) {
//		leaktest.VerifyTestMain(m)
//	}
func VerifyTestMain(m *testing.M, opts ...Option) {
	os.Exit(verifyTestMain(m, os.Stderr, opts...))
}

// tb is the part of testing.TB that a check uses; this package's tests pass a
// fake that captures the report.
type tb interface {
	Helper()
	Name() string
	Cleanup(func())
	Errorf(format string, args ...any)
	Logf(format string, args ...any)
	Failed() bool
}

//go:noinline
func verifyNone(t tb, opts ...Option) {
	t.Helper()
	r := newRun(t.Name(), newConfig(opts), false)
	r.start()
	t.Cleanup(func() {
		// As a helper, the report points at the call of VerifyNone.
		t.Helper()
		report, notes := r.finish(t.Failed())
		for _, n := range notes {
			t.Logf("%s", n)
		}
		if report != "" {
			t.Errorf("%s", report)
		}
	})
}

// testRunner is what VerifyTestMain needs of a *testing.M.
type testRunner interface{ Run() int }

func verifyTestMain(m testRunner, w io.Writer, opts ...Option) int {
	r := newRun("", newConfig(opts), true)
	r.start()
	code := m.Run()
	r.cfg.ignoreFD = append(r.cfg.ignoreFD, testingFiles()...)
	report, _ := r.finish(code != 0)
	if report != "" {
		fmt.Fprintln(w, report)
		if code == 0 {
			code = 1
		}
	}
	return code
}

// testingFiles matches the files the testing package writes with -cpuprofile
// and -trace: it opens them before the first test and never closes them, so
// their descriptors outlive m.Run. The flags are set once m.Run has parsed
// them; a relative path is under -test.outputdir, as testing resolves it.
func testingFiles() []func(target string) bool {
	var out []func(string) bool
	for _, name := range []string{"test.cpuprofile", "test.trace"} {
		f := flag.Lookup(name)
		if f == nil || f.Value.String() == "" {
			continue
		}
		path := f.Value.String()
		if dir := flag.Lookup("test.outputdir"); dir != nil && dir.Value.String() != "" && !filepath.IsAbs(path) {
			path = filepath.Join(dir.Value.String(), path)
		}
		want, err := os.Stat(path)
		if err != nil {
			continue
		}
		out = append(out, func(target string) bool {
			got, err := os.Stat(target)
			return err == nil && os.SameFile(got, want)
		})
	}
	return out
}

// run is one check: of one test (VerifyNone) or of the whole run of a test
// binary (VerifyTestMain, main is true).
type run struct {
	name  string
	main  bool
	cfg   *config
	label string // value of the pprof label on the test's goroutines
	goid  int64  // the test's goroutine
	// prev holds the labels the test's goroutine had before, to restore.
	prev    context.Context
	labeled bool

	// Guarded by coord.mu.
	overlap map[*run]struct{}   // other VerifyNone checks in force at the same time
	others  map[string]struct{} // unverified tests seen running, by function
	goids   []int64             // goroutines known to work for this test
	usesReg bool

	// The state at the start.
	baseIDs   map[int64]struct{} // goroutines
	baseCount goroutineCount
	baseG     map[string]int // goroutines without a leaktest label, by signature
	// baseSettled is how many of them checks had judged.
	baseSettled map[string]int
	// startRaw is the profile read at the start, until loadStart parses it
	// into baseG and baseSettled.
	startRaw []byte
	baseFDs  map[int]string
	baseRecs map[uint64]struct{}
	errs     []error
}

func newRun(name string, cfg *config, main bool) *run {
	return &run{
		name:    name,
		main:    main,
		cfg:     cfg,
		overlap: make(map[*run]struct{}),
		others:  make(map[string]struct{}),
		errs:    cfg.errs,
	}
}

// Marker functions: a goroutine whose stack has one of them is a check at
// work, not a leak.
var (
	pkgPath      = reflect.TypeFor[run]().PkgPath()
	markerStart  = pkgPath + ".ownLabels"
	markerVerify = pkgPath + ".verifyNone"
	markerFinish = pkgPath + ".(*run).finish"
)

// start notes the state of the process and puts the test's label on its
// goroutine.
func (r *run) start() {
	if !r.main && r.cfg.checks&Goroutines != 0 {
		// Counted before the traceback, so that a goroutine created
		// after the count is taken cannot be missing from the ids.
		r.baseCount = countGoroutines()
		r.baseIDs = make(map[int64]struct{})
		first := true
		stack.Headers(coord.traceback(), func(g stack.Goroutine, err error) bool {
			if err != nil {
				g.ID = 0
			}
			if first && g.State == "running" {
				r.goid = g.ID // runtime.Stack shows its caller first
			}
			first = false
			r.baseIDs[g.ID] = struct{}{}
			return true
		})
	}
	if !r.main && r.goid == 0 {
		r.goid = stack.CurrentID()
	}
	coord.register(r)
	if !r.main {
		coord.startMu.Lock()
		labels, raw, err := ownLabels()
		coord.startMu.Unlock()
		if err != nil {
			r.errs = append(r.errs, fmt.Errorf("reading the test's labels: %w", err))
		} else {
			r.setLabels(labels)
			r.startRaw = raw
			if coord.judgedAnyGoroutines() {
				// What checks had judged counts as of now.
				if err := r.loadStart(); err != nil {
					r.errs = append(r.errs, err)
				}
			} else {
				r.baseSettled = map[string]int{}
			}
		}
	}
	if r.cfg.checks&Descriptors != 0 && descriptorsSupported {
		fds, err := coord.listDescriptors()
		if err != nil {
			r.errs = append(r.errs, err)
		}
		r.baseFDs = fds
	}
	if r.cfg.checks&Records != 0 {
		live := r.cfg.registry.Leftovers()
		r.baseRecs = make(map[uint64]struct{}, len(live))
		for _, rec := range live {
			r.baseRecs[rec.ID] = struct{}{}
		}
	}
}

// ownLabels returns the pprof labels of the calling goroutine, which no API
// reads: they are those of the one goroutine of the profile that is in
// ownLabels, since the caller holds coord.startMu. It also returns the
// profile's text, of which it parses only that goroutine's record.
//
//go:noinline
func ownLabels() (map[string]string, []byte, error) {
	raw, err := writeGoroutines()
	if err != nil {
		return nil, nil, err
	}
	if g := sampleWith(raw, markerStart); g != nil {
		return g.labels, raw, nil
	}
	return nil, raw, nil
}

// loadStart parses the profile read at the start, once, when a check needs
// more of it than the test's labels: a clean test, which nothing new
// outlived, never does. It notes which other tests were running then, and
// counts the goroutines without a leaktest label.
func (r *run) loadStart() error {
	if r.startRaw == nil {
		return nil
	}
	raw := r.startRaw
	r.startRaw = nil
	gs, err := parseGoroutines(raw)
	if err != nil {
		return fmt.Errorf("reading the goroutines at the start: %w", err)
	}
	coord.noteActivity(r, gs)
	r.baseG = make(map[string]int)
	for _, g := range gs {
		if g.label() == "" {
			r.baseG[g.signature()] += g.count
		}
	}
	if r.baseSettled == nil {
		r.baseSettled, _ = coord.judgedGoroutines(gs)
	}
	return nil
}

// setLabels puts the test's label on its goroutine, keeping the others, and
// remembers the labels to restore.
func (r *run) setLabels(prev map[string]string) {
	var kv, old []string
	for k, v := range prev {
		old = append(old, k, v)
		if k != labelKey {
			kv = append(kv, k, v)
		}
	}
	kv = append(kv, labelKey, r.label)
	r.prev = context.Background()
	if len(old) > 0 {
		r.prev = pprof.WithLabels(r.prev, pprof.Labels(old...))
	}
	pprof.SetGoroutineLabels(pprof.WithLabels(context.Background(), pprof.Labels(kv...)))
	r.labeled = true
}

// finish checks for leaks, restores the goroutine's labels and the
// registry, and returns the report ("" when clean) and notes to log about
// leftovers left to an enclosing check.
//
//go:noinline
func (r *run) finish(failed bool) (report string, notes []string) {
	defer func() {
		if r.labeled && stack.CurrentID() == r.goid {
			pprof.SetGoroutineLabels(r.prev)
		}
		coord.unregister(r)
	}()
	if failed && r.cfg.skipFailed {
		return "", nil
	}
	p := r.check()
	coord.settle(p)
	for _, d := range p.deferred {
		notes = append(notes, "leaktest: "+d.what+" appeared during this test, but "+d.why+
			"; it is left to an enclosing check (VerifyNone on a parent test, or VerifyTestMain)")
	}
	return p.report(), notes
}

// check looks for leaks until there are none or MaxWait has passed, waiting
// 1 ms, then twice as long each time.
func (r *run) check() *poll {
	deadline := time.Now().Add(r.cfg.maxWait)
	wait := time.Millisecond
	for {
		p := &poll{r: r, errs: slices.Clone(r.errs)}
		for _, ck := range checkers {
			if r.cfg.checks&ck.kind == 0 {
				continue
			}
			if err := ck.find(r, p); err != nil {
				p.errs = append(p.errs, fmt.Errorf("checking %s: %w", ck.name, err))
			}
		}
		left := time.Until(deadline)
		if len(p.findings) == 0 || len(p.errs) > 0 || left <= 0 {
			return p
		}
		time.Sleep(min(wait, left))
		wait *= 2
	}
}
