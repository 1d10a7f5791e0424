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
// A registry's state is available as a JSON Snapshot, as pprof profiles of
// live records by acquisition stack (WriteProfile), and over HTTP (Handler).
// When the LEAKCHECK_REPORT environment variable is set, as `leakcheck run`
// does for the daemon it wraps, WriteExitReport writes the final snapshot
// there.
package tracker
