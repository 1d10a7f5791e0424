package keepalive

import (
	"time"

	"github.com/leakcheck/leakcheck/tracker"
)

// TimerID identifies a pending timer; it is the id of the timer's record in
// the kernel's tracker registry. The zero TimerID is never a timer's.
type TimerID uint64

// timer is one pending timer: an event due at a time, in the kernel's heap
// and in its session's list.
type timer struct {
	id         TimerID
	at         int64  // kernel clock (ns since the kernel was made)
	seq        uint64 // order of setting, to keep equal times first-in first-out
	idx        int    // index in the heap
	s          *Session
	h          tracker.Handle
	c          Context
	prev, next *timer // the session's timers
}

// Delay sets a timer that sends event, with args, to the active session after
// d, and returns its id. A pending timer keeps the session alive. It returns
// 0 if the session is stopping or the kernel is shutting down.
func (c *Context) Delay(event string, d time.Duration, args ...any) TimerID {
	return c.Kernel.setTimer(c.Session, event, c.Kernel.now()+int64(d), args)
}

// Alarm sets a timer that sends event, with args, to the active session at
// at; a time in the past fires at once. See Delay.
func (c *Context) Alarm(event string, at time.Time, args ...any) TimerID {
	return c.Kernel.setTimer(c.Session, event, int64(at.Sub(c.Kernel.epoch)), args)
}

// Remove cancels one of the active session's timers; it reports false if id
// is not a pending timer of this session.
func (c *Context) Remove(id TimerID) bool {
	k := c.Kernel
	k.mu.Lock()
	defer k.mu.Unlock()
	t := k.timerByID[id]
	if t == nil || t.s != c.Session {
		return false
	}
	k.timers.remove(t.idx)
	k.forgetTimerLocked(t)
	t.h.Release()
	k.gcLocked(t.s)
	return true
}

// RemoveAllTimers cancels every pending timer of the active session and
// returns how many there were.
func (c *Context) RemoveAllTimers() int {
	k, s := c.Kernel, c.Session
	k.mu.Lock()
	defer k.mu.Unlock()
	n := 0
	for t := s.timers; t != nil; t = s.timers {
		k.timers.remove(t.idx)
		k.forgetTimerLocked(t)
		t.h.Release()
		n++
	}
	k.gcLocked(s)
	return n
}

// Adjust moves one of the active session's pending timers by delta (earlier
// when negative); it reports false if id is not a pending timer of this
// session.
func (c *Context) Adjust(id TimerID, delta time.Duration) bool {
	k := c.Kernel
	k.mu.Lock()
	defer k.mu.Unlock()
	t := k.timerByID[id]
	if t == nil || t.s != c.Session {
		return false
	}
	t.at += int64(delta)
	k.timers.update(t.idx, t.at)
	return true
}

// When returns when a pending timer of the active session is due.
func (c *Context) When(id TimerID) (time.Time, bool) {
	k := c.Kernel
	k.mu.Lock()
	defer k.mu.Unlock()
	t := k.timerByID[id]
	if t == nil || t.s != c.Session {
		return time.Time{}, false
	}
	return k.epoch.Add(time.Duration(t.at)), true
}

func (k *Kernel) setTimer(s *Session, event string, at int64, args []any) TimerID {
	k.mu.Lock()
	if k.state >= kernelStopping || s.state >= sessionStopping {
		k.mu.Unlock()
		return 0
	}
	t := &timer{at: at, seq: k.timerSeq, s: s}
	k.timerSeq++
	t.c = Context{Kernel: k, Session: s, Sender: s, Event: event, Args: args}
	t.h = s.ts.Track(tracker.KindTimer, event)
	t.id = TimerID(t.h.ID())
	k.timers.push(t)
	k.timerByID[t.id] = t
	t.next = s.timers
	if s.timers != nil {
		s.timers.prev = t
	}
	s.timers = t
	s.ntimers++
	wake := t.idx == 0 && k.wakeLocked()
	k.mu.Unlock()
	if wake {
		k.signal()
	}
	return t.id
}

// forgetTimerLocked unlinks a timer that has left the heap from the kernel's
// index and its session's list.
func (k *Kernel) forgetTimerLocked(t *timer) {
	delete(k.timerByID, t.id)
	s := t.s
	if t.prev != nil {
		t.prev.next = t.next
	} else {
		s.timers = t.next
	}
	if t.next != nil {
		t.next.prev = t.prev
	}
	t.prev, t.next = nil, nil
	s.ntimers--
}

// timerHeap is a 4-ary min-heap of timers by due time, then by order set.
// Entries hold their keys inline, so sifting touches one slice, not every
// timer's memory: with 100,000 timers pending that is most of the cost.
type timerHeap struct{ a []timerEntry }

type timerEntry struct {
	at  int64
	seq uint64
	t   *timer
}

func (h *timerHeap) len() int    { return len(h.a) }
func (h *timerHeap) min() *timer { return h.a[0].t }

func (h *timerHeap) less(i, j int) bool {
	a, b := &h.a[i], &h.a[j]
	return a.at < b.at || (a.at == b.at && a.seq < b.seq)
}

func (h *timerHeap) swap(i, j int) {
	h.a[i], h.a[j] = h.a[j], h.a[i]
	h.a[i].t.idx = i
	h.a[j].t.idx = j
}

func (h *timerHeap) push(t *timer) {
	t.idx = len(h.a)
	h.a = append(h.a, timerEntry{at: t.at, seq: t.seq, t: t})
	h.up(t.idx)
}

func (h *timerHeap) pop() *timer {
	t := h.a[0].t
	h.remove(0)
	return t
}

func (h *timerHeap) remove(i int) {
	n := len(h.a) - 1
	if i != n {
		h.swap(i, n)
	}
	t := h.a[n].t
	h.a[n] = timerEntry{}
	h.a = h.a[:n]
	t.idx = -1
	if i != n {
		h.fix(i)
	}
	if cap(h.a) > 1024 && len(h.a) < cap(h.a)/8 {
		h.a = append([]timerEntry(nil), h.a...)
	}
}

// update sets the due time of the timer at i and restores the heap.
func (h *timerHeap) update(i int, at int64) {
	h.a[i].at = at
	h.fix(i)
}

func (h *timerHeap) fix(i int) {
	if !h.down(i) {
		h.up(i)
	}
}

func (h *timerHeap) up(i int) {
	for i > 0 {
		p := (i - 1) / 4
		if !h.less(i, p) {
			return
		}
		h.swap(i, p)
		i = p
	}
}

// down sifts element i down and reports whether it moved.
func (h *timerHeap) down(i int) bool {
	start, n := i, len(h.a)
	for {
		c := 4*i + 1
		if c >= n {
			break
		}
		m := c
		for j := c + 1; j < c+4 && j < n; j++ {
			if h.less(j, m) {
				m = j
			}
		}
		if !h.less(m, i) {
			break
		}
		h.swap(i, m)
		i = m
	}
	return i > start
}
