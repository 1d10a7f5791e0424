package stack

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// headerForms holds one header of each form goroutineheader in the runtime
// prints, with what it says.
var headerForms = []struct {
	line string
	want Goroutine
}{
	{"goroutine 1 [running]:", Goroutine{ID: 1, State: "running"}},
	{"goroutine 7 [chan receive, 12 minutes]:", Goroutine{ID: 7, State: "chan receive", Wait: 12 * time.Minute}},
	{"goroutine 8 [select (leaked)]:", Goroutine{ID: 8, State: "select", Leaked: true}},
	{"goroutine 9 [chan send (leaked) (scan), 3 minutes]:", Goroutine{ID: 9, State: "chan send", Leaked: true, Wait: 3 * time.Minute}},
	{"goroutine 10 [sync.Cond.Wait (scan)]:", Goroutine{ID: 10, State: "sync.Cond.Wait"}},
	{"goroutine 11 [chan receive (durable), synctest bubble 4]:", Goroutine{ID: 11, State: "chan receive (durable)", Bubble: 4}},
	{"goroutine 12 [sleep (durable), 2 minutes, locked to thread, synctest bubble 5]:", Goroutine{ID: 12, State: "sleep (durable)", Wait: 2 * time.Minute, Locked: true, Bubble: 5}},
	{"goroutine 13 [select (leaked) (scan) (durable)]:", Goroutine{ID: 13, State: "select (durable)", Leaked: true}},
	{"goroutine 14 [IO wait, locked to thread]:", Goroutine{ID: 14, State: "IO wait", Locked: true}},
	{`goroutine 15 [select, 1 minutes labels:{"k": "v", "a\"b": "c\\d\u00e9"}]:`, Goroutine{ID: 15, State: "select", Wait: time.Minute, Labels: map[string]string{"k": "v", `a"b`: `c\dé`}}},
	{"goroutine 16 gp=0xc000002380 m=0 mp=0x620860 [running]:", Goroutine{ID: 16, State: "running"}},
	{"goroutine 17 gp=0xc000003340 m=nil [GC worker (idle)]:", Goroutine{ID: 17, State: "GC worker (idle)"}},
	{"goroutine 18 [semacquire, 5 minutes, some note a later release adds]:", Goroutine{ID: 18, State: "semacquire", Wait: 5 * time.Minute}},
}

func TestParseHeader(t *testing.T) {
	for _, c := range headerForms {
		g, ok, err := ParseHeader([]byte(c.line))
		if !ok || err != nil {
			t.Errorf("ParseHeader(%q): header %v, error %v", c.line, ok, err)
			continue
		}
		c.want.Count = 1
		if !reflect.DeepEqual(g, c.want) {
			t.Errorf("ParseHeader(%q)\n got %+v\nwant %+v", c.line, g, c.want)
		}
	}
	for _, line := range []string{"goroutine", "goroutine x [running]:", "my goroutine 1 [running]:", "goroutine 1 is running", "goroutine 1 [running]"} {
		if _, ok, _ := ParseHeader([]byte(line)); ok {
			t.Errorf("ParseHeader(%q) took it for a header", line)
		}
	}
}

// sampleTraceback has every kind of line a block may hold.
const sampleTraceback = `goroutine 1 [running]:
main.main()
	/src/exp/main.go:37 +0x4f5

goroutine 7 [chan receive, 3 minutes]:
example.com/pkg.worker(0xc000012345, {0x4f, 0x5})
	/src/pkg/worker.go:14 +0x25
example.com/pkg.(*Pool[...]).run(...)
	/src/pkg/pool.go:88
created by example.com/pkg.Start in goroutine 1
	/src/pkg/worker.go:9 +0x56

goroutine 9 gp=0xc000003340 m=nil [select, locked to thread labels:{"leaktest": "TestX/sub [1]#3", "k": "a\"b"}]:
runtime.gopark(0x0?, 0x0?, 0x0?, 0x0?, 0x0?)
	/usr/local/go/src/runtime/proc.go:462 +0xce fp=0xc000054f38 sp=0xc000054f18 pc=0x4731ee
example.com/pkg.recurse(0x3)
	/src/pkg/r.go:5 +0x1d
...12 frames elided...
example.com/pkg.recurse(0x0)
	/src/pkg/r.go:5 +0x1d
created by example.com/pkg.Start.func1
	/src/pkg/worker.go:20 +0x56

goroutine 12 [running]:
	goroutine running on other thread; stack unavailable
created by example.com/pkg.Old
	C:/src/pkg/old.go:3 +0x1
`

var sampleWant = []Goroutine{
	{ID: 1, State: "running", Count: 1, Stack: []Frame{{Func: "main.main", File: "/src/exp/main.go", Line: 37}}},
	{
		ID: 7, State: "chan receive", Wait: 3 * time.Minute, Count: 1,
		Stack: []Frame{
			{Func: "example.com/pkg.worker", File: "/src/pkg/worker.go", Line: 14},
			{Func: "example.com/pkg.(*Pool[...]).run", File: "/src/pkg/pool.go", Line: 88},
		},
		CreatedBy: Frame{Func: "example.com/pkg.Start", File: "/src/pkg/worker.go", Line: 9},
		CreatorID: 1,
	},
	{
		ID: 9, State: "select", Locked: true, Count: 1,
		Labels: map[string]string{"leaktest": "TestX/sub [1]#3", "k": `a"b`},
		Stack: []Frame{
			{Func: "runtime.gopark", File: "/usr/local/go/src/runtime/proc.go", Line: 462},
			{Func: "example.com/pkg.recurse", File: "/src/pkg/r.go", Line: 5},
			{Func: "example.com/pkg.recurse", File: "/src/pkg/r.go", Line: 5},
		},
		Elided:    12,
		CreatedBy: Frame{Func: "example.com/pkg.Start.func1", File: "/src/pkg/worker.go", Line: 20},
	},
	{ID: 12, State: "running", Count: 1, CreatedBy: Frame{Func: "example.com/pkg.Old", File: "C:/src/pkg/old.go", Line: 3}},
}

func TestParse(t *testing.T) {
	for _, c := range []struct {
		name, text string
		form       string
		want       []Goroutine
	}{
		{"debug=2", sampleTraceback, "debug=2", sampleWant},
		{"text before and exit status after", "starting\nlistening on 127.0.0.1:8080\npanic: boom\n\n" +
			strings.TrimSuffix(sampleTraceback, "\n") + "\nexit status 2\n", "crash", sampleWant},
		{"exit status right after a frame", "panic: boom\n\ngoroutine 1 [running]:\nmain.main()\n\t/src/exp/main.go:37 +0x4f5\nexit status 2\n",
			"crash", sampleWant[:1]},
		{"windows line endings", strings.ReplaceAll(sampleTraceback, "\n", "\r\n"), "debug=2", sampleWant},
		{"ancestors and g0", "goroutine 0 gp=0x61faa0 m=0 mp=0x620860 [idle]:\nruntime.futex(0x6209b8)\n\truntime/sys_linux_amd64.s:569 +0x21 fp=0x7ffc sp=0x7ffc pc=0x488b41\n\n" +
			"goroutine 5 [select]:\nmain.f()\n\t/a/f.go:3 +0x1a\ncreated by main.h in goroutine 4\n\t/a/f.go:12 +0x2b\n[originating from goroutine 4]:\nmain.h(...)\n\t/a/f.go:12 +0x2b\n...additional frames elided...\n",
			"debug=2", []Goroutine{{ID: 5, State: "select", Count: 1, Stack: []Frame{{Func: "main.f", File: "/a/f.go", Line: 3}},
				CreatedBy: Frame{Func: "main.h", File: "/a/f.go", Line: 12}, CreatorID: 4}}},
		{"debug=1", "goroutineleak profile: total 4\n" +
			"3 @ 0x48052e 0x4f0225\n# labels: {\"a\":\"b\\n\", \"c\":\"\"}\n#\t0x483ce4\ttime.Sleep+0x164\t\t/go/src/runtime/time.go:363\n#\t0x4f0224\tmain.write+0x144\t/src/main.go:137\n\n" +
			"1 @ 0x4f0225\n#\t0x4f0224\n", "debug=1", []Goroutine{
			{Count: 3, Leaked: true, Labels: map[string]string{"a": "b\n", "c": ""}, Stack: []Frame{
				{Func: "time.Sleep", File: "/go/src/runtime/time.go", Line: 363}, {Func: "main.write", File: "/src/main.go", Line: 137}}},
			{Count: 1, Leaked: true, Stack: []Frame{{Func: "0x4f0224"}}},
		}},
	} {
		for _, mode := range []Mode{Strict, Lenient} {
			t.Run(fmt.Sprintf("%s/mode%d", c.name, mode), func(t *testing.T) {
				d, err := Parse([]byte(c.text), mode)
				if err != nil {
					t.Fatal(err)
				}
				if d.Form != c.form {
					t.Errorf("Form = %q, want %q", d.Form, c.form)
				}
				if !reflect.DeepEqual(d.Goroutines, c.want) {
					t.Errorf("goroutines\n got %+v\nwant %+v", d.Goroutines, c.want)
				}
				total := 0
				for _, g := range c.want {
					total += g.Count
				}
				if d.Total != total {
					t.Errorf("Total = %d, want %d", d.Total, total)
				}
			})
		}
	}
}

// TestParseMalformed: what Strict refuses, Lenient reads as far as it can.
func TestParseMalformed(t *testing.T) {
	for _, c := range []struct {
		name, text string
		strict     string // the error Strict gives
		lenient    int    // goroutines Lenient finds
	}{
		{"truncated after a call", "goroutine 1 [running]:\nmain.main()", "dump ends after the call line of main.main", 1},
		{"file line first", "goroutine 1 [running]:\n\tmain.go:1\n", "want a function call", 1},
		{"not a call", "goroutine 1 [running]:\nmain.main\n\tmain.go:1\n", `want a function call such as "main.f(...)", got "main.main"`, 1},
		{"no line number", "goroutine 1 [running]:\nmain.main()\n\tmain.go +0x1\n", "want file:line", 1},
		{"bad header then a good one", "goroutine 1 [select, x minutes]:\nmain.f()\n\tf.go:1\n\ngoroutine 2 [select]:\nmain.f()\n\tf.go:1\n", "want a number of minutes", 1},
		{"bad labels", "goroutine 1 [select labels:{\"a\" \"b\"}]:\n", `want ":" after label key "a"`, 0},
		{"bad creator", "goroutine 2 [select]:\nmain.f()\n\tf.go:1\ncreated by main.g in goroutine x\n\tf.go:2\n", "want a goroutine id", 1},
		{"bad elision", "goroutine 2 [select]:\n...many frames elided...\n", "want a number of frames", 1},
		{"nothing", "hello\n", "no goroutines found", 0},
		{"other profile", "heap profile: 1: 2 [3: 4] @ heap/1048576\n", "not a goroutine profile", 0},
		{"debug=1 short", "goroutine profile: total 5\n3 @ 0x1\n#\t0x1\tmain.f+0x1\tf.go:1\n", "header says total 5", 1},
		{"debug=1 bad record", "goroutine profile: total 1\nthree @ 0x1\n1 @ 0x1\n#\tmain.f\n", "want a record", 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			if d, err := Parse([]byte(c.text), Strict); err == nil || !strings.Contains(err.Error(), c.strict) {
				t.Errorf("Strict: %v (parsed %+v), want an error containing %q", err, d, c.strict)
			}
			d, err := Parse([]byte(c.text), Lenient)
			if err != nil {
				t.Fatalf("Lenient: %v", err)
			}
			if len(d.Goroutines) != c.lenient {
				t.Errorf("Lenient found %d goroutines, want %d: %+v", len(d.Goroutines), c.lenient, d.Goroutines)
			}
		})
	}
}

func TestHiddenAndTrim(t *testing.T) {
	s := []Frame{
		{Func: "runtime.gopark"}, {Func: "runtime.chanrecv1"},
		{Func: "example.com/p.(*T).M-fm", File: "<autogenerated>"},
		{Func: "runtime.Goexit"}, {Func: "example.com/p.f"}, {Func: "main.main.gowrap1"},
		{Func: "main.gowrapper"}, {Func: "0x4f0224"}, {Func: "runtime.goexit"},
	}
	var got []string
	for _, f := range Trim(s) {
		got = append(got, f.Func)
	}
	want := []string{"runtime.Goexit", "example.com/p.f", "main.gowrapper", "0x4f0224"}
	if !slices.Equal(got, want) {
		t.Errorf("Trim = %q, want %q", got, want)
	}
	runtimeOnly := []Frame{{Func: "runtime.gopark"}, {Func: "runtime.bgsweep"}}
	if got := Trim(runtimeOnly); len(got) != 2 {
		t.Errorf("Trim of a stack all in the runtime = %v, want it whole", got)
	}
}

// parkUntil blocks until stop is closed.
func parkUntil(stop chan struct{}) { <-stop }

func TestParseOwnProcess(t *testing.T) {
	stop := make(chan struct{})
	defer close(stop)
	started := make(chan struct{})
	go func() {
		close(started)
		parkUntil(stop)
	}()
	<-started
	self := CurrentID()
	if self == 0 {
		t.Fatal("CurrentID = 0")
	}
	cur, err := Parse(Current(), Strict)
	if err != nil {
		t.Fatal(err)
	}
	if g := cur.Goroutines[0]; len(cur.Goroutines) != 1 || g.ID != self || g.State != "running" || g.CreatorID == 0 {
		t.Errorf("Current = %+v; want one goroutine, id %d, running, with a creator", cur.Goroutines, self)
	}
	found := false
	for range 100 {
		d, err := Parse(All(), Strict)
		if err != nil {
			t.Fatal(err)
		}
		for _, g := range d.Goroutines {
			if len(g.Stack) > 0 && strings.HasSuffix(g.Stack[0].Func, ".parkUntil") {
				found = g.CreatorID == self && g.State == "chan receive" &&
					strings.HasSuffix(g.CreatedBy.Func, ".TestParseOwnProcess")
			}
		}
		if found {
			break
		}
		runtime.Gosched()
	}
	if !found {
		t.Errorf("the parked goroutine is not in the traceback, with its state and creator")
	}
}

// TestAllSized takes tracebacks from buffers too small, about right and
// larger than needed: each is whole, and the calling goroutine comes first.
func TestAllSized(t *testing.T) {
	stop := make(chan struct{})
	defer close(stop)
	var started sync.WaitGroup
	for range 50 { // a traceback longer than 4 KiB
		started.Add(1)
		go func() {
			started.Done()
			parkUntil(stop)
		}()
	}
	started.Wait()
	self := CurrentID()
	for _, size := range []int{0, 1, 4 << 10, len(All()), 1 << 20} {
		d, err := Parse(AllSized(size), Strict)
		if err != nil {
			t.Fatalf("AllSized(%d): %v", size, err)
		}
		parked := 0
		for _, g := range d.Goroutines {
			if len(g.Stack) > 0 && strings.HasSuffix(g.Stack[0].Func, ".parkUntil") {
				parked++
			}
		}
		if len(d.Goroutines) == 0 || d.Goroutines[0].ID != self || parked < 50 {
			t.Errorf("AllSized(%d): %d goroutines, %d parked; want the caller (%d) first and 50 parked",
				size, len(d.Goroutines), parked, self)
		}
	}
}

// TestParseCrashOutput reads what a real program prints when it crashes:
// panics at every GOTRACEBACK level that prints all goroutines, a SIGQUIT
// dump, and the output of "go run", with the program's own line before and
// the go command's "exit status 2" after.
func TestParseCrashOutput(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs a program")
	}
	bin := filepath.Join(t.TempDir(), "crasher")
	if out, err := exec.Command("go", "build", "-o", bin, "./testdata/crasher").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	run := func(t *testing.T, cmd *exec.Cmd, quit bool) []byte {
		var out bytes.Buffer
		cmd.Stdout = &out
		if !quit {
			cmd.Stderr = &out
			cmd.Run() // it crashes: the exit status is not the point
			return out.Bytes()
		}
		stderr, err := cmd.StderrPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		r := bufio.NewReader(stderr)
		if line, err := r.ReadString('\n'); line != "ready\n" {
			t.Fatalf("read %q, %v; want ready", line, err)
		}
		cmd.Process.Signal(syscall.SIGQUIT)
		rest := new(bytes.Buffer)
		rest.ReadFrom(r)
		cmd.Wait()
		return append(out.Bytes(), rest.Bytes()...)
	}
	for _, c := range []struct {
		name   string
		cmd    func(context.Context) *exec.Cmd
		env    []string
		quit   bool
		labels bool
	}{
		{"panic all", func(ctx context.Context) *exec.Cmd { return exec.CommandContext(ctx, bin) }, []string{"GOTRACEBACK=all"}, false, false},
		{"panic system with labels", func(ctx context.Context) *exec.Cmd { return exec.CommandContext(ctx, bin) }, []string{"GOTRACEBACK=system", "GODEBUG=tracebacklabels=1"}, false, true},
		{"panic crash", func(ctx context.Context) *exec.Cmd { return exec.CommandContext(ctx, bin) }, []string{"GOTRACEBACK=crash"}, false, false},
		{"sigquit", func(ctx context.Context) *exec.Cmd { return exec.CommandContext(ctx, bin, "-wait") }, nil, true, false},
		{"go run", func(ctx context.Context) *exec.Cmd {
			return exec.CommandContext(ctx, "go", "run", "./testdata/crasher")
		}, []string{"GOTRACEBACK=all"}, false, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			// A hung child fails the test instead of stalling it.
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			cmd := c.cmd(ctx)
			cmd.WaitDelay = 5 * time.Second
			cmd.Env = append(os.Environ(), c.env...)
			out := run(t, cmd, c.quit)
			d, err := Parse(out, Strict)
			if err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			lenient, _ := Parse(out, Lenient)
			if !reflect.DeepEqual(d, lenient) {
				t.Errorf("Lenient read it otherwise:\n%+v\n%+v", d, lenient)
			}
			if d.Form != "crash" {
				t.Errorf("Form = %q, want crash", d.Form)
			}
			states := map[string]Goroutine{}
			for _, g := range d.Goroutines {
				if top := Trim(g.Stack); len(top) > 0 && strings.HasPrefix(top[0].Func, "main.") {
					states[top[0].Func] = g
				}
			}
			for fn, state := range map[string]string{"main.receiver": "chan receive", "main.labelled.func1": "select", "main.locked": "chan receive", "main.spawner": "chan receive"} {
				g, ok := states[fn]
				if !ok || g.State != state {
					t.Errorf("%s: %+v, want a goroutine in %s", fn, g, state)
				}
			}
			if g := states["main.locked"]; !g.Locked {
				t.Errorf("main.locked is not locked to its thread: %+v", g)
			}
			if g := states["main.labelled.func1"]; c.labels && g.Labels["tenant"] != `a "quoted" one` {
				t.Errorf("labels %q, want tenant", g.Labels)
			}
			if c.quit && !bytes.Contains(out, []byte("SIGQUIT: quit")) {
				t.Errorf("no SIGQUIT dump:\n%s", out)
			}
			if c.name == "go run" && !bytes.Contains(out, []byte("\nexit status 2")) {
				t.Errorf("go run printed no exit status:\n%s", out)
			}
		})
	}
}

// render prints goroutines in the runtime's form.
func render(gs []Goroutine) string {
	var b strings.Builder
	for i, g := range gs {
		if i > 0 {
			b.WriteString("\n")
		}
		fmt.Fprintf(&b, "goroutine %d [%s", g.ID, g.State)
		if g.Wait > 0 {
			fmt.Fprintf(&b, ", %d minutes", int64(g.Wait/time.Minute))
		}
		if len(g.Labels) > 0 {
			b.WriteString(" labels:{")
			first := true
			for k, v := range g.Labels {
				if !first {
					b.WriteString(", ")
				}
				first = false
				fmt.Fprintf(&b, "%q: %q", k, v)
			}
			b.WriteString("}")
		}
		b.WriteString("]:\n")
		for _, f := range g.Stack {
			fmt.Fprintf(&b, "%s(0x1, ...)\n\t%s:%d +0x1f\n", f.Func, f.File, f.Line)
		}
		if g.Elided > 0 {
			fmt.Fprintf(&b, "...%d frames elided...\n", g.Elided)
		}
		if g.CreatedBy.Func != "" {
			fmt.Fprintf(&b, "created by %s in goroutine %d\n\t%s:%d +0x56\n", g.CreatedBy.Func, g.CreatorID, g.CreatedBy.File, g.CreatedBy.Line)
		}
	}
	return b.String()
}

// FuzzParse feeds both modes arbitrary text: neither may panic, Lenient may
// not fail, and what Strict accepts Lenient reads the same way.
func FuzzParse(f *testing.F) {
	f.Add(sampleTraceback)
	f.Add("text\npanic: x\n\n" + sampleTraceback + "exit status 2\n")
	f.Add(string(All()))
	for _, c := range headerForms {
		f.Add(c.line + "\nmain.f()\n\tf.go:1\n")
	}
	f.Add("goroutine 1 [")
	f.Add("goroutine 18446744073709551616 [x]:\n")
	f.Add("goroutine 3 [a labels:{\"k\": \"v\\\"]:\nf(\n\t:\ncreated by  in goroutine x\n...-4 frames elided...\n")
	f.Add("goroutine profile: total 2\n2 @ 0x1 0x2\n# labels: {\"k\":\"v\"}\n#\t0x1\tmain.f+0x1\tf.go:1\n#\t0x2\n\n")
	f.Fuzz(func(t *testing.T, s string) {
		lenient, err := Parse([]byte(s), Lenient)
		if err != nil {
			t.Fatalf("Lenient failed: %v", err)
		}
		if n := strings.Count(s, "goroutine "); len(lenient.Goroutines) > n && lenient.Form != "debug=1" {
			t.Fatalf("%d goroutines from %d headers", len(lenient.Goroutines), n)
		}
		total := 0
		for _, g := range lenient.Goroutines {
			if g.Elided < 0 || g.Wait < 0 || g.Count < 1 {
				t.Fatalf("bad goroutine %+v", g)
			}
			total += g.Count
		}
		if total != lenient.Total {
			t.Fatalf("Total %d, counts sum to %d", lenient.Total, total)
		}
		strict, err := Parse([]byte(s), Strict)
		if err == nil && !reflect.DeepEqual(strict, lenient) {
			t.Fatalf("Strict and Lenient differ:\n%+v\n%+v", strict, lenient)
		}
	})
}

// FuzzRoundTrip renders a goroutine in the runtime's form and parses it back.
func FuzzRoundTrip(f *testing.F) {
	f.Add(int64(7), "chan receive", 3, "TestX/sub [1]#3", "example.com/pkg.(*T[...]).run", "/src/x.go", 14, 0, "example.com/pkg.Start.func1", int64(1))
	f.Add(int64(1), "select", 0, "", "main.main", "C:/a b/x.go", 1, 3, "", int64(0))
	f.Fuzz(func(t *testing.T, id int64, state string, wait int, label, fn, file string, line, elided int, creator string, parent int64) {
		// A function name: no blanks, parentheses only in "(*T)" form.
		clean := func(s string) bool {
			rest := strings.ReplaceAll(s, "(*", "")
			rest = strings.ReplaceAll(rest, ").", "")
			return s != "" && !strings.ContainsAny(rest, "\n\r\t ()\"\\")
		}
		validFile := file != "" && !strings.ContainsAny(file, "\n\r\t") && !strings.Contains(file, " +0x") &&
			strings.TrimSpace(file) == file
		if id < 1 || parent < 0 || wait < 0 || wait > 1<<20 || !clean(fn) || !validFile || (creator != "" && !clean(creator)) ||
			strings.HasPrefix(fn, "goroutine") || strings.HasPrefix(fn, "created") || strings.HasPrefix(fn, "...") ||
			strings.HasPrefix(fn, "[originating") || strings.HasPrefix(fn, "runtime: ") ||
			state == "" || strings.ContainsAny(state, "\n\r,[]") || strings.Contains(state, " labels:{") || strings.TrimSpace(state) != state ||
			strings.HasSuffix(state, " (leaked)") || strings.HasSuffix(state, " (scan)") || strings.HasSuffix(state, " (durable)") ||
			strings.ContainsAny(label, "\n\r") || line < 1 || elided < 0 {
			t.Skip()
		}
		g := Goroutine{ID: id, State: state, Wait: time.Duration(wait) * time.Minute, Count: 1,
			Stack: []Frame{{Func: fn, File: file, Line: line}}, Elided: elided}
		if label != "" {
			g.Labels = map[string]string{"leaktest": label}
		}
		if creator != "" {
			g.CreatedBy, g.CreatorID = Frame{Func: creator, File: file, Line: line}, parent
		}
		text := render([]Goroutine{g})
		for _, mode := range []Mode{Strict, Lenient} {
			d, err := Parse([]byte(text), mode)
			if err != nil || len(d.Goroutines) != 1 || !reflect.DeepEqual(d.Goroutines[0], g) {
				t.Fatalf("mode %d: round trip of\n%s\ngot  %+v, %v\nwant %+v", mode, text, d, err, g)
			}
		}
	})
}
