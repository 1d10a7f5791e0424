package keepalive

import (
	"bytes"
	"errors"
	"io"
	"net"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/leakcheck/leakcheck/tracker"
)

// server starts a loopback TCP server that runs handle, in its own goroutine,
// for each connection it accepts, and returns its address. Cleanup closes
// the listener and waits for the handlers.
func server(t *testing.T, handle func(c *net.TCPConn)) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
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
				handle(c.(*net.TCPConn))
			})
		}
	})
	t.Cleanup(func() {
		l.Close()
		wg.Wait()
	})
	return l.Addr().String()
}

// echo copies c's input back to it without splice(2), whose pooled pipes
// would stay open after the test.
func echo(c *net.TCPConn) {
	io.Copy(struct{ io.Writer }{c}, struct{ io.Reader }{c})
}

// pipePair returns both ends of a loopback TCP connection; the second is
// closed at cleanup.
func pipePair(t *testing.T) (net.Conn, net.Conn) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	a, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	b, err := l.Accept()
	if err != nil {
		a.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return a, b
}

// client spawns a session that dials addr in _start, starts a wheel with cfg
// (Input "in", Error "err" unless set) and runs the given handlers; the
// wheel is in the heap as *Wheel.
func client(t *testing.T, k *Kernel, addr string, cfg WheelConfig, handlers map[string]Handler, start func(c *Context, w *Wheel)) {
	t.Helper()
	if cfg.Input == "" {
		cfg.Input = "in"
	}
	if cfg.Error == "" {
		cfg.Error = "err"
	}
	h := map[string]Handler{
		EvStart: func(c *Context) {
			conn, err := c.Kernel.Registry().Dial(t.Context(), c.Session.Tracker(), "tcp", addr)
			if err != nil {
				t.Error(err)
				return
			}
			w, err := c.NewWheel(conn, cfg)
			if err != nil {
				conn.Close()
				t.Error(err)
				return
			}
			c.SetHeap(w)
			if start != nil {
				start(c, w)
			}
		},
	}
	for ev, f := range handlers {
		h[ev] = f
	}
	if _, err := k.Spawn(Spec{Name: "client", Handlers: h}); err != nil {
		t.Fatal(err)
	}
}

func TestWheelEchoLines(t *testing.T) {
	clean(t)
	addr := server(t, func(c *net.TCPConn) { echo(c) })
	k := newKernel(t)
	j := &journal{}
	client(t, k, addr, WheelConfig{Flushed: "flushed"}, map[string]Handler{
		"in": func(c *Context) {
			j.add("in %s", c.Arg(0))
			if string(c.Arg(0).([]byte)) == "world" {
				must(t, HeapOf[*Wheel](c).ShutdownOutput())
			}
		},
		"flushed": func(c *Context) {},
		"err": func(c *Context) {
			op, _ := ArgOf[string](c, 0)
			err, _ := ArgOf[error](c, 1)
			id, _ := ArgOf[WheelID](c, 2)
			w := HeapOf[*Wheel](c)
			if id != w.ID() {
				t.Errorf("error event for wheel %d, want %d", id, w.ID())
			}
			j.add("err %s %v", op, err)
			must(t, w.Close())
			if err := w.Close(); !errors.Is(err, ErrWheelClosed) {
				t.Errorf("second Close: %v", err)
			}
		},
	}, func(c *Context, w *Wheel) {
		must(t, w.Put([]byte("hello"), []byte("world")))
	})
	mustRun(t, k)
	j.want(t, "in hello", "in world", "err read EOF")
}

func TestWheelPeerClose(t *testing.T) {
	clean(t)
	addr := server(t, func(c *net.TCPConn) { c.Write([]byte("bye\r\nlast")) })
	k := newKernel(t)
	j := &journal{}
	client(t, k, addr, WheelConfig{}, map[string]Handler{
		"in": func(c *Context) { j.add("in %q", c.Arg(0)) },
		"err": func(c *Context) {
			err := c.Arg(1).(error)
			j.add("err %s eof=%v", c.Arg(0), err == io.EOF)
			HeapOf[*Wheel](c).Close()
		},
	}, nil)
	mustRun(t, k)
	j.want(t, `in "bye"`, `in "last"`, "err read eof=true")
}

func TestWheelReset(t *testing.T) {
	clean(t)
	addr := server(t, func(c *net.TCPConn) {
		buf := make([]byte, 16)
		c.Read(buf) // wait for the client's line
		c.SetLinger(0)
		c.Close() // RST
	})
	k := newKernel(t)
	j := &journal{}
	client(t, k, addr, WheelConfig{}, map[string]Handler{
		"err": func(c *Context) {
			op, err := c.Arg(0).(string), c.Arg(1).(error)
			w := HeapOf[*Wheel](c)
			switch op {
			case "read":
				j.add("read reset=%v", errors.Is(err, syscall.ECONNRESET))
				// Writing to a reset connection fails too.
				if err := w.Put([]byte("more")); err != nil {
					t.Errorf("Put before the write failed: %v", err)
				}
			case "write":
				j.add("write failed=%v", errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET))
				if err := w.Put([]byte("again")); err == nil {
					t.Error("Put after a failed write succeeded")
				}
				w.Close()
			}
		},
	}, func(c *Context, w *Wheel) { w.Put([]byte("hi")) })
	mustRun(t, k)
	j.want(t, "read reset=true", "write failed=true")
}

func TestWheelSlowReaderWaterMarks(t *testing.T) {
	clean(t)
	const high, low, chunk = 256 << 10, 32 << 10, 64 << 10
	start := make(chan struct{})
	received := make(chan int64, 1)
	addr := server(t, func(c *net.TCPConn) {
		<-start // a slow reader: nothing until the client is above its high mark
		n, _ := io.Copy(io.Discard, struct{ io.Reader }{c})
		received <- n
	})
	k := newKernel(t)
	j := &journal{}
	var sent int64
	var startOnce sync.Once
	defer startOnce.Do(func() { close(start) })
	seenLow := false
	client(t, k, addr, WheelConfig{Framer: Raw(), High: "high", Low: "low", HighMark: high, LowMark: low, Flushed: "flushed"},
		map[string]Handler{
			// A steady producer: the wheel's buffer only grows once the
			// peer's socket buffers are full.
			"fill": func(c *Context) {
				w := HeapOf[*Wheel](c)
				if sent > 512<<20 {
					t.Error("high water mark never reached")
					w.Close()
					return
				}
				must(t, w.Put(make([]byte, chunk)))
				sent += chunk
				c.Delay("fill", 200*time.Microsecond)
			},
			"high": func(c *Context) {
				j.add("high")
				w := HeapOf[*Wheel](c)
				if b := w.Buffered(); b < high {
					t.Errorf("high event with %d bytes buffered", b)
				}
				// Usually the peer's socket took some before the wheel's
				// buffer filled; on a loaded machine the writer may not have
				// run yet, which is fine too.
				t.Logf("high water after %d bytes, %d buffered in the wheel", sent, w.Buffered())
				c.RemoveAllTimers() // stop producing; let the reader catch up
				startOnce.Do(func() { close(start) })
			},
			"low": func(c *Context) { j.add("low"); seenLow = true },
			"flushed": func(c *Context) {
				if seenLow {
					j.add("flushed")
					must(t, HeapOf[*Wheel](c).ShutdownOutput())
				}
			},
			"err": func(c *Context) {
				if c.Arg(0) != "read" || c.Arg(1) != io.EOF {
					t.Errorf("wheel error %v %v", c.Arg(0), c.Arg(1))
				}
				HeapOf[*Wheel](c).Close()
			},
		},
		func(c *Context, w *Wheel) {
			w.rw.(*tracker.Conn).Conn.(*net.TCPConn).SetWriteBuffer(16 << 10)
			c.Yield("fill")
		})
	mustRun(t, k)
	j.want(t, "high", "low", "flushed")
	if n := <-received; n != sent {
		t.Errorf("server received %d of %d bytes", n, sent)
	}
}

func TestWheelFramingsThroughAcceptor(t *testing.T) {
	clean(t)
	for _, tc := range []struct {
		name    string
		framer  Framer
		records [][]byte
	}{
		{"lines", Lines(), [][]byte{[]byte("one"), []byte(""), bytes.Repeat([]byte("x"), 100_000)}},
		{"length-prefixed", LengthPrefixed(0), [][]byte{[]byte("one"), {}, bytes.Repeat([]byte{0, '\n'}, 50_000)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := newKernel(t)
			var got [][]byte
			var addr string
			ready := make(chan struct{})
			// The server echoes each record on the same wheel, and stops
			// accepting after one connection.
			_, err := k.Spawn(Spec{Name: "server", Heap: map[WheelID]*Wheel{}, Handlers: map[string]Handler{
				EvStart: func(c *Context) {
					l, err := net.Listen("tcp", "127.0.0.1:0")
					if err != nil {
						t.Fatal(err)
					}
					a, err := c.Listen(l, AcceptorConfig{Accept: "conn", Error: "acceptErr"})
					if err != nil {
						t.Fatal(err)
					}
					addr = a.Addr().String()
					close(ready)
					c.On("conn", func(c *Context) {
						conn := c.Arg(0).(net.Conn)
						if _, ok := conn.(*tracker.Conn); !ok {
							t.Errorf("accepted %T, want *tracker.Conn", conn)
						}
						a.Close()
						w, err := c.NewWheel(conn, WheelConfig{Input: "rec", Error: "err", Framer: tc.framer})
						if err != nil {
							t.Fatal(err)
						}
						HeapOf[map[WheelID]*Wheel](c)[w.ID()] = w
					})
				},
				"rec": func(c *Context) {
					HeapOf[map[WheelID]*Wheel](c)[c.Arg(1).(WheelID)].Put(c.Arg(0).([]byte))
				},
				"err": func(c *Context) {
					id := c.Arg(2).(WheelID)
					ws := HeapOf[map[WheelID]*Wheel](c)
					ws[id].Close()
					delete(ws, id)
				},
			}})
			must(t, err)
			// Spawn the client once the server listens: from a goroutine,
			// while the kernel runs.
			go func() {
				<-ready
				client(t, k, addr, WheelConfig{Framer: tc.framer}, map[string]Handler{
					"in": func(c *Context) {
						got = append(got, c.Arg(0).([]byte))
						if len(got) == len(tc.records) {
							HeapOf[*Wheel](c).Close()
						}
					},
					"err": func(c *Context) { t.Errorf("client error %v %v", c.Arg(0), c.Arg(1)); HeapOf[*Wheel](c).Close() },
				}, func(c *Context, w *Wheel) { must(t, w.Put(tc.records...)) })
			}()
			mustRun(t, k)
			if len(got) != len(tc.records) {
				t.Fatalf("got %d records, want %d", len(got), len(tc.records))
			}
			for i := range got {
				if !bytes.Equal(got[i], tc.records[i]) {
					t.Errorf("record %d: got %d bytes, want %d", i, len(got[i]), len(tc.records[i]))
				}
			}
		})
	}
}

func TestWheelPauseResume(t *testing.T) {
	clean(t)
	addr := server(t, func(c *net.TCPConn) {
		c.Write([]byte("1\n2\n"))
		time.Sleep(10 * time.Millisecond)
		c.Write([]byte("3\n4\n5\n"))
	})
	k := newKernel(t)
	j := &journal{}
	client(t, k, addr, WheelConfig{}, map[string]Handler{
		"in": func(c *Context) {
			j.add("in %s", c.Arg(0))
			if string(c.Arg(0).([]byte)) == "2" {
				// Lines 3-5 arrive meanwhile, and wait for ResumeInput.
				HeapOf[*Wheel](c).PauseInput()
				c.Delay("resume", 100*time.Millisecond)
			}
		},
		"resume": func(c *Context) { j.add("resume"); HeapOf[*Wheel](c).ResumeInput() },
		"err":    func(c *Context) { j.add("err %v", c.Arg(1)); HeapOf[*Wheel](c).Close() },
	}, nil)
	mustRun(t, k)
	j.want(t, "in 1", "in 2", "resume", "in 3", "in 4", "in 5", "err EOF")
}

func TestWheelDetach(t *testing.T) {
	clean(t)
	addr := server(t, func(c *net.TCPConn) {
		c.Write([]byte("a\nb"))
		buf := make([]byte, 2)
		if _, err := io.ReadFull(c, buf); err == nil {
			c.Write(buf) // echo what the detached conn writes
		}
	})
	k := newKernel(t)
	done := false
	client(t, k, addr, WheelConfig{}, map[string]Handler{
		"in": func(c *Context) {
			if string(c.Arg(0).([]byte)) != "a" {
				t.Errorf("record %q", c.Arg(0))
			}
			c.Delay("detach", 20*time.Millisecond) // "b" is read but not a record
		},
		"detach": func(c *Context) {
			w := HeapOf[*Wheel](c)
			rw, err := w.Detach()
			if err != nil {
				t.Fatal(err)
			}
			defer rw.Close()
			if err := w.Put([]byte("y")); !errors.Is(err, ErrWheelClosed) {
				t.Errorf("Put after Detach: %v", err)
			}
			// Hand the socket's record to the kernel's own session, as a
			// pool takes a connection back.
			sock := w.Handle()
			must(t, sock.Move(c.Kernel.Tracker()))
			if !sock.Live() || sock.Owner() != c.Kernel.Tracker() {
				t.Error("the detached socket's record is not live under the kernel")
			}
			// The connection still works and returns the unread "b" first.
			rw.(net.Conn).SetDeadline(time.Now().Add(5 * time.Second))
			buf := make([]byte, 2)
			if _, err := io.ReadFull(rw, buf[:1]); err != nil || buf[0] != 'b' {
				t.Fatalf("first read after Detach: %q, %v", buf[:1], err)
			}
			if _, err := rw.Write([]byte("zz")); err != nil {
				t.Fatal(err)
			}
			if _, err := io.ReadFull(rw, buf); err != nil || string(buf) != "zz" {
				t.Fatalf("echo after Detach: %q, %v", buf, err)
			}
			must(t, rw.Close())
			if sock.Live() {
				t.Error("closing the detached connection did not release its record")
			}
			done = true
		},
		"err": func(c *Context) { t.Errorf("error %v %v", c.Arg(0), c.Arg(1)) },
	}, nil)
	mustRun(t, k)
	if !done {
		t.Fatal("never detached")
	}
}

// pipeRWC is a ReadWriteCloser without deadlines.
type pipeRWC struct {
	*io.PipeReader
	*io.PipeWriter
}

func (p pipeRWC) Close() error {
	p.PipeReader.Close()
	return p.PipeWriter.Close()
}

func TestWheelDetachRefusals(t *testing.T) {
	clean(t)
	k := newKernel(t)
	a, b := pipePair(t)
	_, err := k.Spawn(Spec{Name: "s", Handlers: map[string]Handler{
		EvStart: func(c *Context) {
			r, w := io.Pipe()
			pw, err := c.NewWheel(pipeRWC{r, w}, WheelConfig{Input: "in"})
			must(t, err)
			if _, err := pw.Detach(); !errors.Is(err, ErrCannotDetach) {
				t.Errorf("Detach without deadlines: %v", err)
			}
			must(t, pw.Close())

			tw, err := c.NewWheel(a, WheelConfig{Input: "in"})
			must(t, err)
			must(t, tw.ShutdownInput())
			if _, err := tw.Detach(); !errors.Is(err, ErrCannotDetach) {
				t.Errorf("Detach after ShutdownInput: %v", err)
			}
			must(t, tw.Close())
			if _, err := tw.Detach(); !errors.Is(err, ErrWheelClosed) {
				t.Errorf("Detach after Close: %v", err)
			}
		},
	}})
	must(t, err)
	mustRun(t, k)
	_ = b
}
