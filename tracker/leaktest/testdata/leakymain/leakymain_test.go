// Package leakymain is run by leaktest's tests in a subprocess: its tests
// pass, but leave behind what VerifyTestMain must report.
package leakymain

import (
	"os"
	"sync"
	"testing"

	"github.com/leakcheck/leakcheck/tracker/leaktest"
)

func TestMain(m *testing.M) {
	leaktest.VerifyTestMain(m)
}

var (
	block = make(chan struct{})
	kept  []*os.File
)

func parkForever() { <-block }

// TestLeaksUnverified leaks a goroutine without VerifyNone; it passes, and
// VerifyTestMain reports the goroutine.
func TestLeaksUnverified(t *testing.T) {
	go parkForever()
}

// TestJudgedLeak leaves a goroutine that its VerifyNone check ignores:
// VerifyTestMain does not report it either.
func TestJudgedLeak(t *testing.T) {
	leaktest.VerifyNone(t, leaktest.IgnoreTopFunction("github.com/leakcheck/leakcheck/tracker/leaktest/testdata/leakymain.parkJudged"))
	go parkJudged()
}

func parkJudged() { <-block }

// TestParallelFile leaks a file from one of two parallel subtests of an
// unverified parent: neither subtest can be blamed, so VerifyTestMain reports
// it.
func TestParallelFile(t *testing.T) {
	var started, done sync.WaitGroup
	started.Add(2)
	done.Add(2)
	t.Run("leaks_file", func(t *testing.T) {
		t.Parallel()
		leaktest.VerifyNone(t)
		started.Done()
		started.Wait()
		f, err := os.Open("leakymain_test.go")
		if err != nil {
			t.Fatal(err)
		}
		kept = append(kept, f)
		done.Done()
		done.Wait()
	})
	t.Run("clean", func(t *testing.T) {
		t.Parallel()
		leaktest.VerifyNone(t)
		started.Done()
		started.Wait()
		done.Done()
		done.Wait()
	})
}
