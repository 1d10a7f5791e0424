package leaktest

import (
	"fmt"
	"reflect"
	"runtime"
	"strings"
	"testing"
)

const sampleTraceback = `goroutine 1 [running]:
main.main()
	/tmp/exp/main.go:37 +0x4f5

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

func TestParseTraceback(t *testing.T) {
	gs := parseTraceback([]byte(sampleTraceback))
	want := []tgoroutine{
		{id: 1, state: "running", frames: []frame{{"main.main", "/tmp/exp/main.go", 37}}},
		{
			id: 7, state: "chan receive",
			frames: []frame{
				{"example.com/pkg.worker", "/src/pkg/worker.go", 14},
				{"example.com/pkg.(*Pool[...]).run", "/src/pkg/pool.go", 88},
			},
			creator: frame{"example.com/pkg.Start", "/src/pkg/worker.go", 9},
			parent:  1,
		},
		{
			id: 9, state: "select",
			labels: map[string]string{"leaktest": "TestX/sub [1]#3", "k": `a"b`},
			frames: []frame{
				{"runtime.gopark", "/usr/local/go/src/runtime/proc.go", 462},
				{"example.com/pkg.recurse", "/src/pkg/r.go", 5},
				{"example.com/pkg.recurse", "/src/pkg/r.go", 5},
			},
			elided:  12,
			creator: frame{"example.com/pkg.Start.func1", "/src/pkg/worker.go", 20},
		},
		{id: 12, state: "running", creator: frame{"example.com/pkg.Old", "C:/src/pkg/old.go", 3}},
	}
	if !reflect.DeepEqual(gs, want) {
		t.Errorf("parseTraceback:\n got %+v\nwant %+v", gs, want)
	}
}

func TestParseTracebackOfRuntime(t *testing.T) {
	stop := make(chan struct{})
	defer close(stop)
	started := make(chan struct{})
	go func() {
		close(started)
		parkUntil(stop)
	}()
	<-started
	self := currentGoroutineID()
	if self == 0 {
		t.Fatal("currentGoroutineID = 0")
	}
	cur, ok := currentGoroutine()
	if !ok || cur.id != self || cur.state != "running" || cur.parent == 0 {
		t.Errorf("currentGoroutine = %+v, %v; want id %d, running, with a parent", cur, ok, self)
	}
	found := false
	for range 100 {
		for _, g := range parseTraceback(allGoroutinesText()) {
			if len(g.frames) > 0 && strings.HasSuffix(g.frames[0].Func, ".parkUntil") {
				found = g.parent == self && g.state == "chan receive" &&
					strings.HasSuffix(g.creator.Func, ".TestParseTracebackOfRuntime")
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

// parkUntil blocks until stop is closed: the leak of this package's tests.
func parkUntil(stop chan struct{}) { <-stop }

func TestFuncName(t *testing.T) {
	for in, want := range map[string]string{
		"main.main()":                   "main.main",
		"pkg.(*T).M(0xc0, {0x1, 0x2})":  "pkg.(*T).M",
		"pkg.F[...](...)":               "pkg.F[...]",
		"panic({0x4a, 0x5})":            "panic",
		"pkg.noargs":                    "pkg.noargs",
		"(":                             "(",
		"()":                            "()",
		"pkg.f(unbalanced))":            "pkg.f(unbalanced))",
		"example.com/a.b.func1.2(0x10)": "example.com/a.b.func1.2",
	} {
		if got := funcName(in); got != want {
			t.Errorf("funcName(%q) = %q, want %q", in, got, want)
		}
	}
}

// render prints goroutines in the runtime's form.
func render(gs []tgoroutine) string {
	var b strings.Builder
	for i, g := range gs {
		if i > 0 {
			b.WriteString("\n")
		}
		fmt.Fprintf(&b, "goroutine %d [%s", g.id, g.state)
		if len(g.labels) > 0 {
			b.WriteString(" labels:{")
			first := true
			for k, v := range g.labels {
				if !first {
					b.WriteString(", ")
				}
				first = false
				fmt.Fprintf(&b, "%q: %q", k, v)
			}
			b.WriteString("}")
		}
		b.WriteString("]:\n")
		for _, f := range g.frames {
			fmt.Fprintf(&b, "%s(0x1, ...)\n\t%s:%d +0x1f\n", f.Func, f.File, f.Line)
		}
		if g.elided > 0 {
			fmt.Fprintf(&b, "...%d frames elided...\n", g.elided)
		}
		if g.creator.Func != "" {
			fmt.Fprintf(&b, "created by %s in goroutine %d\n\t%s:%d +0x56\n", g.creator.Func, g.parent, g.creator.File, g.creator.Line)
		}
	}
	return b.String()
}

// FuzzParseTraceback feeds the parser arbitrary text: it must not panic, and
// whatever it returns must be well formed.
func FuzzParseTraceback(f *testing.F) {
	f.Add(sampleTraceback)
	f.Add(string(allGoroutinesText()))
	f.Add("goroutine 1 [")
	f.Add("goroutine 18446744073709551616 [x]:\n")
	f.Add("goroutine 3 [a labels:{\"k\": \"v\\\"]:\nf(\n\t:\ncreated by  in goroutine x\n...-4 frames elided...\n")
	f.Fuzz(func(t *testing.T, s string) {
		gs := parseTraceback([]byte(s))
		if n := strings.Count(s, "goroutine "); len(gs) > n {
			t.Fatalf("%d goroutines from %d headers", len(gs), n)
		}
		for _, g := range gs {
			if g.elided < -1 {
				t.Fatalf("elided = %d", g.elided)
			}
		}
	})
}

// FuzzTracebackRoundTrip renders a goroutine in the runtime's form and parses
// it back.
func FuzzTracebackRoundTrip(f *testing.F) {
	f.Add(uint64(7), "chan receive", "TestX/sub [1]#3", "example.com/pkg.(*T[...]).run", "/src/x.go", 14, 0, "example.com/pkg.Start.func1", uint64(1))
	f.Add(uint64(1), "select", "", "main.main", "C:/a b/x.go", 1, 3, "", uint64(0))
	f.Fuzz(func(t *testing.T, id uint64, state, label, fn, file string, line, elided int, creator string, parent uint64) {
		// A function name: no blanks, parentheses only in "(*T)" form.
		clean := func(s string) bool {
			rest := strings.ReplaceAll(s, "(*", "")
			rest = strings.ReplaceAll(rest, ").", "")
			return s != "" && !strings.ContainsAny(rest, "\n\r\t ()\"\\")
		}
		validFile := file != "" && !strings.ContainsAny(file, "\n\r\t") && !strings.Contains(file, " +0x") &&
			strings.TrimSpace(file) == file
		if !clean(fn) || !validFile || (creator != "" && !clean(creator)) ||
			strings.HasPrefix(fn, "goroutine") || strings.HasPrefix(fn, "created") || strings.HasPrefix(fn, "...") ||
			strings.ContainsAny(state, "\n\r,[]") || strings.Contains(state, "labels:{") || strings.TrimSpace(state) != state ||
			strings.ContainsAny(label, "\n\r") || line < 1 || elided < 0 {
			t.Skip()
		}
		g := tgoroutine{id: id, state: state, frames: []frame{{fn, file, line}}, elided: elided}
		if label != "" {
			g.labels = map[string]string{labelKey: label}
		}
		if creator != "" {
			g.creator, g.parent = frame{creator, file, line}, parent
		}
		text := render([]tgoroutine{g})
		got := parseTraceback([]byte(text))
		if len(got) != 1 || !reflect.DeepEqual(got[0], g) {
			t.Fatalf("round trip of\n%s\ngot  %+v\nwant %+v", text, got, g)
		}
	})
}
