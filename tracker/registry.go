package tracker

import (
	"errors"
	"maps"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"
)

// Errors returned by Release, Move and Stop. Each misuse is also recorded in
// the registry, with the stack where it happened.
var (
	ErrReleased   = errors.New("tracker: record already released")
	ErrStopped    = errors.New("tracker: session already stopped")
	ErrZeroHandle = errors.New("tracker: zero Handle")
)

// DefaultMaxMisuse is how many misuse events a registry keeps by default; older
// ones are dropped but still counted.
const DefaultMaxMisuse = 1000

// Registry records who owns which resource. It is safe for concurrent use.
// Records are kept in their owner session, sharded for the root, so tracking
// and releasing cost about a map insert and a map delete under a short lock.
type Registry struct {
	// Read by every Track and Release, written seldom.
	stackEvery atomic.Int64 // StackMode.Every
	root       *Session
	clock      clock // stamps creation times
	creator    atomic.Pointer[func() string]
	creatorSet atomic.Bool  // a creator func was ever set: creators may hold entries
	listing    atomic.Int32 // live is reading records outside their buckets' locks
	stacks     *stackTable
	counts     kindCounts // tracks and releases by kind (counts.go)
	maxMisuse  int
	creators   sync.Map // record id -> string

	// Buckets take ids from here in blocks (bucket.takeIDs); alone in its
	// cache line, so that other cores keep the fields above in theirs.
	_      [64]byte
	nextID atomic.Uint64
	_      [56]byte

	mu          sync.Mutex            // guards the fields below
	sessions    map[*Session]struct{} // live sessions, and stopped ones that still own records
	misuse      []Misuse              // ring of the latest maxMisuse events
	misuseNext  int
	misuseTotal int
	misuseKind  map[MisuseKind]int // every misuse event by kind, kept or dropped

	checks checks // opt-in GC-aware checks, cycle finder and gauges (checks.go)
}

// Option configures a Registry made by New.
type Option func(*Registry)

// WithStacks sets when acquisition stacks are captured. Without it, the mode
// comes from the LEAKCHECK_STACKS environment variable ("off", "always",
// "sample:N"), and is off when that is unset or invalid.
func WithStacks(m StackMode) Option {
	return func(r *Registry) { r.stackEvery.Store(int64(m.Every)) }
}

// WithMaxMisuse sets how many misuse events are kept (older ones are counted
// but dropped).
func WithMaxMisuse(n int) Option {
	return func(r *Registry) { r.maxMisuse = max(n, 1) }
}

// Default is the process-wide registry used by the package-level functions.
// Its stack mode comes from LEAKCHECK_STACKS.
var Default = New()

// New returns an empty registry.
func New(opts ...Option) *Registry {
	r := &Registry{
		maxMisuse: DefaultMaxMisuse,
		stacks:    newStackTable(),
		clock:     newClock(tscInvariant()),
		sessions:  make(map[*Session]struct{}),
	}
	if m, err := ParseStackMode(os.Getenv("LEAKCHECK_STACKS")); err == nil {
		r.stackEvery.Store(int64(m.Every))
	}
	for _, o := range opts {
		o(r)
	}
	r.root = newSession(r, &record{kind: KindSession, label: "root"}, nil)
	r.counts = newKindCounts(len(r.root.buckets))
	r.sessions[r.root] = struct{}{}
	return r
}

// SetCreatorFunc installs f to name the creator of each record tracked from now
// on, such as the test that runs the creating goroutine; nil removes it. It is
// meant for test helpers: f runs on every Track, so keep it cheap.
func (r *Registry) SetCreatorFunc(f func() string) {
	if f == nil {
		r.creator.Store(nil)
		return
	}
	r.creatorSet.Store(true)
	r.creator.Store(&f)
}

// CreatorFunc returns the func installed by SetCreatorFunc, or nil, so that a
// test helper can restore what it replaced.
func (r *Registry) CreatorFunc() func() string {
	if f := r.creator.Load(); f != nil {
		return *f
	}
	return nil
}

// StackMode reports when the registry captures acquisition stacks.
func (r *Registry) StackMode() StackMode { return StackMode{Every: int(r.stackEvery.Load())} }

// SetStackMode changes when stacks are captured from now on, for example from
// a test helper or an admin endpoint.
func (r *Registry) SetStackMode(m StackMode) { r.stackEvery.Store(int64(m.Every)) }

// record is one tracked resource, linked into its owner's bucket. Its owner may
// change (Move); prev, next and every other field are written under the lock
// of the bucket that holds it, and owner is also read without it (lockOwner).
//
// Records released from the root are recycled through their bucket's free
// list, so one record may carry several resources in turn, each under a new
// id: code that reads a record outside its bucket's lock must know it cannot
// be recycled meanwhile (see Handle.release and Registry.live), and a Handle
// checks the id.
type record struct {
	id         uint64
	kind       Kind
	label      string
	owner      atomic.Pointer[Session]
	prev, next *record // bucket list; next also links the free list
	created    int64   // the clock's stamp when tracked
	stack      int32
	home       uint16 // its bucket in the root, fixed for the record's life
	released   bool
	flags      uint8 // recCleanup, recWatch, recCollected (checks.go)
}

func (rec *record) state() State {
	if rec.released {
		return Released
	}
	return Live
}

// Handle refers to one tracked record. The zero Handle is invalid; releasing it
// is recorded as misuse.
//
// A Handle keeps the record's id, kind and label: after release the record's
// memory may carry another resource, and the id tells the two apart.
type Handle struct {
	rec   *record
	reg   *Registry
	id    uint64
	kind  Kind
	label string
}

// Track records that owner now holds a resource of kind, described by label.
// A nil owner is the registry's root. If owner belongs to another registry,
// the record goes there.
func (r *Registry) Track(kind Kind, owner *Session, label string) Handle {
	return r.track(kind, owner, label, 1)
}

// track is Track with skip extra frames hidden from the acquisition stack.
// Everything but the common case is in functions of its own, which keeps
// this one's frame small.
func (r *Registry) track(kind Kind, owner *Session, label string, skip int) Handle {
	if owner == nil {
		owner = r.root
	}
	r = owner.reg
	var stack int32
	if r.stackEvery.Load() != 0 {
		stack = r.sampleStack(skip + 1)
	}
	created := r.clock.stamp()
	home := shardHint() & uint(len(r.root.buckets)-1)
	b := &owner.buckets[home&uint(len(owner.buckets)-1)]
	b.mu.Lock()
	if b.nextID == b.endID {
		b.takeIDs(r)
	}
	id := b.nextID
	b.nextID++
	rec := b.free
	if rec != nil {
		// Only root buckets hold free records, of that bucket, owned by
		// the root.
		b.free = rec.next
		b.nfree--
	} else {
		rec = newRecord(owner, home)
	}
	rec.id = id
	rec.kind = kind
	rec.label = label
	rec.created = created
	rec.stack = stack
	rec.released = false
	rec.flags = 0
	b.link(rec)
	if owner == r.root {
		r.counts.addRoot(kind, uint16(home), tracked)
		b.mu.Unlock()
	} else {
		b.mu.Unlock()
		r.counts.add(kind, uint16(home), tracked)
	}
	if r.creator.Load() != nil {
		r.noteCreator(id)
	}
	if owner.stopped.Load() {
		r.trackedUnderStopped(rec, owner, skip+1)
	}
	return Handle{rec: rec, reg: r, id: id, kind: kind, label: label}
}

// sampleStack captures the acquisition stack when the stack mode asks for
// it, skipping skip frames above sampleStack's caller. It calls
// runtime.Callers itself: every frame between costs the unwinder time.
//
//go:noinline
func (r *Registry) sampleStack(skip int) int32 {
	if !r.StackMode().want() {
		return 0
	}
	var buf [maxStackDepth]uintptr
	n := runtime.Callers(skip+2, buf[:])
	return int32(r.stacks.intern(buf[:n]))
}

// noteCreator names the creator of record id with the creator func.
//
//go:noinline
func (r *Registry) noteCreator(id uint64) {
	if f := r.creator.Load(); f != nil {
		r.creators.Store(id, (*f)())
	}
}

// newRecord allocates a record for owner whose root bucket is home.
func newRecord(owner *Session, home uint) *record {
	rec := &record{home: uint16(home)}
	rec.owner.Store(owner)
	return rec
}

// trackedUnderStopped reports rec, just tracked under owner, which has
// stopped, with the stack above skip frames. rec cannot be recycled
// meanwhile: only records released from the root are.
//
//go:noinline
func (r *Registry) trackedUnderStopped(rec *record, owner *Session, skip int) {
	r.noteStoppedOwner(owner)
	r.recordMisuse(TrackUnderStopped, r.info(rec, owner, Live, time.Now()), skip+1)
}

// maxFree bounds each root bucket's free list: enough to absorb churn, little
// enough that a burst of releases does not pin memory.
const maxFree = 64

// retire marks rec released and hands it to the root, so that a released
// record (and any Handle to it) no longer keeps its former owner session
// reachable. The caller holds the lock of the bucket rec was unlinked from.
func (r *Registry) retire(rec *record) {
	rec.released = true
	if rec.owner.Load() != r.root {
		rec.owner.Store(r.root)
	}
}

// lockOwner locks the bucket holding rec and returns its owner and bucket.
// The owner cannot change while the bucket is locked.
func lockOwner(rec *record) (*Session, *bucket) {
	for {
		o := rec.owner.Load()
		b := o.bucket(rec)
		b.mu.Lock()
		if rec.owner.Load() == o {
			return o, b
		}
		b.mu.Unlock()
	}
}

// Release records that the resource was given back. Releasing twice returns
// ErrReleased; releasing after the owner stopped succeeds; both are recorded
// as misuse.
func (h Handle) Release() error { return h.release(1) }

func (h Handle) release(skip int) error {
	r, rec := h.reg, h.rec
	if rec == nil {
		if r != nil {
			r.recordMisuse(ReleaseZeroHandle, Record{}, skip+1)
		}
		return ErrZeroHandle
	}
	o := rec.owner.Load()
	b := o.bucket(rec)
	b.mu.Lock()
	if rec.owner.Load() != o { // moved meanwhile
		b.mu.Unlock()
		o, b = lockOwner(rec)
	}
	if rec.id != h.id || rec.released {
		return h.releasedTwice(o, b, skip+1)
	}
	b.unlink(rec)
	rec.released = true
	fl, home := rec.flags, rec.home
	if o == r.root {
		r.counts.addRoot(h.kind, home, released)
		// The root never stops, so there is nothing more to report: the
		// record may be recycled, and must not be read after unlocking.
		if fl == 0 && b.nfree < maxFree && r.listing.Load() == 0 {
			rec.label = "" // do not pin the label's memory
			rec.next = b.free
			b.free = rec
			b.nfree++
		}
	} else {
		rec.owner.Store(r.root)
	}
	b.mu.Unlock()
	if o != r.root {
		r.counts.add(h.kind, home, released)
	}
	if fl != 0 || r.creatorSet.Load() || o.stopped.Load() {
		h.afterRelease(o, fl, skip+1)
	}
	return nil
}

// releasedTwice reports the release of a record that is no longer live; the
// caller holds b, the lock of the record's bucket, owned by o.
//
//go:noinline
func (h Handle) releasedTwice(o *Session, b *bucket, skip int) error {
	if h.rec.id == h.id && h.rec.flags&recCollected != 0 {
		// The collector got there first: reported as unreleased.
		b.mu.Unlock()
		return ErrReleased
	}
	info := h.staleInfo(o)
	b.mu.Unlock()
	h.reg.recordMisuse(DoubleRelease, info, skip+1)
	return ErrReleased
}

// afterRelease does what release of h from o leaves to the uncommon cases:
// forget the creator, end the checks of a tracked object (fl holds the
// record's flags), report a release after the owner stopped.
//
//go:noinline
func (h Handle) afterRelease(o *Session, fl uint8, skip int) {
	r := h.reg
	if r.creatorSet.Load() {
		r.creators.Delete(h.id)
	}
	if fl != 0 {
		r.releasedObject(h.rec, o, fl) // not recycled: fl != 0
	}
	if o.stopped.Load() {
		// Not recycled: o is not the root, which never stops.
		r.recordMisuse(ReleaseAfterStop, r.info(h.rec, o, Released, time.Now()), skip+1)
		r.forgetIfEmpty(o)
	}
}

// staleInfo describes h's record for a misuse report when it is no longer
// live; the caller holds the lock of the bucket of h.rec, owned by o. A record
// already recycled for another resource is described from the Handle alone.
func (h Handle) staleInfo(o *Session) Record {
	if h.rec.id != h.id {
		return Record{ID: h.id, Kind: h.kind, Label: h.label, State: Released}
	}
	info := h.reg.info(h.rec, o, Released, time.Now())
	info.Kind, info.Label = h.kind, h.label // a free record's label is cleared
	return info
}

// Move hands the resource to another owner (nil is the root), as when a pool
// lends a connection to a session and takes it back.
func (h Handle) Move(to *Session) error {
	if h.rec == nil {
		return ErrZeroHandle
	}
	if to == nil {
		to = h.reg.root
	}
	for {
		from := h.rec.owner.Load()
		bf, bt := from.bucket(h.rec), to.bucket(h.rec)
		first, second := bf, bt
		if to.rec.id < from.rec.id {
			first, second = bt, bf
		}
		first.mu.Lock()
		if second != first {
			second.mu.Lock()
		}
		unlock := func() {
			if second != first {
				second.mu.Unlock()
			}
			first.mu.Unlock()
		}
		if h.rec.owner.Load() != from {
			unlock()
			continue
		}
		if h.rec.id != h.id || h.rec.released {
			info := h.staleInfo(from)
			unlock()
			h.reg.recordMisuse(DoubleRelease, info, 1)
			return ErrReleased
		}
		if from == to {
			unlock()
			return nil
		}
		bf.unlink(h.rec)
		bt.link(h.rec)
		h.rec.owner.Store(to)
		var info Record
		if to.stopped.Load() {
			info = h.reg.info(h.rec, to, Live, time.Now())
		}
		unlock()
		if from.stopped.Load() {
			h.reg.forgetIfEmpty(from)
		}
		if to.stopped.Load() {
			h.reg.noteStoppedOwner(to)
			info.OwnerStopped = true
			h.reg.recordMisuse(MoveToStopped, info, 1)
		}
		return nil
	}
}

// ID returns the record's id, unique within its registry; 0 for the zero Handle.
func (h Handle) ID() uint64 { return h.id }

// Kind returns the record's kind.
func (h Handle) Kind() Kind { return h.kind }

// Label returns the record's label.
func (h Handle) Label() string { return h.label }

// Live reports whether the record is still tracked.
func (h Handle) Live() bool {
	if h.rec == nil {
		return false
	}
	_, b := lockOwner(h.rec)
	defer b.mu.Unlock()
	return h.rec.id == h.id && !h.rec.released
}

// Owner returns the session that holds the record now; the root once it is
// released.
func (h Handle) Owner() *Session {
	if h.rec == nil {
		return nil
	}
	o, b := lockOwner(h.rec)
	defer b.mu.Unlock()
	if h.rec.id != h.id {
		return h.reg.root
	}
	return o
}

// MisuseCounts returns how many misuse events of each kind the registry has
// seen, including those dropped from Snapshot.Misuse: counters for exporters
// such as tracker/prommetrics.
func (r *Registry) MisuseCounts() map[MisuseKind]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return maps.Clone(r.misuseKind)
}

// recordMisuse keeps a misuse event about rec with the stack of the code that
// caused it, skipping skip frames above recordMisuse's caller.
func (r *Registry) recordMisuse(kind MisuseKind, rec Record, skip int) {
	m := Misuse{
		Kind:    kind,
		Time:    time.Now(),
		Record:  rec,
		StackID: r.stacks.capture(skip + 1),
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.misuseTotal++
	if r.misuseKind == nil {
		r.misuseKind = make(map[MisuseKind]int)
	}
	r.misuseKind[kind]++
	if len(r.misuse) < r.maxMisuse {
		r.misuse = append(r.misuse, m)
		return
	}
	r.misuse[r.misuseNext] = m
	r.misuseNext = (r.misuseNext + 1) % r.maxMisuse
}

// info describes rec, in state, as a Record at time now; owner may be nil for a
// record that has none. The caller passes the state it read under the record's
// bucket lock, and holds that lock unless rec cannot be recycled.
func (r *Registry) info(rec *record, owner *Session, state State, now time.Time) Record {
	created := r.clock.scale().time(rec.created, now)
	out := Record{
		ID:      rec.id,
		Kind:    rec.kind,
		Label:   rec.label,
		Created: created,
		Age:     now.Sub(created),
		State:   state,
		StackID: int(rec.stack),
		Stack:   r.stacks.frames(int(rec.stack)),
	}
	if r.creatorSet.Load() {
		if c, ok := r.creators.Load(rec.id); ok {
			out.Creator = c.(string)
		}
	}
	if owner != nil {
		out.Owner = owner.rec.id
		out.OwnerLabel = owner.rec.label
		out.OwnerStopped = owner.stopped.Load()
		out.Ancestors = owner.ancestors()
	}
	return out
}

// noteStoppedOwner keeps a stopped session that owns records reachable from the
// registry, so its leftovers stay listed.
func (r *Registry) noteStoppedOwner(s *Session) {
	r.mu.Lock()
	r.sessions[s] = struct{}{}
	r.mu.Unlock()
}

// forgetIfEmpty drops a stopped session from the registry once it owns nothing,
// so the registry does not keep it alive.
func (r *Registry) forgetIfEmpty(s *Session) {
	if s.count() > 0 {
		return
	}
	r.mu.Lock()
	delete(r.sessions, s)
	r.mu.Unlock()
}

// allSessions returns the sessions that may own records.
func (r *Registry) allSessions() []*Session {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]*Session, 0, len(r.sessions))
	for s := range r.sessions {
		out = append(out, s)
	}
	return out
}

// rootBuckets is the number of shards of the root session: enough that the
// goroutines running at one time rarely pick the same one (see shardHint),
// and no more than record.home can number.
func rootBuckets() int {
	n := 32
	for n < 16*runtime.GOMAXPROCS(0) && n < 1<<16 {
		n *= 2
	}
	return n
}

// shardHint returns a number that stays the same for the calling goroutine
// at about one stack depth, and most likely differs between goroutines: the
// address of a local variable, hashed. Goroutine stacks do not overlap, so
// goroutines running at once mostly pick different root buckets without any
// shared counter, and each keeps its bucket's lock and free records in its
// core's cache. A hint is only a hint: a goroutine whose stack moved, or two
// that collide, merely share or change buckets.
func shardHint() uint {
	var x byte
	a := uint64(uintptr(unsafe.Pointer(&x))) >> 10
	return uint((a * 0x9e3779b97f4a7c15) >> 48)
}
