package leaktest

import (
	"testing"

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
}
