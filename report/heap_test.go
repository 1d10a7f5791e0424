package report

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/pprof/profile"
)

var updateProfiles = flag.Bool("update-profiles", false, "rebuild the profiles in testdata/heap from testdata/programs/heapgrow")

// buildHeapgrow builds testdata/programs/heapgrow into dir and returns the
// binary. With trimpath, file names in its profiles are module paths, not
// paths of the machine that built it.
func buildHeapgrow(t testing.TB, dir string, trimpath bool) string {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("no go command to build the test program with: %v", err)
	}
	bin := filepath.Join(dir, "heapgrow")
	args := []string{"build", "-o", bin}
	if trimpath {
		args = append(args, "-trimpath")
	}
	c := exec.Command(goTool, append(args, "./testdata/programs/heapgrow")...)
	c.Dir = ".." // the module root
	if out, err := c.CombinedOutput(); err != nil {
		t.Fatalf("go build heapgrow: %v\n%s", err, out)
	}
	return bin
}

// runHeapgrow runs the program with -out dir and args, and returns dir.
func runHeapgrow(t testing.TB, bin, dir string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := exec.CommandContext(ctx, bin, append([]string{"-out", dir}, args...)...)
	out, err := c.CombinedOutput()
	if err != nil || !bytes.Contains(out, []byte("written")) {
		t.Fatalf("heapgrow %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return dir
}

// readInputs reads the named files of dir with ReadInput.
func readInputs(t testing.TB, dir string, names ...string) []*Input {
	t.Helper()
	var ins []*Input
	for _, name := range names {
		in, err := ReadInput(context.Background(), filepath.Join(dir, name), InputOptions{})
		if err != nil {
			t.Fatal(err)
		}
		ins = append(ins, in)
	}
	return ins
}

// seq returns "prefix-01.ext" ... "prefix-NN.ext" for the numbers from..to.
func seq(prefix, ext string, from, to int) []string {
	var out []string
	for i := from; i <= to; i++ {
		out = append(out, fmt.Sprintf("%s-%02d%s", prefix, i, ext))
	}
	return out
}

// subjects returns the findings' subjects.
func subjects(fs []Finding) []string {
	var out []string
	for _, f := range fs {
		out = append(out, f.Subject)
	}
	return out
}

// TestAnalyzeRealProfiles runs the analyses on profiles that the test
// program writes as it leaks (or not): every site that the program makes
// grow must be found, named as the kind of growth it is, and nothing must be
// found in the steady program.
func TestAnalyzeRealProfiles(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs a program for several seconds")
	}
	bin := buildHeapgrow(t, t.TempDir(), false)
	// 16 profiles, not the trend test's minimum of 12: the test also asks the
	// recent half to grow, and 6 points of a real heap, where a growing map
	// frees its old table now and then, are too few to be sure of that.
	leaky := runHeapgrow(t, bin, t.TempDir(), "-mode", "leaky", "-profiles", "16", "-rounds", "100", "-tracker")
	steady := runHeapgrow(t, bin, t.TempDir(), "-mode", "steady", "-profiles", "12", "-rounds", "100", "-tracker")
	text := runHeapgrow(t, bin, t.TempDir(), "-mode", "leaky", "-profiles", "2", "-rounds", "100", "-text")
	// A steady twin that builds a 64 KiB table once, after its first
	// profile, and keeps it: about a fifth of its heap, a one-time
	// allocation and no leak.
	steadyInit := runHeapgrow(t, bin, t.TempDir(), "-mode", "steady", "-profiles", "12", "-rounds", "100", "-init", "65536")
	// Both again at Go's default sampling rate, one allocation recorded
	// in each 512 KiB: values move in steps of about 512 KiB.
	sampledLeaky := runHeapgrow(t, bin, t.TempDir(), "-mode", "leaky", "-profiles", "5", "-rounds", "4000", "-rate", "524288")
	sampledInit := runHeapgrow(t, bin, t.TempDir(), "-mode", "steady", "-profiles", "5", "-rounds", "1000", "-rate", "524288", "-init", "4194304")

	// What the leaky program grows, as findings name it.
	const (
		entries  = "heap grows at main.(*cache).put (main.go:58)"
		sessions = "heap grows at main.openSession (main.go:87)"
		set      = "map or slice grows at main.(*dedup).mark (main.go:65)"
		journal  = "map or slice grows at main.(*journal).add (main.go:76)"
		records  = "live client records grow at main.openSession (main.go:87)"
		table    = "heap grows at main.buildTable (main.go:271)"
	)
	tests := []struct {
		name  string
		dir   string
		files []string
		opts  HeapOptions
		want  []string // findings' subjects (or their ends), in any order
		notes string   // a substring of the notes
	}{
		{"series of a leak", leaky, seq("heap", ".pb.gz", 1, 16), HeapOptions{}, []string{entries, sessions, set, journal}, "16 profiles trend-tested"},
		{"series of a steady program", steady, seq("heap", ".pb.gz", 1, 12), HeapOptions{}, nil, "0 sites found growing"},
		{"base and target of a leak", leaky, []string{"heap-01.pb.gz", "heap-12.pb.gz"}, HeapOptions{}, []string{entries, sessions, set, journal},
			"(5% of the inuse_space in the last profile, "},
		{"base and target, lower threshold", leaky, []string{"heap-01.pb.gz", "heap-12.pb.gz"}, HeapOptions{MinGrowth: 100 << 10},
			[]string{entries, sessions, set, journal}, "growth findings from +100.0 KiB, as set"},
		{"base and target of a steady program", steady, []string{"heap-01.pb.gz", "heap-12.pb.gz"}, HeapOptions{}, nil, ""},
		// The small fast leak of issue 16: sites of 40 to 290 KiB that
		// grow in every step of five profiles, the smallest by 160 KiB.
		{"five profiles of a leak: too few for the trend test", leaky, seq("heap", ".pb.gz", 1, 5), HeapOptions{},
			[]string{entries, sessions, set, journal}, "5 profiles are too few for the trend test (it needs 12): by inuse_space, a site grows when it rose in at least 3 of its 4 steps"},
		{"three profiles of a leak", leaky, seq("heap", ".pb.gz", 1, 3), HeapOptions{}, []string{entries, sessions, set, journal}, "rose in at least 2 of its 2 steps"},
		{"three profiles of a steady program", steady, seq("heap", ".pb.gz", 1, 3), HeapOptions{}, nil, "0 sites found growing"},
		{"a table built once, in five profiles", steadyInit, seq("heap", ".pb.gz", 1, 5), HeapOptions{}, nil, "(1% of the inuse_space in the last profile, "},
		{"a table built once, in three profiles", steadyInit, seq("heap", ".pb.gz", 1, 3), HeapOptions{}, nil, "0 sites found growing"},
		{"a table built once, in twelve profiles", steadyInit, seq("heap", ".pb.gz", 1, 12), HeapOptions{}, nil, "12 profiles trend-tested"},
		// Two profiles cannot tell it from a leak: the notes say so.
		{"a table built once, between two profiles", steadyInit, []string{"heap-01.pb.gz", "heap-05.pb.gz"}, HeapOptions{}, []string{table},
			"two profiles cannot tell a leak from a one-time allocation"},
		{"a table built once, in five sampled profiles", sampledInit, seq("heap", ".pb.gz", 1, 5), HeapOptions{}, nil, "three standard deviations of the sampling noise"},
		{"by objects", leaky, []string{"heap-01.pb.gz", "heap-12.pb.gz"}, HeapOptions{SampleIndex: "inuse_objects", MinGrowth: 500},
			[]string{"heap inuse_objects grows at main.(*cache).put (main.go:58)", "heap inuse_objects grows at main.openSession (main.go:87)"}, "by inuse_objects"},
		{"legacy text", text, []string{"heap-01.txt", "heap-02.txt"}, HeapOptions{MinGrowth: 50 << 10}, []string{entries, set, journal}, ""},
		{"tracker profiles of a leak", leaky, seq("tracker", ".pb.gz", 1, 16), HeapOptions{}, []string{records}, "by records"},
		{"five tracker profiles of a leak", leaky, seq("tracker", ".pb.gz", 1, 5), HeapOptions{}, []string{records}, "1 sites found growing"},
		{"tracker profiles of a steady program", steady, seq("tracker", ".pb.gz", 1, 12), HeapOptions{}, nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := AnalyzeProfiles(readInputs(t, tt.dir, tt.files...), tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			got := subjects(a.Findings)
			for _, w := range tt.want {
				if !slices.ContainsFunc(got, func(s string) bool { return strings.HasSuffix(s, w) }) {
					t.Errorf("no finding %q; found %q", w, got)
				}
			}
			if tt.want == nil && len(got) > 0 {
				t.Errorf("found %q in a program that does not leak", got)
			}
			if !strings.Contains(strings.Join(a.Notes, "\n"), tt.notes) {
				t.Errorf("notes %q, want one containing %q", a.Notes, tt.notes)
			}
			for _, f := range a.Findings {
				if f.Kind != KindGrowth || f.Signature == "" || len(f.Evidence.Stack) == 0 || f.Suggestion == "" {
					t.Errorf("finding %+v lacks a kind, signature, stack or suggestion", f)
				}
			}
			if len(a.Tables) == 0 || len(a.Tables[0].Rows) == 0 {
				t.Errorf("no table rows: %+v", a.Tables)
			}

			// Summarized as they are read, in order or newest first, the
			// profiles give the same analysis.
			for _, order := range []string{"in order", "newest first"} {
				ins := readInputs(t, tt.dir, tt.files...)
				table := NewSiteTable(tt.opts)
				for i := range ins {
					in := ins[i]
					if order == "newest first" {
						in = ins[len(ins)-1-i]
					}
					if err := in.Summarize(table); err != nil {
						t.Fatal(err)
					}
					if in.Profile != nil {
						t.Fatalf("%s: the profile is kept after Summarize", in.Name)
					}
				}
				sa, err := AnalyzeProfiles(ins, tt.opts)
				if err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(sa, a) {
					t.Errorf("summarized %s: %+v\nwant %+v", order, sa, a)
				}
			}
		})
	}

	// Sampled, a site is seen in steps of about 512 KiB, and a map's table
	// doubles now and then: which of the leaking sites rise in enough of
	// the four steps depends on the draw, so one of them must be found, by
	// the sampled rule. The leak grows by 4,000 rounds a profile: at 1,000,
	// no site was found in 5 runs of 12.
	t.Run("five sampled profiles of a leak", func(t *testing.T) {
		a, err := AnalyzeProfiles(readInputs(t, sampledLeaky, seq("heap", ".pb.gz", 1, 5)...), HeapOptions{})
		if err != nil {
			t.Fatal(err)
		}
		got := subjects(a.Findings)
		if !slices.ContainsFunc(got, func(s string) bool {
			return slices.ContainsFunc([]string{entries, sessions, set, journal}, func(w string) bool {
				_, site, _ := strings.Cut(w, " grows ")
				return strings.HasSuffix(s, site)
			})
		}) {
			t.Errorf("no leaking site found; found %q", got)
		}
		if note := "+1.0 MiB (twice the sampling period of 512.0 KiB)"; !strings.Contains(strings.Join(a.Notes, "\n"), note) {
			t.Errorf("notes %q, want one containing %q", a.Notes, note)
		}
	})

	t.Run("summarized single profiles", func(t *testing.T) {
		whole, err := AnalyzeProfiles(readInputs(t, leaky, "heap-12.pb.gz"), HeapOptions{Top: 5})
		if err != nil {
			t.Fatal(err)
		}
		ins := readInputs(t, leaky, "heap-12.pb.gz", "heap-13.pb.gz", "tracker-12.pb.gz")
		table := NewSiteTable(HeapOptions{Top: 5})
		if err := ins[0].Summarize(table); err != nil {
			t.Fatal(err)
		}
		first, err := AnalyzeProfiles(ins[:1], HeapOptions{Top: 5})
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(first, whole) {
			t.Errorf("summarized: %+v\nwant %+v", first, whole)
		}
		for _, in := range ins[1:] {
			if err := in.Summarize(table); err != nil {
				t.Fatal(err)
			}
		}
		// The first of its kind keeps its top holders until a second
		// comes; then the sites are ranked again, without the functions.
		for _, in := range ins[:2] {
			a, err := AnalyzeProfiles([]*Input{in}, HeapOptions{Top: 5})
			if err != nil {
				t.Fatal(err)
			}
			if len(a.Tables) != 1 || len(a.Tables[0].Rows) != 5 || !strings.HasPrefix(a.Tables[0].Title, "top allocation sites") {
				t.Errorf("%s: tables %+v, want the top 5 sites", in.Name, a.Tables)
			}
		}
		first, err = AnalyzeProfiles(ins[:1], HeapOptions{Top: 5})
		if err != nil {
			t.Fatal(err)
		}
		for i, row := range first.Tables[0].Rows {
			want := whole.Tables[1].Rows[i]
			if !slices.Equal(row, slices.Delete(slices.Clone(want), 2, 3)) {
				t.Errorf("row %d: %q, want %q without the objects", i, row, want)
			}
		}
		tr, err := AnalyzeProfiles(ins[2:], HeapOptions{Top: 5})
		if err != nil || len(tr.Tables) != 1 || len(tr.Tables[0].Rows) == 0 {
			t.Errorf("tracker profile: %+v, %v", tr, err)
		}
		if _, err := AnalyzeProfiles(ins[:1], HeapOptions{SampleIndex: "alloc_space"}); err == nil {
			t.Error("a profile summarized by inuse_space was analysed by alloc_space")
		}
		other := readInputs(t, leaky, "heap-14.pb.gz")[0]
		if err := other.Summarize(NewSiteTable(HeapOptions{})); err != nil {
			t.Fatal(err)
		}
		if _, err := AnalyzeProfiles([]*Input{ins[0], other}, HeapOptions{}); err == nil {
			t.Error("profiles of two site tables were compared")
		}
	})

	t.Run("series are trend-tested and in order", func(t *testing.T) {
		ins := readInputs(t, leaky, seq("heap", ".pb.gz", 1, 16)...)
		a, err := AnalyzeProfiles(ins, HeapOptions{})
		if err != nil {
			t.Fatal(err)
		}
		total := a.Series[0]
		if total.Name != "heap.inuse_space" || total.Unit != "bytes" || len(total.Points) != 16 || total.Trend == nil || total.Trend.Verdict != VerdictGrowing {
			t.Fatalf("total series %+v\ntrend %+v", total, total.Trend)
		}
		for i, p := range total.Points {
			if !p.Time.Equal(ins[i].Time) || i > 0 && !p.Time.After(total.Points[i-1].Time) {
				t.Errorf("point %d at %v, want the profile's time %v, after the last", i, p.Time, ins[i].Time)
			}
		}
		for _, f := range a.Findings {
			if f.Evidence.Trend == nil || f.Evidence.Trend.Verdict != VerdictGrowing || !slices.ContainsFunc(a.Series, func(s Series) bool { return s.Name == f.Evidence.Series }) {
				t.Errorf("finding %q has no growing series in the analysis", f.Subject)
			}
		}
	})

	t.Run("one profile: top holders", func(t *testing.T) {
		a, err := AnalyzeProfiles(readInputs(t, leaky, "heap-12.pb.gz"), HeapOptions{Top: 5})
		if err != nil {
			t.Fatal(err)
		}
		if len(a.Findings) != 0 || len(a.Tables) != 2 {
			t.Fatalf("findings %v, %d tables; want none and 2", subjects(a.Findings), len(a.Tables))
		}
		fns, sites := a.Tables[0], a.Tables[1]
		if len(fns.Rows) != 5 || len(sites.Rows) != 5 {
			t.Fatalf("%d and %d rows, want --top 5", len(fns.Rows), len(sites.Rows))
		}
		var top []string
		for _, r := range sites.Rows {
			top = append(top, r[len(r)-1])
		}
		for _, want := range []string{"main.(*dedup).mark (main.go:65)", "main.(*journal).add (main.go:76)", "main.(*cache).put (main.go:58)", "main.openSession (main.go:87)"} {
			if !slices.Contains(top, want) {
				t.Errorf("top sites %q lack %s", top, want)
			}
		}
		if !slices.Equal(fns.Columns, []string{"INUSE_SPACE", "%", "INUSE_OBJECTS", "CUM", "CUM%", "FUNCTION"}) {
			t.Errorf("columns %q", fns.Columns)
		}
	})

	t.Run("legacy text and protocol buffer agree", func(t *testing.T) {
		ins := readInputs(t, text, "heap-02.pb.gz", "heap-02.txt")
		for _, in := range ins {
			if in.Kind != InputHeap {
				t.Fatalf("%s: kind %s", in.Name, in.Kind)
			}
		}
		pb, txt := siteValues(t, ins[0]), siteValues(t, ins[1])
		// Both were written one after the other at the end of the same
		// round of work, every allocation sampled: the program's sites
		// hold the same in both.
		for _, fn := range []string{"main.(*dedup).mark", "main.(*journal).add", "main.openSession"} {
			var a, b int64
			for k, v := range pb {
				if k.frame.Func == fn {
					a += v
				}
			}
			for k, v := range txt {
				if k.frame.Func == fn {
					b += v
				}
			}
			if a == 0 || a != b {
				t.Errorf("%s holds %d bytes in the protocol buffer, %d in the text", fn, a, b)
			}
		}
		// The top tables agree row for row, CUM included: the text
		// form's stacks keep the runtime frames above the program's
		// (runtime.mallocgc), which the protocol buffer form drops.
		var tables [2][]Table
		for i, in := range ins {
			a, err := AnalyzeProfiles([]*Input{in}, HeapOptions{Top: 50})
			if err != nil {
				t.Fatal(err)
			}
			tables[i] = a.Tables
		}
		if len(tables[0]) != 2 || len(tables[1]) != 2 {
			t.Fatalf("tables %+v and %+v, want the top functions and sites of each", tables[0], tables[1])
		}
		mallocgc := false
		for k := range tables[0] {
			pb, txt := tables[0][k].Rows, tables[1][k].Rows
			if !reflect.DeepEqual(pb, txt) {
				t.Errorf("%s:\n%q\nin the text form:\n%q", tables[0][k].Title, pb, txt)
			}
			for _, r := range pb {
				mallocgc = mallocgc || r[len(r)-1] == "runtime.mallocgc"
			}
		}
		if !mallocgc {
			t.Logf("no runtime.mallocgc row to compare: %q", tables[0][0].Rows)
		}
	})

	t.Run("profiles of different types are not compared", func(t *testing.T) {
		_, err := AnalyzeProfiles(readInputs(t, leaky, "heap-01.pb.gz", "tracker-02.pb.gz"), HeapOptions{})
		if err == nil || !strings.Contains(err.Error(), "cannot be compared") {
			t.Errorf("heap against tracker profile: %v", err)
		}
		_, err = AnalyzeProfiles(readInputs(t, leaky, "heap-01.pb.gz"), HeapOptions{SampleIndex: "cpu"})
		if err == nil || !strings.Contains(err.Error(), `no sample type "cpu" (the profile has alloc_objects, alloc_space, inuse_objects, inuse_space)`) {
			t.Errorf("unknown sample index: %v", err)
		}
	})
}

// TestCollectionFrames checks that runtime frames, when a profile has them,
// name the collection that grows and charge it to the caller.
func TestCollectionFrames(t *testing.T) {
	tests := []struct {
		runtime []string
		want    string
	}{
		{[]string{"runtime.mallocgc", "runtime.mapassign_faststr"}, "map grows at main.(*cache).put (cache.go:42)"},
		{[]string{"runtime.mallocgc", "internal/runtime/maps.newarray", "internal/runtime/maps.(*table).grow", "runtime.mapassign"}, "map grows at main.(*cache).put (cache.go:42)"},
		{[]string{"runtime.mallocgc", "runtime.growslice"}, "slice grows at main.(*cache).put (cache.go:42)"},
		{[]string{"runtime.mallocgc", "runtime.newobject"}, "heap grows at main.(*cache).put (cache.go:42)"},
		{nil, "heap grows at main.(*cache).put (cache.go:42)"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.runtime, ","), func(t *testing.T) {
			frames := append(slices.Clone(tt.runtime), "main.(*cache).put", "main.main")
			base := handProfile(frames, 1<<20, 0)
			target := handProfile(frames, 5<<20, time.Minute)
			a, err := AnalyzeProfiles([]*Input{base, target}, HeapOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if got := subjects(a.Findings); len(got) != 1 || got[0] != tt.want {
				t.Errorf("findings %q, want %q", got, tt.want)
			}
		})
	}
}

// handProfile builds a heap profile with one sample of inuse bytes at a
// stack of the named functions, innermost first, the first not in the
// runtime at cache.go:42.
func handProfile(funcs []string, inuse int64, at time.Duration) *Input {
	p := &profile.Profile{
		SampleType: []*profile.ValueType{{Type: "alloc_objects", Unit: "count"}, {Type: "alloc_space", Unit: "bytes"}, {Type: "inuse_objects", Unit: "count"}, {Type: "inuse_space", Unit: "bytes"}},
		PeriodType: &profile.ValueType{Type: "space", Unit: "bytes"},
		TimeNanos:  time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC).Add(at).UnixNano(),
	}
	var locs []*profile.Location
	for i, fn := range funcs {
		f := &profile.Function{ID: uint64(i + 1), Name: fn, Filename: "src/" + strings.SplitN(fn, ".", 2)[0] + ".go"}
		if fn == "main.(*cache).put" {
			f.Filename = "cache.go"
		}
		p.Function = append(p.Function, f)
		l := &profile.Location{ID: uint64(i + 1), Line: []profile.Line{{Function: f, Line: 42}}}
		p.Location = append(p.Location, l)
		locs = append(locs, l)
	}
	p.Sample = []*profile.Sample{{Location: locs, Value: []int64{1, inuse, 1, inuse}}}
	return &Input{Name: fmt.Sprintf("hand-%d.pb.gz", inuse>>20), Kind: InputHeap, Profile: p, Time: time.Unix(0, p.TimeNanos)}
}

func TestIsLadder(t *testing.T) {
	tests := []struct {
		name string
		held map[int64]int64
		want bool
	}{
		{"doubling, held in the largest", map[int64]int64{1024: 0, 2048: 0, 4096: 0, 8192: 8192}, true},
		{"large slice, by 1.25", map[int64]int64{40960: 0, 57344: 0, 73728: 0, 98304: 98304}, true},
		{"map tables split: many of the largest", map[int64]int64{48: 480, 2304: 0, 4608: 0, 9216: 0, 18432: 18432 * 30}, true},
		{"three sizes are too few", map[int64]int64{1024: 0, 2048: 0, 4096: 4096}, false},
		{"sizes close together: variable requests", map[int64]int64{1000: 100, 1100: 100, 1200: 100, 1300: 100}, false},
		{"sizes far apart", map[int64]int64{16: 0, 1024: 0, 65536: 0, 1 << 22: 1 << 22}, false},
		{"memory in the small sizes", map[int64]int64{1024: 1 << 20, 2048: 1 << 20, 4096: 0, 8192: 8192}, false},
		{"nothing held", map[int64]int64{1024: 0, 2048: 0, 4096: 0, 8192: 0}, false},
	}
	for _, tt := range tests {
		var all int64
		for _, v := range tt.held {
			all += v
		}
		if got := isLadder(tt.held, all); got != tt.want {
			t.Errorf("%s: isLadder = %v, want %v", tt.name, got, tt.want)
		}
	}
}

// pointsEvery returns a series of vs, step apart from clock on.
func pointsEvery(step time.Duration, vs ...float64) []Point {
	out := make([]Point, len(vs))
	for i, v := range vs {
		out[i] = Point{Time: clock.Add(time.Duration(i) * step), Value: v}
	}
	return out
}

func TestStepGrowth(t *testing.T) {
	pts := func(vs ...float64) []Point { return pointsEvery(time.Minute, vs...) }
	tests := []struct {
		name  string
		pts   []Point
		steps int
		ok    bool
	}{
		{"doubling map", pts(36, 72, 72, 144, 144, 144, 144, 288, 288, 288, 288, 288), 3, true},
		{"large slice", pts(16, 32, 32, 64, 64, 64, 104, 104, 104, 104, 152, 152), 4, true},
		{"grew, then stopped: a bounded cache", pts(36, 72, 144, 288, 288, 288, 288, 288, 288, 288, 288, 288), 3, false},
		{"fell once: not a collection that only grows", pts(36, 72, 144, 72, 144, 288, 288, 576, 576, 576, 576, 576), 0, false},
		{"two steps", pts(1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 4), 2, false},
		{"flat", pts(8, 8, 8, 8), 0, false},
	}
	for _, tt := range tests {
		steps, ok := stepGrowth(tt.pts, collectionSteps)
		if steps != tt.steps || ok != tt.ok {
			t.Errorf("%s: stepGrowth = %d, %v; want %d, %v", tt.name, steps, ok, tt.steps, tt.ok)
		}
	}
}

// TestRisesMost checks the rule for series too short for the trend test:
// a rise in most steps is growth, a one-time jump or a rise that stopped
// or fell back is not.
func TestRisesMost(t *testing.T) {
	pts := func(vs ...float64) []Point { return pointsEvery(time.Second, vs...) }
	tests := []struct {
		name string
		pts  []Point
		opts TrendOptions
		want Verdict
		note string // a substring of the trend's note
	}{
		{"every step of five", pts(29, 60, 90, 125, 158), TrendOptions{}, VerdictGrowing, "rose in 4 of 4 steps"},
		{"three of four, the last flat", pts(29, 60, 90, 125, 125), TrendOptions{}, VerdictGrowing, "rose in 3 of 4 steps"},
		{"three points, both steps", pts(1, 2, 3), TrendOptions{}, VerdictGrowing, "rose in 2 of 2 steps"},
		{"jumped once and held: a start-up allocation", pts(0, 64, 64, 64, 64), TrendOptions{}, VerdictSteady, "rose once and held"},
		{"jumped once in three", pts(0, 64, 64), TrendOptions{}, VerdictSteady, "rose once and held"},
		{"two of four steps", pts(0, 32, 64, 64, 64), TrendOptions{}, VerdictSteady, "rose in 2 of 4 steps only"},
		{"fell back by half", pts(10, 20, 30, 40, 20), TrendOptions{}, VerdictSteady, "fell back"},
		{"a small dip", pts(10, 20, 30, 29, 40), TrendOptions{}, VerdictGrowing, "rose in 3 of 4 steps"},
		{"rose early, not in the later half", pts(1, 2, 3, 4, 4, 4, 4), TrendOptions{}, VerdictSteady, "rose in 3 of 6 steps only"},
		{"flat", pts(5, 5, 5, 5), TrendOptions{}, VerdictSteady, ""},
		{"two points", pts(1, 2), TrendOptions{}, VerdictNotEnoughData, ""},
		{"all in the warm-up", pts(1, 2, 3, 4, 5), TrendOptions{Warmup: time.Minute}, VerdictNotEnoughData, ""},
		{"the jump in the warm-up, a rise after", pts(0, 64, 65, 66, 67), TrendOptions{WarmupSamples: 1}, VerdictGrowing, "rose in 3 of 3 steps"},
	}
	for _, tt := range tests {
		tr := risesMost(tt.pts, tt.opts)
		if tr.Verdict != tt.want || !strings.Contains(tr.Note, tt.note) {
			t.Errorf("%s: %s, %q; want %s, %q", tt.name, tr.Verdict, tr.Note, tt.want, tt.note)
		}
		if tr.Verdict == VerdictGrowing && tr.Window.SlopePerHour <= 0 {
			t.Errorf("%s: growing at %v/h", tt.name, tr.Window.SlopePerHour)
		}
	}
}

// TestGrowthRule checks the least growth that counts: a share of the heap
// in use, at least two sampling periods and three standard deviations of
// the sampling noise for sampled bytes, or the amount set.
func TestGrowthRule(t *testing.T) {
	const mib = 1 << 20
	tests := []struct {
		name        string
		rule        growthRule
		first, last int64
		want        int64
	}{
		{"every allocation recorded: the share", growthRule{share: 0.01, total: 2 * mib, period: 1}, 29 << 10, 158 << 10, 20972},
		{"sampled, a small site: two periods", growthRule{share: 0.01, total: 2 * mib, period: 512 << 10}, 0, 128 << 10, mib},
		// 3*sqrt(512 KiB * 128 KiB) = 768 KiB, less than two periods;
		// 3*sqrt(512 KiB * 100 MiB) = 3 * 7.07 MiB.
		{"sampled, a large site: the noise", growthRule{share: 0.01, total: 200 * mib, period: 512 << 10}, 50 * mib, 50 * mib, 22243657},
		{"sampled, a large heap: the share", growthRule{share: 0.05, total: 2048 * mib, period: 512 << 10}, 0, 0, 107374183},
		{"records of two profiles: at least ten", growthRule{share: 0.05, total: 40, records: true, pair: true}, 0, 0, DefaultMinGrowthRecords},
		{"records of a series", growthRule{share: 0.01, total: 40, records: true}, 0, 0, 1},
		{"set", growthRule{fixed: 64 << 10, share: 0.01, total: 2048 * mib, period: 512 << 10}, 0, 0, 64 << 10},
	}
	for _, tt := range tests {
		if got := tt.rule.least(tt.first, tt.last); got != tt.want {
			t.Errorf("%s: least = %d, want %d", tt.name, got, tt.want)
		}
	}
}

func TestParseFrameComment(t *testing.T) {
	tests := []struct {
		line string
		addr uint64
		fn   string
		file string
		ln   int64
		ok   bool
	}{
		{"#\t0x6c8d2c\tmain.(*cache).put+0x14c\t\t/src/main.go:56", 0x6c8d2c, "main.(*cache).put", "/src/main.go", 56, true},
		{"#\t0x4dac6c\tslices.Grow[...]+0x14c\t\t\t\t\tslices/slices.go:426", 0x4dac6c, "slices.Grow[...]", "slices/slices.go", 426, true},
		{`#	0x1	C:\src\x.go+0x1	C:\src\x.go:7`, 1, `C:\src\x.go`, `C:\src\x.go`, 7, true},
		{"#\t0x6c8d2c", 0, "", "", 0, false},
		{"# Alloc = 1697624", 0, "", "", 0, false},
		{"#\t0xzz\tf+0x1\tf.go:1", 0, "", "", 0, false},
		{"#\t0x10\tf+0x1\tf.go", 0, "", "", 0, false},
		{"#\t0x10\tf+0x1\tf.go:x", 0, "", "", 0, false},
		{"1: 2 [3: 4] @ 0x10", 0, "", "", 0, false},
	}
	for _, tt := range tests {
		addr, fn, file, ln, ok := parseFrameComment([]byte(tt.line))
		if ok != tt.ok || ok && (addr != tt.addr || fn != tt.fn || file != tt.file || ln != tt.ln) {
			t.Errorf("parseFrameComment(%q) = %#x %q %q %d %v", tt.line, addr, fn, file, ln, ok)
		}
	}
}

func TestHeapFormatting(t *testing.T) {
	tests := []struct{ got, want string }{
		{relative(100, 35), "+35%"},
		{relative(100, -5), "-5.0%"},
		{relative(0, 10), "new"},
		{relative(0, 0), "0%"},
		{relative(1000, 1), "+0.1%"},
		{percent(1, 3), "33.3%"},
		{percent(1, 0), "-"},
		{signed(1536, "bytes"), "+1.5 KiB"},
		{signed(-2, ""), "-2"},
	}
	for i, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("case %d: got %q, want %q", i, tt.got, tt.want)
		}
	}
}

// TestGoldenHeap renders the analyses of the profiles in testdata/heap, which
// heapgrow wrote (see TestHeapFixtures), in the text and JSON forms.
func TestGoldenHeap(t *testing.T) {
	dir := filepath.Join("testdata", "heap")
	tests := []struct {
		name  string
		files []string
		opts  HeapOptions
	}{
		{"heap-top", []string{"leaky-03.pb.gz"}, HeapOptions{Top: 8}},
		{"heap-diff", []string{"leaky-01.pb.gz", "leaky-03.pb.gz"}, HeapOptions{Top: 8, MinGrowth: 64 << 10}},
		// The least growth by share of the heap: its note says the rule.
		{"heap-diff-share", []string{"leaky-01.pb.gz", "leaky-03.pb.gz"}, HeapOptions{Top: 8}},
		{"tracker-top", []string{"tracker-03.pb.gz"}, HeapOptions{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ins := readInputs(t, dir, tt.files...)
			for _, in := range ins {
				in.Name = filepath.Base(in.Name)
			}
			a, err := AnalyzeProfiles(ins, tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			r := New(a.Findings, a.Series, nil)
			r.Tables = a.Tables
			r.Time = clock
			r.Metadata = map[string]string{"inputs": strings.Join(tt.files, ", ")}
			for i, n := range a.Notes {
				r.Metadata[fmt.Sprintf("note %d", i+1)] = n
			}
			for _, format := range []string{"text", "json"} {
				golden(t, tt.name+"."+format, render(t, r, format))
			}
		})
	}
}

// TestGoldenTables renders tables with awkward cells: long text cut in the
// middle, ragged rows, signed and relative numbers, no rows at all.
func TestGoldenTables(t *testing.T) {
	r := New(nil, nil, nil)
	r.Time = clock
	r.Tables = []Table{
		{
			Title:   "growth by site, inuse_space, from a-very-long-profile-name-that-wraps-the-title.pb.gz to b.pb.gz",
			Columns: []string{"BASE", "TARGET", "CHANGE", "CHANGE%", "SITE"},
			Rows: [][]string{
				{"0 B", "1.5 MiB", "+1.5 MiB", "new", "github.com/example/daemon/internal/cache.(*shardedCache).insertLocked (cache.go:1042)"},
				{"512 B", "384 B", "-128 B", "-25%", "main.f (main.go:1)"},
				{"1.0 KiB", "2.0 KiB"}, // ragged: cells missing
			},
		},
		{
			Title:   "goroutines by state and stack",
			Columns: []string{"COUNT", "STATE", "WHERE", "CREATED BY"},
			Rows: [][]string{
				{"12", "chan receive", "main.(*server).handleConnectionWithAVeryLongName (server.go:120)", "main.(*server).serveListenerLoopWithAnotherLongName (server.go:88)"},
				{"1", "select\tx", "main.f\n(main.go:3)", "-"},
			},
		},
		{Title: "an empty listing", Columns: []string{"A", "B"}, Rows: [][]string{}},
	}
	text := render(t, r, "text")
	golden(t, "tables.text", text)
	golden(t, "tables.json", render(t, r, "json"))
	for i, line := range strings.Split(string(text), "\n") {
		if len([]rune(line)) > textWidth {
			t.Errorf("line %d is wider than %d: %q", i+1, textWidth, line)
		}
	}
	if r.Tables[0].Rows[0][4] != "github.com/example/daemon/internal/cache.(*shardedCache).insertLocked (cache.go:1042)" {
		t.Error("rendering changed the report's cells")
	}
}

// TestHeapFixtures rebuilds testdata/heap with -update-profiles: profiles
// that heapgrow (built with -trimpath) wrote, with the binaries' paths in
// their mappings cut to base names, so that no path of the machine that made
// them is kept. Without the flag it checks that the fixtures are there and
// decode as what they are.
func TestHeapFixtures(t *testing.T) {
	dir := filepath.Join("testdata", "heap")
	want := map[string]InputKind{
		"leaky-01.pb.gz": InputHeap, "leaky-03.pb.gz": InputHeap, "steady-03.pb.gz": InputHeap,
		"tracker-03.pb.gz": InputTrackerProfile, "snapshot-03.json": InputSnapshot,
	}
	if *updateProfiles {
		bin := buildHeapgrow(t, t.TempDir(), true)
		leaky := runHeapgrow(t, bin, t.TempDir(), "-mode", "leaky", "-profiles", "3", "-tracker")
		steady := runHeapgrow(t, bin, t.TempDir(), "-mode", "steady", "-profiles", "3")
		copies := map[string]string{
			"leaky-01.pb.gz": filepath.Join(leaky, "heap-01.pb.gz"), "leaky-03.pb.gz": filepath.Join(leaky, "heap-03.pb.gz"),
			"steady-03.pb.gz": filepath.Join(steady, "heap-03.pb.gz"), "tracker-03.pb.gz": filepath.Join(leaky, "tracker-03.pb.gz"),
			"snapshot-03.json": filepath.Join(leaky, "snapshot-03.json"),
		}
		for name, from := range copies {
			data, err := os.ReadFile(from)
			if err != nil {
				t.Fatal(err)
			}
			if data, err = sanitizeFixture(data); err != nil {
				t.Fatalf("%s: %v", from, err)
			}
			if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	for name, kind := range want {
		in := readInputs(t, dir, name)[0]
		if in.Kind != kind {
			t.Errorf("%s: kind %s, want %s", name, in.Kind, kind)
		}
	}
}

// sanitizeFixture cuts the paths of binaries to their base names: in a
// profile's mappings, and in a snapshot's program.
func sanitizeFixture(data []byte) ([]byte, error) {
	if bytes.HasPrefix(bytes.TrimSpace(data), []byte("{")) {
		var snap map[string]any
		if err := json.Unmarshal(data, &snap); err != nil {
			return nil, err
		}
		if p, ok := snap["program"].(string); ok {
			snap["program"] = filepath.Base(p)
		}
		return json.MarshalIndent(snap, "", "  ")
	}
	p, err := profile.ParseData(data)
	if err != nil {
		return nil, err
	}
	for _, m := range p.Mapping {
		m.File = filepath.Base(m.File)
	}
	var b bytes.Buffer
	err = p.Write(&b)
	return b.Bytes(), err
}

// siteValues summarizes a profile and returns its values by site, by the
// default sample type.
func siteValues(t *testing.T, in *Input) map[siteKey]int64 {
	t.Helper()
	table := NewSiteTable(HeapOptions{})
	s, err := table.collect(in)
	if err != nil {
		t.Fatal(err)
	}
	out := map[siteKey]int64{}
	for _, id := range s.ids() {
		out[s.key(id)], _ = s.get(id)
	}
	return out
}

// TestTopLimitsTablesNotFindings checks that --top bounds the growth table
// but not the findings, and that the notes say how many sites grew.
func TestTopLimitsTablesNotFindings(t *testing.T) {
	var ins []*Input
	for _, name := range []string{"leaky-01.pb.gz", "leaky-03.pb.gz"} {
		in, err := ReadInput(t.Context(), filepath.Join("testdata", "heap", name), InputOptions{})
		if err != nil {
			t.Fatal(err)
		}
		ins = append(ins, in)
	}
	res, err := AnalyzeProfiles(ins, HeapOptions{Top: 1, MinGrowth: 1})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Findings) < 2 || len(res.Tables) != 1 || len(res.Tables[0].Rows) != 1 {
		t.Fatalf("%d findings, tables %+v: want every grown site a finding and a table of 1 row", len(res.Findings), res.Tables)
	}
	want := fmt.Sprintf("%d sites grew past it, the table lists 1", len(res.Findings))
	if !strings.Contains(strings.Join(res.Notes, "\n"), want) {
		t.Errorf("notes %q do not say %q", res.Notes, want)
	}
}

// TestProfilesOfTwoPrograms checks that comparing a heap profile of one
// program with one of another says so, and that its growth findings are
// info: no program leaked.
func TestProfilesOfTwoPrograms(t *testing.T) {
	base, err := ReadInput(t.Context(), filepath.Join("testdata", "heap", "leaky-01.pb.gz"), InputOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	runtime.GC()
	if err := pprof.Lookup("heap").WriteTo(&buf, 0); err != nil { // this test binary's own
		t.Fatal(err)
	}
	target, err := ParseInput("report.test heap", buf.Bytes(), 0)
	if err != nil {
		t.Fatal(err)
	}
	res, err := AnalyzeProfiles([]*Input{base, target}, HeapOptions{MinGrowth: 1})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(strings.Join(res.Notes, "\n"), "not of one program") {
		t.Errorf("notes %q do not say the profiles are of two programs", res.Notes)
	}
	for _, f := range res.Findings {
		if f.Severity != SeverityInfo {
			t.Errorf("%s finding %q between two programs", f.Severity, f.Subject)
		}
	}
}

// TestUnsymbolizedCum checks that an unsymbolized address, a site of its
// own, gets its cumulative value as go tool pprof gives it, not 0.
func TestUnsymbolizedCum(t *testing.T) {
	fn := &profile.Function{ID: 1, Name: "main.caller", Filename: "main.go"}
	named := &profile.Location{ID: 1, Address: 0x1000, Line: []profile.Line{{Function: fn, Line: 7}}}
	bare := &profile.Location{ID: 2, Address: 0x4a2b10}
	p := &profile.Profile{
		SampleType: []*profile.ValueType{{Type: "inuse_objects", Unit: "count"}, {Type: "inuse_space", Unit: "bytes"}},
		PeriodType: &profile.ValueType{Type: "space", Unit: "bytes"},
		Location:   []*profile.Location{named, bare},
		Function:   []*profile.Function{fn},
		Sample: []*profile.Sample{
			{Location: []*profile.Location{bare}, Value: []int64{4, 4096}},
			{Location: []*profile.Location{named}, Value: []int64{1, 1024}},
		},
	}
	res, err := AnalyzeProfiles([]*Input{{Name: "bare", Kind: InputHeap, Profile: p}}, HeapOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var row []string
	for _, tb := range res.Tables {
		for _, r := range tb.Rows {
			if r[len(r)-1] == "0x4a2b10" && strings.HasPrefix(tb.Title, "top functions") {
				row = r
			}
		}
	}
	if row == nil || row[3] != "4.0 KiB" {
		t.Errorf("the unsymbolized address's row %q: want a CUM of 4.0 KiB; tables %+v", row, res.Tables)
	}
}

// TestLegacyHiddenFrames checks that a legacy text heap profile keeps of
// each stack the frames its comments show: the runtime frames Go leaves
// out of the comments (and out of the protocol buffer form) are dropped,
// even where another stack's comments name their address.
func TestLegacyHiddenFrames(t *testing.T) {
	text := "heap profile: 2: 96 [3: 160] @ heap/1\n" +
		"1: 64 [2: 128] @ 0x5 0x10 0x20\n#\t0xf\tmain.f+0x1\tmain.go:3\n#\t0x1f\tmain.main+0x1\tmain.go:9\n\n" +
		"1: 32 [1: 32] @ 0x5 0x6\n#\t0x4\truntime.mallocgc+0x1\tmalloc.go:1\n#\t0x5\truntime.main+0x1\tproc.go:1\n"
	in, err := ParseInput("legacy", []byte(text), 0)
	if err != nil {
		t.Fatal(err)
	}
	var stacks [][]string
	for _, smp := range in.Profile.Sample {
		var fns []string
		for _, loc := range smp.Location {
			for _, ln := range loc.Line {
				fns = append(fns, ln.Function.Name)
			}
		}
		stacks = append(stacks, fns)
	}
	want := [][]string{{"main.f", "main.main"}, {"runtime.mallocgc", "runtime.main"}}
	if !reflect.DeepEqual(stacks, want) {
		t.Errorf("stacks %q, want %q", stacks, want)
	}
	a, err := AnalyzeProfiles([]*Input{in}, HeapOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range a.Tables[0].Rows {
		if fn := r[len(r)-1]; fn == "runtime.mallocgc" && r[3] != "32 B" {
			t.Errorf("runtime.mallocgc's row %q: want a CUM of 32 B, its own", r)
		}
	}
}

func TestRuntimeOnly(t *testing.T) {
	frames := func(fns ...string) []Frame {
		var out []Frame
		for _, fn := range fns {
			out = append(out, Frame{Func: fn})
		}
		return out
	}
	tests := []struct {
		stack []Frame
		want  bool
	}{
		{frames("runtime.mallocgc"), true},
		{frames("runtime.malg", "runtime.newproc1", "internal/runtime/maps.newarray"), true},
		{frames("runtime.mallocgc", "main.(*cache).put"), false},
		{frames("runtime/pprof.(*profileBuilder).build"), false}, // a package of the library, not the runtime
		{nil, false},
	}
	for _, tt := range tests {
		if got := runtimeOnly(tt.stack); got != tt.want {
			t.Errorf("runtimeOnly(%v) = %v, want %v", tt.stack, got, tt.want)
		}
	}
}
