package tracker

// Kind names what a record tracks. The built-in kinds cover what Go daemons leak
// most; any other name is a user kind.
type Kind string

// Built-in kinds.
const (
	KindFile      Kind = "file"
	KindSocket    Kind = "socket"
	KindListener  Kind = "listener"
	KindTimer     Kind = "timer"
	KindGoroutine Kind = "goroutine"
	KindWheel     Kind = "wheel"
	KindSession   Kind = "session"
)

// State is a record's place in its life.
type State string

// Record states.
const (
	// Live records are tracked and not yet released.
	Live State = "live"
	// Released records were released (or, for sessions, stopped) by the program.
	Released State = "released"
	// Collected records were closed by the garbage collector: their object
	// became unreachable while still registered (see TrackObject).
	Collected State = "collected"
)
