package probes

import (
	"context"
	"errors"
	"os"
	"runtime"
	"time"

	"github.com/google/pprof/profile"
)

// DefaultCPUBudget is the default share of a core that full samples may
// take (ScheduleOptions.CPUBudget): after a full sample that used d of CPU
// time, the next waits at least d/budget. A full sample reads every
// descriptor's target (about a microsecond each), so against a daemon with
// tens of thousands of descriptors it runs every few seconds, and the ticks
// between count descriptors instead (SampleCounts), which costs
// microseconds. Half of a 1% budget leaves the rest for counting and for
// sampling a Go daemon's endpoints.
const DefaultCPUBudget = 0.005

// ScheduleOptions configures a Schedule. The functions receive what the
// schedule samples; each may be nil.
type ScheduleOptions struct {
	// PID is the process sampled.
	PID int
	// Start is when the watch started (zero: when NewSchedule is called).
	Start time.Time
	// Interval is the time between samples.
	Interval time.Duration
	// Duration ends Run this long after it starts; 0: no limit.
	Duration time.Duration
	// Warmup is the time after Start before the baseline: the first tick
	// past it takes a full sample, which names what is open at the start.
	Warmup time.Duration
	// CPUBudget is the share of one core that full samples may use; 0
	// means DefaultCPUBudget, 1 a full sample every tick.
	CPUBudget float64
	// Endpoint is the base URL of the process's net/http/pprof endpoints,
	// sampled with SampleGo at every tick; "" for none.
	Endpoint string
	// FindEndpoint, while Endpoint is "", is called at each tick and returns
	// the endpoint once the process serves one, "" until then.
	FindEndpoint func() string
	// LeakEvery is the time between reads of the goroutineleak profile
	// (SampleLeaks), each of which costs the daemon about one garbage
	// collection. It is read at the first Go sample, to learn whether the
	// daemon serves it, and at the end too.
	LeakEvery time.Duration

	// Proc receives each sample of the process, full or counted.
	Proc func(*ProcSample)
	// Go receives each sample of the endpoint; an error it returns is a gap.
	Go func(*GoSample) error
	// Leaks receives each goroutineleak profile, or nil once when the
	// daemon does not serve it; an error it returns is a gap.
	Leaks func(*profile.Profile) error
	// Sampled is called by Run after each sample of a process still
	// running, for progress.
	Sampled func()
}

// A Schedule samples one process from outside, and its Go endpoints, for as
// long as a watch lasts: a full sample (SampleProcess) when the CPU budget
// allows it and for the baseline and the end, a counting sample
// (SampleCounts) at the ticks between, and the goroutineleak profile every
// LeakEvery. A sample that fails is a gap, recorded and passed over; the
// process being gone ends the schedule. A Schedule is used by one goroutine
// at a time.
type Schedule struct {
	opts     ScheduleOptions
	client   *Client
	endpoint string
	gone     bool
	gaps     []string
	nextFull time.Time // the earliest time for the next full sample
	// baseline is when the first full sample past the warm-up was taken;
	// lastFull and prevFull when the last two full samples were.
	baseline, lastFull, prevFull time.Time
	last                         *ProcSample // the last full sample: its files need no new stat
	goOK                         bool        // the endpoint answered at least once
	goErr                        error       // the last error from the endpoint
	leakNext                     time.Time
	noLeaks                      bool // the daemon does not serve the goroutineleak profile
}

// NewSchedule returns the schedule opts describe.
func NewSchedule(opts ScheduleOptions) *Schedule {
	if opts.Start.IsZero() {
		opts.Start = time.Now()
	}
	if opts.CPUBudget <= 0 {
		opts.CPUBudget = DefaultCPUBudget
	}
	return &Schedule{
		opts:     opts,
		client:   NewClient(max(opts.Interval, time.Second)),
		endpoint: opts.Endpoint,
	}
}

// Client returns the HTTP client of the endpoint samples: its Own names the
// connections that are the schedule's, not the daemon's.
func (s *Schedule) Client() *Client { return s.client }

// Endpoint returns the endpoint sampled, "" for none.
func (s *Schedule) Endpoint() string { return s.endpoint }

// Gone reports whether the process was gone at the last sample.
func (s *Schedule) Gone() bool { return s.gone }

// Gaps returns the samples that failed, each as "TIME: what: error".
func (s *Schedule) Gaps() []string { return s.gaps }

// Unanswered returns the last error of an endpoint that never answered, or
// nil: with no endpoint, or one that answered at least once.
func (s *Schedule) Unanswered() error {
	if s.endpoint == "" || s.goOK {
		return nil
	}
	if s.goErr == nil {
		return errors.New("no sample was taken")
	}
	return s.goErr
}

// Run samples at once and then at every Interval until the process is gone,
// Duration passes, ctx ends or stop is closed. It returns whether the
// process is gone.
func (s *Schedule) Run(ctx context.Context, stop <-chan struct{}) (gone bool) {
	tick := time.NewTicker(s.opts.Interval)
	defer tick.Stop()
	var deadline <-chan time.Time
	if s.opts.Duration > 0 {
		t := time.NewTimer(s.opts.Duration)
		defer t.Stop()
		deadline = t.C
	}
	for first := true; ; first = false {
		if !first {
			select {
			case <-stop:
				return false
			case <-ctx.Done():
				return false
			case <-deadline:
				return false
			case <-tick.C:
				if s.endpoint == "" && s.opts.FindEndpoint != nil {
					s.endpoint = s.opts.FindEndpoint()
				}
			}
		}
		s.Sample(ctx)
		if s.gone {
			return true
		}
		if s.opts.Sampled != nil {
			s.opts.Sampled()
		}
	}
}

// Sample takes one sample of the process and, with an endpoint, of the
// endpoint. The sample is full when its time has come, and always for the
// baseline, which names what is open at the start.
func (s *Schedule) Sample(ctx context.Context) {
	now := time.Now()
	warm := !now.Before(s.opts.Start.Add(s.opts.Warmup))
	full := !now.Before(s.nextFull) || (s.baseline.IsZero() && warm)
	var ps *ProcSample
	var err error
	if full {
		var took time.Duration
		took, ps, err = threadCPU(func() (*ProcSample, error) { return SampleProcessSince(s.opts.PID, s.last) })
		s.nextFull = now.Add(time.Duration(float64(took) / s.opts.CPUBudget))
	} else {
		ps, err = SampleCounts(s.opts.PID)
	}
	switch {
	case errors.Is(err, os.ErrNotExist):
		s.gone = true // the end of the watch, not a gap
		return
	case err != nil:
		s.gap(now, "", err)
	default:
		if !ps.Counted {
			s.prevFull, s.lastFull, s.last = s.lastFull, ps.Time, ps
			if s.baseline.IsZero() && !ps.Time.Before(s.opts.Start.Add(s.opts.Warmup)) {
				s.baseline = ps.Time
			}
		}
		if s.opts.Proc != nil {
			s.opts.Proc(ps)
		}
	}
	if s.endpoint != "" {
		s.sampleGo(ctx, now)
	}
}

// Final ends sampling with two full samples a short gap apart, both after
// the baseline, and a last read of the goroutineleak profile. Leftover
// descriptors are those open in both samples (one open in a single sample
// may be in passing), so the pair must be at the very end for every
// descriptor held at the end to count. A full sample just taken counts as
// the first of the pair.
func (s *Schedule) Final(ctx context.Context) {
	defer func() { s.sampleLeaks(ctx, time.Now(), true) }()
	gap := min(s.opts.Interval/2, 200*time.Millisecond)
	for range 2 {
		if s.finalPair(gap) || s.gone {
			return
		}
		if !s.lastFull.IsZero() && time.Since(s.lastFull) < gap {
			time.Sleep(gap - time.Since(s.lastFull))
		}
		s.nextFull = time.Time{}
		s.Sample(ctx)
	}
}

// finalPair reports whether the last two full samples are both after the
// baseline, the last taken within gap of now and the one before it within
// two gaps of the last.
func (s *Schedule) finalPair(gap time.Duration) bool {
	if s.lastFull.IsZero() || s.baseline.IsZero() || s.lastFull.Equal(s.baseline) {
		return false
	}
	apart := s.lastFull.Sub(s.prevFull)
	return time.Since(s.lastFull) < gap && s.prevFull.After(s.baseline) && apart <= 2*gap
}

// sampleGo samples the endpoint; failures become gaps.
func (s *Schedule) sampleGo(ctx context.Context, now time.Time) {
	gctx, cancel := context.WithTimeout(ctx, max(s.opts.Interval, time.Second))
	defer cancel()
	gs, err := SampleGo(gctx, s.client.Client, s.endpoint, DefaultTrackerPath)
	if err != nil {
		s.goErr = err
		s.gap(now, "pprof endpoint", err)
		return
	}
	s.goOK = true
	if s.opts.Go != nil {
		if err := s.opts.Go(gs); err != nil {
			s.gap(now, "", err)
		}
	}
	s.sampleLeaks(ctx, now, false)
}

// sampleLeaks reads the goroutineleak profile when its time has come: at
// the first Go sample, every LeakEvery after, and, with final, at the end.
func (s *Schedule) sampleLeaks(ctx context.Context, now time.Time, final bool) {
	if s.endpoint == "" || s.noLeaks || !s.goOK || s.gone || !final && now.Before(s.leakNext) {
		return
	}
	s.leakNext = now.Add(s.opts.LeakEvery)
	gctx, cancel := context.WithTimeout(ctx, max(s.opts.Interval, 5*time.Second))
	defer cancel()
	p, found, err := SampleLeaks(gctx, s.client.Client, s.endpoint)
	if !found && err == nil {
		s.noLeaks = true
	}
	if err == nil && s.opts.Leaks != nil {
		err = s.opts.Leaks(p)
	}
	if err != nil {
		s.gap(now, "goroutineleak profile", err)
	}
}

// gap records a failed sample taken at t.
func (s *Schedule) gap(t time.Time, what string, err error) {
	g := t.Format(time.RFC3339) + ": "
	if what != "" {
		g += what + ": "
	}
	s.gaps = append(s.gaps, g+err.Error())
}

// threadCPU runs sample on one locked thread and returns the CPU time the
// thread used meanwhile: the sample's own cost, whatever else the machine is
// doing. Where a thread's CPU time cannot be read, it returns the wall time,
// which only makes full samples rarer on a busy machine.
func threadCPU(sample func() (*ProcSample, error)) (time.Duration, *ProcSample, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	start := time.Now()
	before, ok := threadCPUTime()
	ps, err := sample()
	after, ok2 := threadCPUTime()
	if !ok || !ok2 {
		return time.Since(start), ps, err
	}
	return after - before, ps, err
}
