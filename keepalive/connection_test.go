package keepalive

import (
	"bufio"
	"context"
	"errors"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/leakcheck/leakcheck/tracker"
)

// TestConnectionWheel starts a wheel over a pooled socket, frees it (the
// wheel is dropped, the socket pooled), gets the socket again, and closes
// it with its wheel.
func TestConnectionWheel(t *testing.T) {
	e := newPoolEnv(t)
	addr := lineServer(t, echoLines)
	p := e.pool(PoolConfig{})
	k := e.kernel()
	j := &journal{}
	var first *Connection
	var firstWheel *Wheel
	owner := func(h tracker.Handle) uint64 { return h.Owner().ID() }
	_, err := k.Spawn(Spec{Name: "client", Handlers: map[string]Handler{
		EvStart: func(c *Context) {
			_, err := p.Allocate(c, Request{Key: keyOf(t, addr), Event: "got"})
			must(t, err)
		},
		"got": func(c *Context) {
			resp := c.Arg(0).(*Response)
			must(t, resp.Err)
			conn := resp.Conn
			w, err := conn.Start(c, WheelConfig{Input: "in"})
			must(t, err)
			if conn.Wheel() != w {
				t.Error("Wheel does not return the started wheel")
			}
			if _, err := conn.Start(c, WheelConfig{Input: "in"}); !errors.Is(err, ErrWheelStarted) {
				t.Errorf("second Start: %v", err)
			}
			if _, err := conn.Read(make([]byte, 1)); !errors.Is(err, ErrWheelStarted) {
				t.Errorf("Read with a wheel: %v", err)
			}
			s := conn.s.Load()
			if id := c.Session.Tracker().ID(); owner(s.tc.Handle()) != id || owner(conn.rec) != id {
				t.Errorf("socket and connection records not owned by the session")
			}
			c.SetHeap(conn)
			if first == nil {
				first, firstWheel = conn, w
				must(t, w.Put([]byte("one")))
			} else {
				j.add("again %q same %v", conn.FromCache(), conn.LocalAddr().String() == first.LocalAddr().String())
				must(t, w.Put([]byte("two")))
			}
		},
		"in": func(c *Context) {
			conn := HeapOf[*Connection](c)
			j.add("in %s", c.Arg(0))
			if conn == first {
				must(t, conn.Free())
				if st := p.Stats(); st.Idle != 1 || st.InUse != 0 {
					t.Errorf("after Free: %+v", st.KeyStats)
				}
				if err := firstWheel.Put([]byte("x")); !errors.Is(err, ErrWheelClosed) {
					t.Errorf("Put on the wheel of a freed connection: %v", err)
				}
				if conn.Wheel() != nil {
					t.Error("a freed connection still has a wheel")
				}
				if _, err := conn.Read(make([]byte, 1)); !errors.Is(err, ErrConnClosed) {
					t.Errorf("Read after Free: %v", err)
				}
				_, err := p.Allocate(c, Request{Key: keyOf(t, addr), Event: "got"})
				must(t, err)
				return
			}
			w := conn.Wheel()
			must(t, conn.Close())
			if err := w.Put([]byte("x")); !errors.Is(err, ErrWheelClosed) {
				t.Errorf("Put on the wheel of a closed connection: %v", err)
			}
			if st := p.Stats(); st.Open != 0 {
				t.Errorf("after Close: %+v", st.KeyStats)
			}
			c.SetHeap(nil)
		},
	}})
	must(t, err)
	mustRun(t, k)
	j.want(t, "in one", `again "immediate" same true`, "in two")
	checkPool(t, p, e.reg)
}

// TestConnectionFreeUnreadInput frees a connection whose wheel has input
// left: the server answered with two lines, the session read one. The
// socket is not pooled.
func TestConnectionFreeUnreadInput(t *testing.T) {
	e := newPoolEnv(t)
	addr := lineServer(t, func(c *net.TCPConn, r *bufio.Reader) {
		if _, err := r.ReadString('\n'); err == nil {
			c.Write([]byte("a\nb\n"))
		}
		r.ReadString('\n') // until the client goes
	})
	p := e.pool(PoolConfig{})
	k := e.kernel()
	_, err := k.Spawn(Spec{Name: "client", Handlers: map[string]Handler{
		EvStart: func(c *Context) {
			_, err := p.Allocate(c, Request{Key: keyOf(t, addr), Event: "got"})
			must(t, err)
		},
		"got": func(c *Context) {
			resp := c.Arg(0).(*Response)
			must(t, resp.Err)
			w, err := resp.Conn.Start(c, WheelConfig{Input: "in"})
			must(t, err)
			must(t, w.Put([]byte("question")))
			c.SetHeap(resp.Conn)
		},
		"in": func(c *Context) {
			if conn := HeapOf[*Connection](c); conn != nil {
				must(t, conn.Free())
				c.SetHeap(nil)
			}
		},
	}})
	must(t, err)
	mustRun(t, k)
	if st := p.Stats(); st.Open != 0 || st.Discarded != 1 {
		t.Errorf("stats %+v", st)
	}
	checkPool(t, p, e.reg)
}

// forgetConnection gets a connection, uses it and drops it.
//
//go:noinline
func forgetConnection(t *testing.T, p *Pool, addr string) string {
	c, err := p.Get(t.Context(), addr)
	must(t, err)
	must(t, roundTrip(c, "forget me"))
	return c.LocalAddr().String()
}

// collect runs the garbage collector until p has reclaimed n connections
// and the registry reported n unreleased.
func collect(t *testing.T, p *Pool, reg *tracker.Registry, n int) []tracker.Unreleased {
	t.Helper()
	var got []tracker.Unreleased
	waitFor(t, "the collector", func() bool {
		runtime.GC()
		var total int
		got, total = reg.Unreleased()
		return p.Stats().Reclaimed == uint64(n) && total == n
	})
	return got
}

// stackHas reports whether frames has a function whose name contains each
// of names.
func stackHas(frames []tracker.Frame, names ...string) bool {
	for _, name := range names {
		found := false
		for _, f := range frames {
			if strings.Contains(f.Func, name) {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// TestConnectionForgotten drops a connection without Free or Close: the
// collector gives its socket back to the pool, and the tracker reports it
// as unreleased with the stack of the Get that asked for it.
func TestConnectionForgotten(t *testing.T) {
	e := newPoolEnv(t)
	addr := lineServer(t, echoLines)
	p := e.pool(PoolConfig{})
	local := forgetConnection(t, p, addr)
	un := collect(t, p, e.reg, 1)
	if st := p.Stats(); st.Idle != 1 || st.InUse != 0 {
		t.Errorf("after the collector: %+v", st.KeyStats)
	}
	checkPool(t, p, e.reg)
	rec := un[0].Record
	if rec.Kind != KindConnection || rec.State != tracker.Collected || !stackHas(rec.Stack, "forgetConnection", "(*Pool).Get") {
		t.Errorf("unreleased %s", un[0])
	}
	t.Logf("%s", un[0])
	c, err := p.Get(t.Context(), addr)
	must(t, err)
	if c.FromCache() != CacheImmediate || c.LocalAddr().String() != local {
		t.Errorf("after the collector gave it back: %q socket %s, want %s", c.FromCache(), c.LocalAddr(), local)
	}
	must(t, c.Free())
}

// TestConnectionForgottenWheel drops a connection whose wheel still runs:
// the collector drops the wheel first, then gives the socket back; the
// session, kept alive only by the wheel, then stops.
func TestConnectionForgottenWheel(t *testing.T) {
	e := newPoolEnv(t)
	addr := lineServer(t, echoLines)
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
			w, err := resp.Conn.Start(c, WheelConfig{Input: "in"})
			must(t, err)
			must(t, w.Put([]byte("hello")))
			c.SetHeap(resp.Conn)
		},
		"in": func(c *Context) {
			j.add("in %s", c.Arg(0))
			// The connection is dropped: only the session holds the wheel.
			c.SetHeap(nil)
		},
		EvStop: func(c *Context) { j.add("stop") },
	}})
	must(t, err)
	ran := make(chan *Report, 1)
	go func() { rep, _ := run(t, k, 10*time.Second); ran <- rep }()
	waitFor(t, "the echo", func() bool { return len(j.get()) > 0 })
	un := collect(t, p, e.reg, 1)
	rep := <-ran
	if rep.Forced || rep.Len() != 0 {
		t.Errorf("Run: %s", rep)
	}
	j.want(t, "in hello", "stop")
	if st := p.Stats(); st.Idle != 1 || st.InUse != 0 {
		t.Errorf("after the collector: %+v", st.KeyStats)
	}
	if !stackHas(un[0].Record.Stack, "(*Pool).Allocate", "TestConnectionForgottenWheel") {
		t.Errorf("unreleased %s", un[0])
	}
	checkPool(t, p, e.reg)
}

// TestConnectionUnhandledResponse stops a session before its response
// arrives: the socket goes back to the pool, and nothing is recorded as
// misused.
func TestConnectionUnhandledResponse(t *testing.T) {
	e := newPoolEnv(t)
	addr := lineServer(t, echoLines)
	p := e.pool(PoolConfig{Dial: func(ctx context.Context, _ Key, a string) (net.Conn, error) {
		time.Sleep(20 * time.Millisecond)
		var d net.Dialer
		return d.DialContext(ctx, "tcp", a)
	}})
	k := e.kernel()
	_, err := k.Spawn(Spec{Name: "client", Handlers: map[string]Handler{
		EvStart: func(c *Context) {
			_, err := p.Allocate(c, Request{Key: keyOf(t, addr), Event: "got"})
			must(t, err)
			must(t, c.Stop())
		},
		"got": func(c *Context) { t.Error("a stopped session handled its response") },
	}})
	must(t, err)
	rep, err := run(t, k, 10*time.Second)
	must(t, err)
	// The session held its request's connection when it was stopped.
	if n := len(rep.Of(KindConnection)); n != 1 {
		t.Errorf("leftovers: %s", rep)
	}
	waitFor(t, "the socket to come back", func() bool { return p.Stats().Idle == 1 })
	checkPool(t, p, e.reg)
	if m := e.reg.Snapshot().Misuse; len(m) != 0 {
		t.Errorf("misuse: %+v", m)
	}
}

// TestConnectionWheelReuse runs many exchanges, each on a new wheel over
// the pooled socket, freed as soon as the reply is in: one socket serves
// them all. A reply can be handled before the wheel's writer has noted its
// write done; Free must not take that for output still pending.
func TestConnectionWheelReuse(t *testing.T) {
	e := newPoolEnv(t)
	addr := lineServer(t, echoLines)
	p := e.pool(PoolConfig{})
	k := e.kernel()
	const n = 300
	done := 0
	allocate := func(c *Context) {
		_, err := p.Allocate(c, Request{Key: keyOf(t, addr), Event: "got"})
		must(t, err)
	}
	_, err := k.Spawn(Spec{Name: "client", Handlers: map[string]Handler{
		EvStart: allocate,
		"got": func(c *Context) {
			resp := c.Arg(0).(*Response)
			must(t, resp.Err)
			w, err := resp.Conn.Start(c, WheelConfig{Input: "in"})
			must(t, err)
			must(t, w.Put([]byte("ping")))
			c.SetHeap(resp.Conn)
		},
		"in": func(c *Context) {
			must(t, HeapOf[*Connection](c).Free())
			c.SetHeap(nil)
			if done++; done < n {
				allocate(c)
			}
		},
	}})
	must(t, err)
	mustRun(t, k)
	if st := p.Stats(); st.Dialed != 1 || st.Reused != n-1 || st.Idle != 1 {
		t.Errorf("stats %+v", st)
	}
}

// TestConnectionFreeStuckOutput frees a connection whose wheel cannot write
// its output (the server does not read): after a short grace the socket is
// closed, not pooled.
func TestConnectionFreeStuckOutput(t *testing.T) {
	e := newPoolEnv(t)
	stop := make(chan struct{})
	addr := lineServer(t, func(c *net.TCPConn, r *bufio.Reader) { <-stop })
	defer close(stop)
	p := e.pool(PoolConfig{})
	k := e.kernel()
	var took time.Duration
	_, err := k.Spawn(Spec{Name: "client", Handlers: map[string]Handler{
		EvStart: func(c *Context) {
			_, err := p.Allocate(c, Request{Key: keyOf(t, addr), Event: "got"})
			must(t, err)
		},
		"got": func(c *Context) {
			resp := c.Arg(0).(*Response)
			must(t, resp.Err)
			w, err := resp.Conn.Start(c, WheelConfig{Input: "in", Framer: Raw()})
			must(t, err)
			// More than the socket buffers on both sides hold.
			must(t, w.Put(make([]byte, 32<<20)))
			c.Delay("free", 20*time.Millisecond, resp.Conn)
		},
		"free": func(c *Context) {
			start := time.Now()
			must(t, c.Arg(0).(*Connection).Free())
			took = time.Since(start)
		},
	}})
	must(t, err)
	mustRun(t, k)
	if st := p.Stats(); st.Open != 0 || st.Discarded != 1 {
		t.Errorf("stats %+v", st)
	}
	if took < outputGrace || took > 20*outputGrace {
		t.Errorf("Free took %v, want about %v", took, outputGrace)
	}
}
