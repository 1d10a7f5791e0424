package tracker

import (
	"fmt"
	"io"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// This file holds the state shared by the checks beyond leftovers: objects
// the garbage collector freed while registered (gc.go), objects still
// reachable after release (retain.go), reference cycles (cycle.go) and
// collection sizes (gauge.go, heap.go). Every check is opt-in; when all are
// off, tracking and releasing pay one extra byte test (record.flags) and
// nothing else.

// DefaultMaxFindings is how many unreleased, retained and cycle findings a
// registry keeps by default; older ones are dropped (unreleased ones are
// still counted).
const DefaultMaxFindings = 1000

// Flags of a record, written under the lock of the bucket that holds it.
const (
	// recCleanup: a runtime cleanup is attached to the tracked object; its
	// runtime.Cleanup is in checks.objects.
	recCleanup uint8 = 1 << iota
	// recWatch: a weak pointer to the object is in checks.objects; after
	// release it goes on the retain watch list.
	recWatch
	// recCollected: released by the collector's cleanup, not by the program.
	recCollected
)

// checks is the per-registry state of the GC-aware checks, the cycle finder
// and the gauges. Its zero value is ready: everything off.
type checks struct {
	cleanups    atomic.Bool // wrappers attach a runtime cleanup to their object
	retain      atomic.Bool // watch released objects and stopped sessions
	cycles      atomic.Bool // look for cycles in a session's heap when it stops
	unsafeHeaps atomic.Bool // the sampler walks heaps without the owner's help
	gaugesUsed  atomic.Bool // some gauge exists: stopping a session freezes its gauges
	maxFindings int         // set by WithMaxFindings; 0 means DefaultMaxFindings

	onUnreleased atomic.Pointer[func(Unreleased)]
	retainPaths  func(addrs []uintptr) ([][]string, error) // set by WithRetainPaths
	heapDumps    atomic.Bool                               // the handler serves heap dumps

	// objects maps a *record with recCleanup or recWatch to its *objEntry.
	objects sync.Map

	checkMu sync.Mutex // serializes CheckRetained

	mu              sync.Mutex // guards the fields below
	unreleased      []Unreleased
	unreleasedNext  int
	unreleasedTotal int
	watches         []*watch // oldest first
	watchDropped    int
	retained        []Retained // result of the latest CheckRetained
	stopCycles      []Cycle    // ring of cycles found when sessions stopped
	stopCycleNext   int
	stopCycleKeys   map[string]int // identity key -> index in stopCycles
	lastCycles      []Cycle        // result of the latest CheckCycles

	gauges gaugeSet
}

// objEntry is what the registry knows about a tracked object, by record.
type objEntry struct {
	cleanup runtime.Cleanup
	alive   func() bool // reports whether the object is still reachable; nil without recWatch
	addr    func() uintptr
}

func (x *checks) max() int {
	if x.maxFindings > 0 {
		return x.maxFindings
	}
	return DefaultMaxFindings
}

// WithCleanups makes the File, Conn, Listener and Ticker wrappers attach a
// runtime cleanup to the wrapper: one garbage-collected while still
// registered (never closed or stopped) is reported in Snapshot.Unreleased and
// its record is closed. See TrackObject for other objects.
func WithCleanups(on bool) Option {
	return func(r *Registry) { r.checks.cleanups.Store(on) }
}

// SetCleanups turns wrapper cleanups on or off for wrappers made from now on.
func (r *Registry) SetCleanups(on bool) { r.checks.cleanups.Store(on) }

// WithRetainCheck makes the registry watch, with weak pointers, every session
// that stops and every tracked object (wrappers and TrackObject) that is
// released; CheckRetained then reports those still reachable.
func WithRetainCheck(on bool) Option {
	return func(r *Registry) { r.checks.retain.Store(on) }
}

// SetRetainCheck turns the retain watch on or off from now on. Objects are
// watched after release only if the check was on when they were tracked.
func (r *Registry) SetRetainCheck(on bool) { r.checks.retain.Store(on) }

// WithRetainPaths makes CheckRetained find out who holds each object that
// survived its release: it calls paths with the objects' addresses (0 for
// one collected meanwhile) and keeps each result in Retained.Path, the
// chain of references from a garbage-collection root, root first. paths
// is typically heapdump.RetainPaths (package tracker/heapdump), which
// writes a heap dump of the process to a temporary file, reads it and
// deletes it; the world stops while the dump is written, so this is for
// tests and shutdown, like CheckRetained itself. It applies to what
// CheckRetained reports: objects watched by WithRetainCheck or Watch.
func WithRetainPaths(paths func(addrs []uintptr) ([][]string, error)) Option {
	return func(r *Registry) { r.checks.retainPaths = paths }
}

// WithHeapDumps makes the registry's Handler serve PREFIX/heapdump: a heap
// dump of the process (runtime/debug.WriteHeapDump) that
// `leakcheck report` reads. It is off unless the program turns it on,
// because a heap dump holds every byte of the heap, secrets included
// (keys, tokens, passwords, request bodies): serve it only where the
// snapshot's readers may read the process's memory. Writing one stops the
// world for as long as it takes.
func WithHeapDumps(on bool) Option {
	return func(r *Registry) { r.checks.heapDumps.Store(on) }
}

// WithCycleCheck makes Session.Stop look for reference cycles in the
// stopping session's heap (see FindCycles and Session.SetHeap) and keep, in
// Snapshot.Cycles, those whose sessions have all stopped. Each Stop then
// walks the heap, and what it reaches, on the stopping goroutine, without
// locks: stop a session from the goroutine that owns its heap.
func WithCycleCheck(on bool) Option {
	return func(r *Registry) { r.checks.cycles.Store(on) }
}

// SetCycleCheck turns the cycle check at Session.Stop on or off.
func (r *Registry) SetCycleCheck(on bool) { r.checks.cycles.Store(on) }

// WithMaxFindings sets how many unreleased, retained and cycle findings are
// kept (older ones are dropped); the retain watch list holds ten times as
// many objects.
func WithMaxFindings(n int) Option {
	return func(r *Registry) { r.checks.maxFindings = max(n, 1) }
}

// releasedObject runs after the program released rec, which carries flags
// fl: the cleanup is cancelled, so it neither runs nor keeps the record
// alive, and the object is watched when the retain check asked for it.
func (r *Registry) releasedObject(rec *record, owner *Session, fl uint8) {
	v, ok := r.checks.objects.LoadAndDelete(rec)
	if !ok {
		return
	}
	e := v.(*objEntry)
	if fl&recCleanup != 0 {
		e.cleanup.Stop()
	}
	if fl&recWatch != 0 && e.alive != nil {
		now := time.Now()
		r.addWatch(&watch{alive: e.alive, addr: e.addr, info: r.info(rec, owner, Released, now), released: now})
	}
}

// afterStop runs at the end of Session.stop for each session that stopped.
func (r *Registry) afterStop(s *Session, now time.Time) {
	x := &r.checks
	if x.retain.Load() {
		r.watchSession(s, now)
	}
	if x.gaugesUsed.Load() {
		x.gauges.ownerStopped(s.rec.id)
	}
	if x.cycles.Load() {
		r.cycleCheckAtStop(s)
	}
}

// fillChecks copies the findings of the checks into a snapshot, and the
// stacks their records refer to into its stack table.
func (r *Registry) fillChecks(s *Snapshot) {
	x := &r.checks
	x.mu.Lock()
	if len(x.unreleased) > 0 {
		s.Unreleased = make([]Unreleased, 0, len(x.unreleased))
		s.Unreleased = append(s.Unreleased, x.unreleased[x.unreleasedNext:]...)
		s.Unreleased = append(s.Unreleased, x.unreleased[:x.unreleasedNext]...)
	}
	s.UnreleasedTotal = x.unreleasedTotal
	s.Retained = slices.Clone(x.retained)
	if len(x.stopCycles) > 0 || len(x.lastCycles) > 0 {
		// The same cycle may have been found from two of its objects, so
		// with its path rotated: key it by its elements, in any order.
		// Cycles found at Stop come first and win over stale on-demand ones.
		seen := map[string]bool{}
		add := func(cs []Cycle) {
			for _, c := range cs {
				elems := slices.Clone(c.Path[:max(len(c.Path)-1, 0)])
				slices.Sort(elems)
				k := strings.Join(elems, "\x00")
				if !seen[k] {
					seen[k] = true
					s.Cycles = append(s.Cycles, c)
				}
			}
		}
		add(x.stopCycles[x.stopCycleNext:])
		add(x.stopCycles[:x.stopCycleNext])
		add(x.lastCycles)
	}
	x.mu.Unlock()
	s.Gauges = x.gauges.snapshot()

	if s.StackTable == nil {
		s.StackTable = make(map[int][]Frame)
	}
	for _, u := range s.Unreleased {
		if u.Record.StackID != 0 {
			s.StackTable[u.Record.StackID] = u.Record.Stack
		}
	}
	for _, k := range s.Retained {
		if k.Record.StackID != 0 {
			s.StackTable[k.Record.StackID] = k.Record.Stack
		}
	}
}

// writeFindingsText appends the findings of the checks to WriteText's
// summary, one line each.
func writeFindingsText(w io.Writer, s *Snapshot) {
	if s.UnreleasedTotal > len(s.Unreleased) {
		fmt.Fprintf(w, "unreleased: %d in all, the latest %d follow\n", s.UnreleasedTotal, len(s.Unreleased))
	}
	for _, u := range s.Unreleased {
		fmt.Fprintf(w, "unreleased: %s garbage-collected while registered, age %s, acquired at %s\n",
			describe(u.Record), u.Record.Age.Round(time.Millisecond), firstUserFrame(u.Record.Stack))
	}
	for _, k := range s.Retained {
		fmt.Fprintf(w, "retained: %s still reachable after %d garbage collections\n", describe(k.Record), k.GCs)
	}
	for _, c := range s.Cycles {
		fmt.Fprintf(w, "cycle: %s\n", strings.TrimPrefix(c.String(), "CYCLE: "))
	}
	for _, g := range s.Gauges {
		if n := len(g.Points); n > 0 {
			fmt.Fprintf(w, "gauge: %s (session %q #%d): %d points, first %g, last %g\n",
				g.Name, g.OwnerLabel, g.Owner, n, g.Points[0].Value, g.Points[n-1].Value)
		}
	}
}
