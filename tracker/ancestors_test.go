package tracker

import (
	"runtime"
	"slices"
	"testing"
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
