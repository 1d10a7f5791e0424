package keepalive

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/leakcheck/leakcheck/tracker"
)

func TestReportAtForcedShutdown(t *testing.T) {
	clean(t)
	k := newKernel(t)
	dir := t.TempDir()
	a, _ := pipePair(t)
	_, err := k.Spawn(Spec{Name: "hoarder", Handlers: map[string]Handler{
		EvStart: func(c *Context) {
			c.Delay("someday", time.Hour)
			f, err := os.Create(filepath.Join(dir, "held.txt"))
			must(t, err)
			if _, err := c.Watch(f, ""); err != nil {
				t.Fatal(err)
			}
			c.RefcountIncrement("forgotten")
			if _, err := c.NewWheel(a, WheelConfig{Input: "in"}); err != nil {
				t.Fatal(err)
			}
			c.Yield("spin")
		},
		"spin": func(c *Context) { c.Yield("spin") }, // always one event pending
	}})
	must(t, err)
	rep, err := run(t, k, 50*time.Millisecond)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Run: %v", err)
	}
	text := rep.String()
	t.Log(text)
	for _, kind := range []tracker.Kind{tracker.KindSession, tracker.KindTimer, tracker.KindFile, KindRefcount, tracker.KindWheel, tracker.KindSocket, KindEvent} {
		recs := rep.Of(kind)
		if len(recs) != 1 {
			t.Errorf("%d leftovers of kind %s, want 1", len(recs), kind)
			continue
		}
		r := recs[0]
		if r.State != tracker.Released {
			t.Errorf("%s: state %s, want released by the kernel", kind, r.State)
		}
		if kind != tracker.KindSession && r.OwnerLabel != "hoarder" {
			t.Errorf("%s owned by %q", kind, r.OwnerLabel)
		}
		if !strings.Contains(stackText(r), "TestReportAtForcedShutdown") {
			t.Errorf("%s: acquisition stack does not name the test:\n%s", kind, stackText(r))
		}
	}
	if len(rep.Pending) != 1 || rep.Pending[0].Event != "spin" || rep.Pending[0].SessionName != "hoarder" {
		t.Errorf("pending events: %+v", rep.Pending)
	}
	for _, want := range []string{
		"context ended with 1 sessions alive",
		"!!! 1 events pending at shutdown",
		"!!! released at shutdown timer",
		`"someday", held by "hoarder"`,
		"held.txt",
		"report_test.go:",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("report lacks %q", want)
		}
	}
	// Run's first frame shown is the handler, not the runtime's plumbing.
	if strings.Contains(text, "(*Context).Delay") {
		t.Error("report shows the runtime's own frames")
	}
}

func stackText(r tracker.Record) string {
	var b strings.Builder
	for _, f := range r.Stack {
		b.WriteString(f.Func + "\n")
	}
	return b.String()
}

func TestReportStoppedSessionLeftovers(t *testing.T) {
	clean(t)
	var held []tracker.Record
	k := newKernel(t, WithLeftoverFunc(func(s *Session, recs []tracker.Record) {
		if s.Name() == "careless" {
			held = recs
		}
	}))
	var kept *tracker.File
	path := filepath.Join(t.TempDir(), "log")
	_, err := k.Spawn(Spec{Name: "careless", Handlers: map[string]Handler{
		EvStart: func(c *Context) {
			f, err := c.Kernel.Registry().Create(c.Session.Tracker(), path)
			must(t, err)
			kept = f // never closed by the session
		},
	}})
	must(t, err)
	rep, err := run(t, k, 5*time.Second)
	must(t, err)
	defer kept.Close()
	if rep.Forced || rep.Len() != 1 {
		t.Fatalf("report:\n%s", rep)
	}
	r := rep.Leftovers[0]
	if r.Kind != tracker.KindFile || r.Label != path || r.OwnerLabel != "careless" || !r.OwnerStopped || r.State != tracker.Live {
		t.Errorf("leftover %+v", r)
	}
	if text := rep.String(); !strings.Contains(text, "!!! leaked file") || !strings.Contains(text, "(stopped)") || !strings.Contains(text, "report_test.go") {
		t.Errorf("report:\n%s", text)
	}
	if len(held) != 1 || held[0].ID != r.ID {
		t.Errorf("leftover func got %v", held)
	}
}

func TestWatchGiveUnwatch(t *testing.T) {
	clean(t)
	k := newKernel(t)
	path := filepath.Join(t.TempDir(), "f")
	var w *Watched
	var b *Session
	_, err := k.Spawn(Spec{Name: "a", Handlers: map[string]Handler{
		EvStart: func(c *Context) {
			b, _ = c.Spawn(Spec{Name: "b", Handlers: map[string]Handler{
				"take": func(c *Context) {
					if w.Session() != c.Session || w.Handle().Owner() != c.Session.Tracker() {
						t.Error("the handle did not move to b")
					}
					h, err := w.Unwatch()
					must(t, err)
					if w.Handle().Live() {
						t.Error("Unwatch kept Watch's record")
					}
					must(t, h.Close())
					if err := w.Close(); !errors.Is(err, ErrNotWatched) {
						t.Errorf("Close after Unwatch: %v", err)
					}
				},
			}})
			f, err := os.Create(path)
			must(t, err)
			w, err = c.Watch(f, "")
			must(t, err)
			if w.Handle().Kind() != tracker.KindFile || w.Handle().Owner() != c.Session.Tracker() {
				t.Errorf("watched %s under %v", w.Handle().Kind(), w.Handle().Owner())
			}
			must(t, w.Give(b))
			must(t, c.Post(b, "take"))
		},
	}})
	must(t, err)
	mustRun(t, k)
}
