package tracker

import (
	"errors"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
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
	stackEvery atomic.Int64 // StackMode.Every
	maxMisuse  int
	stacks     *stackTable
	nextID     atomic.Uint64
	moves      atomic.Uint64 // counts Move calls, so Snapshot can tell when to de-duplicate
	root       *Session
	base       time.Time // creation times are kept as monotonic offsets from base
	creator    atomic.Pointer[func() string]
	creatorSet atomic.Bool // a creator func was ever set: creators may hold entries
	creators   sync.Map    // *record -> string

	mu          sync.Mutex            // guards the fields below
	sessions    map[*Session]struct{} // live sessions, and stopped ones that still own records
	misuse      []Misuse              // ring of the latest maxMisuse events
	misuseNext  int
	misuseTotal int

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
		base:      time.Now(),
		sessions:  make(map[*Session]struct{}),
	}
	if m, err := ParseStackMode(os.Getenv("LEAKCHECK_STACKS")); err == nil {
		r.stackEvery.Store(int64(m.Every))
	}
	for _, o := range opts {
		o(r)
	}
	r.root = newSession(r, &record{kind: KindSession, label: "root"}, nil)
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

// StackMode reports when the registry captures acquisition stacks.
func (r *Registry) StackMode() StackMode { return StackMode{Every: int(r.stackEvery.Load())} }

// SetStackMode changes when stacks are captured from now on, for example from
// a test helper or an admin endpoint.
func (r *Registry) SetStackMode(m StackMode) { r.stackEvery.Store(int64(m.Every)) }

// record is one tracked resource, linked into its owner's bucket. Its owner may
// change (Move); prev, next and released are written under the lock of the
// bucket that holds it.
type record struct {
	id         uint64
	kind       Kind
	label      string
	owner      atomic.Pointer[Session]
	prev, next *record
	created    int64 // nanoseconds since the registry's base
	stack      int32
	released   bool
	flags      uint8 // recCleanup, recWatch, recCollected (checks.go); fits in padding
}

func (rec *record) state() State {
	if rec.released {
		return Released
	}
	return Live
}

// Handle refers to one tracked record. The zero Handle is invalid; releasing it
// is recorded as misuse.
type Handle struct {
	rec *record
	reg *Registry
}

// Track records that owner now holds a resource of kind, described by label.
// A nil owner is the registry's root. If owner belongs to another registry,
// the record goes there.
func (r *Registry) Track(kind Kind, owner *Session, label string) Handle {
	return r.track(kind, owner, label, 1)
}

// track is Track with skip extra frames hidden from the acquisition stack.
func (r *Registry) track(kind Kind, owner *Session, label string, skip int) Handle {
	if owner == nil {
		owner = r.root
	}
	r = owner.reg
	rec := &record{
		id:      r.nextID.Add(1),
		kind:    kind,
		label:   label,
		created: int64(time.Since(r.base)),
	}
	if (StackMode{Every: int(r.stackEvery.Load())}).want() {
		rec.stack = int32(r.stacks.capture(skip + 1))
	}
	if f := r.creator.Load(); f != nil {
		r.creators.Store(rec, (*f)())
	}
	rec.owner.Store(owner)
	b := owner.bucket(rec.id)
	b.mu.Lock()
	b.link(rec)
	b.mu.Unlock()
	if owner.stopped.Load() {
		r.noteStoppedOwner(owner)
		r.recordMisuse(TrackUnderStopped, rec, owner, Live, 1)
	}
	return Handle{rec: rec, reg: r}
}

// retire marks rec released and hands it to the root, so that a released
// record (and any Handle to it) no longer keeps its former owner session
// reachable. The caller holds the lock of the bucket rec was unlinked from.
func (r *Registry) retire(rec *record) {
	rec.released = true
	rec.owner.Store(r.root)
}

// lockOwner locks the bucket holding rec and returns its owner and bucket. The
// owner cannot change while the bucket is locked.
func lockOwner(rec *record) (*Session, *bucket) {
	for {
		o := rec.owner.Load()
		b := o.bucket(rec.id)
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
func (h Handle) Release() error {
	if h.rec == nil {
		if h.reg != nil {
			h.reg.recordMisuse(ReleaseZeroHandle, &record{}, nil, "", 1)
		}
		return ErrZeroHandle
	}
	return h.release(1)
}

func (h Handle) release(skip int) error {
	o, b := lockOwner(h.rec)
	if h.rec.released {
		collected := h.rec.flags&recCollected != 0
		b.mu.Unlock()
		if !collected { // the collector got there first: reported as unreleased
			h.reg.recordMisuse(DoubleRelease, h.rec, o, Released, skip+1)
		}
		return ErrReleased
	}
	b.unlink(h.rec)
	h.reg.retire(h.rec)
	fl := h.rec.flags
	b.mu.Unlock()
	if fl != 0 {
		h.reg.releasedObject(h.rec, o, fl)
	}
	if h.reg.creatorSet.Load() {
		h.reg.creators.Delete(h.rec)
	}
	if o.stopped.Load() {
		h.reg.recordMisuse(ReleaseAfterStop, h.rec, o, Released, skip+1)
		h.reg.forgetIfEmpty(o)
	}
	return nil
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
	h.reg.moves.Add(1)
	for {
		from := h.rec.owner.Load()
		if from == to {
			return nil
		}
		bf, bt := from.bucket(h.rec.id), to.bucket(h.rec.id)
		first, second := bf, bt
		if to.rec.id < from.rec.id {
			first, second = bt, bf
		}
		first.mu.Lock()
		second.mu.Lock()
		if h.rec.owner.Load() != from {
			second.mu.Unlock()
			first.mu.Unlock()
			continue
		}
		if h.rec.released {
			second.mu.Unlock()
			first.mu.Unlock()
			h.reg.recordMisuse(DoubleRelease, h.rec, from, Released, 1)
			return ErrReleased
		}
		bf.unlink(h.rec)
		bt.link(h.rec)
		h.rec.owner.Store(to)
		second.mu.Unlock()
		first.mu.Unlock()
		if from.stopped.Load() {
			h.reg.forgetIfEmpty(from)
		}
		if to.stopped.Load() {
			h.reg.noteStoppedOwner(to)
			h.reg.recordMisuse(MoveToStopped, h.rec, to, Live, 1)
		}
		return nil
	}
}

// ID returns the record's id, unique within its registry; 0 for the zero Handle.
func (h Handle) ID() uint64 {
	if h.rec == nil {
		return 0
	}
	return h.rec.id
}

// Kind returns the record's kind.
func (h Handle) Kind() Kind {
	if h.rec == nil {
		return ""
	}
	return h.rec.kind
}

// Label returns the record's label.
func (h Handle) Label() string {
	if h.rec == nil {
		return ""
	}
	return h.rec.label
}

// Live reports whether the record is still tracked.
func (h Handle) Live() bool {
	if h.rec == nil {
		return false
	}
	_, b := lockOwner(h.rec)
	defer b.mu.Unlock()
	return !h.rec.released
}

// Owner returns the session that holds the record now.
func (h Handle) Owner() *Session {
	if h.rec == nil {
		return nil
	}
	return h.rec.owner.Load()
}

// recordMisuse keeps a misuse event with the stack of the code that caused it,
// skipping skip frames above recordMisuse's caller.
func (r *Registry) recordMisuse(kind MisuseKind, rec *record, owner *Session, state State, skip int) {
	now := time.Now()
	m := Misuse{
		Kind:    kind,
		Time:    now,
		Record:  r.info(rec, owner, state, now),
		StackID: r.stacks.capture(skip + 1),
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.misuseTotal++
	if len(r.misuse) < r.maxMisuse {
		r.misuse = append(r.misuse, m)
		return
	}
	r.misuse[r.misuseNext] = m
	r.misuseNext = (r.misuseNext + 1) % r.maxMisuse
}

// info describes rec, in state, as a Record at time now; owner may be nil for a
// record that has none. The caller passes the state it read under the record's
// bucket lock.
func (r *Registry) info(rec *record, owner *Session, state State, now time.Time) Record {
	created := r.base.Add(time.Duration(rec.created))
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
		if c, ok := r.creators.Load(rec); ok {
			out.Creator = c.(string)
		}
	}
	if owner != nil {
		out.Owner = owner.rec.id
		out.OwnerLabel = owner.rec.label
		out.OwnerStopped = owner.stopped.Load()
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

// rootBuckets is the number of shards of the root session: enough that cores
// rarely meet on one lock.
func rootBuckets() int {
	n := 8
	for n < 4*runtime.GOMAXPROCS(0) {
		n *= 2
	}
	return n
}
