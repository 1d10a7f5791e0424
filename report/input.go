package report

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/pprof/profile"

	"github.com/leakcheck/leakcheck/probes/bounded"
	"github.com/leakcheck/leakcheck/tracker"
	"github.com/leakcheck/leakcheck/tracker/heapdump"
)

// Limits on what ReadInput and ParseInput accept. Inputs are untrusted: a
// profile may come from a daemon that is already sick, or from anyone.
const (
	// DefaultMaxInputSize bounds the bytes read from a file or URL, and
	// again the bytes a gzipped input decompresses to.
	DefaultMaxInputSize = 256 << 20
	// DefaultFetchTimeout bounds one fetch of a URL, from connecting to
	// reading the last byte of the body.
	DefaultFetchTimeout = 30 * time.Second
)

// InputKind says what an input holds.
type InputKind string

// The kinds of input that ParseInput recognizes.
const (
	// InputHeap is a Go heap profile: a gzipped protocol buffer, or the
	// legacy text form (heap?debug=1).
	InputHeap InputKind = "heap"
	// InputGoroutine is a goroutine profile or dump in any form: the
	// protocol buffer (debug=0), the debug=1 and debug=2 texts, a crash
	// dump, and the goroutineleak profile (then GoroutineDump.Leak is set).
	InputGoroutine InputKind = "goroutine"
	// InputTrackerProfile is leakcheck's tracker profile of live records
	// (tracker.Registry.WriteProfile).
	InputTrackerProfile InputKind = "tracker-profile"
	// InputSnapshot is a tracker snapshot in JSON (tracker.Snapshot).
	InputSnapshot InputKind = "snapshot"
	// InputReport is a leakcheck report in JSON (see ReadReport).
	InputReport InputKind = "report"
	// InputHeapDump is a heap dump written by runtime/debug.WriteHeapDump:
	// every live object, its pointers and the roots (see AnalyzeHeapDump).
	InputHeapDump InputKind = "heapdump"
)

// Input is one decoded input: a file or a URL, recognized by its content.
// Exactly one of Profile, Goroutines, Snapshot and Report is set, as Kind
// says; but a profile reduced by Summarize keeps none.
type Input struct {
	// Name is the file name or URL, for messages.
	Name string
	Kind InputKind
	// Time is when the input was taken: the profile's, dump's, snapshot's
	// or report's own time when it has one; otherwise the file's
	// modification time, or the time a URL was fetched.
	Time time.Time
	// Raw is the input exactly as read, compressed or not: always from
	// ParseInput, from ReadInput only with InputOptions.KeepRaw.
	Raw []byte
	// Source says where the input came from, for Analyze: inputs of one
	// source and kind were taken of one process. The files named together
	// are one source (""), each polled URL another.
	Source string

	Profile    *profile.Profile // InputHeap and InputTrackerProfile, until summarized
	Goroutines *GoroutineDump   // InputGoroutine
	Snapshot   *tracker.Snapshot
	Report     *Report
	HeapDump   *heapdump.Dump // InputHeapDump

	// sites is a heap or tracker profile reduced by Summarize.
	sites *siteSet
}

// InputOptions configures ReadInput.
type InputOptions struct {
	// MaxSize bounds the bytes read and the bytes decompressed; 0 means
	// DefaultMaxInputSize.
	MaxSize int64
	// Timeout bounds the fetch of a URL; 0 means DefaultFetchTimeout.
	Timeout time.Duration
	// Client fetches URLs; nil means a client of the fetch's own, with
	// the default transport's settings, closed when done.
	Client *http.Client
	// KeepRaw keeps the input as read, compressed or not, in Input.Raw, to
	// be saved; otherwise Raw is nil, and a series of inputs costs only
	// their decoded forms.
	KeepRaw bool
	// Stdin is what the name "-" reads; nil means os.Stdin.
	Stdin io.Reader
}

func (o InputOptions) maxSize() int64 {
	if o.MaxSize <= 0 {
		return DefaultMaxInputSize
	}
	return o.MaxSize
}

// ReadInput reads name, a file, an http or https URL, or "-" for standard
// input, and decodes it as ParseInput does. A URL must answer 200 OK within
// the timeout. Input is read as it is decoded: what no format recognizes is
// refused after its first kilobytes (sniffSize), and nothing is read past
// MaxSize, compressed or decompressed. Errors name the input.
func ReadInput(ctx context.Context, name string, opts InputOptions) (*Input, error) {
	var (
		r    io.Reader
		when time.Time
	)
	limit := opts.maxSize()
	switch {
	case name == "-":
		r = opts.Stdin
		if r == nil {
			r = os.Stdin
		}
		r, when = &source{r: r, what: "reading standard input"}, time.Now()
	case isURL(name):
		timeout := opts.Timeout
		if timeout <= 0 {
			timeout = DefaultFetchTimeout
		}
		client := opts.Client
		if client == nil {
			// A client of its own, whose connection is closed when done: a
			// one-off fetch leaves nothing behind.
			client = &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
			defer client.CloseIdleConnections()
		}
		ctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		body, err := bounded.Open(ctx, client, name, limit)
		if errors.Is(err, context.DeadlineExceeded) && ctx.Err() != nil {
			return nil, fmt.Errorf("GET %s: no answer within %v", name, timeout)
		}
		if err != nil {
			return nil, err
		}
		defer body.Close()
		r, when = &source{r: body, timeout: timeout, url: name}, time.Now()
	default:
		f, err := os.Open(name)
		if err != nil {
			return nil, err // *PathError names the file
		}
		defer f.Close()
		fi, err := f.Stat()
		if err != nil {
			return nil, err
		}
		if fi.IsDir() {
			return nil, fmt.Errorf("%s: is a directory, not a profile", name)
		}
		if fi.Mode().IsRegular() && fi.Size() > limit {
			return nil, fmt.Errorf("%s: %s: %w", name, bounded.FormatSize(fi.Size()), &bounded.LimitError{What: "input", Limit: limit})
		}
		r, when = &source{r: f, what: "reading " + name}, fi.ModTime()
	}
	in, err := readInput(name, r, limit, opts.KeepRaw)
	if err != nil {
		return nil, err
	}
	if in.Time.IsZero() {
		in.Time = when
	}
	return in, nil
}

// isURL reports whether name is to be fetched rather than opened.
func isURL(name string) bool {
	return strings.HasPrefix(name, "http://") || strings.HasPrefix(name, "https://")
}

// source is where an input's bytes come from. Its errors (but for a size
// limit, which readInput names) say what failed on what, and readInput
// passes them on as they are.
type source struct {
	r       io.Reader
	what    string        // "reading x.pb.gz"; empty for a URL, whose body names it
	url     string        // for a URL
	timeout time.Duration // for a URL
}

// sourceError is an error of a source, which names the source already.
type sourceError struct{ err error }

func (e *sourceError) Error() string { return e.err.Error() }
func (e *sourceError) Unwrap() error { return e.err }

func (s *source) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	switch {
	case err == nil || err == io.EOF:
	case s.url != "" && errors.Is(err, context.DeadlineExceeded):
		err = &sourceError{fmt.Errorf("GET %s: body not read within %v: %w", s.url, s.timeout, err)}
	case s.url != "":
		err = &sourceError{err} // the body names its URL
	default:
		if _, ok := errors.AsType[*bounded.LimitError](err); !ok {
			err = &sourceError{fmt.Errorf("%s: %w", s.what, err)}
		}
	}
	return n, err
}

// ParseInput recognizes data by its content, not its name, and decodes it.
// It reads Go heap profiles (gzipped protocol buffers and the legacy text
// form), goroutine profiles and dumps in every form (see ParseGoroutineText
// and GoroutinesFromProfile), leakcheck tracker profiles, tracker snapshots
// and leakcheck JSON reports (see formats). Gzipped input is decompressed
// here, to at most maxSize bytes (0 means DefaultMaxInputSize), so that a
// small file cannot inflate without bound. Anything else, and input that is
// empty, truncated or corrupt, is an error that names the input and says
// what was expected; ParseInput never panics.
func ParseInput(name string, data []byte, maxSize int64) (*Input, error) {
	if maxSize <= 0 {
		maxSize = DefaultMaxInputSize
	}
	in, err := readInput(name, bytes.NewReader(data), maxSize, false)
	if in != nil {
		in.Raw = data
	}
	return in, err
}

// sniffSize is how much of an input, decompressed, the formats' detectors
// see: enough for every header leakcheck reads, and a bound on what is read
// of an input that no format accepts.
const sniffSize = 64 << 10

// readInput reads an input from r, at most limit bytes compressed and
// decompressed, recognizes it by its first sniffSize bytes and decodes it.
// Errors name the input.
func readInput(name string, r io.Reader, limit int64, keepRaw bool) (in *Input, err error) {
	defer func() {
		// The parsers below are not ours; a panic in one of them is a
		// corrupt input, not a crash.
		if p := recover(); p != nil {
			in, err = nil, fmt.Errorf("corrupt input: the parser failed: %v", p)
		}
		if err != nil {
			if _, ok := errors.AsType[*sourceError](err); !ok {
				err = fmt.Errorf("%s: %w", name, err)
			}
		}
	}()
	var raw bytes.Buffer
	r = bounded.NewReader(r, limit, "input")
	if keepRaw {
		r = io.TeeReader(r, &raw)
	}
	head, err := readHead(r)
	if err != nil {
		return nil, err
	}
	body := io.MultiReader(bytes.NewReader(head), r)
	if bounded.IsGzip(head) {
		zr, err := bounded.NewGzipReader(body, limit)
		if err != nil {
			return nil, err
		}
		if head, err = readHead(zr); err != nil {
			return nil, err
		}
		if bounded.IsGzip(head) {
			return nil, errors.New("gzip inside gzip: not a profile")
		}
		body = io.MultiReader(bytes.NewReader(head), zr)
	}
	if len(head) < sniffSize && len(bytes.TrimSpace(head)) == 0 {
		return nil, fmt.Errorf("empty: %s", wantInputs)
	}
	f := detect(head)
	if f == nil {
		// Refused on its head: the rest is never read.
		if isText(head) {
			return nil, fmt.Errorf("unrecognized text (%s)", wantInputs)
		}
		return nil, fmt.Errorf("not a profile leakcheck reads (%s)", wantInputs)
	}
	data, err := io.ReadAll(body)
	if err != nil {
		return nil, err
	}
	in = &Input{Name: name}
	if err := f.decode(in, data); err != nil {
		return nil, err
	}
	if keepRaw {
		in.Raw = raw.Bytes()
	}
	return in, nil
}

// readHead reads the first sniffSize bytes of r, or all of it if shorter.
func readHead(r io.Reader) ([]byte, error) {
	head := make([]byte, sniffSize)
	n, err := io.ReadFull(r, head)
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		err = nil
	}
	return head[:n], err
}

// wantInputs says what ParseInput reads, for errors.
const wantInputs = "want a heap, goroutine or tracker profile, a goroutine dump, a heap dump, a tracker snapshot or a leakcheck report"

// A format is one form of input that leakcheck reads.
type format struct {
	name string
	// detect reports whether an input is in this form, by its first
	// sniffSize bytes, decompressed (all of it when shorter). It must not
	// accept what the decoder will refuse on sight: an input that no
	// detector accepts is refused before the rest of it is read.
	detect func(head []byte) bool
	// decode decodes the whole input, decompressed, and fills in in: Kind,
	// one of the decoded fields, and Time when the input has its own.
	decode func(in *Input, data []byte) error
}

// formats are the forms of input leakcheck reads, tried in order: the first
// whose detector accepts an input decodes it, so a form whose header is a
// prefix of another's comes after it.
//
// To add a format, write its two functions and add its entry here (and an
// InputKind, and the analysis that reads it, when it is a new kind). The
// pprof protocol buffer's detector is the least specific: it comes last.
var formats = []format{
	{"heap dump", IsHeapDump, (*Input).decodeHeapDump},
	{"tracker snapshot or leakcheck report", isJSON, (*Input).decodeJSON},
	{"legacy heap profile", isLegacyHeap, (*Input).decodeLegacyHeap},
	{"goroutine dump", IsGoroutineText, (*Input).decodeGoroutineText},
	{"legacy pprof text", isLegacyText, (*Input).decodeProfile},
	{"pprof protocol buffer", isProfileProto, (*Input).decodeProfile},
}

// detect returns the first format that accepts head, or nil.
func detect(head []byte) *format {
	for i := range formats {
		if formats[i].detect(head) {
			return &formats[i]
		}
	}
	return nil
}

func isJSON(head []byte) bool {
	text := bytes.TrimLeft(head, " \t\r\n")
	return len(text) > 0 && text[0] == '{'
}

func isLegacyHeap(head []byte) bool {
	return bytes.HasPrefix(bytes.TrimLeft(head, " \t\r\n"), []byte("heap profile:"))
}

// isLegacyText recognizes the other legacy text forms the pprof parser
// reads, so that they are named in errors: "threadcreate profile: total 9",
// and the sections of contention profiles ("--- contention").
func isLegacyText(head []byte) bool {
	text := bytes.TrimLeft(head, " \t\r\n")
	if bytes.HasPrefix(text, []byte("--- ")) {
		return true
	}
	line, _, _ := bytes.Cut(text, []byte("\n"))
	what, total, ok := bytes.Cut(bytes.TrimSpace(line), []byte(" profile: total "))
	return ok && len(what) > 0 && !bytes.ContainsAny(what, " \t") && len(total) > 0 && len(bytes.Trim(total, "0123456789")) == 0
}

// isProfileProto recognizes a pprof protocol buffer (profile.proto) by its
// head: every top-level field in it has a field number and wire type of
// that message, and is complete, but for one that runs past the head.
func isProfileProto(head []byte) bool {
	complete := len(head) < sniffSize
	fields := 0
	for b := head; len(b) > 0; {
		tag, n := binary.Uvarint(b)
		if n <= 0 {
			return !complete && fields > 0 && len(b) < 10
		}
		b = b[n:]
		num, wire := tag>>3, tag&7
		switch {
		case wire == 2 && (num >= 1 && num <= 6 || num == 11 || num == 13):
			size, n := binary.Uvarint(b)
			if n <= 0 {
				return !complete && fields > 0 && len(b) < 10
			}
			b = b[n:]
			if size > uint64(len(b)) {
				// A field past the head: fine if the head held a whole
				// one before it, and it fits a profile.
				return !complete && fields > 0 && size < 1<<32
			}
			b = b[size:]
		case wire == 0 && num >= 7 && num <= 15 && num != 11:
			_, n := binary.Uvarint(b)
			if n <= 0 {
				return !complete && fields > 0 && len(b) < 10
			}
			b = b[n:]
		default:
			return false
		}
		fields++
	}
	return fields > 0
}

// decodeHeapDump reads a heap dump (runtime/debug.WriteHeapDump) into its
// object graph; an error names the record and offset where it broke.
func (in *Input) decodeHeapDump(data []byte) error {
	d, err := heapdump.Read(bytes.NewReader(data), heapdump.Limits{})
	if err != nil {
		return fmt.Errorf("heap dump: %w", err)
	}
	in.Kind, in.HeapDump = InputHeapDump, d
	return nil
}

func (in *Input) decodeLegacyHeap(data []byte) error {
	p, err := parseProfile(data)
	if err != nil {
		return fmt.Errorf("legacy heap profile: %w", err)
	}
	symbolizeLegacyHeap(p, data)
	in.Kind, in.Profile = InputHeap, p
	return in.checkProfile()
}

func (in *Input) decodeGoroutineText(data []byte) error {
	d, err := ParseGoroutineText(data)
	if err != nil {
		return fmt.Errorf("goroutine dump: %w", err)
	}
	in.Kind, in.Goroutines, in.Time = InputGoroutine, d, d.Time
	return nil
}

// decodeProfile decodes a pprof profile: a goroutine profile becomes a
// dump; a heap or tracker profile is kept.
func (in *Input) decodeProfile(data []byte) error {
	p, err := parseProfile(data)
	if err != nil {
		return fmt.Errorf("not a profile leakcheck reads (%s): %w", wantInputs, err)
	}
	in.Profile = p
	if p.TimeNanos > 0 {
		in.Time = time.Unix(0, p.TimeNanos)
	}
	if g, _ := IsGoroutineProfile(p); g {
		d, err := GoroutinesFromProfile(p)
		if err != nil {
			return fmt.Errorf("goroutine profile: %w", err)
		}
		in.Kind, in.Profile, in.Goroutines = InputGoroutine, nil, d
		if !d.Time.IsZero() {
			in.Time = d.Time
		}
		return nil
	}
	switch {
	case isTrackerProfile(p):
		in.Kind = InputTrackerProfile
	case isHeapProfile(p):
		in.Kind = InputHeap
	default:
		return fmt.Errorf("%s, not one leakcheck reads (%s)", describeProfile(p), wantInputs)
	}
	return in.checkProfile()
}

// checkProfile rejects profiles whose samples do not match their sample
// types: the analyses index values by sample type.
func (in *Input) checkProfile() error {
	n := len(in.Profile.SampleType)
	if n == 0 {
		return errors.New("profile has no sample types")
	}
	for _, s := range in.Profile.Sample {
		if len(s.Value) != n {
			return fmt.Errorf("malformed profile: a sample has %d values for %d sample types", len(s.Value), n)
		}
	}
	return nil
}

// parseProfile parses a pprof profile, in protocol buffer or a legacy text
// form. data is decompressed already: a gzip header here is a second layer,
// which bounded.ParseProfile refuses.
func parseProfile(data []byte) (*profile.Profile, error) {
	return bounded.ParseProfile(data, int64(len(data)))
}

// isText reports whether data looks like text: UTF-8 without NUL or other
// control bytes but tabs and line ends, in its first kilobyte.
func isText(data []byte) bool {
	head := data[:min(len(data), 1024)]
	for i := 0; i < len(head); {
		r, n := utf8.DecodeRune(head[i:])
		if r == utf8.RuneError && n == 1 && (len(head) == len(data) || len(head)-i >= utf8.UTFMax) {
			return false // not UTF-8, unless a rune cut at the kilobyte
		}
		if r < ' ' && r != '\t' && r != '\n' && r != '\r' {
			return false
		}
		i += n
	}
	return true
}

func sampleTypes(p *profile.Profile) []string {
	var types []string
	for _, st := range p.SampleType {
		types = append(types, st.Type)
	}
	return types
}

// heapTypes are the sample types of Go heap profiles, protocol buffer or
// legacy.
var heapTypes = []string{"inuse_space", "inuse_objects", "alloc_space", "alloc_objects", "space", "objects"}

func isHeapProfile(p *profile.Profile) bool {
	return slices.ContainsFunc(sampleTypes(p), func(t string) bool { return slices.Contains(heapTypes, t) })
}

// isTrackerProfile recognizes tracker.Registry.WriteProfile's output: one
// sample type, records counted.
func isTrackerProfile(p *profile.Profile) bool {
	return len(p.SampleType) == 1 && p.SampleType[0].Type == "records" && p.SampleType[0].Unit == "count"
}

// describeProfile names a profile's type for an error: "a cpu profile
// (sample types samples, cpu)".
func describeProfile(p *profile.Profile) string {
	what := "a pprof profile"
	if p.PeriodType != nil && p.PeriodType.Type != "" {
		what = fmt.Sprintf("a %s profile", p.PeriodType.Type)
	}
	return fmt.Sprintf("%s (sample types %s)", what, strings.Join(sampleTypes(p), ", "))
}

// decodeJSON decodes a tracker snapshot (its schema is a number) or a
// leakcheck report (its schema is a string).
func (in *Input) decodeJSON(data []byte) error {
	var head struct {
		Schema json.RawMessage `json:"schema"`
	}
	if err := json.Unmarshal(data, &head); err != nil {
		return fmt.Errorf("not valid JSON (%s): %w", wantInputs, err)
	}
	schema := bytes.TrimSpace(head.Schema)
	switch {
	case len(schema) == 0:
		return errors.New(`JSON without a "schema" field: neither a tracker snapshot nor a leakcheck report`)
	case schema[0] == '"':
		r, err := ReadReport(bytes.NewReader(data))
		if err != nil {
			return err
		}
		in.Kind, in.Report, in.Time = InputReport, r, r.Time
		return nil
	}
	var snap tracker.Snapshot
	if err := json.Unmarshal(data, &snap); err != nil {
		return fmt.Errorf("tracker snapshot: %w", err)
	}
	if snap.Schema != tracker.SchemaVersion {
		return fmt.Errorf("tracker snapshot of schema %d; this leakcheck reads schema %d", snap.Schema, tracker.SchemaVersion)
	}
	in.Kind, in.Snapshot, in.Time = InputSnapshot, &snap, snap.Time
	return nil
}
