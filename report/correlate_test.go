package report

import (
	"fmt"
	"net"
	"os"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/leakcheck/leakcheck/probes"
	"github.com/leakcheck/leakcheck/tracker"
)

// TestCorrelate checks which findings Correlate makes one: those whose
// stacks begin, in the program's own code, in one function (its closures
// included), and those owned by one session below the top or by sessions
// one such session started, directly or through other findings; that the
// finding saying most of the cause leads, with the highest severity; and
// that findings sharing no key stand.
func TestCorrelate(t *testing.T) {
	t.Parallel()
	at := func(fn string) []Frame {
		return []Frame{{Func: "runtime.gopark"}, {Func: fn, File: "main.go", Line: 10}}
	}
	// Sessions: 1 is a top session (a kernel), 5 a session it started, 10
	// and 11 sessions 5 started; 20 and 21 two other sessions of 1.
	under5 := func(id uint64) []string { return ownerJoins(id, []uint64{5, 1}) }
	for _, tt := range []struct {
		name string
		in   []Finding
		want []string // "severity kind subject | owner | related", sorted
	}{
		{
			name: "one cause site",
			in: []Finding{
				{Kind: KindLeftover, Severity: SeverityWarning, Subject: "timer after func", Count: 5, Evidence: Evidence{Stack: at("main.handle.func2")}},
				{Kind: KindRetained, Severity: SeverityError, Subject: "payload", Count: 5, Evidence: Evidence{Stack: at("main.handle")}},
				{Kind: KindLeftover, Severity: SeverityWarning, Subject: "file /tmp/x", Count: 1, Evidence: Evidence{Stack: at("main.other")}},
				{Kind: KindGrowth, Severity: SeverityWarning, Subject: "fds", Count: 1},
			},
			want: []string{
				`error leftover "timer after func" |  | [retained: payload]`,
				`warning growth "fds" |  | []`,
				`warning leftover "file /tmp/x" |  | []`,
			},
		},
		{
			name: "a cycle and the heaps it keeps, of sibling sessions",
			in: []Finding{
				{Kind: KindRetained, Severity: SeverityError, Subject: "heap ping", Owner: "ping", Count: 7, joins: under5(10)},
				{Kind: KindRetained, Severity: SeverityError, Subject: "heap pong", Owner: "pong", Count: 7, joins: under5(11)},
				{Kind: KindCycle, Severity: SeverityWarning, Subject: "ping -> pong -> ping", Owner: "ping", Count: 1, joins: under5(10)},
			},
			want: []string{`error cycle "ping -> pong -> ping" | ping | [retained: heap ping retained: heap pong]`},
		},
		{
			name: "sessions joined only by the top session stand apart",
			in: []Finding{
				{Kind: KindLeftover, Severity: SeverityError, Subject: "timer", Owner: "a", joins: ownerJoins(20, []uint64{1})},
				{Kind: KindGrowth, Severity: SeverityWarning, Subject: "a.tasks", Owner: "b", joins: ownerJoins(21, []uint64{1})},
				{Kind: KindGrowth, Severity: SeverityWarning, Subject: "kernel.sessions", Owner: "kernel", joins: ownerJoins(1, nil)},
			},
			want: []string{
				`error leftover "timer" | a | []`,
				`warning growth "a.tasks" | b | []`,
				`warning growth "kernel.sessions" | kernel | []`,
			},
		},
		{
			name: "a session's gauge and what it started leak, through a cause site",
			in: []Finding{
				{Kind: KindLeftover, Severity: SeverityError, Subject: "file round-1.log", Owner: "writer 1", Count: 3, joins: under5(10), Evidence: Evidence{Stack: at("main.write.func1")}},
				{Kind: KindLeftover, Severity: SeverityError, Subject: "socket udp", Owner: "writer 2", Count: 3, Evidence: Evidence{Stack: at("main.write.func2")}},
				{Kind: KindGrowth, Severity: SeverityWarning, Subject: "held", Owner: "driver", joins: ownerJoins(5, []uint64{1})},
			},
			want: []string{`error leftover "file round-1.log" | writer 1 | [leftover: socket udp growth: held]`},
		},
		{
			name: "descriptors seen from outside and the gauge of their owner",
			in: []Finding{
				{Kind: KindGoroutine, Severity: SeverityWarning, Subject: "growing goroutines", Count: 70, joins: []string{"session 20"}},
				{Kind: KindLeftover, Severity: SeverityWarning, Subject: "tcp connections accepted on 127.0.0.1:80 in CLOSE_WAIT", Count: 35,
					joins: ownerJoins(20, []uint64{1}), Evidence: Evidence{Related: []string{"sockets.tcp.CLOSE_WAIT", "fds"}}},
				{Kind: KindGrowth, Severity: SeverityWarning, Subject: "server.conns", Owner: "server", joins: ownerJoins(20, []uint64{1}),
					Evidence: Evidence{Related: []string{"fds"}}},
			},
			want: []string{`warning leftover "tcp connections accepted on 127.0.0.1:80 in CLOSE_WAIT" | server | ` +
				`[sockets.tcp.CLOSE_WAIT fds goroutine: growing goroutines growth: server.conns]`},
		},
		{
			name: "what the tracker says of the cause leads what is seen from outside",
			in: []Finding{
				{Kind: KindLeftover, Severity: SeverityWarning, Subject: "tcp sockets to 127.0.0.1:80 in ESTABLISHED", Count: 2, joins: under5(10)},
				{Kind: KindUnreleased, Severity: SeverityWarning, Subject: "connection 127.0.0.1:80", Owner: "clients", Count: 9,
					joins: under5(10), Evidence: Evidence{Stack: at("main.request")}},
			},
			want: []string{`warning unreleased "connection 127.0.0.1:80" | clients | [leftover: tcp sockets to 127.0.0.1:80 in ESTABLISHED]`},
		},
		{
			name: "a session's growing map leads the misuse of its shutdown",
			in: []Finding{
				{Kind: KindMisuse, Severity: SeverityWarning, Subject: "release-after-owner-stopped of goroutine worker 9", Count: 2,
					joins: ownerJoins(20, []uint64{1}), Evidence: Evidence{Stack: at("main.dispatch.func1")}},
				{Kind: KindGrowth, Severity: SeverityWarning, Subject: "dispatcher.tasks", Owner: "dispatcher", joins: ownerJoins(20, []uint64{1})},
			},
			want: []string{`warning growth "dispatcher.tasks" | dispatcher | [misuse: release-after-owner-stopped of goroutine worker 9]`},
		},
		{
			name: "nothing to join",
			in: []Finding{
				{Kind: KindGrowth, Severity: SeverityWarning, Subject: "rss_bytes"},
				{Kind: KindLeftover, Severity: SeverityWarning, Subject: "fd file /tmp/*.log", Count: 4},
			},
			want: []string{`warning growth "rss_bytes" |  | []`, `warning leftover "fd file /tmp/*.log" |  | []`},
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, f := range Correlate(tt.in) {
				got = append(got, fmt.Sprintf("%s %s %q | %s | %v", f.Severity, f.Kind, f.Subject, f.Owner, f.Evidence.Related))
			}
			slices.Sort(got)
			want := slices.Sorted(slices.Values(tt.want))
			if !slices.Equal(got, want) {
				t.Errorf("Correlate:\n got %q\nwant %q", got, want)
			}
		})
	}
}

// TestOwnerJoins checks the keys of what a session owns: the session and
// its ancestors, but for the topmost.
func TestOwnerJoins(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		owner     uint64
		ancestors []uint64
		want      []string
	}{
		{0, nil, nil},
		{7, nil, nil}, // a top session, or the root
		{10, []uint64{1}, []string{"session 10"}},
		{10, []uint64{5, 1}, []string{"session 10", "session 5"}},
	} {
		if got := ownerJoins(tt.owner, tt.ancestors); !slices.Equal(got, tt.want) {
			t.Errorf("ownerJoins(%d, %v) = %q, want %q", tt.owner, tt.ancestors, got, tt.want)
		}
	}
}

// TestDescriptorJoins checks, on this process's own sockets and files, that
// the descriptors seen from outside take the owners the tracker gives their
// records: server ends left in CLOSE_WAIT by a session that never closes
// them, and a file another session holds; and that untracked ones take none.
func TestDescriptorJoins(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("samples /proc")
	}
	reg := tracker.New()
	top := reg.StartSession("server", nil)
	conns := reg.StartSession("conns", top)
	files := reg.StartSession("files", top)
	base, err := probes.SampleProcess(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for range 3 {
		c, err := net.Dial("tcp", l.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		s, err := l.Accept()
		if err != nil {
			t.Fatal(err)
		}
		tc := reg.TrackConn(conns, s)
		defer tc.Close()
		c.Close() // the server's end waits in CLOSE_WAIT
	}
	f, err := reg.Create(files, t.TempDir()+"/held-1.log")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	u, err := os.Create(t.TempDir() + "/untracked-1.log")
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()

	var cur *probes.ProcSample
	closeWait := "tcp connections accepted on " + l.Addr().String() + " in CLOSE_WAIT"
	for deadline := time.Now().Add(5 * time.Second); ; {
		if cur, err = probes.SampleProcess(os.Getpid()); err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, s := range cur.Sockets {
			if s.State == "CLOSE_WAIT" && s.Local == l.Addr().String() {
				n++
			}
		}
		if n == 3 || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	got := descriptorJoins(base, cur, reg.Snapshot())
	connJoins, fileJoins := []string{fmt.Sprint("session ", conns.ID())}, []string{fmt.Sprint("session ", files.ID())}
	for _, tt := range []struct {
		subject string
		want    []string
	}{
		{closeWait, connJoins},
		{"fd file " + Pattern(f.Name()), fileJoins},
		{"fd file " + Pattern(u.Name()), nil},
		// The series that count them: those of one owner's descriptors
		// join it, the total of both owners' joins none.
		{"sockets.tcp.CLOSE_WAIT", connJoins},
		{"fds", nil},
	} {
		if got := got[tt.subject]; !slices.Equal(got, tt.want) {
			t.Errorf("%s: joins %q, want %q", tt.subject, got, tt.want)
		}
	}
	for subject, joins := range got {
		if strings.Contains(subject, "untracked") {
			t.Errorf("%s: joins %q, want none", subject, joins)
		}
	}
}

// TestSessionJoins checks the keys of goroutines by the session label the
// tracker gives them.
func TestSessionJoins(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		labels map[string]string
		want   []string
	}{
		{map[string]string{tracker.SessionLabel: "10 5 1"}, []string{"session 10", "session 5"}},
		{map[string]string{tracker.SessionLabel: "7"}, nil}, // a top session
		{map[string]string{tracker.SessionLabel: "x"}, nil},
		{map[string]string{"worker": "pool"}, nil},
		{nil, nil},
	} {
		if got := sessionJoins(tt.labels); !slices.Equal(got, tt.want) {
			t.Errorf("sessionJoins(%v) = %q, want %q", tt.labels, got, tt.want)
		}
	}
}
