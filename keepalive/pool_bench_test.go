package keepalive

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/netip"
	"sync"
	"testing"

	"github.com/leakcheck/leakcheck/tracker"
)

// benchServer starts a loopback line echo server for benchmarks; b's
// cleanup closes it once its clients are gone.
func benchServer(b *testing.B) string {
	b.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				r := bufio.NewReader(c)
				for {
					line, err := r.ReadSlice('\n')
					if err != nil {
						return
					}
					if _, err := c.Write(line); err != nil {
						return
					}
				}
			})
		}
	})
	b.Cleanup(func() {
		l.Close()
		wg.Wait()
	})
	return l.Addr().String()
}

// benchPool returns a pool on a registry with stacks off, the mode a
// production daemon runs in, shut down at cleanup.
func benchPool(b *testing.B, cfg PoolConfig) *Pool {
	b.Helper()
	cfg.Registry = tracker.New(tracker.WithStacks(tracker.StacksOff))
	p, err := NewPool(cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(p.Shutdown)
	return p
}

// slicePool is the baseline of BenchmarkPoolReuse: the plainest pool, a
// mutex and a slice of idle connections, with no limits, no health check,
// no watching and no tracking.
type slicePool struct {
	mu   sync.Mutex
	idle []net.Conn
}

func (s *slicePool) get() net.Conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.idle) == 0 {
		return nil
	}
	c := s.idle[len(s.idle)-1]
	s.idle = s.idle[:len(s.idle)-1]
	return c
}

func (s *slicePool) put(c net.Conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.idle = append(s.idle, c)
}

// BenchmarkPoolReuse measures taking a pooled socket and giving it back,
// with no I/O: the pool's Get and Free (a health check each way, the idle
// watcher stopped and started, records moved, a Connection tracked with its
// cleanups), its event API (Allocate, the response event, Free) on a
// kernel, and the baseline mutex+slice pool over the same kind of socket.
func BenchmarkPoolReuse(b *testing.B) {
	b.Run("baseline=mutex+slice", func(b *testing.B) {
		addr := benchServer(b)
		c, err := net.Dial("tcp", addr)
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		sp := &slicePool{idle: []net.Conn{c}}
		b.ReportAllocs()
		for b.Loop() {
			c := sp.get()
			if c == nil {
				b.Fatal("empty")
			}
			sp.put(c)
		}
	})
	b.Run("pool=Get+Free", func(b *testing.B) {
		addr := benchServer(b)
		p := benchPool(b, PoolConfig{})
		c, err := p.Get(context.Background(), addr)
		if err != nil {
			b.Fatal(err)
		}
		c.Free()
		ctx := context.Background()
		b.ReportAllocs()
		for b.Loop() {
			c, err := p.Get(ctx, addr)
			if err != nil {
				b.Fatal(err)
			}
			c.Free()
		}
		if st := p.Stats(); st.Dialed != 1 {
			b.Fatalf("the socket was not reused: %+v", st)
		}
	})
	b.Run("pool=Allocate+Free", func(b *testing.B) {
		addr := benchServer(b)
		reg := tracker.New(tracker.WithStacks(tracker.StacksOff))
		p, err := NewPool(PoolConfig{Registry: reg})
		if err != nil {
			b.Fatal(err)
		}
		defer p.Shutdown()
		k := NewKernel(WithRegistry(reg))
		ap, err := netip.ParseAddrPort(addr)
		if err != nil {
			b.Fatal(err)
		}
		key := Key{Address: ap.Addr().String(), Port: int(ap.Port())}
		n := 0
		_, err = k.Spawn(Spec{Name: "bench", Handlers: map[string]Handler{
			EvStart: func(c *Context) { p.Allocate(c, Request{Key: key, Event: "got"}) },
			"got": func(c *Context) {
				resp := c.Arg(0).(*Response)
				if resp.Err != nil {
					b.Error(resp.Err)
					return
				}
				resp.Conn.Free()
				if n++; n <= b.N {
					p.Allocate(c, Request{Key: key, Event: "got"})
				}
			},
		}})
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		b.ResetTimer()
		runBench(b, k)
		b.StopTimer()
		if st := p.Stats(); st.Dialed != 1 {
			b.Fatalf("the socket was not reused: %+v", st)
		}
	})
}

// BenchmarkPoolRequest measures a request and its response over loopback
// (a line each way): on a socket kept alive by the pool, against dialing a
// new connection for each request and closing it after.
func BenchmarkPoolRequest(b *testing.B) {
	msg := []byte("request over loopback\n")
	buf := make([]byte, len(msg))
	exchange := func(b *testing.B, c net.Conn) {
		if _, err := c.Write(msg); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(c, buf); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("baseline=dial-per-request", func(b *testing.B) {
		addr := benchServer(b)
		b.ReportAllocs()
		for b.Loop() {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				b.Fatal(err)
			}
			exchange(b, c)
			c.Close()
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
	})
	b.Run("pool=keepalive", func(b *testing.B) {
		addr := benchServer(b)
		p := benchPool(b, PoolConfig{})
		ctx := context.Background()
		b.ReportAllocs()
		for b.Loop() {
			c, err := p.Get(ctx, addr)
			if err != nil {
				b.Fatal(err)
			}
			exchange(b, c)
			c.Free()
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
		if st := p.Stats(); st.Dialed != 1 {
			b.Fatalf("the socket was not reused: %+v", st)
		}
	})
}
