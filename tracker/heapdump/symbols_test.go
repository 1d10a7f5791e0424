package heapdump

import (
	"slices"
	"testing"
)

func TestSleb128(t *testing.T) {
	for _, tt := range []struct {
		in   []byte
		want int64
		n    int
	}{
		{[]byte{0x02}, 2, 1},
		{[]byte{0x7e}, -2, 1},
		{[]byte{0x50}, -48, 1},
		{[]byte{0xff, 0x00}, 127, 2},
		{[]byte{0x81, 0x7f}, -127, 2},
		{[]byte{0x80, 0x7f}, -128, 2},
		{[]byte{0x80}, 0, 0}, // ends inside the number
		{nil, 0, 0},
	} {
		if v, n := sleb128(tt.in); v != tt.want || n != tt.n {
			t.Errorf("sleb128(% x) = %d, %d; want %d, %d", tt.in, v, n, tt.want, tt.n)
		}
	}
}

// TestFrameOffsets decodes location expressions as the Go linker writes
// them: a slice whose pointer is spilled to the frame and whose length is
// in a register, a whole variable in the frame, one only in registers.
func TestFrameOffsets(t *testing.T) {
	for _, tt := range []struct {
		name string
		expr []byte
		want []int64
	}{
		{"slice: pointer in the frame, length in a register", []byte{0x91, 0x50, 0x93, 0x08, 0x53, 0x93, 0x08, 0x93, 0x08}, []int64{-48}},
		{"two pieces in the frame", []byte{0x91, 0x50, 0x93, 0x08, 0x91, 0x40, 0x93, 0x08}, []int64{-48, -64}},
		{"whole variable in the frame", []byte{0x91, 0x68}, []int64{-24}},
		{"registers only", []byte{0x50, 0x93, 0x08, 0x93, 0x08}, nil},
		{"unknown operation stops", []byte{0x91, 0x68, 0x93, 0x08, 0x0c, 1, 2, 3, 4, 0x91, 0x50}, []int64{-24}},
		{"truncated", []byte{0x91}, nil},
	} {
		if got := frameOffsets(tt.expr); !slices.Equal(got, tt.want) {
			t.Errorf("%s: frameOffsets(% x) = %v, want %v", tt.name, tt.expr, got, tt.want)
		}
	}
}

// TestLocationAt reads a location list in the DWARF 5 form the Go linker
// writes (a base address by index, then offset pairs), and bad lists
// without panicking.
func TestLocationAt(t *testing.T) {
	addrs := make([]byte, 8+3*8) // a header's worth, then three addresses
	addrs[8+2*8] = 0x00
	addrs[8+2*8+1] = 0x10 // address index 2 = 0x1000
	list := []byte{
		0x01, 0x02, // base_addressx 2
		0x04, 0x10, 0x20, 0x02, 0x91, 0x50, // [0x1010, 0x1020): fbreg -48
		0x04, 0x20, 0x30, 0x01, 0x50, // [0x1020, 0x1030): reg0
		0x00,
	}
	s := &Symbols{loclists: list, addrs: addrs}
	for _, tt := range []struct {
		pc   uint64
		want []byte
	}{
		{0x1015, []byte{0x91, 0x50}},
		{0x1020, []byte{0x50}},
		{0x1030, nil},
		{0x100f, nil},
	} {
		if got := s.locationAt(0, 8, tt.pc); !slices.Equal(got, tt.want) {
			t.Errorf("locationAt(pc %#x) = % x, want % x", tt.pc, got, tt.want)
		}
	}
	for _, bad := range [][]byte{
		{0x01},                   // index missing
		{0x01, 0x7f},             // index past .debug_addr
		{0x04, 0x10, 0x20, 0x09}, // expression longer than the list
		{0x06, 1, 2, 3},          // address cut short
		{0x99},                   // unknown entry
	} {
		s := &Symbols{loclists: bad, addrs: addrs}
		if got := s.locationAt(0, 8, 0x1015); got != nil {
			t.Errorf("locationAt(% x) = % x, want nil", bad, got)
		}
	}
	if got := s.locationAt(int64(len(list)+5), 8, 0x1015); got != nil {
		t.Errorf("offset past the section: % x", got)
	}
}
