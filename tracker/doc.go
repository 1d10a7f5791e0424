// Package tracker is an in-process registry of who owns which resource: files,
// sockets, listeners, timers, goroutines, wheels, sessions, and any kind a
// program names. It brings to Go the discipline of Perl's POE runtime, which
// owns every filehandle, timer and session and reports leftovers at shutdown.
//
// A Session is an owner: a connection handler, a worker, a request. Resources
// are tracked under a session (or the root) and released by the program;
// stopping a session returns what it still owns, with owner, age and, when
// enabled, the acquisition stack:
//
//	s := tracker.StartSession("conn 10.0.0.7", nil)
//	f, err := tracker.Open(s, "/var/log/app.log")
//	...
//	for _, rec := range s.Stop() {
//		log.Printf("leaked %s %q", rec.Kind, rec.Label)
//	}
//
// Wrappers track what Go daemons leak most: *os.File (Open, Create,
// OpenFile), net.Conn (Dial, TrackConn), net.Listener (Listen), timers
// (NewTimer, AfterFunc, NewTicker) and goroutines (Go). Track covers the
// rest. Misuse (releasing twice, stopping twice, releasing after the owner
// stopped) is recorded, never a panic.
//
// Stacks are captured never, for one record in N, or always (WithStacks, or
// the LEAKCHECK_STACKS environment variable: off, always, sample:N); each
// distinct stack is stored once. With stacks off, tracking costs about a map
// insert and a map delete.
//
// Beyond leftovers, opt-in checks find the leaks POE's FAQ lists, each
// reported in the Snapshot:
//
//   - unreleased: with WithCleanups (wrappers) or TrackObject (any object),
//     an object the garbage collector found unreachable while still
//     registered: nobody closed it, the collector did.
//   - retained: with WithRetainCheck or Watch, CheckRetained runs a few
//     collections and lists released objects and stopped sessions that are
//     still reachable: an extra reference, a closure, a pending timer.
//   - cycles: FindCycles walks a value by reflection and prints each
//     reference cycle as a path; Session.SetHeap gives sessions a heap that
//     CheckCycles, and WithCycleCheck at Stop, look into.
//   - growth: Gauge registers a collection's size, SampleHeap and
//     SetHeapScheduler sample the collections in session heaps on their
//     owner's goroutine, and StartSampler records the series; the report
//     decides whether they only grow.
//
// With all of them off, tracking and releasing cost one extra flag test.
//
// A registry's state is available as a JSON Snapshot, as pprof profiles of
// live records by acquisition stack (WriteProfile), and over HTTP (Handler).
// When the LEAKCHECK_REPORT environment variable is set, as `leakcheck run`
// does for the daemon it wraps, WriteExitSnapshot writes the final snapshot
// there.
package tracker
