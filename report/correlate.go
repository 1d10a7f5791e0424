package report

import (
	"cmp"
	"regexp"
	"slices"
	"strconv"
)

// Correlate makes the findings of one leak one finding. A leak shows
// through several views: a handler that leaks a timer whose callback holds
// a payload gives a leftover timer and a retained payload; sessions that
// keep each other's heap give a cycle and two retained heaps; a session that
// forgets its connections gives sockets in CLOSE_WAIT seen from outside, a
// growing map of them in its heap and growing goroutines serving them.
// Findings are one leak when they share a key, directly or through other
// findings:
//   - the cause site: the function (closures included) of the first frame
//     of the program's own code in their stacks;
//   - an owner: a session that owns what leaked, or one of its ancestors
//     below the top (see ownerJoins), so that what the sessions started at
//     one place leak, and the gauges of the session that started them, are
//     one finding.
//
// The finding that says most of the cause leads (a cycle, then a leftover
// with the stack that acquired it, unreleased, retained, a leftover seen
// from outside, goroutine, growth, misuse, limit; then the most severe,
// then the most numerous): it takes the highest severity among them,
// an owner if it had none, and the others as related evidence ("kind:
// subject", then their own related series). Findings that share no key
// stand as they are.
func Correlate(fs []Finding) []Finding {
	fs = Group(fs)
	// Union-find over the findings, by key.
	parent := make([]int, len(fs))
	for i := range parent {
		parent[i] = i
	}
	var find func(int) int
	find = func(i int) int {
		if parent[i] != i {
			parent[i] = find(parent[i])
		}
		return parent[i]
	}
	first := map[string]int{} // key: the first finding that has it
	for i, f := range fs {
		for _, k := range joinKeys(f) {
			j, ok := first[k]
			if !ok {
				first[k] = i
				continue
			}
			if a, b := find(i), find(j); a != b {
				parent[max(a, b)] = min(a, b)
			}
		}
	}
	members := map[int][]int{}
	var roots []int
	for i := range fs {
		r := find(i)
		if _, ok := members[r]; !ok {
			roots = append(roots, r)
		}
		members[r] = append(members[r], i)
	}
	out := make([]Finding, 0, len(roots))
	for _, r := range roots {
		out = append(out, merge(fs, members[r]))
	}
	Sort(out)
	return out
}

// merge makes the findings fs[idx] one: the one that leads (see
// Correlate) with the others as evidence.
func merge(fs []Finding, idx []int) Finding {
	slices.SortStableFunc(idx, func(a, b int) int { return leads(fs[a], fs[b]) })
	l := fs[idx[0]]
	if len(idx) == 1 {
		return l
	}
	related := slices.Clone(l.Evidence.Related)
	for _, i := range idx[1:] {
		f := fs[i]
		l.Severity = max(l.Severity, f.Severity)
		if l.Owner == "" {
			l.Owner = f.Owner
		}
		related = append(related, string(f.Kind)+": "+f.Subject)
	}
	for _, i := range idx[1:] {
		related = append(related, fs[i].Evidence.Related...)
	}
	l.Evidence.Related = compactKeepOrder(related)
	return l
}

// causeRank orders the kinds by how much of a leak's cause a finding of
// that kind says: a cycle names the reference to break; a leftover names
// the resource and where it was acquired; a growth only that something
// piles up. A leftover without a stack (descriptors seen from outside)
// says what, not where: it comes after the findings that say where, and
// before goroutines and growth, which say less of what. Misuse of the
// registry by the same owner (a goroutine released after its session
// stopped) is a symptom, not the leak: it comes last but for limits.
var causeRank = []Kind{KindCycle, KindLeftover, KindUnreleased, KindRetained, leftoverSeen, KindGoroutine, KindGrowth, KindMisuse, KindLimit}

// leftoverSeen stands in causeRank for a leftover without a stack.
const leftoverSeen Kind = "leftover seen"

// leads orders findings of one leak, the one that should lead first.
func leads(a, b Finding) int {
	rank := func(f Finding) int {
		k := f.Kind
		if k == KindLeftover && len(f.Evidence.Stack) == 0 {
			k = leftoverSeen
		}
		if i := slices.Index(causeRank, k); i >= 0 {
			return i
		}
		return len(causeRank)
	}
	return cmp.Or(
		cmp.Compare(rank(a), rank(b)),
		cmp.Compare(b.Severity, a.Severity),
		cmp.Compare(b.count(), a.count()),
		compareFindings(a, b),
	)
}

// compactKeepOrder drops repeated strings, keeping the first of each.
func compactKeepOrder(ss []string) []string {
	seen := map[string]bool{}
	out := ss[:0]
	for _, s := range ss {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

// joinKeys returns the keys by which Correlate joins f to other findings.
func joinKeys(f Finding) []string {
	keys := f.joins
	if site := causeSite(f.Evidence.Stack); site != "" {
		keys = append(slices.Clip(keys), "site "+site)
	}
	return keys
}

// ownerJoins returns the join keys of what a session owns: the session
// and its ancestors (nearest first, the registry's root left out, as the
// tracker gives them), except the topmost. A top session (a kernel, a
// pool, a server started by main) holds many unrelated parts, so joining
// by it would make one finding of every leak under it; below it, a session
// and the sessions it started are one part. Owner 0 (none) gives no key.
func ownerJoins(owner uint64, ancestors []uint64) []string {
	if owner == 0 {
		return nil
	}
	chain := append([]uint64{owner}, ancestors...)
	keys := make([]string, 0, len(chain)-1)
	for _, id := range chain[:len(chain)-1] {
		keys = append(keys, "session "+strconv.FormatUint(id, 10))
	}
	return keys
}

// closureSuffix matches the names the compiler gives closures and go
// statement wrappers: ".func1", ".gowrap2", ".func1.2".
var closureSuffix = regexp.MustCompile(`(\.(func|gowrap)\d+(\.\d+)*)+$`)

// causeSite returns the function of the first frame of the program's own
// code in stack, without closure suffixes; "" when there is none.
func causeSite(stack []Frame) string {
	for _, f := range stack {
		if f.Func != "" && !hiddenFrame(f) && !standardLibrary(f.Func) {
			return closureSuffix.ReplaceAllString(f.Func, "")
		}
	}
	return ""
}
