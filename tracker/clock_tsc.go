//go:build amd64 && linux

package tracker

import (
	"bytes"
	"os"
	"sync"
)

// cputicks returns the processor's time-stamp counter (clock_tsc_amd64.s).
func cputicks() int64

// tscInvariant reports whether the kernel keeps time by the time-stamp
// counter, and so trusts it to be invariant and synchronized across cores. It
// is a fact of the machine, read once.
var tscInvariant = sync.OnceValue(func() bool {
	b, err := os.ReadFile("/sys/devices/system/clocksource/clocksource0/current_clocksource")
	return err == nil && bytes.Equal(bytes.TrimSpace(b), []byte("tsc"))
})
