package probes

import (
	"cmp"
	"slices"
	"strconv"
	"strings"
)

// NewFDs returns the descriptors of cur that base did not have, in cur's
// order. A descriptor is the same when both its number and its object are: a
// number that was closed and reused for another object counts as new. A file
// or device is the same object when its device and inode are, whatever its
// path became (renamed, as by log rotation, or removed and recreated, as
// /dev/null can be); where a sample lacks them, when its target is, a removed
// target (" (deleted)") being the same. A nil base yields all of cur's
// descriptors.
func NewFDs(base, cur *ProcSample) []FD {
	if cur == nil {
		return nil
	}
	var before map[int]FD
	if base != nil {
		before = make(map[int]FD, len(base.FDs))
		for _, fd := range base.FDs {
			before[fd.Num] = fd
		}
	}
	var out []FD
	for _, fd := range cur.FDs {
		if b, ok := before[fd.Num]; !ok || !sameObject(b, fd) {
			out = append(out, fd)
		}
	}
	return out
}

// sameObject reports whether a and b, two descriptors of one number, refer
// to the same object.
func sameObject(a, b FD) bool {
	if hasFileID(a) && hasFileID(b) {
		return a.Dev == b.Dev && a.Inode == b.Inode
	}
	return strings.TrimSuffix(a.Target, deleted) == strings.TrimSuffix(b.Target, deleted)
}

// hasFileID reports whether fd's device and inode identify its file.
func hasFileID(fd FD) bool {
	return (fd.Type == fdFile || fd.Type == fdDev) && (fd.Dev != 0 || fd.Inode != 0)
}

// deleted is what the kernel appends to the link of a descriptor whose file
// was removed.
const deleted = " (deleted)"

// NewSockets returns the sockets of cur that base did not have, by inode, in
// cur's order. A nil base yields all of cur's sockets.
func NewSockets(base, cur *ProcSample) []Socket {
	if cur == nil {
		return nil
	}
	var seen map[uint64]struct{}
	if base != nil {
		seen = make(map[uint64]struct{}, len(base.Sockets))
		for _, s := range base.Sockets {
			seen[s.Inode] = struct{}{}
		}
	}
	var out []Socket
	for _, s := range cur.Sockets {
		if _, ok := seen[s.Inode]; !ok {
			out = append(out, s)
		}
	}
	return out
}

// A SocketGroup counts sockets that share a protocol, a state and an address.
type SocketGroup struct {
	Proto string
	State string
	// Remote is the address the sockets are connected to. It is empty for
	// groups of listening sockets, of connections accepted on a listener
	// and of sockets without a peer address (unconnected UDP, unix), which
	// are grouped by Local instead.
	Remote string
	// Local is the address the sockets are bound to; it is set only when
	// Remote is not used. For connections accepted on a listener bound to
	// every address (0.0.0.0 or [::]), it is "*:PORT".
	Local string
	// Accepted marks connections accepted on one of the process's
	// listeners, whose remote ports are ephemeral and so say nothing.
	Accepted bool
	Count    int
}

// String describes the group for people, for example
// "14 tcp sockets to 127.0.0.1:6379 in CLOSE_WAIT",
// "3 tcp connections accepted on *:8080 in ESTABLISHED" or
// "1 tcp6 socket on [::1]:8080 in LISTEN".
func (g SocketGroup) String() string {
	b := strconv.AppendInt(nil, int64(g.Count), 10)
	b = append(b, ' ')
	b = append(b, g.Proto...)
	what := " socket"
	if g.Accepted {
		what = " connection"
	}
	b = append(b, what...)
	if g.Count != 1 {
		b = append(b, 's')
	}
	switch {
	case g.Accepted:
		b = append(b, " accepted on "...)
		b = append(b, g.Local...)
	case g.Remote != "":
		b = append(b, " to "...)
		b = append(b, g.Remote...)
	case g.Local != "":
		b = append(b, " on "...)
		b = append(b, g.Local...)
	}
	if g.State != "" {
		b = append(b, " in "...)
		b = append(b, g.State...)
	}
	return string(b)
}

// SummarizeSockets groups socks by protocol, state and the address that
// names them, largest group first, so that a report can name what leaked
// rather than count it. Connections accepted on a listener among all (the
// process's sockets) are grouped by the listening address, whatever their
// peers: by "*:PORT" when the listener is bound to every address, so that a
// server on 0.0.0.0 and [::] is one group per port. Other connected sockets
// are grouped by remote address; listening and unconnected ones by local
// address.
func SummarizeSockets(socks, all []Socket) []SocketGroup {
	exact := map[string]bool{}    // "tcp 127.0.0.1:8080"
	wildcard := map[string]bool{} // "tcp :8080", both families as tcp
	for _, s := range all {
		if s.State != "LISTEN" {
			continue
		}
		exact[s.Proto+" "+s.Local] = true
		if host, port, ok := splitHostPort(s.Local); ok && (host == "0.0.0.0" || host == "[::]") {
			wildcard[transport(s.Proto)+" :"+port] = true
		}
	}
	type key struct {
		proto, state, remote, local string
		accepted                    bool
	}
	counts := make(map[key]int)
	for _, s := range socks {
		k := key{proto: s.Proto, state: s.State}
		_, port, _ := splitHostPort(s.Local)
		switch {
		case s.State == "LISTEN":
			k.local = s.Local
		case s.Remote != "" && wildcard[transport(s.Proto)+" :"+port]:
			k.proto, k.local, k.accepted = transport(s.Proto), "*:"+port, true
		case s.Remote != "" && exact[s.Proto+" "+s.Local]:
			k.local, k.accepted = s.Local, true
		case s.Remote != "":
			k.remote = s.Remote
		default:
			k.local = s.Local
		}
		counts[k]++
	}
	out := make([]SocketGroup, 0, len(counts))
	for k, n := range counts {
		out = append(out, SocketGroup{Proto: k.proto, State: k.state, Remote: k.remote, Local: k.local, Accepted: k.accepted, Count: n})
	}
	slices.SortFunc(out, func(a, b SocketGroup) int {
		return cmp.Or(
			cmp.Compare(b.Count, a.Count),
			cmp.Compare(a.Proto, b.Proto),
			cmp.Compare(a.State, b.State),
			cmp.Compare(a.Remote, b.Remote),
			cmp.Compare(a.Local, b.Local),
		)
	})
	return out
}

// splitHostPort splits "127.0.0.1:80" or "[::1]:80" at its last colon.
func splitHostPort(addr string) (host, port string, ok bool) {
	i := strings.LastIndexByte(addr, ':')
	if i < 0 {
		return "", "", false
	}
	return addr[:i], addr[i+1:], true
}

// transport names a protocol without its address family: tcp6 is tcp.
func transport(proto string) string { return strings.TrimSuffix(proto, "6") }
