package heapdump

import (
	"fmt"
	"os"
	"runtime/debug"
)

// RetainPaths dumps the heap of this process to a temporary file, reads the
// dump, removes the file and returns, for each address, the shortest path
// of references from a garbage-collection root to the object there, root
// first, its last step saying what that object retains; nil for an address
// that is 0, in no object, or in an object no root reaches. Globals are
// named from the running executable's symbols when it has them.
//
// It has the signature of tracker.WithRetainPaths, so that the tracker's
// retain check can say who holds what it finds:
//
//	reg := tracker.New(tracker.WithRetainCheck(true), tracker.WithRetainPaths(heapdump.RetainPaths))
//
// Writing the dump stops the world for as long as it takes, and the file
// holds every byte of the heap until it is removed: use it in tests and at
// shutdown, not on a hot path.
func RetainPaths(addrs []uintptr) ([][]string, error) {
	f, err := os.CreateTemp("", "leakcheck-*.heapdump")
	if err != nil {
		return nil, fmt.Errorf("heap dump for retain paths: %w", err)
	}
	defer os.Remove(f.Name())
	defer f.Close()
	debug.WriteHeapDump(f.Fd())
	if _, err := f.Seek(0, 0); err != nil {
		return nil, fmt.Errorf("heap dump for retain paths: %w", err)
	}
	d, err := Read(f, Limits{}) // f, not a bufio.Reader: Read sizes its arrays by Stat
	if err != nil {
		return nil, fmt.Errorf("heap dump for retain paths: %w", err)
	}
	var syms *Symbols
	if exe, err := os.Executable(); err == nil {
		syms, _ = ReadSymbols(exe) // no symbols: globals are named by address
	}
	g := Analyze(d, syms)
	out := make([][]string, len(addrs))
	for i, a := range addrs {
		if a == 0 {
			continue
		}
		p, ok := g.PathTo(d.Find(uint64(a)))
		if !ok {
			continue
		}
		steps := make([]string, len(p.Steps))
		for k, s := range p.Steps {
			steps[k] = s.Label
		}
		steps[len(steps)-1] += " : retains " + FormatBytes(p.Retains)
		out[i] = steps
	}
	return out, nil
}
