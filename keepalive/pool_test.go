package keepalive

import (
	"bufio"
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/leakcheck/leakcheck/tracker"
	"github.com/leakcheck/leakcheck/tracker/leaktest"
)

// poolEnv is a test's registry for its pools and kernels. Made first thing
// in a test, it checks when the test ends that nothing was left behind:
// goroutines, descriptors, and records of the registry (leaktest).
type poolEnv struct {
	t   *testing.T
	reg *tracker.Registry
}

func newPoolEnv(t *testing.T) *poolEnv {
	t.Helper()
	reg := tracker.New(tracker.WithStacks(tracker.StacksAlways))
	leaktest.VerifyNone(t, leaktest.Registry(reg))
	return &poolEnv{t: t, reg: reg}
}

// pool makes a pool on the env's registry. At cleanup it is shut down, and
// its counters are checked against the registry's records and against
// nothing registered.
func (e *poolEnv) pool(cfg PoolConfig) *Pool {
	e.t.Helper()
	cfg.Registry = e.reg
	cfg.Name = cmp.Or(cfg.Name, "pool "+e.t.Name())
	p, err := NewPool(cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() {
		p.Shutdown()
		checkPool(e.t, p, e.reg)
		if st := p.Stats(); st.Open+st.Connecting+st.Queued != 0 {
			e.t.Errorf("after Shutdown: %+v", st.KeyStats)
		}
		pp := p.p.Load()
		pp.mu.Lock()
		stopped := pp.stopped
		pp.mu.Unlock()
		if !stopped {
			e.t.Errorf("after Shutdown with nothing lent, the pool's tracker session is not stopped")
		}
	})
	return p
}

func (e *poolEnv) kernel() *Kernel {
	return NewKernel(WithRegistry(e.reg), WithName(e.t.Name()))
}

// checkPool fails the test unless the pool's counters agree with the
// registry's records and with its own lists: every open socket is a socket
// record, the idle ones owned by the pool's session; every pending or lent
// connection is a connection record; every pending request is in the map
// of requests, and nothing else is. (A connect whose request was answered,
// timed out or canceled, may still be ending: it holds a slot and no
// request.) Call it when no request is being answered; it waits for the
// sockets being closed.
func checkPool(t *testing.T, pl *Pool, reg *tracker.Registry) {
	t.Helper()
	p := pl.p.Load()
	// A socket taken off the books is closed, and its record released,
	// just after: wait for closes under way.
	waitFor(t, "closes under way", func() bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		return p.closing == 0
	})
	p.mu.Lock()
	var pendingQ, pendingC int
	for _, r := range p.reqs {
		switch r.state {
		case reqQueued:
			pendingQ++
		case reqConnecting:
			pendingC++
		default:
			t.Errorf("request %d in state %d in the map", r.id, r.state)
		}
	}
	p.mu.Unlock()
	st := pl.Stats()
	var sockets, idle, conns int
	ts := pl.Tracker().ID()
	for _, r := range reg.Leftovers() {
		switch r.Kind {
		case tracker.KindSocket:
			sockets++
			if r.Owner == ts {
				idle++
			}
		case KindConnection:
			conns++
		}
	}
	if sockets != st.Open || idle != st.Idle || conns != st.InUse+pendingQ+pendingC {
		t.Errorf("pool counts %+v disagree with the registry: %d socket records (%d owned by the pool), %d connection records",
			st.KeyStats, sockets, idle, conns)
	}
	if st.Open != st.Idle+st.InUse {
		t.Errorf("Open %d != Idle %d + InUse %d", st.Open, st.Idle, st.InUse)
	}
	var sum KeyStats
	for k, ks := range st.Keys {
		if ks == (KeyStats{}) {
			t.Errorf("key %s kept with nothing in it", k)
		}
		sum.Open += ks.Open
		sum.Idle += ks.Idle
		sum.InUse += ks.InUse
		sum.Connecting += ks.Connecting
		sum.Queued += ks.Queued
	}
	if sum != st.KeyStats {
		t.Errorf("per-key counts add up to %+v, totals are %+v", sum, st.KeyStats)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if pendingQ != p.queued || pendingC > p.connecting {
		t.Errorf("%d queued and %d connecting requests in the map, counted %d queued and %d connecting",
			pendingQ, pendingC, p.queued, p.connecting)
	}
	n := 0
	for r := p.qHead; r != nil; r = r.qNext {
		if r.state != reqQueued || p.reqs[r.id] != r {
			t.Errorf("queued request %d in state %d, in map %v", r.id, r.state, p.reqs[r.id] == r)
		}
		n++
	}
	if n != p.queued {
		t.Errorf("queue holds %d requests, counted %d", n, p.queued)
	}
	n = 0
	for s := p.idleHead; s != nil; s = s.gNext {
		if s.state != sockIdle {
			t.Errorf("socket on the idle list in state %d", s.state)
		}
		n++
	}
	if n != p.idle || p.closing != 0 {
		t.Errorf("idle list holds %d sockets, counted %d; %d closing", n, p.idle, p.closing)
	}
}

// lineServer starts a loopback server that runs handle for each connection
// with a reader over it; see server.
func lineServer(t *testing.T, handle func(c *net.TCPConn, r *bufio.Reader)) string {
	t.Helper()
	return server(t, func(c *net.TCPConn) { handle(c, bufio.NewReader(c)) })
}

// echoLines answers each line with the same line.
func echoLines(c *net.TCPConn, r *bufio.Reader) {
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		if _, err := c.Write([]byte(line)); err != nil {
			return
		}
	}
}

// roundTrip writes msg as a line on c and reads the echo back.
func roundTrip(c net.Conn, msg string) error {
	if err := c.SetDeadline(time.Now().Add(5 * time.Second)); err != nil {
		return err
	}
	defer c.SetDeadline(time.Time{})
	if _, err := fmt.Fprintf(c, "%s\n", msg); err != nil {
		return err
	}
	// One byte at a time: nothing beyond the line is taken off the socket.
	var b strings.Builder
	var buf [1]byte
	for {
		if _, err := c.Read(buf[:]); err != nil {
			return fmt.Errorf("after %q: %w", b.String(), err)
		}
		if buf[0] == '\n' {
			break
		}
		b.WriteByte(buf[0])
	}
	if b.String() != msg {
		return fmt.Errorf("got %q, want %q", b.String(), msg)
	}
	return nil
}

// keyOf returns the pool key of a loopback server's address.
func keyOf(t *testing.T, addr string) Key {
	t.Helper()
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	return Key{Address: ap.Addr().String(), Port: int(ap.Port())}
}

// waitFor polls cond until it holds or 5 s have passed.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func TestPoolGetReuse(t *testing.T) {
	e := newPoolEnv(t)
	addr := lineServer(t, echoLines)
	p := e.pool(PoolConfig{})
	ctx := t.Context()

	c, err := p.Get(ctx, addr)
	must(t, err)
	if c.FromCache() != CacheNone {
		t.Errorf("first connection from cache %q", c.FromCache())
	}
	must(t, roundTrip(c, "one"))
	local := c.LocalAddr().String()
	checkPool(t, p, e.reg)
	must(t, c.Free())
	if st := p.Stats(); st.Idle != 1 || st.InUse != 0 {
		t.Errorf("after Free: %+v", st.KeyStats)
	}
	checkPool(t, p, e.reg)

	for i := range 5 {
		c, err := p.Get(ctx, addr)
		must(t, err)
		if c.FromCache() != CacheImmediate || c.LocalAddr().String() != local {
			t.Errorf("Get %d: from cache %q, local %s; want the pooled socket %s", i, c.FromCache(), c.LocalAddr(), local)
		}
		must(t, roundTrip(c, "again "+strconv.Itoa(i)))
		must(t, c.Free())
	}
	st := p.Stats()
	if st.Dialed != 1 || st.Reused != 5 || st.Open != 1 {
		t.Errorf("stats %+v", st)
	}
	if err := c.Free(); !errors.Is(err, ErrConnClosed) || !errors.Is(err, net.ErrClosed) {
		t.Errorf("second Free: %v, want ErrConnClosed", err)
	}
	if _, err := c.Write([]byte("x")); !errors.Is(err, ErrConnClosed) {
		t.Errorf("Write after Free: %v", err)
	}
	if err := c.Close(); !errors.Is(err, ErrConnClosed) {
		t.Errorf("Close after Free: %v", err)
	}
	checkPool(t, p, e.reg)
}

func TestPoolClose(t *testing.T) {
	e := newPoolEnv(t)
	addr := lineServer(t, echoLines)
	p := e.pool(PoolConfig{})
	c, err := p.Get(t.Context(), addr)
	must(t, err)
	must(t, roundTrip(c, "x"))
	must(t, c.Close())
	if st := p.Stats(); st.Open != 0 {
		t.Errorf("after Close: %+v", st.KeyStats)
	}
	checkPool(t, p, e.reg)
	c2, err := p.Get(t.Context(), addr)
	must(t, err)
	if c2.FromCache() != CacheNone {
		t.Errorf("closed socket came back from cache %q", c2.FromCache())
	}
	must(t, c2.Free())
}

// TestPoolAllocate drives the event API: a new connection, a request that
// waits for a per-host slot and gets the freed socket (deferred), one
// served at once from the pool (immediate), the caller's value and the ids
// handed back, and a session kept alive by nothing but its request.
func TestPoolAllocate(t *testing.T) {
	e := newPoolEnv(t)
	addr := lineServer(t, echoLines)
	key := keyOf(t, addr)
	// The dial takes a while: the session has nothing but its requests to
	// keep it alive meanwhile.
	p := e.pool(PoolConfig{MaxPerHost: 1, Dial: func(ctx context.Context, _ Key, a string) (net.Conn, error) {
		time.Sleep(20 * time.Millisecond)
		var d net.Dialer
		return d.DialContext(ctx, "tcp", a)
	}})
	k := e.kernel()
	j := &journal{}
	ids := map[string]RequestID{}
	var locals []string
	allocate := func(c *Context, name string) {
		id, err := p.Allocate(c, Request{Key: key, Event: "got", Value: name})
		must(t, err)
		ids[name] = id
	}
	_, err := k.Spawn(Spec{Name: "client", Handlers: map[string]Handler{
		EvStart: func(c *Context) {
			allocate(c, "a")
			allocate(c, "b")
			if st := p.Stats(); st.Connecting != 1 || st.Queued != 1 {
				t.Errorf("after two requests with MaxPerHost 1: %+v", st.KeyStats)
			}
		},
		"got": func(c *Context) {
			resp := c.Arg(0).(*Response)
			name := resp.Value.(string)
			if resp.Err != nil {
				t.Errorf("%s: %v", name, resp.Err)
				return
			}
			if resp.ID != ids[name] || resp.Key != key || resp.Conn.Key() != key || resp.Conn.FromCache() != resp.FromCache {
				t.Errorf("%s: response %+v, id %d, key %v", name, resp, ids[name], key)
			}
			j.add("%s %q", name, resp.FromCache)
			locals = append(locals, resp.Conn.LocalAddr().String())
			must(t, roundTrip(resp.Conn, name))
			must(t, resp.Conn.Free())
			if name == "b" {
				allocate(c, "c")
			}
		},
	}})
	must(t, err)
	mustRun(t, k)
	j.want(t, `a ""`, `b "deferred"`, `c "immediate"`)
	if len(locals) != 3 || locals[0] != locals[1] || locals[1] != locals[2] {
		t.Errorf("local addresses %v: want one socket throughout", locals)
	}
	checkPool(t, p, e.reg)
}

// TestPoolFIFO checks that requests for one key are answered in the order
// they were made.
func TestPoolFIFO(t *testing.T) {
	e := newPoolEnv(t)
	addr := lineServer(t, echoLines)
	key := keyOf(t, addr)
	p := e.pool(PoolConfig{MaxPerHost: 1})
	k := e.kernel()
	j := &journal{}
	const n = 8
	_, err := k.Spawn(Spec{Name: "client", Handlers: map[string]Handler{
		EvStart: func(c *Context) {
			for i := range n {
				_, err := p.Allocate(c, Request{Key: key, Event: "got", Value: i})
				must(t, err)
			}
		},
		"got": func(c *Context) {
			resp := c.Arg(0).(*Response)
			if resp.Err != nil {
				t.Error(resp.Err)
				return
			}
			j.add("%d", resp.Value)
			// Hold the socket for a while: the queue must wait.
			c.Delay("free", time.Millisecond, resp.Conn)
		},
		"free": func(c *Context) { must(t, c.Arg(0).(*Connection).Free()) },
	}})
	must(t, err)
	mustRun(t, k)
	var want []string
	for i := range n {
		want = append(want, strconv.Itoa(i))
	}
	j.want(t, want...)
	if st := p.Stats(); st.Dialed != 1 || st.Reused != n-1 {
		t.Errorf("stats %+v", st)
	}
}

// TestPoolLimits checks MaxPerHost and MaxOpen with requests queued for
// three keys: the oldest request is served first, even when that means
// closing an idle socket of another key that a younger request could have
// used (no starvation at MaxOpen), and a request blocked by its own key's
// limit does not hold up the others.
func TestPoolLimits(t *testing.T) {
	e := newPoolEnv(t)
	keys := map[string]Key{}
	for _, name := range []string{"A", "B", "C"} {
		keys[name] = keyOf(t, lineServer(t, echoLines))
	}
	p := e.pool(PoolConfig{MaxPerHost: 2, MaxOpen: 3})
	k := e.kernel()
	j := &journal{}
	held := map[string]*Connection{}
	free := func(name string) {
		must(t, held[name].Free())
		delete(held, name)
	}
	stats := func() KeyStats { return p.Stats().KeyStats }
	_, err := k.Spawn(Spec{Name: "client", Handlers: map[string]Handler{
		EvStart: func(c *Context) {
			// A1, A2, B1 connect (MaxOpen reached); C1 waits for MaxOpen,
			// A3 for A's limit and MaxOpen, B2 for MaxOpen.
			for _, name := range []string{"A1", "A2", "B1", "C1", "A3", "B2"} {
				_, err := p.Allocate(c, Request{Key: keys[name[:1]], Event: "got", Value: name})
				must(t, err)
			}
			if st := stats(); st.Open+st.Connecting != 3 || st.Queued != 3 {
				t.Errorf("after six requests: %+v", st)
			}
		},
		"got": func(c *Context) {
			resp := c.Arg(0).(*Response)
			name := resp.Value.(string)
			if resp.Err != nil {
				t.Errorf("%s: %v", name, resp.Err)
				return
			}
			held[name] = resp.Conn
			if name == "C1" || name == "A3" || name == "B2" {
				j.add("%s %q evicted %d", name, resp.FromCache, p.Stats().Evicted)
			} else {
				j.add("%s %q", name, resp.FromCache)
			}
			switch {
			case len(held) == 3 && held["A1"] != nil && held["A2"] != nil && held["B1"] != nil:
				if st := stats(); st.Queued != 3 || st.InUse != 3 {
					t.Errorf("with A1, A2, B1 held: %+v", st)
				}
				// B1's socket goes idle: C1, the oldest, closes it to
				// connect, though B2 could have taken it.
				free("B1")
			case name == "C1":
				free("A1") // A3 takes it
			case name == "A3":
				free("A2") // B2 closes it to connect
			case name == "B2":
				for name := range held {
					free(name)
				}
			}
		},
	}})
	must(t, err)
	mustRun(t, k)
	got := j.get()
	if len(got) != 6 {
		t.Fatalf("responses: %q", got)
	}
	j2 := &journal{lines: got[3:]}
	j2.want(t, `C1 "" evicted 1`, `A3 "deferred" evicted 1`, `B2 "" evicted 2`)
	if st := p.Stats(); st.Open != 3 || st.Idle != 3 || st.Dialed != 5 || st.Evicted != 2 {
		t.Errorf("stats %+v", st)
	}
	checkPool(t, p, e.reg)
}

// TestPoolDeallocate cancels requests: one waiting in the queue, one whose
// connection is being made (its dial must see the cancel). Neither is
// answered, and the session is let go.
func TestPoolDeallocate(t *testing.T) {
	e := newPoolEnv(t)
	canceled := make(chan error, 1)
	p := e.pool(PoolConfig{MaxPerHost: 1, Dial: func(ctx context.Context, _ Key, _ string) (net.Conn, error) {
		<-ctx.Done()
		canceled <- ctx.Err()
		return nil, ctx.Err()
	}})
	key := Key{Address: "127.0.0.1", Port: 9}
	k := e.kernel()
	_, err := k.Spawn(Spec{Name: "client", Handlers: map[string]Handler{
		EvStart: func(c *Context) {
			first, err := p.Allocate(c, Request{Key: key, Event: "got"})
			must(t, err)
			second, err := p.Allocate(c, Request{Key: key, Event: "got"})
			must(t, err)
			must(t, p.Deallocate(second))
			must(t, p.Deallocate(first))
			if err := p.Deallocate(first); !errors.Is(err, ErrNoRequest) {
				t.Errorf("second Deallocate: %v", err)
			}
		},
		"got": func(c *Context) { t.Errorf("canceled request answered: %+v", c.Arg(0)) },
	}})
	must(t, err)
	mustRun(t, k)
	select {
	case err := <-canceled:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("dial ended with %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the dial of a deallocated request was not canceled")
	}
	waitFor(t, "the slot to be freed", func() bool { return p.Stats().Connecting == 0 })
	checkPool(t, p, e.reg)
}

func TestPoolBadInput(t *testing.T) {
	e := newPoolEnv(t)
	for _, tc := range []struct {
		name string
		cfg  PoolConfig
	}{
		{"negative MaxPerHost", PoolConfig{MaxPerHost: -1}},
		{"negative MaxOpen", PoolConfig{MaxOpen: -1}},
		{"negative KeepAlive", PoolConfig{KeepAlive: -time.Second}},
		{"negative Timeout", PoolConfig{Timeout: -time.Second}},
		{"bad BindAddress", PoolConfig{BindAddress: "not an address"}},
		{"BindAddress with Dial", PoolConfig{BindAddress: "127.0.0.1", Dial: func(context.Context, Key, string) (net.Conn, error) { return nil, nil }}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if p, err := NewPool(tc.cfg); err == nil {
				p.Shutdown()
				t.Error("NewPool accepted it")
			} else {
				t.Log(err)
			}
		})
	}

	p := e.pool(PoolConfig{Timeout: time.Second})
	for _, addr := range []string{"no port", "127.0.0.1:0", "127.0.0.1:65536", "127.0.0.1:-1", ":80", "127.0.0.1:http", "[::1"} {
		if c, err := p.Get(t.Context(), addr); err == nil {
			c.Close()
			t.Errorf("Get(%q) succeeded", addr)
		} else {
			t.Logf("Get(%q): %v", addr, err)
		}
	}
	if _, err := p.Get(nil, "127.0.0.1:9"); err == nil {
		t.Error("Get with a nil context succeeded")
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	var pe *PoolError
	if _, err := p.Get(ctx, "127.0.0.1:9"); !errors.As(err, &pe) || pe.Step != StepCanceled || !errors.Is(err, context.Canceled) {
		t.Errorf("Get with a canceled context: %v", err)
	}
	if err := p.Deallocate(12345); !errors.Is(err, ErrNoRequest) {
		t.Errorf("Deallocate of an unknown id: %v", err)
	}
	for _, zero := range []*Pool{nil, new(Pool)} {
		if _, err := zero.Get(t.Context(), "127.0.0.1:9"); err == nil {
			t.Errorf("Get on %v: no error", zero)
		}
		if err := zero.Deallocate(1); err == nil {
			t.Errorf("Deallocate on %v: no error", zero)
		}
		if st := zero.Stats(); st.Open != 0 || zero.Tracker() != nil {
			t.Errorf("Stats, Tracker on %v: %+v", zero, st)
		}
		zero.Shutdown()
	}

	good := Key{Address: "127.0.0.1", Port: 9}
	k := e.kernel()
	_, err := k.Spawn(Spec{Name: "client", Handlers: map[string]Handler{
		EvStart: func(c *Context) {
			for _, tc := range []struct {
				name string
				req  Request
			}{
				{"no event", Request{Key: good}},
				{"no address", Request{Key: Key{Port: 80}, Event: "got"}},
				{"port 0", Request{Key: Key{Address: "127.0.0.1"}, Event: "got"}},
				{"port too large", Request{Key: Key{Address: "127.0.0.1", Port: 1 << 16}, Event: "got"}},
				{"for port too large", Request{Key: Key{Address: "127.0.0.1", Port: 1, ForPort: 1 << 16}, Event: "got"}},
				{"negative timeout", Request{Key: good, Event: "got", Timeout: -1}},
			} {
				if _, err := p.Allocate(c, tc.req); err == nil {
					t.Errorf("Allocate %s: accepted", tc.name)
				}
			}
		},
	}})
	must(t, err)
	mustRun(t, k)
	if _, err := p.Allocate(nil, Request{Key: good, Event: "got"}); err == nil {
		t.Error("Allocate without a session: accepted")
	}
	// A kernel on another registry: lending would move records between
	// registries.
	other := NewKernel(WithName("other registry"))
	_, err = other.Spawn(Spec{Name: "client", Handlers: map[string]Handler{
		EvStart: func(c *Context) {
			if _, err := p.Allocate(c, Request{Key: good, Event: "got"}); err == nil {
				t.Error("Allocate from a kernel on another registry: accepted")
			} else {
				t.Log(err)
			}
		},
	}})
	must(t, err)
	mustRun(t, other)
	checkPool(t, p, e.reg)
}

// TestPoolDialHook checks what a dial hook is given, the "for" triple
// keeping keys apart, and a hook that returns neither a connection nor an
// error.
func TestPoolDialHook(t *testing.T) {
	e := newPoolEnv(t)
	addr := lineServer(t, echoLines)
	proxy := keyOf(t, addr)
	var mu sync.Mutex
	var seen []string
	p := e.pool(PoolConfig{Dial: func(ctx context.Context, key Key, a string) (net.Conn, error) {
		mu.Lock()
		seen = append(seen, key.String()+" via "+a)
		mu.Unlock()
		if key.ForAddress == "nil.test" {
			return nil, nil
		}
		var d net.Dialer
		return d.DialContext(ctx, "tcp", a)
	}})
	k := e.kernel()
	j := &journal{}
	var held []*Connection
	_, err := k.Spawn(Spec{Name: "client", Handlers: map[string]Handler{
		EvStart: func(c *Context) {
			for _, target := range []string{"a.test", "b.test", "nil.test"} {
				key := proxy
				key.Scheme, key.ForScheme, key.ForAddress, key.ForPort = "proxy", "echo", target, 7
				_, err := p.Allocate(c, Request{Key: key, Event: "got", Value: target})
				must(t, err)
			}
		},
		"got": func(c *Context) {
			resp := c.Arg(0).(*Response)
			var pe *PoolError
			switch {
			case resp.Err == nil:
				j.add("%s ok", resp.Value)
				held = append(held, resp.Conn)
			case errors.As(resp.Err, &pe):
				j.add("%s %s", resp.Value, pe.Step)
			}
			if len(j.get()) == 3 {
				if st := p.Stats(); len(st.Keys) != 2 || st.Open != 2 {
					t.Errorf("two targets through one proxy: %+v", st)
				}
				for _, c := range held {
					must(t, c.Free())
				}
			}
		},
	}})
	must(t, err)
	mustRun(t, k)
	got := j.get()
	slices.Sort(got)
	(&journal{lines: got}).want(t, "a.test ok", "b.test ok", "nil.test connect")
	mu.Lock()
	defer mu.Unlock()
	slices.Sort(seen)
	want := fmt.Sprintf("proxy://%s for echo://a.test:7 via %s", addr, addr)
	if len(seen) != 3 || seen[0] != want {
		t.Errorf("the hook saw %q, want first %q", seen, want)
	}
}

func TestPoolBindAddress(t *testing.T) {
	e := newPoolEnv(t)
	addr := lineServer(t, echoLines)
	p := e.pool(PoolConfig{BindAddress: "127.0.0.1"})
	c, err := p.Get(t.Context(), addr)
	must(t, err)
	if ip := c.LocalAddr().(*net.TCPAddr).IP.String(); ip != "127.0.0.1" {
		t.Errorf("bound to %s", ip)
	}
	must(t, c.Free())
}

// failingResolver fails every lookup with err, after noting it.
type failingResolver struct {
	err   error
	mu    sync.Mutex
	hosts []string
}

func (r *failingResolver) LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error) {
	r.mu.Lock()
	r.hosts = append(r.hosts, host)
	r.mu.Unlock()
	return nil, r.err
}

func TestPoolResolve(t *testing.T) {
	leaktest.VerifyNone(t)
	addr := lineServer(t, echoLines)
	_, port, _ := net.SplitHostPort(addr)
	dnsErr := &net.DNSError{Err: "no such host", Name: "nowhere.test", IsNotFound: true}
	for _, tc := range []struct {
		name string
		err  error
	}{
		{"not found", dnsErr},
		{"errno", fmt.Errorf("resolver socket: %w", syscall.ECONNREFUSED)},
		{"no addresses", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newPoolEnv(t)
			r := &failingResolver{err: tc.err}
			p := e.pool(PoolConfig{Resolver: r})
			_, err := p.Get(t.Context(), "nowhere.test:"+port)
			var pe *PoolError
			if !errors.As(err, &pe) || pe.Step != StepResolve || pe.Key.Address != "nowhere.test" {
				t.Fatalf("Get: %v, want a resolve error", err)
			}
			if tc.err != nil && !errors.Is(err, tc.err) {
				t.Errorf("Get: %v does not wrap %v", err, tc.err)
			}
			if want := errnoOf(tc.err); pe.Errno != want {
				t.Errorf("errno %v, want %v", pe.Errno, want)
			}
			// An IP address is not looked up.
			c, err := p.Get(t.Context(), addr)
			must(t, err)
			must(t, c.Free())
			if len(r.hosts) != 1 {
				t.Errorf("lookups: %q", r.hosts)
			}
			checkPool(t, p, e.reg)
			if st := p.Stats(); st.Failed != 1 {
				t.Errorf("stats %+v", st)
			}
		})
	}
	t.Run("localhost", func(t *testing.T) {
		// The real resolver; localhost may come first as ::1, where
		// nothing listens: the pool goes on to 127.0.0.1.
		e := newPoolEnv(t)
		p := e.pool(PoolConfig{})
		c, err := p.Get(t.Context(), "localhost:"+port)
		must(t, err)
		must(t, roundTrip(c, "hello localhost"))
		if c.Key().Address != "localhost" {
			t.Errorf("key %v", c.Key())
		}
		must(t, c.Free())
	})
}

// TestPoolShutdown shuts a pool down with a socket lent, one idle, a
// request queued behind the lent one, and a connection being made; then
// frees the lent socket.
func TestPoolShutdown(t *testing.T) {
	e := newPoolEnv(t)
	addrA := lineServer(t, echoLines)
	addrB := lineServer(t, echoLines)
	dialing := make(chan struct{})
	canceled := make(chan error, 1)
	p := e.pool(PoolConfig{MaxPerHost: 1, Dial: func(ctx context.Context, key Key, a string) (net.Conn, error) {
		if key.Address == "hang.test" {
			close(dialing)
			<-ctx.Done()
			canceled <- ctx.Err()
			return nil, ctx.Err()
		}
		var d net.Dialer
		return d.DialContext(ctx, "tcp", a)
	}, Resolver: resolverFunc(func(context.Context, string) ([]netip.Addr, error) {
		return []netip.Addr{netip.MustParseAddr("127.0.0.1")}, nil
	})})
	ctx := t.Context()
	lent, err := p.Get(ctx, addrA)
	must(t, err)
	idle, err := p.Get(ctx, addrB)
	must(t, err)
	must(t, idle.Free())
	queued := make(chan error, 1)
	go func() {
		c, err := p.Get(ctx, addrA)
		if err == nil {
			c.Close()
		}
		queued <- err
	}()
	connecting := make(chan error, 1)
	go func() {
		c, err := p.Get(ctx, "hang.test:1")
		if err == nil {
			c.Close()
		}
		connecting <- err
	}()
	<-dialing
	waitFor(t, "the request to queue", func() bool { return p.Stats().Queued == 1 })
	checkPool(t, p, e.reg)

	p.Shutdown()
	for name, ch := range map[string]chan error{"queued": queued, "connecting": connecting} {
		err := <-ch
		var pe *PoolError
		if !errors.As(err, &pe) || pe.Step != StepShutdown || !errors.Is(err, ErrPoolShutdown) {
			t.Errorf("%s request: %v, want a shutdown error", name, err)
		}
	}
	if err := <-canceled; !errors.Is(err, context.Canceled) {
		t.Errorf("dial ended with %v", err)
	}
	if st := p.Stats(); st.Open != 1 || st.InUse != 1 || st.Idle != 0 || st.Queued+st.Connecting != 0 {
		t.Errorf("after Shutdown: %+v", st.KeyStats)
	}
	checkPool(t, p, e.reg)
	if _, err := p.Get(ctx, addrA); !errors.Is(err, ErrPoolShutdown) {
		t.Errorf("Get after Shutdown: %v", err)
	}
	// The lent socket still works, and is closed when freed.
	must(t, roundTrip(lent, "still here"))
	must(t, lent.Free())
	if st := p.Stats(); st.Open != 0 {
		t.Errorf("after the last Free: %+v", st.KeyStats)
	}
	if n := e.reg.Len(); n != 0 {
		t.Errorf("%d records registered after Shutdown and the last Free: %v", n, e.reg.Leftovers())
	}
	p.Shutdown() // again: nothing happens
}

// TestPoolShutdownEvents shuts a pool down while a session's request waits:
// the session gets a shutdown response, and Allocate fails afterwards.
func TestPoolShutdownEvents(t *testing.T) {
	e := newPoolEnv(t)
	addr := lineServer(t, echoLines)
	key := keyOf(t, addr)
	p := e.pool(PoolConfig{MaxPerHost: 1})
	k := e.kernel()
	j := &journal{}
	_, err := k.Spawn(Spec{Name: "client", Handlers: map[string]Handler{
		EvStart: func(c *Context) {
			p.Allocate(c, Request{Key: key, Event: "got", Value: 1})
			p.Allocate(c, Request{Key: key, Event: "got", Value: 2})
		},
		"got": func(c *Context) {
			resp := c.Arg(0).(*Response)
			if resp.Err != nil {
				var pe *PoolError
				errors.As(resp.Err, &pe)
				j.add("%v %s", resp.Value, pe.Step)
				_, err := p.Allocate(c, Request{Key: key, Event: "got"})
				j.add("allocate: %v", err)
				return
			}
			j.add("%v ok", resp.Value)
			p.Shutdown()
			must(t, resp.Conn.Free())
		},
	}})
	must(t, err)
	mustRun(t, k)
	j.want(t, "1 ok", "2 shutdown", "allocate: keepalive: pool shut down: allocate "+key.String())
}

type resolverFunc func(ctx context.Context, host string) ([]netip.Addr, error)

func (f resolverFunc) LookupNetIP(ctx context.Context, _, host string) ([]netip.Addr, error) {
	return f(ctx, host)
}

// TestPoolParent checks that a pool's session starts under the session
// PoolConfig.Parent names, or under the root without one.
func TestPoolParent(t *testing.T) {
	t.Parallel()
	reg := tracker.New()
	app := reg.StartSession("app", nil)
	for _, tt := range []struct {
		parent *tracker.Session
		under  func(*tracker.Session) bool
	}{
		{app, func(s *tracker.Session) bool { return s == app }},
		{nil, func(s *tracker.Session) bool { return s != nil && s.Parent() == nil }}, // the root
	} {
		pl, err := NewPool(PoolConfig{Registry: reg, Parent: tt.parent})
		if err != nil {
			t.Fatal(err)
		}
		if got := pl.Tracker().Parent(); !tt.under(got) {
			t.Errorf("parent %v: the pool's session is under %v", tt.parent, got)
		}
		pl.Shutdown()
	}
}
