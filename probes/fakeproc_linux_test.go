//go:build linux

package probes

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// fakeLinks are the descriptor links of the fake process: what
// /proc/<pid>/fd holds, as symbolic links with the kernel's target texts.
var fakeLinks = []FD{
	{Num: 0, Type: "dev", Target: "/dev/null"},
	{Num: 1, Type: "pipe", Target: "pipe:[777]", Inode: 777},
	{Num: 2, Type: "pipe", Target: "pipe:[777]", Inode: 777},
	{Num: 3, Type: "socket", Target: "socket:[20001]", Inode: 20001},
	{Num: 4, Type: "socket", Target: "socket:[30003]", Inode: 30003},
	{Num: 5, Type: "socket", Target: "socket:[60005]", Inode: 60005},
	{Num: 6, Type: "socket", Target: "socket:[40001]", Inode: 40001},
	{Num: 7, Type: "socket", Target: "socket:[50002]", Inode: 50002},
	{Num: 8, Type: "socket", Target: "socket:[20001]", Inode: 20001}, // a dup of 3
	{Num: 9, Type: "socket", Target: "socket:[99999]", Inode: 99999}, // in no table
	{Num: 10, Type: "anon", Target: "anon_inode:[eventfd]"},
	{Num: 11, Type: "file", Target: "/var/log/app.log (deleted)"},
	{Num: 12, Type: "other", Target: "net:[4026531840]"},
	{Num: 100, Type: "file", Target: "/dev/shm/x"},
}

// fakeProc builds a directory laid out as /proc/<pid> from the testdata
// samples, so that a whole sample, joins included, can be checked against
// known text. Each name in broken is created as an empty regular file
// instead, to make that part unreadable.
func fakeProc(t *testing.T, broken ...string) string {
	t.Helper()
	dir := t.TempDir()
	put := func(name string, data []byte) {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	copyIn := func(name, from string) {
		data, err := os.ReadFile(filepath.Join("testdata", from))
		if err != nil {
			t.Fatal(err)
		}
		put(name, data)
	}
	mkdir := func(name string) bool {
		if slices.Contains(broken, name) {
			put(name, nil)
			return false
		}
		if err := os.MkdirAll(filepath.Join(dir, name), 0o755); err != nil {
			t.Fatal(err)
		}
		return true
	}
	copyIn("status", "status_daemon")
	if mkdir("net") {
		for _, p := range []string{"tcp", "tcp6", "udp", "udp6", "unix"} {
			if slices.Contains(broken, "net/"+p) {
				// A directory opens but cannot be read as a table.
				if err := os.Mkdir(filepath.Join(dir, "net", p), 0o755); err != nil {
					t.Fatal(err)
				}
				continue
			}
			copyIn("net/"+p, "net_"+p)
		}
	}
	if mkdir("fd") {
		for _, fd := range fakeLinks {
			if err := os.Symlink(fd.Target, filepath.Join(dir, "fd", strconv.Itoa(fd.Num))); err != nil {
				t.Fatal(err)
			}
		}
	}
	if mkdir("task") && mkdir("task/4242") {
		put("task/4242/children", nil)
	}
	return dir
}

func sampleFake(t *testing.T, dir string) *ProcSample {
	t.Helper()
	pidDir, err := openat(atFDCWD, append([]byte(dir), 0), dirFlags)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(pidDir)
	s, err := scratchPool.New().(*scratch).sampleDir(pidDir, 4242, false, false, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSampleFakeProc(t *testing.T) {
	skipIfBigEndian(t)
	s := sampleFake(t, fakeProc(t))
	if len(s.Gaps) > 0 {
		t.Fatalf("gaps: %v", s.Gaps)
	}
	// Files and devices are identified by a stat through their link: the
	// fake tree's links are symbolic links, /dev/null a real device.
	wantFDs := slices.Clone(fakeLinks)
	var null syscall.Stat_t
	if err := syscall.Stat("/dev/null", &null); err != nil {
		t.Fatal(err)
	}
	wantFDs[0].Dev, wantFDs[0].Inode = uint64(null.Dev), null.Ino
	if !slices.Equal(s.FDs, wantFDs) {
		t.Errorf("FDs =\n%+v\nwant\n%+v", s.FDs, wantFDs)
	}
	want := []Socket{
		{Inode: 20001, FD: 3, Proto: "tcp", State: "LISTEN", Local: "127.0.0.1:6379"},
		{Inode: 30003, FD: 4, Proto: "tcp6", State: "CLOSE_WAIT", Local: "127.0.0.1:8080", Remote: "127.0.0.1:39000"},
		{Inode: 60005, FD: 5, Proto: "unix", State: "LISTEN", Local: "/run/my app/ctl sock"},
		{Inode: 40001, FD: 6, Proto: "udp", State: "UNCONN", Local: "127.0.0.53:53"},
		{Inode: 50002, FD: 7, Proto: "udp6", State: "ESTABLISHED", Local: "[::1]:47000", Remote: "[::1]:8125"},
		{Inode: 99999, FD: 9, Proto: "other"},
	}
	if !slices.Equal(s.Sockets, want) {
		t.Errorf("Sockets =\n%+v\nwant\n%+v", s.Sockets, want)
	}
	if s.Threads != 23 || s.RSS != 150212*1024 || s.RSSAnon != 131072*1024 || s.HWM != 187340*1024 {
		t.Errorf("threads %d rss %d anon %d hwm %d", s.Threads, s.RSS, s.RSSAnon, s.HWM)
	}
	if len(s.Children) != 0 {
		t.Errorf("children %+v", s.Children)
	}
	m := MetricMap(s.Metrics())
	for name, v := range map[string]float64{
		"fds": 14, "fds.socket": 7, "fds.pipe": 2, "fds.file": 2, "fds.dev": 1, "fds.anon": 1, "fds.other": 1,
		"sockets": 6, "sockets.other": 1, "sockets.tcp6.CLOSE_WAIT": 1, "sockets.unix.LISTEN": 1,
		"children": 0, "zombies": 0, "threads": 23,
	} {
		if m[name] != v {
			t.Errorf("metric %s = %v, want %v", name, m[name], v)
		}
	}
}

// TestSampleFakeProcGaps makes parts of the process unreadable: each becomes
// a gap, and the rest of the sample is intact.
func TestSampleFakeProcGaps(t *testing.T) {
	skipIfBigEndian(t)
	tests := []struct {
		broken []string
		gaps   []string
	}{
		{[]string{"fd"}, []string{"fds"}},
		{[]string{"net/tcp"}, []string{"sockets"}},
		{[]string{"task"}, []string{"children"}},
		{[]string{"fd", "task"}, []string{"fds", "children"}},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.broken, ","), func(t *testing.T) {
			s := sampleFake(t, fakeProc(t, tt.broken...))
			var gaps []string
			for _, g := range s.Gaps {
				gaps = append(gaps, g.Part)
				if g.Err == nil {
					t.Errorf("gap %s without a reason", g.Part)
				}
			}
			if !slices.Equal(gaps, tt.gaps) {
				t.Fatalf("gaps = %v, want %v", s.Gaps, tt.gaps)
			}
			m := MetricMap(s.Metrics())
			if _, ok := m["threads"]; !ok || s.Threads != 23 {
				t.Errorf("status lost: %v", m)
			}
			for _, part := range tt.gaps {
				if _, ok := m[part]; ok {
					t.Errorf("metric %s present despite its gap", part)
				}
			}
			if !slices.Contains(tt.gaps, "fds") && len(s.FDs) != len(fakeLinks) {
				t.Errorf("descriptors lost: %d", len(s.FDs))
			}
		})
	}
}
