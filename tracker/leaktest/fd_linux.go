//go:build linux

package leaktest

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// descriptorsSupported reports whether open descriptors can be listed here.
const descriptorsSupported = true

// fdCache lists the process's open descriptors. It remembers the sockets and
// pipes among them by the identity fstat gives, so that a listing reads only
// their inode, not their link: a link is "socket:[inode]" or "pipe:[inode]",
// so the same inode is the same link. Other descriptors' links are read every
// time, with no look at their file: fstat on a path may wait on a network or
// FUSE file system, and anonymous inodes (eventfd, epoll) share one identity.
// It is used under coord.ioMu.
type fdCache struct {
	buf     []byte // for getdents
	entries map[int]fdEntry
}

type fdEntry struct {
	id     fileID
	target string
}

// fileID is what fstat says of the file a descriptor refers to.
type fileID struct {
	dev, ino uint64
	mode     uint32
}

// list returns the open descriptors and their targets as readlink(2) shows
// them, leaving out the one it opens to read the list.
func (c *fdCache) list() (map[int]string, error) {
	dir, err := syscall.Open("/proc/self/fd", syscall.O_RDONLY|syscall.O_DIRECTORY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("listing descriptors: open /proc/self/fd: %w", err)
	}
	defer syscall.Close(dir)
	if c.buf == nil {
		c.buf = make([]byte, 8<<10)
	}
	var names []string
	for {
		n, err := syscall.Getdents(dir, c.buf)
		if err != nil {
			return nil, fmt.Errorf("listing descriptors: getdents /proc/self/fd: %w", err)
		}
		if n <= 0 {
			break
		}
		// Read on until getdents returns nothing: it returns early, with
		// room to spare, when a signal is pending (a profiler's SIGPROF,
		// the scheduler's SIGURG), so a short read is not the end.
		_, _, names = syscall.ParseDirent(c.buf[:n], -1, names)
	}
	fds := make(map[int]string, len(names))
	entries := make(map[int]fdEntry, len(names))
	for _, name := range names {
		fd, err := strconv.Atoi(name)
		if err != nil || fd == dir {
			continue
		}
		if e, ok := c.entries[fd]; ok {
			id, err := fstatID(fd)
			if errors.Is(err, syscall.EBADF) {
				continue // closed meanwhile
			}
			if err == nil && id == e.id {
				fds[fd] = e.target
				entries[fd] = e
				continue
			}
		}
		target, err := os.Readlink("/proc/self/fd/" + name)
		if errors.Is(err, os.ErrNotExist) {
			continue // closed meanwhile
		}
		if err != nil {
			return nil, fmt.Errorf("reading descriptor %d: %w", fd, err)
		}
		fds[fd] = target
		if ino, ok := pseudoInode(target); ok {
			// Remembered if fstat sees the same inode, that is, if
			// the descriptor was not replaced since readlink.
			if id, err := fstatID(fd); err == nil && id.ino == ino {
				entries[fd] = fdEntry{id, target}
			}
		}
	}
	c.entries = entries
	return fds, nil
}

// pseudoInode returns the inode of a socket's or a pipe's link,
// "socket:[12345]" or "pipe:[12345]".
func pseudoInode(target string) (uint64, bool) {
	rest, ok := strings.CutPrefix(target, "socket:[")
	if !ok {
		rest, ok = strings.CutPrefix(target, "pipe:[")
	}
	if !ok {
		return 0, false
	}
	digits, ok := strings.CutSuffix(rest, "]")
	if !ok {
		return 0, false
	}
	ino, err := strconv.ParseUint(digits, 10, 64)
	if err != nil {
		return 0, false
	}
	return ino, true
}

func fstatID(fd int) (fileID, error) {
	var st syscall.Stat_t
	if err := syscall.Fstat(fd, &st); err != nil {
		return fileID{}, err
	}
	return fileID{dev: uint64(st.Dev), ino: uint64(st.Ino), mode: st.Mode}, nil
}
