package heapdump

import (
	"bufio"
	"bytes"
	"io"
	"runtime"
	"runtime/metrics"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// benchObjects is how many linked objects the benchmark's program holds.
const benchObjects = 1_000_000

var benchDump struct {
	once sync.Once
	data []byte
	bin  string
}

// bigDump is a dump of the test program holding a million linked objects
// (the many scenario), made once per benchmark binary.
func bigDump(b *testing.B) ([]byte, string) {
	benchDump.once.Do(func() {
		benchDump.data, benchDump.bin = dumpOf(b, "many", "-n", "1000000")
	})
	if benchDump.data == nil {
		b.Fatal("no dump")
	}
	return benchDump.data, benchDump.bin
}

// BenchmarkRead reads a real dump of a million objects; the baseline copies
// the same bytes through a bufio.Reader of the same size to io.Discard
// (hiding bytes.Reader's WriteTo, which would skip the copy), so the ratio
// of the two MB/s figures is the reader's cost over just moving the bytes.
func BenchmarkRead(b *testing.B) {
	data, _ := bigDump(b)
	b.Run("baseline=bufio-copy", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			if _, err := io.Copy(io.Discard, struct{ io.Reader }{bufio.NewReaderSize(bytes.NewReader(data), 256<<10)}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("heapdump.Read", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			if _, err := Read(bytes.NewReader(data), Limits{}); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkAnalyze computes dominators, retained sizes and shortest paths
// for the million-object dump; the baseline is one breadth-first pass over
// the same graph, the least any analysis of it must do.
func BenchmarkAnalyze(b *testing.B) {
	data, _ := bigDump(b)
	d, err := Read(bytes.NewReader(data), Limits{})
	if err != nil {
		b.Fatal(err)
	}
	b.Run("baseline=bfs", func(b *testing.B) {
		for b.Loop() {
			seen := make([]bool, d.NumObjects())
			queue := make([]int32, 0, d.NumObjects())
			for _, j := range d.rootTo {
				if j >= 0 && !seen[j] {
					seen[j] = true
					queue = append(queue, j)
				}
			}
			for h := 0; h < len(queue); h++ {
				for _, w := range d.Pointers(int(queue[h])) {
					if !seen[w] {
						seen[w] = true
						queue = append(queue, w)
					}
				}
			}
		}
		b.ReportMetric(float64(d.NumObjects()), "objects")
	})
	b.Run("Analyze", func(b *testing.B) {
		for b.Loop() {
			Analyze(d, nil)
		}
		b.ReportMetric(float64(d.NumObjects()), "objects")
	})
}

// BenchmarkMemoryPerObject reports, per object of the dump and beyond the
// dump's own bytes: the heap that Read and Analyze keep (live after a
// collection), the peak of the heap while they run (sampled every
// millisecond, garbage not yet collected included), and all they allocate.
func BenchmarkMemoryPerObject(b *testing.B) {
	data, _ := bigDump(b)
	var live, peak, total float64
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	heap := func() uint64 { metrics.Read(sample); return sample[0].Value.Uint64() }
	for b.Loop() {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		base := heap()
		var top atomic.Uint64
		done := make(chan struct{})
		var wg sync.WaitGroup
		wg.Go(func() {
			t := time.NewTicker(time.Millisecond)
			defer t.Stop()
			for {
				if h := heap(); h > top.Load() {
					top.Store(h)
				}
				select {
				case <-done:
					return
				case <-t.C:
				}
			}
		})
		d, err := Read(bytes.NewReader(data), Limits{})
		if err != nil {
			b.Fatal(err)
		}
		g := Analyze(d, nil)
		close(done)
		wg.Wait()
		runtime.GC()
		runtime.ReadMemStats(&after)
		n := float64(d.NumObjects())
		live = float64(after.HeapAlloc-before.HeapAlloc) / n
		peak = float64(top.Load()-base) / n
		total = float64(after.TotalAlloc-before.TotalAlloc) / n
		runtime.KeepAlive(g)
	}
	b.ReportMetric(live, "live-B/object")
	b.ReportMetric(peak, "peak-B/object")
	b.ReportMetric(total, "alloc-B/object")
}
