package leaktest

import (
	"runtime"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// The benchmarks compare leaktest with goleak, run side by side: how long
// each takes to report a real leak (a goroutine parked on a channel) and to
// pass a clean test. goleak checks goroutines only, so the clean check is
// measured both with every leaktest check and with goroutines only.

func BenchmarkReportLeak(b *testing.B) {
	b.Run("leaktest", func(b *testing.B) {
		for b.Loop() {
			l := newLeaker()
			f := fakeTest(b.Name(), []Option{Checks(Goroutines)}, func(*fakeTB) { l.leak(1) })
			if len(f.errors) != 1 {
				b.Fatalf("leak not reported: %q", f.errors)
			}
			l.release()
		}
	})
	b.Run("goleak", func(b *testing.B) {
		ignore := goleak.IgnoreCurrent()
		l := newLeaker()
		defer l.release()
		l.leak(1)
		for b.Loop() {
			if goleak.Find(ignore) == nil {
				b.Fatal("goleak found no leak")
			}
		}
	})
}

// BenchmarkCleanCheck times a clean check of a test that does nothing, and of
// one that starts a goroutine and waits for it to end (churn: the process
// created goroutines during the test, so the check must look at them). The
// interleaved benchmarks run a leaktest check and goleak.Find in every
// iteration and report the ratio of their times (x-goleak), which the
// machine's load moves far less than it moves separate runs.
func BenchmarkCleanCheck(b *testing.B) {
	b.Run("leaktest", func(b *testing.B) {
		for b.Loop() {
			if f := fakeTest(b.Name(), nil, func(*fakeTB) {}); f.failed {
				b.Fatalf("clean test failed: %q", f.errors)
			}
		}
	})
	b.Run("leaktest-goroutines", func(b *testing.B) {
		for b.Loop() {
			if f := fakeTest(b.Name(), []Option{Checks(Goroutines)}, func(*fakeTB) {}); f.failed {
				b.Fatalf("clean test failed: %q", f.errors)
			}
		}
	})
	b.Run("goleak", func(b *testing.B) {
		ignore := goleak.IgnoreCurrent()
		for b.Loop() {
			if err := goleak.Find(ignore); err != nil {
				b.Fatal(err)
			}
		}
	})
	churn := func(*fakeTB) {
		n := runtime.NumGoroutine()
		done := make(chan struct{})
		go func() { close(done) }()
		<-done
		for runtime.NumGoroutine() > n {
			runtime.Gosched() // until it has exited, as a clean test waits
		}
	}
	for _, c := range []struct {
		name string
		opts []Option
		body func(*fakeTB)
	}{
		{"interleaved", nil, func(*fakeTB) {}},
		{"interleaved-goroutines", []Option{Checks(Goroutines)}, func(*fakeTB) {}},
		{"interleaved-churn", nil, churn},
	} {
		b.Run(c.name, func(b *testing.B) {
			ignore := goleak.IgnoreCurrent()
			var lt, gl, body time.Duration
			timed := func(f *fakeTB) {
				t := time.Now()
				c.body(f)
				body += time.Since(t)
			}
			for b.Loop() {
				t0 := time.Now()
				if f := fakeTest(b.Name(), c.opts, timed); f.failed {
					b.Fatalf("clean test failed: %q", f.errors)
				}
				t1 := time.Now()
				if err := goleak.Find(ignore); err != nil {
					b.Fatal(err)
				}
				lt, gl = lt+t1.Sub(t0), gl+time.Since(t1)
			}
			lt -= body // the test's own time is not the check's
			b.ReportMetric(float64(lt.Nanoseconds())/float64(b.N), "leaktest-ns/op")
			b.ReportMetric(float64(gl.Nanoseconds())/float64(b.N), "goleak-ns/op")
			b.ReportMetric(float64(lt)/float64(gl), "x-goleak")
		})
	}
}
