package keepalive

import (
	"fmt"
)

type eventKind uint8

const (
	eventPost  eventKind = iota
	eventStart           // Kernel.Spawn's queued _start
)

// Context is what a handler gets: POE's KERNEL, SESSION, SENDER, STATE and
// ARG0.. in one value, with the runtime's operations on the active session as
// methods. A queued event is its Context: posting allocates it and the
// handler receives it.
type Context struct {
	// Kernel runs the session.
	Kernel *Kernel
	// Session is the session handling the event.
	Session *Session
	// Sender is the session that posted or called the event; for timers,
	// wheels and acceptors it is Session itself; nil for the kernel's own
	// events (_stop, _child, _parent) and for code outside any session.
	Sender *Session
	// Event is the event's name.
	Event string
	// Args are the event's arguments.
	Args []any

	ret   any
	kind  eventKind
	sent  bool           // Sender's count was raised for this event
	pend  *pendingEvents // the record tracking it, nil when untracked
	src   eventSource    // the wheel or acceptor that produced it
	drop  func()         // disposes of what Args hold if it is never dispatched
	reply chan callResult
}

// Heap returns the session's heap.
func (c *Context) Heap() any { return c.Session.heap }

// SetHeap replaces the session's heap.
func (c *Context) SetHeap(v any) {
	c.Session.heap = v
	if c.Kernel.heapChecks {
		c.Session.ts.SetHeap(v)
	}
}

// HeapOf returns the session's heap as a T, or T's zero value if it is not one.
func HeapOf[T any](c *Context) T {
	v, _ := c.Session.heap.(T)
	return v
}

// Arg returns argument i, or nil if there are fewer arguments.
func (c *Context) Arg(i int) any {
	if i < 0 || i >= len(c.Args) {
		return nil
	}
	return c.Args[i]
}

// ArgOf returns argument i as a T; ok is false if it is missing or not a T.
func ArgOf[T any](c *Context, i int) (v T, ok bool) {
	if i < 0 || i >= len(c.Args) {
		return v, false
	}
	v, ok = c.Args[i].(T)
	return v, ok
}

// Return sets the value Call returns, and that the parent sees in _child
// for _start and _stop.
func (c *Context) Return(v any) { c.ret = v }

// String describes the event for logs.
func (c *Context) String() string {
	return fmt.Sprintf("%s -> %s: %s%v", c.Sender, c.Session, c.Event, c.Args)
}

// Post queues event for the session to names (a *Session, a SessionID or an
// alias), sent by the active session. Until it is handled the event keeps
// both sessions alive. Posting to a stopped or unknown session returns an
// error.
func (c *Context) Post(to any, event string, args ...any) error {
	return c.Kernel.post(c.Session, to, event, args)
}

// Yield queues event for the active session itself.
func (c *Context) Yield(event string, args ...any) error {
	return c.Kernel.post(c.Session, c.Session, event, args)
}

// Call runs the handler of event in the session to names at once, on this
// goroutine, and returns the value it gave to Return. It returns ErrNoHandler
// when the session has no handler (and no default handler) for event.
func (c *Context) Call(to any, event string, args ...any) (any, error) {
	k := c.Kernel
	k.mu.Lock()
	s, err := k.resolveLocked(to)
	if err == nil && s.state >= sessionStopping {
		err = s.stoppedErr()
	}
	k.mu.Unlock()
	if err != nil {
		return nil, err
	}
	cc := &Context{Kernel: k, Session: s, Sender: c.Session, Event: event, Args: args}
	if !k.invoke(cc) {
		return nil, fmt.Errorf("%w %q in session %s", ErrNoHandler, event, s)
	}
	return cc.ret, nil
}

// Spawn starts a child of the active session: its _start handler runs at
// once, then the parent's _child handler (ChildCreate, with _start's Return
// value). A child that holds nothing after _start stops when the current
// handler returns.
func (c *Context) Spawn(spec Spec) (*Session, error) {
	k := c.Kernel
	k.mu.Lock()
	if k.state >= kernelStopping {
		k.mu.Unlock()
		return nil, ErrKernelStopped
	}
	if c.Session.state == sessionStopped {
		k.mu.Unlock()
		return nil, c.Session.stoppedErr()
	}
	s := k.newSessionLocked(spec, c.Session)
	s.state = sessionRunning
	k.mu.Unlock()
	ret := k.lifecycle(s, c.Session, EvStart, spec.Args...)
	k.lifecycle(c.Session, nil, EvChild, ChildCreate, s, ret)
	k.mu.Lock()
	k.gcLocked(s)
	k.mu.Unlock()
	return s, nil
}

// Stop stops the active session once the running handler returns; see
// Kernel.Stop.
func (c *Context) Stop() error { return c.Kernel.Stop(c.Session) }

// On sets the active session's handler for event; a nil h removes it.
func (c *Context) On(event string, h Handler) {
	if c.Session.handlers == nil {
		return // stopped
	}
	if h == nil {
		delete(c.Session.handlers, event)
		return
	}
	c.Session.handlers[event] = h
}

// SetAlias lets other sessions and outside code address the active session
// by name. An alias keeps the session alive while other sessions could still
// post to it (see the package doc). Setting an alias held by another session
// is ErrAliasInUse.
func (c *Context) SetAlias(name string) error {
	k, s := c.Kernel, c.Session
	k.mu.Lock()
	defer k.mu.Unlock()
	if s.state >= sessionStopping {
		return s.stoppedErr()
	}
	switch o := k.aliases[name]; o {
	case s:
		return nil
	case nil:
		k.aliases[name] = s
		s.aliases = append(s.aliases, name)
		return nil
	default:
		return fmt.Errorf("%w: %q is %s's", ErrAliasInUse, name, o)
	}
}

// RemoveAlias drops one of the active session's aliases.
func (c *Context) RemoveAlias(name string) error {
	k, s := c.Kernel, c.Session
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.aliases[name] != s {
		return fmt.Errorf("%w: %q", ErrNoAlias, name)
	}
	delete(k.aliases, name)
	for i, a := range s.aliases {
		if a == name {
			s.aliases = append(s.aliases[:i], s.aliases[i+1:]...)
			break
		}
	}
	k.gcLocked(s)
	return nil
}

// RefcountIncrement raises the active session's extra reference count under
// tag; see Kernel.RefcountIncrement.
func (c *Context) RefcountIncrement(tag string) (int, error) {
	return c.Kernel.refcount(c.Session, tag, +1)
}

// RefcountDecrement lowers the active session's extra reference count under
// tag; see Kernel.RefcountDecrement.
func (c *Context) RefcountDecrement(tag string) (int, error) {
	return c.Kernel.refcount(c.Session, tag, -1)
}
