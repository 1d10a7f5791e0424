//go:build !(amd64 && linux)

package tracker

// cputicks is never called here: tscInvariant is false.
func cputicks() int64 { return 0 }

// tscInvariant reports that stamps are nanoseconds from the system clock.
func tscInvariant() bool { return false }
