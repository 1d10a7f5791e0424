package tracker

import (
	"bytes"
	"fmt"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestAncestors checks that snapshots name the sessions above each owner,
// nearest first and without the root, for live records, gauges and watched
// objects, and that stopping the owner or its parent keeps the chain: a
// report joins what sessions of one parent leak by it.
func TestAncestors(t *testing.T) {
	t.Parallel()
	r := New(WithRetainCheck(true))
	a := r.StartSession("a", nil)
	b := r.StartSession("b", a)
	c := r.StartSession("c", b)
	d := r.StartSession("d", b)
	r.Track("file", nil, "of the root")
	r.Track("file", a, "of a")
	r.Track("file", b, "of b")
	r.Track("file", c, "of c")
	r.Track("file", d, "of d")
	b.Gauge("things", func() int { return 1 })
	r.SampleGauges()
	c.Stop() // its file stays, a leftover under a stopped owner
	d.Stop()
	b.Stop() // and its parent stops after it

	want := map[string][]uint64{
		"of the root": nil,
		"of a":        nil,
		"of b":        {a.ID()},
		"of c":        {b.ID(), a.ID()},
		"of d":        {b.ID(), a.ID()},
	}
	s := r.Snapshot()
	seen := 0
	for _, rec := range s.Records {
		w, ok := want[rec.Label]
		if !ok {
			continue
		}
		seen++
		if !slices.Equal(rec.Ancestors, w) {
			t.Errorf("record %q of %q: ancestors %v, want %v", rec.Label, rec.OwnerLabel, rec.Ancestors, w)
		}
	}
	if seen != len(want) {
		t.Errorf("saw %d of the %d records: %+v", seen, len(want), s.Records)
	}
	if len(s.Gauges) != 1 || !slices.Equal(s.Gauges[0].Ancestors, []uint64{a.ID()}) {
		t.Errorf("gauges %+v, want one of b with ancestors [%d]", s.Gauges, a.ID())
	}

	// An object watched after its owner stopped, and still reachable,
	// keeps the owner's chain too.
	e := r.StartSession("e", a)
	f := r.StartSession("f", e)
	f.Stop()
	obj := new([64]byte)
	Watch(r, obj, "thing", f, "watched")
	found := false
	for _, x := range r.CheckRetained() {
		if x.Record.Label == "watched" {
			found = true
			if w := []uint64{e.ID(), a.ID()}; !slices.Equal(x.Record.Ancestors, w) {
				t.Errorf("watched under stopped f: ancestors %v, want %v", x.Record.Ancestors, w)
			}
		}
	}
	runtime.KeepAlive(obj)
	if !found {
		t.Error("the watched object, still reachable, is not retained")
	}
}

// TestGoLabels checks that the goroutines Go starts carry the session
// label, the owner's id and its ancestors', in goroutine profiles, and that
// ParseSessionLabel reads it back.
func TestGoLabels(t *testing.T) {
	r := New()
	a := r.StartSession("a", nil)
	b := r.StartSession("b", a)
	block := make(chan struct{})
	defer close(block)
	r.Go(b, "waiter", func() { <-block })
	want := fmt.Sprintf("%d %d", b.ID(), a.ID())
	var buf bytes.Buffer
	for deadline := time.Now().Add(5 * time.Second); ; {
		buf.Reset()
		if err := pprof.Lookup("goroutine").WriteTo(&buf, 1); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(buf.String(), fmt.Sprintf("%q:%q", SessionLabel, want)) || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if !strings.Contains(buf.String(), fmt.Sprintf("%q:%q", SessionLabel, want)) {
		t.Errorf("no goroutine labelled %s=%q in the profile:\n%s", SessionLabel, want, buf.String())
	}
	for _, tt := range []struct {
		in        string
		id        uint64
		ancestors []uint64
		ok        bool
	}{
		{want, b.ID(), []uint64{a.ID()}, true},
		{"7", 7, nil, true},
		{"", 0, nil, false},
		{"x 1", 0, nil, false},
	} {
		id, anc, ok := ParseSessionLabel(tt.in)
		if id != tt.id || !slices.Equal(anc, tt.ancestors) || ok != tt.ok {
			t.Errorf("ParseSessionLabel(%q) = %d, %v, %v; want %d, %v, %v", tt.in, id, anc, ok, tt.id, tt.ancestors, tt.ok)
		}
	}
}
