// Package bounded reads untrusted input with bounded memory: files, HTTP
// response bodies, standard input and gzip streams, each read to at most a
// limit, and pprof profiles decoded from them without a second, unbounded
// decompression.
//
// Profiles, dumps and snapshots come from daemons that may already be sick,
// or from anyone. Every reader here fails with a *LimitError once its input
// passes the limit, having read at most one byte more; a gzip stream is
// decompressed as it is read, so that a truncated stream or one whose size
// field lies never costs more memory than it has produced.
package bounded

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/google/pprof/profile"
)

// LimitError reports input larger than a limit.
type LimitError struct {
	// What is "input" for bytes read, "decompressed input" for bytes a
	// gzip stream produced.
	What  string
	Limit int64
}

func (e *LimitError) Error() string {
	if e.What == "decompressed input" {
		return "decompresses to more than the size limit of " + FormatSize(e.Limit) + ": a decompression bomb, or a limit too small"
	}
	return "larger than the size limit of " + FormatSize(e.Limit)
}

// FormatSize formats a number of bytes for messages: "512 B", "64 KiB",
// "1.5 MiB".
func FormatSize(n int64) string {
	const units = "KMGTPE"
	if n < 1024 {
		return strconv.FormatInt(n, 10) + " B"
	}
	v, i := float64(n)/1024, 0
	for v >= 1024 && i < len(units)-1 {
		v, i = v/1024, i+1
	}
	s := strconv.FormatFloat(v, 'f', 1, 64)
	s = strings.TrimSuffix(s, ".0")
	return s + " " + units[i:i+1] + "iB"
}

// Reader reads from R until it has read N bytes; a read beyond that fails
// with a *LimitError. Unlike io.LimitedReader it tells a stream of exactly N
// bytes from a longer one.
type Reader struct {
	R    io.Reader
	N    int64 // bytes left before the limit
	What string
	max  int64
}

// NewReader returns a Reader of r that fails past limit bytes; what names
// the bytes for the error ("input", "decompressed input").
func NewReader(r io.Reader, limit int64, what string) *Reader {
	return &Reader{R: r, N: limit, What: what, max: limit}
}

func (r *Reader) Read(p []byte) (int, error) {
	if r.N < 0 {
		return 0, &LimitError{What: r.What, Limit: r.max}
	}
	// Read one byte past the limit, to know whether the input ends there.
	if int64(len(p)) > r.N+1 {
		p = p[:r.N+1]
	}
	n, err := r.R.Read(p)
	r.N -= int64(n)
	if r.N < 0 {
		return n + int(r.N), &LimitError{What: r.What, Limit: r.max}
	}
	return n, err
}

// ReadAll reads r to its end, failing with a *LimitError when it holds more
// than limit bytes.
func ReadAll(r io.Reader, limit int64) ([]byte, error) {
	return io.ReadAll(NewReader(r, limit, "input"))
}

// IsGzip reports whether data starts with the gzip magic number.
func IsGzip(data []byte) bool { return len(data) >= 2 && data[0] == 0x1f && data[1] == 0x8b }

// NewGzipReader returns a reader of the decompressed stream of r that fails
// with a *LimitError past limit decompressed bytes, and says "truncated"
// when the stream ends early. Only the gzip header is read before it
// returns.
func NewGzipReader(r io.Reader, limit int64) (io.Reader, error) {
	zr, err := gzip.NewReader(r)
	if err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			err = errTruncated
		}
		return nil, fmt.Errorf("decompressing: %w", err)
	}
	return NewReader(gzipErrors{zr}, limit, "decompressed input"), nil
}

var errTruncated = errors.New("unexpected end of data (truncated?)")

// gzipErrors says what failed on a gzip stream's errors.
type gzipErrors struct{ r io.Reader }

func (g gzipErrors) Read(p []byte) (int, error) {
	n, err := g.r.Read(p)
	switch {
	case err == nil || err == io.EOF:
	case errors.Is(err, io.ErrUnexpectedEOF):
		err = fmt.Errorf("decompressing: %w", errTruncated)
	default:
		if _, ok := errors.AsType[*LimitError](err); !ok {
			err = fmt.Errorf("decompressing: %w", err)
		}
	}
	return n, err
}

// Gunzip decompresses data, failing with a *LimitError when the result
// exceeds limit bytes. It allocates as it decompresses: the size the gzip
// trailer claims is not trusted.
func Gunzip(data []byte, limit int64) ([]byte, error) {
	zr, err := NewGzipReader(bytes.NewReader(data), limit)
	if err != nil {
		return nil, err
	}
	return io.ReadAll(zr)
}

// ParseProfile parses a pprof profile, gzipped or not, in protocol buffer
// or a legacy text form. Unlike profile.ParseData it bounds the
// decompressed size, refuses a profile compressed twice (which the profile
// package would inflate without a limit), and turns a panic of the parser
// on a malformed profile into an error.
func ParseProfile(data []byte, limit int64) (p *profile.Profile, err error) {
	if IsGzip(data) {
		if data, err = Gunzip(data, limit); err != nil {
			return nil, err
		}
		if IsGzip(data) {
			return nil, errors.New("compressed twice: not a profile")
		}
	}
	// The profile comes from another process: a parser bug on a malformed
	// profile must cost this input, not the reader.
	defer func() {
		if r := recover(); r != nil {
			p, err = nil, fmt.Errorf("malformed profile (the pprof parser failed: %v)", r)
		}
	}()
	return profile.ParseData(data)
}

// StatusError reports an HTTP answer other than 200 OK.
type StatusError struct {
	Code   int
	Status string // "404 Not Found"
	// Message is the first line of the body, if any.
	Message string
}

func (e *StatusError) Error() string {
	if e.Message == "" {
		return e.Status
	}
	return e.Status + ": " + e.Message
}

// Open GETs u with client and returns the body of a 200 OK answer, which
// fails with a *LimitError past limit bytes; a Content-Length beyond the
// limit fails at once. Closing the body drains a little of what is left, so
// that the connection can serve another request. Errors say
// "GET u: ..." and name u once; another status is a *StatusError.
func Open(ctx context.Context, client *http.Client, u string, limit int64) (io.ReadCloser, error) {
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
		return nil, fmt.Errorf("GET %s: %w", u, err)
	}
	body := &body{r: NewReader(resp.Body, limit, "input"), c: resp.Body}
	if resp.StatusCode != http.StatusOK {
		line, _ := io.ReadAll(io.LimitReader(resp.Body, 200))
		msg := strings.TrimSpace(strings.SplitN(string(line), "\n", 2)[0])
		body.Close()
		return nil, fmt.Errorf("GET %s: %w", u, &StatusError{Code: resp.StatusCode, Status: resp.Status, Message: msg})
	}
	if resp.ContentLength > limit {
		body.Close()
		return nil, fmt.Errorf("GET %s: body of %s: %w", u, FormatSize(resp.ContentLength), &LimitError{What: "input", Limit: limit})
	}
	body.url = u
	return body, nil
}

// body is a response body that names its URL in errors and drains on Close.
type body struct {
	r   io.Reader
	c   io.ReadCloser
	url string
}

func (b *body) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err != nil && err != io.EOF {
		err = fmt.Errorf("GET %s: %w", b.url, err)
	}
	return n, err
}

func (b *body) Close() error {
	io.CopyN(io.Discard, b.c, 64<<10)
	return b.c.Close()
}

// Get GETs u and returns the body of a 200 OK answer, at most limit bytes;
// see Open.
func Get(ctx context.Context, client *http.Client, u string, limit int64) ([]byte, error) {
	rc, err := Open(ctx, client, u, limit)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}
