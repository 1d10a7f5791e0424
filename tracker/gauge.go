package tracker

import (
	"cmp"
	"slices"
	"sync"
	"time"
)

// Bounds of the gauge series a registry keeps.
const (
	// DefaultGaugePoints is how many points each series keeps; older ones
	// are dropped.
	DefaultGaugePoints = 1024
	// MaxGauges bounds how many series a registry keeps. When it is full,
	// the series of stopped or removed owners that were sampled longest ago
	// make room; if there are none, new series are not kept.
	MaxGauges = 4096
)

// WithGaugePoints sets how many points each gauge series keeps.
func WithGaugePoints(n int) Option {
	return func(r *Registry) { r.checks.gauges.points = max(n, 2) }
}

type gaugeKey struct {
	owner uint64
	name  string
}

// series is one gauge's ring of points.
type series struct {
	name       string
	ownerID    uint64
	ownerLabel string
	ancestors  []uint64 // the owner's, see Session.ancestors
	auto       bool
	fn         func() int // nil for automatic series, and once frozen
	frozen     bool       // owner stopped or gauge removed: no more points
	pts        []Point
	next       int // where the next point goes once pts is full
	last       time.Time
}

func (s *series) add(p Point, limit int) {
	s.last = p.Time
	if len(s.pts) < limit {
		s.pts = append(s.pts, p)
		return
	}
	s.pts[s.next] = p
	s.next = (s.next + 1) % len(s.pts)
}

// points returns the series' points, oldest first.
func (s *series) points() []Point {
	out := make([]Point, 0, len(s.pts))
	out = append(out, s.pts[s.next:]...)
	return append(out, s.pts[:s.next]...)
}

// gaugeSet holds a registry's series.
type gaugeSet struct {
	points  int // points per series; 0 means DefaultGaugePoints
	mu      sync.Mutex
	series  map[gaugeKey]*series
	byOwner map[uint64][]*series
	dropped int
}

func (g *gaugeSet) limit() int {
	if g.points > 0 {
		return g.points
	}
	return DefaultGaugePoints
}

// get returns the series of key, creating it when there is room; the caller
// holds mu.
func (g *gaugeSet) get(key gaugeKey, owner *Session, auto bool) *series {
	if s, ok := g.series[key]; ok {
		return s
	}
	if g.series == nil {
		g.series = make(map[gaugeKey]*series)
		g.byOwner = make(map[uint64][]*series)
	}
	if len(g.series) >= MaxGauges && !g.evict() {
		g.dropped++
		return nil
	}
	s := &series{name: key.name, ownerID: key.owner, ownerLabel: owner.rec.label, ancestors: owner.ancestors(), auto: auto}
	g.series[key] = s
	g.byOwner[key.owner] = append(g.byOwner[key.owner], s)
	return s
}

// evict drops the frozen series sampled longest ago; the caller holds mu.
func (g *gaugeSet) evict() bool {
	var victim *series
	for _, s := range g.series {
		if s.frozen && (victim == nil || s.last.Before(victim.last)) {
			victim = s
		}
	}
	if victim == nil {
		return false
	}
	g.remove(victim)
	return true
}

// remove forgets s; the caller holds mu.
func (g *gaugeSet) remove(s *series) {
	delete(g.series, gaugeKey{s.ownerID, s.name})
	list := slices.DeleteFunc(g.byOwner[s.ownerID], func(t *series) bool { return t == s })
	if len(list) == 0 {
		delete(g.byOwner, s.ownerID)
	} else {
		g.byOwner[s.ownerID] = list
	}
}

// ownerStopped freezes the series of a stopped session and drops their
// funcs, so they no longer keep what they measured alive.
func (g *gaugeSet) ownerStopped(owner uint64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, s := range g.byOwner[owner] {
		s.frozen = true
		s.fn = nil
	}
}

// snapshot copies every series, ordered by owner and name.
func (g *gaugeSet) snapshot() []Gauge {
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.series) == 0 {
		return nil
	}
	out := make([]Gauge, 0, len(g.series))
	for _, s := range g.series {
		out = append(out, Gauge{Name: s.name, Owner: s.ownerID, OwnerLabel: s.ownerLabel, Ancestors: s.ancestors, Auto: s.auto, Points: s.points()})
	}
	slices.SortFunc(out, func(a, b Gauge) int {
		return cmp.Or(cmp.Compare(a.Owner, b.Owner), cmp.Compare(a.Name, b.Name))
	})
	return out
}

// Gauge registers fn as the size of a collection named name (the len of a
// map, a queue, a cache) held by owner (nil is the root). Each SampleGauges,
// and each tick of a sampler started with StartSampler, appends fn() with
// the time to the gauge's series in Snapshot.Gauges, which keeps the latest
// points (DefaultGaugePoints). It writes the FAQ's `warn "thing has N
// items"` lines for you; whether the series grows is for the report to say.
//
// fn runs on the sampler's goroutine: it must be safe to call concurrently
// with the collection's owner, for example by reading the length under the
// owner's lock or from an atomic counter. When owner stops, the gauge is
// frozen and fn dropped; its series stays in snapshots. Registering a name
// again for the same owner replaces fn and keeps the series. remove freezes
// the gauge and drops fn.
func (r *Registry) Gauge(name string, owner *Session, fn func() int) (remove func()) {
	if owner == nil {
		owner = r.root
	}
	r = owner.reg
	g := &r.checks.gauges
	r.checks.gaugesUsed.Store(true)
	g.mu.Lock()
	s := g.get(gaugeKey{owner.rec.id, name}, owner, false)
	if s != nil {
		// A gauge of a stopped owner is frozen at once.
		stopped := owner.stopped.Load()
		s.frozen = stopped
		if !stopped {
			s.fn = fn
		}
	}
	g.mu.Unlock()
	return func() {
		g.mu.Lock()
		defer g.mu.Unlock()
		if s != nil && g.series[gaugeKey{s.ownerID, s.name}] == s {
			s.frozen, s.fn = true, nil
		}
	}
}

// Gauge registers a gauge held by s; see Registry.Gauge.
func (s *Session) Gauge(name string, fn func() int) (remove func()) {
	return s.reg.Gauge(name, s, fn)
}

// AddGauge registers a gauge in Default; see Registry.Gauge. (Gauge is the
// name of the snapshot type, hence the different name.)
func AddGauge(name string, owner *Session, fn func() int) (remove func()) {
	return Default.Gauge(name, owner, fn)
}

// SampleGauges takes one sample now: every registered gauge, and the heaps
// of running sessions that can be sampled safely (see Session.SampleHeap).
func (r *Registry) SampleGauges() {
	now := time.Now()
	g := &r.checks.gauges
	type due struct {
		s  *series
		fn func() int
	}
	var todo []due
	g.mu.Lock()
	for _, s := range g.series {
		if s.fn != nil && !s.frozen {
			todo = append(todo, due{s, s.fn})
		}
	}
	g.mu.Unlock()
	if len(todo) > 0 {
		// Call the funcs without the lock: they may take the owner's lock,
		// or register gauges themselves.
		vals := make([]int, len(todo))
		for i, d := range todo {
			vals[i] = d.fn()
		}
		g.mu.Lock()
		for i, d := range todo {
			if !d.s.frozen {
				d.s.add(Point{Time: now, Value: float64(vals[i])}, g.limit())
			}
		}
		g.mu.Unlock()
	}
	r.sampleHeaps()
}

// StartSampler samples the registry's gauges and session heaps every
// interval (one second if interval <= 0), starting now, on a goroutine of
// its own until stop is called. stop waits for the goroutine to end and may
// be called more than once.
func (r *Registry) StartSampler(interval time.Duration) (stop func()) {
	if interval <= 0 {
		interval = time.Second
	}
	done := make(chan struct{})
	exited := make(chan struct{})
	go func() {
		defer close(exited)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			r.SampleGauges()
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() { close(done) })
		<-exited
	}
}

// StartSampler starts a sampler of Default; see Registry.StartSampler.
func StartSampler(interval time.Duration) (stop func()) { return Default.StartSampler(interval) }
