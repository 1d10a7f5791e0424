package tracker

import (
	"slices"
	"sync"
	"testing"
	"time"
)

// gauge returns the series named name in r's snapshot.
func gauge(t *testing.T, r *Registry, name string) Gauge {
	t.Helper()
	for _, g := range r.Snapshot().Gauges {
		if g.Name == name {
			return g
		}
	}
	t.Fatalf("no gauge %q", name)
	return Gauge{}
}

func values(g Gauge) []float64 {
	var out []float64
	for i, p := range g.Points {
		out = append(out, p.Value)
		if i > 0 && p.Time.Before(g.Points[i-1].Time) {
			panic("points out of order")
		}
	}
	return out
}

// FAQ "Bad Housekeeping": a map of tasks nobody deletes from.
func TestGaugeOfTasksThatOnlyGrow(t *testing.T) {
	r := New()
	s := r.StartSession("worker", nil)
	var mu sync.Mutex
	tasks := map[int]string{}
	r.Gauge("tasks", s, func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(tasks)
	})
	for i := range 5 {
		mu.Lock()
		tasks[i] = "running" // and never deleted
		mu.Unlock()
		r.SampleGauges()
	}
	g := gauge(t, r, "tasks")
	if got := values(g); !slices.Equal(got, []float64{1, 2, 3, 4, 5}) {
		t.Fatalf("series = %v", got)
	}
	if g.Owner != s.ID() || g.OwnerLabel != "worker" || g.Auto {
		t.Fatalf("gauge = %+v", g)
	}
}

func TestGaugeOfTasksThatAreDeleted(t *testing.T) {
	r := New()
	tasks := map[int]string{}
	remove := AddGauge("tasks", nil, func() int { return len(tasks) }) // Default
	defer remove()
	r.Gauge("tasks", nil, func() int { return len(tasks) })
	for i := range 5 {
		tasks[i] = "running"
		delete(tasks, i) // good housekeeping
		r.SampleGauges()
	}
	if got := values(gauge(t, r, "tasks")); !slices.Equal(got, []float64{0, 0, 0, 0, 0}) {
		t.Fatalf("series = %v", got)
	}
}

func TestGaugeLifecycle(t *testing.T) {
	r := New(WithGaugePoints(4))
	s := r.StartSession("worker", nil)
	n := 0
	s.Gauge("n", func() int { n++; return n })
	for range 10 {
		r.SampleGauges()
	}
	if got := values(gauge(t, r, "n")); !slices.Equal(got, []float64{7, 8, 9, 10}) {
		t.Fatalf("ring keeps %v, want the newest four in order", got)
	}
	// Stopping the owner freezes the gauge and drops its func.
	s.Stop()
	r.SampleGauges()
	if got := values(gauge(t, r, "n")); got[3] != 10 || n != 10 {
		t.Fatalf("sampled after the owner stopped: %v", got)
	}
	r.checks.gauges.mu.Lock()
	for _, ser := range r.checks.gauges.series {
		if ser.fn != nil {
			t.Error("func kept after the owner stopped")
		}
	}
	r.checks.gauges.mu.Unlock()

	// remove freezes too; registering again resumes the series.
	m := 0
	remove := r.Gauge("m", nil, func() int { m++; return m })
	r.SampleGauges()
	remove()
	r.SampleGauges()
	r.Gauge("m", nil, func() int { return 100 })
	r.SampleGauges()
	if got := values(gauge(t, r, "m")); !slices.Equal(got, []float64{1, 100}) {
		t.Fatalf("series = %v", got)
	}
}

type workerHeap struct {
	tasks map[int]*task
	queue []int
	done  chan int
	conf  struct {
		peers map[string]bool
	}
	owner *Session // another session: not entered
	name  string   // not a collection
}

type task struct{ id int }

// The race-safe route: the sampler asks the owner's event loop to sample;
// the heap is only ever touched on that loop. Run with -race.
func TestHeapSamplingOnOwnersLoop(t *testing.T) {
	r := New()
	s := r.StartSession("worker", nil)
	h := &workerHeap{tasks: map[int]*task{}, done: make(chan int, 8), owner: s}
	h.conf.peers = map[string]bool{"a": true}
	s.SetHeap(h)

	loop := make(chan func(), 64)
	loopDone := make(chan struct{})
	go func() { // the owner's event loop
		defer close(loopDone)
		for f := range loop {
			f()
		}
	}()
	s.SetHeapScheduler(func(sample func()) { loop <- sample })

	stop := r.StartSampler(time.Millisecond)
	for i := range 200 {
		loop <- func() { // a handler: adds a task, never removes it
			h.tasks[i] = &task{i}
			h.queue = append(h.queue, i)
		}
	}
	stop()
	stop() // idempotent
	// Deterministic tail: three more samples, each after one more task.
	for i := 200; i < 203; i++ {
		loop <- func() { h.tasks[i] = &task{i} }
		r.SampleGauges()
	}
	close(loop)
	<-loopDone

	g := gauge(t, r, `session "worker".Heap.tasks`)
	v := values(g)
	if !g.Auto || g.OwnerLabel != "worker" || len(v) < 4 || !slices.Equal(v[len(v)-3:], []float64{201, 202, 203}) {
		t.Fatalf("tasks series = %+v", g)
	}
	if !slices.IsSorted(v) {
		t.Fatalf("tasks series not growing: %v", v)
	}
	names := map[string]bool{}
	for _, g := range r.Snapshot().Gauges {
		names[g.Name] = true
	}
	for _, want := range []string{`session "worker".Heap.queue`, `session "worker".Heap.done`, `session "worker".Heap.conf.peers`} {
		if !names[want] {
			t.Errorf("no series %s in %v", want, names)
		}
	}
	if len(names) != 4 {
		t.Errorf("series = %v, want tasks, queue, done, conf.peers", names)
	}
}

// lockedHeap reports its own sizes under its lock: safe from the sampler.
type lockedHeap struct {
	mu    sync.Mutex
	conns map[string]int
}

func (h *lockedHeap) HeapSizes(report func(string, int)) {
	h.mu.Lock()
	defer h.mu.Unlock()
	report("conns", len(h.conns))
}

func TestHeapSizer(t *testing.T) {
	r := New()
	s := r.StartSession("pool", nil)
	h := &lockedHeap{conns: map[string]int{}}
	s.SetHeap(h)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // the owner mutates concurrently
		defer wg.Done()
		for i := range 100 {
			h.mu.Lock()
			h.conns[string(rune('a'+i%26))+string(rune('a'+i/26))] = i
			h.mu.Unlock()
		}
	}()
	for range 5 {
		r.SampleGauges()
	}
	wg.Wait()
	r.SampleGauges()
	v := values(gauge(t, r, `session "pool".Heap.conns`))
	if len(v) != 6 || v[5] != 100 {
		t.Fatalf("series = %v", v)
	}
}

func TestHeapSamplingIsOptIn(t *testing.T) {
	r := New()
	s := r.StartSession("worker", nil)
	s.SetHeap(map[string]any{"tasks": map[int]int{1: 1}, "queue": []int{1, 2}, "name": "w"})
	r.SampleGauges()
	if gs := r.Snapshot().Gauges; len(gs) != 0 {
		t.Fatalf("heap sampled without scheduler, HeapSizer or unsafe sampling: %+v", gs)
	}
	r.SetUnsafeHeapSampling(true)
	r.SampleGauges()
	var names []string
	for _, g := range r.Snapshot().Gauges {
		names = append(names, g.Name)
	}
	want := []string{`session "worker".Heap`, `session "worker".Heap["queue"]`, `session "worker".Heap["tasks"]`}
	if !slices.Equal(names, want) {
		t.Fatalf("series = %q, want %q", names, want)
	}
	// The owner may also sample on its own, whatever the registry says.
	r.SetUnsafeHeapSampling(false)
	s.SampleHeap()
	if v := values(gauge(t, r, `session "worker".Heap["queue"]`)); !slices.Equal(v, []float64{2, 2}) {
		t.Fatalf("queue = %v", v)
	}
	s.Stop()
	s.SampleHeap()
	if v := values(gauge(t, r, `session "worker".Heap["queue"]`)); len(v) != 2 {
		t.Fatalf("sampled after stop: %v", v)
	}
}

func TestHeapSampleBounds(t *testing.T) {
	r := New()
	s := r.StartSession("big", nil)
	heap := map[string]any{}
	for i := range 100 {
		heap[string(rune('A'+i/26))+string(rune('a'+i%26))] = []int{i}
	}
	type deep struct {
		a struct {
			b struct {
				c struct{ d struct{ m map[int]int } }
			}
		}
	}
	heap["deep"] = &deep{}
	s.SetHeap(heap)
	s.SampleHeap()
	if n := len(r.Snapshot().Gauges); n != HeapSampleMax {
		t.Fatalf("%d series, want at most %d", n, HeapSampleMax)
	}
	s2 := r.StartSession("deep", nil)
	d := &deep{}
	s2.SetHeap(d)
	s2.SampleHeap()
	for _, g := range r.Snapshot().Gauges {
		if g.OwnerLabel == "deep" {
			t.Fatalf("collection deeper than %d sampled: %s", HeapSampleDepth, g.Name)
		}
	}
}
