package tracker

import (
	"runtime"
	"runtime/pprof"
	"sync/atomic"
	"testing"
)

// BenchmarkTrackRelease measures one Track and one Release of a resource, the
// hot path a daemon pays per resource. Compare with BenchmarkPprofAddRemove,
// run in the same invocation.
func BenchmarkTrackRelease(b *testing.B) {
	for _, mode := range []StackMode{StacksOff, StacksAlways, StacksSampled(128)} {
		name := "stacks=" + mode.String()
		if mode.Every > 1 {
			name = "stacks=sample128"
		}
		b.Run(name, func(b *testing.B) {
			r := New(WithStacks(mode))
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					r.Track(KindSocket, nil, "conn").Release()
				}
			})
		})
	}
}

var pprofSeq atomic.Int64

// BenchmarkPprofAddRemove is the baseline: the standard library's own
// resource-tracking mechanism, a runtime/pprof custom profile, adding and
// removing a fresh pointer (Add captures the stack, as it always does).
func BenchmarkPprofAddRemove(b *testing.B) {
	p := pprof.NewProfile("leakcheck.bench." + string(rune('a'+pprofSeq.Add(1))))
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			v := new(int)
			p.Add(v, 0)
			p.Remove(v)
		}
	})
}

// BenchmarkSnapshot1M takes a snapshot and the leftover list of a registry with
// one million live records (stacks off), and reports the heap bytes each live
// record costs.
func BenchmarkSnapshot1M(b *testing.B) {
	const n = 1_000_000
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	r := New(WithStacks(StacksOff))
	s := r.StartSession("holder", nil)
	for i := range n {
		owner := s
		if i%2 == 0 {
			owner = nil
		}
		r.Track(KindSocket, owner, "conn")
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	perRecord := float64(after.HeapAlloc-before.HeapAlloc) / n

	b.ResetTimer()
	for b.Loop() {
		snap := r.Snapshot()
		left := r.Leftovers()
		if len(snap.Records) != n+1 || len(left) != n+1 {
			b.Fatalf("snapshot %d, leftovers %d records; want %d", len(snap.Records), len(left), n+1)
		}
	}
	b.ReportMetric(perRecord, "B/record")
	runtime.KeepAlive(r)
}
