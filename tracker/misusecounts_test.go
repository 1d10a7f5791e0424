package tracker_test

import (
	"maps"
	"testing"

	"github.com/leakcheck/leakcheck/tracker"
)

// TestMisuseCounts checks that MisuseCounts counts every misuse by kind,
// including the events the bounded list dropped.
func TestMisuseCounts(t *testing.T) {
	r := tracker.New(tracker.WithMaxMisuse(1))
	if got := r.MisuseCounts(); len(got) != 0 {
		t.Fatalf("new registry: %v, want no misuse", got)
	}
	for range 3 {
		h := r.Track("task", nil, "x")
		h.Release()
		h.Release()
	}
	s := r.StartSession("s", nil)
	s.Stop()
	s.Stop()
	want := map[tracker.MisuseKind]int{tracker.DoubleRelease: 3, tracker.DoubleStop: 1}
	if got := r.MisuseCounts(); !maps.Equal(got, want) {
		t.Errorf("MisuseCounts() = %v, want %v", got, want)
	}
	if snap := r.Snapshot(); len(snap.Misuse) != 1 || snap.MisuseTotal != 4 {
		t.Errorf("snapshot keeps %d misuse events of %d, want 1 of 4", len(snap.Misuse), snap.MisuseTotal)
	}
}
