package report

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strings"
	"testing"
	"time"

	"github.com/google/pprof/profile"

	"github.com/leakcheck/leakcheck/probes/bounded"
	"github.com/leakcheck/leakcheck/tracker"
)

func gzipped(t testing.TB, data []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	if _, err := zw.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func gunzipped(t testing.TB, data []byte) []byte {
	t.Helper()
	out, err := bounded.Gunzip(data, DefaultMaxInputSize)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// ownProfile writes this test process's profile name at debug level.
func ownProfile(t testing.TB, name string, debug int) []byte {
	t.Helper()
	p := pprof.Lookup(name)
	if p == nil {
		t.Skipf("no %s profile in this build", name)
	}
	var b bytes.Buffer
	if err := p.WriteTo(&b, debug); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// cpuProfile profiles this process while it spins for a moment.
func cpuProfile(t testing.TB) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := pprof.StartCPUProfile(&b); err != nil {
		t.Skipf("cannot profile the CPU: %v", err)
	}
	for end := time.Now().Add(30 * time.Millisecond); time.Now().Before(end); {
	}
	pprof.StopCPUProfile()
	return b.Bytes()
}

func fixture(t testing.TB, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "heap", name))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// TestParseInputKinds checks that each form is recognized by its content,
// whatever its name, from profiles this process and the test program wrote.
func TestParseInputKinds(t *testing.T) {
	tests := []struct {
		name string
		data []byte
		kind InputKind
		time bool // the input carries its own time
	}{
		{"heap protocol buffer", fixture(t, "leaky-03.pb.gz"), InputHeap, true},
		{"heap protocol buffer, not gzipped", gunzipped(t, fixture(t, "leaky-03.pb.gz")), InputHeap, true},
		{"heap legacy text", ownProfile(t, "heap", 1), InputHeap, false},
		{"heap legacy text, gzipped", gzipped(t, ownProfile(t, "heap", 1)), InputHeap, false},
		{"allocs protocol buffer", ownProfile(t, "allocs", 0), InputHeap, true},
		{"goroutine protocol buffer", ownProfile(t, "goroutine", 0), InputGoroutine, true},
		{"goroutine debug=1", ownProfile(t, "goroutine", 1), InputGoroutine, false},
		{"goroutine debug=2", ownProfile(t, "goroutine", 2), InputGoroutine, false},
		{"tracker profile", fixture(t, "tracker-03.pb.gz"), InputTrackerProfile, false},
		{"tracker snapshot", fixture(t, "snapshot-03.json"), InputSnapshot, true},
		{"leakcheck report", render(t, fixtureReport(t), "json"), InputReport, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in, err := ParseInput("in", tt.data, 0)
			if err != nil {
				t.Fatal(err)
			}
			if in.Kind != tt.kind {
				t.Fatalf("kind %s, want %s", in.Kind, tt.kind)
			}
			set := 0
			for _, ok := range []bool{in.Profile != nil, in.Goroutines != nil, in.Snapshot != nil, in.Report != nil} {
				if ok {
					set++
				}
			}
			if set != 1 {
				t.Errorf("%d of Profile, Goroutines, Snapshot and Report set, want 1", set)
			}
			if !in.Time.IsZero() != tt.time {
				t.Errorf("time %v; want one: %v", in.Time, tt.time)
			}
			if !bytes.Equal(in.Raw, tt.data) {
				t.Error("Raw is not the input as given")
			}
		})
	}
}

// TestLegacyHeapSymbolized checks that a legacy text heap profile has its
// functions named from the comments Go writes after each stack.
func TestLegacyHeapSymbolized(t *testing.T) {
	keep := make([][]byte, 0, 1000)
	for range 1000 {
		keep = append(keep, legacyAlloc()) // held until the profile is written
	}
	// The heap profile shows the heap as of the last complete collection.
	runtime.GC()
	in, err := ParseInput("heap.txt", ownProfile(t, "heap", 1), 0)
	if err != nil {
		t.Fatal(err)
	}
	sites := siteValues(t, in)
	found := false
	for k, v := range sites {
		if k.frame.Func == "github.com/leakcheck/leakcheck/report.legacyAlloc" {
			found = v > 0 && strings.HasSuffix(k.frame.File, "input_test.go") && k.frame.Line > 0
		}
	}
	if !found {
		t.Errorf("no site in legacyAlloc (input_test.go) holding memory among %d sites", len(sites))
	}
	runtime.KeepAlive(keep)
}

//go:noinline
func legacyAlloc() []byte { return make([]byte, 4096) }

func TestParseInputErrors(t *testing.T) {
	heap := gunzipped(t, fixture(t, "leaky-03.pb.gz"))
	tests := []struct {
		name    string
		data    []byte
		maxSize int64
		want    string
	}{
		{"empty", nil, 0, "in: empty: want a heap, goroutine or tracker profile"},
		{"blank", []byte(" \n\t\n"), 0, "in: empty"},
		{"truncated gzip", fixture(t, "leaky-03.pb.gz")[:3000], 0, "in: decompressing: unexpected end of data (truncated?)"},
		{"corrupt gzip header", append([]byte{0x1f, 0x8b, 9}, heap[:100]...), 0, "in: decompressing: gzip: invalid header"},
		{"decompression bomb", gzipped(t, bytes.Repeat(heap, (2<<20)/len(heap)+1)), 1 << 20, "in: decompresses to more than the size limit of 1 MiB"},
		{"decompression bomb of zeros", gzipped(t, make([]byte, 2<<20)), 1 << 20, "in: not a profile leakcheck reads"},
		{"gzip in gzip", gzipped(t, fixture(t, "leaky-03.pb.gz")), 0, "in: gzip inside gzip"},
		{"truncated protocol buffer", gzipped(t, heap[:len(heap)*2/3]), 0, "in: not a profile leakcheck reads"},
		{"binary garbage", []byte("\x00\x01\x02\xff\xfe garbage \x00"), 0, "in: not a profile leakcheck reads"},
		{"text", []byte("hello, world\nthis is not a profile\n"), 0, "in: unrecognized text (want a heap, goroutine"},
		{"cpu profile", cpuProfile(t), 0, "in: a cpu profile (sample types samples, cpu), not one leakcheck reads"},
		{"mutex profile", ownProfile(t, "mutex", 0), 0, "in: a contentions profile (sample types contentions, delay), not one"},
		{"threadcreate text", ownProfile(t, "threadcreate", 1), 0, "in: a threadcreate profile"},
		{"broken legacy heap", []byte("heap profile: 1: 2 [3: 4] @ heap/1048576\nnot a sample\n"), 0, "in: legacy heap profile: parsing profile"},
		{"JSON without schema", []byte(`{"findings": []}`), 0, `in: JSON without a "schema" field`},
		{"bad JSON", []byte(`{"schema": 1,`), 0, "in: not valid JSON"},
		{"snapshot of another schema", []byte(`{"schema": 7, "records": []}`), 0, "in: tracker snapshot of schema 7; this leakcheck reads schema 1"},
		{"snapshot with wrong types", []byte(`{"schema": 1, "records": 5}`), 0, "in: tracker snapshot: json: cannot unmarshal"},
		{"report of another major", []byte(`{"schema": "leakcheck.report/2.0"}`), 0, "in: reading report: schema"},
		{"goroutine dump with a broken stack", []byte("goroutine 1 [running]:\nmain.main()\n\tnot a file line\n"), 0, "in: goroutine dump:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in, err := ParseInput("in", tt.data, tt.maxSize)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("ParseInput = %+v, %v; want an error containing %q", in, err, tt.want)
			}
		})
	}
}

// TestParseInputMalformedSamples checks that a profile whose samples do not
// match its sample types is refused, not indexed out of range later.
func TestParseInputMalformedSamples(t *testing.T) {
	p, err := profile.ParseData(fixture(t, "leaky-03.pb.gz"))
	if err != nil {
		t.Fatal(err)
	}
	p.Sample[0].Value = p.Sample[0].Value[:2]
	var b bytes.Buffer
	// Write does not check; CheckValid in ParseData does, so this is
	// refused one way or the other.
	if err := p.Write(&b); err != nil {
		t.Fatal(err)
	}
	if _, err := ParseInput("in", b.Bytes(), 0); err == nil {
		t.Fatal("a sample with 2 values of 4 was accepted")
	}
}

func TestReadInputFiles(t *testing.T) {
	dir := t.TempDir()
	legacy := filepath.Join(dir, "heap.txt")
	if err := os.WriteFile(legacy, ownProfile(t, "heap", 1), 0o644); err != nil {
		t.Fatal(err)
	}
	mtime := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	if err := os.Chtimes(legacy, mtime, mtime); err != nil {
		t.Fatal(err)
	}
	in, err := ReadInput(context.Background(), legacy, InputOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if in.Kind != InputHeap || !in.Time.Equal(mtime) {
		t.Errorf("legacy heap text: kind %s, time %v; want heap at the file's time %v", in.Kind, in.Time, mtime)
	}
	pb := filepath.Join("testdata", "heap", "leaky-03.pb.gz")
	in, err = ReadInput(context.Background(), pb, InputOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(pb); in.Time.Equal(fi.ModTime()) || in.Time.IsZero() {
		t.Errorf("protocol buffer at %v: want the profile's own time, not the file's", in.Time)
	}

	tests := []struct {
		name string
		path string
		opts InputOptions
		want string
	}{
		{"missing", filepath.Join(dir, "nosuch.pb.gz"), InputOptions{}, "nosuch.pb.gz: no such file or directory"},
		{"directory", dir, InputOptions{}, "is a directory, not a profile"},
		{"too large", pb, InputOptions{MaxSize: 1000}, "leaky-03.pb.gz: 18.5 KiB: larger than the size limit of 1000 B"},
	}
	for _, tt := range tests {
		_, err := ReadInput(context.Background(), tt.path, tt.opts)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v; want an error containing %q", tt.name, err, tt.want)
		}
	}
}

// TestReadInputURLs fetches from a server on the loopback interface that
// misbehaves in every way a sick daemon's endpoint can.
func TestReadInputURLs(t *testing.T) {
	heap := fixture(t, "leaky-03.pb.gz")
	release := make(chan struct{})
	mux := http.NewServeMux()
	mux.HandleFunc("/heap", func(w http.ResponseWriter, r *http.Request) { w.Write(heap) })
	mux.HandleFunc("/text", func(w http.ResponseWriter, r *http.Request) { w.Write(ownProfile(t, "heap", 1)) })
	mux.HandleFunc("/big", func(w http.ResponseWriter, r *http.Request) { w.Write(make([]byte, 3000)) })
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	mux.HandleFunc("/stall", func(w http.ResponseWriter, r *http.Request) {
		w.Write(heap[:100])
		w.(http.Flusher).Flush()
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	mux.HandleFunc("/fail", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "profiling disabled\nsecond line", http.StatusForbidden)
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	defer close(release)

	before := time.Now()
	in, err := ReadInput(context.Background(), srv.URL+"/text", InputOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if in.Kind != InputHeap || in.Time.Before(before) || in.Time.After(time.Now()) || in.Name != srv.URL+"/text" {
		t.Errorf("legacy text by URL: %s at %v named %s; want heap at the time of the fetch", in.Kind, in.Time, in.Name)
	}
	if in, err = ReadInput(context.Background(), srv.URL+"/heap", InputOptions{}); err != nil || in.Kind != InputHeap {
		t.Fatalf("heap by URL: %+v, %v", in, err)
	}

	// A port nothing listens on: one that was just closed.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + l.Addr().String() + "/heap"
	l.Close()

	short := 200 * time.Millisecond
	tests := []struct {
		name string
		url  string
		opts InputOptions
		want string
	}{
		{"error status", srv.URL + "/fail", InputOptions{}, "GET " + srv.URL + "/fail: 403 Forbidden: profiling disabled"},
		{"not found", srv.URL + "/nosuch", InputOptions{}, "404 Not Found"},
		{"too large", srv.URL + "/big", InputOptions{MaxSize: 2000}, "/big: larger than the size limit of 2 KiB"},
		{"no answer", srv.URL + "/slow", InputOptions{Timeout: short}, "/slow: no answer within 200ms"},
		{"body stalls", srv.URL + "/stall", InputOptions{Timeout: short}, "/stall: body not read within 200ms"},
		{"connection refused", closed, InputOptions{}, "connection refused"},
		{"not a profile", srv.URL + "/", InputOptions{}, "404"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			_, err := ReadInput(context.Background(), tt.url, tt.opts)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("ReadInput(%s) = %v; want an error containing %q", tt.url, err, tt.want)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("took %v", d)
			}
		})
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := ReadInput(ctx, srv.URL+"/heap", InputOptions{}); !errors.Is(err, context.Canceled) {
		t.Errorf("fetch with a cancelled context: %v", err)
	}
}

// TestSnapshotInput checks that a snapshot written by the tracker decodes
// into the same findings as the snapshot itself.
func TestSnapshotInput(t *testing.T) {
	r := tracker.New(tracker.WithStacks(tracker.StacksAlways))
	s := r.StartSession("worker", nil)
	r.Track("socket", s, "127.0.0.1:6379")
	s.Stop()
	snap := r.Snapshot()
	path := filepath.Join(t.TempDir(), "snapshot.json")
	if err := r.WriteSnapshot(path); err != nil {
		t.Fatal(err)
	}
	in, err := ReadInput(context.Background(), path, InputOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := FromSnapshot(snap, SnapshotOptions{}).Findings
	got := FromSnapshot(in.Snapshot, SnapshotOptions{}).Findings
	if len(got) != 1 || len(want) != 1 || got[0].Signature != want[0].Signature || got[0].Subject != "socket 127.0.0.1:6379" {
		t.Errorf("findings %+v, want %+v", got, want)
	}
	if !in.Time.Equal(in.Snapshot.Time) || in.Time.Before(snap.Time) {
		t.Errorf("time %v, want the snapshot's %v", in.Time, in.Snapshot.Time)
	}
}

// FuzzParseInput feeds ParseInput anything: it must return an input of one
// kind, or an error naming the input, and never panic or hang. A profile
// it accepts must survive the analyses, and show no growth against itself.
func FuzzParseInput(f *testing.F) {
	for _, name := range []string{"leaky-01.pb.gz", "tracker-03.pb.gz", "snapshot-03.json"} {
		f.Add(fixture(f, name))
	}
	f.Add(gunzipped(f, fixture(f, "leaky-01.pb.gz")))
	f.Add([]byte("heap profile: 1: 64 [2: 128] @ heap/1048576\n1: 64 [2: 128] @ 0x10 0x20\n#\t0xf\tmain.f+0x1\tmain.go:3\n#\t0x1f\tmain.main+0x1\tmain.go:9\n"))
	// A stack whose runtime frames the comments leave out (0x5), named by
	// another stack that is all runtime.
	f.Add([]byte("heap profile: 2: 96 [3: 160] @ heap/1048576\n1: 64 [2: 128] @ 0x5 0x10 0x20\n#\t0xf\tmain.f+0x1\tmain.go:3\n#\t0x1f\tmain.main+0x1\tmain.go:9\n\n1: 32 [1: 32] @ 0x5 0x6\n#\t0x4\truntime.mallocgc+0x1\tmalloc.go:1\n#\t0x5\truntime.main+0x1\tproc.go:1\n"))
	f.Add([]byte(`{"schema": "leakcheck.report/1.1", "findings": [{"kind": "growth"}]}`))
	f.Add([]byte("goroutine profile: total 1\n1 @ 0x1 0x2\n#\t0x1\tmain.f+0x1\tmain.go:3\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		in, err := ParseInput("fuzz", data, 1<<20)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "fuzz: ") {
				t.Fatalf("error %q does not name the input", err)
			}
			return
		}
		switch in.Kind {
		case InputHeap, InputTrackerProfile:
			a, err := AnalyzeProfiles([]*Input{in}, HeapOptions{})
			if err != nil {
				return // e.g. no usable sample type
			}
			_ = a
			a, err = AnalyzeProfiles([]*Input{in, in}, HeapOptions{MinGrowth: 1})
			if err != nil {
				t.Fatalf("the profile analyses once but not against itself: %v", err)
			}
			if len(a.Findings) > 0 {
				t.Fatalf("a profile grows against itself: %v", subjects(a.Findings))
			}
		case InputGoroutine, InputSnapshot, InputReport:
		default:
			t.Fatalf("unknown kind %q", in.Kind)
		}
	})
}

// FuzzParseFrameComment checks the parser of legacy heap comments.
func FuzzParseFrameComment(f *testing.F) {
	for _, s := range []string{
		"#\t0x6c8d2c\tmain.(*cache).put+0x14c\t\t/src/main.go:56", "#\t0x1", "# Alloc = 5", "#\t0x10\tf+0x1\tf.go:-1",
		"#\t0xffffffffffffffffff\tf\tf.go:1", "#\t0x1\t+0x1\tf.go:1",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		addr, fn, file, ln, ok := parseFrameComment([]byte(line))
		if !ok {
			return
		}
		if fn == "" || file == "" || ln < 0 || !strings.HasPrefix(line, "#\t0x") ||
			!strings.Contains(strings.ToLower(line), fmt.Sprintf("%x", addr)) || !strings.Contains(line, file) {
			t.Fatalf("parseFrameComment(%q) = %#x %q %q %d", line, addr, fn, file, ln)
		}
	})
}

// TestFormats checks which format recognizes each form of input, by its
// head only, and that what none recognizes is refused.
func TestFormats(t *testing.T) {
	heap := gunzipped(t, fixture(t, "leaky-03.pb.gz"))
	big := bytes.Repeat(heap, sniffSize/len(heap)+2) // concatenated messages are one message
	random := make([]byte, sniffSize)
	for i := range random {
		random[i] = byte(i*7919 + i>>8) // deterministic, no structure
	}
	tests := []struct {
		name string
		data []byte
		want string // the format's name; "" for none
	}{
		{"tracker snapshot", fixture(t, "snapshot-03.json"), "tracker snapshot or leakcheck report"},
		{"legacy heap text", ownProfile(t, "heap", 1), "legacy heap profile"},
		{"goroutine dump", ownProfile(t, "goroutine", 2), "goroutine dump"},
		{"goroutine debug=1", ownProfile(t, "goroutine", 1), "goroutine dump"},
		{"threadcreate text", ownProfile(t, "threadcreate", 1), "legacy pprof text"},
		{"heap protocol buffer", heap, "pprof protocol buffer"},
		{"heap protocol buffer past the head", big, "pprof protocol buffer"},
		{"goroutine protocol buffer", gunzipped(t, ownProfile(t, "goroutine", 0)), "pprof protocol buffer"},
		{"zeros", make([]byte, sniffSize), ""},
		{"a protocol buffer cut short", heap[:len(heap)/2], ""},
		{"patterned bytes", random, ""},
		{"text", []byte("hello\n"), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			head := tt.data[:min(len(tt.data), sniffSize)]
			got := ""
			if f := detect(head); f != nil {
				got = f.name
			}
			if got != tt.want {
				t.Errorf("detected as %q, want %q", got, tt.want)
			}
		})
	}
}

// TestReadInputStdin reads "-", with the limits of any input.
func TestReadInputStdin(t *testing.T) {
	pb := fixture(t, "leaky-03.pb.gz")
	tests := []struct {
		name  string
		stdin io.Reader
		opts  InputOptions
		want  string // "" for a heap profile
	}{
		{"heap profile", bytes.NewReader(pb), InputOptions{}, ""},
		{"empty", strings.NewReader(""), InputOptions{}, "-: empty"},
		{"garbage without end", endlessReader{}, InputOptions{}, "-: not a profile leakcheck reads"},
		{"too large", bytes.NewReader(pb), InputOptions{MaxSize: 1000}, "-: larger than the size limit of 1000 B"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.opts.Stdin = tt.stdin
			in, err := ReadInput(context.Background(), "-", tt.opts)
			if tt.want == "" {
				if err != nil || in.Kind != InputHeap || in.Name != "-" {
					t.Fatalf("ReadInput(-) = %+v, %v; want a heap profile", in, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("ReadInput(-) = %v; want an error containing %q", err, tt.want)
			}
		})
	}
}

// endlessReader is input without end: 0xff bytes.
type endlessReader struct{}

func (endlessReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 0xff
	}
	return len(p), nil
}
