package report

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/pprof/profile"
)

// addCorpus adds the corpus files whose names end in suffix as seeds, each
// cut after its first few blocks: the fuzzer minimizes every input that finds
// new code, a byte at a time, which takes minutes on a 50 KB dump.
func addCorpus(f *testing.F, suffix string) {
	f.Helper()
	paths, err := filepath.Glob(filepath.Join(corpusDir, "*"+suffix))
	if err != nil || len(paths) == 0 {
		f.Fatalf("no corpus files *%s in %s (%v)", suffix, corpusDir, err)
	}
	for _, path := range paths {
		data, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		if suffix == ".txt" {
			data = excerpt(data, 2<<10)
		}
		f.Add(data)
	}
}

// excerpt returns data up to the last blank line within its first n bytes.
func excerpt(data []byte, n int) []byte {
	if len(data) <= n {
		return data
	}
	if i := bytes.LastIndex(data[:n], []byte("\n\n")); i > 0 {
		return data[:i+1]
	}
	return data[:n]
}

func FuzzParseGoroutineText(f *testing.F) {
	addCorpus(f, ".txt")
	f.Add([]byte(dumpText))
	for _, seed := range []string{
		"goroutine 1 [running]:\nmain.main()\n\tmain.go:1 +0x1\n",
		"goroutine 2 [select labels:{\"a\": \"b\\x00\", \"c\": \"\\u03a3\"}]:\n...3 frames elided...\ncreated by main.f in goroutine 1\n\tf.go:2\n",
		"goroutine profile: total 2\n2 @ 0x1 0x2\n# labels: {\"k\":\"v\"}\n#\t0x1\tmain.f+0x1\tf.go:1\n#\t0x2\n\n",
		"goroutineleak profile: total 0\n",
		"SIGQUIT: quit\nPC=0x1 m=0 sigcode=0\n\ngoroutine 0 gp=0x1 m=0 mp=0x2 [idle]:\nruntime.futex()\n\tx.s:1 +0x1 fp=0x1 sp=0x2 pc=0x3\n",
		"goroutine 3 [chan receive (leaked) (scan), 5 minutes, locked to thread]:\n\tgoroutine running on other thread; stack unavailable\n",
		"goroutine 4 [IO wait]:\r\nmain.f(...)\r\n\tC:/a b/f.go:3\r\n[originating from goroutine 1]:\r\nmain.g()\r\n",
		"heap profile: 1: 2 [3: 4] @ heap/1048576\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := ParseGoroutineText(data)
		if err != nil {
			if d != nil {
				t.Fatalf("a dump and an error: %v", err)
			}
			return
		}
		total := 0
		for _, g := range d.Goroutines {
			if g.Count < 1 || (d.Form != "debug=1" && (g.Count != 1 || g.ID == 0)) {
				t.Fatalf("goroutine %+v in a %s dump", g, d.Form)
			}
			total += g.Count
		}
		if total != d.Total {
			t.Fatalf("Total %d, but the goroutines count %d", d.Total, total)
		}
		grouped := 0
		for _, g := range GroupGoroutines(d) {
			grouped += g.Count
		}
		if grouped != d.Total {
			t.Fatalf("groups hold %d goroutines of %d", grouped, d.Total)
		}
		for _, fd := range GoroutineFindings(d, GoroutineOptions{BlockedFor: time.Nanosecond, LargeGroup: 1}) {
			if fd.Kind != KindGoroutine || fd.Count < 1 || fd.Signature == "" || len(fd.Evidence.Basis) != 1 || fd.Evidence.Because == "" {
				t.Fatalf("finding %+v", fd)
			}
		}
		// The same dump twice, minutes apart, as a series: every finding
		// still says what it rests on.
		later := *d
		later.Time = time.Unix(1700000000, 0)
		first := *d
		first.Time = later.Time.Add(-5 * time.Minute)
		_, fs := AnalyzeGoroutines([]*GoroutineDump{&first, &later}, GoroutineOptions{BlockedFor: time.Nanosecond, LargeGroup: 1}, TrendOptions{})
		for _, fd := range fs {
			if fd.Kind != KindGoroutine || fd.Count < 1 || len(fd.Evidence.Basis) == 0 || fd.Evidence.Because == "" {
				t.Fatalf("series finding %+v", fd)
			}
		}
		if d.Form == "debug=1" {
			return
		}
		// A dump written out again as the runtime would reads back the same,
		// except for states that end in the marks the parser strips.
		for _, g := range d.Goroutines {
			if strings.Contains(g.State, " (scan)") || strings.Contains(g.State, " (leaked)") {
				return
			}
		}
		var b bytes.Buffer
		formatDump(&b, d)
		again, err := ParseGoroutineText(b.Bytes())
		if err != nil {
			t.Fatalf("formatted again, does not parse: %v\n%s", err, b.Bytes())
		}
		if len(again.Goroutines) != len(d.Goroutines) {
			t.Fatalf("formatted again, %d goroutines, want %d:\n%s", len(again.Goroutines), len(d.Goroutines), b.Bytes())
		}
		for i, g := range again.Goroutines {
			if diff := diffGoroutine(g, d.Goroutines[i]); diff != "" {
				t.Fatalf("goroutine %d formatted again differs: %s\n%s", i, diff, b.Bytes())
			}
		}
	})
}

func FuzzGoroutinesFromProfile(f *testing.F) {
	addCorpus(f, ".pb.gz")
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := profile.ParseData(data)
		if err != nil {
			return
		}
		d, err := GoroutinesFromProfile(p)
		if goroutine, leak := IsGoroutineProfile(p); err == nil != goroutine {
			t.Fatalf("IsGoroutineProfile %v, but GoroutinesFromProfile: %v", goroutine, err)
		} else if err != nil {
			return
		} else if d.Leak != leak {
			t.Fatalf("Leak %v, IsGoroutineProfile says %v", d.Leak, leak)
		}
		total := 0
		for _, g := range d.Goroutines {
			if g.Count < 1 {
				t.Fatalf("goroutine %+v", g)
			}
			total += g.Count
		}
		if total != d.Total {
			t.Fatalf("Total %d, but the goroutines count %d", d.Total, total)
		}
		groups := GroupGoroutines(d)
		if !slices.IsSortedFunc(groups, func(a, b GoroutineGroup) int { return b.Count - a.Count }) {
			t.Fatal("groups not sorted by count")
		}
		for _, fd := range GoroutineFindings(d, GoroutineOptions{LargeGroup: 1}) {
			if fd.Kind != KindGoroutine || fd.Count < 1 || fd.Signature == "" {
				t.Fatalf("finding %+v", fd)
			}
		}
	})
}
