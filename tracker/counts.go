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

// shardCounts are the counters of one root shard. Each goroutine mostly
// counts in its own shard (see shardHint), so the atomic adds rarely contend
// for a cache line; the padding keeps shards out of each other's lines.
type shardCounts struct {
	tracked  [len(builtinKinds)]atomic.Uint64
	released [len(builtinKinds)]atomic.Uint64
	_        [16]byte
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

// add counts one record of kind k, whose root shard is home, as tracked
// (released false) or released.
func (c *kindCounts) add(k Kind, home uint16, released bool) {
	if i := kindSlot(k); i >= 0 {
		s := &c.shards[int(home)&(len(c.shards)-1)]
		if released {
			s.released[i].Add(1)
		} else {
			s.tracked[i].Add(1)
		}
		return
	}
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
	out := make(map[Kind]Counts)
	for i, k := range builtinKinds {
		// Releases first: a record is tracked before it is released, so
		// a count taken meanwhile never shows more releases than tracks.
		var c Counts
		for s := range r.counts.shards {
			c.Released += r.counts.shards[s].released[i].Load()
		}
		for s := range r.counts.shards {
			c.Tracked += r.counts.shards[s].tracked[i].Load()
		}
		if c.Tracked > 0 {
			out[k] = c
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
