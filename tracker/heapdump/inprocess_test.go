package heapdump_test

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"unsafe"

	"github.com/leakcheck/leakcheck/tracker"
	"github.com/leakcheck/leakcheck/tracker/heapdump"
)

// conn stands for a connection object a program forgets to drop.
type conn struct {
	id  int
	buf []byte
}

// open keeps every connection it opens, released or not: the leak.
var open = map[int]*conn{}

// TestRetainPathsInProcess tracks two objects, releases both, and keeps one
// in a global map: the retain check reports it, with the path from the map.
func TestRetainPathsInProcess(t *testing.T) {
	reg := tracker.New(tracker.WithRetainCheck(true), tracker.WithRetainPaths(heapdump.RetainPaths))
	kept := &conn{id: 1, buf: make([]byte, 32<<10)}
	dropped := &conn{id: 2, buf: make([]byte, 32<<10)}
	open[kept.id] = kept
	hk := tracker.TrackObject(reg, kept, "conn", nil, "kept")
	hd := tracker.TrackObject(reg, dropped, "conn", nil, "dropped")
	kept, dropped = nil, nil
	if err := hk.Release(); err != nil {
		t.Fatal(err)
	}
	if err := hd.Release(); err != nil {
		t.Fatal(err)
	}
	defer delete(open, 1)

	got := reg.CheckRetained()
	if len(got) != 1 || got[0].Record.Label != "kept" {
		t.Fatalf("retained %+v, want only the kept conn", got)
	}
	path := got[0].Path
	t.Logf("%s", got[0])
	if len(path) < 2 {
		t.Fatalf("no path: %+v (error %q)", path, got[0].PathError)
	}
	// `go test` may link its binary without a symbol table; then the
	// global is named by its address.
	want := "heapdump_test.open (global"
	exe, _ := os.Executable()
	if _, err := heapdump.ReadSymbols(exe); err != nil {
		want = fmt.Sprintf(" %#x (global)", uintptr(unsafe.Pointer(&open)))
		t.Logf("no symbols in the test binary (%v): want %q", err, want)
	}
	if !strings.Contains(path[0], want) {
		t.Errorf("path starts at %q, want the global map heapdump_test.open (%q)", path[0], want)
	}
	if last := path[len(path)-1]; !strings.Contains(last, "retains 32.") {
		t.Errorf("path ends at %q, want the conn retaining its 32 KiB buffer", last)
	}
	if !strings.Contains(got[0].String(), "held by: ") {
		t.Errorf("the finding's text does not say who holds it:\n%s", got[0])
	}
}

// TestHandlerHeapDump serves the tracker's handler on loopback: a heap dump
// is refused unless the registry enables it, and when enabled it is a dump
// this package reads.
func TestHandlerHeapDump(t *testing.T) {
	for _, tt := range []struct {
		name   string
		opts   []tracker.Option
		status int
	}{
		{"off by default", nil, http.StatusForbidden},
		{"enabled", []tracker.Option{tracker.WithHeapDumps(true)}, http.StatusOK},
	} {
		t.Run(tt.name, func(t *testing.T) {
			reg := tracker.New(tt.opts...)
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			mux := http.NewServeMux()
			mux.Handle("/debug/leakcheck/", reg.Handler())
			srv := &http.Server{Handler: mux}
			go srv.Serve(ln)
			defer srv.Close()
			resp, err := http.Get("http://" + ln.Addr().String() + "/debug/leakcheck/heapdump")
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.status)
			}
			if tt.status != http.StatusOK {
				body, _ := io.ReadAll(resp.Body)
				if !strings.Contains(string(body), "secrets") {
					t.Errorf("refusal does not say why: %q", body)
				}
				return
			}
			d, err := heapdump.Read(resp.Body, heapdump.Limits{})
			if err != nil {
				t.Fatalf("reading the served dump: %v", err)
			}
			if d.NumObjects() == 0 || len(d.Goroutines) == 0 {
				t.Errorf("served dump has %d objects and %d goroutines", d.NumObjects(), len(d.Goroutines))
			}
		})
	}
}

// stopped keeps sessions after they stop: the FAQ's extra reference.
var stopped []*tracker.Session

// TestRetainPathsSession stops a session that a global slice still holds:
// the retained finding's path starts at the slice, not in the tracker.
func TestRetainPathsSession(t *testing.T) {
	reg := tracker.New(tracker.WithRetainCheck(true), tracker.WithRetainPaths(heapdump.RetainPaths))
	s := reg.StartSession("worker", nil)
	stopped = append(stopped, s)
	defer func() { stopped = nil }()
	s.Stop()
	s = nil

	got := reg.CheckRetained()
	if len(got) != 1 || got[0].Record.Label != "worker" {
		t.Fatalf("retained %+v, want the worker session", got)
	}
	t.Logf("%s", got[0])
	path := got[0].Path
	if len(path) < 2 {
		t.Fatalf("no path: %q (error %q)", path, got[0].PathError)
	}
	want := "heapdump_test.stopped (global"
	exe, _ := os.Executable()
	if _, err := heapdump.ReadSymbols(exe); err != nil {
		want = fmt.Sprintf(" %#x (global)", uintptr(unsafe.Pointer(&stopped)))
	}
	if !strings.Contains(path[0], want) {
		t.Errorf("path starts at %q, want the global slice (%q)", path[0], want)
	}
}
