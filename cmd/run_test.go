package cmd

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/leakcheck/leakcheck/probes"
	"github.com/leakcheck/leakcheck/report"
	"github.com/leakcheck/leakcheck/tracker/leaktest"
)

// TestMain fails the package's run if its tests leave goroutines,
// descriptors or tracked records behind. The end-to-end tests of `leakcheck
// run` (run_e2e_test.go) build their e2eBinaries themselves, into a directory
// that the testing package removes.
func TestMain(m *testing.M) {
	if n := os.Getenv(holdFDsEnv); n != "" {
		holdFDs(n)
		return
	}
	leaktest.VerifyTestMain(m)
}

func TestSocketGroups(t *testing.T) {
	const (
		web   = "127.0.0.1:8080"
		redis = "127.0.0.1:6379"
	)
	last := &probes.ProcSample{Sockets: []probes.Socket{
		{Inode: 1, Proto: "tcp", State: "LISTEN", Local: web},
		{Inode: 2, Proto: "tcp6", State: "LISTEN", Local: "[::]:9090"},
	}}
	tests := []struct {
		name  string
		socks []probes.Socket
		want  []socketGroup
	}{
		{"none", nil, nil},
		{
			"listener",
			[]probes.Socket{{Inode: 1, Proto: "tcp", State: "LISTEN", Local: web}},
			[]socketGroup{{"tcp listener on 127.0.0.1:8080", "LISTEN", 1}},
		},
		{
			"accepted connections are named by the listening address",
			[]probes.Socket{
				{Inode: 10, Proto: "tcp", State: "CLOSE_WAIT", Local: web, Remote: "127.0.0.1:40001"},
				{Inode: 11, Proto: "tcp", State: "CLOSE_WAIT", Local: web, Remote: "127.0.0.1:40002"},
				{Inode: 12, Proto: "tcp", State: "ESTABLISHED", Local: web, Remote: "127.0.0.1:40003"},
			},
			[]socketGroup{
				{"tcp connections accepted on 127.0.0.1:8080 in CLOSE_WAIT", "CLOSE_WAIT", 2},
				{"tcp connections accepted on 127.0.0.1:8080 in ESTABLISHED", "ESTABLISHED", 1},
			},
		},
		{
			"outgoing connections are named by the peer",
			[]probes.Socket{
				{Inode: 20, Proto: "tcp", State: "ESTABLISHED", Local: "127.0.0.1:50001", Remote: redis},
				{Inode: 21, Proto: "tcp", State: "ESTABLISHED", Local: "127.0.0.1:50002", Remote: redis},
				{Inode: 22, Proto: "tcp", State: "CLOSE_WAIT", Local: "127.0.0.1:50003", Remote: redis},
			},
			[]socketGroup{
				{"tcp sockets to 127.0.0.1:6379 in ESTABLISHED", "ESTABLISHED", 2},
				{"tcp sockets to 127.0.0.1:6379 in CLOSE_WAIT", "CLOSE_WAIT", 1},
			},
		},
		{
			"same address, other protocol, is not a listener of ours",
			[]probes.Socket{{Inode: 30, Proto: "tcp6", State: "ESTABLISHED", Local: web, Remote: "[::1]:40000"}},
			[]socketGroup{{"tcp6 sockets to [::1]:40000 in ESTABLISHED", "ESTABLISHED", 1}},
		},
		{
			"unconnected sockets are named by a pattern of the local address",
			[]probes.Socket{
				{Inode: 40, Proto: "udp", State: "CLOSE", Local: "0.0.0.0:5353"},
				{Inode: 41, Proto: "unix", State: "CONNECTED", Local: "/run/app/worker-3.sock"},
				{Inode: 42, Proto: "unix", State: "CONNECTED", Local: "/run/app/worker-4.sock"},
			},
			[]socketGroup{
				{"udp sockets on *.*.*.*:* in CLOSE", "CLOSE", 1},
				{"unix sockets on /run/app/worker-*.sock in CONNECTED", "CONNECTED", 2},
			},
		},
		{
			"no address and no state",
			[]probes.Socket{
				{Inode: 50, Proto: "other"},
				{Inode: 51, Proto: "other"},
				{Inode: 52, Proto: "unix", State: "CONNECTED"},
			},
			[]socketGroup{
				{"other sockets", "", 2},
				{"unix sockets in CONNECTED", "CONNECTED", 1},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := socketGroups(last, tt.socks)
			if !slices.Equal(got, tt.want) {
				t.Errorf("socketGroups:\n got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

// exitErrorOfScript runs sh -c script and returns how it ended.
func exitErrorOfScript(t *testing.T, script string) error {
	t.Helper()
	err := exec.Command("sh", "-c", script).Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("sh -c %q: %v", script, err)
	}
	return err
}

func TestChildStatusCode(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		script    string // run to get the error, unless err is set
		err       error
		stoppedBy bool
		want      int
		says      string
	}{
		{name: "success", script: "exit 0", want: 0, says: "exited with status 0"},
		{name: "own status", script: "exit 7", want: 7, says: "exited with status 7"},
		{name: "status 1", script: "exit 1", want: 1, says: "exited with status 1"},
		{name: "status 255", script: "exit 255", want: 255, says: "exited with status 255"},
		{name: "SIGKILL", script: "kill -s KILL $$", want: report.ExitSignalBase + 9, says: "was killed by signal 9 (killed)"},
		{name: "SIGTERM", script: "kill -s TERM $$", want: report.ExitSignalBase + 15, says: "was killed by signal 15 (terminated)"},
		{name: "SIGSEGV", script: "ulimit -c 0; kill -s SEGV $$", want: report.ExitSignalBase + 11, says: "was killed by signal 11 (segmentation fault)"},
		{name: "stopped by leakcheck, killed", script: "kill -s KILL $$", stoppedBy: true, want: 0, says: "stopped by leakcheck: was killed by signal 9 (killed)"},
		{name: "stopped by leakcheck, failed", script: "exit 3", stoppedBy: true, want: 0, says: "stopped by leakcheck: exited with status 3"},
		{name: "not an exit error", err: errors.New("copying output: broken pipe"), want: report.ExitUsage, says: "copying output: broken pipe"},
	}
	for _, tt := range tests {
		err := tt.err
		if err == nil {
			err = exitErrorOfScript(t, tt.script)
		}
		st := childStatus{err: err, stoppedBy: tt.stoppedBy}
		if got := st.code(); got != tt.want {
			t.Errorf("%s: childStatus{%v, stoppedBy: %v}.code() = %d, want %d", tt.name, err, tt.stoppedBy, got, tt.want)
		}
		if got := st.String(); got != tt.says {
			t.Errorf("%s: String() = %q, want %q", tt.name, got, tt.says)
		}
	}
}

// procState returns the one-letter state of pid, or "" when it is gone.
func procState(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ""
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if f := strings.Fields(s[i+1:]); i >= 0 && len(f) > 0 {
		return f[0]
	}
	return ""
}

// TestDescriptorFindings checks that a leftover descriptor or socket is one
// opened since the baseline and open in both of the last two samples, so that
// whatever a busy process has open for a moment at the final sample is not
// reported.
func TestDescriptorFindings(t *testing.T) {
	t.Parallel()
	const listen = "127.0.0.1:7000"
	lst := probes.Socket{Inode: 1, FD: 3, Proto: "tcp", State: "LISTEN", Local: listen}
	lstFD := probes.FD{Num: 3, Type: "socket", Target: "socket:[1]", Inode: 1}
	sock := func(inode uint64, fd int, state string) (probes.Socket, probes.FD) {
		return probes.Socket{Inode: inode, FD: fd, Proto: "tcp", State: state, Local: listen, Remote: fmt.Sprintf("127.0.0.1:%d", 40000+inode)},
			probes.FD{Num: fd, Type: "socket", Target: fmt.Sprintf("socket:[%d]", inode), Inode: inode}
	}
	file := func(fd int, path string) probes.FD { return probes.FD{Num: fd, Type: "file", Target: path} }
	sample := func(socks []probes.Socket, fds ...probes.FD) *probes.ProcSample {
		return &probes.ProcSample{Sockets: append([]probes.Socket{lst}, socks...), FDs: append([]probes.FD{lstFD}, fds...)}
	}

	held1, held1FD := sock(10, 5, "CLOSE_WAIT")
	held2, held2FD := sock(11, 6, "CLOSE_WAIT")
	passing, passingFD := sock(12, 7, "ESTABLISHED")
	// leakcheck's own connection to the command's --pprof endpoint.
	probe, probeFD := sock(13, 10, "ESTABLISHED")
	own := &ownConns{addrs: map[string]bool{probe.Remote: true}}
	log, scratch := file(8, "/var/log/app-1.log"), file(9, "/tmp/scratch")

	baseline := sample(nil)
	prev := sample([]probes.Socket{held1, held2, probe}, held1FD, held2FD, log, probeFD)
	last := sample([]probes.Socket{held1, held2, passing, probe}, held1FD, held2FD, passingFD, log, scratch, probeFD)

	tests := []struct {
		name  string
		procs []*probes.ProcSample
		want  []string // subject and count of each finding
	}{
		{"baseline only", []*probes.ProcSample{baseline}, nil},
		{"one sample after the baseline", []*probes.ProcSample{baseline, last}, nil},
		{"held across two samples", []*probes.ProcSample{baseline, prev, last}, []string{
			"tcp connections accepted on 127.0.0.1:7000 in CLOSE_WAIT x2",
			"fd file /var/log/app-*.log x1",
		}},
		{"held since before the baseline", []*probes.ProcSample{prev, prev, last}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := &watch{procs: tt.procs, full: tt.procs, baseline: tt.procs[0], own: own}
			var got []string
			for _, f := range w.descriptorFindings() {
				if f.Kind != report.KindLeftover {
					t.Errorf("finding %q has kind %s", f.Subject, f.Kind)
				}
				got = append(got, fmt.Sprintf("%s x%d", f.Subject, f.Count))
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("findings:\n got %q\nwant %q", got, tt.want)
			}
		})
	}
}

// TestSampleSchedule checks that the watch takes full samples for the
// baseline and then only as often as fullSampleBudget allows, counting
// descriptors in between.
func TestSampleSchedule(t *testing.T) {
	w := &watch{pid: os.Getpid(), start: time.Now(), opts: runOptions{interval: time.Second}}
	ctx := context.Background()
	w.sample(ctx)
	if len(w.full) != 1 || w.baseline != w.full[0] || w.baseline.Counted {
		t.Fatalf("first sample after the warm-up: %d full samples, baseline %v", len(w.full), w.baseline)
	}
	if !w.nextFull.After(w.baseline.Time) {
		t.Fatalf("next full sample at %v, not after the first at %v", w.nextFull, w.baseline.Time)
	}
	w.sample(ctx) // long before nextFull: counted
	if len(w.procs) != 2 || len(w.full) != 1 || !w.procs[1].Counted || w.procs[1].NumFDs == 0 {
		t.Fatalf("second sample: %d samples, %d full, last %+v", len(w.procs), len(w.full), w.procs[len(w.procs)-1])
	}
	w.nextFull = time.Now()
	w.sample(ctx)
	if len(w.full) != 2 || w.procs[2].Counted {
		t.Fatalf("third sample, when due: %d full samples, counted %v", len(w.full), w.procs[2].Counted)
	}
	// Every sample feeds the descriptor count; only full ones the types.
	defer func() {
		// When the only full sample after the warm-up is the baseline,
		// the end takes two, apart, for descriptorFindings.
		w := &watch{pid: os.Getpid(), start: time.Now(), opts: runOptions{interval: time.Second}}
		w.sample(ctx)
		w.sample(ctx)
		w.finalSamples(ctx)
		n := len(w.full)
		if n != 3 || w.full[n-2] == w.baseline || !w.full[n-1].Time.After(w.full[n-2].Time.Add(200*time.Millisecond)) {
			t.Errorf("final samples: %d full samples, the last two at %v and %v", n, w.full[n-2].Time, w.full[n-1].Time)
		}
		// Right after a full sample, one more adds nothing.
		w.finalSamples(ctx)
		if len(w.full) != n {
			t.Errorf("final samples right after a full one: %d full samples, want %d", len(w.full), n)
		}
	}()
	for _, s := range w.seriesList() {
		want := 3
		if strings.HasPrefix(s.Name, "fds.") || strings.HasPrefix(s.Name, "sockets") {
			want = 2
		}
		if len(s.Points) != want {
			t.Errorf("series %s has %d points, want %d", s.Name, len(s.Points), want)
		}
	}
}

func TestOwnConns(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var own *ownConns
	if own.has("127.0.0.1:1") {
		t.Error("a nil ownConns has an address")
	}
	own = &ownConns{}
	c, err := own.dial(t.Context(), "tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// The accepted end's peer is the dialed end: how the command's end of a
	// connection of leakcheck's is known.
	if !own.has(s.RemoteAddr().String()) {
		t.Errorf("has(%s) = false for a dialed connection", s.RemoteAddr())
	}
	if own.has(s.LocalAddr().String()) || own.has("") {
		t.Error("has is true for an address not dialed from")
	}
}

// TestHighWaterMarkIsNotGrowth checks that a run reports growth of the
// resident set but not of its high-water mark, which never falls and so
// rises in steps under any workload.
func TestHighWaterMarkIsNotGrowth(t *testing.T) {
	t.Parallel()
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	w := &watch{opts: runOptions{interval: time.Second}, start: start}
	peak := uint64(0)
	for i := range 40 {
		rss := uint64(10<<20 + i*64<<10) // a steady climb
		peak = max(peak, rss)
		w.procs = append(w.procs, &probes.ProcSample{Time: start.Add(time.Duration(i) * time.Second), RSS: rss, HWM: peak})
	}
	w.baseline = w.procs[0]
	r, err := w.report(t.TempDir()+"/no-exit-report.json", nil, nil, []string{"daemon"})
	if err != nil {
		t.Fatal(err)
	}
	var growth []string
	for _, f := range r.Findings {
		if f.Kind == report.KindGrowth {
			growth = append(growth, f.Subject)
		}
	}
	if !slices.Contains(growth, "rss_bytes") || slices.Contains(growth, "hwm_bytes") {
		t.Errorf("growth findings %q: want rss_bytes and not hwm_bytes", growth)
	}
	i := slices.IndexFunc(r.Series, func(s report.Series) bool { return s.Name == "hwm_bytes" })
	if i < 0 || len(r.Series[i].Points) != 40 {
		t.Errorf("the report should still chart hwm_bytes: series %v", r.Series)
	}
}
