package leaktest

import (
	"github.com/leakcheck/leakcheck/tracker/stack"
)

// The goroutine profile carries stacks and labels but neither goroutine ids,
// wait states nor creators. Those come from the runtime's text tracebacks,
// which package stack reads; in its lenient mode, since a line it cannot
// place must never stop a test. Labels are printed only under
// GODEBUG=tracebacklabels=1.

// currentGoroutine returns the calling goroutine as runtime.Stack prints it,
// with its id and, when the runtime printed it, the goroutine that created it.
func currentGoroutine() (stack.Goroutine, bool) {
	d, _ := stack.Parse(stack.Current(), stack.Lenient)
	if len(d.Goroutines) == 0 {
		return stack.Goroutine{}, false
	}
	return d.Goroutines[0], true
}

// allGoroutines returns every goroutine of a traceback of the process.
func allGoroutines() []stack.Goroutine {
	d, _ := stack.Parse(coord.traceback(), stack.Lenient)
	return d.Goroutines
}
