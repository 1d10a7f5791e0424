package tracker

import (
	"errors"
	"runtime"
	"slices"
	"sync"
	"testing"
	"weak"
)

func TestTrackReleaseCountsUnderChurn(t *testing.T) {
	r := New(WithStacks(StacksSampled(8)))
	sessions := []*Session{nil, r.StartSession("a", nil), r.StartSession("b", nil)}
	const workers, perWorker, keep = 16, 2000, 7

	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			owner := sessions[w%len(sessions)]
			var held []Handle
			for i := range perWorker {
				h := r.Track("conn", owner, "x")
				if i%keep == 0 {
					held = append(held, h)
					continue
				}
				if err := h.Release(); err != nil {
					t.Errorf("Release: %v", err)
					return
				}
			}
			// Move some to another owner under churn; they stay live.
			for i, h := range held {
				if i%2 == 0 {
					if err := h.Move(sessions[(w+1)%len(sessions)]); err != nil {
						t.Errorf("Move: %v", err)
					}
				}
			}
		}()
	}
	// Snapshots taken during churn must never list a record twice.
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 20 {
			seen := map[uint64]bool{}
			for _, rec := range r.Snapshot().Records {
				if seen[rec.ID] {
					t.Errorf("record %d listed twice", rec.ID)
				}
				seen[rec.ID] = true
			}
		}
	}()
	wg.Wait()
	<-done

	wantLive := workers*((perWorker+keep-1)/keep) + 2 // + the two sessions
	left := r.Leftovers()
	if !slices.IsSortedFunc(left, func(a, b Record) int { return a.Created.Compare(b.Created) }) {
		t.Fatal("leftovers are not oldest first")
	}
	if got := r.Len(); got != wantLive {
		t.Fatalf("Len() = %d, want %d", got, wantLive)
	}
	byKind := map[Kind]int{}
	for _, rec := range left {
		byKind[rec.Kind]++
	}
	if byKind["conn"] != wantLive-2 || byKind[KindSession] != 2 {
		t.Fatalf("leftovers by kind = %v", byKind)
	}
	if n := r.Snapshot().MisuseTotal; n != 0 {
		t.Fatalf("misuse = %d, want 0", n)
	}
}

func TestSessionStopReportsWhatItOwns(t *testing.T) {
	r := New(WithStacks(StacksAlways))
	parent := r.StartSession("parent", nil)
	child := r.StartSession("child", parent)
	released := parent.Track(KindFile, "closed.log")
	kept := parent.Track(KindFile, "kept.log") // line that the stack must point at
	sock := child.Track(KindSocket, "tcp 127.0.0.1:1 -> 127.0.0.1:2")
	if err := released.Release(); err != nil {
		t.Fatal(err)
	}

	left := parent.Stop()
	got := map[string]Record{}
	for _, rec := range left {
		got[rec.Label] = rec
	}
	if len(left) != 3 {
		t.Fatalf("Stop returned %d records, want 3 (kept.log, child session, its socket): %+v", len(left), left)
	}
	k, ok := got["kept.log"]
	if !ok || k.Owner != parent.ID() || k.OwnerLabel != "parent" || k.Kind != KindFile {
		t.Fatalf("kept.log leftover = %+v", k)
	}
	if len(k.Stack) == 0 || k.Stack[0].Func != "github.com/leakcheck/leakcheck/tracker.TestSessionStopReportsWhatItOwns" {
		t.Fatalf("kept.log stack does not start at the test: %+v", k.Stack)
	}
	if c := got["child"]; c.Kind != KindSession || c.Owner != parent.ID() {
		t.Fatalf("child session leftover = %+v", c)
	}
	if s := got[sock.Label()]; s.Owner != child.ID() {
		t.Fatalf("socket leftover = %+v", s)
	}
	if !child.Stopped() {
		t.Fatal("child not stopped with its parent")
	}

	// Leftovers stay listed under their stopped owners until released.
	live := r.Leftovers()
	if len(live) != 2 {
		t.Fatalf("Leftovers after stop = %+v, want kept.log and the socket", live)
	}
	for _, rec := range live {
		if !rec.OwnerStopped {
			t.Errorf("%s: OwnerStopped = false", rec.Label)
		}
	}

	// A late release is misuse but works; the session is then forgotten.
	if err := kept.Release(); err != nil {
		t.Fatal(err)
	}
	if err := sock.Release(); err != nil {
		t.Fatal(err)
	}
	if n := r.Len(); n != 0 {
		t.Fatalf("Len = %d after releasing leftovers, want 0", n)
	}
	snap := r.Snapshot()
	if snap.MisuseTotal != 2 || snap.Misuse[0].Kind != ReleaseAfterStop {
		t.Fatalf("misuse = %+v", snap.Misuse)
	}
}

func TestMisuseIsRecordedNotPanicked(t *testing.T) {
	tests := []struct {
		name    string
		do      func(r *Registry) error
		wantErr error
		want    MisuseKind
	}{
		{"double release", func(r *Registry) error {
			h := r.Track("x", nil, "twice")
			h.Release()
			return h.Release()
		}, ErrReleased, DoubleRelease},
		{"double stop", func(r *Registry) error {
			s := r.StartSession("s", nil)
			s.Stop()
			if s.Stop() != nil {
				return errors.New("second Stop returned records")
			}
			return nil
		}, nil, DoubleStop},
		{"release after owner stopped", func(r *Registry) error {
			s := r.StartSession("s", nil)
			h := s.Track("x", "late")
			s.Stop()
			return h.Release()
		}, nil, ReleaseAfterStop},
		{"track under stopped owner", func(r *Registry) error {
			s := r.StartSession("s", nil)
			s.Stop()
			s.Track("x", "after")
			return nil
		}, nil, TrackUnderStopped},
		{"move to stopped owner", func(r *Registry) error {
			s := r.StartSession("s", nil)
			s.Stop()
			return r.Track("x", nil, "moved").Move(s)
		}, nil, MoveToStopped},
		{"zero handle", func(r *Registry) error {
			return Handle{}.Release()
		}, ErrZeroHandle, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := New()
			err := tt.do(r)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			snap := r.Snapshot()
			if tt.want == "" {
				if snap.MisuseTotal != 0 {
					t.Fatalf("misuse = %+v, want none", snap.Misuse)
				}
				return
			}
			if snap.MisuseTotal != 1 || snap.Misuse[0].Kind != tt.want {
				t.Fatalf("misuse = %+v, want one %s", snap.Misuse, tt.want)
			}
			if len(snap.Misuse[0].Stack) == 0 {
				t.Fatal("misuse has no stack")
			}
		})
	}
}

func TestMisuseRingKeepsNewest(t *testing.T) {
	r := New(WithMaxMisuse(3))
	for i := range 5 {
		h := r.Track("x", nil, string(rune('a'+i)))
		h.Release()
		h.Release()
	}
	snap := r.Snapshot()
	if snap.MisuseTotal != 5 || len(snap.Misuse) != 3 {
		t.Fatalf("total %d kept %d, want 5 and 3", snap.MisuseTotal, len(snap.Misuse))
	}
	var labels string
	for _, m := range snap.Misuse {
		labels += m.Record.Label
	}
	if labels != "cde" {
		t.Fatalf("kept %q, want the newest in order: cde", labels)
	}
}

func TestSetParentReparents(t *testing.T) {
	r := New()
	grand := r.StartSession("grand", nil)
	parent := r.StartSession("parent", grand)
	child := r.StartSession("child", parent)
	if err := child.SetParent(grand); err != nil {
		t.Fatal(err)
	}
	if left := parent.Stop(); len(left) != 0 {
		t.Fatalf("parent leftovers after reparenting = %+v", left)
	}
	if child.Parent() != grand || child.Stopped() {
		t.Fatal("child not under grandparent, or stopped with old parent")
	}
	if got := grand.Children(); len(got) != 1 || got[0] != child {
		t.Fatalf("grand.Children() = %v", got)
	}
}

func TestStackModes(t *testing.T) {
	tests := []struct {
		in   string
		want StackMode
		bad  bool
	}{
		{"off", StacksOff, false},
		{"", StacksOff, false},
		{"always", StacksAlways, false},
		{"sample:64", StacksSampled(64), false},
		{"sample:1", StacksAlways, false},
		{"sample:0", StacksOff, true},
		{"sample:x", StacksOff, true},
		{"sometimes", StacksOff, true},
	}
	for _, tt := range tests {
		got, err := ParseStackMode(tt.in)
		if (err != nil) != tt.bad || got != tt.want {
			t.Errorf("ParseStackMode(%q) = %v, %v; want %v, error %v", tt.in, got, err, tt.want, tt.bad)
		}
		if !tt.bad && tt.in != "" {
			if back, _ := ParseStackMode(got.String()); back != got {
				t.Errorf("%v does not round-trip through String", got)
			}
		}
	}

	t.Setenv("LEAKCHECK_STACKS", "sample:4")
	r := New()
	if r.StackMode() != StacksSampled(4) {
		t.Fatalf("mode from env = %v", r.StackMode())
	}
	withStacks := 0
	for range 4000 {
		if r.Track("x", nil, "").rec.stack != 0 {
			withStacks++
		}
	}
	// One in four, binomial: 1000 ± 5 sd (sd ≈ 27).
	if withStacks < 860 || withStacks > 1140 {
		t.Fatalf("sample:4 captured %d of 4000 stacks", withStacks)
	}
	if got := New(WithStacks(StacksOff)).StackMode(); got != StacksOff {
		t.Fatalf("option does not override env: %v", got)
	}
}

func TestStacksAreStoredOnce(t *testing.T) {
	r := New(WithStacks(StacksAlways))
	var hs []Handle
	for range 100 {
		hs = append(hs, r.Track("x", nil, "same line"))
	}
	ids := map[int32]bool{}
	for _, h := range hs {
		ids[h.rec.stack] = true
	}
	if len(ids) != 1 || len(r.stacks.all) != 1 {
		t.Fatalf("100 tracks from one line gave stack ids %v and %d stored stacks", ids, len(r.stacks.all))
	}
}

func TestCreatorFunc(t *testing.T) {
	r := New()
	if r.CreatorFunc() != nil {
		t.Fatal("a new registry has a creator func")
	}
	r.SetCreatorFunc(func() string { return "TestCreatorFunc" })
	if f := r.CreatorFunc(); f == nil || f() != "TestCreatorFunc" {
		t.Fatal("CreatorFunc does not return the func set")
	}
	h := r.Track("x", nil, "")
	r.SetCreatorFunc(nil)
	r.Track("x", nil, "no creator")
	recs := r.Leftovers()
	if recs[0].Creator != "TestCreatorFunc" || recs[1].Creator != "" {
		t.Fatalf("creators = %q, %q", recs[0].Creator, recs[1].Creator)
	}
	h.Release()
	if _, ok := r.creators.Load(h.id); ok {
		t.Fatal("creator kept after release")
	}
}

// A handle kept after release must not keep its former owner reachable: the
// FAQ's "extra references" would otherwise be the tracker's own.
func TestReleasedHandleDoesNotRetainOwner(t *testing.T) {
	r := New()
	s := r.StartSession("short-lived", nil)
	h := s.Track(KindFile, "x")
	h.Release()
	gone := weak.Make(s)
	s.Stop()
	s = nil
	for range 5 {
		runtime.GC()
		if gone.Value() == nil {
			break
		}
	}
	if gone.Value() != nil {
		t.Fatal("a stopped session stays reachable through a released Handle")
	}
	if h.Live() {
		t.Fatal("released handle reports live")
	}
	if err := h.Release(); !errors.Is(err, ErrReleased) {
		t.Fatalf("second release: %v", err)
	}
}

// A released record is recycled for the next resource. The stale Handle must
// see that its resource is gone: releasing or moving it again is misuse that
// names the old resource, and leaves the new one alone.
func TestStaleHandleAfterRecycling(t *testing.T) {
	r := New()
	s := r.StartSession("s", nil)
	var old, cur Handle
	for range 100 { // the same goroutine reuses its bucket's free record
		old = r.Track(KindFile, nil, "old")
		if err := old.Release(); err != nil {
			t.Fatal(err)
		}
		cur = r.Track(KindSocket, nil, "new")
		if cur.rec == old.rec {
			break
		}
		cur.Release()
	}
	if cur.rec != old.rec {
		t.Fatal("released records are not recycled")
	}
	if old.Live() || !cur.Live() {
		t.Fatalf("Live: old %v, new %v", old.Live(), cur.Live())
	}
	if old.ID() == cur.ID() || old.Label() != "old" || old.Kind() != KindFile || old.Owner() != r.root {
		t.Fatalf("stale handle: id %d (new %d), %s %q, owner %v", old.ID(), cur.ID(), old.Kind(), old.Label(), old.Owner())
	}
	if err := old.Release(); !errors.Is(err, ErrReleased) {
		t.Fatalf("stale Release: %v", err)
	}
	if err := old.Move(s); !errors.Is(err, ErrReleased) {
		t.Fatalf("stale Move: %v", err)
	}
	if !cur.Live() || cur.Owner() != r.root {
		t.Fatal("a stale handle released or moved the record's new resource")
	}
	snap := r.Snapshot()
	if snap.MisuseTotal != 2 {
		t.Fatalf("misuse = %+v, want two double releases", snap.Misuse)
	}
	for _, m := range snap.Misuse {
		if m.Kind != DoubleRelease || m.Record.ID != old.ID() || m.Record.Label != "old" || m.Record.Kind != KindFile {
			t.Fatalf("misuse %+v does not name the old resource", m)
		}
	}
	if len(snap.Records) != 2 || snap.Records[1].ID != cur.ID() || snap.Records[1].Label != "new" {
		t.Fatalf("records = %+v, want the session and the new socket", snap.Records)
	}
	if err := cur.Release(); err != nil {
		t.Fatal(err)
	}
}

// Stale handles released concurrently with churn on the same buckets never
// touch another resource: the counts stay exact and every stale release is
// reported.
func TestStaleReleasesUnderChurn(t *testing.T) {
	r := New()
	const workers, rounds = 8, 3000
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var stale []Handle
			for i := range rounds {
				h := r.Track("conn", nil, "x")
				if i%3 == 0 && len(stale) > 0 {
					if err := stale[len(stale)-1].Release(); !errors.Is(err, ErrReleased) {
						t.Errorf("stale release: %v", err)
					}
					stale = stale[:len(stale)-1]
				}
				if err := h.Release(); err != nil {
					t.Errorf("release: %v", err)
				}
				stale = append(stale, h)
			}
		}()
	}
	wg.Wait()
	if n := r.Len(); n != 0 {
		t.Fatalf("Len = %d, want 0", n)
	}
	if got, want := r.Snapshot().MisuseTotal, workers*((rounds-1)/3); got != want {
		t.Fatalf("misuse = %d, want %d", got, want)
	}
}

// Tracking and releasing under the root does not allocate once records are
// recycled: the budget is one allocation at most.
func TestTrackReleaseDoesNotAllocate(t *testing.T) {
	r := New(WithStacks(StacksOff))
	if n := testing.AllocsPerRun(1000, func() { r.Track(KindSocket, nil, "conn").Release() }); n != 0 {
		t.Fatalf("Track+Release allocates %v times", n)
	}
}

// Each bucket's list is newest first; mergeRuns must put every run in order,
// including one disturbed by a concurrent track or a move, and merge them.
func TestMergeRuns(t *testing.T) {
	ids := []uint64{
		9, 5, 1, // a bucket, newest first
		8, 2, 6, // disturbed: not in any order
		7, 5, // a record moved during the copy is seen twice
	}
	recs := make([]liveRef, len(ids))
	for i, id := range ids {
		recs[i].id = id
	}
	runs := []liveRun{{0, 3, 0}, {3, 6, 1}, {6, 8, 2}}
	var got []uint64
	var owners []int32
	mergeRuns(recs, runs, func(ref liveRef, owner int32) {
		got = append(got, ref.id)
		owners = append(owners, owner)
	})
	if want := []uint64{1, 2, 5, 5, 6, 7, 8, 9}; !slices.Equal(got, want) {
		t.Fatalf("merged %v, want %v", got, want)
	}
	if want := []int32{0, 1}; !slices.Equal(owners[:2], want) || owners[len(owners)-1] != 0 {
		t.Fatalf("owners %v do not follow their runs", owners)
	}
}
