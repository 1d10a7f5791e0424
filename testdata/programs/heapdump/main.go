// Command heapdump builds one way of keeping memory alive and writes a heap
// dump (runtime/debug.WriteHeapDump) to -out, for the tests of
// tracker/heapdump and report. Every allocation is sampled
// (runtime.MemProfileRate = 1), so each object is named by its site.
//
// Scenarios (-scenario):
//
//	cache      a global map main.sessions holds -n sessions, each with a
//	           64 KiB buffer (main.newSession, main.newBuffer)
//	closure    a callback in the global main.callbacks captures a payload
//	           (main.newPayload)
//	stack      a goroutine's frame main.holdBuffer holds a 1 MiB buffer
//	cycle      two sessions whose heaps point at each other, reachable from
//	           the global main.registry
//	garbage    the same cycle, unreachable, dumped before any collection
//	finalizer  the same cycle, unreachable but for a finalizer on one of
//	           its sessions: the runtime never frees it
//	inlined    a global holds a token made by main.newToken, which the
//	           compiler inlines into main.main
//	many       -n small linked objects held by main.sessions (benchmarks)
//
// It prints "dumped" when the dump is written. The allocating functions are
// not inlined, because the dump names an inlined frame by the function it
// was inlined into.
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
)

func init() { runtime.MemProfileRate = 1 }

// Session is a unit of work with a heap, in POE's sense.
type Session struct {
	Name string
	Heap map[string]any
	Buf  []byte
}

// Payload is what a callback captured.
type Payload struct {
	ID   int
	Data []byte
}

// node is one object of the many scenario.
type node struct {
	next  *node
	other *node
	data  [2]int64
}

var (
	sessions  = map[string]*Session{}
	callbacks []func() int
	registry  *Session
	token     *Payload
	chain     *node
)

//go:noinline
func newBuffer(n int) []byte { return make([]byte, n) }

//go:noinline
func newSession(name string) *Session {
	return &Session{Name: name, Heap: map[string]any{}, Buf: newBuffer(64 << 10)}
}

// newToken is small enough to be inlined, and is, unlike the others.
func newToken() *Payload { return &Payload{ID: 42, Data: make([]byte, 100)} }

//go:noinline
func newPayload(id int) *Payload { return &Payload{ID: id, Data: make([]byte, 4096)} }

// register keeps a callback that captures p for as long as the program runs.
//
//go:noinline
func register(p *Payload) {
	callbacks = append(callbacks, func() int { return p.ID + len(p.Data) })
}

// holdBuffer keeps a buffer on its stack until release is closed.
//
//go:noinline
func holdBuffer(ready chan<- struct{}, release <-chan struct{}) {
	buf := newBuffer(1 << 20)
	ready <- struct{}{}
	<-release
	runtime.KeepAlive(buf)
}

// pair makes two sessions whose heaps refer to each other.
//
//go:noinline
func pair() (*Session, *Session) {
	a, b := newSession("a"), newSession("b")
	a.Heap["peer"] = b
	b.Heap["peer"] = a
	return a, b
}

func main() {
	scenario := flag.String("scenario", "cache", "cache, closure, stack, cycle, garbage, finalizer, inlined or many")
	out := flag.String("out", "heap.dump", "where to write the dump")
	n := flag.Int("n", 100, "sessions (cache) or objects (many)")
	flag.Parse()

	release := make(chan struct{})
	switch *scenario {
	case "cache":
		for i := range *n {
			name := fmt.Sprintf("job %d", i)
			sessions[name] = newSession(name)
		}
	case "closure":
		register(newPayload(7))
	case "stack":
		ready := make(chan struct{})
		go holdBuffer(ready, release)
		<-ready
	case "cycle":
		registry, _ = pair()
	case "inlined":
		token = newToken()
	case "garbage":
		debug.SetGCPercent(-1)
		pair()
	case "finalizer":
		a, _ := pair()
		runtime.SetFinalizer(a, func(*Session) {})
	case "many":
		runtime.MemProfileRate = 0 // a million samples would dwarf the objects
		var head *node
		for i := range *n {
			head = &node{next: head, data: [2]int64{int64(i)}}
			if i%3 == 0 && head.next != nil {
				head.other = head.next.next
			}
		}
		chain = head
	default:
		fmt.Fprintf(os.Stderr, "unknown scenario %q\n", *scenario)
		os.Exit(2)
	}
	if *scenario != "garbage" {
		runtime.GC()
	}
	f, err := os.Create(*out)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	debug.WriteHeapDump(f.Fd())
	if err := f.Close(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	close(release)
	runtime.KeepAlive(callbacks)
	runtime.KeepAlive(token)
	fmt.Println("dumped")
}
