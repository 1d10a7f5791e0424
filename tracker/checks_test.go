package tracker

import (
	"bytes"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"
)

// The flags byte lives in the record's padding: records stay in the 80-byte
// size class, so the hot path allocates no more than before.
func TestRecordSizeUnchanged(t *testing.T) {
	if n := unsafe.Sizeof(record{}); n > 80 {
		t.Fatalf("record is %d bytes, want at most 80", n)
	}
}

// Under churn with every check on and the collector running, no record is
// lost: each is released by the program, collected, or still live.
func TestChecksUnderChurn(t *testing.T) {
	r := New(WithCleanups(true), WithRetainCheck(true), WithStacks(StacksSampled(4)))
	sessions := []*Session{nil, r.StartSession("a", nil), r.StartSession("b", nil)}
	const workers, perWorker = 8, 500
	var wg sync.WaitGroup
	var kept sync.Map
	stopGC := make(chan struct{})
	gcDone := make(chan struct{})
	go func() {
		defer close(gcDone)
		for {
			select {
			case <-stopGC:
				return
			default:
				runtime.GC()
				time.Sleep(time.Millisecond)
			}
		}
	}()
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			owner := sessions[w%len(sessions)]
			for i := range perWorker {
				o := &benchObj{}
				h := TrackObject(r, o, "obj", owner, "x")
				switch i % 3 {
				case 0:
					h.Release() // released by the program
				case 1:
					kept.Store(o, h) // live
				case 2:
					// dropped: the collector reports it
				}
			}
		}()
	}
	wg.Wait()
	close(stopGC)
	<-gcDone
	want := workers * (perWorker / 3) // the dropped ones
	gcUntil(t, func() bool { _, n := r.Unreleased(); return n >= want }, "dropped objects to be collected")
	_, collected := r.Unreleased()
	live := 0
	for _, rec := range r.Leftovers() {
		if rec.Kind == "obj" {
			live++
		}
	}
	keptN := 0
	kept.Range(func(any, any) bool { keptN++; return true })
	if live != keptN || collected != want || collected+live+(workers*((perWorker+2)/3)) != workers*perWorker {
		t.Fatalf("live %d (kept %d), collected %d, released %d: records lost or doubled",
			live, keptN, collected, workers*((perWorker+2)/3))
	}
	if m := r.Snapshot().MisuseTotal; m != 0 {
		t.Fatalf("misuse = %d", m)
	}
	runtime.KeepAlive(&kept)
}

//go:noinline
func tickAndForget(r *Registry, owner *Session) {
	tk := r.NewTicker(owner, time.Hour)
	_ = tk.C
}

func TestUnreleasedTicker(t *testing.T) {
	r := New(WithCleanups(true))
	s := r.StartSession("poller", nil)
	tickAndForget(r, s)
	gcUntil(t, func() bool { _, n := r.Unreleased(); return n == 1 }, "the ticker to be collected")
	us, _ := r.Unreleased()
	if us[0].Record.Kind != KindTimer || us[0].Record.Label != "ticker 1h0m0s" {
		t.Fatalf("unreleased = %+v", us[0].Record)
	}
	tk := r.NewTicker(s, time.Hour)
	tk.Stop()
	gcSettle()
	if _, n := r.Unreleased(); n != 1 {
		t.Fatal("a stopped ticker was reported")
	}
}

func TestWriteTextShowsFindings(t *testing.T) {
	r := New(WithCleanups(true), WithRetainCheck(true), WithCycleCheck(true))
	s := r.StartSession("worker", nil)
	openAndForget(t, r, s, tempFile(t))
	gcUntil(t, func() bool { _, n := r.Unreleased(); return n == 1 }, "the file to be collected")
	kept := stopAlice(r)
	r.CheckRetained()
	a, b := &node{}, &node{}
	a.peer, b.peer = b, a
	s.SetHeap(map[string]any{"a": a})
	s.Gauge("tasks", func() int { return 3 })
	r.SampleGauges()
	s.Stop()

	var buf bytes.Buffer
	r.WriteText(&buf)
	out := buf.String()
	for _, want := range []string{
		`unreleased: file "`, `of session "worker"`, "acquired at",
		`retained: session "alice"`, "after 3 garbage collections",
		"cycle: (*tracker.node A).peer -> (*tracker.node B).peer -> (*tracker.node A)",
		`gauge: tasks (session "worker"`, "first 3, last 3",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("text lacks %q:\n%s", want, out)
		}
	}
	runtime.KeepAlive(kept)
}
