package fleet

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// Prometheus stores float samples in chunks of the Gorilla XOR encoding,
// and its remote read API sends those chunks as they are. A chunk is a
// big-endian uint16 count of samples, then a bit stream: the first
// timestamp as a signed varint and the first value as 64 raw bits; the
// second timestamp as an unsigned varint delta; every later timestamp as a
// delta of deltas in a prefix-coded bucket (0: none; 10, 110, 1110: a
// signed 14, 17 or 20-bit value; 1111: 64 bits). Every value after the
// first is XORed with the one before: 0 for the same value; 10 and the
// meaningful bits within the previous leading and trailing zeros; 11, five
// bits of leading zeros, six of meaningful bits (0 meaning 64), then those
// bits.

// errChunkShort is returned for a chunk that ends before its count of
// samples does.
var errChunkShort = errors.New("chunk ends early")

// bitReader reads a byte slice bit by bit, most significant bit first.
type bitReader struct {
	b   []byte
	pos int // in bits
}

func (r *bitReader) readBits(n int) (uint64, error) {
	if n > len(r.b)*8-r.pos {
		return 0, errChunkShort
	}
	var v uint64
	for n > 0 {
		off := r.pos & 7
		avail := 8 - off
		take := min(avail, n)
		bits := uint64(r.b[r.pos>>3]>>(avail-take)) & (1<<take - 1)
		v = v<<take | bits
		r.pos += take
		n -= take
	}
	return v, nil
}

func (r *bitReader) readBit() (bool, error) {
	if r.pos >= len(r.b)*8 {
		return false, errChunkShort
	}
	bit := r.b[r.pos>>3]>>(7-r.pos&7)&1 == 1
	r.pos++
	return bit, nil
}

// ReadByte lets encoding/binary read varints from the bit stream.
func (r *bitReader) ReadByte() (byte, error) {
	v, err := r.readBits(8)
	return byte(v), err
}

// decodeXOR appends the samples of an XOR chunk to ts and vs. A chunk that
// is cut short or inconsistent is an error; it never panics.
func decodeXOR(data []byte, ts []int64, vs []float64) ([]int64, []float64, error) {
	if len(data) < 2 {
		return ts, vs, fmt.Errorf("XOR chunk of %d bytes: %w", len(data), errChunkShort)
	}
	n := int(binary.BigEndian.Uint16(data))
	r := &bitReader{b: data[2:]}
	var (
		t, delta          int64
		vbits             uint64
		leading, trailing int
		haveWidth         bool
	)
	for i := range n {
		var err error
		switch i {
		case 0:
			if t, err = binary.ReadVarint(r); err != nil {
				return ts, vs, fmt.Errorf("XOR chunk: first timestamp: %w", err)
			}
			if vbits, err = r.readBits(64); err != nil {
				return ts, vs, fmt.Errorf("XOR chunk: first value: %w", err)
			}
			ts, vs = append(ts, t), append(vs, math.Float64frombits(vbits))
			continue
		case 1:
			d, err := binary.ReadUvarint(r)
			if err != nil {
				return ts, vs, fmt.Errorf("XOR chunk: second timestamp: %w", err)
			}
			delta = int64(d)
		default:
			dod, err := readDeltaOfDelta(r)
			if err != nil {
				return ts, vs, fmt.Errorf("XOR chunk: timestamp %d of %d: %w", i+1, n, err)
			}
			delta += dod
		}
		t += delta
		changed, err := r.readBit()
		if err != nil {
			return ts, vs, fmt.Errorf("XOR chunk: value %d of %d: %w", i+1, n, err)
		}
		if changed {
			fresh, err := r.readBit()
			if err != nil {
				return ts, vs, fmt.Errorf("XOR chunk: value %d of %d: %w", i+1, n, err)
			}
			if fresh {
				l, err1 := r.readBits(5)
				m, err2 := r.readBits(6)
				if err := errors.Join(err1, err2); err != nil {
					return ts, vs, fmt.Errorf("XOR chunk: value %d of %d: %w", i+1, n, err)
				}
				if m == 0 {
					m = 64
				}
				if l+m > 64 {
					return ts, vs, fmt.Errorf("XOR chunk: value %d of %d: %d leading zeros and %d meaningful bits exceed 64", i+1, n, l, m)
				}
				leading, trailing, haveWidth = int(l), int(64-l-m), true
			} else if !haveWidth {
				return ts, vs, fmt.Errorf("XOR chunk: value %d of %d reuses a width never given", i+1, n)
			}
			bits, err := r.readBits(64 - leading - trailing)
			if err != nil {
				return ts, vs, fmt.Errorf("XOR chunk: value %d of %d: %w", i+1, n, err)
			}
			vbits ^= bits << trailing
		}
		ts, vs = append(ts, t), append(vs, math.Float64frombits(vbits))
	}
	return ts, vs, nil
}

// readDeltaOfDelta reads one prefix-coded delta of deltas.
func readDeltaOfDelta(r *bitReader) (int64, error) {
	ones := 0
	for ones < 4 {
		bit, err := r.readBit()
		if err != nil {
			return 0, err
		}
		if !bit {
			break
		}
		ones++
	}
	width := [...]int{0, 14, 17, 20, 64}[ones]
	if width == 0 {
		return 0, nil
	}
	bits, err := r.readBits(width)
	if err != nil {
		return 0, err
	}
	if width == 64 {
		return int64(bits), nil
	}
	// Two's complement in width bits, biased as Prometheus writes it: the
	// bucket holds -(2^(w-1)-1) to 2^(w-1).
	if bits > 1<<(width-1) {
		return int64(bits) - 1<<width, nil
	}
	return int64(bits), nil
}
