package fleet

import (
	"context"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/common/model"
)

// BenchmarkFleet analyses a backfilled fleet (100 instances; 2,000
// instances, 10,000 series of 2,000 points with -fleet.scale) against a real
// Prometheus. Its baseline, fetch, asks Prometheus's query API for the same
// series in the same batches and drops them, as leakcheck did before it read
// through remote read; fetch-remote-read does the same through remote read
// (decoding the chunks and aligning them to the steps). leakcheck is Analyze
// (through remote read), leakcheck-query-api Analyze made to use the query
// API. Each reports the peak Go heap.
//
//	go test ./report/fleet -run '^$' -bench Fleet -benchtime 3x [-fleet.scale]
func BenchmarkFleet(b *testing.B) {
	f := simSize()
	url := backfill(b, f)
	opts := Options{URL: url, End: f.end, Range: f.end.Sub(f.start()) + f.interval, Step: f.interval, Selector: `{job="sim"}`}
	ctx := context.Background()

	for _, remote := range []bool{false, true} {
		name := "fetch"
		if remote {
			name = "fetch-remote-read"
		}
		b.Run(name, func(b *testing.B) {
			peak := watchHeap(b)
			for b.Loop() {
				n, err := fetchOnly(ctx, opts, remote)
				if err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(float64(n), "points")
			}
			peak()
		})
	}
	for _, queryAPI := range []bool{false, true} {
		name := "leakcheck"
		if queryAPI {
			name = "leakcheck-query-api"
		}
		b.Run(name, func(b *testing.B) {
			o := opts
			o.queryAPIOnly = queryAPI
			peak := watchHeap(b)
			for b.Loop() {
				res, err := Analyze(ctx, o)
				if err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(float64(res.Points), "points")
			}
			peak()
		})
	}
}

// fetchOnly reads the series Analyze reads, in the same batches fetched
// ahead the same way, through remote read or the query API, and drops them;
// it returns how many points came.
func fetchOnly(ctx context.Context, opts Options, remote bool) (int, error) {
	o, err := opts.withDefaults(time.Now())
	if err != nil {
		return 0, err
	}
	c, err := newClient(o)
	if err != nil {
		return 0, err
	}
	sel, _ := selectorMatchers(o.Selector)
	selMatchers, err := parseMatchers(sel)
	if err != nil {
		return 0, err
	}
	values, _, _, err := c.instances(ctx, sel)
	if err != nil {
		return 0, err
	}
	var batches []batch
	for b := range slices.Chunk(values, o.Batch) {
		batches = append(batches, batch{
			promql: strings.Join(nonEmpty(sel, instanceMatcher(b)), ","),
			remote: append(slices.Clip(selMatchers), instanceRemoteMatcher(b)),
		})
	}
	fetch := func(ctx context.Context, b batch) ([]fetched, error) {
		if remote {
			return c.readBatch(ctx, defaultMetrics(), b.remote)
		}
		return c.fetchAll(ctx, defaultMetrics(), b.promql)
	}
	n := 0
	for answers, err := range prefetch(ctx, batches, o.Concurrency, fetch) {
		if err != nil {
			return 0, err
		}
		for _, a := range answers {
			for _, s := range a.matrix {
				n += len(s.Values)
			}
		}
	}
	return n, nil
}

// watchHeap samples the Go heap in use every 20ms until the returned
// function is called, which reports the peak as peak-heap-MB.
func watchHeap(b *testing.B) (stop func()) {
	runtime.GC()
	var (
		mu   sync.Mutex
		peak uint64
		done = make(chan struct{})
		wg   sync.WaitGroup
	)
	sample := func() {
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		mu.Lock()
		peak = max(peak, m.HeapInuse)
		mu.Unlock()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				sample()
			}
		}
	}()
	return func() {
		close(done)
		wg.Wait()
		sample()
		b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MB")
	}
}

// BenchmarkAnalyzeOnly measures the analysis alone, without Prometheus:
// the simulated fleet's instances (2,000 with -fleet.scale: 10,000 series
// of 2,000 points) are built in memory one at a time, off the clock, and
// analysed as Analyze does each instance of a batch.
func BenchmarkAnalyzeOnly(b *testing.B) {
	f := simSize()
	hours := f.end.Sub(f.start()).Hours()
	o, err := Options{URL: "http://127.0.0.1:9", End: f.end, Range: f.end.Sub(f.start()), Step: f.interval}.withDefaults(time.Now())
	if err != nil {
		b.Fatal(err)
	}
	metrics := map[string]metric{}
	for _, m := range defaultMetrics() {
		metrics[m.source] = m
	}
	build := func(i int) *instance {
		rnd := rand.New(rand.NewPCG(uint64(i), 1))
		vals := make([][]model.SamplePair, 5)
		for p := range f.points {
			t := f.start().Add(time.Duration(p) * f.interval)
			s := f.sample(i, t.Sub(f.start()).Hours(), hours, rnd)
			ts := model.TimeFromUnixNano(t.UnixNano())
			for j, v := range []float64{s.start, s.fds, s.maxFDs, s.goroutines, s.rss} {
				vals[j] = append(vals[j], model.SamplePair{Timestamp: ts, Value: model.SampleValue(v)})
			}
		}
		in := &instance{id: simInstance(i)}
		for j, src := range []string{"process_start_time_seconds", "process_open_fds", "process_max_fds", "go_goroutines", "process_resident_memory_bytes"} {
			in.add(metrics[src], &model.SampleStream{Values: vals[j]})
		}
		return in
	}
	peak := watchHeap(b)
	for b.Loop() {
		a := &analyzer{opts: o, missing: map[string]int{}}
		for i := range f.instances {
			b.StopTimer()
			in := build(i)
			b.StartTimer()
			a.analyse(in)
		}
		res := a.result()
		b.ReportMetric(float64(res.Points), "points")
		b.ReportMetric(float64(len(res.Findings)), "findings")
	}
	peak()
}
