package probes

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"
)

// Descriptor types, as found in FD.Type.
const (
	fdFile   = "file"
	fdSocket = "socket"
	fdPipe   = "pipe"
	fdAnon   = "anon"
	fdDev    = "dev"
	fdOther  = "other"
)

// fdTypes lists every FD.Type, in the order Metrics documents them.
var fdTypes = [...]string{fdFile, fdSocket, fdPipe, fdAnon, fdDev, fdOther}

// Socket protocols, as found in Socket.Proto.
const (
	protoTCP   = "tcp"
	protoTCP6  = "tcp6"
	protoUDP   = "udp"
	protoUDP6  = "udp6"
	protoUnix  = "unix"
	protoOther = "other"
)

// protos lists every Socket.Proto.
var protos = [...]string{protoTCP, protoTCP6, protoUDP, protoUDP6, protoUnix, protoOther}

// An FD is one open file descriptor of a process.
type FD struct {
	// Num is the descriptor number.
	Num int
	// Type is the kind of object the descriptor refers to: "file", "socket",
	// "pipe", "anon" (anon_inode: objects such as eventfd, epoll, timerfd,
	// signalfd, pidfd, and memfd files), "dev" (device files under /dev, except
	// /dev/shm which is "file") or "other" (namespaces and anything unknown).
	Type string
	// Target is the text of the descriptor's link in /proc/<pid>/fd, for
	// example "/var/log/app.log", "socket:[12345]", "pipe:[6789]" or
	// "anon_inode:[eventfd]". A file removed while open ends in " (deleted)".
	Target string
	// Inode is the inode number of a socket or pipe (both ends of a pipe
	// have the same), or of a file or device as a stat through the link
	// gives it; zero for other types or when the stat failed.
	Inode uint64
	// Dev is the device holding a file's or device's inode, with Inode its
	// identity whatever its path becomes (renamed, removed, replaced);
	// zero for other types.
	Dev uint64
}

// A Socket is one socket held by a process, joined with the kernel's tables.
type Socket struct {
	// Inode identifies the socket; it is the number in the descriptor's
	// "socket:[N]" target.
	Inode uint64
	// FD is the lowest descriptor number referring to the socket.
	FD int
	// Proto is "tcp", "tcp6", "udp", "udp6", "unix", or "other" for a socket
	// of another family (netlink, packet, raw...).
	Proto string
	// State is the socket's state; see the package documentation for the
	// names. It is empty when Proto is "other".
	State string
	// Local is the local address: "127.0.0.1:6379" or "[::1]:80" for inet
	// sockets (IPv4-mapped IPv6 addresses are written in IPv4 form), the bound
	// path for unix sockets ("@name" for the abstract namespace), or empty.
	Local string
	// Remote is the peer's address for connected inet sockets; it is empty
	// for listening or unconnected sockets and for unix sockets, whose peer
	// the kernel's table does not show.
	Remote string
}

// A Child is a descendant process.
type Child struct {
	PID  int
	PPID int
	// Comm is the command name from /proc/<pid>/stat (at most 15 bytes).
	Comm string
	// State is the one-letter process state: R running, S sleeping,
	// D disk sleep, Z zombie, T stopped, t traced, X dead, I idle.
	State string
	// Zombie reports a child that has exited but was not reaped by its
	// parent.
	Zombie bool
	// Start is when the process started, in clock ticks after boot. With
	// PID it names one process even after the pid is reused; the name
	// cannot, since it changes on exec.
	Start uint64
}

// A Gap records a part of a sample that could not be taken, and why.
type Gap struct {
	// Part is the part that is missing: "fds", "sockets" or "children" in a
	// ProcSample; "heap" or "tracker" in a GoSample.
	Part string
	Err  error
}

func (g Gap) String() string {
	if g.Err == nil {
		return g.Part
	}
	return g.Part + ": " + g.Err.Error()
}

// A ProcSample is what SampleProcess read about a process at one time.
type ProcSample struct {
	// Time is when the sample was started.
	Time time.Time
	PID  int
	// FDs holds the open descriptors, sorted by number. When the process
	// samples itself, the descriptors the sampler opens to do so are left
	// out. A counting sample (see Counted) leaves it empty.
	FDs []FD
	// NumFDs is the number of open descriptors: len(FDs) for a full sample
	// from SampleProcess.
	NumFDs int
	// Counted marks a sample taken by SampleCounts: it counts descriptors
	// but does not name them, so FDs and Sockets are empty and Metrics has
	// no per-type or per-socket series.
	Counted bool
	// Sockets holds each distinct socket referred to by FDs, in descriptor
	// order. Sockets without a descriptor, such as TCP sockets in TIME_WAIT,
	// belong to no process and are not included.
	Sockets []Socket
	// Threads is the number of threads of the process.
	Threads int
	// RSS, RSSAnon and HWM are the resident set size, its anonymous part and
	// the peak resident set size, in bytes (VmRSS, RssAnon and VmHWM in
	// /proc/<pid>/status).
	RSS, RSSAnon, HWM uint64
	// Children holds every descendant process, zombies included, parents
	// before their children.
	Children []Child
	// Limits are the process's limits, read by full samples; a counting
	// sample leaves them zero.
	Limits Limits
	// Gaps lists the parts that could not be read; their fields are empty.
	Gaps []Gap
}

// missing reports whether part is one of the sample's gaps.
func missing(gaps []Gap, part string) bool {
	for _, g := range gaps {
		if g.Part == part {
			return true
		}
	}
	return false
}

// A Metric is one named measure of a sample, with what a report needs to
// judge its series: the unit, whether it can only rise, and its limit.
type Metric struct {
	// Name is the series name; the package documentation lists them.
	Name  string
	Value float64
	// Unit is what Value counts: "fds", "sockets", "threads", "bytes",
	// "children", "goroutines".
	Unit string
	// Monotone marks a measure that never falls by construction (a
	// high-water mark): every new peak of a steady process would read as
	// growth, so it is charted but not trend-tested.
	Monotone bool
	// Limit is the ceiling the measure runs into, in Unit; 0 when none is
	// known. Only totals have one: fds (RLIMIT_NOFILE), threads, rss_bytes
	// (the cgroup's memory.max).
	Limit float64
}

// Metrics returns the sample as named series; the package documentation lists
// the names. The series of a part listed in Gaps are left out.
func (s *ProcSample) Metrics() []Metric {
	m := make([]Metric, 0, 32)
	add := func(name, unit string, v float64, limit uint64) {
		m = append(m, Metric{Name: name, Value: v, Unit: unit, Limit: float64(limit)})
	}
	add("threads", "threads", float64(s.Threads), s.Limits.Threads)
	add("rss_bytes", "bytes", float64(s.RSS), s.Limits.Memory)
	add("rss_anon_bytes", "bytes", float64(s.RSSAnon), 0)
	m = append(m, Metric{Name: "hwm_bytes", Value: float64(s.HWM), Unit: "bytes", Monotone: true})
	if !missing(s.Gaps, "fds") {
		n := s.NumFDs
		if !s.Counted {
			n = len(s.FDs)
		}
		add("fds", "fds", float64(n), s.Limits.FDs)
	}
	if !missing(s.Gaps, "fds") && !s.Counted {
		var byType [len(fdTypes)]int
		for i := range s.FDs {
			for j, t := range fdTypes {
				if s.FDs[i].Type == t {
					byType[j]++
					break
				}
			}
		}
		for j, t := range fdTypes {
			add("fds."+t, "fds", float64(byType[j]), 0)
		}
	}
	if !missing(s.Gaps, "fds") && !missing(s.Gaps, "sockets") && !s.Counted {
		type key struct{ proto, state string }
		byState := make(map[key]int)
		var byProto [len(protos)]int
		for i := range s.Sockets {
			sk := &s.Sockets[i]
			for j, p := range protos {
				if sk.Proto == p {
					byProto[j]++
					break
				}
			}
			if sk.State != "" {
				byState[key{sk.Proto, sk.State}]++
			}
		}
		add("sockets", "sockets", float64(len(s.Sockets)), 0)
		for j, p := range protos {
			add("sockets."+p, "sockets", float64(byProto[j]), 0)
		}
		for k, n := range byState {
			add("sockets."+k.proto+"."+k.state, "sockets", float64(n), 0)
		}
	}
	if !missing(s.Gaps, "children") {
		zombies := 0
		for _, c := range s.Children {
			if c.Zombie {
				zombies++
			}
		}
		add("children", "children", float64(len(s.Children)), 0)
		add("zombies", "children", float64(zombies), 0)
	}
	return m
}

// MetricMap returns the metrics by name, for tests and quick looks.
func MetricMap(ms []Metric) map[string]float64 {
	out := make(map[string]float64, len(ms))
	for _, m := range ms {
		out[m.Name] = m.Value
	}
	return out
}

// Running reports whether the descendant c still runs: it has not exited (a
// zombie has, even if nobody reaps it), and its pid was not reaped and reused
// by another process since it was sampled. The start time tells a reused pid;
// the name cannot, since a process that execs changes it (sh becomes sleep).
func Running(c Child) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(c.PID) + "/stat")
	if err != nil {
		return false
	}
	st, ok := parseStat(b)
	same := st.start == c.Start
	if st.start == 0 || c.Start == 0 {
		same = st.comm == c.Comm
	}
	return ok && st.pid == c.PID && same && st.state != 'Z' && st.state != 'X'
}

// CheckProcess returns nil when process pid exists and its descriptors can
// be read, as sampling it needs; otherwise an error that says which, and
// what to do about it.
func CheckProcess(pid int) error {
	dir := "/proc/" + strconv.Itoa(pid)
	if _, err := os.Stat(dir); err != nil {
		return fmt.Errorf("no process %d (%s): check the pid, e.g. with pgrep or ps", pid, dir)
	}
	f, err := os.Open(dir + "/fd")
	if err == nil {
		_, err = f.Readdirnames(1)
		f.Close()
	}
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("cannot read the descriptors of process %d: %w: run leakcheck as the process's user, or as root", pid, err)
	}
	return nil
}

// ProcessName returns the command name of process pid, or "?" when it
// cannot be read.
func ProcessName(pid int) string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return "?"
	}
	st, ok := parseStat(b)
	if !ok {
		return "?"
	}
	return st.comm
}
