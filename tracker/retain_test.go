package tracker

import (
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
	"weak"
)

// retainedLabels returns "kind label" of each retained finding.
func retainedLabels(rs []Retained) []string {
	var out []string
	for _, k := range rs {
		out = append(out, string(k.Record.Kind)+" "+k.Record.Label)
	}
	return out
}

// wheelHolder is a global-like holder, as a daemon keeps in a package
// variable or a long-lived struct.
type wheelHolder struct {
	mu     sync.Mutex
	wheels []*wheel
}

// runWheelSession starts a session that tracks a wheel, shuts the wheel
// down and stops; the holder keeps the wheel when keep is set.
//
//go:noinline
func runWheelSession(r *Registry, holder *wheelHolder, keep bool) {
	s := r.StartSession("worker", nil)
	w := &wheel{name: "rw", buf: make([]byte, 64), owner: s}
	h := TrackObject(r, w, KindWheel, s, "wheel 1")
	if keep {
		holder.mu.Lock()
		holder.wheels = append(holder.wheels, w)
		holder.mu.Unlock()
	}
	h.Release()
	if left := s.Stop(); len(left) != 0 {
		panic("leftovers")
	}
}

// FAQ "Extra wheel references": a wheel the program shut down, kept by a
// holder after its session stopped; as the wheel refers to its session,
// the session is kept too.
func TestRetainedWheel(t *testing.T) {
	r := New(WithRetainCheck(true))
	holder := &wheelHolder{}
	runWheelSession(r, holder, true)

	got := r.CheckRetained()
	labels := retainedLabels(got)
	if len(got) != 2 || labels[0] != "wheel wheel 1" || labels[1] != "session worker" {
		t.Fatalf("retained = %v, want the wheel and, through it, its session", labels)
	}
	w := got[0]
	if w.Record.OwnerLabel != "worker" || w.Record.State != Released || w.GCs != RetainGCs || w.Released.IsZero() {
		t.Fatalf("retained wheel = %+v", w)
	}
	msg := w.String()
	for _, want := range []string{`RETAINED: wheel "wheel 1"`, `of session "worker"`, "was released at", "still reachable after 3 garbage collections"} {
		if !strings.Contains(msg, want) {
			t.Errorf("message lacks %q: %s", want, msg)
		}
	}
	if !strings.Contains(got[1].String(), `RETAINED: session "worker"`) || !strings.Contains(got[1].String(), "was stopped at") {
		t.Errorf("session message: %s", got[1])
	}
	if snap := r.Snapshot(); len(snap.Retained) != 2 {
		t.Fatalf("Snapshot.Retained = %+v", snap.Retained)
	}

	// A second check counts more collections.
	if again := r.CheckRetained(); len(again) != 2 || again[0].GCs != 2*RetainGCs {
		t.Fatalf("second check = %+v", again)
	}

	// Control: the holder lets go; both become garbage.
	holder.mu.Lock()
	holder.wheels = nil
	holder.mu.Unlock()
	if got := r.CheckRetained(); len(got) != 0 {
		t.Fatalf("retained after the holder let go = %v", retainedLabels(got))
	}
	if n, _ := r.Watching(); n != 0 {
		t.Fatalf("%d objects still watched", n)
	}
	if len(r.Snapshot().Retained) != 0 {
		t.Fatal("Snapshot.Retained not updated by the last check")
	}
}

func TestRetainedWheelControl(t *testing.T) {
	r := New(WithRetainCheck(true))
	runWheelSession(r, &wheelHolder{}, false)
	if got := r.CheckRetained(); len(got) != 0 {
		t.Fatalf("retained = %v, want none", retainedLabels(got))
	}
}

// stopAlice starts and stops a session with some activity, and returns it.
//
//go:noinline
func stopAlice(r *Registry) *Session {
	s := r.StartSession("alice", nil)
	s.Track(KindSocket, "tcp").Release()
	s.SetHeap(map[string]any{"greeting": "hello"})
	s.Stop()
	return s
}

// FAQ "Extra session references": a stopped session kept in a slice.
func TestRetainedSession(t *testing.T) {
	r := New(WithRetainCheck(true))
	kept := []*Session{stopAlice(r)}

	got := r.CheckRetained()
	if len(got) != 1 || got[0].Record.Kind != KindSession || got[0].Record.Label != "alice" || got[0].Record.ID != kept[0].ID() {
		t.Fatalf("retained = %+v, want session alice", got)
	}
	if msg := got[0].String(); !strings.Contains(msg, `RETAINED: session "alice"`) || !strings.Contains(msg, "was stopped at") {
		t.Fatalf("message: %s", msg)
	}

	// Control: once the slice lets go, the session is garbage.
	kept = nil
	if got := r.CheckRetained(); len(got) != 0 {
		t.Fatalf("retained after the slice let go = %v", retainedLabels(got))
	}
}

// The registry itself must not keep a stopped session alive: not one that
// owned nothing, not one whose leftovers were released late, not a child.
func TestRegistryDoesNotRetainStoppedSessions(t *testing.T) {
	r := New(WithRetainCheck(true), WithCycleCheck(true), WithStacks(StacksAlways))
	r.SetCreatorFunc(func() string { return "test" })
	var ptrs []weak.Pointer[Session]
	func() {
		plain := stopAlice(r)
		parent := r.StartSession("parent", nil)
		child := r.StartSession("child", parent)
		moved := r.StartSession("moved", nil)
		moved.SetParent(parent)
		h := child.Track(KindFile, "late.log")
		child.Gauge("queue", func() int { return 1 })
		r.SampleGauges()
		parent.Stop() // child and moved stop too; late.log is a leftover
		h.Release()   // released late: the registry forgets child
		ptrs = append(ptrs, weak.Make(plain), weak.Make(parent), weak.Make(child), weak.Make(moved))
	}()
	if got := r.CheckRetained(); len(got) != 0 {
		t.Fatalf("retained = %v; the registry keeps stopped sessions alive", retainedLabels(got))
	}
	for i, p := range ptrs {
		if p.Value() != nil {
			t.Errorf("session %d still reachable", i)
		}
	}
}

// A stopped session that still owns records is a leftover: the registry
// holds it on purpose, so it is not reported as retained.
func TestStoppedOwnerOfLeftoversIsNotRetained(t *testing.T) {
	r := New(WithRetainCheck(true))
	var h Handle
	func() {
		s := r.StartSession("busy", nil)
		h = s.Track(KindFile, "open.log")
		s.Stop()
	}()
	if got := r.CheckRetained(); len(got) != 0 {
		t.Fatalf("retained = %v, want none while the session owns a leftover", retainedLabels(got))
	}
	h.Release()
	h = Handle{} // a Handle refers to its owner: drop it too
	if got := r.CheckRetained(); len(got) != 0 {
		t.Fatalf("retained = %v after the leftover was released", retainedLabels(got))
	}
}

type peerConn struct {
	addr string
	buf  []byte
}

// runConnSession tracks a connection object under a session, releases it,
// and stops the session; capture decides what refers to the connection
// afterwards.
//
//go:noinline
func runConnSession(r *Registry, capture func(c *peerConn)) {
	s := r.StartSession("conn handler", nil)
	c := &peerConn{addr: "10.0.0.7:80", buf: make([]byte, 128)}
	h := TrackObject(r, c, KindSocket, s, "conn 10.0.0.7")
	capture(c)
	h.Release()
	s.Stop()
}

// FAQ "Closures": a timer callback or a stored func captures an object
// after its owner stopped.
func TestRetainedByClosure(t *testing.T) {
	t.Run("pending timer", func(t *testing.T) {
		r := New(WithRetainCheck(true))
		var timer *time.Timer
		runConnSession(r, func(c *peerConn) {
			timer = time.AfterFunc(time.Hour, func() { _ = len(c.buf) })
		})
		got := r.CheckRetained()
		if len(got) != 1 || got[0].Record.Kind != KindSocket || got[0].Record.Label != "conn 10.0.0.7" || got[0].Record.OwnerLabel != "conn handler" {
			t.Fatalf("retained = %v, want the connection", retainedLabels(got))
		}
		timer.Stop()
	})
	t.Run("fired timer", func(t *testing.T) { // control
		r := New(WithRetainCheck(true))
		fired := make(chan struct{})
		runConnSession(r, func(c *peerConn) {
			time.AfterFunc(time.Millisecond, func() { _ = len(c.buf); close(fired) })
		})
		<-fired
		time.Sleep(time.Millisecond) // let the timer goroutine return
		if got := r.CheckRetained(); len(got) != 0 {
			t.Fatalf("retained = %v after the timer fired", retainedLabels(got))
		}
	})
	t.Run("stored func", func(t *testing.T) {
		r := New(WithRetainCheck(true))
		var callbacks []func() int
		runConnSession(r, func(c *peerConn) {
			callbacks = append(callbacks, func() int { return len(c.buf) })
		})
		if got := r.CheckRetained(); len(got) != 1 || got[0].Record.Label != "conn 10.0.0.7" {
			t.Fatalf("retained = %v, want the connection", retainedLabels(got))
		}
		runtime.KeepAlive(callbacks) // only a store follows: keep it live through the check
		// Control: "explicitly undef the variable holding the reference".
		callbacks = nil
		if got := r.CheckRetained(); len(got) != 0 {
			t.Fatalf("retained = %v after the func was dropped", retainedLabels(got))
		}
	})
}

func TestWatch(t *testing.T) {
	r := New() // Watch needs no option
	s := r.StartSession("cache", nil)
	type entry struct {
		key string
		val []byte
	}
	var keep []*entry
	func() {
		a, b := &entry{"a", make([]byte, 32)}, &entry{"b", make([]byte, 32)}
		keep = append(keep, a)
		Watch(r, a, "", s, "evicted a")
		Watch(r, b, "cache-entry", nil, "evicted b")
	}()
	got := r.CheckRetained()
	if len(got) != 1 || got[0].Record.Label != "evicted a" || got[0].Record.Kind != "tracker.entry" ||
		got[0].Record.OwnerLabel != "cache" || got[0].Record.ID == 0 {
		t.Fatalf("retained = %+v, want entry a", got)
	}
	runtime.KeepAlive(keep)
	keep = nil
	if got := r.CheckRetained(); len(got) != 0 {
		t.Fatalf("retained = %v", retainedLabels(got))
	}
}

func TestRetainCheckOffWatchesNothing(t *testing.T) {
	r := New()
	runWheelSession(r, &wheelHolder{}, true)
	if n, _ := r.Watching(); n != 0 {
		t.Fatalf("%d watched with the retain check off", n)
	}
}

func TestWatchListIsBounded(t *testing.T) {
	r := New(WithMaxFindings(2)) // 20 watches at most
	var keep []*peerConn
	for range 50 {
		c := &peerConn{buf: make([]byte, 8)}
		keep = append(keep, c)
		Watch(r, c, "", nil, "x")
	}
	n, dropped := r.Watching()
	if n > 20 || n+dropped != 50 {
		t.Fatalf("watching %d, dropped %d", n, dropped)
	}
	if got := r.CheckRetained(); len(got) > 2 {
		t.Fatalf("%d retained kept, want at most 2", len(got))
	}
	_ = keep
}

// FAQ "Extra filehandle references": a file that was closed but is still
// referenced is not reclaimed.
func TestRetainedClosedFile(t *testing.T) {
	r := New(WithRetainCheck(true))
	s := r.StartSession("logger", nil)
	path := tempFile(t)
	var open []*File // a registry of files the program forgot to prune
	func() {
		f, err := r.Open(s, path)
		if err != nil {
			t.Fatal(err)
		}
		open = append(open, f)
		f.Close()
	}()
	got := r.CheckRetained()
	if len(got) != 1 || got[0].Record.Kind != KindFile || got[0].Record.Label != path || got[0].Record.OwnerLabel != "logger" {
		t.Fatalf("retained = %v, want the closed file", retainedLabels(got))
	}
	runtime.KeepAlive(open)
	open = nil
	if got := r.CheckRetained(); len(got) != 0 {
		t.Fatalf("retained = %v after the slice let go", retainedLabels(got))
	}
}
