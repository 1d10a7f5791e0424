package tracker

import (
	"cmp"
	"fmt"
	"reflect"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// Bounds of the cycle finder, changed with the Cycle options.
const (
	// DefaultCycleMaxDepth bounds how many objects deep a path from the root
	// may go; a longer cycle is not found.
	DefaultCycleMaxDepth = 1000
	// DefaultCycleMaxNodes bounds how many distinct objects one walk visits.
	DefaultCycleMaxNodes = 1_000_000
	// DefaultCycleMaxCycles bounds how many cycles one walk lists.
	DefaultCycleMaxCycles = 100
)

// CycleOption configures FindCycles.
type CycleOption func(*cycleConfig)

type cycleConfig struct {
	maxDepth, maxNodes, maxCycles int
	rootName                      string
	walkStd                       bool
}

// CycleMaxDepth bounds how many objects deep the walk goes from the root.
func CycleMaxDepth(n int) CycleOption { return func(c *cycleConfig) { c.maxDepth = max(n, 1) } }

// CycleMaxNodes bounds how many distinct objects the walk visits.
func CycleMaxNodes(n int) CycleOption { return func(c *cycleConfig) { c.maxNodes = max(n, 1) } }

// CycleMaxCycles bounds how many cycles are listed; more are only counted.
func CycleMaxCycles(n int) CycleOption { return func(c *cycleConfig) { c.maxCycles = max(n, 1) } }

// CycleRootName names the walked value in paths, such as "heap"; by default
// it is named by its type, as (map[string]any).
func CycleRootName(name string) CycleOption { return func(c *cycleConfig) { c.rootName = name } }

// CycleWalkStd makes the walk enter values of standard-library types too
// (sync.Map, container/list, context, ...), which are opaque by default: their
// internals hold cycles of their own that are not the program's.
func CycleWalkStd(on bool) CycleOption { return func(c *cycleConfig) { c.walkStd = on } }

// CycleResult is what FindCycles found, and where it stopped looking.
type CycleResult struct {
	// Cycles lists each cycle once, in the order found.
	Cycles []Cycle
	// Nodes is how many distinct objects (pointed-to values, maps, slice
	// backing arrays, sessions) were visited.
	Nodes int
	// Opaque counts the values met that the walk could not look into:
	// funcs (closures hide what they captured), channels (their buffered
	// values), unsafe pointers, and standard-library or tracker values
	// reached through a pointer or an interface. Non-zero means a cycle
	// through them would go unseen.
	Opaque int
	// DepthLimited is true when some path was cut at the depth bound: a
	// longer cycle may exist.
	DepthLimited bool
	// NodeLimited is true when the walk stopped at the node bound.
	NodeLimited bool
	// Dropped counts cycles found beyond the cycle bound, not listed.
	Dropped int
	// Err reports a panic met while walking an odd value; the result holds
	// what was found before it.
	Err error
}

// Truncated reports whether the walk hit one of its bounds or failed, so a
// cycle may have been missed or left unlisted.
func (r CycleResult) Truncated() bool {
	return r.DepthLimited || r.NodeLimited || r.Dropped > 0 || r.Err != nil
}

// FindCycles walks v by reflection and reports the reference cycles it
// finds, each once, as a readable path, in the spirit of Perl's
// Devel::Cycle:
//
//	(*Session "alice").Heap["peer"] -> (*Session "bob").Heap["peer"] -> (*Session "alice")
//
// The walk follows pointers, interfaces, struct fields (unexported ones too;
// it only reads), array and slice elements, map keys and values, and, for a
// *Session, its heap (see Session.SetHeap) and nothing else of it. Objects
// are identified by address: a pointed-to value by its address and type, a
// map by its header, a slice by its backing array and length.
//
// What it cannot see: the variables a closure captured (reflect does not
// expose them, and reading the funcval layout would tie the finder to one
// compiler), values buffered in channels, memory behind unsafe pointers, and
// by default the internals of standard-library types; such values are counted
// in CycleResult.Opaque. A cycle through them is not found.
//
// It reports one cycle per back edge of a depth-first walk: every group of
// objects that refer to each other in a ring is reported at least once, but
// not every distinct ring through the same objects. The walk is bounded
// (CycleMaxDepth, CycleMaxNodes, CycleMaxCycles) and says when a bound was
// hit.
//
// FindCycles reads v without locks: call it on the goroutine that owns the
// data, or while nothing mutates it. A map written during the walk can crash
// the program, as any unsynchronized map access can. Panics from odd values
// are recovered and reported in CycleResult.Err.
//
// Go's collector frees unreachable cycles, unlike Perl's reference counts; a
// cycle matters because one stray reference to any of its objects keeps all
// of them, and everything they hold, alive.
func FindCycles(v any, opts ...CycleOption) CycleResult {
	w := newWalker(opts)
	w.walkRoot(reflect.ValueOf(v), w.cfg.rootName, nil)
	return w.res
}

// CheckCycles looks for cycles in the heaps of every session the registry
// knows (running ones, and stopped ones that still own records), in one walk
// so a cycle through several sessions is listed once. A cycle is Stopped when
// every session on it, and the session whose heap holds it, has stopped. The
// result is kept for Snapshot.Cycles until the next call.
//
// Like FindCycles it reads heaps without locks: the heaps' owners must not
// mutate them meanwhile. Stopped sessions that own nothing are not known to
// the registry; they are found only through a heap that refers to them.
func (r *Registry) CheckCycles(opts ...CycleOption) CycleResult {
	sessions := r.allSessions()
	slices.SortFunc(sessions, func(a, b *Session) int { return cmp.Compare(a.rec.id, b.rec.id) })
	w := newWalker(opts)
	for _, s := range sessions {
		if s.Heap() == nil {
			continue
		}
		w.walkRoot(reflect.ValueOf(s), "", nil)
		if w.stop {
			break
		}
	}
	r.checks.mu.Lock()
	r.checks.lastCycles = w.res.Cycles
	r.checks.mu.Unlock()
	return w.res
}

// cycleCheckAtStop walks the heap of s, which just stopped, and keeps the
// cycles whose sessions have all stopped.
func (r *Registry) cycleCheckAtStop(s *Session) {
	if s.Heap() == nil {
		return
	}
	w := newWalker(nil)
	var keys []string
	w.walkRoot(reflect.ValueOf(s), "", &keys)
	x := &r.checks
	x.mu.Lock()
	defer x.mu.Unlock()
	for i, c := range w.res.Cycles {
		if !c.Stopped {
			continue
		}
		if x.stopCycleKeys == nil {
			x.stopCycleKeys = make(map[string]int)
		}
		// Addresses may be reused after a collection; session ids are
		// not, so they make the key unique.
		key := fmt.Sprint(c.Owner, c.Sessions, keys[i])
		if _, dup := x.stopCycleKeys[key]; dup {
			continue
		}
		if len(x.stopCycles) < x.max() {
			x.stopCycleKeys[key] = len(x.stopCycles)
			x.stopCycles = append(x.stopCycles, c)
			continue
		}
		// Replace the oldest, and forget its key.
		for k, j := range x.stopCycleKeys {
			if j == x.stopCycleNext {
				delete(x.stopCycleKeys, k)
				break
			}
		}
		x.stopCycles[x.stopCycleNext] = c
		x.stopCycleKeys[key] = x.stopCycleNext
		x.stopCycleNext = (x.stopCycleNext + 1) % len(x.stopCycles)
	}
}

// String describes the cycle on one line.
func (c Cycle) String() string {
	var b strings.Builder
	b.WriteString("CYCLE: ")
	b.WriteString(strings.Join(c.Path, " -> "))
	if c.Stopped {
		b.WriteString(" (every session on it has stopped: only the cycle is left)")
	}
	if c.Root != "" {
		b.WriteString("; reached through ")
		b.WriteString(c.Root)
	}
	return b.String()
}

// stepKind says what one step of a walk path is.
type stepKind uint8

const (
	stepRoot   stepKind = iota // the walked value; its name is walker.rootName
	stepNode                   // entering an object with identity
	stepField                  // .Name of the struct type tid, field i
	stepIndex                  // [i]
	stepKey                    // [key] of a map: the value under key
	stepMapKey                 // a map key itself
	stepHeap                   // .Heap of a session
)

// step is one step of the current walk path. Steps are rendered to strings
// only when a cycle is reported. A map step keeps the map's iterator, which
// rests on the entry being walked, and reads the key only when rendered.
type step struct {
	kind   stepKind
	anchor bool // a node that starts a new path element: pointers and sessions
	i      int
	id     nodeKey // stepNode; id.t also names the struct type of stepField
	key    reflect.Value
	iter   *reflect.MapIter
	sess   *Session
}

// keyValue returns the map key a stepKey or stepMapKey refers to.
func (s step) keyValue() reflect.Value {
	if s.iter != nil {
		return s.iter.Key()
	}
	return s.key
}

// nodeKey identifies an object: address, type (by walker type id) and, for
// a slice, length.
type nodeKey struct {
	p uintptr
	n int
	t uint32
}

// typeInfo is what the walker knows about a type, computed once per walk.
type typeInfo struct {
	t       reflect.Type
	id      uint32
	kind    reflect.Kind
	canRef  bool // a value can refer to an object the walk enters
	opaque  bool // a named type the walk does not enter
	session bool // *Session
	size    uintptr

	elem, key  *typeInfo // computed on first use
	fields     []fieldInfo
	fieldsDone bool
}

// fieldInfo is a struct field that can refer to something.
type fieldInfo struct {
	idx int
	ti  *typeInfo
}

// walker is one depth-first walk of an object graph; the seen set is shared
// by every root walked with it, so a cycle is reported once.
type walker struct {
	cfg      cycleConfig
	res      CycleResult
	seen     map[nodeKey]int32 // index in state
	state    []int32           // per node: position of its step while on the path, -1 when done
	path     []step
	depth    int
	stop     bool
	rootName string
	mayRef   map[reflect.Type]bool
	types    map[reflect.Type]*typeInfo
	byID     []*typeInfo
	keys     *[]string // identity keys of reported cycles, when wanted
	dedup    map[string]bool
}

func newWalker(opts []CycleOption) *walker {
	w := &walker{
		cfg:    cycleConfig{maxDepth: DefaultCycleMaxDepth, maxNodes: DefaultCycleMaxNodes, maxCycles: DefaultCycleMaxCycles},
		seen:   make(map[nodeKey]int32),
		mayRef: make(map[reflect.Type]bool),
		types:  make(map[reflect.Type]*typeInfo),
		dedup:  make(map[string]bool),
	}
	for _, o := range opts {
		o(&w.cfg)
	}
	return w
}

// walkRoot walks v, a root named name ("" for its type's name, or the
// session's name for a session). keys, when not nil, receives the identity
// key of each cycle reported during this walk.
func (w *walker) walkRoot(v reflect.Value, name string, keys *[]string) {
	defer func() {
		if p := recover(); p != nil {
			w.res.Err = fmt.Errorf("tracker: cycle finder: panic while walking: %v", p)
			w.stop = true
		}
		w.path = w.path[:0]
		w.depth = 0
	}()
	w.keys = keys
	if !v.IsValid() {
		return
	}
	if name == "" && !isNodeKind(v) {
		name = "(" + typeName(v.Type()) + ")"
	}
	w.rootName = name
	w.path = append(w.path[:0], step{kind: stepRoot})
	w.value(v, w.info(v.Type()))
}

// isNodeKind reports whether v is rendered by its own node name.
func isNodeKind(v reflect.Value) bool {
	switch v.Kind() {
	case reflect.Pointer, reflect.Map, reflect.Slice:
		return true
	case reflect.Interface:
		return !v.IsNil() && isNodeKind(v.Elem())
	}
	return false
}

var (
	sessionPtrType = reflect.TypeFor[*Session]()
	// trackerOpaque are tracker types the walk does not enter: their
	// internals (intrusive lists, back pointers) are the registry's.
	trackerOpaque = map[reflect.Type]bool{
		reflect.TypeFor[Session]():  true,
		reflect.TypeFor[Registry](): true,
		reflect.TypeFor[record]():   true,
		reflect.TypeFor[Handle]():   true,
		reflect.TypeFor[File]():     true,
		reflect.TypeFor[Conn]():     true,
		reflect.TypeFor[Listener](): true,
		reflect.TypeFor[Timer]():    true,
		reflect.TypeFor[Ticker]():   true,
	}
)

// opaque reports whether values of named type t are not entered.
func opaque(t reflect.Type, walkStd bool) bool {
	if trackerOpaque[t] {
		return true
	}
	return !walkStd && isStdPkg(t.PkgPath())
}

var (
	stdPkgs    sync.Map // package path -> bool
	modulesMu  sync.Once
	modulePkgs []string // module paths of the program and its dependencies
)

// isStdPkg reports whether pkg is a standard-library package: its first
// element has no dot, it is not main, and no module of the program has it.
func isStdPkg(pkg string) bool {
	if pkg == "" || pkg == "main" {
		return false
	}
	if v, ok := stdPkgs.Load(pkg); ok {
		return v.(bool)
	}
	first, _, _ := strings.Cut(pkg, "/")
	std := !strings.Contains(first, ".")
	if std {
		modulesMu.Do(func() {
			if bi, ok := debug.ReadBuildInfo(); ok {
				modulePkgs = append(modulePkgs, bi.Main.Path)
				for _, d := range bi.Deps {
					modulePkgs = append(modulePkgs, d.Path)
				}
			}
		})
		for _, m := range modulePkgs {
			if m != "" && (pkg == m || strings.HasPrefix(pkg, m+"/")) {
				std = false
				break
			}
		}
	}
	stdPkgs.Store(pkg, std)
	return std
}

// info returns what the walker knows about t.
func (w *walker) info(t reflect.Type) *typeInfo {
	if ti, ok := w.types[t]; ok {
		return ti
	}
	ti := &typeInfo{
		t:       t,
		id:      uint32(len(w.byID)),
		kind:    t.Kind(),
		session: t == sessionPtrType,
		size:    t.Size(),
	}
	w.types[t] = ti
	w.byID = append(w.byID, ti)
	ti.canRef = w.canRef(t)
	ti.opaque = t.Name() != "" && opaque(t, w.cfg.walkStd)
	return ti
}

func (w *walker) elemOf(ti *typeInfo) *typeInfo {
	if ti.elem == nil {
		ti.elem = w.info(ti.t.Elem())
	}
	return ti.elem
}

func (w *walker) keyOf(ti *typeInfo) *typeInfo {
	if ti.key == nil {
		ti.key = w.info(ti.t.Key())
	}
	return ti.key
}

// fieldsOf returns the fields of struct type ti that can refer to something.
func (w *walker) fieldsOf(ti *typeInfo) []fieldInfo {
	if !ti.fieldsDone {
		ti.fieldsDone = true
		for i := range ti.t.NumField() {
			if ft := ti.t.Field(i).Type; w.canRef(ft) {
				ti.fields = append(ti.fields, fieldInfo{i, w.info(ft)})
			}
		}
	}
	return ti.fields
}

// canRef reports whether a value of type t can refer to an object the walk
// would enter, or to something it counts as opaque; values that cannot are
// skipped without being looked at.
func (w *walker) canRef(t reflect.Type) bool {
	if v, ok := w.mayRef[t]; ok {
		return v
	}
	// A type that refers back to itself through a pointer, slice or map can
	// hold a cycle: assume so while its parts are examined.
	w.mayRef[t] = true
	var v bool
	switch t.Kind() {
	case reflect.Interface, reflect.Func, reflect.Chan, reflect.UnsafePointer:
		// Funcs, channels and unsafe pointers are not entered, only
		// counted as opaque.
		v = true
	case reflect.Pointer:
		v = t == sessionPtrType || (t.Elem().Size() > 0 && w.canRef(t.Elem()))
	case reflect.Slice:
		v = t.Elem().Size() > 0 && w.canRef(t.Elem())
	case reflect.Array:
		v = t.Len() > 0 && w.canRef(t.Elem())
	case reflect.Map:
		v = w.canRef(t.Key()) || w.canRef(t.Elem())
	case reflect.Struct:
		if t.Name() != "" && opaque(t, w.cfg.walkStd) {
			v = false
			break
		}
		for i := range t.NumField() {
			if w.canRef(t.Field(i).Type) {
				v = true
				break
			}
		}
	}
	w.mayRef[t] = v
	return v
}

// value walks v, of type ti, in place: a value with identity becomes a
// node, the rest (structs, arrays, interfaces) is walked through.
func (w *walker) value(v reflect.Value, ti *typeInfo) {
	if w.stop {
		return
	}
	switch ti.kind {
	case reflect.Interface:
		if !v.IsNil() {
			e := v.Elem()
			w.value(e, w.info(e.Type()))
		}
	case reflect.Pointer:
		if v.IsNil() {
			return
		}
		if ti.session {
			w.node(v, ti, nodeKey{p: uintptr(v.UnsafePointer()), t: ti.id}, step{anchor: true, sess: (*Session)(v.UnsafePointer())})
			return
		}
		et := w.elemOf(ti)
		if et.opaque {
			w.res.Opaque++
			return
		}
		if et.size == 0 || !et.canRef {
			return
		}
		w.node(v, ti, nodeKey{p: uintptr(v.UnsafePointer()), t: ti.id}, step{anchor: true})
	case reflect.Map:
		if !ti.canRef || v.IsNil() || v.Len() == 0 {
			return
		}
		w.node(v, ti, nodeKey{p: uintptr(v.UnsafePointer()), t: ti.id}, step{})
	case reflect.Slice:
		if !ti.canRef || v.IsNil() || v.Len() == 0 {
			return
		}
		w.node(v, ti, nodeKey{p: uintptr(v.UnsafePointer()), t: ti.id, n: v.Len()}, step{})
	case reflect.Struct:
		if ti.opaque {
			w.res.Opaque++
			return
		}
		for _, f := range w.fieldsOf(ti) {
			w.path = append(w.path, step{kind: stepField, id: nodeKey{t: ti.id}, i: f.idx})
			w.value(v.Field(f.idx), f.ti)
			w.path = w.path[:len(w.path)-1]
		}
	case reflect.Array:
		if !ti.canRef {
			return
		}
		et := w.elemOf(ti)
		for i := range v.Len() {
			w.path = append(w.path, step{kind: stepIndex, i: i})
			w.value(v.Index(i), et)
			w.path = w.path[:len(w.path)-1]
		}
	case reflect.Func, reflect.Chan, reflect.UnsafePointer:
		if !v.IsNil() {
			w.res.Opaque++
		}
	}
}

// node enters the object v of type ti, identified by k, unless it was seen:
// one on the current path closes a cycle.
func (w *walker) node(v reflect.Value, ti *typeInfo, k nodeKey, s step) {
	if idx, ok := w.seen[k]; ok {
		if pos := w.state[idx]; pos >= 0 {
			w.cycle(int(pos))
		}
		return
	}
	if w.depth >= w.cfg.maxDepth {
		w.res.DepthLimited = true
		return
	}
	if w.res.Nodes >= w.cfg.maxNodes {
		w.res.NodeLimited = true
		w.stop = true
		return
	}
	w.res.Nodes++
	idx := int32(len(w.state))
	w.seen[k] = idx
	w.state = append(w.state, int32(len(w.path)))
	s.kind, s.id = stepNode, k
	w.path = append(w.path, s)
	w.depth++
	w.inside(v, ti, s.sess)
	w.depth--
	w.path = w.path[:len(w.path)-1]
	w.state[idx] = -1
}

// sortLimit is the largest map whose keys are sorted before walking, so
// paths through it are stable; larger maps are walked in map order.
const sortLimit = 1024

// inside walks what the object v, of type ti, refers to.
func (w *walker) inside(v reflect.Value, ti *typeInfo, sess *Session) {
	switch {
	case sess != nil:
		h := sess.Heap()
		if h == nil {
			return
		}
		hv := reflect.ValueOf(h)
		w.path = append(w.path, step{kind: stepHeap})
		w.value(hv, w.info(hv.Type()))
		w.path = w.path[:len(w.path)-1]
	case ti.kind == reflect.Pointer:
		w.value(v.Elem(), w.elemOf(ti))
	case ti.kind == reflect.Slice:
		et := w.elemOf(ti)
		for i := range v.Len() {
			if w.stop {
				return
			}
			w.path = append(w.path, step{kind: stepIndex, i: i})
			w.value(v.Index(i), et)
			w.path = w.path[:len(w.path)-1]
		}
	case ti.kind == reflect.Map:
		kt, et := w.keyOf(ti), w.elemOf(ti)
		walkKeys, walkVals := kt.canRef, et.canRef
		if v.Len() <= sortLimit {
			for _, k := range sortedKeys(v) {
				if w.stop {
					return
				}
				if walkKeys {
					w.path = append(w.path, step{kind: stepMapKey, key: k})
					w.value(k, kt)
					w.path = w.path[:len(w.path)-1]
				}
				if walkVals {
					w.path = append(w.path, step{kind: stepKey, key: k})
					w.value(v.MapIndex(k), et)
					w.path = w.path[:len(w.path)-1]
				}
			}
			return
		}
		// A large map: no copy of its keys, no lookups. Keys are read
		// from the iterator only to render a cycle through them.
		it := v.MapRange()
		for it.Next() {
			if w.stop {
				return
			}
			if walkKeys {
				w.path = append(w.path, step{kind: stepMapKey, iter: it})
				w.value(it.Key(), kt)
				w.path = w.path[:len(w.path)-1]
			}
			if walkVals {
				w.path = append(w.path, step{kind: stepKey, iter: it})
				w.value(it.Value(), et)
				w.path = w.path[:len(w.path)-1]
			}
		}
	}
}

// sortedKeys returns the keys of map v, sorted when they are of a basic kind
// so walks and the paths they report are stable.
func sortedKeys(v reflect.Value) []reflect.Value {
	keys := v.MapKeys()
	switch v.Type().Key().Kind() {
	case reflect.String:
		slices.SortFunc(keys, func(a, b reflect.Value) int { return cmp.Compare(a.String(), b.String()) })
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		slices.SortFunc(keys, func(a, b reflect.Value) int { return cmp.Compare(a.Int(), b.Int()) })
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		slices.SortFunc(keys, func(a, b reflect.Value) int { return cmp.Compare(a.Uint(), b.Uint()) })
	case reflect.Float32, reflect.Float64:
		slices.SortFunc(keys, func(a, b reflect.Value) int { return cmp.Compare(a.Float(), b.Float()) })
	}
	return keys
}

// cycle records the cycle closed by an edge from the end of the current path
// back to the node whose step is at pos.
func (w *walker) cycle(pos int) {
	if len(w.res.Cycles) >= w.cfg.maxCycles {
		w.res.Dropped++
		return
	}
	segment := w.path[pos:]
	// Identity of the cycle: its objects, in order from where it starts.
	var idb strings.Builder
	for _, s := range segment {
		if s.kind == stepNode {
			fmt.Fprintf(&idb, "%x/%d/%d;", s.id.p, s.id.t, s.id.n)
		}
	}
	id := idb.String()
	if w.dedup[id] {
		return
	}
	w.dedup[id] = true

	c := Cycle{}
	names := w.nodeNames(segment)
	c.Path = w.render(pos, len(w.path), names, true)
	if pos > 1 {
		c.Root = strings.Join(w.render(0, pos, nil, false), " -> ")
	}
	// Sessions on the cycle; the owner is the nearest session at or above
	// its start.
	allStopped := true
	for _, s := range segment {
		if s.sess != nil {
			c.Sessions = append(c.Sessions, s.sess.rec.id)
			allStopped = allStopped && s.sess.Stopped()
		}
	}
	var owner *Session
	for i := pos; i >= 0; i-- {
		if s := w.path[i].sess; s != nil {
			owner = s
			break
		}
	}
	if owner != nil {
		c.Owner, c.OwnerLabel, c.Ancestors = owner.rec.id, owner.rec.label, owner.ancestors()
		c.Stopped = allStopped && owner.Stopped()
	} else {
		c.Stopped = len(c.Sessions) > 0 && allStopped
	}
	w.res.Cycles = append(w.res.Cycles, c)
	if w.keys != nil {
		*w.keys = append(*w.keys, id)
	}
}

// nodeNames names the anchor nodes of a cycle's steps, adding a letter when
// two different objects on it would read the same: (*pkg.node A).
func (w *walker) nodeNames(segment []step) map[nodeKey]string {
	base := map[nodeKey]string{}
	var order []nodeKey
	count := map[string]int{}
	for _, s := range segment {
		if s.kind != stepNode {
			continue
		}
		if _, ok := base[s.id]; ok {
			continue
		}
		n := w.nodeName(s)
		base[s.id] = n
		order = append(order, s.id)
		count[n]++
	}
	letter := map[string]int{}
	out := make(map[nodeKey]string, len(base))
	for _, k := range order {
		n := base[k]
		if count[n] > 1 {
			l := letter[n]
			letter[n]++
			n = n[:len(n)-1] + " " + letterName(l) + ")"
		}
		out[k] = n
	}
	return out
}

func letterName(i int) string {
	s := string(rune('A' + i%26))
	if i >= 26 {
		s += strconv.Itoa(i / 26)
	}
	return s
}

// nodeName is how a node reads in a path: (*Session "alice"), (*pkg.T),
// (map[string]any).
func (w *walker) nodeName(s step) string {
	if s.sess != nil {
		return sessionName(s.sess)
	}
	return "(" + typeName(w.byID[s.id.t].t) + ")"
}

func sessionName(s *Session) string {
	return "(*Session " + strconv.Quote(s.rec.label) + ")"
}

// typeName is t's name with interface{} written as any.
func typeName(t reflect.Type) string {
	return strings.ReplaceAll(t.String(), "interface {}", "any")
}

// render turns steps [from, to) of the current path into path elements:
// each anchor (pointer or session) starts an element, and maps and slices
// reached on the way read as accessors of the element they are in. When
// closing, the first node's name ends the list, closing the cycle. names,
// when not nil, overrides node names (for letters).
func (w *walker) render(from, to int, names map[nodeKey]string, closing bool) []string {
	var out []string
	var cur strings.Builder
	flush := func() {
		if cur.Len() > 0 {
			out = append(out, cur.String())
			cur.Reset()
		}
	}
	name := func(i int) string {
		s := w.path[i]
		if i > 0 && w.path[i-1].kind == stepRoot && w.rootName != "" && s.sess == nil {
			return w.rootName
		}
		if n, ok := names[s.id]; ok {
			return n
		}
		return w.nodeName(s)
	}
	first := -1
	for i := from; i < to; i++ {
		s := w.path[i]
		switch s.kind {
		case stepRoot:
			if w.rootName != "" && !(i+1 < len(w.path) && w.path[i+1].kind == stepNode) {
				cur.WriteString(w.rootName)
			}
		case stepNode:
			if first < 0 {
				first = i
			}
			if s.anchor || cur.Len() == 0 {
				flush()
				cur.WriteString(name(i))
			}
		case stepField:
			cur.WriteString("." + w.byID[s.id.t].t.Field(s.i).Name)
		case stepIndex:
			cur.WriteString("[" + strconv.Itoa(s.i) + "]")
		case stepKey:
			cur.WriteString("[" + formatKey(s.keyValue()) + "]")
		case stepMapKey:
			cur.WriteString("{key " + formatKey(s.keyValue()) + "}")
		case stepHeap:
			cur.WriteString(".Heap")
		}
	}
	flush()
	if closing && first >= 0 {
		out = append(out, name(first))
	}
	return out
}

// formatKey writes a map key for a path: quoted strings, numbers, and the
// type for anything else.
func formatKey(k reflect.Value) string {
	for k.Kind() == reflect.Interface && !k.IsNil() {
		k = k.Elem()
	}
	switch k.Kind() {
	case reflect.String:
		s := k.String()
		if len(s) > 40 {
			s = s[:40] + "..."
		}
		return strconv.Quote(s)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return strconv.FormatInt(k.Int(), 10)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return strconv.FormatUint(k.Uint(), 10)
	case reflect.Bool:
		return strconv.FormatBool(k.Bool())
	case reflect.Float32, reflect.Float64:
		return strconv.FormatFloat(k.Float(), 'g', -1, 64)
	case reflect.Pointer:
		if k.Type() == sessionPtrType && !k.IsNil() {
			return sessionName((*Session)(k.UnsafePointer()))
		}
	case reflect.Invalid:
		return "nil"
	}
	return "(" + typeName(k.Type()) + ")"
}
