package keepalive

import (
	"errors"
	"io"
	"net"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/leakcheck/leakcheck/tracker"
)

type sockState uint8

const (
	sockNew    sockState = iota // just connected, not yet idle or lent
	sockIdle                    // in the pool
	sockLent                    // held by a Connection
	sockClosed                  // off the books: closed or being closed
)

// sock is one socket of a pool. It is the argument of a Connection's
// cleanup, so it never refers to the Connection.
type sock struct {
	p  *pool
	h  *host // its key's state, kept while the socket is open
	tc *tracker.Conn
	// raw reaches the descriptor under tc, nil if there is none; direct
	// says it is tc's own, not that of a connection tc wraps (TLS).
	raw    syscall.RawConn
	direct bool

	// Guarded by p.mu.
	state     sockState
	idleSince time.Time
	// watch starts the idle watcher after watchDelay; watcher counts it
	// from the time it is armed until it is stopped or has ended; watched
	// says it is armed or running, and not yet taken back by unwatchLocked.
	watch   *time.Timer
	watcher sync.WaitGroup
	watched bool
	// The idle lists: all keys (g) and the socket's key (h).
	gPrev, gNext, hPrev, hNext *sock

	mu    sync.Mutex // guards wheel
	wheel *Wheel
	// deadlines is set when the holder set a deadline, which Free clears.
	deadlines atomic.Bool
}

// health is what a look at an idle or freed socket found.
type health uint8

const (
	healthy    health = iota
	unreadData        // the peer sent something nobody read
	peerClosed        // the peer closed its end
	broken            // an error: reset, closed here, deadline failure
	leftover          // the wheel held input it had not handed out
)

// check looks at a socket nobody reads, at once: a non-blocking MSG_PEEK on
// its descriptor when it has one (see peek), otherwise a read with a
// deadline a millisecond away.
//
// A TLS connection is peeked at under the TLS layer: records it has not
// read, a session ticket sent after the handshake to a caller that never
// read, make it look unfit. That errs on the safe side.
func (s *sock) check() health {
	if s.raw != nil {
		return peek(s.raw, false)
	}
	// A read whose deadline has passed returns before it looks at the
	// socket: give it a moment. Anything it reads makes the socket unfit.
	if s.tc.SetReadDeadline(time.Now().Add(time.Millisecond)) != nil {
		return broken
	}
	var b [1]byte
	n, err := s.tc.Read(b[:])
	if s.tc.SetReadDeadline(time.Time{}) != nil {
		return broken
	}
	return readHealth(n, err)
}

// readHealth judges the result of a read on an idle socket.
func readHealth(n int, err error) health {
	switch {
	case n > 0:
		return unreadData
	case errors.Is(err, os.ErrDeadlineExceeded):
		return healthy
	case errors.Is(err, io.EOF):
		return peerClosed
	default:
		return broken
	}
}

// waitIdle blocks until an idle socket becomes readable (data, the peer's
// close, an error) or its read deadline passes (healthy: the keep-alive time
// ran out, or a taker interrupted the wait). With a descriptor it waits in
// the network poller and reads nothing.
func (s *sock) waitIdle() health {
	if s.raw != nil && s.direct {
		return peek(s.raw, true)
	}
	// A wrapper such as TLS reads what its layer sends on an idle
	// connection (session tickets, key updates) and returns only data, a
	// close or an error.
	var b [1]byte
	n, err := s.tc.Read(b[:])
	return readHealth(n, err)
}

// watchDelay is how long a socket is idle before a goroutine watches it. A
// socket lent again sooner costs a timer's Reset and Stop, not a goroutine
// and two deadline changes; that it is fit is checked at hand-over anyway.
const watchDelay = 5 * time.Millisecond

// watchLocked arms the idle watcher of s. It is counted in the pool's wait
// group from now, so Shutdown waits for it.
func (p *pool) watchLocked(s *sock) {
	s.watched = true
	s.watcher.Add(1)
	p.wg.Add(1)
	if s.watch == nil {
		s.watch = time.AfterFunc(watchDelay, func() { p.watchIdle(s) })
	} else {
		s.watch.Reset(watchDelay)
	}
}

// unwatchLocked ends the watch of a socket taken off the idle list: a
// watcher that has not started never will; it reports whether one runs,
// which must then be interrupted (a read deadline in the past) and waited
// for (s.watcher.Wait) before the socket is lent.
func (p *pool) unwatchLocked(s *sock) (running bool) {
	if !s.watched {
		return false // taken as it became idle, before it was watched
	}
	s.watched = false
	if s.watch.Stop() {
		s.watcher.Done()
		p.wg.Done()
		return false
	}
	return true
}

// watchIdle watches an idle socket until it is taken, or until its peer
// closes it, sends data or breaks it, or its keep-alive time runs out: then
// it closes it.
func (p *pool) watchIdle(s *sock) {
	defer p.wg.Done()
	defer s.watcher.Done()
	p.mu.Lock()
	if s.state != sockIdle {
		p.mu.Unlock()
		return // taken or closed as the timer fired
	}
	// Under the lock, so that a taker's deadline always comes after it.
	err := s.tc.SetReadDeadline(s.idleSince.Add(p.cfg.KeepAlive))
	p.mu.Unlock()
	why := broken
	if err == nil {
		why = s.waitIdle()
	}
	var a actions
	p.mu.Lock()
	if s.state != sockIdle {
		p.mu.Unlock()
		return // taken, or closed by Shutdown or an eviction
	}
	if why == healthy {
		p.expired.Add(1)
	} else {
		p.discarded.Add(1)
	}
	p.closeIdleLocked(s, &a, why == unreadData)
	p.dispatchLocked(&a)
	p.mu.Unlock()
	p.run(&a)
}

// close closes the socket, resetting it (SO_LINGER 0) when abort is set, and
// releases its record unless whoever closed it first did.
func (s *sock) close(abort bool) {
	if abort {
		if tc, ok := s.tc.Conn.(*net.TCPConn); ok {
			tc.SetLinger(0)
		}
	}
	if s.tc.Handle().Live() {
		s.tc.Close()
	} else {
		s.tc.Conn.Close()
	}
}

// outputGrace bounds how long Free waits for a wheel's output to be
// counted as written.
const outputGrace = 50 * time.Millisecond

// takeWheel returns the socket's wheel, if any, and forgets it.
func (s *sock) takeWheel() *Wheel {
	s.mu.Lock()
	defer s.mu.Unlock()
	w := s.wheel
	s.wheel = nil
	return w
}

// dropWheel stops the socket's wheel, if any, before the socket goes back to
// the pool: the wheel and the pool must never watch the socket at once. It
// reports whether the socket is still fit as far as the wheel knows, and
// whether it is closed already. A wheel that cannot let go (output or events
// pending, input ended or failed) is closed, and its socket with it.
func (s *sock) dropWheel() (why health, gone bool) {
	w := s.takeWheel()
	if w == nil {
		return healthy, false
	}
	// The wheel's writer counts its output written only once its write
	// has returned, and the reply to that output may be handled before
	// the writer runs again: give it a moment rather than take the socket
	// for busy. Output that is really stuck (a peer that does not read)
	// still gets the socket closed, after outputGrace.
	wait := time.Now().Add(outputGrace)
	for i := 0; w.Buffered() > 0 && time.Now().Before(wait); i++ {
		if i < 10 {
			runtime.Gosched()
		} else {
			time.Sleep(50 * time.Microsecond) // leave the CPU to the writer
		}
	}
	rw, err := w.Detach()
	switch {
	case err == nil && rw != io.ReadWriteCloser(s.tc):
		// The wheel had read input it had not framed into a record.
		return leftover, false
	case err == nil:
		return healthy, false
	case errors.Is(err, ErrWheelClosed):
		// Closed (the socket with it), or detached by the caller.
		return healthy, !s.tc.Handle().Live()
	}
	if s.raw != nil && peek(s.raw, false) == unreadData {
		if tc, ok := s.tc.Conn.(*net.TCPConn); ok {
			tc.SetLinger(0)
		}
	}
	w.Close()
	return broken, true
}
