// Package heapdump reads the heap dumps that runtime/debug.WriteHeapDump
// writes and answers who keeps an object alive: the dominator tree of the
// object graph, retained sizes by allocation site and by root, and the
// shortest path from a garbage-collection root to any object.
//
// A dump holds every live object with its pointer fields, the data and bss
// segments with their pointer maps, every goroutine's frames, finalizers and
// the memory profiler's sampled allocation stacks, but no types. Objects are
// named by allocation site (every object when the program ran with
// runtime.MemProfileRate = 1, a sample otherwise), globals by symbol from
// the program's binary (see ReadSymbols), frames by function.
//
// The graph lives in flat arrays indexed by object number, in address
// order; pointers are resolved to objects once, after reading, through a
// table of each heap page's first object and a binary search.
//
// A dump holds every byte of the heap, secrets included: treat it like a
// core file.
package heapdump

import "fmt"

// Dump is a heap dump read by Read.
type Dump struct {
	Params   Params
	MemStats MemStats
	// Size is the dump's length in bytes.
	Size int64
	// Roots are the garbage-collection roots that point into the heap.
	Roots      []Root
	Goroutines []Goroutine
	// Sites are the memory profiler's buckets: allocation stacks.
	Sites []Site
	// Sampled is how many objects have an allocation site.
	Sampled int
	// DataStart and BSSStart are where the data and bss segments began in
	// the dumped process, to match its binary's symbols.
	DataStart, BSSStart uint64

	addr    []uint64 // object start, ascending
	size    []uint32 // object size (its size class)
	edgeEnd []uint32 // edges of object i are edges[edgeEnd[i]:edgeEnd[i+1]]
	edges   []int32  // object indices
	site    []int32  // index into Sites, or -1

	inlinedDone bool // renameInlined ran

	rootEdges []uint64 // raw, while reading
	rootTo    []int32  // resolved root edges; -1 for no object
	finalized []finalized
}

type finalized struct {
	obj  uint64
	root int32
}

// Params are the dumping runtime's parameters.
type Params struct {
	BigEndian            bool
	PtrSize              int
	ArenaStart, ArenaEnd uint64
	Arch, GoVersion      string
	NumCPU               int
}

// MemStats are the runtime.MemStats fields a report needs.
type MemStats struct {
	HeapAlloc, HeapObjects, Sys uint64
	NumGC                       uint64
}

// RootKind says what sort of root a Root is.
type RootKind uint8

// Kinds of root.
const (
	RootGlobal    RootKind = iota + 1 // a pointer slot in the data or bss segment
	RootFrame                         // a goroutine's stack frame
	RootGoroutine                     // a goroutine's context, defer or panic
	RootFinalizer                     // a finalizer's function, or a queued finalizer's object
	RootOther                         // a runtime root, by the runtime's description
)

func (k RootKind) String() string {
	switch k {
	case RootGlobal:
		return "global"
	case RootFrame:
		return "stack"
	case RootGoroutine:
		return "goroutine"
	case RootFinalizer:
		return "finalizer"
	case RootOther:
		return "runtime"
	}
	return fmt.Sprintf("RootKind(%d)", k)
}

// Root is one garbage-collection root.
type Root struct {
	Kind RootKind
	// Name is the function of a frame, "data" or "bss" for a global slot
	// (see Symbols for its variable), or the runtime's description.
	Name string
	// Addr is the slot's address for a global, the frame's stack pointer
	// for a frame, the object's address for a finalizer.
	Addr uint64
	// Goroutine is the goroutine's id for frames and goroutine roots.
	Goroutine int64

	first, end int32   // its edges in Dump.rootTo
	finalObj   []int32 // objects whose children a finalizer keeps

	// Frames only: the frame's pc and size, and each edge's offset from
	// the frame's stack pointer.
	pc, frameSize uint64
	slots         []uint32
}

// Goroutine is one goroutine of the dump.
type Goroutine struct {
	ID         int64
	Status     uint64
	System     bool
	WaitReason string
	// Frames are the function names of its frames, innermost first.
	Frames []string
}

// Frame is one frame of an allocation stack.
type Frame struct {
	Func string
	File string
	Line int
}

// Site is one memory-profile bucket: an allocation stack, innermost first,
// with the profiler's counts.
type Site struct {
	Stack         []Frame
	Size          uint64
	Allocs, Frees uint64
}

// NumObjects returns how many objects the dump holds.
func (d *Dump) NumObjects() int { return len(d.addr) }

// Object returns the address and size of object i (0 <= i < NumObjects).
func (d *Dump) Object(i int) (addr uint64, size uint64) { return d.addr[i], uint64(d.size[i]) }

// Find returns the index of the object that contains addr, or -1.
func (d *Dump) Find(addr uint64) int { return int(findObject(d.addr, d.size, addr)) }

// Site returns the allocation site of object i, or nil when the profiler
// did not sample it.
func (d *Dump) Site(i int) *Site {
	if k := d.site[i]; k >= 0 {
		return &d.Sites[k]
	}
	return nil
}

// Pointers returns the objects that object i points to. The slice is the
// dump's own; do not modify it.
func (d *Dump) Pointers(i int) []int32 { return d.edges[d.edgeEnd[i]:d.edgeEnd[i+1]] }

// AllSampled reports whether the program sampled (nearly) every
// allocation, as with runtime.MemProfileRate = 1, rather than the default
// one sample per 512 KiB allocated. The rate is not in the dump, so this is
// judged by count: at the default rate an object of s bytes is sampled with
// probability about min(s, 512Ki)/512Ki; many more samples than that sum
// means a finer rate. Objects
// allocated before the program set the rate (the runtime's, package
// initialisers') have no site either way.
func (d *Dump) AllSampled() bool {
	const rate = 512 << 10
	var expect uint64
	for _, s := range d.size {
		expect += min(uint64(s), rate)
	}
	atDefault := expect/rate + 1
	return d.Sampled >= 16 && uint64(d.Sampled) >= 8*atDefault
}
