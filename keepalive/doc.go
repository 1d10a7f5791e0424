// Package keepalive is a small event runtime in the model of Perl's POE, with
// the tracker as its memory: the kernel owns every session, pending event,
// timer, wheel and watched handle, knows who holds what, releases what a
// stopping session still holds, and reports leftovers when it ends.
//
// # Kernel, sessions, events
//
// A Kernel runs one event loop. Sessions are spawned with a Spec: a name, a
// heap (any Go value, the session's state) and handlers by event name. A
// Handler receives a *Context, which carries what POE passes in @_ (KERNEL,
// HEAP, SESSION, SENDER, STATE, ARG0..) and has the runtime's operations on
// the active session as methods:
//
//	k := keepalive.NewKernel()
//	k.Spawn(keepalive.Spec{Name: "ticker", Heap: new(int), Handlers: map[string]keepalive.Handler{
//		keepalive.EvStart: func(c *keepalive.Context) { c.Delay("tick", time.Second) },
//		"tick": func(c *keepalive.Context) {
//			n := keepalive.HeapOf[*int](c)
//			if *n++; *n < 3 {
//				c.Delay("tick", time.Second)
//			}
//		},
//	}})
//	report, err := k.Run(ctx) // returns when no session is alive, or ctx ends
//	report.WriteTo(os.Stderr)
//
// Handlers run one at a time on the goroutine that called Run, so a handler
// never needs a lock for its session's heap. Post queues an event for
// another session (by *Session, SessionID or alias), Yield for the session
// itself, Call runs a handler at once and returns its Return value. Posting
// to a stopped or unknown session returns an error. Kernel.Post, Spawn,
// Call, Stop and RefcountIncrement/Decrement are safe from any goroutine
// (I/O goroutines, workers); posting wakes the loop.
//
// # Lifecycle
//
// A session gets _start first (its Spec.Args as arguments); its parent then
// gets _child with ChildCreate and _start's Return value. A session stays
// alive while it has pending events (as receiver or as sender), timers,
// wheels, acceptors, watched handles, children, aliases or extra references
// (RefcountIncrement, by tag). When none remain it stops, in POE's order:
// children it still has are handed to its parent (the parent gets _child
// ChildGain, each child gets _parent with the old and new parent), then it
// gets _stop, then its parent gets _child ChildLose with _stop's Return
// value; finally whatever it still holds is released and reported (see
// WithLeftoverFunc), and its heap is let go. Since children keep a parent
// alive, the handover happens when a session is stopped on purpose
// (Kernel.Stop, POE's terminal signals) or at shutdown.
//
// Aliases keep a session alive only while other sessions could still post
// to it. When no event is queued, no timer pending, no wheel, acceptor or
// watched handle open and no extra reference held anywhere, every live
// session is kept alive only by aliases (and by children kept alive only by
// aliases): nothing can post to them any more, so the kernel stops them,
// children before parents, oldest first, as POE's idle and zombie signals
// do. A daemon whose only long-lived session is an alias-only service
// therefore still shuts down. Code outside the loop that means to post to an
// alias later must hold an extra reference on its session meanwhile.
//
// Run returns when no session is alive, or when its context ends: then it
// stops every live session (children first, each with _stop) and closes
// their wheels, acceptors and handles. Either way it returns a Report: every
// resource still registered to the kernel or one of its sessions, with
// owner, age and acquisition stack, plus what the kernel released itself at
// a forced shutdown and the events still queued.
//
// # Timers, wheels, acceptors, handles
//
// Delay and Alarm set timers that post to the active session; they return a
// TimerID for Remove, Adjust and When. Timers live in one heap, not one
// goroutine each; 100,000 pending timers cost a slice and a map.
//
// A Wheel is a read/write loop over an io.ReadWriteCloser, usually a
// net.Conn: one goroutine reads, splits records with a Framer (Lines,
// LengthPrefixed, Raw, or any bufio.SplitFunc-style splitter) and posts an
// input event per record; another writes what Put queues and posts a
// flushed event when the buffer drains, high and low events when it crosses
// the water marks. Errors are posted with the operation ("read" or
// "write"), the error and the wheel's id; a read error io.EOF is the end of
// input. The goroutines never touch session state. Close stops them and
// closes the handle; Detach stops them and hands the handle back (with any
// input read but not framed), as a connection pool takes a kept-alive
// socket back. An Acceptor is a wheel over a net.Listener. Watch makes a
// session the holder of any io.Closer.
//
// # Tracking
//
// Every session is a tracker session under its parent's (top-level ones
// under the kernel's). Timers are tracked as tracker.KindTimer, wheels and
// acceptors as tracker.KindWheel, their handles as tracker.KindSocket,
// KindFile or KindListener (a *tracker.Conn, *tracker.File or
// *tracker.Listener has its record moved with tracker's Handle.Move, so
// handles pass between sessions), extra references as KindRefcount and
// pending events as KindEvent. Resources a handler tracks under
// Session.Tracker (tracker's Open, Dial, AfterFunc...) are the session's
// too: if they are still registered when it stops, they are its leftovers.
//
// Pending events are tracked per session and event name, not one record
// per event: a record of kind "event", labelled with the name, is live while
// the session has at least one such event pending, with the acquisition
// stack and age of the post that opened the backlog. A record whose backlog
// drained is released at the end of the loop's batch unless more events of
// the name arrived meanwhile, so a busy session costs a map update per
// event instead of a registry insert and delete (which would cost as much as
// the dispatch itself). WithEventTracking(false) turns event records off.
//
// WithHeapChecks gives session heaps to the tracker, for its cycle check at
// Stop and its automatic sampling of the collections heaps hold (sampled on
// the loop goroutine, so without races); it is opt-in because a heap that
// holds a *Session, *Context or *Kernel leads the tracker's reflection walks
// into the kernel itself.
//
// # Scenarios
//
// Scenarios returns the causes of leaks in POE's FAQ as runnable code on
// this runtime, each with a fixed twin: extra filehandle references, a
// forgotten wheel, sessions holding each other's heaps, a map of tasks that
// only grows, and closures that keep a stopped session's payload. They use
// real descriptors, goroutines and memory, for a bounded number of rounds or
// until the kernel's context ends.
//
// # Pool
//
// A Pool keeps sockets alive for reuse, as POE's Client::Keepalive, and lends
// them as Connections, as its Connection::Keepalive. Sockets are pooled by
// Key (scheme, address, port, and the "for" triple of a proxy), at most
// MaxPerHost per key and MaxOpen in all; an idle socket is closed after
// KeepAlive, and a request that has no socket after Timeout fails.
//
// A handler asks with Allocate, on behalf of its session; the answer comes
// as an event whose argument is a *Response:
//
//	k := keepalive.NewKernel()
//	pool, err := keepalive.NewPool(keepalive.PoolConfig{Registry: k.Registry()})
//	...
//	keepalive.EvStart: func(c *keepalive.Context) {
//		key := keepalive.Key{Address: "127.0.0.1", Port: 7}
//		pool.Allocate(c, keepalive.Request{Key: key, Event: "connected"})
//	},
//	"connected": func(c *keepalive.Context) {
//		resp := c.Arg(0).(*keepalive.Response)
//		if resp.Err != nil { // a *PoolError: the step that failed, the errno
//			return
//		}
//		w, err := resp.Conn.Start(c, keepalive.WheelConfig{Input: "line"})
//		... // and resp.Conn.Free() when done with it
//	},
//
// Code outside the loop calls Get, which waits, and uses the Connection as a
// net.Conn:
//
//	conn, err := pool.Get(ctx, "127.0.0.1:7")
//	...
//	conn.Free()
//
// An idle socket of the key is handed over at once (CacheImmediate).
// Otherwise the request waits, first in first out, for a slot to connect or
// for a socket to be freed (CacheDeferred). At MaxOpen, a request that needs
// a new connection closes the socket of another key that has been idle
// longest. The oldest request is always served first, even when that closes
// an idle socket a younger request could have taken, so a busy key cannot
// starve the others; a request held back by its own key's limit does not
// hold up the requests behind it. A session stays alive while its request
// is pending; Deallocate cancels a request, and its resolve or connect.
//
// Free gives the socket back. A wheel started on the Connection is dropped
// first (the wheel and the pool never watch the socket at once); then the
// socket is pooled only if it is fit: one with unread data, or whose peer
// closed or reset it, is closed, with SO_LINGER 0 when data was pending. The
// pool looks without reading: recv(2) with MSG_PEEK|MSG_DONTWAIT, through
// the socket's syscall.RawConn. A socket idle for more than a few
// milliseconds is watched by a goroutine parked in the network poller, as
// POE watches it with select_read: data, the peer's close, or the end of
// KeepAlive removes it. A taker stops the watch (a timer not yet fired, or
// a read deadline that interrupts the goroutine) and looks once more before
// it hands the socket over, so a socket whose close has arrived is never
// handed out.
// Connections a Dial hook wraps (TLS) are watched through their wrapper,
// which reads what its layer sends on an idle connection (session tickets).
//
// A Connection dropped without Free or Close is found by the garbage
// collector (runtime.AddCleanup): its socket goes back to the pool, its
// wheel dropped first, and the tracker reports the connection as
// unreleased, with the stack of the Allocate or Get that asked for it. This
// is POE's DESTROY, as a diagnosis: free connections explicitly.
//
// The pool's tracker session owns its idle sockets (tracker.KindSocket). A
// lent socket's record moves to its holder, the requesting session or the
// pool's child session for Get, which also holds a KindConnection record
// from the request until Free or Close; Stats agrees with these records.
// Shutdown answers pending requests with ErrPoolShutdown, cancels the
// connects under way and waits for them, and closes idle sockets; once the
// last lent Connection is freed, nothing of the pool is registered.
//
// Where the pool departs from POE's:
//
//   - It is not a session but a value safe for concurrent use, so that Get
//     and several kernels can share it. Its timers are the requests'
//     context deadlines and the idle sockets' read deadlines, not kernel
//     timers. A kernel whose sessions allocate must track in the pool's
//     registry (Allocate and Start refuse otherwise).
//   - The caller's value is Request.Value (Context is the handler's
//     argument here); the response's failing "function" is PoolError.Step
//     and its errno PoolError.Errno. An answer is always an event, even
//     from the cache.
//   - Shutdown answers pending requests with an error rather than dropping
//     them, so that no caller waits forever; a response whose session was
//     stopped before handling it frees its connection.
//   - Connection is a net.Conn for Get's callers, and refuses I/O after
//     Free or Close, so a stale Connection never reaches a socket lent
//     again. Free clears the deadlines the caller set.
//   - Free waits up to 50 ms for a wheel's output to be counted as written
//     before it takes the socket for busy: the reply to that output can be
//     handled before the wheel's writer runs again.
//   - Timeout covers a request's time in the queue, not the I/O of a lent
//     socket.
//
// # Where this departs from POE
//
// Go programmers expect some things POE does not do:
//
//   - Handlers take a *Context, not positional @_; return values go through
//     Context.Return, and ArgOf and HeapOf give typed access.
//   - Errors are values: posting to an unknown or stopped session, taking
//     an alias held by another, decrementing a reference count below zero
//     return errors instead of dying or warning.
//   - Kernel.Spawn may be called from any goroutine, so it queues _start to
//     run on the loop; Context.Spawn, from a handler, runs _start at once as
//     POE does. A child with nothing to do after _start stops when the
//     spawning handler returns, not in the middle of it.
//   - There are no signals. Run's context takes the place of SIGINT and
//     the kernel's own shutdown, Kernel.Stop of terminal signals, and the
//     alias-only rule of the IDLE and ZOMBIE signals.
//   - A panicking handler is not caught (POE's CATCH_EXCEPTIONS): Run closes
//     every wheel, acceptor and watched handle, so no goroutine or
//     descriptor leaks, and lets the panic go on.
//   - Code outside the loop may post; POE is single-threaded.
//   - Wheels run goroutines rather than select(): an event a wheel posted
//     before Close or Detach, and not yet handled, is dropped (POE calls
//     input handlers synchronously, so it has no such events), and
//     PauseInput cannot take back records already posted.
//   - ShutdownOutput half-closes after the queued output is written, not at
//     once, since a Go program cannot see when the goroutine has written it.
//   - Watch holds a handle and keeps its session alive like select_read,
//     but posts no readiness events; use a wheel to read.
//   - Pending events are tracked per session and event name (see Tracking).
//   - Framers follow bufio.SplitFunc, not POE::Filter.
package keepalive
