package tracker

import (
	"context"
	"net"
	"os"
)

// File is an *os.File whose Close releases its record.
type File struct {
	*os.File
	h Handle
}

// OpenFile opens a file as os.OpenFile does and tracks it under owner.
func (r *Registry) OpenFile(owner *Session, name string, flag int, perm os.FileMode) (*File, error) {
	f, err := os.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return newFile(f, r.track(KindFile, owner, name, 1)), nil
}

// Open opens a file for reading and tracks it under owner.
func (r *Registry) Open(owner *Session, name string) (*File, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	return newFile(f, r.track(KindFile, owner, name, 1)), nil
}

// Create creates or truncates a file and tracks it under owner.
func (r *Registry) Create(owner *Session, name string) (*File, error) {
	f, err := os.Create(name)
	if err != nil {
		return nil, err
	}
	return newFile(f, r.track(KindFile, owner, name, 1)), nil
}

// TrackFile tracks an already open file under owner.
func (r *Registry) TrackFile(owner *Session, f *os.File) *File {
	return newFile(f, r.track(KindFile, owner, f.Name(), 1))
}

// newFile wraps f, attaching the registry's opt-in checks (WithCleanups,
// WithRetainCheck) to the wrapper.
func newFile(f *os.File, h Handle) *File {
	w := &File{File: f, h: h}
	attachObject(h, w, false)
	return w
}

// Close closes the file and releases its record.
func (f *File) Close() error {
	err := f.File.Close()
	f.h.release(1)
	return err
}

// Handle returns the file's record.
func (f *File) Handle() Handle { return f.h }

// Conn is a net.Conn whose Close releases its record.
type Conn struct {
	net.Conn
	h Handle
}

// connLabel names a connection by its protocol and both ends.
func connLabel(c net.Conn) string {
	label := c.LocalAddr().Network() + " " + c.LocalAddr().String()
	if ra := c.RemoteAddr(); ra != nil {
		label += " -> " + ra.String()
	}
	return label
}

// Dial connects as net.Dialer.DialContext does and tracks the connection under
// owner.
func (r *Registry) Dial(ctx context.Context, owner *Session, network, address string) (*Conn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, network, address)
	if err != nil {
		return nil, err
	}
	return newConn(c, r.track(KindSocket, owner, connLabel(c), 1)), nil
}

// TrackConn tracks an open connection under owner.
func (r *Registry) TrackConn(owner *Session, c net.Conn) *Conn {
	return newConn(c, r.track(KindSocket, owner, connLabel(c), 1))
}

// newConn wraps c, attaching the registry's opt-in checks to the wrapper.
func newConn(c net.Conn, h Handle) *Conn {
	w := &Conn{Conn: c, h: h}
	attachObject(h, w, false)
	return w
}

// Close closes the connection and releases its record.
func (c *Conn) Close() error {
	err := c.Conn.Close()
	c.h.release(1)
	return err
}

// Handle returns the connection's record.
func (c *Conn) Handle() Handle { return c.h }

// Listener is a net.Listener whose Close releases its record and whose Accept
// returns connections tracked under the listener's owner.
type Listener struct {
	net.Listener
	h Handle
}

// Listen listens as net.ListenConfig.Listen does and tracks the listener
// under owner.
func (r *Registry) Listen(ctx context.Context, owner *Session, network, address string) (*Listener, error) {
	var lc net.ListenConfig
	l, err := lc.Listen(ctx, network, address)
	if err != nil {
		return nil, err
	}
	return newListener(l, r.track(KindListener, owner, network+" "+l.Addr().String(), 1)), nil
}

// TrackListener tracks an open listener under owner.
func (r *Registry) TrackListener(owner *Session, l net.Listener) *Listener {
	return newListener(l, r.track(KindListener, owner, l.Addr().Network()+" "+l.Addr().String(), 1))
}

// newListener wraps l, attaching the registry's opt-in checks to the wrapper.
func newListener(l net.Listener, h Handle) *Listener {
	w := &Listener{Listener: l, h: h}
	attachObject(h, w, false)
	return w
}

// Accept waits for a connection and returns it as a *Conn tracked under the
// listener's owner.
func (l *Listener) Accept() (net.Conn, error) {
	return l.AcceptFor(l.h.Owner())
}

// AcceptFor waits for a connection and returns it tracked under owner, such as
// the session that will handle it.
func (l *Listener) AcceptFor(owner *Session) (*Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return newConn(c, l.h.reg.track(KindSocket, owner, connLabel(c), 1)), nil
}

// Close closes the listener and releases its record.
func (l *Listener) Close() error {
	err := l.Listener.Close()
	l.h.release(1)
	return err
}

// Handle returns the listener's record.
func (l *Listener) Handle() Handle { return l.h }

// Go runs fn in a new goroutine tracked under owner and labelled as its
// (see SessionLabel); the record is released when fn returns or panics.
func (r *Registry) Go(owner *Session, label string, fn func()) Handle {
	h := r.track(KindGoroutine, owner, label, 1)
	go func() {
		defer h.release(0)
		owner.LabelGoroutine()
		fn()
	}()
	return h
}
