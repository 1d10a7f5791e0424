package keepalive

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"sync"
	"testing"
	"time"
)

// tlsServer starts a loopback TLS 1.3 echo server with a certificate made
// for the test, and returns its address and a client config that trusts
// it. Each connection echoes lines until close is closed, then closes.
func tlsServer(t *testing.T, closeAll <-chan struct{}) (string, *tls.Config) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "leakcheck test"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA:         true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	must(t, err)
	cert, err := x509.ParseCertificate(der)
	must(t, err)
	roots := x509.NewCertPool()
	roots.AddCert(cert)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	tl := tls.NewListener(l, &tls.Config{
		Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}},
		MinVersion:   tls.VersionTLS13,
	})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := tl.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				lines := make(chan string)
				go func() {
					defer close(lines)
					r := bufio.NewReader(c)
					for {
						line, err := r.ReadString('\n')
						if err != nil {
							return
						}
						lines <- line
					}
				}()
				for {
					select {
					case line, ok := <-lines:
						if !ok {
							return
						}
						c.Write([]byte(line))
					case <-closeAll:
						c.Close() // ends the reader
						for range lines {
						}
						return
					}
				}
			})
		}
	})
	t.Cleanup(func() {
		tl.Close()
		wg.Wait()
	})
	return l.Addr().String(), &tls.Config{RootCAs: roots, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS13}
}

// TestPoolTLS pools TLS connections, made by a dial hook: the pool watches
// them through the TLS layer, so the session tickets a TLS 1.3 server sends
// after the handshake do not make a pooled connection look unfit, and a
// server's close is still seen.
func TestPoolTLS(t *testing.T) {
	e := newPoolEnv(t)
	closeAll := make(chan struct{})
	addr, cfg := tlsServer(t, closeAll)
	p := e.pool(PoolConfig{Dial: func(ctx context.Context, key Key, a string) (net.Conn, error) {
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", a)
		if err != nil {
			return nil, err
		}
		tc := tls.Client(c, cfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			c.Close()
			return nil, err
		}
		return tc, nil
	}})
	var local string
	for i := range 3 {
		c, err := p.Get(t.Context(), addr)
		must(t, err)
		if i == 0 {
			local = c.LocalAddr().String()
		} else if c.FromCache() != CacheImmediate || c.LocalAddr().String() != local {
			t.Errorf("Get %d: %q socket %s, want the pooled %s", i, c.FromCache(), c.LocalAddr(), local)
		}
		must(t, roundTrip(c, "over tls"))
		must(t, c.Free())
		// Idle for a while: what the server sends meanwhile (tickets) must
		// not get the socket dropped.
		time.Sleep(20 * time.Millisecond)
	}
	if st := p.Stats(); st.Idle != 1 || st.Discarded != 0 {
		t.Errorf("stats %+v", st)
	}
	checkPool(t, p, e.reg)
	close(closeAll)
	waitFor(t, "the closed TLS socket to go", func() bool { return p.Stats().Idle == 0 })
	if st := p.Stats(); st.Discarded != 1 {
		t.Errorf("stats %+v", st)
	}
	checkPool(t, p, e.reg)
}
