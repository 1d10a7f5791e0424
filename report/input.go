package report

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/google/pprof/profile"

	"github.com/leakcheck/leakcheck/tracker"
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
)

// Input is one decoded input: a file or a URL, recognized by its content.
// Exactly one of Profile, Goroutines, Snapshot and Report is set, as Kind
// says.
type Input struct {
	// Name is the file name or URL, for messages.
	Name string
	Kind InputKind
	// Time is when the input was taken: the profile's, dump's, snapshot's
	// or report's own time when it has one; otherwise the file's
	// modification time, or the time a URL was fetched.
	Time time.Time
	// Raw is the input exactly as read, compressed or not.
	Raw []byte
	// Source says where the input came from, for Analyze: inputs of one
	// source and kind were taken of one process. The files named together
	// are one source (""), each polled URL another.
	Source string

	Profile    *profile.Profile // InputHeap and InputTrackerProfile
	Goroutines *GoroutineDump   // InputGoroutine
	Snapshot   *tracker.Snapshot
	Report     *Report
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
}

func (o InputOptions) maxSize() int64 {
	if o.MaxSize <= 0 {
		return DefaultMaxInputSize
	}
	return o.MaxSize
}

// ReadInput reads name, a file or an http or https URL, and decodes it with
// ParseInput. A URL must answer 200 OK within the timeout. Errors name the
// input.
func ReadInput(ctx context.Context, name string, opts InputOptions) (*Input, error) {
	var (
		data []byte
		when time.Time
		err  error
	)
	if isURL(name) {
		data, err = fetchURL(ctx, name, opts)
		when = time.Now()
	} else {
		data, when, err = readFile(name, opts.maxSize())
	}
	if err != nil {
		return nil, err
	}
	in, err := ParseInput(name, data, opts.maxSize())
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

func readFile(name string, limit int64) ([]byte, time.Time, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, time.Time{}, err // *PathError names the file
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, time.Time{}, err
	}
	if fi.IsDir() {
		return nil, time.Time{}, fmt.Errorf("%s: is a directory, not a profile", name)
	}
	data, err := readLimited(f, limit)
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("reading %s: %w", name, err)
	}
	return data, fi.ModTime(), nil
}

// readLimited reads r to its end, failing when it holds more than limit bytes.
func readLimited(r io.Reader, limit int64) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("larger than the limit of %s (--max-size)", formatQuantity(float64(limit), "bytes"))
	}
	return data, nil
}

func fetchURL(ctx context.Context, u string, opts InputOptions) ([]byte, error) {
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
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", u, err)
	}
	resp, err := client.Do(req)
	if err != nil {
		// The client's error repeats the URL; say it once.
		if ue, ok := errors.AsType[*url.Error](err); ok {
			err = ue.Err
		}
		if errors.Is(err, context.DeadlineExceeded) {
			err = fmt.Errorf("no answer within %v (--timeout)", timeout)
		}
		return nil, fmt.Errorf("GET %s: %w", u, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		line, _ := io.ReadAll(io.LimitReader(resp.Body, 200))
		msg := strings.TrimSpace(strings.SplitN(string(line), "\n", 2)[0])
		if msg != "" {
			msg = ": " + msg
		}
		return nil, fmt.Errorf("GET %s: %s%s", u, resp.Status, msg)
	}
	data, err := readLimited(resp.Body, opts.maxSize())
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			err = fmt.Errorf("body not read within %v (--timeout)", timeout)
		}
		return nil, fmt.Errorf("GET %s: %w", u, err)
	}
	return data, nil
}

// ParseInput recognizes data by its content, not its name, and decodes it.
// It reads Go heap profiles (gzipped protocol buffers and the legacy text
// form), goroutine profiles and dumps in every form (see ParseGoroutineText
// and GoroutinesFromProfile), leakcheck tracker profiles, tracker snapshots
// and leakcheck JSON reports. Gzipped input is decompressed here, to at most
// maxSize bytes (0 means DefaultMaxInputSize), so that a small file cannot
// inflate without bound. Anything else, and input that is empty, truncated
// or corrupt, is an error that names the input and says what was expected;
// ParseInput never panics.
func ParseInput(name string, data []byte, maxSize int64) (in *Input, err error) {
	if maxSize <= 0 {
		maxSize = DefaultMaxInputSize
	}
	defer func() {
		// The parsers below are not ours; a panic in one of them is a
		// corrupt input, not a crash.
		if r := recover(); r != nil {
			in, err = nil, fmt.Errorf("%s: corrupt input: the parser failed: %v", name, r)
		}
	}()
	in = &Input{Name: name, Raw: data}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, fmt.Errorf("%s: empty: %s", name, wantInputs)
	}
	plain := data
	if isGzip(data) {
		plain, err = gunzip(data, maxSize)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		if isGzip(plain) {
			return nil, fmt.Errorf("%s: gzip inside gzip: not a profile", name)
		}
	}
	if err := in.decode(plain); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return in, nil
}

func isGzip(data []byte) bool { return len(data) >= 2 && data[0] == 0x1f && data[1] == 0x8b }

// gunzip decompresses data, failing when the result exceeds limit bytes.
func gunzip(data []byte, limit int64) ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("decompressing: %w", err)
	}
	var buf bytes.Buffer
	// The gzip trailer holds the size modulo 2^32: a hint to allocate
	// once, never trusted beyond the limit.
	if len(data) >= 4 {
		hint := int64(binary.LittleEndian.Uint32(data[len(data)-4:]))
		buf.Grow(int(min(hint, limit) + 1))
	}
	n, err := buf.ReadFrom(io.LimitReader(zr, limit+1))
	if err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			err = errors.New("unexpected end of data (truncated?)")
		}
		return nil, fmt.Errorf("decompressing: %w", err)
	}
	if n > limit {
		return nil, fmt.Errorf("decompresses to more than %s (--max-size): a decompression bomb, or raise the limit", formatQuantity(float64(limit), "bytes"))
	}
	return buf.Bytes(), nil
}

// wantInputs says what ParseInput reads, for errors.
const wantInputs = "want a heap, goroutine or tracker profile, a goroutine dump, a tracker snapshot or a leakcheck report"

// decode recognizes plain (data, decompressed) and fills in.
func (in *Input) decode(plain []byte) error {
	text := bytes.TrimLeft(plain, " \t\r\n")
	switch {
	case len(text) > 0 && text[0] == '{':
		return in.decodeJSON(plain)
	case bytes.HasPrefix(text, []byte("heap profile:")):
		p, err := parseProfile(plain)
		if err != nil {
			return fmt.Errorf("legacy heap profile: %w", err)
		}
		symbolizeLegacyHeap(p, plain)
		in.Kind, in.Profile = InputHeap, p
		return in.checkProfile()
	case IsGoroutineText(plain):
		d, err := ParseGoroutineText(plain)
		if err != nil {
			return fmt.Errorf("goroutine dump: %w", err)
		}
		in.Kind, in.Goroutines, in.Time = InputGoroutine, d, d.Time
		return nil
	}
	p, err := parseProfile(plain)
	if err != nil {
		if isText(plain) {
			return fmt.Errorf("unrecognized text (%s)", wantInputs)
		}
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
// form; data must not be gzipped, so that the profile package has nothing
// to inflate.
func parseProfile(data []byte) (p *profile.Profile, err error) {
	defer func() {
		if r := recover(); r != nil {
			p, err = nil, fmt.Errorf("the pprof parser failed: %v", r)
		}
	}()
	return profile.ParseData(data)
}

// isText reports whether data looks like text: no NUL or other control
// bytes but tabs and line ends in its first kilobyte.
func isText(data []byte) bool {
	for _, c := range data[:min(len(data), 1024)] {
		if c < ' ' && c != '\t' && c != '\n' && c != '\r' {
			return false
		}
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
