package probes

import (
	"errors"
	"maps"
	"slices"
	"testing"
)

func TestNewFDs(t *testing.T) {
	base := &ProcSample{FDs: []FD{
		{Num: 0, Type: "dev", Target: "/dev/null"},
		{Num: 3, Type: "file", Target: "/var/log/a.log"},
		{Num: 4, Type: "socket", Target: "socket:[100]", Inode: 100},
	}}
	cur := &ProcSample{FDs: []FD{
		{Num: 0, Type: "dev", Target: "/dev/null"},
		{Num: 3, Type: "file", Target: "/var/log/b.log"},             // number reused
		{Num: 4, Type: "socket", Target: "socket:[100]", Inode: 100}, // same
		{Num: 5, Type: "pipe", Target: "pipe:[7]", Inode: 7},
	}}
	tests := []struct {
		name      string
		base, cur *ProcSample
		want      []int
	}{
		{"new and reused", base, cur, []int{3, 5}},
		{"nil base", nil, cur, []int{0, 3, 4, 5}},
		{"nil cur", base, nil, nil},
		{"same", cur, cur, nil},
		{"closed only", cur, base, []int{3}},
		// /dev/null recreated while open: the same descriptor.
		{"target replaced", base, &ProcSample{FDs: []FD{{Num: 0, Type: "dev", Target: "/dev/null (deleted)"}}}, nil},
		// With device and inode, the file is known whatever its path.
		{"renamed", &ProcSample{FDs: []FD{{Num: 3, Type: "file", Target: "/var/log/a.log", Dev: 8, Inode: 77}}},
			&ProcSample{FDs: []FD{{Num: 3, Type: "file", Target: "/var/log/a.log.1", Dev: 8, Inode: 77}}}, nil},
		{"same path, another file", &ProcSample{FDs: []FD{{Num: 3, Type: "file", Target: "/var/log/a.log", Dev: 8, Inode: 77}}},
			&ProcSample{FDs: []FD{{Num: 3, Type: "file", Target: "/var/log/a.log", Dev: 8, Inode: 78}}}, []int{3}},
		{"one side not stat'ed", &ProcSample{FDs: []FD{{Num: 3, Type: "file", Target: "/var/log/a.log"}}},
			&ProcSample{FDs: []FD{{Num: 3, Type: "file", Target: "/var/log/a.log", Dev: 8, Inode: 78}}}, nil},
	}
	for _, tt := range tests {
		var got []int
		for _, fd := range NewFDs(tt.base, tt.cur) {
			got = append(got, fd.Num)
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("%s: NewFDs = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestNewSockets(t *testing.T) {
	base := &ProcSample{Sockets: []Socket{{Inode: 1, FD: 3}, {Inode: 2, FD: 4}}}
	cur := &ProcSample{Sockets: []Socket{{Inode: 2, FD: 4}, {Inode: 3, FD: 3}, {Inode: 4, FD: 5}}}
	tests := []struct {
		name      string
		base, cur *ProcSample
		want      []uint64
	}{
		{"new", base, cur, []uint64{3, 4}},
		{"nil base", nil, cur, []uint64{2, 3, 4}},
		{"nil cur", base, nil, nil},
		{"none new", cur, &ProcSample{Sockets: cur.Sockets[:1]}, nil},
	}
	for _, tt := range tests {
		var got []uint64
		for _, s := range NewSockets(tt.base, tt.cur) {
			got = append(got, s.Inode)
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("%s: NewSockets = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestSummarizeSockets(t *testing.T) {
	var socks []Socket
	for i := range 14 {
		socks = append(socks, Socket{Inode: uint64(i), Proto: "tcp", State: "CLOSE_WAIT", Local: "127.0.0.1:" + string(rune('a'+i)), Remote: "127.0.0.1:6379"})
	}
	socks = append(socks,
		Socket{Proto: "tcp", State: "ESTABLISHED", Local: "127.0.0.1:1", Remote: "127.0.0.1:6379"},
		Socket{Proto: "tcp", State: "ESTABLISHED", Local: "127.0.0.1:2", Remote: "127.0.0.1:6379"},
		Socket{Proto: "tcp6", State: "LISTEN", Local: "[::1]:8080"},
		Socket{Proto: "udp", State: "UNCONN", Local: "127.0.0.1:53"},
		Socket{Proto: "unix", State: "CONNECTED"},
		Socket{Proto: "unix", State: "CONNECTED"},
		Socket{Proto: "unix", State: "CONNECTED"},
		Socket{Proto: "other"},
	)
	want := []SocketGroup{
		{Proto: "tcp", State: "CLOSE_WAIT", Remote: "127.0.0.1:6379", Count: 14},
		{Proto: "unix", State: "CONNECTED", Count: 3},
		{Proto: "tcp", State: "ESTABLISHED", Remote: "127.0.0.1:6379", Count: 2},
		{Proto: "other", Count: 1},
		{Proto: "tcp6", State: "LISTEN", Local: "[::1]:8080", Count: 1},
		{Proto: "udp", State: "UNCONN", Local: "127.0.0.1:53", Count: 1},
	}
	got := SummarizeSockets(socks, nil)
	if !slices.Equal(got, want) {
		t.Fatalf("SummarizeSockets =\n%+v\nwant\n%+v", got, want)
	}
	var lines []string
	for _, g := range got {
		lines = append(lines, g.String())
	}
	wantLines := []string{
		"14 tcp sockets to 127.0.0.1:6379 in CLOSE_WAIT",
		"3 unix sockets in CONNECTED",
		"2 tcp sockets to 127.0.0.1:6379 in ESTABLISHED",
		"1 other socket",
		"1 tcp6 socket on [::1]:8080 in LISTEN",
		"1 udp socket on 127.0.0.1:53 in UNCONN",
	}
	if !slices.Equal(lines, wantLines) {
		t.Errorf("lines =\n%q\nwant\n%q", lines, wantLines)
	}
	if got := SummarizeSockets(nil, nil); len(got) != 0 {
		t.Errorf("SummarizeSockets(nil) = %v", got)
	}
}

func TestMetrics(t *testing.T) {
	s := &ProcSample{
		FDs: []FD{
			{Num: 0, Type: "dev"}, {Num: 1, Type: "pipe"}, {Num: 2, Type: "pipe"},
			{Num: 3, Type: "file"}, {Num: 4, Type: "anon"}, {Num: 5, Type: "socket"},
			{Num: 6, Type: "socket"}, {Num: 7, Type: "socket"}, {Num: 8, Type: "other"},
		},
		Sockets: []Socket{
			{Proto: "tcp", State: "CLOSE_WAIT"}, {Proto: "tcp", State: "CLOSE_WAIT"},
			{Proto: "unix", State: "LISTEN"},
		},
		Threads: 7, RSS: 4096, RSSAnon: 1024, HWM: 8192,
		Children: []Child{{PID: 10}, {PID: 11, Zombie: true}},
	}
	want := map[string]float64{
		"threads": 7, "rss_bytes": 4096, "rss_anon_bytes": 1024, "hwm_bytes": 8192,
		"fds": 9, "fds.file": 1, "fds.socket": 3, "fds.pipe": 2, "fds.anon": 1, "fds.dev": 1, "fds.other": 1,
		"sockets": 3, "sockets.tcp": 2, "sockets.tcp6": 0, "sockets.udp": 0, "sockets.udp6": 0,
		"sockets.unix": 1, "sockets.other": 0,
		"sockets.tcp.CLOSE_WAIT": 2, "sockets.unix.LISTEN": 1,
		"children": 2, "zombies": 1,
	}
	if got := MetricMap(s.Metrics()); !maps.Equal(got, want) {
		t.Errorf("Metrics =\n%v\nwant\n%v", got, want)
	}

	// Gaps leave their series out rather than report zeros.
	s.Gaps = []Gap{{Part: "sockets", Err: errors.New("permission denied")}, {Part: "children", Err: errors.New("x")}}
	got := MetricMap(s.Metrics())
	for name := range got {
		if name == "sockets" || len(name) > 8 && name[:8] == "sockets." || name == "children" || name == "zombies" {
			t.Errorf("series %s present despite its gap", name)
		}
	}
	if got["fds"] != 9 || got["threads"] != 7 {
		t.Errorf("series without gaps lost: %v", got)
	}
	s.Gaps = []Gap{{Part: "fds", Err: errors.New("permission denied")}}
	if got := MetricMap(s.Metrics()); got["fds"] != 0 || len(got) != 6 {
		t.Errorf("fds gap: Metrics = %v, want threads, memory and children only", got)
	}
	if g := (Gap{Part: "fds", Err: errors.New("permission denied")}); g.String() != "fds: permission denied" {
		t.Errorf("Gap.String = %q", g.String())
	}
}
