package keepalive

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/leakcheck/leakcheck/tracker"
)

// Pool defaults, POE's Client::Keepalive's.
const (
	DefaultMaxPerHost = 4
	DefaultMaxOpen    = 128
	DefaultKeepAlive  = 15 * time.Second
	DefaultTimeout    = 120 * time.Second
)

// KindConnection is a Connection lent by a Pool, tracked under its holder
// from the Allocate or Get call that asked for it until Free or Close. Its
// acquisition stack is that call's.
const KindConnection tracker.Kind = "connection"

// Pool errors.
var (
	ErrPoolShutdown = errors.New("keepalive: pool shut down")
	ErrNoRequest    = errors.New("keepalive: no such pending request")
	// ErrConnClosed is returned by a Connection used after Free or Close;
	// it wraps net.ErrClosed.
	ErrConnClosed   = fmt.Errorf("keepalive: connection freed or closed: %w", net.ErrClosed)
	ErrWheelStarted = errors.New("keepalive: connection has a wheel")
)

// Key names the sockets a pool may hand out for one another: the same
// scheme, address and port, and, for connections made through a proxy, the
// same "for" triple (the scheme, address and port the proxy is asked to
// reach). Keys compare as they are written: "localhost" and "127.0.0.1" are
// two keys. The pool passes the key to the dial hook and never interprets
// the scheme itself.
type Key struct {
	Scheme  string
	Address string
	Port    int

	ForScheme  string
	ForAddress string
	ForPort    int
}

// String returns the key as "scheme://address:port", followed by
// " for scheme://address:port" when the key has a "for" triple.
func (k Key) String() string {
	s := hostPort(k.Scheme, k.Address, k.Port)
	if k.ForAddress != "" || k.ForPort != 0 || k.ForScheme != "" {
		s += " for " + hostPort(k.ForScheme, k.ForAddress, k.ForPort)
	}
	return s
}

func hostPort(scheme, addr string, port int) string {
	s := net.JoinHostPort(addr, strconv.Itoa(port))
	if scheme != "" {
		s = scheme + "://" + s
	}
	return s
}

func (k Key) validate() error {
	if k.Address == "" {
		return errors.New("no address")
	}
	if k.Port < 1 || k.Port > 65535 {
		return fmt.Errorf("port %d of %q out of range 1-65535", k.Port, k.Address)
	}
	if k.ForPort < 0 || k.ForPort > 65535 {
		return fmt.Errorf("for port %d out of range 1-65535", k.ForPort)
	}
	return nil
}

// Resolver looks up the addresses of a host name; *net.Resolver is one.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// DialFunc connects to address ("ip:port", already resolved) for key. A hook
// adds TLS (by key.Scheme, with key.Address as the server name) or a proxy
// (key.Address being the proxy, the "for" triple the target). It must return
// when ctx ends: Shutdown waits for the dials under way.
type DialFunc func(ctx context.Context, key Key, address string) (net.Conn, error)

// PoolConfig sets up a Pool; the zero value gives POE's defaults.
type PoolConfig struct {
	// MaxPerHost bounds the sockets open or being opened per Key
	// (DefaultMaxPerHost when 0).
	MaxPerHost int
	// MaxOpen bounds the sockets open or being opened in all
	// (DefaultMaxOpen when 0). At the bound, a request that needs a new
	// socket closes the idle socket of another key that has been idle the
	// longest.
	MaxOpen int
	// KeepAlive is how long a socket stays idle in the pool before it is
	// closed (DefaultKeepAlive when 0).
	KeepAlive time.Duration
	// Timeout bounds each request, from Allocate or Get until it has a
	// socket, queueing, resolving and connecting included (DefaultTimeout
	// when 0); Request.Timeout overrides it.
	Timeout time.Duration
	// BindAddress is the local IP address the default dialer connects
	// from; "" lets the system choose. A Dial hook binds by itself.
	BindAddress string
	// Resolver looks up host names; net.DefaultResolver when nil. IP
	// addresses are not looked up.
	Resolver Resolver
	// Dial connects; a net.Dialer (from BindAddress) over TCP when nil.
	Dial DialFunc
	// Registry tracks the pool's sockets, connections and sessions;
	// tracker.Default when nil. A kernel whose sessions call Allocate must
	// track in the same registry (WithRegistry).
	Registry *tracker.Registry
	// Name labels the pool's tracker session ("keepalive pool" when "").
	Name string
	// Parent is the tracker session the pool's own session starts under:
	// the part of the program the pool serves, so a report joins what its
	// users leak through the pool with the pool's sockets. Nil is the
	// registry's root. It must be of Registry.
	Parent *tracker.Session
}

// RequestID identifies a request made by Allocate.
type RequestID uint64

// Request asks a pool for a socket on behalf of a session (see Allocate).
type Request struct {
	Key
	// Event is posted to the requesting session with the *Response as its
	// only argument. Required.
	Event string
	// Value is handed back in the Response as it is (POE's "context").
	Value any
	// Timeout overrides PoolConfig.Timeout for this request when above 0.
	Timeout time.Duration
}

// Cache says where a Response's socket came from.
type Cache string

// Sources of a socket.
const (
	CacheNone      Cache = ""          // a new connection
	CacheImmediate Cache = "immediate" // idle in the pool when asked for
	CacheDeferred  Cache = "deferred"  // freed by another holder while the request waited
)

// Response answers a request: a Connection, or an error.
type Response struct {
	ID  RequestID
	Key Key
	// Conn is the connection; nil when Err is set. Free or Close it.
	Conn *Connection
	// Err is a *PoolError when the request failed.
	Err error
	// Value is Request.Value.
	Value any
	// FromCache says whether Conn is a pooled socket.
	FromCache Cache
}

// Step names the step of a request that failed.
type Step string

// Steps of a request.
const (
	StepResolve  Step = "resolve"  // the address did not resolve
	StepConnect  Step = "connect"  // no connection could be made
	StepTimeout  Step = "timeout"  // the request's time ran out
	StepCanceled Step = "canceled" // Get's context was canceled
	StepShutdown Step = "shutdown" // the pool was shut down
)

// PoolError is why a request failed: the step, the key, the system error
// number when there is one (ETIMEDOUT for a timeout), and the cause.
type PoolError struct {
	Step  Step
	Key   Key
	Errno syscall.Errno
	Err   error
}

func (e *PoolError) Error() string {
	return fmt.Sprintf("keepalive: %s %s: %v", e.Step, e.Key, e.Err)
}

func (e *PoolError) Unwrap() error { return e.Err }

// KeyStats counts a pool's sockets and requests.
type KeyStats struct {
	Open       int // sockets open: Idle + InUse
	Idle       int // sockets idle in the pool
	InUse      int // sockets lent, responses not yet handled included
	Connecting int // connections being made; they count against the limits
	Queued     int // requests waiting for a socket
}

// PoolStats is a pool's state: totals, per key, and counters since it was
// made.
type PoolStats struct {
	KeyStats
	// Keys has an entry per key with a socket, a connection being made or
	// a request waiting.
	Keys map[Key]KeyStats

	Reused    uint64 // sockets lent again from the pool
	Dialed    uint64 // connections made
	Failed    uint64 // connections that could not be made
	Discarded uint64 // pooled sockets closed as unfit: peer closed, unread data, error
	Expired   uint64 // idle sockets closed after KeepAlive
	Evicted   uint64 // idle sockets closed to make room at MaxOpen
	Reclaimed uint64 // connections the garbage collector found unreleased
}

// Pool keeps sockets alive for reuse, as POE's Client::Keepalive: callers
// ask for a socket by Key, from a session with Allocate or from any
// goroutine with Get, and give it back with Connection.Free. See the package
// documentation. A Pool is safe for concurrent use.
type Pool struct {
	// p is the pool's state behind a type the tracker's heap walks do not
	// enter, so a session heap may hold a *Pool (see WithHeapChecks).
	p atomic.Pointer[pool]
}

type pool struct {
	cfg      PoolConfig
	reg      *tracker.Registry
	ts       *tracker.Session // owns idle sockets
	gts      *tracker.Session // owns what Get lends
	resolver Resolver
	dial     DialFunc
	base     context.Context // ended by Shutdown: the parent of event requests
	cancel   context.CancelFunc
	refTag   string // the extra reference a pending request holds on its session
	wg       sync.WaitGroup

	isClosed atomic.Bool // closed, readable without the lock

	mu      sync.Mutex // guards what follows and the state of socks and requests
	closed  bool
	stopped bool // the tracker sessions are stopped
	hosts   map[Key]*host
	// Every idle socket, least recently idle first, for eviction.
	idleHead, idleTail *sock
	idle, inUse        int
	connecting         int
	closing            int // sockets taken off the books and not yet closed
	// Queued requests, oldest first.
	qHead, qTail *request
	queued       int
	reqs         map[RequestID]*request // queued and connecting
	lastID       RequestID
	pass         uint64 // dispatch passes so far

	reused, dialed, failed, discarded, expired, evicted, reclaimed atomic.Uint64
}

// host is the pool's state for one key. It is dropped once nothing of the key
// is left, so the map does not grow with every key ever asked for.
type host struct {
	key   Key
	label string // key.String(), the label of its connection records
	// Idle sockets, least recently idle first; lent from the tail.
	idleHead, idleTail      *sock
	idle, inUse, connecting int
	queued                  int
	blocked                 uint64 // the dispatch pass that found the key at MaxPerHost
}

func (h *host) open() int { return h.idle + h.inUse }

func (h *host) empty() bool {
	return h.idle+h.inUse+h.connecting+h.queued == 0
}

type reqState uint8

const (
	reqQueued     reqState = iota // waiting for a socket
	reqConnecting                 // its connection is being made
	reqHanding                    // a socket is being handed over
	reqDone                       // answered, canceled or given up
)

// request is one Allocate or Get.
type request struct {
	id    RequestID
	key   Key
	state reqState // guarded by pool.mu
	// h is the key's state while r is queued or connecting: it is kept
	// while r counts in it.
	h *host
	// conn is made with the request: its record names the holder and the
	// stack of the call that asked, from the start.
	conn    *Connection
	owner   *tracker.Session
	timeout time.Duration
	parent  context.Context
	// ctx bounds the request once it has to wait: its deadline is the
	// timeout, and canceling it cancels the resolve and connect under way.
	ctx    context.Context
	cancel context.CancelFunc
	stop   func() bool // stops the context.AfterFunc that expires it

	// Allocate's.
	k     *Kernel
	s     *Session
	event string
	value any
	// Get's.
	done chan getResult

	qPrev, qNext *request
}

type getResult struct {
	c     *Connection
	err   error
	cache Cache
}

// finish releases the request's timer and context.
func (r *request) finish() {
	if r.stop != nil {
		r.stop()
	}
	if r.cancel != nil {
		r.cancel()
	}
}

// NewPool returns a pool ready for Allocate and Get. Shutdown it when done.
func NewPool(cfg PoolConfig) (*Pool, error) {
	switch {
	case cfg.MaxPerHost < 0:
		return nil, fmt.Errorf("keepalive: pool: MaxPerHost %d below zero", cfg.MaxPerHost)
	case cfg.MaxOpen < 0:
		return nil, fmt.Errorf("keepalive: pool: MaxOpen %d below zero", cfg.MaxOpen)
	case cfg.KeepAlive < 0:
		return nil, fmt.Errorf("keepalive: pool: KeepAlive %v below zero", cfg.KeepAlive)
	case cfg.Timeout < 0:
		return nil, fmt.Errorf("keepalive: pool: Timeout %v below zero", cfg.Timeout)
	case cfg.Dial != nil && cfg.BindAddress != "":
		return nil, errors.New("keepalive: pool: BindAddress applies to the default dialer; bind in the Dial hook")
	}
	cfg.MaxPerHost = cmp.Or(cfg.MaxPerHost, DefaultMaxPerHost)
	cfg.MaxOpen = cmp.Or(cfg.MaxOpen, DefaultMaxOpen)
	cfg.KeepAlive = cmp.Or(cfg.KeepAlive, DefaultKeepAlive)
	cfg.Timeout = cmp.Or(cfg.Timeout, DefaultTimeout)
	cfg.Name = cmp.Or(cfg.Name, "keepalive pool")
	p := &pool{
		cfg:      cfg,
		reg:      cmp.Or(cfg.Registry, tracker.Default),
		resolver: cfg.Resolver,
		dial:     cfg.Dial,
		hosts:    make(map[Key]*host),
		reqs:     make(map[RequestID]*request),
		refTag:   cfg.Name + " request",
	}
	if p.resolver == nil {
		p.resolver = net.DefaultResolver
	}
	if p.dial == nil {
		d := &net.Dialer{}
		if cfg.BindAddress != "" {
			ip, err := netip.ParseAddr(cfg.BindAddress)
			if err != nil {
				return nil, fmt.Errorf("keepalive: pool: BindAddress: %w", err)
			}
			d.LocalAddr = net.TCPAddrFromAddrPort(netip.AddrPortFrom(ip, 0))
		}
		p.dial = func(ctx context.Context, _ Key, address string) (net.Conn, error) {
			return d.DialContext(ctx, "tcp", address)
		}
	}
	p.base, p.cancel = context.WithCancel(context.Background())
	p.ts = p.reg.StartSession(cfg.Name, cfg.Parent)
	p.gts = p.reg.StartSession(cfg.Name+": Get", p.ts)
	pl := &Pool{}
	pl.p.Store(p)
	return pl, nil
}

// state returns the pool's state; an error for a Pool not made by NewPool.
func (pl *Pool) state() (*pool, error) {
	if pl != nil {
		if p := pl.p.Load(); p != nil {
			return p, nil
		}
	}
	return nil, errors.New("keepalive: Pool not made by NewPool")
}

// Tracker returns the pool's tracker session: idle sockets are its records,
// and its child session holds what Get lends. It is nil for a Pool not made
// by NewPool.
func (pl *Pool) Tracker() *tracker.Session {
	p, err := pl.state()
	if err != nil {
		return nil
	}
	return p.ts
}

// Allocate asks for a socket for req.Key on behalf of the active session
// and returns the request's id. The answer is posted to the session as
// req.Event with one argument, a *Response: a Connection, an idle socket at
// once when the pool has one for the key (CacheImmediate), or else when a
// socket is freed (CacheDeferred) or a new connection is made; or an error
// with the failing step. Requests wait in first-in first-out order for a
// per-key slot (MaxPerHost); at MaxOpen a request that needs a new socket
// closes an idle socket of another key. The session stays alive while its
// request is pending. Allocate is for handlers; from other goroutines use
// Get.
func (pl *Pool) Allocate(c *Context, req Request) (RequestID, error) {
	p, err := pl.state()
	switch {
	case err != nil:
		return 0, err
	case c == nil || c.Session == nil:
		return 0, errors.New("keepalive: allocate: no active session")
	case req.Event == "":
		return 0, errors.New("keepalive: allocate: Request.Event is required")
	case req.Timeout < 0:
		return 0, fmt.Errorf("keepalive: allocate: Timeout %v below zero", req.Timeout)
	}
	if err := req.Key.validate(); err != nil {
		return 0, fmt.Errorf("keepalive: allocate %s: %w", req.Key, err)
	}
	if err := p.sameRegistry(c.Kernel); err != nil {
		return 0, fmt.Errorf("keepalive: allocate %s: %w", req.Key, err)
	}
	k, s := c.Kernel, c.Session
	if _, err := k.refcount(s, p.refTag, +1); err != nil {
		return 0, fmt.Errorf("%w: allocate %s", err, req.Key)
	}
	r := &request{
		key: req.Key, owner: s.ts, timeout: cmp.Or(req.Timeout, p.cfg.Timeout), parent: p.base,
		k: k, s: s, event: req.Event, value: req.Value,
	}
	if err := p.submit(r); err != nil {
		k.refcount(s, p.refTag, -1)
		return 0, fmt.Errorf("%w: allocate %s", err, req.Key)
	}
	return r.id, nil
}

// sameRegistry checks that k tracks in the pool's registry: lending moves
// records between the pool's sessions and k's.
func (p *pool) sameRegistry(k *Kernel) error {
	if k.Registry() != p.reg {
		return errors.New("the kernel tracks in another registry than the pool: give both the same (PoolConfig.Registry, WithRegistry)")
	}
	return nil
}

// Deallocate cancels a pending request of Allocate: it is not answered, its
// resolve or connect under way is canceled, and its session is let go. It
// returns ErrNoRequest for a request already answered, or not Allocate's.
func (pl *Pool) Deallocate(id RequestID) error {
	p, err := pl.state()
	if err != nil {
		return err
	}
	p.mu.Lock()
	r := p.reqs[id]
	if r == nil || r.done != nil {
		p.mu.Unlock()
		return fmt.Errorf("%w: id %d", ErrNoRequest, id)
	}
	if r.state == reqQueued {
		p.unqueueLocked(r)
	}
	// A connecting request's dial ends with its context; its slot is freed
	// then.
	r.state = reqDone
	delete(p.reqs, id)
	p.mu.Unlock()
	r.finish()
	p.releaseRecord(r, r.conn)
	r.conn = nil
	r.k.refcount(r.s, p.refTag, -1)
	return nil
}

// Get returns a connection to addr ("host:port") for code outside the
// event loop: an idle socket at once when the pool has one, or else when a
// socket is freed or a new connection is made, as Allocate does. It waits
// at most the pool's Timeout, and returns early with ctx's error, as a
// *PoolError with StepCanceled or StepTimeout, when ctx ends. Free or Close
// the connection when done.
func (pl *Pool) Get(ctx context.Context, addr string) (*Connection, error) {
	p, err := pl.state()
	if err != nil {
		return nil, err
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("keepalive: get: %w", err) // net.AddrError: "address x: missing port"
	}
	pn, err := strconv.Atoi(port)
	if err != nil {
		return nil, fmt.Errorf("keepalive: get %q: port is not a number", addr)
	}
	key := Key{Address: host, Port: pn}
	if err := key.validate(); err != nil {
		return nil, fmt.Errorf("keepalive: get %q: %w", addr, err)
	}
	if ctx == nil {
		return nil, errors.New("keepalive: get: nil context")
	}
	r := &request{key: key, owner: p.gts, timeout: p.cfg.Timeout, parent: ctx, done: make(chan getResult, 1)}
	if err := ctx.Err(); err != nil {
		return nil, p.ctxError(r, err)
	}
	if err := p.submit(r); err != nil {
		return nil, fmt.Errorf("%w: get %s", err, key)
	}
	res := <-r.done
	if res.err != nil {
		return nil, res.err
	}
	return res.c, nil
}

// Stats returns the pool's counts (zero for a Pool not made by NewPool).
func (pl *Pool) Stats() PoolStats {
	p, err := pl.state()
	if err != nil {
		return PoolStats{}
	}
	st := PoolStats{
		Reused: p.reused.Load(), Dialed: p.dialed.Load(), Failed: p.failed.Load(),
		Discarded: p.discarded.Load(), Expired: p.expired.Load(), Evicted: p.evicted.Load(),
		Reclaimed: p.reclaimed.Load(),
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	st.Keys = make(map[Key]KeyStats, len(p.hosts))
	for k, h := range p.hosts {
		st.Keys[k] = KeyStats{Open: h.open(), Idle: h.idle, InUse: h.inUse, Connecting: h.connecting, Queued: h.queued}
	}
	st.KeyStats = KeyStats{Open: p.idle + p.inUse, Idle: p.idle, InUse: p.inUse, Connecting: p.connecting, Queued: p.queued}
	return st
}

// Shutdown ends the pool: pending requests are answered with
// ErrPoolShutdown (StepShutdown), resolves and connects under way are
// canceled and waited for, idle sockets are closed, and Allocate and Get
// fail from now on. Connections still lent are closed, not pooled, when
// they are freed; once the last is, nothing of the pool stays registered.
// Calling Shutdown again, or on a Pool not made by NewPool, does nothing.
func (pl *Pool) Shutdown() {
	p, err := pl.state()
	if err != nil {
		return
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		p.wg.Wait()
		return
	}
	p.closed = true
	p.isClosed.Store(true)
	var a actions
	pending := make([]*request, 0, len(p.reqs))
	for _, r := range p.reqs {
		pending = append(pending, r)
	}
	slices.SortFunc(pending, func(x, y *request) int { return cmp.Compare(x.id, y.id) })
	for _, r := range pending {
		if r.state == reqQueued {
			p.unqueueLocked(r)
		}
		r.state = reqDone
		a.fails = append(a.fails, failure{r, &PoolError{Step: StepShutdown, Key: r.key, Errno: syscall.ECANCELED, Err: ErrPoolShutdown}})
	}
	clear(p.reqs)
	for p.idleHead != nil {
		s := p.idleHead
		p.closeIdleLocked(s, &a, false)
	}
	p.mu.Unlock()
	p.cancel()
	p.run(&a)
	p.wg.Wait()
}
