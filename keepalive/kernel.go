package keepalive

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/leakcheck/leakcheck/tracker"
)

// Tracker kinds used by the runtime besides tracker's built-in ones.
const (
	// KindEvent is a pending event, tracked under the session it is posted to
	// from the moment it is posted until it is dispatched or dropped.
	KindEvent tracker.Kind = "event"
	// KindRefcount is an extra reference count a session holds under a tag
	// (see Context.RefcountIncrement), tracked while the count is above zero.
	KindRefcount tracker.Kind = "refcount"
	// KindHandle is a watched handle that is neither a file, a socket nor a
	// listener (see Context.Watch).
	KindHandle tracker.Kind = "handle"
)

// Errors returned by the kernel. Posting to a session that stopped, an alias
// nobody holds or a kernel that ended is an error value, never a panic.
var (
	ErrKernelStopped  = errors.New("keepalive: kernel stopped")
	ErrKernelRan      = errors.New("keepalive: kernel already running or ran")
	ErrNoSession      = errors.New("keepalive: no such session")
	ErrSessionStopped = errors.New("keepalive: session stopped")
	ErrForeignSession = errors.New("keepalive: session belongs to another kernel")
	ErrNoHandler      = errors.New("keepalive: no handler for event")
	ErrAliasInUse     = errors.New("keepalive: alias held by another session")
	ErrNoAlias        = errors.New("keepalive: session does not hold alias")
	ErrRefcount       = errors.New("keepalive: reference count would drop below zero")
)

// maxBatch bounds how many events or timers the loop dispatches before it
// looks at the other queue, the context and the garbage list again.
const maxBatch = 1024

type kernelState uint8

const (
	kernelNew kernelState = iota
	kernelRunning
	kernelStopping // Run is shutting down: no new sessions or events
	kernelDone
)

// Option configures a Kernel made by NewKernel.
type Option func(*Kernel)

// WithRegistry makes the kernel track its sessions and resources in r, for
// example tracker.Default so that the process's tracker handler and exit report
// see them. Without it each kernel gets a fresh registry (tracker.New), whose
// stack mode comes from LEAKCHECK_STACKS.
func WithRegistry(r *tracker.Registry) Option {
	return func(k *Kernel) {
		if r != nil {
			k.reg = r
		}
	}
}

// WithName labels the kernel's own tracker session (default "kernel").
func WithName(name string) Option {
	return func(k *Kernel) { k.name = name }
}

// WithEventTracking turns the tracking of pending events on (the default) or
// off. Timers, wheels, handles and sessions are always tracked; without event
// tracking a pending event costs no registry work, and leftover reports do not
// list events. It exists to measure what tracking costs.
func WithEventTracking(on bool) Option {
	return func(k *Kernel) { k.trackEvents = on }
}

// WithLeftoverFunc installs f to be told, on the loop goroutine, what a
// session still held when it stopped: resources tracked under it that nobody
// released (and, when the session was stopped by the kernel's shutdown, the
// events, timers, wheels and handles the kernel then released for it). It is
// not called for sessions that held nothing.
func WithLeftoverFunc(f func(s *Session, held []tracker.Record)) Option {
	return func(k *Kernel) { k.onLeftover = f }
}

// WithHeapChecks gives each session's heap to its tracker session (tracker
// Session.SetHeap), so the registry's heap checks see it: the cycle check at
// Stop (tracker.WithCycleCheck) and the automatic sampling of the
// collections a heap holds (Registry.StartSampler), which then runs on the
// loop goroutine, with the kernel locked, through a heap scheduler. A
// stopped session's heap is let go after the check at its Stop. Wheels,
// acceptors and watched handles in a heap show the walks nothing of the
// runtime; but a heap holding a *Session, *Context or *Kernel leads them into
// the kernel, where they report cycles that are the kernel's own, so keep
// session ids in heaps, as POE advises. Off by default.
func WithHeapChecks(on bool) Option {
	return func(k *Kernel) { k.heapChecks = on }
}

// Kernel is one event loop and the sessions it runs. Handlers run one at a
// time on the goroutine that called Run, so a handler never needs a lock for
// its own session's heap. Post, Spawn, Call and RefcountIncrement/Decrement
// are safe from any goroutine; the loop is woken when it sleeps.
type Kernel struct {
	reg         *tracker.Registry
	ts          *tracker.Session
	name        string
	trackEvents bool
	heapChecks  bool
	onLeftover  func(*Session, []tracker.Record)
	epoch       time.Time
	wake        chan struct{}

	mu        sync.Mutex // guards everything below, and the counters of each Session
	state     kernelState
	sleeping  bool
	queue     ring
	timers    timerHeap
	timerByID map[TimerID]*timer
	timerSeq  uint64
	sessions  map[SessionID]*Session
	aliases   map[string]*Session
	gcq       []*Session
	drained   []drainedEvents
	tasks     []func() // to run on the loop with mu held: heap samples
	live      int      // sessions not stopped
	holds     int      // wheels, acceptors and watched handles, all sessions
	extra     int      // extra references, all sessions
	owners    map[uint64]struct{}

	dispatched, unhandled, dropped, started, stopped atomic.Uint64
}

// Stats counts what a kernel has done so far.
type Stats struct {
	Sessions   int    // sessions alive now
	Pending    int    // events queued now
	Timers     int    // timers pending now
	Holds      int    // wheels, acceptors and watched handles open now
	Dispatched uint64 // events and timers handled
	Unhandled  uint64 // events dropped because their session had no handler
	Dropped    uint64 // events dropped because their session or wheel had gone
	Started    uint64 // sessions started
	Stopped    uint64 // sessions stopped
}

// NewKernel returns a kernel ready for Spawn and Run.
func NewKernel(opts ...Option) *Kernel {
	k := &Kernel{
		name:        "kernel",
		trackEvents: true,
		epoch:       time.Now(),
		wake:        make(chan struct{}, 1),
		timerByID:   make(map[TimerID]*timer),
		sessions:    make(map[SessionID]*Session),
		aliases:     make(map[string]*Session),
		owners:      make(map[uint64]struct{}),
	}
	for _, o := range opts {
		o(k)
	}
	if k.reg == nil {
		k.reg = tracker.New()
	}
	k.ts = k.reg.StartSession(k.name, nil)
	k.owners[k.ts.ID()] = struct{}{}
	return k
}

// Registry returns the registry the kernel tracks in.
func (k *Kernel) Registry() *tracker.Registry { return k.reg }

// Tracker returns the kernel's own tracker session, the parent of every
// top-level session.
func (k *Kernel) Tracker() *tracker.Session { return k.ts }

// Stats returns the kernel's counters.
func (k *Kernel) Stats() Stats {
	k.mu.Lock()
	defer k.mu.Unlock()
	st := Stats{
		Dispatched: k.dispatched.Load(),
		Unhandled:  k.unhandled.Load(),
		Dropped:    k.dropped.Load(),
		Started:    k.started.Load(),
		Stopped:    k.stopped.Load(),
	}
	st.Sessions = k.live
	st.Pending = k.queue.len()
	st.Timers = k.timers.len()
	st.Holds = k.holds
	return st
}

// scheduleSample is a session's heap scheduler: it queues sample to run on
// the loop, and never blocks the tracker's sampler.
func (k *Kernel) scheduleSample(sample func()) {
	k.mu.Lock()
	if k.state >= kernelStopping {
		k.mu.Unlock()
		return
	}
	k.tasks = append(k.tasks, sample)
	wake := k.wakeLocked()
	k.mu.Unlock()
	if wake {
		k.signal()
	}
}

// runTasks runs the queued tasks on the loop, with the kernel locked so that
// nothing the tasks read changes under them.
func (k *Kernel) runTasks() {
	k.mu.Lock()
	defer k.mu.Unlock()
	for len(k.tasks) > 0 {
		tasks := k.tasks
		k.tasks = nil
		for _, f := range tasks {
			f()
		}
	}
}

// now is the loop's clock: nanoseconds since the kernel was made, monotonic.
func (k *Kernel) now() int64 { return int64(time.Since(k.epoch)) }

// wakeLocked reports whether the caller must signal the loop after unlocking.
func (k *Kernel) wakeLocked() bool {
	if k.sleeping {
		k.sleeping = false
		return true
	}
	return false
}

func (k *Kernel) signal() {
	select {
	case k.wake <- struct{}{}:
	default:
	}
}

// gcLocked queues s to be checked for garbage on the loop.
func (k *Kernel) gcLocked(s *Session) {
	if s != nil && s.state == sessionRunning && (s.doomed || s.refsLocked() == 0) {
		k.gcq = append(k.gcq, s)
	}
}

// resolveLocked finds a session by *Session, SessionID or alias.
func (k *Kernel) resolveLocked(to any) (*Session, error) {
	switch t := to.(type) {
	case *Session:
		if t == nil {
			return nil, ErrNoSession
		}
		if t.k != k {
			return nil, ErrForeignSession
		}
		return t, nil
	case SessionID:
		if s := k.sessions[t]; s != nil {
			return s, nil
		}
		return nil, fmt.Errorf("%w: id %d", ErrNoSession, t)
	case string:
		if s := k.aliases[t]; s != nil {
			return s, nil
		}
		return nil, fmt.Errorf("%w: alias %q", ErrNoSession, t)
	default:
		return nil, fmt.Errorf("%w: cannot address a session by %T", ErrNoSession, to)
	}
}

// Lookup returns the live session that to names: a *Session, a SessionID or
// an alias.
func (k *Kernel) Lookup(to any) (*Session, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	s, err := k.resolveLocked(to)
	if err == nil && s.state >= sessionStopping {
		err = s.stoppedErr()
	}
	return s, err
}

// Post queues event for the session to names (a *Session, a SessionID or an
// alias) with args, from outside any session: the handler sees a nil Sender.
// It is safe from any goroutine.
func (k *Kernel) Post(to any, event string, args ...any) error {
	return k.post(nil, to, event, args)
}

func (k *Kernel) post(from *Session, to any, event string, args []any) error {
	k.mu.Lock()
	if k.state >= kernelStopping {
		k.mu.Unlock()
		return ErrKernelStopped
	}
	s, err := k.resolveLocked(to)
	if err == nil && s.state >= sessionStopping {
		err = s.stoppedErr()
	}
	if err != nil {
		k.mu.Unlock()
		return err
	}
	c := &Context{Kernel: k, Session: s, Sender: from, Event: event, Args: args}
	k.enqueueLocked(c, from != nil)
	wake := k.wakeLocked()
	k.mu.Unlock()
	if wake {
		k.signal()
	}
	return nil
}

// enqueueLocked queues c, tracks it and counts it for its receiver (and, when
// countSender is set, its sender).
func (k *Kernel) enqueueLocked(c *Context, countSender bool) {
	s := c.Session
	s.events++
	if k.trackEvents {
		// One record per session and event name while any such event is
		// pending: its stack and age are those of the oldest, and a busy
		// session costs a map update per event, not a record.
		p := s.lastPend
		if p == nil || s.lastEvent != c.Event {
			if p = s.pending[c.Event]; p == nil {
				if s.pending == nil {
					s.pending = make(map[string]*pendingEvents)
				}
				p = &pendingEvents{h: s.ts.Track(KindEvent, c.Event)}
				s.pending[c.Event] = p
			}
			s.lastEvent, s.lastPend = c.Event, p
		}
		p.n++
		c.pend = p
	}
	if countSender && c.Sender != nil {
		c.Sender.sent++
		c.sent = true
	}
	k.queue.push(c)
}

// settleLocked uncounts an event that was dispatched or dropped and queues
// its sessions for garbage collection.
func (k *Kernel) settleLocked(c *Context) {
	s := c.Session
	s.events--
	if p := c.pend; p != nil {
		if p.n--; p.n == 0 && !p.listed {
			p.listed = true
			k.drained = append(k.drained, drainedEvents{s, c.Event, p})
		}
	}
	k.gcLocked(s)
	if c.sent {
		c.Sender.sent--
		k.gcLocked(c.Sender)
	}
}

// pendingEvents tracks a session's pending events of one name.
type pendingEvents struct {
	n      int
	listed bool // on the kernel's drained list
	h      tracker.Handle
}

// drainedEvents is a record of pending events whose count reached zero; it
// is released at the end of the loop's batch unless events of that name
// arrived again meanwhile, so steady traffic reuses one record.
type drainedEvents struct {
	s    *Session
	name string
	p    *pendingEvents
}

// releaseDrainedLocked releases the records of pending events that drained
// during the batch and stayed drained.
func (k *Kernel) releaseDrainedLocked() {
	for i, d := range k.drained {
		d.p.listed = false
		if d.p.n == 0 && d.s.pending[d.name] == d.p {
			delete(d.s.pending, d.name)
			if d.s.lastPend == d.p {
				d.s.lastPend = nil
			}
			d.p.h.Release()
		}
		k.drained[i] = drainedEvents{}
	}
	k.drained = k.drained[:0]
}

// postSource queues an event a wheel or acceptor goroutine produced for s.
// The event is dropped, and drop called, if src is closed before it is
// dispatched.
func (k *Kernel) postSource(s *Session, src eventSource, event string, drop func(), args ...any) bool {
	k.mu.Lock()
	if k.state >= kernelStopping || s.state >= sessionStopping {
		k.mu.Unlock()
		if drop != nil {
			drop()
		}
		return false
	}
	c := &Context{Kernel: k, Session: s, Sender: s, Event: event, Args: args, src: src, drop: drop}
	k.enqueueLocked(c, false)
	wake := k.wakeLocked()
	k.mu.Unlock()
	if wake {
		k.signal()
	}
	return true
}

// Call queues event for the session to names and waits until it has been
// handled, returning the value the handler gave to Context.Return. It is for
// code outside the loop; from a handler use Context.Call, which runs the
// handler at once (calling Kernel.Call from a handler waits for the loop it
// blocks, until ctx ends).
func (k *Kernel) Call(ctx context.Context, to any, event string, args ...any) (any, error) {
	reply := make(chan callResult, 1)
	k.mu.Lock()
	if k.state >= kernelStopping {
		k.mu.Unlock()
		return nil, ErrKernelStopped
	}
	s, err := k.resolveLocked(to)
	if err == nil && s.state >= sessionStopping {
		err = s.stoppedErr()
	}
	if err != nil {
		k.mu.Unlock()
		return nil, err
	}
	c := &Context{Kernel: k, Session: s, Event: event, Args: args, reply: reply}
	k.enqueueLocked(c, false)
	wake := k.wakeLocked()
	k.mu.Unlock()
	if wake {
		k.signal()
	}
	select {
	case r := <-reply:
		return r.v, r.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

type callResult struct {
	v   any
	err error
}

// Run runs the loop until no session is alive or ctx ends, then stops what is
// left and returns the leftover report: every resource still registered to
// the kernel or one of its sessions. The error is nil when the sessions all
// stopped by themselves, ctx.Err() when ctx ended first (the report then also
// lists what the kernel stopped and released), and ErrKernelRan when Run was
// called before. A panic in a handler closes every wheel, acceptor and
// watched handle, then propagates.
func (k *Kernel) Run(ctx context.Context) (*Report, error) {
	k.mu.Lock()
	if k.state != kernelNew {
		k.mu.Unlock()
		return nil, ErrKernelRan
	}
	k.state = kernelRunning
	k.mu.Unlock()
	started := time.Now()

	ok := false
	defer func() {
		if !ok {
			k.abort()
		}
	}()
	forced := k.loop(ctx)
	rep := k.shutdown(forced, started)
	ok = true
	if forced {
		return rep, ctx.Err()
	}
	return rep, nil
}

// loop dispatches until no session is alive (false) or ctx ends (true).
func (k *Kernel) loop(ctx context.Context) bool {
	done := ctx.Done()
	var sleep *time.Timer
	defer func() {
		if sleep != nil {
			sleep.Stop()
		}
	}()
	for {
		select {
		case <-done:
			return true
		default:
		}
		k.runTimers()
		k.runEvents()
		k.collect()
		k.runTasks()

		k.mu.Lock()
		if k.live == 0 {
			k.mu.Unlock()
			return false
		}
		if k.queue.len() > 0 || len(k.gcq) > 0 || len(k.tasks) > 0 || (k.timers.len() > 0 && k.timers.min().at <= k.now()) {
			k.mu.Unlock()
			continue
		}
		if k.aliasIdleLocked() {
			k.mu.Unlock()
			k.collectAliasOnly()
			continue
		}
		k.sleeping = true
		var tc <-chan time.Time
		if k.timers.len() > 0 {
			d := time.Duration(k.timers.min().at - k.now())
			if sleep == nil {
				sleep = time.NewTimer(d)
			} else {
				sleep.Reset(d)
			}
			tc = sleep.C
		}
		k.mu.Unlock()
		select {
		case <-k.wake:
		case <-tc:
		case <-done:
			return true
		}
		k.mu.Lock()
		k.sleeping = false
		k.mu.Unlock()
	}
}

// runEvents dispatches queued events, up to maxBatch.
func (k *Kernel) runEvents() {
	k.mu.Lock()
	for n := 0; n < maxBatch && k.queue.len() > 0; n++ {
		c := k.queue.pop()
		k.mu.Unlock()
		k.deliver(c)
		k.mu.Lock()
		k.settleLocked(c)
		if len(k.gcq) > 0 {
			k.mu.Unlock()
			k.collect()
			k.mu.Lock()
		}
	}
	k.releaseDrainedLocked()
	k.mu.Unlock()
}

// deliver dispatches c, unless its session stopped or its wheel closed
// meanwhile.
func (k *Kernel) deliver(c *Context) {
	srcClosed := false
	if c.src != nil {
		srcClosed = c.src.closed()
		c.src.settled()
	}
	s := c.Session
	if s.state >= sessionStopping || srcClosed {
		k.drop(c)
		return
	}
	if c.kind == eventStart {
		k.mu.Lock()
		s.state = sessionRunning
		k.mu.Unlock()
		k.invoke(c)
		return
	}
	if !k.invoke(c) {
		if c.reply != nil {
			c.reply <- callResult{err: fmt.Errorf("%w %q in session %s", ErrNoHandler, c.Event, s)}
		}
		return
	}
	if c.reply != nil {
		c.reply <- callResult{v: c.ret}
	}
}

// drop disposes of an event that will not be dispatched.
func (k *Kernel) drop(c *Context) {
	k.dropped.Add(1)
	if c.drop != nil {
		c.drop()
	}
	if c.reply != nil {
		c.reply <- callResult{err: c.Session.stoppedErr()}
	}
}

// invoke runs c's handler on this goroutine; it reports false when the
// session has neither a handler for the event nor a default handler.
func (k *Kernel) invoke(c *Context) bool {
	s := c.Session
	h := s.handlers[c.Event]
	if h == nil {
		h = s.fallback
	}
	if h == nil {
		k.unhandled.Add(1)
		return false
	}
	k.dispatched.Add(1)
	h(c)
	return true
}

// runTimers dispatches the timers due now, up to maxBatch.
func (k *Kernel) runTimers() {
	k.mu.Lock()
	if k.timers.len() == 0 {
		k.mu.Unlock()
		return
	}
	now := k.now()
	for n := 0; n < maxBatch && k.timers.len() > 0 && k.timers.min().at <= now; n++ {
		t := k.timers.pop()
		k.forgetTimerLocked(t)
		k.mu.Unlock()
		t.h.Release()
		if t.s.state == sessionRunning {
			k.invoke(&t.c)
		}
		k.mu.Lock()
		k.gcLocked(t.s)
		if len(k.gcq) > 0 {
			k.mu.Unlock()
			k.collect()
			k.mu.Lock()
		}
	}
	k.mu.Unlock()
}

// collect stops the sessions on the garbage list that nothing keeps alive.
func (k *Kernel) collect() {
	for {
		k.mu.Lock()
		if len(k.gcq) == 0 {
			k.mu.Unlock()
			return
		}
		s := k.gcq[0]
		k.gcq[0] = nil
		k.gcq = k.gcq[1:]
		dead := s.state == sessionRunning && (s.doomed || s.refsLocked() == 0)
		k.mu.Unlock()
		if dead {
			k.stop(s)
		}
	}
}

// aliasIdleLocked reports whether every live session is kept alive only by
// aliases (and by children kept alive only by aliases): no event is queued,
// no timer pending, no wheel, acceptor or watched handle open and no extra
// reference held anywhere. Nothing can then post to those sessions but
// themselves, so they are garbage.
func (k *Kernel) aliasIdleLocked() bool {
	return k.live > 0 && k.queue.len() == 0 && k.timers.len() == 0 && k.holds == 0 && k.extra == 0 && len(k.gcq) == 0
}

// collectAliasOnly stops the alias-only sessions that have no children,
// oldest first, while the kernel stays idle; their parents follow once their
// last child is gone.
func (k *Kernel) collectAliasOnly() {
	k.mu.Lock()
	var leaves []*Session
	for _, s := range k.sessions {
		if s.state == sessionRunning && len(s.children) == 0 {
			leaves = append(leaves, s)
		}
	}
	k.mu.Unlock()
	slices.SortFunc(leaves, func(a, b *Session) int { return cmp.Compare(a.id, b.id) })
	for _, s := range leaves {
		k.mu.Lock()
		idle := k.aliasIdleLocked() && s.state == sessionRunning && len(s.children) == 0
		k.mu.Unlock()
		if !idle {
			return
		}
		k.stop(s)
	}
}

// shutdown ends Run: when forced, it stops every live session, leaves first;
// then it drops what is still queued and builds the leftover report.
func (k *Kernel) shutdown(forced bool, started time.Time) *Report {
	var pre []tracker.Record
	var pending []PendingEvent
	if forced {
		pre = k.leftovers()
		k.mu.Lock()
		k.queue.each(func(c *Context) {
			pending = append(pending, PendingEvent{Session: c.Session.id, SessionName: c.Session.name, Event: c.Event, Sender: c.Sender.String()})
		})
		k.mu.Unlock()
	}
	k.mu.Lock()
	k.state = kernelStopping
	k.mu.Unlock()
	alive := 0
	for {
		k.mu.Lock()
		var leaves []*Session
		for _, s := range k.sessions {
			if s.state < sessionStopping && len(s.children) == 0 {
				leaves = append(leaves, s)
			}
		}
		k.mu.Unlock()
		if len(leaves) == 0 {
			break
		}
		alive += len(leaves)
		slices.SortFunc(leaves, func(a, b *Session) int { return cmp.Compare(b.id, a.id) })
		for _, s := range leaves {
			k.stop(s)
		}
	}
	k.mu.Lock()
	var rest []*Context
	for k.queue.len() > 0 {
		c := k.queue.pop()
		k.settleLocked(c)
		rest = append(rest, c)
	}
	k.releaseDrainedLocked()
	k.gcq, k.tasks = nil, nil
	k.state = kernelDone
	k.mu.Unlock()
	for _, c := range rest {
		if c.src != nil {
			c.src.settled()
		}
		k.drop(c)
	}
	k.ts.Stop()

	rep := &Report{Kernel: k.name, Started: started, Ended: time.Now(), Forced: forced, Alive: alive, Pending: pending}
	rep.Leftovers = k.leftovers()
	still := make(map[uint64]bool, len(rep.Leftovers))
	for _, r := range rep.Leftovers {
		still[r.ID] = true
	}
	for _, r := range pre {
		if !still[r.ID] {
			r.State = tracker.Released
			rep.Leftovers = append(rep.Leftovers, r)
		}
	}
	slices.SortFunc(rep.Leftovers, tracker.OldestFirst)
	return rep
}

// leftovers lists the live records owned by the kernel's session or by one
// of its sessions, running or stopped.
func (k *Kernel) leftovers() []tracker.Record {
	k.mu.Lock()
	owners := make(map[uint64]struct{}, len(k.owners))
	for id := range k.owners {
		owners[id] = struct{}{}
	}
	k.mu.Unlock()
	var out []tracker.Record
	for _, r := range k.reg.Leftovers() {
		if _, ok := owners[r.Owner]; ok {
			out = append(out, r)
		}
	}
	return out
}

// abort runs when a handler panicked: it closes every wheel, acceptor and
// watched handle so no goroutine or descriptor outlives Run, and ends the
// kernel without running more handlers.
func (k *Kernel) abort() {
	k.mu.Lock()
	k.state = kernelDone
	var hs []holder
	for _, s := range k.sessions {
		for h := range s.holds {
			hs = append(hs, h)
		}
	}
	k.mu.Unlock()
	for _, h := range hs {
		h.shutdown()
	}
}
