package report

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/leakcheck/leakcheck/tracker"
)

// Options configures Analyze. A command builds it once from its flags; every
// analysis gets the same trend test.
type Options struct {
	// Trend configures every trend test.
	Trend TrendOptions
	// Heap configures the analysis of heap and tracker profiles; its Trend
	// is replaced by Trend above.
	Heap HeapOptions
	// BlockedFor is how long a goroutine must have been blocked to be a
	// finding; 0 means DefaultBlockedFor.
	BlockedFor time.Duration
	// AtExit says tracker snapshots were taken at exit: every live record
	// is a leftover.
	AtExit bool
	// Top is how many rows each table lists; 0 means DefaultTop.
	Top int
	// Binary is the executable of the program whose heap dumps are read:
	// its symbols name the global variables that hold memory.
	Binary string
	// PathTo is an allocation site whose objects' paths from the roots
	// heap dumps report (see HeapDumpOptions.PathTo).
	PathTo string
}

// Analyze runs the analysis each kind of input asks for, and returns what
// they found together. Inputs of one Source and kind are taken of one
// process: heap and tracker profiles are compared or trend-tested as a
// series (see AnalyzeProfiles), goroutine dumps grouped and trend-tested by
// stack, tracker snapshots give their findings and the series of their
// gauges; saved reports are merged as they are. A base, when not nil, is
// the heap or tracker profile the first series of its kind is compared
// with.
func Analyze(inputs []*Input, base *Input, opts Options) (Result, error) {
	var res Result
	opts.Heap.Trend = opts.Trend
	if opts.Top <= 0 {
		opts.Top = DefaultTop
	}
	if base != nil && base.Kind != InputHeap && base.Kind != InputTrackerProfile && base.Kind != InputHeapDump {
		return res, fmt.Errorf("base %s: a %s, not a heap or tracker profile or a heap dump", base.Name, base.Kind)
	}
	for _, group := range groupInputs(inputs) {
		switch group[0].Kind {
		case InputHeap, InputTrackerProfile:
			profiles := group
			if base != nil && base.Kind == group[0].Kind {
				profiles = append([]*Input{base}, group...)
				base = nil
			}
			pa, err := AnalyzeProfiles(profiles, opts.Heap)
			if err != nil {
				return res, err
			}
			res.Add(*pa)
		case InputGoroutine:
			res.Add(analyzeGoroutines(group, opts))
		case InputSnapshot:
			res.Add(analyzeSnapshots(group, opts))
		case InputHeapDump:
			dumps := group
			if base != nil && base.Kind == InputHeapDump {
				dumps, base = append([]*Input{base}, group...), nil
			}
			r, err := analyzeHeapDumps(dumps, opts)
			if err != nil {
				return res, err
			}
			res.Add(r)
		case InputReport:
			for _, in := range group {
				r := in.Report
				res.Add(Result{Findings: r.Findings, Series: r.Series, Tables: r.Tables})
			}
		}
	}
	if base != nil {
		return res, fmt.Errorf("base %s: no %s to compare it with", base.Name, base.Kind)
	}
	return res, nil
}

// analyzeHeapDumps analyses the newest of a process's heap dumps, with the
// oldest as its base when there are several.
func analyzeHeapDumps(dumps []*Input, opts Options) (Result, error) {
	last := dumps[len(dumps)-1]
	ho := HeapDumpOptions{Name: last.Name, Binary: opts.Binary, PathTo: opts.PathTo, Top: opts.Top}
	if len(dumps) > 1 {
		ho.Base, ho.BaseName = dumps[0].HeapDump, dumps[0].Name
	}
	return AnalyzeHeapDump(last.HeapDump, ho)
}

// DescribeInputs says how many inputs of each kind there are, for a report's
// metadata: "3 heap, 1 goroutineleak".
func DescribeInputs(inputs []*Input) string {
	counts := map[InputKind]int{}
	var kinds []InputKind
	for _, in := range inputs {
		k := in.Kind
		if k == InputGoroutine && in.Goroutines.Leak {
			k = "goroutineleak"
		}
		if counts[k] == 0 {
			kinds = append(kinds, k)
		}
		counts[k]++
	}
	var parts []string
	for _, k := range kinds {
		parts = append(parts, fmt.Sprintf("%d %s", counts[k], k))
	}
	return strings.Join(parts, ", ")
}

// groupInputs groups the inputs by source and kind, each group in time order
// (inputs with equal times stay in the given order), the groups in the order
// their first inputs came.
func groupInputs(inputs []*Input) [][]*Input {
	type key struct {
		source string
		kind   InputKind
	}
	var order []key
	groups := map[key][]*Input{}
	for _, in := range inputs {
		k := key{in.Source, in.Kind}
		if groups[k] == nil {
			order = append(order, k)
		}
		groups[k] = append(groups[k], in)
	}
	out := make([][]*Input, 0, len(order))
	for _, k := range order {
		g := groups[k]
		if k.kind != InputReport {
			slices.SortStableFunc(g, func(a, b *Input) int { return a.Time.Compare(b.Time) })
		}
		out = append(out, g)
	}
	return out
}

// analyzeGoroutines groups the latest dump's goroutines and reports its
// findings; several dumps of one process also make series by stack.
func analyzeGoroutines(group []*Input, opts Options) Result {
	dumps := make([]*GoroutineDump, len(group))
	for i, in := range group {
		dumps[i] = in.Goroutines
		if dumps[i].Time.IsZero() {
			dumps[i].Time = in.Time
		}
	}
	last := group[len(group)-1]
	series, findings := AnalyzeGoroutines(dumps, GoroutineOptions{BlockedFor: opts.BlockedFor}, opts.Trend)
	return Result{Findings: findings, Series: series, Tables: []Table{goroutineTable(last, opts.Top)}}
}

// goroutineTable lists the goroutines of a dump grouped by state and stack,
// largest groups first.
func goroutineTable(in *Input, top int) Table {
	d := in.Goroutines
	what := "goroutines"
	if d.Leak {
		what = "leaked goroutines"
	}
	t := Table{
		Title:   fmt.Sprintf("%s by state and stack in %s (%d in all)", what, in.Name, d.Total),
		Columns: []string{"COUNT", "STATE", "WAIT", "WHERE", "CREATED BY"},
		Rows:    [][]string{},
	}
	groups := GroupGoroutines(d)
	slices.SortStableFunc(groups, func(a, b GoroutineGroup) int { return cmp.Compare(b.Count, a.Count) })
	for _, g := range groups[:min(top, len(groups))] {
		where := "-"
		if f := TopFrames(g.Stack, 1); len(f) > 0 {
			where = f[0].String()
		}
		wait := "-"
		if g.MaxWait > 0 {
			wait = g.MaxWait.String()
			if g.MinWait != g.MaxWait {
				wait = g.MinWait.String() + "-" + wait
			}
		}
		created := "-"
		if g.CreatedBy.Func != "" {
			created = g.CreatedBy.String()
		}
		state := cmp.Or(g.State, "-")
		t.Rows = append(t.Rows, []string{strconv.Itoa(g.Count), state, wait, where, created})
	}
	return t
}

// analyzeSnapshots reports the findings of the latest snapshot, and
// trend-tests the gauges of all of them merged, with the count of live
// records of each kind, snapshot by snapshot (zero where a kind has none).
func analyzeSnapshots(group []*Input, opts Options) Result {
	last := group[len(group)-1].Snapshot
	snapOpts := SnapshotOptions{AtExit: opts.AtExit, Trend: opts.Trend}
	res := FromSnapshot(last, snapOpts)
	if len(group) == 1 {
		return res
	}
	// Drop the last snapshot's growth findings: its gauges are tested
	// again below with the points of every snapshot.
	fs := slices.DeleteFunc(res.Findings, func(f Finding) bool { return f.Kind == KindGrowth })

	var b SeriesBuilder
	var kinds []tracker.Kind
	for _, in := range group {
		for _, r := range in.Snapshot.Records {
			if r.State == tracker.Live && !slices.Contains(kinds, r.Kind) {
				kinds = append(kinds, r.Kind)
			}
		}
	}
	slices.Sort(kinds)
	for _, in := range group {
		for _, g := range FromSnapshot(in.Snapshot, SnapshotOptions{}).Series {
			for _, p := range g.Points {
				b.Add(g, p.Time, p.Value)
			}
		}
		live := map[tracker.Kind]int{}
		for _, r := range in.Snapshot.Records {
			if r.State == tracker.Live {
				live[r.Kind]++
			}
		}
		for _, k := range kinds {
			b.Add(Series{Name: "tracker.live." + string(k), Unit: "records"}, in.Time, float64(live[k]))
		}
	}
	series := b.Series()
	for i := range series {
		s := &series[i]
		// Snapshots of one process repeat the gauges' recent points.
		slices.SortStableFunc(s.Points, func(a, b Point) int { return a.Time.Compare(b.Time) })
		s.Points = slices.CompactFunc(s.Points, func(a, b Point) bool { return a.Time.Equal(b.Time) })
	}
	return Result{Findings: append(fs, Growth(series, opts.Trend)...), Series: series}
}
