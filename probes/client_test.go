package probes

import (
	"net"
	"testing"
	"time"
)

func TestClientOwn(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var none *Client
	if none.Own("127.0.0.1:1") {
		t.Error("a nil Client owns an address")
	}
	c := NewClient(time.Second)
	defer c.CloseIdleConnections()
	conn, err := c.dial(t.Context(), "tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	s, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// The accepted end's peer is the dialed end: how the daemon's end of
	// a connection of the sampler's is known.
	if !c.Own(s.RemoteAddr().String()) {
		t.Errorf("Own(%s) = false for a dialed connection", s.RemoteAddr())
	}
	if c.Own(s.LocalAddr().String()) || c.Own("") {
		t.Error("Own is true for an address not dialed from")
	}
}
