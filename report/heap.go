package report

import (
	"bufio"
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"math"
	mbits "math/bits"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/pprof/profile"
)

// DefaultTop is how many rows a profile table lists when HeapOptions.Top is 0.
const DefaultTop = 20

// Growth of an allocation site is judged against the heap in use, the
// total of the last profile by the sample type compared, and against the
// noise of sampling (see growthRule). These are the shares of that total a
// site must grow by to be a growth finding.
const (
	// SeriesGrowthShare is the share for a series of three profiles or
	// more, in which a site must also keep rising: a trend over the
	// series, or a rise in most steps. A site that jumps once and then
	// holds, as a start-up allocation does, is no growth however large.
	SeriesGrowthShare = 0.01
	// PairGrowthShare is the share for two profiles, which cannot tell
	// a leak from a one-time allocation made between them: it is larger.
	PairGrowthShare = 0.05
)

// DefaultMinGrowthRecords is the least growth of live tracker records
// between two profiles that makes a finding, whatever their share.
const DefaultMinGrowthRecords = 10

// DefaultMinGrowthPairBytes is the least growth in bytes between two
// profiles that makes a finding, whatever its share of a small heap: maps
// and slices grow their tables in steps that a steady program takes too
// (one steady test program's set, a map cleared and refilled, rose by 18
// KiB between its first and twelfth profiles as its tables split).
const DefaultMinGrowthPairBytes = 64 << 10

// HeapOptions configures AnalyzeProfiles.
type HeapOptions struct {
	// SampleIndex names the sample type to rank, compare and trend-test by,
	// e.g. "inuse_space" (the default for heap profiles), "inuse_objects",
	// "alloc_space"; or its index among the profile's sample types. Tracker
	// profiles have one sample type, "records".
	SampleIndex string
	// Top is how many rows each table lists; 0 means DefaultTop.
	Top int
	// MinGrowth is the least growth of a site, in the sample type's unit,
	// from the first profile to the last, that makes a growth finding; a
	// series' site must also keep rising. 0 means the rule by share of
	// the heap and sampling noise: see SeriesGrowthShare and
	// PairGrowthShare.
	MinGrowth int64
	// Trend configures the trend test over a series of profiles.
	Trend TrendOptions
}

// AnalyzeProfiles analyses heap profiles, or tracker profiles, of one
// process, given in order (oldest first; a base profile first):
//
//   - one profile: the top holders by function and by allocation site;
//   - two: the growth of each allocation site from the first to the second,
//     and a growth finding for each site that grew by at least the least
//     growth (PairGrowthShare of the heap in use, and the sampling noise);
//   - three or more: a series per site, trend-tested (AnalyzeTrend), or,
//     too short for the trend test, judged by its steps (a rise in most of
//     them); each site found growing by at least the least growth
//     (SeriesGrowthShare, and the sampling noise) is a growth finding. A
//     site that rose once and held, as a start-up allocation does, is not.
//
// The notes say the rule applied, with its figures.
//
// An allocation site is the first frame of a stack that is the program's
// own code: runtime frames are skipped, so the growth of a map or a slice is
// charged to the function that assigns or appends. When the runtime frames
// are in the profile (runtime.mapassign, runtime.growslice), or when the
// sizes allocated at a site form the ladder of a growing backing array, the
// finding names a growing collection at that site. For tracker profiles a
// site is a record kind and its acquisition site, and the values are live
// records.
//
// AnalyzeProfiles keeps of each profile its values by site only. Inputs
// reduced by Summarize as they were read cost no more than that; a series
// of whole profiles is held whole by the caller.
func AnalyzeProfiles(profiles []*Input, opts HeapOptions) (*Result, error) {
	if len(profiles) == 0 {
		return nil, errors.New("no profiles to analyse")
	}
	if opts.Top <= 0 {
		opts.Top = DefaultTop
	}
	var own *SiteTable // for inputs not summarized
	sets := make([]*siteSet, len(profiles))
	for i, in := range profiles {
		s := in.sites
		switch {
		case s != nil && s.table.opts.SampleIndex != opts.SampleIndex:
			return nil, fmt.Errorf("%s: summarized by sample type %q, analysed by %q", in.Name, s.table.opts.SampleIndex, opts.SampleIndex)
		case s == nil && in.Profile == nil:
			return nil, fmt.Errorf("%s: not a profile", in.Name)
		case s == nil:
			if own == nil {
				own = NewSiteTable(opts)
			}
			var err error
			if s, err = own.collect(in); err != nil {
				return nil, fmt.Errorf("%s: %w", in.Name, err)
			}
		}
		if i > 0 && s.table != sets[0].table {
			return nil, fmt.Errorf("%s: summarized in another site table than %s", in.Name, profiles[0].Name)
		}
		// Names and times as the input has them now: a caller may have
		// renamed a polled input.
		s.name, s.time = in.Name, in.Time
		if i > 0 && (s.tracker != sets[0].tracker || s.typ() != sets[0].typ()) {
			return nil, fmt.Errorf("%s: a %s profile cannot be compared with %s, a %s profile", in.Name, s.kindName(), profiles[0].Name, sets[0].kindName())
		}
		sets[i] = s
	}
	a := &Result{}
	switch n := len(sets); {
	case n == 1:
		a.Tables = sets[0].topTables(opts.Top)
	case n == 2:
		a.diff(sets[0], sets[1], opts)
	default:
		a.series(sets, opts)
	}
	other := ""
	if bins := binaries(sets); len(bins) > 1 {
		other = fmt.Sprintf("the profiles come from %d different binaries (%s)", len(bins), strings.Join(bins, ", "))
	} else if len(sets) > 1 && !shareSites(sets[0], sets[len(sets)-1]) {
		other = fmt.Sprintf("%s and %s have no allocation site in common", sets[0].name, sets[len(sets)-1].name)
	}
	if other != "" {
		// Growth between two programs is no leak of either: the
		// findings stay, as info, for what they show.
		a.Notes = append(a.Notes, other+": they are not of one program, and their growth findings are info; compare profiles of one process")
		for i := range a.Findings {
			a.Findings[i].Severity = SeverityInfo
		}
	}
	return a, nil
}

// shareSites reports whether two profiles have an allocation site in
// common: profiles of one program do, whatever it is doing.
func shareSites(a, b *siteSet) bool {
	for id := range a.vals {
		if _, ok := a.get(int32(id)); ok {
			if _, ok := b.get(int32(id)); ok {
				return true
			}
		}
	}
	return false
}

// A SiteTable holds the allocation sites of heap or tracker profiles of one
// process, each once, for Input.Summarize: with it a profile costs a value
// per site, and a site's stack is kept once, from the newest profile that
// has the site. It is not safe for concurrent use.
type SiteTable struct {
	opts  HeapOptions
	ids   map[siteKey]int32
	sites []siteInfo // by id
	// newest is the time of the newest profile summarized: its sites'
	// stacks are kept, which findings are made of.
	newest time.Time
	any    bool
	// first is the first heap (false) and tracker (true) profile
	// summarized, which keeps its top holders while it is the only one.
	first map[bool]*siteSet
}

// siteInfo is what is known of a site beyond its values.
type siteInfo struct {
	key siteKey
	// stack is the stack of the sample that holds the most at the site,
	// by the chosen sample type, in the newest profile: it stands for the
	// site's. Findings are made of the last profile's sites; the stacks of
	// sites it does not have are dropped.
	stack []Frame
	// coll names the collection the site allocates for when it grows one:
	// "map" or "slice" by runtime frames, "map or slice" by the sizes it
	// allocated (see findCollections); else "".
	coll string
}

// NewSiteTable returns an empty table for profiles to be analysed with
// opts: its SampleIndex chooses the values kept, and its Top how many rows
// of a profile's top tables are kept.
func NewSiteTable(opts HeapOptions) *SiteTable {
	if opts.Top <= 0 {
		opts.Top = DefaultTop
	}
	return &SiteTable{opts: opts, ids: map[siteKey]int32{}, first: map[bool]*siteSet{}}
}

// Summarize reduces a heap or tracker profile to what AnalyzeProfiles needs
// of it, in table: its values by allocation site and its top holders; and
// drops the profile (Profile is nil afterwards). Reading a long series,
// summarize each input as it is read, into one table per process: the
// series then costs a value per site and profile, not whole profiles, and
// is analysed as fast. Inputs of other kinds, and inputs summarized
// already, are left as they are.
func (in *Input) Summarize(table *SiteTable) error {
	if in.Profile == nil || in.Kind != InputHeap && in.Kind != InputTrackerProfile {
		return nil
	}
	s, err := table.collect(in)
	if err != nil {
		return fmt.Errorf("%s: %w", in.Name, err)
	}
	in.sites, in.Profile = s, nil
	return nil
}

// binaries lists the distinct main binaries (build id, else file) of the
// profiles that name one.
func binaries(sets []*siteSet) []string {
	var out []string
	for _, s := range sets {
		if s.binary != "" && !slices.Contains(out, s.binary) {
			out = append(out, s.binary)
		}
	}
	return out
}

// mainBinary names a profile's main binary: its build id, else its file.
func mainBinary(p *profile.Profile) string {
	if len(p.Mapping) == 0 {
		return ""
	}
	m := p.Mapping[0]
	if m.BuildID != "" {
		return m.BuildID
	}
	return m.File
}

// siteKey identifies an allocation site across profiles.
type siteKey struct {
	kind  string // the record kind in tracker profiles; "" in heap profiles
	frame Frame
}

// site is what one profile holds at one allocation site, while the profile
// is read.
type site struct {
	id   int32 // in the table
	key  siteKey
	vals []int64 // by sample type
	// heaviest is the sample that holds the most at the site, by the chosen
	// sample type.
	heaviest *profile.Sample
	coll     string // as siteInfo.coll
	// sizes are the block sizes allocated at the site, with the bytes in
	// use in each, for findCollections.
	sizes []sizeHeld
}

type sizeHeld struct{ size, held int64 }

// sites is a profile's samples summed by allocation site, while the profile
// is read.
type sites struct {
	table *SiteTable
	byID  []*site // by id in the table; nil for sites not in the profile
	list  []*site
	n     int // values per site
	// vals hands out the sites' values from blocks, one allocation for
	// many sites.
	vals []int64
}

// siteSet is all that the analyses keep of a profile: its value by site, by
// the chosen sample type, and its top holders.
type siteSet struct {
	table   *SiteTable
	name    string
	time    time.Time
	types   []*profile.ValueType
	index   int // the chosen sample type
	tracker bool
	binary  string
	// period is the profile's sampling period in bytes: on average one
	// allocation in period bytes is recorded. 0 or 1: every one is.
	period int64
	total  []int64
	vals   []int64  // by site id; 0 past the end
	seen   []uint64 // a bit per site id: the profile has the site
	// top are the heaviest sites and fns the heaviest functions, for a
	// profile's top tables, at most the table's Top of each.
	top []topSite
	fns []fnStat
}

// topSite is one of a profile's heaviest sites: its value and the
// companion sample type's.
type topSite struct {
	id         int32
	val, other int64
}

// get returns the profile's value at site id, and whether it has the site.
func (s *siteSet) get(id int32) (int64, bool) {
	if int(id) >= len(s.vals) || s.seen[id/64]&(1<<(id%64)) == 0 {
		return 0, false
	}
	return s.vals[id], true
}

// ids returns the ids of the profile's sites.
func (s *siteSet) ids() []int32 {
	var out []int32
	for w, bits := range s.seen {
		for ; bits != 0; bits &= bits - 1 {
			out = append(out, int32(w*64+mbits.TrailingZeros64(bits)))
		}
	}
	return out
}

func (s *siteSet) key(id int32) siteKey { return s.table.sites[id].key }

// fnStat is what a function holds: flat at its sites, cum anywhere in the
// stack, and other, flat by the companion sample type.
type fnStat struct {
	name      string
	flat, cum int64
	other     int64
}

func (s *siteSet) typ() string  { return s.types[s.index].Type }
func (s *siteSet) unit() string { return valueUnit(s.types[s.index], s.tracker) }

func (s *siteSet) kindName() string {
	if s.tracker {
		return "tracker"
	}
	return "heap " + s.typ()
}

// valueUnit is the Series unit of a sample type's values.
func valueUnit(vt *profile.ValueType, tracker bool) string {
	switch {
	case vt.Unit == "bytes":
		return "bytes"
	case tracker:
		return "records"
	case vt.Unit == "count" || vt.Unit == "":
		return "objects"
	}
	return vt.Unit
}

// countUnit is the unit of a companion column: bytes, or none for counts,
// which the column's name says.
func countUnit(vt *profile.ValueType) string {
	if vt.Unit == "bytes" {
		return "bytes"
	}
	return ""
}

// sampleIndex finds the sample type named (or numbered) name, or the
// default: inuse_space, or the last sample type as go tool pprof does.
func sampleIndex(p *profile.Profile, name string) (int, error) {
	if name == "" {
		for i, st := range p.SampleType {
			if st.Type == "inuse_space" {
				return i, nil
			}
		}
		return len(p.SampleType) - 1, nil
	}
	for i, st := range p.SampleType {
		if st.Type == name {
			return i, nil
		}
	}
	if i, err := strconv.Atoi(name); err == nil && i >= 0 && i < len(p.SampleType) {
		return i, nil
	}
	return 0, fmt.Errorf("no sample type %q (the profile has %s)", name, strings.Join(sampleTypes(p), ", "))
}

// locSite is the allocation site found in one location, cached per location.
type locSite struct {
	frame Frame
	found bool   // frame is the program's own code
	first Frame  // the location's first named frame, if not found
	coll  string // a collection's runtime frame seen in the location
	site  *site  // the site of frame in a heap profile, once seen
}

// locCache finds the locSite of a location: by its ID when the profile's
// IDs are dense, as Go's are, else by a map.
type locCache struct {
	byID  []locSite
	seen  []bool
	byPtr map[*profile.Location]*locSite
}

func newLocCache(p *profile.Profile) *locCache {
	c := &locCache{}
	maxID := uint64(0)
	for _, l := range p.Location {
		maxID = max(maxID, l.ID)
	}
	if maxID <= uint64(2*len(p.Location)+1) {
		c.byID, c.seen = make([]locSite, maxID+1), make([]bool, maxID+1)
	}
	return c
}

func (c *locCache) get(loc *profile.Location) *locSite {
	if loc.ID < uint64(len(c.byID)) {
		ls := &c.byID[loc.ID]
		if !c.seen[loc.ID] {
			*ls, c.seen[loc.ID] = newLocSite(loc), true
		}
		return ls
	}
	if c.byPtr == nil {
		c.byPtr = map[*profile.Location]*locSite{}
	}
	ls := c.byPtr[loc]
	if ls == nil {
		ls = new(locSite)
		*ls = newLocSite(loc)
		c.byPtr[loc] = ls
	}
	return ls
}

// collect sums a profile's samples by allocation site into a siteSet,
// adding new sites to t. It runs once per profile on every sample, so it
// caches the site found in each location.
func (t *SiteTable) collect(in *Input) (*siteSet, error) {
	p := in.Profile
	tracker := in.Kind == InputTrackerProfile
	index := 0
	if !tracker {
		var err error
		if index, err = sampleIndex(p, t.opts.SampleIndex); err != nil {
			return nil, err
		}
	}
	types := make([]*profile.ValueType, len(p.SampleType))
	for i, vt := range p.SampleType {
		types[i] = &profile.ValueType{Type: vt.Type, Unit: vt.Unit}
	}
	s := &siteSet{table: t, name: in.Name, time: in.Time, types: types, index: index, tracker: tracker,
		binary: mainBinary(p), total: make([]int64, len(p.SampleType))}
	if !tracker && p.PeriodType != nil && p.PeriodType.Unit == "bytes" {
		s.period = p.Period
	}
	all := &sites{table: t, byID: make([]*site, len(t.sites)), n: len(p.SampleType)}
	alloc, inuseBytes := -1, -1 // the sample types findCollections reads
	if !tracker {
		for i, vt := range p.SampleType {
			switch vt.Type {
			case "alloc_objects":
				alloc = i
			case "inuse_space", "space":
				inuseBytes = i
			}
		}
	}
	var sized []*site // the sites with sizes
	locs := newLocCache(p)
	for _, smp := range p.Sample {
		if len(smp.Value) != len(s.total) {
			return nil, fmt.Errorf("malformed profile: a sample has %d values for %d sample types", len(smp.Value), len(s.total))
		}
		var st *site
		if !tracker && len(smp.Location) > 0 {
			// Most stacks start in the program's own code: their site
			// is the first location's.
			if ls := locs.get(smp.Location[0]); ls.found {
				if ls.site == nil {
					ls.site = all.site(siteKey{frame: ls.frame}, ls.coll)
				}
				st = ls.site
			}
		}
		if st == nil {
			st = all.slowSite(smp, locs, tracker)
		}
		if alloc >= 0 && inuseBytes >= 0 && st.coll == "" && smp.Value[alloc] != 0 {
			if v := smp.NumLabel["bytes"]; len(v) > 0 && v[0] > 0 {
				if st.sizes == nil {
					sized = append(sized, st)
				}
				st.addSize(v[0], smp.Value[inuseBytes])
			}
		}
		for j, v := range smp.Value {
			st.vals[j] += v
			s.total[j] += v
		}
		if st.heaviest == nil || smp.Value[index] > st.heaviest.Value[index] {
			st.heaviest = smp
		}
	}
	comp := companion(types, index)
	// The top tables are of a profile alone: made for the first profile
	// of its kind in the table, and dropped when a second comes.
	var top []*site
	switch first := t.first[tracker]; {
	case first == nil:
		t.first[tracker] = s
		top = topSites(all, index, t.opts.Top)
		if !tracker {
			s.fns = functions(p, all.list, index, comp, t.opts.Top)
		}
	case first.top != nil:
		first.top, first.fns = nil, nil
	}

	// Keep a value per site; the table keeps the rest, from the newest
	// profile.
	s.vals, s.seen = make([]int64, len(t.sites)), make([]uint64, (len(t.sites)+63)/64)
	for _, st := range all.list {
		s.vals[st.id] = st.vals[index]
		s.seen[st.id/64] |= 1 << (st.id % 64)
	}
	if newest := !t.any || !in.Time.Before(t.newest); newest {
		// The stacks and collections of the newest profile replace all
		// others, the stacks in one block of frames.
		t.any, t.newest = true, in.Time
		findCollections(sized)
		for i := range t.sites {
			t.sites[i].stack, t.sites[i].coll = nil, ""
		}
		// Only sites that hold something can be findings.
		n := 0
		for _, st := range all.list {
			if st.vals[index] > 0 {
				n += stackLen(st.heaviest)
			}
		}
		frames := make([]Frame, 0, n)
		for _, st := range all.list {
			if st.vals[index] > 0 {
				start := len(frames)
				frames = appendStack(frames, st.heaviest)
				t.sites[st.id].stack, t.sites[st.id].coll = frames[start:len(frames):len(frames)], st.coll
			}
		}
	} else {
		// An older profile, read late: its stacks stand in only where the
		// newest has none.
		findCollections(sized)
		for _, st := range all.list {
			if info := &t.sites[st.id]; info.stack == nil && st.vals[index] > 0 {
				info.stack, info.coll = appendStack(nil, st.heaviest), st.coll
			}
		}
	}
	for _, st := range top {
		ts := topSite{id: st.id, val: st.vals[index]}
		if comp >= 0 {
			ts.other = st.vals[comp]
		}
		s.top = append(s.top, ts)
	}
	return s, nil
}

// topSites returns the k sites of most value at index, heaviest first,
// then by key; it keeps only the k best as it goes.
func topSites(all *sites, index, k int) []*site {
	better := func(a, b *site) int {
		return cmp.Or(cmp.Compare(b.vals[index], a.vals[index]), compareKeys(a.key, b.key))
	}
	top := make([]*site, 0, k+1)
	for _, st := range all.list {
		top = keepBest(top, st, k, better)
	}
	return top
}

// keepBest inserts v into top, which better keeps in order, and keeps only
// the k best: a running top-k that never holds more than k+1 values.
func keepBest[T any](top []T, v T, k int, better func(a, b T) int) []T {
	if len(top) == k && better(v, top[k-1]) >= 0 {
		return top
	}
	i, _ := slices.BinarySearchFunc(top, v, better)
	top = slices.Insert(top, i, v)
	if len(top) > k {
		top = top[:k]
	}
	return top
}

// site returns the site of key, adding it if new.
func (s *sites) site(key siteKey, coll string) *site {
	t := s.table
	id, ok := t.ids[key]
	if !ok {
		id = int32(len(t.sites))
		t.ids[key] = id
		t.sites = append(t.sites, siteInfo{key: key})
	}
	if int(id) >= len(s.byID) {
		s.byID = slices.Grow(s.byID, len(t.sites)-len(s.byID))[:len(t.sites)]
	}
	st := s.byID[id]
	if st == nil {
		n := s.n
		if len(s.vals) < n {
			s.vals = make([]int64, 256*n)
		}
		st = &site{id: id, key: key, vals: s.vals[:n:n]}
		s.vals = s.vals[n:]
		s.byID[id] = st
		s.list = append(s.list, st)
	}
	if st.coll == "" {
		st.coll = coll
	}
	return st
}

// slowSite finds the site of a sample whose stack starts in the runtime, or
// of a tracker profile's sample, whose site includes its record kind.
func (s *sites) slowSite(smp *profile.Sample, locs *locCache, tracker bool) *site {
	var key siteKey
	if tracker {
		key.kind = firstLabel(smp, "kind")
	}
	coll, first := "", Frame{}
	for _, loc := range smp.Location {
		ls := locs.get(loc)
		if coll == "" {
			coll = ls.coll
		}
		if first.Func == "" {
			first = ls.first
		}
		if ls.found {
			key.frame = ls.frame
			return s.site(key, coll)
		}
	}
	// Nothing but the runtime: the site is the first frame there is.
	key.frame = first
	if key.frame.Func == "" {
		key.frame.Func = "(unknown)"
	}
	return s.site(key, "")
}

func firstLabel(s *profile.Sample, key string) string {
	if v := s.Label[key]; len(v) > 0 {
		return v[0]
	}
	return ""
}

func newLocSite(loc *profile.Location) locSite {
	var ls locSite
	for _, ln := range loc.Line {
		if ln.Function == nil || ln.Function.Name == "" {
			continue
		}
		f := Frame{Func: ln.Function.Name, File: ln.Function.Filename, Line: int(ln.Line)}
		if ls.first.Func == "" {
			ls.first = f
		}
		if hiddenFrame(f) {
			if c := collectionFrame(f.Func); c != "" && ls.coll == "" {
				ls.coll = c
			}
			continue
		}
		ls.frame, ls.found = f, true
		return ls
	}
	if ls.first.Func == "" && loc.Address != 0 {
		ls.first = Frame{Func: fmt.Sprintf("0x%x", loc.Address)}
	}
	return ls
}

// collectionFrame names the collection that a runtime function allocates
// for when it grows one: "map" or "slice", or "".
func collectionFrame(fn string) string {
	switch {
	case strings.HasPrefix(fn, "runtime.mapassign"), strings.HasPrefix(fn, "runtime.growWork"),
		fn == "runtime.hashGrow", strings.HasPrefix(fn, "runtime.makemap"),
		strings.HasPrefix(fn, "internal/runtime/maps."):
		return "map"
	case fn == "runtime.growslice":
		return "slice"
	}
	return ""
}

// appendStack appends the frames of a sample to out, innermost first.
func appendStack(out []Frame, smp *profile.Sample) []Frame {
	for _, loc := range smp.Location {
		for _, ln := range loc.Line {
			if ln.Function != nil {
				out = append(out, Frame{Func: ln.Function.Name, File: ln.Function.Filename, Line: int(ln.Line)})
			}
		}
	}
	return out
}

// stackLen is the number of frames appendStack appends.
func stackLen(smp *profile.Sample) int {
	n := 0
	for _, loc := range smp.Location {
		n += len(loc.Line)
	}
	return n
}

// subject names a site for tables: "main.put (cache.go:42)", with the
// record kind first in tracker profiles.
func (k siteKey) subject() string {
	if k.kind != "" {
		return k.kind + " at " + k.frame.String()
	}
	return k.frame.String()
}

func compareKeys(a, b siteKey) int {
	return cmp.Or(cmp.Compare(a.frame.Func, b.frame.Func), cmp.Compare(a.frame.File, b.frame.File),
		cmp.Compare(a.frame.Line, b.frame.Line), cmp.Compare(a.kind, b.kind))
}

// companion returns the index of the sample type that counts what index
// measures in the other unit (inuse_objects for inuse_space, and so on),
// or -1.
func companion(types []*profile.ValueType, index int) int {
	typ := types[index].Type
	var other string
	switch {
	case strings.HasSuffix(typ, "_space"):
		other = strings.TrimSuffix(typ, "_space") + "_objects"
	case strings.HasSuffix(typ, "_objects"):
		other = strings.TrimSuffix(typ, "_objects") + "_space"
	case typ == "space":
		other = "objects"
	case typ == "objects":
		other = "space"
	default:
		return -1
	}
	for i, st := range types {
		if st.Type == other {
			return i
		}
	}
	return -1
}

// columnName is a table header for a sample type.
func columnName(vt *profile.ValueType) string {
	return strings.ToUpper(vt.Type)
}

// functions sums a profile's values at index by function: flat at the sites
// in it, cum anywhere in the stack; it returns the top heaviest by flat.
// Only functions that are sites are counted: the top table lists no others.
func functions(p *profile.Profile, sites []*site, index, comp, top int) []fnStat {
	byName := map[string]*fnStat{}
	for _, st := range sites {
		f := byName[st.key.frame.Func]
		if f == nil {
			f = &fnStat{name: st.key.frame.Func}
			byName[f.name] = f
		}
		f.flat += st.vals[index]
		if comp >= 0 {
			f.other += st.vals[comp]
		}
	}
	// The site functions of each location, found once and kept by
	// location ID when the IDs are dense (as Go's are); a stamp per
	// function counts it once per sample however often it recurs.
	stats := make([]*fnStat, 0, len(byName))
	slot := make(map[string]int32, len(byName))
	for name, f := range byName {
		slot[name] = int32(len(stats))
		stats = append(stats, f)
	}
	stamps := make([]int, len(stats))
	for i := range stamps {
		stamps[i] = -1
	}
	maxID := uint64(0)
	for _, l := range p.Location {
		maxID = max(maxID, l.ID)
	}
	var (
		dense  [][]int32
		done   []bool
		sparse = map[*profile.Location][]int32{}
	)
	if maxID <= uint64(2*len(p.Location)+1) {
		dense, done = make([][]int32, maxID+1), make([]bool, maxID+1)
	}
	// The slot of each function, by its ID when dense: a name is hashed
	// once per function, not once per line.
	byFnID := make([]int32, 2*len(p.Function)+2)
	for i := range byFnID {
		byFnID[i] = -2 // not looked up yet
	}
	slotOf := func(fn *profile.Function) int32 {
		if fn.ID < uint64(len(byFnID)) && byFnID[fn.ID] != -2 {
			return byFnID[fn.ID]
		}
		j, ok := slot[fn.Name]
		if !ok {
			j = -1
		}
		if fn.ID < uint64(len(byFnID)) {
			byFnID[fn.ID] = j
		}
		return j
	}
	fnsOf := func(loc *profile.Location) []int32 {
		inDense := loc.ID < uint64(len(dense))
		if inDense && done[loc.ID] {
			return dense[loc.ID]
		}
		if fs, ok := sparse[loc]; ok {
			return fs
		}
		var fs []int32
		named := false
		for _, ln := range loc.Line {
			if ln.Function == nil || ln.Function.Name == "" {
				continue
			}
			named = true
			if j := slotOf(ln.Function); j >= 0 {
				fs = append(fs, j)
			}
		}
		if !named && loc.Address != 0 {
			// An unsymbolized location is a site named by its
			// address (newLocSite): it counts under that name.
			if j, ok := slot[fmt.Sprintf("0x%x", loc.Address)]; ok {
				fs = append(fs, j)
			}
		}
		if inDense {
			dense[loc.ID], done[loc.ID] = fs, true
		} else {
			sparse[loc] = fs
		}
		return fs
	}
	for i, smp := range p.Sample {
		v := smp.Value[index]
		if v == 0 {
			continue
		}
		for _, loc := range smp.Location {
			for _, j := range fnsOf(loc) {
				if stamps[j] != i {
					stamps[j] = i
					stats[j].cum += v
				}
			}
		}
	}
	out := make([]fnStat, 0, len(byName))
	for _, f := range byName {
		if f.flat != 0 {
			out = append(out, *f)
		}
	}
	slices.SortFunc(out, func(a, b fnStat) int {
		return cmp.Or(cmp.Compare(b.flat, a.flat), cmp.Compare(b.cum, a.cum), cmp.Compare(a.name, b.name))
	})
	return slices.Clone(out[:min(top, len(out))])
}

// topTables lists the top holders by function and by allocation site.
func (s *siteSet) topTables(top int) []Table {
	main := s.types[s.index]
	unit := s.unit()
	comp := companion(s.types, s.index)
	total := s.total[s.index]
	if s.tracker {
		return []Table{s.trackerTable(top)}
	}
	if s.top == nil && len(s.vals) > 0 {
		// Another profile of this kind was summarized in the table: its
		// top holders were not kept. Rank the sites again, without the
		// functions, which need the profile.
		return []Table{s.siteTable(s.rankAll(top), -1)}
	}
	fnCols := []string{columnName(main), "%"}
	if comp >= 0 {
		fnCols = append(fnCols, columnName(s.types[comp]))
	}
	fnCols = append(fnCols, "CUM", "CUM%", "FUNCTION")
	fnTable := Table{Title: fmt.Sprintf("top functions by %s in %s (%s in all)", main.Type, s.name, formatQuantity(float64(total), unit)), Columns: fnCols, Rows: [][]string{}}
	for _, f := range s.fns[:min(top, len(s.fns))] {
		row := []string{formatQuantity(float64(f.flat), unit), percent(f.flat, total)}
		if comp >= 0 {
			row = append(row, formatQuantity(float64(f.other), countUnit(s.types[comp])))
		}
		row = append(row, formatQuantity(float64(f.cum), unit), percent(f.cum, total), f.name)
		fnTable.Rows = append(fnTable.Rows, row)
	}

	return []Table{fnTable, s.siteTable(s.top[:min(top, len(s.top))], comp)}
}

// siteTable lists the top sites, with the companion sample type's column
// unless comp is -1.
func (s *siteSet) siteTable(top []topSite, comp int) Table {
	main := s.types[s.index]
	unit := s.unit()
	total := s.total[s.index]
	siteCols := []string{columnName(main), "%"}
	if comp >= 0 {
		siteCols = append(siteCols, columnName(s.types[comp]))
	}
	siteCols = append(siteCols, "SITE")
	t := Table{Title: fmt.Sprintf("top allocation sites by %s in %s", main.Type, s.name), Columns: siteCols, Rows: [][]string{}}
	for _, ts := range top {
		if ts.val == 0 {
			break
		}
		row := []string{formatQuantity(float64(ts.val), unit), percent(ts.val, total)}
		if comp >= 0 {
			row = append(row, formatQuantity(float64(ts.other), countUnit(s.types[comp])))
		}
		row = append(row, s.key(ts.id).subject())
		t.Rows = append(t.Rows, row)
	}
	return t
}

// rankAll returns the k sites of most value, heaviest first.
func (s *siteSet) rankAll(k int) []topSite {
	var out []topSite
	for _, id := range s.ids() {
		v, _ := s.get(id)
		out = append(out, topSite{id: id, val: v})
	}
	slices.SortFunc(out, func(a, b topSite) int {
		return cmp.Or(cmp.Compare(b.val, a.val), compareKeys(s.key(a.id), s.key(b.id)))
	})
	return out[:min(k, len(out))]
}

// trackerTable lists the live records of a tracker profile by kind and
// acquisition site.
func (s *siteSet) trackerTable(top int) Table {
	total := s.total[s.index]
	t := Table{Title: fmt.Sprintf("live tracked records by kind and site in %s (%s in all)", s.name, plural(int(total), "record")),
		Columns: []string{"RECORDS", "%", "KIND", "SITE"}, Rows: [][]string{}}
	tops := s.top
	if tops == nil {
		tops = s.rankAll(top) // not kept: see topTables
	}
	for _, ts := range tops[:min(top, len(tops))] {
		k := s.key(ts.id)
		t.Rows = append(t.Rows, []string{strconv.FormatInt(ts.val, 10), percent(ts.val, total), k.kind, k.frame.String()})
	}
	return t
}

func percent(v, total int64) string {
	if total == 0 {
		return "-"
	}
	return strconv.FormatFloat(100*float64(v)/float64(total), 'f', 1, 64) + "%"
}

// change is one site's change between two profiles.
type change struct {
	id          int32
	key         siteKey
	base, after int64
}

func (c change) delta() int64 { return c.after - c.base }

// grown returns the k sites that grew most from base to target, largest
// growth first; sites that did not grow are left out. It keeps only the k
// best as it goes: a profile has thousands of sites and a report lists a few.
func grown(base, target *siteSet, k int) []change {
	better := func(a, b change) int {
		return cmp.Or(cmp.Compare(b.delta(), a.delta()), cmp.Compare(b.after, a.after), compareKeys(a.key, b.key))
	}
	top := make([]change, 0, k+1)
	for _, id := range target.ids() {
		c := change{id: id, key: target.key(id)}
		c.after, _ = target.get(id)
		if c.after <= 0 {
			continue
		}
		c.base, _ = base.get(id)
		if c.delta() > 0 {
			top = keepBest(top, c, k, better)
		}
	}
	return top
}

// relative formats a change relative to its base: "+35%", or "new".
func relative(base, delta int64) string {
	switch {
	case base == 0 && delta == 0:
		return "0%"
	case base == 0:
		return "new"
	}
	r := 100 * float64(delta) / float64(base)
	sign := ""
	if r > 0 {
		sign = "+"
	}
	if math.Abs(r) >= 10 {
		return sign + strconv.FormatFloat(r, 'f', 0, 64) + "%"
	}
	return sign + strconv.FormatFloat(r, 'f', 1, 64) + "%"
}

func signed(v float64, unit string) string {
	if v > 0 {
		return "+" + formatQuantity(v, unit)
	}
	return formatQuantity(v, unit)
}

// growthRule is the least growth of a site, from the first profile to the
// last, that makes a finding: a share of the heap in use (the last
// profile's total by the sample type compared), and for sampled byte
// values at least two sampling periods and three standard deviations of
// the sampling noise. HeapOptions.MinGrowth replaces it.
//
// A profile records on average one allocation in each period bytes, and a
// small object recorded stands for period bytes; a site holding v bytes
// is then seen as a count of such records, about Poisson, whose estimate
// of v varies by about sqrt(period*v). Two profiles' values of one site
// differ by chance by up to three times sqrt(period*(first+last)).
type growthRule struct {
	fixed   int64 // HeapOptions.MinGrowth
	share   float64
	total   int64
	period  int64 // for byte values; else 0
	records bool  // live tracker records
	pair    bool  // two profiles
}

func newGrowthRule(last *siteSet, opts HeapOptions, share float64, pair bool) growthRule {
	r := growthRule{fixed: opts.MinGrowth, share: share, total: last.total[last.index], records: last.tracker, pair: pair}
	if last.unit() == "bytes" {
		r.period = last.period
	}
	return r
}

// least returns the least growth that counts for a site that went from
// first to last.
func (r growthRule) least(first, last int64) int64 {
	if r.fixed > 0 {
		return r.fixed
	}
	m := max(1, int64(math.Ceil(r.share*float64(r.total))))
	if r.records && r.pair {
		m = max(m, DefaultMinGrowthRecords)
	}
	if r.period > 0 && r.pair { // bytes
		m = max(m, DefaultMinGrowthPairBytes)
	}
	if r.period > 1 {
		noise := 3 * math.Sqrt(float64(r.period)*float64(max(first, 0)+max(last, 0)))
		m = max(m, 2*r.period, int64(math.Ceil(noise)))
	}
	return m
}

// String says the rule, for the notes.
func (r growthRule) String(typ, unit string) string {
	if r.fixed > 0 {
		return "from " + signed(float64(r.fixed), unit) + ", as set"
	}
	byShare := max(1, int64(math.Ceil(r.share*float64(r.total))))
	share := fmt.Sprintf("%s (%g%% of the %s in the last profile, %s)",
		signed(float64(byShare), unit), 100*r.share, typ, formatQuantity(float64(r.total), unit))
	var s string
	switch {
	case r.period > 1:
		s = fmt.Sprintf("from the largest of %s, %s (twice the sampling period of %s) and three standard deviations of the sampling noise, 3*sqrt(period*(first+last))",
			share, signed(float64(2*r.period), "bytes"), formatQuantity(float64(r.period), "bytes"))
	case r.records && r.pair:
		s = fmt.Sprintf("from the larger of %s and +%d records", share, DefaultMinGrowthRecords)
	case r.period > 0 && r.pair:
		s = fmt.Sprintf("from the larger of %s and %s", share, signed(float64(DefaultMinGrowthPairBytes), "bytes"))
	default:
		s = "from " + share
	}
	if r.pair {
		s += ": two profiles cannot tell a leak from a one-time allocation made between them, so the share is larger than a series needs"
	}
	return s
}

// diff compares two profiles: a table of the growth by site and a finding
// for each site that grew by at least the least growth (growthRule, with
// PairGrowthShare).
func (a *Result) diff(base, target *siteSet, opts HeapOptions) {
	unit := target.unit()
	rule := newGrowthRule(target, opts, PairGrowthShare, true)
	// Every site that grew past the threshold is a finding; the table
	// lists the Top, and the notes say how many more there are.
	cs := grown(base, target, max(opts.Top, len(target.vals)))
	tb, tt := base.total[base.index], target.total[target.index]
	t := Table{
		Title: fmt.Sprintf("growth by site, %s, from %s to %s: %s to %s (%s, %s)",
			target.typ(), base.name, target.name, formatQuantity(float64(tb), unit), formatQuantity(float64(tt), unit),
			signed(float64(tt-tb), unit), relative(tb, tt-tb)),
		Columns: []string{"BASE", "TARGET", "CHANGE", "CHANGE%", "SITE"},
		Rows:    [][]string{},
	}
	for _, c := range cs[:min(opts.Top, len(cs))] {
		t.Rows = append(t.Rows, []string{formatQuantity(float64(c.base), unit), formatQuantity(float64(c.after), unit),
			signed(float64(c.delta()), unit), relative(c.base, c.delta()), c.key.subject()})
	}
	a.Tables = append(a.Tables, t)
	n := 0
	for _, c := range cs {
		if c.delta() < rule.least(c.base, c.after) {
			continue
		}
		f := growthFinding(target, c.id)
		suffix := "" // objects
		if unit == "bytes" {
			suffix = "_bytes"
		}
		f.Evidence.Values = map[string]float64{"base" + suffix: float64(c.base), "target" + suffix: float64(c.after), "growth" + suffix: float64(c.delta())}
		a.Findings = append(a.Findings, f)
		n++
	}
	note := fmt.Sprintf("%s compared with %s by %s; growth findings %s", target.name, base.name, target.typ(), rule.String(target.typ(), unit))
	if n > opts.Top {
		note += fmt.Sprintf("; %d sites grew past it, the table lists %d (--top)", n, opts.Top)
	}
	a.Notes = append(a.Notes, note)
}

// siteSeries is one site's values over a series of profiles.
type siteSeries struct {
	id     int32
	key    siteKey
	series Series
	trend  Trend
	delta  int64
}

// series judges every site over three profiles or more: with enough of
// them for the trend test (TrendOptions.MinSamples), by the trend test;
// with fewer, by rising in most steps (risesMost). Either way a site must
// also grow by the least growth (growthRule, with SeriesGrowthShare).
func (a *Result) series(sets []*siteSet, opts HeapOptions) {
	last := sets[len(sets)-1]
	unit := last.unit()
	typ := last.typ()
	prefix := "heap." + typ
	if last.tracker {
		prefix = "tracker.records"
	}
	trend := opts.Trend.withDefaults()
	enough := len(sets) >= trend.MinSamples
	rule := newGrowthRule(last, opts, SeriesGrowthShare, false)

	total := Series{Name: prefix, Unit: unit}
	for _, s := range sets {
		total.Points = append(total.Points, Point{Time: s.time, Value: float64(s.total[s.index])})
	}
	tt := total.Analyze(opts.Trend)

	// Every site seen in any profile gets a series, zero where absent.
	// They are built here, not by a SeriesBuilder: a builder keyed by
	// name would fill no zeros and give no site id back, and would name
	// every site once per profile.
	var union []uint64
	for _, s := range sets {
		for len(union) < len(s.seen) {
			union = append(union, 0)
		}
		for w, bits := range s.seen {
			union[w] |= bits
		}
	}
	all := make([]*siteSeries, 0, len(last.table.sites))
	for _, id := range (&siteSet{seen: union}).ids() {
		k := last.key(id)
		ss := &siteSeries{id: id, key: k, series: Series{Name: prefix + " " + k.subject(), Unit: unit}}
		ss.series.Points = make([]Point, len(sets))
		for i, s := range sets {
			v, _ := s.get(id)
			ss.series.Points[i] = Point{Time: s.time, Value: float64(v)}
		}
		first, end := ss.series.Points[0].Value, ss.series.Points[len(sets)-1].Value
		ss.delta = int64(end - first)
		all = append(all, ss)
	}
	slices.SortFunc(all, func(x, y *siteSeries) int {
		return cmp.Or(cmp.Compare(y.delta, x.delta), compareKeys(x.key, y.key))
	})

	a.Series = append(a.Series, total)
	var growing []*siteSeries
	for _, ss := range all {
		if enough {
			ss.trend = ss.series.Analyze(opts.Trend)
			if ss.trend.Verdict != VerdictGrowing {
				// A collection grows in steps, its backing array
				// reallocated larger: too few for the trend test.
				steps, ok := stepGrowth(ss.series.Points, collectionSteps)
				_, inLast := last.get(ss.id)
				if !ok || !inLast || collectionOf(last, ss.id) == "" {
					continue
				}
				ss.trend.Verdict = VerdictGrowing
				ss.trend.Note = fmt.Sprintf("grew in %d steps and never fell, as a collection does whose backing array is reallocated larger: too few steps for the trend test alone", steps)
			}
		} else {
			ss.trend = risesMost(ss.series.Points, trend)
			ss.series.Trend = &ss.trend
			if ss.trend.Verdict == VerdictSteady && collectionOf(last, ss.id) != "" {
				// A backing array doubles: a few profiles see it
				// rise in two steps, not in most.
				if steps, ok := stepGrowth(ss.series.Points, 2); ok {
					ss.trend.Verdict = VerdictGrowing
					ss.trend.Note = fmt.Sprintf("grew in %d steps and never fell, as a collection does whose backing array is reallocated larger: too few profiles for the trend test, judged by its steps", steps)
				}
			}
			if ss.trend.Verdict != VerdictGrowing {
				continue
			}
		}
		pts := ss.series.Points
		first, end := int64(pts[0].Value), int64(pts[len(pts)-1].Value)
		if least := rule.least(first, end); ss.delta < least {
			ss.trend.Verdict = VerdictSteady
			ss.trend.Note = fmt.Sprintf("rising, but by %s, less than the least growth that counts (%s)",
				signed(float64(ss.delta), unit), signed(float64(least), unit))
			*ss.series.Trend = ss.trend
			continue
		}
		*ss.series.Trend = ss.trend
		growing = append(growing, ss)
	}

	t := Table{
		Title:   fmt.Sprintf("%s by site over %d profiles, %s to %s", typ, len(sets), sets[0].name, last.name),
		Columns: []string{"FIRST", "LAST", "CHANGE", "VERDICT", "SITE"},
		Rows:    [][]string{},
	}
	for _, ss := range all[:min(opts.Top, len(all))] {
		pts := ss.series.Points
		verdict := string(VerdictNotEnoughData)
		if ss.trend.Verdict != "" {
			verdict = string(ss.trend.Verdict)
		}
		t.Rows = append(t.Rows, []string{formatQuantity(pts[0].Value, unit), formatQuantity(pts[len(pts)-1].Value, unit),
			signed(float64(ss.delta), unit), verdict, ss.key.subject()})
	}
	a.Tables = append(a.Tables, t)

	n := 0
	for _, ss := range growing {
		if _, ok := last.get(ss.id); !ok {
			continue
		}
		f := growthFinding(last, ss.id)
		tr := ss.trend
		f.Evidence.Series, f.Evidence.Trend = ss.series.Name, &tr
		pts := ss.series.Points
		suffix := "" // objects or records
		if last.unit() == "bytes" {
			suffix = "_bytes"
		}
		f.Evidence.Values = map[string]float64{"first" + suffix: pts[0].Value, "last" + suffix: pts[len(pts)-1].Value}
		a.Findings = append(a.Findings, f)
		a.Series = append(a.Series, ss.series)
		n++
	}
	if len(growing) == 0 && tt.Verdict == VerdictGrowing {
		// Growth spread thinly over many sites is still growth.
		a.Findings = append(a.Findings, Finding{
			Kind: KindGrowth, Severity: SeverityWarning,
			Subject:    fmt.Sprintf("%s grows in total, at no single site", prefix),
			Count:      1,
			Evidence:   Evidence{Series: total.Name, Trend: &tt},
			Suggestion: "many sites grow a little each: compare the first and last profiles with --base, ranked by " + typ,
			Signature:  Signature(KindGrowth, prefix+" total", nil),
		})
	}
	how := fmt.Sprintf("%d profiles trend-tested by %s", len(sets), typ)
	if !enough {
		need := risesNeeded(len(sets) - 1)
		how = fmt.Sprintf("%d profiles are too few for the trend test (it needs %d): by %s, a site grows when it rose in at least %d of its %d steps, once in the later half, and fell back by at most a quarter of what it rose",
			len(sets), trend.MinSamples, typ, need, len(sets)-1)
	}
	note := fmt.Sprintf("%s; growth findings %s; %d sites found growing", how, rule.String(typ, unit), n)
	if n > opts.Top {
		note += fmt.Sprintf(", the table lists %d (--top)", opts.Top)
	}
	a.Notes = append(a.Notes, note)
}

// risesNeeded is how many of a short series' steps must rise (risesMost):
// three in four, and at least two, so that a site that rose once, as a
// one-time allocation does, is never growing.
func risesNeeded(steps int) int { return max(2, (3*steps+3)/4) }

// risesMost judges a series too short for the trend test, of three points
// or more after the warm-up: it grows when it rose in at least
// risesNeeded of its steps, once in the later half, and fell back by at
// most a quarter of what it rose. The trend tests are run on the points
// all the same, for the slope (the rate of growth) and the evidence; their
// p-values are not what the verdict rests on.
func risesMost(points []Point, opts TrendOptions) Trend {
	opts = opts.withDefaults()
	pts, warmupEnd := afterWarmup(points, opts)
	tr := Trend{Samples: len(pts), WarmupEnd: warmupEnd}
	if len(pts) < 3 || !pts[len(pts)-1].Time.After(pts[0].Time) {
		tr.Verdict = VerdictNotEnoughData
		tr.Window.P, tr.Recent.P = 1, 1
		return tr
	}
	tr.Window = trendTest(pts, opts.Blocks)
	tr.Recent = trendTest(pts[len(pts)/2:], opts.Blocks/2)
	steps, rises, recent := len(pts)-1, 0, false
	var up, down float64
	for i := 1; i < len(pts); i++ {
		switch d := pts[i].Value - pts[i-1].Value; {
		case d > 0:
			rises++
			up += d
			recent = recent || i > steps/2
		case d < 0:
			down -= d
		}
	}
	if level := math.Abs(tr.Window.Intercept); level > 0 {
		span := pts[len(pts)-1].Time.Sub(pts[0].Time).Hours()
		tr.Effect = tr.Window.SlopePerHour * span / level
	}
	tr.Verdict = VerdictSteady
	switch need := risesNeeded(steps); {
	case rises >= need && recent && down <= up/4:
		tr.Verdict = VerdictGrowing
		tr.Note = fmt.Sprintf("rose in %d of %d steps: too few profiles for the trend test, judged by its steps", rises, steps)
	case rises == 1 && down == 0:
		tr.Note = "rose once and held: a one-time allocation, not a leak"
	case rises > 0 && rises < need:
		tr.Note = fmt.Sprintf("rose in %d of %d steps only", rises, steps)
	case rises >= need && !recent:
		tr.Note = "rose earlier, not in the later half"
	case rises >= need:
		tr.Note = "rose, but fell back by more than a quarter of it"
	}
	return tr
}

// collectionSteps is how many times a collection's in-use size must rise,
// never falling, to be growing by stepGrowth: three reallocations of a
// backing array are an 8-fold growth when it doubles, and 2-fold at the
// 1.25 factor of large slices.
const collectionSteps = 3

// stepGrowth reports whether a series grew the way a collection that keeps
// growing does: it never fell, rose at least least times (collectionSteps
// over a series long enough for the trend test), and rose again in the
// recent half of the series. It returns the number of rises.
func stepGrowth(pts []Point, least int) (steps int, ok bool) {
	recent := false
	for i := 1; i < len(pts); i++ {
		switch {
		case pts[i].Value < pts[i-1].Value:
			return 0, false
		case pts[i].Value > pts[i-1].Value:
			steps++
			recent = recent || i >= len(pts)/2
		}
	}
	return steps, steps >= least && recent
}

// growthFinding reports a site of s that grows.
func growthFinding(s *siteSet, id int32) Finding {
	var subject, advice string
	st := &s.table.sites[id]
	coll := collectionOf(s, id)
	where := st.key.frame.String()
	switch {
	case s.tracker:
		subject = fmt.Sprintf("live %s records grow at %s", st.key.kind, where)
		advice = "records acquired here are not released: release each one when its work is done"
	case coll == "map":
		subject = "map grows at " + where
		advice = "entries are added to this map and never deleted: delete each when its work is done, or bound the map"
	case coll == "slice":
		subject = "slice grows at " + where
		advice = "this slice is appended to and never truncated: drop items when done, or bound it"
	case coll != "":
		subject = "map or slice grows at " + where
		advice = "a collection grows here: delete entries (or truncate) when their work is done, or bound its size"
	case s.typ() == "inuse_space":
		subject = "heap grows at " + where
		advice = "objects allocated here stay reachable: find what holds them (a map, a slice, a list, a closure) and drop it when done"
	default:
		subject = fmt.Sprintf("heap %s grows at %s", s.typ(), where)
		advice = "objects allocated here stay reachable: find what holds them (a map, a slice, a list, a closure) and drop it when done"
	}
	key := "heap " + s.typ() + " " + coll
	if s.tracker {
		key = "tracker " + st.key.kind
	}
	stack := st.stack
	if stack == nil {
		// The site's stack was in a newer profile that does not have
		// the site (a --base newer than its target): its frame is known.
		stack = []Frame{st.key.frame}
	}
	sev := SeverityWarning
	if !s.tracker && runtimeOnly(stack) {
		// No frame of the program: the runtime's own allocations
		// (goroutine stacks, its structures, the race detector's), which
		// grow as a process warms up or with its goroutines, which the
		// goroutine findings judge. Seen growing in a steady daemon
		// polled for a second under -race.
		sev = SeverityInfo
		advice = "the Go runtime allocated this for itself, not the program's code: it follows the goroutines (see their findings) or the runtime warming up"
	}
	return Finding{
		Kind:       KindGrowth,
		Severity:   sev,
		Subject:    subject,
		Count:      1,
		Evidence:   Evidence{Stack: stack},
		Suggestion: advice,
		Signature:  Signature(KindGrowth, key+" "+st.key.frame.Func, stack),
	}
}

// runtimeOnly reports whether every frame of stack is in the Go runtime.
func runtimeOnly(stack []Frame) bool {
	for _, f := range stack {
		if !strings.HasPrefix(f.Func, "runtime.") && !strings.HasPrefix(f.Func, "internal/runtime/") {
			return false
		}
	}
	return len(stack) > 0
}

// collectionOf says whether a site allocates for a growing collection: by
// its runtime frames when the profile has them ("map", "slice"), else by
// the sizes it allocated ("map or slice", see findCollections), else "".
func collectionOf(s *siteSet, id int32) string {
	if s.tracker {
		return ""
	}
	return s.table.sites[id].coll
}

// addSize adds the bytes in use in blocks of a size allocated at the site.
func (st *site) addSize(size, held int64) {
	for i := range st.sizes {
		if st.sizes[i].size == size {
			st.sizes[i].held += held
			return
		}
	}
	st.sizes = append(st.sizes, sizeHeld{size, held})
}

// findCollections marks the sites that allocate for a growing collection by
// the sizes they allocated (site.sizes), where no runtime frame says so
// already.
//
// Go's heap profiles leave out the runtime frames at the top of a stack, so
// runtime.mapassign and runtime.growslice rarely show. But a collection that
// grows leaves a mark: its backing array is reallocated larger each time, so
// the site has allocated blocks of several sizes, each 1.2 to 2.5 times the
// last, and holds most of its memory in the largest ones. Go's heap profiles
// label every sample with its block size ("bytes").
func findCollections(sized []*site) {
	for _, st := range sized {
		if st.coll != "" || len(st.sizes) <= ladderSteps {
			continue // too few sizes for a ladder
		}
		all := int64(0)
		for _, z := range st.sizes {
			all += z.held
		}
		if ladder(st.sizes, all) {
			st.coll = "map or slice"
		}
	}
}

// ladderSteps is how many reallocations, each a growth by a factor in
// [ladderMin, ladderMax], the block sizes of a site must show to be a
// growing collection.
const (
	ladderSteps = 3
	ladderMin   = 1.15
	ladderMax   = 2.6
)

// isLadder reports whether the block sizes allocated at a site (with the
// bytes still in use in each) look like a growing backing array: the
// largest sizes form a chain of ladderSteps reallocations, and the largest
// half of the sizes holds most of the memory in use.
func isLadder(held map[int64]int64, all int64) bool {
	sizes := make([]sizeHeld, 0, len(held))
	for size, h := range held {
		sizes = append(sizes, sizeHeld{size, h})
	}
	return ladder(sizes, all)
}

// ladder is isLadder of the sizes of a site, each once; it sorts them.
func ladder(sizes []sizeHeld, all int64) bool {
	if len(sizes) < ladderSteps+1 || all <= 0 {
		return false
	}
	slices.SortFunc(sizes, func(a, b sizeHeld) int { return cmp.Compare(a.size, b.size) })
	steps := 0
	for i := len(sizes) - 1; i > 0 && steps < ladderSteps; i-- {
		r := float64(sizes[i].size) / float64(sizes[i-1].size)
		if r < ladderMin || r > ladderMax {
			return false
		}
		steps++
	}
	var top int64
	for _, z := range sizes[len(sizes)/2:] {
		top += z.held
	}
	return top*2 > all
}

// symbolizeLegacyHeap names the functions of a legacy text heap profile
// (heap?debug=1). The profile package reads only its addresses; Go writes
// each stack's frames as comments after it:
//
//	#	0x6c8d2c	main.(*cache).put+0x14c		/src/main.go:56
//
// with the address less one (where the profile package puts the location),
// and several lines with one address for inlined calls, innermost first.
//
// Go leaves out of the comments the runtime frames at the top of a stack
// (runtime.mallocgc and its callers) and, in the protocol buffer form of
// the same profile, leaves them out of the stack itself. Their addresses
// stay in the text form's stacks, and one address named in the comments of
// one stack (where the stack is all runtime and Go shows every frame) would
// name it in every stack: runtime.mallocgc's cumulative value would then be
// most of the heap in the text form and a few KiB in the protocol buffer.
// So each sample loses the frames above the first its comments show, as
// the protocol buffer form has it.
func symbolizeLegacyHeap(p *profile.Profile, text []byte) {
	lines := map[uint64][]profile.Line{}
	funcs := map[[2]string]*profile.Function{}
	// recs are the stacks in the order the profile package made samples
	// of them, each with the first address its comments show (0: none).
	type record struct {
		addrs []uint64
		shown uint64
	}
	var recs []record
	var prev uint64
	sc := bufio.NewScanner(bytes.NewReader(text))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		addr, fn, file, line, ok := parseFrameComment(sc.Bytes())
		if !ok {
			prev = 0
			if addrs, ok := parseStackLine(sc.Bytes()); ok {
				recs = append(recs, record{addrs: addrs})
			}
			continue
		}
		if n := len(recs); n > 0 && recs[n-1].shown == 0 {
			recs[n-1].shown = addr
		}
		if _, done := lines[addr]; done && addr != prev {
			continue // seen in an earlier stack
		}
		f := funcs[[2]string{fn, file}]
		if f == nil {
			f = &profile.Function{ID: uint64(len(p.Function) + 1), Name: fn, SystemName: fn, Filename: file}
			funcs[[2]string{fn, file}] = f
			p.Function = append(p.Function, f)
		}
		lines[addr] = append(lines[addr], profile.Line{Function: f, Line: line})
		prev = addr
	}
	if len(lines) == 0 {
		return
	}
	if len(recs) == len(p.Sample) {
		for i, smp := range p.Sample {
			r := recs[i]
			if r.shown == 0 || !sameStack(smp.Location, r.addrs) {
				continue
			}
			for k, loc := range smp.Location {
				if loc.Address == r.shown {
					smp.Location = smp.Location[k:]
					break
				}
			}
		}
	}
	for _, loc := range p.Location {
		if l, ok := lines[loc.Address]; ok && len(loc.Line) == 0 {
			loc.Line = l
		}
	}
	for _, m := range p.Mapping {
		m.HasFunctions, m.HasFilenames, m.HasLineNumbers = true, true, true
	}
}

// parseStackLine parses the addresses of a legacy heap profile's sample
// line, "1: 2048 [3: 6144] @ 0x4a1 0x4b2", each less one as the profile
// package has them.
func parseStackLine(b []byte) ([]uint64, bool) {
	if len(b) == 0 || b[0] == '#' {
		return nil, false
	}
	_, rest, found := bytes.Cut(b, []byte(" @ "))
	if !found {
		return nil, false
	}
	fields := strings.Fields(string(rest))
	addrs := make([]uint64, 0, len(fields))
	for _, f := range fields {
		a, err := strconv.ParseUint(strings.TrimPrefix(f, "0x"), 16, 64)
		if err != nil || a == 0 || !strings.HasPrefix(f, "0x") {
			return nil, false
		}
		addrs = append(addrs, a-1)
	}
	return addrs, len(addrs) > 0
}

// sameStack reports whether locs are at addrs, in order.
func sameStack(locs []*profile.Location, addrs []uint64) bool {
	if len(locs) != len(addrs) {
		return false
	}
	for i, l := range locs {
		if l.Address != addrs[i] {
			return false
		}
	}
	return true
}

// parseFrameComment parses "#\t0xADDR\tFUNC+0xOFF\tFILE:LINE".
func parseFrameComment(b []byte) (addr uint64, fn, file string, line int64, ok bool) {
	rest, found := bytes.CutPrefix(b, []byte("#\t0x"))
	if !found {
		return 0, "", "", 0, false
	}
	fields := strings.FieldsFunc(string(rest), func(r rune) bool { return r == '\t' })
	if len(fields) != 3 {
		return 0, "", "", 0, false
	}
	addr, err := strconv.ParseUint(fields[0], 16, 64)
	if err != nil {
		return 0, "", "", 0, false
	}
	fn = fields[1]
	if i := strings.LastIndex(fn, "+0x"); i > 0 {
		fn = fn[:i]
	}
	i := strings.LastIndexByte(fields[2], ':')
	if i <= 0 {
		return 0, "", "", 0, false
	}
	line, err = strconv.ParseInt(fields[2][i+1:], 10, 64)
	if err != nil || line < 0 || fn == "" {
		return 0, "", "", 0, false
	}
	return addr, fn, fields[2][:i], line, true
}
