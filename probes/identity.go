package probes

import (
	"cmp"
	"slices"
	"strconv"
)

// NewFDs returns the descriptors of cur that base did not have, in cur's
// order. A descriptor is the same when both its number and its target are:
// a number that was closed and reused for another object counts as new. A nil
// base yields all of cur's descriptors.
func NewFDs(base, cur *ProcSample) []FD {
	if cur == nil {
		return nil
	}
	type key struct {
		num    int
		target string
	}
	var seen map[key]struct{}
	if base != nil {
		seen = make(map[key]struct{}, len(base.FDs))
		for _, fd := range base.FDs {
			seen[key{fd.Num, fd.Target}] = struct{}{}
		}
	}
	var out []FD
	for _, fd := range cur.FDs {
		if _, ok := seen[key{fd.Num, fd.Target}]; !ok {
			out = append(out, fd)
		}
	}
	return out
}

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
	// groups of listening sockets and of sockets without a peer address
	// (unconnected UDP, unix), which are grouped by Local instead.
	Remote string
	// Local is the address the sockets are bound to; it is set only when
	// Remote is not used.
	Local string
	Count int
}

// String describes the group for people, for example
// "14 tcp sockets to 127.0.0.1:6379 in CLOSE_WAIT" or
// "1 tcp6 socket on [::1]:8080 in LISTEN".
func (g SocketGroup) String() string {
	b := strconv.AppendInt(nil, int64(g.Count), 10)
	b = append(b, ' ')
	b = append(b, g.Proto...)
	b = append(b, " socket"...)
	if g.Count != 1 {
		b = append(b, 's')
	}
	switch {
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

// SummarizeSockets groups sockets by protocol, state and remote address (the
// local address for listening sockets and sockets without a peer address),
// largest group first, so that a report can name what leaked rather than
// count it.
func SummarizeSockets(socks []Socket) []SocketGroup {
	type key struct{ proto, state, remote, local string }
	counts := make(map[key]int)
	for _, s := range socks {
		k := key{proto: s.Proto, state: s.State}
		if s.Remote != "" && s.State != "LISTEN" {
			k.remote = s.Remote
		} else {
			k.local = s.Local
		}
		counts[k]++
	}
	out := make([]SocketGroup, 0, len(counts))
	for k, n := range counts {
		out = append(out, SocketGroup{Proto: k.proto, State: k.state, Remote: k.remote, Local: k.local, Count: n})
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
