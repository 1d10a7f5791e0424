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

// shardCounts are the counters of one root shard. Records the root owns are
// counted in plain integers under the lock of their root bucket, which Track
// and Release hold anyway; records of sessions, whose buckets are their own,
// in atomics. Each goroutine mostly counts in its own shard (see shardHint),
// so the atomic adds rarely contend for a cache line.
type shardCounts struct {
	rootTracked  [len(builtinKinds)]uint64 // guarded by the root bucket's lock
	rootReleased [len(builtinKinds)]uint64
	tracked      [len(builtinKinds)]atomic.Uint64
	released     [len(builtinKinds)]atomic.Uint64
	_            [32]byte
}

// kindCounts counts tracks and releases by kind: built-in kinds per shard,
// user kinds in a map, which only programs that define kinds pay for.
type kindCounts struct {
	shards []shardCounts
	user   sync.Map // Kind -> *[2]atomic.Uint64: tracked, released
}

func newKindCounts(shards int) kindCounts {
	return kindCounts{shards: make([]shardCounts, shards)}
}

// addRoot counts one record of kind k owned by the root, whose root bucket
// is home, as tracked (released false) or released. The caller holds that
// bucket's lock.
func (c *kindCounts) addRoot(k Kind, home uint16, released bool) {
	i := kindSlot(k)
	if i < 0 {
		c.addUser(k, released)
		return
	}
	s := &c.shards[int(home)&(len(c.shards)-1)]
	if released {
		s.rootReleased[i]++
	} else {
		s.rootTracked[i]++
	}
}

// add counts one record of kind k owned by a session, whose root shard is
// home, as tracked (released false) or released.
func (c *kindCounts) add(k Kind, home uint16, released bool) {
	i := kindSlot(k)
	if i < 0 {
		c.addUser(k, released)
		return
	}
	s := &c.shards[int(home)&(len(c.shards)-1)]
	if released {
		s.released[i].Add(1)
	} else {
		s.tracked[i].Add(1)
	}
}

func (c *kindCounts) addUser(k Kind, released bool) {
	v, ok := c.user.Load(k)
	if !ok {
		v, _ = c.user.LoadOrStore(k, new([2]atomic.Uint64))
	}
	n := v.(*[2]atomic.Uint64)
	if released {
		n[1].Add(1)
	} else {
		n[0].Add(1)
	}
}

// Counts returns, by kind, how many records the registry has tracked and
// released since it was made: counters for exporters such as
// tracker/prommetrics, whose rates say how fast resources come and go. Kinds
// never tracked are left out. A session's release is its Stop.
func (r *Registry) Counts() map[Kind]Counts {
	// Releases first: a record is tracked before it is released, so a count
	// taken meanwhile never shows more releases than tracks.
	var released, tracked [len(builtinKinds)]uint64
	for i := range r.counts.shards {
		s := &r.counts.shards[i]
		b := &r.root.buckets[i]
		b.mu.Lock()
		for k := range builtinKinds {
			released[k] += s.rootReleased[k] + s.released[k].Load()
		}
		b.mu.Unlock()
	}
	for i := range r.counts.shards {
		s := &r.counts.shards[i]
		b := &r.root.buckets[i]
		b.mu.Lock()
		for k := range builtinKinds {
			tracked[k] += s.rootTracked[k] + s.tracked[k].Load()
		}
		b.mu.Unlock()
	}
	out := make(map[Kind]Counts)
	for i, k := range builtinKinds {
		if tracked[i] > 0 {
			out[k] = Counts{Tracked: tracked[i], Released: released[i]}
		}
	}
	r.counts.user.Range(func(k, v any) bool {
		n := v.(*[2]atomic.Uint64)
		released := n[1].Load()
		out[k.(Kind)] = Counts{Tracked: n[0].Load(), Released: released}
		return true
	})
	return out
}
