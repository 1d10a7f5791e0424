package probes

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// The /proc/net samples in testdata were written as a little-endian kernel
// prints them.
func skipIfBigEndian(t *testing.T) {
	t.Helper()
	if binary.NativeEndian.Uint16([]byte{1, 0}) != 1 {
		t.Skip("testdata holds addresses as a little-endian kernel prints them")
	}
}

var hexAddrTests = []struct {
	in   string
	want string // "" when invalid
}{
	{"0100007F:18EB", "127.0.0.1:6379"},
	{"00000000:0000", "0.0.0.0:0"},
	{"0500000A:C550", "10.0.0.5:50512"},
	{"1401a8c0:1538", "192.168.1.20:5432"},
	{"00000000000000000000000001000000:0050", "[::1]:80"},
	{"00000000000000000000000000000000:1F90", "[::]:8080"},
	{"0000000000000000FFFF00000100007F:1F90", "[::ffff:127.0.0.1]:8080"},
	{"B80D0120000000000000000001000000:CB20", "[2001:db8::1]:52000"},
	{"000080FE0000000078563412F0DEBC9A:0016", "[fe80::1234:5678:9abc:def0]:22"},
	{"0100007F", ""},
	{"0100007F:18E", ""},
	{"0100007F:18EBB", ""},
	{"0100007:18EB", ""},
	{"0100007G:18EB", ""},
	{"0100007F:XYZW", ""},
	{"000000000000000000000000010000:0050", ""},
	{":", ""},
	{"", ""},
}

func TestParseHexAddrPort(t *testing.T) {
	skipIfBigEndian(t)
	for _, tt := range hexAddrTests {
		ap, ok := parseHexAddrPort([]byte(tt.in))
		got := ""
		if ok {
			got = ap.String()
		}
		if got != tt.want {
			t.Errorf("parseHexAddrPort(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestAppendAddrPortUnmaps(t *testing.T) {
	skipIfBigEndian(t)
	for in, want := range map[string]string{
		"0000000000000000FFFF00000100007F:1F90": "127.0.0.1:8080",
		"00000000000000000000000001000000:0050": "[::1]:80",
		"0100007F:18EB":                         "127.0.0.1:6379",
	} {
		ap, ok := parseHexAddrPort([]byte(in))
		if !ok {
			t.Fatalf("parseHexAddrPort(%q) failed", in)
		}
		if got := string(appendAddrPort(nil, ap)); got != want {
			t.Errorf("appendAddrPort(%s) = %q, want %q", in, got, want)
		}
	}
}

var inetLineTests = []struct {
	name          string
	line          string
	ok            bool
	local, remote string
	state         uint8
	inode         uint64
}{
	{
		name: "tcp listen",
		line: "   0: 0100007F:18EB 00000000:0000 0A 00000000:00000000 00:00000000 00000000   999        0 20001 1 ffff8f0012345600 20 4 30 10 -1                    \n",
		ok:   true, local: "127.0.0.1:6379", remote: "0.0.0.0:0", state: 0x0A, inode: 20001,
	},
	{
		name: "tcp time-wait",
		line: "   5: 0100007F:A028 0100007F:18EB 06 00000000:00000000 03:00001770 00000000     0        0 0 3 ffff8f0012345699",
		ok:   true, local: "127.0.0.1:41000", remote: "127.0.0.1:6379", state: 6, inode: 0,
	},
	{
		name: "tcp6 mapped close-wait",
		line: "   2: 0000000000000000FFFF00000100007F:1F90 0000000000000000FFFF00000100007F:9858 08 00000000:00000000 00:00000000 00000000  1000        0 30003 1 ffff8f0022345602 20 4 30 10 -1\n",
		ok:   true, local: "[::ffff:127.0.0.1]:8080", remote: "[::ffff:127.0.0.1]:39000", state: 8, inode: 30003,
	},
	{
		name: "udp unconnected",
		line: "  100: 3500007F:0035 00000000:0000 07 00000000:00000000 00:00000000 00000000   101        0 40001 2 ffff8f0032345600 0         ",
		ok:   true, local: "127.0.0.53:53", remote: "0.0.0.0:0", state: 7, inode: 40001,
	},
	{name: "tcp header", line: "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode"},
	{name: "udp6 header", line: "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops"},
	{name: "truncated", line: "   0: 0100007F:18EB 00000000:0000 0A 00000000:00000000 00:00000000 00000000   999        0"},
	{name: "no sl colon", line: "   0 0100007F:18EB 00000000:0000 0A 00000000:00000000 00:00000000 00000000   999        0 20001"},
	{name: "state too big", line: "   0: 0100007F:18EB 00000000:0000 1FF 00000000:00000000 00:00000000 00000000   999        0 20001"},
	{name: "bad inode", line: "   0: 0100007F:18EB 00000000:0000 0A 00000000:00000000 00:00000000 00000000   999        0 -5"},
	{name: "empty", line: ""},
}

func TestParseInetLine(t *testing.T) {
	skipIfBigEndian(t)
	for _, tt := range inetLineTests {
		t.Run(tt.name, func(t *testing.T) {
			e, ok := parseInetLine([]byte(tt.line))
			if ok != tt.ok {
				t.Fatalf("ok = %v, want %v", ok, tt.ok)
			}
			if !ok {
				return
			}
			if e.local.String() != tt.local || e.remote.String() != tt.remote || e.state != tt.state || e.inode != tt.inode {
				t.Errorf("got local %s remote %s state %#x inode %d, want %s %s %#x %d",
					e.local, e.remote, e.state, e.inode, tt.local, tt.remote, tt.state, tt.inode)
			}
		})
	}
}

var unixLineTests = []struct {
	name  string
	line  string
	ok    bool
	state string
	typ   uint64
	inode uint64
	path  string
}{
	{"listening", "ffff8f0052345600: 00000002 00000000 00010000 0001 01 60001 /run/app.sock\n", true, "LISTEN", 1, 60001, "/run/app.sock"},
	{"connected without path", "ffff8f0052345680: 00000003 00000000 00000000 0001 03 60003\n", true, "CONNECTED", 1, 60003, ""},
	{"abstract dgram", "ffff8f00523456c0: 00000002 00000000 00000000 0002 01 60004 @/tmp/.X11-unix/X0", true, "UNCONNECTED", 2, 60004, "@/tmp/.X11-unix/X0"},
	{"path with spaces", "ffff8f0052345700: 00000002 00000000 00010000 0005 01 60005 /run/my app/ctl sock\n", true, "LISTEN", 5, 60005, "/run/my app/ctl sock"},
	{"connecting", "ffff8f0052345740: 00000002 00000000 00000000 0001 02 60006", true, "CONNECTING", 1, 60006, ""},
	{"padded inode", "ffff8f0052345780: 00000002 00000000 00000000 0001 04     7\n", true, "DISCONNECTING", 1, 7, ""},
	{"hidden pointer", "0000000000000000: 00000002 00000000 00000000 0001 03 60010 /x", true, "CONNECTED", 1, 60010, "/x"},
	{"unknown state", "0000000000000000: 00000002 00000000 00000000 0001 09 60011", true, "UNKNOWN", 1, 60011, ""},
	{"header", "Num       RefCount Protocol Flags    Type St Inode Path\n", false, "", 0, 0, ""},
	{"truncated", "ffff8f0052345600: 00000002 00000000 00010000 0001 01", false, "", 0, 0, ""},
	{"bad flags", "ffff8f0052345600: 00000002 00000000 0001000Z 0001 01 60001", false, "", 0, 0, ""},
	{"empty", "", false, "", 0, 0, ""},
}

func TestParseUnixLine(t *testing.T) {
	for _, tt := range unixLineTests {
		t.Run(tt.name, func(t *testing.T) {
			e, ok := parseUnixLine([]byte(tt.line))
			if ok != tt.ok {
				t.Fatalf("ok = %v, want %v", ok, tt.ok)
			}
			if !ok {
				return
			}
			if got := unixStateName(e); got != tt.state {
				t.Errorf("state = %q, want %q", got, tt.state)
			}
			if e.typ != tt.typ || e.inode != tt.inode || string(e.path) != tt.path {
				t.Errorf("got type %d inode %d path %q, want %d %d %q", e.typ, e.inode, e.path, tt.typ, tt.inode, tt.path)
			}
		})
	}
}

func TestInetStateName(t *testing.T) {
	tests := []struct {
		proto string
		st    uint8
		want  string
	}{
		{protoTCP, 0x01, "ESTABLISHED"},
		{protoTCP, 0x06, "TIME_WAIT"},
		{protoTCP6, 0x08, "CLOSE_WAIT"},
		{protoTCP, 0x0A, "LISTEN"},
		{protoTCP, 0x0C, "NEW_SYN_RECV"},
		{protoTCP, 0x0D, "BOUND_INACTIVE"},
		{protoTCP, 0x07, "CLOSE"},
		{protoUDP, 0x07, "UNCONN"},
		{protoUDP6, 0x01, "ESTABLISHED"},
		{protoTCP, 0x00, "UNKNOWN"},
		{protoTCP, 0xFF, "UNKNOWN"},
	}
	for _, tt := range tests {
		if got := inetStateName(tt.proto, tt.st); got != tt.want {
			t.Errorf("inetStateName(%s, %#x) = %q, want %q", tt.proto, tt.st, got, tt.want)
		}
	}
}

// A wantSock is a socket expected from joining a testdata table.
type wantSock struct {
	inode                uint64
	state, local, remote string
}

var netFileTests = []struct {
	file  string
	proto string
	want  []wantSock
}{
	{"net_tcp", protoTCP, []wantSock{
		{20001, "LISTEN", "127.0.0.1:6379", ""},
		{20002, "LISTEN", "0.0.0.0:22", ""},
		{20003, "ESTABLISHED", "127.0.0.1:41234", "127.0.0.1:6379"},
		{20005, "CLOSE_WAIT", "10.0.0.5:50512", "192.168.1.20:5432"},
	}},
	{"net_tcp6", protoTCP6, []wantSock{
		{30001, "LISTEN", "[::1]:80", ""},
		{30002, "LISTEN", "[::]:8080", ""},
		{30003, "CLOSE_WAIT", "127.0.0.1:8080", "127.0.0.1:39000"},
		{30004, "ESTABLISHED", "[2001:db8::1]:52000", "[2001:db8::2]:443"},
		{30005, "FIN_WAIT1", "[fe80::1234:5678:9abc:def0]:22", "[fe80::1]:60000"},
	}},
	{"net_udp", protoUDP, []wantSock{
		{40001, "UNCONN", "127.0.0.53:53", ""},
		{40002, "ESTABLISHED", "127.0.0.1:51000", "127.0.0.1:9125"},
	}},
	{"net_udp6", protoUDP6, []wantSock{
		{50001, "UNCONN", "[::]:5353", ""},
		{50002, "ESTABLISHED", "[::1]:47000", "[::1]:8125"},
	}},
	{"net_unix", protoUnix, []wantSock{
		{60001, "LISTEN", "/run/app.sock", ""},
		{60002, "CONNECTED", "/run/app.sock", ""},
		{60003, "CONNECTED", "", ""},
		{60004, "UNCONNECTED", "@/tmp/.X11-unix/X0", ""},
		{60005, "LISTEN", "/run/my app/ctl sock", ""},
		{7, "DISCONNECTING", "", ""},
	}},
}

// TestJoinNet joins whole tables with a set of sockets, some of which are in
// the table and one of which (inode 99) is not: it must stay "other".
func TestJoinNet(t *testing.T) {
	skipIfBigEndian(t)
	for _, tt := range netFileTests {
		t.Run(tt.file, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("testdata", tt.file))
			if err != nil {
				t.Fatal(err)
			}
			var socks []Socket
			idx := map[uint64]int32{}
			for _, w := range tt.want {
				idx[w.inode] = int32(len(socks))
				socks = append(socks, Socket{Inode: w.inode, Proto: protoOther})
			}
			idx[99] = int32(len(socks))
			socks = append(socks, Socket{Inode: 99, Proto: protoOther})

			var ar addrArena
			// A small buffer makes readLine cross buffer boundaries.
			found, err := joinNet(bufio.NewReaderSize(bytes.NewReader(data), 256), tt.proto, idx, socks, &ar)
			if err != nil {
				t.Fatal(err)
			}
			ar.finish(socks)
			if found != len(tt.want) {
				t.Errorf("found %d sockets, want %d", found, len(tt.want))
			}
			for i, w := range tt.want {
				got := socks[i]
				if got.Proto != tt.proto || got.State != w.state || got.Local != w.local || got.Remote != w.remote {
					t.Errorf("inode %d: got %s %s %q %q, want %s %s %q %q", w.inode,
						got.Proto, got.State, got.Local, got.Remote, tt.proto, w.state, w.local, w.remote)
				}
			}
			if last := socks[len(socks)-1]; last.Proto != protoOther || last.State != "" || last.Local != "" {
				t.Errorf("socket absent from the table was filled in: %+v", last)
			}
		})
	}
}

func TestJoinNetIgnoresTimeWaitInodeZero(t *testing.T) {
	skipIfBigEndian(t)
	data, err := os.ReadFile(filepath.Join("testdata", "net_tcp"))
	if err != nil {
		t.Fatal(err)
	}
	socks := []Socket{{Inode: 0, Proto: protoOther}}
	var ar addrArena
	found, err := joinNet(bufio.NewReader(bytes.NewReader(data)), protoTCP, map[uint64]int32{0: 0}, socks, &ar)
	if err != nil || found != 0 || socks[0].Proto != protoOther {
		t.Errorf("inode 0 (TIME_WAIT, no owner) was joined: found %d, %+v, %v", found, socks[0], err)
	}
}

func TestReadLineSkipsOverlongLines(t *testing.T) {
	in := "short\n" + strings.Repeat("x", 100) + "\nnext\nlast"
	br := bufio.NewReaderSize(strings.NewReader(in), 16)
	var got []string
	for {
		line, err := readLine(br)
		if len(line) > 0 {
			got = append(got, string(line))
		}
		if err != nil {
			break
		}
	}
	want := []string{"short\n", "next\n", "last"}
	if !slices.Equal(got, want) {
		t.Errorf("lines = %q, want %q", got, want)
	}
}

var statusTests = []struct {
	file                   string
	ok                     bool
	state                  byte
	threads                int
	rss, rssAnon, hwmBytes uint64
}{
	{"status_daemon", true, 'S', 23, 150212 * 1024, 131072 * 1024, 187340 * 1024},
	{"status_kthread", true, 'I', 1, 0, 0, 0},
	{"status_zombie", true, 'Z', 1, 0, 0, 0},
}

func TestParseStatus(t *testing.T) {
	for _, tt := range statusTests {
		t.Run(tt.file, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("testdata", tt.file))
			if err != nil {
				t.Fatal(err)
			}
			st, ok := parseStatus(data)
			if ok != tt.ok || st.state != tt.state || st.threads != tt.threads ||
				st.rss != tt.rss || st.rssAnon != tt.rssAnon || st.hwmSize != tt.hwmBytes {
				t.Errorf("got %+v ok=%v, want state %c threads %d rss %d anon %d hwm %d",
					st, ok, tt.state, tt.threads, tt.rss, tt.rssAnon, tt.hwmBytes)
			}
		})
	}
}

func TestParseStatusMalformed(t *testing.T) {
	tests := []struct {
		in string
		ok bool
	}{
		{"", false},
		{"Name:\tx\n", false},
		{"State:\n", false},
		{"State:\tR (running)", true},
		{"State:\tS (sleeping)\nVmRSS:\tlots kB\nThreads:\t-1\nVmHWM:\t99999999999999999999999 kB\n", true},
		{"no colon here\nState:\tD (disk sleep)\n", true},
	}
	for _, tt := range tests {
		st, ok := parseStatus([]byte(tt.in))
		if ok != tt.ok {
			t.Errorf("parseStatus(%q) ok = %v, want %v", tt.in, ok, tt.ok)
		}
		if st.rss != 0 || st.threads != 0 || st.hwmSize != 0 {
			t.Errorf("parseStatus(%q) took malformed values: %+v", tt.in, st)
		}
	}
}

var statTests = []struct {
	name  string
	in    string
	ok    bool
	pid   int
	comm  string
	state byte
	ppid  int
}{
	{"plain", "3260 (bash) S 3259 3260 3260 0 -1 4194560 5428\n", true, 3260, "bash", 'S', 3259},
	{"parens and spaces", "4242 (my (weird) prog) S 1 4242 4242 0 -1 4194560\n", true, 4242, "my (weird) prog", 'S', 1},
	{"fake fields in comm", "77 (x) Z 1 () R 5 77 77\n", true, 77, "x) Z 1 (", 'R', 5},
	{"zombie", "6371 (sleep) Z 6370 6327 3260\n", true, 6371, "sleep", 'Z', 6370},
	{"empty comm", "9 () R 0 0 0\n", true, 9, "", 'R', 0},
	{"kernel thread", "2 (kthreadd) S 0 0 0 0 -1 2129984\n", true, 2, "kthreadd", 'S', 0},
	{"no parens", "12 bash S 1\n", false, 0, "", 0, 0},
	{"no pid", "(bash) S 1\n", false, 0, "", 0, 0},
	{"truncated after comm", "12 (bash)", false, 0, "", 0, 0},
	{"truncated after state", "12 (bash) S", false, 0, "", 0, 0},
	{"long state", "12 (bash) SS 1", false, 0, "", 0, 0},
	{"state not a letter", "12 (bash) 1 1", false, 0, "", 0, 0},
	{"bad ppid", "12 (bash) S x", false, 0, "", 0, 0},
	{"closing before opening", "12 )bash( S 1", false, 0, "", 0, 0},
	{"empty", "", false, 0, "", 0, 0},
}

func TestParseStat(t *testing.T) {
	for _, tt := range statTests {
		t.Run(tt.name, func(t *testing.T) {
			st, ok := parseStat([]byte(tt.in))
			if ok != tt.ok {
				t.Fatalf("ok = %v, want %v", ok, tt.ok)
			}
			if ok && (st.pid != tt.pid || st.comm != tt.comm || st.state != tt.state || st.ppid != tt.ppid) {
				t.Errorf("got %+v, want pid %d comm %q state %c ppid %d", st, tt.pid, tt.comm, tt.state, tt.ppid)
			}
		})
	}
}

func TestParseStatFiles(t *testing.T) {
	for file, want := range map[string]procStat{
		"stat_weird":  {pid: 4242, comm: "my (weird) prog", state: 'S', ppid: 1, start: 16949},
		"stat_zombie": {pid: 6371, comm: "sleep", state: 'Z', ppid: 6370, start: 17013},
	} {
		data, err := os.ReadFile(filepath.Join("testdata", file))
		if err != nil {
			t.Fatal(err)
		}
		if got, ok := parseStat(data); !ok || got != want {
			t.Errorf("%s: got %+v ok=%v, want %+v", file, got, ok, want)
		}
	}
}

var pidListTests = []struct {
	in   string
	want []int
}{
	{"", nil},
	{"123 ", []int{123}},
	{"123 456 789 ", []int{123, 456, 789}},
	{"1 x 2\n", []int{1, 2}},
	{"0 -3 99999999999999999999999 7", []int{7}},
}

func TestAppendPIDs(t *testing.T) {
	for _, tt := range pidListTests {
		if got := appendPIDs(nil, []byte(tt.in)); !slices.Equal(got, tt.want) {
			t.Errorf("appendPIDs(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

var targetTests = []struct {
	target string
	typ    string
	inode  uint64
}{
	{"socket:[12345]", fdSocket, 12345},
	{"pipe:[6789]", fdPipe, 6789},
	{"anon_inode:[eventfd]", fdAnon, 0},
	{"anon_inode:[eventpoll]", fdAnon, 0},
	{"anon_inode:[pidfd]", fdAnon, 0},
	{"anon_inode:inotify", fdAnon, 0},
	{"pidfd:[7777]", fdAnon, 0},
	{"/memfd:jit (deleted)", fdAnon, 0},
	{"/var/log/app.log", fdFile, 0},
	{"/tmp/x (deleted)", fdFile, 0},
	{"/dev/shm/sem.lock", fdFile, 0},
	{"/dev/null", fdDev, 0},
	{"/dev/pts/3", fdDev, 0},
	{"net:[4026531840]", fdOther, 0},
	{"socket:[]", fdSocket, 0},
	{"socket:[12x]", fdSocket, 0},
	{"pipe:[99", fdPipe, 0},
	{"", fdOther, 0},
}

func TestClassifyTarget(t *testing.T) {
	for _, tt := range targetTests {
		typ, inode := classifyTarget([]byte(tt.target))
		if typ != tt.typ || inode != tt.inode {
			t.Errorf("classifyTarget(%q) = %s, %d; want %s, %d", tt.target, typ, inode, tt.typ, tt.inode)
		}
	}
}

func TestParseFDNum(t *testing.T) {
	for in, want := range map[string]int{"0": 0, "7": 7, "1048575": 1048575, "2147483647": 2147483647} {
		if got, ok := parseFDNum([]byte(in)); !ok || got != want {
			t.Errorf("parseFDNum(%q) = %d, %v", in, got, ok)
		}
	}
	for _, in := range []string{".", "..", "", "-1", "2147483648", "99999999999", "1a"} {
		if _, ok := parseFDNum([]byte(in)); ok {
			t.Errorf("parseFDNum(%q) accepted", in)
		}
	}
}

// dirent encodes a linux_dirent64 record as getdents64 writes it, padded to
// 8 bytes.
func dirent(ino uint64, name string) []byte {
	reclen := (19 + len(name) + 1 + 7) &^ 7
	b := make([]byte, reclen)
	binary.NativeEndian.PutUint64(b, ino)
	binary.NativeEndian.PutUint64(b[8:], 0)
	binary.NativeEndian.PutUint16(b[16:], uint16(reclen))
	b[18] = 10 // DT_LNK
	copy(b[19:], name)
	return b
}

func TestNextDirent(t *testing.T) {
	buf := slices.Concat(dirent(1, "."), dirent(2, ".."), dirent(3, "0"), dirent(4, "12345"), dirent(5, "a-rather-long-name"))
	var names []string
	var inos []uint64
	off := 0
	for off < len(buf) {
		ino, nameZ, next, ok := nextDirent(buf, off)
		if !ok {
			t.Fatalf("malformed at %d", off)
		}
		if nameZ[len(nameZ)-1] != 0 {
			t.Fatalf("name %q is not NUL-terminated", nameZ)
		}
		names = append(names, string(nameZ[:len(nameZ)-1]))
		inos = append(inos, ino)
		off = next
	}
	if want := []string{".", "..", "0", "12345", "a-rather-long-name"}; !slices.Equal(names, want) {
		t.Errorf("names = %q, want %q", names, want)
	}
	if want := []uint64{1, 2, 3, 4, 5}; !slices.Equal(inos, want) {
		t.Errorf("inodes = %v, want %v", inos, want)
	}

	rec := dirent(3, "0")
	bad := map[string][]byte{
		"short":          rec[:10],
		"reclen 0":       func() []byte { b := slices.Clone(rec); b[16], b[17] = 0, 0; return b }(),
		"reclen too big": func() []byte { b := slices.Clone(rec); b[16], b[17] = 0xff, 0; return b }(),
		"no NUL": func() []byte {
			b := slices.Clone(rec)
			b[19], b[20], b[21], b[22], b[23] = 'a', 'b', 'c', 'd', 'e'
			return b
		}(),
	}
	for name, b := range bad {
		if _, _, _, ok := nextDirent(b, 0); ok {
			t.Errorf("%s: accepted a malformed record", name)
		}
	}
	if _, _, _, ok := nextDirent(rec, -1); ok {
		t.Error("accepted a negative offset")
	}
}

func TestParseNumbers(t *testing.T) {
	if n, ok := parseDec([]byte("18446744073709551615")); !ok || n != 1<<64-1 {
		t.Errorf("parseDec(max) = %d, %v", n, ok)
	}
	for _, in := range []string{"18446744073709551616", "", "1 ", "+1"} {
		if _, ok := parseDec([]byte(in)); ok {
			t.Errorf("parseDec(%q) accepted", in)
		}
	}
	if n, ok := parseHex([]byte("ffffFFFFffffFFFF")); !ok || n != 1<<64-1 {
		t.Errorf("parseHex(max) = %x, %v", n, ok)
	}
	for _, in := range []string{"1ffffFFFFffffFFFF", "", "0x1", "g"} {
		if _, ok := parseHex([]byte(in)); ok {
			t.Errorf("parseHex(%q) accepted", in)
		}
	}
}
