package heapdump

import (
	"cmp"
	"debug/dwarf"
	"debug/elf"
	"encoding/binary"
	"fmt"
	"slices"
)

// Symbols names the global variables of a program from its ELF binary: the
// symbol table for names, DWARF (when the binary has it) for their types.
type Symbols struct {
	syms  []symbol
	path  string
	data  uint64 // address of .data in the file, to match a dump's DataStart
	dw    *dwarf.Data
	types map[uint64]dwarf.Offset // variable address -> its type entry

	funcs    map[string]funcEntry // function name -> its DWARF entry
	loclists []byte               // .debug_loclists
	addrs    []byte               // .debug_addr
}

// funcEntry is where a function's DWARF entry is, with its unit's base in
// .debug_addr.
type funcEntry struct {
	off      dwarf.Offset
	addrBase int64
}

type symbol struct {
	name       string
	addr, size uint64
}

// ReadSymbols reads the data symbols of the ELF binary at path. A stripped
// binary is an error: without symbols there is nothing to name.
func ReadSymbols(path string) (*Symbols, error) {
	f, err := elf.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reading symbols of %s: %w", path, err)
	}
	defer f.Close()
	syms, err := f.Symbols()
	if err != nil {
		return nil, fmt.Errorf("reading symbols of %s: %w", path, err)
	}
	s := &Symbols{path: path}
	for _, y := range syms {
		if elf.ST_TYPE(y.Info) != elf.STT_OBJECT || y.Value == 0 {
			continue
		}
		s.syms = append(s.syms, symbol{name: y.Name, addr: y.Value, size: y.Size})
	}
	slices.SortFunc(s.syms, func(a, b symbol) int { return cmp.Compare(a.addr, b.addr) })
	if sec := f.Section(".data"); sec != nil {
		s.data = sec.Addr
	}
	if dw, err := f.DWARF(); err == nil {
		s.dw = dw
		s.types, s.funcs = variableTypes(dw)
		if sec := f.Section(".debug_loclists"); sec != nil {
			s.loclists, _ = sec.Data()
		}
		if sec := f.Section(".debug_addr"); sec != nil {
			s.addrs, _ = sec.Data()
		}
	}
	return s, nil
}

// variableTypes maps each global variable's address to its DWARF type, and
// each function's name to its entry.
func variableTypes(dw *dwarf.Data) (map[uint64]dwarf.Offset, map[string]funcEntry) {
	out := map[uint64]dwarf.Offset{}
	funcs := map[string]funcEntry{}
	var addrBase int64
	r := dw.Reader()
	for {
		e, err := r.Next()
		if err != nil || e == nil {
			return out, funcs
		}
		if e.Tag == dwarf.TagCompileUnit {
			addrBase, _ = e.Val(dwarf.AttrAddrBase).(int64)
		}
		if e.Tag != dwarf.TagVariable {
			if e.Tag == dwarf.TagSubprogram {
				if name, ok := e.Val(dwarf.AttrName).(string); ok && e.Val(dwarf.AttrLowpc) != nil {
					funcs[name] = funcEntry{off: e.Offset, addrBase: addrBase}
				}
				r.SkipChildren() // locals are not globals
			}
			continue
		}
		loc, ok := e.Val(dwarf.AttrLocation).([]byte)
		typ, ok2 := e.Val(dwarf.AttrType).(dwarf.Offset)
		// DW_OP_addr followed by an 8-byte address.
		if ok && ok2 && len(loc) == 9 && loc[0] == 0x03 {
			out[binary.LittleEndian.Uint64(loc[1:])] = typ
		}
	}
}

// slide returns what to add to a binary address to get the dumped
// process's address: zero for a binary linked at a fixed address, the load
// offset of a position-independent one.
func (s *Symbols) slide(d *Dump) uint64 {
	if s == nil || s.data == 0 || d.DataStart == 0 {
		return 0
	}
	return d.DataStart - s.data
}

// Lookup returns the variable that holds address addr of the binary (not
// of the process: see Analyze), its type when DWARF has it, and addr's
// offset into it.
func (s *Symbols) Lookup(addr uint64) (name, typ string, off uint64, ok bool) {
	if s == nil {
		return "", "", 0, false
	}
	i, _ := slices.BinarySearchFunc(s.syms, addr, func(y symbol, a uint64) int { return cmp.Compare(y.addr, a+1) })
	if i == 0 {
		return "", "", 0, false
	}
	y := s.syms[i-1]
	if addr-y.addr >= max(y.size, 1) {
		return "", "", 0, false
	}
	if t, found := s.types[y.addr]; found && s.dw != nil {
		if dt, err := s.dw.Type(t); err == nil {
			// The Go name ("[]func() int"), not the DWARF rendering
			// ("struct []func() int").
			typ = dt.String()
			if st, ok := dt.(*dwarf.StructType); ok && st.StructName != "" {
				typ = st.StructName
			}
		}
	}
	return y.name, typ, addr - y.addr, true
}

// fileLine is a source position.
type fileLine struct {
	file string
	line int
}

// inlinedFuncs names the functions whose code is at the given positions
// when that code was inlined: a heap dump names an inlined frame after the
// function it was inlined into, but the binary's DWARF knows better. It
// finds a machine address of each position in the line table, then the
// innermost inlined subroutine that covers that address. Positions not in
// inlined code are left out of the result.
func (s *Symbols) inlinedFuncs(want map[fileLine]bool) map[fileLine]string {
	out := map[fileLine]string{}
	if s == nil || s.dw == nil || len(want) == 0 {
		return out
	}
	type span struct {
		lo, hi uint64
		origin dwarf.Offset
		depth  int
	}
	var spans []span
	names := map[dwarf.Offset]string{}
	addrs := map[fileLine][]uint64{}
	r := s.dw.Reader()
	depth := 0
	for {
		e, err := r.Next()
		if err != nil || e == nil {
			break
		}
		if e.Tag == 0 {
			depth--
			continue
		}
		switch e.Tag {
		case dwarf.TagCompileUnit:
			depth = 0
			if lr, err := s.dw.LineReader(e); err == nil && lr != nil {
				var row dwarf.LineEntry
				for lr.Next(&row) == nil {
					if row.File == nil {
						continue
					}
					k := fileLine{row.File.Name, row.Line}
					if want[k] && len(addrs[k]) < 8 {
						addrs[k] = append(addrs[k], row.Address)
					}
				}
			}
		case dwarf.TagSubprogram:
			if name, ok := e.Val(dwarf.AttrName).(string); ok {
				names[e.Offset] = name
			}
		case dwarf.TagInlinedSubroutine:
			origin, _ := e.Val(dwarf.AttrAbstractOrigin).(dwarf.Offset)
			if ranges, err := s.dw.Ranges(e); err == nil {
				for _, rg := range ranges {
					spans = append(spans, span{lo: rg[0], hi: rg[1], origin: origin, depth: depth})
				}
			}
		}
		if e.Children {
			depth++
		}
	}
	if len(addrs) == 0 || len(spans) == 0 {
		return out
	}
	// Inlined ranges nest, so the innermost one that covers an address is
	// the covering one that starts last (the deeper one on a tie): scan
	// back from the last start at or before the address.
	slices.SortFunc(spans, func(a, b span) int {
		if c := cmp.Compare(a.lo, b.lo); c != 0 {
			return c
		}
		return cmp.Compare(a.depth, b.depth)
	})
	for k, pcs := range addrs {
		for _, pc := range pcs {
			i, _ := slices.BinarySearchFunc(spans, pc, func(sp span, pc uint64) int { return cmp.Compare(sp.lo, pc+1) })
			for j := i - 1; j >= 0 && j >= i-4096; j-- {
				if sp := spans[j]; pc < sp.hi {
					if name := names[sp.origin]; name != "" {
						out[k] = name
					}
					break
				}
			}
			if out[k] != "" {
				break
			}
		}
	}
	return out
}

// frameVars returns the local variables and parameters of function fn that
// live in its stack frame at pc, by their offset from the frame's
// canonical frame address (always negative), from DWARF location lists. A
// variable in several pieces (a slice, a string, an interface) is listed at
// each piece's offset. Variables in registers are left out: they are not
// in the frame.
func (s *Symbols) frameVars(fn string, pc uint64) map[int64]string {
	if s == nil || s.dw == nil {
		return nil
	}
	fe, ok := s.funcs[fn]
	if !ok {
		return nil
	}
	r := s.dw.Reader()
	r.Seek(fe.off)
	if e, err := r.Next(); err != nil || e == nil || e.Tag != dwarf.TagSubprogram {
		return nil
	}
	out := map[int64]string{}
	depth := 1
	for depth > 0 {
		e, err := r.Next()
		if err != nil || e == nil {
			break
		}
		if e.Tag == 0 {
			depth--
			continue
		}
		if e.Children {
			depth++
		}
		if e.Tag != dwarf.TagVariable && e.Tag != dwarf.TagFormalParameter {
			continue
		}
		name, _ := e.Val(dwarf.AttrName).(string)
		var expr []byte
		switch loc := e.Val(dwarf.AttrLocation).(type) {
		case []byte:
			expr = loc
		case int64:
			expr = s.locationAt(loc, fe.addrBase, pc)
		}
		for _, off := range frameOffsets(expr) {
			if _, taken := out[off]; !taken && name != "" {
				out[off] = name
			}
		}
	}
	return out
}

// locationAt returns the location expression that the DWARF 5 location
// list at off gives for pc, or nil.
func (s *Symbols) locationAt(off, addrBase int64, pc uint64) []byte {
	d := s.loclists
	if off < 0 || off >= int64(len(d)) {
		return nil
	}
	p := int(off)
	bad := false
	uleb := func() uint64 {
		v, n := binary.Uvarint(d[min(p, len(d)):])
		if n <= 0 {
			bad = true
			return 0
		}
		p += n
		return v
	}
	u64 := func() uint64 {
		if p+8 > len(d) {
			bad = true
			return 0
		}
		v := binary.LittleEndian.Uint64(d[p:])
		p += 8
		return v
	}
	addr := func(i uint64) uint64 {
		at := uint64(addrBase) + 8*i
		if addrBase < 0 || at+8 > uint64(len(s.addrs)) || at+8 < at {
			bad = true
			return 0
		}
		return binary.LittleEndian.Uint64(s.addrs[at:])
	}
	var base uint64
	for range 1 << 16 {
		if p >= len(d) {
			return nil
		}
		kind := d[p]
		p++
		var lo, hi uint64
		ranged := true
		switch kind {
		case 0x00: // DW_LLE_end_of_list
			return nil
		case 0x01: // DW_LLE_base_addressx
			base, ranged = addr(uleb()), false
		case 0x02: // DW_LLE_startx_endx
			lo = addr(uleb())
			hi = addr(uleb())
		case 0x03: // DW_LLE_startx_length
			lo = addr(uleb())
			hi = lo + uleb()
		case 0x04: // DW_LLE_offset_pair
			lo = base + uleb()
			hi = base + uleb()
		case 0x05: // DW_LLE_default_location
			lo, hi = 0, ^uint64(0)
		case 0x06: // DW_LLE_base_address
			base, ranged = u64(), false
		case 0x07: // DW_LLE_start_end
			lo = u64()
			hi = u64()
		case 0x08: // DW_LLE_start_length
			lo = u64()
			hi = lo + uleb()
		default:
			return nil
		}
		if bad {
			return nil
		}
		if !ranged {
			continue
		}
		n := uleb()
		if bad || n > uint64(len(d)-p) {
			return nil
		}
		expr := d[p : p+int(n)]
		p += int(n)
		if pc >= lo && pc < hi {
			return expr
		}
	}
	return nil
}

// frameOffsets returns the frame-base offsets (DW_OP_fbreg) at which a
// location expression puts the pieces of a variable; pieces in registers
// or elsewhere are left out.
func frameOffsets(expr []byte) []int64 {
	var out []int64
	for p := 0; p < len(expr); {
		op := expr[p]
		p++
		switch {
		case op == 0x91: // DW_OP_fbreg sleb128
			v, n := sleb128(expr[p:])
			if n <= 0 {
				return out
			}
			p += n
			out = append(out, v)
		case op == 0x93: // DW_OP_piece uleb128
			_, n := binary.Uvarint(expr[p:])
			if n <= 0 {
				return out
			}
			p += n
		case op >= 0x50 && op <= 0x6f: // DW_OP_reg0..31
		case op == 0x9c: // DW_OP_call_frame_cfa
		default:
			return out // anything else: not a plain frame slot
		}
	}
	return out
}

// sleb128 decodes a DWARF signed LEB128 number and says how many bytes it
// took (0 if b ends first).
func sleb128(b []byte) (int64, int) {
	var v int64
	var shift uint
	for i, c := range b {
		if i == 10 {
			return 0, 0
		}
		v |= int64(c&0x7f) << shift
		shift += 7
		if c < 0x80 {
			if shift < 64 && c&0x40 != 0 {
				v |= -1 << shift
			}
			return v, i + 1
		}
	}
	return 0, 0
}
