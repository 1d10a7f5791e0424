package heapdump

import (
	"cmp"
	"fmt"
	"path"
	"slices"
	"strings"
)

// Graph is a dump analysed: roots grouped and named, the dominator tree,
// retained sizes and shortest paths from the roots. Its methods may cache
// labels: use a Graph from one goroutine at a time.
//
// Nodes are numbered objects first (node i is object i of the dump), then
// one node per root group, then a single virtual root above all of them.
// Objects reachable from no root are garbage the collector had not yet
// freed (unreachable cycles among them): they have no dominator, no path
// and retain nothing.
type Graph struct {
	Dump *Dump
	// Roots are the root groups: a global variable (every pointer slot of
	// it, when the binary's symbols are known), a frame, a finalizer.
	Roots []RootGroup

	n        int32 // objects
	rootAdj  [][]int32
	idom     []int32  // per node; -1 unreachable
	retained []uint64 // per node
	parent   []int32  // shortest-path tree; -1 unreachable
	bfs      []int32  // reachable nodes in breadth-first order

	domEnd, domKids []int32 // dominator tree children of objects, built when asked

	siteLabels map[int32]string  // ObjectLabel by site index, filled as asked
	sizeLabels map[uint32]string // ObjectLabel of unsampled objects by size
}

// RootGroup is one named root of the graph.
type RootGroup struct {
	Kind RootKind
	// Label names it: "main.sessions (global, map[string]*main.Session)",
	// "goroutine 7 main.worker (stack)", "finalizer of 0xc000012345".
	Label string
	// Var is the global variable or the function of the frame.
	Var string
	// Local is the frame's local variable or parameter that holds the
	// pointers, when the binary's DWARF says.
	Local     string
	Goroutine int64
	// Retained is the size of what only this root keeps alive.
	Retained uint64
}

// Analyze builds the graph of d: root groups (globals named by syms when
// it is not nil), dominators, retained sizes and shortest paths. With syms
// it also gives inlined frames of d's allocation stacks their own names
// (the dump names them after the function they were inlined into); that
// changes d.Sites, once.
func Analyze(d *Dump, syms *Symbols) *Graph {
	g := &Graph{Dump: d, n: int32(len(d.addr))}
	renameInlined(d, syms)
	g.groupRoots(syms)
	virtual := g.n + int32(len(g.Roots))
	nodes := int(virtual) + 1
	all := make([]int32, len(g.Roots))
	for i := range all {
		all[i] = g.n + int32(i)
	}
	succ := func(v int32) []int32 {
		if v < g.n {
			return d.edges[d.edgeEnd[v]:d.edgeEnd[v+1]]
		}
		if v == virtual {
			return all
		}
		return g.rootAdj[v-g.n]
	}
	// The shortest-path tree's parents share storage with the dominator
	// computation's scratch.
	g.parent = make([]int32, nodes)
	var order []int32
	g.idom, order = dominators(nodes, virtual, succ, g.parent)

	g.retained = make([]uint64, nodes)
	for i, s := range d.size {
		g.retained[i] = uint64(s)
	}
	for k := len(order) - 1; k >= 1; k-- {
		v := order[k]
		g.retained[g.idom[v]] += g.retained[v]
	}
	for i := range g.Roots {
		g.Roots[i].Retained = g.retained[g.n+int32(i)]
	}

	// Breadth-first from the virtual root: shortest paths, preferring
	// roots in the order groupRoots put them (globals first).
	for i := range g.parent {
		g.parent[i] = -1
	}
	g.parent[virtual] = virtual
	queue := order[:0] // order is no longer needed
	queue = append(queue, virtual)
	for h := 0; h < len(queue); h++ {
		v := queue[h]
		for _, w := range succ(v) {
			if g.parent[w] < 0 {
				g.parent[w] = v
				queue = append(queue, w)
			}
		}
	}
	g.bfs = queue
	return g
}

// renameInlined gives inlined frames of allocation stacks their own
// function's name from the binary's DWARF: the dump names them after the
// function they were inlined into (the frame below them has the same name).
// It runs once per dump.
func renameInlined(d *Dump, syms *Symbols) {
	if syms == nil || syms.dw == nil || d.inlinedDone {
		return
	}
	d.inlinedDone = true
	want := map[fileLine]bool{}
	for _, s := range d.Sites {
		for k := 0; k+1 < len(s.Stack); k++ {
			if s.Stack[k].Func == s.Stack[k+1].Func {
				want[fileLine{s.Stack[k].File, s.Stack[k].Line}] = true
			}
		}
	}
	names := syms.inlinedFuncs(want)
	for si := range d.Sites {
		st := d.Sites[si].Stack
		for k := 0; k+1 < len(st); k++ {
			if st[k].Func == st[k+1].Func {
				if name := names[fileLine{st[k].File, st[k].Line}]; name != "" {
					st[k].Func = name
				}
			}
		}
	}
}

// groupRoots merges the dump's roots into named groups and builds their
// successor lists, globals first so shortest paths start at a variable
// when one holds the object.
func (g *Graph) groupRoots(syms *Symbols) {
	d := g.Dump
	type key struct {
		kind  RootKind
		name  string
		addr  uint64
		g     int64
		local string
	}
	index := map[key]int{}
	slide := syms.slide(d)
	group := func(k key, rg RootGroup) int {
		i, ok := index[k]
		if !ok {
			i = len(g.Roots)
			index[k] = i
			g.Roots = append(g.Roots, rg)
			g.rootAdj = append(g.rootAdj, nil)
		}
		return i
	}
	locals := map[string]map[int64]string{} // by function and pc
	for pass := range 2 {
		for ri := range d.Roots {
			r := &d.Roots[ri]
			if (pass == 0) != (r.Kind == RootGlobal) {
				continue
			}
			k := key{kind: r.Kind, name: r.Name, addr: r.Addr, g: r.Goroutine}
			var label, v string
			switch r.Kind {
			case RootGlobal:
				if name, typ, _, ok := syms.Lookup(r.Addr - slide); ok {
					k = key{kind: r.Kind, name: name}
					v = name
					label = name + " (global)"
					if typ != "" {
						label = fmt.Sprintf("%s (global, %s)", name, typ)
					}
				} else {
					label = fmt.Sprintf("%s %#x (global)", r.Name, r.Addr)
				}
			case RootFrame:
				if syms != nil && len(r.slots) == int(r.end-r.first) {
					g.frameRoots(r, syms, locals, func(local string) int {
						k.local = local
						label := fmt.Sprintf("goroutine %d %s (stack)", r.Goroutine, r.Name)
						if local != "" {
							label = fmt.Sprintf("goroutine %d %s (stack, %s)", r.Goroutine, r.Name, local)
						}
						return group(k, RootGroup{Kind: r.Kind, Label: label, Var: r.Name, Local: local, Goroutine: r.Goroutine})
					})
					continue
				}
				v = r.Name
				label = fmt.Sprintf("goroutine %d %s (stack)", r.Goroutine, r.Name)
			case RootGoroutine:
				label = fmt.Sprintf("goroutine %d %s", r.Goroutine, r.Name)
			case RootFinalizer:
				// Name the finalized object: a finalizer keeps what its
				// object points to, and an object with a finalizer on a
				// cycle is never freed.
				what := fmt.Sprintf("%#x", r.Addr)
				if j := d.Find(r.Addr); j >= 0 {
					what = g.ObjectLabel(j)
				}
				label = fmt.Sprintf("%s of %s", r.Name, what)
			default:
				label = r.Name + " (runtime)"
			}
			i := group(k, RootGroup{Kind: r.Kind, Label: label, Var: v, Goroutine: r.Goroutine})
			adj := g.rootAdj[i]
			for _, j := range d.rootTo[r.first:r.end] {
				if j >= 0 {
					adj = append(adj, j)
				}
			}
			for _, j := range r.finalObj {
				adj = append(adj, d.Pointers(int(j))...)
			}
			g.rootAdj[i] = adj
		}
	}
}

// ReachableBytes returns the total size of the objects that some root
// reaches: the heap that is really in use.
func (g *Graph) ReachableBytes() uint64 { return g.retained[len(g.retained)-1] }

// frameRoots splits a frame's pointers by the local variable that holds
// each, as DWARF places them at the frame's pc, into the groups that group
// returns for a variable's name ("" for a slot DWARF does not name).
func (g *Graph) frameRoots(r *Root, syms *Symbols, cache map[string]map[int64]string, group func(local string) int) {
	// A frame's pc is a return address, just past the call: the call
	// itself is the instruction before, as the runtime's stack maps have it.
	pc := r.pc
	if pc > 0 {
		pc--
	}
	key := fmt.Sprintf("%s@%#x", r.Name, pc)
	vars, ok := cache[key]
	if !ok {
		vars = syms.frameVars(r.Name, pc)
		cache[key] = vars
	}
	d := g.Dump
	for e := r.first; e < r.end; e++ {
		j := d.rootTo[e]
		if j < 0 {
			continue
		}
		// The frame's canonical frame address is the top of its contents.
		local := vars[int64(r.slots[e-r.first])-int64(r.frameSize)]
		i := group(local)
		g.rootAdj[i] = append(g.rootAdj[i], j)
	}
}

// Reachable reports whether object i is reachable from a root.
func (g *Graph) Reachable(i int) bool { return g.parent[i] >= 0 }

// Retained returns the bytes that object i keeps alive: its own size and
// everything it dominates. Zero for an unreachable object.
func (g *Graph) Retained(i int) uint64 {
	if !g.Reachable(i) {
		return 0
	}
	return g.retained[i]
}

// Dominator returns the object that immediately dominates object i, or -1
// when that is a root (or none: i is unreachable).
func (g *Graph) Dominator(i int) int {
	if p := g.idom[i]; p >= 0 && p < g.n {
		return int(p)
	}
	return -1
}

// HeldBy returns the index in Roots of the root that immediately dominates
// object i (the root whose removal frees it), or -1 when no single root
// does: several roots share it, or none reaches it.
func (g *Graph) HeldBy(i int) int {
	if p := g.idom[i]; p >= g.n && p < g.n+int32(len(g.Roots)) {
		return int(p - g.n)
	}
	return -1
}

// Accumulation follows the dominator tree down from object i while one
// child keeps most (four fifths) of what its parent retains, and returns
// the object where the retained memory fans out: the array of a map that
// holds a thousand sessions, rather than the map's header. It returns i
// when no child keeps that much.
func (g *Graph) Accumulation(i int) int {
	if i < 0 || i >= int(g.n) || !g.Reachable(i) {
		return i
	}
	if g.domEnd == nil {
		g.buildDomChildren()
	}
	for range g.n {
		best, size := int32(-1), uint64(0)
		for _, c := range g.domKids[g.domEnd[i]:g.domEnd[i+1]] {
			if g.retained[c] > size {
				best, size = c, g.retained[c]
			}
		}
		if best < 0 || size*5 < g.retained[i]*4 {
			return i
		}
		i = int(best)
	}
	return i
}

// buildDomChildren lists each object's children in the dominator tree.
func (g *Graph) buildDomChildren() {
	end := make([]int32, g.n+1)
	for v := range g.n {
		if p := g.idom[v]; p >= 0 && p < g.n && g.parent[v] >= 0 {
			end[p+1]++
		}
	}
	for i := range g.n {
		end[i+1] += end[i]
	}
	kids := make([]int32, end[g.n])
	fill := slices.Clone(end[:g.n])
	for v := range g.n {
		if p := g.idom[v]; p >= 0 && p < g.n && g.parent[v] >= 0 {
			kids[fill[p]] = v
			fill[p]++
		}
	}
	g.domEnd, g.domKids = end, kids
}

// Step is one node of a path: a root or an object.
type Step struct {
	Root   *RootGroup // set for the first step
	Object int        // object index; -1 for the root
	Label  string
}

// Path is the shortest chain of references from a root to an object.
type Path struct {
	Steps []Step
	// Retains is what the path's last object keeps alive.
	Retains uint64
}

// String formats the path the way Devel::Cycle and LeakCanary print theirs:
//
//	main.sessions (global) → object (alloc at main.track server.go:41) → ... : retains 38 MiB
func (p Path) String() string {
	var b strings.Builder
	for i, s := range p.Steps {
		if i > 0 {
			b.WriteString(" → ")
		}
		b.WriteString(s.Label)
	}
	fmt.Fprintf(&b, " : retains %s", FormatBytes(p.Retains))
	return b.String()
}

// Shape is the path's labels without object addresses and goroutine
// numbers, so that a thousand objects held the same way have one shape.
func (p Path) Shape() string {
	var b strings.Builder
	for i, s := range p.Steps {
		if i > 0 {
			b.WriteString(" → ")
		}
		if s.Root != nil {
			b.WriteString(s.Root.shape())
		} else {
			b.WriteString(s.Label)
		}
	}
	return b.String()
}

func (r *RootGroup) shape() string {
	switch r.Kind {
	case RootFrame:
		if r.Local != "" {
			return r.Var + " (stack, " + r.Local + ")"
		}
		return r.Var + " (stack)"
	case RootGlobal:
		return r.Label
	}
	return r.Kind.String()
}

// PathTo returns the shortest path from a root to object i, and false when
// no root reaches it.
func (g *Graph) PathTo(i int) (Path, bool) {
	if i < 0 || i >= int(g.n) || !g.Reachable(i) {
		return Path{}, false
	}
	virtual := g.n + int32(len(g.Roots))
	var rev []int32
	for v := int32(i); v != virtual; v = g.parent[v] {
		rev = append(rev, v)
	}
	p := Path{Retains: g.retained[i]}
	for k := len(rev) - 1; k >= 0; k-- {
		v := rev[k]
		if v >= g.n {
			r := &g.Roots[v-g.n]
			p.Steps = append(p.Steps, Step{Root: r, Object: -1, Label: r.Label})
			continue
		}
		p.Steps = append(p.Steps, Step{Object: int(v), Label: g.ObjectLabel(int(v))})
	}
	return p, true
}

// ObjectLabel names object i by its allocation site, or by its size when
// the profiler did not sample it: "object (alloc at main.track server.go:41)",
// "map storage (alloc at ...)", "object of 48 B".
func (g *Graph) ObjectLabel(i int) string {
	if k := g.Dump.site[i]; k >= 0 {
		if l, ok := g.siteLabels[k]; ok {
			return l
		}
		s := &g.Dump.Sites[k]
		l := fmt.Sprintf("%s (alloc at %s)", s.What(), s.Name())
		if g.siteLabels == nil {
			g.siteLabels = map[int32]string{}
		}
		g.siteLabels[k] = l
		return l
	}
	size := g.Dump.size[i]
	if l, ok := g.sizeLabels[size]; ok {
		return l
	}
	l := fmt.Sprintf("object of %s", FormatBytes(uint64(size)))
	if g.sizeLabels == nil {
		g.sizeLabels = map[uint32]string{}
	}
	g.sizeLabels[size] = l
	return l
}

// hidden reports whether a frame is the runtime's, not the program's.
func hidden(fn string) bool {
	return strings.HasPrefix(fn, "runtime.") || strings.HasPrefix(fn, "internal/") ||
		strings.HasPrefix(fn, "runtime/") || strings.HasPrefix(fn, "reflect.")
}

// Caller returns the first frame of the stack that is the program's own
// code, or the first frame when all are the runtime's.
func (s *Site) Caller() Frame {
	for _, f := range s.Stack {
		if !hidden(f.Func) {
			return f
		}
	}
	if len(s.Stack) > 0 {
		return s.Stack[0]
	}
	return Frame{Func: "?"}
}

// Name formats the site as "main.(*Server).track server.go:41".
func (s *Site) Name() string {
	f := s.Caller()
	if f.File == "" {
		return f.Func
	}
	return fmt.Sprintf("%s %s:%d", f.Func, path.Base(f.File), f.Line)
}

// What says what the runtime allocated, from the runtime frames above the
// caller: "map storage", "slice", "string", "channel", "closure or object".
func (s *Site) What() string {
	what := "object"
	for _, f := range s.Stack {
		if !hidden(f.Func) {
			break
		}
		switch {
		case strings.HasPrefix(f.Func, "internal/runtime/maps."), strings.HasPrefix(f.Func, "runtime.makemap"),
			strings.HasPrefix(f.Func, "runtime.mapassign"):
			return "map storage" // maps allocate through makeslice too
		case what != "object":
		case strings.HasPrefix(f.Func, "runtime.makeslice"), strings.HasPrefix(f.Func, "runtime.growslice"):
			what = "slice"
		case strings.HasPrefix(f.Func, "runtime.concatstring"), strings.HasPrefix(f.Func, "runtime.rawstring"),
			strings.HasPrefix(f.Func, "runtime.slicebytetostring"):
			what = "string"
		case strings.HasPrefix(f.Func, "runtime.makechan"):
			what = "channel"
		case strings.HasPrefix(f.Func, "runtime.malg"), strings.HasPrefix(f.Func, "runtime.newproc"):
			what = "goroutine"
		}
	}
	return what
}

// Matches reports whether the site is spec: its caller (see Caller), by
// function name ("main.(*Server).track", or the part after the last dot
// or slash: "track", "(*Server).track") or by file:line ("server.go:41",
// with or without directories).
func (s *Site) Matches(spec string) bool {
	f := s.Caller()
	if file, line, ok := strings.Cut(spec, ":"); ok && isDigits(line) {
		return fmt.Sprint(f.Line) == line && (f.File == file || strings.HasSuffix(f.File, "/"+file))
	}
	return f.Func == spec || strings.HasSuffix(f.Func, "."+spec) || strings.HasSuffix(f.Func, "/"+spec)
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// SiteRetained is the memory held by the objects of one allocation site.
type SiteRetained struct {
	Site *Site // nil for objects the profiler did not sample
	// Name is Site.Name(), or "unsampled" for objects without a site.
	Name string
	// Objects and Bytes count the reachable objects of the site and their
	// own sizes; Retained adds what they dominate, counting nested objects
	// of the same site once.
	Objects  int
	Bytes    uint64
	Retained uint64
	// Top is the reachable object of the site that retains the most.
	Top int
}

// BySite aggregates reachable objects by allocation site, largest retained
// first.
func (g *Graph) BySite() []SiteRetained {
	d := g.Dump
	// An object counts toward its site's retained size unless a dominator
	// of it has the same site: tested by nesting of preorder intervals of
	// the dominator tree.
	tin, tout := g.domIntervals()
	// Sites are keyed by name: buckets differ by the whole stack, but
	// callers of one line are one site to a reader.
	names := make([]string, len(d.Sites))
	for k := range d.Sites {
		names[k] = d.Sites[k].Name()
	}
	bySite := map[string]*SiteRetained{}
	type iv struct {
		in, out int32
		obj     int32
	}
	members := map[string][]iv{}
	for i := range d.addr {
		if !g.Reachable(i) {
			continue
		}
		k := d.site[i]
		name := "unsampled"
		if k >= 0 {
			name = names[k]
		}
		sr := bySite[name]
		if sr == nil {
			sr = &SiteRetained{Top: i, Name: name}
			if k >= 0 {
				sr.Site = &d.Sites[k]
			}
			bySite[name] = sr
		}
		sr.Objects++
		sr.Bytes += uint64(d.size[i])
		if g.retained[i] > g.retained[sr.Top] {
			sr.Top = i
		}
		members[name] = append(members[name], iv{tin[i], tout[i], int32(i)})
	}
	out := make([]SiteRetained, 0, len(bySite))
	for name, sr := range bySite {
		ivs := members[name]
		slices.SortFunc(ivs, func(a, b iv) int { return cmp.Compare(a.in, b.in) })
		end := int32(-1)
		for _, x := range ivs {
			if x.in < end {
				continue // inside an earlier object of the same site
			}
			sr.Retained += g.retained[x.obj]
			end = x.out
		}
		out = append(out, *sr)
	}
	slices.SortFunc(out, func(a, b SiteRetained) int {
		if c := cmp.Compare(b.Retained, a.Retained); c != 0 {
			return c
		}
		return cmp.Compare(a.Name, b.Name)
	})
	return out
}

// domIntervals numbers the dominator tree in preorder: a node's subtree is
// the nodes numbered in [tin, tout).
func (g *Graph) domIntervals() (tin, tout []int32) {
	nodes := len(g.idom)
	virtual := int32(nodes - 1)
	count := make([]int32, nodes) // subtree sizes
	// A node's dominator is on every path to it, its shortest included,
	// so breadth-first order puts every node after its dominator.
	order := g.bfs
	for k := len(order) - 1; k >= 0; k-- {
		v := order[k]
		count[v]++
		if v != virtual {
			count[g.idom[v]] += count[v]
		}
	}
	tin = make([]int32, nodes)
	tout = count // reuse: becomes tout
	next := make([]int32, nodes)
	for _, v := range order {
		if v == virtual {
			tin[v] = 0
		} else {
			p := g.idom[v]
			tin[v] = next[p]
			next[p] += count[v]
		}
		next[v] = tin[v] + 1
		tout[v] = tin[v] + count[v]
	}
	return tin, tout
}

// PathGroup is the paths of one shape to the objects of a site.
type PathGroup struct {
	Shape string
	// Count is how many objects are held this way; Retained what they
	// retain together (objects nested in others of the group counted once
	// each, as each is its own path).
	Count    int
	Retained uint64
	// Example is the path to one of them, the one that retains most.
	Example Path
}

// PathsTo returns the paths from roots to the reachable objects whose
// allocation site matches spec (see Site.Matches), grouped by shape, most
// objects first.
func (g *Graph) PathsTo(spec string) []PathGroup {
	return g.pathsWhere(func(s *Site) bool { return s.Matches(spec) })
}

func (g *Graph) pathsWhere(match func(*Site) bool) []PathGroup {
	d := g.Dump
	matched := make([]bool, len(d.Sites))
	for k := range d.Sites {
		matched[k] = match(&d.Sites[k])
	}
	groups := map[string]*PathGroup{}
	for i := range d.addr {
		if k := d.site[i]; k < 0 || !matched[k] || !g.Reachable(i) {
			continue
		}
		p, _ := g.PathTo(i)
		shape := p.Shape()
		pg := groups[shape]
		if pg == nil {
			pg = &PathGroup{Shape: shape, Example: p}
			groups[shape] = pg
		}
		pg.Count++
		pg.Retained += p.Retains
		if p.Retains > pg.Example.Retains {
			pg.Example = p
		}
	}
	out := make([]PathGroup, 0, len(groups))
	for _, pg := range groups {
		out = append(out, *pg)
	}
	slices.SortFunc(out, func(a, b PathGroup) int {
		if c := cmp.Compare(b.Count, a.Count); c != 0 {
			return c
		}
		if c := cmp.Compare(b.Retained, a.Retained); c != 0 {
			return c
		}
		return cmp.Compare(a.Shape, b.Shape)
	})
	return out
}

// SiteGrowth is a site that holds more in a later dump than in an earlier
// one of the same process.
type SiteGrowth struct {
	Name                   string
	BaseObjects, Objects   int
	BaseRetained, Retained uint64
	// Paths hold the site's objects in the later dump.
	Paths []PathGroup
}

// Diff compares two analysed dumps of one process by allocation site and
// returns the sites whose reachable objects grew in number, most grown
// first, with the paths that hold them in target.
func Diff(base, target *Graph) []SiteGrowth {
	before := map[string]SiteRetained{}
	for _, s := range base.BySite() {
		before[s.Name] = s
	}
	var out []SiteGrowth
	for _, s := range target.BySite() {
		if s.Site == nil {
			continue
		}
		b := before[s.Name]
		if s.Objects <= b.Objects {
			continue
		}
		out = append(out, SiteGrowth{
			Name: s.Name, BaseObjects: b.Objects, Objects: s.Objects,
			BaseRetained: b.Retained, Retained: s.Retained,
		})
	}
	slices.SortFunc(out, func(a, b SiteGrowth) int {
		if c := cmp.Compare(b.Objects-b.BaseObjects, a.Objects-a.BaseObjects); c != 0 {
			return c
		}
		return cmp.Compare(a.Name, b.Name)
	})
	for i := range out {
		out[i].Paths = target.pathsToName(out[i].Name)
	}
	return out
}

// pathsToName is PathsTo for the sites named exactly name (Site.Name).
func (g *Graph) pathsToName(name string) []PathGroup {
	return g.pathsWhere(func(s *Site) bool { return s.Name() == name })
}

// FormatBytes formats n as "512 B", "3.0 KiB", "38.2 MiB".
func FormatBytes(n uint64) string {
	switch {
	case n < 1<<10:
		return fmt.Sprintf("%d B", n)
	case n < 1<<20:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	case n < 1<<30:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	}
	return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
}
