//go:build linux

package probes

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"time"
)

var selfPID = os.Getpid()

// SampleProcess reads the descriptors, sockets, threads, memory and
// descendant processes of process pid from /proc. Its cost grows with the
// number of descriptors (one readlink each) and, when the process holds
// sockets, with the number of sockets in its network namespace (the tables
// in /proc/<pid>/net list them all).
//
// If the process does not exist, exits during the sample or is a zombie, the
// error satisfies errors.Is(err, os.ErrNotExist). Other failures to read the
// process's status are errors too; failures to read its descriptors, sockets
// or children are recorded in the sample's Gaps instead. SampleProcess is safe
// for concurrent use.
func SampleProcess(pid int) (*ProcSample, error) {
	return sampleWith(pid, false, nil)
}

// SampleProcessSince is SampleProcess for a caller that sampled the process
// before: a file or device descriptor whose number and target are those it
// had in prev keeps prev's device and inode instead of being stat'ed again,
// which would cost most of the sample for a process holding many files.
// A nil prev stats every one, as SampleProcess does.
func SampleProcessSince(pid int, prev *ProcSample) (*ProcSample, error) {
	return sampleWith(pid, false, prev)
}

// SampleCounts is SampleProcess without the cost that grows with the number
// of descriptors: it counts them (as CountFDs does) instead of reading each
// one's target, and does not read the socket tables. Threads, memory and
// descendants are read as SampleProcess reads them. The sample's Counted
// field is set. A caller watching a process that holds many descriptors
// counts every interval and takes a full sample less often.
func SampleCounts(pid int) (*ProcSample, error) {
	return sampleWith(pid, true, nil)
}

func sampleWith(pid int, counted bool, prev *ProcSample) (*ProcSample, error) {
	if pid <= 0 {
		return nil, fmt.Errorf("probes: sample pid %d: not a process id", pid)
	}
	s := scratchPool.Get().(*scratch)
	defer scratchPool.Put(s)
	if prev != nil {
		s.prev = prev.FDs
		defer func() { s.prev = nil }()
	}
	return s.sample(pid, counted)
}

// CountFDs returns the number of open descriptors of process pid: the "fds"
// series of a ProcSample, without the descriptors themselves.
//
// SampleProcess costs one readlink per descriptor, about a microsecond each
// (the kernel's cost, not the sampler's), which adds up for a process that
// holds tens of thousands. CountFDs costs a few system calls whatever the
// count on Linux 6.2 and later, whose /proc/<pid>/fd reports it as its size;
// on older kernels it lists the directory, which is still several times
// cheaper than a full sample. A caller watching such a process can count
// every interval and take a full sample less often.
//
// Errors are as for SampleProcess: errors.Is(err, os.ErrNotExist) when the
// process is gone or a zombie.
func CountFDs(pid int) (int, error) {
	if pid <= 0 {
		return 0, fmt.Errorf("probes: count descriptors of pid %d: not a process id", pid)
	}
	s := scratchPool.Get().(*scratch)
	defer scratchPool.Put(s)
	s.path = appendProcPath(s.path[:0], pid)
	pidDir, err := openat(atFDCWD, s.path, dirFlags)
	if err != nil {
		return 0, procErr(pid, "open /proc/"+strconv.Itoa(pid), err)
	}
	defer syscall.Close(pidDir)
	if _, err := s.readStatus(pidDir); err != nil {
		return 0, procErr(pid, "read status", err)
	}
	n, err := s.countFDs(pidDir, pid == selfPID, true)
	if err != nil {
		return 0, procErr(pid, "count descriptors", err)
	}
	return n, nil
}

// countFDs counts the entries of /proc/<pid>/fd, from the directory's size
// when fromSize is true and the kernel reports it, else by listing it. When
// self is true the sampler's own descriptors are not counted.
func (s *scratch) countFDs(pidDir int, self, fromSize bool) (int, error) {
	fdDir, err := openat(pidDir, fdZ, dirFlags)
	if err != nil {
		return 0, fmt.Errorf("open fd directory: %w", err)
	}
	defer syscall.Close(fdDir)
	own := 0
	if self {
		own = 2 // pidDir and fdDir
	}
	if fromSize {
		var st syscall.Stat_t
		if err := syscall.Fstat(fdDir, &st); err != nil {
			return 0, fmt.Errorf("stat fd directory: %w", err)
		}
		if st.Size > int64(own) {
			return int(st.Size) - own, nil
		}
		// Size 0: a kernel before 6.2, or no descriptors; listing tells.
	}
	n := 0
	for {
		m, err := getdents(fdDir, s.dirent)
		if err != nil {
			return 0, fmt.Errorf("list fd directory: %w", err)
		}
		if m <= 0 {
			return n, nil
		}
		for off := 0; off < m; {
			ino, nameZ, next, ok := nextDirent(s.dirent[:m], off)
			if !ok {
				break
			}
			off = next
			num, ok := parseFDNum(nameZ[:len(nameZ)-1])
			if ok && ino != 0 && !(self && (num == pidDir || num == fdDir)) {
				n++
			}
		}
	}
}

// scratch holds the buffers of one sample, reused across samples so that a
// sample of a large process allocates little more than its result.
type scratch struct {
	dirent []byte  // getdents buffer
	links  []byte  // link texts of all descriptors, back to back
	recs   []fdRec // descriptors found, before their targets are set
	file   []byte  // contents of a small file
	path   []byte  // NUL-terminated path being built
	prev   []FD    // the caller's previous descriptors (SampleProcessSince)
	queue  []pidParent
	pids   []int
	rf     rawFile
	br     *bufio.Reader
	addrs  addrArena
}

// An fdRec is an FD whose Target is still a span of scratch.links.
type fdRec struct {
	num       int
	typ       string
	dev       uint64
	inode     uint64
	off, size int
}

var scratchPool = sync.Pool{New: func() any {
	return &scratch{
		dirent: make([]byte, 32<<10),
		file:   make([]byte, 0, 4096),
		path:   make([]byte, 0, 64),
		br:     bufio.NewReaderSize(nil, 64<<10),
	}
}}

// goneError reports a process that no longer exists, or is a zombie.
type goneError struct {
	pid int
	op  string
	err error
}

func (e *goneError) Error() string {
	return "probes: pid " + strconv.Itoa(e.pid) + " is gone: " + e.op + ": " + e.err.Error()
}

func (e *goneError) Is(target error) bool { return target == os.ErrNotExist }
func (e *goneError) Unwrap() error        { return e.err }

var errZombie = errors.New("process is a zombie")

// isGone reports whether err, from a read under /proc/<pid>, means that the
// process (or the thread, descriptor or child read) no longer exists.
func isGone(err error) bool {
	return errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ESRCH) || errors.Is(err, errZombie)
}

// procErr wraps err from operation op on process pid.
func procErr(pid int, op string, err error) error {
	if isGone(err) {
		return &goneError{pid: pid, op: op, err: err}
	}
	return fmt.Errorf("probes: pid %d: %s: %w", pid, op, err)
}

// appendProcPath appends "/proc/<pid>" and a NUL.
func appendProcPath(b []byte, pid int) []byte {
	b = append(b, "/proc/"...)
	b = strconv.AppendInt(b, int64(pid), 10)
	return append(b, 0)
}

var (
	statusZ = []byte("status\x00")
	statZ   = []byte("stat\x00")
	fdZ     = []byte("fd\x00")
	taskZ   = []byte("task\x00")
)

// netTables are the socket tables joined with a process's socket
// descriptors, most common first: reading stops once every socket is found.
var netTables = [...]struct {
	proto string
	pathZ []byte
}{
	{protoTCP, []byte("net/tcp\x00")},
	{protoTCP6, []byte("net/tcp6\x00")},
	{protoUnix, []byte("net/unix\x00")},
	{protoUDP, []byte("net/udp\x00")},
	{protoUDP6, []byte("net/udp6\x00")},
}

func (s *scratch) sample(pid int, counted bool) (*ProcSample, error) {
	now := time.Now()
	s.path = appendProcPath(s.path[:0], pid)
	pidDir, err := openat(atFDCWD, s.path, dirFlags)
	if err != nil {
		return nil, procErr(pid, "open /proc/"+strconv.Itoa(pid), err)
	}
	// Every later read goes through pidDir, so that a pid reused by a new
	// process after this one exits is not mistaken for it: the kernel
	// fails reads under a stale /proc/<pid> directory.
	defer syscall.Close(pidDir)
	return s.sampleDir(pidDir, pid, pid == selfPID, counted, now)
}

// sampleDir samples the process whose /proc directory is pidDir; self says
// whether it is this process, counted whether to count its descriptors
// rather than read them.
func (s *scratch) sampleDir(pidDir, pid int, self, counted bool, now time.Time) (*ProcSample, error) {
	st, err := s.readStatus(pidDir)
	if err != nil {
		return nil, procErr(pid, "read status", err)
	}
	ps := &ProcSample{
		Time:    now,
		PID:     pid,
		Threads: st.threads,
		RSS:     st.rss,
		RSSAnon: st.rssAnon,
		HWM:     st.hwmSize,
		Counted: counted,
	}

	if counted {
		n, err := s.countFDs(pidDir, self, true)
		switch {
		case isGone(err):
			return nil, procErr(pid, "count descriptors", err)
		case err != nil:
			ps.Gaps = append(ps.Gaps, Gap{Part: "fds", Err: err})
		default:
			ps.NumFDs = n
		}
	} else if fds, err := s.readFDs(pidDir, self); err != nil {
		if isGone(err) {
			return nil, procErr(pid, "read descriptors", err)
		}
		ps.Gaps = append(ps.Gaps, Gap{Part: "fds", Err: err})
	} else {
		ps.FDs, ps.NumFDs = fds, len(fds)
		socks, err := s.readSockets(pidDir, fds)
		switch {
		case isGone(err):
			return nil, procErr(pid, "read sockets", err)
		case err != nil:
			ps.Gaps = append(ps.Gaps, Gap{Part: "sockets", Err: err})
		default:
			ps.Sockets = socks
		}
		ps.Limits = ReadLimits(pid)
	}

	children, err := s.descendants(pidDir, pid)
	switch {
	case isGone(err):
		return nil, procErr(pid, "read children", err)
	case err != nil:
		ps.Gaps = append(ps.Gaps, Gap{Part: "children", Err: err})
	default:
		ps.Children = children
	}

	// A process that exited while it was read leaves a partial sample
	// (descriptors whose links vanished are skipped): report it gone.
	if _, err := s.readStatus(pidDir); err != nil {
		return nil, procErr(pid, "read status", err)
	}
	return ps, nil
}

// readStatus reads and parses /proc/<pid>/status; a zombie or dead process
// gives errZombie.
func (s *scratch) readStatus(pidDir int) (procStatus, error) {
	b, err := readSmall(pidDir, statusZ, s.file)
	s.file = b[:0]
	if err != nil {
		return procStatus{}, err
	}
	st, ok := parseStatus(b)
	if !ok {
		return st, errors.New("malformed status file")
	}
	if st.state == 'Z' || st.state == 'X' {
		return st, errZombie
	}
	return st, nil
}

// readFDs lists /proc/<pid>/fd and reads each link. Descriptors closed
// between the listing and the readlink are skipped. When self is true the
// descriptors the sampler itself holds are left out.
func (s *scratch) readFDs(pidDir int, self bool) ([]FD, error) {
	fdDir, err := openat(pidDir, fdZ, dirFlags)
	if err != nil {
		return nil, fmt.Errorf("open fd directory: %w", err)
	}
	defer syscall.Close(fdDir)

	s.links = s.links[:0]
	s.recs = s.recs[:0]
	for {
		n, err := getdents(fdDir, s.dirent)
		if err != nil {
			return nil, fmt.Errorf("list fd directory: %w", err)
		}
		if n <= 0 {
			break
		}
		for off := 0; off < n; {
			ino, nameZ, next, ok := nextDirent(s.dirent[:n], off)
			if !ok {
				break
			}
			off = next
			num, ok := parseFDNum(nameZ[:len(nameZ)-1])
			if !ok || ino == 0 || (self && (num == pidDir || num == fdDir)) {
				continue
			}
			if cap(s.links)-len(s.links) < maxLink {
				s.links = slices.Grow(s.links, max(maxLink, len(s.links)))
			}
			buf := s.links[len(s.links):cap(s.links)]
			size, err := readlinkat(fdDir, nameZ, buf)
			if err != nil {
				if errors.Is(err, syscall.ENOENT) {
					continue // closed since the listing
				}
				return nil, fmt.Errorf("read link of descriptor %d: %w", num, err)
			}
			typ, inode := classifyTarget(buf[:size])
			var dev uint64
			if typ == fdFile || typ == fdDev {
				dev, inode = s.fileID(fdDir, nameZ, num, buf[:size])
			}
			s.recs = append(s.recs, fdRec{num: num, typ: typ, dev: dev, inode: inode, off: len(s.links), size: size})
			s.links = s.links[:len(s.links)+size]
		}
	}

	// One string holds every target; each FD's Target is a slice of it.
	all := string(s.links)
	fds := make([]FD, len(s.recs))
	for i, r := range s.recs {
		fds[i] = FD{Num: r.num, Type: r.typ, Target: all[r.off : r.off+r.size], Dev: r.dev, Inode: r.inode}
	}
	if !slices.IsSortedFunc(fds, func(a, b FD) int { return a.Num - b.Num }) {
		slices.SortFunc(fds, func(a, b FD) int { return a.Num - b.Num })
	}
	return fds, nil
}

// fileID returns the device and inode of descriptor num, named nameZ in
// fdDir, whose link reads target: prev's when it had the same target there,
// else a stat's.
func (s *scratch) fileID(fdDir int, nameZ []byte, num int, target []byte) (dev, ino uint64) {
	if i, ok := slices.BinarySearchFunc(s.prev, num, func(fd FD, n int) int { return fd.Num - n }); ok {
		if p := s.prev[i]; p.Target == string(target) && (p.Dev != 0 || p.Inode != 0) {
			return p.Dev, p.Inode
		}
	}
	return statFD(fdDir, nameZ)
}

// statFD returns the device and inode of the file that descriptor nameZ
// (NUL-terminated) in the open fd directory fdDir refers to, or zeros if it
// cannot be stat'ed. Opening the link with O_PATH follows it without
// opening the file for I/O, and is portable where fstatat's number and
// layout are not; it goes through fdDir, so it cannot reach another process
// that reused the pid.
func statFD(fdDir int, nameZ []byte) (dev, ino uint64) {
	fd, err := openat(fdDir, nameZ, oPath|syscall.O_CLOEXEC)
	if err != nil {
		return 0, 0
	}
	defer syscall.Close(fd)
	var st syscall.Stat_t
	if err := syscall.Fstat(fd, &st); err != nil {
		return 0, 0
	}
	return uint64(st.Dev), uint64(st.Ino)
}

// oPath is O_PATH, which package syscall does not name on every platform.
const oPath = 0x200000

// readSockets joins the socket descriptors in fds with the process's
// network namespace tables.
func (s *scratch) readSockets(pidDir int, fds []FD) ([]Socket, error) {
	n := 0
	for i := range fds {
		if fds[i].Type == fdSocket {
			n++
		}
	}
	if n == 0 {
		return nil, nil
	}
	idx := make(map[uint64]int32, n)
	socks := make([]Socket, 0, n)
	for i := range fds {
		fd := &fds[i]
		if fd.Type != fdSocket {
			continue
		}
		if _, dup := idx[fd.Inode]; dup {
			continue
		}
		idx[fd.Inode] = int32(len(socks))
		socks = append(socks, Socket{Inode: fd.Inode, FD: fd.Num, Proto: protoOther})
	}

	s.addrs.reset()
	left := len(socks)
	for _, t := range netTables {
		if left == 0 {
			break
		}
		fd, err := openat(pidDir, t.pathZ, fileFlags)
		if err != nil {
			if errors.Is(err, syscall.ENOENT) {
				// The protocol is not in this kernel. (If the process
				// is gone instead, the final status read tells.)
				continue
			}
			return nil, fmt.Errorf("open net/%s: %w", t.proto, err)
		}
		s.rf.fd = fd
		s.br.Reset(&s.rf)
		found, err := joinNet(s.br, t.proto, idx, socks, &s.addrs)
		syscall.Close(fd)
		if err != nil {
			return nil, fmt.Errorf("read net/%s: %w", t.proto, err)
		}
		left -= found
	}
	s.addrs.finish(socks)
	return socks, nil
}
