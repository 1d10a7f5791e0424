package keepalive

import (
	"errors"
	"net"
	"sync"
	"sync/atomic"

	"github.com/leakcheck/leakcheck/tracker"
)

// AcceptorConfig names the events an acceptor posts.
type AcceptorConfig struct {
	// Accept is posted with each connection: args (conn net.Conn, id
	// WheelID). The connection is a *tracker.Conn tracked under the session;
	// hand it to NewWheel, or Close it. If the event is never handled (the
	// acceptor closed first), the kernel closes the connection. Required.
	Accept string
	// Error is posted when Accept fails: args ("accept", err error, id
	// WheelID). The acceptor then stops accepting; Close it.
	Error string
}

// Acceptor is a wheel over a net.Listener: a goroutine accepts connections
// and posts them to the session. A live acceptor keeps its session alive;
// Close closes the listener and stops the goroutine.
type Acceptor struct {
	kp       atomic.Pointer[Kernel] // hidden from heap walks, as Wheel's
	sp       atomic.Pointer[Session]
	id       WheelID
	rec      tracker.Handle
	lrec     tracker.Handle
	l        net.Listener // the raw listener
	closer   func() error // closes it and releases its record
	cfg      AcceptorConfig
	isClosed atomic.Bool
	queued   atomic.Int64
	wg       sync.WaitGroup
}

// Listen starts an acceptor over l owned by the active session. A
// *tracker.Listener has its record moved to the session; a plain listener is
// tracked by the session's registry.
func (c *Context) Listen(l net.Listener, cfg AcceptorConfig) (*Acceptor, error) {
	if cfg.Accept == "" {
		return nil, errors.New("keepalive: AcceptorConfig.Accept is required")
	}
	k, s := c.Kernel, c.Session
	a := &Acceptor{cfg: cfg}
	a.kp.Store(k)
	a.sp.Store(s)
	if err := k.addHold(s, a); err != nil {
		return nil, err
	}
	tl, ok := l.(*tracker.Listener)
	if ok {
		if err := tl.Handle().Move(s.ts); err != nil {
			k.dropHold(s, a)
			return nil, err
		}
	} else {
		tl = k.reg.TrackListener(s.ts, l)
	}
	a.l, a.closer, a.lrec = tl.Listener, tl.Close, tl.Handle()
	a.rec = k.reg.Track(tracker.KindWheel, s.ts, "acceptor "+describe(l))
	a.id = WheelID(a.rec.ID())
	ts := s.ts
	a.wg.Go(func() { ts.LabelGoroutine(); a.accept() })
	return a, nil
}

// ID returns the acceptor's id, as its events carry it.
func (a *Acceptor) ID() WheelID { return a.id }

// Addr returns the listener's address.
func (a *Acceptor) Addr() net.Addr { return a.l.Addr() }

func (a *Acceptor) closed() bool { return a.isClosed.Load() }
func (a *Acceptor) settled()     { a.queued.Add(-1) }
func (a *Acceptor) shutdown()    { a.Close() }

func (a *Acceptor) accept() {
	for {
		conn, err := a.l.Accept()
		if err != nil {
			if !a.isClosed.Load() && a.cfg.Error != "" {
				a.queued.Add(1)
				if !a.kp.Load().postSource(a.sp.Load(), a, a.cfg.Error, nil, "accept", err, a.id) {
					a.queued.Add(-1)
				}
			}
			return
		}
		tc := a.kp.Load().reg.TrackConn(a.sp.Load().ts, conn)
		if a.isClosed.Load() {
			tc.Close()
			return
		}
		a.queued.Add(1)
		if !a.kp.Load().postSource(a.sp.Load(), a, a.cfg.Accept, func() { tc.Close() }, net.Conn(tc), a.id) {
			a.queued.Add(-1)
			return
		}
	}
}

// Close closes the listener, waits for the accepting goroutine to end and
// releases the acceptor. Connections accepted but not yet handled are closed.
func (a *Acceptor) Close() error {
	if a.isClosed.Swap(true) {
		return ErrWheelClosed
	}
	err := a.closer()
	a.wg.Wait()
	a.rec.Release()
	a.kp.Load().dropHold(a.sp.Load(), a)
	return err
}
