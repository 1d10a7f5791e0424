package leaktest

import (
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/leakcheck/leakcheck/tracker"
	"github.com/leakcheck/leakcheck/tracker/stack"
)

// coord is the process's single coordinator, the only package-level state.
// It cannot be a value that each test makes: the tests of one binary share
// one process, with its goroutines, descriptors and registries, and a check
// must know about the others. It keeps which verified tests are running (so
// a descriptor that appeared while several ran is blamed on none of them),
// which goroutine works for which test (so a tracked record names the test
// that created it), how many checks use each registry (so the creator func
// and stack capture are installed once and removed after the last), and which
// leftovers a test has already judged (so an enclosing test or VerifyTestMain
// does not report them again). Everything else lives in a run.
var coord = newCoordinator()

type coordinator struct {
	// startMu lets one starting test at a time read its own labels; see
	// ownLabels.
	startMu sync.Mutex
	// ioMu lets one check at a time list descriptors or read the goroutine
	// profile, so that no listing sees the descriptor another listing holds
	// open on /proc/self/fd, nor the one that writing a profile opens on the
	// executable to read its build id.
	ioMu sync.Mutex
	fds  fdCache // guarded by ioMu
	// The sizes of the last traceback and goroutine profile, to size the
	// next ones' buffers.
	traceSize, profileSize atomic.Int64
	// pollerOnce opens the runtime's network poller before the first
	// descriptor listing: its descriptors live as long as the process, and
	// the first test to touch a file or socket must not be blamed for them.
	pollerOnce sync.Once

	mu      sync.Mutex // guards the fields below and the runs' shared fields
	nextID  uint64
	running map[*run]struct{}  // VerifyNone checks in force
	labels  map[string]*run    // every VerifyNone check by label, finished ones too
	goids   map[int64]*run     // goroutine id -> check of the test it works for
	unknown map[int64]struct{} // goroutines found to work for no running test
	tests   int                // len(running), for the creator func's fast path
	regs    map[*tracker.Registry]*regUse
	// Leftovers a check judged (reported, or ignored by its options) and
	// leftovers it could not attribute, with the reason, for the enclosing
	// check to report.
	settledFD   map[fdKey]struct{}
	deferredFD  map[fdKey]string
	settledRec  map[recKey]struct{}
	deferredRec map[recKey]string
	// Goroutines that no label ties to a test, by signature: how many a
	// check judged, and why one left them.
	settledG  map[goroutineKey]int
	deferredG map[goroutineKey]string
}

// regUse counts the checks that use a registry, and keeps its stack mode
// from before the first.
type regUse struct {
	n      int
	stacks tracker.StackMode
}

type fdKey struct {
	fd     int
	target string
}

type recKey struct {
	reg *tracker.Registry
	id  uint64
}

func newCoordinator() *coordinator {
	return &coordinator{
		running:     make(map[*run]struct{}),
		labels:      make(map[string]*run),
		goids:       make(map[int64]*run),
		unknown:     make(map[int64]struct{}),
		regs:        make(map[*tracker.Registry]*regUse),
		settledFD:   make(map[fdKey]struct{}),
		deferredFD:  make(map[fdKey]string),
		settledRec:  make(map[recKey]struct{}),
		deferredRec: make(map[recKey]string),
		settledG:    make(map[goroutineKey]int),
		deferredG:   make(map[goroutineKey]string),
	}
}

// register enters r: a VerifyNone check gets its label and the goroutine of
// its test, and notes every other check running now as overlapping, both
// ways. Both kinds of check take a share of the registry.
func (c *coordinator) register(r *run) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !r.main {
		c.nextID++
		r.label = r.name + "#" + strconv.FormatUint(c.nextID, 10)
		for o := range c.running {
			o.overlap[r] = struct{}{}
			r.overlap[o] = struct{}{}
		}
		c.running[r] = struct{}{}
		c.labels[r.label] = r
		c.tests++
		if r.goid != 0 {
			c.goids[r.goid] = r
			r.goids = append(r.goids, r.goid)
		}
	}
	if r.cfg.checks&Records != 0 {
		u := c.regs[r.cfg.registry]
		if u == nil {
			u = &regUse{stacks: r.cfg.registry.StackMode()}
			c.regs[r.cfg.registry] = u
			r.cfg.registry.SetStackMode(tracker.StacksAlways)
			r.cfg.registry.SetCreatorFunc(c.creator)
		}
		u.n++
		r.usesReg = true
	}
}

// unregister ends r: it no longer runs, its goroutines are forgotten, and the
// last check to use a registry restores it.
func (c *coordinator) unregister(r *run) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !r.main {
		if _, ok := c.running[r]; ok {
			delete(c.running, r)
			c.tests--
		}
		for _, id := range r.goids {
			delete(c.goids, id)
		}
		r.goids = nil
	}
	if r.usesReg {
		r.usesReg = false
		if u := c.regs[r.cfg.registry]; u != nil {
			if u.n--; u.n == 0 {
				r.cfg.registry.SetCreatorFunc(nil)
				r.cfg.registry.SetStackMode(u.stacks)
				delete(c.regs, r.cfg.registry)
			}
		}
	}
	// A finished check stays in labels, for its name and label; what
	// else it holds is dropped, so that a long suite keeps little of it.
	r.baseIDs, r.baseG, r.baseSettled, r.baseFDs, r.baseRecs = nil, nil, nil, nil, nil
	r.startRaw, r.overlap, r.others, r.prev, r.errs, r.cfg = nil, nil, nil, nil, nil, nil
}

// labelRun returns the VerifyNone check whose label is l, or nil.
func (c *coordinator) labelRun(l string) *run {
	if l == "" {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.labels[l]
}

// creator names the test whose goroutine, or a goroutine started from it,
// tracks a record: it is the registry's creator func while checks of records
// are in force. The calling goroutine is found by id, or by the goroutine that
// created it; when neither is known, one traceback of all goroutines is read
// to follow the chain of creators to a test's goroutine. A goroutine whose
// test cannot be found is named "goroutine N".
func (c *coordinator) creator() string {
	id := stack.CurrentID()
	c.mu.Lock()
	r, tests := c.goids[id], c.tests
	_, known := c.unknown[id]
	c.mu.Unlock()
	switch {
	case r != nil:
		return r.label
	case known || tests == 0 || id == 0:
		return "goroutine " + strconv.FormatInt(id, 10)
	}
	// A goroutine seen for the first time: look at its creator.
	g, ok := currentGoroutine()
	if !ok {
		return "goroutine " + strconv.FormatInt(id, 10)
	}
	c.mu.Lock()
	r = c.lookupLocked(g.ID, g.CreatorID)
	_, known = c.unknown[g.ID]
	c.mu.Unlock()
	if r == nil && !known {
		r = c.walk(g)
	}
	if r == nil {
		return "goroutine " + strconv.FormatInt(g.ID, 10)
	}
	return r.label
}

// lookupLocked returns the check that goroutine id, created by parent, works
// for, and remembers it for the goroutine's next records.
func (c *coordinator) lookupLocked(id, parent int64) *run {
	if r := c.goids[id]; r != nil {
		return r
	}
	if r := c.goids[parent]; r != nil && parent != 0 {
		c.goids[id] = r
		r.goids = append(r.goids, id)
		return r
	}
	if _, ok := c.unknown[parent]; ok && parent != 0 {
		c.rememberUnknownLocked(id)
	}
	return nil
}

// maxUnknown bounds the memory of goroutines that work for no test.
const maxUnknown = 1 << 16

func (c *coordinator) rememberUnknownLocked(id int64) {
	if len(c.unknown) >= maxUnknown {
		clear(c.unknown)
	}
	c.unknown[id] = struct{}{}
}

// walk follows g's chain of creators through a traceback of all goroutines,
// as far as they still run, and remembers the answer for every goroutine on
// the chain.
func (c *coordinator) walk(g stack.Goroutine) *run {
	parents := make(map[int64]int64)
	for _, t := range allGoroutines() {
		parents[t.ID] = t.CreatorID
	}
	parents[g.ID] = g.CreatorID
	chain := []int64{g.ID}
	c.mu.Lock()
	defer c.mu.Unlock()
	var found *run
	for id := g.CreatorID; id != 0 && len(chain) < 1000; id = parents[id] {
		if r := c.goids[id]; r != nil {
			found = r
			break
		}
		if _, ok := c.unknown[id]; ok {
			break
		}
		chain = append(chain, id)
	}
	for _, id := range chain {
		if found != nil {
			c.goids[id] = found
			found.goids = append(found.goids, id)
		} else {
			c.rememberUnknownLocked(id)
		}
	}
	return found
}

// testGoroutines maps the goroutines known to work for a test to its check:
// every test's own goroutine, and those the creator func has traced.
func (c *coordinator) testGoroutines() map[int64]*run {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := make(map[int64]*run, len(c.labels)+len(c.goids))
	for _, r := range c.labels {
		if r.goid != 0 {
			m[r.goid] = r
		}
	}
	for id, r := range c.goids {
		m[id] = r
	}
	return m
}

// shortFunc drops the package path from a function name:
// "example.com/pkg.TestX.func1" is "pkg.TestX.func1".
func shortFunc(fn string) string {
	return fn[strings.LastIndexByte(fn, '/')+1:]
}

// related reports whether a and b are the same test, or one runs inside the
// other: whatever one does may be the other's doing.
func related(a, b *run) bool {
	if a.main || b.main || a.name == b.name {
		return true
	}
	return strings.HasPrefix(a.name, b.name+"/") || strings.HasPrefix(b.name, a.name+"/")
}

// inside reports whether o is r or one of r's subtests.
func inside(o, r *run) bool {
	return o == r || strings.HasPrefix(o.name, r.name+"/")
}

// noteActivity records, from a goroutine profile, the tests that run their own
// code now although they are neither r nor inside r: unverified tests, or
// siblings in an enclosing test. The profile cannot tell what they open.
func (c *coordinator) noteActivity(r *run, gs []*gsample) {
	if r.main {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, g := range gs {
		if g.has(markerVerify) || g.has(markerFinish) {
			continue // a verified test starting or finishing: it is in running
		}
		fn, ok := activeTest(g)
		if !ok {
			continue
		}
		if o := c.labels[g.label()]; o != nil && !inside(r, o) {
			// This test's or a subtest's goroutine; or another
			// verified test's, which r.overlap has.
			continue
		}
		// A test that runs without VerifyNone; if it carries the
		// label of a test around r, it is a sibling of r.
		if fn == "" {
			fn = "?"
		}
		r.others[shortFunc(fn)] = struct{}{}
	}
}

// others returns what ran alongside r that is neither r, inside r, nor
// around r: the reason a leftover that no goroutine ties to a test cannot be
// blamed on r. It is empty when r ran alone.
func (c *coordinator) others(r *run) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for o := range r.overlap {
		if !related(o, r) {
			out = append(out, o.name)
		}
	}
	for fn := range r.others {
		out = append(out, "an unverified test (in "+fn+")")
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// traceback returns the traceback of all goroutines, from a buffer twice as
// large as the last one.
func (c *coordinator) traceback() []byte {
	b := stack.AllSized(2 * int(c.traceSize.Load()))
	c.traceSize.Store(int64(len(b)))
	return b
}

// listDescriptors lists the open descriptors, one listing at a time, and
// forgets judged descriptors that have since been closed.
func (c *coordinator) listDescriptors() (map[int]string, error) {
	c.pollerOnce.Do(func() {
		if r, w, err := os.Pipe(); err == nil {
			r.Close()
			w.Close()
		}
	})
	c.ioMu.Lock()
	fds, err := c.fds.list()
	c.ioMu.Unlock()
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for k := range c.settledFD {
		if fds[k.fd] != k.target {
			delete(c.settledFD, k)
		}
	}
	for k := range c.deferredFD {
		if fds[k.fd] != k.target {
			delete(c.deferredFD, k)
		}
	}
	return fds, nil
}

// forgetReleased forgets judged records of reg that are no longer live.
func (c *coordinator) forgetReleased(reg *tracker.Registry, live []tracker.Record) {
	ids := make(map[uint64]struct{}, len(live))
	for _, rec := range live {
		ids[rec.ID] = struct{}{}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for k := range c.settledRec {
		if _, ok := ids[k.id]; k.reg == reg && !ok {
			delete(c.settledRec, k)
		}
	}
	for k := range c.deferredRec {
		if _, ok := ids[k.id]; k.reg == reg && !ok {
			delete(c.deferredRec, k)
		}
	}
}

// judgedGoroutines returns how many goroutines of each signature checks have
// judged, and why one left some unattributed. Judgements are capped by the
// goroutines of the signature that still exist in gs, so a goroutine that
// exits is forgotten and a new one with the same signature counts again.
func (c *coordinator) judgedGoroutines(gs []*gsample) (map[string]int, map[string]string) {
	now := make(map[goroutineKey]int, len(gs))
	for _, g := range gs {
		now[goroutineKey(g.signature())] += g.count
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	settled := make(map[string]int, len(c.settledG))
	for k, n := range c.settledG {
		if n = min(n, now[k]); n > 0 {
			c.settledG[k] = n
			settled[string(k)] = n
		} else {
			delete(c.settledG, k)
		}
	}
	deferred := make(map[string]string, len(c.deferredG))
	for k, why := range c.deferredG {
		if now[k] > 0 {
			deferred[string(k)] = why
		} else {
			delete(c.deferredG, k)
		}
	}
	return settled, deferred
}

// judgedAnyGoroutines reports whether checks have judged goroutines that no
// label ties to a test, or left some to an enclosing check.
func (c *coordinator) judgedAnyGoroutines() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.settledG) > 0 || len(c.deferredG) > 0
}

// judgedFD reports whether a check has already judged the leftover, and, if
// one left it unattributed, why.
func (c *coordinator) judgedFD(k fdKey) (settled bool, why string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, settled = c.settledFD[k]
	return settled, c.deferredFD[k]
}

func (c *coordinator) judgedRec(k recKey) (settled bool, why string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, settled = c.settledRec[k]
	return settled, c.deferredRec[k]
}

// settle records the final judgement of a check: what it judged, and what it
// left to an enclosing check, with the reason.
func (c *coordinator) settle(p *poll) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, k := range p.judgedFDs {
		c.settledFD[k] = struct{}{}
		delete(c.deferredFD, k)
	}
	for _, k := range p.judgedRecs {
		c.settledRec[k] = struct{}{}
		delete(c.deferredRec, k)
	}
	for _, j := range p.judgedG {
		c.settledG[j.key] += j.n
		delete(c.deferredG, j.key)
	}
	for _, d := range p.deferred {
		switch k := d.key.(type) {
		case goroutineKey:
			c.deferredG[k] = d.why
		case fdKey:
			c.deferredFD[k] = d.why
		case recKey:
			c.deferredRec[k] = d.why
		}
	}
}
