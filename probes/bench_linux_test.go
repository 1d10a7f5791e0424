//go:build linux

package probes

import (
	"net"
	"os"
	"strconv"
	"syscall"
	"testing"
)

// The budget: leakcheck's own CPU under 1% of a core at a 1 s interval
// against a daemon with 10,000 descriptors, so SampleProcess on such a
// process must take well under 10 ms. Run side by side:
//
//	go test -run '^$' -bench . -benchmem ./probes/
//
// BenchmarkReadDirFD10k is the floor (listing the descriptor directory,
// nothing else), BenchmarkReadlinkFD10k what the straightforward
// os.ReadDir + os.Readlink loop costs.

// raiseNoFile makes room for n more descriptors, raising the soft
// RLIMIT_NOFILE up to the hard limit if needed, and restores it afterwards.
func raiseNoFile(b *testing.B, n int) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		b.Fatal(err)
	}
	need := uint64(n + 1024)
	if lim.Cur >= need {
		return
	}
	if lim.Max < need {
		b.Skipf("RLIMIT_NOFILE hard limit %d is below the %d descriptors needed", lim.Max, need)
	}
	old := lim
	lim.Cur = need
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { syscall.Setrlimit(syscall.RLIMIT_NOFILE, &old) })
}

// openPipes opens n pipes (2n descriptors) in this process until the
// benchmark ends.
func openPipes(b *testing.B, n int) {
	raiseNoFile(b, 2*n)
	fds := make([]int, 0, 2*n)
	b.Cleanup(func() {
		for _, fd := range fds {
			syscall.Close(fd)
		}
	})
	for range n {
		var p [2]int
		if err := syscall.Pipe2(p[:], syscall.O_CLOEXEC); err != nil {
			b.Fatal(err)
		}
		fds = append(fds, p[0], p[1])
	}
}

// openFiles opens n descriptors of regular files in a temporary directory
// (a hundred files, each opened many times) until the benchmark ends.
func openFiles(b *testing.B, n int) {
	raiseNoFile(b, n)
	dir := b.TempDir()
	fds := make([]int, 0, n)
	b.Cleanup(func() {
		for _, fd := range fds {
			syscall.Close(fd)
		}
	})
	for i := range n {
		path := dir + "/f" + strconv.Itoa(i%100)
		fd, err := syscall.Open(path, syscall.O_RDWR|syscall.O_CREAT|syscall.O_CLOEXEC, 0o600)
		if err != nil {
			b.Fatal(err)
		}
		fds = append(fds, fd)
	}
}

// openSockets opens n loopback TCP connections (both ends: 2n descriptors)
// and n unix socket pairs (2n descriptors) until the benchmark ends.
func openSockets(b *testing.B, n int) {
	raiseNoFile(b, 4*n+1)
	var fds []int
	var closers []interface{ Close() error }
	b.Cleanup(func() {
		for _, c := range closers {
			c.Close()
		}
		for _, fd := range fds {
			syscall.Close(fd)
		}
	})
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	closers = append(closers, ln)
	for range n {
		c, err := net.Dial("tcp4", ln.Addr().String())
		if err != nil {
			b.Fatal(err)
		}
		closers = append(closers, c)
		s, err := ln.Accept()
		if err != nil {
			b.Fatal(err)
		}
		closers = append(closers, s)
		p, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
		if err != nil {
			b.Fatal(err)
		}
		fds = append(fds, p[0], p[1])
	}
}

func BenchmarkReadDirFD10k(b *testing.B) {
	openPipes(b, 5000)
	b.ReportAllocs()
	for b.Loop() {
		ents, err := os.ReadDir("/proc/self/fd")
		if err != nil || len(ents) < 10000 {
			b.Fatalf("%d entries, %v", len(ents), err)
		}
	}
}

func BenchmarkReadlinkFD10k(b *testing.B) {
	openPipes(b, 5000)
	b.ReportAllocs()
	for b.Loop() {
		ents, err := os.ReadDir("/proc/self/fd")
		if err != nil {
			b.Fatal(err)
		}
		n := 0
		for _, e := range ents {
			if _, err := os.Readlink("/proc/self/fd/" + e.Name()); err == nil {
				n++
			}
		}
		if n < 10000 {
			b.Fatalf("%d links", n)
		}
	}
}

func BenchmarkSampleProcess10kFDs(b *testing.B) {
	openPipes(b, 5000)
	benchSampleSelf(b, 10000, 0)
}

// BenchmarkSampleProcess10kFiles samples regular files, which also cost a
// stat each (their device and inode identify them across renames), unless
// the previous sample knew them (since=prev, as a sampling loop calls it).
func BenchmarkSampleProcess10kFiles(b *testing.B) {
	openFiles(b, 10000)
	b.Run("since=nil", func(b *testing.B) { benchSampleSelf(b, 10000, 0) })
	b.Run("since=prev", func(b *testing.B) {
		prev, err := SampleProcess(selfPID)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			if prev, err = SampleProcessSince(selfPID, prev); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(len(prev.FDs)), "fds")
	})
}

func BenchmarkSampleProcess10kSockets(b *testing.B) {
	openSockets(b, 2500)
	benchSampleSelf(b, 10000, 10000)
}

func benchSampleSelf(b *testing.B, minFDs, minSockets int) {
	pid := os.Getpid()
	s, err := SampleProcess(pid)
	if err != nil {
		b.Fatal(err)
	}
	if len(s.FDs) < minFDs || len(s.Sockets) < minSockets || len(s.Gaps) > 0 {
		b.Fatalf("sample holds %d fds and %d sockets (gaps %v), want at least %d and %d",
			len(s.FDs), len(s.Sockets), s.Gaps, minFDs, minSockets)
	}
	if minSockets > 0 {
		m := MetricMap(s.Metrics())
		if m["sockets.tcp.ESTABLISHED"] < float64(minSockets/2) || m["sockets.unix.CONNECTED"] < float64(minSockets/2) {
			b.Fatalf("sockets not joined: %v", m)
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := SampleProcess(pid); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(s.FDs)), "fds")
}

func BenchmarkCountFDs10k(b *testing.B) {
	openPipes(b, 5000)
	pid := os.Getpid()
	b.ReportAllocs()
	for b.Loop() {
		if n, err := CountFDs(pid); err != nil || n < 10000 {
			b.Fatalf("%d, %v", n, err)
		}
	}
}

// BenchmarkSampleCounts10kFDs is what `leakcheck run` pays on most ticks
// against such a process.
func BenchmarkSampleCounts10kFDs(b *testing.B) {
	openPipes(b, 5000)
	pid := os.Getpid()
	b.ReportAllocs()
	for b.Loop() {
		if s, err := SampleCounts(pid); err != nil || s.NumFDs < 10000 {
			b.Fatalf("%v, %v", s, err)
		}
	}
}

func BenchmarkMetrics10kFDs(b *testing.B) {
	s := &ProcSample{}
	for i := range 10000 {
		s.FDs = append(s.FDs, FD{Num: i, Type: fdSocket, Target: "socket:[" + strconv.Itoa(i) + "]", Inode: uint64(i)})
		s.Sockets = append(s.Sockets, Socket{Inode: uint64(i), FD: i, Proto: protoTCP, State: "ESTABLISHED"})
	}
	b.ReportAllocs()
	for b.Loop() {
		MetricMap(s.Metrics())
	}
}
