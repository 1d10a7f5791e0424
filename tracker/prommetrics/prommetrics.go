// Package prommetrics exports a tracker registry as Prometheus metrics, so
// that a fleet's Prometheus holds each daemon's tracked records and gauges
// and `leakcheck report --prometheus` can trend-test them with the rest. It
// lives beside the tracker so that the tracker itself stays free of
// dependencies.
//
//	prometheus.MustRegister(prommetrics.NewCollector(tracker.Default))
//
// The metrics, all prefixed leakcheck_tracker_:
//
//	live_records{kind,owner_kind}  gauge    records live now; owner_kind is
//	                                        root, session, or stopped (the
//	                                        owner stopped: leftovers for certain)
//	tracked_total{kind}            counter  records tracked since start
//	released_total{kind}           counter  records released since start (a
//	                                        session's release is its stop)
//	misuse_total{kind}             counter  double releases, releases after
//	                                        stop and the like, by kind
//	unreleased_total               counter  records the garbage collector
//	                                        found while still registered
//	retained_records               gauge    released records and stopped
//	                                        sessions still reachable at the
//	                                        last retention check
//	collection_items{collection}   gauge    the latest sampled size of each
//	                                        gauge, summed over its owners
//
// Owners' labels are not exported: they name connections and requests, and
// would make a series per session.
package prommetrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/leakcheck/leakcheck/tracker"
)

const namespace = "leakcheck_tracker_"

// Owner kinds of live_records.
const (
	OwnerRoot    = "root"
	OwnerSession = "session"
	OwnerStopped = "stopped"
)

var (
	liveDesc = prometheus.NewDesc(namespace+"live_records",
		"Records live in the tracker now, by kind and by what owns them: the root, a running session, or a stopped one (leftovers for certain).",
		[]string{"kind", "owner_kind"}, nil)
	trackedDesc = prometheus.NewDesc(namespace+"tracked_total",
		"Records tracked since start, by kind.",
		[]string{"kind"}, nil)
	releasedDesc = prometheus.NewDesc(namespace+"released_total",
		"Records released since start, by kind (a session is released when it stops).",
		[]string{"kind"}, nil)
	misuseDesc = prometheus.NewDesc(namespace+"misuse_total",
		"Misuse of the tracker seen since start (double release, release after stop, ...), by kind.",
		[]string{"kind"}, nil)
	unreleasedDesc = prometheus.NewDesc(namespace+"unreleased_total",
		"Tracked objects the garbage collector found unreachable while still registered: nobody released them.",
		nil, nil)
	retainedDesc = prometheus.NewDesc(namespace+"retained_records",
		"Released records and stopped sessions still reachable after garbage collection at the last retention check.",
		nil, nil)
	gaugeDesc = prometheus.NewDesc(namespace+"collection_items",
		"The latest sampled size of each tracker gauge (a map, queue or cache), summed over its owners.",
		[]string{"collection"}, nil)
)

// Collector is a prometheus.Collector of a tracker registry. Each scrape
// takes one Snapshot of the registry: its cost grows with the live records
// (about half a second for a million).
type Collector struct {
	reg *tracker.Registry
}

// NewCollector returns a collector of r, or of tracker.Default when r is nil.
func NewCollector(r *tracker.Registry) *Collector {
	if r == nil {
		r = tracker.Default
	}
	return &Collector{reg: r}
}

// Describe sends the descriptors of every metric the collector exports.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{liveDesc, trackedDesc, releasedDesc, misuseDesc, unreleasedDesc, retainedDesc, gaugeDesc} {
		ch <- d
	}
}

// Collect sends the registry's metrics as they are now.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	s := c.reg.Snapshot()
	type liveKey struct {
		kind  tracker.Kind
		owner string
	}
	live := map[liveKey]int{}
	for _, r := range s.Records {
		owner := OwnerSession
		switch {
		case r.Owner == 0:
			owner = OwnerRoot
		case r.OwnerStopped:
			owner = OwnerStopped
		}
		live[liveKey{r.Kind, owner}]++
	}
	for k, n := range live {
		ch <- prometheus.MustNewConstMetric(liveDesc, prometheus.GaugeValue, float64(n), string(k.kind), k.owner)
	}
	for kind, n := range c.reg.Counts() {
		ch <- prometheus.MustNewConstMetric(trackedDesc, prometheus.CounterValue, float64(n.Tracked), string(kind))
		ch <- prometheus.MustNewConstMetric(releasedDesc, prometheus.CounterValue, float64(n.Released), string(kind))
	}
	for kind, n := range c.reg.MisuseCounts() {
		ch <- prometheus.MustNewConstMetric(misuseDesc, prometheus.CounterValue, float64(n), string(kind))
	}
	ch <- prometheus.MustNewConstMetric(unreleasedDesc, prometheus.CounterValue, float64(s.UnreleasedTotal))
	ch <- prometheus.MustNewConstMetric(retainedDesc, prometheus.GaugeValue, float64(len(s.Retained)))
	items := map[string]float64{}
	for _, g := range s.Gauges {
		if len(g.Points) > 0 {
			items[g.Name] += float64(g.Points[len(g.Points)-1].Value)
		}
	}
	for name, v := range items {
		ch <- prometheus.MustNewConstMetric(gaugeDesc, prometheus.GaugeValue, v, name)
	}
}
