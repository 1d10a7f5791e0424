package tracker

import "time"

// A clock stamps records with their creation time. Reading the system clock
// is a large share of Track: time.Since costs about 35 ns on a virtual machine,
// a third of a Track and Release. Where the kernel itself keeps time by the
// processor's time-stamp counter (amd64 Linux with the tsc clocksource, which
// the kernel picks only when the counter is invariant and synchronized across
// cores), a record keeps the raw counter, read in about 12 ns, and stamps are
// turned into times only when records are read, at the rate the counter ran
// since the registry was made. Elsewhere a stamp is nanoseconds since then.
type clock struct {
	base      time.Time // with its monotonic reading
	baseStamp int64
	tsc       bool
}

// newClock returns a clock that counts with the time-stamp counter when tsc
// is set, and in nanoseconds otherwise.
func newClock(tsc bool) clock {
	c := clock{base: time.Now(), tsc: tsc}
	if tsc {
		c.baseStamp = cputicks()
	}
	return c
}

// stamp returns the current stamp.
func (c *clock) stamp() int64 {
	if c.tsc {
		return cputicks()
	}
	return int64(time.Since(c.base))
}

// A scale turns stamps into times.
type scale struct {
	base      time.Time
	baseStamp int64
	perStamp  float64 // nanoseconds per stamp
}

// scale measures the rate of the stamps now. The error it makes on a stamp's
// time is about the time between its own two clock reads, nanoseconds unless
// it was preempted in between.
func (c *clock) scale() scale {
	s := scale{base: c.base, baseStamp: c.baseStamp, perStamp: 1}
	if c.tsc {
		now, ticks := time.Now(), cputicks()
		s.perStamp = 0
		if ticks > c.baseStamp {
			s.perStamp = float64(now.Sub(c.base)) / float64(ticks-c.baseStamp)
		}
	}
	return s
}

// time returns the time of stamp, taken before now: no later than now, even
// when the rate is off by a little.
func (s scale) time(stamp int64, now time.Time) time.Time {
	t := s.base.Add(time.Duration(float64(stamp-s.baseStamp) * s.perStamp))
	if t.After(now) {
		return now
	}
	return t
}
