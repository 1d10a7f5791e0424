//go:build linux

package probes

// Thin wrappers over the system calls the sampler makes in its hot loops.
// They take NUL-terminated byte paths (the names in a getdents buffer are
// already NUL-terminated) so that reading 10,000 descriptor links allocates
// nothing per descriptor; the syscall package's own wrappers convert each
// path string to a new byte slice.

import (
	"errors"
	"io"
	"slices"
	"syscall"
	"unsafe"
)

const (
	atFDCWD   = -100 // AT_FDCWD
	dirFlags  = syscall.O_RDONLY | syscall.O_DIRECTORY | syscall.O_CLOEXEC
	fileFlags = syscall.O_RDONLY | syscall.O_CLOEXEC

	// maxLink bounds the text of a /proc/<pid>/fd link: the kernel builds it
	// in one page.
	maxLink = 4096
	// maxSmallFile bounds what readSmall reads (status, stat, children).
	maxSmallFile = 4 << 20
)

var errTooBig = errors.New("file larger than expected")

// openat opens pathZ, a NUL-terminated path, relative to the directory dirfd
// (or to the working directory when dirfd is atFDCWD).
func openat(dirfd int, pathZ []byte, flags int) (int, error) {
	if len(pathZ) == 0 || pathZ[len(pathZ)-1] != 0 {
		return -1, syscall.EINVAL
	}
	for {
		r, _, e := syscall.Syscall6(syscall.SYS_OPENAT, uintptr(dirfd), uintptr(unsafe.Pointer(&pathZ[0])), uintptr(flags), 0, 0, 0)
		if e == syscall.EINTR {
			continue
		}
		if e != 0 {
			return -1, e
		}
		return int(r), nil
	}
}

// readlinkat reads the link nameZ (NUL-terminated) in directory dirfd into
// buf and returns the length of its text.
func readlinkat(dirfd int, nameZ, buf []byte) (int, error) {
	if len(nameZ) == 0 || nameZ[len(nameZ)-1] != 0 || len(buf) == 0 {
		return 0, syscall.EINVAL
	}
	for {
		r, _, e := syscall.Syscall6(syscall.SYS_READLINKAT, uintptr(dirfd), uintptr(unsafe.Pointer(&nameZ[0])), uintptr(unsafe.Pointer(&buf[0])), uintptr(len(buf)), 0, 0)
		if e == syscall.EINTR {
			continue
		}
		if e != 0 {
			return 0, e
		}
		return int(r), nil
	}
}

// getdents reads directory entries of fd into buf (see nextDirent).
func getdents(fd int, buf []byte) (int, error) {
	for {
		n, err := syscall.Getdents(fd, buf)
		if err == syscall.EINTR {
			continue
		}
		return n, err
	}
}

// rawFile reads a descriptor with read(2), for a reused bufio.Reader.
type rawFile struct{ fd int }

func (f *rawFile) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	for {
		n, err := syscall.Read(f.fd, p)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return 0, err
		}
		if n <= 0 {
			return 0, io.EOF
		}
		return n, nil
	}
}

// readSmall reads the whole file pathZ (NUL-terminated, relative to dirfd)
// into buf, reusing buf's storage, and returns it.
func readSmall(dirfd int, pathZ, buf []byte) ([]byte, error) {
	buf = buf[:0]
	fd, err := openat(dirfd, pathZ, fileFlags)
	if err != nil {
		return buf, err
	}
	defer syscall.Close(fd)
	for {
		if len(buf) == cap(buf) {
			if cap(buf) >= maxSmallFile {
				return buf, errTooBig
			}
			buf = slices.Grow(buf, max(4096, cap(buf)))
		}
		n, err := syscall.Read(fd, buf[len(buf):cap(buf)])
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return buf, err
		}
		if n <= 0 {
			return buf, nil
		}
		buf = buf[:len(buf)+n]
	}
}
