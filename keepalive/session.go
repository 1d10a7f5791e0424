package keepalive

import (
	"cmp"
	"fmt"
	"slices"

	"github.com/leakcheck/leakcheck/tracker"
)

// Lifecycle events the kernel sends to sessions.
const (
	// EvStart is the first event a session handles; its arguments are
	// Spec.Args and the value it gives to Context.Return reaches the parent's
	// EvChild (ChildCreate) handler.
	EvStart = "_start"
	// EvStop is the last event a session handles, when nothing keeps it alive
	// any more or the kernel shuts down. Its Return value reaches the parent's
	// EvChild (ChildLose) handler.
	EvStop = "_stop"
	// EvChild tells a session about its children. Args: op ChildOp, child
	// *Session, value any (the child's _start or _stop Return value; nil for
	// ChildGain).
	EvChild = "_child"
	// EvParent tells a session its parent changed. Args: old, new *Session
	// (nil means the kernel).
	EvParent = "_parent"
)

// ChildOp says what happened to a child session in an EvChild event.
type ChildOp string

// Child operations.
const (
	ChildCreate ChildOp = "create" // the child was spawned and ran _start
	ChildGain   ChildOp = "gain"   // a grandchild was handed over when its parent stopped
	ChildLose   ChildOp = "lose"   // the child stopped
)

// SessionID identifies a session; it is the id of the session's record in the
// kernel's tracker registry, so reports and ids agree.
type SessionID uint64

// Handler handles one event. It runs on the loop goroutine; c is valid for as
// long as anything refers to it, but its methods act on the loop's state and
// must be called from handlers (or, for Post, from anywhere).
type Handler func(c *Context)

// Spec describes a session to spawn.
type Spec struct {
	// Name labels the session in reports; it need not be unique.
	Name string
	// Heap is the session's state, any Go value, reached as Context.Heap. Only
	// the session's handlers touch it, one at a time, so it needs no lock.
	Heap any
	// Handlers maps event names to handlers.
	Handlers map[string]Handler
	// Default handles events that have no handler of their own (POE's
	// _default), lifecycle events included; Context.Event holds the name.
	Default Handler
	// Args are the arguments of the _start event.
	Args []any
}

type sessionState uint8

const (
	sessionStarting sessionState = iota // spawned from outside; _start queued
	sessionRunning
	sessionStopping // _stop and the handover to the parent are under way
	sessionStopped
)

// Session is a unit of work with its own handlers and heap, owned by a parent
// session or by the kernel. It stays alive while anything could still make it
// run: pending events (as receiver or sender), timers, wheels, acceptors,
// watched handles, child sessions, aliases (see the package doc for the
// alias-only rule) and extra references.
type Session struct {
	k    *Kernel
	id   SessionID
	name string
	ts   *tracker.Session

	// Touched only on the loop goroutine.
	heap     any
	handlers map[string]Handler
	fallback Handler

	// Guarded by k.mu.
	state    sessionState
	parent   *Session // nil: the kernel
	children map[*Session]struct{}
	aliases  []string
	events   int // pending events it will receive
	sent     int // pending events it sent
	pending  map[string]*pendingEvents
	// lastEvent and lastPend cache the pending record used last: most
	// sessions get the same event name over and over.
	lastEvent string
	lastPend  *pendingEvents
	doomed    bool // Kernel.Stop asked for it to stop
	ntimers   int
	timers    *timer // list of its pending timers
	holds     map[holder]struct{}
	extra     map[string]*extraRef
	extraN    int
}

type extraRef struct {
	n int
	h tracker.Handle
}

// refsLocked counts what keeps s alive.
func (s *Session) refsLocked() int {
	return s.events + s.sent + s.ntimers + len(s.holds) + len(s.children) + len(s.aliases) + s.extraN
}

// ID returns the session's id.
func (s *Session) ID() SessionID { return s.id }

// Name returns the name the session was spawned with.
func (s *Session) Name() string { return s.name }

// String returns the name and id, as reports show them.
func (s *Session) String() string {
	if s == nil {
		return "kernel"
	}
	return fmt.Sprintf("%q #%d", s.name, s.id)
}

// Kernel returns the kernel that runs the session.
func (s *Session) Kernel() *Kernel { return s.k }

// Tracker returns the session's tracker session: resources tracked under it
// (tracker's Open, Dial, Track...) are the session's, reported when it stops.
func (s *Session) Tracker() *tracker.Session { return s.ts }

// Heap returns the session's heap; call it on the loop goroutine only. It is
// nil once the session has stopped: the kernel lets go of it, as POE destroys
// a stopped session's heap.
func (s *Session) Heap() any { return s.heap }

// Parent returns the session's parent; nil when the kernel is the parent.
func (s *Session) Parent() *Session {
	s.k.mu.Lock()
	defer s.k.mu.Unlock()
	return s.parent
}

// Children returns the session's live children, oldest first.
func (s *Session) Children() []*Session {
	s.k.mu.Lock()
	defer s.k.mu.Unlock()
	return s.childrenLocked()
}

func (s *Session) childrenLocked() []*Session {
	out := make([]*Session, 0, len(s.children))
	for c := range s.children {
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b *Session) int { return cmp.Compare(a.id, b.id) })
	return out
}

// Aliases returns the names the session answers to.
func (s *Session) Aliases() []string {
	s.k.mu.Lock()
	defer s.k.mu.Unlock()
	return slices.Clone(s.aliases)
}

// Alive reports whether the session has not begun to stop.
func (s *Session) Alive() bool {
	s.k.mu.Lock()
	defer s.k.mu.Unlock()
	return s.state < sessionStopping
}

func (s *Session) stoppedErr() error {
	return fmt.Errorf("%w: %s", ErrSessionStopped, s)
}

// newSessionLocked makes a session under parent (nil: the kernel).
func (k *Kernel) newSessionLocked(spec Spec, parent *Session) *Session {
	name := spec.Name
	if name == "" {
		name = "session"
	}
	pts := k.ts
	if parent != nil {
		pts = parent.ts
	}
	ts := k.reg.StartSession(name, pts)
	s := &Session{
		k:        k,
		id:       SessionID(ts.ID()),
		name:     name,
		ts:       ts,
		heap:     spec.Heap,
		handlers: make(map[string]Handler, len(spec.Handlers)),
		fallback: spec.Default,
		parent:   parent,
	}
	for ev, h := range spec.Handlers {
		if h != nil {
			s.handlers[ev] = h
		}
	}
	if k.heapChecks {
		if spec.Heap != nil {
			ts.SetHeap(spec.Heap)
		}
		ts.SetHeapScheduler(k.scheduleSample)
	}
	k.sessions[s.id] = s
	k.owners[ts.ID()] = struct{}{}
	k.live++
	k.started.Add(1)
	if parent != nil {
		if parent.children == nil {
			parent.children = make(map[*Session]struct{})
		}
		parent.children[s] = struct{}{}
	}
	return s
}

// Spawn starts a top-level session (its parent is the kernel). Its _start
// handler runs on the loop, before any event posted after Spawn returns; use
// Context.Spawn from a handler to start a child and run _start at once. Spawn
// is safe from any goroutine, before or during Run.
func (k *Kernel) Spawn(spec Spec) (*Session, error) {
	k.mu.Lock()
	if k.state >= kernelStopping {
		k.mu.Unlock()
		return nil, ErrKernelStopped
	}
	s := k.newSessionLocked(spec, nil)
	c := &Context{Kernel: k, Session: s, Event: EvStart, Args: spec.Args, kind: eventStart}
	k.enqueueLocked(c, false)
	wake := k.wakeLocked()
	k.mu.Unlock()
	if wake {
		k.signal()
	}
	return s, nil
}

// lifecycle dispatches a kernel event to s at once and returns its Return value.
func (k *Kernel) lifecycle(s, sender *Session, event string, args ...any) any {
	c := &Context{Kernel: k, Session: s, Sender: sender, Event: event, Args: args}
	k.invoke(c)
	return c.ret
}

// stop ends s in POE's order: its children go to its parent (the parent's
// _child gain, the child's _parent), then s gets _stop, then its parent
// _child lose with _stop's Return value; what s still holds is then released
// and reported.
func (k *Kernel) stop(s *Session) {
	k.mu.Lock()
	if s.state >= sessionStopping {
		k.mu.Unlock()
		return
	}
	started := s.state == sessionRunning
	s.state = sessionStopping
	parent := s.parent
	k.mu.Unlock()

	k.handOverChildren(s, parent, true)
	var ret any
	if started {
		ret = k.lifecycle(s, nil, EvStop)
	}
	// Children spawned by _stop itself go to the parent too, without
	// events: s is past telling anyone.
	k.handOverChildren(s, parent, false)
	if parent != nil {
		k.mu.Lock()
		delete(parent.children, s)
		k.mu.Unlock()
		k.lifecycle(parent, nil, EvChild, ChildLose, s, ret)
	}

	k.releaseDrained(s)
	held := s.ts.Owned()
	k.detach(s, parent).release(k)
	k.mu.Lock()
	left := s.ts.Stop() // under the lock: a heap check at Stop may walk into the kernel
	if len(left) == 0 {
		delete(k.owners, s.ts.ID())
	}
	k.mu.Unlock()
	if k.heapChecks {
		s.ts.SetHeapScheduler(nil)
		s.ts.SetHeap(nil)
	}
	s.heap, s.handlers, s.fallback = nil, nil, nil
	k.stopped.Add(1)
	if k.onLeftover != nil && len(held) > 0 {
		k.onLeftover(s, held)
	}
}

// handOverChildren moves the children of the stopping s to parent (to the
// kernel when parent is nil), with their tracker owners. With notify, each
// move is told as POE tells it: _child gain to the parent, _parent to the
// child.
func (k *Kernel) handOverChildren(s, parent *Session, notify bool) {
	pts := k.ts
	if parent != nil {
		pts = parent.ts
	}
	k.mu.Lock()
	kids := s.childrenLocked()
	for _, ch := range kids {
		delete(s.children, ch)
		ch.parent = parent
		if parent != nil {
			if parent.children == nil {
				parent.children = make(map[*Session]struct{})
			}
			parent.children[ch] = struct{}{}
		}
	}
	k.mu.Unlock()
	for _, ch := range kids {
		ch.ts.SetParent(pts)
		if !notify {
			continue
		}
		if parent != nil {
			k.lifecycle(parent, nil, EvChild, ChildGain, ch, nil)
		}
		k.lifecycle(ch, nil, EvParent, s, parent)
	}
}

// releaseDrained releases the records of s's event names that drained
// during the current batch: they hold nothing.
func (k *Kernel) releaseDrained(s *Session) {
	k.mu.Lock()
	defer k.mu.Unlock()
	s.lastPend = nil
	for name, p := range s.pending {
		if p.n == 0 {
			delete(s.pending, name)
			p.h.Release()
		}
	}
}

// letGo is what a stopping session still held when the kernel let go of
// it: records to release, queued events to drop, holders to shut down.
type letGo struct {
	rel    []tracker.Handle
	queued []*Context
	holds  []holder
}

// detach takes from the kernel everything that keeps s alive (timers,
// queued events, pending event records, aliases, extra references), marks
// it stopped and returns what must be let go outside the lock.
func (k *Kernel) detach(s, parent *Session) letGo {
	k.mu.Lock()
	defer k.mu.Unlock()
	var st letGo
	for t := s.timers; t != nil; t = s.timers {
		k.timers.remove(t.idx)
		k.forgetTimerLocked(t)
		st.rel = append(st.rel, t.h)
	}
	if s.events > 0 {
		st.queued = k.queue.extract(func(c *Context) bool { return c.Session == s })
		for _, c := range st.queued {
			k.settleLocked(c)
		}
	}
	for name, p := range s.pending {
		delete(s.pending, name)
		st.rel = append(st.rel, p.h)
	}
	for h := range s.holds {
		st.holds = append(st.holds, h)
	}
	for _, a := range s.aliases {
		delete(k.aliases, a)
	}
	s.aliases = nil
	for _, e := range s.extra {
		st.rel = append(st.rel, e.h)
	}
	k.extra -= s.extraN
	s.extra, s.extraN = nil, 0
	s.state = sessionStopped
	k.live--
	delete(k.sessions, s.id)
	k.gcLocked(parent)
	return st
}

// release lets go of what detach took, outside the kernel's lock.
func (st letGo) release(k *Kernel) {
	for _, h := range st.rel {
		h.Release()
	}
	for _, c := range st.queued {
		if c.src != nil {
			c.src.settled()
		}
		k.drop(c)
	}
	for _, h := range st.holds {
		h.shutdown()
	}
}

// refcount changes s's extra reference count under tag by delta (+1 or -1).
func (k *Kernel) refcount(to any, tag string, delta int) (int, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	s, err := k.resolveLocked(to)
	if err == nil && s.state >= sessionStopping {
		err = s.stoppedErr()
	}
	if err != nil {
		return 0, err
	}
	e := s.extra[tag]
	if delta > 0 {
		if e == nil {
			if s.extra == nil {
				s.extra = make(map[string]*extraRef)
			}
			e = &extraRef{h: k.reg.Track(KindRefcount, s.ts, tag)}
			s.extra[tag] = e
		}
		e.n++
		s.extraN++
		k.extra++
		return e.n, nil
	}
	if e == nil {
		return 0, fmt.Errorf("%w: tag %q of %s", ErrRefcount, tag, s)
	}
	e.n--
	s.extraN--
	k.extra--
	n := e.n
	if n == 0 {
		delete(s.extra, tag)
		e.h.Release()
	}
	k.gcLocked(s)
	if len(k.gcq) > 0 && k.wakeLocked() {
		k.signal()
	}
	return n, nil
}

// Stop stops the session to names at once, whatever still keeps it alive, as
// POE's terminal signals do: its children are handed to its parent, it gets
// _stop, its parent gets _child lose, and the events, timers, wheels,
// acceptors, watched handles, aliases and extra references it held are
// released and reported (see WithLeftoverFunc). The stop happens on the loop
// after the running handler returns. Safe from any goroutine.
func (k *Kernel) Stop(to any) error {
	k.mu.Lock()
	s, err := k.resolveLocked(to)
	if err == nil && s.state >= sessionStopping {
		err = s.stoppedErr()
	}
	if err != nil {
		k.mu.Unlock()
		return err
	}
	s.doomed = true
	k.gcq = append(k.gcq, s)
	wake := k.wakeLocked()
	k.mu.Unlock()
	if wake {
		k.signal()
	}
	return nil
}

// RefcountIncrement raises the extra reference count of the session to names
// under tag, keeping it alive until a matching RefcountDecrement, as code
// outside the loop does while it may still post to the session. It returns
// the tag's new count. Safe from any goroutine.
func (k *Kernel) RefcountIncrement(to any, tag string) (int, error) {
	return k.refcount(to, tag, +1)
}

// RefcountDecrement lowers the count RefcountIncrement raised; at zero the
// tag is gone, and the session stops if nothing else keeps it alive.
// Decrementing a tag at zero is ErrRefcount.
func (k *Kernel) RefcountDecrement(to any, tag string) (int, error) {
	return k.refcount(to, tag, -1)
}
