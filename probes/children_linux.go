//go:build linux

package probes

import (
	"fmt"
	"os"
	"strconv"
	"sync"
	"syscall"
)

// maxDescendants bounds the process tree a sample walks, against a fork
// bomb.
const maxDescendants = 1 << 16

// A pidParent is a process to visit and the parent it was listed under.
type pidParent struct{ pid, parent int }

// haveChildrenFiles reports whether the kernel provides
// /proc/<pid>/task/<tid>/children (CONFIG_PROC_CHILDREN). Reading them costs
// a few reads per thread of the tree; without them the sampler scans the
// stat file of every process on the system.
var haveChildrenFiles = sync.OnceValue(func() bool {
	_, err := os.Stat("/proc/self/task/" + strconv.Itoa(os.Getpid()) + "/children")
	return err == nil
})

// Descendants returns every descendant of process pid, zombies included,
// parents before their children: the Children of a sample, without the rest.
// The error satisfies errors.Is(err, os.ErrNotExist) when the process is gone.
func Descendants(pid int) ([]Child, error) {
	if pid <= 0 {
		return nil, fmt.Errorf("probes: descendants of pid %d: not a process id", pid)
	}
	s := scratchPool.Get().(*scratch)
	defer scratchPool.Put(s)
	s.path = appendProcPath(s.path[:0], pid)
	pidDir, err := openat(atFDCWD, s.path, dirFlags)
	if err != nil {
		return nil, procErr(pid, "open /proc/"+strconv.Itoa(pid), err)
	}
	defer syscall.Close(pidDir)
	children, err := s.descendants(pidDir, pid)
	if err != nil {
		return nil, procErr(pid, "read children", err)
	}
	return children, nil
}

// descendants returns every descendant of the process whose /proc directory
// is pidDir. An error means the process itself could not be read; children
// that exit during the walk are skipped.
func (s *scratch) descendants(pidDir, pid int) ([]Child, error) {
	if haveChildrenFiles() {
		return s.descendantsByChildren(pidDir, pid)
	}
	return s.descendantsByScan(pid)
}

// descendantsByChildren walks the tree breadth first through the children
// files of each thread.
func (s *scratch) descendantsByChildren(pidDir, pid int) ([]Child, error) {
	queue, err := s.appendChildren(s.queue[:0], pidDir, pid)
	if err != nil {
		s.queue = queue[:0]
		return nil, err
	}
	var out []Child
	var seen map[int]bool
	for i := 0; i < len(queue) && len(out) < maxDescendants; i++ {
		p := queue[i]
		if p.pid == pid || seen[p.pid] {
			continue
		}
		s.path = appendProcPath(s.path[:0], p.pid)
		dir, err := openat(atFDCWD, s.path, dirFlags)
		if err != nil {
			continue // exited since it was listed
		}
		b, err := readSmall(dir, statZ, s.file)
		s.file = b[:0]
		st, ok := parseStat(b)
		// A child that exited and whose pid was reused since it was listed
		// has another parent: skip it.
		if err != nil || !ok || st.ppid != p.parent {
			syscall.Close(dir)
			continue
		}
		if seen == nil {
			seen = make(map[int]bool)
		}
		seen[p.pid] = true
		out = append(out, childOf(st))
		if st.state != 'Z' {
			queue, _ = s.appendChildren(queue, dir, p.pid)
		}
		syscall.Close(dir)
	}
	s.queue = queue[:0]
	return out, nil
}

// appendChildren appends the children of process pid, whose /proc directory
// is dir, to queue, reading the children file of each of its threads.
func (s *scratch) appendChildren(queue []pidParent, dir, pid int) ([]pidParent, error) {
	taskDir, err := openat(dir, taskZ, dirFlags)
	if err != nil {
		return queue, fmt.Errorf("open task directory: %w", err)
	}
	defer syscall.Close(taskDir)
	err = s.readNumbered(taskDir, "/children\x00", func(b []byte) {
		s.pids = appendPIDs(s.pids[:0], b)
		for _, c := range s.pids {
			queue = append(queue, pidParent{pid: c, parent: pid})
		}
	})
	if err != nil {
		return queue, fmt.Errorf("list task directory: %w", err)
	}
	return queue, nil
}

// readNumbered calls fn with the contents of N+suffix (suffix ends in a NUL)
// for every numeric entry N of the open directory dir, skipping entries that
// vanish before they are read. fn must not keep b.
func (s *scratch) readNumbered(dir int, suffix string, fn func(b []byte)) error {
	for {
		n, err := getdents(dir, s.dirent)
		if err != nil {
			return err
		}
		if n <= 0 {
			return nil
		}
		for off := 0; off < n; {
			_, nameZ, next, ok := nextDirent(s.dirent[:n], off)
			if !ok {
				break
			}
			off = next
			if _, ok := parseInt(nameZ[:len(nameZ)-1]); !ok {
				continue
			}
			s.path = append(s.path[:0], nameZ[:len(nameZ)-1]...)
			s.path = append(s.path, suffix...)
			b, err := readSmall(dir, s.path, s.file)
			s.file = b[:0]
			if err != nil {
				continue // the thread or process exited since the listing
			}
			fn(b)
		}
	}
}

// descendantsByScan reads the stat file of every process to find the
// descendants of pid, for kernels without children files.
func (s *scratch) descendantsByScan(pid int) ([]Child, error) {
	procDir, err := openat(atFDCWD, []byte("/proc\x00"), dirFlags)
	if err != nil {
		return nil, fmt.Errorf("open /proc: %w", err)
	}
	defer syscall.Close(procDir)
	byParent := make(map[int][]procStat)
	err = s.readNumbered(procDir, "/stat\x00", func(b []byte) {
		if st, ok := parseStat(b); ok && st.pid != st.ppid {
			byParent[st.ppid] = append(byParent[st.ppid], st)
		}
	})
	if err != nil {
		return nil, fmt.Errorf("list /proc: %w", err)
	}
	var out []Child
	seen := map[int]bool{pid: true}
	level := []int{pid}
	for len(level) > 0 && len(out) < maxDescendants {
		var next []int
		for _, p := range level {
			for _, st := range byParent[p] {
				if seen[st.pid] {
					continue
				}
				seen[st.pid] = true
				out = append(out, childOf(st))
				next = append(next, st.pid)
			}
		}
		level = next
	}
	if len(out) > maxDescendants {
		out = out[:maxDescendants]
	}
	return out, nil
}
