package report

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/pprof/profile"
)

// The real inputs come from testdata/programs/goroutines (the module's
// testdata), which parks goroutines in known states and writes its goroutine
// profile in every form. TestGoroutineProgram builds and runs it; with
// -update it also refreshes the corpus in testdata/goroutines, which
// TestGoroutineCorpus and the fuzz tests read.

// corpusDir holds real outputs of the program, one file per form.
var corpusDir = filepath.Join("testdata", "goroutines")

// labeledLabels are the labels the program's labeled goroutines carry.
var labeledLabels = map[string]string{"worker": "labeled", "tenant": `a "quoted" tenant`}

// wantGroup is a group of the program's goroutines, named by its top frame
// outside the standard library.
type wantGroup struct {
	fn     string
	count  int
	state  string
	leaked bool
	locked bool
	labels bool // carries labeledLabels
}

// recurseCalls is how many calls of main.recurse the program's deep
// goroutine has on its stack: depth 150 down to 0.
const recurseCalls = 151

// programGroups returns the groups a dump of the program in form holds.
// Forms: "debug=1", "debug=2", "crash" and "proto" of the goroutine profile,
// and "leak-debug=1", "leak-proto" (the goroutineleak profile) and
// "leak-debug=2" (a full dump taken through it, leaked goroutines marked).
// debug=1 shows no runtime frames, so channel and select states are unknown
// there; only the text dumps say "locked to thread".
func programGroups(form string) []wantGroup {
	leakForm, isLeak := strings.CutPrefix(form, "leak-")
	text := leakForm == "debug=2" || leakForm == "crash"
	chanState := func(s string) string {
		if leakForm == "debug=1" {
			return ""
		}
		return s
	}
	groups := []wantGroup{
		{fn: "main.recvForever", count: 5, state: chanState("chan receive"), leaked: isLeak},
		{fn: "main.selectForever", count: 4, state: chanState("select"), leaked: isLeak},
		{fn: "main.lockForever", count: 3, state: "sync.Mutex.Lock"},
		{fn: "main.waitForever", count: 2, state: "sync.WaitGroup.Wait", leaked: isLeak},
		{fn: "main.sleepLong", count: 6, state: "sleep"},
		{fn: "main.labeled", count: 2, state: chanState("chan receive"), leaked: isLeak, labels: true},
		{fn: "main.lockedThread", count: 1, state: chanState("chan receive"), leaked: isLeak, locked: text},
		{fn: "main.recurse", count: 1, state: chanState("chan receive"), leaked: isLeak},
	}
	if isLeak && leakForm != "debug=2" {
		// The leak profile holds the leaked goroutines only.
		groups = slices.DeleteFunc(groups, func(g wantGroup) bool { return !g.leaked })
	}
	return groups
}

// checkProgramDump checks that d, a dump of the program in form, holds
// exactly the groups programGroups says.
func checkProgramDump(t *testing.T, form string, d *GoroutineDump) {
	t.Helper()
	wantForm := strings.TrimPrefix(form, "leak-")
	if d.Form != wantForm {
		t.Errorf("Form = %q, want %q", d.Form, wantForm)
	}
	if leak := strings.HasPrefix(form, "leak-") && wantForm != "debug=2"; d.Leak != leak {
		t.Errorf("Leak = %v, want %v", d.Leak, leak)
	}
	sum := 0
	for _, g := range d.Goroutines {
		sum += g.Count
		if g.Count < 1 {
			t.Errorf("goroutine %+v has count %d", g, g.Count)
		}
	}
	if sum != d.Total {
		t.Errorf("Total = %d, but the goroutines count %d", d.Total, sum)
	}
	groups := GroupGoroutines(d)
	byFunc := make(map[string][]GoroutineGroup)
	for _, g := range groups {
		if f, ok := userFrame(g.Stack); ok {
			byFunc[f.Func] = append(byFunc[f.Func], g)
		}
	}
	want := programGroups(form)
	if strings.HasPrefix(form, "leak-") && wantForm != "debug=2" {
		n := 0
		for _, w := range want {
			n += w.count
		}
		if d.Total != n || len(groups) != len(want) {
			t.Errorf("leak profile holds %d goroutines in %d groups, want %d in %d:\n%s", d.Total, len(groups), n, len(want), describeGroups(groups))
		}
	}
	for _, w := range want {
		gs := byFunc[w.fn]
		if len(gs) != 1 {
			t.Errorf("%s: %d groups, want 1:\n%s", w.fn, len(gs), describeGroups(groups))
			continue
		}
		g := gs[0]
		if g.Count != w.count || g.State != w.state || g.Leaked != w.leaked || (g.Locked > 0) != w.locked {
			t.Errorf("%s: count %d, state %q, leaked %v, locked %d; want count %d, state %q, leaked %v, locked %v",
				w.fn, g.Count, g.State, g.Leaked, g.Locked, w.count, w.state, w.leaked, w.locked)
		}
		if w.labels && !maps.Equal(g.Labels, labeledLabels) {
			t.Errorf("%s: labels %q, want %q", w.fn, g.Labels, labeledLabels)
		}
		if !w.labels && len(g.Labels) > 0 {
			t.Errorf("%s: labels %q, want none", w.fn, g.Labels)
		}
		if wantForm != "debug=1" && wantForm != "proto" && g.CreatedBy.Func == "" {
			t.Errorf("%s: no creator", w.fn)
		}
		if w.fn == "main.recurse" {
			calls := 0
			for _, f := range g.Stack {
				if f.Func == "main.recurse" {
					calls++
				}
			}
			switch wantForm {
			case "debug=2", "crash":
				// The runtime prints 100 frames and elides the middle.
				if g.Elided == 0 || calls+g.Elided != recurseCalls {
					t.Errorf("main.recurse: %d calls shown and %d elided, want %d in all", calls, g.Elided, recurseCalls)
				}
			default:
				// Profiles keep a stack's innermost frames, up to a depth.
				if g.Elided != 0 || calls < 100 || calls > recurseCalls {
					t.Errorf("main.recurse: %d calls, %d elided; want 100 to %d calls", calls, g.Elided, recurseCalls)
				}
			}
		}
		if len(g.IDs) > 0 != (wantForm == "debug=2" || wantForm == "crash") {
			t.Errorf("%s: ids %v in form %s", w.fn, g.IDs, form)
		}
	}
	for _, w := range want {
		for _, f := range byFunc[w.fn] {
			for _, fr := range f.Stack {
				if fr.Func == "runtime.goexit" || strings.Contains(fr.Func, ".gowrap") {
					t.Errorf("%s: wrapper frame %s kept", w.fn, fr.Func)
				}
			}
		}
	}
}

func describeGroups(groups []GoroutineGroup) string {
	var b strings.Builder
	for _, g := range groups {
		f, _ := userFrame(g.Stack)
		fmt.Fprintf(&b, "\t%d %q leaked=%v locked=%d %s labels=%q\n", g.Count, g.State, g.Leaked, g.Locked, f, g.Labels)
	}
	return b.String()
}

// corpusFiles maps the corpus files to their forms.
var corpusFiles = []struct{ file, form string }{
	{"debug1.txt", "debug=1"},
	{"debug2.txt", "debug=2"},
	{"crash.txt", "crash"},
	{"goroutine.pb.gz", "proto"},
	{"leak-debug1.txt", "leak-debug=1"},
	{"leak-debug2.txt", "leak-debug=2"},
	{"leak.pb.gz", "leak-proto"},
}

// parseFile parses a goroutine profile or dump in any form.
func parseFile(t *testing.T, path string) *GoroutineDump {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.HasPrefix(data, []byte{0x1f, 0x8b}) { // gzip: the proto form
		p, err := profile.ParseData(data)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		d, err := GoroutinesFromProfile(p)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		return d
	}
	if !IsGoroutineText(data) {
		t.Errorf("IsGoroutineText(%s) = false", path)
	}
	d, err := ParseGoroutineText(data)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return d
}

func TestGoroutineCorpus(t *testing.T) {
	for _, c := range corpusFiles {
		t.Run(c.file, func(t *testing.T) {
			checkProgramDump(t, c.form, parseFile(t, filepath.Join(corpusDir, c.file)))
		})
	}
}

func TestIsGoroutineProfile(t *testing.T) {
	for _, c := range []struct {
		file            string
		goroutine, leak bool
	}{
		{"goroutine.pb.gz", true, false},
		{"leak.pb.gz", true, true},
	} {
		data, err := os.ReadFile(filepath.Join(corpusDir, c.file))
		if err != nil {
			t.Fatal(err)
		}
		p, err := profile.ParseData(data)
		if err != nil {
			t.Fatal(err)
		}
		if g, l := IsGoroutineProfile(p); g != c.goroutine || l != c.leak {
			t.Errorf("IsGoroutineProfile(%s) = %v, %v; want %v, %v", c.file, g, l, c.goroutine, c.leak)
		}
	}
	heap := &profile.Profile{
		PeriodType: &profile.ValueType{Type: "space", Unit: "bytes"},
		SampleType: []*profile.ValueType{{Type: "alloc_objects", Unit: "count"}, {Type: "inuse_space", Unit: "bytes"}},
	}
	if g, l := IsGoroutineProfile(heap); g || l {
		t.Errorf("IsGoroutineProfile(heap) = %v, %v", g, l)
	}
	if g, l := IsGoroutineProfile(nil); g || l {
		t.Errorf("IsGoroutineProfile(nil) = %v, %v", g, l)
	}
	if _, err := GoroutinesFromProfile(heap); err == nil || !strings.Contains(err.Error(), "not a goroutine profile: sample types alloc_objects/count, inuse_space/bytes") {
		t.Errorf("GoroutinesFromProfile(heap): %v", err)
	}
	if _, err := GoroutinesFromProfile(nil); err == nil {
		t.Error("GoroutinesFromProfile(nil): no error")
	}
	bad := &profile.Profile{
		PeriodType: &profile.ValueType{Type: "goroutine", Unit: "count"},
		SampleType: []*profile.ValueType{{Type: "goroutine", Unit: "count"}},
		Sample:     []*profile.Sample{{Value: []int64{-3}}},
	}
	if _, err := GoroutinesFromProfile(bad); err == nil || !strings.Contains(err.Error(), "bad goroutine count -3") {
		t.Errorf("GoroutinesFromProfile(negative count): %v", err)
	}
}

// program is the built test program.
type program struct {
	bin string
	dir string // module root
}

// buildProgram builds testdata/programs/goroutines with GOEXPERIMENT set to
// experiment (unless empty), with -trimpath so that the dumps hold no path
// of this machine.
func buildProgram(t *testing.T, experiment string) (program, error) {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("no go command to build the test program with: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "goroutines")
	c := exec.Command(goTool, "build", "-trimpath", "-o", bin, "./testdata/programs/goroutines")
	c.Dir = ".." // the module root
	c.Env = os.Environ()
	if experiment != "" {
		c.Env = append(c.Env, "GOEXPERIMENT="+experiment)
	}
	start := time.Now()
	if out, err := c.CombinedOutput(); err != nil {
		return program{}, fmt.Errorf("go build (GOEXPERIMENT=%s): %w\n%s", experiment, err, out)
	}
	t.Logf("built the goroutines program (GOEXPERIMENT=%q) in %v", experiment, time.Since(start).Round(time.Millisecond))
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	return program{bin: bin, dir: root}, nil
}

// run runs the program with env added to its environment and args, waits
// until it has written its profiles (it prints "written"), and then either
// ends it by closing its standard input, or, with quit, sends it SIGQUIT.
// It returns the program's standard error.
func (p program) run(t *testing.T, env []string, quit bool, args ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := exec.CommandContext(ctx, p.bin, args...)
	c.Env = append(os.Environ(), env...)
	var stderr bytes.Buffer
	c.Stderr = &stderr
	stdin, err := c.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := c.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if line != "written\n" {
		stdin.Close()
		c.Wait()
		t.Fatalf("%s %s: printed %q (%v), want \"written\"; stderr:\n%s", p.bin, strings.Join(args, " "), line, err, stderr.Bytes())
	}
	if quit {
		// Standard input stays open: at its end the program would release
		// its mutex and wake the goroutines waiting for it mid-dump.
		if err := c.Process.Signal(syscall.SIGQUIT); err != nil {
			t.Fatal(err)
		}
	} else {
		stdin.Close()
	}
	err = c.Wait() // closes stdin after the exit
	var exit *exec.ExitError
	switch {
	case !quit && err != nil:
		t.Fatalf("%s: %v; stderr:\n%s", p.bin, err, stderr.Bytes())
	case quit && (!errors.As(err, &exit) || exit.ExitCode() != 2):
		// The runtime exits with status 2 after a SIGQUIT dump.
		t.Fatalf("%s after SIGQUIT: %v, want exit status 2; stderr:\n%s", p.bin, err, stderr.Bytes())
	}
	return stderr.Bytes()
}

// seriesDumps is how many growing profiles the program writes for
// GoroutineSeries: more than DefaultMinSamples.
const seriesDumps = 16

func TestGoroutineProgram(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs a program: slow")
	}
	prog, err := buildProgram(t, "")
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	// tracebacklabels=1 makes debug=2 headers carry the labels (Go 1.26).
	prog.run(t, []string{"GODEBUG=tracebacklabels=1"}, false,
		"-out", out, "-forms", "goroutine0,goroutine1,goroutine2", "-series", strconv.Itoa(seriesDumps))
	crash := prog.run(t, []string{"GOTRACEBACK=all", "GODEBUG=tracebacklabels=1,tracebackancestors=2"}, true)
	crashFile := filepath.Join(out, "crash.txt")
	if err := os.WriteFile(crashFile, crash, 0o644); err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(crash, []byte("SIGQUIT: quit\n")) || !bytes.Contains(crash, []byte("[originating from goroutine 1]:")) {
		t.Errorf("the crash dump does not look as expected:\n%.2000s", crash)
	}
	files := map[string]string{
		"debug1.txt":      filepath.Join(out, "goroutine1.prof"),
		"debug2.txt":      filepath.Join(out, "goroutine2.prof"),
		"crash.txt":       crashFile,
		"goroutine.pb.gz": filepath.Join(out, "goroutine0.prof"),
	}
	if data, err := os.ReadFile(files["debug2.txt"]); err != nil || !bytes.Contains(data, []byte(` labels:{"tenant": "a \"quoted\" tenant", "worker": "labeled"}]:`)) {
		t.Errorf("debug=2 headers do not carry the labels as expected (%v)", err)
	}
	for _, c := range corpusFiles {
		if path, ok := files[c.file]; ok {
			t.Run(c.file, func(t *testing.T) {
				checkProgramDump(t, c.form, parseFile(t, path))
			})
		}
	}

	t.Run("series", func(t *testing.T) {
		var dumps []*GoroutineDump
		for i := range seriesDumps {
			dumps = append(dumps, parseFile(t, filepath.Join(out, fmt.Sprintf("series-%02d.prof", i))))
		}
		checkSeries(t, dumps)
	})

	lout := t.TempDir() // the parent's: -update copies from it after the subtest
	t.Run("leak", func(t *testing.T) {
		lprog, err := buildProgram(t, "goroutineleakprofile")
		if err != nil {
			if strings.Contains(err.Error(), "goroutineleakprofile") && strings.Contains(err.Error(), "unknown") {
				t.Skipf("this Go has no goroutine leak profile (GOEXPERIMENT=goroutineleakprofile): %v", err)
			}
			t.Fatal(err)
		}
		lprog.run(t, []string{"GODEBUG=tracebacklabels=1"}, false, "-out", lout, "-forms", "goroutineleak0,goroutineleak1,goroutineleak2")
		leakFiles := map[string]string{
			"leak-debug1.txt": filepath.Join(lout, "goroutineleak1.prof"),
			"leak-debug2.txt": filepath.Join(lout, "goroutineleak2.prof"),
			"leak.pb.gz":      filepath.Join(lout, "goroutineleak0.prof"),
		}
		for _, c := range corpusFiles {
			if path, ok := leakFiles[c.file]; ok {
				t.Run(c.file, func(t *testing.T) {
					checkProgramDump(t, c.form, parseFile(t, path))
				})
			}
		}
		maps.Copy(files, leakFiles)
	})

	if *update {
		updateCorpus(t, prog.dir, files)
	}
}

// checkSeries checks GoroutineSeries on the program's growing profiles: one
// more main.leakOne goroutine in each, main.churnOne going up and down, the
// rest steady.
func checkSeries(t *testing.T, dumps []*GoroutineDump) {
	t.Helper()
	for i, d := range dumps {
		if d.Time.IsZero() || (i > 0 && !d.Time.After(dumps[i-1].Time)) {
			t.Fatalf("profile %d has time %v", i, d.Time)
		}
	}
	series, fs := GoroutineSeries(dumps, TrendOptions{})
	byName := make(map[string]Series)
	for _, s := range series {
		if len(s.Points) != len(dumps) || s.Trend == nil {
			t.Errorf("series %q: %d points, trend %v; want %d points, analysed", s.Name, len(s.Points), s.Trend, len(dumps))
		}
		if _, dup := byName[s.Name]; dup {
			t.Errorf("two series named %q", s.Name)
		}
		byName[s.Name] = s
	}
	// The total need not test as growing: the churn's swings of four hide
	// the leak's one a step. Following each stack is what finds it.
	if series[0].Name != "goroutines" {
		t.Errorf("first series %q, want the total", series[0].Name)
	}
	for name, verdict := range map[string]Verdict{
		"goroutines in chan receive at main.leakOne":     VerdictGrowing,
		"goroutines in chan receive at main.recvForever": VerdictSteady,
		"goroutines in chan receive at main.churnOne":    VerdictSteady,
		"goroutines in sleep at main.sleepLong":          VerdictSteady,
	} {
		s, ok := byName[name]
		if !ok {
			t.Errorf("no series %q", name)
			continue
		}
		if s.Trend.Verdict != verdict {
			t.Errorf("series %q: verdict %s, want %s; points %v", name, s.Trend.Verdict, verdict, s.Points)
		}
	}
	leak := byName["goroutines in chan receive at main.leakOne"]
	for i, p := range leak.Points {
		if p.Value != float64(i+1) {
			t.Errorf("main.leakOne: %v goroutines in profile %d, want %d", p.Value, i, i+1)
		}
	}
	churn := byName["goroutines in chan receive at main.churnOne"]
	for i, p := range churn.Points {
		if p.Value != float64(i%3*2) {
			t.Errorf("main.churnOne: %v goroutines in profile %d, want %d", p.Value, i, i%3*2)
		}
	}
	if len(fs) != 1 {
		t.Fatalf("%d findings, want 1 (main.leakOne): %+v", len(fs), fs)
	}
	f := fs[0]
	if f.Kind != KindGoroutine || f.Severity != SeverityWarning || f.Count != seriesDumps ||
		!strings.HasPrefix(f.Subject, "growing goroutines in chan receive at main.leakOne (main.go:") ||
		f.Evidence.Series != "goroutines in chan receive at main.leakOne" || f.Evidence.Trend.Verdict != VerdictGrowing {
		t.Errorf("finding %+v", f)
	}
}

// updateCorpus copies the program's outputs into the corpus, with the
// profiles' binary path cut to its base name: the dumps themselves were built
// with -trimpath and must hold no path of this machine.
func updateCorpus(t *testing.T, root string, files map[string]string) {
	t.Helper()
	if err := os.MkdirAll(corpusDir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, path := range files {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasSuffix(name, ".pb.gz") {
			p, err := profile.ParseData(data)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range p.Mapping {
				m.File = filepath.Base(m.File)
			}
			var b bytes.Buffer
			if err := p.Write(&b); err != nil {
				t.Fatal(err)
			}
			data = b.Bytes()
		}
		text := data
		if strings.HasSuffix(name, ".pb.gz") {
			p, err := profile.ParseData(data)
			if err != nil {
				t.Fatal(err)
			}
			text = []byte(p.String())
		}
		for _, dir := range []string{root, filepath.Dir(path), os.TempDir()} {
			if bytes.Contains(text, []byte(dir)) {
				t.Fatalf("%s holds the path %s: not committing it", name, dir)
			}
		}
		if err := os.WriteFile(filepath.Join(corpusDir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// dumpText is a full dump in the runtime's format with what a short run of
// the program cannot show: waits, a goroutine running on another thread, a
// creator without an id, leaked and scanned goroutines.
const dumpText = `goroutine 1 [chan receive, 31 minutes]:
main.main()
	/src/daemon/main.go:40 +0x1d

goroutine 7 [chan receive, 12 minutes, locked to thread labels:{"fiz\\zl\re": "\U00045678boop", "k": "v"}]:
main.worker(0xc000010000)
	/src/daemon/worker.go:42 +0x2c
created by main.start in goroutine 1
	/src/daemon/main.go:30 +0x5f

goroutine 8 [chan receive, 15 minutes]:
main.worker(0xc000010010)
	/src/daemon/worker.go:42 +0x2c
created by main.start in goroutine 1
	/src/daemon/main.go:30 +0x5f

goroutine 9 [running]:
	goroutine running on other thread; stack unavailable
created by main.start
	/src/daemon/main.go:31 +0x7a

goroutine 10 [select (leaked) (scan), 2 minutes]:
main.(*Poller).loop(...)
	/src/daemon/poll.go:9
main.main.gowrap2()
	/src/daemon/main.go:33 +0x25
runtime.goexit({})
	/usr/lib/go/src/runtime/asm_amd64.s:1700 +0x1 fp=0xc000051fe8 sp=0xc000051fe0 pc=0x4640c1
created by main.main in goroutine 1
	/src/daemon/main.go:33 +0x1b
`

func TestParseGoroutineText(t *testing.T) {
	worker := []Frame{{Func: "main.worker", File: "/src/daemon/worker.go", Line: 42}}
	start := Frame{Func: "main.start", File: "/src/daemon/main.go", Line: 30}
	for _, c := range []struct {
		name, text string
		form       string
		want       []Goroutine
	}{
		{"waits and notes", dumpText, "debug=2", []Goroutine{
			{ID: 1, State: "chan receive", Wait: 31 * time.Minute, Count: 1, Stack: []Frame{{Func: "main.main", File: "/src/daemon/main.go", Line: 40}}},
			{ID: 7, State: "chan receive", Wait: 12 * time.Minute, Locked: true, Count: 1, Stack: worker, CreatedBy: start, CreatorID: 1,
				Labels: map[string]string{"fiz\\zl\re": "\U00045678boop", "k": "v"}},
			{ID: 8, State: "chan receive", Wait: 15 * time.Minute, Count: 1, Stack: worker, CreatedBy: start, CreatorID: 1},
			{ID: 9, State: "running", Count: 1, CreatedBy: Frame{Func: "main.start", File: "/src/daemon/main.go", Line: 31}},
			{ID: 10, State: "select", Leaked: true, Wait: 2 * time.Minute, Count: 1,
				Stack:     []Frame{{Func: "main.(*Poller).loop", File: "/src/daemon/poll.go", Line: 9}},
				CreatedBy: Frame{Func: "main.main", File: "/src/daemon/main.go", Line: 33}, CreatorID: 1},
		}},
		{"crash with ancestors, g0 and registers", "panic: boom\n\ngoroutine 0 gp=0x61faa0 m=0 mp=0x620860 [idle]:\nruntime.futex(0x6209b8)\n\truntime/sys_linux_amd64.s:569 +0x21 fp=0x7ffc sp=0x7ffc pc=0x488b41\n\n" +
			"goroutine 5 gp=0xc000007c00 m=nil [sync.Cond.Wait (durable), synctest bubble 3]:\nsync.runtime_notifyListWait(0xc0000a8050, 0x0)\n\truntime/sema.go:606 +0x159 fp=0xc00004ff00 sp=0xc00004feb0 pc=0x46e0b9\n" +
			"runtime: g 5: unexpected return pc for main.f called from 0x0\nmain.f()\n\t/my dir/f.go:3 +0x1a\n...7 frames elided...\nmain.g()\n\t/my dir/f.go:9\n" +
			"created by main.h in goroutine 4\n\t/my dir/f.go:12 +0x2b\n[originating from goroutine 4]:\nmain.h(...)\n\t/my dir/f.go:12 +0x2b\n...additional frames elided...\n\n" +
			"rax    0xca\nrbx    0x0\nexit status 2\n", "crash", []Goroutine{
			{ID: 5, State: "sync.Cond.Wait (durable)", Count: 1, Elided: 7, CreatorID: 4,
				Stack: []Frame{
					{Func: "sync.runtime_notifyListWait", File: "runtime/sema.go", Line: 606},
					{Func: "main.f", File: "/my dir/f.go", Line: 3},
					{Func: "main.g", File: "/my dir/f.go", Line: 9},
				},
				CreatedBy: Frame{Func: "main.h", File: "/my dir/f.go", Line: 12}},
		}},
		{"go run output: the program's lines before, exit status after", "starting\nserving on 127.0.0.1:8080\npanic: boom\n\ngoroutine 1 [running]:\nmain.main()\n\t/src/daemon/main.go:40 +0x1d\nexit status 2\n",
			"crash", []Goroutine{{ID: 1, State: "running", Count: 1, Stack: []Frame{{Func: "main.main", File: "/src/daemon/main.go", Line: 40}}}}},
		{"windows line endings", "goroutine 3 [IO wait]:\r\ninternal/poll.runtime_pollWait(0x1, 0x72)\r\n\tC:/go/src/runtime/netpoll.go:351 +0x85\r\n", "debug=2", []Goroutine{
			{ID: 3, State: "IO wait", Count: 1, Stack: []Frame{{Func: "internal/poll.runtime_pollWait", File: "C:/go/src/runtime/netpoll.go", Line: 351}}},
		}},
		{"debug=1 with labels and an unknown address", "goroutine profile: total 4\n" +
			"3 @ 0x48052e 0x4f0225\n# labels: {\"a\":\"b\\n\", \"c\":\"\"}\n#\t0x483ce4\ttime.Sleep+0x164\t\t/go/src/runtime/time.go:363\n#\t0x4f0224\tmain.write+0x144\t/src/main.go:137\n\n" +
			"1 @ 0x4f0225\n#\t0x4f0224\n", "debug=1", []Goroutine{
			{State: "sleep", Count: 3, Labels: map[string]string{"a": "b\n", "c": ""}, Stack: []Frame{
				{Func: "time.Sleep", File: "/go/src/runtime/time.go", Line: 363}, {Func: "main.write", File: "/src/main.go", Line: 137}}},
			{Count: 1, Stack: []Frame{{Func: "0x4f0224"}}},
		}},
		{"goroutineleak debug=1", "goroutineleak profile: total 1\n1 @ 0x1\n#\t0x4f0224\tmain.f+0x144\tmain.go:1\n", "debug=1", []Goroutine{
			{Count: 1, Leaked: true, Stack: []Frame{{Func: "main.f", File: "main.go", Line: 1}}},
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			d, err := ParseGoroutineText([]byte(c.text))
			if err != nil {
				t.Fatal(err)
			}
			if d.Form != c.form {
				t.Errorf("Form = %q, want %q", d.Form, c.form)
			}
			if len(d.Goroutines) != len(c.want) {
				t.Fatalf("%d goroutines, want %d: %+v", len(d.Goroutines), len(c.want), d.Goroutines)
			}
			total := 0
			for i, g := range d.Goroutines {
				total += g.Count
				if diff := diffGoroutine(g, c.want[i]); diff != "" {
					t.Errorf("goroutine %d: %s", i, diff)
				}
			}
			if d.Total != total {
				t.Errorf("Total = %d, want %d", d.Total, total)
			}
		})
	}
}

// diffGoroutine says how got differs from want, or returns "".
func diffGoroutine(got, want Goroutine) string {
	var diffs []string
	if got.ID != want.ID || got.State != want.State || got.Wait != want.Wait || got.Locked != want.Locked || got.Leaked != want.Leaked ||
		got.CreatedBy != want.CreatedBy || got.CreatorID != want.CreatorID || got.Elided != want.Elided || got.Count != want.Count {
		diffs = append(diffs, fmt.Sprintf("got  %+v\nwant %+v", got, want))
	}
	if !slices.Equal(got.Stack, want.Stack) {
		diffs = append(diffs, fmt.Sprintf("stack %v, want %v", got.Stack, want.Stack))
	}
	if !maps.Equal(got.Labels, want.Labels) {
		diffs = append(diffs, fmt.Sprintf("labels %q, want %q", got.Labels, want.Labels))
	}
	return strings.Join(diffs, "\n")
}

func TestParseGoroutineTextErrors(t *testing.T) {
	for _, c := range []struct{ name, text, want string }{
		{"empty", "", "no goroutines found: want \"goroutine profile: total N\""},
		{"other text", "hello\nworld\n", "no goroutines found"},
		{"other profile", "threadcreate profile: total 3\n", `not a goroutine profile: "threadcreate profile"`},
		{"heap text", "heap profile: 1: 2 [3: 4] @ heap/1048576\n", `not a goroutine profile: "heap profile"`},
		{"truncated after a call", "goroutine 1 [running]:\nmain.main()", "line 2: dump ends after the call line of main.main: want its tab-indented file:line"},
		{"file line first", "goroutine 1 [running]:\n\tmain.go:1\n", `line 2: want a function call such as "main.f(...)" before file line "\tmain.go:1"`},
		{"not a call", "goroutine 1 [running]:\nmain.main\n\tmain.go:1\n", `line 2: want a function call such as "main.f(...)", got "main.main"`},
		{"no tab", "goroutine 1 [running]:\nmain.main()\nmain.go:1\n", `line 3: want a tab-indented file:line after the call line of main.main, got "main.go:1"`},
		{"no line number", "goroutine 1 [running]:\nmain.main()\n\tmain.go +0x1\n", `line 3: want file:line after the call line of main.main`},
		{"id overflow", "goroutine 99999999999999999999 [running]:\n", "line 1: goroutine header \"goroutine 99999999999999999999 [running]:\": want a goroutine id"},
		{"empty state", "goroutine 1 []:\n", "want a goroutine state"},
		{"bad minutes", "goroutine 1 [select, x minutes]:\n", `want a number of minutes in "x minutes"`},
		{"unterminated label", "goroutine 1 [select labels:{\"a]:\n", "label key: unterminated quoted string"},
		{"label without colon", "goroutine 1 [select labels:{\"a\" \"b\"}]:\n", `want ":" after label key "a"`},
		{"label bad escape", "goroutine 1 [select labels:{\"a\": \"\\q\"}]:\n", `value of label "a": bad quoted string`},
		{"text after labels", "goroutine 1 [select labels:{\"a\": \"b\"}x]:\n", `want "]:" after the labels, got "x"`},
		{"bad creator id", "goroutine 2 [select]:\nmain.f()\n\tf.go:1\ncreated by main.g in goroutine x\n", `line 4: want a goroutine id in "created by main.g in goroutine x"`},
		{"bad elision", "goroutine 2 [select]:\n...many frames elided...\n", `want a number of frames`},
		{"debug=1 total", "goroutine profile: total 5\n3 @ 0x1\n#\t0x1\tmain.f+0x1\tf.go:1\n", "records count 3 goroutines, but the header says total 5: is the profile truncated?"},
		{"debug=1 over total", "goroutine profile: total 1\n3 @ 0x1\n", "records count more goroutines than the header's total 1"},
		{"debug=1 bad total", "goroutine profile: total many\n", `want a number of goroutines in "goroutine profile: total many"`},
		{"debug=1 bad record", "goroutine profile: total 1\nthree @ 0x1\n", `line 2: want a record such as "3 @ 0x45e2ce 0x42b5b4", got "three @ 0x1"`},
		{"debug=1 bad frame", "goroutine profile: total 1\n1 @ 0x1\n#\tmain.f\n", `line 3: want a frame such as`},
		{"debug=1 bad file", "goroutine profile: total 1\n1 @ 0x1\n#\t0x1\tmain.f+0x1\tf.go\n", `line 3: want file:line in`},
		{"debug=1 bad labels", "goroutine profile: total 1\n1 @ 0x1\n# labels: {\"a\"}\n", `want ":" after label key "a"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			d, err := ParseGoroutineText([]byte(c.text))
			if err == nil {
				t.Fatalf("no error; parsed %+v", d)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q, want it to contain %q", err, c.want)
			}
		})
	}
}

func TestIsGoroutineText(t *testing.T) {
	for _, c := range []struct {
		text string
		want bool
	}{
		{"goroutine profile: total 3\n", true},
		{"\n\ngoroutineleak profile: total 3\n", true},
		{"goroutine 1 [running]:\nmain.main()\n", true},
		{"goroutine 1 gp=0xc000002380 m=0 mp=0x620860 [running]:\r\n", true},
		{"SIGQUIT: quit\nPC=0x488b41 m=0 sigcode=0\n\ngoroutine 0 gp=0x61faa0 m=0 mp=0x620860 [idle]:\n", true},
		{"panic: boom\n\ngoroutine 1 [running]:\nmain.main()\n", true},
		{"fatal error: all goroutines are asleep - deadlock!\n\ngoroutine 1 [chan receive]:\n", true},
		{"panic: boom\n\nno goroutines here\n", false},
		{"listening on 127.0.0.1:8080\nserving\npanic: boom\n\ngoroutine 1 [running]:\nmain.main()\n", true},
		{"a line the program printed\ngoroutine 7 gp=0xc000002380 m=nil [chan receive, 3 minutes]:\n", true},
		{"output\ngoroutine 1 is not a header\n", false},
		{"goroutine 1 is not a header\n", false},
		{"heap profile: 1: 2 [3: 4] @ heap/1048576\n", false},
		{"\x1f\x8b\x08\x00", false},
		{"", false},
		{"my goroutine 1 [running]:\n", false},
	} {
		if got := IsGoroutineText([]byte(c.text)); got != c.want {
			t.Errorf("IsGoroutineText(%q) = %v, want %v", c.text, got, c.want)
		}
	}
}

func TestGroupGoroutines(t *testing.T) {
	renumber := strings.NewReplacer("goroutine 1 [", "goroutine 1010 [", "goroutine 7 [", "goroutine 1070 [",
		"goroutine 8 [", "goroutine 1080 [", "goroutine 9 [", "goroutine 1090 [", "goroutine 10 [", "goroutine 1100 [")
	d, err := ParseGoroutineText([]byte(dumpText + "\n" + renumber.Replace(dumpText)))
	if err != nil {
		t.Fatal(err)
	}
	groups := GroupGoroutines(d)
	if len(groups) != 4 {
		t.Fatalf("%d groups, want 4:\n%s", len(groups), describeGroups(groups))
	}
	// The two copies of goroutines 7 and 8 are one group of four, first.
	w := groups[0]
	if w.Count != 4 || w.State != "chan receive" || w.MinWait != 12*time.Minute || w.MaxWait != 15*time.Minute || w.Locked != 2 ||
		!slices.Equal(w.IDs, []int64{7, 8, 1070, 1080}) || len(w.Labels) != 0 {
		t.Errorf("worker group %+v", w)
	}
	for _, g := range groups[1:] {
		if g.Count != 2 {
			t.Errorf("group %+v: count %d, want 2", g, g.Count)
		}
	}
	// Equal counts keep the dump's order: main, running, leaked.
	if groups[1].Stack[0].Func != "main.main" || groups[2].State != "running" || !groups[3].Leaked {
		t.Errorf("groups out of order:\n%s", describeGroups(groups))
	}

	// Labels common to all members are kept.
	d = &GoroutineDump{Goroutines: []Goroutine{
		{ID: 1, State: "select", Count: 1, Labels: map[string]string{"a": "1", "b": "2", "c": "3"}},
		{ID: 2, State: "select", Count: 1, Labels: map[string]string{"a": "1", "b": "x"}},
		{ID: 3, State: "select", Count: 1, Labels: map[string]string{"a": "1", "b": "2"}},
		{ID: 4, State: "select", Count: 1}, {ID: 5, State: "select", Count: 1}, {ID: 6, State: "select", Count: 1},
	}}
	groups = GroupGoroutines(d)
	if len(groups) != 1 || groups[0].Count != 6 || len(groups[0].IDs) != groupIDs || groups[0].Labels != nil {
		t.Errorf("groups %+v", groups)
	}
	d.Goroutines = d.Goroutines[:3]
	if groups = GroupGoroutines(d); !maps.Equal(groups[0].Labels, map[string]string{"a": "1"}) {
		t.Errorf("common labels %v, want a=1", groups[0].Labels)
	}
	if GroupGoroutines(nil) != nil {
		t.Error("GroupGoroutines(nil) is not nil")
	}
}

// blocks returns n goroutine blocks in the runtime's format, with ids from
// id up.
func blocks(id, n int, header, stack string) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "goroutine %d [%s]:\n%s\n", id+i, header, stack)
	}
	return b.String()
}

func TestGoroutineFindings(t *testing.T) {
	const (
		worker  = "main.worker(0x1)\n\t/src/d/worker.go:42 +0x2c\ncreated by main.start in goroutine 1\n\t/src/d/main.go:30 +0x5f\n"
		poller  = "main.poll()\n\t/src/d/poll.go:7 +0x2c\n"
		locker  = "sync.(*Mutex).Lock(...)\n\tsync/mutex.go:46\nmain.onTimeout()\n\t/src/d/t.go:5 +0x1\ntime.goFunc({0x1, 0x2})\n\ttime/sleep.go:215 +0x2d\n"
		timer   = "main.wait()\n\t/src/d/w.go:5 +0x1\ntime.(*Timer).hypothetical(0x1)\n\ttime/sleep.go:1 +0x1\n"
		server  = "internal/poll.runtime_pollWait(0x1, 0x72)\n\truntime/netpoll.go:351 +0x85\nnet/http.(*conn).serve(0x1)\n\tnet/http/server.go:2100 +0x5\n"
		fanout  = "main.fanout.func1()\n\t/src/d/fan.go:12 +0x1\n"
		leaked  = "main.lost()\n\t/src/d/lost.go:3 +0x1\n"
		mainFn  = "main.main()\n\t/src/d/main.go:50 +0x1d\n"
		mainHdr = "chan receive, 600 minutes"
	)
	text := blocks(1, 1, mainHdr, mainFn) +
		blocks(10, 3, "chan receive, 15 minutes", worker) +
		blocks(20, 2, "select, 5 minutes", poller) +
		blocks(30, 1, "sync.Mutex.Lock, 20 minutes", locker) +
		blocks(40, 1, "chan receive, 20 minutes", timer) +
		blocks(100, 150, "IO wait, 30 minutes", server) +
		blocks(300, 120, `chan send labels:{"job": "fan"}`, fanout) +
		blocks(500, 1, "chan receive (leaked)", leaked)
	d, err := ParseGoroutineText([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	type want struct {
		subject  string
		sev      Severity
		count    int
		maxWait  float64
		owner    string
		stackTop string
		basis    string
	}
	check := func(t *testing.T, fs []Finding, wants []want) {
		t.Helper()
		if len(fs) != len(wants) {
			for _, f := range fs {
				t.Logf("%s %s (%d)", f.Severity, f.Subject, f.Count)
			}
			t.Fatalf("%d findings, want %d", len(fs), len(wants))
		}
		for i, w := range wants {
			f := fs[i]
			if f.Kind != KindGoroutine || f.Subject != w.subject || f.Severity != w.sev || f.Count != w.count ||
				f.Evidence.Values["max_wait_seconds"] != w.maxWait ||
				f.Owner != w.owner || len(f.Evidence.Stack) == 0 || f.Evidence.Stack[0].Func != w.stackTop ||
				f.Suggestion == "" || f.Signature != groupKey(stateOf(d, w.stackTop), w.sev == SeverityError, f.Evidence.Stack) ||
				!slices.Equal(f.Evidence.Basis, []string{w.basis}) || f.Evidence.Because == "" {
				t.Errorf("finding %d:\n got %+v\nwant %+v", i, f, w)
			}
		}
	}
	t.Run("defaults", func(t *testing.T) {
		check(t, GoroutineFindings(d, GoroutineOptions{}), []want{
			{"leaked goroutines blocked in chan receive at main.lost (lost.go:3)", SeverityError, 1, 0, "", "main.lost", BasisRuntime},
			{"goroutines blocked in chan receive at main.worker (worker.go:42)", SeverityWarning, 3, 900, "created by main.start (main.go:30)", "main.worker", BasisBlocked},
			// An AfterFunc callback waits like any goroutine once it runs.
			{"goroutines blocked in sync.Mutex.Lock at main.onTimeout (t.go:5)", SeverityWarning, 1, 1200, "", "sync.(*Mutex).Lock", BasisBlocked},
			// Size alone is a suspect, at info.
			{"goroutines in IO wait at net/http.(*conn).serve (server.go:2100)", SeverityInfo, 150, 1800, "", "internal/poll.runtime_pollWait", BasisShape},
			{"goroutines blocked in chan send at main.fanout.func1 (fan.go:12)", SeverityInfo, 120, 0, `{job="fan"}`, "main.fanout.func1", BasisShape},
		})
	})
	t.Run("tuned", func(t *testing.T) {
		check(t, GoroutineFindings(d, GoroutineOptions{BlockedFor: time.Minute, LargeGroup: -1}), []want{
			{"leaked goroutines blocked in chan receive at main.lost (lost.go:3)", SeverityError, 1, 0, "", "main.lost", BasisRuntime},
			{"goroutines blocked in chan receive at main.worker (worker.go:42)", SeverityWarning, 3, 900, "created by main.start (main.go:30)", "main.worker", BasisBlocked},
			{"goroutines blocked in select at main.poll (poll.go:7)", SeverityWarning, 2, 300, "", "main.poll", BasisBlocked},
			{"goroutines blocked in sync.Mutex.Lock at main.onTimeout (t.go:5)", SeverityWarning, 1, 1200, "", "sync.(*Mutex).Lock", BasisBlocked},
		})
	})
	t.Run("off", func(t *testing.T) {
		check(t, GoroutineFindings(d, GoroutineOptions{BlockedFor: -1, LargeGroup: -1}), []want{
			{"leaked goroutines blocked in chan receive at main.lost (lost.go:3)", SeverityError, 1, 0, "", "main.lost", BasisRuntime},
		})
	})

	// The same leaks in a later dump, with longer waits, have the same
	// signatures, so Group merges them.
	later, err := ParseGoroutineText([]byte(strings.NewReplacer("15 minutes", "25 minutes", "20 minutes", "40 minutes").Replace(text)))
	if err != nil {
		t.Fatal(err)
	}
	a, b := GoroutineFindings(d, GoroutineOptions{}), GoroutineFindings(later, GoroutineOptions{})
	merged := Group(append(a, b...))
	if len(merged) != len(a) {
		t.Fatalf("%d findings from two dumps merge into %d, want %d", len(a)+len(b), len(merged), len(a))
	}
	for _, f := range merged {
		if strings.Contains(f.Subject, "more)") {
			t.Errorf("merged subject %q", f.Subject)
		}
	}
	if GoroutineFindings(nil, GoroutineOptions{}) != nil {
		t.Error("findings for no dump")
	}
}

// stateOf returns the state of the first goroutine whose stack begins with
// function fn.
func stateOf(d *GoroutineDump, fn string) string {
	for _, g := range d.Goroutines {
		if len(g.Stack) > 0 && g.Stack[0].Func == fn {
			return g.State
		}
	}
	return ""
}

func TestGoroutineSeriesSynthetic(t *testing.T) {
	t0 := time.Date(2025, 3, 14, 15, 0, 0, 0, time.UTC)
	stack := func(fn string) []Frame { return []Frame{{Func: fn, File: "/src/d/x.go", Line: 1}} }
	var dumps []*GoroutineDump
	for i := range 20 {
		d := &GoroutineDump{Time: t0.Add(time.Duration(i) * time.Minute), Goroutines: []Goroutine{
			{State: "select", Count: 10, Stack: stack("main.steady")},
			{State: "select", Count: 10 + i%2, Stack: stack("main.sawtooth")},
		}}
		if i >= 2 {
			d.Goroutines = append(d.Goroutines, Goroutine{State: "chan send", Count: 3 * i, Stack: stack("main.leaky")})
		}
		for _, g := range d.Goroutines {
			d.Total += g.Count
		}
		dumps = append(dumps, d)
	}
	series, fs := GoroutineSeries(dumps, TrendOptions{})
	if len(series) != 4 {
		t.Fatalf("%d series, want 4", len(series))
	}
	names := []string{series[0].Name, series[1].Name, series[2].Name, series[3].Name}
	if !slices.Equal(names, []string{"goroutines", "goroutines in chan send at main.leaky", "goroutines in select at main.sawtooth", "goroutines in select at main.steady"}) {
		t.Errorf("series %q", names)
	}
	if p := series[1].Points; p[0].Value != 0 || p[1].Value != 0 || p[2].Value != 6 || !p[0].Time.Equal(t0) {
		t.Errorf("main.leaky points start %v, want zeros before it appears", p[:3])
	}
	if len(fs) != 1 || fs[0].Subject != "growing goroutines in chan send at main.leaky (x.go:1)" || fs[0].Count != 57 ||
		fs[0].Evidence.Series != series[1].Name || fs[0].Evidence.Trend == nil {
		t.Errorf("findings %+v", fs)
	}

	// Growth spread over many stacks shows in the total only.
	var spread []*GoroutineDump
	for i := range 20 {
		d := &GoroutineDump{Time: t0.Add(time.Duration(i) * time.Minute), Total: 1 + i}
		for j := range i + 1 {
			d.Goroutines = append(d.Goroutines, Goroutine{State: "select", Count: 1, Stack: stack(fmt.Sprintf("main.f%d", j))})
		}
		spread = append(spread, d)
	}
	if _, fs := GoroutineSeries(spread, TrendOptions{}); len(fs) != 1 || fs[0].Subject != "goroutines" || fs[0].Count != 20 {
		t.Errorf("spread growth: findings %+v", fs)
	}
	if series, fs := GoroutineSeries(nil, TrendOptions{}); len(series) != 1 || len(fs) != 0 {
		t.Errorf("no dumps: series %+v, findings %+v", series, fs)
	}
}

// formatDump writes d as a debug=2 dump, as the runtime would.
func formatDump(w io.Writer, d *GoroutineDump) {
	for _, g := range d.Goroutines {
		fmt.Fprintf(w, "goroutine %d [%s", g.ID, g.State)
		if g.Leaked {
			io.WriteString(w, " (leaked)")
		}
		if g.Wait > 0 {
			fmt.Fprintf(w, ", %d minutes", g.Wait/time.Minute)
		}
		if g.Locked {
			io.WriteString(w, ", locked to thread")
		}
		if len(g.Labels) > 0 {
			var kv []string
			for _, k := range slices.Sorted(maps.Keys(g.Labels)) {
				kv = append(kv, strconv.Quote(k)+": "+strconv.Quote(g.Labels[k]))
			}
			fmt.Fprintf(w, " labels:{%s}", strings.Join(kv, ", "))
		}
		io.WriteString(w, "]:\n")
		for i, f := range g.Stack {
			fmt.Fprintf(w, "%s(...)\n\t%s:%d +0x1d\n", f.Func, f.File, f.Line)
			if i == 0 && g.Elided > 0 {
				fmt.Fprintf(w, "...%d frames elided...\n", g.Elided)
			}
		}
		if len(g.Stack) == 0 && g.Elided > 0 {
			fmt.Fprintf(w, "...%d frames elided...\n", g.Elided)
		}
		if f := g.CreatedBy; f.Func != "" {
			fmt.Fprintf(w, "created by %s in goroutine %d\n\t%s:%d +0x5f\n", f.Func, g.CreatorID, f.File, f.Line)
		}
		io.WriteString(w, "\n")
	}
}

func TestFormatDumpRoundTrip(t *testing.T) {
	for _, c := range corpusFiles {
		if c.form != "debug=2" && c.form != "crash" && c.form != "leak-debug=2" {
			continue
		}
		d := parseFile(t, filepath.Join(corpusDir, c.file))
		var b bytes.Buffer
		formatDump(&b, d)
		again, err := ParseGoroutineText(b.Bytes())
		if err != nil {
			t.Fatalf("%s: formatted again: %v", c.file, err)
		}
		checkProgramDump(t, strings.Replace(c.form, "crash", "debug=2", 1), again)
	}
}

func BenchmarkParseGoroutineText(b *testing.B) {
	// A dump of 10,000 goroutines: the corpus's debug=2 dump many times over.
	one, err := os.ReadFile(filepath.Join(corpusDir, "debug2.txt"))
	if err != nil {
		b.Fatal(err)
	}
	data := bytes.Repeat(append(one, '\n'), 10000/bytes.Count(one, []byte("\ngoroutine "))+1)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseGoroutineText(data); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkGroupGoroutines(b *testing.B) {
	one, err := os.ReadFile(filepath.Join(corpusDir, "debug2.txt"))
	if err != nil {
		b.Fatal(err)
	}
	d, err := ParseGoroutineText(bytes.Repeat(append(one, '\n'), 400))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		GroupGoroutines(d)
	}
}
