package report

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/leakcheck/leakcheck/probes"
	"github.com/leakcheck/leakcheck/tracker"
)

// ProcRecorder collects the samples of one process taken from outside (by
// `leakcheck run` and `leakcheck watch`) as they come, keeping only what the
// analysis needs: each series' points, the baseline and the last two full
// samples, the count of each leftover group at each full sample, the
// goroutine dumps of a Go daemon (their stacks shared), its first and latest
// heap profiles and its latest goroutineleak profile. A run of hours keeps
// no sample's descriptors but those of three samples.
type ProcRecorder struct {
	start  time.Time
	warmup time.Duration
	series SeriesBuilder
	// baseline is the first full sample after the warm-up: leftovers are
	// what was opened after it.
	baseline   *probes.ProcSample
	prev, last *probes.ProcSample // the last two full samples
	full       int                // how many full samples were added
	samples    int
	dumps      []*GoroutineDump
	stacks     map[string][]Frame // the dumps' distinct stacks, shared
	heap       bool               // a heap_inuse_bytes series was sampled
	fullTimes  []time.Time        // when the full samples were taken
	// heapFirst and heapLast are the first heap profile after the warm-up
	// and the latest: the sites that grew between them name what holds a
	// growing heap.
	heapFirst, heapLast *Input
	// leaks is the latest goroutineleak profile; noLeaks says the daemon
	// does not serve one.
	leaks   *GoroutineDump
	noLeaks bool
	// live is the latest snapshot the daemon's tracker handler served.
	live []byte
	// groups counts each group of leftovers (descriptors and sockets
	// opened since the baseline) at every full sample after it.
	groups SeriesBuilder
}

// NewProcRecorder returns a recorder for a process watched from start; the
// first full sample taken warmup or more after start is the baseline.
func NewProcRecorder(start time.Time, warmup time.Duration) *ProcRecorder {
	return &ProcRecorder{start: start, warmup: warmup}
}

// Warm reports whether t is past the warm-up.
func (r *ProcRecorder) Warm(t time.Time) bool { return t.Sub(r.start) >= r.warmup }

// Baseline returns the baseline sample, or nil before there is one.
func (r *ProcRecorder) Baseline() *probes.ProcSample { return r.baseline }

// LastFull returns the last full sample, or nil before there is one.
func (r *ProcRecorder) LastFull() *probes.ProcSample { return r.last }

// Full returns how many full samples were added.
func (r *ProcRecorder) Full() int { return r.full }

// Samples returns how many process samples were added.
func (r *ProcRecorder) Samples() int { return r.samples }

// AddProc records a sample of the process, full or counting.
func (r *ProcRecorder) AddProc(ps *probes.ProcSample) {
	r.samples++
	ms := ps.Metrics()
	r.series.AddMetrics(ps.Time, ms)
	if ps.Counted {
		return
	}
	r.zeroFill(ps.Time, ms)
	r.full++
	r.prev, r.last = r.last, ps
	switch {
	case r.baseline == nil && r.Warm(ps.Time):
		r.baseline = ps
	case r.baseline != nil:
		r.countGroups(ps)
	}
}

// zeroFill gives the series of socket states that a full sample taken at t
// does not have (it names only the states present) a zero there, and a
// state that appears for the first time a zero at every earlier full
// sample: a state absent from a full sample has no sockets, and its series
// must start with the run, not when it first appears.
func (r *ProcRecorder) zeroFill(t time.Time, ms []probes.Metric) {
	present := map[string]bool{}
	for _, m := range ms {
		present[m.Name] = true
		if strings.Count(m.Name, ".") == 2 && strings.HasPrefix(m.Name, "sockets.") {
			if s, ok := r.series.Get(Series{Name: m.Name}); ok && len(s.Points) == 1 {
				zeros := make([]Point, len(r.fullTimes))
				for i, ft := range r.fullTimes {
					zeros[i] = Point{Time: ft}
				}
				s.Points = append(zeros, s.Points...)
			}
		}
	}
	for i := range r.series.series {
		s := &r.series.series[i]
		if !present[s.Name] && strings.Count(s.Name, ".") == 2 && strings.HasPrefix(s.Name, "sockets.") {
			s.Points = append(s.Points, Point{Time: t})
		}
	}
	r.fullTimes = append(r.fullTimes, t)
}

// AddGo records a sample of a Go daemon's endpoints: its metrics, and its
// goroutine profile as a dump whose distinct stacks are shared with the
// dumps before, so that an hour of samples of a daemon whose goroutines
// stay put costs little more than one dump. Nothing else of gs is kept. An
// error says the goroutine profile could not be read; the metrics are
// recorded all the same.
func (r *ProcRecorder) AddGo(gs *probes.GoSample) error {
	ms := gs.Metrics()
	r.series.AddMetrics(gs.Time, ms)
	r.heap = r.heap || slices.ContainsFunc(ms, func(m probes.Metric) bool { return m.Name == "heap_inuse_bytes" })
	if gs.HeapProfile != nil && r.Warm(gs.Time) {
		in := &Input{Name: "heap profile of " + gs.Time.Format(time.TimeOnly), Kind: InputHeap, Profile: gs.HeapProfile, Time: gs.Time}
		if r.heapFirst == nil {
			r.heapFirst = in
		} else {
			r.heapLast = in
		}
	}
	if gs.Tracker != nil {
		r.live = gs.Tracker // only the latest is kept
	}
	if gs.GoroutineProfile == nil {
		return nil
	}
	d, err := GoroutinesFromProfile(gs.GoroutineProfile)
	if err != nil {
		return fmt.Errorf("goroutine profile: %w", err)
	}
	if d.Time.IsZero() {
		d.Time = gs.Time
	}
	if r.stacks == nil {
		r.stacks = map[string][]Frame{}
	}
	var key strings.Builder
	for i := range d.Goroutines {
		g := &d.Goroutines[i]
		key.Reset()
		for _, f := range g.Stack {
			fmt.Fprintf(&key, "%s %s:%d\n", f.Func, f.File, f.Line)
		}
		if s, ok := r.stacks[key.String()]; ok {
			g.Stack = s
		} else {
			r.stacks[key.String()] = g.Stack
		}
	}
	r.dumps = append(r.dumps, d)
	return nil
}

// Snapshot returns the daemon's own tracker snapshot: the exit snapshot it
// wrote to exitPath (LEAKCHECK_REPORT), read with the limits and schema
// check of every input, when there is one; otherwise the last snapshot its
// tracker handler served, if any. atExit says which. An empty exitPath
// means there is none (watch).
func (r *ProcRecorder) Snapshot(ctx context.Context, exitPath string) (snap *tracker.Snapshot, atExit bool, err error) {
	var in *Input
	err = os.ErrNotExist
	if exitPath != "" {
		in, err = ReadInput(ctx, exitPath, InputOptions{})
	}
	switch {
	case errors.Is(err, os.ErrNotExist):
		if r.live == nil {
			return nil, false, nil
		}
		if in, err = ParseInput("the tracker's last snapshot", r.live, probes.MaxBodySize); err != nil {
			return nil, false, err
		}
	case err != nil:
		return nil, false, fmt.Errorf("reading the exit snapshot: %w", err)
	default:
		atExit = true
	}
	if in.Kind != InputSnapshot {
		return nil, false, fmt.Errorf("the tracker snapshot %s is a %s", in.Name, in.Kind)
	}
	return in.Snapshot, atExit, nil
}

// AddLeakProfile records a goroutineleak profile of the daemon (see
// probes.SampleLeaks), or, with d nil, that the daemon does not serve one.
// Only the latest is kept: the goroutines it marks are leaks for certain.
func (r *ProcRecorder) AddLeakProfile(d *GoroutineDump) {
	r.leaks, r.noLeaks = d, d == nil
}

// heapSites names, in the memory findings among fs, the allocation sites
// that grew most between the first and the latest heap profile, and
// returns the table of that growth.
func (r *ProcRecorder) heapSites(fs []Finding, opts HeapOptions) []Table {
	i := slices.IndexFunc(fs, func(f Finding) bool { return family(f.Subject) == "memory" })
	if i < 0 || r.heapFirst == nil || r.heapLast == nil {
		return nil
	}
	// Every site that grew is named, largest first: the growth of the
	// heap in use already passed the trend test.
	opts.MinGrowth = 1
	pa, err := AnalyzeProfiles([]*Input{r.heapFirst, r.heapLast}, opts)
	if err != nil {
		return nil
	}
	var sites []string
	for _, g := range pa.Findings {
		if g.Kind == KindGrowth && len(sites) < 3 {
			sites = append(sites, g.Subject)
		}
	}
	if len(sites) > 0 {
		fs[i].Suggestion = "the heap grew most at: " + strings.Join(sites, "; ") + " (the growth table lists every site)"
	}
	return pa.Tables
}

// Series returns every recorded series, by name.
func (r *ProcRecorder) Series() []Series { return r.series.Series() }

// ProcOptions configures ProcRecorder.Analyze.
type ProcOptions struct {
	Trend TrendOptions
	// Left are the descendants the command left running when it ended.
	Left []probes.Child
	// Own reports whether a remote address is one of leakcheck's own
	// connections to the daemon (its --pprof endpoint): the daemon's ends
	// of those are not its leftovers. Nil means none is.
	Own func(remote string) bool
	// Snapshot is the daemon's own tracker snapshot, when it has one: its
	// findings join the report, and the descriptors its live records name
	// are reported from inside (with owner and stack), not again from
	// outside. AtExit says the daemon wrote it at exit.
	Snapshot *tracker.Snapshot
	AtExit   bool
}

// Analyze turns what was recorded into findings: the series that grow (a
// resource and the series that move with it are one finding), the goroutine
// groups that grow or block, the descriptors and sockets opened since the
// baseline and still open, and the processes left behind.
func (r *ProcRecorder) Analyze(opts ProcOptions) Result {
	var res Result
	series := r.Series()
	tested := series
	if len(r.dumps) > 0 {
		// Goroutines by stack: a growing group is a goroutine finding
		// that names its stack, and stands in for the growth of the
		// total, which GoroutineSeries tests and reports itself when no
		// group explains it.
		gseries, gfs := AnalyzeGoroutines(r.dumps, GoroutineOptions{}, opts.Trend)
		res.Findings = append(res.Findings, gfs...)
		tested = slices.DeleteFunc(slices.Clone(series), func(s Series) bool { return s.Name == "goroutines" })
		copyTrends(series, gseries)
		series = append(series, evidenceSeries(gseries, gfs)...)
	}
	growth := r.growth(tested, opts.Trend)
	res.Tables = append(res.Tables, r.heapSites(growth, HeapOptions{Trend: opts.Trend})...)
	copyTrends(series, tested)
	res.Series = series
	var tracked map[string]bool
	if opts.Snapshot != nil {
		inside := FromSnapshot(opts.Snapshot, SnapshotOptions{AtExit: opts.AtExit, Trend: opts.Trend})
		res.Add(inside)
		tracked = trackedNames(opts.Snapshot)
	}
	left := r.descriptorFindings(opts.Own, opts.Trend, tracked)
	owned := absorbGrowth(left, growth)
	joinOwners(owned, descriptorJoins(r.baseline, r.last, opts.Snapshot, r.liveSnapshot()))
	res.Findings = append(res.Findings, owned...)
	res.Findings = append(res.Findings, processFindings(opts.Left)...)
	switch {
	case r.leaks != nil:
		_, leaked := AnalyzeGoroutines([]*GoroutineDump{r.leaks}, GoroutineOptions{}, opts.Trend)
		res.Findings = append(res.Findings, leaked...)
	case r.noLeaks:
		res.Notes = append(res.Notes, "the daemon does not serve the goroutineleak profile, in which the runtime marks the goroutines that can never run again: build it with Go 1.27, or Go 1.26 with GOEXPERIMENT=goroutineleakprofile")
	}
	res.Findings = Correlate(res.Findings)
	return res
}

// liveSnapshot returns the latest snapshot the daemon's tracker handler
// served, or nil when there is none or it cannot be read.
func (r *ProcRecorder) liveSnapshot() *tracker.Snapshot {
	if r.live == nil {
		return nil
	}
	in, err := ParseInput("the tracker's last snapshot", r.live, probes.MaxBodySize)
	if err != nil || in.Kind != InputSnapshot {
		return nil
	}
	return in.Snapshot
}

// trackedNames returns the words of the labels of a snapshot's live
// records: the addresses of its sockets and the paths of its files, which
// the tracker reports with their owners and stacks, so the same
// descriptors seen from outside are not reported again.
func trackedNames(s *tracker.Snapshot) map[string]bool {
	names := map[string]bool{}
	for _, r := range s.Records {
		if r.State == tracker.Live {
			for w := range strings.FieldsSeq(r.Label) {
				names[w] = true
			}
		}
	}
	return names
}

// absorbGrowth makes the growth of each descriptor or socket series
// evidence of the leftover group that grows and that the series counts
// (sockets.tcp.CLOSE_WAIT of a group "... in CLOSE_WAIT", fds.file of an
// "fd file ..." group; the totals of the largest such group) instead of a
// finding of its own: the descriptors that pile up are those the group
// names. A growth no growing group accounts for stands.
func absorbGrowth(left, growth []Finding) []Finding {
	out := left
	for _, g := range growth {
		fam := family(g.Subject)
		lead := -1
		if fam == "sockets" || strings.HasPrefix(fam, "fds") {
			for i, f := range left {
				if f.Severity >= SeverityWarning && counts(g.Subject, f.Subject) && (lead < 0 || f.Count > left[lead].Count) {
					lead = i
				}
			}
		}
		if lead < 0 {
			out = append(out, g)
			continue
		}
		f := &left[lead]
		f.Evidence.Related = append(append(f.Evidence.Related, g.Subject), g.Evidence.Related...)
		f.Severity = max(f.Severity, g.Severity)
		for k, v := range g.Evidence.Values {
			if f.Evidence.Values == nil {
				f.Evidence.Values = map[string]float64{}
			}
			f.Evidence.Values[k] = v
		}
	}
	return out
}

// counts reports whether the series counts the descriptors of a leftover
// group with the given subject (see socketSubject and leftoverGroups).
func counts(series, group string) bool {
	socket := !strings.HasPrefix(group, "fd ")
	switch parts := strings.Split(series, "."); {
	case series == "fds":
		return true
	case series == "fds.socket", series == "sockets":
		return socket
	case parts[0] == "fds":
		return strings.HasPrefix(group, "fd "+parts[1]+" ")
	case len(parts) == 2: // sockets.PROTO
		return socket && strings.HasPrefix(group, parts[1]+" ")
	case len(parts) == 3: // sockets.PROTO.STATE
		return socket && strings.HasPrefix(group, parts[1]+" ") && strings.HasSuffix(group, " in "+parts[2])
	}
	return false
}

// evidenceSeries returns the series that findings name as evidence, but
// for "goroutines", which the samples give already.
func evidenceSeries(series []Series, findings []Finding) []Series {
	var out []Series
	for _, s := range series {
		if s.Name != "goroutines" && slices.ContainsFunc(findings, func(f Finding) bool { return f.Evidence.Series == s.Name }) {
			out = append(out, s)
		}
	}
	return out
}

// copyTrends sets the verdict of each series in dst to that of the series
// of the same name in src, so that the series a report lists show the
// verdicts its findings quote.
func copyTrends(dst, src []Series) {
	for i := range dst {
		if j := slices.IndexFunc(src, func(s Series) bool { return s.Name == dst[i].Name }); j >= 0 && src[j].Trend != nil {
			dst[i].Trend = src[j].Trend
		}
	}
}

// processFindings reports the descendants left running.
func processFindings(left []probes.Child) []Finding {
	var fs []Finding
	for _, c := range left {
		fs = append(fs, Finding{
			Kind: KindLeftover, Severity: SeverityError,
			Subject: fmt.Sprintf("process %s", c.Comm), Owner: fmt.Sprintf("pid %d", c.PPID), Count: 1,
			Evidence:   Evidence{Values: map[string]float64{"pid": float64(c.PID)}},
			Suggestion: "wait for or kill child processes before exiting; leakcheck killed it",
			Signature:  Signature(KindLeftover, "process "+c.Comm, nil),
		})
	}
	return fs
}

// descriptorFindings names the descriptors and sockets open in the last two
// full samples that were not open at the baseline. A busy process always has
// some descriptors open for a moment; the last sample alone would report
// whichever of them it caught. Each group is a leak only with evidence: its
// count grows over the full samples since the baseline (a warning); a group
// that holds steady, such as a pool of connections opened after the
// baseline or files a store opens by design, is info.
func (r *ProcRecorder) descriptorFindings(own func(string) bool, trend TrendOptions, tracked map[string]bool) []Finding {
	if r.baseline == nil || r.prev == nil || r.prev.Time.Before(r.baseline.Time) {
		return nil
	}
	last, prev := r.last, r.prev
	freshSock := map[uint64]bool{}
	for _, s := range probes.NewSockets(prev, last) {
		freshSock[s.Inode] = true
	}
	freshFD := map[probes.FD]bool{}
	for _, fd := range probes.NewFDs(prev, last) {
		freshFD[fd] = true
	}
	fs := leftoverGroups(r.baseline, last, func(s probes.Socket) bool {
		return freshSock[s.Inode] || own != nil && own(s.Remote) || tracked[s.Local]
	}, func(fd probes.FD) bool { return freshFD[fd] || tracked[fd.Target] })
	trend.Warmup, trend.WarmupSamples = 0, 0 // the baseline came after it
	for i := range fs {
		f := &fs[i]
		s, ok := r.groups.Get(Series{Name: f.Subject})
		if !ok {
			continue
		}
		t := s.Analyze(trend)
		pts := s.Points
		switch {
		case t.Verdict == VerdictGrowing:
			f.Evidence.Series, f.Evidence.Trend = s.Name, &t
		case t.Verdict == VerdictNotEnoughData && len(pts) >= 2 && pts[len(pts)-1].Value > pts[0].Value:
			// Too few full samples for the test: rising counts.
		default:
			f.Severity = SeverityInfo
			f.Suggestion = "opened after the baseline and held steady since: a pool or a file kept open by design is no leak; " + f.Suggestion
		}
	}
	return fs
}

// leftoverGroups groups what cur has open that base did not, but for the
// sockets and descriptors skip says to pass over: sockets by socketFindings,
// other descriptors by type and a pattern of their target, with their
// numbers.
func leftoverGroups(base, cur *probes.ProcSample, skipSock func(probes.Socket) bool, skipFD func(probes.FD) bool) []Finding {
	socks := probes.NewSockets(base, cur)
	if skipSock != nil {
		socks = slices.DeleteFunc(socks, skipSock)
	}
	fs := socketFindings(socks, cur.Sockets)
	index := map[string]int{}
	for _, fd := range probes.NewFDs(base, cur) {
		if fd.Type == "socket" || skipFD != nil && skipFD(fd) {
			continue // reported above, by socket; or maybe in passing
		}
		subject := "fd " + fd.Type + " " + Pattern(fd.Target)
		if i, ok := index[subject]; ok {
			fs[i].Count++
			fs[i].Evidence.Instances = appendInstance(fs[i].Evidence.Instances, strconv.Itoa(fd.Num), fs[i].Count)
			continue
		}
		index[subject] = len(fs)
		fs = append(fs, Finding{
			Kind: KindLeftover, Severity: SeverityWarning,
			Subject: subject, Count: 1,
			Evidence:   Evidence{Instances: []string{strconv.Itoa(fd.Num)}},
			Suggestion: "opened since the baseline and still open: close it when done",
			Signature:  Signature(KindLeftover, subject, nil),
		})
	}
	return fs
}

// maxInstances is how many instances a finding names; the count says the rest.
const maxInstances = 10

// appendInstance adds an instance to those a finding of count occurrences
// names, up to maxInstances.
func appendInstance(list []string, inst string, count int) []string {
	if len(list) < maxInstances {
		return append(list, inst)
	}
	return list
}

// countGroups records, for a full sample after the baseline, how many of
// each leftover group it holds, so that a group's growth can be tested.
func (r *ProcRecorder) countGroups(ps *probes.ProcSample) {
	seen := map[string]bool{}
	for _, f := range leftoverGroups(r.baseline, ps, nil, nil) {
		r.groups.Add(Series{Name: f.Subject, Unit: "fds"}, ps.Time, float64(f.Count))
		seen[f.Subject] = true
	}
	// A group that emptied counts zero, not nothing.
	for _, s := range r.groups.series {
		if !seen[s.Name] {
			r.groups.Add(Series{Name: s.Name}, ps.Time, 0)
		}
	}
}

// socketFindings reports the sockets socks, one finding per group; all are
// the process's sockets, whose listeners name the connections they accepted.
func socketFindings(socks, all []probes.Socket) []Finding {
	var fs []Finding
	index := map[string]int{}
	for _, g := range probes.SummarizeSockets(socks, all) {
		subject := socketSubject(g)
		if i, ok := index[subject]; ok { // equal but for numbers in a path
			fs[i].Count += g.Count
			continue
		}
		index[subject] = len(fs)
		fs = append(fs, Finding{
			Kind: KindLeftover, Severity: SeverityWarning,
			Subject: subject, Count: g.Count,
			Suggestion: socketAdvice(g.State),
			Signature:  Signature(KindLeftover, subject, nil),
		})
	}
	return fs
}

// socketSubject names a group of sockets for a finding: connections accepted
// on one of the process's listeners by the listening address (their remote
// ports are ephemeral), others by the address they connect to, e.g. "tcp
// sockets to 127.0.0.1:6379 in CLOSE_WAIT".
func socketSubject(g probes.SocketGroup) string {
	switch {
	case g.State == "LISTEN":
		return fmt.Sprintf("%s listener on %s", g.Proto, g.Local)
	case g.Accepted:
		return fmt.Sprintf("%s connections accepted on %s in %s", g.Proto, g.Local, g.State)
	case g.Remote != "":
		return fmt.Sprintf("%s sockets to %s in %s", g.Proto, g.Remote, g.State)
	}
	// Unconnected, or of another family: no address or state, maybe.
	subject := g.Proto + " sockets"
	if g.Local != "" {
		subject += " on " + localPattern(g.Local)
	}
	if g.State != "" {
		subject += " in " + g.State
	}
	return subject
}

// localPattern names the local end of unconnected sockets so that one
// group holds them all: an address keeps its host and loses its port
// ("127.0.0.1:*"), a unix socket's path its numbers.
func localPattern(local string) string {
	if host, port, ok := strings.Cut(local, ":"); ok && strings.Trim(port, "0123456789") == "" && !strings.Contains(port, ":") {
		return host + ":*"
	}
	if i := strings.LastIndex(local, "]:"); i >= 0 && strings.HasPrefix(local, "[") {
		return local[:i+1] + ":*"
	}
	return Pattern(local)
}

func socketAdvice(state string) string {
	if state == "CLOSE_WAIT" {
		return "the peer closed these connections but the daemon never did: close the socket on EOF"
	}
	return "opened since the baseline and still open: close or pool them"
}

// growth trend-tests the series and reports each leak once: of the socket
// series that grow (fds.socket, sockets, sockets.PROTO, sockets.PROTO.STATE),
// the most specific names the finding and the others are its evidence; the
// total of descriptors, and memory, that grow with a descriptor leak are
// its evidence too. Memory growing alone is a finding of its own.
func (r *ProcRecorder) growth(series []Series, trend TrendOptions) []Finding {
	fs := Growth(series, trend)
	best := map[string]int{} // family: index of its most specific finding
	var families []string
	for i, f := range fs {
		fam := family(f.Subject)
		j, ok := best[fam]
		switch {
		case !ok:
			best[fam] = i
			families = append(families, fam)
		case specificity(f.Subject) > specificity(fs[j].Subject):
			best[fam] = i
		}
	}
	// The first descriptor leak (by series name) carries the total and
	// the memory as evidence.
	var lead = -1
	for _, fam := range families {
		if fam != "fds" && fam != "memory" && (strings.HasPrefix(fam, "fds.") || fam == "sockets") {
			lead = best[fam]
			break
		}
	}
	kept := map[int]bool{}
	for _, i := range best {
		kept[i] = true
	}
	for i, f := range fs {
		fam := family(f.Subject)
		switch {
		case i != best[fam]:
			fs[best[fam]].Evidence.Related = append(fs[best[fam]].Evidence.Related, f.Subject)
		case lead >= 0 && (fam == "fds" || fam == "memory"):
			fs[lead].Evidence.Related = append(fs[lead].Evidence.Related, f.Subject)
			kept[i] = false
		}
	}
	var out []Finding
	for i, f := range fs {
		if !kept[i] {
			continue
		}
		memory := family(f.Subject) == "memory"
		rss := memory && f.Subject != "heap_inuse_bytes" && !slices.Contains(f.Evidence.Related, "heap_inuse_bytes")
		switch window := trendWindow(f.Evidence.Trend); {
		case rss && r.heap:
			// A Go daemon's resident memory ramps for minutes and then
			// cycles with its allocator; the heap in use says whether
			// it holds more.
			f.Severity = SeverityInfo
			f.Suggestion = "resident memory grew but the Go heap in use did not: the runtime and the allocator keep pages, which usually levels off; watch heap_inuse_bytes"
		case (memory || f.Subject == "threads") && window < WarmupWindow && f.Severity < SeverityError:
			// A process warming up (an allocator reaching its working
			// size, caches filling, a garbage-collected heap whose in-use
			// figure moves at each collection, a runtime adding threads
			// for its collector and blocking calls, an interpreter
			// settling) and a leak look alike until the growth has
			// lasted; a limit reached within a day (an error) is no
			// warm-up.
			what := "memory"
			if !memory {
				what = f.Subject
			}
			f.Severity = SeverityInfo
			f.Suggestion = fmt.Sprintf("%s rose over %s, too short a window to tell a leak from a process warming up: watch it for %s or more", what, window.Round(time.Second), WarmupWindow)
		}
		out = append(out, f)
	}
	return out
}

// WarmupWindow is the least time memory (resident, or a Go heap in use) or
// threads must grow for, after the warm-up, to be a leak rather than a
// process warming up.
const WarmupWindow = 2 * time.Minute

// trendWindow returns how long the tested part of a series lasted.
func trendWindow(t *Trend) time.Duration {
	if t == nil || t.Window.From.IsZero() {
		return 0
	}
	return t.Recent.From.Sub(t.Window.From) * 2 // the recent half starts halfway
}

// family says which resource a series measures: "sockets" for every socket
// series, "fds.TYPE" for descriptors of another type, "fds" for the total,
// "memory", or the series' own name.
func family(name string) string {
	switch {
	case name == "fds.socket" || name == "sockets" || strings.HasPrefix(name, "sockets."):
		return "sockets"
	case name == "fds" || strings.HasPrefix(name, "fds."):
		return name
	case strings.HasSuffix(name, "_bytes"):
		return "memory"
	}
	return name
}

// specificity ranks the series of a family: a socket state says more than a
// protocol, which says more than all sockets, then the socket descriptors;
// of memory, the anonymous part says more than the resident set.
func specificity(name string) int {
	switch {
	case strings.HasPrefix(name, "sockets."):
		return 3 + strings.Count(name, ".")
	case name == "sockets":
		return 3
	case name == "rss_anon_bytes", name == "heap_inuse_bytes":
		return 2
	}
	return 1
}
