package heapdump

// succFunc returns the successors of node v. The slice may be shared; the
// caller does not modify it.
type succFunc func(v int32) []int32

// dominators computes the immediate dominator of every node of a graph of n
// nodes reachable from root, by Lengauer and Tarjan's algorithm with path
// compression (the "simple" version, O(m log n)), with an explicit stack so
// a million-deep list does not overflow the goroutine's stack. idom[root] is
// root; idom of an unreachable node is -1. order lists the reachable nodes
// in depth-first preorder, so every node comes after its immediate
// dominator.
//
// scratch, if it has room for n entries, is used for working storage (the
// caller may reuse it afterwards): arrays are reused across phases so the
// peak stays near ten words per node.
func dominators(n int, root int32, succ succFunc, scratch []int32) (idom []int32, order []int32) {
	dfn := make([]int32, n) // node -> preorder number + 1; 0 = unvisited
	vertex := make([]int32, 0, n)
	parent := scratch[:0] // by preorder number
	if cap(parent) < n {
		parent = make([]int32, 0, n)
	}
	semi := make([]int32, 0, n)  // during the search: each node's cursor into its successors
	label := make([]int32, 0, n) // during the search: the stack

	// Depth-first search with an explicit stack of preorder numbers.
	stack := label
	visit := func(v, p int32) {
		dfn[v] = int32(len(vertex)) + 1
		stack = append(stack, int32(len(vertex)))
		vertex = append(vertex, v)
		parent = append(parent, p)
		semi = append(semi, 0)
	}
	visit(root, 0)
	for len(stack) > 0 {
		i := stack[len(stack)-1]
		s := succ(vertex[i])
		if int(semi[i]) == len(s) {
			stack = stack[:len(stack)-1]
			continue
		}
		w := s[semi[i]]
		semi[i]++
		if dfn[w] == 0 {
			visit(w, i)
		}
	}
	m := len(vertex)

	// Predecessors in preorder numbers, as one flat array: count into
	// predEnd[k+1], turn counts into starts, place each edge by advancing
	// its start, which leaves predEnd[k] at the end of k's run; shifting
	// right by one restores the starts.
	predEnd := make([]uint32, m+1)
	for _, v := range vertex {
		for _, w := range succ(v) {
			if k := dfn[w]; k != 0 {
				predEnd[k]++
			}
		}
	}
	for i := 1; i <= m; i++ {
		predEnd[i] += predEnd[i-1]
	}
	preds := make([]int32, predEnd[m])
	for i, v := range vertex {
		for _, w := range succ(v) {
			if k := dfn[w]; k != 0 {
				preds[predEnd[k-1]] = int32(i)
				predEnd[k-1]++
			}
		}
	}
	copy(predEnd[1:], predEnd[:m])
	predEnd[0] = 0

	semi = semi[:m]
	label = label[:m]
	ancestor := make([]int32, m)
	dom := make([]int32, m)
	head := make([]int32, m) // bucket lists: head[semi] -> next
	next := dfn[:m]          // dfn is not needed again until it becomes idom
	for i := range m {
		semi[i], label[i], ancestor[i], head[i] = int32(i), int32(i), -1, -1
	}
	var path []int32
	eval := func(v int32) int32 {
		if ancestor[v] < 0 {
			return v
		}
		// Compress the ancestor chain of v, from the top down.
		path = path[:0]
		for x := v; ancestor[x] >= 0 && ancestor[ancestor[x]] >= 0; x = ancestor[x] {
			path = append(path, x)
		}
		for k := len(path) - 1; k >= 0; k-- {
			y := path[k]
			a := ancestor[y]
			if semi[label[a]] < semi[label[y]] {
				label[y] = label[a]
			}
			ancestor[y] = ancestor[a]
		}
		return label[v]
	}
	for w := int32(m - 1); w >= 1; w-- {
		for _, v := range preds[predEnd[w]:predEnd[w+1]] {
			if u := eval(v); semi[u] < semi[w] {
				semi[w] = semi[u]
			}
		}
		s := semi[w]
		next[w] = head[s]
		head[s] = w
		p := parent[w]
		ancestor[w] = p
		for v := head[p]; v >= 0; v = next[v] {
			u := eval(v)
			if semi[u] < semi[v] {
				dom[v] = u
			} else {
				dom[v] = p
			}
		}
		head[p] = -1
	}
	for w := 1; w < m; w++ {
		if dom[w] != semi[w] {
			dom[w] = dom[dom[w]]
		}
	}
	// Back to node numbers, in dfn's storage (next is done with it).
	idom = dfn[:n]
	for i := range idom {
		idom[i] = -1
	}
	for i, v := range vertex {
		idom[v] = vertex[dom[i]]
	}
	idom[root] = root
	return idom, vertex
}
