package probes

import (
	"context"
	"net"
	"net/http"
	"sync"
	"time"
)

// A Client is an HTTP client for SampleGo and SampleLeaks that remembers the
// local addresses of the connections it dials: the sampled daemon's ends of
// them are the sampler's, not the daemon's leftovers (see Own).
type Client struct {
	*http.Client
	mu    sync.Mutex
	addrs map[string]bool
}

// NewClient returns a Client whose requests time out after timeout.
func NewClient(timeout time.Duration) *Client {
	c := &Client{addrs: map[string]bool{}}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.DialContext = c.dial
	c.Client = &http.Client{Timeout: timeout, Transport: transport}
	return c
}

func (c *Client) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, network, addr)
	if err == nil {
		c.mu.Lock()
		c.addrs[conn.LocalAddr().String()] = true
		c.mu.Unlock()
	}
	return conn, err
}

// Own reports whether addr is the local address of a connection the client
// dialed: a socket of the sampled daemon whose remote address is addr is
// the sampler's connection. A nil Client dialed nothing.
func (c *Client) Own(addr string) bool {
	if c == nil || addr == "" {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.addrs[addr]
}
