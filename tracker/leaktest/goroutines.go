package leaktest

import (
	"bytes"
	"fmt"
	"runtime"
	"runtime/metrics"
	"runtime/pprof"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/leakcheck/leakcheck/tracker/stack"
)

// labelKey is the pprof label VerifyNone puts on the test's goroutine. Every
// goroutine started from it, directly or not, inherits the label, which is how
// a leaked goroutine is tied to the test that started it.
const labelKey = "leaktest"

// gsample is one sample of the goroutine profile: count goroutines with the
// same stack and the same labels.
type gsample struct {
	count  int
	frames []stack.Frame // leaf first, inlined calls expanded
	labels map[string]string
	sig    string // signature(), once computed
}

// goroutineCount is what the runtime counts of the process's goroutines.
type goroutineCount struct {
	ok      bool   // the runtime has the counter of created goroutines
	created uint64 // goroutines created since the process started
	live    int
}

// countGoroutines reads the runtime's counters; no world is stopped.
func countGoroutines() goroutineCount {
	s := []metrics.Sample{{Name: "/sched/goroutines-created:goroutines"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return goroutineCount{}
	}
	return goroutineCount{ok: true, created: s[0].Value.Uint64(), live: runtime.NumGoroutine()}
}

// unchanged reports whether no goroutine was created between the counts c and
// now, and none is alive now that was not then, so that every goroutine alive
// now was alive at c. The live count matters only for a C thread calling into
// Go, which borrows a goroutine that was made for it, not created by go.
func (c goroutineCount) unchanged(now goroutineCount) bool {
	return c.ok && now.ok && now.created == c.created && now.live <= c.live
}

// readGoroutines reads the goroutine profile in its debug=1 text form, which
// gives each sample's stack as symbolized frames and its pprof labels. It
// costs a fraction of the protobuf form, which is gzipped on writing and
// unzipped and decoded on reading, and reads /proc/self/maps besides.
func readGoroutines() ([]*gsample, error) {
	raw, err := writeGoroutines()
	if err != nil {
		return nil, err
	}
	return parseGoroutines(raw)
}

// writeGoroutines returns the goroutine profile's debug=1 text.
func writeGoroutines() ([]byte, error) {
	var buf bytes.Buffer
	buf.Grow(2 * int(coord.profileSize.Load()))
	coord.ioMu.Lock()
	err := pprof.Lookup("goroutine").WriteTo(&buf, 1)
	coord.ioMu.Unlock()
	coord.profileSize.Store(int64(buf.Len()))
	if err != nil {
		return nil, fmt.Errorf("writing goroutine profile: %w", err)
	}
	if !stack.IsProfileHeader(buf.Bytes()) {
		return nil, fmt.Errorf("reading goroutine profile: no goroutines in %.40q", buf.Bytes())
	}
	return buf.Bytes(), nil
}

// parseGoroutines reads samples from a profile writeGoroutines returned.
func parseGoroutines(raw []byte) ([]*gsample, error) {
	d, _ := stack.Parse(raw, stack.Lenient)
	if d.Form != "debug=1" || len(d.Goroutines) == 0 {
		return nil, fmt.Errorf("reading goroutine profile: no goroutines in %.40q", raw)
	}
	// The profile keys its records by program counters: a goroutine that
	// has not run yet (at its function's entry) and one parked in the same
	// function have the same frames in two records. Checks count goroutines
	// by frames and labels, so merge those.
	gs := make([]*gsample, 0, len(d.Goroutines))
	bySig := make(map[string]*gsample, len(d.Goroutines))
	for _, g := range d.Goroutines {
		s := &gsample{count: g.Count, frames: g.Stack, labels: g.Labels}
		sig := s.signature()
		s.sig = sig
		if prev := bySig[sig]; prev != nil {
			prev.count += s.count
			continue
		}
		bySig[sig] = s
		gs = append(gs, s)
	}
	return gs, nil
}

// sampleWith returns the sample of a profile writeGoroutines returned whose
// stack has function fn, parsing only that record, or nil if none has.
func sampleWith(raw []byte, fn string) *gsample {
	header, rest, _ := bytes.Cut(raw, []byte("\n"))
	// A frame line is "#\t0xPC\tfunc+0xOFF\tfile:line".
	i := bytes.Index(rest, []byte("\t"+fn+"+0x"))
	if i < 0 {
		return nil
	}
	start := bytes.LastIndex(rest[:i], []byte("\n\n")) + 1 // 0 if the first record
	end := len(rest)
	if j := bytes.Index(rest[i:], []byte("\n\n")); j >= 0 {
		end = i + j + 1
	}
	record := make([]byte, 0, len(header)+1+end-start)
	record = append(append(append(record, header...), '\n'), rest[start:end]...)
	d, _ := stack.Parse(record, stack.Lenient)
	for _, g := range d.Goroutines {
		s := &gsample{count: g.Count, frames: g.Stack, labels: g.Labels}
		if s.has(fn) {
			return s
		}
	}
	return nil
}

// label returns the sample's leaktest label, or "".
func (g *gsample) label() string { return g.labels[labelKey] }

// has reports whether fn is in the stack.
func (g *gsample) has(fn string) bool {
	for _, f := range g.frames {
		if f.Func == fn {
			return true
		}
	}
	return false
}

// shownFrames returns the frames a traceback would print (see stack.Trim),
// so that the profile's stacks and the text tracebacks can be compared.
func (g *gsample) shownFrames() []stack.Frame { return stack.Trim(g.frames) }

// top returns the topmost shown function, as a traceback's first frame.
func (g *gsample) top() string {
	for _, f := range g.frames {
		if !stack.Hidden(f) {
			return f.Func
		}
	}
	return ""
}

// signature identifies goroutines by stack and labels, for IgnoreCurrent.
func (g *gsample) signature() string {
	if g.sig != "" {
		return g.sig
	}
	var b strings.Builder
	for _, f := range g.frames {
		b.WriteString(f.Func)
		b.WriteByte(':')
		b.WriteString(strconv.Itoa(f.Line))
		b.WriteByte(';')
	}
	keys := make([]string, 0, len(g.labels))
	for k := range g.labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		b.WriteString(strconv.Quote(k))
		b.WriteByte('=')
		b.WriteString(strconv.Quote(g.labels[k]))
		b.WriteByte(';')
	}
	return b.String()
}

// matchDepth is how many shown frames, from the top, tie a profile sample to
// goroutines of a text traceback. Deep recursion aside, goroutines that agree
// on this many frames run the same code.
const matchDepth = 16

// stackKey is the key that ties profile samples to text goroutines.
func stackKey(fs []stack.Frame) string {
	var b strings.Builder
	for i, f := range fs {
		if i == matchDepth {
			break
		}
		b.WriteString(f.Func)
		b.WriteByte(':')
		b.WriteString(strconv.Itoa(f.Line))
		b.WriteByte(';')
	}
	return b.String()
}

// defaultIgnored reports whether a goroutine belongs to the testing framework
// or to the runtime's own services, which no test leaks: a test's goroutine
// whose test function has returned (it is reporting, or signalling its
// parent), the os/signal loop that signal.Notify starts once per process, and
// runtime/trace's reader.
func defaultIgnored(g *gsample) bool {
	for i, f := range g.frames {
		switch {
		case f.Func == "os/signal.loop", f.Func == "os/signal.signal_recv",
			f.Func == "runtime.ensureSigM",
			strings.HasPrefix(f.Func, "runtime/trace."):
			return true
		case f.Func == "testing.tRunner":
			return i > 0 && strings.HasPrefix(g.frames[i-1].Func, "testing.")
		}
	}
	return false
}

// activeTest reports whether the goroutine runs a test's own code now: it is
// a test goroutine (testing.tRunner is in its stack), its test function is
// still running, and it is not merely waiting for its subtests or its turn.
// It returns the test function.
func activeTest(g *gsample) (fn string, ok bool) {
	i := slices.IndexFunc(g.frames, func(f stack.Frame) bool { return f.Func == "testing.tRunner" })
	if i <= 0 || strings.HasPrefix(g.frames[i-1].Func, "testing.") {
		// Not a test, or one that has returned and is finishing.
		return "", false
	}
	for _, f := range g.frames[:i] {
		switch f.Func {
		case "testing.(*T).Run", "testing.(*T).Parallel", "testing.(*B).Run":
			return "", false // waiting for its subtests or its turn
		}
	}
	return g.frames[i-1].Func, true
}

// textIndex ties goroutines of a text traceback to profile samples.
type textIndex struct {
	byStack map[string][]*stack.Goroutine
	// owner maps a goroutine to the check of the test whose goroutine
	// started it, directly or through creators that still run.
	owner map[int64]*run
}

// newTextIndex indexes gs by stack, and follows each goroutine's chain of
// creators to a test's goroutine; tests holds the goroutines known to work
// for each test.
func newTextIndex(gs []stack.Goroutine, tests map[int64]*run) *textIndex {
	idx := &textIndex{
		byStack: make(map[string][]*stack.Goroutine),
		owner:   make(map[int64]*run),
	}
	parents := make(map[int64]int64, len(gs))
	for i := range gs {
		k := stackKey(stack.Trim(gs[i].Stack))
		idx.byStack[k] = append(idx.byStack[k], &gs[i])
		parents[gs[i].ID] = gs[i].CreatorID
	}
	for _, g := range gs {
		id := g.CreatorID
		for range 1000 {
			if r := tests[id]; r != nil {
				idx.owner[g.ID] = r
				break
			}
			p, ok := parents[id]
			if !ok || p == 0 {
				break
			}
			id = p
		}
	}
	return idx
}

// newSince counts the goroutines with the sample's stack whose ids are not
// in ids.
func (idx *textIndex) newSince(g *gsample, ids map[int64]struct{}) int {
	n := 0
	for _, t := range idx.byStack[stackKey(g.shownFrames())] {
		if _, ok := ids[t.ID]; !ok {
			n++
		}
	}
	return n
}

// lookup returns the text goroutines that may be the sample's: those with the
// same stack and, when the traceback printed labels, the same labels, less
// those whose chain of creators leads to another test. exact is true when
// they are known to be the sample's.
func (idx *textIndex) lookup(g *gsample) (ts []*stack.Goroutine, exact bool) {
	label := g.label()
	if label == "" {
		// Nothing to tell the sample's goroutines from others with
		// the same stack.
		ts = idx.byStack[stackKey(g.shownFrames())]
		return ts, len(ts) == g.count
	}
	var mine, unknown []*stack.Goroutine
	for _, t := range idx.byStack[stackKey(g.shownFrames())] {
		if t.Labels != nil && t.Labels[labelKey] != label {
			continue
		}
		switch o := idx.owner[t.ID]; {
		case o == nil:
			unknown = append(unknown, t)
		case o.label == label:
			mine = append(mine, t)
		}
	}
	if len(mine) == g.count {
		return mine, true
	}
	ts = append(mine, unknown...)
	return ts, len(ts) == g.count
}
