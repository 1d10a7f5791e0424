//go:build linux

package leaktest

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
)

// TestDescriptorReplaced replaces, during a test, a descriptor that was open
// before it with another file at the same number: the listing remembers
// pipes and sockets by their inode, so it must see the new one. Anonymous
// inodes (epoll, eventfd) share one identity and must be told apart by their
// link.
func TestDescriptorReplaced(t *testing.T) {
	dir := t.TempDir()
	openFile := func(t *testing.T, name string) (int, string) {
		path := filepath.Join(dir, name)
		fd, err := syscall.Open(path, syscall.O_RDWR|syscall.O_CREAT|syscall.O_CLOEXEC, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		return fd, path
	}
	eventfd := func(t *testing.T) (int, string) {
		fd, _, errno := syscall.Syscall(syscall.SYS_EVENTFD2, 0, syscall.O_CLOEXEC, 0)
		if errno != 0 {
			t.Fatal(errno)
		}
		return int(fd), "anon_inode:[eventfd]"
	}
	epoll := func(t *testing.T) (int, string) {
		fd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
		if err != nil {
			t.Fatal(err)
		}
		return fd, "anon_inode:[eventpoll]"
	}
	pipe := func(t *testing.T) (int, string) {
		var p [2]int
		if err := syscall.Pipe2(p[:], syscall.O_CLOEXEC); err != nil {
			t.Fatal(err)
		}
		syscall.Close(p[1])
		target, err := os.Readlink(fmt.Sprintf("/proc/self/fd/%d", p[0]))
		if err != nil {
			t.Fatal(err)
		}
		return p[0], target
	}
	for _, c := range []struct {
		name          string
		before, after func(t *testing.T) (int, string)
	}{
		{"file-by-file", func(t *testing.T) (int, string) { return openFile(t, "a") }, func(t *testing.T) (int, string) { return openFile(t, "b") }},
		{"pipe-by-file", pipe, func(t *testing.T) (int, string) { return openFile(t, "c") }},
		{"pipe-by-pipe", pipe, pipe},
		{"file-by-pipe", func(t *testing.T) (int, string) { return openFile(t, "d") }, pipe},
		{"epoll-by-eventfd", epoll, eventfd},
	} {
		t.Run(c.name, func(t *testing.T) {
			fd, _ := c.before(t)
			defer syscall.Close(fd)
			// A listing before the test, so that the old file is
			// remembered at this number.
			clean := fakeTest(t.Name()+"/clean", []Option{Checks(Descriptors)}, func(*fakeTB) {})
			if r := clean.report(t); r != "" {
				t.Fatalf("clean test reported:\n%s", r)
			}
			var target string
			f := fakeTest(t.Name()+"/replacing", []Option{Checks(Descriptors)}, func(*fakeTB) {
				var nfd int
				nfd, target = c.after(t)
				if err := syscall.Dup3(nfd, fd, syscall.O_CLOEXEC); err != nil {
					t.Fatal(err)
				}
				syscall.Close(nfd)
			})
			wantContains(t, "report", f.report(t),
				t.Name()+"/replacing leaked 1 descriptor:",
				fmt.Sprintf("  fd %d -> %s\n", fd, target))
		})
	}
}

// TestDescriptorListing compares a listing with the links of /proc/self/fd,
// read one by one, twice, so that the second listing comes from what the
// first remembered: with a few descriptors, and with more than one getdents
// call returns.
func TestDescriptorListing(t *testing.T) {
	for _, pipes := range []int{1, 300} {
		t.Run(fmt.Sprint(pipes, "-pipes"), func(t *testing.T) {
			fds := []int{0, 1, 2}
			for range pipes {
				r, w, err := os.Pipe()
				if err != nil {
					t.Fatal(err)
				}
				defer r.Close()
				defer w.Close()
				fds = append(fds, int(r.Fd()), int(w.Fd()))
			}
			var c fdCache
			for i := range 2 {
				got, err := c.list()
				if err != nil {
					t.Fatal(err)
				}
				for _, fd := range fds {
					want, err := os.Readlink(fmt.Sprintf("/proc/self/fd/%d", fd))
					if err != nil {
						t.Fatal(err)
					}
					if got[fd] != want {
						t.Errorf("listing %d: fd %d -> %q, want %q", i, fd, got[fd], want)
					}
				}
				if len(got) < len(fds) {
					t.Errorf("listing %d: %d descriptors, want at least %d", i, len(got), len(fds))
				}
			}
		})
	}
}

// TestDescriptorListingUnderSignals lists descriptors while another goroutine
// keeps sending SIGURG (which the runtime uses to preempt, and ignores when
// it comes from elsewhere) to the listing's thread: getdents returns early
// when a signal is pending, and no listing may miss a descriptor for that.
func TestDescriptorListingUnderSignals(t *testing.T) {
	var fds []int
	for range 100 {
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		defer w.Close()
		fds = append(fds, int(r.Fd()), int(w.Fd()))
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	pid, tid := syscall.Getpid(), syscall.Gettid()
	var stop atomic.Bool
	done := make(chan struct{})
	go func() {
		defer close(done)
		for !stop.Load() {
			syscall.Tgkill(pid, tid, syscall.SIGURG)
		}
	}()
	defer func() { stop.Store(true); <-done }()
	var c fdCache
	for i := range 300 {
		got, err := c.list()
		if err != nil {
			t.Fatal(err)
		}
		for _, fd := range fds {
			if got[fd] == "" {
				t.Fatalf("listing %d: fd %d is missing (%d listed)", i, fd, len(got))
			}
		}
	}
}

func TestPseudoInode(t *testing.T) {
	for _, c := range []struct {
		target string
		ino    uint64
		ok     bool
	}{
		{"socket:[12345]", 12345, true},
		{"pipe:[7]", 7, true},
		{"anon_inode:[eventfd]", 0, false},
		{"/tmp/socket:[1]", 0, false},
		{"socket:[]", 0, false},
		{"socket:[12", 0, false},
		{"pipe:[-1]", 0, false},
		{"pipe:[99999999999999999999]", 0, false},
		{"", 0, false},
	} {
		ino, ok := pseudoInode(c.target)
		if ino != c.ino || ok != c.ok {
			t.Errorf("pseudoInode(%q) = %d, %v; want %d, %v", c.target, ino, ok, c.ino, c.ok)
		}
	}
}

func FuzzPseudoInode(f *testing.F) {
	for _, s := range []string{"socket:[12345]", "pipe:[7]", "anon_inode:[eventfd]", "/dev/null", "pipe:["} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, target string) {
		ino, ok := pseudoInode(target)
		if !ok {
			if ino != 0 {
				t.Errorf("pseudoInode(%q) = %d, false; want 0", target, ino)
			}
			return
		}
		if !strings.HasSuffix(target, "]") || !(strings.HasPrefix(target, "socket:[") || strings.HasPrefix(target, "pipe:[")) {
			t.Errorf("pseudoInode(%q) = %d, true for a target that is not a socket's or a pipe's", target, ino)
		}
	})
}
