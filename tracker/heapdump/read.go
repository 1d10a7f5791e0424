package heapdump

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
)

// Header is how every dump that runtime/debug.WriteHeapDump writes begins;
// the format has kept the name of Go 1.7, where it last changed.
const Header = "go1.7 heap dump\n"

// Record tags of the format (the runtime's heapdump.go, the Go wiki's
// heapdump15-through-heapdump17).
const (
	tagEOF             = 0
	tagObject          = 1
	tagOtherRoot       = 2
	tagType            = 3
	tagGoroutine       = 4
	tagStackFrame      = 5
	tagParams          = 6
	tagFinalizer       = 7
	tagItab            = 8
	tagOSThread        = 9
	tagMemStats        = 10
	tagQueuedFinalizer = 11
	tagData            = 12
	tagBSS             = 13
	tagDefer           = 14
	tagPanic           = 15
	tagMemProf         = 16
	tagAllocSample     = 17
)

var tagNames = [...]string{
	tagEOF: "eof", tagObject: "object", tagOtherRoot: "other root", tagType: "type",
	tagGoroutine: "goroutine", tagStackFrame: "stack frame", tagParams: "params",
	tagFinalizer: "finalizer", tagItab: "itab", tagOSThread: "os thread",
	tagMemStats: "memstats", tagQueuedFinalizer: "queued finalizer", tagData: "data segment",
	tagBSS: "bss segment", tagDefer: "defer", tagPanic: "panic", tagMemProf: "memprof bucket",
	tagAllocSample: "alloc sample",
}

// Field kinds in an object's or frame's field list. Current runtimes write
// only pointers; interfaces were written by Go 1.4 and earlier.
const (
	fieldEol   = 0
	fieldPtr   = 1
	fieldIface = 2
	fieldEface = 3
)

// Limits bounds what a dump may make the reader allocate, so a lying length
// is an error instead of gigabytes of memory. The zero value of a field
// means its default.
type Limits struct {
	// MaxObjectBytes bounds one object's, segment's or frame's contents
	// (default 1 GiB). Contents are read in pieces as they arrive, so a
	// length larger than the input fails at the end of the input anyway.
	MaxObjectBytes int64
	// MaxStringBytes bounds a name, file or description (default 1 MiB).
	MaxStringBytes int64
	// MaxObjects bounds the number of objects (default 256 million).
	MaxObjects int
	// MaxStackDepth bounds a memory-profile stack (default 4096 frames).
	MaxStackDepth int
	// MaxRoots bounds the roots: global pointer slots, frames, finalizers
	// (default 4 million; a large program has tens of thousands).
	MaxRoots int
}

func (l Limits) withDefaults() Limits {
	if l.MaxObjectBytes <= 0 {
		l.MaxObjectBytes = 1 << 30
	}
	if l.MaxStringBytes <= 0 {
		l.MaxStringBytes = 1 << 20
	}
	if l.MaxObjects <= 0 {
		l.MaxObjects = 256 << 20
	}
	if l.MaxStackDepth <= 0 {
		l.MaxStackDepth = 4096
	}
	if l.MaxRoots <= 0 {
		l.MaxRoots = 4 << 20
	}
	return l
}

// FormatError is a dump that cannot be read: truncated, corrupt, or over a
// limit. Offset is where the record that failed begins, in bytes from the
// start of the dump.
type FormatError struct {
	Record string // "object", "stack frame", "header", ...
	Offset int64
	Err    error
}

func (e *FormatError) Error() string {
	return fmt.Sprintf("heap dump: %s record at offset %d: %v", e.Record, e.Offset, e.Err)
}

func (e *FormatError) Unwrap() error { return e.Err }

// errTruncated is the cause of a FormatError when the input ends mid-record.
var errTruncated = errors.New("truncated: input ends inside the record")

// reader is a buffered reader that counts its offset and decodes the
// format's varints without a call per byte.
type reader struct {
	src  io.Reader
	buf  []byte
	r, w int
	off  int64 // offset of buf[r]
	err  error // sticky error of src
}

func (d *reader) fill() bool {
	if d.err != nil {
		return false
	}
	if d.r > 0 {
		n := copy(d.buf, d.buf[d.r:d.w])
		d.w = n
		d.r = 0
	}
	if d.w == len(d.buf) {
		return true
	}
	// A reader that keeps returning nothing is an error, not a hang.
	for range 100 {
		n, err := d.src.Read(d.buf[d.w:])
		d.w += n
		if err != nil {
			d.err = err
			return n > 0
		}
		if n > 0 {
			return true
		}
	}
	d.err = io.ErrNoProgress
	return false
}

func (d *reader) srcErr() error {
	if d.err == nil || d.err == io.EOF {
		return errTruncated
	}
	return d.err
}

// uvarint reads one varint as encoding/binary writes it.
func (d *reader) uvarint() (uint64, error) {
	if d.w-d.r >= binary.MaxVarintLen64 {
		// Fast path: the whole varint is buffered; most are one byte.
		if b := d.buf[d.r]; b < 0x80 {
			d.r++
			d.off++
			return uint64(b), nil
		}
		v, n := binary.Uvarint(d.buf[d.r:d.w])
		if n <= 0 {
			return 0, errors.New("varint overflows 64 bits")
		}
		d.r += n
		d.off += int64(n)
		return v, nil
	}
	var v uint64
	var s uint
	for i := 0; ; i++ {
		if d.r == d.w && !d.fill() {
			return 0, d.srcErr()
		}
		if d.r == d.w {
			return 0, d.srcErr()
		}
		b := d.buf[d.r]
		d.r++
		d.off++
		if i == binary.MaxVarintLen64-1 && b > 1 {
			return 0, errors.New("varint overflows 64 bits")
		}
		if b < 0x80 {
			return v | uint64(b)<<s, nil
		}
		v |= uint64(b&0x7f) << s
		s += 7
	}
}

// bytes appends the next n bytes of input to dst, reading them as they
// arrive so that a lying n fails at the end of the input, not in make.
func (d *reader) bytes(dst []byte, n uint64) ([]byte, error) {
	for n > 0 {
		if d.r == d.w && !d.fill() {
			return dst, d.srcErr()
		}
		if d.r == d.w {
			return dst, d.srcErr()
		}
		k := min(uint64(d.w-d.r), n)
		dst = append(dst, d.buf[d.r:d.r+int(k)]...)
		d.r += int(k)
		d.off += int64(k)
		n -= k
	}
	return dst, nil
}

// Read reads a heap dump from r, as runtime/debug.WriteHeapDump writes it,
// into a Dump whose object graph is held in flat arrays. It reads r once,
// front to back. A dump that is truncated, corrupt or over lim is a
// *FormatError naming the record and its offset.
func Read(r io.Reader, lim Limits) (*Dump, error) {
	lim = lim.withDefaults()
	d := &reader{src: r, buf: make([]byte, 256<<10)}
	b := &builder{lim: lim, dump: &Dump{}, ptrSize: 8, order: binary.LittleEndian, bucketIdx: map[uint64]int32{}}
	b.reserve(r)
	hdr, err := d.bytes(nil, uint64(len(Header)))
	if err != nil || string(hdr) != Header {
		if err == nil {
			err = fmt.Errorf("not a heap dump: header is %q, want %q", hdr, Header)
		}
		return nil, &FormatError{Record: "header", Offset: 0, Err: err}
	}
	for {
		start := d.off
		tag, err := d.uvarint()
		if err != nil {
			return nil, &FormatError{Record: "tag", Offset: start, Err: err}
		}
		if tag == tagEOF {
			break
		}
		if err := b.record(d, tag); err != nil {
			name := fmt.Sprintf("unknown (tag %d)", tag)
			if tag < uint64(len(tagNames)) {
				name = tagNames[tag]
			}
			return nil, &FormatError{Record: name, Offset: start, Err: err}
		}
	}
	b.dump.Size = d.off
	if err := b.finish(); err != nil {
		return nil, &FormatError{Record: "eof", Offset: d.off, Err: err}
	}
	return b.dump, nil
}

// reserve sizes the object arrays from the input's length when r knows it
// (a file, a byte slice), so they do not grow by copying: a small object's
// record takes 40 to 50 bytes, and an array only reserved is never touched.
func (b *builder) reserve(r io.Reader) {
	var n int64
	switch r := r.(type) {
	case interface{ Len() int }:
		n = int64(r.Len())
	case interface{ Stat() (os.FileInfo, error) }:
		if fi, err := r.Stat(); err == nil && fi.Mode().IsRegular() {
			n = fi.Size()
		}
	}
	objs := min(n/44, int64(b.lim.MaxObjects))
	if objs <= 0 {
		return
	}
	d := b.dump
	d.addr = make([]uint64, 0, objs)
	d.size = make([]uint32, 0, objs)
	d.edgeEnd = make([]uint32, 0, objs)
	b.objWords = make([]uint32, 0, objs*3/2) // about one and a third pointers per object
}

// builder collects records into a Dump while the input streams by.
type builder struct {
	lim     Limits
	dump    *Dump
	ptrSize int
	order   binary.ByteOrder
	lo, hi  uint64 // heap arena range from params; pointers outside are not to objects
	scratch []byte
	str     []byte

	// Raw pointer values of objects, in read order: as words above the
	// arena's start when the arena range allows (compact, half the
	// memory), else as they are.
	params    bool // a params record was read
	compact   bool
	objWords  []uint32
	objEdges  []uint64
	tmp       []uint64
	samples   [][2]uint64
	bucketIdx map[uint64]int32
	g         int // index of the goroutine whose frames follow, -1 none
	haveG     bool
}

func (b *builder) str1(d *reader) (string, error) {
	n, err := d.uvarint()
	if err != nil {
		return "", err
	}
	if n > uint64(b.lim.MaxStringBytes) {
		return "", fmt.Errorf("string of %d bytes is over the limit of %d", n, b.lim.MaxStringBytes)
	}
	b.str, err = d.bytes(b.str[:0], n)
	return string(b.str), err
}

// ints reads n varints into dst.
func (b *builder) ints(d *reader, dst ...*uint64) error {
	for _, p := range dst {
		v, err := d.uvarint()
		if err != nil {
			return err
		}
		if p != nil {
			*p = v
		}
	}
	return nil
}

// contents reads a length-prefixed memory range into b.scratch.
func (b *builder) contents(d *reader) error {
	n, err := d.uvarint()
	if err != nil {
		return err
	}
	if n > uint64(b.lim.MaxObjectBytes) {
		return fmt.Errorf("contents of %d bytes are over the limit of %d", n, b.lim.MaxObjectBytes)
	}
	b.scratch, err = d.bytes(b.scratch[:0], n)
	return err
}

func (b *builder) word(off uint64) uint64 {
	if b.ptrSize == 4 {
		return uint64(b.order.Uint32(b.scratch[off:]))
	}
	return b.order.Uint64(b.scratch[off:])
}

func (b *builder) heapPtr(v uint64) bool {
	if v == 0 {
		return false
	}
	if b.hi == 0 {
		return true
	}
	return v >= b.lo && v < b.hi
}

// fields reads a field list and appends, for each pointer field, the pointer
// it holds (when it points into the heap) to dst, and the field's offset to
// offs when offs is not nil. strict makes an offset outside the contents an
// error; frames are lenient because their argument maps may describe the
// caller's frame.
func (b *builder) fields(d *reader, dst []uint64, offs *[]uint64, strict bool) ([]uint64, error) {
	for {
		kind, err := d.uvarint()
		if err != nil {
			return dst, err
		}
		if kind == fieldEol {
			return dst, nil
		}
		if kind != fieldPtr && kind != fieldIface && kind != fieldEface {
			return dst, fmt.Errorf("unknown field kind %d", kind)
		}
		off, err := d.uvarint()
		if err != nil {
			return dst, err
		}
		words := uint64(1)
		if kind != fieldPtr {
			words = 2 // type or itab word, then data word
		}
		if off > uint64(len(b.scratch)) || uint64(len(b.scratch))-off < words*uint64(b.ptrSize) {
			if strict {
				return dst, fmt.Errorf("pointer field at offset %d is outside the %d bytes of contents", off, len(b.scratch))
			}
			continue
		}
		if kind != fieldPtr {
			off += uint64(b.ptrSize)
		}
		if v := b.word(off); b.heapPtr(v) {
			dst = append(dst, v)
			if offs != nil {
				*offs = append(*offs, off)
			}
		}
	}
}

func (b *builder) root(kind RootKind, name string, addr uint64, g int64, to ...uint64) error {
	if len(b.dump.Roots) >= b.lim.MaxRoots {
		return fmt.Errorf("more than %d roots", b.lim.MaxRoots)
	}
	r := Root{Kind: kind, Name: name, Addr: addr, Goroutine: g}
	r.first = int32(len(b.dump.rootEdges))
	for _, v := range to {
		if b.heapPtr(v) {
			b.dump.rootEdges = append(b.dump.rootEdges, v)
		}
	}
	r.end = int32(len(b.dump.rootEdges))
	if r.end > r.first || kind == RootFinalizer {
		b.dump.Roots = append(b.dump.Roots, r)
	}
	return nil
}

func (b *builder) record(d *reader, tag uint64) error {
	dump := b.dump
	switch tag {
	case tagObject:
		if b.fastObject(d) {
			return nil
		}
		addr, err := d.uvarint()
		if err != nil {
			return err
		}
		if err := b.contents(d); err != nil {
			return err
		}
		if len(dump.addr) >= b.lim.MaxObjects {
			return fmt.Errorf("more than %d objects", b.lim.MaxObjects)
		}
		if uint64(len(b.scratch)) > 1<<32-1 {
			return fmt.Errorf("object of %d bytes is too large", len(b.scratch))
		}
		if addr+uint64(len(b.scratch)) < addr {
			return fmt.Errorf("object at %#x of %d bytes wraps around the address space", addr, len(b.scratch))
		}
		b.tmp, err = b.fields(d, b.tmp[:0], nil, true)
		if err != nil {
			return err
		}
		for _, v := range b.tmp {
			b.addEdge(v)
		}
		if b.numEdges() > 1<<31-1 {
			return errors.New("more than 2^31 pointers")
		}
		dump.addr = append(dump.addr, addr)
		dump.size = append(dump.size, uint32(len(b.scratch)))
		dump.edgeEnd = append(dump.edgeEnd, uint32(b.numEdges()))
	case tagOtherRoot:
		desc, err := b.str1(d)
		if err != nil {
			return err
		}
		var to uint64
		if err := b.ints(d, &to); err != nil {
			return err
		}
		if err := b.root(RootOther, desc, 0, 0, to); err != nil {
			return err
		}
	case tagType:
		if err := b.ints(d, nil, nil); err != nil {
			return err
		}
		if _, err := b.str1(d); err != nil {
			return err
		}
		return b.ints(d, nil)
	case tagGoroutine:
		var g Goroutine
		var addr, sp, goid, gopc, status, sys, bg, since, ctxt, m, def, pan uint64
		if err := b.ints(d, &addr, &sp, &goid, &gopc, &status, &sys, &bg, &since); err != nil {
			return err
		}
		reason, err := b.str1(d)
		if err != nil {
			return err
		}
		if err := b.ints(d, &ctxt, &m, &def, &pan); err != nil {
			return err
		}
		g.ID, g.Status, g.System, g.WaitReason = int64(goid), status, sys != 0, reason
		dump.Goroutines = append(dump.Goroutines, g)
		b.g, b.haveG = len(dump.Goroutines)-1, true
		if err := b.root(RootGoroutine, "context", 0, g.ID, ctxt); err != nil {
			return err
		}
	case tagStackFrame:
		var sp, depth, childSP, entry, pc, cont uint64
		if err := b.ints(d, &sp, &depth, &childSP); err != nil {
			return err
		}
		if err := b.contents(d); err != nil {
			return err
		}
		if err := b.ints(d, &entry, &pc, &cont); err != nil {
			return err
		}
		name, err := b.str1(d)
		if err != nil {
			return err
		}
		var ptrs, offs []uint64
		if ptrs, err = b.fields(d, nil, &offs, false); err != nil {
			return err
		}
		var gid int64
		if b.haveG {
			g := &dump.Goroutines[b.g]
			gid = g.ID
			if len(g.Frames) < 1<<16 {
				g.Frames = append(g.Frames, name)
			}
		}
		n := len(dump.Roots)
		if err := b.root(RootFrame, name, sp, gid, ptrs...); err != nil {
			return err
		}
		if len(dump.Roots) > n {
			// Where each pointer lies in the frame, to name the local
			// variable that holds it (see Symbols).
			r := &dump.Roots[n]
			r.pc, r.frameSize = pc, uint64(len(b.scratch))
			r.slots = make([]uint32, len(offs))
			for i, o := range offs {
				r.slots[i] = uint32(o)
			}
		}
	case tagParams:
		if b.params {
			return errors.New("a second params record")
		}
		b.params = true
		var big, ptr, ncpu uint64
		if err := b.ints(d, &big, &ptr, &b.lo, &b.hi); err != nil {
			return err
		}
		if ptr != 4 && ptr != 8 {
			return fmt.Errorf("pointer size %d is neither 4 nor 8", ptr)
		}
		if b.lo > b.hi {
			return fmt.Errorf("heap arena start %#x is after its end %#x", b.lo, b.hi)
		}
		b.ptrSize = int(ptr)
		// Objects are 8-aligned and their sizes multiples of 8, so a
		// pointer's word number finds the same object.
		b.compact = b.ptrSize == 8 && len(dump.addr) == 0 && b.hi > b.lo && (b.hi-b.lo)>>3 < 1<<32
		if big != 0 {
			b.order = binary.BigEndian
		}
		arch, err := b.str1(d)
		if err != nil {
			return err
		}
		ver, err := b.str1(d)
		if err != nil {
			return err
		}
		if err := b.ints(d, &ncpu); err != nil {
			return err
		}
		dump.Params = Params{BigEndian: big != 0, PtrSize: int(ptr), ArenaStart: b.lo, ArenaEnd: b.hi, Arch: arch, GoVersion: ver, NumCPU: int(ncpu)}
	case tagFinalizer, tagQueuedFinalizer:
		var obj, fn, fnpc, fint, ot uint64
		if err := b.ints(d, &obj, &fn, &fnpc, &fint, &ot); err != nil {
			return err
		}
		if tag == tagQueuedFinalizer {
			// Queued to run: the object itself is kept for the finalizer.
			if err := b.root(RootFinalizer, "queued finalizer", obj, 0, obj, fn); err != nil {
				return err
			}
		} else {
			// A finalizer keeps its function and what the object points
			// to alive, but not the object itself; finish links the
			// object's children.
			if err := b.root(RootFinalizer, "finalizer", obj, 0); err != nil {
				return err
			}
			r := &dump.Roots[len(dump.Roots)-1]
			if b.heapPtr(fn) {
				dump.rootEdges = append(dump.rootEdges, fn)
				r.end++
			}
			dump.finalized = append(dump.finalized, finalized{obj: obj, root: int32(len(dump.Roots) - 1)})
		}
	case tagItab:
		return b.ints(d, nil, nil)
	case tagOSThread:
		return b.ints(d, nil, nil, nil)
	case tagMemStats:
		var v [24]uint64
		for i := range v {
			if err := b.ints(d, &v[i]); err != nil {
				return err
			}
		}
		for range 256 {
			if err := b.ints(d, nil); err != nil {
				return err
			}
		}
		var numGC uint64
		if err := b.ints(d, &numGC); err != nil {
			return err
		}
		dump.MemStats = MemStats{HeapAlloc: v[6], HeapObjects: v[11], Sys: v[2], NumGC: numGC}
	case tagData, tagBSS:
		var base uint64
		if err := b.ints(d, &base); err != nil {
			return err
		}
		if err := b.contents(d); err != nil {
			return err
		}
		var offs []uint64
		ptrs, err := b.fields(d, nil, &offs, true)
		if err != nil {
			return err
		}
		name := "data"
		if tag == tagBSS {
			name = "bss"
			dump.BSSStart = base
		} else {
			dump.DataStart = base
		}
		for i, p := range ptrs {
			if err := b.root(RootGlobal, name, base+offs[i], 0, p); err != nil {
				return err
			}
		}
	case tagDefer:
		var addr, gp, sp, pc, fn, fnpc, link uint64
		if err := b.ints(d, &addr, &gp, &sp, &pc, &fn, &fnpc, &link); err != nil {
			return err
		}
		var gid int64
		if b.haveG {
			gid = dump.Goroutines[b.g].ID
		}
		if err := b.root(RootGoroutine, "defer", addr, gid, addr, fn); err != nil {
			return err
		}
	case tagPanic:
		var addr, gp, typ, data, def, link uint64
		if err := b.ints(d, &addr, &gp, &typ, &data, &def, &link); err != nil {
			return err
		}
		var gid int64
		if b.haveG {
			gid = dump.Goroutines[b.g].ID
		}
		if err := b.root(RootGoroutine, "panic value", addr, gid, data); err != nil {
			return err
		}
	case tagMemProf:
		var bucket, size, nstk uint64
		if err := b.ints(d, &bucket, &size, &nstk); err != nil {
			return err
		}
		if nstk > uint64(b.lim.MaxStackDepth) {
			return fmt.Errorf("stack of %d frames is over the limit of %d", nstk, b.lim.MaxStackDepth)
		}
		site := Site{Size: size}
		for range nstk {
			fn, err := b.str1(d)
			if err != nil {
				return err
			}
			file, err := b.str1(d)
			if err != nil {
				return err
			}
			var line uint64
			if err := b.ints(d, &line); err != nil {
				return err
			}
			site.Stack = append(site.Stack, Frame{Func: fn, File: file, Line: int(line)})
		}
		if err := b.ints(d, &site.Allocs, &site.Frees); err != nil {
			return err
		}
		if _, dup := b.bucketIdx[bucket]; !dup {
			if len(dump.Sites) >= 1<<30 {
				return errors.New("too many memory profile buckets")
			}
			b.bucketIdx[bucket] = int32(len(dump.Sites))
			dump.Sites = append(dump.Sites, site)
		}
	case tagAllocSample:
		var addr, bucket uint64
		if err := b.ints(d, &addr, &bucket); err != nil {
			return err
		}
		if len(b.samples) >= b.lim.MaxObjects {
			return fmt.Errorf("more than %d alloc samples", b.lim.MaxObjects)
		}
		b.samples = append(b.samples, [2]uint64{addr, bucket})
	default:
		return errors.New("unknown record tag")
	}
	return nil
}

func (b *builder) addEdge(v uint64) {
	if b.compact {
		b.objWords = append(b.objWords, uint32((v-b.lo)>>3))
	} else {
		b.objEdges = append(b.objEdges, v)
	}
}

func (b *builder) numEdges() int {
	if b.compact {
		return len(b.objWords)
	}
	return len(b.objEdges)
}

func (b *builder) edge(k uint32) uint64 {
	if b.compact {
		return b.lo + uint64(b.objWords[k])<<3
	}
	return b.objEdges[k]
}

// fastObject reads an object record that lies whole in the buffer, on a
// 64-bit little-endian dump, without copying its contents; it reports
// false, having consumed nothing, for anything else, which the general
// path then reads (and reports, if it is an error).
func (b *builder) fastObject(d *reader) bool {
	if b.ptrSize != 8 || b.order != binary.LittleEndian || len(b.dump.addr) >= b.lim.MaxObjects {
		return false
	}
	buf := d.buf[d.r:d.w]
	i := 0
	next := func() (uint64, bool) {
		if i < len(buf) && buf[i] < 0x80 {
			i++
			return uint64(buf[i-1]), true
		}
		v, n := binary.Uvarint(buf[i:])
		if n <= 0 {
			return 0, false
		}
		i += n
		return v, true
	}
	addr, ok := next()
	if !ok {
		return false
	}
	size, ok := next()
	if !ok || size > uint64(len(buf)-i) || size > uint64(b.lim.MaxObjectBytes) || addr+size < addr {
		return false
	}
	contents := buf[i : i+int(size)]
	i += int(size)
	mark := b.numEdges()
	for {
		kind, ok := next()
		if !ok || kind != fieldPtr && kind != fieldEol {
			b.truncEdges(mark)
			return false
		}
		if kind == fieldEol {
			break
		}
		off, ok := next()
		if !ok || off > size || size-off < 8 {
			b.truncEdges(mark)
			return false
		}
		if v := binary.LittleEndian.Uint64(contents[off:]); b.heapPtr(v) {
			b.addEdge(v)
		}
	}
	if b.numEdges() > 1<<31-1 {
		b.truncEdges(mark)
		return false
	}
	dump := b.dump
	dump.addr = append(dump.addr, addr)
	dump.size = append(dump.size, uint32(size))
	dump.edgeEnd = append(dump.edgeEnd, uint32(b.numEdges()))
	d.r += i
	d.off += int64(i)
	return true
}

func (b *builder) truncEdges(n int) {
	if b.compact {
		b.objWords = b.objWords[:n]
	} else {
		b.objEdges = b.objEdges[:n]
	}
}

// finish sorts the objects by address and resolves every pointer to the
// index of the object that contains it; pointers to no object (into stacks,
// globals, freed memory) are dropped.
func (b *builder) finish() error {
	dump := b.dump
	n := len(dump.addr)
	perm := sortedOrder(dump.addr, dump.size)
	// The raw edges stay in read order: keep where each object's begin
	// before the ends are lost to the reordering.
	starts := dump.edgeEnd // reused in place: edgeEnd[p] becomes object p's first edge
	for p := len(starts) - 1; p >= 0; p-- {
		if p == 0 {
			starts[p] = 0
		} else {
			starts[p] = starts[p-1]
		}
	}
	permute(dump.addr, dump.size, perm)
	addr, size := dump.addr, dump.size
	for i := 1; i < n; i++ {
		if addr[i] < addr[i-1]+uint64(size[i-1]) {
			return fmt.Errorf("objects at %#x and %#x overlap", addr[i-1], addr[i])
		}
	}
	// Edges in sorted order, resolved to object indices.
	edgeEnd := make([]uint32, n+1) // in address order
	edges := make([]int32, 0, b.numEdges())
	idx := newIndex(addr, size, b.lo, b.hi)
	find := idx.find
	total := uint32(b.numEdges())
	for i, p := range perm {
		lo, hi := starts[p], total
		if int(p)+1 < n {
			hi = starts[p+1]
		}
		for k := lo; k < hi; k++ {
			if j := find(b.edge(k)); j >= 0 {
				edges = append(edges, j)
			}
		}
		edgeEnd[i+1] = uint32(len(edges))
	}
	b.objEdges, b.objWords = nil, nil
	dump.addr, dump.size, dump.edgeEnd, dump.edges = addr, size, edgeEnd, edges

	for _, f := range dump.finalized {
		if j := find(f.obj); j >= 0 {
			r := &dump.Roots[f.root]
			r.finalObj = append(r.finalObj, j)
		}
	}
	dump.finalized = nil
	dump.rootTo = make([]int32, len(dump.rootEdges))
	for i, v := range dump.rootEdges {
		dump.rootTo[i] = find(v)
	}
	dump.rootEdges = nil

	dump.site = make([]int32, n)
	for i := range dump.site {
		dump.site[i] = -1
	}
	for _, s := range b.samples {
		j := find(s[0])
		k, ok := b.bucketIdx[s[1]]
		if j >= 0 && ok {
			dump.site[j] = k
			dump.Sampled++
		}
	}
	return nil
}

// permute reorders addr and size in place so that entry i becomes the
// old entry perm[i], following each cycle of the permutation once (visited
// entries of perm are marked by complementing them, then restored).
func permute(addr []uint64, size []uint32, perm []int32) {
	for i := range perm {
		if perm[i] < 0 || perm[i] == int32(i) {
			continue
		}
		a, s := addr[i], size[i]
		for j := i; ; {
			k := int(perm[j])
			perm[j] = ^perm[j]
			if k == i {
				addr[j], size[j] = a, s
				break
			}
			addr[j], size[j] = addr[k], size[k]
			j = k
		}
	}
	for i, p := range perm {
		if p < 0 {
			perm[i] = ^p
		}
	}
}

// findObject returns the index of the object that contains address v, or -1.
func findObject(addr []uint64, size []uint32, v uint64) int32 {
	lo, hi := 0, len(addr)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if addr[m] <= v {
			lo = m + 1
		} else {
			hi = m
		}
	}
	if lo == 0 {
		return -1
	}
	if i := lo - 1; v-addr[i] < uint64(size[i]) {
		return int32(i)
	}
	return -1
}

// sortedOrder returns the permutation that sorts addr. The runtime writes
// objects span by span, each span in address order, so the input is a
// sequence of runs of objects that lie end to end; two such runs cannot
// interleave, as objects do not overlap, so sorting the runs by their first
// address and concatenating them is enough. A full sort catches the rest.
func sortedOrder(addr []uint64, size []uint32) []int32 {
	n := len(addr)
	perm := make([]int32, 0, n)
	var runs [][2]int32 // [start, end)
	for i := 0; i < n; {
		j := i + 1
		for j < n && addr[j] == addr[j-1]+uint64(size[j-1]) {
			j++
		}
		runs = append(runs, [2]int32{int32(i), int32(j)})
		i = j
	}
	slices.SortFunc(runs, func(x, y [2]int32) int { return cmp.Compare(addr[x[0]], addr[y[0]]) })
	for _, r := range runs {
		for i := r[0]; i < r[1]; i++ {
			perm = append(perm, i)
		}
	}
	for k := 1; k < n; k++ {
		if addr[perm[k]] <= addr[perm[k-1]] {
			slices.SortFunc(perm, func(x, y int32) int { return cmp.Compare(addr[x], addr[y]) })
			break
		}
	}
	return perm
}

// index finds the object that contains an address: a table of the first
// object of every heap page narrows the binary search to one page's
// objects. Without a sane arena range it searches all objects.
type index struct {
	addr  []uint64
	size  []uint32
	lo    uint64
	first []int32 // first[p]: index of the first object that ends after page p starts
}

const indexPage = 8 << 10

func newIndex(addr []uint64, size []uint32, lo, hi uint64) *index {
	x := &index{addr: addr, size: size, lo: lo}
	pages := (hi - lo) / indexPage
	if hi <= lo || len(addr) == 0 || pages > 4*uint64(len(addr))+1024 {
		return x
	}
	x.first = make([]int32, pages+1)
	j := 0
	for p := range x.first {
		start := lo + uint64(p)*indexPage
		for j < len(addr) && addr[j]+uint64(size[j]) <= start {
			j++
		}
		x.first[p] = int32(j)
	}
	return x
}

func (x *index) find(v uint64) int32 {
	if x.first == nil || v < x.lo {
		return findObject(x.addr, x.size, v)
	}
	p := (v - x.lo) / indexPage
	if p+1 >= uint64(len(x.first)) {
		return findObject(x.addr, x.size, v)
	}
	// Objects that can contain v start at or before v and end after the
	// page starts: from first[p] up to the first object of page p+1 (which
	// may itself begin in page p).
	lo, hi := int(x.first[p]), min(int(x.first[p+1])+1, len(x.addr))
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if x.addr[m] <= v {
			lo = m + 1
		} else {
			hi = m
		}
	}
	if lo == 0 {
		return -1
	}
	if i := lo - 1; v-x.addr[i] < uint64(x.size[i]) {
		return int32(i)
	}
	return -1
}
