// Package demo is leakcheck's built-in leaky daemon: an echo server on the
// keepalive runtime, clients that reach it through the kept-alive pool, and
// leaks chosen by name, committed for real, so that `leakcheck run` with no
// command shows every kind of finding on a real process.
package demo

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/leakcheck/leakcheck/keepalive"
	"github.com/leakcheck/leakcheck/tracker"
	"github.com/leakcheck/leakcheck/tracker/heapdump"
)

// Leak is one leak the demo can commit.
type Leak struct {
	Name string
	// What says what the leak does and which findings it gives.
	What string
}

// Leaks returns the leaks the demo can commit: the leaky scenarios of the
// keepalive runtime (POE's FAQ causes), and three of the daemon's own, its
// clients' and its echo server's.
func Leaks() []Leak {
	return []Leak{
		{"extra-filehandle", "sessions keep their files and sockets in a holder after they stop (leftover, unreleased, fds growth)"},
		{"forgotten-wheel", "clients keep their wheels after the echo, so sessions never stop (sockets growth)"},
		{"session-cycle", "pairs of sessions keep each other's heap, with a finalizer (cycle, retained)"},
		{"growing-map", "a session's map of tasks is never pruned (growth of its gauge)"},
		{"closure-capture", "callbacks registered with hour-long timers capture payloads (leftover timers, retained)"},
		{"forgotten-connection", "clients drop pooled connections without Free or Close; the garbage collector finds them (unreleased)"},
		{"goroutine", "a goroutine per request waits forever on a channel (goroutine growth, leftover goroutines)"},
		{"close-wait", "the echo server never closes connections its clients closed (sockets in CLOSE_WAIT)"},
	}
}

// DefaultLeaks is what `leakcheck run` with no command shows: one leak of
// every finding kind.
const DefaultLeaks = "extra-filehandle,session-cycle,growing-map,closure-capture,forgotten-connection,goroutine,close-wait"

// LeakNames returns the names of Leaks, joined by ", ".
func LeakNames() string {
	var names []string
	for _, l := range Leaks() {
		names = append(names, l.Name)
	}
	return strings.Join(names, ", ")
}

// ParseLeaks reads a comma-separated list of leak names, "all" or "none".
func ParseLeaks(s string) ([]string, error) {
	switch s = strings.TrimSpace(s); s {
	case "none", "":
		return nil, nil
	case "all":
		s = LeakNames()
	}
	var out []string
	for name := range strings.SplitSeq(s, ",") {
		name = strings.TrimSpace(name)
		if !slices.ContainsFunc(Leaks(), func(l Leak) bool { return l.Name == name }) {
			return nil, fmt.Errorf("unknown leak %q: want %s, all or none", name, LeakNames())
		}
		out = append(out, name)
	}
	return out, nil
}

// Options configures Run.
type Options struct {
	// Leaks are the names of the leaks to commit.
	Leaks []string
	// Tick is the time between client requests.
	Tick time.Duration
	// Duration stops the daemon after this long; 0 runs until ctx ends.
	Duration time.Duration
	// Debug, when set, is the loopback address to serve net/http/pprof
	// and the tracker's handler on.
	Debug string
	// ReadyFile, when set, receives the debug server's base URL once it
	// serves.
	ReadyFile string
}

// shutdownGrace is how long the demo's kernel gets, once the demo is told
// to stop, to end on its own before it is stopped with what it holds.
const shutdownGrace = 500 * time.Millisecond

// Run runs the demo daemon until ctx ends: a keepalive kernel with an
// echo server session on loopback, clients that reach it through the
// kept-alive pool every tick, and the chosen leaks, committed for real. At
// the end it checks what the garbage collector can see, prints the kernel's
// leftover count and writes the tracker's exit report (the LEAKCHECK_REPORT
// handshake).
func Run(ctx context.Context, opts Options, stdout, stderr io.Writer) error {
	if opts.Duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, opts.Duration)
		defer cancel()
	}
	leak := func(name string) bool { return slices.Contains(opts.Leaks, name) }
	reg := tracker.New(tracker.WithStacks(tracker.StacksAlways), tracker.WithCleanups(true),
		tracker.WithRetainCheck(true), tracker.WithCycleCheck(true), tracker.WithRetainPaths(heapdump.RetainPaths))
	stopSampler := reg.StartSampler(opts.Tick)
	defer stopSampler()
	if opts.Debug != "" {
		stopHTTP, err := serveDemoDebug(ctx, reg, opts.Debug, opts.ReadyFile)
		if err != nil {
			return err
		}
		defer stopHTTP()
	}
	dir, err := os.MkdirTemp("", "leakcheck-demo-")
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	defer os.RemoveAll(dir)

	k := keepalive.NewKernel(keepalive.WithRegistry(reg), keepalive.WithName("demo"), keepalive.WithHeapChecks(true))
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("demo: listening on loopback: %w", err)
	}
	echo, err := spawnEchoServer(k, l, leak("close-wait"))
	if err != nil {
		l.Close()
		return err
	}
	// The clients own their pool. Idle sockets close after a second, so
	// a quiet pool closes its sockets and the server sees its clients
	// leave.
	clients := reg.StartSession("clients", nil)
	pool, err := keepalive.NewPool(keepalive.PoolConfig{Registry: reg, Name: "demo clients", Parent: clients, KeepAlive: time.Second})
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	defer func() {
		if pool != nil {
			pool.Shutdown()
		}
	}()

	var instances []*keepalive.Instance
	defer func() {
		for _, in := range instances {
			in.Close()
		}
	}()
	for _, name := range opts.Leaks {
		sc, ok := keepalive.LookupScenario(name)
		if !ok {
			continue // one of the daemon's own leaks
		}
		in, err := sc.Start(k, keepalive.ScenarioConfig{Interval: opts.Tick, Dir: dir, Payload: 16 << 10})
		if err != nil {
			return fmt.Errorf("demo: starting %s: %w", name, err)
		}
		instances = append(instances, in)
	}
	fmt.Fprintf(stdout, "demo: echo server on %s, leaks: %s\n", l.Addr(), strings.Join(opts.Leaks, ","))

	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		runDemoClients(ctx, reg, clients, pool, l.Addr().String(), opts.Tick, leak, stderr)
	}()
	// When ctx ends the daemon shuts down as a good one does: the echo
	// server closes its acceptor and connections. The kernel then stops
	// when no session is left, or after shutdownGrace, when the leaks keep
	// sessions alive: what they hold is the kernel's leftover report.
	kctx, stopKernel := context.WithCancel(context.Background())
	defer stopKernel()
	go func() {
		select {
		case <-ctx.Done():
		case <-kctx.Done():
			return
		}
		k.Post(echo, "shutdown")
		t := time.NewTimer(shutdownGrace)
		defer t.Stop()
		select {
		case <-t.C:
			stopKernel()
		case <-kctx.Done():
		}
	}()
	rep, err := k.Run(kctx)
	stopKernel()
	wg.Wait()
	if err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
		fmt.Fprintf(stderr, "demo: kernel: %v\n", err)
	}
	fmt.Fprintf(stderr, "demo: the kernel stopped with %d leftovers\n", rep.Len())
	// Its idle sockets are not leaks, and a stopped pool kept reachable
	// would be retained.
	pool.Shutdown()
	waitPoolStopped(pool)
	pool = nil
	return finishDemo(reg, []*tracker.Session{clients}, stderr)
}

// poolStopWait bounds how long the demo waits for its shut down pool to
// stop.
const poolStopWait = time.Second

// waitPoolStopped waits, collecting garbage, until the pool's session
// stops, which it does once the connections still lent are freed: those
// the clients forgot are, by the garbage collector (and reported
// unreleased). Stopping the clients first would stop the pool's session
// under it while its sockets come back.
func waitPoolStopped(pool *keepalive.Pool) {
	ts := pool.Tracker()
	for deadline := time.Now().Add(poolStopWait); ts != nil && !ts.Stopped() && time.Now().Before(deadline); {
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
}

// echoHeap is the echo server session's heap: its acceptor and a wheel per
// connection.
type echoHeap struct {
	acceptor *keepalive.Acceptor
	wheels   map[keepalive.WheelID]*keepalive.Wheel
}

// spawnEchoServer starts the session that echoes each line back. When it
// sees a client's end of input it closes its side, unless closeWait says to
// forget: the socket then stays in CLOSE_WAIT. On "shutdown" it closes its
// acceptor and its connections, so that it stops.
func spawnEchoServer(k *keepalive.Kernel, l net.Listener, closeWait bool) (*keepalive.Session, error) {
	s, err := k.Spawn(keepalive.Spec{Name: "echo server", Heap: &echoHeap{wheels: map[keepalive.WheelID]*keepalive.Wheel{}}, Handlers: map[string]keepalive.Handler{
		keepalive.EvStart: func(c *keepalive.Context) {
			a, err := c.Listen(l, keepalive.AcceptorConfig{Accept: "conn"})
			if err != nil {
				l.Close()
				return
			}
			keepalive.HeapOf[*echoHeap](c).acceptor = a
		},
		"conn": func(c *keepalive.Context) {
			w, err := c.NewWheel(c.Arg(0).(net.Conn), keepalive.WheelConfig{Input: "line", Error: "gone"})
			if err == nil {
				keepalive.HeapOf[*echoHeap](c).wheels[w.ID()] = w
			}
		},
		"line": func(c *keepalive.Context) {
			if w := keepalive.HeapOf[*echoHeap](c).wheels[c.Arg(1).(keepalive.WheelID)]; w != nil {
				w.Put(c.Arg(0).([]byte))
			}
		},
		"gone": func(c *keepalive.Context) {
			if closeWait {
				return
			}
			h, id := keepalive.HeapOf[*echoHeap](c), c.Arg(2).(keepalive.WheelID)
			if w := h.wheels[id]; w != nil {
				w.Close()
				delete(h.wheels, id)
			}
		},
		"shutdown": func(c *keepalive.Context) {
			h := keepalive.HeapOf[*echoHeap](c)
			if h.acceptor != nil {
				h.acceptor.Close()
			}
			if closeWait {
				return // the connections it forgot stay: they are the leak
			}
			for id, w := range h.wheels {
				w.Close()
				delete(h.wheels, id)
			}
		},
	}})
	if err != nil {
		return nil, fmt.Errorf("demo: starting the echo server: %w", err)
	}
	return s, nil
}

// runDemoClients sends requests to the echo server every tick until ctx
// ends: one through the kept-alive pool, and one on a connection of its own
// that it closes, as short-lived clients do.
func runDemoClients(ctx context.Context, reg *tracker.Registry, owner *tracker.Session, pool *keepalive.Pool, addr string, tick time.Duration, leak func(string) bool, stderr io.Writer) {
	block := make(chan struct{}) // never closed: the "goroutine" leak waits on it
	t := time.NewTicker(tick)
	defer t.Stop()
	for n := 0; ; n++ {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := pooledRequest(ctx, pool, addr, n, leak("forgotten-connection")); err != nil && ctx.Err() == nil {
			fmt.Fprintf(stderr, "demo: pooled request %d: %v\n", n, err)
		}
		if err := oneShotRequest(ctx, reg, owner, addr, n); err != nil && ctx.Err() == nil {
			fmt.Fprintf(stderr, "demo: request %d: %v\n", n, err)
		}
		if leak("goroutine") {
			reg.Go(owner, "waiter", func() { <-block })
		}
	}
}

// pooledRequest sends one line on a pooled connection and frees it, or, when
// forget is set, drops it, so only the garbage collector gives it back.
func pooledRequest(ctx context.Context, pool *keepalive.Pool, addr string, n int, forget bool) error {
	conn, err := pool.Get(ctx, addr)
	if err != nil {
		return err
	}
	if err := echoLine(conn, n); err != nil {
		conn.Close()
		return err
	}
	if !forget {
		return conn.Free()
	}
	return nil
}

// oneShotRequest sends one line on a new connection and closes it.
func oneShotRequest(ctx context.Context, reg *tracker.Registry, owner *tracker.Session, addr string, n int) error {
	c, err := reg.Dial(ctx, owner, "tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	return echoLine(c, n)
}

// echoLine writes a line and reads the echo back.
func echoLine(c net.Conn, n int) error {
	c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := fmt.Fprintf(c, "hello %d\n", n); err != nil {
		return err
	}
	_, err := bufio.NewReader(c).ReadString('\n')
	return err
}

// finishDemo stops the demo's sessions, printing what each still held, and
// writes the tracker's exit report when LEAKCHECK_REPORT asks for it.
func finishDemo(reg *tracker.Registry, sessions []*tracker.Session, stderr io.Writer) error {
	for _, s := range sessions {
		if left := s.Stop(); len(left) > 0 {
			fmt.Fprintf(stderr, "demo: session %q stopped holding %d resources\n", s.Label(), len(left))
		}
	}
	// Collect, so that connections dropped without Free are reported as
	// unreleased, and released objects still referenced as retained.
	if n := len(reg.CheckRetained()); n > 0 {
		fmt.Fprintf(stderr, "demo: %d released objects are still reachable after garbage collection\n", n)
	}
	if err := reg.WriteExitSnapshot(); err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	return nil
}

// serveDemoDebug serves pprof and the tracker handler on addr, writing the base
// URL to readyFile when it is set.
func serveDemoDebug(ctx context.Context, reg *tracker.Registry, addr, readyFile string) (func(), error) {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	mux.Handle("/debug/leakcheck/", reg.Handler())
	var lc net.ListenConfig
	l, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("demo: serving pprof on %s: %w", addr, err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(l)
	if readyFile != "" {
		if err := os.WriteFile(readyFile, []byte("http://"+l.Addr().String()), 0o644); err != nil {
			srv.Close()
			return nil, fmt.Errorf("demo: %w", err)
		}
	}
	return func() { srv.Close() }, nil
}
