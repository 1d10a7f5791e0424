package tracker

import (
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"time"
	"unsafe"
	"weak"
)

// TrackObject records that owner holds obj, a resource of kind described by
// label, and attaches a runtime cleanup to obj: if obj becomes unreachable
// while its record is still registered (nobody called Release), the garbage
// collector's cleanup closes the record and reports it in
// Snapshot.Unreleased, in the spirit of Netty's "LEAK: release() was not
// called before it's garbage-collected". When the registry's retain check is
// on (WithRetainCheck), obj is also watched after release (see
// CheckRetained). A nil r is Default.
//
// Calling TrackObject is the opt-in: the cleanup is attached whatever
// WithCleanups says. Releasing the Handle cancels the cleanup. The Handle does
// not keep obj alive: keep obj reachable until it is released, or it is
// reported as unreleased. Cleanups are not reliable for objects of zero
// size, for objects allocated in package initializers and for small
// pointer-free objects (16 bytes or less), which the runtime may batch with
// live ones: track the owning struct instead.
func TrackObject[T any](r *Registry, obj *T, kind Kind, owner *Session, label string) Handle {
	if r == nil {
		r = Default
	}
	h := r.track(kind, owner, label, 1)
	if obj != nil {
		attachObject(h, obj, true)
	}
	return h
}

// attachObject attaches the checks the registry has on to obj, the object
// behind h: a cleanup when forced or when wrapper cleanups are on, a weak
// pointer when the retain check is on. With both off it is an atomic load or
// two.
func attachObject[T any](h Handle, obj *T, force bool) {
	x := &h.reg.checks
	cl := force || x.cleanups.Load()
	rt := x.retain.Load()
	if !cl && !rt {
		return
	}
	e := &objEntry{}
	var fl uint8
	if rt {
		wp := weak.Make(obj)
		e.alive = func() bool { return wp.Value() != nil }
		e.addr = func() uintptr { return uintptr(unsafe.Pointer(wp.Value())) }
		fl |= recWatch
	}
	// Publish the entry before the flag: release reads the flag, then the
	// entry. A record with flags is never recycled, so the record is a
	// stable key from then on.
	x.objects.Store(h.rec, e)
	if cl {
		// The cleanup's argument is the record, which never refers to obj.
		e.cleanup = runtime.AddCleanup(obj, collectRecord, recRef{h.rec, h.id})
		fl |= recCleanup
	}
	_, b := lockOwner(h.rec)
	if h.rec.id != h.id || h.rec.released {
		// Released before we got here; nothing to watch.
		b.mu.Unlock()
		x.objects.Delete(h.rec)
		e.cleanup.Stop()
		return
	}
	h.rec.flags |= fl
	b.mu.Unlock()
	runtime.KeepAlive(obj)
}

// recRef names one resource of a record: the record and the id it had then.
type recRef struct {
	rec *record
	id  uint64
}

// collectRecord is the cleanup of a tracked object: it runs on a runtime
// goroutine after the object became unreachable. A record the program
// released first is left alone; otherwise it is closed and reported.
func collectRecord(ref recRef) {
	rec := ref.rec
	o, b := lockOwner(rec)
	if rec.id != ref.id || rec.released {
		b.mu.Unlock()
		return
	}
	b.unlink(rec)
	o.reg.retire(rec)
	rec.flags |= recCollected
	b.mu.Unlock()

	r := o.reg
	r.checks.objects.Delete(rec)
	now := time.Now()
	u := Unreleased{Record: r.info(rec, o, Collected, now), Collected: now}
	if r.creatorSet.Load() {
		r.creators.Delete(rec.id)
	}
	r.noteUnreleased(u)
	if o.stopped.Load() {
		r.forgetIfEmpty(o)
	}
	if f := r.checks.onUnreleased.Load(); f != nil {
		(*f)(u)
	}
}

// noteUnreleased keeps u in the ring of the latest unreleased findings.
func (r *Registry) noteUnreleased(u Unreleased) {
	x := &r.checks
	x.mu.Lock()
	defer x.mu.Unlock()
	x.unreleasedTotal++
	if len(x.unreleased) < x.max() {
		x.unreleased = append(x.unreleased, u)
		return
	}
	x.unreleased[x.unreleasedNext] = u
	x.unreleasedNext = (x.unreleasedNext + 1) % len(x.unreleased)
}

// OnUnreleased installs f to be told of every tracked object the garbage
// collector finds unreachable while still registered, for example to log
// u.String(); nil removes it. f runs on the runtime's cleanup goroutine:
// keep it short and never block in it.
func (r *Registry) OnUnreleased(f func(Unreleased)) {
	if f == nil {
		r.checks.onUnreleased.Store(nil)
		return
	}
	r.checks.onUnreleased.Store(&f)
}

// Unreleased returns the latest objects the garbage collector found
// unreachable while still registered, oldest first, and how many there were
// in all.
func (r *Registry) Unreleased() (latest []Unreleased, total int) {
	x := &r.checks
	x.mu.Lock()
	defer x.mu.Unlock()
	latest = make([]Unreleased, 0, len(x.unreleased))
	latest = append(latest, x.unreleased[x.unreleasedNext:]...)
	latest = append(latest, x.unreleased[:x.unreleasedNext]...)
	return latest, x.unreleasedTotal
}

// describe names a record with its owner for findings:
// file "/var/log/x" #12 of session "alice" #3.
func describe(rec Record) string {
	var b strings.Builder
	b.WriteString(string(rec.Kind))
	if rec.Label != "" {
		b.WriteString(" " + strconv.Quote(rec.Label))
	}
	if rec.ID != 0 {
		b.WriteString(" #" + strconv.FormatUint(rec.ID, 10))
	}
	if rec.Owner != 0 || rec.OwnerLabel != "" {
		fmt.Fprintf(&b, " of session %q #%d", rec.OwnerLabel, rec.Owner)
	}
	return b.String()
}

// writeStack appends the frames of an acquisition stack, one per line.
func writeStack(b *strings.Builder, what string, frames []Frame) {
	if len(frames) == 0 {
		return
	}
	b.WriteString("\n\t" + what + ":")
	for _, f := range frames {
		fmt.Fprintf(b, "\n\t\t%s\n\t\t\t%s:%d", f.Func, f.File, f.Line)
	}
}

// String describes the finding as a log line, with the acquisition stack
// when one was captured:
//
//	LEAK: file "/tmp/x" #4 of session "alice" #2 was garbage-collected
//	while still registered, 1.2s after it was acquired: nobody called Close
//	or Release; the collector freed it, not the program
func (u Unreleased) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "LEAK: %s was garbage-collected while still registered, %s after it was acquired: "+
		"nobody called Close or Release; the collector freed it, not the program",
		describe(u.Record), u.Record.Age.Round(time.Millisecond))
	writeStack(&b, "acquired at", u.Record.Stack)
	return b.String()
}
