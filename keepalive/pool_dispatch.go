package keepalive

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"
	"time"
)

// The pool's state machine: requests are served, queued and answered;
// sockets are connected, lent, taken back, watched and closed. State
// changes happen under pool.mu and leave actions (closes, answers,
// hand-overs, connects) that run once the lock is released.

// submit takes a new request: it is served at once when it can be, and
// queued otherwise.
func (p *pool) submit(r *request) error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return ErrPoolShutdown
	}
	// Tracked under the lock: Shutdown stops the pool's sessions only once
	// nothing is pending, and this request is pending from here on.
	h := p.hostLocked(r.key)
	r.conn = p.newConnection(r.key, h.label, r.owner)
	p.lastID++
	r.id = p.lastID
	var a actions
	if !p.serveLocked(r, h, &a, CacheImmediate) {
		p.enqueueLocked(r)
	}
	p.mu.Unlock()
	p.run(&a)
	return nil
}

// hostLocked returns the state of key, made if need be.
func (p *pool) hostLocked(key Key) *host {
	h := p.hosts[key]
	if h == nil {
		h = &host{key: key, label: key.String()}
		p.hosts[key] = h
	}
	return h
}

// forgetHostLocked drops h once nothing of its key is left.
func (p *pool) forgetHostLocked(h *host) {
	if h.empty() && p.hosts[h.key] == h {
		delete(p.hosts, h.key)
	}
}

// serveLocked serves r now if it can: with an idle socket of its key, or
// with a new connection when the key and the pool have room, closing the
// longest idle socket of another key at MaxOpen. It reports false when r
// must wait.
func (p *pool) serveLocked(r *request, h *host, a *actions, cache Cache) bool {
	r.h = h
	if s := h.idleTail; s != nil {
		running := p.unwatchLocked(s)
		p.unlinkIdleLocked(s)
		s.state = sockLent
		h.inUse++
		p.inUse++
		if r.state == reqConnecting || r.state == reqQueued {
			delete(p.reqs, r.id)
		}
		r.state = reqHanding
		a.hands = append(a.hands, handoff{r: r, s: s, cache: cache, watched: running})
		return true
	}
	if h.open()+h.connecting >= p.cfg.MaxPerHost {
		return false
	}
	if p.idle+p.inUse+p.connecting >= p.cfg.MaxOpen {
		if p.idleHead == nil {
			return false
		}
		p.evicted.Add(1)
		p.closeIdleLocked(p.idleHead, a, false)
	}
	h.connecting++
	p.connecting++
	r.state = reqConnecting
	p.reqs[r.id] = r
	p.armLocked(r)
	// Counted now, under the lock, so that Shutdown waits for it; started
	// by run, after the answers this change of state gives.
	p.wg.Add(1)
	a.dials = append(a.dials, r)
	return true
}

// enqueueLocked puts r at the end of the queue.
func (p *pool) enqueueLocked(r *request) {
	r.state = reqQueued
	r.qPrev, r.qNext = p.qTail, nil
	if p.qTail != nil {
		p.qTail.qNext = r
	} else {
		p.qHead = r
	}
	p.qTail = r
	p.queuedLocked(r, +1)
}

// requeueLocked puts r back in the queue in order of id, where it was before
// a socket handed to it turned out unfit.
func (p *pool) requeueLocked(r *request) {
	at := p.qHead
	for at != nil && at.id < r.id {
		at = at.qNext
	}
	if at == nil {
		p.enqueueLocked(r)
		return
	}
	r.state = reqQueued
	r.qPrev, r.qNext = at.qPrev, at
	if at.qPrev != nil {
		at.qPrev.qNext = r
	} else {
		p.qHead = r
	}
	at.qPrev = r
	p.queuedLocked(r, +1)
}

func (p *pool) queuedLocked(r *request, d int) {
	p.queued += d
	h := r.h
	h.queued += d
	if d > 0 {
		p.reqs[r.id] = r
		p.armLocked(r)
	} else {
		p.forgetHostLocked(h)
	}
}

// unqueueLocked takes r out of the queue.
func (p *pool) unqueueLocked(r *request) {
	if r.qPrev != nil {
		r.qPrev.qNext = r.qNext
	} else {
		p.qHead = r.qNext
	}
	if r.qNext != nil {
		r.qNext.qPrev = r.qPrev
	} else {
		p.qTail = r.qPrev
	}
	r.qPrev, r.qNext = nil, nil
	p.queuedLocked(r, -1)
}

// armLocked gives r, once it has to wait, a context whose deadline is its
// timeout and which expires it.
func (p *pool) armLocked(r *request) {
	if r.ctx != nil {
		return
	}
	r.ctx, r.cancel = context.WithTimeout(r.parent, r.timeout)
	r.stop = context.AfterFunc(r.ctx, func() { p.expire(r) })
}

// dispatchLocked serves the queued requests that can be served now, oldest
// first. A request that cannot be served does not hold up those behind it
// that can, and the oldest request gets the first socket that it can use.
func (p *pool) dispatchLocked(a *actions) {
	if p.closed || p.qHead == nil {
		return
	}
	p.pass++
	for r := p.qHead; r != nil; {
		if p.idle == 0 && p.idle+p.inUse+p.connecting >= p.cfg.MaxOpen {
			return // nothing to take, evict or open
		}
		next := r.qNext
		switch h := r.h; {
		case h.blocked == p.pass:
			// An older request of the key could not be served: nor can this.
		case p.serveLocked(r, h, a, CacheDeferred):
			p.unqueueLocked(r)
		default:
			h.blocked = p.pass
		}
		r = next
	}
}

// expire answers a request whose context ended while it waited.
func (p *pool) expire(r *request) {
	p.mu.Lock()
	switch r.state {
	case reqQueued:
		p.unqueueLocked(r)
	case reqConnecting:
		// Its dial ends with the context and frees the slot.
	default:
		p.mu.Unlock()
		return
	}
	r.state = reqDone
	delete(p.reqs, r.id)
	p.mu.Unlock()
	p.fail(r, p.ctxError(r, r.ctx.Err()))
}

// ctxError is the error of a request whose context ended with err.
func (p *pool) ctxError(r *request, err error) *PoolError {
	if errors.Is(err, context.DeadlineExceeded) {
		return &PoolError{Step: StepTimeout, Key: r.key, Errno: syscall.ETIMEDOUT, Err: err}
	}
	return &PoolError{Step: StepCanceled, Key: r.key, Errno: syscall.ECANCELED, Err: err}
}

// connect makes a connection for r, on its own goroutine.
func (p *pool) connect(r *request) {
	nc, step, err := p.open(r.ctx, r.key)
	p.mu.Lock()
	h := r.h
	h.connecting--
	p.connecting--
	var a actions
	if err != nil {
		p.failed.Add(1)
		if r.state == reqConnecting {
			r.state = reqDone
			delete(p.reqs, r.id)
			pe := &PoolError{Step: step, Key: r.key, Errno: errnoOf(err), Err: err}
			if cerr := r.ctx.Err(); cerr != nil {
				pe = p.ctxError(r, cerr)
			} else if dl, ok := r.ctx.Deadline(); ok && !time.Now().Before(dl) {
				// The dial saw the deadline before the context did.
				pe = p.ctxError(r, context.DeadlineExceeded)
			}
			a.fails = append(a.fails, failure{r, pe})
		}
		p.dispatchLocked(&a)
		p.forgetHostLocked(h)
		p.mu.Unlock()
		p.run(&a)
		return
	}
	p.dialed.Add(1)
	s := p.newSockLocked(h, nc)
	switch {
	case p.closed:
		p.closing++
		a.closes = append(a.closes, closing{s: s})
		p.forgetHostLocked(h)
	case r.state == reqConnecting:
		r.state = reqHanding
		delete(p.reqs, r.id)
		s.state = sockLent
		h.inUse++
		p.inUse++
		a.hands = append(a.hands, handoff{r: r, s: s, cache: CacheNone, fresh: true})
	default:
		// The request was canceled or timed out meanwhile: keep the new
		// socket for the next one.
		p.idleLocked(s, &a)
	}
	p.mu.Unlock()
	p.run(&a)
}

// open resolves key's address, unless it is an IP address, and connects to
// each address in turn until one answers.
func (p *pool) open(ctx context.Context, key Key) (net.Conn, Step, error) {
	var ips []netip.Addr
	if ip, err := netip.ParseAddr(key.Address); err == nil {
		ips = []netip.Addr{ip}
	} else {
		ips, err = p.resolver.LookupNetIP(ctx, "ip", key.Address)
		if err != nil {
			return nil, StepResolve, err
		}
		if len(ips) == 0 {
			return nil, StepResolve, fmt.Errorf("lookup %s: no addresses", key.Address)
		}
	}
	var first error
	for _, ip := range ips {
		nc, err := p.dial(ctx, key, netip.AddrPortFrom(ip.Unmap(), uint16(key.Port)).String())
		if err == nil {
			if nc == nil {
				return nil, StepConnect, errors.New("dial hook returned no connection and no error")
			}
			return nc, "", nil
		}
		if first == nil {
			first = err
		}
		if ctx.Err() != nil {
			break
		}
	}
	return nil, StepConnect, first
}

func errnoOf(err error) syscall.Errno {
	var e syscall.Errno
	if errors.As(err, &e) {
		return e
	}
	return 0
}

// idleLocked makes s idle, serves the queue, and watches s if it is still
// idle then.
func (p *pool) idleLocked(s *sock, a *actions) {
	h := s.h
	s.state = sockIdle
	s.idleSince = time.Now()
	s.gPrev, s.gNext = p.idleTail, nil
	if p.idleTail != nil {
		p.idleTail.gNext = s
	} else {
		p.idleHead = s
	}
	p.idleTail = s
	s.hPrev, s.hNext = h.idleTail, nil
	if h.idleTail != nil {
		h.idleTail.hNext = s
	} else {
		h.idleHead = s
	}
	h.idleTail = s
	h.idle++
	p.idle++
	p.dispatchLocked(a)
	if s.state == sockIdle {
		p.watchLocked(s)
	}
}

// unlinkIdleLocked takes s off the idle lists.
func (p *pool) unlinkIdleLocked(s *sock) {
	h := s.h
	if s.gPrev != nil {
		s.gPrev.gNext = s.gNext
	} else {
		p.idleHead = s.gNext
	}
	if s.gNext != nil {
		s.gNext.gPrev = s.gPrev
	} else {
		p.idleTail = s.gPrev
	}
	if s.hPrev != nil {
		s.hPrev.hNext = s.hNext
	} else {
		h.idleHead = s.hNext
	}
	if s.hNext != nil {
		s.hNext.hPrev = s.hPrev
	} else {
		h.idleTail = s.hPrev
	}
	s.gPrev, s.gNext, s.hPrev, s.hNext = nil, nil, nil, nil
	h.idle--
	p.idle--
}

// closeIdleLocked takes an idle socket off the books to be closed; its
// watcher, if running, ends when it is.
func (p *pool) closeIdleLocked(s *sock, a *actions, abort bool) {
	p.unwatchLocked(s)
	p.unlinkIdleLocked(s)
	s.state = sockClosed
	p.closing++
	a.closes = append(a.closes, closing{s: s, abort: abort})
	p.forgetHostLocked(s.h)
}

// dropLentLocked takes a lent socket off the books; when close is set it is
// to be closed, otherwise it is closed already. The caller serves the queue
// then: the socket's slot is free.
func (p *pool) dropLentLocked(s *sock, a *actions, close, abort bool) {
	s.state = sockClosed
	s.h.inUse--
	p.inUse--
	if close {
		p.closing++
		a.closes = append(a.closes, closing{s: s, abort: abort})
	}
	p.forgetHostLocked(s.h)
}

// actions is what a change of the pool's state leaves to do once the lock
// is released: sockets to close, requests to answer, sockets to hand over,
// connections to make.
type actions struct {
	closes []closing
	fails  []failure
	hands  []handoff
	dials  []*request // counted in wg already
}

type closing struct {
	s     *sock
	abort bool // unread data: reset the connection (SO_LINGER 0)
}

type failure struct {
	r   *request
	err *PoolError
}

type handoff struct {
	r       *request
	s       *sock
	cache   Cache
	fresh   bool // a new connection: nothing to check
	watched bool // an idle watcher runs: interrupt it and wait for it
}

// run does what a, built under the lock, leaves to do. Called without the
// lock.
func (p *pool) run(a *actions) {
	if len(a.closes) > 0 {
		for _, c := range a.closes {
			c.s.close(c.abort)
		}
		p.mu.Lock()
		p.closing -= len(a.closes)
		p.mu.Unlock()
	}
	for _, f := range a.fails {
		p.fail(f.r, f.err)
	}
	for _, h := range a.hands {
		p.handOver(h)
	}
	// Last: an older request's answer goes out before a younger one's
	// connect can fail.
	for _, r := range a.dials {
		go func() {
			defer p.wg.Done()
			p.connect(r)
		}()
	}
	p.maybeStop()
}

// maybeStop stops the pool's tracker sessions once it is shut down and
// holds nothing: no socket open, being opened or being closed.
func (p *pool) maybeStop() {
	if !p.isClosed.Load() {
		return // the common case, without the lock
	}
	p.mu.Lock()
	if !p.closed || p.stopped || p.idle+p.inUse+p.connecting+p.closing > 0 {
		p.mu.Unlock()
		return
	}
	p.stopped = true
	p.mu.Unlock()
	p.ts.Stop()
}

// handOver gives s to r: it stops the idle watcher, checks that the socket
// is still fit (the peer may have closed it or sent something since it was
// freed), and delivers it; an unfit socket is closed and r goes back to its
// place in the queue.
func (p *pool) handOver(ho handoff) {
	s := ho.s
	if ho.watched {
		s.tc.SetReadDeadline(time.Unix(1, 0)) // passed: the watcher's wait ends
		s.watcher.Wait()
	}
	if !ho.fresh {
		fit := true
		if ho.watched { // it set the keep-alive deadline
			fit = s.tc.SetReadDeadline(time.Time{}) == nil
		}
		var why health
		if fit {
			why = s.check()
			fit = why == healthy
		}
		if !fit {
			p.discarded.Add(1)
			var a actions
			p.mu.Lock()
			p.dropLentLocked(s, &a, true, why == unreadData)
			p.retryLocked(ho.r, ho.cache, &a) // first: it is older than the queue
			p.dispatchLocked(&a)
			p.mu.Unlock()
			p.run(&a)
			return
		}
		p.reused.Add(1)
	}
	p.complete(ho.r, s, ho.cache)
}

// retryLocked serves r again after the socket handed to it was unfit.
func (p *pool) retryLocked(r *request, cache Cache, a *actions) {
	switch {
	case p.closed:
		r.state = reqDone
		a.fails = append(a.fails, failure{r, &PoolError{Step: StepShutdown, Key: r.key, Errno: syscall.ECANCELED, Err: ErrPoolShutdown}})
	case r.ctx != nil && r.ctx.Err() != nil:
		r.state = reqDone
		a.fails = append(a.fails, failure{r, p.ctxError(r, r.ctx.Err())})
	case r.parent.Err() != nil: // Get's context, when r never waited
		r.state = reqDone
		a.fails = append(a.fails, failure{r, p.ctxError(r, r.parent.Err())})
	default:
		r.state = reqQueued
		if !p.serveLocked(r, p.hostLocked(r.key), a, cache) {
			p.requeueLocked(r)
		}
	}
}

// complete lends s to r's holder and answers r.
func (p *pool) complete(r *request, s *sock, cache Cache) {
	c := r.conn
	r.conn = nil
	r.finish()
	if r.k != nil && !r.s.Alive() {
		// The session was stopped by force while it waited: it cannot
		// take the socket.
		p.releaseRecord(r, c)
		r.k.refcount(r.s, p.refTag, -1)
		p.giveBack(s, false)
		return
	}
	c.lend(s, r.owner, cache)
	if r.done != nil {
		r.done <- getResult{c: c, cache: cache}
		return
	}
	resp := &Response{ID: r.id, Key: r.key, Conn: c, Value: r.value, FromCache: cache}
	// If the session never handles the response (it stopped, or the kernel
	// did), the connection goes back to the pool.
	r.k.postSource(r.s, poolSource{}, r.event, func() { c.Free() }, resp)
	r.k.refcount(r.s, p.refTag, -1)
}

// releaseRecord releases the record of the connection c made for r, which
// was never lent. A session stopped by force reported the record as its
// leftover; it is released under the pool's session, not as a misuse under
// the stopped one.
func (p *pool) releaseRecord(r *request, c *Connection) {
	if r.k != nil && !r.s.Alive() {
		c.rec.Move(p.ts)
	}
	c.rec.Release()
}

// fail answers r with err.
func (p *pool) fail(r *request, err *PoolError) {
	p.releaseRecord(r, r.conn)
	r.conn = nil
	r.finish()
	if r.done != nil {
		r.done <- getResult{err: err}
		return
	}
	resp := &Response{ID: r.id, Key: r.key, Err: err, Value: r.value}
	r.k.postSource(r.s, poolSource{}, r.event, nil, resp)
	r.k.refcount(r.s, p.refTag, -1)
}

// poolSource is the event source of responses: they are dropped only with
// their session.
type poolSource struct{}

func (poolSource) closed() bool { return false }
func (poolSource) settled()     {}

// newSockLocked tracks a new connection of h's key as the pool's.
func (p *pool) newSockLocked(h *host, nc net.Conn) *sock {
	s := &sock{p: p, h: h, tc: p.reg.TrackConn(p.ts, nc)}
	s.raw, s.direct = rawConnOf(nc)
	return s
}

// giveBack takes back a lent socket, from Free or from the garbage
// collector: the wheel goes first, then the socket is checked and pooled
// if fit, closed if not.
func (p *pool) giveBack(s *sock, reclaimed bool) {
	// The socket is the pool's again from here: a session whose last hold
	// was the wheel may stop as soon as the wheel is dropped, and must not
	// report the socket as its leftover.
	if h := s.tc.Handle(); h.Live() {
		h.Move(p.ts)
	}
	why, gone := s.dropWheel()
	if !gone && why == healthy {
		if s.deadlines.Swap(false) && s.tc.SetDeadline(time.Time{}) != nil {
			why = broken
		} else {
			why = s.check()
		}
	}
	var a actions
	p.mu.Lock()
	if s.state != sockLent {
		p.mu.Unlock()
		return
	}
	if reclaimed {
		p.reclaimed.Add(1)
	}
	if why != healthy {
		p.discarded.Add(1)
	}
	switch {
	case gone:
		p.dropLentLocked(s, &a, false, false)
		p.dispatchLocked(&a)
	case why != healthy || p.closed:
		p.dropLentLocked(s, &a, true, why == unreadData)
		p.dispatchLocked(&a)
	default:
		s.h.inUse--
		p.inUse--
		p.idleLocked(s, &a) // serves the queue
	}
	p.mu.Unlock()
	p.run(&a)
}

// closeLent closes a lent socket for good.
func (p *pool) closeLent(s *sock) error {
	var err error
	if w := s.takeWheel(); w != nil {
		if err = w.Close(); errors.Is(err, ErrWheelClosed) {
			err = nil
		}
	}
	if s.tc.Handle().Live() {
		err = s.tc.Close()
	}
	var a actions
	p.mu.Lock()
	if s.state == sockLent {
		p.dropLentLocked(s, &a, false, false)
		p.dispatchLocked(&a)
	}
	p.mu.Unlock()
	p.run(&a)
	return err
}
