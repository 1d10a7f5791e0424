// Package leaky is run by leaktest's tests in a subprocess: some of its tests
// leak on purpose and must fail, and their clean twins must pass.
package leaky

import (
	"context"
	"os"
	"runtime/pprof"
	"sync"
	"testing"

	"github.com/leakcheck/leakcheck/tracker"
	"github.com/leakcheck/leakcheck/tracker/leaktest"
)

// block is never closed: goroutines parked on it stay until the process ends.
var block = make(chan struct{})

// kept holds leaked files, so the garbage collector does not close them.
var kept []*os.File

func parkForever() { <-block }

// barrier returns a func that returns once n goroutines have called it, so
// that parallel subtests do their work while all of them run.
func barrier(n int) func() {
	var mu sync.Mutex
	all := make(chan struct{})
	return func() {
		mu.Lock()
		if n--; n == 0 {
			close(all)
		}
		mu.Unlock()
		<-all
	}
}

func TestParallel(t *testing.T) {
	started, done := barrier(4), barrier(4)
	t.Run("leaks_goroutine", func(t *testing.T) {
		t.Parallel()
		leaktest.VerifyNone(t)
		started()
		go parkForever()
		done()
	})
	t.Run("clean_goroutine", func(t *testing.T) {
		t.Parallel()
		leaktest.VerifyNone(t)
		started()
		exited := make(chan struct{})
		go func() { close(exited) }()
		<-exited
		done()
	})
	t.Run("leaks_record", func(t *testing.T) {
		t.Parallel()
		leaktest.VerifyNone(t)
		started()
		tracker.Track("widget", nil, "leaky widget")
		done()
	})
	t.Run("clean_record", func(t *testing.T) {
		t.Parallel()
		leaktest.VerifyNone(t)
		started()
		tracker.Track("widget", nil, "clean widget").Release()
		done()
	})
}

func TestSeqLeaksFile(t *testing.T) {
	leaktest.VerifyNone(t)
	f, err := os.Open("leaky_test.go")
	if err != nil {
		t.Fatal(err)
	}
	kept = append(kept, f)
}

func TestSeqCleanFile(t *testing.T) {
	leaktest.VerifyNone(t)
	f, err := os.Open("leaky_test.go")
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
}

// TestParallelFile has a subtest that leaks a file while its sibling runs:
// neither can be blamed, so the parent reports it.
func TestParallelFile(t *testing.T) {
	leaktest.VerifyNone(t)
	started, done := barrier(2), barrier(2)
	t.Run("leaks_file", func(t *testing.T) {
		t.Parallel()
		leaktest.VerifyNone(t)
		started()
		f, err := os.Open("leaky_test.go")
		if err != nil {
			t.Fatal(err)
		}
		kept = append(kept, f)
		done()
	})
	t.Run("clean", func(t *testing.T) {
		t.Parallel()
		leaktest.VerifyNone(t)
		started()
		done()
	})
}

func TestManyGoroutines(t *testing.T) {
	leaktest.VerifyNone(t)
	for range 1000 {
		go parkForever()
	}
}

// startWorker leaks a goroutine from a goroutine of its own, so that the leak
// is two go statements away from the test.
func startWorker() {
	started := make(chan struct{})
	go func() {
		go parkForever()
		close(started)
	}()
	<-started
}

func TestRecordInSession(t *testing.T) {
	leaktest.VerifyNone(t)
	s := tracker.StartSession("worker", nil)
	done := make(chan struct{})
	go func() {
		defer close(done)
		tracker.Track("widget", s, "from a goroutine")
	}()
	<-done
}

func TestIgnoreCreatedBy(t *testing.T) {
	leaktest.VerifyNone(t, leaktest.IgnoreCreatedBy("github.com/leakcheck/leakcheck/tracker/leaktest/testdata/leaky.startWorker.func1"))
	startWorker()
}

func TestIgnoreTopFunction(t *testing.T) {
	leaktest.VerifyNone(t, leaktest.IgnoreTopFunction("github.com/leakcheck/leakcheck/tracker/leaktest/testdata/leaky.parkForever"))
	go parkForever()
}

func TestFailedStillChecked(t *testing.T) {
	leaktest.VerifyNone(t)
	t.Error("failed on its own")
	go parkForever()
}

func TestFailedSkipped(t *testing.T) {
	leaktest.VerifyNone(t, leaktest.SkipIfFailed())
	t.Error("failed on its own")
	go parkForever()
}

func TestNested(t *testing.T) {
	leaktest.VerifyNone(t)
	startWorker()
}

// startUnlabeled leaks a goroutine under labels of its own, which drop the
// test's: pprof.Do starts from a context that does not carry them.
func startUnlabeled() {
	pprof.Do(context.Background(), pprof.Labels("worker", "unlabeled"), func(context.Context) {
		go parkUnlabeled()
	})
}

func parkUnlabeled() { <-block }

func TestUnlabeled(t *testing.T) {
	leaktest.VerifyNone(t)
	startUnlabeled()
}

// TestParallelUnlabeled leaks an unlabeled goroutine from one of two
// parallel subtests: neither is blamed, their parent is.
func TestParallelUnlabeled(t *testing.T) {
	leaktest.VerifyNone(t)
	started, done := barrier(2), barrier(2)
	t.Run("leaks", func(t *testing.T) {
		t.Parallel()
		leaktest.VerifyNone(t)
		started()
		startUnlabeled()
		done()
	})
	t.Run("clean", func(t *testing.T) {
		t.Parallel()
		leaktest.VerifyNone(t)
		started()
		done()
	})
}
