package tracker

import (
	"container/list"
	"context"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"unsafe"
)

type node struct {
	name     string
	peer     *node
	children []*node
	parent   *node
	attrs    map[string]any
	onDone   func()
}

func paths(cs []Cycle) []string {
	var out []string
	for _, c := range cs {
		out = append(out, strings.Join(c.Path, " -> "))
	}
	return out
}

// FAQ "HEAPs holding cross-referenced nested data": two things in a heap
// refer to each other.
func TestFindCyclesHeapReferringToItself(t *testing.T) {
	a, b := &node{name: "a"}, &node{name: "b"}
	a.peer, b.peer = b, a
	heap := map[string]any{"a": a, "b": b, "count": 2}

	res := FindCycles(heap, CycleRootName("heap"))
	want := []string{"(*tracker.node A).peer -> (*tracker.node B).peer -> (*tracker.node A)"}
	if got := paths(res.Cycles); !slices.Equal(got, want) {
		t.Fatalf("cycles = %q, want %q", got, want)
	}
	c := res.Cycles[0]
	if c.Root != `heap["a"]` || c.Stopped || len(c.Sessions) != 0 || res.Truncated() {
		t.Fatalf("cycle = %+v, result = %+v", c, res)
	}
	if s := c.String(); s != `CYCLE: (*tracker.node A).peer -> (*tracker.node B).peer -> (*tracker.node A); reached through heap["a"]` {
		t.Fatalf("String() = %s", s)
	}

	// The heap holding itself, and a node holding itself.
	heap["self"] = heap
	self := &node{name: "loop"}
	self.peer = self
	res = FindCycles(map[string]any{"h": heap, "n": self})
	want = []string{
		`(map[string]any)["self"] -> (map[string]any)`,
		"(*tracker.node).peer -> (*tracker.node)",
	}
	got := paths(res.Cycles)
	if len(got) != 3 || got[1] != want[0] || got[2] != want[1] {
		t.Fatalf("cycles = %q, want the a-b cycle then %q", got, want)
	}
	if res.Cycles[1].Root != `(map[string]any)["h"]` {
		t.Fatalf("root = %q", res.Cycles[1].Root)
	}
}

func TestFindCyclesControl(t *testing.T) {
	// A tree with shared leaves (a DAG) has no cycle.
	leaf := &node{name: "leaf"}
	root := &node{name: "root", children: []*node{{name: "x", peer: leaf}, {name: "y", peer: leaf}, leaf}}
	heap := map[string]any{"root": root, "again": root, "list": []*node{leaf, leaf}}
	res := FindCycles(heap)
	if len(res.Cycles) != 0 || res.Truncated() {
		t.Fatalf("cycles in a DAG: %q, %+v", paths(res.Cycles), res)
	}
	if res.Nodes != 7 { // heap map, root, its children slice, x, y, leaf, the list
		t.Fatalf("visited %d nodes, want 7", res.Nodes)
	}
	for _, v := range []any{nil, 42, "s", (*node)(nil), map[string]int{"a": 1}, []byte("x"), struct{}{}} {
		if res := FindCycles(v); len(res.Cycles) != 0 || res.Err != nil {
			t.Fatalf("FindCycles(%#v) = %+v", v, res)
		}
	}
}

func TestFindCyclesFollowsEverything(t *testing.T) {
	type inner struct {
		arr  [2]*node
		back any
	}
	type outer struct {
		in   inner
		keys map[*node]bool
	}
	n := &node{name: "n"}
	o := &outer{keys: map[*node]bool{}}
	o.in.arr[1] = n
	n.attrs = map[string]any{"owner": o} // through an unexported map of interfaces
	res := FindCycles(o)
	if got := paths(res.Cycles); len(got) != 1 || got[0] != `(*tracker.outer).in.arr[1] -> (*tracker.node).attrs["owner"] -> (*tracker.outer)` {
		t.Fatalf("cycles = %q", got)
	}

	// A map key refers back.
	k := &node{name: "k"}
	m := map[*node]int{k: 1}
	k.attrs = map[string]any{"index": m}
	if got := paths(FindCycles(m).Cycles); len(got) != 1 || got[0] != `(map[*tracker.node]int){key (*tracker.node)} -> (*tracker.node).attrs["index"] -> (map[*tracker.node]int)` {
		t.Fatalf("cycles = %q", got)
	}

	// A slice whose element refers back to the slice's holder.
	p := &node{name: "p"}
	p.children = []*node{{name: "c"}}
	p.children[0].parent = p
	if got := paths(FindCycles(p).Cycles); len(got) != 1 || got[0] != "(*tracker.node A).children[0] -> (*tracker.node B).parent -> (*tracker.node A)" {
		t.Fatalf("cycles = %q", got)
	}
}

// Closures are opaque: what a func captured is not seen, and says so.
func TestFindCyclesClosuresAreOpaque(t *testing.T) {
	n := &node{name: "n"}
	n.onDone = func() { _ = n.name }
	res := FindCycles(n)
	if len(res.Cycles) != 0 || res.Opaque != 1 {
		t.Fatalf("cycles %q, opaque %d; want none found and one opaque func", paths(res.Cycles), res.Opaque)
	}
	ch := make(chan *node, 1)
	ch <- n
	if res := FindCycles(map[string]any{"ch": ch, "p": unsafe.Pointer(n)}); res.Opaque != 2 {
		t.Fatalf("opaque = %d, want the channel and the unsafe pointer", res.Opaque)
	}
}

func TestFindCyclesStdAndTrackerInternals(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	child, cancelChild := context.WithCancel(ctx)
	defer cancelChild()
	l := list.New()
	l.PushBack(1)
	var mu sync.Mutex
	r := New()
	s := r.StartSession("s", nil)
	h := s.Track(KindFile, "x")
	heap := map[string]any{"ctx": child, "list": l, "mu": &mu, "handle": h, "registry": r, "timer": r.NewTimer(s, 1<<40)}
	res := FindCycles(heap)
	if len(res.Cycles) != 0 || res.Err != nil {
		t.Fatalf("cycles in library internals reported: %q, %v", paths(res.Cycles), res.Err)
	}
	if res.Opaque == 0 {
		t.Fatal("opaque values not counted")
	}
	// On request the walk enters the standard library, and finds the
	// cycles its internals hold; it must not crash on them.
	res = FindCycles(map[string]any{"ctx": child, "list": l}, CycleWalkStd(true))
	if len(res.Cycles) == 0 || res.Err != nil {
		t.Fatalf("CycleWalkStd: %q, %v", paths(res.Cycles), res.Err)
	}
	heap["timer"].(*Timer).Stop()
	h.Release()
}

func TestFindCyclesBounds(t *testing.T) {
	// A ring of 3000 nodes: longer than the default depth.
	ring := make([]*node, 3000)
	for i := range ring {
		ring[i] = &node{}
	}
	for i := range ring {
		ring[i].peer = ring[(i+1)%len(ring)]
	}
	res := FindCycles(ring[0])
	if len(res.Cycles) != 0 || !res.DepthLimited || !res.Truncated() {
		t.Fatalf("default depth: %d cycles, %+v", len(res.Cycles), res)
	}
	res = FindCycles(ring[0], CycleMaxDepth(5000))
	if len(res.Cycles) != 1 || len(res.Cycles[0].Path) != 3001 || res.Truncated() {
		t.Fatalf("deep: %d cycles, truncated %v", len(res.Cycles), res.Truncated())
	}
	if res := FindCycles(ring[0], CycleMaxNodes(10)); !res.NodeLimited || res.Nodes != 10 {
		t.Fatalf("node bound: %+v", res)
	}

	// A tree whose children point to their parent: one cycle per child.
	root := &node{}
	for range 20 {
		c := &node{parent: root}
		root.children = append(root.children, c)
	}
	res = FindCycles(root, CycleMaxCycles(5))
	if len(res.Cycles) != 5 || res.Dropped != 15 || !res.Truncated() {
		t.Fatalf("cycle bound: %d listed, %d dropped", len(res.Cycles), res.Dropped)
	}
}

// A panic while walking is reported in Err, with what was found before,
// never passed on to the caller. Forced here by corrupting the walker's
// state: the node claims a place on the path it does not have.
func TestFindCyclesRecovers(t *testing.T) {
	n := &node{name: "n"}
	w := newWalker(nil)
	w.seen[nodeKey{p: uintptr(unsafe.Pointer(n)), t: w.info(reflect.TypeFor[*node]()).id}] = 0
	w.state = append(w.state, 99)
	w.walkRoot(reflect.ValueOf(n), "", nil)
	if w.res.Err == nil || !strings.Contains(w.res.Err.Error(), "panic") || !w.res.Truncated() {
		t.Fatalf("result = %+v", w.res)
	}
}

// FAQ "Sessions referring to one another": two sessions hold each other in
// their heaps. Found on demand while they run; kept as a stopped cycle when
// both have stopped.
func TestSessionsHoldingEachOther(t *testing.T) {
	r := New(WithCycleCheck(true))
	alice := r.StartSession("alice", nil)
	bob := r.StartSession("bob", nil)
	alice.SetHeap(map[string]any{"peer": bob, "jobs": []int{1, 2}})
	bob.SetHeap(map[string]any{"peer": alice})

	res := r.CheckCycles()
	if got := paths(res.Cycles); len(got) != 1 || got[0] != `(*Session "alice").Heap["peer"] -> (*Session "bob").Heap["peer"] -> (*Session "alice")` {
		t.Fatalf("on demand: %q", got)
	}
	if c := res.Cycles[0]; c.Stopped || !slices.Equal(c.Sessions, []uint64{alice.ID(), bob.ID()}) || c.Owner != alice.ID() {
		t.Fatalf("running cycle = %+v", c)
	}

	alice.Stop()
	for _, c := range r.Snapshot().Cycles {
		if c.Stopped {
			t.Fatalf("stopped cycle while bob runs: %v", c)
		}
	}
	bob.Stop()
	snap := r.Snapshot()
	if len(snap.Cycles) != 1 {
		t.Fatalf("Snapshot.Cycles = %q, want the one cycle", paths(snap.Cycles))
	}
	c := snap.Cycles[0]
	if !c.Stopped || c.OwnerLabel != "bob" || strings.Join(c.Path, " -> ") != `(*Session "bob").Heap["peer"] -> (*Session "alice").Heap["peer"] -> (*Session "bob")` {
		t.Fatalf("stopped cycle = %+v", c)
	}
	if !strings.Contains(c.String(), "every session on it has stopped") {
		t.Fatalf("String() = %s", c)
	}
}

func TestSessionsHoldingEachOtherControl(t *testing.T) {
	r := New(WithCycleCheck(true))
	alice := r.StartSession("alice", nil)
	bob := r.StartSession("bob", nil)
	alice.SetHeap(map[string]any{"peer": bob}) // one way only
	bob.SetHeap(map[string]any{"jobs": map[string]int{"x": 1}})
	if res := r.CheckCycles(); len(res.Cycles) != 0 {
		t.Fatalf("cycles = %q", paths(res.Cycles))
	}
	alice.Stop()
	bob.Stop()
	if cs := r.Snapshot().Cycles; len(cs) != 0 {
		t.Fatalf("cycles = %q", paths(cs))
	}
}

// The heap cycle of a session is found when it stops.
func TestCycleCheckAtStop(t *testing.T) {
	r := New(WithCycleCheck(true))
	s := r.StartSession("worker", nil)
	a, b := &node{name: "a"}, &node{name: "b"}
	a.peer, b.peer = b, a
	s.SetHeap(map[string]any{"a": a, "b": b})
	s.Stop()
	cs := r.Snapshot().Cycles
	if len(cs) != 1 {
		t.Fatalf("cycles = %q", paths(cs))
	}
	c := cs[0]
	if !c.Stopped || c.Owner != s.ID() || c.OwnerLabel != "worker" || c.Root != `(*Session "worker").Heap["a"]` ||
		strings.Join(c.Path, " -> ") != "(*tracker.node A).peer -> (*tracker.node B).peer -> (*tracker.node A)" {
		t.Fatalf("cycle = %+v", c)
	}

	// Off by default: no walk at stop.
	r = New()
	s = r.StartSession("worker", nil)
	s.SetHeap(map[string]any{"a": a})
	s.Stop()
	if cs := r.Snapshot().Cycles; len(cs) != 0 {
		t.Fatalf("cycle check ran while off: %q", paths(cs))
	}
}
