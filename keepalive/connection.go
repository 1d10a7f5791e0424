package keepalive

import (
	"errors"
	"fmt"
	"net"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/leakcheck/leakcheck/tracker"
)

// Connection is a socket lent by a Pool, as POE's Connection::Keepalive. Use
// it as a net.Conn, or Start a wheel over it; Free gives the socket back to
// the pool, Close ends it. After either, its methods return ErrConnClosed,
// so a stale Connection never touches a socket lent to someone else.
//
// A Connection dropped without Free or Close is found by the garbage
// collector: its socket goes back to the pool (its wheel dropped first), and
// the tracker reports the connection as unreleased with the stack of the
// Allocate or Get call that asked for it. This is POE's DESTROY, but late
// and as a diagnosis: free connections explicitly.
type Connection struct {
	key   Key
	cache Cache
	// s is the lent socket: nil before it is lent and after Free or Close.
	// Behind an atomic pointer, the tracker's heap walks do not enter it.
	s             atomic.Pointer[sock]
	rec           tracker.Handle
	cleanup       runtime.Cleanup
	local, remote net.Addr
}

// newConnection makes the Connection of a new request, tracked under owner
// with label (its key) and the stack of the call that asked for it. The garbage collector
// reports it if it is dropped while still registered. It is a method of the
// pool, so reports see it as the pool's machinery and name the caller of
// Get as where the connection was acquired.
func (p *pool) newConnection(key Key, label string, owner *tracker.Session) *Connection {
	c := &Connection{key: key}
	c.rec = tracker.TrackObject(p.reg, c, KindConnection, owner, label)
	return c
}

// lend hands s to c, and its record to owner.
func (c *Connection) lend(s *sock, owner *tracker.Session, cache Cache) {
	s.tc.Handle().Move(owner)
	c.cache = cache
	c.local, c.remote = s.tc.LocalAddr(), s.tc.RemoteAddr()
	// The cleanup's argument never refers to c.
	c.cleanup = runtime.AddCleanup(c, reclaim, lent{s, c.rec})
	c.s.Store(s)
}

// lent is what a lent Connection's cleanup needs: its socket and its record.
type lent struct {
	s   *sock
	rec tracker.Handle
}

// reclaim is the cleanup of a Connection dropped while it held a socket:
// the socket goes back to its pool as if freed.
//
// The tracker's own cleanup on the Connection reports it as unreleased,
// under its holder; cleanups run in no set order. That one goes first:
// otherwise the holder, its wheel dropped, could stop while it still owned
// the record, and report it as its leftover too. The wait is on a goroutine
// of its own, never on the runtime's cleanup goroutine.
func reclaim(l lent) {
	go func() {
		for wait := time.Now().Add(time.Second); l.rec.Live() && time.Now().Before(wait); {
			time.Sleep(100 * time.Microsecond)
		}
		l.s.p.giveBack(l.s, true)
	}()
}

// settle ends c's record and cleanup: it was freed or closed by its holder.
func (c *Connection) settle() {
	c.cleanup.Stop()
	c.rec.Release()
	// c must stay reachable until its cleanup is stopped, or the collector
	// could reclaim a socket that is being freed.
	runtime.KeepAlive(c)
}

// Key returns the key the connection was asked for.
func (c *Connection) Key() Key { return c.key }

// FromCache says whether the socket was pooled: CacheImmediate or
// CacheDeferred; CacheNone for a new connection.
func (c *Connection) FromCache() Cache { return c.cache }

// Start builds a wheel over the socket, owned by the active session, and
// keeps it in the connection: the caller need not hold it. The socket's and
// the connection's records move to the session. Free drops the wheel before
// the socket goes back to the pool; Close closes both. While the wheel runs,
// Read and Write return ErrWheelStarted.
func (c *Connection) Start(ctx *Context, cfg WheelConfig) (*Wheel, error) {
	s := c.s.Load()
	if s == nil {
		return nil, ErrConnClosed
	}
	if ctx == nil || ctx.Session == nil {
		return nil, errors.New("keepalive: start: no active session")
	}
	if err := s.p.sameRegistry(ctx.Kernel); err != nil {
		return nil, fmt.Errorf("keepalive: start: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	// Free takes s out of c before it takes the wheel under s.mu: checking
	// again here means a wheel is never started on a socket being freed.
	if c.s.Load() != s {
		return nil, ErrConnClosed
	}
	if s.wheel != nil {
		return nil, ErrWheelStarted
	}
	w, err := ctx.NewWheel(s.tc, cfg)
	if err != nil {
		return nil, err
	}
	s.wheel = w
	c.rec.Move(ctx.Session.Tracker())
	return w, nil
}

// Wheel returns the wheel Start built, nil if none or after Free or Close.
func (c *Connection) Wheel() *Wheel {
	s := c.s.Load()
	if s == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.wheel
}

// Free gives the socket back to the pool: the wheel is dropped first (the
// wheel and the pool never watch the socket at once), then the socket is
// pooled if it is still fit: open, nothing unread, its peer still there. A
// wheel with output or events pending, or whose input ended, is closed with
// its socket instead. Free returns ErrConnClosed after Free or Close.
// No Read or Write may be under way.
func (c *Connection) Free() error {
	s := c.s.Swap(nil)
	if s == nil {
		return ErrConnClosed
	}
	c.settle()
	s.p.giveBack(s, false)
	return nil
}

// Close closes the socket, and its wheel if any: it is not pooled again.
// It returns ErrConnClosed after Free or Close.
func (c *Connection) Close() error {
	s := c.s.Swap(nil)
	if s == nil {
		return ErrConnClosed
	}
	c.settle()
	return s.p.closeLent(s)
}

// open returns the socket for direct I/O.
func (c *Connection) open() (*sock, error) {
	s := c.s.Load()
	if s == nil {
		return nil, ErrConnClosed
	}
	s.mu.Lock()
	w := s.wheel
	s.mu.Unlock()
	if w != nil {
		return nil, ErrWheelStarted
	}
	return s, nil
}

// Read reads from the socket, as net.Conn's Read.
func (c *Connection) Read(b []byte) (int, error) {
	s, err := c.open()
	if err != nil {
		return 0, err
	}
	return s.tc.Read(b)
}

// Write writes to the socket, as net.Conn's Write.
func (c *Connection) Write(b []byte) (int, error) {
	s, err := c.open()
	if err != nil {
		return 0, err
	}
	return s.tc.Write(b)
}

// LocalAddr returns the socket's local address.
func (c *Connection) LocalAddr() net.Addr { return c.local }

// RemoteAddr returns the socket's remote address.
func (c *Connection) RemoteAddr() net.Addr { return c.remote }

// SetDeadline sets the socket's read and write deadlines; Free clears them.
func (c *Connection) SetDeadline(t time.Time) error {
	s, err := c.open()
	if err != nil {
		return err
	}
	s.deadlines.Store(true)
	return s.tc.SetDeadline(t)
}

// SetReadDeadline sets the socket's read deadline; Free clears it.
func (c *Connection) SetReadDeadline(t time.Time) error {
	s, err := c.open()
	if err != nil {
		return err
	}
	s.deadlines.Store(true)
	return s.tc.SetReadDeadline(t)
}

// SetWriteDeadline sets the socket's write deadline; Free clears it.
func (c *Connection) SetWriteDeadline(t time.Time) error {
	s, err := c.open()
	if err != nil {
		return err
	}
	s.deadlines.Store(true)
	return s.tc.SetWriteDeadline(t)
}

var _ net.Conn = (*Connection)(nil)
