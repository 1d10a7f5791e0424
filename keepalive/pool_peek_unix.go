//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package keepalive

import (
	"errors"
	"net"
	"os"
	"syscall"
)

// rawConnOf returns the descriptor access of the socket under nc: nc's own
// when it is a plain TCP or Unix socket (direct), or that of the connection
// it wraps, as a TLS connection's NetConn, found by unwrapping. It returns
// nil when there is none.
func rawConnOf(nc net.Conn) (raw syscall.RawConn, direct bool) {
	direct = true
	for {
		if sc, ok := nc.(syscall.Conn); ok {
			raw, err := sc.SyscallConn()
			if err != nil {
				return nil, false
			}
			return raw, direct
		}
		w, ok := nc.(interface{ NetConn() net.Conn })
		if !ok {
			return nil, false
		}
		nc, direct = w.NetConn(), false
	}
}

// peek looks at a socket's receive queue with recv(MSG_PEEK|MSG_DONTWAIT),
// which neither blocks nor takes anything: data means the peer sent
// something nobody read, a zero-length read that the peer closed its end,
// EAGAIN that the socket is quiet. With wait set it waits, in the network
// poller, until the socket becomes readable or its read deadline passes
// (healthy), as POE watches an idle socket with select_read.
//
// The check runs through RawConn.Control when not waiting, which unlike
// RawConn.Read does not take the descriptor's read lock, so it never waits
// behind a watcher parked in Read.
func peek(raw syscall.RawConn, wait bool) health {
	var b [1]byte
	h := broken
	look := func(fd uintptr) bool {
		for {
			n, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
			switch {
			case err == syscall.EINTR:
				continue
			case err == syscall.EAGAIN || err == syscall.EWOULDBLOCK:
				h = healthy
				return !wait
			case err != nil:
				h = broken
			case n > 0:
				h = unreadData
			default:
				h = peerClosed
			}
			return true
		}
	}
	if !wait {
		if err := raw.Control(func(fd uintptr) { look(fd) }); err != nil {
			return broken
		}
		return h
	}
	if err := raw.Read(look); err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return healthy
		}
		return broken
	}
	return h
}
