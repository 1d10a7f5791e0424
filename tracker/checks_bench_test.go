package tracker

import (
	"testing"
)

// benchObj stands for a wrapper: pointerful and larger than the runtime's
// tiny-allocation size, as File and Conn are.
type benchObj struct {
	f    *int
	a, b uintptr
}

// BenchmarkObjectChecks measures what the opt-in checks add per tracked
// object, on the path the File, Conn and Listener wrappers take: allocate
// the object, track it, attach the checks the registry has on, release it.
// "track" is the plain Track+Release with the same allocation, for
// reference; "off" shows the checks' cost when disabled (atomic loads and a
// flag test).
func BenchmarkObjectChecks(b *testing.B) {
	cases := []struct {
		name   string
		opts   []Option
		attach bool
	}{
		{"track", nil, false},
		{"cleanup=off,weak=off", nil, true},
		{"cleanup=on,weak=off", []Option{WithCleanups(true)}, true},
		{"cleanup=off,weak=on", []Option{WithRetainCheck(true)}, true},
		{"cleanup=on,weak=on", []Option{WithCleanups(true), WithRetainCheck(true)}, true},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			r := New(append([]Option{WithStacks(StacksOff)}, c.opts...)...)
			b.ReportAllocs()
			for b.Loop() {
				o := &benchObj{}
				h := r.track(KindSocket, nil, "obj", 0)
				if c.attach {
					attachObject(h, o, false)
				}
				h.release(0)
			}
		})
	}
}

// BenchmarkTrackObject measures the generic TrackObject (always with a
// cleanup) and Release.
func BenchmarkTrackObject(b *testing.B) {
	r := New(WithStacks(StacksOff))
	b.ReportAllocs()
	for b.Loop() {
		TrackObject(r, &benchObj{}, KindSocket, nil, "obj").Release()
	}
}

// benchTree builds a heap of n nodes: a map of every node by id, and a tree
// of fan-out 8 through children slices; with parents, each node also points
// to its parent, which makes one cycle per node.
func benchTree(n int, parents bool) map[int]*node {
	heap := make(map[int]*node, n)
	nodes := make([]*node, n)
	for i := range nodes {
		nodes[i] = &node{name: "n"}
		heap[i] = nodes[i]
	}
	for i := 1; i < n; i++ {
		p := nodes[(i-1)/8]
		p.children = append(p.children, nodes[i])
		if parents {
			nodes[i].parent = p
		}
	}
	return heap
}

// BenchmarkFindCycles100k walks a heap of 100,000 nodes (plus their children
// slices and the index map): without cycles, and with one per node (listed
// up to the default bound, counted beyond).
func BenchmarkFindCycles100k(b *testing.B) {
	for _, parents := range []bool{false, true} {
		name := "acyclic"
		if parents {
			name = "parent-pointers"
		}
		b.Run(name, func(b *testing.B) {
			heap := benchTree(100_000, parents)
			b.ReportAllocs()
			var res CycleResult
			for b.Loop() {
				res = FindCycles(heap)
			}
			if res.NodeLimited || res.DepthLimited || (parents && len(res.Cycles) != DefaultCycleMaxCycles) {
				b.Fatalf("unexpected result: %d cycles, %+v", len(res.Cycles), res)
			}
			b.ReportMetric(float64(res.Nodes), "nodes")
			b.ReportMetric(float64(len(res.Cycles)+res.Dropped), "cycles")
		})
	}
}
