package keepalive_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/leakcheck/leakcheck/keepalive"
)

func Example() {
	k := keepalive.NewKernel()
	say := func(c *keepalive.Context) { fmt.Println(c.Session.Name(), c.Event, c.Args) }
	k.Spawn(keepalive.Spec{Name: "parent", Handlers: map[string]keepalive.Handler{
		keepalive.EvStart: func(c *keepalive.Context) {
			say(c)
			c.Spawn(keepalive.Spec{Name: "child", Heap: new(int), Handlers: map[string]keepalive.Handler{
				keepalive.EvStart: func(c *keepalive.Context) {
					say(c)
					c.Delay("tick", time.Millisecond)
					c.Return("ready")
				},
				"tick": func(c *keepalive.Context) {
					n := keepalive.HeapOf[*int](c)
					*n++
					fmt.Println("tick", *n)
					if *n < 2 {
						c.Delay("tick", time.Millisecond)
					}
				},
				keepalive.EvStop: say,
			}})
		},
		keepalive.EvChild: func(c *keepalive.Context) {
			fmt.Println("parent _child", c.Arg(0), c.Arg(1).(*keepalive.Session).Name(), c.Arg(2))
		},
		keepalive.EvStop: say,
	}})
	report, err := k.Run(context.Background())
	fmt.Println(report.Len(), "leftovers,", err)
	// Output:
	// parent _start []
	// child _start []
	// parent _child create child ready
	// tick 1
	// tick 2
	// child _stop []
	// parent _child lose child <nil>
	// parent _stop []
	// 0 leftovers, <nil>
}

// echoServer starts a loopback server that echoes lines, for the examples.
// stop closes it and waits for its connections to end.
func echoServer() (addr string, stop func()) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
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
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					c.Write([]byte(line))
				}
			})
		}
	})
	return l.Addr().String(), func() { l.Close(); wg.Wait() }
}

// A session asks the pool for a socket, runs a wheel over it, and frees it
// when the reply is in: the wheel is dropped and the socket pooled, so the
// next request gets it at once.
func ExamplePool() {
	addr, stop := echoServer()
	defer stop()
	host, port, _ := net.SplitHostPort(addr)
	pn, _ := strconv.Atoi(port)
	key := keepalive.Key{Address: host, Port: pn}

	k := keepalive.NewKernel()
	// The pool lends sockets to the kernel's sessions: both track in one
	// registry.
	pool, err := keepalive.NewPool(keepalive.PoolConfig{MaxPerHost: 2, Registry: k.Registry()})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer pool.Shutdown()

	k.Spawn(keepalive.Spec{Name: "client", Handlers: map[string]keepalive.Handler{
		keepalive.EvStart: func(c *keepalive.Context) {
			pool.Allocate(c, keepalive.Request{Key: key, Event: "connected", Value: 1})
		},
		"connected": func(c *keepalive.Context) {
			resp := c.Arg(0).(*keepalive.Response)
			if resp.Err != nil {
				fmt.Println("error:", resp.Err)
				return
			}
			fmt.Printf("request %v: socket from cache %q\n", resp.Value, resp.FromCache)
			w, err := resp.Conn.Start(c, keepalive.WheelConfig{Input: "reply"})
			if err != nil {
				fmt.Println("error:", err)
				resp.Conn.Close()
				return
			}
			w.Put([]byte(fmt.Sprint("hello ", resp.Value)))
			c.SetHeap(resp)
		},
		"reply": func(c *keepalive.Context) {
			resp := keepalive.HeapOf[*keepalive.Response](c)
			fmt.Printf("reply %q\n", c.Arg(0))
			resp.Conn.Free()
			c.SetHeap(nil)
			if n := resp.Value.(int); n < 2 {
				pool.Allocate(c, keepalive.Request{Key: key, Event: "connected", Value: n + 1})
			}
		},
	}})
	report, err := k.Run(context.Background())
	fmt.Println(report.Len(), "leftovers,", err)
	fmt.Println("idle sockets:", pool.Stats().Idle)
	// Output:
	// request 1: socket from cache ""
	// reply "hello 1"
	// request 2: socket from cache "immediate"
	// reply "hello 2"
	// 0 leftovers, <nil>
	// idle sockets: 1
}

// Code outside the event loop gets connections with Get and uses them as a
// net.Conn; Free gives each back for the next Get.
func ExamplePool_Get() {
	addr, stop := echoServer()
	defer stop()
	pool, err := keepalive.NewPool(keepalive.PoolConfig{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer pool.Shutdown()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for i := range 3 {
		conn, err := pool.Get(ctx, addr)
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Fprintf(conn, "request %d\n", i)
		reply, err := bufio.NewReader(conn).ReadString('\n')
		if err != nil {
			conn.Close() // not fit for reuse
			fmt.Println(err)
			return
		}
		fmt.Printf("%s: socket from cache %q\n", strings.TrimSpace(reply), conn.FromCache())
		conn.Free()
	}
	st := pool.Stats()
	fmt.Println("dialed", st.Dialed, "reused", st.Reused, "idle", st.Idle)
	// Output:
	// request 0: socket from cache ""
	// request 1: socket from cache "immediate"
	// request 2: socket from cache "immediate"
	// dialed 1 reused 2 idle 1
}
