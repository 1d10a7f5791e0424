package tracker

import (
	"cmp"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Session is an owner of resources: a connection handler, a worker, a keepalive
// session. A session is itself a tracked record (kind "session") owned by its
// parent. Stopping it reports what it still owns.
type Session struct {
	reg     *Registry
	rec     *record
	buckets []bucket
	stopped atomic.Bool

	mu       sync.Mutex // guards parent, children, stopTime, heap and heapRun
	parent   *Session
	children map[*Session]struct{}
	stopTime time.Time
	heap     any          // see SetHeap (heap.go)
	heapRun  func(func()) // see SetHeapScheduler (heap.go)
	// lineage is what ancestors returned when s stopped and let go of its
	// parent: ids only, so a stopped session keeps no session reachable.
	lineage []uint64
}

// bucket is one shard of a session's records: a doubly linked list, so adding
// and removing cost a few pointer writes. Root buckets also keep a short list
// of released records to recycle, so that churn does not allocate. It is
// padded so neighbouring locks do not share a cache line.
type bucket struct {
	mu     sync.Mutex
	head   *record
	free   *record // released records, linked by next (root buckets only)
	n      int
	nfree  int
	nextID uint64 // the next of the ids the bucket took, up to endID
	endID  uint64
	_      [8]byte
}

// idBlock is how many ids a bucket takes at once from the registry's counter.
// Ids stay unique and rise within a bucket, and Track pays for a shared
// atomic counter once in idBlock times: under its bucket's lock, that
// serializing instruction cost a quarter of a Track and Release.
const idBlock = 64

// takeIDs takes the next block of ids for b; the caller holds b.mu.
func (b *bucket) takeIDs(r *Registry) {
	end := r.nextID.Add(idBlock) + 1
	b.nextID, b.endID = end-idBlock, end
}

// link adds rec to the bucket; the caller holds mu.
func (b *bucket) link(rec *record) {
	rec.prev, rec.next = nil, b.head
	if b.head != nil {
		b.head.prev = rec
	}
	b.head = rec
	b.n++
}

// unlink removes rec from the bucket; the caller holds mu.
func (b *bucket) unlink(rec *record) {
	if rec.prev != nil {
		rec.prev.next = rec.next
	} else {
		b.head = rec.next
	}
	if rec.next != nil {
		rec.next.prev = rec.prev
	}
	rec.prev, rec.next = nil, nil
	b.n--
}

// each calls fn for every record in the bucket under its lock.
func (b *bucket) each(fn func(*record)) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for rec := b.head; rec != nil; rec = rec.next {
		fn(rec)
	}
}

func newSession(r *Registry, rec *record, parent *Session) *Session {
	n := 1
	if parent == nil {
		n = rootBuckets()
	}
	return &Session{reg: r, rec: rec, parent: parent, buckets: make([]bucket, n)}
}

// bucket returns the bucket of s that holds rec when s owns it: a session has
// one, the root one per shard.
func (s *Session) bucket(rec *record) *bucket {
	return &s.buckets[int(rec.home)&(len(s.buckets)-1)]
}

// ancestors returns the ids of the sessions above s, nearest first, up to
// but not including the registry's root: the chain of owners a report joins
// findings by. Stopped sessions keep their parent, so a stopped owner's
// chain stays whole.
func (s *Session) ancestors() []uint64 {
	var ids []uint64
	for p := s; ; {
		p.mu.Lock()
		parent, lineage := p.parent, p.lineage
		p.mu.Unlock()
		switch {
		case parent == nil: // the root, or a stopped session
			return append(ids, lineage...)
		case parent == s.reg.root:
			return ids
		}
		ids = append(ids, parent.rec.id)
		p = parent
	}
}

// StartSession starts a session owned by parent (nil is the registry's root).
func (r *Registry) StartSession(label string, parent *Session) *Session {
	if parent == nil {
		parent = r.root
	}
	r = parent.reg
	h := r.track(KindSession, parent, label, 1)
	s := newSession(r, h.rec, parent)
	parent.mu.Lock()
	if parent.children == nil {
		parent.children = make(map[*Session]struct{})
	}
	parent.children[s] = struct{}{}
	parent.mu.Unlock()
	r.mu.Lock()
	r.sessions[s] = struct{}{}
	r.mu.Unlock()
	return s
}

// handle returns a Handle to the session's own record, which is never
// recycled: Stop retires it without freeing it.
func (s *Session) handle() Handle {
	return Handle{rec: s.rec, reg: s.reg, id: s.rec.id, kind: s.rec.kind, label: s.rec.label}
}

// ID returns the session's record id; the root's is 0.
func (s *Session) ID() uint64 { return s.rec.id }

// Label returns the label the session was started with.
func (s *Session) Label() string { return s.rec.label }

// Registry returns the registry the session belongs to.
func (s *Session) Registry() *Registry { return s.reg }

// Parent returns the session's current parent; nil for the root and for a
// stopped session, which keeps no reference to its parent.
func (s *Session) Parent() *Session {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.parent
}

// Stopped reports whether Stop has been called.
func (s *Session) Stopped() bool { return s.stopped.Load() }

// Track records that s holds a resource; see Registry.Track.
func (s *Session) Track(kind Kind, label string) Handle {
	return s.reg.track(kind, s, label, 1)
}

// Stop ends the session. Child sessions still running are stopped first and are
// leftovers themselves. Stop returns every resource the session and its children
// still owned, oldest first; those stay registered under their stopped owner
// (see Registry.Leftovers) until released. Stopping twice returns nil and is
// recorded as misuse.
func (s *Session) Stop() []Record {
	if s == s.reg.root {
		return nil
	}
	left := s.stop(time.Now(), 1)
	slices.SortFunc(left, OldestFirst)
	return left
}

func (s *Session) stop(now time.Time, skip int) []Record {
	if !s.stopped.CompareAndSwap(false, true) {
		s.reg.recordMisuse(DoubleStop, s.reg.info(s.rec, s.Parent(), Released, now), skip+1)
		return nil
	}
	s.mu.Lock()
	s.stopTime = now
	children := make([]*Session, 0, len(s.children))
	for c := range s.children {
		children = append(children, c)
	}
	s.mu.Unlock()

	// Collect first, while child sessions are still live: a child still
	// running when its parent stops is a leftover too.
	var left []Record
	s.each(func(rec *record) {
		left = append(left, s.reg.info(rec, s, rec.state(), now))
	})
	for _, c := range children {
		left = append(left, c.stop(now, skip+1)...)
	}

	// The session's own record leaves its parent: it is stopped, not leaked.
	s.mu.Lock()
	parent := s.parent
	s.mu.Unlock()
	if parent != nil {
		pb := parent.bucket(s.rec)
		pb.mu.Lock()
		pb.unlink(s.rec)
		s.reg.retire(s.rec)
		pb.mu.Unlock()
		s.reg.counts.add(KindSession, s.rec.home, released)
		if s.reg.creatorSet.Load() {
			s.reg.creators.Delete(s.rec.id)
		}
		parent.mu.Lock()
		delete(parent.children, s)
		parent.mu.Unlock()
		// A stopped session does not keep its parent reachable; it keeps
		// the ids of its ancestors, for the records it still owns.
		lineage := s.ancestors()
		s.mu.Lock()
		s.parent, s.lineage = nil, lineage
		s.mu.Unlock()
	}
	s.reg.forgetIfEmpty(s)
	s.reg.afterStop(s, now) // opt-in checks (checks.go)
	return left
}

// SetParent moves a running session under another parent (nil is the root), as
// POE hands children to their grandparent when their parent stops.
func (s *Session) SetParent(parent *Session) error {
	if parent == nil {
		parent = s.reg.root
	}
	if s.stopped.Load() {
		return ErrStopped
	}
	old := s.Parent()
	if err := s.handle().Move(parent); err != nil {
		return err
	}
	old.mu.Lock()
	delete(old.children, s)
	old.mu.Unlock()
	parent.mu.Lock()
	if parent.children == nil {
		parent.children = make(map[*Session]struct{})
	}
	parent.children[s] = struct{}{}
	parent.mu.Unlock()
	s.mu.Lock()
	s.parent = parent
	s.mu.Unlock()
	return nil
}

// Children returns the running child sessions.
func (s *Session) Children() []*Session {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*Session, 0, len(s.children))
	for c := range s.children {
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b *Session) int { return cmp.Compare(a.rec.id, b.rec.id) })
	return out
}

// Owned returns the records the session holds directly now, oldest first.
func (s *Session) Owned() []Record {
	now := time.Now()
	var out []Record
	s.each(func(rec *record) {
		out = append(out, s.reg.info(rec, s, rec.state(), now))
	})
	slices.SortFunc(out, OldestFirst)
	return out
}

// count returns how many records the session holds directly.
func (s *Session) count() int {
	n := 0
	for i := range s.buckets {
		b := &s.buckets[i]
		b.mu.Lock()
		n += b.n
		b.mu.Unlock()
	}
	return n
}

// each calls fn for every record the session holds directly, bucket by bucket
// under each bucket's lock.
func (s *Session) each(fn func(*record)) {
	for i := range s.buckets {
		s.buckets[i].each(fn)
	}
}

// OldestFirst orders records by creation time, then id, for slices.SortFunc:
// the order of Leftovers and Stop.
func OldestFirst(a, b Record) int {
	if c := a.Created.Compare(b.Created); c != 0 {
		return c
	}
	return cmp.Compare(a.ID, b.ID)
}
