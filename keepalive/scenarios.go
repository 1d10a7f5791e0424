package keepalive

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"
	"weak"

	"github.com/leakcheck/leakcheck/tracker"
)

// Scenario is one leak cause from POE's FAQ on resource leaks, built on this
// runtime with real descriptors, goroutines and memory, or its fixed twin.
// Scenarios serve the tests and the demo daemon that `leakcheck run` runs.
type Scenario struct {
	// Name is how the scenario is chosen, e.g. "forgotten-wheel"; a fixed
	// twin's name ends in "-fixed".
	Name string
	// Description says what the scenario does and which FAQ cause it shows.
	Description string
	// Leaky is true for the leak, false for its fixed twin.
	Leaky bool
	// Twin names the other scenario of the pair.
	Twin string
	// Evidence says where the leak shows: the kernel's leftover report,
	// descriptors, or memory retained after garbage collection (Measure).
	Evidence string

	start func(k *Kernel, cfg ScenarioConfig, in *Instance) error
}

// ScenarioConfig bounds a scenario run.
type ScenarioConfig struct {
	// Rounds is how many rounds to run (sessions spawned, connections made,
	// tasks started); 0 runs rounds until the kernel's context ends.
	Rounds int
	// Interval is the time between rounds (DefaultInterval when 0).
	Interval time.Duration
	// Dir is where file scenarios create files; when "", a temporary
	// directory that Instance.Close removes.
	Dir string
	// Payload is the bytes each round holds in memory (heaps, tasks,
	// closures): DefaultPayload when 0.
	Payload int
}

// Defaults of ScenarioConfig.
const (
	DefaultInterval = 10 * time.Millisecond
	DefaultPayload  = 64 << 10
)

// Instance is a scenario started on a kernel.
type Instance struct {
	Scenario Scenario

	rounds  atomic.Int64
	mu      sync.Mutex
	gauges  map[string]func() int64
	closers []func() error
}

// Rounds returns how many rounds have run.
func (in *Instance) Rounds() int64 { return in.rounds.Load() }

// Measure returns the scenario's own evidence by name: handles held outside
// the kernel, tasks in a map, heaps or payloads still reachable after garbage
// collection, and so on. Measures of retained memory run the garbage
// collector first. Safe from any goroutine.
func (in *Instance) Measure() map[string]int64 {
	in.mu.Lock()
	gauges := make(map[string]func() int64, len(in.gauges))
	for k, f := range in.gauges {
		gauges[k] = f
	}
	in.mu.Unlock()
	out := make(map[string]int64, len(gauges))
	for name, f := range gauges {
		out[name] = f()
	}
	return out
}

// Close releases what a leaky scenario leaked outside the kernel (handles in
// a holder, timers, callbacks) and removes its temporary directory. Call it
// after Run, once the leak has been observed.
func (in *Instance) Close() error {
	in.mu.Lock()
	closers := in.closers
	in.closers = nil
	in.mu.Unlock()
	var errs []error
	for _, f := range slices.Backward(closers) {
		errs = append(errs, f())
	}
	return errors.Join(errs...)
}

func (in *Instance) gauge(name string, f func() int64) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.gauges[name] = f
}

// trackerGauge is gauge, also registered as a gauge of the registry named
// "scenario NAME.name", for measures cheap enough to sample every second.
// Its owner is the scenario's session that holds what it measures, so a
// report joins the gauge with what that session and those it started leak.
func (in *Instance) trackerGauge(owner *Session, name string, f func() int64) {
	in.gauge(name, f)
	remove := owner.k.Registry().Gauge("scenario "+in.Scenario.Name+"."+name, owner.Tracker(), func() int { return int(f()) })
	in.onClose(func() error { remove(); return nil })
}

func (in *Instance) onClose(f func() error) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.closers = append(in.closers, f)
}

// Start spawns the scenario's sessions on k, before or during Run.
func (sc Scenario) Start(k *Kernel, cfg ScenarioConfig) (*Instance, error) {
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultInterval
	}
	if cfg.Payload <= 0 {
		cfg.Payload = DefaultPayload
	}
	in := &Instance{Scenario: sc, gauges: map[string]func() int64{}}
	in.gauge("rounds", in.rounds.Load)
	if err := sc.start(k, cfg, in); err != nil {
		return nil, errors.Join(err, in.Close())
	}
	return in, nil
}

// Scenarios returns every scenario, each leak followed by its fixed twin.
func Scenarios() []Scenario {
	var out []Scenario
	for _, p := range scenarioPairs {
		leak := Scenario{Name: p.name, Description: p.desc, Leaky: true, Twin: p.name + "-fixed", Evidence: p.evidence}
		fixed := Scenario{Name: p.name + "-fixed", Description: p.fixedDesc, Twin: p.name, Evidence: p.evidence}
		run := p.run
		leak.start = func(k *Kernel, cfg ScenarioConfig, in *Instance) error { return run(k, cfg, in, true) }
		fixed.start = func(k *Kernel, cfg ScenarioConfig, in *Instance) error { return run(k, cfg, in, false) }
		out = append(out, leak, fixed)
	}
	return out
}

// LookupScenario returns the scenario called name.
func LookupScenario(name string) (Scenario, bool) {
	for _, sc := range Scenarios() {
		if sc.Name == name {
			return sc, true
		}
	}
	return Scenario{}, false
}

type scenarioPair struct {
	name, desc, fixedDesc, evidence string
	run                             func(k *Kernel, cfg ScenarioConfig, in *Instance, leaky bool) error
}

var scenarioPairs = []scenarioPair{
	{
		name: "extra-filehandle",
		desc: "Extra filehandle references: each round a session opens a file (or, every other round, " +
			"a loopback UDP socket) and also keeps it in a process-wide holder \"for reuse\"; the session stops " +
			"but the holder's reference keeps the descriptor open.",
		fixedDesc: "The session closes its handle and drops it from the holder in _stop.",
		evidence:  "leftover report (file and socket records owned by stopped sessions); open descriptors; Measure held_handles",
		run:       runExtraFilehandle,
	},
	{
		name: "forgotten-wheel",
		desc: "Extra wheel references: each round a client session connects to an echo server in the same " +
			"kernel, exchanges one line, and keeps its wheel in its heap instead of closing it; a live wheel keeps " +
			"the session alive, so neither the client nor the server's side ever stops.",
		fixedDesc: "The client closes its wheel after the echo; the server sees end of input and closes its side.",
		evidence:  "Run does not end by itself; leftover report (wheels and sockets of live sessions); Measure live_clients",
		run:       runForgottenWheel,
	},
	{
		name: "session-cycle",
		desc: "Sessions referring to one another: each round two sessions keep each other's heap in their own; " +
			"each heap has a finalizer (Go's DESTROY). Go collects plain cycles, but never a cycle with a " +
			"finalizer, so both heaps and their payloads stay in memory after the sessions stop.",
		fixedDesc: "Each session drops its reference to the peer's heap in _stop, breaking the cycle.",
		evidence:  "retained heaps (tracker Watch, CheckRetained); cycles found at stop (kernel WithHeapChecks and tracker WithCycleCheck); Measure heaps_retained",
		run:       runSessionCycle,
	},
	{
		name: "growing-map",
		desc: "Bad housekeeping: a dispatcher session keeps tasks in flight in a map in its heap, runs each in a " +
			"worker goroutine that posts its result back, and never deletes finished tasks, so the map grows " +
			"with every round.",
		fixedDesc: "The dispatcher deletes each task from the map when its result arrives.",
		evidence:  "gauge tasks (tracker gauge, and the heap gauge Heap.tasks with WithHeapChecks) grows with every round",
		run:       runGrowingMap,
	},
	{
		name: "closure-capture",
		desc: "Closures: each round a session registers a callback with a long-lived notifier and arms a " +
			"one-hour tracked timer, both closures capturing the session's payload; the session stops without " +
			"cancelling them, so the closures keep the payload (and the timer record) alive.",
		fixedDesc: "In _stop the session stops its timer, unregisters its callback and clears the variable the closures captured.",
		evidence:  "leftover report (timer records owned by stopped sessions); retained payloads (tracker Watch, CheckRetained); gauge callbacks",
		run:       runClosureCapture,
	},
}

// driver spawns a session that calls round every interval, cfg.Rounds times
// (forever when 0), then stops by itself; gauges, when set, are registered
// as tracker gauges of that session (see trackerGauge).
func driver(k *Kernel, name string, cfg ScenarioConfig, in *Instance, gauges map[string]func() int64, round func(c *Context, n int)) error {
	s, err := k.Spawn(Spec{Name: name, Handlers: map[string]Handler{
		EvStart: func(c *Context) { c.Yield("round") },
		"round": func(c *Context) {
			n := int(in.rounds.Add(1))
			round(c, n)
			if cfg.Rounds == 0 || n < cfg.Rounds {
				c.Delay("round", cfg.Interval)
			}
		},
	}})
	if err != nil {
		return err
	}
	for name, f := range gauges {
		in.trackerGauge(s, name, f)
	}
	return nil
}

// scenarioDir returns cfg.Dir or a temporary directory removed by Close.
func scenarioDir(cfg ScenarioConfig, in *Instance) (string, error) {
	if cfg.Dir != "" {
		return cfg.Dir, nil
	}
	dir, err := os.MkdirTemp("", "leakcheck-"+in.Scenario.Name+"-")
	if err != nil {
		return "", err
	}
	in.onClose(func() error { return os.RemoveAll(dir) })
	return dir, nil
}

// heldHandle is an open descriptor and its record; h is the zero Handle
// when c releases its record itself (a *tracker.File).
type heldHandle struct {
	c io.Closer
	h tracker.Handle
}

func (hh heldHandle) close() error {
	err := hh.c.Close()
	if hh.h.ID() != 0 {
		hh.h.Release()
	}
	return err
}

// handleHolder is the process-wide "cache" of open handles that the leaky
// twin forgets to clean.
type handleHolder struct {
	mu sync.Mutex
	m  map[string]heldHandle
}

func (h *handleHolder) put(key string, hh heldHandle) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.m[key] = hh
}

func (h *handleHolder) take(key string) (heldHandle, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	hh, ok := h.m[key]
	delete(h.m, key)
	return hh, ok
}

func (h *handleHolder) len() int64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return int64(len(h.m))
}

func runExtraFilehandle(k *Kernel, cfg ScenarioConfig, in *Instance, leaky bool) error {
	dir, err := scenarioDir(cfg, in)
	if err != nil {
		return err
	}
	holder := &handleHolder{m: map[string]heldHandle{}}
	in.onClose(func() error {
		holder.mu.Lock()
		held := holder.m
		holder.m = map[string]heldHandle{}
		holder.mu.Unlock()
		var errs []error
		for _, hh := range held {
			errs = append(errs, hh.close())
		}
		return errors.Join(errs...)
	})
	return driver(k, in.Scenario.Name, cfg, in, map[string]func() int64{"held_handles": holder.len}, func(c *Context, n int) {
		key := fmt.Sprintf("round-%d", n)
		c.Spawn(Spec{Name: "writer " + key, Handlers: map[string]Handler{
			EvStart: func(c *Context) {
				reg, ts := c.Kernel.Registry(), c.Session.Tracker()
				if n%2 == 1 {
					f, err := reg.Create(ts, filepath.Join(dir, key+".log"))
					if err != nil {
						return
					}
					fmt.Fprintf(f, "round %d\n", n)
					// The holder keeps the tracked file, not only its
					// *os.File: the record lives as long as the descriptor.
					holder.put(key, heldHandle{c: f})
				} else {
					u, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
					if err != nil {
						return
					}
					u.WriteTo([]byte(key), u.LocalAddr())
					holder.put(key, heldHandle{c: u, h: reg.Track(tracker.KindSocket, ts, "udp "+u.LocalAddr().String())})
				}
				c.Yield("done")
			},
			"done": func(c *Context) {},
			EvStop: func(c *Context) {
				if !leaky {
					if hh, ok := holder.take(key); ok {
						hh.close()
					}
				}
			},
		}})
	})
}

// wheelsHeap is a session heap of wheels by id.
type wheelsHeap map[WheelID]*Wheel

func runForgottenWheel(k *Kernel, cfg ScenarioConfig, in *Instance, leaky bool) error {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	addr := l.Addr().String()
	var accepted int
	_, err = k.Spawn(Spec{Name: in.Scenario.Name + " echo server", Heap: wheelsHeap{}, Handlers: map[string]Handler{
		EvStart: func(c *Context) {
			a, err := c.Listen(l, AcceptorConfig{Accept: "conn", Error: "accept failed"})
			if err != nil {
				l.Close()
				return
			}
			c.On("conn", func(c *Context) {
				accepted++
				if cfg.Rounds > 0 && accepted >= cfg.Rounds {
					a.Close()
				}
				w, err := c.NewWheel(c.Arg(0).(net.Conn), WheelConfig{Input: "line", Error: "gone"})
				if err != nil {
					return
				}
				HeapOf[wheelsHeap](c)[w.ID()] = w
			})
			c.On("accept failed", func(c *Context) { a.Close() })
		},
		"line": func(c *Context) {
			if w := HeapOf[wheelsHeap](c)[c.Arg(1).(WheelID)]; w != nil {
				w.Put(c.Arg(0).([]byte))
			}
		},
		"gone": func(c *Context) {
			ws, id := HeapOf[wheelsHeap](c), c.Arg(2).(WheelID)
			if w := ws[id]; w != nil {
				w.Close()
				delete(ws, id)
			}
		},
	}})
	if err != nil {
		l.Close()
		return err
	}
	var live atomic.Int64
	return driver(k, in.Scenario.Name, cfg, in, map[string]func() int64{"live_clients": live.Load}, func(c *Context, n int) {
		c.Spawn(Spec{Name: fmt.Sprintf("client %d", n), Handlers: map[string]Handler{
			EvStart: func(c *Context) {
				live.Add(1)
				ctx, cancel := context.WithTimeout(context.Background(), time.Second)
				defer cancel()
				conn, err := c.Kernel.Registry().Dial(ctx, c.Session.Tracker(), "tcp", addr)
				if err != nil {
					return
				}
				w, err := c.NewWheel(conn, WheelConfig{Input: "echo", Error: "gone"})
				if err != nil {
					conn.Close()
					return
				}
				c.SetHeap(w)
				w.Put(fmt.Appendf(nil, "ping %d", n))
			},
			"echo": func(c *Context) {
				if !leaky {
					HeapOf[*Wheel](c).Close()
				}
				// The leaky client keeps the wheel in its heap "for later".
			},
			"gone": func(c *Context) { HeapOf[*Wheel](c).Close() },
			EvStop: func(c *Context) { live.Add(-1) },
		}})
	})
}

// peerHeap is the heap of one of two sessions that talk to each other.
type peerHeap struct {
	name    string
	peer    *peerHeap
	payload []byte
	turns   int
}

func runSessionCycle(k *Kernel, cfg ScenarioConfig, in *Instance, leaky bool) error {
	var mu sync.Mutex
	var heaps []weak.Pointer[peerHeap]
	var finalized atomic.Int64
	const keep = 4096 // weak pointers kept for Measure; older ones are dropped
	newHeap := func(name string) *peerHeap {
		h := &peerHeap{name: name, payload: make([]byte, cfg.Payload)}
		runtime.SetFinalizer(h, func(*peerHeap) { finalized.Add(1) })
		mu.Lock()
		if len(heaps) == keep {
			heaps = slices.Delete(heaps, 0, 1)
		}
		heaps = append(heaps, weak.Make(h))
		mu.Unlock()
		return h
	}
	in.gauge("heaps_retained", func() int64 {
		runtime.GC()
		runtime.GC()
		mu.Lock()
		defer mu.Unlock()
		var n int64
		for _, w := range heaps {
			if w.Value() != nil {
				n++
			}
		}
		return n
	})
	in.gauge("heaps_finalized", finalized.Load)
	stop := func(c *Context) {
		h := HeapOf[*peerHeap](c)
		if !leaky {
			h.peer = nil
		}
		// The session is done with its heap: the tracker checks it goes.
		tracker.Watch(c.Kernel.Registry(), h, "heap", c.Session.Tracker(), c.Session.Name()+" heap")
	}
	return driver(k, in.Scenario.Name, cfg, in, nil, func(c *Context, n int) {
		pong, err := c.Spawn(Spec{Name: fmt.Sprintf("pong %d", n), Heap: newHeap("pong"), Handlers: map[string]Handler{
			"hello": func(c *Context) {
				h := HeapOf[*peerHeap](c)
				h.peer = c.Arg(0).(*peerHeap)
				c.Return(h)
			},
			"ball": func(c *Context) { c.Post(c.Sender, "ball") },
			EvStop: stop,
		}})
		if err != nil {
			return
		}
		c.Spawn(Spec{Name: fmt.Sprintf("ping %d", n), Heap: newHeap("ping"), Handlers: map[string]Handler{
			EvStart: func(c *Context) {
				h := HeapOf[*peerHeap](c)
				v, err := c.Call(pong, "hello", h)
				if err != nil {
					return
				}
				h.peer = v.(*peerHeap)
				c.Post(pong, "ball")
			},
			"ball": func(c *Context) {
				if h := HeapOf[*peerHeap](c); h.turns < 3 {
					h.turns++
					c.Post(c.Sender, "ball")
				}
			},
			EvStop: stop,
		}})
	})
}

// task is one unit of work in the growing-map scenario.
type task struct {
	id      int
	input   []byte
	started time.Time
	sum     [sha256.Size]byte
}

// dispatcherHeap is the growing-map dispatcher's heap; with the kernel's
// heap checks on, the tracker samples len(tasks) as the gauge
// session "growing-map dispatcher".Heap.tasks.
type dispatcherHeap struct {
	tasks map[int]*task
}

func runGrowingMap(k *Kernel, cfg ScenarioConfig, in *Instance, leaky bool) error {
	var size atomic.Int64
	tasks := map[int]*task{}
	d, err := k.Spawn(Spec{Name: in.Scenario.Name + " dispatcher", Heap: &dispatcherHeap{tasks: tasks}, Handlers: map[string]Handler{
		EvStart: func(c *Context) { c.Yield("round") },
		"round": func(c *Context) {
			n := int(in.rounds.Add(1))
			t := &task{id: n, input: make([]byte, cfg.Payload), started: time.Now()}
			t.input[0] = byte(n)
			tasks[n] = t
			size.Store(int64(len(tasks)))
			self := c.Session
			// The worker holds a reference on the dispatcher while it runs,
			// so the dispatcher cannot stop under it.
			c.RefcountIncrement("workers")
			c.Kernel.Registry().Go(self.Tracker(), fmt.Sprintf("worker %d", n), func() {
				sum := sha256.Sum256(t.input)
				c.Kernel.Post(self, "done", n, sum)
			})
			if cfg.Rounds == 0 || n < cfg.Rounds {
				c.Delay("round", cfg.Interval)
			}
		},
		"done": func(c *Context) {
			c.RefcountDecrement("workers")
			n, sum := c.Arg(0).(int), c.Arg(1).([sha256.Size]byte)
			if t := tasks[n]; t != nil {
				t.sum = sum
			}
			if !leaky {
				delete(tasks, n)
			}
			size.Store(int64(len(tasks)))
		},
	}})
	if err != nil {
		return err
	}
	in.trackerGauge(d, "tasks", size.Load)
	return nil
}

// payload is the big object the closure-capture scenario's closures hold.
type payload struct{ data []byte }

// notifier is a long-lived registry of callbacks, like a process-wide event
// bus.
type notifier struct {
	mu    sync.Mutex
	next  int
	hooks map[int]func()
}

func (nt *notifier) add(f func()) int {
	nt.mu.Lock()
	defer nt.mu.Unlock()
	nt.next++
	nt.hooks[nt.next] = f
	return nt.next
}

func (nt *notifier) remove(id int) {
	nt.mu.Lock()
	defer nt.mu.Unlock()
	delete(nt.hooks, id)
}

func (nt *notifier) len() int64 {
	nt.mu.Lock()
	defer nt.mu.Unlock()
	return int64(len(nt.hooks))
}

func runClosureCapture(k *Kernel, cfg ScenarioConfig, in *Instance, leaky bool) error {
	nt := &notifier{hooks: map[int]func(){}}
	var mu sync.Mutex
	timers := map[*tracker.Timer]struct{}{} // armed and not stopped, for Close
	var payloads []weak.Pointer[payload]
	in.gauge("payloads_retained", func() int64 {
		runtime.GC()
		mu.Lock()
		defer mu.Unlock()
		var n int64
		for _, w := range payloads {
			if w.Value() != nil {
				n++
			}
		}
		return n
	})
	in.onClose(func() error {
		mu.Lock()
		defer mu.Unlock()
		for t := range timers {
			t.Stop()
		}
		clear(timers)
		nt.mu.Lock()
		clear(nt.hooks)
		nt.mu.Unlock()
		return nil
	})
	type jobHeap struct {
		hold  **payload // the variable the closures capture
		timer *tracker.Timer
		hook  int
	}
	return driver(k, in.Scenario.Name, cfg, in, map[string]func() int64{"callbacks": nt.len}, func(c *Context, n int) {
		c.Spawn(Spec{Name: fmt.Sprintf("job %d", n), Heap: &jobHeap{}, Handlers: map[string]Handler{
			EvStart: func(c *Context) {
				h := HeapOf[*jobHeap](c)
				big := &payload{data: make([]byte, cfg.Payload)}
				use := func() {
					if big != nil {
						_ = len(big.data)
					}
				}
				h.hold = &big
				h.hook = nt.add(use)
				h.timer = c.Kernel.Registry().AfterFunc(c.Session.Tracker(), time.Hour, use)
				mu.Lock()
				timers[h.timer] = struct{}{}
				if len(payloads) == 4096 {
					payloads = slices.Delete(payloads, 0, 1)
				}
				payloads = append(payloads, weak.Make(big))
				mu.Unlock()
				c.Yield("work")
			},
			"work": func(c *Context) {},
			EvStop: func(c *Context) {
				h := HeapOf[*jobHeap](c)
				tracker.Watch(c.Kernel.Registry(), *h.hold, "payload", c.Session.Tracker(), c.Session.Name()+" payload")
				if !leaky {
					h.timer.Stop()
					nt.remove(h.hook)
					mu.Lock()
					delete(timers, h.timer)
					mu.Unlock()
					// As the FAQ says: undef the variable the closures hold,
					// for Go's runtime may keep a stopped timer's closure a
					// while.
					*h.hold = nil
				}
			},
		}})
	})
}
