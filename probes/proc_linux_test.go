//go:build linux

package probes

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// fdOf returns the descriptor of a file, connection or listener without
// changing its mode (unlike os.File.Fd).
func fdOf(t *testing.T, c any) int {
	t.Helper()
	sc, ok := c.(syscall.Conn)
	if !ok {
		t.Fatalf("%T has no descriptor", c)
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	fd := -1
	if err := rc.Control(func(p uintptr) { fd = int(p) }); err != nil {
		t.Fatal(err)
	}
	return fd
}

// warmUp makes the runtime open what it opens lazily (the network poller's
// epoll and eventfd descriptors) so that they do not show up as new
// descriptors in a test.
func warmUp(t *testing.T) {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln.Close()
}

func sampleSelf(t *testing.T) *ProcSample {
	t.Helper()
	s, err := SampleProcess(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Gaps) > 0 {
		t.Fatalf("gaps in a sample of the test process: %v", s.Gaps)
	}
	return s
}

// waitSample samples pid until done accepts the sample, for up to 5 s.
func waitSample(t *testing.T, pid int, done func(*ProcSample) bool) *ProcSample {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		s, err := SampleProcess(pid)
		if err != nil {
			t.Fatal(err)
		}
		if done(s) {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("condition not met; last sample: %d fds, sockets %+v, children %+v", len(s.FDs), s.Sockets, s.Children)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func socketByFD(s *ProcSample, fd int) (Socket, bool) {
	for _, sk := range s.Sockets {
		if sk.FD == fd {
			return sk, true
		}
	}
	return Socket{}, false
}

func fdByNum(s *ProcSample, num int) (FD, bool) {
	i, ok := slices.BinarySearchFunc(s.FDs, num, func(fd FD, n int) int { return fd.Num - n })
	if !ok {
		return FD{}, false
	}
	return s.FDs[i], true
}

func mustClose(t *testing.T, c interface{ Close() error }) {
	t.Cleanup(func() { c.Close() })
}

// TestSampleSelf opens a file, a pipe and real loopback sockets in the test
// process and checks that a sample sees each with its type, target, state
// and addresses, and that NewFDs and NewSockets name exactly these.
func TestSampleSelf(t *testing.T) {
	warmUp(t)
	base := sampleSelf(t)

	dir := t.TempDir()
	f, err := os.Create(filepath.Join(dir, "held.log"))
	if err != nil {
		t.Fatal(err)
	}
	mustClose(t, f)
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	mustClose(t, pr)
	mustClose(t, pw)

	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	mustClose(t, ln)
	// The client closes; the server's accepted socket, not closed, goes to
	// CLOSE_WAIT.
	client, err := net.Dial("tcp4", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	closeWait, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	mustClose(t, closeWait)
	clientAddr := client.LocalAddr().String()
	client.Close()
	// An established pair.
	c2, err := net.Dial("tcp4", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	mustClose(t, c2)
	s2, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	mustClose(t, s2)
	udp, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	mustClose(t, udp)
	sockPath := filepath.Join(dir, "ctl.sock")
	ul, err := net.Listen("unix", sockPath)
	if err != nil {
		t.Fatal(err)
	}
	mustClose(t, ul)
	ln6, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		t.Logf("no IPv6 loopback, tcp6 not checked: %v", err)
	} else {
		mustClose(t, ln6)
	}

	cur := waitSample(t, os.Getpid(), func(s *ProcSample) bool {
		sk, _ := socketByFD(s, fdOf(t, closeWait))
		return sk.State == "CLOSE_WAIT"
	})

	// Exactly the new descriptors.
	want := []int{fdOf(t, f), fdOf(t, pr), fdOf(t, pw), fdOf(t, ln), fdOf(t, closeWait),
		fdOf(t, c2), fdOf(t, s2), fdOf(t, udp), fdOf(t, ul)}
	if ln6 != nil {
		want = append(want, fdOf(t, ln6))
	}
	slices.Sort(want)
	var got []int
	for _, fd := range NewFDs(base, cur) {
		got = append(got, fd.Num)
	}
	if !slices.Equal(got, want) {
		t.Errorf("NewFDs = %v, want %v", got, want)
	}

	// Types and targets.
	path, err := filepath.EvalSymlinks(f.Name())
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	if fd, _ := fdByNum(cur, fdOf(t, f)); fd.Type != "file" || fd.Target != path || fd.Dev != uint64(st.Dev) || fd.Inode != st.Ino {
		t.Errorf("file descriptor = %+v, want type file, target %s, device %d, inode %d", fd, path, st.Dev, st.Ino)
	}
	rfd, _ := fdByNum(cur, fdOf(t, pr))
	wfd, _ := fdByNum(cur, fdOf(t, pw))
	if rfd.Type != "pipe" || wfd.Type != "pipe" || rfd.Inode == 0 || rfd.Inode != wfd.Inode ||
		rfd.Target != "pipe:["+strconv.FormatUint(rfd.Inode, 10)+"]" {
		t.Errorf("pipe ends = %+v and %+v, want type pipe with one inode", rfd, wfd)
	}

	// Sockets: states and addresses.
	lnAddr := ln.Addr().String()
	checks := []struct {
		name string
		fd   int
		want Socket
	}{
		{"listener", fdOf(t, ln), Socket{Proto: "tcp", State: "LISTEN", Local: lnAddr}},
		{"close-wait", fdOf(t, closeWait), Socket{Proto: "tcp", State: "CLOSE_WAIT", Local: lnAddr, Remote: clientAddr}},
		{"client", fdOf(t, c2), Socket{Proto: "tcp", State: "ESTABLISHED", Local: c2.LocalAddr().String(), Remote: lnAddr}},
		{"server", fdOf(t, s2), Socket{Proto: "tcp", State: "ESTABLISHED", Local: lnAddr, Remote: c2.LocalAddr().String()}},
		{"udp", fdOf(t, udp), Socket{Proto: "udp", State: "UNCONN", Local: udp.LocalAddr().String()}},
		{"unix", fdOf(t, ul), Socket{Proto: "unix", State: "LISTEN", Local: sockPath}},
	}
	if ln6 != nil {
		checks = append(checks, struct {
			name string
			fd   int
			want Socket
		}{"tcp6 listener", fdOf(t, ln6), Socket{Proto: "tcp6", State: "LISTEN", Local: ln6.Addr().String()}})
	}
	for _, c := range checks {
		fd, _ := fdByNum(cur, c.fd)
		got, ok := socketByFD(cur, c.fd)
		if !ok {
			t.Errorf("%s: no socket for descriptor %d", c.name, c.fd)
			continue
		}
		if fd.Type != "socket" || fd.Target != "socket:["+strconv.FormatUint(got.Inode, 10)+"]" {
			t.Errorf("%s: descriptor %+v does not match socket inode %d", c.name, fd, got.Inode)
		}
		c.want.Inode, c.want.FD = got.Inode, c.fd
		if got != c.want {
			t.Errorf("%s: socket = %+v, want %+v", c.name, got, c.want)
		}
	}

	// Exactly the new sockets.
	var gotInodes, wantInodes []uint64
	for _, sk := range NewSockets(base, cur) {
		gotInodes = append(gotInodes, sk.Inode)
	}
	for _, fd := range NewFDs(base, cur) {
		if fd.Type == "socket" {
			wantInodes = append(wantInodes, fd.Inode)
		}
	}
	slices.Sort(gotInodes)
	slices.Sort(wantInodes)
	if len(wantInodes) != len(want)-3 || !slices.Equal(gotInodes, wantInodes) {
		t.Errorf("NewSockets inodes = %v, want %v", gotInodes, wantInodes)
	}

	// Metrics move by what was opened.
	bm, cm := MetricMap(base.Metrics()), MetricMap(cur.Metrics())
	delta := func(name string) float64 { return cm[name] - bm[name] }
	if cm["fds"] != float64(len(cur.FDs)) || delta("fds") != float64(len(want)) {
		t.Errorf("fds = %v (was %v), want %d more", cm["fds"], bm["fds"], len(want))
	}
	for name, d := range map[string]float64{
		"fds.file": 1, "fds.pipe": 2, "fds.socket": float64(len(want) - 3),
		"sockets.tcp.CLOSE_WAIT": 1, "sockets.tcp.LISTEN": 1, "sockets.tcp.ESTABLISHED": 2,
		"sockets.udp.UNCONN": 1, "sockets.unix.LISTEN": 1, "sockets.tcp": 4,
	} {
		if delta(name) != d {
			t.Errorf("metric %s moved by %v, want %v", name, delta(name), d)
		}
	}
	if cur.Threads < 1 || cur.RSS == 0 || cur.HWM < cur.RSS || cur.RSSAnon == 0 || cur.RSSAnon > cur.RSS {
		t.Errorf("threads %d, rss %d, anon %d, hwm %d: implausible", cur.Threads, cur.RSS, cur.RSSAnon, cur.HWM)
	}
	if cur.PID != os.Getpid() || time.Since(cur.Time) > time.Minute || !cur.Time.After(base.Time) {
		t.Errorf("sample pid %d time %v (base %v)", cur.PID, cur.Time, base.Time)
	}
}

// TestSampleSelfLeavesOutSamplerFDs checks that sampling the process itself
// does not list the sampler's own descriptors, which would look like a leak
// that moves with each sample.
func TestSampleSelfLeavesOutSamplerFDs(t *testing.T) {
	s := sampleSelf(t)
	self := "/proc/" + strconv.Itoa(os.Getpid())
	for _, fd := range s.FDs {
		if fd.Target == self || fd.Target == self+"/fd" {
			t.Errorf("sample lists the sampler's descriptor %+v", fd)
		}
	}
}

// TestCloseWaitSummary is the classic leak: a daemon's connections to a
// server that closed them, never closed by the daemon, pile up in
// CLOSE_WAIT; the summary names them by remote address.
func TestCloseWaitSummary(t *testing.T) {
	warmUp(t)
	base := sampleSelf(t)
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	mustClose(t, ln)
	const n = 5
	for range n {
		c, err := net.Dial("tcp4", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		mustClose(t, c)
		sc, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		sc.Close() // the "server" closes; the client leaks
	}
	cur := waitSample(t, os.Getpid(), func(s *ProcSample) bool {
		return MetricMap(s.Metrics())["sockets.tcp.CLOSE_WAIT"] >= n
	})
	groups := SummarizeSockets(NewSockets(base, cur), nil)
	want := []SocketGroup{
		{Proto: "tcp", State: "CLOSE_WAIT", Remote: ln.Addr().String(), Count: n},
		{Proto: "tcp", State: "LISTEN", Local: ln.Addr().String(), Count: 1},
	}
	if !slices.Equal(groups, want) {
		t.Fatalf("groups = %+v, want %+v", groups, want)
	}
	if got, want := groups[0].String(), fmt.Sprintf("5 tcp sockets to %s in CLOSE_WAIT", ln.Addr()); got != want {
		t.Errorf("summary = %q, want %q", got, want)
	}
}

// TestIPv4MappedSocket binds a dual-stack IPv6 socket to ::ffff:127.0.0.1:
// the kernel lists it in tcp6 with a mapped address, which the sample
// writes in IPv4 form.
func TestIPv4MappedSocket(t *testing.T) {
	warmUp(t)
	lfd, err := syscall.Socket(syscall.AF_INET6, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Skipf("no IPv6 sockets: %v", err)
	}
	defer syscall.Close(lfd)
	if err := syscall.SetsockoptInt(lfd, syscall.IPPROTO_IPV6, syscall.IPV6_V6ONLY, 0); err != nil {
		t.Fatal(err)
	}
	mapped := &syscall.SockaddrInet6{Addr: [16]byte{10: 0xff, 11: 0xff, 12: 127, 15: 1}}
	if err := syscall.Bind(lfd, mapped); err != nil {
		t.Skipf("cannot bind ::ffff:127.0.0.1: %v", err)
	}
	if err := syscall.Listen(lfd, 8); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(lfd)
	if err != nil {
		t.Fatal(err)
	}
	addr := "127.0.0.1:" + strconv.Itoa(sa.(*syscall.SockaddrInet6).Port)
	c, err := net.Dial("tcp4", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	afd, _, err := syscall.Accept4(lfd, syscall.SOCK_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(afd)

	s := sampleSelf(t)
	l, _ := socketByFD(s, lfd)
	if l.Proto != "tcp6" || l.State != "LISTEN" || l.Local != addr || l.Remote != "" {
		t.Errorf("mapped listener = %+v, want tcp6 LISTEN on %s", l, addr)
	}
	a, _ := socketByFD(s, afd)
	if a.Proto != "tcp6" || a.State != "ESTABLISHED" || a.Local != addr || a.Remote != c.LocalAddr().String() {
		t.Errorf("mapped accepted socket = %+v, want tcp6 ESTABLISHED %s <- %s", a, addr, c.LocalAddr())
	}
}

// TestSampleOtherProcess samples a helper process holding pipes.
func TestSampleOtherProcess(t *testing.T) {
	const n = 100
	h := startHelper(t, n)
	s, err := SampleProcess(h.pid())
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Gaps) > 0 {
		t.Fatalf("gaps: %v", s.Gaps)
	}
	pipes := map[uint64]int{}
	for _, fd := range s.FDs {
		if fd.Type == "pipe" {
			pipes[fd.Inode]++
		}
	}
	pairs := 0
	for _, c := range pipes {
		if c == 2 {
			pairs++
		}
	}
	if pairs < n {
		t.Errorf("helper holds %d pipes with both ends, want at least %d", pairs, n)
	}
	m := MetricMap(s.Metrics())
	if m["fds.pipe"] < 2*n || m["fds"] != float64(len(s.FDs)) || m["threads"] < 1 || m["rss_bytes"] <= 0 {
		t.Errorf("metrics %v", m)
	}
	if s.PID != h.pid() {
		t.Errorf("PID = %d, want %d", s.PID, h.pid())
	}
}

// TestSampleSelfUnderChurn samples the process while other goroutines open
// and close descriptors, so that descriptors vanish between the listing and
// the readlink: they must be skipped, not fail the sample.
func TestSampleSelfUnderChurn(t *testing.T) {
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				var p [2]int
				if err := syscall.Pipe2(p[:], syscall.O_CLOEXEC); err != nil {
					t.Error(err)
					return
				}
				syscall.Close(p[0])
				syscall.Close(p[1])
			}
		})
	}
	defer wg.Wait()
	defer close(stop)
	for range 50 {
		s, err := SampleProcess(os.Getpid())
		if err != nil {
			t.Fatal(err)
		}
		for i, fd := range s.FDs {
			if fd.Target == "" || (i > 0 && s.FDs[i-1].Num >= fd.Num) {
				t.Fatalf("bad descriptor list at %d: %+v", i, s.FDs)
			}
		}
	}
}

func TestSampleGone(t *testing.T) {
	t.Run("reaped", func(t *testing.T) {
		cmd := helperCommand("exit")
		if err := cmd.Run(); err != nil {
			t.Fatal(err)
		}
		_, err := SampleProcess(cmd.Process.Pid)
		if !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("err = %v, want one that is os.ErrNotExist", err)
		}
		if !strings.Contains(err.Error(), strconv.Itoa(cmd.Process.Pid)) {
			t.Errorf("error %q does not name the pid", err)
		}
	})
	t.Run("zombie", func(t *testing.T) {
		cmd := helperCommand("exit")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer cmd.Wait()
		// Not reaped until the deferred Wait: the child becomes a zombie.
		deadline := time.Now().Add(5 * time.Second)
		for {
			_, err := SampleProcess(cmd.Process.Pid)
			if err != nil {
				if !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), "zombie") {
					t.Fatalf("err = %v, want a zombie that is os.ErrNotExist", err)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("child did not exit")
			}
			time.Sleep(5 * time.Millisecond)
		}
	})
	t.Run("never existed", func(t *testing.T) {
		b, err := os.ReadFile("/proc/sys/kernel/pid_max")
		if err != nil {
			t.Skip(err)
		}
		max, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := SampleProcess(max + 1); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("err = %v, want one that is os.ErrNotExist", err)
		}
	})
	t.Run("invalid", func(t *testing.T) {
		for _, pid := range []int{0, -1} {
			if _, err := SampleProcess(pid); err == nil || errors.Is(err, os.ErrNotExist) {
				t.Errorf("SampleProcess(%d) err = %v, want a non-ErrNotExist error", pid, err)
			}
		}
	})
}

// TestSampleWhileExiting samples a process in a loop while it exits. Every
// sample either succeeds or fails as gone; none panics or fails otherwise.
func TestSampleWhileExiting(t *testing.T) {
	for range 3 {
		h := startHelper(t, 2000)
		ok := 0
		for i := 0; ; i++ {
			if i == 1 {
				h.stdin.Close() // the helper closes its pipes and exits
			}
			s, err := SampleProcess(h.pid())
			if err != nil {
				if !errors.Is(err, os.ErrNotExist) {
					t.Fatalf("after %d samples: err = %v, want os.ErrNotExist", ok, err)
				}
				break
			}
			ok++
			if s.PID != h.pid() || len(s.Gaps) > 0 {
				t.Fatalf("bad sample: pid %d gaps %v", s.PID, s.Gaps)
			}
			if i > 100000 {
				t.Fatal("helper never exited")
			}
		}
		h.stop(t)
	}
}

// TestStaleProcDir reads each part of a sample through the /proc directory
// of a process that exited and was reaped after the directory was opened:
// each read must report the process gone.
func TestStaleProcDir(t *testing.T) {
	h := startHelper(t, 1)
	s := scratchPool.New().(*scratch)
	pidDir, err := openat(atFDCWD, appendProcPath(nil, h.pid()), dirFlags)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(pidDir)
	if _, err := s.readStatus(pidDir); err != nil {
		t.Fatal(err)
	}
	if fds, err := s.readFDs(pidDir, false); err != nil || len(fds) < 2 {
		t.Fatalf("live helper: %d fds, %v", len(fds), err)
	}
	h.stop(t)

	if _, err := s.readStatus(pidDir); !isGone(err) {
		t.Errorf("readStatus: err = %v, want gone", err)
	}
	if _, err := s.readFDs(pidDir, false); !isGone(err) {
		t.Errorf("readFDs: err = %v, want gone", err)
	}
	if _, err := s.readSockets(pidDir, []FD{{Num: 3, Type: "socket", Inode: 1}}); !isGone(err) {
		t.Errorf("readSockets: err = %v, want gone", err)
	}
	if _, err := s.descendants(pidDir, h.pid()); !isGone(err) {
		t.Errorf("descendants: err = %v, want gone", err)
	}
	if err := procErr(h.pid(), "read status", syscall.ESRCH); !errors.Is(err, os.ErrNotExist) || !errors.Is(err, syscall.ESRCH) {
		t.Errorf("procErr(ESRCH) = %v, want os.ErrNotExist wrapping ESRCH", err)
	}
	if err := procErr(h.pid(), "read status", syscall.EACCES); errors.Is(err, os.ErrNotExist) || !errors.Is(err, syscall.EACCES) {
		t.Errorf("procErr(EACCES) = %v, want EACCES, not os.ErrNotExist", err)
	}
}

// TestSampleAllProcesses samples every process on the system: kernel
// threads, other users' daemons, processes exiting meanwhile. Each sample
// succeeds (perhaps with gaps, when not permitted) or reports the process
// gone.
func TestSampleAllProcesses(t *testing.T) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	sampled := 0
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		if sampled == 300 {
			break
		}
		sampled++
		s, err := SampleProcess(pid)
		if err != nil {
			if !errors.Is(err, os.ErrNotExist) {
				t.Errorf("pid %d: %v", pid, err)
			}
			continue
		}
		if s.PID != pid || s.Threads < 1 {
			t.Errorf("pid %d: sample %+v", pid, s)
		}
		for _, g := range s.Gaps {
			if g.Err == nil || g.Part == "" {
				t.Errorf("pid %d: empty gap %+v", pid, g)
			}
		}
	}
	if sampled < 2 {
		t.Fatalf("only %d processes to sample", sampled)
	}
}

func TestCountFDs(t *testing.T) {
	h := startHelper(t, 100)
	s, err := SampleProcess(h.pid())
	if err != nil {
		t.Fatal(err)
	}
	n, err := CountFDs(h.pid())
	if err != nil {
		t.Fatal(err)
	}
	if n != len(s.FDs) || n < 200 {
		t.Errorf("CountFDs = %d, sample holds %d descriptors (at least 200 pipes)", n, len(s.FDs))
	}
	c, err := SampleCounts(h.pid())
	if err != nil {
		t.Fatal(err)
	}
	if !c.Counted || c.NumFDs != s.NumFDs || len(c.FDs) != 0 || len(c.Sockets) != 0 ||
		c.Threads != s.Threads || len(c.Children) != len(s.Children) || len(c.Gaps) > 0 {
		t.Errorf("SampleCounts = %+v; full sample: %d fds, %d threads, %d children", c, s.NumFDs, s.Threads, len(s.Children))
	}
	full, counted := MetricMap(s.Metrics()), MetricMap(c.Metrics())
	for name, v := range counted {
		if _, ok := full[name]; !ok {
			t.Errorf("counting sample has series %s = %v, which a full sample lacks", name, v)
		}
	}
	for _, name := range []string{"fds.pipe", "sockets"} {
		if _, ok := counted[name]; ok {
			t.Errorf("counting sample has series %s, which needs the descriptors' targets", name)
		}
	}
	if counted["fds"] != full["fds"] || counted["threads"] != full["threads"] {
		t.Errorf("counted fds, threads = %v, %v; full %v, %v", counted["fds"], counted["threads"], full["fds"], full["threads"])
	}

	// The process itself, by the directory's size and by listing: the
	// sampler's own descriptors are not counted either way.
	warmUp(t)
	self := sampleSelf(t)
	if n, err := CountFDs(os.Getpid()); err != nil || n != len(self.FDs) {
		t.Errorf("CountFDs(self) = %d, %v; sample holds %d", n, err, len(self.FDs))
	}
	pidDir, err := openat(atFDCWD, appendProcPath(nil, os.Getpid()), dirFlags)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(pidDir)
	scr := scratchPool.New().(*scratch)
	// pidDir is one more descriptor than the sample saw, and is not the
	// sampler's own here.
	for _, fromSize := range []bool{true, false} {
		if n, err := scr.countFDs(pidDir, false, fromSize); err != nil || n != len(self.FDs)+2 {
			t.Errorf("countFDs(fromSize=%v) = %d, %v; want %d", fromSize, n, err, len(self.FDs)+2)
		}
	}

	h.stop(t)
	if _, err := CountFDs(h.pid()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("CountFDs(gone) err = %v, want os.ErrNotExist", err)
	}
	if _, err := CountFDs(0); err == nil || errors.Is(err, os.ErrNotExist) {
		t.Errorf("CountFDs(0) err = %v", err)
	}
}

// TestNewFDsFollowsTheFile samples this process around what happens to a
// file it holds open: renamed (log rotation) or removed and recreated, it is
// the same descriptor; closed and its number reused for a new file at the
// same path, it is new.
func TestNewFDsFollowsTheFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.log")
	tests := []struct {
		name   string
		change func(t *testing.T, f *os.File)
		isNew  bool
	}{
		{"untouched", func(*testing.T, *os.File) {}, false},
		{"renamed", func(t *testing.T, f *os.File) {
			if err := os.Rename(path, path+".1"); err != nil {
				t.Fatal(err)
			}
		}, false},
		{"removed and recreated", func(t *testing.T, f *os.File) {
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, nil, 0o600); err != nil {
				t.Fatal(err)
			}
		}, false},
		{"reopened at the same number", func(t *testing.T, f *os.File) {
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
			g, err := os.Create(path)
			if err != nil {
				t.Fatal(err)
			}
			defer g.Close()
			// The new file takes the old one's number, as a daemon that
			// closes and reopens its log would see.
			if err := syscall.Dup2(fdOf(t, g), fdOf(t, f)); err != nil {
				t.Fatal(err)
			}
		}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			os.Remove(path + ".1")
			f, err := os.Create(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			num := fdOf(t, f)
			base, err := SampleProcess(os.Getpid())
			if err != nil {
				t.Fatal(err)
			}
			tt.change(t, f)
			cur, err := SampleProcess(os.Getpid())
			if err != nil {
				t.Fatal(err)
			}
			fd, _ := fdByNum(cur, num)
			isNew := slices.ContainsFunc(NewFDs(base, cur), func(fd FD) bool { return fd.Num == num })
			if isNew != tt.isNew {
				before, _ := fdByNum(base, num)
				t.Errorf("descriptor %d new = %v, want %v (before %+v, now %+v)", num, isNew, tt.isNew, before, fd)
			}
		})
	}
}
