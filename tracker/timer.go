package tracker

import (
	"sync"
	"sync/atomic"
	"time"
)

// Timer is a tracked one-shot timer: live from start until it fires or is
// stopped. Unlike time.Timer, its channel has a buffer of one and Reset and
// Stop drain it, so no stale tick is received after either returns.
type Timer struct {
	// C delivers the time when a timer made by NewTimer fires; it is nil for
	// timers made by AfterFunc.
	C <-chan time.Time

	c     chan time.Time
	f     func()
	reg   *Registry
	owner *Session
	label string

	mu sync.Mutex // guards t and h
	t  *time.Timer
	h  Handle
}

// NewTimer starts a timer under owner that sends the time on C after d.
func (r *Registry) NewTimer(owner *Session, d time.Duration) *Timer {
	c := make(chan time.Time, 1)
	t := &Timer{C: c, c: c, reg: r, owner: owner, label: "timer " + d.String()}
	t.start(d, 2)
	return t
}

// AfterFunc starts a timer under owner that runs f in its own goroutine after d.
func (r *Registry) AfterFunc(owner *Session, d time.Duration, f func()) *Timer {
	t := &Timer{f: f, reg: r, owner: owner, label: "after func " + d.String()}
	t.start(d, 2)
	return t
}

func (t *Timer) start(d time.Duration, skip int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	h := t.reg.track(KindTimer, t.owner, t.label, skip+1)
	t.h = h
	t.t = time.AfterFunc(d, func() { t.fire(h) })
}

// fire runs when the timer armed with h expires.
func (t *Timer) fire(h Handle) {
	t.mu.Lock()
	if t.h != h {
		// Stopped or reset after the runtime fired but before we got the
		// lock: the timer counts as stopped, so it does not deliver.
		t.mu.Unlock()
		return
	}
	t.h = Handle{}
	h.release(0)
	t.mu.Unlock()
	if t.f != nil {
		t.f()
		return
	}
	select {
	case t.c <- time.Now():
	default:
	}
}

// Stop stops the timer and releases its record. It returns false if the timer
// had already fired or been stopped.
func (t *Timer) Stop() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.disarm()
}

// disarm stops the running timer, if any, and drains C; the caller holds mu.
func (t *Timer) disarm() bool {
	t.t.Stop()
	active := t.h.rec != nil
	if active {
		t.h.release(2)
	}
	t.h = Handle{}
	if t.c != nil {
		select {
		case <-t.c:
		default:
		}
	}
	return active
}

// Reset re-arms the timer to fire after d, tracked anew. It returns whether
// the timer was active.
func (t *Timer) Reset(d time.Duration) bool {
	t.mu.Lock()
	active := t.disarm()
	t.mu.Unlock()
	t.start(d, 1)
	return active
}

// Ticker is a tracked time.Ticker, live until Stop.
type Ticker struct {
	*time.Ticker
	h       Handle
	stopped atomic.Bool
}

// NewTicker starts a ticker under owner.
func (r *Registry) NewTicker(owner *Session, d time.Duration) *Ticker {
	t := &Ticker{Ticker: time.NewTicker(d), h: r.track(KindTimer, owner, "ticker "+d.String(), 1)}
	attachObject(t.h, t, false) // opt-in checks: a ticker dropped without Stop is unreleased
	return t
}

// Stop stops the ticker and releases its record. Stopping again does nothing,
// as with time.Ticker.
func (t *Ticker) Stop() {
	t.Ticker.Stop()
	if t.stopped.CompareAndSwap(false, true) {
		t.h.release(1)
	}
}
