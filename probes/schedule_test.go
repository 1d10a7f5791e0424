package probes

import (
	"context"
	"errors"
	"net"
	"net/http/pprof"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/google/pprof/profile"
)

// recorded is what a Schedule handed to its functions.
type recorded struct {
	procs   []*ProcSample
	gos     int
	leaks   []*profile.Profile
	sampled int
}

// newRecordedSchedule returns a schedule of opts whose samples go to rec,
// and whose client's idle connections close when the test ends.
func newRecordedSchedule(t *testing.T, opts ScheduleOptions, rec *recorded) *Schedule {
	t.Helper()
	opts.Proc = func(ps *ProcSample) { rec.procs = append(rec.procs, ps) }
	opts.Go = func(*GoSample) error { rec.gos++; return nil }
	opts.Leaks = func(p *profile.Profile) error { rec.leaks = append(rec.leaks, p); return nil }
	opts.Sampled = func() { rec.sampled++ }
	s := NewSchedule(opts)
	t.Cleanup(s.Client().CloseIdleConnections)
	return s
}

// fullCount returns how many of ps are full samples.
func fullCount(ps []*ProcSample) int {
	n := 0
	for _, p := range ps {
		if !p.Counted {
			n++
		}
	}
	return n
}

// TestScheduleFullSamples checks that the schedule takes full samples for
// the baseline and then only as often as the CPU budget allows (here, so
// small that only the first is due), counting descriptors in between, and
// that it ends with a pair of full samples after the baseline.
func TestScheduleFullSamples(t *testing.T) {
	ctx := t.Context()
	var rec recorded
	s := newRecordedSchedule(t, ScheduleOptions{PID: os.Getpid(), Interval: time.Second, CPUBudget: 1e-6}, &rec)
	s.Sample(ctx)
	if len(rec.procs) != 1 || rec.procs[0].Counted || !s.baseline.Equal(rec.procs[0].Time) {
		t.Fatalf("first sample after the warm-up: %d samples, baseline at %v", len(rec.procs), s.baseline)
	}
	if !s.nextFull.After(s.baseline) {
		t.Fatalf("next full sample at %v, not after the first at %v", s.nextFull, s.baseline)
	}
	s.Sample(ctx) // long before nextFull: counted
	if last := rec.procs[len(rec.procs)-1]; len(rec.procs) != 2 || !last.Counted || last.NumFDs == 0 {
		t.Fatalf("second sample: %d samples, last %+v", len(rec.procs), last)
	}
	s.nextFull = time.Now()
	s.Sample(ctx)
	if fullCount(rec.procs) != 2 || rec.procs[2].Counted {
		t.Fatalf("third sample, when due: %d full samples, counted %v", fullCount(rec.procs), rec.procs[2].Counted)
	}

	// When the only full sample after the warm-up is the baseline, the end
	// takes two, apart.
	rec = recorded{}
	s = newRecordedSchedule(t, ScheduleOptions{PID: os.Getpid(), Interval: time.Second, CPUBudget: 1e-6}, &rec)
	s.Sample(ctx)
	s.Sample(ctx)
	s.Final(ctx)
	n := fullCount(rec.procs)
	last := rec.procs[len(rec.procs)-1]
	if n != 3 || last.Counted || !last.Time.After(s.baseline.Add(200*time.Millisecond)) {
		t.Errorf("final samples: %d full samples, the last at %v, the baseline at %v", n, last.Time, s.baseline)
	}
	// Right after a full sample, one more adds nothing (finalPair; a
	// machine so busy that this test stalled for the gap may take more).
	fresh := time.Since(s.lastFull) < 100*time.Millisecond
	s.Final(ctx)
	if fullCount(rec.procs) != n && fresh {
		t.Errorf("final samples right after a full one: %d full samples, want %d", fullCount(rec.procs), n)
	}
	if len(rec.leaks) != 0 || rec.gos != 0 || len(s.Gaps()) != 0 || s.Unanswered() != nil {
		t.Errorf("without an endpoint: %d leak profiles, %d Go samples, gaps %v, unanswered %v", len(rec.leaks), rec.gos, s.Gaps(), s.Unanswered())
	}
}

// TestScheduleFinalPair checks when the last two full samples are a final
// pair that Final need not take again.
func TestScheduleFinalPair(t *testing.T) {
	const gap = 200 * time.Millisecond
	// Each time is how long ago the sample was taken; 0: none.
	tests := []struct {
		name                         string
		baseline, prevFull, lastFull time.Duration
		want                         bool
	}{
		{name: "no full sample"},
		{name: "the last is the baseline", baseline: 50 * time.Millisecond, lastFull: 50 * time.Millisecond},
		{name: "the one before is the baseline", baseline: time.Second, prevFull: time.Second, lastFull: 10 * time.Millisecond},
		{name: "a fresh pair after the baseline", baseline: time.Second, prevFull: 150 * time.Millisecond, lastFull: 10 * time.Millisecond, want: true},
		{name: "the last is stale", baseline: time.Second, prevFull: 500 * time.Millisecond, lastFull: 300 * time.Millisecond},
		{name: "too far apart", baseline: time.Second, prevFull: 600 * time.Millisecond, lastFull: 10 * time.Millisecond},
	}
	for _, tt := range tests {
		now := time.Now()
		ago := func(d time.Duration) time.Time {
			if d == 0 {
				return time.Time{}
			}
			return now.Add(-d)
		}
		s := &Schedule{baseline: ago(tt.baseline), prevFull: ago(tt.prevFull), lastFull: ago(tt.lastFull)}
		if got := s.finalPair(gap); got != tt.want {
			t.Errorf("%s: finalPair = %v, want %v", tt.name, got, tt.want)
		}
	}
}

// TestScheduleWarmup checks that the baseline is the first full sample past
// the warm-up, taken at the first tick past it even when the CPU budget
// would count descriptors instead.
func TestScheduleWarmup(t *testing.T) {
	ctx := t.Context()
	const warmup = time.Second
	var rec recorded
	s := newRecordedSchedule(t, ScheduleOptions{PID: os.Getpid(), Interval: time.Second, Warmup: warmup, CPUBudget: 1e-9}, &rec)
	s.Sample(ctx) // full: the first
	s.Sample(ctx) // counted: in the warm-up, and the budget is spent
	if fullCount(rec.procs) != 1 || !rec.procs[1].Counted || !s.baseline.IsZero() {
		t.Fatalf("in the warm-up: %d full samples of %d, baseline at %v", fullCount(rec.procs), len(rec.procs), s.baseline)
	}
	time.Sleep(time.Until(s.opts.Start.Add(warmup)))
	s.Sample(ctx)
	last := rec.procs[len(rec.procs)-1]
	if last.Counted || !s.baseline.Equal(last.Time) {
		t.Fatalf("past the warm-up: counted %v, baseline at %v, sample at %v", last.Counted, s.baseline, last.Time)
	}
	s.Sample(ctx)
	if !rec.procs[len(rec.procs)-1].Counted {
		t.Error("the sample after the baseline is full: the budget allows none")
	}
}

// TestScheduleRun checks how Run ends: at Duration, at stop, and when the
// process is gone, having sampled at every tick.
func TestScheduleRun(t *testing.T) {
	tests := []struct {
		name     string
		duration time.Duration
		stopAt   time.Duration // close stop this long after the start; 0: never
		killAt   time.Duration // kill the process this long after the start; 0: never
		gone     bool
	}{
		{name: "duration", duration: 350 * time.Millisecond},
		{name: "stop", stopAt: 350 * time.Millisecond},
		{name: "process exits", killAt: 350 * time.Millisecond, gone: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := exec.Command("sleep", "30")
			if err := c.Start(); err != nil {
				t.Fatal(err)
			}
			exited := make(chan struct{})
			go func() { c.Wait(); close(exited) }()
			defer func() { c.Process.Kill(); <-exited }()
			var rec recorded
			s := newRecordedSchedule(t, ScheduleOptions{PID: c.Process.Pid, Interval: 100 * time.Millisecond, Duration: tt.duration}, &rec)
			stop := make(chan struct{})
			if tt.stopAt > 0 {
				defer time.AfterFunc(tt.stopAt, func() { close(stop) }).Stop()
			}
			if tt.killAt > 0 {
				defer time.AfterFunc(tt.killAt, func() { c.Process.Kill() }).Stop()
			}
			start := time.Now()
			gone := s.Run(t.Context(), stop)
			took := time.Since(start)
			if gone != tt.gone || gone != s.Gone() {
				t.Errorf("Run = %v, Gone() = %v; want %v", gone, s.Gone(), tt.gone)
			}
			if took < 300*time.Millisecond || took > 5*time.Second {
				t.Errorf("Run took %v, want about 350ms", took)
			}
			// A sample at once and one per tick; a slow machine may drop ticks.
			if len(rec.procs) < 2 || len(rec.procs) > 5 || rec.sampled != len(rec.procs) {
				t.Errorf("%d samples, %d reported sampled; want 2 to 5, each reported", len(rec.procs), rec.sampled)
			}
			if len(s.Gaps()) != 0 {
				t.Errorf("gaps: %v", s.Gaps())
			}
		})
	}
}

// TestScheduleEndpoint checks the sampling of a Go daemon's endpoints: at
// every tick once known, the goroutineleak profile at the first Go sample
// and at the end (not served: once, as nil), and failures as gaps.
func TestScheduleEndpoint(t *testing.T) {
	leakMux := pprofMux()
	leakMux.Handle("/debug/pprof/goroutineleak", pprof.Handler("goroutine")) // the same format
	leaks := newServer(t, leakMux)
	noLeaks := newServer(t, pprofMux())
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := "http://" + l.Addr().String()
	l.Close()

	tests := []struct {
		name       string
		endpoint   string
		find       string // returned by FindEndpoint from the second call on
		leakNil    int    // leak profiles reported as not served
		leakFound  int    // leak profiles read
		unanswered bool
	}{
		{name: "serves goroutineleak", endpoint: leaks.URL, leakFound: 2},
		{name: "no goroutineleak", endpoint: noLeaks.URL, leakNil: 1},
		{name: "found later", find: leaks.URL, leakFound: 2},
		{name: "down", endpoint: down, unanswered: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var rec recorded
			opts := ScheduleOptions{PID: os.Getpid(), Interval: 100 * time.Millisecond, Duration: 650 * time.Millisecond, Endpoint: tt.endpoint, LeakEvery: time.Hour}
			calls := 0
			if tt.find != "" {
				opts.FindEndpoint = func() string {
					if calls++; calls < 2 {
						return ""
					}
					return tt.find
				}
			}
			s := newRecordedSchedule(t, opts, &rec)
			if s.Run(t.Context(), nil) {
				t.Fatal("the test process is gone")
			}
			s.Final(t.Context())
			nils, found := 0, 0
			for _, p := range rec.leaks {
				if p == nil {
					nils++
				} else {
					found++
				}
			}
			if nils != tt.leakNil || found != tt.leakFound {
				t.Errorf("leak profiles: %d not served, %d read; want %d and %d", nils, found, tt.leakNil, tt.leakFound)
			}
			if err := s.Unanswered(); (err != nil) != tt.unanswered {
				t.Errorf("Unanswered() = %v, want an error: %v", err, tt.unanswered)
			}
			switch {
			case tt.unanswered:
				gaps := strings.Join(s.Gaps(), "\n")
				if rec.gos != 0 || !strings.Contains(gaps, "pprof endpoint: ") || !strings.Contains(gaps, "refused") {
					t.Errorf("%d Go samples from an endpoint that is down; gaps %q", rec.gos, gaps)
				}
			case tt.find != "":
				// Found at the second tick, sampled from then on.
				if rec.gos < 1 || rec.gos > len(rec.procs)-2 || s.Endpoint() != tt.find {
					t.Errorf("%d Go samples of %d, endpoint %q", rec.gos, len(rec.procs), s.Endpoint())
				}
			default:
				if rec.gos != len(rec.procs) || len(s.Gaps()) != 0 {
					t.Errorf("%d Go samples, %d process samples, gaps %v", rec.gos, len(rec.procs), s.Gaps())
				}
			}
		})
	}
}

// TestScheduleCallbackErrors checks that an error from the Go or Leaks
// function is a gap, not the end of sampling.
func TestScheduleCallbackErrors(t *testing.T) {
	leakMux := pprofMux()
	leakMux.Handle("/debug/pprof/goroutineleak", pprof.Handler("goroutine"))
	srv := newServer(t, leakMux)
	s := NewSchedule(ScheduleOptions{
		PID: os.Getpid(), Interval: time.Second, Endpoint: srv.URL, LeakEvery: time.Hour,
		Go:    func(*GoSample) error { return errors.New("bad goroutine profile") },
		Leaks: func(*profile.Profile) error { return errors.New("bad leak profile") },
	})
	t.Cleanup(s.Client().CloseIdleConnections)
	s.Sample(context.Background())
	gaps := s.Gaps()
	if len(gaps) != 2 || !strings.HasSuffix(gaps[0], ": bad goroutine profile") || !strings.HasSuffix(gaps[1], ": goroutineleak profile: bad leak profile") {
		t.Errorf("gaps %q, want the two errors", gaps)
	}
	if s.Unanswered() != nil {
		t.Errorf("Unanswered() = %v: the endpoint answered", s.Unanswered())
	}
}
