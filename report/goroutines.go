package report

import (
	"cmp"
	"fmt"
	"github.com/leakcheck/leakcheck/tracker"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/pprof/profile"

	"github.com/leakcheck/leakcheck/tracker/stack"
)

// Goroutine is one goroutine of a dump, or, in the forms that aggregate
// (debug=1 and proto), one stack that Count goroutines share: the type of
// tracker/stack, leakcheck's one traceback parser. In a GoroutineDump, Stack
// is trimmed by stack.Trim, so one goroutine has the same frames in every
// form, and State, which debug=1 and proto do not print, is inferred from a
// known blocking call at the top of the stack (empty when none shows).
type Goroutine = stack.Goroutine

// GoroutineDump is one goroutine profile or dump.
type GoroutineDump struct {
	// Time is when the dump was taken: the proto's time; zero for the text
	// forms, which do not say, unless the caller knows and sets it.
	Time time.Time
	// Total is the number of goroutines: the sum of the Counts.
	Total int
	// Leak is true for a goroutineleak profile: every goroutine in it is a
	// leak by construction.
	Leak bool
	// Form is the form the dump was read from: "debug=1", "debug=2" (a full
	// dump that is nothing but goroutines), "crash" (goroutines inside other
	// text, such as a SIGQUIT or panic traceback) or "proto".
	Form       string
	Goroutines []Goroutine
}

// ParseGoroutineText parses the text forms of goroutine profiles and dumps
// with tracker/stack in its strict mode:
//
//   - debug=1: "goroutine profile: total N" (or "goroutineleak profile:
//     total N") followed by one record per distinct stack and label set;
//   - debug=2: full dumps, "goroutine 1 [chan receive, 12 minutes]:" followed
//     by the stack, one block per goroutine, as runtime.Stack writes them;
//   - crash dumps: the same blocks amid other text, as a SIGQUIT, a panic or a
//     fatal error writes them to standard error with GOTRACEBACK=all or
//     higher, with whatever the program printed before and what the go
//     command printed after ("exit status 2").
//
// Text outside goroutine blocks is skipped, and so are the blocks of
// goroutine 0 (a thread's system stack, not a goroutine) and the creators'
// stacks that GODEBUG=tracebackancestors adds. Inside a block every line must
// parse; an error names the line and says what was expected there.
func ParseGoroutineText(data []byte) (*GoroutineDump, error) {
	sd, err := stack.Parse(data, stack.Strict)
	if err != nil {
		return nil, err
	}
	d := &GoroutineDump{Form: sd.Form, Leak: sd.Leak, Total: sd.Total, Goroutines: sd.Goroutines}
	for i := range d.Goroutines {
		g := &d.Goroutines[i]
		if g.State == "" {
			g.State = inferState(g.Stack)
		}
		g.Stack = stack.Trim(g.Stack)
	}
	return d, nil
}

// callState returns the state the runtime prints for a goroutine blocked in
// the call fn, to infer states in the forms that do not print them.
func callState(fn string) (string, bool) {
	switch fn {
	case "runtime.chanrecv1", "runtime.chanrecv2":
		return "chan receive", true
	case "runtime.chansend1":
		return "chan send", true
	case "runtime.selectgo":
		return "select", true
	case "runtime.block":
		return "select (no cases)", true
	case "internal/sync.runtime_SemacquireMutex", "sync.runtime_SemacquireMutex":
		return "sync.Mutex.Lock", true
	case "sync.runtime_SemacquireRWMutexR":
		return "sync.RWMutex.RLock", true
	case "sync.runtime_SemacquireRWMutex":
		return "sync.RWMutex.Lock", true
	case "sync.runtime_SemacquireWaitGroup":
		return "sync.WaitGroup.Wait", true
	case "sync.runtime_notifyListWait":
		return "sync.Cond.Wait", true
	case "sync.runtime_Semacquire":
		return "semacquire", true
	case "time.Sleep":
		return "sleep", true
	case "internal/poll.runtime_pollWait", "runtime.netpollblock":
		return "IO wait", true
	case "syscall.Syscall", "syscall.Syscall6", "internal/runtime/syscall.Syscall6":
		return "syscall", true
	case "runtime.goroutineProfileWithLabels", "runtime.pprof_goroutineProfileWithLabels":
		return "running", true // the goroutine writing the profile
	}
	return "", false
}

// inferState returns the state of a goroutine blocked in a known call near
// the top of its stack, or "" when none shows before the program's own code.
func inferState(stack []Frame) string {
	for _, f := range stack {
		if s, ok := callState(f.Func); ok {
			return s
		}
		if !standardLibrary(f.Func) {
			break
		}
	}
	return ""
}

// standardLibrary reports whether the function fn is in the standard library:
// its package path's first element has no dot, and it is not package main.
func standardLibrary(fn string) bool {
	if i := strings.IndexAny(fn, "[("); i >= 0 {
		fn = fn[:i] // type parameters and receivers may hold other paths
	}
	name := fn
	if i := strings.LastIndexByte(fn, '/'); i >= 0 {
		if strings.Contains(fn[:strings.IndexByte(fn, '/')], ".") {
			return false
		}
		name = fn[i+1:]
	}
	name, _, _ = strings.Cut(name, ".")
	return name != "main" && name != ""
}

// IsGoroutineText reports whether data looks like one of the text forms
// ParseGoroutineText reads, by its first 64 KiB: a debug=1 header at the
// start, or a line that is a goroutine header, wherever it is (a crash's
// traceback may follow any output of the program). It is cheap, for
// detecting what an input is; ParseGoroutineText decides.
func IsGoroutineText(data []byte) bool {
	const sniff = 64 << 10
	data = data[:min(len(data), sniff)]
	if stack.IsProfileHeader(data) {
		return true
	}
	found := false
	stack.Headers(data, func(_ stack.Goroutine, err error) bool {
		found = err == nil
		return !found
	})
	return found
}

// IsGoroutineProfile reports whether a parsed profile is a goroutine profile
// (its period or first sample type is "goroutine"), and whether it is the
// goroutineleak one.
func IsGoroutineProfile(p *profile.Profile) (goroutine, leak bool) {
	if p == nil {
		return false, false
	}
	var types []string
	if p.PeriodType != nil {
		types = append(types, p.PeriodType.Type)
	}
	if len(p.SampleType) > 0 && p.SampleType[0] != nil {
		types = append(types, p.SampleType[0].Type)
	}
	for _, t := range types {
		switch t {
		case "goroutine":
			return true, false
		case "goroutineleak":
			return true, true
		}
	}
	return false, false
}

// GoroutinesFromProfile converts a parsed goroutine or goroutineleak profile
// (the debug=0 protobuf form, or the debug=1 text that profile.Parse also
// reads) into a dump: one Goroutine per sample, its Count the sample's value,
// its State inferred from the stack (see Goroutine.State).
func GoroutinesFromProfile(p *profile.Profile) (*GoroutineDump, error) {
	goroutine, leak := IsGoroutineProfile(p)
	if !goroutine {
		return nil, fmt.Errorf("not a goroutine profile: %s", profileTypes(p))
	}
	value := 0
	for i, st := range p.SampleType {
		if st != nil && (st.Type == "goroutine" || st.Type == "goroutineleak") {
			value = i
			break
		}
	}
	d := &GoroutineDump{Leak: leak, Form: "proto"}
	if p.TimeNanos != 0 {
		d.Time = time.Unix(0, p.TimeNanos)
	}
	for i, s := range p.Sample {
		if s == nil || value >= len(s.Value) {
			return nil, fmt.Errorf("goroutine profile sample %d: want a value for each sample type", i)
		}
		n := s.Value[value]
		if n < 0 || n > int64(maxGoroutines-d.Total) {
			return nil, fmt.Errorf("goroutine profile sample %d: bad goroutine count %d", i, n)
		}
		if n == 0 {
			continue // a sample merged away
		}
		g := Goroutine{Count: int(n), Leaked: leak}
		for _, loc := range s.Location {
			if loc == nil {
				continue
			}
			if len(loc.Line) == 0 {
				g.Stack = append(g.Stack, Frame{Func: fmt.Sprintf("%#x", loc.Address)})
			}
			for _, l := range loc.Line { // innermost (inlined) first
				f := Frame{Line: int(l.Line)}
				if l.Function != nil {
					f.Func, f.File = l.Function.Name, l.Function.Filename
				}
				g.Stack = append(g.Stack, f)
			}
		}
		for k, v := range s.Label {
			if g.Labels == nil {
				g.Labels = make(map[string]string)
			}
			g.Labels[k] = strings.Join(v, ",")
		}
		g.State = inferState(g.Stack)
		g.Stack = stack.Trim(g.Stack)
		d.Goroutines = append(d.Goroutines, g)
		d.Total += g.Count
	}
	return d, nil
}

// maxGoroutines bounds the counts a profile may claim, so that sums fit an int
// on every platform.
const maxGoroutines = 1<<31 - 1

// profileTypes describes a profile's types for an error message.
func profileTypes(p *profile.Profile) string {
	if p == nil {
		return "no profile"
	}
	var types []string
	for _, st := range p.SampleType {
		if st != nil {
			types = append(types, st.Type+"/"+st.Unit)
		}
	}
	if len(types) == 0 {
		return "no sample types"
	}
	return "sample types " + strings.Join(types, ", ")
}

// GoroutineGroup is goroutines with the same state and stack, the way
// panicparse buckets them: a thousand goroutines parked at one line are one
// group.
type GoroutineGroup struct {
	State string
	// Leaked is true when the group's goroutines are leaked (Goroutine.Leaked).
	Leaked    bool
	Stack     []Frame
	CreatedBy Frame
	Elided    int
	// Count is how many goroutines the group holds.
	Count int
	// MinWait and MaxWait bound the members' waits.
	MinWait, MaxWait time.Duration
	// Locked counts the members locked to their thread.
	Locked int
	// IDs are the first few members' ids, as examples; empty in forms
	// without ids.
	IDs []int64
	// Labels are the labels every member has, with the same value.
	Labels map[string]string
}

// groupIDs is how many example ids a group keeps.
const groupIDs = 5

// GroupGoroutines groups a dump's goroutines by state, leaked mark, stack
// (functions, files and lines), elision and creator, and returns the groups
// with the largest Count first; groups of equal Count keep the order of their
// first members in the dump.
func GroupGoroutines(d *GoroutineDump) []GoroutineGroup {
	if d == nil {
		return nil
	}
	var groups []GoroutineGroup
	index := make(map[string]int)
	// The key holds each string after its length, so no two keys collide.
	var key []byte
	str := func(s string) { key = append(append(strconv.AppendInt(key, int64(len(s)), 10), ':'), s...) }
	num := func(n int) { key = append(strconv.AppendInt(key, int64(n), 10), ',') }
	frame := func(f Frame) { str(f.Func); str(f.File); num(f.Line) }
	for _, g := range d.Goroutines {
		key = strconv.AppendBool(key[:0], g.Leaked)
		str(g.State)
		num(g.Elided)
		frame(g.CreatedBy)
		for _, f := range g.Stack {
			frame(f)
		}
		i, ok := index[string(key)] // no allocation to look up
		if !ok {
			i = len(groups)
			index[string(key)] = i
			groups = append(groups, GoroutineGroup{
				State: g.State, Leaked: g.Leaked, Stack: g.Stack, CreatedBy: g.CreatedBy, Elided: g.Elided,
				MinWait: g.Wait, MaxWait: g.Wait, Labels: maps.Clone(g.Labels),
			})
		}
		gr := &groups[i]
		gr.Count += max(g.Count, 1)
		gr.MinWait, gr.MaxWait = min(gr.MinWait, g.Wait), max(gr.MaxWait, g.Wait)
		if g.Locked {
			gr.Locked += max(g.Count, 1)
		}
		if g.ID != 0 && len(gr.IDs) < groupIDs {
			gr.IDs = append(gr.IDs, g.ID)
		}
		for k, v := range gr.Labels {
			if w, ok := g.Labels[k]; !ok || w != v {
				delete(gr.Labels, k)
			}
		}
	}
	for i := range groups {
		if len(groups[i].Labels) == 0 {
			groups[i].Labels = nil
		}
	}
	slices.SortStableFunc(groups, func(a, b GoroutineGroup) int { return cmp.Compare(b.Count, a.Count) })
	return groups
}

// Defaults for GoroutineOptions.
const (
	DefaultBlockedFor = 10 * time.Minute
	DefaultLargeGroup = 100
)

// GoroutineOptions tunes GoroutineFindings. Zero values mean the defaults;
// negative values turn the rule off.
type GoroutineOptions struct {
	// BlockedFor: a group blocked at least this long in a channel operation,
	// a select, a lock, a wait group, a condition or a semaphore, with no
	// timer in its stack, is a finding. 0 means DefaultBlockedFor. Only
	// debug=2 and crash dumps say how long goroutines have waited.
	BlockedFor time.Duration
	// LargeGroup: a group of at least this many identical goroutines is a
	// suspect, at info: size alone is no evidence of a leak. 0 means
	// DefaultLargeGroup.
	LargeGroup int
}

func (o GoroutineOptions) withDefaults() GoroutineOptions {
	if o.BlockedFor == 0 {
		o.BlockedFor = DefaultBlockedFor
	}
	if o.LargeGroup == 0 {
		o.LargeGroup = DefaultLargeGroup
	}
	return o
}

// What a goroutine finding rests on, in Evidence.Basis, strongest first.
const (
	// BasisRuntime: the runtime's leak detector marked the goroutines
	// leaked (a goroutineleak profile, or "(leaked)" in a dump).
	BasisRuntime = "runtime"
	// BasisConstruction: blocked on a nil channel or in an empty select,
	// which nothing can ever wake.
	BasisConstruction = "construction"
	// BasisStuck: the same goroutines, by id, blocked at the same frame
	// across a series of dumps while their wait grew with the clock.
	BasisStuck = "stuck"
	// BasisGrowing: the group's count grows across a series, by a trend test.
	BasisGrowing = "growing"
	// BasisBlocked: a dump's own clock says the group waited long.
	BasisBlocked = "blocked"
	// BasisShape: a suspect by the group's size alone.
	BasisShape = "shape"
)

// blockingState reports whether goroutines in state wait for another
// goroutine to do something: only it can wake them.
func blockingState(state string) bool {
	switch state {
	case "chan receive", "chan send", "chan receive (nil chan)", "chan send (nil chan)",
		"select", "select (no cases)",
		"sync.Mutex.Lock", "sync.RWMutex.RLock", "sync.RWMutex.Lock",
		"sync.WaitGroup.Wait", "sync.Cond.Wait", "semacquire":
		return true
	}
	return false
}

// foreverState reports whether goroutines in state can never be woken:
// a nil channel or a select without cases.
func foreverState(state string) bool {
	switch state {
	case "chan receive (nil chan)", "chan send (nil chan)", "select (no cases)":
		return true
	}
	return false
}

// timedForm reports whether a dump says how long goroutines have waited.
func timedForm(d *GoroutineDump) bool { return d.Form == "debug=2" || d.Form == "crash" }

// processAge is the longest wait in a dump: the process has run at least
// that long.
func processAge(d *GoroutineDump) time.Duration {
	var age time.Duration
	for _, g := range d.Goroutines {
		age = max(age, g.Wait)
	}
	return age
}

// serviceLoop reports whether a group's goroutines have all waited about as
// long as the process has run (age): loops and pools started at start-up
// that wait for a stop, a reload or work all the process's life, however
// many. Leaks keep arriving, so their waits are spread out (or their group
// grows across dumps); a group that leaked once at start-up and never grew
// looks the same as a pool, and is let go.
func serviceLoop(minWait, age time.Duration) bool {
	return age > 0 && minWait >= age-max(age/10, time.Minute)
}

// goroutineFinding is a finding with the key of its group (state, leaked
// mark and top frames), by which the findings of one dump and of a series
// about the same goroutines become one.
type goroutineFinding struct {
	key string
	f   Finding
}

// groupKey identifies a group across dumps and analyses.
func groupKey(state string, leaked bool, stack []Frame) string {
	if leaked {
		state = "leaked " + state
	}
	return Signature(KindGoroutine, state, stack)
}

// GoroutineFindings returns the goroutine findings (KindGoroutine) of one
// dump, at most one per group (see GroupGoroutines), each saying in
// Evidence.Basis and Evidence.Because what it rests on:
//
//   - goroutines the runtime marked leaked (a goroutineleak profile, or
//     "(leaked)" in a dump): an error. Unmarked goroutines never join them:
//     a leaked group's signature differs from an unmarked one's;
//   - a group blocked on a nil channel or in an empty select: a warning,
//     since nothing can wake it, whatever the form;
//   - in the forms with wait times (debug=2 and crash dumps), a group
//     blocked at least opts.BlockedFor in a blocking state with no timer
//     (no time.* frame) in its stack: a warning. The main goroutine is
//     exempt, and so are a few goroutines that have waited about as long
//     as the process has run (the longest wait in the dump): service loops
//     started at start-up;
//   - a group of at least opts.LargeGroup goroutines: a suspect at info,
//     since a healthy worker pool or server looks the same in one dump.
//
// The subject names the state and the first frame of the program's own code
// (outside the runtime and the standard library), or the creator when the
// stack has none: "goroutines blocked in chan receive at main.worker
// (main.go:42)"; the owner is the creator and the common labels. The evidence
// holds the stack and, when the dump says, "min_wait_seconds" and
// "max_wait_seconds".
func GoroutineFindings(d *GoroutineDump, opts GoroutineOptions) []Finding {
	gfs := goroutineFindings(d, opts)
	if gfs == nil {
		return nil
	}
	fs := make([]Finding, len(gfs))
	for i, g := range gfs {
		fs[i] = g.f
	}
	Sort(fs)
	return fs
}

func goroutineFindings(d *GoroutineDump, opts GoroutineOptions) []goroutineFinding {
	if d == nil {
		return nil
	}
	opts = opts.withDefaults()
	timed, age := timedForm(d), processAge(d)
	var fs []goroutineFinding
	for _, g := range GroupGoroutines(d) {
		var prefix, because, basis string
		var sev Severity
		blocking := blockingState(g.State)
		switch {
		case g.Leaked:
			prefix, sev, basis = "leaked goroutines blocked", SeverityError, BasisRuntime
			because = "marked leaked by the runtime: nothing that can wake them is reachable"
		case foreverState(g.State):
			prefix, sev, basis = "goroutines blocked forever", SeverityWarning, BasisConstruction
			because = "blocked forever by construction: " + g.State
		case timed && blocking && opts.BlockedFor > 0 && g.MaxWait >= opts.BlockedFor && !hasTimer(g.Stack) &&
			!(len(g.IDs) > 0 && g.IDs[0] == 1 && g.Count == 1):
			if serviceLoop(g.MinWait, age) {
				continue
			}
			prefix, sev, basis = "goroutines blocked", SeverityWarning, BasisBlocked
			because = "blocked " + waitRange(g.MinWait, g.MaxWait) + " by the dump's clock"
			if age > 0 {
				because += fmt.Sprintf(", in a process up at least %s", formatMinutes(age))
			}
		case opts.LargeGroup > 0 && g.Count >= opts.LargeGroup:
			prefix, sev, basis = "goroutines", SeverityInfo, BasisShape
			if blocking {
				prefix = "goroutines blocked"
			}
			because = fmt.Sprintf("suspect by shape: %d goroutines share this stack; ", g.Count)
			if timed {
				because += "the dump says none has waited " + formatMinutes(opts.BlockedFor)
			} else {
				because += "a single dump of this form says nothing of time (a series, a debug=2 dump or the goroutineleak profile would)"
			}
		default:
			continue
		}
		f := groupFinding(g, goroutineSubject(prefix, g.State, g.Stack, g.CreatedBy), sev)
		f.Evidence.Basis, f.Evidence.Because = []string{basis}, because
		if g.Leaked {
			f.Suggestion = "the runtime found nothing that can wake them: " + f.Suggestion
		}
		fs = append(fs, goroutineFinding{groupKey(g.State, g.Leaked, g.Stack), f})
	}
	return fs
}

// waitRange says "12m", "12m to 40m", or "up to 40m" when some waited
// under a minute.
func waitRange(lo, hi time.Duration) string {
	switch {
	case lo == hi:
		return formatMinutes(hi)
	case lo < time.Minute:
		return "up to " + formatMinutes(hi)
	}
	return formatMinutes(lo) + " to " + formatMinutes(hi)
}

// formatMinutes formats a duration of whole minutes: "45m", "3h20m".
func formatMinutes(d time.Duration) string {
	s := d.Round(time.Minute).String()
	s = strings.TrimSuffix(s, "0s")
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	if s == "" {
		return "0m"
	}
	return s
}

// groupFinding builds the finding about a group; the caller decides the
// subject and severity.
func groupFinding(g GoroutineGroup, subject string, sev Severity) Finding {
	var values map[string]float64 // the count is Finding.Count
	if g.MaxWait > 0 {
		values = map[string]float64{"min_wait_seconds": g.MinWait.Seconds(), "max_wait_seconds": g.MaxWait.Seconds()}
	}
	return Finding{
		Kind:       KindGoroutine,
		Severity:   sev,
		Subject:    subject,
		Owner:      goroutineOwner(g.CreatedBy, g.Labels),
		Count:      g.Count,
		Evidence:   Evidence{Values: values, Stack: g.Stack},
		Suggestion: goroutineSuggestion(g.State),
		Signature:  groupKey(g.State, g.Leaked, g.Stack),
		joins:      sessionJoins(g.Labels),
	}
}

// goroutineSignature identifies a group across dumps: its state and the
// functions of its top frames.
func goroutineSignature(state string, stack []Frame) string {
	return Signature(KindGoroutine, state, stack)
}

// hasTimer reports whether a stack shows a timer that will wake it: a
// frame of package time, except time.goFunc, the bottom of the goroutine a
// time.AfterFunc starts, which waits like any other once it runs.
func hasTimer(stack []Frame) bool {
	for _, f := range stack {
		if strings.HasPrefix(f.Func, "time.") && f.Func != "time.goFunc" {
			return true
		}
	}
	return false
}

// goroutineSubject says "PREFIX in STATE at FRAME", e.g. "goroutines blocked
// in select at main.worker (main.go:42)", with the first frame of the
// program's own code; when the stack is all runtime and standard library,
// "created by" the creator if that is the program's code, else the top frame
// that TopFrames keeps.
func goroutineSubject(prefix, state string, stack []Frame, createdBy Frame) string {
	var b strings.Builder
	b.WriteString(prefix)
	if state != "" {
		b.WriteString(" in " + state)
	}
	own := func(f Frame) bool { return f.Func != "" && !standardLibrary(f.Func) && !hiddenFrame(f) }
	switch top, ok := userFrame(stack); {
	case ok && own(top):
		b.WriteString(" at " + top.String())
	case own(createdBy):
		b.WriteString(" created by " + createdBy.String())
	case ok:
		b.WriteString(" at " + top.String())
	case createdBy.Func != "":
		b.WriteString(" created by " + createdBy.String())
	}
	return b.String()
}

// userFrame returns the first frame of stack of the program's own code;
// else the first outside the standard library (a runtime's machinery such
// as a keepalive wheel's loop); else the first that TopFrames keeps: a
// group of goroutines waiting for a mutex is named after the function that
// locks it, not after sync.(*Mutex).Lock.
func userFrame(stack []Frame) (Frame, bool) {
	for _, f := range stack {
		if !standardLibrary(f.Func) && !hiddenFrame(f) {
			return f, true
		}
	}
	// A runtime's machinery outside the standard library (a keepalive
	// wheel's loop) says more than the standard library frame that
	// started it (sync.(*WaitGroup).Go.func1).
	for _, f := range stack {
		if f.Func != "" && !standardLibrary(f.Func) && !strings.HasPrefix(f.Func, "runtime.") {
			return f, true
		}
	}
	if top := TopFrames(stack, 1); len(top) > 0 {
		return top[0], true
	}
	return Frame{}, false
}

// goroutineOwner names what started a group and the labels its members share:
// `created by main.main (main.go:12) {tenant="a", worker="pool"}`.
func goroutineOwner(createdBy Frame, labels map[string]string) string {
	var parts []string
	if createdBy.Func != "" {
		parts = append(parts, "created by "+createdBy.String())
	}
	if len(labels) > 0 {
		var kv []string
		for _, k := range slices.Sorted(maps.Keys(labels)) {
			if k == tracker.SessionLabel {
				continue // ids, for Correlate: sessionJoins
			}
			kv = append(kv, fmt.Sprintf("%s=%q", k, labels[k]))
		}
		if len(kv) > 0 {
			parts = append(parts, "{"+strings.Join(kv, ", ")+"}")
		}
	}
	return strings.Join(parts, " ")
}

// sessionJoins returns the owner joins (see ownerJoins) of goroutines whose
// labels name the session they run for (tracker.SessionLabel).
func sessionJoins(labels map[string]string) []string {
	id, ancestors, ok := tracker.ParseSessionLabel(labels[tracker.SessionLabel])
	if !ok {
		return nil
	}
	return ownerJoins(id, ancestors)
}

// goroutineSuggestion says what usually keeps goroutines in state.
func goroutineSuggestion(state string) string {
	switch state {
	case "chan receive", "chan receive (nil chan)":
		return "nothing sends on or closes the channel they receive from: close it when the sender is done, or also select on ctx.Done()"
	case "chan send", "chan send (nil chan)":
		return "nothing receives from the channel they send on: give every send a receiver or a buffer slot, or also select on ctx.Done()"
	case "select", "select (no cases)":
		return "no case of the select ever becomes ready: add a ctx.Done() or quit-channel case and return on it"
	case "sync.Mutex.Lock", "sync.RWMutex.RLock", "sync.RWMutex.Lock":
		return "they wait for a lock that is never released: find the path that returns without Unlock, and defer the Unlock"
	case "sync.WaitGroup.Wait":
		return "Done is called fewer times than Add: Add before each go statement and defer Done in the goroutine"
	case "sync.Cond.Wait":
		return "nobody signals the condition: Signal or Broadcast on every change, and on shutdown"
	case "semacquire":
		return "they wait for a semaphore that is never released: release it on every path"
	case "IO wait":
		return "many goroutines wait on connections: set read deadlines and close connections that are done"
	}
	return "many goroutines share this stack: bound how many are started (a worker pool or a semaphore) and make sure each one returns"
}

// GoroutineSeries follows goroutine groups through a series of dumps, which
// must carry their times (GoroutineDump.Time: the proto form does; set it for
// text dumps). It returns the series "goroutines" (the total) and one series
// per group signature, named after its state and top function, with the
// group's count in each dump (0 where it is absent), each analysed with
// AnalyzeTrend. Each group found growing is a warning finding of
// KindGoroutine, with the series and its trend as evidence (BasisGrowing);
// if the total grows but no group does, the total is the finding.
func GoroutineSeries(dumps []*GoroutineDump, opts TrendOptions) ([]Series, []Finding) {
	series, gfs := goroutineSeries(dumps, opts)
	fs := make([]Finding, len(gfs))
	for i, g := range gfs {
		fs[i] = g.f
	}
	Sort(fs)
	return series, fs
}

func goroutineSeries(dumps []*GoroutineDump, opts TrendOptions) ([]Series, []goroutineFinding) {
	type track struct {
		state     string
		leaked    bool
		stack     []Frame
		createdBy Frame
		labels    map[string]string // shared by its groups in the latest dump
		last      int
	}
	total := Series{Name: "goroutines", Unit: "goroutines"}
	var counts SeriesBuilder // each group's count in every dump, by signature
	tracks := make(map[string]*track)
	var order []string
	for _, d := range dumps {
		if d == nil {
			continue
		}
		before := total.Points
		total.Points = append(total.Points, Point{Time: d.Time, Value: float64(d.Total)})
		now := make(map[string]int)
		for _, g := range GroupGoroutines(d) {
			sig := groupKey(g.State, g.Leaked, g.Stack)
			t := tracks[sig]
			if t == nil {
				t = &track{}
				tracks[sig] = t
				order = append(order, sig)
				for _, p := range before { // absent from the dumps before
					counts.Add(Series{Name: sig}, p.Time, 0)
				}
			}
			// The latest dump's.
			t.state, t.leaked, t.stack, t.createdBy = g.State, g.Leaked, g.Stack, g.CreatedBy
			if _, seen := now[sig]; !seen {
				t.labels = maps.Clone(g.Labels)
			} else {
				maps.DeleteFunc(t.labels, func(k, v string) bool { return g.Labels[k] != v })
			}
			now[sig] += g.Count
		}
		for _, sig := range order {
			tracks[sig].last = now[sig]
			counts.Add(Series{Name: sig}, d.Time, float64(now[sig]))
		}
	}
	n := len(total.Points)
	slices.SortStableFunc(order, func(a, b string) int { return cmp.Compare(tracks[b].last, tracks[a].last) })

	series := []Series{total}
	var fs []goroutineFinding
	names := map[string]bool{total.Name: true}
	for _, sig := range order {
		t := tracks[sig]
		name := goroutineSubject("goroutines", t.state, nil, Frame{})
		if top, ok := userFrame(t.stack); ok {
			name += " at " + top.Func
		}
		if names[name] {
			name += " #" + sig
		}
		names[name] = true
		points, _ := counts.Get(Series{Name: sig})
		s := Series{Name: name, Unit: "goroutines", Points: points.Points}
		tr := s.Analyze(opts)
		series = append(series, s)
		if tr.Verdict != VerdictGrowing {
			continue
		}
		sev := SeverityWarning
		if t.leaked {
			sev = SeverityError
		}
		fs = append(fs, goroutineFinding{sig, Finding{
			Kind:       KindGoroutine,
			Severity:   sev,
			Subject:    goroutineSubject("growing goroutines", t.state, t.stack, t.createdBy),
			Owner:      goroutineOwner(t.createdBy, nil),
			Count:      max(t.last, 1),
			joins:      sessionJoins(t.labels),
			Evidence:   Evidence{Series: name, Trend: &tr, Stack: t.stack, Basis: []string{BasisGrowing}, Because: growingBecause(tr, len(s.Points))},
			Suggestion: "more goroutines park here in every dump: " + goroutineSuggestion(t.state),
			Signature:  Signature(KindGoroutine, "growing "+t.state, t.stack),
		}})
	}
	if tr := series[0].Analyze(opts); tr.Verdict == VerdictGrowing && len(fs) == 0 {
		last := 0
		if n > 0 {
			last = int(total.Points[n-1].Value)
		}
		fs = append(fs, goroutineFinding{"total", Finding{
			Kind:       KindGoroutine,
			Severity:   SeverityWarning,
			Subject:    "goroutines",
			Count:      max(last, 1),
			Evidence:   Evidence{Series: total.Name, Trend: &tr, Basis: []string{BasisGrowing}, Because: growingBecause(tr, n) + ", spread over many stacks"},
			Suggestion: growthSuggestion("goroutines"),
			Signature:  Signature(KindGoroutine, "growing goroutines", nil),
		}})
	}
	return series, fs
}

// growingBecause says "growing at +120/h across 12 dumps".
func growingBecause(tr Trend, dumps int) string {
	return fmt.Sprintf("growing at %s across %d dumps", formatRate(tr.Window.SlopePerHour, "goroutines"), dumps)
}

// stuckGoroutines finds, in a series of debug=2 or crash dumps with times,
// the goroutines that kept their id, state and stack from the first dump to
// the last while their wait grew with the clock: stuck, whatever the size
// of their group. A few of them that have waited about as long as the
// process has run are service loops and left out. The series must span at
// least two minutes, as waits are printed in whole minutes.
func stuckGoroutines(dumps []*GoroutineDump) []goroutineFinding {
	var ds []*GoroutineDump
	for _, d := range dumps {
		if d != nil && timedForm(d) && !d.Time.IsZero() {
			if len(ds) > 0 && !d.Time.After(ds[len(ds)-1].Time) {
				return nil // not a series in time order
			}
			ds = append(ds, d)
		}
	}
	if len(ds) < 2 {
		return nil
	}
	first, last := ds[0], ds[len(ds)-1]
	span := last.Time.Sub(first.Time)
	if span < 2*time.Minute {
		return nil
	}
	type cand struct {
		g     Goroutine
		first time.Duration
	}
	cands := make(map[int64]*cand)
	for _, g := range first.Goroutines {
		if g.ID > 1 && blockingState(g.State) && !hasTimer(g.Stack) {
			cands[g.ID] = &cand{g: g, first: g.Wait}
		}
	}
	for _, d := range ds[1:] {
		byID := make(map[int64]Goroutine, len(d.Goroutines))
		for _, g := range d.Goroutines {
			if _, ok := cands[g.ID]; ok {
				byID[g.ID] = g
			}
		}
		for id, c := range cands {
			g, ok := byID[id]
			if !ok || g.State != c.g.State || !slices.Equal(g.Stack, c.g.Stack) || g.Wait < c.g.Wait {
				delete(cands, id)
				continue
			}
			c.g.Wait = g.Wait
		}
	}
	// Waits are whole minutes: the wait may grow a minute less than the span.
	stuck := &GoroutineDump{Form: last.Form}
	for _, c := range cands {
		if c.g.Wait-c.first >= span-time.Minute {
			stuck.Goroutines = append(stuck.Goroutines, c.g)
			stuck.Total++
		}
	}
	slices.SortFunc(stuck.Goroutines, func(a, b Goroutine) int { return cmp.Compare(a.ID, b.ID) })
	age := processAge(last)
	var fs []goroutineFinding
	for _, g := range GroupGoroutines(stuck) {
		if serviceLoop(g.MinWait, age) {
			continue
		}
		f := groupFinding(g, goroutineSubject("stuck goroutines", g.State, g.Stack, g.CreatedBy), SeverityWarning)
		f.Evidence.Basis = []string{BasisStuck}
		f.Evidence.Because = fmt.Sprintf("stuck across %d dumps for %s: the same %s blocked at the same frame while their wait grew with the clock",
			len(ds), formatMinutes(span), plural(g.Count, "goroutine"))
		f.Signature = Signature(KindGoroutine, "stuck "+g.State, g.Stack)
		fs = append(fs, goroutineFinding{groupKey(g.State, g.Leaked, g.Stack), f})
	}
	return fs
}

// AnalyzeGoroutines is the goroutine analysis of one process: the findings
// of its latest dump (GoroutineFindings), and, for a series, its growth
// (GoroutineSeries) and its stuck goroutines (same ids blocked at the same
// frame while their wait grows). Findings about one group become one
// finding holding every fact: a group both blocked and growing is one
// finding, at the higher severity, with both bases. It returns the series
// (none for a single dump) and the findings in report order.
func AnalyzeGoroutines(dumps []*GoroutineDump, opts GoroutineOptions, trend TrendOptions) ([]Series, []Finding) {
	var last *GoroutineDump
	n := 0
	for _, d := range dumps {
		if d != nil {
			last = d
			n++
		}
	}
	gfs := goroutineFindings(last, opts)
	var series []Series
	if n > 1 {
		var growth []goroutineFinding
		series, growth = goroutineSeries(dumps, trend)
		gfs = append(gfs, stuckGoroutines(dumps)...)
		gfs = append(gfs, growth...)
	}
	var fs []Finding
	index := make(map[string]int)
	for _, g := range gfs {
		i, ok := index[g.key]
		if !ok {
			index[g.key] = len(fs)
			fs = append(fs, g.f)
			continue
		}
		fs[i] = mergeGoroutineFinding(fs[i], g.f)
	}
	for i := range fs {
		nameCause(&fs[i])
	}
	Sort(fs)
	return series, fs
}

// mergeGoroutineFinding joins two findings about one group: the more severe
// one's subject and suggestion (a's on a tie), the larger count, and every
// fact of both.
func mergeGoroutineFinding(a, b Finding) Finding {
	m := a
	if b.Severity > a.Severity {
		m = b
		m.Signature = a.Signature // the dump's, stable across runs
	}
	m.Count = max(a.Count, b.Count)
	m.Evidence.Basis = append(slices.Clone(a.Evidence.Basis), b.Evidence.Basis...)
	m.Evidence.Because = a.Evidence.Because + "; " + b.Evidence.Because
	if m.Evidence.Series == "" {
		m.Evidence.Series, m.Evidence.Trend = b.Evidence.Series, b.Evidence.Trend
	}
	if m.Evidence.Values == nil {
		m.Evidence.Values = b.Evidence.Values
	}
	if m.Owner == "" {
		m.Owner = b.Owner
	}
	return m
}
