package keepalive

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Framer splits a byte stream into records and frames records into bytes, as
// POE's filters do for its wheels. Split has the contract of bufio.SplitFunc:
// it is given the unconsumed input and returns how many bytes to consume and
// the record found, if any; (0, nil, nil) asks for more input. A wheel copies
// each record before handing it to a handler.
type Framer interface {
	Split(data []byte, atEOF bool) (advance int, record []byte, err error)
	// Frame appends the framed form of record to dst.
	Frame(dst, record []byte) ([]byte, error)
}

// Framing errors.
var (
	ErrRecordTooLarge = errors.New("keepalive: record too large")
	ErrBadAdvance     = errors.New("keepalive: framer advanced outside its input")
)

// Lines frames newline-terminated records: input records are the lines
// without "\n" or "\r\n" (a last line without a newline is a record too);
// output records get "\n" appended.
func Lines() Framer { return lines{} }

type lines struct{}

func (lines) Split(data []byte, atEOF bool) (int, []byte, error) {
	if i := bytes.IndexByte(data, '\n'); i >= 0 {
		return i + 1, bytes.TrimSuffix(data[:i], []byte{'\r'}), nil
	}
	if atEOF && len(data) > 0 {
		return len(data), bytes.TrimSuffix(data, []byte{'\r'}), nil
	}
	return 0, nil, nil
}

func (lines) Frame(dst, record []byte) ([]byte, error) {
	dst = append(dst, record...)
	return append(dst, '\n'), nil
}

// DefaultMaxRecord bounds the records LengthPrefixed accepts when given 0, and
// the input a wheel buffers while looking for one record.
const DefaultMaxRecord = 1 << 20

// LengthPrefixed frames records as a 4-byte big-endian length followed by
// that many bytes. Records longer than max bytes (DefaultMaxRecord when max
// is 0) are ErrRecordTooLarge in both directions; a record cut short by end of
// input is io.ErrUnexpectedEOF.
func LengthPrefixed(max int) Framer {
	if max <= 0 {
		max = DefaultMaxRecord
	}
	return lengthPrefixed{max: max}
}

type lengthPrefixed struct{ max int }

func (f lengthPrefixed) Split(data []byte, atEOF bool) (int, []byte, error) {
	if len(data) < 4 {
		if atEOF && len(data) > 0 {
			return 0, nil, io.ErrUnexpectedEOF
		}
		return 0, nil, nil
	}
	n := binary.BigEndian.Uint32(data)
	if uint64(n) > uint64(f.max) {
		return 0, nil, fmt.Errorf("%w: %d bytes, limit %d", ErrRecordTooLarge, n, f.max)
	}
	if len(data) < 4+int(n) {
		if atEOF {
			return 0, nil, io.ErrUnexpectedEOF
		}
		return 0, nil, nil
	}
	return 4 + int(n), data[4 : 4+n], nil
}

func (f lengthPrefixed) Frame(dst, record []byte) ([]byte, error) {
	if len(record) > f.max {
		return dst, fmt.Errorf("%w: %d bytes, limit %d", ErrRecordTooLarge, len(record), f.max)
	}
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(record)))
	return append(dst, record...), nil
}

// Raw passes bytes through: each input record is whatever one read returned
// (at most the wheel's buffer), and output records are written as they are.
func Raw() Framer { return raw{} }

type raw struct{}

func (raw) Split(data []byte, atEOF bool) (int, []byte, error) {
	if len(data) == 0 {
		return 0, nil, nil
	}
	return len(data), data, nil
}

func (raw) Frame(dst, record []byte) ([]byte, error) { return append(dst, record...), nil }
