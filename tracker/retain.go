package tracker

import (
	"fmt"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"time"
	"unsafe"
	"weak"
)

// RetainGCs is how many garbage collections CheckRetained runs at most.
// Most garbage is gone after one; an object freed only after a finalizer ran
// needs a second.
const RetainGCs = 3

// watch is one object that should become garbage: a released tracked object,
// a stopped session, or an object passed to Watch. It holds the object only
// weakly.
type watch struct {
	alive    func() bool           // reports whether the object is still reachable
	addr     func() uintptr        // the object's address, 0 once collected; nil if unknown
	sess     weak.Pointer[Session] // set for stopped sessions
	info     Record
	released time.Time
	gcs      int // forced collections survived
}

// Watch asks the registry to check that obj becomes garbage from now on: it
// is watched through a weak pointer, and CheckRetained reports it if it is
// still reachable. kind and label describe it (an empty kind is obj's type);
// owner (nil for none) names who held it. Use it for what the program
// dropped and believes gone: a wheel after shutdown, a request after its
// reply, a closure's captured state. A nil r is Default.
//
// Watching costs a weak pointer; the watch list holds at most ten times
// WithMaxFindings objects, dropping the oldest. Objects of zero size,
// package-level variables and small pointer-free objects (16 bytes or less)
// may never be reported as gone: watch the struct that holds them.
func Watch[T any](r *Registry, obj *T, kind Kind, owner *Session, label string) {
	if r == nil {
		r = Default
	}
	if obj == nil {
		return
	}
	if kind == "" {
		kind = Kind(reflect.TypeFor[T]().String())
	}
	wp := weak.Make(obj)
	now := time.Now()
	rec := Record{
		ID:      r.nextID.Add(1),
		Kind:    kind,
		Label:   label,
		Created: now,
		State:   Released,
	}
	if owner != nil {
		rec.Owner = owner.rec.id
		rec.OwnerLabel = owner.rec.label
		rec.OwnerStopped = owner.stopped.Load()
		rec.Ancestors = owner.ancestors()
	}
	r.addWatch(&watch{
		alive:    func() bool { return wp.Value() != nil },
		addr:     func() uintptr { return uintptr(unsafe.Pointer(wp.Value())) },
		info:     rec,
		released: now,
	})
}

// watchSession watches a session that just stopped.
func (r *Registry) watchSession(s *Session, now time.Time) {
	wp := weak.Make(s)
	w := &watch{
		alive:    func() bool { return wp.Value() != nil },
		addr:     func() uintptr { return uintptr(unsafe.Pointer(wp.Value())) },
		sess:     wp,
		info:     r.info(s.rec, s.Parent(), Released, now),
		released: now,
	}
	r.addWatch(w)
}

// addWatch appends w to the watch list. When the list is full, watches of
// objects already collected are pruned first, then the oldest are dropped
// until it is three quarters full.
func (r *Registry) addWatch(w *watch) {
	x := &r.checks
	limit := 10 * x.max()
	x.mu.Lock()
	defer x.mu.Unlock()
	if len(x.watches) >= limit {
		x.watches = slices.DeleteFunc(x.watches, func(w *watch) bool { return !w.alive() })
		if keep := limit * 3 / 4; len(x.watches) > keep {
			// Drop the oldest down to three quarters at once, so the
			// pruning scan costs at most four checks per watch added.
			n := len(x.watches) - keep
			x.watchDropped += n
			x.watches = slices.Delete(x.watches, 0, n)
		}
	}
	x.watches = append(x.watches, w)
}

// CheckRetained runs the garbage collector up to RetainGCs times and returns
// the watched objects that are still reachable: released tracked objects and
// stopped sessions (with WithRetainCheck) and objects passed to Watch, oldest
// first, each with how many forced collections it survived. Something still
// refers to each: a slice, a map, a global, a pending timer, a closure. A
// stopped session that still owns records is not listed: it is a leftover,
// and the registry holds it on purpose until they are released.
//
// The result is kept for Snapshot.Retained. Survivors stay watched, so a
// later call counts more collections; collected objects leave the list.
// CheckRetained is explicit and costs full collections: call it from a test,
// an admin endpoint or at shutdown, not on a hot path. Tracking and
// releasing never wait for it.
func (r *Registry) CheckRetained() []Retained {
	x := &r.checks
	x.checkMu.Lock()
	defer x.checkMu.Unlock()

	x.mu.Lock()
	ws := x.watches
	x.watches = nil
	x.mu.Unlock()

	for range RetainGCs {
		if len(ws) == 0 {
			break
		}
		runtime.GC()
		ws = slices.DeleteFunc(ws, func(w *watch) bool { return !w.alive() })
		for _, w := range ws {
			w.gcs++
		}
	}

	out := []Retained{}
	var kept []*watch
	for _, w := range ws {
		if r.holdsSession(w.sess) {
			continue
		}
		out = append(out, Retained{Record: w.info, Released: w.released, GCs: w.gcs})
		kept = append(kept, w)
	}
	if len(out) > x.max() {
		out = out[len(out)-x.max():]
		kept = kept[len(kept)-x.max():]
	}
	if x.retainPaths != nil && len(out) > 0 {
		retainPaths(x.retainPaths, out, kept)
	}

	x.mu.Lock()
	x.watches = append(ws, x.watches...)
	if limit := 10 * x.max(); len(x.watches) > limit {
		n := len(x.watches) - limit
		x.watchDropped += n
		x.watches = slices.Delete(x.watches, 0, n)
	}
	x.retained = out
	x.mu.Unlock()
	return slices.Clone(out)
}

// retainPaths asks paths who holds each retained object and records the
// answers in out. Only addresses are passed, never pointers, so the
// tracker's own call is not what keeps the objects alive in the dump.
func retainPaths(paths func([]uintptr) ([][]string, error), out []Retained, kept []*watch) {
	addrs := make([]uintptr, len(kept))
	for i, w := range kept {
		if w.addr != nil {
			addrs[i] = w.addr()
		}
	}
	found, err := paths(addrs)
	for i := range out {
		switch {
		case err != nil:
			out[i].PathError = err.Error()
		case i < len(found) && len(found[i]) > 0:
			out[i].Path = found[i]
		case addrs[i] == 0:
			out[i].PathError = "collected before the heap dump"
		default:
			out[i].PathError = "no path from a root in the heap dump"
		}
	}
}

// holdsSession reports whether the registry itself keeps the session of wp,
// because it still owns records.
func (r *Registry) holdsSession(wp weak.Pointer[Session]) bool {
	s := wp.Value()
	if s == nil {
		return false
	}
	r.mu.Lock()
	_, ok := r.sessions[s]
	r.mu.Unlock()
	return ok
}

// Watching returns how many objects are watched for retention, and how many
// watches were dropped because the list was full.
func (r *Registry) Watching() (watched, dropped int) {
	x := &r.checks
	x.mu.Lock()
	defer x.mu.Unlock()
	return len(x.watches), x.watchDropped
}

// String describes the finding as a log line:
//
//	RETAINED: session "alice" #3 was stopped at 15:04:05.000 but is still
//	reachable after 3 garbage collections: something still refers to it
func (k Retained) String() string {
	verb := "released"
	if k.Record.Kind == KindSession {
		verb = "stopped"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "RETAINED: %s was %s at %s but is still reachable after %d garbage collections: "+
		"something still refers to it (a slice, map, global, pending timer or closure)",
		describe(k.Record), verb, k.Released.Format("15:04:05.000"), k.GCs)
	writeStack(&b, "acquired at", k.Record.Stack)
	if len(k.Path) > 0 {
		fmt.Fprintf(&b, "\n\theld by: %s", strings.Join(k.Path, " → "))
	}
	return b.String()
}
