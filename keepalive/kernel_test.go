package keepalive

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// logLifecycle returns handlers that journal every lifecycle event of a
// session, returning "<name>-start" from _start and "<name>-stop" from _stop.
func logLifecycle(j *journal, extra map[string]Handler) map[string]Handler {
	h := map[string]Handler{
		EvStart: func(c *Context) {
			j.add("%s _start %v", c.Session.Name(), c.Args)
			c.Return(c.Session.Name() + "-start")
		},
		EvStop: func(c *Context) {
			j.add("%s _stop", c.Session.Name())
			c.Return(c.Session.Name() + "-stop")
		},
		EvChild: func(c *Context) {
			op, _ := ArgOf[ChildOp](c, 0)
			child, _ := ArgOf[*Session](c, 1)
			j.add("%s _child %s %s %v", c.Session.Name(), op, child.Name(), c.Arg(2))
		},
		EvParent: func(c *Context) {
			old, _ := ArgOf[*Session](c, 0)
			cur, _ := ArgOf[*Session](c, 1)
			j.add("%s _parent %s -> %s", c.Session.Name(), name(old), name(cur))
		},
	}
	for ev, f := range extra {
		prev := h[ev]
		h[ev] = func(c *Context) {
			if prev != nil {
				prev(c)
			}
			f(c)
		}
	}
	return h
}

func TestLifecycleOrder(t *testing.T) {
	clean(t)
	k := newKernel(t)
	j := &journal{}
	grandchild := Spec{Name: "G", Handlers: logLifecycle(j, map[string]Handler{
		EvStart: func(c *Context) { c.Delay("tick", 30*time.Millisecond) },
		"tick":  func(c *Context) { j.add("G tick") },
	})}
	child := Spec{Name: "A", Args: []any{"x"}, Handlers: logLifecycle(j, map[string]Handler{
		EvStart: func(c *Context) {
			if _, err := c.Spawn(grandchild); err != nil {
				t.Error(err)
			}
			c.Delay("quit", time.Millisecond)
		},
		"quit": func(c *Context) {
			j.add("A quit")
			must(t, c.Stop())
		},
	})}
	_, err := k.Spawn(Spec{Name: "P", Handlers: logLifecycle(j, map[string]Handler{
		EvStart: func(c *Context) {
			if _, err := c.Spawn(child); err != nil {
				t.Error(err)
			}
		},
	})})
	must(t, err)
	mustRun(t, k)
	j.want(t,
		"P _start []",
		"A _start [x]",
		"G _start []",
		"A _child create G G-start",
		"P _child create A A-start",
		"A quit",
		// A is stopped while G is alive: G goes to its grandparent first,
		// then A gets _stop, then its parent learns it lost A.
		"P _child gain G <nil>",
		"G _parent A -> P",
		"A _stop",
		"P _child lose A A-stop",
		"G tick",
		"G _stop",
		"P _child lose G G-stop",
		"P _stop",
	)
	st := k.Stats()
	if st.Started != 3 || st.Stopped != 3 || st.Sessions != 0 {
		t.Errorf("stats %+v", st)
	}
}

func TestReparentingUpdatesTracker(t *testing.T) {
	clean(t)
	k := newKernel(t)
	var p *Session
	checked := false
	_, err := k.Spawn(Spec{Name: "P", Handlers: map[string]Handler{
		EvStart: func(c *Context) {
			p = c.Session
			c.Spawn(Spec{Name: "A", Handlers: map[string]Handler{
				EvStart: func(c *Context) {
					c.Spawn(Spec{Name: "G", Handlers: map[string]Handler{
						EvStart: func(c *Context) {
							if c.Session.Tracker().Parent() != c.Session.Parent().Tracker() {
								t.Error("G's tracker session is not under A's")
							}
							c.Delay("check", 10*time.Millisecond)
						},
						"check": func(c *Context) {
							checked = true
							if c.Session.Parent() != p {
								t.Errorf("G's parent is %v, want P", c.Session.Parent())
							}
							if c.Session.Tracker().Parent() != p.Tracker() {
								t.Error("G's tracker session did not move under P's")
							}
							if got := p.Children(); len(got) != 1 || got[0] != c.Session {
								t.Errorf("P's children: %v", got)
							}
						},
					}})
					c.Stop()
				},
			}})
		},
	}})
	must(t, err)
	mustRun(t, k)
	if !checked {
		t.Error("G never checked")
	}
}

func TestSessionWithNothingStopsAfterStart(t *testing.T) {
	clean(t)
	k := newKernel(t)
	j := &journal{}
	_, err := k.Spawn(Spec{Name: "S", Handlers: logLifecycle(j, nil)})
	must(t, err)
	mustRun(t, k)
	j.want(t, "S _start []", "S _stop")
}

func TestRefcountRules(t *testing.T) {
	clean(t)
	k := newKernel(t)
	j := &journal{}
	_, err := k.Spawn(Spec{Name: "svc", Handlers: logLifecycle(j, map[string]Handler{
		EvStart: func(c *Context) {
			must(t, c.SetAlias("svc"))
			if n, err := c.RefcountIncrement("hold"); n != 1 || err != nil {
				t.Errorf("RefcountIncrement = %d, %v", n, err)
			}
		},
		"ping": func(c *Context) {
			j.add("svc ping from %s", name(c.Sender))
			must(t, c.Post(c.Sender, "pong"))
		},
		"done": func(c *Context) {
			j.add("svc done")
			if n, err := c.RefcountDecrement("hold"); n != 0 || err != nil {
				t.Errorf("RefcountDecrement = %d, %v", n, err)
			}
			if _, err := c.RefcountDecrement("hold"); !errors.Is(err, ErrRefcount) {
				t.Errorf("decrement below zero: %v", err)
			}
		},
	})})
	must(t, err)
	_, err = k.Spawn(Spec{Name: "P", Handlers: logLifecycle(j, map[string]Handler{
		// P holds nothing but the event it sent: that keeps it alive.
		EvStart: func(c *Context) { must(t, c.Post("svc", "ping")) },
		"pong": func(c *Context) {
			j.add("P pong")
			must(t, c.Post("svc", "done"))
		},
	})})
	must(t, err)
	mustRun(t, k)
	j.want(t,
		"svc _start []",
		"P _start []",
		"svc ping from P",
		"P pong",
		"svc done",
		"P _stop",   // its last sent event was handled
		"svc _stop", // alias-only, and nothing else could post to it
	)
}

func TestAliasOnlySessionsAreCollected(t *testing.T) {
	clean(t)
	k := newKernel(t)
	j := &journal{}
	// A parent kept alive only by its child, which is kept alive only by
	// an alias, and a client that posts to the alias for a while.
	_, err := k.Spawn(Spec{Name: "parent", Handlers: logLifecycle(j, map[string]Handler{
		EvStart: func(c *Context) {
			c.Spawn(Spec{Name: "svc", Handlers: logLifecycle(j, map[string]Handler{
				EvStart: func(c *Context) { must(t, c.SetAlias("svc")) },
				"req":   func(c *Context) { j.add("svc req %v", c.Arg(0)) },
			})})
		},
	})})
	must(t, err)
	_, err = k.Spawn(Spec{Name: "client", Heap: new(int), Handlers: logLifecycle(j, map[string]Handler{
		EvStart: func(c *Context) { c.Delay("tick", time.Millisecond) },
		"tick": func(c *Context) {
			n := HeapOf[*int](c)
			*n++
			must(t, c.Post("svc", "req", *n))
			if *n < 3 {
				c.Delay("tick", time.Millisecond)
			}
		},
	})})
	must(t, err)
	mustRun(t, k)
	j.want(t,
		"parent _start []",
		"svc _start []",
		"parent _child create svc svc-start",
		"client _start []",
		"svc req 1",
		"svc req 2",
		"svc req 3",
		"client _stop",
		"svc _stop",
		"parent _child lose svc svc-stop",
		"parent _stop",
	)
}

func TestErrors(t *testing.T) {
	clean(t)
	k := newKernel(t)
	var stopped *Session
	_, err := k.Spawn(Spec{Name: "a", Handlers: map[string]Handler{
		EvStart: func(c *Context) {
			must(t, c.SetAlias("a"))
			stopped, _ = c.Spawn(Spec{Name: "short"})
			c.Yield("next")
		},
		"next": func(c *Context) {
			if err := c.Post("nobody", "x"); !errors.Is(err, ErrNoSession) {
				t.Errorf("post to unknown alias: %v", err)
			}
			if err := c.Post(stopped, "x"); !errors.Is(err, ErrSessionStopped) {
				t.Errorf("post to stopped session: %v", err)
			}
			if err := c.Post(42, "x"); !errors.Is(err, ErrNoSession) {
				t.Errorf("post to an int: %v", err)
			}
			if err := c.Post(SessionID(1<<40), "x"); !errors.Is(err, ErrNoSession) {
				t.Errorf("post to unknown id: %v", err)
			}
			if _, err := c.Call(c.Session, "missing"); !errors.Is(err, ErrNoHandler) {
				t.Errorf("call without handler: %v", err)
			}
			if v, err := c.Call(c.Session, "answer", 2); v != 42 || err != nil {
				t.Errorf("call = %v, %v", v, err)
			}
			if err := c.RemoveAlias("nope"); !errors.Is(err, ErrNoAlias) {
				t.Errorf("remove alias not held: %v", err)
			}
			c.Spawn(Spec{Name: "b", Handlers: map[string]Handler{
				EvStart: func(c *Context) {
					if err := c.SetAlias("a"); !errors.Is(err, ErrAliasInUse) {
						t.Errorf("alias held by another: %v", err)
					}
				},
			}})
			must(t, c.RemoveAlias("a"))
		},
		"answer": func(c *Context) { c.Return(c.Arg(0).(int) * 21) },
	}})
	must(t, err)
	mustRun(t, k)
	if err := k.Post("a", "x"); !errors.Is(err, ErrKernelStopped) {
		t.Errorf("post after Run: %v", err)
	}
	if _, err := k.Spawn(Spec{}); !errors.Is(err, ErrKernelStopped) {
		t.Errorf("spawn after Run: %v", err)
	}
	if _, err := k.Run(context.Background()); !errors.Is(err, ErrKernelRan) {
		t.Errorf("second Run: %v", err)
	}
}

func TestDefaultHandler(t *testing.T) {
	clean(t)
	k := newKernel(t)
	j := &journal{}
	_, err := k.Spawn(Spec{Name: "d",
		Handlers: map[string]Handler{EvStart: func(c *Context) { c.Yield("odd", 1) }},
		Default:  func(c *Context) { j.add("default %s %v", c.Event, c.Args) },
	})
	must(t, err)
	mustRun(t, k)
	j.want(t, "default odd [1]", "default _stop []")
}

func TestCrossGoroutinePost(t *testing.T) {
	clean(t)
	k := newKernel(t)
	const n = 2000
	got := 0
	s, err := k.Spawn(Spec{Name: "sink", Handlers: map[string]Handler{
		"n": func(c *Context) { got++ },
		"bye": func(c *Context) {
			if c.Sender != nil {
				t.Errorf("outside post has sender %v", c.Sender)
			}
			c.RefcountDecrement("feeders")
		},
	}})
	must(t, err)
	// Outside code keeps the session alive while it may post.
	var wg sync.WaitGroup
	for range 4 {
		if _, err := k.RefcountIncrement(s, "feeders"); err != nil {
			t.Fatal(err)
		}
		wg.Go(func() {
			for range n / 4 {
				if err := k.Post(s, "n"); err != nil {
					t.Error(err)
					return
				}
			}
			time.Sleep(time.Millisecond) // the loop sleeps meanwhile; posting wakes it
			k.Post(s, "bye")
		})
	}
	mustRun(t, k)
	wg.Wait()
	if got != n {
		t.Errorf("handled %d of %d events", got, n)
	}
}

func TestKernelCallFromOutside(t *testing.T) {
	clean(t)
	k := newKernel(t)
	s, err := k.Spawn(Spec{Name: "svc", Heap: map[string]int{}, Handlers: map[string]Handler{
		EvStart: func(c *Context) { c.RefcountIncrement("open") },
		"add": func(c *Context) {
			m := HeapOf[map[string]int](c)
			m["x"] += c.Arg(0).(int)
			c.Return(m["x"])
		},
		"close": func(c *Context) { c.RefcountDecrement("open") },
	}})
	must(t, err)
	done := make(chan struct{})
	go func() {
		defer close(done)
		ctx := context.Background()
		for i := 1; i <= 3; i++ {
			v, err := k.Call(ctx, s, "add", i)
			if err != nil {
				t.Error(err)
			}
			if want := i * (i + 1) / 2; v != want {
				t.Errorf("call %d = %v, want %d", i, v, want)
			}
		}
		if _, err := k.Call(ctx, s, "nothing"); !errors.Is(err, ErrNoHandler) {
			t.Errorf("call without handler: %v", err)
		}
		k.Post(s, "close")
	}()
	mustRun(t, k)
	<-done
}

func TestRunEndsWithContext(t *testing.T) {
	clean(t)
	k := newKernel(t)
	j := &journal{}
	_, err := k.Spawn(Spec{Name: "forever", Handlers: logLifecycle(j, map[string]Handler{
		EvStart: func(c *Context) {
			c.Delay("never", time.Hour)
			c.Spawn(Spec{Name: "kid", Handlers: logLifecycle(j, map[string]Handler{
				EvStart: func(c *Context) { c.RefcountIncrement("stuck") },
			})})
		},
	})})
	must(t, err)
	rep, err := run(t, k, 50*time.Millisecond)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Run: %v", err)
	}
	if !rep.Forced || rep.Alive != 2 {
		t.Errorf("report: forced %v alive %d", rep.Forced, rep.Alive)
	}
	// Children stop before their parents, each with its _stop.
	j.want(t,
		"forever _start []",
		"kid _start []",
		"forever _child create kid kid-start",
		"kid _stop",
		"forever _child lose kid kid-stop",
		"forever _stop",
	)
}

func TestHandlerPanicClosesEverything(t *testing.T) {
	clean(t)
	k := newKernel(t)
	_, err := k.Spawn(Spec{Name: "boom", Handlers: map[string]Handler{
		EvStart: func(c *Context) {
			a, b := pipePair(t)
			_ = b
			if _, err := c.NewWheel(a, WheelConfig{Input: "in"}); err != nil {
				t.Fatal(err)
			}
			c.Yield("boom")
		},
		"boom": func(c *Context) { panic("boom") },
	}})
	must(t, err)
	func() {
		defer func() {
			if p := recover(); p != "boom" {
				t.Errorf("recovered %v", p)
			}
		}()
		k.Run(context.Background())
	}()
}
