package report

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/leakcheck/leakcheck/probes"
)

// Point is one sample of a series.
type Point struct {
	Time  time.Time `json:"t"`
	Value float64   `json:"v"`
}

// Series is a measure sampled over time: a count of descriptors, the length of
// a map, resident memory. Series sampled from /proc are named "fds",
// "fds.socket", "sockets.tcp.CLOSE_WAIT", "threads", "rss_bytes"; those from a
// Go daemon "goroutines", "heap_inuse_bytes"; tracker gauges keep their names.
type Series struct {
	Name string `json:"name"`
	// Unit is what Value counts, e.g. "fds", "bytes", "goroutines", "items".
	Unit string `json:"unit,omitempty"`
	// Owner is who owns the measured collection, if anyone.
	Owner  string  `json:"owner,omitempty"`
	Points []Point `json:"points"`
	// Monotone marks a measure that cannot fall by construction, such as a
	// high-water mark: it is charted but never trend-tested, since every new
	// peak of a steady process would read as growth.
	Monotone bool `json:"monotone,omitempty"`
	// Limit is the ceiling the measure runs into (RLIMIT_NOFILE for
	// descriptors, the cgroup's memory.max for memory); 0 when none is known.
	Limit float64 `json:"limit,omitempty"`
	// Trend is the verdict of the trend test, once the series was analysed.
	Trend *Trend `json:"trend,omitempty"`
}

// SeriesBuilder builds series point by point. A series is known by its
// name and owner. The zero value is ready to use.
type SeriesBuilder struct {
	index  map[[2]string]int
	series []Series
}

// Add appends a point to the series with like's name and owner, starting it
// as like (without like's points) when it is new, and returns the series.
func (b *SeriesBuilder) Add(like Series, t time.Time, v float64) *Series {
	key := [2]string{like.Name, like.Owner}
	i, ok := b.index[key]
	if !ok {
		if b.index == nil {
			b.index = map[[2]string]int{}
		}
		i = len(b.series)
		b.index[key] = i
		like.Points = nil
		b.series = append(b.series, like)
	}
	s := &b.series[i]
	s.Points = append(s.Points, Point{Time: t, Value: v})
	return s
}

// Get returns the series with like's name and owner, if there is one.
func (b *SeriesBuilder) Get(like Series) (*Series, bool) {
	i, ok := b.index[[2]string{like.Name, like.Owner}]
	if !ok {
		return nil, false
	}
	return &b.series[i], true
}

// AddMetrics appends a probe's metrics taken at t, each to its series, with
// their units, monotony and limits. A series' limit is the latest known.
func (b *SeriesBuilder) AddMetrics(t time.Time, ms []probes.Metric) {
	for _, m := range ms {
		s := b.Add(Series{Name: m.Name, Unit: m.Unit}, t, m.Value)
		s.Monotone = m.Monotone
		if m.Limit > 0 {
			s.Limit = m.Limit
		}
	}
}

// Series returns a copy of the series built, sorted by name.
func (b *SeriesBuilder) Series() []Series {
	out := slices.Clone(b.series)
	for i := range out {
		out[i].Points = slices.Clone(out[i].Points)
	}
	slices.SortFunc(out, func(a, b Series) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// Analyze runs AnalyzeTrend on the series' points, stores the result in
// s.Trend and returns it.
func (s *Series) Analyze(opts TrendOptions) Trend {
	opts.Limit = s.Limit
	t := AnalyzeTrend(s.Points, opts)
	s.Trend = &t
	return t
}

// NearLimit is the share of its limit at which a series is a limit finding
// even without growth.
const NearLimit = 0.9

// Growth analyses every series in place (see Series.Analyze), except monotone
// ones, and returns a growth finding, of severity warning, for each one found
// growing. The finding's subject is the series name. A growing series with
// a limit carries its level, the limit and the projected time to reach it
// (eta_seconds); reaching it within LimitHorizon makes the finding an error.
// A series at NearLimit of its limit or above, growing or not, is also a
// limit finding.
func Growth(series []Series, opts TrendOptions) []Finding {
	var fs []Finding
	for i := range series {
		s := &series[i]
		if s.Monotone {
			continue
		}
		t := s.Analyze(opts)
		if f, ok := limitFinding(s); ok {
			fs = append(fs, f)
		}
		if t.Verdict != VerdictGrowing {
			continue
		}
		f := Finding{
			Kind:       KindGrowth,
			Severity:   SeverityWarning,
			Subject:    s.Name,
			Owner:      s.Owner,
			Count:      1,
			Evidence:   Evidence{Series: s.Name, Trend: &t},
			Suggestion: growthSuggestion(s.Name),
			Signature:  Signature(KindGrowth, s.Name, nil),
		}
		last := s.Points[len(s.Points)-1].Value
		if eta, ok := t.ETA(last, s.Limit); ok {
			f.Evidence.Values = map[string]float64{"level": last, "limit": s.Limit, "eta_seconds": eta.Seconds()}
			if eta <= LimitHorizon {
				f.Severity = SeverityError
			}
		}
		fs = append(fs, f)
	}
	return fs
}

// limitFinding reports a series whose latest value is at NearLimit of its
// limit or above.
func limitFinding(s *Series) (Finding, bool) {
	if s.Limit <= 0 || len(s.Points) == 0 {
		return Finding{}, false
	}
	last := s.Points[len(s.Points)-1].Value
	if last < NearLimit*s.Limit {
		return Finding{}, false
	}
	subject := s.Name + " near its limit"
	return Finding{
		Kind: KindLimit, Severity: SeverityError,
		Subject: subject, Owner: s.Owner, Count: 1,
		Evidence: Evidence{Series: s.Name, Values: map[string]float64{"level": last, "limit": s.Limit}},
		Suggestion: fmt.Sprintf("%s is at %.0f%% of its limit: find what holds so many, or raise the limit if the load is real",
			s.Name, 100*last/s.Limit),
		Signature: Signature(KindLimit, subject, nil),
	}, true
}

// growthSuggestion says where to look when the named series grows.
func growthSuggestion(name string) string {
	switch {
	case name == "sockets.tcp.CLOSE_WAIT" || name == "sockets.tcp6.CLOSE_WAIT":
		return "peers closed these connections but the program did not: close the socket when a read returns EOF or an error"
	case name == "sockets" || strings.HasPrefix(name, "sockets."):
		return "connections accumulate: close each one when done, or bound the pool that keeps them"
	case name == "fds.socket":
		return "sockets accumulate: find where connections are dialed or accepted and make sure every path closes them"
	case name == "fds" || strings.HasPrefix(name, "fds."):
		return "descriptors accumulate: find where files, sockets or pipes are opened and not closed"
	case name == "threads":
		return "OS threads accumulate: look for blocking syscalls or cgo calls that never return, or LockOSThread without UnlockOSThread"
	case name == "goroutines":
		return "goroutines accumulate: take two goroutine dumps (debug=2) and see which stack multiplies"
	case strings.HasSuffix(name, "_bytes"):
		return "memory keeps growing: compare a base and a later heap profile to find the allocation site that grows"
	case name == "children" || name == "zombies":
		return "child processes accumulate: Wait for every child the program starts"
	}
	return fmt.Sprintf("prune %s: delete entries when their work is done, or bound its size", name)
}

// WriteSeries writes series to w, for --series: as CSV rows of time, series
// and value when asCSV is set, as a JSON array of Series otherwise.
func WriteSeries(w io.Writer, series []Series, asCSV bool) error {
	if !asCSV {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(series)
	}
	cw := csv.NewWriter(w)
	cw.Write([]string{"time", "series", "value"})
	for _, s := range series {
		for _, p := range s.Points {
			cw.Write([]string{p.Time.UTC().Format(time.RFC3339Nano), s.Name, strconv.FormatFloat(p.Value, 'f', -1, 64)})
		}
	}
	cw.Flush()
	return cw.Error()
}
