//go:build linux

package leaktest

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"syscall"
)

// descriptorsSupported reports whether open descriptors can be listed here.
const descriptorsSupported = true

// fdCache lists the process's open descriptors. It remembers each one's
// target by the identity of the file it refers to, so that a listing reads
// the link only of descriptors that are new or now refer to another file:
// readlink on /proc/self/fd walks a path for each descriptor, while fstat on
// the descriptor costs one cheap system call. It is used under coord.ioMu.
type fdCache struct {
	buf     []byte // for getdents
	entries map[int]fdEntry
}

type fdEntry struct {
	id     fileID
	target string
}

// fileID is what fstat says of the file a descriptor refers to: the same
// identity means the same target, except for anonymous inodes (eventfd,
// epoll, signalfd, timerfd...), which share one inode and are told apart only
// by their link.
type fileID struct {
	dev, ino, rdev uint64
	mode           uint32
}

// list returns the open descriptors and their targets as readlink(2) shows
// them, leaving out the one it opens to read the list. A file renamed or
// removed while open keeps the target it had when first listed.
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
		id, err := fstatID(fd)
		if errors.Is(err, syscall.EBADF) {
			continue // closed meanwhile
		}
		if err != nil {
			return nil, fmt.Errorf("reading descriptor %d: %w", fd, err)
		}
		e, ok := c.entries[fd]
		if !ok || e.id != id || id.mode&syscall.S_IFMT == 0 {
			target, err := os.Readlink("/proc/self/fd/" + name)
			if errors.Is(err, os.ErrNotExist) {
				continue // closed meanwhile
			}
			if err != nil {
				return nil, fmt.Errorf("reading descriptor %d: %w", fd, err)
			}
			e = fdEntry{id, target}
			// Anonymous inodes are read every time. Another file
			// is remembered only if the descriptor was not replaced
			// between fstat and readlink.
			if id.mode&syscall.S_IFMT != 0 {
				if again, err := fstatID(fd); err != nil || again != id {
					e.id = fileID{}
				}
			}
		}
		fds[fd] = e.target
		entries[fd] = e
	}
	c.entries = entries
	return fds, nil
}

func fstatID(fd int) (fileID, error) {
	var st syscall.Stat_t
	if err := syscall.Fstat(fd, &st); err != nil {
		return fileID{}, err
	}
	return fileID{dev: uint64(st.Dev), ino: uint64(st.Ino), rdev: uint64(st.Rdev), mode: st.Mode}, nil
}
