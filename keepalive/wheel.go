package keepalive

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/leakcheck/leakcheck/tracker"
)

// WheelID identifies a wheel or acceptor; it is the id of its record in the
// kernel's tracker registry.
type WheelID uint64

// Wheel errors.
var (
	ErrWheelClosed    = errors.New("keepalive: wheel closed")
	ErrOutputShutdown = errors.New("keepalive: wheel output shut down")
	ErrNoHalfClose    = errors.New("keepalive: handle cannot half-close")
	ErrCannotDetach   = errors.New("keepalive: wheel cannot detach its handle")
)

// holder is what a session holds open and the kernel closes when the session
// stops: wheels, acceptors, watched handles.
type holder interface {
	shutdown()
}

// eventSource is a producer of events that are dropped once it is closed.
type eventSource interface {
	closed() bool
	settled() // one of its events was dispatched or dropped
}

// addHold records that s holds h, tracked by rec. It fails if s or the kernel
// is on the way out.
func (k *Kernel) addHold(s *Session, h holder) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.state >= kernelStopping {
		return ErrKernelStopped
	}
	if s.state >= sessionStopping {
		return s.stoppedErr()
	}
	if s.holds == nil {
		s.holds = make(map[holder]struct{})
	}
	s.holds[h] = struct{}{}
	k.holds++
	return nil
}

// dropHold records that s no longer holds h; s may then be garbage.
func (k *Kernel) dropHold(s *Session, h holder) {
	k.mu.Lock()
	if _, ok := s.holds[h]; ok {
		delete(s.holds, h)
		k.holds--
		k.gcLocked(s)
	}
	wake := len(k.gcq) > 0 && k.wakeLocked()
	k.mu.Unlock()
	if wake {
		k.signal()
	}
}

// WheelConfig names the events a wheel posts to its session and sets its
// framing and water marks.
type WheelConfig struct {
	// Input is posted with each record: args (record []byte, id WheelID).
	// Required.
	Input string
	// Error is posted when a read or write fails: args (op string, err
	// error, id WheelID), op being "read" or "write". A read error io.EOF is
	// the end of input. Without it, errors are not reported (but Put returns
	// a write error).
	Error string
	// Flushed is posted each time the output buffer drains: args (id).
	Flushed string
	// High is posted when the buffered output reaches HighMark bytes, Low
	// when it falls back to LowMark or below: args (id). Both need
	// HighMark > 0; LowMark must be below HighMark.
	High, Low         string
	HighMark, LowMark int
	// Framer splits input and frames output; Lines() when nil.
	Framer Framer
	// MaxRecord bounds the input buffered while looking for one record
	// (DefaultMaxRecord when 0); beyond it the read fails with
	// ErrRecordTooLarge.
	MaxRecord int
}

// Wheel is a read/write loop over an io.ReadWriteCloser, usually a net.Conn:
// one goroutine reads and posts a record event per record, one writes what
// Put queued. The goroutines only post events; they never touch session
// state. A live wheel keeps its session alive; Close stops both goroutines
// and closes the handle, Detach stops them and hands the handle back. When
// its session stops, the kernel closes the wheels it still has.
//
// The handle is tracked under the session: a *tracker.Conn or *tracker.File
// has its record moved to the session (tracker Handle.Move), a plain net.Conn
// or *os.File is wrapped by the session's registry.
type Wheel struct {
	// kp and sp point back to the kernel and session through types the
	// tracker's heap walks do not enter (see WithHeapChecks).
	kp     atomic.Pointer[Kernel]
	sp     atomic.Pointer[Session]
	id     WheelID
	rec    tracker.Handle // the wheel's own record
	hrec   tracker.Handle // the handle's record, if tracked
	rw     io.ReadWriteCloser
	cfg    WheelConfig
	framer Framer

	isClosed atomic.Bool  // closed or detached: no more events
	queued   atomic.Int64 // events posted and not yet dispatched or dropped
	paused   atomic.Bool
	inShut   atomic.Bool
	done     chan struct{}
	kick     chan struct{}
	resume   chan struct{}
	wg       sync.WaitGroup

	// st holds what the wheel's goroutines share, behind a type that the
	// tracker's heap walks (cycle finder, heap sampling) do not enter, so a
	// heap holding a wheel never has them read its buffers unlocked.
	st atomic.Pointer[wheelState]
}

// wheelState is the part of a wheel its goroutines and callers share.
type wheelState struct {
	mu          sync.Mutex // guards the fields below
	out         []byte
	inflight    int
	high        bool
	outShut     bool
	outShutDone bool
	writeErr    error
	readErr     error
	unread      []byte
}

// NewWheel starts a wheel over rw owned by the active session.
func (c *Context) NewWheel(rw io.ReadWriteCloser, cfg WheelConfig) (*Wheel, error) {
	if cfg.Input == "" {
		return nil, errors.New("keepalive: WheelConfig.Input is required")
	}
	if cfg.HighMark < 0 || cfg.LowMark < 0 || (cfg.HighMark > 0 && cfg.LowMark >= cfg.HighMark) {
		return nil, fmt.Errorf("keepalive: water marks: low %d must be below high %d", cfg.LowMark, cfg.HighMark)
	}
	if cfg.Framer == nil {
		cfg.Framer = Lines()
	}
	if cfg.MaxRecord <= 0 {
		cfg.MaxRecord = DefaultMaxRecord
	}
	k, s := c.Kernel, c.Session
	w := &Wheel{
		cfg: cfg, framer: cfg.Framer,
		done:   make(chan struct{}),
		kick:   make(chan struct{}, 1),
		resume: make(chan struct{}, 1),
	}
	w.st.Store(&wheelState{})
	w.kp.Store(k)
	w.sp.Store(s)
	if err := k.addHold(s, w); err != nil {
		return nil, err
	}
	rw, hrec, err := k.adopt(s, rw)
	if err != nil {
		k.dropHold(s, w)
		return nil, err
	}
	w.rw, w.hrec = rw, hrec
	w.rec = k.reg.Track(tracker.KindWheel, s.ts, "wheel "+describe(rw))
	w.id = WheelID(w.rec.ID())
	// Its goroutines carry the session's pprof label, so goroutine
	// profiles say whose wheels pile up.
	ts := s.ts
	w.wg.Go(func() { ts.LabelGoroutine(); w.reader() })
	w.wg.Go(func() { ts.LabelGoroutine(); w.writer() })
	return w, nil
}

// adopt tracks the handle rw under s: it moves the record of a tracker
// wrapper, wraps a plain connection or file, and leaves anything else as is.
func (k *Kernel) adopt(s *Session, rw io.ReadWriteCloser) (io.ReadWriteCloser, tracker.Handle, error) {
	switch v := rw.(type) {
	case *tracker.Conn:
		return v, v.Handle(), v.Handle().Move(s.ts)
	case *tracker.File:
		return v, v.Handle(), v.Handle().Move(s.ts)
	case net.Conn:
		tc := k.reg.TrackConn(s.ts, v)
		return tc, tc.Handle(), nil
	case *os.File:
		tf := k.reg.TrackFile(s.ts, v)
		return tf, tf.Handle(), nil
	}
	return rw, tracker.Handle{}, nil
}

// describe names a handle for records: its addresses or file name.
func describe(h any) string {
	switch v := h.(type) {
	case interface{ Handle() tracker.Handle }:
		if l := v.Handle().Label(); l != "" {
			return l
		}
	case net.Conn:
		return v.LocalAddr().Network() + " " + v.LocalAddr().String() + " -> " + v.RemoteAddr().String()
	case net.Listener:
		return v.Addr().Network() + " " + v.Addr().String()
	case *os.File:
		return v.Name()
	}
	return fmt.Sprintf("%T", h)
}

// ID returns the wheel's id, as its events carry it.
func (w *Wheel) ID() WheelID { return w.id }

// Session returns the session that owns the wheel.
func (w *Wheel) Session() *Session { return w.sp.Load() }

// Handle returns the tracker record of the wheel's handle (the socket or
// file), zero if the handle is not tracked. After Detach it stays with the
// session until moved, e.g. to a pool's session.
func (w *Wheel) Handle() tracker.Handle { return w.hrec }

// closed and settled make a wheel an eventSource.
func (w *Wheel) closed() bool { return w.isClosed.Load() }
func (w *Wheel) settled()     { w.queued.Add(-1) }
func (w *Wheel) shutdown()    { w.Close() }

// emit posts event to the session unless the wheel is closed; it reports
// whether the event was queued.
func (w *Wheel) emit(event string, args ...any) bool {
	ws := w.st.Load()
	if event == "" {
		return true
	}
	ws.mu.Lock()
	if w.isClosed.Load() {
		ws.mu.Unlock()
		return false
	}
	w.queued.Add(1)
	ws.mu.Unlock()
	if !w.kp.Load().postSource(w.sp.Load(), w, event, nil, args...) {
		w.queued.Add(-1)
		return false
	}
	return true
}

// Put frames records and queues them for writing. It returns
// ErrWheelClosed, ErrOutputShutdown, the error of a failed earlier write, or
// a framing error (records before the bad one are queued).
func (w *Wheel) Put(records ...[]byte) error {
	ws := w.st.Load()
	ws.mu.Lock()
	switch {
	case w.isClosed.Load():
		ws.mu.Unlock()
		return ErrWheelClosed
	case ws.outShut:
		ws.mu.Unlock()
		return ErrOutputShutdown
	case ws.writeErr != nil:
		err := ws.writeErr
		ws.mu.Unlock()
		return err
	}
	var err error
	for _, r := range records {
		if ws.out, err = w.framer.Frame(ws.out, r); err != nil {
			break
		}
	}
	high := w.cfg.HighMark > 0 && !ws.high && len(ws.out)+ws.inflight >= w.cfg.HighMark
	if high {
		ws.high = true
	}
	ws.mu.Unlock()
	select {
	case w.kick <- struct{}{}:
	default:
	}
	if high {
		w.emit(w.cfg.High, w.id)
	}
	return err
}

// Buffered returns how many framed bytes wait to be written, including those
// being written now.
func (w *Wheel) Buffered() int {
	ws := w.st.Load()
	ws.mu.Lock()
	defer ws.mu.Unlock()
	return len(ws.out) + ws.inflight
}

// PauseInput stops the wheel from posting input records and from reading
// until ResumeInput, so a slow session pushes back on its peer through TCP
// flow control. Records already posted are still delivered.
func (w *Wheel) PauseInput() { w.paused.Store(true) }

// ResumeInput undoes PauseInput.
func (w *Wheel) ResumeInput() {
	w.paused.Store(false)
	select {
	case w.resume <- struct{}{}:
	default:
	}
}

// ShutdownInput stops input: no more input events are posted, and a TCP or
// Unix connection is half-closed for reading.
func (w *Wheel) ShutdownInput() error {
	if w.inShut.Swap(true) {
		return nil
	}
	if cr, ok := unwrapConn(w.rw).(interface{ CloseRead() error }); ok {
		return cr.CloseRead()
	}
	return nil
}

// ShutdownOutput half-closes a TCP or Unix connection for writing once the
// output queued so far is written; Put then returns ErrOutputShutdown. It
// returns ErrNoHalfClose for handles that cannot half-close.
func (w *Wheel) ShutdownOutput() error {
	ws := w.st.Load()
	if _, ok := unwrapConn(w.rw).(interface{ CloseWrite() error }); !ok {
		return ErrNoHalfClose
	}
	ws.mu.Lock()
	if w.isClosed.Load() {
		ws.mu.Unlock()
		return ErrWheelClosed
	}
	ws.outShut = true
	ws.mu.Unlock()
	select {
	case w.kick <- struct{}{}:
	default:
	}
	return nil
}

// unwrapConn returns the connection inside a tracker wrapper.
func unwrapConn(rw io.ReadWriteCloser) any {
	if tc, ok := rw.(*tracker.Conn); ok {
		return tc.Conn
	}
	return rw
}

// Close stops the wheel's goroutines, closes its handle (releasing its
// record) and returns the handle's Close error. Output not yet written is
// lost: wait for the Flushed event first when it matters. Events the wheel
// posted but the session has not handled yet are dropped.
func (w *Wheel) Close() error {
	ws := w.st.Load()
	ws.mu.Lock()
	if w.isClosed.Load() {
		ws.mu.Unlock()
		return ErrWheelClosed
	}
	w.isClosed.Store(true)
	ws.mu.Unlock()
	close(w.done)
	err := w.rw.Close()
	w.wg.Wait()
	w.rec.Release()
	w.kp.Load().dropHold(w.sp.Load(), w)
	return err
}

// Detach stops the wheel's goroutines without closing the handle and returns
// it, as a pool takes back a kept-alive socket: a read under way is
// interrupted with a read deadline, and input read but not yet framed into a
// record is returned first by the handle's Read. The handle's record stays
// with the session; move it to its next owner.
//
// Detach refuses, leaving the wheel running, when the handle cannot be
// interrupted (it has no SetReadDeadline), output is still buffered, input or
// error events are still pending, or input or output has ended or failed: such
// a handle is not fit for reuse; Close it.
func (w *Wheel) Detach() (io.ReadWriteCloser, error) {
	ws := w.st.Load()
	dl, ok := w.rw.(interface{ SetReadDeadline(time.Time) error })
	if !ok {
		return nil, fmt.Errorf("%w: %T has no read deadline", ErrCannotDetach, w.rw)
	}
	ws.mu.Lock()
	var why string
	switch {
	case w.isClosed.Load():
		ws.mu.Unlock()
		return nil, ErrWheelClosed
	case len(ws.out)+ws.inflight > 0:
		why = "output pending"
	case w.queued.Load() > 0:
		why = "events pending"
	case ws.readErr != nil:
		why = "input ended: " + ws.readErr.Error()
	case ws.writeErr != nil:
		why = "output failed: " + ws.writeErr.Error()
	case ws.outShut || w.inShut.Load():
		why = "shut down"
	}
	if why != "" {
		ws.mu.Unlock()
		return nil, fmt.Errorf("%w: %s", ErrCannotDetach, why)
	}
	w.isClosed.Store(true)
	ws.mu.Unlock()
	close(w.done)
	if err := dl.SetReadDeadline(time.Unix(1, 0)); err != nil {
		w.rw.Close()
		w.wg.Wait()
		w.rec.Release()
		w.kp.Load().dropHold(w.sp.Load(), w)
		return nil, fmt.Errorf("%w: %v (closed)", ErrCannotDetach, err)
	}
	w.wg.Wait()
	dl.SetReadDeadline(time.Time{})
	w.rec.Release()
	w.kp.Load().dropHold(w.sp.Load(), w)
	if len(ws.unread) == 0 {
		return w.rw, nil
	}
	if nc, ok := w.rw.(net.Conn); ok {
		return &unreadConn{Conn: nc, buf: ws.unread}, nil
	}
	return &unreadRWC{ReadWriteCloser: w.rw, buf: ws.unread}, nil
}

// unreadConn is a detached connection whose Read first returns what the
// wheel had read but not framed.
type unreadConn struct {
	net.Conn
	buf []byte
}

func (u *unreadConn) Read(p []byte) (int, error) {
	if len(u.buf) > 0 {
		n := copy(p, u.buf)
		u.buf = u.buf[n:]
		return n, nil
	}
	return u.Conn.Read(p)
}

type unreadRWC struct {
	io.ReadWriteCloser
	buf []byte
}

func (u *unreadRWC) Read(p []byte) (int, error) {
	if len(u.buf) > 0 {
		n := copy(p, u.buf)
		u.buf = u.buf[n:]
		return n, nil
	}
	return u.ReadWriteCloser.Read(p)
}

// waitResume blocks while input is paused; false means the wheel is done.
func (w *Wheel) waitResume() bool {
	for w.paused.Load() {
		select {
		case <-w.resume:
		case <-w.done:
			return false
		}
	}
	return true
}

// reader reads, frames and posts records until end of input, an error or the
// wheel's end.
func (w *Wheel) reader() {
	ws := w.st.Load()
	buf := make([]byte, 4096)
	start, end := 0, 0
	eof := false
	defer func() {
		ws.mu.Lock()
		if start < end {
			ws.unread = bytes.Clone(buf[start:end])
		}
		ws.mu.Unlock()
	}()
	for {
		for start < end || eof {
			if !w.waitResume() {
				return
			}
			adv, rec, err := w.framer.Split(buf[start:end], eof)
			if err != nil {
				w.fail(&ws.readErr, "read", err)
				return
			}
			if adv < 0 || adv > end-start {
				w.fail(&ws.readErr, "read", ErrBadAdvance)
				return
			}
			if adv == 0 && rec == nil {
				break
			}
			if rec != nil && !w.inShut.Load() {
				if !w.emit(w.cfg.Input, bytes.Clone(rec), w.id) {
					return
				}
			}
			start += adv
		}
		if eof {
			if !w.inShut.Load() {
				w.fail(&ws.readErr, "read", io.EOF)
			}
			return
		}
		if start == end {
			start, end = 0, 0
		}
		if end == len(buf) {
			switch {
			case start > 0:
				end = copy(buf, buf[start:end])
				start = 0
			case len(buf) >= w.cfg.MaxRecord:
				w.fail(&ws.readErr, "read", fmt.Errorf("%w: no record in %d bytes", ErrRecordTooLarge, len(buf)))
				return
			default:
				nb := make([]byte, min(2*len(buf), w.cfg.MaxRecord))
				copy(nb, buf[:end])
				buf = nb
			}
		}
		if !w.waitResume() {
			return
		}
		n, err := w.rw.Read(buf[end:])
		end += n
		if err != nil {
			if w.isClosed.Load() || w.inShut.Load() {
				return
			}
			if err == io.EOF {
				eof = true
				continue
			}
			w.fail(&ws.readErr, "read", err)
			return
		}
	}
}

// fail records the error of op in *slot and posts the error event.
func (w *Wheel) fail(slot *error, op string, err error) {
	ws := w.st.Load()
	ws.mu.Lock()
	*slot = err
	ws.mu.Unlock()
	w.emit(w.cfg.Error, op, err, w.id)
}

// writer writes what Put queues, posting flushed and low-water events.
func (w *Wheel) writer() {
	ws := w.st.Load()
	var buf []byte
	for {
		select {
		case <-w.kick:
		case <-w.done:
			return
		}
		for {
			ws.mu.Lock()
			if len(ws.out) == 0 {
				shut := ws.outShut && !ws.outShutDone
				ws.outShutDone = ws.outShut
				ws.mu.Unlock()
				if shut {
					if cw, ok := unwrapConn(w.rw).(interface{ CloseWrite() error }); ok {
						if err := cw.CloseWrite(); err != nil && !w.isClosed.Load() {
							w.fail(&ws.writeErr, "write", err)
						}
					}
				}
				break
			}
			buf, ws.out = ws.out, buf[:0]
			ws.inflight = len(buf)
			ws.mu.Unlock()

			_, err := w.rw.Write(buf)

			ws.mu.Lock()
			ws.inflight = 0
			if err != nil {
				ws.out = nil
				ws.mu.Unlock()
				if !w.isClosed.Load() {
					w.fail(&ws.writeErr, "write", err)
				}
				return
			}
			left := len(ws.out)
			low := ws.high && left <= w.cfg.LowMark
			if low {
				ws.high = false
			}
			ws.mu.Unlock()
			if low {
				w.emit(w.cfg.Low, w.id)
			}
			if left == 0 {
				w.emit(w.cfg.Flushed, w.id)
			}
		}
	}
}
