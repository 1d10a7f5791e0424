package keepalive

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// acceptServer starts a loopback listener whose connections the test drives
// itself; cleanup closes the listener and every connection accepted.
func acceptServer(t *testing.T) (string, <-chan *net.TCPConn) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan *net.TCPConn, 64)
	var mu sync.Mutex
	var all []net.Conn
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			all = append(all, c)
			mu.Unlock()
			ch <- c.(*net.TCPConn)
		}
	})
	t.Cleanup(func() {
		l.Close()
		wg.Wait()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range all {
			c.Close()
		}
	})
	return l.Addr().String(), ch
}

// serverEcho answers one line on the server side of a connection.
func serverEcho(t *testing.T, srv *net.TCPConn) {
	t.Helper()
	srv.SetDeadline(time.Now().Add(5 * time.Second))
	defer srv.SetDeadline(time.Time{})
	var line []byte
	var b [1]byte
	for {
		if _, err := srv.Read(b[:]); err != nil {
			t.Fatalf("server read: %v", err)
		}
		line = append(line, b[0])
		if b[0] == '\n' {
			break
		}
	}
	if _, err := srv.Write(line); err != nil {
		t.Fatalf("server write: %v", err)
	}
}

// getEcho gets a connection to addr and runs one exchange on it, with the
// server side answered by the test.
func getEcho(t *testing.T, p *Pool, addr string, srvs <-chan *net.TCPConn, srv *net.TCPConn) (*Connection, *net.TCPConn) {
	t.Helper()
	c, err := p.Get(t.Context(), addr)
	must(t, err)
	if c.FromCache() == CacheNone {
		srv = <-srvs
	}
	done := make(chan error, 1)
	go func() { done <- roundTrip(c, "ping") }()
	serverEcho(t, srv)
	must(t, <-done)
	return c, srv
}

// expectReset reads from the server side of a connection the pool closed
// with unread data: it must see a reset (SO_LINGER 0), not an orderly close.
func expectReset(t *testing.T, srv *net.TCPConn) {
	t.Helper()
	srv.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err := srv.Read(make([]byte, 64))
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("server read after the pool closed a socket with unread data: %v, want ECONNRESET", err)
	}
}

func TestPoolPeerClosesIdle(t *testing.T) {
	e := newPoolEnv(t)
	addr, srvs := acceptServer(t)
	p := e.pool(PoolConfig{})
	c, srv := getEcho(t, p, addr, srvs, nil)
	local := c.LocalAddr().String()
	must(t, c.Free())
	checkPool(t, p, e.reg)
	srv.Close()
	// The idle watcher sees the close and drops the socket.
	waitFor(t, "the closed idle socket to go", func() bool { return p.Stats().Idle == 0 })
	if st := p.Stats(); st.Open != 0 || st.Discarded != 1 {
		t.Errorf("stats %+v", st)
	}
	checkPool(t, p, e.reg)
	c, _ = getEcho(t, p, addr, srvs, nil)
	if c.FromCache() != CacheNone || c.LocalAddr().String() == local {
		t.Errorf("got %q socket %s after the peer closed %s", c.FromCache(), c.LocalAddr(), local)
	}
	must(t, c.Free())
}

func TestPoolKeepAliveExpires(t *testing.T) {
	e := newPoolEnv(t)
	addr := lineServer(t, echoLines)
	const keep = 50 * time.Millisecond
	p := e.pool(PoolConfig{KeepAlive: keep})
	c, err := p.Get(t.Context(), addr)
	must(t, err)
	must(t, c.Free())
	freed := time.Now()
	waitFor(t, "the idle socket to expire", func() bool { return p.Stats().Idle == 0 })
	if d := time.Since(freed); d < keep {
		t.Errorf("expired after %v, before KeepAlive %v", d, keep)
	}
	if st := p.Stats(); st.Expired != 1 || st.Discarded != 0 || st.Open != 0 {
		t.Errorf("stats %+v", st)
	}
	checkPool(t, p, e.reg)
}

// TestPoolUnreadData frees sockets with data nobody read: at Free, and
// arriving while the socket is idle. Both are closed with a reset.
func TestPoolUnreadData(t *testing.T) {
	e := newPoolEnv(t)
	addr, srvs := acceptServer(t)
	p := e.pool(PoolConfig{})

	c, srv := getEcho(t, p, addr, srvs, nil)
	if _, err := srv.Write([]byte("unsolicited\n")); err != nil {
		t.Fatal(err)
	}
	s := c.s.Load()
	waitFor(t, "the data to arrive", func() bool { return s.check() == unreadData })
	must(t, c.Free())
	if st := p.Stats(); st.Open != 0 || st.Discarded != 1 {
		t.Errorf("after freeing a socket with unread data: %+v", st)
	}
	expectReset(t, srv)
	checkPool(t, p, e.reg)

	c, srv = getEcho(t, p, addr, srvs, nil)
	must(t, c.Free())
	if _, err := srv.Write([]byte("late\n")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the idle socket with data to go", func() bool { return p.Stats().Idle == 0 })
	if st := p.Stats(); st.Open != 0 || st.Discarded != 2 {
		t.Errorf("after data arrived on an idle socket: %+v", st)
	}
	expectReset(t, srv)
	checkPool(t, p, e.reg)
}

// TestPoolClosedNotHandedOut frees a socket, has the server close it, and
// once the close has reached the socket asks for one at once, many times:
// whether the idle watcher or the check at hand-over sees the close first,
// the closed socket is never handed out.
func TestPoolClosedNotHandedOut(t *testing.T) {
	e := newPoolEnv(t)
	addr, srvs := acceptServer(t)
	p := e.pool(PoolConfig{})
	const rounds = 50
	for i := range rounds {
		c, srv := getEcho(t, p, addr, srvs, nil)
		local, s := c.LocalAddr().String(), c.s.Load()
		must(t, c.Free())
		srv.Close()
		// Wait until the close is visible on the socket (or the watcher
		// has closed it already: then check fails too).
		waitFor(t, "the close to arrive", func() bool { return s.check() != healthy })
		c, err := p.Get(t.Context(), addr)
		must(t, err)
		if c.FromCache() != CacheNone || c.LocalAddr().String() == local {
			t.Fatalf("round %d: handed out the socket the server closed (%q, %s)", i, c.FromCache(), local)
		}
		srv = <-srvs
		done := make(chan error, 1)
		go func() { done <- roundTrip(c, "fresh") }()
		serverEcho(t, srv)
		must(t, <-done)
		must(t, c.Free())
		srv.Close()
		waitFor(t, "the closed socket to go", func() bool { return p.Stats().Open == 0 })
	}
	if st := p.Stats(); st.Discarded != 2*rounds || st.Dialed != 2*rounds {
		t.Errorf("stats %+v", st)
	}
	checkPool(t, p, e.reg)
}

// resetAfter is a line server that answers the first n lines of its first
// connection, then sends half a line and resets; later connections echo.
func resetAfter(n int) func(*net.TCPConn, *bufio.Reader) {
	var conns atomic.Int32
	return func(c *net.TCPConn, r *bufio.Reader) {
		if conns.Add(1) > 1 {
			echoLines(c, r)
			return
		}
		for i := 0; ; i++ {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			if i == n {
				c.Write([]byte(line[:len(line)/2]))
				c.SetLinger(0)
				return
			}
			c.Write([]byte(line))
		}
	}
}

func TestPoolResetMidResponse(t *testing.T) {
	e := newPoolEnv(t)
	addr := lineServer(t, resetAfter(1))
	p := e.pool(PoolConfig{})
	c, err := p.Get(t.Context(), addr)
	must(t, err)
	must(t, roundTrip(c, "first"))
	if err := roundTrip(c, "second"); !errors.Is(err, syscall.ECONNRESET) && !errors.Is(err, io.EOF) {
		t.Errorf("exchange cut by a reset: %v", err)
	}
	must(t, c.Free())
	if st := p.Stats(); st.Open != 0 || st.Discarded != 1 {
		t.Errorf("after freeing a reset socket: %+v", st)
	}
	checkPool(t, p, e.reg)
	c, err = p.Get(t.Context(), addr)
	must(t, err)
	must(t, roundTrip(c, "new"))
	must(t, c.Free())
}

// TestPoolResetMidResponseWheel has a wheel see the reset: Free cannot
// detach it (its input ended), so the socket is closed, not pooled.
func TestPoolResetMidResponseWheel(t *testing.T) {
	e := newPoolEnv(t)
	addr := lineServer(t, resetAfter(0))
	p := e.pool(PoolConfig{})
	k := e.kernel()
	j := &journal{}
	_, err := k.Spawn(Spec{Name: "client", Handlers: map[string]Handler{
		EvStart: func(c *Context) {
			_, err := p.Allocate(c, Request{Key: keyOf(t, addr), Event: "got"})
			must(t, err)
		},
		"got": func(c *Context) {
			resp := c.Arg(0).(*Response)
			must(t, resp.Err)
			w, err := resp.Conn.Start(c, WheelConfig{Input: "in", Error: "err"})
			must(t, err)
			must(t, w.Put([]byte("request")))
			c.SetHeap(resp.Conn)
		},
		"in": func(c *Context) { j.add("in %s", c.Arg(0)) },
		"err": func(c *Context) {
			op, _ := ArgOf[string](c, 0)
			err, _ := ArgOf[error](c, 1)
			j.add("%s reset %v", op, errors.Is(err, syscall.ECONNRESET) || errors.Is(err, io.EOF))
			must(t, HeapOf[*Connection](c).Free())
			c.SetHeap(nil)
		},
	}})
	must(t, err)
	mustRun(t, k)
	j.want(t, "read reset true")
	if st := p.Stats(); st.Open != 0 || st.Discarded != 1 {
		t.Errorf("stats %+v", st)
	}
}

// hangingDial is a dial hook that never connects: it waits for its context
// and tells what ended it.
func hangingDial(ended chan<- error) DialFunc {
	return func(ctx context.Context, _ Key, _ string) (net.Conn, error) {
		<-ctx.Done()
		ended <- ctx.Err()
		return nil, ctx.Err()
	}
}

// TestPoolConnectTimeout runs requests against a server that never accepts,
// stood in for by a dial hook that waits for its context (see
// TestPoolConnectTimeoutBacklog for a real listener): the requests time out,
// their connects are canceled and their slots freed.
func TestPoolConnectTimeout(t *testing.T) {
	e := newPoolEnv(t)
	ended := make(chan error, 4)
	const timeout = 50 * time.Millisecond
	p := e.pool(PoolConfig{MaxPerHost: 1, Timeout: timeout, Dial: hangingDial(ended)})
	start := time.Now()
	_, err := p.Get(t.Context(), "127.0.0.1:9")
	expectTimeout(t, err)
	if d := time.Since(start); d < timeout {
		t.Errorf("timed out after %v, before %v", d, timeout)
	}
	if err := <-ended; !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("dial ended with %v", err)
	}

	// The event API, with the request's own timeout.
	k := e.kernel()
	j := &journal{}
	_, err = k.Spawn(Spec{Name: "client", Handlers: map[string]Handler{
		EvStart: func(c *Context) {
			for i := range 2 { // the second waits in the queue
				_, err := p.Allocate(c, Request{Key: Key{Address: "127.0.0.1", Port: 9}, Event: "got", Value: i, Timeout: 20 * time.Millisecond})
				must(t, err)
			}
		},
		"got": func(c *Context) {
			resp := c.Arg(0).(*Response)
			expectTimeout(t, resp.Err)
			j.add("%v timeout", resp.Value)
		},
	}})
	must(t, err)
	mustRun(t, k)
	got := j.get()
	slices.Sort(got) // both time out at about the same time
	(&journal{lines: got}).want(t, "0 timeout", "1 timeout")
	waitFor(t, "the connects to end", func() bool { return p.Stats().Connecting == 0 })
	checkPool(t, p, e.reg)
}

func expectTimeout(t *testing.T, err error) {
	t.Helper()
	var pe *PoolError
	if !errors.As(err, &pe) || pe.Step != StepTimeout || pe.Errno != syscall.ETIMEDOUT || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("got %v, want a timeout", err)
	}
}

// TestPoolTimeoutCancelsResolve times out a request whose address is still
// being resolved: the lookup must be canceled, not left running.
func TestPoolTimeoutCancelsResolve(t *testing.T) {
	e := newPoolEnv(t)
	ended := make(chan error, 2)
	p := e.pool(PoolConfig{Timeout: 30 * time.Millisecond, Resolver: resolverFunc(func(ctx context.Context, _ string) ([]netip.Addr, error) {
		<-ctx.Done()
		ended <- ctx.Err()
		return nil, ctx.Err()
	})})
	_, err := p.Get(t.Context(), "slow.test:80")
	expectTimeout(t, err)
	select {
	case err := <-ended:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("lookup ended with %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the lookup of a timed-out request was not canceled")
	}
	waitFor(t, "the connect to end", func() bool { return p.Stats().Connecting == 0 })
	if st := p.Stats(); st.Failed != 1 {
		t.Errorf("stats %+v", st)
	}
	checkPool(t, p, e.reg)
}

// TestPoolFailedConnectNoStall fails the first connect while more requests
// wait behind it: they must go on, not stall.
func TestPoolFailedConnectNoStall(t *testing.T) {
	t.Run("one refused", func(t *testing.T) {
		e := newPoolEnv(t)
		addr := lineServer(t, echoLines)
		var calls atomic.Int32
		p := e.pool(PoolConfig{MaxPerHost: 1, Dial: func(ctx context.Context, _ Key, a string) (net.Conn, error) {
			if calls.Add(1) == 1 {
				return nil, &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
			}
			var d net.Dialer
			return d.DialContext(ctx, "tcp", a)
		}})
		j := allocateAll(t, e, p, keyOf(t, addr), 3)
		j.want(t, "0 connect ECONNREFUSED", `1 ""`, `2 "deferred"`)
		checkPool(t, p, e.reg)
	})
	t.Run("all refused", func(t *testing.T) {
		e := newPoolEnv(t)
		l, err := net.Listen("tcp", "127.0.0.1:0")
		must(t, err)
		addr := l.Addr().String()
		l.Close() // nothing listens there now: connects are refused
		p := e.pool(PoolConfig{MaxPerHost: 1})
		j := allocateAll(t, e, p, keyOf(t, addr), 3)
		j.want(t, "0 connect ECONNREFUSED", "1 connect ECONNREFUSED", "2 connect ECONNREFUSED")
		if st := p.Stats(); st.Failed != 3 {
			t.Errorf("stats %+v", st)
		}
		checkPool(t, p, e.reg)
	})
}

// allocateAll makes n requests for key from one session and notes each
// response; each connection is freed when its response is handled.
func allocateAll(t *testing.T, e *poolEnv, p *Pool, key Key, n int) *journal {
	t.Helper()
	k := e.kernel()
	j := &journal{}
	_, err := k.Spawn(Spec{Name: "client", Handlers: map[string]Handler{
		EvStart: func(c *Context) {
			for i := range n {
				_, err := p.Allocate(c, Request{Key: key, Event: "got", Value: i})
				must(t, err)
			}
		},
		"got": func(c *Context) {
			resp := c.Arg(0).(*Response)
			var pe *PoolError
			if errors.As(resp.Err, &pe) {
				j.add("%v %s %s", resp.Value, pe.Step, errnoName(pe.Errno))
				return
			}
			j.add("%v %q", resp.Value, resp.FromCache)
			must(t, roundTrip(resp.Conn, "hello"))
			must(t, resp.Conn.Free())
		},
	}})
	must(t, err)
	mustRun(t, k)
	return j
}

func errnoName(e syscall.Errno) string {
	switch e {
	case syscall.ECONNREFUSED:
		return "ECONNREFUSED"
	case syscall.ETIMEDOUT:
		return "ETIMEDOUT"
	}
	return fmt.Sprint(int(e))
}

// TestPoolSlowServer holds a socket on a server that answers slowly: the
// pool does not bound a lent socket's I/O, a request queued behind it times
// out by itself, and the next one gets the socket once it is freed.
func TestPoolSlowServer(t *testing.T) {
	e := newPoolEnv(t)
	const slow = 150 * time.Millisecond
	addr := lineServer(t, func(c *net.TCPConn, r *bufio.Reader) {
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			time.Sleep(slow)
			c.Write([]byte(line))
		}
	})
	p := e.pool(PoolConfig{MaxPerHost: 1})
	c, err := p.Get(t.Context(), addr)
	must(t, err)
	slowDone := make(chan error, 1)
	go func() { slowDone <- roundTrip(c, "take your time") }()

	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Millisecond)
	defer cancel()
	_, err = p.Get(ctx, addr)
	expectTimeout(t, err)

	next := make(chan *Connection, 1)
	go func() {
		c, err := p.Get(t.Context(), addr)
		if err != nil {
			t.Error(err)
		}
		next <- c
	}()
	waitFor(t, "the next request to queue", func() bool { return p.Stats().Queued == 1 })
	must(t, <-slowDone)
	must(t, c.Free())
	c2 := <-next
	if c2 == nil {
		t.FailNow()
	}
	if c2.FromCache() != CacheDeferred {
		t.Errorf("the queued request got a %q socket, want deferred", c2.FromCache())
	}
	must(t, c2.Free())
	checkPool(t, p, e.reg)
}

// TestPoolSocketHealth checks the two ways the pool looks at a socket
// nobody reads: with a descriptor, a non-blocking peek; without (TLS), a
// read with a passed deadline. Each both at once (check) and waiting
// (waitIdle).
func TestPoolSocketHealth(t *testing.T) {
	e := newPoolEnv(t)
	faults := []struct {
		name  string
		fault func(peer *net.TCPConn)
		want  health
		// after is what check sees after waitIdle: a reset is reported
		// once, then the socket reads as closed.
		after health
	}{
		{"quiet", func(*net.TCPConn) {}, healthy, healthy},
		{"data", func(peer *net.TCPConn) { peer.Write([]byte("x")) }, unreadData, unreadData},
		{"closed", func(peer *net.TCPConn) { peer.Close() }, peerClosed, peerClosed},
		{"reset", func(peer *net.TCPConn) { peer.SetLinger(0); peer.Close() }, broken, peerClosed},
	}
	for _, viaPeek := range []bool{true, false} {
		for _, f := range faults {
			name := f.name + "/read"
			if viaPeek {
				name = f.name + "/peek"
			}
			t.Run(name, func(t *testing.T) {
				a, b := pipePair(t)
				s := &sock{tc: e.reg.TrackConn(nil, a)}
				defer s.close(false)
				if viaPeek {
					if s.raw, s.direct = rawConnOf(a); s.raw == nil {
						t.Skip("no peek on this system")
					}
				}
				waited := make(chan health, 1)
				s.tc.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
				go func() { waited <- s.waitIdle() }()
				f.fault(b.(*net.TCPConn))
				if got := <-waited; got != f.want {
					t.Errorf("waitIdle: %d, want %d", got, f.want)
				}
				if f.want == unreadData && !viaPeek {
					return // the read took the byte
				}
				s.tc.SetReadDeadline(time.Time{})
				if got := s.check(); got != f.after {
					t.Errorf("check: %d, want %d", got, f.after)
				}
			})
		}
	}
}

// TestPoolChurn runs 10,000 allocate/free cycles on a pool tight on room
// (two keys, MaxPerHost 2, MaxOpen 3), from several goroutines and from a
// session, with faults chosen at random: the server closing or resetting
// the socket, answering late, cut or with more than was asked; callers
// closing instead of freeing, forgetting connections for the collector,
// giving up early, and canceling requests. Every exchange that was not
// faulted must succeed (no socket unfit for reuse is ever handed out),
// and after each round the pool's counts must agree with the registry.
func TestPoolChurn(t *testing.T) {
	e := newPoolEnv(t)
	addrs := []string{lineServer(t, faultServer), lineServer(t, faultServer)}
	p := e.pool(PoolConfig{MaxPerHost: 2, MaxOpen: 3})
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)

	stopGC := make(chan struct{})
	var gcDone sync.WaitGroup
	gcDone.Go(func() {
		for {
			select {
			case <-stopGC:
				return
			case <-time.After(5 * time.Millisecond):
				runtime.GC() // finds forgotten connections
			}
		}
	})
	var tally churnTally
	t.Cleanup(func() {
		close(stopGC)
		gcDone.Wait()
		// Even when the test stops early: forgotten connections hold
		// sockets the servers wait on.
		for i := 0; i < 100 && p.Stats().Reclaimed < uint64(tally.forgot.Load()); i++ {
			runtime.GC()
			time.Sleep(time.Millisecond)
		}
	})

	const rounds, perRound, workers, sessionCycles = 10, 1000, 4, 200
	for round := range rounds {
		var wg sync.WaitGroup
		for w := range workers {
			rng := rand.New(rand.NewPCG(seed, uint64(round*workers+w)))
			wg.Go(func() {
				for range (perRound - sessionCycles) / workers {
					churnCycle(t, p, addrs[rng.IntN(len(addrs))], rng, &tally)
				}
			})
		}
		churnSession(t, e, p, addrs, rand.New(rand.NewPCG(seed, uint64(1000+round))), sessionCycles, &tally)
		wg.Wait()
		if t.Failed() {
			t.FailNow()
		}
		// Connects whose requests gave up end as their contexts did.
		waitFor(t, "canceled connects to end", func() bool { return p.Stats().Connecting == 0 })
		checkPool(t, p, e.reg)
		p.p.Load().mu.Lock()
		n := len(p.p.Load().reqs)
		p.p.Load().mu.Unlock()
		if n != 0 {
			t.Errorf("round %d: %d requests left in the map", round, n)
		}
	}
	forgot := tally.forgot.Load()
	waitFor(t, "the collector to reclaim forgotten connections", func() bool { return p.Stats().Reclaimed == uint64(forgot) })
	_, unreleased := e.reg.Unreleased()
	if unreleased != int(forgot) {
		t.Errorf("%d connections forgotten, %d reported unreleased", forgot, unreleased)
	}
	st := p.Stats()
	t.Logf("cycles %d, faults %v, forgot %d, gave up %d, deallocated %d; %+v",
		tally.cycles.Load(), tally.faultCounts(), forgot, tally.gaveUp.Load(), tally.deallocated.Load(), st)
	if tally.cycles.Load() != rounds*perRound {
		t.Errorf("%d cycles, want %d", tally.cycles.Load(), rounds*perRound)
	}
	if st.Reused == 0 || st.Discarded == 0 || st.Evicted == 0 {
		t.Errorf("the churn did not exercise reuse, discarding and eviction: %+v", st)
	}
	checkPool(t, p, e.reg)
}

type churnTally struct {
	cycles, forgot, gaveUp, deallocated atomic.Int64
	mu                                  sync.Mutex
	faults                              map[string]int
}

func (ct *churnTally) fault(name string) {
	ct.mu.Lock()
	defer ct.mu.Unlock()
	if ct.faults == nil {
		ct.faults = map[string]int{}
	}
	ct.faults[name]++
}

func (ct *churnTally) faultCounts() map[string]int {
	ct.mu.Lock()
	defer ct.mu.Unlock()
	return ct.faults
}

// churnFaults are what the server is asked to do, by weight.
var churnFaults = []struct {
	name   string
	weight int
}{{"echo", 70}, {"slow", 6}, {"close", 6}, {"reset", 6}, {"partial", 6}, {"extra", 6}}

func pickFault(rng *rand.Rand) string {
	n := rng.IntN(100)
	for _, f := range churnFaults {
		if n < f.weight {
			return f.name
		}
		n -= f.weight
	}
	return "echo"
}

// faultServer does to each line what its first word asks.
func faultServer(c *net.TCPConn, r *bufio.Reader) {
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		fault, _, _ := strings.Cut(line, " ")
		switch fault {
		case "slow":
			time.Sleep(time.Millisecond)
			c.Write([]byte(line))
		case "close":
			c.Write([]byte(line))
			return
		case "reset":
			c.SetLinger(0)
			return
		case "partial":
			c.Write([]byte(line[:len(line)/2]))
			c.SetLinger(0)
			return
		case "extra":
			c.Write([]byte(line + "extra\n")) // one write: both arrive together
		default:
			c.Write([]byte(line))
		}
	}
}

// exchange runs one faulted exchange on c and reports whether c is still
// fit as far as the caller can tell.
func exchange(t *testing.T, c *Connection, fault string, n int64) {
	msg := fmt.Sprintf("%s %d", fault, n)
	err := roundTrip(c, msg)
	switch fault {
	case "echo", "slow", "extra":
		if err != nil {
			t.Errorf("%s exchange on a %q socket: %v", fault, c.FromCache(), err)
		}
	case "close":
		if err != nil {
			t.Errorf("close exchange on a %q socket: %v", c.FromCache(), err)
		}
		// Wait for the server's close, so the pool sees it at Free.
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Read(make([]byte, 1)); err != io.EOF {
			t.Errorf("after the server closed: %v", err)
		}
	case "reset", "partial":
		if err == nil {
			t.Errorf("%s exchange succeeded", fault)
		}
	}
}

func churnCycle(t *testing.T, p *Pool, addr string, rng *rand.Rand, tally *churnTally) {
	n := tally.cycles.Add(1)
	ctx := t.Context()
	if rng.IntN(100) < 3 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Duration(rng.IntN(200))*time.Microsecond)
		defer cancel()
	}
	c, err := p.Get(ctx, addr)
	if err != nil {
		var pe *PoolError
		dl, ok := ctx.Deadline()
		expired := ok && !time.Now().Before(dl)
		if !expired || !errors.As(err, &pe) || (pe.Step != StepTimeout && pe.Step != StepCanceled) {
			t.Errorf("Get: %v", err)
		}
		tally.gaveUp.Add(1)
		return
	}
	fault := pickFault(rng)
	tally.fault(fault)
	exchange(t, c, fault, n)
	switch r := rng.IntN(1000); {
	case r < 5:
		tally.forgot.Add(1) // dropped: the collector gives it back
	case r < 100:
		c.Close()
	default:
		if err := c.Free(); err != nil {
			t.Errorf("Free: %v", err)
		}
	}
}

// churnSession runs cycles through the event API on a kernel of its own:
// some requests are canceled with Deallocate as soon as they are made.
func churnSession(t *testing.T, e *poolEnv, p *Pool, addrs []string, rng *rand.Rand, cycles int, tally *churnTally) {
	k := e.kernel()
	done := 0
	var allocate func(c *Context)
	allocate = func(c *Context) {
		key := keyOf(t, addrs[rng.IntN(len(addrs))])
		id, err := p.Allocate(c, Request{Key: key, Event: "got"})
		if err != nil {
			t.Errorf("Allocate: %v", err)
			return
		}
		if rng.IntN(10) == 0 {
			if err := p.Deallocate(id); err == nil {
				tally.deallocated.Add(1)
				allocate(c)
			} else if !errors.Is(err, ErrNoRequest) {
				t.Errorf("Deallocate: %v", err)
			}
		}
	}
	_, err := k.Spawn(Spec{Name: "churn", Handlers: map[string]Handler{
		EvStart: allocate,
		"got": func(c *Context) {
			resp := c.Arg(0).(*Response)
			if resp.Err != nil {
				t.Errorf("response: %v", resp.Err)
				return
			}
			n := tally.cycles.Add(1)
			fault := pickFault(rng)
			tally.fault(fault)
			exchange(t, resp.Conn, fault, n)
			if rng.IntN(10) == 0 {
				resp.Conn.Close()
			} else {
				must(t, resp.Conn.Free())
			}
			if done++; done < cycles {
				allocate(c)
			}
		},
	}})
	must(t, err)
	rep, err := run(t, k, 20*time.Second)
	if err != nil || rep.Len() != 0 {
		pp := p.p.Load()
		pp.mu.Lock()
		var queue []string
		for r := pp.qHead; r != nil; r = r.qNext {
			queue = append(queue, fmt.Sprintf("%d %s (session %v)", r.id, r.key, r.s))
		}
		for id, r := range pp.reqs {
			queue = append(queue, fmt.Sprintf("map %d state %d", id, r.state))
		}
		pp.mu.Unlock()
		t.Fatalf("Run: %v\n%s\npool %+v\nqueue %q", err, rep, p.Stats(), queue)
	}
}
