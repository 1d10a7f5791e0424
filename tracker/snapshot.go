package tracker

import (
	"cmp"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// SchemaVersion is the version of the snapshot JSON written by [Snapshot] and
// [WriteExitSnapshot]. It changes only when a field changes meaning or is removed.
const SchemaVersion = 1

// Snapshot is a consistent-enough picture of a registry at one moment: every live
// record, the misuse seen so far, and the distinct acquisition stacks they refer to.
// Records are copied shard by shard, so a record tracked or released during the
// copy may or may not appear; no record appears twice.
type Snapshot struct {
	Schema  int       `json:"schema"`
	Time    time.Time `json:"time"`
	PID     int       `json:"pid"`
	Program string    `json:"program,omitempty"`
	// Stacks is the level stacks were captured at: "off", "always" or "sample:N".
	Stacks string `json:"stacks"`
	// Records holds every live record, sessions included, oldest first.
	Records []Record `json:"records"`
	// StackTable maps the stack ids used by Records and Misuse to their frames.
	StackTable map[int][]Frame `json:"stack_table,omitempty"`
	// Misuse holds the most recent misuse events (at most MaxMisuse);
	// MisuseTotal counts all of them.
	Misuse      []Misuse `json:"misuse,omitempty"`
	MisuseTotal int      `json:"misuse_total"`

	// Unreleased holds records the garbage collector found unreachable while
	// still registered: nobody released them; the collector did.
	Unreleased []Unreleased `json:"unreleased,omitempty"`
	// UnreleasedTotal counts every unreleased finding, kept or dropped.
	UnreleasedTotal int `json:"unreleased_total,omitempty"`
	// Retained holds released records and stopped sessions still reachable
	// after several garbage collections.
	Retained []Retained `json:"retained,omitempty"`
	// Cycles holds reference cycles found in session heaps.
	Cycles []Cycle `json:"cycles,omitempty"`
	// Gauges holds the sampled sizes of collections, by name.
	Gauges []Gauge `json:"gauges,omitempty"`
}

// Unreleased is a record that was garbage-collected while still registered.
type Unreleased struct {
	Record    Record    `json:"record"`
	Collected time.Time `json:"collected"`
}

// Retained is a released record or stopped session that survived garbage
// collections it should not have: something still refers to it.
type Retained struct {
	Record   Record    `json:"record"`
	Released time.Time `json:"released"`
	// GCs is how many garbage collections it survived after release.
	GCs int `json:"gcs"`
	// Path is what keeps it reachable, root first, as the option
	// WithRetainPaths finds it, e.g. "main.sessions (global)", "map
	// storage (alloc at main.track server.go:41)", ...; PathError says why
	// there is none when the option is on.
	Path      []string `json:"path,omitempty"`
	PathError string   `json:"path_error,omitempty"`
}

// Cycle is one reference cycle, as a readable path that starts and ends at the
// same object, e.g. (*Session "alice").Heap["peer"] -> ... -> (*Session "alice").
type Cycle struct {
	Path []string `json:"path"`
	// Sessions lists the ids of the sessions on the cycle.
	Sessions []uint64 `json:"sessions,omitempty"`
	// Stopped is true when every session on the cycle has stopped, so the
	// cycle is garbage that only the cycle keeps alive.
	Stopped bool `json:"stopped"`
	// Owner and OwnerLabel name the session whose heap holds the cycle: the
	// nearest session at or above where the walk entered it.
	Owner      uint64 `json:"owner,omitempty"`
	OwnerLabel string `json:"owner_label,omitempty"`
	// Ancestors are the ids of the sessions above Owner; see Record.Ancestors.
	Ancestors []uint64 `json:"ancestors,omitempty"`
	// Root is the path by which the walk reached the cycle, e.g.
	// (*Session "worker").Heap["a"]; empty when the cycle starts at the root.
	Root string `json:"root,omitempty"`
}

// Gauge is a sampled series of a collection's size.
type Gauge struct {
	Name       string `json:"name"`
	Owner      uint64 `json:"owner,omitempty"`
	OwnerLabel string `json:"owner_label,omitempty"`
	// Ancestors are the ids of the sessions above Owner; see Record.Ancestors.
	Ancestors []uint64 `json:"ancestors,omitempty"`
	// Auto is true for sizes found by walking session heaps, false for sizes
	// registered with Gauge.
	Auto   bool    `json:"auto,omitempty"`
	Points []Point `json:"points"`
}

// Point is one sample of a series.
type Point struct {
	Time  time.Time `json:"t"`
	Value float64   `json:"v"`
}

// Record describes one tracked resource or session.
type Record struct {
	// ID is unique in the registry. Ids rise with creation among the
	// records one goroutine tracks, not across goroutines: order by Created
	// (OldestFirst) for creation order.
	ID         uint64 `json:"id"`
	Kind       Kind   `json:"kind"`
	Label      string `json:"label,omitempty"`
	Owner      uint64 `json:"owner"`
	OwnerLabel string `json:"owner_label,omitempty"`
	// Ancestors are the ids of the sessions above the owner, nearest
	// first, the registry's root left out, stopped sessions included: who
	// started the owner. A report joins what sessions of one parent leak
	// into one finding.
	Ancestors []uint64  `json:"ancestors,omitempty"`
	Created   time.Time `json:"created"`
	// Age is how long the record had been live when it was captured.
	Age   time.Duration `json:"age_ns"`
	State State         `json:"state"`
	// OwnerStopped is true when the record's owner session has stopped: the
	// record is a leftover for certain, not merely still in use.
	OwnerStopped bool `json:"owner_stopped,omitempty"`
	// Creator names who created the record, when the registry has a creator
	// func (see Registry.SetCreatorFunc).
	Creator string `json:"creator,omitempty"`
	// StackID refers to Snapshot.StackTable; 0 means no stack was captured.
	StackID int `json:"stack,omitempty"`
	// Stack holds the acquisition stack's frames in Go values; it is not
	// encoded, use StackID and the snapshot's StackTable.
	Stack []Frame `json:"-"`
}

// Frame is one frame of a stack: the function, its file and line. It is the
// one frame type of leakcheck: acquisition stacks here, goroutine stacks in
// tracker/stack, and findings' evidence in report all use it. File and Line
// are left out of JSON when unknown.
type Frame struct {
	Func string `json:"func"`
	File string `json:"file,omitempty"`
	Line int    `json:"line,omitempty"`
}

// String formats f as "pkg.Func (file.go:42)", with the file's base name only.
func (f Frame) String() string {
	if f.File == "" {
		return f.Func
	}
	file := f.File
	if i := strings.LastIndexAny(file, `/\`); i >= 0 {
		file = file[i+1:]
	}
	return f.Func + " (" + file + ":" + strconv.Itoa(f.Line) + ")"
}

// MisuseKind names a way of misusing the registry.
type MisuseKind string

// Kinds of misuse the registry records instead of panicking.
const (
	DoubleRelease     MisuseKind = "double-release"
	DoubleStop        MisuseKind = "double-stop"
	ReleaseAfterStop  MisuseKind = "release-after-owner-stopped"
	TrackUnderStopped MisuseKind = "track-under-stopped-owner"
	MoveToStopped     MisuseKind = "move-to-stopped-owner"
	ReleaseZeroHandle MisuseKind = "release-of-zero-handle"
)

// Misuse is one recorded misuse event, with the stack where it happened.
type Misuse struct {
	Kind   MisuseKind `json:"kind"`
	Time   time.Time  `json:"time"`
	Record Record     `json:"record"`
	// StackID refers to Snapshot.StackTable: where the misuse happened.
	StackID int     `json:"stack,omitempty"`
	Stack   []Frame `json:"-"`
}

// Snapshot captures every live record, the misuse seen so far, and the stacks
// they refer to.
func (r *Registry) Snapshot() *Snapshot {
	now := time.Now()
	s := &Snapshot{
		Schema:     SchemaVersion,
		Time:       now,
		PID:        os.Getpid(),
		Program:    filepath.Base(os.Args[0]),
		Stacks:     r.StackMode().String(),
		StackTable: make(map[int][]Frame),
	}
	s.Records = r.live(now, s.StackTable)
	r.mu.Lock()
	s.MisuseTotal = r.misuseTotal
	s.Misuse = make([]Misuse, 0, len(r.misuse))
	s.Misuse = append(s.Misuse, r.misuse[r.misuseNext:]...)
	s.Misuse = append(s.Misuse, r.misuse[:r.misuseNext]...)
	r.mu.Unlock()

	for i, m := range s.Misuse {
		s.Misuse[i].Stack = r.stacks.frames(m.StackID)
		for _, id := range []int{m.StackID, m.Record.StackID} {
			if id != 0 {
				s.StackTable[id] = r.stacks.frames(id)
			}
		}
	}
	r.fillChecks(s)
	return s
}

// Leftovers returns every record still registered, oldest first: resources not
// yet released and sessions not yet stopped. Records whose owner has stopped
// are marked OwnerStopped; they are leftovers for certain. At shutdown every
// one of them is a leak.
func (r *Registry) Leftovers() []Record {
	return r.live(time.Now(), nil)
}

// Len returns how many records are live, sessions included.
func (r *Registry) Len() int {
	n := 0
	for _, s := range r.allSessions() {
		n += s.count()
	}
	return n
}

// live lists every live record, oldest first, and adds the
// stacks they refer to to stacks when it is not nil. Records are read bucket
// by bucket: one tracked or released meanwhile may or may not be listed, and
// one moved meanwhile is listed once.
func (r *Registry) live(now time.Time, stacks map[int][]Frame) []Record {
	// Records listed here are read after their bucket is unlocked: keep
	// released ones from being recycled until the end (see Handle.release).
	r.listing.Add(1)
	defer r.listing.Add(-1)

	sessions := r.allSessions()
	n, nb := 0, 0
	for _, s := range sessions {
		n += s.count()
		nb += len(s.buckets)
	}
	// Records tracked between the count and the copy are listed too; a
	// little room spares a reallocation of the largest slice.
	recs := make([]liveRef, 0, n+n/64+16)
	runs := make([]liveRun, 0, nb)
	for si, s := range sessions {
		for i := range s.buckets {
			b := &s.buckets[i]
			start := len(recs)
			b.mu.Lock()
			for rec := b.head; rec != nil; rec = rec.next {
				recs = append(recs, liveRef{rec.created, rec.id, rec})
			}
			b.mu.Unlock()
			if len(recs) > start {
				runs = append(runs, liveRun{start, len(recs), int32(si)})
			}
		}
	}

	// What every record of one owner shares is computed once.
	type ownerInfo struct {
		id        uint64
		label     string
		stopped   bool
		ancestors []uint64
	}
	owners := make([]ownerInfo, len(sessions))
	for i, s := range sessions {
		owners[i] = ownerInfo{s.rec.id, s.rec.label, s.stopped.Load(), s.ancestors()}
	}
	withCreators := r.creatorSet.Load()
	var frames [][]Frame // by stack id, filled on first use
	scale := r.clock.scale()
	out := make([]Record, len(recs))
	k := 0
	last := uint64(0)
	mergeRuns(recs, runs, func(ref liveRef, owner int32) {
		if ref.id == last {
			return // moved during the copy, and seen in both buckets
		}
		last = ref.id
		rec, o := ref.rec, &owners[owner]
		// Field by field into zeroed memory: zero fields cost nothing.
		x := &out[k]
		k++
		x.ID = ref.id
		x.Kind = rec.kind
		x.Label = rec.label
		x.Owner = o.id
		x.OwnerLabel = o.label
		x.Ancestors = o.ancestors
		x.Created = scale.time(rec.created, now)
		x.Age = now.Sub(x.Created)
		x.State = Live
		x.OwnerStopped = o.stopped
		if withCreators {
			if c, ok := r.creators.Load(ref.id); ok {
				x.Creator = c.(string)
			}
		}
		if id := int(rec.stack); id != 0 {
			x.StackID = id
			if id >= len(frames) {
				frames = append(frames, make([][]Frame, id+1-len(frames))...)
			}
			if frames[id] == nil {
				frames[id] = r.stacks.frames(id)
				if stacks != nil {
					stacks[id] = frames[id]
				}
			}
			x.Stack = frames[id]
		}
	})
	return out[:k]
}

// liveRef is a record as live finds it, with its creation stamp and id
// copied so that ordering does not chase pointers.
type liveRef struct {
	created int64
	id      uint64
	rec     *record
}

// older orders live records oldest first; ids break ties.
func older(a, b liveRef) int {
	if c := cmp.Compare(a.created, b.created); c != 0 {
		return c
	}
	return cmp.Compare(a.id, b.id)
}

// liveRun is one bucket's records in live's list: recs[start:end], owned by
// sessions[owner].
type liveRun struct {
	start, end int
	owner      int32
}

// mergeRuns calls fn for every entry of recs, oldest first. Each run is a
// bucket's list, newest first: nearly so, since a bucket links each record at
// its head. Each run is put oldest first, then the runs are merged, which
// costs far less than sorting the whole.
func mergeRuns(recs []liveRef, runs []liveRun, fn func(ref liveRef, owner int32)) {
	for _, run := range runs {
		rs := recs[run.start:run.end]
		slices.Reverse(rs)
		if !slices.IsSortedFunc(rs, older) {
			// Tracked concurrently, or moved in: rare.
			slices.SortFunc(rs, older)
		}
	}
	// A min-heap of runs, keyed by the next entry of each.
	h := slices.Clone(runs)
	less := func(a, b int) bool { return older(recs[h[a].start], recs[h[b].start]) < 0 }
	down := func(i int) {
		for {
			m, l := i, 2*i+1
			if l < len(h) && less(l, m) {
				m = l
			}
			if l+1 < len(h) && less(l+1, m) {
				m = l + 1
			}
			if m == i {
				return
			}
			h[i], h[m] = h[m], h[i]
			i = m
		}
	}
	for i := len(h)/2 - 1; i >= 0; i-- {
		down(i)
	}
	for len(h) > 0 {
		fn(recs[h[0].start], h[0].owner)
		h[0].start++
		if h[0].start == h[0].end {
			h[0] = h[len(h)-1]
			h = h[:len(h)-1]
		}
		down(0)
	}
}
