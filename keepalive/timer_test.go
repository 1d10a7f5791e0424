package keepalive

import (
	"math/rand/v2"
	"testing"
	"time"
)

func TestDelayAndAlarmOrder(t *testing.T) {
	clean(t)
	k := newKernel(t)
	j := &journal{}
	due := map[string]time.Time{}
	fired := func(c *Context) {
		if now := time.Now(); now.Before(due[c.Event]) {
			t.Errorf("%s fired %v early", c.Event, due[c.Event].Sub(now))
		}
		if c.Sender != c.Session {
			t.Errorf("timer sender %v", c.Sender)
		}
		j.add("%s %v", c.Event, c.Args)
	}
	_, err := k.Spawn(Spec{Name: "timers", Handlers: map[string]Handler{
		EvStart: func(c *Context) {
			now := time.Now()
			due["c"] = now.Add(30 * time.Millisecond)
			due["a"] = now.Add(10 * time.Millisecond)
			due["b"] = now.Add(20 * time.Millisecond)
			c.Delay("c", 30*time.Millisecond, 3)
			c.Delay("a", 10*time.Millisecond, 1)
			c.Alarm("b", due["b"], 2)
			c.Alarm("past", now.Add(-time.Hour), 0)
			c.Delay("same", 10*time.Millisecond, "first")
			c.Delay("same", 10*time.Millisecond, "second")
		},
		"a": fired, "b": fired, "c": fired, "past": fired, "same": fired,
	}})
	must(t, err)
	mustRun(t, k)
	j.want(t, "past [0]", "a [1]", "same [first]", "same [second]", "b [2]", "c [3]")
}

func TestRemoveTimer(t *testing.T) {
	clean(t)
	k := newKernel(t)
	j := &journal{}
	var other TimerID
	_, err := k.Spawn(Spec{Name: "owner", Handlers: map[string]Handler{
		EvStart: func(c *Context) {
			other = c.Delay("mine", 5*time.Millisecond)
		},
		"mine": func(c *Context) { j.add("mine") },
	}})
	must(t, err)
	var started time.Time
	_, err = k.Spawn(Spec{Name: "remover", Handlers: map[string]Handler{
		EvStart: func(c *Context) {
			started = time.Now()
			id := c.Delay("never", 200*time.Millisecond)
			if id == 0 {
				t.Fatal("Delay returned 0")
			}
			if !c.Remove(id) {
				t.Error("Remove of a pending timer returned false")
			}
			if c.Remove(id) {
				t.Error("second Remove returned true")
			}
			if c.Remove(other) {
				t.Error("removed another session's timer")
			}
			if c.Adjust(other, time.Hour) {
				t.Error("adjusted another session's timer")
			}
			c.Delay("never", time.Hour)
			c.Delay("never", time.Hour)
			if n := c.RemoveAllTimers(); n != 2 {
				t.Errorf("RemoveAllTimers = %d", n)
			}
		},
		"never": func(c *Context) { j.add("never") },
		EvStop: func(c *Context) {
			if d := time.Since(started); d > 100*time.Millisecond {
				t.Errorf("a session without timers stopped after %v", d)
			}
		},
	}})
	must(t, err)
	mustRun(t, k)
	j.want(t, "mine")
}

func TestAdjustTimer(t *testing.T) {
	clean(t)
	k := newKernel(t)
	j := &journal{}
	_, err := k.Spawn(Spec{Name: "adjust", Handlers: map[string]Handler{
		EvStart: func(c *Context) {
			c.Delay("middle", 20*time.Millisecond)
			early := c.Delay("early", time.Hour)
			late := c.Delay("late", time.Millisecond)
			before, _ := c.When(early)
			if !c.Adjust(early, -time.Hour+5*time.Millisecond) || !c.Adjust(late, 40*time.Millisecond) {
				t.Fatal("Adjust of pending timers failed")
			}
			if after, ok := c.When(early); !ok || before.Sub(after) != time.Hour-5*time.Millisecond {
				t.Errorf("When after Adjust moved %v", before.Sub(after))
			}
			if c.Adjust(0, time.Second) {
				t.Error("adjusted timer 0")
			}
		},
		"early":  func(c *Context) { j.add("early") },
		"middle": func(c *Context) { j.add("middle") },
		"late":   func(c *Context) { j.add("late") },
	}})
	must(t, err)
	mustRun(t, k)
	j.want(t, "early", "middle", "late")
}

func TestHundredThousandTimers(t *testing.T) {
	clean(t)
	const n = 100_000
	k := newKernel(t)
	fired, outOfOrder := 0, 0
	var last time.Time
	_, err := k.Spawn(Spec{Name: "many", Handlers: map[string]Handler{
		EvStart: func(c *Context) {
			now := time.Now()
			for range n {
				at := now.Add(time.Duration(rand.N(50_000)) * time.Microsecond)
				c.Alarm("tick", at, at)
			}
			if st := c.Kernel.Stats(); st.Timers != n {
				t.Errorf("%d timers pending", st.Timers)
			}
		},
		"tick": func(c *Context) {
			at := c.Arg(0).(time.Time)
			if at.Before(last) {
				outOfOrder++
			}
			last = at
			fired++
		},
	}})
	must(t, err)
	start := time.Now()
	mustRun(t, k)
	if fired != n || outOfOrder != 0 {
		t.Errorf("fired %d of %d timers, %d out of order", fired, n, outOfOrder)
	}
	t.Logf("%d timers set and fired in %v", n, time.Since(start))
}
