package prommetrics

import (
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/leakcheck/leakcheck/tracker"
)

// TestCollector builds a registry in known states and compares what the
// collector exports with the expected exposition text.
func TestCollector(t *testing.T) {
	tests := []struct {
		name  string
		setup func(r *tracker.Registry)
		want  string
	}{
		{
			name:  "empty",
			setup: func(*tracker.Registry) {},
			want: `
# HELP leakcheck_tracker_retained_records Released records and stopped sessions still reachable after garbage collection at the last retention check.
# TYPE leakcheck_tracker_retained_records gauge
leakcheck_tracker_retained_records 0
# HELP leakcheck_tracker_unreleased_total Tracked objects the garbage collector found unreachable while still registered: nobody released them.
# TYPE leakcheck_tracker_unreleased_total counter
leakcheck_tracker_unreleased_total 0
`,
		},
		{
			name: "records by owner, misuse, gauges",
			setup: func(r *tracker.Registry) {
				r.Track("task", nil, "a")
				r.Track("task", nil, "b")
				h := r.Track("task", nil, "released")
				h.Release()
				h.Release() // double release
				s := r.StartSession("worker", nil)
				r.Track("socket", s, "kept")
				gone := r.StartSession("handler", nil)
				r.Track("socket", gone, "left over")
				gone.Stop()
				queue := []int{1, 2, 3}
				r.Gauge("queue", s, func() int { return len(queue) })
				r.Gauge("queue", nil, func() int { return 2 })
				r.SampleGauges()
			},
			want: `
# HELP leakcheck_tracker_collection_items The latest sampled size of each tracker gauge (a map, queue or cache), summed over its owners.
# TYPE leakcheck_tracker_collection_items gauge
leakcheck_tracker_collection_items{collection="queue"} 5
# HELP leakcheck_tracker_live_records Records live in the tracker now, by kind and by what owns them: the root, a running session, or a stopped one (leftovers for certain).
# TYPE leakcheck_tracker_live_records gauge
leakcheck_tracker_live_records{kind="session",owner_kind="root"} 1
leakcheck_tracker_live_records{kind="socket",owner_kind="session"} 1
leakcheck_tracker_live_records{kind="socket",owner_kind="stopped"} 1
leakcheck_tracker_live_records{kind="task",owner_kind="root"} 2
# HELP leakcheck_tracker_misuse_total Misuse of the tracker seen since start (double release, release after stop, ...), by kind.
# TYPE leakcheck_tracker_misuse_total counter
leakcheck_tracker_misuse_total{kind="double-release"} 1
# HELP leakcheck_tracker_released_total Records released since start, by kind (a session is released when it stops).
# TYPE leakcheck_tracker_released_total counter
leakcheck_tracker_released_total{kind="session"} 1
leakcheck_tracker_released_total{kind="socket"} 0
leakcheck_tracker_released_total{kind="task"} 1
# HELP leakcheck_tracker_retained_records Released records and stopped sessions still reachable after garbage collection at the last retention check.
# TYPE leakcheck_tracker_retained_records gauge
leakcheck_tracker_retained_records 0
# HELP leakcheck_tracker_tracked_total Records tracked since start, by kind.
# TYPE leakcheck_tracker_tracked_total counter
leakcheck_tracker_tracked_total{kind="session"} 2
leakcheck_tracker_tracked_total{kind="socket"} 2
leakcheck_tracker_tracked_total{kind="task"} 3
# HELP leakcheck_tracker_unreleased_total Tracked objects the garbage collector found unreachable while still registered: nobody released them.
# TYPE leakcheck_tracker_unreleased_total counter
leakcheck_tracker_unreleased_total 0
`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := tracker.New(tracker.WithStacks(tracker.StacksOff))
			tt.setup(r)
			c := NewCollector(r)
			if err := testutil.CollectAndCompare(c, strings.NewReader(tt.want)); err != nil {
				t.Error(err)
			}
			problems, err := testutil.CollectAndLint(c)
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range problems {
				t.Errorf("lint: %s: %s", p.Metric, p.Text)
			}
			// It registers with a real registry, next to the default
			// collectors, without a clash.
			reg := prometheus.NewRegistry()
			if err := reg.Register(c); err != nil {
				t.Fatal(err)
			}
			if _, err := reg.Gather(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// payload is big enough for the runtime to run its cleanup alone.
type payload struct{ buf [64]byte }

// keep holds what TestCollectorChecks retains on purpose.
var keep []*payload

// TestCollectorChecks checks the counts that come from the tracker's GC-aware
// checks: an object collected while still registered (unreleased), and one
// still reachable after it was dropped (retained).
func TestCollectorChecks(t *testing.T) {
	r := tracker.New(tracker.WithStacks(tracker.StacksOff))
	func() {
		lost := &payload{}
		tracker.TrackObject(r, lost, "buffer", nil, "lost")
	}()
	held := &payload{}
	keep = append(keep, held)
	tracker.Watch(r, held, "buffer", nil, "held")
	t.Cleanup(func() { keep = nil })

	deadline := time.Now().Add(10 * time.Second)
	for {
		runtime.GC()
		if _, total := r.Unreleased(); total > 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if n := len(r.CheckRetained()); n != 1 {
		t.Fatalf("CheckRetained: %d retained, want 1", n)
	}
	c := NewCollector(r)
	if got := testutil.ToFloat64(prometheus.CollectorFunc(func(ch chan<- prometheus.Metric) { collectOnly(c, ch, "leakcheck_tracker_unreleased_total") })); got != 1 {
		t.Errorf("unreleased_total %v, want 1", got)
	}
	if got := testutil.ToFloat64(prometheus.CollectorFunc(func(ch chan<- prometheus.Metric) { collectOnly(c, ch, "leakcheck_tracker_retained_records") })); got != 1 {
		t.Errorf("retained_records %v, want 1", got)
	}
}

// collectOnly sends c's metrics named name.
func collectOnly(c prometheus.Collector, ch chan<- prometheus.Metric, name string) {
	all := make(chan prometheus.Metric)
	go func() { c.Collect(all); close(all) }()
	for m := range all {
		if strings.Contains(m.Desc().String(), `"`+name+`"`) {
			ch <- m
		}
	}
}
