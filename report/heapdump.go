package report

import (
	"bytes"
	"cmp"
	"fmt"
	"slices"
	"strings"

	"github.com/leakcheck/leakcheck/tracker/heapdump"
)

// IsHeapDump reports whether an input begins like a dump written by
// runtime/debug.WriteHeapDump ("go1.7 heap dump\n"); a prefix of 16 bytes
// is enough.
func IsHeapDump(prefix []byte) bool {
	return bytes.HasPrefix(prefix, []byte(heapdump.Header))
}

// HeapDumpOptions configure AnalyzeHeapDump. Every field is optional.
type HeapDumpOptions struct {
	// Name names the dump in titles and notes, e.g. its file name.
	Name string
	// Binary is the dumped program's executable (ELF): its symbol table
	// names the global variables that hold memory, and its DWARF their
	// types. Without it globals are named by segment and address.
	Binary string
	// Base is an earlier dump of the same process; with it the analysis
	// reports the allocation sites that grew and the paths that hold the
	// growth. BaseName names it.
	Base     *heapdump.Dump
	BaseName string
	// PathTo is an allocation site, a function ("main.(*Server).track",
	// or its last part "track") or file:line ("server.go:41"): the paths
	// from roots to the objects allocated there are reported, grouped by
	// shape.
	PathTo string
	// Top is how many rows a table lists and how many holders become
	// findings; 0 means 10.
	Top int
}

// dumpHolderShare is the share of the reachable heap a root must retain to be
// a finding of its own: below it, a holder is listed in the table only.
const dumpHolderShare = 0.10

// AnalyzeHeapDump answers, of a heap dump read by heapdump.Read, who
// holds its memory: the roots and allocation sites that retain the most
// (dominator tree), each with the shortest path from a root, as a table
// each; the roots that retain at least a tenth of the heap as findings of
// kind retained (severity info: a heap dump alone cannot tell a leak from a
// cache); with opts.PathTo, the paths to that site's objects grouped by
// shape, as a table and as retained findings (warning); with opts.Base, the
// sites that grew, as growth findings (warning) with the path that holds
// the growth. notes say how objects were named (every allocation sampled,
// or a sample) and what was skipped. A binary that cannot be read is an
// error.
func AnalyzeHeapDump(d *heapdump.Dump, opts HeapDumpOptions) (Result, error) {
	var (
		res Result
		err error
	)
	top := opts.Top
	if top <= 0 {
		top = 10
	}
	name := opts.Name
	if name == "" {
		name = "heap dump"
	}
	var syms *heapdump.Symbols
	if opts.Binary != "" {
		if syms, err = heapdump.ReadSymbols(opts.Binary); err != nil {
			return res, err
		}
	}
	g := heapdump.Analyze(d, syms)
	res.Notes = append(res.Notes, dumpNotes(name, g, syms != nil)...)

	reachable := g.ReachableBytes()
	sites := g.BySite()
	res.Tables = append(res.Tables, dumpRootTable(name, g, top), dumpSiteTable(name, g, sites, top))
	res.Findings = append(res.Findings, dumpHolderFindings(g, reachable, top)...)

	if opts.PathTo != "" {
		groups := g.PathsTo(opts.PathTo)
		res.Tables = append(res.Tables, dumpPathTable(name, opts.PathTo, groups, top))
		if len(groups) == 0 {
			res.Notes = append(res.Notes, fmt.Sprintf("%s: no reachable object allocated at %q has a sampled site", name, opts.PathTo))
		}
		for _, pg := range groups[:min(top, len(groups))] {
			res.Findings = append(res.Findings, dumpPathFinding(g, pg))
		}
	}

	if opts.Base != nil {
		baseName := opts.BaseName
		if baseName == "" {
			baseName = "base heap dump"
		}
		bg := heapdump.Analyze(opts.Base, syms)
		grew := heapdump.Diff(bg, g)
		res.Tables = append(res.Tables, dumpGrowthTable(baseName, name, grew, top))
		res.Findings = append(res.Findings, dumpGrowthFindings(g, grew)...)
	}
	return res, nil
}

// dumpNotes says what the dump holds and how its objects are named.
func dumpNotes(name string, g *heapdump.Graph, symbols bool) []string {
	d := g.Dump
	unreachable := 0
	for i := range d.NumObjects() {
		if !g.Reachable(i) {
			unreachable++
		}
	}
	notes := []string{fmt.Sprintf("%s: %d objects written by %s (%s/%s), %s of heap in use",
		name, d.NumObjects(), d.Params.GoVersion, d.Params.Arch, fmt.Sprint(d.Params.PtrSize*8)+"-bit",
		formatQuantity(float64(d.MemStats.HeapAlloc), "bytes"))}
	if d.AllSampled() {
		notes = append(notes, fmt.Sprintf("%s: every allocation was sampled (runtime.MemProfileRate = 1): %d of %d objects are named by allocation site; the rest were allocated before the rate was set",
			name, d.Sampled, d.NumObjects()))
	} else {
		notes = append(notes, fmt.Sprintf("%s: allocation sites are a sample: %d of %d objects have one; set runtime.MemProfileRate = 1 first thing in main to name every object",
			name, d.Sampled, d.NumObjects()))
	}
	if !symbols {
		notes = append(notes, name+": no --binary: globals are named by segment and address")
	}
	if unreachable > 0 {
		notes = append(notes, fmt.Sprintf("%s: %d objects reachable from no root (garbage not yet collected, unreachable cycles included) retain nothing and are not reported", name, unreachable))
	}
	return notes
}

func dumpRootTable(name string, g *heapdump.Graph, top int) Table {
	t := Table{
		Title:   "top holders by retained size in " + name + " (roots of the dominator tree)",
		Columns: []string{"retained", "root", "kind"},
		Rows:    [][]string{},
	}
	for _, k := range dumpTopRoots(g, top) {
		rg := g.Roots[k]
		t.Rows = append(t.Rows, []string{formatQuantity(float64(rg.Retained), "bytes"), rg.Label, rg.Kind.String()})
	}
	return t
}

// dumpTopRoots returns the indices of the root groups that retain the most,
// largest first.
func dumpTopRoots(g *heapdump.Graph, top int) []int {
	var idx []int
	for k, rg := range g.Roots {
		if rg.Retained > 0 {
			idx = append(idx, k)
		}
	}
	slices.SortStableFunc(idx, func(a, b int) int {
		if c := cmp.Compare(g.Roots[b].Retained, g.Roots[a].Retained); c != 0 {
			return c
		}
		return cmp.Compare(g.Roots[a].Label, g.Roots[b].Label)
	})
	return idx[:min(top, len(idx))]
}

func dumpSiteTable(name string, g *heapdump.Graph, sites []heapdump.SiteRetained, top int) Table {
	t := Table{
		Title:   "top allocation sites by retained size in " + name,
		Columns: []string{"retained", "objects", "own size", "site", "held by"},
		Rows:    [][]string{},
	}
	for _, s := range sites[:min(top, len(sites))] {
		held := ""
		if p, ok := g.PathTo(s.Top); ok {
			held = p.String()
		}
		t.Rows = append(t.Rows, []string{
			formatQuantity(float64(s.Retained), "bytes"), fmt.Sprint(s.Objects),
			formatQuantity(float64(s.Bytes), "bytes"), s.Name, held,
		})
	}
	return t
}

func dumpPathTable(name, site string, groups []heapdump.PathGroup, top int) Table {
	t := Table{
		Title:   fmt.Sprintf("paths to objects allocated at %s in %s, grouped by shape", site, name),
		Columns: []string{"objects", "retained", "path"},
		Rows:    [][]string{},
	}
	for _, pg := range groups[:min(top, len(groups))] {
		t.Rows = append(t.Rows, []string{fmt.Sprint(pg.Count), formatQuantity(float64(pg.Retained), "bytes"), pg.Shape})
	}
	return t
}

func dumpGrowthTable(baseName, name string, grew []heapdump.SiteGrowth, top int) Table {
	t := Table{
		Title:   fmt.Sprintf("allocation sites grown from %s to %s", baseName, name),
		Columns: []string{"objects", "before", "retained", "before", "site", "held by"},
		Rows:    [][]string{},
	}
	for _, sg := range grew[:min(top, len(grew))] {
		held := ""
		if len(sg.Paths) > 0 {
			held = fmt.Sprintf("%d × %s", sg.Paths[0].Count, sg.Paths[0].Shape)
		}
		t.Rows = append(t.Rows, []string{
			fmt.Sprint(sg.Objects), fmt.Sprint(sg.BaseObjects),
			formatQuantity(float64(sg.Retained), "bytes"), formatQuantity(float64(sg.BaseRetained), "bytes"),
			sg.Name, held,
		})
	}
	return t
}

// dumpPathSteps is a path as Evidence.Path holds it: one step per element, the
// root first.
func dumpPathSteps(p heapdump.Path) []string {
	steps := make([]string, len(p.Steps))
	for i, s := range p.Steps {
		steps[i] = s.Label
	}
	return steps
}

// dumpSiteStack converts an allocation site's stack to report frames.
func dumpSiteStack(s *heapdump.Site) []Frame {
	if s == nil {
		return nil
	}
	out := make([]Frame, len(s.Stack))
	for i, f := range s.Stack {
		out[i] = Frame{Func: f.Func, File: f.File, Line: f.Line}
	}
	return out
}

// dumpHolderFindings turns the roots that retain a large share of the heap into
// retained findings, with the path to where the memory each keeps fans out
// (see heapdump.Graph.Accumulation).
func dumpHolderFindings(g *heapdump.Graph, reachable uint64, top int) []Finding {
	var out []Finding
	for _, k := range dumpTopRoots(g, top) {
		rg := g.Roots[k]
		if reachable == 0 || float64(rg.Retained) < dumpHolderShare*float64(reachable) || dumpRuntimeRoot(rg) {
			continue
		}
		f := Finding{
			Kind:     KindRetained,
			Severity: SeverityInfo,
			Subject:  fmt.Sprintf("%s retains %s (%.0f%% of the reachable heap)", rg.Label, formatQuantity(float64(rg.Retained), "bytes"), 100*float64(rg.Retained)/float64(reachable)),
			Owner:    rg.Label,
			Count:    1,
			Evidence: Evidence{Values: map[string]float64{
				"retained_bytes": float64(rg.Retained),
				"heap_bytes":     float64(reachable),
			}},
			Suggestion: "if what it holds should be gone, find where the path's first link is kept (a map entry, a slice element, a captured variable) and drop it when the work ends",
		}
		if obj := dumpLargestChild(g, k); obj >= 0 {
			// Down to where the memory fans out, as the place to look.
			obj = g.Accumulation(obj)
			if p, ok := g.PathTo(obj); ok {
				f.Evidence.Path = dumpPathSteps(p)
			}
			f.Evidence.Stack = dumpSiteStack(g.Dump.Site(obj))
		}
		f.Signature = Signature(KindRetained, "heapdump root "+Pattern(dumpRootKey(rg)), nil)
		out = append(out, f)
	}
	return out
}

// dumpRootKey identifies a root across dumps: its variable or frame function,
// not its address or goroutine number.
func dumpRootKey(rg heapdump.RootGroup) string {
	if rg.Var != "" {
		return rg.Kind.String() + " " + rg.Var
	}
	return rg.Label
}

// dumpRuntimeRoot reports whether a root is the runtime's own (its globals
// and its system goroutines' frames), which no program can drop.
func dumpRuntimeRoot(rg heapdump.RootGroup) bool {
	return strings.HasPrefix(rg.Var, "runtime.") || strings.HasPrefix(rg.Var, "internal/") ||
		rg.Kind == heapdump.RootOther
}

// dumpLargestChild returns the object that retains the most among those root
// k holds alone, or -1.
func dumpLargestChild(g *heapdump.Graph, k int) int {
	best, bestSize := -1, uint64(0)
	for i := range g.Dump.NumObjects() {
		if g.HeldBy(i) == k && g.Retained(i) > bestSize {
			best, bestSize = i, g.Retained(i)
		}
	}
	return best
}

// dumpPathFinding is one shape of path to the objects of the --path-to site.
func dumpPathFinding(g *heapdump.Graph, pg heapdump.PathGroup) Finding {
	last := pg.Example.Steps[len(pg.Example.Steps)-1]
	root := pg.Example.Steps[0].Label
	return Finding{
		Kind:     KindRetained,
		Severity: SeverityWarning,
		Subject:  fmt.Sprintf("%d × %s held by %s", pg.Count, last.Label, root),
		Owner:    root,
		Count:    1,
		Evidence: Evidence{
			Values: map[string]float64{"objects": float64(pg.Count), "retained_bytes": float64(pg.Retained)},
			Path:   dumpPathSteps(pg.Example),
			Stack:  dumpSiteStack(g.Dump.Site(last.Object)),
		},
		Suggestion: "each of these objects is reachable the same way: break the path where it should end (delete the map entry, nil the field, stop the callback)",
		Signature:  Signature(KindRetained, "heapdump path "+Pattern(pg.Shape), nil),
	}
}

// dumpGrowthFindings turns the sites that grew by enough to matter (at
// least 10 objects and a tenth more) into growth findings, one per holder:
// the sites that one root holds grew for one cause, so the finding names
// the site that retains the most and counts the others.
func dumpGrowthFindings(g *heapdump.Graph, grew []heapdump.SiteGrowth) []Finding {
	var out []Finding
	byHolder := map[string]int{} // holder -> index in out
	others := map[string]int{}
	for _, sg := range grew {
		more := sg.Objects - sg.BaseObjects
		if more < 10 || more*10 < sg.BaseObjects {
			continue
		}
		holder := ""
		if len(sg.Paths) > 0 {
			holder = sg.Paths[0].Example.Steps[0].Label
		}
		if i, ok := byHolder[holder]; ok {
			others[holder]++
			if float64(sg.Retained) <= out[i].Evidence.Values["retained_bytes"] {
				continue
			}
			out[i] = dumpGrowthFinding(g, sg, holder)
			continue
		}
		byHolder[holder] = len(out)
		out = append(out, dumpGrowthFinding(g, sg, holder))
	}
	for holder, n := range others {
		f := &out[byHolder[holder]]
		f.Subject += fmt.Sprintf(" (and %d more sites held the same way)", n)
	}
	return out
}

// dumpGrowthFinding is one site that grew, held by holder.
func dumpGrowthFinding(g *heapdump.Graph, sg heapdump.SiteGrowth, holder string) Finding {
	f := Finding{
		Kind:     KindGrowth,
		Severity: SeverityWarning,
		Subject:  fmt.Sprintf("objects allocated at %s grew from %d to %d", sg.Name, sg.BaseObjects, sg.Objects),
		Owner:    holder,
		Count:    1,
		Evidence: Evidence{Values: map[string]float64{
			"objects_before":        float64(sg.BaseObjects),
			"objects":               float64(sg.Objects),
			"retained_before_bytes": float64(sg.BaseRetained),
			"retained_bytes":        float64(sg.Retained),
		}},
		Suggestion: "the path shows what holds the new objects: a collection that only grows needs a delete or a bound",
		Signature:  Signature(KindGrowth, "heapdump holder "+Pattern(holder), nil),
	}
	if len(sg.Paths) > 0 {
		p := sg.Paths[0].Example
		f.Evidence.Path = dumpPathSteps(p)
		f.Evidence.Stack = dumpSiteStack(g.Dump.Site(p.Steps[len(p.Steps)-1].Object))
	}
	return f
}
