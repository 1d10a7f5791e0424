package keepalive

import (
	"errors"
	"io"
	"net"
	"os"
	"sync/atomic"

	"github.com/leakcheck/leakcheck/tracker"
)

// ErrNotWatched is returned by a Watched handle that was already closed,
// unwatched or given away by its session.
var ErrNotWatched = errors.New("keepalive: handle not watched")

// Watched is a handle (a file, socket, listener, anything with Close) that a
// session holds without a wheel. Like POE's watched filehandles it keeps the
// session alive until it is closed, unwatched or given to another session;
// when the session stops with it still watched (a kernel shutdown), the
// kernel closes it and reports it.
type Watched struct {
	kp    atomic.Pointer[Kernel]  // hidden from heap walks, as Wheel's
	sp    atomic.Pointer[Session] // written under the kernel's lock; nil once no longer watched
	h     io.Closer
	rec   tracker.Handle
	owned bool // rec was made by Watch, not moved from a tracker wrapper
}

// Watch makes the active session the holder of h. The record of a tracker
// wrapper (*tracker.File, *tracker.Conn, *tracker.Listener) moves to the
// session; anything else gets a record of kind file, socket, listener or
// "handle", labeled by label (or a description of h when label is "").
func (c *Context) Watch(h io.Closer, label string) (*Watched, error) {
	k, s := c.Kernel, c.Session
	w := &Watched{h: h}
	w.kp.Store(k)
	w.sp.Store(s)
	if err := k.addHold(s, w); err != nil {
		return nil, err
	}
	if t, ok := h.(interface{ Handle() tracker.Handle }); ok {
		w.rec = t.Handle()
		if err := w.rec.Move(s.ts); err != nil {
			k.dropHold(s, w)
			return nil, err
		}
		return w, nil
	}
	kind := KindHandle
	switch h.(type) {
	case *os.File:
		kind = tracker.KindFile
	case net.Conn, net.PacketConn:
		kind = tracker.KindSocket
	case net.Listener:
		kind = tracker.KindListener
	}
	if label == "" {
		label = describe(h)
	}
	w.rec = k.reg.Track(kind, s.ts, label)
	w.owned = true
	return w, nil
}

// Handle returns the record tracking the handle.
func (w *Watched) Handle() tracker.Handle { return w.rec }

// Session returns the session watching the handle, nil once it is not watched.
func (w *Watched) Session() *Session {
	k := w.kp.Load()
	k.mu.Lock()
	defer k.mu.Unlock()
	return w.sp.Load()
}

// take ends the watch and returns the session that held it.
func (w *Watched) take() *Session {
	k := w.kp.Load()
	k.mu.Lock()
	s := w.sp.Swap(nil)
	k.mu.Unlock()
	if s != nil {
		k.dropHold(s, w)
	}
	return s
}

// Close closes the handle and stops watching it.
func (w *Watched) Close() error {
	if w.take() == nil {
		return ErrNotWatched
	}
	err := w.h.Close()
	if w.owned {
		w.rec.Release()
	}
	return err
}

// Unwatch stops watching the handle without closing it and returns it. A
// record made by Watch is released; a tracker wrapper keeps its record, still
// owned by the session until moved.
func (w *Watched) Unwatch() (io.Closer, error) {
	if w.take() == nil {
		return nil, ErrNotWatched
	}
	if w.owned {
		w.rec.Release()
	}
	return w.h, nil
}

// Give hands the handle to another session of the same kernel, which then
// watches it (and is kept alive by it); the record moves with it.
func (w *Watched) Give(to *Session) error {
	k := w.kp.Load()
	if to == nil || to.k != k {
		return ErrForeignSession
	}
	if err := k.addHold(to, w); err != nil {
		return err
	}
	k.mu.Lock()
	from := w.sp.Load()
	if from == nil {
		k.mu.Unlock()
		k.dropHold(to, w)
		return ErrNotWatched
	}
	w.sp.Store(to)
	k.mu.Unlock()
	k.dropHold(from, w)
	return w.rec.Move(to.ts)
}

func (w *Watched) shutdown() { w.Close() }
