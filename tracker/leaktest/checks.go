package leaktest

import (
	"fmt"
	"slices"
	"strings"

	"github.com/leakcheck/leakcheck/tracker"
	"github.com/leakcheck/leakcheck/tracker/stack"
)

// checker looks for one kind of leak. checkers lists them in the order a
// report shows them. Another kind of leak, such as the records that
// tracker.Snapshot will report as collected without release or retained after
// release, is one more Check constant and one more entry here: its find reads
// the registry, keeps what the run's test created (Record.Creator), and adds
// findings.
type checker struct {
	kind Check
	name string // plural noun, for reports
	find func(r *run, p *poll) error
	hint string // what to do about it
}

var checkers = []checker{
	{Goroutines, "goroutines", findGoroutines,
		"stop them before the test returns (cancel a context, close a channel, Close a server) and wait until they exit"},
	{Descriptors, "descriptors", findDescriptors,
		"close them; files and sockets opened through tracker.Open, Dial or Listen are reported with the stack that opened them"},
	{Records, "records", findRecords,
		"release them (Close, Stop, Release), or stop the session that owns them"},
}

// poll is one look at the process: what the checks found, and what they
// read, shared among them.
type poll struct {
	r        *run
	findings []finding
	errs     []error
	// judged are the leftovers this check has judged: reported, or ignored
	// by its options. deferred are those it could not attribute.
	judgedFDs  []fdKey
	judgedRecs []recKey
	judgedG    []judgedG // only goroutines that no label ties to a test
	deferred   []deferral

	gs     []*gsample
	gsErr  error
	gsRead bool
	text   *textIndex
	raw    []byte // the traceback text is indexed from, once read
	others []string
	seen   bool // others is set
}

// finding is one group of identical leaks.
type finding interface {
	kind() Check
	count() int
	write(b *strings.Builder, p *poll)
}

// deferral is a leftover that nothing ties to one test, left by a check that
// overlapped others to the enclosing check.
type deferral struct {
	key  any    // fdKey, recKey or goroutineKey
	what string // the leftover, for the log
	why  string // who else ran, for the log and the enclosing report
}

// goroutines returns the goroutine profile, read once per poll. Each reading
// also notes which other tests were running.
func (p *poll) goroutines() ([]*gsample, error) {
	if !p.gsRead {
		p.gsRead = true
		p.gs, p.gsErr = readGoroutines()
		if p.gsErr == nil {
			coord.noteActivity(p.r, p.gs)
		}
	}
	return p.gs, p.gsErr
}

// traceback returns the text traceback of all goroutines, read once per poll
// and only when creators or wait states are needed.
func (p *poll) traceback() *textIndex {
	if p.text == nil {
		if p.raw == nil {
			p.raw = coord.traceback()
		}
		d, _ := stack.Parse(p.raw, stack.Lenient)
		p.text = newTextIndex(d.Goroutines, coord.testGoroutines())
	}
	return p.text
}

// goroutineIDs calls yield with the id of each goroutine header of a
// traceback, until it returns false; a header it cannot read is id 0.
func goroutineIDs(text []byte, yield func(int64) bool) {
	stack.Headers(text, func(g stack.Goroutine, err error) bool {
		if err != nil {
			g.ID = 0
		}
		return yield(g.ID)
	})
}

// nothingNew reports whether every goroutine of the process existed when the
// check started, which is all a clean test needs: a leak is a goroutine
// started since. When the process has created no goroutine since, the
// runtime's counters say so without stopping the world. Otherwise it compares
// the ids in a traceback's headers with those at the start; it reads the
// traceback that traceback() then indexes, and costs what goleak's whole
// check does.
func (p *poll) nothingNew() bool {
	if p.r.main || p.r.baseIDs == nil {
		return false
	}
	if p.r.baseCount.unchanged(countGoroutines()) {
		return true
	}
	if p.raw == nil {
		p.raw = coord.traceback()
	}
	old := true
	goroutineIDs(p.raw, func(id int64) bool {
		_, old = p.r.baseIDs[id]
		return old
	})
	return old
}

// alongside returns what ran alongside the test other than its own subtests
// and enclosing tests; empty when the test ran alone, so that a leftover no
// goroutine ties to a test can be blamed on it.
func (p *poll) alongside() []string {
	if p.r.main {
		return nil
	}
	if !p.seen {
		p.seen = true
		// Both note activity; an error is reported by the goroutine
		// check, or is the start's.
		if err := p.r.loadStart(); err != nil {
			p.errs = append(p.errs, err)
		}
		p.goroutines()
		p.others = coord.others(p.r)
	}
	return p.others
}

// deferTo leaves a leftover to the enclosing check if others ran alongside,
// and reports whether it did.
func (p *poll) deferTo(key any, what string) bool {
	others := p.alongside()
	if len(others) == 0 {
		return false
	}
	p.deferred = append(p.deferred, deferral{
		key:  key,
		what: what,
		why:  andList(append([]string{p.r.name}, others...)) + " ran at the same time",
	})
	return true
}

// andList joins "a", "b" and "c" as "a, b and c".
func andList(items []string) string {
	if len(items) <= 1 {
		return strings.Join(items, "")
	}
	return strings.Join(items[:len(items)-1], ", ") + " and " + items[len(items)-1]
}

// goroutineKey names goroutines of one signature (stack and labels) that no
// label ties to a test, for judgement and deferral.
type goroutineKey string

func findGoroutines(r *run, p *poll) error {
	if p.nothingNew() {
		return nil
	}
	if err := r.loadStart(); err != nil {
		p.errs = append(p.errs, err)
	}
	gs, err := p.goroutines()
	if err != nil {
		return err
	}
	settled, deferred := coord.judgedGoroutines(gs)
	var found []*goroutineLeak
	for _, g := range gs {
		n := g.count
		own := false // carries the label of this check's test
		switch label := g.label(); {
		case r.main:
			if coord.labelRun(label) != nil {
				continue // judged by the VerifyNone check of its test
			}
		case label == r.label:
			own = true
		case label != "" || r.baseG == nil:
			// Another test's, or one around this test's; or, if the
			// start could not be read, nothing to compare with.
			continue
		}
		if g.has(markerFinish) {
			n-- // the goroutine running this check
		}
		sig := g.signature()
		n -= r.cfg.current[sig]
		switch {
		case r.main:
			n -= settled[sig]
		case !own:
			// No label ties these to a test: count those that
			// appeared during this test and that no check judged
			// meanwhile.
			n -= r.baseG[sig] + max(settled[sig]-r.baseSettled[sig], 0)
		}
		if n > 0 && !own && !r.main {
			// Stacks change: a goroutine that was there at the
			// start but now waits elsewhere has a new signature.
			// Count only goroutines with ids that are new.
			n = min(n, p.traceback().newSince(g, r.baseIDs))
		}
		if n > 0 && !defaultIgnored(g) {
			found = append(found, &goroutineLeak{g: g, n: n, main: r.main, unlabeled: !own, why: deferred[sig]})
		}
	}
	if len(found) > 0 && len(r.cfg.creators) > 0 {
		idx := p.traceback()
		for _, l := range found {
			ts, _ := idx.lookup(l.g)
			l.ignored = len(ts) > 0 && !slices.ContainsFunc(ts, func(t *stack.Goroutine) bool {
				return !r.cfg.creators[t.CreatedBy.Func]
			})
		}
	}
	slices.SortStableFunc(found, func(a, b *goroutineLeak) int { return b.n - a.n })
	for _, l := range found {
		key := goroutineKey(l.g.signature())
		ignored := l.ignored || r.cfg.ignored(l.g)
		switch {
		case !l.unlabeled || r.main:
			// The label says whose they are: nothing to settle.
			if !ignored {
				p.findings = append(p.findings, l)
			}
		case ignored:
			p.judgedG = append(p.judgedG, judgedG{key, l.n})
		case !p.deferTo(key, fmt.Sprintf("%s without a leaktest label (top function %s)", plural(l.n, "goroutine"), l.g.top())):
			p.findings = append(p.findings, l)
			p.judgedG = append(p.judgedG, judgedG{key, l.n})
		}
	}
	return nil
}

// judgedG is how many goroutines of a signature a check judged.
type judgedG struct {
	key goroutineKey
	n   int
}

// ignored reports whether the options ignore goroutine g.
func (c *config) ignored(g *gsample) bool {
	if c.topFuncs[g.top()] {
		return true
	}
	for _, f := range g.frames {
		if c.anyFuncs[f.Func] {
			return true
		}
	}
	return false
}

func findDescriptors(r *run, p *poll) error {
	if r.baseFDs == nil {
		return nil
	}
	now, err := coord.listDescriptors()
	if err != nil {
		return err
	}
	fds := make([]int, 0, len(now))
	for fd := range now {
		fds = append(fds, fd)
	}
	slices.Sort(fds)
	groups := make(map[[2]string]*fdLeak)
	for _, fd := range fds {
		target := now[fd]
		if t, ok := r.baseFDs[fd]; ok && t == target {
			continue
		}
		k := fdKey{fd, target}
		settled, why := coord.judgedFD(k)
		if settled {
			continue
		}
		if slices.ContainsFunc(r.cfg.ignoreFD, func(m func(string) bool) bool { return m(target) }) {
			p.judgedFDs = append(p.judgedFDs, k)
			continue
		}
		if p.deferTo(k, fmt.Sprintf("fd %d -> %s", fd, target)) {
			continue
		}
		gk := [2]string{groupTarget(target), why}
		l := groups[gk]
		if l == nil {
			l = &fdLeak{target: gk[0], why: why}
			groups[gk] = l
			p.findings = append(p.findings, l)
		}
		l.fds = append(l.fds, fd)
		l.targets = append(l.targets, target)
		p.judgedFDs = append(p.judgedFDs, k)
	}
	return nil
}

// groupTarget is the target under which descriptors are grouped: the kind for
// "socket:[12345]" and the like, the target itself otherwise.
func groupTarget(target string) string {
	i := strings.Index(target, ":[")
	if i <= 0 || !strings.HasSuffix(target, "]") {
		return target
	}
	for _, c := range target[i+2 : len(target)-1] {
		if c < '0' || c > '9' {
			return target
		}
	}
	return target[:i]
}

func findRecords(r *run, p *poll) error {
	if r.baseRecs == nil {
		return nil
	}
	reg := r.cfg.registry
	live := reg.Leftovers()
	coord.forgetReleased(reg, live)
	groups := make(map[string]*recordLeak)
	for _, rec := range live {
		if _, ok := r.baseRecs[rec.ID]; ok || rec.Creator == "" {
			// Live before the check began, or tracked before any
			// check named creators: not this test's.
			continue
		}
		k := recKey{reg, rec.ID}
		settled, why := coord.judgedRec(k)
		if settled {
			continue
		}
		creator := coord.labelRun(rec.Creator)
		switch {
		case creator == r:
		case creator != nil:
			continue // another test's, judged by its check
		case p.deferTo(k, fmt.Sprintf("record %s %q (created by %s)", rec.Kind, rec.Label, rec.Creator)):
			continue
		}
		if slices.ContainsFunc(r.cfg.ignoreRec, func(m func(tracker.Record) bool) bool { return m(rec) }) {
			p.judgedRecs = append(p.judgedRecs, k)
			continue
		}
		gk := fmt.Sprintf("%s\x00%s\x00%d\x00%t\x00%d\x00%s\x00%s",
			rec.Kind, rec.Label, rec.Owner, rec.OwnerStopped, rec.StackID, rec.Creator, why)
		l := groups[gk]
		if l == nil {
			l = &recordLeak{rec: rec, why: why}
			if creator == nil {
				l.creator = rec.Creator + ", which no test's goroutine started"
			} else {
				l.creator = creator.name
			}
			groups[gk] = l
			p.findings = append(p.findings, l)
		}
		l.n++
		p.judgedRecs = append(p.judgedRecs, k)
	}
	return nil
}
