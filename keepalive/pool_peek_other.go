//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package keepalive

import (
	"net"
	"syscall"
)

// rawConnOf returns nil where recv(MSG_PEEK|MSG_DONTWAIT) is not available:
// the pool then checks sockets with reads that have a deadline.
func rawConnOf(net.Conn) (syscall.RawConn, bool) { return nil, false }

func peek(syscall.RawConn, bool) health { return broken }
