package tracker

import (
	"maps"
	"sync"
	"testing"
)

func TestCounts(t *testing.T) {
	const userKind Kind = "lease"
	tests := []struct {
		name string
		do   func(r *Registry)
		want map[Kind]Counts
	}{
		{"nothing tracked", func(*Registry) {}, map[Kind]Counts{}},
		{
			name: "released, leftover and released twice",
			do: func(r *Registry) {
				for range 5 {
					r.Track(KindFile, nil, "f").Release()
				}
				r.Track(KindFile, nil, "kept") // live: tracked, not released
				h := r.Track(KindSocket, nil, "conn")
				h.Release()
				h.Release() // misuse, not a second release
			},
			want: map[Kind]Counts{KindFile: {Tracked: 6, Released: 5}, KindSocket: {Tracked: 1, Released: 1}},
		},
		{
			name: "sessions: stop is their release; leftovers are not released",
			do: func(r *Registry) {
				s := r.StartSession("worker", nil)
				s.Track(KindTimer, "tick")
				r.Track(KindTimer, s, "released").Release()
				s.Stop()
				r.StartSession("running", nil)
			},
			want: map[Kind]Counts{KindSession: {Tracked: 2, Released: 1}, KindTimer: {Tracked: 2, Released: 1}},
		},
		{
			name: "a user kind",
			do: func(r *Registry) {
				r.Track(userKind, nil, "a").Release()
				r.Track(userKind, nil, "b")
			},
			want: map[Kind]Counts{userKind: {Tracked: 2, Released: 1}},
		},
		{
			name: "from many goroutines",
			do: func(r *Registry) {
				var wg sync.WaitGroup
				for range 8 {
					wg.Go(func() {
						for range 1000 {
							r.Track(KindGoroutine, nil, "g").Release()
						}
					})
				}
				wg.Wait()
			},
			want: map[Kind]Counts{KindGoroutine: {Tracked: 8000, Released: 8000}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := New()
			tt.do(r)
			if got := r.Counts(); !maps.Equal(got, tt.want) {
				t.Errorf("Counts() = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestCountsWhileTracking reads the counts while other goroutines track and
// release: releases never outnumber tracks, and nothing is lost at the end.
func TestCountsWhileTracking(t *testing.T) {
	r := New()
	var wg sync.WaitGroup
	done := make(chan struct{})
	for range 4 {
		wg.Go(func() {
			for range 2000 {
				r.Track(KindFile, nil, "f").Release()
			}
		})
	}
	go func() { wg.Wait(); close(done) }()
	for reading := true; reading; {
		select {
		case <-done:
			reading = false
		default:
		}
		if c := r.Counts()[KindFile]; c.Released > c.Tracked {
			t.Fatalf("counts %+v: more released than tracked", c)
		}
	}
	if c := r.Counts()[KindFile]; c != (Counts{Tracked: 8000, Released: 8000}) {
		t.Errorf("counts %+v at the end, want 8000 tracked and released", c)
	}
}
