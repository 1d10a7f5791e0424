package tracker

import (
	"fmt"
	"hash/maphash"
	"math/rand/v2"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unsafe"
)

// maxStackDepth bounds how many frames an acquisition stack keeps.
const maxStackDepth = 32

// StackMode says when acquisition stacks are captured, like the levels of Netty's
// leak detector: never, for one record in N, or for every record.
type StackMode struct {
	// Every captures one stack in Every records: 0 never, 1 always.
	Every int
}

// Stack capture modes.
var (
	StacksOff    = StackMode{Every: 0}
	StacksAlways = StackMode{Every: 1}
)

// StacksSampled captures the stack of about one record in n.
func StacksSampled(n int) StackMode {
	if n <= 1 {
		return StacksAlways
	}
	return StackMode{Every: n}
}

// String returns the mode in the form ParseStackMode reads.
func (m StackMode) String() string {
	switch {
	case m.Every <= 0:
		return "off"
	case m.Every == 1:
		return "always"
	default:
		return "sample:" + strconv.Itoa(m.Every)
	}
}

// ParseStackMode reads a mode as LEAKCHECK_STACKS gives it: "off", "always" or
// "sample:N".
func ParseStackMode(s string) (StackMode, error) {
	switch s = strings.TrimSpace(s); s {
	case "off", "":
		return StacksOff, nil
	case "always", "on":
		return StacksAlways, nil
	}
	if n, ok := strings.CutPrefix(s, "sample:"); ok {
		every, err := strconv.Atoi(n)
		if err == nil && every >= 1 {
			return StacksSampled(every), nil
		}
	}
	return StacksOff, fmt.Errorf("tracker: stack mode %q: want off, always or sample:N with N >= 1", s)
}

// want reports whether this record should get a stack.
func (m StackMode) want() bool {
	switch {
	case m.Every <= 0:
		return false
	case m.Every == 1:
		return true
	default:
		return rand.N(m.Every) == 0
	}
}

// stackTable stores each distinct stack once and hands out small ids.
// Lookups of known stacks take only a read lock.
type stackTable struct {
	seed maphash.Seed
	mu   sync.RWMutex
	ids  map[uint64][]int // hash -> ids with that hash
	all  []*stackEntry    // id-1 -> entry
}

type stackEntry struct {
	pcs    []uintptr
	once   sync.Once
	frames []Frame
}

func newStackTable() *stackTable {
	return &stackTable{seed: maphash.MakeSeed(), ids: make(map[uint64][]int)}
}

// capture records the caller's stack, skipping skip frames above capture's
// caller, and returns its id.
func (t *stackTable) capture(skip int) int {
	var buf [maxStackDepth]uintptr
	n := runtime.Callers(skip+2, buf[:])
	return t.intern(buf[:n])
}

func (t *stackTable) intern(pcs []uintptr) int {
	if len(pcs) == 0 {
		return 0
	}
	h := t.hash(pcs)
	t.mu.RLock()
	id := t.find(h, pcs)
	t.mu.RUnlock()
	if id != 0 {
		return id
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if id := t.find(h, pcs); id != 0 {
		return id
	}
	t.all = append(t.all, &stackEntry{pcs: append([]uintptr(nil), pcs...)})
	id = len(t.all)
	t.ids[h] = append(t.ids[h], id)
	return id
}

// hash hashes the program counters as the bytes they are stored in, in one
// call: a stack is hashed on every capture, so this is on the hot path.
func (t *stackTable) hash(pcs []uintptr) uint64 {
	b := unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(pcs))), len(pcs)*int(unsafe.Sizeof(pcs[0])))
	return maphash.Bytes(t.seed, b)
}

// find returns the id of pcs among the ids with hash h; the caller holds mu.
func (t *stackTable) find(h uint64, pcs []uintptr) int {
	for _, id := range t.ids[h] {
		if slices.Equal(t.all[id-1].pcs, pcs) {
			return id
		}
	}
	return 0
}

// frames returns the symbolized frames of stack id, computed once.
func (t *stackTable) frames(id int) []Frame {
	if id == 0 {
		return nil
	}
	t.mu.RLock()
	e := t.all[id-1]
	t.mu.RUnlock()
	e.once.Do(func() {
		fs := runtime.CallersFrames(e.pcs)
		for {
			f, more := fs.Next()
			e.frames = append(e.frames, Frame{Func: f.Function, File: f.File, Line: f.Line})
			if !more {
				break
			}
		}
	})
	return e.frames
}

// pcs returns the raw program counters of stack id.
func (t *stackTable) pcs(id int) []uintptr {
	if id == 0 {
		return nil
	}
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.all[id-1].pcs
}
