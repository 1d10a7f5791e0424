package tracker

import (
	"testing"
	"time"
)

// TestClockStamps checks that a stamp turns back into the time it was taken,
// with the processor's counter where the kernel trusts it and with the system
// clock everywhere.
func TestClockStamps(t *testing.T) {
	clocks := []struct {
		name string
		tsc  bool
	}{{"system clock", false}}
	if tscInvariant() {
		clocks = append(clocks, struct {
			name string
			tsc  bool
		}{"time-stamp counter", true})
	}
	// The scale is measured from the two clocks read one after the other:
	// a preemption in between skews it. A millisecond is far above that and
	// far below the ages a report prints.
	const slack = time.Millisecond
	for _, tc := range clocks {
		t.Run(tc.name, func(t *testing.T) {
			c := newClock(tc.tsc)
			before := time.Now()
			st := c.stamp()
			after := time.Now()
			time.Sleep(20 * time.Millisecond)
			now := time.Now()
			got := c.scale().time(st, now)
			if got.Before(before.Add(-slack)) || got.After(after.Add(slack)) {
				t.Errorf("stamp taken in [%v, %v] reads as %v", before, after, got)
			}
			if age := now.Sub(got); age < 20*time.Millisecond-slack {
				t.Errorf("age %v, want at least 20ms", age)
			}
			// A stamp from the future (a core whose counter runs a little
			// ahead) never reads as later than now.
			if got := c.scale().time(st+1<<40, now); got.After(now) {
				t.Errorf("a later stamp reads as %v, after now %v", got, now)
			}
		})
	}
}

// TestRecordAge checks the creation time and age of a tracked record.
func TestRecordAge(t *testing.T) {
	r := New()
	before := time.Now()
	h := r.Track(KindFile, nil, "f")
	after := time.Now()
	time.Sleep(10 * time.Millisecond)
	left := r.Leftovers()
	if len(left) != 1 {
		t.Fatalf("%d leftovers, want 1", len(left))
	}
	rec := left[0]
	if rec.Created.Before(before.Add(-time.Millisecond)) || rec.Created.After(after.Add(time.Millisecond)) {
		t.Errorf("Created %v, want in [%v, %v]", rec.Created, before, after)
	}
	if rec.Age < 9*time.Millisecond || rec.Age > time.Minute {
		t.Errorf("Age %v, want about 10ms", rec.Age)
	}
	if err := h.Release(); err != nil {
		t.Fatal(err)
	}
}
