package tracker

import (
	"reflect"
	"strconv"
	"time"
	"unsafe"
)

// Bounds of the automatic sampling of session heaps.
const (
	// HeapSampleDepth is how many struct fields or heap-map entries deep
	// SampleHeap looks for collections.
	HeapSampleDepth = 4
	// HeapSampleMax is how many collections SampleHeap samples per session.
	HeapSampleMax = 64
)

// HeapSizer is implemented by heaps that report the sizes of their own
// collections, for example under their own lock. When a session's heap
// implements it, sampling calls HeapSizes instead of walking the heap, and
// does so from the sampler's goroutine: report each collection's name and
// size. The series is named after the session: session "worker".Heap.NAME.
type HeapSizer interface {
	HeapSizes(report func(name string, n int))
}

// SetHeap gives the session a heap, as POE sessions have one: the state the
// session's handlers share. The tracker reads it only for the checks that
// look into heaps: the cycle finder (FindCycles, CheckCycles, the check at
// Stop) and automatic size sampling (SampleHeap). Stop keeps the heap; set it
// to nil to drop it.
func (s *Session) SetHeap(v any) {
	s.mu.Lock()
	s.heap = v
	s.mu.Unlock()
}

// Heap returns the session's heap, nil if none was set.
func (s *Session) Heap() any {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.heap
}

// SetHeapScheduler tells the registry's sampler how to sample the heap on
// the goroutine that owns it: at each sample of a running session, the
// sampler calls run(sample), and run must arrange for sample to run on the
// owner's goroutine (post it to the event loop, the worker's queue), and
// return promptly; it must not block the sampler. sample then calls
// SampleHeap. nil removes the scheduler.
func (s *Session) SetHeapScheduler(run func(sample func())) {
	s.mu.Lock()
	s.heapRun = run
	s.mu.Unlock()
}

// WithUnsafeHeapSampling makes the sampler also walk the heaps of sessions
// that neither implement HeapSizer nor have a heap scheduler, directly on
// its own goroutine and without any lock. That is a data race unless those
// heaps are not mutated while sampled (built once, or the program is
// single-threaded), so it is off by default: use it for debugging, or for
// heaps whose owners only swap them whole with SetHeap.
func WithUnsafeHeapSampling(on bool) Option {
	return func(r *Registry) { r.checks.unsafeHeaps.Store(on) }
}

// SetUnsafeHeapSampling turns unsafe heap sampling on or off; see
// WithUnsafeHeapSampling.
func (r *Registry) SetUnsafeHeapSampling(on bool) { r.checks.unsafeHeaps.Store(on) }

// SampleHeap samples, now, the sizes of the collections in the session's
// heap: every map, slice and channel reachable from it through pointers,
// interfaces and struct fields, and the entries of the heap itself when it
// is a map with string keys, down to HeapSampleDepth and at most
// HeapSampleMax of them. Elements of other maps and slices are not entered:
// they are the items being counted. Each size goes into an automatic gauge
// named by its path, such as session "worker".Heap.tasks, in
// Snapshot.Gauges. A heap that implements HeapSizer reports its own sizes
// instead.
//
// SampleHeap reads the heap without locks: call it on the goroutine that
// owns the heap (see SetHeapScheduler), not concurrently with changes to it.
// Other sessions reached from the heap are not entered, nor are
// standard-library or tracker types. It does nothing for a stopped session.
func (s *Session) SampleHeap() {
	h := s.Heap()
	if h == nil || s.stopped.Load() {
		return
	}
	s.reg.recordHeapSizes(s, heapSizes(s, h), time.Now())
}

// sized is one collection size found in a heap.
type sized struct {
	name string
	n    int
}

// heapSizes returns the sizes of the collections in h, the heap of s.
func heapSizes(s *Session, h any) []sized {
	prefix := "session " + strconv.Quote(s.rec.label) + ".Heap"
	if hs, ok := h.(HeapSizer); ok {
		var out []sized
		hs.HeapSizes(func(name string, n int) {
			if len(out) < HeapSampleMax {
				out = append(out, sized{prefix + "." + name, n})
			}
		})
		return out
	}
	hw := heapWalk{seen: map[unsafe.Pointer]bool{}}
	func() {
		// Reading an odd value must not crash the owner; keep what was
		// found before.
		defer func() { recover() }()
		hw.value(reflect.ValueOf(h), prefix, 0, true)
	}()
	return hw.out
}

// heapWalk finds the collections of one heap.
type heapWalk struct {
	seen map[unsafe.Pointer]bool
	out  []sized
}

func (hw *heapWalk) add(name string, n int) {
	if len(hw.out) < HeapSampleMax {
		hw.out = append(hw.out, sized{name, n})
	}
}

func (hw *heapWalk) value(v reflect.Value, name string, depth int, root bool) {
	if len(hw.out) >= HeapSampleMax {
		return
	}
	switch v.Kind() {
	case reflect.Interface:
		if !v.IsNil() {
			hw.value(v.Elem(), name, depth, root)
		}
	case reflect.Pointer:
		if v.IsNil() || v.Type() == sessionPtrType {
			return
		}
		if et := v.Type().Elem(); et.Name() != "" && opaque(et, false) {
			return
		}
		p := v.UnsafePointer()
		if hw.seen[p] {
			return
		}
		hw.seen[p] = true
		hw.value(v.Elem(), name, depth, root)
	case reflect.Struct:
		t := v.Type()
		if (t.Name() != "" && opaque(t, false)) || depth >= HeapSampleDepth {
			return
		}
		for i := range v.NumField() {
			hw.value(v.Field(i), name+"."+t.Field(i).Name, depth+1, false)
		}
	case reflect.Map:
		if p := v.UnsafePointer(); p != nil {
			if hw.seen[p] {
				return
			}
			hw.seen[p] = true
		}
		hw.add(name, v.Len())
		if root && v.Type().Key().Kind() == reflect.String && depth < HeapSampleDepth {
			for _, k := range sortedKeys(v) {
				hw.value(v.MapIndex(k), name+"["+strconv.Quote(k.String())+"]", depth+1, false)
			}
		}
	case reflect.Slice:
		hw.add(name, v.Len())
	case reflect.Chan:
		if !v.IsNil() {
			hw.add(name, v.Len())
		}
	}
}

// recordHeapSizes appends the sizes found in the heap of s to its automatic
// series.
func (r *Registry) recordHeapSizes(s *Session, sizes []sized, now time.Time) {
	if len(sizes) == 0 {
		return
	}
	r.checks.gaugesUsed.Store(true)
	g := &r.checks.gauges
	g.mu.Lock()
	defer g.mu.Unlock()
	// Checked under the lock: a session stopping now freezes its series
	// after we are done, never before.
	if s.stopped.Load() {
		return
	}
	for _, z := range sizes {
		if ser := g.get(gaugeKey{s.rec.id, z.name}, s, true); ser != nil && !ser.frozen {
			ser.add(Point{Time: now, Value: float64(z.n)}, g.limit())
		}
	}
}

// sampleHeaps samples the heaps of running sessions that can be sampled
// safely: heaps that are HeapSizers are asked on this goroutine, sessions
// with a heap scheduler are asked to sample on their own goroutine, and the
// others are walked here only with unsafe heap sampling on.
func (r *Registry) sampleHeaps() {
	unsafeOK := r.checks.unsafeHeaps.Load()
	for _, s := range r.allSessions() {
		if s.stopped.Load() {
			continue
		}
		s.mu.Lock()
		h, run := s.heap, s.heapRun
		s.mu.Unlock()
		if h == nil {
			continue
		}
		if _, ok := h.(HeapSizer); ok {
			s.SampleHeap()
			continue
		}
		switch {
		case run != nil:
			run(s.SampleHeap)
		case unsafeOK:
			s.SampleHeap()
		}
	}
}
