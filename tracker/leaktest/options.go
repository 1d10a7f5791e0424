package leaktest

import (
	"fmt"
	"strings"
	"time"

	"github.com/leakcheck/leakcheck/tracker"
)

// DefaultMaxWait is how long a check waits by default for leftovers to go away
// before it reports them. A goroutine that is merely exiting, or a descriptor
// or record that such a goroutine is about to release, is gone within
// microseconds; a runnable goroutine on a saturated machine gets a processor
// within a few of the scheduler's 10 ms preemption slices. 100 ms covers both
// with a wide margin, and it is paid only when a test really leaks: a clean
// check returns at its first look.
const DefaultMaxWait = 100 * time.Millisecond

// Check names one kind of leak that VerifyNone and VerifyTestMain look for.
// By default they look for all of them.
type Check uint

// Kinds of leaks.
const (
	// Goroutines started by the test and still running.
	Goroutines Check = 1 << iota
	// Descriptors opened during the test and still open (Linux only: they
	// are read from /proc/self/fd; elsewhere this check does nothing).
	Descriptors
	// Records created in a tracker.Registry during the test and still live.
	Records

	allChecks = Goroutines | Descriptors | Records
)

// String returns the kind's name, such as "goroutines"; a set of kinds is
// joined with "+".
func (c Check) String() string {
	var names []string
	for _, ck := range checkers {
		if c&ck.kind != 0 {
			names = append(names, ck.name)
			c &^= ck.kind
		}
	}
	if c != 0 {
		names = append(names, fmt.Sprintf("Check(%#x)", uint(c)))
	}
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, "+")
}

// An Option changes how VerifyNone and VerifyTestMain look for leaks.
type Option interface {
	apply(*config)
}

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

// config is the result of applying options.
type config struct {
	checks     Check
	maxWait    time.Duration
	registry   *tracker.Registry
	skipFailed bool

	topFuncs  map[string]bool
	anyFuncs  map[string]bool
	creators  map[string]bool
	current   map[string]int // goroutine signature -> count, from IgnoreCurrent
	ignoreFD  []func(target string) bool
	ignoreRec []func(tracker.Record) bool

	errs []error // from options that could not do their work
}

func newConfig(opts []Option) *config {
	c := &config{
		checks:   allChecks,
		maxWait:  DefaultMaxWait,
		registry: tracker.Default,
		topFuncs: make(map[string]bool),
		anyFuncs: make(map[string]bool),
		creators: make(map[string]bool),
	}
	for _, o := range opts {
		if o != nil {
			o.apply(c)
		}
	}
	return c
}

// IgnoreTopFunction ignores goroutines whose topmost function is f, a fully
// qualified name such as "internal/poll.runtime_pollWait" or
// "example.com/pkg.(*Server).serve". As in a traceback, the runtime's own
// unexported functions (runtime.gopark, runtime.selectgo...) do not count as
// the top.
func IgnoreTopFunction(f string) Option {
	return optionFunc(func(c *config) { c.topFuncs[f] = true })
}

// IgnoreAnyFunction ignores goroutines that have f anywhere in their stack.
func IgnoreAnyFunction(f string) Option {
	return optionFunc(func(c *config) { c.anyFuncs[f] = true })
}

// IgnoreCreatedBy ignores goroutines started by a go statement in function f,
// the function a traceback names in its "created by f" line. Creators are not
// in the goroutine profile, so a check that has this option and candidate
// leaks reads one text dump of all goroutines to find them; goroutines with
// the same stack are told apart by creator only where their creators agree.
func IgnoreCreatedBy(f string) Option {
	return optionFunc(func(c *config) { c.creators[f] = true })
}

// IgnoreCurrent ignores the goroutines that exist when IgnoreCurrent is called.
// Profiles do not carry goroutine ids, so a goroutine is known by its stack and
// pprof labels: as many goroutines of each such signature as existed then are
// ignored. It matters for VerifyTestMain; under VerifyNone goroutines that
// existed before the test never count anyway, since they do not carry its
// label.
func IgnoreCurrent() Option {
	gs, err := readGoroutines()
	return optionFunc(func(c *config) {
		if err != nil {
			c.errs = append(c.errs, fmt.Errorf("IgnoreCurrent: %w", err))
			return
		}
		if c.current == nil {
			c.current = make(map[string]int)
		}
		for _, g := range gs {
			c.current[g.signature()] += g.count
		}
	})
}

// IgnoreDescriptor ignores open descriptors whose target matches, where target
// is what readlink(2) shows for /proc/self/fd/N: a path, or a form such as
// "socket:[12345]", "pipe:[678]" or "anon_inode:[eventfd]". For example, to
// allow sockets:
//
//	leaktest.IgnoreDescriptor(func(target string) bool {
//		return strings.HasPrefix(target, "socket:")
//	})
func IgnoreDescriptor(match func(target string) bool) Option {
	return optionFunc(func(c *config) {
		if match != nil {
			c.ignoreFD = append(c.ignoreFD, match)
		}
	})
}

// IgnoreRecord ignores tracked records for which match returns true, such as
// the records of one kind or one owner session.
func IgnoreRecord(match func(tracker.Record) bool) Option {
	return optionFunc(func(c *config) {
		if match != nil {
			c.ignoreRec = append(c.ignoreRec, match)
		}
	})
}

// MaxWait bounds how long a check waits for leftovers to go away before it
// reports them; DefaultMaxWait by default. The check looks again after 1 ms,
// then after twice as long each time, and returns as soon as nothing is left.
// Zero looks once.
func MaxWait(d time.Duration) Option {
	return optionFunc(func(c *config) { c.maxWait = max(d, 0) })
}

// Checks limits the check to the given kinds of leaks, such as
// Checks(Goroutines, Records). Without it every kind is checked.
func Checks(kinds ...Check) Option {
	return optionFunc(func(c *config) {
		c.checks = 0
		for _, k := range kinds {
			c.checks |= k & allChecks
		}
	})
}

// Registry sets the registry whose records are checked; tracker.Default
// without it. While the check is in force the registry captures an
// acquisition stack for every record and names each record's creator; both
// are restored when the last check using the registry ends.
func Registry(r *tracker.Registry) Option {
	return optionFunc(func(c *config) {
		if r != nil {
			c.registry = r
		}
	})
}

// SkipIfFailed skips the check of a test that has already failed, or, with
// VerifyTestMain, of a run whose tests failed. By default leaks are reported
// regardless: a failing test that also leaks should say so.
func SkipIfFailed() Option {
	return optionFunc(func(c *config) { c.skipFailed = true })
}
