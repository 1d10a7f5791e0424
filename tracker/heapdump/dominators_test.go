package heapdump

import (
	"math/rand/v2"
	"testing"
)

// reachAvoiding returns which nodes are reachable from root without passing
// through node skip (skip = -1 avoids nothing).
func reachAvoiding(adj [][]int32, root, skip int32) []bool {
	seen := make([]bool, len(adj))
	if root == skip {
		return seen
	}
	seen[root] = true
	stack := []int32{root}
	for len(stack) > 0 {
		v := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		for _, w := range adj[v] {
			if w != skip && !seen[w] {
				seen[w] = true
				stack = append(stack, w)
			}
		}
	}
	return seen
}

// bruteIdom computes immediate dominators from the definition: d dominates v
// when v is unreachable once d is removed; the immediate dominator is the
// strict dominator that every other strict dominator dominates, i.e. the
// one with the most strict dominators of its own.
func bruteIdom(adj [][]int32, root int32) []int32 {
	n := len(adj)
	reach := reachAvoiding(adj, root, -1)
	doms := make([][]bool, n) // doms[d][v]: d dominates v
	for d := range n {
		without := reachAvoiding(adj, root, int32(d))
		doms[d] = make([]bool, n)
		for v := range n {
			doms[d][v] = reach[v] && !without[v]
		}
	}
	count := make([]int, n) // dominators of each node
	for d := range n {
		for v := range n {
			if doms[d][v] {
				count[v]++
			}
		}
	}
	idom := make([]int32, n)
	for v := range n {
		idom[v] = -1
		if !reach[v] {
			continue
		}
		if int32(v) == root {
			idom[v] = root
			continue
		}
		best := -1
		for d := range n {
			if d != v && doms[d][v] && (best < 0 || count[d] > count[best]) {
				best = d
			}
		}
		idom[v] = int32(best)
	}
	return idom
}

func TestDominatorsMatchBruteForce(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for trial := range 500 {
		n := 1 + rng.IntN(14)
		adj := make([][]int32, n)
		density := rng.Float64() * 3
		for v := range n {
			k := int(density * rng.Float64() * 2)
			for range k {
				adj[v] = append(adj[v], int32(rng.IntN(n)))
			}
		}
		root := int32(rng.IntN(n))
		got, order := dominators(n, root, func(v int32) []int32 { return adj[v] }, nil)
		want := bruteIdom(adj, root)
		for v := range n {
			if got[v] != want[v] {
				t.Fatalf("trial %d: graph %v root %d: idom[%d] = %d, want %d (all: got %v want %v)",
					trial, adj, root, v, got[v], want[v], got, want)
			}
		}
		pos := make([]int, n)
		for i, v := range order {
			pos[v] = i
		}
		for _, v := range order {
			if v != root && pos[got[v]] >= pos[v] {
				t.Fatalf("trial %d: order puts %d before its dominator %d", trial, v, got[v])
			}
		}
	}
}

func TestDominatorsDeepChain(t *testing.T) {
	// A million-long list must not overflow anything.
	const n = 1 << 20
	next := make([][]int32, n)
	for v := range n - 1 {
		next[v] = []int32{int32(v + 1)}
	}
	idom, _ := dominators(n, 0, func(v int32) []int32 { return next[v] }, nil)
	for v := 1; v < n; v++ {
		if idom[v] != int32(v-1) {
			t.Fatalf("idom[%d] = %d, want %d", v, idom[v], v-1)
		}
	}
}
