package probes

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"testing"
)

// The parsers read text the kernel (or another process) wrote; whatever the
// text, they must not panic, and what they accept must be consistent.

func FuzzParseInetLine(f *testing.F) {
	for _, tt := range inetLineTests {
		f.Add(tt.line)
	}
	for _, tt := range hexAddrTests {
		f.Add("0: " + tt.in + " " + tt.in + " 01 0:0 0:0 0 0 0 1")
	}
	f.Fuzz(func(t *testing.T, line string) {
		e, ok := parseInetLine([]byte(line))
		if !ok {
			return
		}
		if !e.local.IsValid() || !e.remote.IsValid() {
			t.Fatalf("accepted %q with invalid addresses %v %v", line, e.local, e.remote)
		}
		if len(appendAddrPort(nil, e.local)) == 0 || inetStateName(protoTCP, e.state) == "" {
			t.Fatalf("accepted %q but cannot name it", line)
		}
	})
}

func FuzzParseUnixLine(f *testing.F) {
	for _, tt := range unixLineTests {
		f.Add(tt.line)
	}
	f.Fuzz(func(t *testing.T, line string) {
		e, ok := parseUnixLine([]byte(line))
		if !ok {
			return
		}
		if !strings.Contains(line, string(e.path)) || unixStateName(e) == "" {
			t.Fatalf("accepted %q as %+v", line, e)
		}
	})
}

func FuzzJoinNet(f *testing.F) {
	for _, tt := range netFileTests {
		data, err := os.ReadFile(filepath.Join("testdata", tt.file))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data, tt.proto == protoUnix)
	}
	f.Fuzz(func(t *testing.T, data []byte, unix bool) {
		proto := protoTCP6
		if unix {
			proto = protoUnix
		}
		// Sockets with the inodes that appear in the seeds, and small ones.
		var socks []Socket
		idx := map[uint64]int32{}
		for _, ino := range []uint64{0, 1, 7, 20001, 30003, 60001, 60005} {
			idx[ino] = int32(len(socks))
			socks = append(socks, Socket{Inode: ino, Proto: protoOther})
		}
		var ar addrArena
		found, err := joinNet(bufio.NewReaderSize(bytes.NewReader(data), 16), proto, idx, socks, &ar)
		if err != nil {
			t.Fatal(err)
		}
		ar.finish(socks)
		filled := 0
		for _, s := range socks {
			if s.Proto != protoOther {
				filled++
				if s.State == "" {
					t.Fatalf("socket %+v joined without a state", s)
				}
			}
		}
		if found != filled || socks[0].Proto != protoOther {
			t.Fatalf("found %d, filled %d, inode 0 %+v", found, filled, socks[0])
		}
	})
}

func FuzzParseStatus(f *testing.F) {
	for _, tt := range statusTests {
		data, err := os.ReadFile(filepath.Join("testdata", tt.file))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte("State:\tS\nVmRSS:\t18014398509481984 kB\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		st, ok := parseStatus(data)
		if ok && !bytes.Contains(data, []byte("State:")) {
			t.Fatalf("accepted %q without a State line", data)
		}
		if st.threads < 0 {
			t.Fatalf("negative threads from %q", data)
		}
	})
}

func FuzzParseStat(f *testing.F) {
	for _, tt := range statTests {
		f.Add(tt.in)
	}
	f.Fuzz(func(t *testing.T, in string) {
		st, ok := parseStat([]byte(in))
		if !ok {
			return
		}
		if st.pid < 0 || st.ppid < 0 || !strings.Contains(in, "("+st.comm+")") {
			t.Fatalf("accepted %q as %+v", in, st)
		}
		c := childOf(st)
		if c.State != string([]byte{st.state}) || c.Zombie != (st.state == 'Z') {
			t.Fatalf("child %+v from %+v", c, st)
		}
	})
}

func FuzzAppendPIDs(f *testing.F) {
	for _, tt := range pidListTests {
		f.Add(tt.in)
	}
	f.Fuzz(func(t *testing.T, in string) {
		for _, pid := range appendPIDs(nil, []byte(in)) {
			if pid <= 0 {
				t.Fatalf("pid %d from %q", pid, in)
			}
		}
	})
}

func FuzzClassifyTarget(f *testing.F) {
	for _, tt := range targetTests {
		f.Add(tt.target)
	}
	f.Fuzz(func(t *testing.T, target string) {
		typ, inode := classifyTarget([]byte(target))
		valid := false
		for _, ft := range fdTypes {
			valid = valid || typ == ft
		}
		if !valid || (inode != 0 && typ != fdSocket && typ != fdPipe) {
			t.Fatalf("classifyTarget(%q) = %q, %d", target, typ, inode)
		}
	})
}

func FuzzNextDirent(f *testing.F) {
	f.Add(bytes.Join([][]byte{dirent(1, "."), dirent(2, ".."), dirent(3, "12")}, nil))
	f.Add(dirent(9, "a-long-name-for-a-directory-entry"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, buf []byte) {
		// Walk the buffer as readFDs does; it must end.
		for off, steps := 0, 0; off < len(buf); steps++ {
			_, nameZ, next, ok := nextDirent(buf, off)
			if !ok {
				break
			}
			if next <= off || next > len(buf) || len(nameZ) == 0 || nameZ[len(nameZ)-1] != 0 {
				t.Fatalf("record at %d: next %d, name %q", off, next, nameZ)
			}
			parseFDNum(nameZ[:len(nameZ)-1])
			off = next
		}
	})
}

func FuzzDecodeProfile(f *testing.F) {
	for _, b := range profileSeeds {
		f.Add(b)
	}
	var buf bytes.Buffer
	if err := pprof.Lookup("goroutine").WriteTo(&buf, 0); err != nil {
		f.Fatal(err)
	}
	f.Add(buf.Bytes())
	f.Fuzz(func(t *testing.T, data []byte) {
		if p, n, err := sumProfile(data, "goroutine"); err == nil && (p == nil || n < 0 && len(p.Sample) == 0) {
			t.Fatal("no profile, or a negative sum of no samples, without an error")
		}
	})
}
