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
		s.types = variableTypes(dw)
	}
	return s, nil
}

// variableTypes maps each global variable's address to its DWARF type.
func variableTypes(dw *dwarf.Data) map[uint64]dwarf.Offset {
	out := map[uint64]dwarf.Offset{}
	r := dw.Reader()
	for {
		e, err := r.Next()
		if err != nil || e == nil {
			return out
		}
		if e.Tag != dwarf.TagVariable {
			if e.Tag == dwarf.TagSubprogram {
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
