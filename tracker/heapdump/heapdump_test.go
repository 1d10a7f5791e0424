package heapdump

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// program builds testdata/programs/heapdump once per test binary.
var program = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "heapdump-test")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "heapdump")
	out, err := exec.Command("go", "build", "-trimpath", "-o", bin, "../../testdata/programs/heapdump").CombinedOutput()
	if err != nil {
		return "", &buildError{out: out, err: err}
	}
	return bin, nil
})

type buildError struct {
	out []byte
	err error
}

func (e *buildError) Error() string { return e.err.Error() + ": " + string(e.out) }

// dumpOf runs the test program's scenario and returns its dump's bytes and
// the program's path.
func dumpOf(t testing.TB, scenario string, args ...string) ([]byte, string) {
	t.Helper()
	bin, err := program()
	if err != nil {
		t.Fatalf("building the test program: %v", err)
	}
	out := filepath.Join(t.TempDir(), scenario+".dump")
	cmd := exec.Command(bin, append([]string{"-scenario", scenario, "-out", out}, args...)...)
	if msg, err := cmd.CombinedOutput(); err != nil || !bytes.Contains(msg, []byte("dumped")) {
		t.Fatalf("%s -scenario %s: %v: %s", bin, scenario, err, msg)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return data, bin
}

func analyse(t testing.TB, data []byte, bin string) *Graph {
	t.Helper()
	d, err := Read(bytes.NewReader(data), Limits{})
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	var syms *Symbols
	if bin != "" {
		if syms, err = ReadSymbols(bin); err != nil {
			t.Fatalf("ReadSymbols: %v", err)
		}
	}
	return Analyze(d, syms)
}

// TestPaths runs each scenario of the test program and asserts the path
// from a root to the objects of the site that leaks.
func TestPaths(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs a program")
	}
	tests := []struct {
		scenario string
		site     string
		// steps the path must contain, in order: the root first, the
		// leaked object's site last.
		steps       []string
		count       int    // objects of the site held that way, at least
		rootVar     string // the root group that retains the most of it
		minRetained uint64 // by that root
	}{
		{"cache", "main.newBuffer", []string{"main.sessions (global, map[string]*main.Session)", "map storage", "object (alloc at main.newSession main.go:", "slice (alloc at main.newBuffer main.go:"}, 100, "main.sessions", 100 * 64 << 10},
		{"closure", "main.newPayload", []string{"main.callbacks (global, []func() int)", "slice (alloc at main.register main.go:", "object (alloc at main.register main.go:", "object (alloc at main.newPayload main.go:"}, 1, "main.callbacks", 4096},
		{"stack", "main.newBuffer", []string{"main.holdBuffer (stack, buf)", "slice (alloc at main.newBuffer main.go:"}, 1, "main.holdBuffer", 1 << 20},
		{"finalizer", "main.newBuffer", []string{"finalizer of object (alloc at main.newSession main.go:", "slice (alloc at main.newBuffer main.go:"}, 1, "", 0},
		{"cycle", "main.newBuffer", []string{"main.registry (global, *main.Session)", "object (alloc at main.newSession main.go:", "slice (alloc at main.newBuffer main.go:"}, 1, "main.registry", 2 * 64 << 10},
	}
	for _, tt := range tests {
		t.Run(tt.scenario, func(t *testing.T) {
			data, bin := dumpOf(t, tt.scenario)
			g := analyse(t, data, bin)
			if !g.Dump.AllSampled() {
				t.Errorf("the program sets MemProfileRate = 1, but only %d of %d objects have a site", g.Dump.Sampled, g.Dump.NumObjects())
			}
			groups := g.PathsTo(tt.site)
			if len(groups) == 0 {
				t.Fatalf("no path to %s", tt.site)
			}
			top := groups[0]
			t.Logf("%d × %s", top.Count, top.Example)
			if top.Count < tt.count {
				t.Errorf("%d objects held by the top shape, want at least %d", top.Count, tt.count)
			}
			rest := top.Example.String()
			for _, step := range tt.steps {
				i := strings.Index(rest, step)
				if i < 0 {
					t.Fatalf("path %q lacks %q (or has it out of order)", top.Example, step)
				}
				rest = rest[i+len(step):]
			}
			if !strings.HasPrefix(top.Example.String(), tt.steps[0]) && !strings.Contains(top.Example.Steps[0].Label, tt.steps[0]) {
				t.Errorf("path starts at %q, want %q", top.Example.Steps[0].Label, tt.steps[0])
			}
			if tt.rootVar == "" {
				return
			}
			var best *RootGroup
			for i := range g.Roots {
				if g.Roots[i].Var == tt.rootVar && (best == nil || g.Roots[i].Retained > best.Retained) {
					best = &g.Roots[i]
				}
			}
			if best == nil {
				t.Fatalf("no root %s", tt.rootVar)
			}
			if best.Retained < tt.minRetained {
				t.Errorf("%s retains %d bytes, want at least %d", best.Label, best.Retained, tt.minRetained)
			}
			if tt.scenario == "cache" {
				// The sessions fan out from the map's storage, not from
				// its header, nor from one session.
				var header int = -1
				for i := range g.Dump.NumObjects() {
					if g.HeldBy(i) >= 0 && g.Roots[g.HeldBy(i)].Var == "main.sessions" {
						header = i
					}
				}
				acc := g.Accumulation(header)
				if label := g.ObjectLabel(acc); !strings.HasPrefix(label, "map storage") || g.Retained(acc) < 100*64<<10 {
					t.Errorf("accumulation point %q retains %d bytes, want the map storage holding all 100 sessions", label, g.Retained(acc))
				}
			}
		})
	}
}

// TestGarbageCycle dumps two sessions that refer to each other and to
// nothing else, before any collection: they are in the dump, but
// unreachable, so they retain nothing and have no path.
func TestGarbageCycle(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs a program")
	}
	data, bin := dumpOf(t, "garbage")
	g := analyse(t, data, bin)
	d := g.Dump
	found := 0
	for i := range d.NumObjects() {
		s := d.Site(i)
		if s == nil || !s.Matches("main.newSession") {
			continue
		}
		found++
		if g.Reachable(i) || g.Retained(i) != 0 {
			t.Errorf("object %d of main.newSession is reachable or retains %d bytes", i, g.Retained(i))
		}
		if p, ok := g.PathTo(i); ok {
			t.Errorf("garbage has a path: %s", p)
		}
	}
	if found < 2 {
		t.Fatalf("found %d objects of main.newSession in the dump, want the cycle's two sessions (and their maps)", found)
	}
	for _, s := range g.BySite() {
		if strings.HasPrefix(s.Name, "main.newSession") || strings.HasPrefix(s.Name, "main.newBuffer") {
			t.Errorf("garbage listed as held: %+v", s)
		}
	}
	if groups := g.PathsTo("main.newSession"); len(groups) != 0 {
		t.Errorf("garbage has paths: %v", groups[0].Example)
	}
}

// TestNoBinary names globals by segment and address when there are no
// symbols, and still finds the path.
func TestNoBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs a program")
	}
	data, _ := dumpOf(t, "closure")
	g := analyse(t, data, "")
	groups := g.PathsTo("main.newPayload")
	if len(groups) == 0 {
		t.Fatal("no path to main.newPayload")
	}
	first := groups[0].Example.Steps[0].Label
	if !strings.HasSuffix(first, "(global)") || !(strings.HasPrefix(first, "data 0x") || strings.HasPrefix(first, "bss 0x")) {
		t.Errorf("root without symbols is %q, want \"bss 0x... (global)\"", first)
	}
	// A frame without DWARF is named by its function, without the local.
	data, _ = dumpOf(t, "stack")
	g = analyse(t, data, "")
	groups = g.PathsTo("main.newBuffer")
	if len(groups) == 0 {
		t.Fatal("no path to main.newBuffer")
	}
	if first := groups[0].Example.Steps[0].Label; !strings.HasSuffix(first, " main.holdBuffer (stack)") {
		t.Errorf("frame root without symbols is %q, want \"goroutine N main.holdBuffer (stack)\"", first)
	}
}

// TestDiff compares a dump of 20 sessions with one of 200 from the same
// binary: the session sites grew, held by main.sessions.
func TestDiff(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs a program")
	}
	a, bin := dumpOf(t, "cache", "-n", "20")
	b, _ := dumpOf(t, "cache", "-n", "200")
	grew := Diff(analyse(t, a, bin), analyse(t, b, bin))
	var buf *SiteGrowth
	for i := range grew {
		if strings.HasPrefix(grew[i].Name, "main.newBuffer") {
			buf = &grew[i]
		}
	}
	if buf == nil {
		t.Fatalf("main.newBuffer not among the grown sites: %+v", grew)
	}
	if buf.BaseObjects < 20 || buf.Objects < 200 || buf.Objects-buf.BaseObjects < 170 {
		t.Errorf("main.newBuffer went from %d to %d objects, want 20 to 200", buf.BaseObjects, buf.Objects)
	}
	if len(buf.Paths) == 0 || !strings.HasPrefix(buf.Paths[0].Shape, "main.sessions (global") || buf.Paths[0].Count < 200 {
		t.Errorf("growth held by %+v, want 200 objects held by main.sessions", buf.Paths)
	}
}

// TestInlinedSites: the dump names an inlined function's allocation after
// the function it was inlined into; with the binary, DWARF names it right.
func TestInlinedSites(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs a program")
	}
	data, bin := dumpOf(t, "inlined")
	with := analyse(t, data, bin)
	groups := with.PathsTo("main.newToken")
	if len(groups) == 0 {
		t.Fatal("with the binary, no object allocated at main.newToken")
	}
	if want := "main.token (global, *main.Payload) → object (alloc at main.newToken main.go:"; !strings.HasPrefix(groups[0].Example.String(), want) {
		t.Errorf("path %q, want it to start %q", groups[0].Example, want)
	}
	without := analyse(t, data, "")
	if groups := without.PathsTo("main.newToken"); len(groups) != 0 {
		t.Errorf("without the binary the inlined frame is named main.newToken: %s; has the compiler stopped inlining it, or the runtime started naming inlined frames?", groups[0].Example)
	}
}
