package fleet

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"math/bits"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/common/model"
	"google.golang.org/protobuf/encoding/protowire"
)

// bitWriter writes bits most significant first, for encodeXOR.
type bitWriter struct {
	b []byte
	n int // bits written
}

func (w *bitWriter) writeBits(v uint64, n int) {
	for i := n - 1; i >= 0; i-- {
		if w.n%8 == 0 {
			w.b = append(w.b, 0)
		}
		if v>>i&1 == 1 {
			w.b[len(w.b)-1] |= 1 << (7 - w.n%8)
		}
		w.n++
	}
}

// encodeXOR writes samples in the XOR chunk format described in
// xorchunk.go, choosing the narrowest bucket for each delta of deltas, as
// Prometheus does; the tests read its chunks back with decodeXOR, and
// TestRemoteReadAgainstPrometheus checks decodeXOR on Prometheus's own.
func encodeXOR(ts []int64, vs []float64) []byte {
	w := &bitWriter{b: binary.BigEndian.AppendUint16(nil, uint16(len(ts)))}
	w.n = 16
	var delta int64
	var prev uint64
	leading, trailing := -1, 0
	for i, t := range ts {
		v := math.Float64bits(vs[i])
		switch i {
		case 0:
			for _, c := range binary.AppendVarint(nil, t) {
				w.writeBits(uint64(c), 8)
			}
			w.writeBits(v, 64)
			prev = v
			continue
		case 1:
			delta = t - ts[0]
			for _, c := range binary.AppendUvarint(nil, uint64(delta)) {
				w.writeBits(uint64(c), 8)
			}
		default:
			d := t - ts[i-1]
			dod := d - delta
			delta = d
			fits := func(n int) bool { return -(int64(1)<<(n-1)-1) <= dod && dod <= int64(1)<<(n-1) }
			switch {
			case dod == 0:
				w.writeBits(0, 1)
			case fits(14):
				w.writeBits(0b10, 2)
				w.writeBits(uint64(dod), 14)
			case fits(17):
				w.writeBits(0b110, 3)
				w.writeBits(uint64(dod), 17)
			case fits(20):
				w.writeBits(0b1110, 4)
				w.writeBits(uint64(dod), 20)
			default:
				w.writeBits(0b1111, 4)
				w.writeBits(uint64(dod), 64)
			}
		}
		x := v ^ prev
		prev = v
		if x == 0 {
			w.writeBits(0, 1)
			continue
		}
		w.writeBits(1, 1)
		l, tr := min(bits.LeadingZeros64(x), 31), bits.TrailingZeros64(x)
		if leading >= 0 && l >= leading && tr >= trailing {
			w.writeBits(0, 1)
			w.writeBits(x>>trailing, 64-leading-trailing)
			continue
		}
		leading, trailing = l, tr
		sig := 64 - l - tr
		w.writeBits(1, 1)
		w.writeBits(uint64(l), 5)
		w.writeBits(uint64(sig&63), 6)
		w.writeBits(x>>tr, sig)
	}
	return w.b
}

func TestDecodeXOR(t *testing.T) {
	rnd := rand.New(rand.NewPCG(1, 2))
	regular := func(n int, step int64, v func(i int) float64) ([]int64, []float64) {
		ts, vs := make([]int64, n), make([]float64, n)
		for i := range n {
			ts[i], vs[i] = 1_700_000_000_000+int64(i)*step, v(i)
		}
		return ts, vs
	}
	tests := []struct {
		name string
		ts   []int64
		vs   []float64
	}{
		{"one sample", []int64{1_700_000_000_123}, []float64{42}},
		{"negative first timestamp", []int64{-5000, -4000, 1000}, []float64{1, 2, 3}},
		{"constant", nil, nil},
		{"counter", nil, nil},
		{"noisy floats", nil, nil},
		// Deltas of deltas at each bucket's edges: 14, 17, 20 and 64 bits.
		{"bucket edges", []int64{0, 1000, 2000, 2000 + 1000 + 8192, 2000 + 1000 + 8192 + 1000, 30000, 30001, 30002 + 65536, 200000, 200001, 200002 + 524288, 1 << 40, 1<<40 + 1, 1<<40 + 2 - 8191},
			[]float64{1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1}},
		{"special values", []int64{0, 15000, 30000, 45000, 60000, 75000},
			[]float64{0, math.Inf(1), math.Float64frombits(staleNaN), -0.0, math.MaxFloat64, math.SmallestNonzeroFloat64}},
		{"jittered scrapes", nil, nil},
	}
	tests[2].ts, tests[2].vs = regular(120, 15000, func(int) float64 { return 1024 })
	tests[3].ts, tests[3].vs = regular(120, 15000, func(i int) float64 { return float64(i * i) })
	tests[4].ts, tests[4].vs = regular(120, 15000, func(int) float64 { return rnd.NormFloat64() * 1e6 })
	tests[7].ts, tests[7].vs = regular(120, 15000, func(i int) float64 { return float64(200e6 + rnd.IntN(4e6)) })
	for i := range tests[7].ts {
		tests[7].ts[i] += rnd.Int64N(40) - 20
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			chunk := encodeXOR(tt.ts, tt.vs)
			ts, vs, err := decodeXOR(chunk, []int64{-1}, []float64{-1})
			if err != nil {
				t.Fatal(err)
			}
			if ts[0] != -1 || vs[0] != -1 {
				t.Fatalf("decodeXOR did not append to what it was given")
			}
			if !slices.Equal(ts[1:], tt.ts) {
				t.Errorf("timestamps %v, want %v", ts[1:], tt.ts)
			}
			for i, v := range vs[1:] {
				if math.Float64bits(v) != math.Float64bits(tt.vs[i]) {
					t.Errorf("value %d: %v (%x), want %v (%x)", i, v, math.Float64bits(v), tt.vs[i], math.Float64bits(tt.vs[i]))
				}
			}
			// Every cut short is an error: the last byte holds at least
			// one bit of the last sample.
			for n := range len(chunk) {
				if _, _, err := decodeXOR(chunk[:n], nil, nil); err == nil {
					t.Errorf("chunk cut to %d of %d bytes decoded without error", n, len(chunk))
				}
			}
		})
	}
}

func TestDecodeXORErrors(t *testing.T) {
	// Two samples: the first 0 at time 0, then the second's bytes.
	two := func(second ...byte) []byte {
		b := []byte{0, 2, 0}
		b = binary.BigEndian.AppendUint64(b, 0)
		return append(b, second...)
	}
	tests := []struct {
		name  string
		chunk []byte
		want  string
	}{
		{"empty", nil, "chunk of 0 bytes"},
		{"count without samples", []byte{0, 3}, "first timestamp"},
		{"first value cut", []byte{0, 1, 2, 0x40}, "first value"},
		{"second timestamp cut", two(0x80), "second timestamp"},
		// Delta 4, then value bits 1 1, 31 leading zeros and 0 (64)
		// meaningful bits.
		{"width over 64", two(4, 0b1111_1110, 0), "exceed 64"},
		// Delta 4, then value bits 1 0: the width of the value before.
		{"width reused before given", two(4, 0b1000_0000), "reuses a width never given"},
		// Delta 4, value bits 1 1, 1 leading zero, 31 meaningful bits of
		// which 3 are there.
		{"value bits cut", two(4, 0b1100_0010, 0b1111_1000), "value 2 of 2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := decodeXOR(tt.chunk, nil, nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("decodeXOR(% x): %v, want an error with %q", tt.chunk, err, tt.want)
			}
		})
	}
}

// snappyLiteralDecode reads snappy's block format, literals only.
func snappyLiteralDecode(b []byte) ([]byte, error) {
	n, k := binary.Uvarint(b)
	if k <= 0 {
		return nil, errors.New("no length")
	}
	b = b[k:]
	var out []byte
	for len(b) > 0 {
		tag := b[0]
		if tag&3 != 0 {
			return nil, errors.New("not a literal")
		}
		l := int(tag >> 2)
		b = b[1:]
		if l >= 60 {
			w := l - 59
			l = 0
			for i := range w {
				l |= int(b[i]) << (8 * i)
			}
			b = b[w:]
		}
		l++
		out = append(out, b[:l]...)
		b = b[l:]
	}
	if uint64(len(out)) != n {
		return nil, errors.New("length differs")
	}
	return out, nil
}

func TestSnappyLiteral(t *testing.T) {
	for _, n := range []int{0, 1, 60, 61, 256, 257, 65536, 65537, 200_000} {
		in := make([]byte, n)
		for i := range in {
			in[i] = byte(i * 7)
		}
		out, err := snappyLiteralDecode(snappyLiteral(in))
		if err != nil || !bytes.Equal(out, in) {
			t.Errorf("%d bytes: round trip gave %d bytes, %v", n, len(out), err)
		}
	}
}

// chunkedResponse builds a ChunkedReadResponse message.
func chunkedResponse(query int64, series ...chunkedSeries) []byte {
	var b []byte
	for _, s := range series {
		var sb []byte
		for _, name := range slices.Sorted(func(yield func(string) bool) {
			for k := range s.labels {
				if !yield(string(k)) {
					return
				}
			}
		}) {
			var lb []byte
			lb = protowire.AppendTag(lb, fieldLabelName, protowire.BytesType)
			lb = protowire.AppendString(lb, name)
			lb = protowire.AppendTag(lb, fieldLabelValue, protowire.BytesType)
			lb = protowire.AppendString(lb, string(s.labels[model.LabelName(name)]))
			sb = protowire.AppendTag(sb, fieldSeriesLabels, protowire.BytesType)
			sb = protowire.AppendBytes(sb, lb)
		}
		for _, c := range s.chunks {
			var cb []byte
			cb = protowire.AppendTag(cb, 1, protowire.VarintType) // min time, unread
			cb = protowire.AppendVarint(cb, 5)
			cb = protowire.AppendTag(cb, fieldChunkType, protowire.VarintType)
			cb = protowire.AppendVarint(cb, chunkXOR)
			cb = protowire.AppendTag(cb, fieldChunkData, protowire.BytesType)
			cb = protowire.AppendBytes(cb, c)
			sb = protowire.AppendTag(sb, fieldSeriesChunks, protowire.BytesType)
			sb = protowire.AppendBytes(sb, cb)
		}
		b = protowire.AppendTag(b, fieldRespSeries, protowire.BytesType)
		b = protowire.AppendBytes(b, sb)
	}
	if query != 0 {
		b = protowire.AppendTag(b, fieldRespQueryIndex, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(query))
	}
	return b
}

// frame wraps a message as the streamed answer does.
func frame(msg []byte) []byte {
	b := binary.AppendUvarint(nil, uint64(len(msg)))
	b = binary.BigEndian.AppendUint32(b, crc32.Checksum(msg, crc32.MakeTable(crc32.Castagnoli)))
	return append(b, msg...)
}

// streamOf is a small streamed answer of two queries: query 0 has series a
// split over two frames, and b; query 1 has c.
func streamOf(t testing.TB) []byte {
	chunk := func(from, n int) []byte {
		ts, vs := make([]int64, n), make([]float64, n)
		for i := range n {
			ts[i], vs[i] = int64(from+i)*1000, float64(from+i)
		}
		return encodeXOR(ts, vs)
	}
	a := model.Metric{"__name__": "process_open_fds", "instance": "a"}
	b := model.Metric{"__name__": "process_open_fds", "instance": "b"}
	c := model.Metric{"__name__": "go_goroutines", "instance": "a"}
	var s []byte
	s = append(s, frame(chunkedResponse(0, chunkedSeries{labels: a, chunks: [][]byte{chunk(0, 120), chunk(120, 30)}}))...)
	s = append(s, frame(chunkedResponse(0, chunkedSeries{labels: a, chunks: [][]byte{chunk(150, 10)}}, chunkedSeries{labels: b, chunks: [][]byte{chunk(0, 5)}}))...)
	s = append(s, frame(chunkedResponse(1, chunkedSeries{labels: c, chunks: [][]byte{chunk(3, 4)}}))...)
	return s
}

// collect decodes a stream into a summary of each series: its query,
// instance, first and last timestamp and count of samples.
func collect(r io.Reader, queries int) ([]string, error) {
	var out []string
	err := decodeStream(r, queries, func(q int, s *rawSeries) error {
		if len(s.ts) == 0 { // a series without chunks
			out = append(out, fmt.Sprintf("%d %s none", q, s.labels["instance"]))
			return nil
		}
		out = append(out, fmt.Sprintf("%d %s %d-%d %d", q, s.labels["instance"], s.ts[0], s.ts[len(s.ts)-1], len(s.ts)))
		return nil
	})
	return out, err
}

func TestDecodeStream(t *testing.T) {
	good := streamOf(t)
	got, err := collect(bytes.NewReader(good), 2)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"0 a 0-159000 160", "0 b 0-4000 5", "1 a 3000-6000 4"}
	if !slices.Equal(got, want) {
		t.Errorf("series %q, want %q", got, want)
	}

	badCRC := slices.Clone(good)
	badCRC[len(badCRC)-1] ^= 1
	huge := binary.AppendUvarint(nil, maxFrame+1)
	wrongType := protowire.AppendVarint(protowire.AppendTag(nil, fieldRespSeries, protowire.VarintType), 3)
	histogram := chunkedResponse(0, chunkedSeries{labels: model.Metric{"a": "b"}, chunks: [][]byte{{0, 0}}})
	histogram[len(histogram)-4-1] = 2 // the chunk's encoding: the last varint before its data
	tests := []struct {
		name   string
		stream []byte
		want   string
	}{
		{"bad checksum", badCRC, "checksum"},
		{"cut in a frame", good[:len(good)-3], io.ErrUnexpectedEOF.Error()},
		{"cut in a length", []byte{0x80}, io.ErrUnexpectedEOF.Error()},
		{"cut in a checksum", []byte{3, 0, 0}, io.ErrUnexpectedEOF.Error()},
		{"frame too large", huge, "more than the"},
		{"query beyond the request", frame(chunkedResponse(7)), "query 7 of 2"},
		{"not protobuf", frame([]byte{0xff, 0xff}), "ChunkedReadResponse"},
		{"wrong wire type", frame(wrongType), "wire type"},
		{"not XOR", frame(histogram), "not XOR"},
		{"bad chunk", frame(chunkedResponse(0, chunkedSeries{labels: model.Metric{"a": "b"}, chunks: [][]byte{{0, 9, 1}}})), "XOR chunk"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := collect(bytes.NewReader(tt.stream), 2)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("decodeStream: %v, want an error with %q", err, tt.want)
			}
		})
	}
	if got, err := collect(bytes.NewReader(nil), 2); err != nil || len(got) != 0 {
		t.Errorf("empty stream: %q, %v; want nothing and no error", got, err)
	}
}

// FuzzDecodeStream checks that any answer decodes or is an error, never a
// panic or a hang: the bytes as a stream, and as one frame's message (which
// the checksum would otherwise keep the fuzzer from reaching).
func FuzzDecodeStream(f *testing.F) {
	f.Add(streamOf(f))
	f.Add(chunkedResponse(1, chunkedSeries{labels: model.Metric{"a": "b"}, chunks: [][]byte{encodeXOR([]int64{1, 2}, []float64{3, 4})}}))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		collect(bytes.NewReader(b), 2)
		collect(bytes.NewReader(frame(b)), 2)
	})
}

// FuzzDecodeXOR checks that any chunk decodes or is an error, and that a
// chunk encodeXOR made decodes to what it was made of.
func FuzzDecodeXOR(f *testing.F) {
	f.Add(encodeXOR([]int64{0, 15000, 30001, 45000}, []float64{1, 1.5, -3, 1e300}), int64(0), 0.0)
	f.Add([]byte{0, 1}, int64(-1), math.NaN())
	f.Fuzz(func(t *testing.T, chunk []byte, dt int64, v float64) {
		decodeXOR(chunk, nil, nil)
		ts := []int64{1000, 2000, 2000 + dt/2, 2000 + dt}
		if !slices.IsSorted(ts) {
			return
		}
		vs := []float64{v, v * 2, -v, 0}
		gotTs, gotVs, err := decodeXOR(encodeXOR(ts, vs), nil, nil)
		if err != nil || !slices.Equal(gotTs, ts) {
			t.Fatalf("round trip of %v: %v, %v", ts, gotTs, err)
		}
		for i := range vs {
			if math.Float64bits(gotVs[i]) != math.Float64bits(vs[i]) {
				t.Fatalf("round trip of %v: %v", vs, gotVs)
			}
		}
	})
}

func TestAlignToSteps(t *testing.T) {
	const lb = 300_000
	stale := math.Float64frombits(staleNaN)
	tests := []struct {
		name   string
		ts     []int64
		vs     []float64
		start  int64
		end    int64
		step   int64
		wantTs []int64
		wantVs []float64
	}{
		{"samples on the steps", []int64{0, 60_000, 120_000}, []float64{1, 2, 3}, 0, 120_000, 60_000,
			[]int64{0, 60_000, 120_000}, []float64{1, 2, 3}},
		{"latest at or before each step", []int64{1, 59_999, 60_001}, []float64{1, 2, 3}, 0, 120_000, 60_000,
			[]int64{60_000, 120_000}, []float64{2, 3}},
		{"no older than the lookback", []int64{0}, []float64{7}, 0, 600_000, 100_000,
			[]int64{0, 100_000, 200_000, 300_000}, []float64{7, 7, 7, 7}},
		{"nothing after a stale marker", []int64{0, 50_000, 250_000}, []float64{1, stale, 4}, 0, 300_000, 100_000,
			[]int64{0, 300_000}, []float64{1, 4}},
		{"a gap longer than the lookback", []int64{0, 900_000}, []float64{1, 2}, 0, 1_000_000, 200_000,
			[]int64{0, 200_000, 1_000_000}, []float64{1, 1, 2}},
		// Prometheus 2's lookback includes a sample exactly its length old.
		{"samples before the range", []int64{-200_000, -100_000}, []float64{5, 6}, 0, 400_000, 100_000,
			[]int64{0, 100_000, 200_000}, []float64{6, 6, 6}},
		{"none", nil, nil, 0, 100, 10, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := alignToSteps(tt.ts, tt.vs, tt.start, tt.end, tt.step, lb)
			var gotTs []int64
			var gotVs []float64
			for _, p := range got {
				gotTs, gotVs = append(gotTs, int64(p.Timestamp)), append(gotVs, float64(p.Value))
			}
			if !slices.Equal(gotTs, tt.wantTs) || !slices.Equal(gotVs, tt.wantVs) {
				t.Errorf("got %v %v, want %v %v", gotTs, gotVs, tt.wantTs, tt.wantVs)
			}
		})
	}
}

func TestSortSamples(t *testing.T) {
	s := &rawSeries{ts: []int64{10, 20, 15, 20, 30}, vs: []float64{1, 2, 3, 4, 5}}
	s.sortSamples()
	if !slices.Equal(s.ts, []int64{10, 15, 20, 30}) || !slices.Equal(s.vs, []float64{1, 3, 4, 5}) {
		t.Errorf("sorted to %v %v, want [10 15 20 30] [1 3 4 5] (the later of equal times kept)", s.ts, s.vs)
	}
}

func TestParseMatchers(t *testing.T) {
	tests := []struct {
		in      string
		want    []labelMatcher
		wantErr bool
	}{
		{in: "", want: nil},
		{in: `job="api"`, want: []labelMatcher{{matchEqual, "job", "api"}}},
		{in: ` job = "api" , env=~"prod.*",x!="a\"b",  y!~` + "`a|b`" + `,`, want: []labelMatcher{
			{matchEqual, "job", "api"}, {matchRegexp, "env", "prod.*"}, {matchNotEqual, "x", `a"b`}, {matchNotRegexp, "y", "a|b"}}},
		{in: `instance=~"10\\.0\\..*"`, want: []labelMatcher{{matchRegexp, "instance", `10\.0\..*`}}},
		{in: `job='api'`, wantErr: true},
		{in: `job="api" env="x"`, wantErr: true},
		{in: `job=api`, wantErr: true},
		{in: `9job="a"`, wantErr: true},
		{in: `job<"a"`, wantErr: true},
		{in: `job="a`, wantErr: true},
	}
	for _, tt := range tests {
		got, err := parseMatchers(tt.in)
		if (err != nil) != tt.wantErr || !slices.Equal(got, tt.want) {
			t.Errorf("parseMatchers(%q) = %v, %v; want %v, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestSumWithout(t *testing.T) {
	p := func(t int64, v float64) model.SamplePair {
		return model.SamplePair{Timestamp: model.Time(t), Value: model.SampleValue(v)}
	}
	m := model.Matrix{
		{Metric: model.Metric{"__name__": "x", "kind": "conn", "owner_kind": "a"}, Values: []model.SamplePair{p(0, 1), p(10, 2)}},
		{Metric: model.Metric{"__name__": "x", "kind": "conn", "owner_kind": "b"}, Values: []model.SamplePair{p(10, 5), p(20, 6)}},
		{Metric: model.Metric{"__name__": "x", "kind": "file", "owner_kind": "a"}, Values: []model.SamplePair{p(0, 9)}},
	}
	got := sumWithout(m, "owner_kind")
	want := model.Matrix{
		{Metric: model.Metric{"kind": "conn"}, Values: []model.SamplePair{p(0, 1), p(10, 7), p(20, 6)}},
		{Metric: model.Metric{"kind": "file"}, Values: []model.SamplePair{p(0, 9)}},
	}
	if got.String() != want.String() {
		t.Errorf("sum without (owner_kind):\n%v\nwant\n%v", got, want)
	}
}
