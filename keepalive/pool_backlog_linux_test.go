package keepalive

import (
	"errors"
	"net"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// fullListener returns the address of a loopback listener that never
// accepts and whose accept queue is full: listen(2) with a backlog of 0,
// filled by connections the test holds. Linux then drops new SYNs, so a
// connect hangs until its caller gives up, as against a server that stopped
// accepting.
func fullListener(t *testing.T) string {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(sa.(*syscall.SockaddrInet4).Port))
	for range 8 {
		c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
		if err != nil {
			var ne net.Error
			if !errors.As(err, &ne) || !ne.Timeout() {
				t.Fatalf("filling the accept queue: %v", err)
			}
			return addr // full: this connect was dropped
		}
		t.Cleanup(func() { c.Close() })
	}
	t.Skip("the accept queue never filled: new connections are not dropped here")
	return ""
}

// TestPoolConnectTimeoutBacklog asks for sockets of a real listener that
// never accepts: the connect under way and the request queued behind it
// time out, and the connect's slot is freed.
func TestPoolConnectTimeoutBacklog(t *testing.T) {
	e := newPoolEnv(t)
	addr := fullListener(t)
	const timeout = 150 * time.Millisecond
	p := e.pool(PoolConfig{MaxPerHost: 1, Timeout: timeout})
	queued := make(chan error, 1)
	start := time.Now()
	go func() {
		_, err := p.Get(t.Context(), addr)
		queued <- err
	}()
	_, err := p.Get(t.Context(), addr)
	expectTimeout(t, err)
	expectTimeout(t, <-queued)
	if d := time.Since(start); d < timeout || d > 10*timeout {
		t.Errorf("timed out after %v, want about %v", d, timeout)
	}
	waitFor(t, "the connect to end", func() bool { return p.Stats().Connecting == 0 })
	// The queued request may start a connect of its own as the first one
	// gives up; it fails at once, its time being up too.
	if st := p.Stats(); st.Failed < 1 || st.Dialed != 0 {
		t.Errorf("stats %+v", st)
	}
	checkPool(t, p, e.reg)
}
