package probes

// Parsers for the text of /proc files. They work on byte slices, allocate
// nothing unless a result needs a string, and report malformed input with
// ok == false instead of panicking: the kernel's formats change between
// versions, and a file can be cut short when a process exits mid-read.

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net/netip"
)

// hasPrefix is bytes.HasPrefix for a string prefix, without a conversion.
func hasPrefix(b []byte, prefix string) bool {
	return len(b) >= len(prefix) && string(b[:len(prefix)]) == prefix
}

// parseDec parses a non-empty unsigned decimal number.
func parseDec(b []byte) (uint64, bool) {
	if len(b) == 0 || len(b) > 20 {
		return 0, false
	}
	var n uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		d := uint64(c - '0')
		if n > (1<<64-1-d)/10 {
			return 0, false
		}
		n = n*10 + d
	}
	return n, true
}

// parseInt parses a non-negative decimal int.
func parseInt(b []byte) (int, bool) {
	n, ok := parseDec(b)
	if !ok || n > uint64(int(^uint(0)>>1)) {
		return 0, false
	}
	return int(n), true
}

// parseHex parses a non-empty unsigned hexadecimal number of at most 16
// digits, either case.
func parseHex(b []byte) (uint64, bool) {
	if len(b) == 0 || len(b) > 16 {
		return 0, false
	}
	var n uint64
	for _, c := range b {
		var d byte
		switch {
		case c >= '0' && c <= '9':
			d = c - '0'
		case c >= 'a' && c <= 'f':
			d = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			d = c - 'A' + 10
		default:
			return 0, false
		}
		n = n<<4 | uint64(d)
	}
	return n, true
}

func isLetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// splitFields stores up to len(dst) whitespace-separated fields of line in
// dst and returns how many it stored and the index just past the last one.
func splitFields(line []byte, dst [][]byte) (n, end int) {
	i := 0
	for n < len(dst) {
		for i < len(line) && isSpace(line[i]) {
			i++
		}
		if i == len(line) {
			break
		}
		j := i
		for j < len(line) && !isSpace(line[j]) {
			j++
		}
		dst[n] = line[i:j]
		n++
		i = j
	}
	return n, i
}

// classifyTarget returns the FD.Type of a descriptor whose link reads target,
// and the inode of a socket or pipe.
func classifyTarget(target []byte) (typ string, inode uint64) {
	switch {
	case hasPrefix(target, "socket:["):
		return fdSocket, bracketNumber(target[len("socket:["):])
	case hasPrefix(target, "pipe:["):
		return fdPipe, bracketNumber(target[len("pipe:["):])
	case hasPrefix(target, "anon_inode:"), hasPrefix(target, "/memfd:"), hasPrefix(target, "pidfd:"):
		return fdAnon, 0
	case hasPrefix(target, "/dev/shm/"):
		return fdFile, 0
	case hasPrefix(target, "/dev/"):
		return fdDev, 0
	case hasPrefix(target, "/"):
		return fdFile, 0
	}
	return fdOther, 0
}

// bracketNumber parses the "12345]" that ends a "socket:[12345]" link; it
// returns 0 when the text is malformed.
func bracketNumber(b []byte) uint64 {
	i := bytes.IndexByte(b, ']')
	if i < 0 {
		return 0
	}
	n, _ := parseDec(b[:i])
	return n
}

// parseFDNum parses a name in /proc/<pid>/fd.
func parseFDNum(name []byte) (int, bool) {
	if len(name) == 0 || len(name) > 10 {
		return 0, false
	}
	n, ok := parseInt(name)
	return n, ok && n <= 1<<31-1
}

// A procStatus holds the fields of /proc/<pid>/status that a sample uses.
type procStatus struct {
	state                 byte // first letter of State:, e.g. 'S' or 'Z'
	threads               int
	rss, rssAnon, hwmSize uint64 // bytes
}

// parseStatus parses /proc/<pid>/status. It fails only when the State line is
// missing or empty; memory lines are absent for kernel threads and zombies
// and are then zero.
func parseStatus(b []byte) (procStatus, bool) {
	var st procStatus
	found := false
	for len(b) > 0 {
		line := b
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line, b = b[:i], b[i+1:]
		} else {
			b = nil
		}
		colon := bytes.IndexByte(line, ':')
		if colon < 0 {
			continue
		}
		key, val := line[:colon], bytes.TrimLeft(line[colon+1:], " \t")
		switch string(key) {
		case "State":
			if len(val) > 0 {
				st.state = val[0]
				found = true
			}
		case "Threads":
			if n, ok := parseInt(bytes.TrimRight(val, " \t")); ok {
				st.threads = n
			}
		case "VmRSS":
			st.rss = parseKB(val)
		case "RssAnon":
			st.rssAnon = parseKB(val)
		case "VmHWM":
			st.hwmSize = parseKB(val)
		}
	}
	return st, found
}

// parseKB parses a status value such as "1688 kB" into bytes; 0 when
// malformed.
func parseKB(val []byte) uint64 {
	i := 0
	for i < len(val) && val[i] >= '0' && val[i] <= '9' {
		i++
	}
	n, ok := parseDec(val[:i])
	if !ok || n > (1<<64-1)/1024 {
		return 0
	}
	if bytes.Equal(bytes.TrimSpace(val[i:]), []byte("kB")) {
		return n * 1024
	}
	return n
}

// A procStat holds the fields of /proc/<pid>/stat that a sample uses.
type procStat struct {
	pid   int
	comm  string
	state byte
	ppid  int
	start uint64 // starttime, field 22: clock ticks after boot; 0 when absent
}

// parseStat parses /proc/<pid>/stat: "pid (comm) state ppid ... starttime ...".
// The command name may hold spaces and parentheses; it ends at the last ')'.
// The start time is optional, so a line cut short after ppid still parses.
func parseStat(b []byte) (procStat, bool) {
	var st procStat
	open := bytes.IndexByte(b, '(')
	end := bytes.LastIndexByte(b, ')')
	if open < 1 || end < open {
		return st, false
	}
	pid, ok := parseInt(bytes.TrimSpace(b[:open]))
	if !ok {
		return st, false
	}
	// Fields after the name, from state (field 3) to starttime (field 22).
	var f [statStartField - 2][]byte
	n, _ := splitFields(b[end+1:], f[:])
	if n < 2 || len(f[0]) != 1 || !isLetter(f[0][0]) {
		return st, false
	}
	ppid, ok := parseInt(f[1])
	if !ok {
		return st, false
	}
	st.pid, st.comm, st.state, st.ppid = pid, string(b[open+1:end]), f[0][0], ppid
	if n == len(f) {
		st.start, _ = parseDec(f[n-1])
	}
	return st, true
}

// statStartField is the 1-based number of starttime in /proc/<pid>/stat.
const statStartField = 22

// stateString returns a process state letter as a string, without
// allocating.
func stateString(c byte) string { return string([]byte{c}) }

// childOf makes a Child of a parsed stat file.
func childOf(st procStat) Child {
	return Child{PID: st.pid, PPID: st.ppid, Comm: st.comm, State: stateString(st.state), Zombie: st.state == 'Z', Start: st.start}
}

// appendPIDs appends the process ids listed in a /proc/<pid>/task/<tid>/children
// file ("123 456 ") to dst, skipping anything that is not a positive number.
func appendPIDs(dst []int, b []byte) []int {
	for len(b) > 0 {
		var f [1][]byte
		n, end := splitFields(b, f[:])
		if n == 0 {
			break
		}
		if pid, ok := parseInt(f[0]); ok && pid > 0 {
			dst = append(dst, pid)
		}
		b = b[end:]
	}
	return dst
}

// nextDirent decodes the linux_dirent64 record at buf[off:], as returned by
// getdents64: inode (8 bytes), offset (8), record length (2), type (1) and a
// NUL-terminated name. It returns the name with its NUL, and the offset of
// the next record; ok is false when the record is malformed.
func nextDirent(buf []byte, off int) (ino uint64, nameZ []byte, next int, ok bool) {
	const nameOff = 19
	if off < 0 || off > len(buf)-nameOff {
		return 0, nil, 0, false
	}
	reclen := int(binary.NativeEndian.Uint16(buf[off+16:]))
	if reclen <= nameOff || reclen > len(buf)-off {
		return 0, nil, 0, false
	}
	rec := buf[off+nameOff : off+reclen]
	i := bytes.IndexByte(rec, 0)
	if i < 0 {
		return 0, nil, 0, false
	}
	return binary.NativeEndian.Uint64(buf[off:]), rec[:i+1], off + reclen, true
}

// An inetEntry is one line of /proc/net/{tcp,tcp6,udp,udp6}.
type inetEntry struct {
	local, remote netip.AddrPort
	state         uint8
	inode         uint64
}

// parseInetLine parses a line of /proc/net/{tcp,tcp6,udp,udp6}:
//
//	sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ...
//	0: 0100007F:18EB 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 4711 ...
//
// The header line and malformed lines give ok == false.
func parseInetLine(line []byte) (e inetEntry, ok bool) {
	var f [10][]byte
	if n, _ := splitFields(line, f[:]); n < len(f) {
		return e, false
	}
	if len(f[0]) < 2 || f[0][len(f[0])-1] != ':' {
		return e, false
	}
	if e.local, ok = parseHexAddrPort(f[1]); !ok {
		return e, false
	}
	if e.remote, ok = parseHexAddrPort(f[2]); !ok {
		return e, false
	}
	st, ok := parseHex(f[3])
	if !ok || st > 0xff {
		return e, false
	}
	e.state = uint8(st)
	if e.inode, ok = parseDec(f[9]); !ok {
		return e, false
	}
	return e, true
}

// parseHexAddrPort parses an address as the kernel prints it in /proc/net:
// "0100007F:18EB" or "00000000000000000000000001000000:0050". The kernel
// prints the address as 32-bit words in the machine's byte order (each
// __be32 word read as a native integer), and the port in host order.
func parseHexAddrPort(b []byte) (netip.AddrPort, bool) {
	colon := bytes.IndexByte(b, ':')
	if colon < 0 || len(b)-colon-1 != 4 {
		return netip.AddrPort{}, false
	}
	port, ok := parseHex(b[colon+1:])
	if !ok {
		return netip.AddrPort{}, false
	}
	hex := b[:colon]
	var addr netip.Addr
	switch len(hex) {
	case 8:
		w, ok := parseHex(hex)
		if !ok {
			return netip.AddrPort{}, false
		}
		var a [4]byte
		binary.NativeEndian.PutUint32(a[:], uint32(w))
		addr = netip.AddrFrom4(a)
	case 32:
		var a [16]byte
		for i := 0; i < 4; i++ {
			w, ok := parseHex(hex[i*8 : i*8+8])
			if !ok {
				return netip.AddrPort{}, false
			}
			binary.NativeEndian.PutUint32(a[i*4:], uint32(w))
		}
		addr = netip.AddrFrom16(a)
	default:
		return netip.AddrPort{}, false
	}
	return netip.AddrPortFrom(addr, uint16(port)), true
}

// tcpStates names the kernel's TCP states (include/net/tcp_states.h).
var tcpStates = [...]string{
	1:  "ESTABLISHED",
	2:  "SYN_SENT",
	3:  "SYN_RECV",
	4:  "FIN_WAIT1",
	5:  "FIN_WAIT2",
	6:  "TIME_WAIT",
	7:  "CLOSE",
	8:  "CLOSE_WAIT",
	9:  "LAST_ACK",
	10: "LISTEN",
	11: "CLOSING",
	12: "NEW_SYN_RECV",
	13: "BOUND_INACTIVE",
}

// inetStateName names state st of a socket of protocol proto.
func inetStateName(proto string, st uint8) string {
	if proto == protoUDP || proto == protoUDP6 {
		switch st {
		case 1:
			return "ESTABLISHED"
		case 7:
			return "UNCONN"
		}
	}
	if int(st) < len(tcpStates) && tcpStates[st] != "" {
		return tcpStates[st]
	}
	return "UNKNOWN"
}

// A unixEntry is one line of /proc/net/unix.
type unixEntry struct {
	flags uint64
	typ   uint64 // SOCK_STREAM 1, SOCK_DGRAM 2, SOCK_SEQPACKET 5
	state uint64 // SS_UNCONNECTED 1 ... SS_DISCONNECTING 4
	inode uint64
	path  []byte
}

// soAcceptCon is the kernel's __SO_ACCEPTCON flag: a listening socket.
const soAcceptCon = 1 << 16

// parseUnixLine parses a line of /proc/net/unix:
//
//	Num       RefCount Protocol Flags    Type St Inode Path
//	0000000000000000: 00000002 00000000 00010000 0001 01 23456 /run/app.sock
//
// The path, which may hold spaces, is everything after the inode and one
// space; it is absent for unbound sockets.
func parseUnixLine(line []byte) (e unixEntry, ok bool) {
	line = bytes.TrimRight(line, "\n")
	var f [7][]byte
	n, end := splitFields(line, f[:])
	if n < len(f) || len(f[0]) < 2 || f[0][len(f[0])-1] != ':' {
		return e, false
	}
	if e.flags, ok = parseHex(f[3]); !ok {
		return e, false
	}
	if e.typ, ok = parseHex(f[4]); !ok {
		return e, false
	}
	if e.state, ok = parseHex(f[5]); !ok {
		return e, false
	}
	if e.inode, ok = parseDec(f[6]); !ok {
		return e, false
	}
	if end+1 < len(line) && line[end] == ' ' {
		e.path = line[end+1:]
	}
	return e, true
}

// unixStateName names the state of a unix socket.
func unixStateName(e unixEntry) string {
	if e.flags&soAcceptCon != 0 {
		return "LISTEN"
	}
	switch e.state {
	case 1:
		return "UNCONNECTED"
	case 2:
		return "CONNECTING"
	case 3:
		return "CONNECTED"
	case 4:
		return "DISCONNECTING"
	}
	return "UNKNOWN"
}

// readLine returns the next line of br, without allocating. A line longer
// than br's buffer is skipped: it is returned empty with a nil error.
func readLine(br *bufio.Reader) ([]byte, error) {
	line, err := br.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		for errors.Is(err, bufio.ErrBufferFull) {
			_, err = br.ReadSlice('\n')
		}
		return nil, err
	}
	return line, err
}

// addrArena collects the address texts of many sockets in one buffer, so that
// a sample makes one string for all of them instead of two per socket.
type addrArena struct {
	buf   []byte
	spans []addrSpan
}

// An addrSpan locates the Local and Remote texts of socket i in the arena.
type addrSpan struct {
	i                      int32
	lOff, lLen, rOff, rLen int32
}

func (a *addrArena) reset() {
	a.buf = a.buf[:0]
	a.spans = a.spans[:0]
}

// addInet records the addresses of socket i.
func (a *addrArena) addInet(i int32, local, remote netip.AddrPort) {
	sp := addrSpan{i: i, lOff: int32(len(a.buf))}
	a.buf = appendAddrPort(a.buf, local)
	sp.lLen = int32(len(a.buf)) - sp.lOff
	sp.rOff = int32(len(a.buf))
	if remote.Addr().IsUnspecified() && remote.Port() == 0 {
		sp.rLen = 0
	} else {
		a.buf = appendAddrPort(a.buf, remote)
		sp.rLen = int32(len(a.buf)) - sp.rOff
	}
	a.spans = append(a.spans, sp)
}

// addUnix records the path of unix socket i.
func (a *addrArena) addUnix(i int32, path []byte) {
	sp := addrSpan{i: i, lOff: int32(len(a.buf)), lLen: int32(len(path))}
	a.buf = append(a.buf, path...)
	sp.rOff = int32(len(a.buf))
	a.spans = append(a.spans, sp)
}

// finish sets the Local and Remote fields of the recorded sockets.
func (a *addrArena) finish(socks []Socket) {
	all := string(a.buf)
	for _, sp := range a.spans {
		s := &socks[sp.i]
		s.Local = all[sp.lOff : sp.lOff+sp.lLen]
		s.Remote = all[sp.rOff : sp.rOff+sp.rLen]
	}
}

// appendAddrPort appends "1.2.3.4:80" or "[::1]:80"; an IPv4-mapped IPv6
// address is written in IPv4 form.
func appendAddrPort(b []byte, ap netip.AddrPort) []byte {
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()).AppendTo(b)
}

// joinNet reads a /proc/net table of protocol proto from br and fills in the
// protocol, state and addresses of the sockets of socks whose inode idx maps
// to their index; sockets already filled in are left alone. It returns how
// many sockets it filled in, and the first read error other than io.EOF.
func joinNet(br *bufio.Reader, proto string, idx map[uint64]int32, socks []Socket, ar *addrArena) (int, error) {
	found := 0
	for {
		line, err := readLine(br)
		if len(line) > 0 {
			if proto == protoUnix {
				if e, ok := parseUnixLine(line); ok {
					if i, ok := idx[e.inode]; ok && e.inode != 0 && socks[i].Proto == protoOther {
						socks[i].Proto = proto
						socks[i].State = unixStateName(e)
						ar.addUnix(i, e.path)
						found++
					}
				}
			} else if e, ok := parseInetLine(line); ok {
				if i, ok := idx[e.inode]; ok && e.inode != 0 && socks[i].Proto == protoOther {
					socks[i].Proto = proto
					socks[i].State = inetStateName(proto, e.state)
					ar.addInet(i, e.local, e.remote)
					found++
				}
			}
		}
		if err != nil {
			if err == io.EOF {
				return found, nil
			}
			return found, err
		}
	}
}
