package fleet

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/common/model"
	"google.golang.org/protobuf/encoding/protowire"
)

// Prometheus's remote read API (POST /api/v1/read, on by default since 2.0,
// streamed since 2.13) sends the stored chunks of the selected series as
// they are, instead of evaluating a query at every step and encoding each
// point as JSON: reading a fleet through it costs Prometheus little more
// than reading its disk. The request is a snappy-compressed protobuf
// ReadRequest; with the STREAMED_XOR_CHUNKS response type the answer is a
// stream of frames, each a uvarint length, a big-endian CRC32 (Castagnoli)
// of the message and a ChunkedReadResponse message. The messages are read
// with protowire, field by field; their numbers are Prometheus's prompb
// ones, listed here.
const (
	// ReadRequest
	fieldReadQueries       = 1
	fieldReadAcceptedTypes = 2
	responseStreamedChunks = 1 // ResponseType STREAMED_XOR_CHUNKS
	// Query
	fieldQueryStart    = 1
	fieldQueryEnd      = 2
	fieldQueryMatchers = 3
	// LabelMatcher
	fieldMatcherType  = 1
	fieldMatcherName  = 2
	fieldMatcherValue = 3
	// ChunkedReadResponse
	fieldRespSeries     = 1
	fieldRespQueryIndex = 2
	// ChunkedSeries
	fieldSeriesLabels = 1
	fieldSeriesChunks = 2
	// Label
	fieldLabelName  = 1
	fieldLabelValue = 2
	// Chunk
	fieldChunkType = 3
	fieldChunkData = 4
	chunkXOR       = 1 // Chunk.Encoding XOR

	// The answer's Content-Type: the type and its proto parameter.
	streamedType  = "application/x-streamed-protobuf"
	streamedProto = "prometheus.ChunkedReadResponse"
	// maxFrame bounds one frame; Prometheus sends about 1MiB at most.
	maxFrame = 64 << 20
	// lookback is how far back PromQL looks for a sample at each step
	// (Prometheus's --query.lookback-delta, 5m unless changed).
	lookback = 5 * time.Minute
)

// staleNaN is the value Prometheus writes when a series disappears; PromQL
// shows no value after it.
const staleNaN = 0x7ff0000000000002

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// matchType is a LabelMatcher's type, numbered as in prompb.
type matchType int

const (
	matchEqual matchType = iota
	matchNotEqual
	matchRegexp
	matchNotRegexp
)

// labelMatcher is one matcher of a remote read query.
type labelMatcher struct {
	typ         matchType
	name, value string
}

// parseMatchers reads the matchers inside a selector's braces, as
// selectorMatchers returns them: name, operator and a double-quoted or
// backquoted value, separated by commas. Anything else (PromQL's
// single-quoted strings, for one) is an error, and the caller reads through
// the query API instead, which takes the selector as it is.
func parseMatchers(s string) ([]labelMatcher, error) {
	var out []labelMatcher
	rest := strings.TrimSpace(s)
	for rest != "" {
		i := 0
		for i < len(rest) && (rest[i] == '_' || 'a' <= rest[i] && rest[i] <= 'z' || 'A' <= rest[i] && rest[i] <= 'Z' || i > 0 && '0' <= rest[i] && rest[i] <= '9') {
			i++
		}
		if i == 0 {
			return nil, fmt.Errorf("matchers %q: want a label name at %q", s, rest)
		}
		m := labelMatcher{name: rest[:i]}
		rest = strings.TrimSpace(rest[i:])
		switch {
		case strings.HasPrefix(rest, "=~"):
			m.typ, rest = matchRegexp, rest[2:]
		case strings.HasPrefix(rest, "!~"):
			m.typ, rest = matchNotRegexp, rest[2:]
		case strings.HasPrefix(rest, "!="):
			m.typ, rest = matchNotEqual, rest[2:]
		case strings.HasPrefix(rest, "="):
			m.typ, rest = matchEqual, rest[1:]
		default:
			return nil, fmt.Errorf("matchers %q: want =, !=, =~ or !~ after %s", s, m.name)
		}
		rest = strings.TrimSpace(rest)
		q, err := strconv.QuotedPrefix(rest)
		if err != nil || q[0] == '\'' {
			return nil, fmt.Errorf("matchers %q: want a double-quoted value for %s", s, m.name)
		}
		m.value, _ = strconv.Unquote(q)
		out = append(out, m)
		rest = strings.TrimSpace(rest[len(q):])
		if rest != "" {
			r, ok := strings.CutPrefix(rest, ",")
			if !ok {
				return nil, fmt.Errorf("matchers %q: want a comma before %q", s, rest)
			}
			rest = strings.TrimSpace(r)
		}
	}
	return out, nil
}

// encodeReadRequest returns the protobuf ReadRequest for one query per
// matcher set over [startMs, endMs], asking for streamed chunks.
func encodeReadRequest(startMs, endMs int64, queries [][]labelMatcher) []byte {
	var b []byte
	for _, ms := range queries {
		var q []byte
		q = protowire.AppendTag(q, fieldQueryStart, protowire.VarintType)
		q = protowire.AppendVarint(q, uint64(startMs))
		q = protowire.AppendTag(q, fieldQueryEnd, protowire.VarintType)
		q = protowire.AppendVarint(q, uint64(endMs))
		for _, m := range ms {
			var mb []byte
			if m.typ != matchEqual { // proto3 leaves zero values out
				mb = protowire.AppendTag(mb, fieldMatcherType, protowire.VarintType)
				mb = protowire.AppendVarint(mb, uint64(m.typ))
			}
			mb = protowire.AppendTag(mb, fieldMatcherName, protowire.BytesType)
			mb = protowire.AppendString(mb, m.name)
			mb = protowire.AppendTag(mb, fieldMatcherValue, protowire.BytesType)
			mb = protowire.AppendString(mb, m.value)
			q = protowire.AppendTag(q, fieldQueryMatchers, protowire.BytesType)
			q = protowire.AppendBytes(q, mb)
		}
		b = protowire.AppendTag(b, fieldReadQueries, protowire.BytesType)
		b = protowire.AppendBytes(b, q)
	}
	b = protowire.AppendTag(b, fieldReadAcceptedTypes, protowire.BytesType)
	b = protowire.AppendBytes(b, protowire.AppendVarint(nil, responseStreamedChunks))
	return b
}

// snappyLiteral encodes b in snappy's block format using literals only:
// valid snappy that any decoder reads, without compressing. A request of a
// few kilobytes gains nothing from compression, and this spares a
// dependency.
func snappyLiteral(b []byte) []byte {
	out := binary.AppendUvarint(make([]byte, 0, len(b)+len(b)/65536*3+16), uint64(len(b)))
	for len(b) > 0 {
		n := min(len(b), 65536)
		switch l := n - 1; {
		case l < 60:
			out = append(out, byte(l)<<2)
		case l < 1<<8:
			out = append(out, 60<<2, byte(l))
		default:
			out = append(out, 61<<2, byte(l), byte(l>>8))
		}
		out = append(out, b[:n]...)
		b = b[n:]
	}
	return out
}

// chunkedSeries is one ChunkedSeries of a frame: its labels, and its XOR
// chunks' data (pointing into the frame).
type chunkedSeries struct {
	labels model.Metric
	chunks [][]byte
}

// parseChunkedReadResponse decodes one frame's message. Chunks of any
// encoding other than XOR are an error: the metrics read are floats.
func parseChunkedReadResponse(b []byte) (queryIndex int64, series []chunkedSeries, err error) {
	var raw [][]byte
	err = eachField(b, func(num protowire.Number, typ protowire.Type, v []byte, x uint64) error {
		switch {
		case num == fieldRespSeries && typ == protowire.BytesType:
			raw = append(raw, v)
		case num == fieldRespQueryIndex && typ == protowire.VarintType:
			queryIndex = int64(x)
		case num == fieldRespSeries || num == fieldRespQueryIndex:
			return fmt.Errorf("field %d has wire type %d", num, typ)
		}
		return nil
	})
	if err != nil {
		return 0, nil, fmt.Errorf("ChunkedReadResponse: %w", err)
	}
	for _, r := range raw {
		s := chunkedSeries{labels: model.Metric{}}
		err := eachField(r, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) error {
			if (num == fieldSeriesLabels || num == fieldSeriesChunks) && typ != protowire.BytesType {
				return fmt.Errorf("field %d has wire type %d", num, typ)
			}
			switch num {
			case fieldSeriesLabels:
				var name, value string
				err := eachField(v, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) error {
					if (num == fieldLabelName || num == fieldLabelValue) && typ != protowire.BytesType {
						return fmt.Errorf("label field %d has wire type %d", num, typ)
					}
					switch num {
					case fieldLabelName:
						name = string(v)
					case fieldLabelValue:
						value = string(v)
					}
					return nil
				})
				if err != nil {
					return err
				}
				s.labels[model.LabelName(name)] = model.LabelValue(value)
			case fieldSeriesChunks:
				var enc uint64
				var data []byte
				err := eachField(v, func(num protowire.Number, typ protowire.Type, v []byte, x uint64) error {
					switch {
					case num == fieldChunkType && typ == protowire.VarintType:
						enc = x
					case num == fieldChunkData && typ == protowire.BytesType:
						data = v
					case num == fieldChunkType || num == fieldChunkData:
						return fmt.Errorf("chunk field %d has wire type %d", num, typ)
					}
					return nil
				})
				if err != nil {
					return err
				}
				if enc != chunkXOR {
					return fmt.Errorf("chunk encoding %d, not XOR (%d): not a float series", enc, chunkXOR)
				}
				s.chunks = append(s.chunks, data)
			}
			return nil
		})
		if err != nil {
			return 0, nil, fmt.Errorf("ChunkedSeries: %w", err)
		}
		series = append(series, s)
	}
	return queryIndex, series, nil
}

// eachField calls f for every field of a protobuf message: v holds a
// length-delimited field's bytes, x a varint or fixed field's value.
func eachField(b []byte, f func(num protowire.Number, typ protowire.Type, v []byte, x uint64) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return fmt.Errorf("field tag: %w", protowire.ParseError(n))
		}
		b = b[n:]
		var v []byte
		var x uint64
		switch typ {
		case protowire.VarintType:
			x, n = protowire.ConsumeVarint(b)
		case protowire.BytesType:
			v, n = protowire.ConsumeBytes(b)
		case protowire.Fixed64Type:
			x, n = protowire.ConsumeFixed64(b)
		case protowire.Fixed32Type:
			var x32 uint32
			x32, n = protowire.ConsumeFixed32(b)
			x = uint64(x32)
		default:
			n = protowire.ConsumeFieldValue(num, typ, b)
		}
		if n < 0 {
			return fmt.Errorf("field %d: %w", num, protowire.ParseError(n))
		}
		b = b[n:]
		if err := f(num, typ, v, x); err != nil {
			return err
		}
	}
	return nil
}

// frameReader reads the frames of a streamed remote read answer.
type frameReader struct {
	r   *bufio.Reader
	buf []byte
}

// next returns the next frame's message, valid until the next call, or
// io.EOF at the end of the stream.
func (f *frameReader) next() ([]byte, error) {
	size, err := binary.ReadUvarint(f.r)
	if err == io.EOF {
		return nil, io.EOF
	}
	if err != nil {
		return nil, fmt.Errorf("frame length: %w", noEOF(err))
	}
	if size > maxFrame {
		return nil, fmt.Errorf("frame of %d bytes, more than the %d allowed", size, maxFrame)
	}
	var sum [4]byte
	if _, err := io.ReadFull(f.r, sum[:]); err != nil {
		return nil, fmt.Errorf("frame checksum: %w", noEOF(err))
	}
	if cap(f.buf) < int(size) {
		f.buf = make([]byte, size)
	}
	f.buf = f.buf[:size]
	if _, err := io.ReadFull(f.r, f.buf); err != nil {
		return nil, fmt.Errorf("frame of %d bytes: %w", size, noEOF(err))
	}
	if got, want := crc32.Checksum(f.buf, castagnoli), binary.BigEndian.Uint32(sum[:]); got != want {
		return nil, fmt.Errorf("frame of %d bytes: checksum %08x, want %08x", size, got, want)
	}
	return f.buf, nil
}

// noEOF turns an end of stream inside a frame into ErrUnexpectedEOF.
func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// rawSeries is the samples of one series, in time order once sorted.
type rawSeries struct {
	labels model.Metric
	ts     []int64
	vs     []float64
}

// decodeStream reads a streamed remote read answer to the end, and calls
// done with each series of each query, its samples decoded, as soon as the
// series is whole. The series' sample slices are reused after done returns.
func decodeStream(r io.Reader, queries int, done func(query int, s *rawSeries) error) error {
	fr := frameReader{r: bufio.NewReaderSize(r, 64<<10)}
	// Series come whole, one after another, perhaps split over frames:
	// a frame that goes on with the last series repeats its labels.
	cur := &rawSeries{}
	curQuery := -1
	flush := func() error {
		if curQuery < 0 {
			return nil
		}
		err := done(curQuery, cur)
		cur.ts, cur.vs = cur.ts[:0], cur.vs[:0]
		return err
	}
	for {
		msg, err := fr.next()
		if err == io.EOF {
			return flush()
		}
		if err != nil {
			return err
		}
		qi, series, err := parseChunkedReadResponse(msg)
		if err != nil {
			return err
		}
		if qi < 0 || qi >= int64(queries) {
			return fmt.Errorf("frame for query %d of %d", qi, queries)
		}
		for _, s := range series {
			if int(qi) != curQuery || !cur.labels.Equal(s.labels) {
				if err := flush(); err != nil {
					return err
				}
				cur.labels, curQuery = s.labels, int(qi)
			}
			for _, c := range s.chunks {
				if cur.ts, cur.vs, err = decodeXOR(c, cur.ts, cur.vs); err != nil {
					return fmt.Errorf("series %v: %w", s.labels, err)
				}
			}
		}
	}
}

// sortSamples puts a series' samples in time order, keeping the last of
// equal timestamps: chunks may overlap.
func (s *rawSeries) sortSamples() {
	if slices.IsSorted(s.ts) {
		ordered := true
		for i := 1; i < len(s.ts); i++ {
			if s.ts[i] == s.ts[i-1] {
				ordered = false
				break
			}
		}
		if ordered {
			return
		}
	}
	idx := make([]int, len(s.ts))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int { return cmp.Compare(s.ts[a], s.ts[b]) })
	ts, vs := make([]int64, 0, len(idx)), make([]float64, 0, len(idx))
	for _, i := range idx {
		if n := len(ts); n > 0 && ts[n-1] == s.ts[i] {
			vs[n-1] = s.vs[i]
			continue
		}
		ts, vs = append(ts, s.ts[i]), append(vs, s.vs[i])
	}
	s.ts, s.vs = ts, vs
}

// alignToSteps returns the values a range query of the series would: at
// every step from startMs to endMs, the latest sample at or before it and
// no older than the lookback, unless that sample marks the series stale.
// It reads samples in time order.
func alignToSteps(ts []int64, vs []float64, startMs, endMs, stepMs, lookbackMs int64) []model.SamplePair {
	if len(ts) == 0 || stepMs <= 0 || endMs < startMs {
		return nil
	}
	out := make([]model.SamplePair, 0, min(int((endMs-startMs)/stepMs)+1, len(ts)+16))
	i := -1 // the latest sample at or before t
	for t := startMs; t <= endMs; t += stepMs {
		for i+1 < len(ts) && ts[i+1] <= t {
			i++
		}
		if i < 0 || ts[i] < t-lookbackMs || math.Float64bits(vs[i]) == staleNaN {
			if i+1 == len(ts) && (i < 0 || ts[i] < t-lookbackMs) {
				break // no later sample can show
			}
			continue
		}
		out = append(out, model.SamplePair{Timestamp: model.Time(t), Value: model.SampleValue(vs[i])})
	}
	return out
}

// refusedError says the server does not offer streamed remote read; the
// query API is used instead.
type refusedError struct{ reason string }

func (e *refusedError) Error() string { return "remote read refused: " + e.reason }

// readBatch reads the default metrics of the instances the matchers pick
// through the remote read API, in one request, and returns them as the
// query API would: one answer per metric, each series aligned to the step
// grid, sums taken where the metric's query sums. A server that refuses
// remote read gives a *refusedError. An answer cut short (a proxy between
// Prometheus and leakcheck can lose a stream midway) is asked for again, up
// to readAttempts times in all.
func (c *client) readBatch(ctx context.Context, metrics []metric, matchers []labelMatcher) ([]fetched, error) {
	for attempt := 1; ; attempt++ {
		out, err := c.readBatchOnce(ctx, metrics, matchers)
		if err == nil || attempt == readAttempts || ctx.Err() != nil || !errors.Is(err, io.ErrUnexpectedEOF) {
			return out, err
		}
	}
}

// readAttempts is how many times readBatch asks for a batch whose answer
// was cut short.
const readAttempts = 3

func (c *client) readBatchOnce(ctx context.Context, metrics []metric, matchers []labelMatcher) ([]fetched, error) {
	// Prometheus rounds the query API's times to the millisecond; so does
	// this, for the same steps.
	start := c.opts.End.Add(-c.opts.Range)
	startMs, endMs := start.Round(time.Millisecond).UnixMilli(), c.opts.End.Round(time.Millisecond).UnixMilli()
	stepMs := c.opts.Step.Milliseconds()
	queries := make([][]labelMatcher, len(metrics))
	for i, m := range metrics {
		queries[i] = append([]labelMatcher{{typ: matchEqual, name: model.MetricNameLabel, value: m.source}}, matchers...)
	}
	body := snappyLiteral(encodeReadRequest(startMs-lookback.Milliseconds(), endMs, queries))

	select {
	case c.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-c.sem }()
	ctx, cancel := context.WithTimeout(ctx, c.opts.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(c.url, "/")+"/api/v1/read", bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("prometheus at %s: remote read request: %w", c.url, err)
	}
	req.Header.Set("Content-Type", "application/x-protobuf")
	req.Header.Set("Content-Encoding", "snappy")
	req.Header.Set("X-Prometheus-Remote-Read-Version", "0.1.0")
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, c.explain("remote read", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return nil, &refusedError{reason: fmt.Sprintf("%s: %s", resp.Status, strings.TrimSpace(string(msg)))}
	}
	ct := resp.Header.Get("Content-Type")
	if typ, params, err := mime.ParseMediaType(ct); err != nil || typ != streamedType || params["proto"] != streamedProto {
		return nil, &refusedError{reason: fmt.Sprintf("answered %q, not streamed chunks", ct)}
	}
	mats := make([]model.Matrix, len(metrics))
	seen := make([]map[model.Fingerprint]bool, len(metrics))
	err = decodeStream(resp.Body, len(metrics), func(q int, s *rawSeries) error {
		fp := s.labels.Fingerprint()
		if seen[q] == nil {
			seen[q] = map[model.Fingerprint]bool{}
		}
		if seen[q][fp] {
			return fmt.Errorf("series %v sent twice, not whole", s.labels)
		}
		seen[q][fp] = true
		s.sortSamples()
		vals := alignToSteps(s.ts, s.vs, startMs, endMs, stepMs, lookback.Milliseconds())
		if len(vals) > 0 {
			mats[q] = append(mats[q], &model.SampleStream{Metric: s.labels, Values: vals})
		}
		return nil
	})
	if err != nil {
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		return nil, c.explain("remote read", err)
	}
	out := make([]fetched, len(metrics))
	for i, m := range metrics {
		mat := mats[i]
		if m.sumWithout != "" {
			mat = sumWithout(mat, model.LabelName(m.sumWithout))
		}
		out[i] = fetched{metric: m, matrix: mat}
	}
	return out, nil
}

// sumWithout adds up, step by step, the series that differ only in the
// label (and the metric name), as PromQL's sum without (label) does.
func sumWithout(m model.Matrix, label model.LabelName) model.Matrix {
	groups := map[model.Fingerprint]*model.SampleStream{}
	var out model.Matrix
	for _, s := range m {
		ls := s.Metric.Clone()
		delete(ls, label)
		delete(ls, model.MetricNameLabel)
		fp := ls.Fingerprint()
		g := groups[fp]
		if g == nil {
			groups[fp] = &model.SampleStream{Metric: ls, Values: slices.Clone(s.Values)}
			out = append(out, groups[fp])
			continue
		}
		g.Values = addAligned(g.Values, s.Values)
	}
	return out
}

// addAligned sums two series on the same step grid; a step either has is
// in the sum.
func addAligned(a, b []model.SamplePair) []model.SamplePair {
	out := make([]model.SamplePair, 0, max(len(a), len(b)))
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		switch {
		case j == len(b) || i < len(a) && a[i].Timestamp < b[j].Timestamp:
			out = append(out, a[i])
			i++
		case i == len(a) || b[j].Timestamp < a[i].Timestamp:
			out = append(out, b[j])
			j++
		default:
			out = append(out, model.SamplePair{Timestamp: a[i].Timestamp, Value: a[i].Value + b[j].Value})
			i++
			j++
		}
	}
	return out
}

// isRefused reports whether err says remote read is not offered.
func isRefused(err error) bool {
	var r *refusedError
	return errors.As(err, &r)
}
