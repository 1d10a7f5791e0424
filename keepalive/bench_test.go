package keepalive

import (
	"context"
	"math/rand/v2"
	"net"
	"testing"
	"time"

	"github.com/leakcheck/leakcheck/tracker"
)

// benchKernel returns a kernel on a registry with stacks off, the mode a
// production daemon runs in.
func benchKernel(opts ...Option) *Kernel {
	reg := tracker.New(tracker.WithStacks(tracker.StacksOff))
	return NewKernel(append([]Option{WithRegistry(reg)}, opts...)...)
}

func runBench(b *testing.B, k *Kernel) {
	b.Helper()
	rep, err := k.Run(context.Background())
	if err != nil || rep.Len() != 0 {
		b.Fatalf("Run: %v\n%s", err, rep)
	}
}

// BenchmarkDispatch measures events posted and handled per second through
// one kernel, with event tracking on and off (stacks off): a session yielding
// to itself with one event in flight ("chain") or 100 ("burst"), and two
// sessions posting one event back and forth ("pingpong").
func BenchmarkDispatch(b *testing.B) {
	for _, shape := range []string{"chain", "burst", "pingpong"} {
		for _, tracked := range []bool{true, false} {
			name := shape + "/tracked"
			if !tracked {
				name = shape + "/untracked"
			}
			b.Run(name, func(b *testing.B) {
				k := benchKernel(WithEventTracking(tracked))
				n, posted := 0, 0
				burst := 1
				if shape == "burst" {
					burst = 100
				}
				post := func(c *Context, to *Session) {
					for i := 0; i < burst && posted < b.N; i++ {
						c.Post(to, "tick")
						posted++
					}
				}
				tick := func(c *Context) {
					n++
					if n == posted {
						to := c.Session
						if shape == "pingpong" {
							to = c.Sender
						}
						post(c, to)
					}
				}
				_, err := k.Spawn(Spec{Name: "bench", Handlers: map[string]Handler{
					EvStart: func(c *Context) {
						to := c.Session
						if shape == "pingpong" {
							to, _ = c.Spawn(Spec{Name: "peer", Handlers: map[string]Handler{"tick": tick}})
						}
						post(c, to)
					},
					"tick": tick,
				}})
				if err != nil {
					b.Fatal(err)
				}
				b.ReportAllocs()
				b.ResetTimer()
				runBench(b, k)
				b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "events/s")
			})
		}
	}
}

// BenchmarkTimers measures timers scheduled and fired per second while
// 100,000 other timers are pending: each round sets a batch of 1000 alarms
// at random times in the last millisecond, which all fire at once.
func BenchmarkTimers(b *testing.B) {
	const pending, batch = 100_000, 1000
	k := benchKernel()
	fired, set := 0, 0
	schedule := func(c *Context) {
		now := time.Now()
		for i := 0; i < batch && set < b.N; i++ {
			c.Alarm("tick", now.Add(-time.Duration(rand.N(1000))*time.Microsecond))
			set++
		}
	}
	_, err := k.Spawn(Spec{Name: "bench", Handlers: map[string]Handler{
		EvStart: func(c *Context) {
			for range pending {
				c.Delay("ballast", time.Hour+time.Duration(rand.N(int64(time.Hour))))
			}
			c.Yield("go")
		},
		"go": func(c *Context) {
			b.ResetTimer()
			schedule(c)
		},
		"tick": func(c *Context) {
			fired++
			if fired == set {
				if set < b.N {
					schedule(c)
					return
				}
				b.StopTimer()
				if st := c.Kernel.Stats(); st.Timers != pending {
					b.Errorf("%d timers pending, want %d", st.Timers, pending)
				}
				c.RemoveAllTimers()
			}
		},
	}})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	runBench(b, k)
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "timers/s")
}

// BenchmarkWheelEcho measures line messages per second echoed over loopback
// TCP, both ends wheels in one kernel: one message in flight ("window-1", a
// round trip each) or 64 ("window-64").
func BenchmarkWheelEcho(b *testing.B) {
	for _, window := range []int{1, 64} {
		b.Run("window-"+itoa(window), func(b *testing.B) {
			k := benchKernel()
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			_, err = k.Spawn(Spec{Name: "server", Handlers: map[string]Handler{
				EvStart: func(c *Context) {
					a, err := c.Listen(l, AcceptorConfig{Accept: "conn"})
					if err != nil {
						b.Fatal(err)
					}
					c.On("conn", func(c *Context) {
						a.Close()
						w, err := c.NewWheel(c.Arg(0).(net.Conn), WheelConfig{Input: "line", Error: "err"})
						if err != nil {
							b.Fatal(err)
						}
						c.SetHeap(w)
					})
				},
				"line": func(c *Context) { HeapOf[*Wheel](c).Put(c.Arg(0).([]byte)) },
				"err":  func(c *Context) { HeapOf[*Wheel](c).Close() },
			}})
			if err != nil {
				b.Fatal(err)
			}
			msg := []byte("the quick brown fox jumps over the lazy dog")
			sent, got := 0, 0
			_, err = k.Spawn(Spec{Name: "client", Handlers: map[string]Handler{
				EvStart: func(c *Context) {
					conn, err := net.Dial("tcp", l.Addr().String())
					if err != nil {
						b.Fatal(err)
					}
					w, err := c.NewWheel(conn, WheelConfig{Input: "echo", Error: "err"})
					if err != nil {
						b.Fatal(err)
					}
					c.SetHeap(w)
					b.ResetTimer()
					for ; sent < window && sent < b.N; sent++ {
						w.Put(msg)
					}
				},
				"echo": func(c *Context) {
					got++
					w := HeapOf[*Wheel](c)
					if got == b.N {
						b.StopTimer()
						w.Close()
						return
					}
					if sent < b.N {
						w.Put(msg)
						sent++
					}
				},
				"err": func(c *Context) { b.Errorf("client: %v %v", c.Arg(0), c.Arg(1)); HeapOf[*Wheel](c).Close() },
			}})
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			runBench(b, k)
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
		})
	}
}

func itoa(n int) string {
	if n < 10 {
		return string(rune('0' + n))
	}
	return itoa(n/10) + string(rune('0'+n%10))
}
