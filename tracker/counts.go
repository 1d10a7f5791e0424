package tracker

import (
	"sync"
	"sync/atomic"
)

// Counts is how many records of one kind a registry has tracked and released
// since it was made. Tracked minus Released is not the live count: records
// the garbage collector closed, and leftovers of stopped sessions, were
// tracked and never released.
type Counts struct {
	Tracked  uint64
	Released uint64
}

// builtinKinds are the kinds counted without a map lookup, in slot order.
var builtinKinds = [...]Kind{KindFile, KindSocket, KindListener, KindTimer, KindGoroutine, KindWheel, KindSession}

// kindSlot returns k's slot in shardCounts, or -1 for a user kind.
func kindSlot(k Kind) int {
	switch k {
	case KindFile:
		return 0
	case KindSocket:
		return 1
	case KindListener:
		return 2
	case KindTimer:
		return 3
	case KindGoroutine:
		return 4
	case KindWheel:
		return 5
	case KindSession:
		return 6
	}
	return -1
}

// What a counter counts: its index in the counter arrays.
type event int

const (
	tracked event = iota
	released
)

// shardCounts are the counters of one root shard. Records the root owns are
// counted in plain integers under the lock of their root bucket, which Track
// and Release hold anyway; records of sessions, whose buckets are their own,
// in atomics. Each goroutine mostly counts in its own shard (see shardHint),
// so the atomic adds rarely contend for a cache line.
type shardCounts struct {
	root     [2][len(builtinKinds)]uint64 // guarded by the root bucket's lock
	sessions [2][len(builtinKinds)]atomic.Uint64
	_        [32]byte
}

// kindCounts counts tracks and releases by kind: built-in kinds per shard,
// user kinds in a map, which only programs that define kinds pay for.
type kindCounts struct {
	shards []shardCounts
	user   sync.Map // Kind -> *[2]atomic.Uint64, indexed by event
}

func newKindCounts(shards int) kindCounts {
	return kindCounts{shards: make([]shardCounts, shards)}
}

// addRoot counts e of a record of kind k owned by the root, whose root
// bucket is home. The caller holds that bucket's lock.
func (c *kindCounts) addRoot(k Kind, home uint16, e event) {
	if i := kindSlot(k); i >= 0 {
		c.shards[int(home)&(len(c.shards)-1)].root[e][i]++
	} else {
		c.addUser(k, e)
	}
}

// add counts e of a record of kind k owned by a session, whose root shard
// is home.
func (c *kindCounts) add(k Kind, home uint16, e event) {
	if i := kindSlot(k); i >= 0 {
		c.shards[int(home)&(len(c.shards)-1)].sessions[e][i].Add(1)
	} else {
		c.addUser(k, e)
	}
}

func (c *kindCounts) addUser(k Kind, e event) {
	v, ok := c.user.Load(k)
	if !ok {
		v, _ = c.user.LoadOrStore(k, new([2]atomic.Uint64))
	}
	v.(*[2]atomic.Uint64)[e].Add(1)
}

// sum adds up e of every built-in kind over the shards, locking each root
// bucket to read its plain counters.
func (r *Registry) sum(e event) (n [len(builtinKinds)]uint64) {
	for i := range r.counts.shards {
		s := &r.counts.shards[i]
		b := &r.root.buckets[i]
		b.mu.Lock()
		for k := range builtinKinds {
			n[k] += s.root[e][k] + s.sessions[e][k].Load()
		}
		b.mu.Unlock()
	}
	return n
}

// Counts returns, by kind, how many records the registry has tracked and
// released since it was made: counters for exporters such as
// tracker/prommetrics, whose rates say how fast resources come and go. Kinds
// never tracked are left out. A session's release is its Stop.
func (r *Registry) Counts() map[Kind]Counts {
	// Releases first: a record is tracked before it is released, so a count
	// taken meanwhile never shows more releases than tracks.
	rel := r.sum(released)
	trk := r.sum(tracked)
	out := make(map[Kind]Counts)
	for i, k := range builtinKinds {
		if trk[i] > 0 {
			out[k] = Counts{Tracked: trk[i], Released: rel[i]}
		}
	}
	r.counts.user.Range(func(k, v any) bool {
		n := v.(*[2]atomic.Uint64)
		rel := n[released].Load()
		out[k.(Kind)] = Counts{Tracked: n[tracked].Load(), Released: rel}
		return true
	})
	return out
}
