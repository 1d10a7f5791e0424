package report

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/pprof/profile"

	"github.com/leakcheck/leakcheck/probes"
)

func TestSocketSubjects(t *testing.T) {
	t.Parallel()
	const (
		web   = "127.0.0.1:8080"
		redis = "127.0.0.1:6379"
	)
	all := []probes.Socket{
		{Inode: 1, Proto: "tcp", State: "LISTEN", Local: web},
		{Inode: 2, Proto: "tcp6", State: "LISTEN", Local: "[::]:9090"},
		{Inode: 3, Proto: "tcp", State: "LISTEN", Local: "0.0.0.0:9090"},
	}
	type group struct {
		subject string
		count   int
	}
	tests := []struct {
		name  string
		socks []probes.Socket
		want  []group
	}{
		{"none", nil, nil},
		{
			"listener",
			[]probes.Socket{{Inode: 1, Proto: "tcp", State: "LISTEN", Local: web}},
			[]group{{"tcp listener on 127.0.0.1:8080", 1}},
		},
		{
			"accepted connections are named by the listening address",
			[]probes.Socket{
				{Inode: 10, Proto: "tcp", State: "CLOSE_WAIT", Local: web, Remote: "127.0.0.1:40001"},
				{Inode: 11, Proto: "tcp", State: "CLOSE_WAIT", Local: web, Remote: "127.0.0.1:40002"},
				{Inode: 12, Proto: "tcp", State: "ESTABLISHED", Local: web, Remote: "127.0.0.1:40003"},
			},
			[]group{
				{"tcp connections accepted on 127.0.0.1:8080 in CLOSE_WAIT", 2},
				{"tcp connections accepted on 127.0.0.1:8080 in ESTABLISHED", 1},
			},
		},
		{
			"a wildcard listener's connections are one group per port, whatever the family",
			[]probes.Socket{
				{Inode: 13, Proto: "tcp", State: "ESTABLISHED", Local: "127.0.0.1:9090", Remote: "127.0.0.1:40004"},
				{Inode: 14, Proto: "tcp", State: "ESTABLISHED", Local: "127.0.0.2:9090", Remote: "127.0.0.1:40005"},
				{Inode: 15, Proto: "tcp6", State: "ESTABLISHED", Local: "[::1]:9090", Remote: "[::1]:40006"},
			},
			[]group{{"tcp connections accepted on *:9090 in ESTABLISHED", 3}},
		},
		{
			"outgoing connections are named by the peer",
			[]probes.Socket{
				{Inode: 20, Proto: "tcp", State: "ESTABLISHED", Local: "127.0.0.1:50001", Remote: redis},
				{Inode: 21, Proto: "tcp", State: "ESTABLISHED", Local: "127.0.0.1:50002", Remote: redis},
				{Inode: 22, Proto: "tcp", State: "CLOSE_WAIT", Local: "127.0.0.1:50003", Remote: redis},
			},
			[]group{
				{"tcp sockets to 127.0.0.1:6379 in ESTABLISHED", 2},
				{"tcp sockets to 127.0.0.1:6379 in CLOSE_WAIT", 1},
			},
		},
		{
			"same address, other protocol, is not a listener of ours",
			[]probes.Socket{{Inode: 30, Proto: "tcp6", State: "ESTABLISHED", Local: web, Remote: "[::1]:40000"}},
			[]group{{"tcp6 sockets to [::1]:40000 in ESTABLISHED", 1}},
		},
		{
			"unconnected sockets are named by a pattern of the local address",
			[]probes.Socket{
				{Inode: 40, Proto: "udp", State: "CLOSE", Local: "0.0.0.0:5353"},
				{Inode: 41, Proto: "unix", State: "CONNECTED", Local: "/run/app/worker-3.sock"},
				{Inode: 42, Proto: "unix", State: "CONNECTED", Local: "/run/app/worker-4.sock"},
			},
			[]group{
				{"udp sockets on 0.0.0.0:* in CLOSE", 1},
				{"unix sockets on /run/app/worker-*.sock in CONNECTED", 2},
			},
		},
		{
			"no address and no state",
			[]probes.Socket{
				{Inode: 50, Proto: "other"},
				{Inode: 51, Proto: "other"},
				{Inode: 52, Proto: "unix", State: "CONNECTED"},
			},
			[]group{
				{"other sockets", 2},
				{"unix sockets in CONNECTED", 1},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []group
			for _, f := range socketFindings(tt.socks, all) {
				got = append(got, group{f.Subject, f.Count})
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("groups:\n got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

// TestDescriptorFindings checks that a leftover descriptor or socket is one
// opened since the baseline and open in both of the last two full samples, so
// that whatever a busy process has open for a moment at the final sample is
// not reported.
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
	own := func(addr string) bool { return addr == probe.Remote }
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
			r := NewProcRecorder(time.Time{}, 0)
			for _, ps := range tt.procs {
				r.AddProc(ps)
			}
			var got []string
			for _, f := range r.descriptorFindings(own, TrendOptions{}, nil) {
				if f.Kind != KindLeftover {
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

// TestHighWaterMarkIsNotGrowth checks that a run reports growth of the
// resident set but not of its high-water mark, which never falls and so
// rises in steps under any workload.
func TestHighWaterMarkIsNotGrowth(t *testing.T) {
	t.Parallel()
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	r := NewProcRecorder(start, 0)
	peak := uint64(0)
	for i := range 40 {
		rss := uint64(10<<20 + i*64<<10) // a steady climb
		peak = max(peak, rss)
		r.AddProc(&probes.ProcSample{Time: start.Add(time.Duration(i) * time.Second), RSS: rss, HWM: peak, Counted: true})
	}
	res := r.Analyze(ProcOptions{})
	var growth []string
	for _, f := range res.Findings {
		if f.Kind == KindGrowth {
			growth = append(growth, f.Subject)
		}
	}
	if !slices.Contains(growth, "rss_bytes") || slices.Contains(growth, "hwm_bytes") {
		t.Errorf("growth findings %q: want rss_bytes and not hwm_bytes", growth)
	}
	i := slices.IndexFunc(res.Series, func(s Series) bool { return s.Name == "hwm_bytes" })
	if i < 0 || len(res.Series[i].Points) != 40 {
		t.Errorf("the report should still chart hwm_bytes: series %v", res.Series)
	}
}

// TestOneLeakOneFinding checks that descriptor and socket series that grow
// together, and memory that grows with them, make one finding named by the
// most specific series, with the others as its evidence; and that memory
// growing alone is a finding of its own.
func TestOneLeakOneFinding(t *testing.T) {
	t.Parallel()
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	sockets := func(n int) []probes.Socket {
		s := []probes.Socket{{Inode: 1, Proto: "tcp", State: "LISTEN", Local: "0.0.0.0:6379"}}
		for i := range n {
			s = append(s, probes.Socket{Inode: uint64(100 + i), Proto: "tcp", State: "ESTABLISHED", Local: "127.0.0.1:6379", Remote: fmt.Sprintf("127.0.0.1:%d", 40000+i)})
		}
		return s
	}
	tests := []struct {
		name      string
		fdsGrow   bool
		want      []string
		evidenced []string
	}{
		{"connection leak", true, []string{"leftover tcp connections accepted on *:6379 in ESTABLISHED"},
			[]string{"fds", "fds.socket", "rss_bytes", "sockets", "sockets.tcp", "sockets.tcp.ESTABLISHED"}},
		{"memory alone", false, []string{"growth rss_bytes"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := NewProcRecorder(start, 0)
			for i := range 40 {
				n := 5
				if tt.fdsGrow {
					n += 3 * i
				}
				socks := sockets(n)
				fds := make([]probes.FD, len(socks))
				for j, s := range socks {
					fds[j] = probes.FD{Num: 3 + j, Type: "socket", Target: fmt.Sprintf("socket:[%d]", s.Inode), Inode: s.Inode}
				}
				// Every 10 s: memory growing alone counts after two minutes.
				r.AddProc(&probes.ProcSample{Time: start.Add(time.Duration(i) * 10 * time.Second), FDs: fds, NumFDs: len(fds), Sockets: socks, RSS: uint64(10<<20 + i*64<<10)})
			}
			res := r.Analyze(ProcOptions{})
			var got, related []string
			for _, f := range res.Findings {
				if f.Severity >= SeverityWarning {
					got = append(got, string(f.Kind)+" "+f.Subject)
					related = append(related, f.Evidence.Related...)
				}
			}
			slices.Sort(related)
			if !slices.Equal(got, tt.want) || !slices.Equal(related, tt.evidenced) {
				t.Errorf("findings %q with evidence %q; want %q with %q", got, related, tt.want, tt.evidenced)
			}
		})
	}
}

// TestLeftoversNeedEvidence checks that what a process opened after the
// baseline is a warning only when its group keeps growing: a pool of four
// connections opened once and held is info, as are data files a store opens
// by design; files opened on every tick and never closed are a warning that
// names their descriptor numbers.
func TestLeftoversNeedEvidence(t *testing.T) {
	t.Parallel()
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	r := NewProcRecorder(start, 0)
	pool := []probes.Socket{}
	for i := range 4 {
		pool = append(pool, probes.Socket{Inode: uint64(100 + i), Proto: "tcp", State: "ESTABLISHED", Local: fmt.Sprintf("127.0.0.1:%d", 50000+i), Remote: "127.0.0.1:9100"})
	}
	for i := range 30 {
		ps := &probes.ProcSample{Time: start.Add(time.Duration(i) * time.Second)}
		if i > 2 { // the pool and the store open a little after the baseline
			ps.Sockets = pool
			for _, s := range pool {
				ps.FDs = append(ps.FDs, probes.FD{Num: 10 + int(s.Inode-100), Type: "socket", Target: fmt.Sprintf("socket:[%d]", s.Inode), Inode: s.Inode})
			}
			ps.FDs = append(ps.FDs, probes.FD{Num: 20, Type: "file", Target: "/var/lib/store/data.db"})
		}
		for j := range i { // one log file more every second
			ps.FDs = append(ps.FDs, probes.FD{Num: 100 + j, Type: "file", Target: fmt.Sprintf("/tmp/leak-%d.log", j)})
		}
		r.AddProc(ps)
	}
	got := map[string]Severity{}
	var instances []string
	for _, f := range r.descriptorFindings(nil, TrendOptions{}, nil) {
		got[f.Subject] = f.Severity
		if f.Subject == "fd file /tmp/leak-*.log" {
			instances = f.Evidence.Instances
			if f.Count != 28 || f.Evidence.Trend == nil {
				t.Errorf("log files: count %d, trend %v; want 28 with a trend", f.Count, f.Evidence.Trend)
			}
		}
	}
	want := map[string]Severity{
		"tcp sockets to 127.0.0.1:9100 in ESTABLISHED": SeverityInfo,
		"fd file /var/lib/store/data.db":               SeverityInfo,
		"fd file /tmp/leak-*.log":                      SeverityWarning,
	}
	for subject, sev := range want {
		if g, ok := got[subject]; !ok || g != sev {
			t.Errorf("%s: severity %v (found %v), want %v; all: %v", subject, g, ok, sev, got)
		}
	}
	if len(instances) != maxInstances || instances[0] != "100" {
		t.Errorf("log file instances %q, want the first %d descriptor numbers", instances, maxInstances)
	}
}

// TestShortWarmupGrowthIsInfo checks that resident memory or threads growing
// over a window shorter than WarmupWindow, with nothing from inside the
// process, is info: a process warming up looks the same. (Under the race
// detector, a steady Go daemon's threads went from 7 to 9 in a 3 s run.)
func TestShortWarmupGrowthIsInfo(t *testing.T) {
	t.Parallel()
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		series string
		sample func(i int) *probes.ProcSample
	}{
		{"rss_bytes", func(i int) *probes.ProcSample { return &probes.ProcSample{RSS: uint64(10<<20 + i*256<<10), Threads: 8} }},
		{"threads", func(i int) *probes.ProcSample { return &probes.ProcSample{RSS: 10 << 20, Threads: 7 + i/14} }},
	} {
		for _, step := range []time.Duration{250 * time.Millisecond, 5 * time.Second} {
			r := NewProcRecorder(start, 0)
			for i := range 40 {
				ps := tt.sample(i)
				ps.Time, ps.Counted = start.Add(time.Duration(i)*step), true
				r.AddProc(ps)
			}
			var got []string
			for _, f := range r.Analyze(ProcOptions{}).Findings {
				got = append(got, fmt.Sprintf("%s %s", f.Severity, f.Subject))
			}
			want := []string{"warning " + tt.series}
			if 40*step < WarmupWindow {
				want = []string{"info " + tt.series}
			}
			if !slices.Equal(got, want) {
				t.Errorf("%s every %v: findings %q, want %q", tt.series, step, got, want)
			}
		}
	}
}

// TestRSSWithoutHeapGrowth checks that resident memory growing while the Go
// heap in use holds steady is info, and growing with it a warning.
func TestRSSWithoutHeapGrowth(t *testing.T) {
	t.Parallel()
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, heapGrows := range []bool{false, true} {
		r := NewProcRecorder(start, 0)
		for i := range 40 {
			at := start.Add(time.Duration(i) * 10 * time.Second) // past WarmupWindow
			r.AddProc(&probes.ProcSample{Time: at, RSS: uint64(30<<20 + i*256<<10), Counted: true})
			heap := int64(20 << 20)
			if heapGrows {
				heap += int64(i * 200 << 10)
			}
			r.AddGo(&probes.GoSample{Time: at, Goroutines: 10, HeapInuse: heap})
		}
		var got []string
		for _, f := range r.Analyze(ProcOptions{}).Findings {
			got = append(got, fmt.Sprintf("%s %s", f.Severity, f.Subject))
		}
		want := []string{"info rss_bytes"}
		if heapGrows {
			want = []string{"warning heap_inuse_bytes"}
		}
		if !slices.Equal(got, want) {
			t.Errorf("heap grows %v: findings %q, want %q", heapGrows, got, want)
		}
	}
}

// TestSocketStatesZeroFilled checks that a socket state's series has a point
// at every full sample, zero where the state had no socket, so that a state
// that appears after the start is tested over the whole run.
func TestSocketStatesZeroFilled(t *testing.T) {
	t.Parallel()
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	r := NewProcRecorder(start, 0)
	for i := range 20 {
		ps := &probes.ProcSample{Time: start.Add(time.Duration(i) * time.Second), Counted: i%4 == 3}
		for j := range max(i-5, 0) {
			ps.Sockets = append(ps.Sockets, probes.Socket{Inode: uint64(j + 1), Proto: "tcp", State: "CLOSE_WAIT", Local: "127.0.0.1:80", Remote: fmt.Sprintf("127.0.0.1:%d", 40000+j)})
		}
		r.AddProc(ps)
	}
	s, ok := r.series.Get(Series{Name: "sockets.tcp.CLOSE_WAIT"})
	if !ok || len(s.Points) != 15 || s.Points[0].Value != 0 || !s.Points[0].Time.Equal(start) || s.Points[14].Value != 13 { // i = 18: the last full sample
		t.Errorf("sockets.tcp.CLOSE_WAIT: %v", s)
	}
}

// TestHeapGrowthNamesSites checks that a growing heap in use, sampled with
// heap profiles, is a finding that names the allocation sites that grew
// between the first profile and the latest, with their table.
func TestHeapGrowthNamesSites(t *testing.T) {
	t.Parallel()
	var profiles []*profile.Profile
	for _, name := range []string{"leaky-01.pb.gz", "leaky-03.pb.gz"} {
		in, err := ReadInput(t.Context(), filepath.Join("testdata", "heap", name), InputOptions{})
		if err != nil {
			t.Fatal(err)
		}
		profiles = append(profiles, in.Profile)
	}
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	r := NewProcRecorder(start, 0)
	for i := range 30 {
		at := start.Add(time.Duration(i) * time.Second)
		gs := &probes.GoSample{Time: at, Goroutines: 10, HeapInuse: int64(20<<20 + i*300<<10)}
		switch i {
		case 0:
			gs.HeapProfile = profiles[0]
		case 29:
			gs.HeapProfile = profiles[1]
		}
		r.AddGo(gs)
	}
	res := r.Analyze(ProcOptions{})
	var heap *Finding
	for i, f := range res.Findings {
		if f.Subject == "heap_inuse_bytes" {
			heap = &res.Findings[i]
		}
	}
	if heap == nil || !strings.Contains(heap.Suggestion, "main.(*dedup).mark") {
		t.Fatalf("heap finding %+v: want it to name main.(*dedup).mark", heap)
	}
	if len(res.Tables) == 0 || !strings.Contains(res.Tables[0].Title, "growth") {
		t.Errorf("tables %+v: want the growth between the two profiles", res.Tables)
	}
}

// TestLeakProfileFindings serves a real program's goroutineleak profile (built
// with the experiment that adds it on Go 1.26), reads it as run --pprof does,
// and checks that exactly the goroutines the runtime marked are error
// findings, the live pool with the same stack not among them; a build
// without the profile is a note on how to get it.
func TestLeakProfileFindings(t *testing.T) {
	t.Parallel()
	for _, experiment := range []string{"goroutineleakprofile", ""} {
		bin := buildVerdicts(t, experiment)
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close()
		cmd := exec.Command(bin, "-mode", "mix", "-workers", "50", "-serve", addr)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		var p *profile.Profile
		var found bool
		for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			if p, found, err = probes.SampleLeaks(t.Context(), nil, "http://"+addr); err == nil {
				break
			}
		}
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
		if err != nil {
			t.Fatalf("experiment %q: %v", experiment, err)
		}
		r := NewProcRecorder(time.Now(), 0)
		if found {
			d, err := GoroutinesFromProfile(p)
			if err != nil {
				t.Fatal(err)
			}
			r.AddLeakProfile(d)
		} else {
			r.AddLeakProfile(nil)
		}
		res := r.Analyze(ProcOptions{})
		leaked := 0
		for _, f := range res.Findings {
			if f.Kind == KindGoroutine && f.Severity == SeverityError {
				leaked += f.Count
			}
		}
		switch {
		case experiment != "" && (!found || leaked != 50):
			t.Errorf("with the profile: found %v, %d goroutines in error findings, want the 50 marked", found, leaked)
		case experiment == "" && found:
			t.Log("this toolchain serves goroutineleak without the experiment (Go 1.27)")
		case experiment == "" && (len(res.Notes) == 0 || !strings.Contains(res.Notes[0], "GOEXPERIMENT=goroutineleakprofile")):
			t.Errorf("without the profile: notes %q, want how to enable it", res.Notes)
		}
	}
}

// TestRecorderSnapshot checks which tracker snapshot of the daemon a run
// uses: the exit snapshot it wrote, else the last one its handler served;
// and that an exit file that is no snapshot is an error.
func TestRecorderSnapshot(t *testing.T) {
	t.Parallel()
	live, err := json.Marshal(testSnapshot())
	if err != nil {
		t.Fatal(err)
	}
	r := NewProcRecorder(time.Now(), 0)
	if snap, _, err := r.Snapshot(t.Context(), ""); snap != nil || err != nil {
		t.Errorf("no snapshot at all: %v, %v", snap, err)
	}
	r.AddGo(&probes.GoSample{Time: time.Now(), Tracker: live})
	dir := t.TempDir()
	exit := filepath.Join(dir, "exit.json")
	if snap, atExit, err := r.Snapshot(t.Context(), exit); snap == nil || atExit || err != nil {
		t.Errorf("no exit snapshot: %v, at exit %v, %v; want the live one", snap, atExit, err)
	}
	if err := os.WriteFile(exit, live, 0o644); err != nil {
		t.Fatal(err)
	}
	if snap, atExit, err := r.Snapshot(t.Context(), exit); snap == nil || !atExit || err != nil {
		t.Errorf("an exit snapshot: %v, at exit %v, %v", snap, atExit, err)
	}
	if err := os.WriteFile(exit, []byte("goroutine 1 [running]:\nmain.main()\n\t/x.go:1 +0x1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := r.Snapshot(t.Context(), exit); err == nil {
		t.Error("an exit file that is a goroutine dump: no error")
	}
}
