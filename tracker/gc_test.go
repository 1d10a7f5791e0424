package tracker

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// gcUntil runs the collector and waits for cleanups, which run
// asynchronously, until cond holds or five seconds pass.
func gcUntil(t *testing.T, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		runtime.GC()
		time.Sleep(time.Millisecond)
	}
}

// gcSettle runs a few collections and gives cleanups time to run, for
// control cases that must produce nothing.
func gcSettle() {
	for range 3 {
		runtime.GC()
		time.Sleep(5 * time.Millisecond)
	}
}

// objectEntries counts the registry's per-object entries (cleanups, weak
// pointers) not yet resolved.
func objectEntries(r *Registry) int {
	n := 0
	r.checks.objects.Range(func(any, any) bool { n++; return true })
	return n
}

// openAndForget opens path tracked under owner and drops the *File without
// closing it: the FAQ's forgotten filehandle.
//
//go:noinline
func openAndForget(t *testing.T, r *Registry, owner *Session, path string) {
	f, err := r.Open(owner, path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Stat(); err != nil {
		t.Fatal(err)
	}
}

//go:noinline
func openAndClose(t *testing.T, r *Registry, owner *Session, path string) {
	f, err := r.Open(owner, path)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
}

func tempFile(t *testing.T) string {
	path := filepath.Join(t.TempDir(), "app.log")
	if err := os.WriteFile(path, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// FAQ "Extra filehandle references", the other way round: a file nobody
// closed. Go closes it from a cleanup when the *os.File is collected, which
// hides the leak; the tracker reports it.
func TestUnreleasedFileIsReported(t *testing.T) {
	r := New(WithCleanups(true), WithStacks(StacksAlways))
	s := r.StartSession("reader", nil)
	path := tempFile(t)
	var mu sync.Mutex
	var hooked []Unreleased
	r.OnUnreleased(func(u Unreleased) {
		mu.Lock()
		hooked = append(hooked, u)
		mu.Unlock()
	})

	openAndForget(t, r, s, path)
	gcUntil(t, func() bool { _, n := r.Unreleased(); return n == 1 }, "the forgotten file to be collected")

	snap := r.Snapshot()
	if len(snap.Unreleased) != 1 || snap.UnreleasedTotal != 1 {
		t.Fatalf("unreleased = %+v (total %d), want one", snap.Unreleased, snap.UnreleasedTotal)
	}
	u := snap.Unreleased[0]
	rec := u.Record
	if rec.Kind != KindFile || rec.Label != path || rec.Owner != s.ID() || rec.OwnerLabel != "reader" || rec.State != Collected {
		t.Fatalf("unreleased record = %+v", rec)
	}
	if rec.Age <= 0 || u.Collected.Before(rec.Created) {
		t.Fatalf("age %v, created %v, collected %v", rec.Age, rec.Created, u.Collected)
	}
	if len(rec.Stack) == 0 || rec.Stack[0].Func != "github.com/leakcheck/leakcheck/tracker.openAndForget" {
		t.Fatalf("acquisition stack does not start where the file was opened: %+v", rec.Stack)
	}
	if _, ok := snap.StackTable[rec.StackID]; !ok {
		t.Fatal("the record's stack is not in the snapshot's stack table")
	}
	msg := u.String()
	for _, want := range []string{
		`LEAK: file "` + path + `"`, `of session "reader"`,
		"garbage-collected while still registered", "nobody called Close or Release",
		"acquired at:", "tracker.openAndForget",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("message lacks %q:\n%s", want, msg)
		}
	}
	// The record is closed: not live, not a leftover of its owner.
	if n := r.Len(); n != 1 {
		t.Fatalf("Len = %d, want only the session", n)
	}
	if left := s.Stop(); len(left) != 0 {
		t.Fatalf("leftovers = %+v; the collected file is not one", left)
	}
	if n := objectEntries(r); n != 0 {
		t.Fatalf("%d object entries left", n)
	}
	mu.Lock()
	if len(hooked) != 1 || hooked[0].Record.ID != rec.ID {
		t.Fatalf("OnUnreleased saw %+v", hooked)
	}
	mu.Unlock()
	data, err := json.Marshal(snap)
	if err != nil || !strings.Contains(string(data), `"state":"collected"`) || !strings.Contains(string(data), `"unreleased_total":1`) {
		t.Fatalf("JSON lacks the finding: %s, %v", data, err)
	}
}

func TestUnreleasedControls(t *testing.T) {
	path := tempFile(t)

	t.Run("closed file", func(t *testing.T) {
		r := New(WithCleanups(true))
		s := r.StartSession("reader", nil)
		openAndClose(t, r, s, path)
		gcSettle()
		if _, n := r.Unreleased(); n != 0 {
			t.Fatalf("%d unreleased for a closed file", n)
		}
		if n := objectEntries(r); n != 0 {
			t.Fatalf("Close left %d object entries: the cleanup was not cancelled", n)
		}
		if m := r.Snapshot().MisuseTotal; m != 0 {
			t.Fatalf("misuse = %d", m)
		}
	})

	t.Run("cleanups off", func(t *testing.T) {
		// Without cleanups the forgotten file stays registered: a leftover.
		r := New()
		s := r.StartSession("reader", nil)
		openAndForget(t, r, s, path)
		gcSettle()
		if _, n := r.Unreleased(); n != 0 {
			t.Fatalf("%d unreleased with cleanups off", n)
		}
		if left := s.Stop(); len(left) != 1 || left[0].Kind != KindFile {
			t.Fatalf("leftovers = %+v, want the file", left)
		}
	})
}

type wheel struct {
	name  string
	buf   []byte
	owner *Session
}

//go:noinline
func trackWheel(r *Registry, owner *Session, release bool) Handle {
	w := &wheel{name: "rw", buf: make([]byte, 64)}
	h := TrackObject(r, w, KindWheel, owner, "wheel 1")
	if release {
		h.Release()
	}
	return h
}

func TestTrackObject(t *testing.T) {
	r := New() // no registry option: TrackObject opts in by itself
	s := r.StartSession("worker", nil)

	// Released in time: the cleanup is cancelled, nothing is reported.
	trackWheel(r, s, true)
	// Dropped while registered, but the handle is kept: reported anyway,
	// and the late Release is not a double release.
	h := trackWheel(r, s, false)
	gcUntil(t, func() bool { _, n := r.Unreleased(); return n == 1 }, "the wheel to be collected")
	us, _ := r.Unreleased()
	if got := us[0].Record; got.Kind != KindWheel || got.Label != "wheel 1" || got.OwnerLabel != "worker" || got.ID != h.ID() {
		t.Fatalf("unreleased = %+v", got)
	}
	if h.Live() {
		t.Fatal("collected record still live")
	}
	if err := h.Release(); !errors.Is(err, ErrReleased) {
		t.Fatalf("late Release = %v, want ErrReleased", err)
	}
	if m := r.Snapshot().MisuseTotal; m != 0 {
		t.Fatalf("misuse = %d: a release after collection is not a double release", m)
	}
	if n := objectEntries(r); n != 0 {
		t.Fatalf("%d object entries left", n)
	}
	if n := r.Len(); n != 1 {
		t.Fatalf("Len = %d, want the session", n)
	}
}

// A collected leftover of a stopped session lets the registry forget the
// session.
func TestUnreleasedLeftoverOfStoppedSession(t *testing.T) {
	r := New()
	s := r.StartSession("gone", nil)
	trackWheel(r, s, false)
	s.Stop()
	gcUntil(t, func() bool { return r.Len() == 0 }, "the leftover to be collected")
	r.mu.Lock()
	_, held := r.sessions[s]
	r.mu.Unlock()
	if held {
		t.Fatal("the registry still holds the stopped session")
	}
}

//go:noinline
func dialAndForget(t *testing.T, r *Registry, owner *Session, addr string) {
	if _, err := r.Dial(context.Background(), owner, "tcp", addr); err != nil {
		t.Fatal(err)
	}
}

func TestUnreleasedConnAndListener(t *testing.T) {
	r := New(WithCleanups(true))
	s := r.StartSession("client", nil)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	dialAndForget(t, r, s, l.Addr().String())
	func() {
		tl := r.TrackListener(s, mustListen(t))
		_ = tl
	}()
	gcUntil(t, func() bool { _, n := r.Unreleased(); return n == 2 }, "the conn and listener to be collected")
	kinds := map[Kind]int{}
	us, _ := r.Unreleased()
	for _, u := range us {
		kinds[u.Record.Kind]++
	}
	if kinds[KindSocket] != 1 || kinds[KindListener] != 1 {
		t.Fatalf("unreleased kinds = %v", kinds)
	}
}

func mustListen(t *testing.T) net.Listener {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// An unreleased finding keeps the record's creator, so that a test helper can
// attribute it.
func TestUnreleasedKeepsCreator(t *testing.T) {
	r := New(WithCleanups(true))
	r.SetCreatorFunc(func() string { return t.Name() })
	openAndForget(t, r, nil, tempFile(t))
	r.SetCreatorFunc(nil)
	gcUntil(t, func() bool { _, n := r.Unreleased(); return n == 1 }, "the forgotten file to be collected")
	if u, _ := r.Unreleased(); u[0].Record.Creator != t.Name() {
		t.Fatalf("unreleased record's creator = %q, want %q", u[0].Record.Creator, t.Name())
	}
}
