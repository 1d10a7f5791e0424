package tracker

import (
	"context"
	"io"
	"net"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// liveKinds returns how many records of each kind are live in r.
func liveKinds(r *Registry) map[Kind]int {
	m := map[Kind]int{}
	for _, rec := range r.Leftovers() {
		m[rec.Kind]++
	}
	return m
}

func TestFileWrappers(t *testing.T) {
	r := New()
	dir := t.TempDir()
	s := r.StartSession("writer", nil)
	name := filepath.Join(dir, "a.log")

	f, err := r.Create(s, name)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString("hello"); err != nil {
		t.Fatal(err)
	}
	g, err := r.Open(s, name)
	if err != nil {
		t.Fatal(err)
	}
	h, err := r.OpenFile(nil, name, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if got := liveKinds(r)[KindFile]; got != 3 {
		t.Fatalf("live files = %d, want 3", got)
	}
	if f.Handle().Label() != name || f.Handle().Owner() != s {
		t.Fatalf("file record: label %q owner %v", f.Handle().Label(), f.Handle().Owner())
	}
	for _, c := range []io.Closer{f, g, h} {
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if got := liveKinds(r)[KindFile]; got != 0 {
		t.Fatalf("live files after Close = %d", got)
	}
	if _, err := r.Open(s, filepath.Join(dir, "missing")); err == nil {
		t.Fatal("Open of a missing file succeeded")
	}
	if got := liveKinds(r)[KindFile]; got != 0 {
		t.Fatal("failed Open left a record")
	}
	f.Close() // double close: misuse, no panic
	if r.Snapshot().MisuseTotal != 1 {
		t.Fatal("double Close not recorded as misuse")
	}
}

func TestNetWrappers(t *testing.T) {
	r := New()
	ctx := context.Background()
	server := r.StartSession("server", nil)
	client := r.StartSession("client", nil)

	l, err := r.Listen(ctx, server, "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			close(accepted)
			return
		}
		accepted <- c
	}()
	c, err := r.Dial(ctx, client, "tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	sc, ok := <-accepted
	if !ok {
		t.Fatal("Accept failed")
	}
	if got := liveKinds(r); got[KindListener] != 1 || got[KindSocket] != 2 {
		t.Fatalf("live = %v, want 1 listener and 2 sockets", got)
	}
	if owner := sc.(*Conn).Handle().Owner(); owner != server {
		t.Fatalf("accepted conn owned by %v, want the listener's owner", owner.Label())
	}
	if lbl := c.Handle().Label(); lbl != "tcp "+c.LocalAddr().String()+" -> "+l.Addr().String() {
		t.Fatalf("conn label = %q", lbl)
	}
	// Data flows through the wrappers.
	if _, err := c.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4)
	if _, err := io.ReadFull(sc, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("read %q, %v", buf, err)
	}
	left := server.Stop()
	if len(left) != 2 {
		t.Fatalf("server leftovers = %+v, want listener and accepted conn", left)
	}
	for _, cl := range []io.Closer{c, sc, l} {
		cl.Close()
	}
	if n := r.Len(); n != 1 { // the client session
		t.Fatalf("live after closing = %d, want only the client session", n)
	}
	other := r.StartSession("other", nil)
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tl := r.TrackListener(other, raw)
	go func() {
		c, err := net.Dial("tcp", raw.Addr().String())
		if err == nil {
			c.Close()
		}
	}()
	ac, err := tl.AcceptFor(client)
	if err != nil {
		t.Fatal(err)
	}
	if ac.Handle().Owner() != client {
		t.Fatal("AcceptFor did not track under the given owner")
	}
	ac.Close()
	tl.Close()
	if _, err := r.Dial(ctx, client, "tcp", raw.Addr().String()); err == nil {
		t.Fatal("Dial to a closed listener succeeded")
	}
	if n := r.Len(); n != 2 {
		t.Fatalf("live = %d, want the two sessions", n)
	}
}

func TestTimers(t *testing.T) {
	r := New()
	s := r.StartSession("timers", nil)

	fired := r.NewTimer(s, time.Millisecond)
	<-fired.C
	waitFor(t, func() bool { return liveKinds(r)[KindTimer] == 0 }, "fired timer released")

	stopped := r.NewTimer(s, time.Hour)
	if !stopped.Stop() {
		t.Fatal("Stop of a pending timer returned false")
	}
	if stopped.Stop() {
		t.Fatal("second Stop returned true")
	}

	reset := r.NewTimer(s, time.Hour)
	if !reset.Reset(time.Millisecond) {
		t.Fatal("Reset of a pending timer returned false")
	}
	<-reset.C

	var wg sync.WaitGroup
	wg.Add(1)
	r.AfterFunc(s, time.Millisecond, wg.Done)
	wg.Wait()
	never := r.AfterFunc(s, time.Hour, func() { t.Error("stopped AfterFunc ran") })
	never.Stop()

	tk := r.NewTicker(s, time.Millisecond)
	<-tk.C
	<-tk.C
	if liveKinds(r)[KindTimer] != 1 {
		t.Fatalf("live = %v, want only the ticker", liveKinds(r))
	}
	tk.Stop()
	tk.Stop()
	waitFor(t, func() bool { return liveKinds(r)[KindTimer] == 0 }, "all timers released")
	if m := r.Snapshot().MisuseTotal; m != 0 {
		t.Fatalf("misuse = %d, want 0", m)
	}

	leaked := r.NewTimer(s, time.Hour)
	defer leaked.Stop()
	if left := s.Stop(); len(left) != 1 || left[0].Kind != KindTimer {
		t.Fatalf("leftover = %+v, want the pending timer", left)
	}
}

func TestGo(t *testing.T) {
	r := New(WithStacks(StacksAlways))
	s := r.StartSession("workers", nil)
	release := make(chan struct{})
	var wg sync.WaitGroup
	for range 10 {
		wg.Add(1)
		r.Go(s, "worker", func() {
			defer wg.Done()
			<-release
		})
	}
	wg.Add(1)
	r.Go(s, "panicker", func() {
		defer wg.Done()
		defer func() { recover() }()
		panic("boom")
	})
	waitFor(t, func() bool { return liveKinds(r)[KindGoroutine] == 10 }, "ten goroutines live")
	close(release)
	wg.Wait()
	waitFor(t, func() bool { return liveKinds(r)[KindGoroutine] == 0 }, "goroutines released")
}

// waitFor polls cond for up to five seconds.
func waitFor(t *testing.T, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}
