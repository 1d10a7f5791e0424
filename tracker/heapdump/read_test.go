package heapdump

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"runtime"
	"strings"
	"testing"
)

// enc writes the dump format, for tests that need a dump no runtime would
// write: tiny, corrupt or lying.
type enc struct{ bytes.Buffer }

func (e *enc) u(vs ...uint64) *enc {
	for _, v := range vs {
		e.Write(binary.AppendUvarint(nil, v))
	}
	return e
}

func (e *enc) s(s string) *enc { e.u(uint64(len(s))); e.WriteString(s); return e }

func (e *enc) words(ws ...uint64) *enc {
	e.u(uint64(8 * len(ws)))
	for _, w := range ws {
		e.Write(binary.LittleEndian.AppendUint64(nil, w))
	}
	return e
}

// tinyDump is a heap of four objects: a global points at A, A and B point
// at each other and at C; D points at C but nothing points at D.
func tinyDump() []byte { return tinyDumpOrdered([]int{0, 1, 2, 3}) }

// tinyDumpOrdered writes tinyDump's objects in the given order (the
// runtime writes them span by span, not in address order).
func tinyDumpOrdered(order []int) []byte {
	const base = 0x10000
	A, B, C, D := uint64(base), uint64(base+32), uint64(base+64), uint64(base+96)
	e := &enc{}
	e.WriteString(Header)
	e.u(tagParams, 0, 8, base, base+0x1000).s("amd64").s("go1.26").u(2)
	objects := []func(){
		func() { e.u(tagObject, A).words(B, C, 0, 0).u(fieldPtr, 0, fieldPtr, 8, fieldEol) },
		func() { e.u(tagObject, B).words(A, 0, 0, 0).u(fieldPtr, 0, fieldEol) },
		func() { e.u(tagObject, C).words(7, 0, 0, 0).u(fieldEol) },
		func() { e.u(tagObject, D).words(C+8, 0, 0, 0).u(fieldPtr, 0, fieldEol) }, // an interior pointer
	}
	for _, i := range order {
		objects[i]()
	}
	e.u(tagData, 0x500).words(0, A).u(fieldPtr, 8, fieldEol)
	e.u(tagMemProf, 0xb1, 32, 1).s("main.track").s("/src/server.go").u(41).u(3, 0)
	e.u(tagAllocSample, A, 0xb1, tagAllocSample, B, 0xb1)
	e.u(tagEOF)
	return e.Bytes()
}

func TestReadTiny(t *testing.T) {
	for _, order := range [][]int{{0, 1, 2, 3}, {3, 2, 1, 0}, {2, 0, 3, 1}, {1, 3, 0, 2}} {
		testReadTiny(t, tinyDumpOrdered(order))
	}
}

func testReadTiny(t *testing.T, dump []byte) {
	t.Helper()
	d, err := Read(bytes.NewReader(dump), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if d.NumObjects() != 4 || d.Sampled != 2 || len(d.Roots) != 1 {
		t.Fatalf("objects %d, sampled %d, roots %d; want 4, 2, 1", d.NumObjects(), d.Sampled, len(d.Roots))
	}
	g := Analyze(d, nil)
	A, B, C, D := d.Find(0x10000), d.Find(0x10020+5), d.Find(0x10040), d.Find(0x10060)
	if got := d.Pointers(D); len(got) != 1 || int(got[0]) != C {
		t.Errorf("D's interior pointer resolved to %v, want [%d]", got, C)
	}
	for _, tt := range []struct {
		obj       int
		reachable bool
		retained  uint64
		dom       int
	}{
		{A, true, 96, -1}, {B, true, 32, A}, {C, true, 32, A}, {D, false, 0, -1},
	} {
		if g.Reachable(tt.obj) != tt.reachable || g.Retained(tt.obj) != tt.retained || g.Dominator(tt.obj) != tt.dom {
			t.Errorf("object %d: reachable %v retained %d dominator %d; want %v %d %d", tt.obj,
				g.Reachable(tt.obj), g.Retained(tt.obj), g.Dominator(tt.obj), tt.reachable, tt.retained, tt.dom)
		}
	}
	if got := g.ReachableBytes(); got != 96 {
		t.Errorf("ReachableBytes = %d, want 96 (A, B, C; not D)", got)
	}
	if got := g.Accumulation(A); got != A {
		t.Errorf("Accumulation(A) = %d, want A (%d): its children keep a third each", got, A)
	}
	p, ok := g.PathTo(B)
	want := "data 0x508 (global) → object (alloc at main.track server.go:41) → object (alloc at main.track server.go:41) : retains 32 B"
	if !ok || p.String() != want {
		t.Errorf("path to B:\n got %s\nwant %s", p, want)
	}
	sites := g.BySite()
	if len(sites) == 0 || sites[0].Name != "main.track server.go:41" || sites[0].Retained != 96 || sites[0].Objects != 2 {
		t.Errorf("top site %+v, want main.track with 2 objects retaining 96 bytes (B counted inside A once)", sites)
	}
}

// TestReadErrors checks that every way a dump can be bad is a FormatError
// naming the record and where it starts.
func TestReadErrors(t *testing.T) {
	hdr := []byte(Header)
	params := (&enc{}).u(tagParams, 0, 8, 0x10000, 0x11000).s("amd64").s("go1.26").u(2).Bytes()
	pre := append(append([]byte{}, hdr...), params...)
	at := int64(len(pre))
	tests := []struct {
		name   string
		data   []byte
		record string
		offset int64
		msg    string
	}{
		{"empty", nil, "header", 0, "truncated"},
		{"not a dump", []byte("go1.7 heap dumq\nxx"), "header", 0, "not a heap dump"},
		{"no eof", pre, "tag", at, "truncated"},
		{"unknown tag", append(pre[:len(pre):len(pre)], 99), "unknown (tag 99)", at, "unknown record tag"},
		{"lying object length", append(pre[:len(pre):len(pre)], (&enc{}).u(tagObject, 0x10000, 1<<40).Bytes()...), "object", at, "over the limit"},
		{"object cut short", append(pre[:len(pre):len(pre)], (&enc{}).u(tagObject, 0x10000, 1<<20).Bytes()...), "object", at, "truncated"},
		{"field outside", append(pre[:len(pre):len(pre)], (&enc{}).u(tagObject, 0x10000).words(0).u(fieldPtr, 8, fieldEol, tagEOF).Bytes()...), "object", at, "outside"},
		{"lying string", append(pre[:len(pre):len(pre)], (&enc{}).u(tagOtherRoot, 1<<50).Bytes()...), "other root", at, "over the limit"},
		{"deep stack", append(pre[:len(pre):len(pre)], (&enc{}).u(tagMemProf, 1, 8, 1<<30).Bytes()...), "memprof bucket", at, "over the limit"},
		{"bad pointer size", append(hdr[:len(hdr):len(hdr)], (&enc{}).u(tagParams, 0, 3, 0, 0).Bytes()...), "params", int64(len(hdr)), "pointer size"},
		{"overlap", append(pre[:len(pre):len(pre)], (&enc{}).u(tagObject, 0x10000).words(0, 0).u(fieldEol).u(tagObject, 0x10008).words(0).u(fieldEol, tagEOF).Bytes()...), "eof", -1, "overlap"},
		{"varint overflow", append(pre[:len(pre):len(pre)], bytes.Repeat([]byte{0xff}, 11)...), "tag", at, "overflows"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Read(bytes.NewReader(tt.data), Limits{})
			var fe *FormatError
			if !errors.As(err, &fe) {
				t.Fatalf("error %v is not a *FormatError", err)
			}
			if fe.Record != tt.record || (tt.offset >= 0 && fe.Offset != tt.offset) || !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("got %q (record %q offset %d), want record %q offset %d mentioning %q", err, fe.Record, fe.Offset, tt.record, tt.offset, tt.msg)
			}
		})
	}
}

// TestLyingLengthAllocates checks that a length the input cannot back
// costs memory in proportion to the input, not to the length.
func TestLyingLengthAllocates(t *testing.T) {
	hdr := append([]byte(Header), (&enc{}).u(tagObject, 0x10000, 900<<20).Bytes()...)
	data := append(hdr, make([]byte, 1000)...)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err := Read(bytes.NewReader(data), Limits{})
	runtime.ReadMemStats(&after)
	if err == nil {
		t.Fatal("a 900 MiB object in 1 KB of input was accepted")
	}
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 8<<20 {
		t.Errorf("reading 1 KB that claims a 900 MiB object allocated %d bytes", grew)
	}
}

// TestTruncatedRealDump cuts a real dump at many places: each is an error,
// never a panic, and the offset is inside the input.
func TestTruncatedRealDump(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs a program")
	}
	data, _ := dumpOf(t, "closure")
	if _, err := Read(bytes.NewReader(data), Limits{}); err != nil {
		t.Fatalf("whole dump: %v", err)
	}
	for cut := 0; cut < len(data); cut += 1 + len(data)/257 {
		_, err := Read(bytes.NewReader(data[:cut]), Limits{})
		var fe *FormatError
		if !errors.As(err, &fe) {
			t.Fatalf("cut at %d: %v is not a *FormatError", cut, err)
		}
		if fe.Offset > int64(cut) {
			t.Fatalf("cut at %d: error at offset %d, past the end", cut, fe.Offset)
		}
	}
}

func FuzzReadHeapDump(f *testing.F) {
	f.Add(tinyDump())
	f.Add([]byte(Header))
	f.Add(append([]byte(Header), (&enc{}).u(tagGoroutine, 1, 2, 3, 4, 5, 0, 0, 6).s("chan receive").u(0, 0, 0, 0, tagStackFrame, 100, 0, 0).words(0x10000, 0).u(1, 2, 3).s("main.main").u(fieldPtr, 0, fieldPtr, 100, fieldEol, tagEOF).Bytes()...))
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := Read(bytes.NewReader(data), Limits{MaxObjectBytes: 1 << 20, MaxObjects: 1 << 16})
		if err != nil {
			var fe *FormatError
			if !errors.As(err, &fe) {
				t.Fatalf("%v is not a *FormatError", err)
			}
			return
		}
		g := Analyze(d, nil)
		for i := range d.NumObjects() {
			if p, ok := g.PathTo(i); ok {
				_ = p.String()
			}
		}
		g.BySite()
	})
}

// TestIndexMatchesBinarySearch checks the page index against a plain
// binary search at every object's edges in a real dump.
func TestIndexMatchesBinarySearch(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs a program")
	}
	data, _ := dumpOf(t, "many", "-n", "5000")
	d, err := Read(bytes.NewReader(data), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	x := newIndex(d.addr, d.size, d.Params.ArenaStart, d.Params.ArenaEnd)
	if x.first == nil {
		t.Fatal("no page index for a real dump")
	}
	for i, a := range d.addr {
		for _, v := range []uint64{a - 1, a, a + uint64(d.size[i]) - 1, a + uint64(d.size[i]), a + indexPage} {
			if got, want := x.find(v), findObject(d.addr, d.size, v); got != want {
				t.Fatalf("find(%#x) = %d, binary search says %d", v, got, want)
			}
		}
	}
}

// TestMaxRoots: a data segment with more pointer slots than the limit is
// an error, not an unbounded list of roots.
func TestMaxRoots(t *testing.T) {
	e := &enc{}
	e.WriteString(Header)
	e.u(tagParams, 0, 8, 0x10000, 0x11000).s("amd64").s("go1.26").u(2)
	e.u(tagObject, 0x10000).words(0).u(fieldEol)
	e.u(tagData, 0x500).words(0x10000, 0x10000, 0x10000).u(fieldPtr, 0, fieldPtr, 8, fieldPtr, 16, fieldEol, tagEOF)
	if _, err := Read(bytes.NewReader(e.Bytes()), Limits{MaxRoots: 2}); err == nil || !strings.Contains(err.Error(), "data segment record") || !strings.Contains(err.Error(), "more than 2 roots") {
		t.Errorf("3 roots with a limit of 2: %v", err)
	}
	if _, err := Read(bytes.NewReader(e.Bytes()), Limits{MaxRoots: 3}); err != nil {
		t.Errorf("3 roots with a limit of 3: %v", err)
	}
}

// emptyReader returns nothing, forever, without an error.
type emptyReader struct{}

func (emptyReader) Read([]byte) (int, error) { return 0, nil }

func TestReaderWithoutProgress(t *testing.T) {
	_, err := Read(emptyReader{}, Limits{})
	if !errors.Is(err, io.ErrNoProgress) {
		t.Errorf("a reader that returns nothing: %v, want io.ErrNoProgress", err)
	}
}
