package leaktest

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/leakcheck/leakcheck/tracker"
	"github.com/leakcheck/leakcheck/tracker/stack"
)

// maxFrames bounds the frames a report prints per stack.
const maxFrames = 10

// report renders the poll's findings as one message: a headline naming the
// test and counting the leaks, then a section per kind, each leak with what
// it is, where it came from, and who created it. It is "" when there is
// nothing to report.
func (p *poll) report() string {
	if len(p.findings) == 0 && len(p.errs) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString("leaktest: ")
	if p.r.main {
		b.WriteString("the tests")
	} else {
		b.WriteString(p.r.name)
	}
	var counts []string
	for _, ck := range checkers {
		n := 0
		for _, f := range p.findings {
			if f.kind() == ck.kind {
				n += f.count()
			}
		}
		if n > 0 {
			counts = append(counts, plural(n, strings.TrimSuffix(ck.name, "s")))
		}
	}
	if len(counts) > 0 {
		b.WriteString(" leaked " + strings.Join(counts, ", ") + ":\n")
	} else {
		b.WriteString(":\n")
	}
	for _, ck := range checkers {
		first := true
		for _, f := range p.findings {
			if f.kind() != ck.kind {
				continue
			}
			if first {
				fmt.Fprintf(&b, "\n%s:\n", ck.name)
				first = false
			}
			f.write(&b, p)
		}
		if !first {
			fmt.Fprintf(&b, "  To fix: %s.\n", ck.hint)
		}
	}
	if len(p.errs) > 0 {
		b.WriteString("\n")
	}
	for _, err := range p.errs {
		fmt.Fprintf(&b, "could not check: %v\n", err)
	}
	return strings.TrimSuffix(b.String(), "\n")
}

// goroutineLeak is n goroutines of one test with the same stack.
type goroutineLeak struct {
	g    *gsample
	n    int
	main bool
	// unlabeled is true for goroutines that do not carry the test's
	// label, but appeared while it ran and nothing else did.
	unlabeled bool
	ignored   bool   // by creator
	why       string // why a subtest left them here
}

func (l *goroutineLeak) kind() Check { return Goroutines }
func (l *goroutineLeak) count() int  { return l.n }

func (l *goroutineLeak) write(b *strings.Builder, p *poll) {
	ts, exact := p.traceback().lookup(l.g)
	fmt.Fprintf(b, "  %s", plural(l.n, "goroutine"))
	if s := tally(ts, exact, func(t *stack.Goroutine) string { return t.State }); s != "" {
		fmt.Fprintf(b, " [%s]", s)
	}
	created := tally(ts, exact, func(t *stack.Goroutine) string {
		if t.CreatedBy.Func == "" {
			return ""
		}
		return t.CreatedBy.Func + " at " + place(t.CreatedBy)
	})
	if created != "" {
		fmt.Fprintf(b, ", created by %s", created)
	}
	if l.main {
		if l := l.g.label(); l != "" {
			fmt.Fprintf(b, ", labeled %q", l)
		}
		if test := testOf(ts); test != "" {
			fmt.Fprintf(b, ", started in %s", test)
		}
	}
	b.WriteString(":\n")
	writeFrames(b, l.g.shownFrames())
	switch {
	case l.why != "":
		fmt.Fprintf(b, "      not blamed on one test, as %s\n", l.why)
	case l.unlabeled && !l.main:
		b.WriteString("      not labeled with the test (pprof.Do or SetGoroutineLabels with a context that lacks\n" +
			"      the label drops it), but blamed on it as no other test ran\n")
	}
}

// testOf names the test whose function ran the go statements of ts, when
// they agree on one.
func testOf(ts []*stack.Goroutine) string {
	test := ""
	for _, t := range ts {
		fn := t.CreatedBy.Func
		fn = fn[strings.LastIndexByte(fn, '/')+1:]
		_, fn, _ = strings.Cut(fn, ".")
		fn, _, _ = strings.Cut(fn, ".")
		if !strings.HasPrefix(fn, "Test") || (test != "" && test != fn) {
			return ""
		}
		test = fn
	}
	return test
}

// fdLeak is one or more descriptors open to the same target, or to the same
// kind of socket, pipe or anonymous inode.
type fdLeak struct {
	target  string
	fds     []int
	targets []string
	why     string // why a subtest left them here
}

func (l *fdLeak) kind() Check { return Descriptors }
func (l *fdLeak) count() int  { return len(l.fds) }

func (l *fdLeak) write(b *strings.Builder, _ *poll) {
	if len(l.fds) == 1 {
		fmt.Fprintf(b, "  fd %d -> %s\n", l.fds[0], l.targets[0])
	} else {
		var list []string
		for i, fd := range l.fds {
			if i == maxFrames {
				list = append(list, "...")
				break
			}
			list = append(list, strconv.Itoa(fd))
		}
		fmt.Fprintf(b, "  %d descriptors -> %s: fd %s\n", len(l.fds), l.target, strings.Join(list, ", "))
	}
	if l.why != "" {
		fmt.Fprintf(b, "      not blamed on one test, as %s\n", l.why)
	}
}

// recordLeak is n tracked records of the same kind, label, owner and
// acquisition stack.
type recordLeak struct {
	rec     tracker.Record
	n       int
	creator string
	why     string
}

func (l *recordLeak) kind() Check { return Records }
func (l *recordLeak) count() int  { return l.n }

func (l *recordLeak) write(b *strings.Builder, _ *poll) {
	rec := l.rec
	fmt.Fprintf(b, "  %s: %s %q", plural(l.n, "record"), rec.Kind, rec.Label)
	owner := "root"
	if rec.Owner != 0 {
		owner = fmt.Sprintf("session %d %q", rec.Owner, rec.OwnerLabel)
	}
	if rec.OwnerStopped {
		owner += " (stopped)"
	}
	fmt.Fprintf(b, ", owner %s, created by %s, age %s", owner, l.creator, rec.Age.Round(time.Microsecond))
	if len(rec.Stack) == 0 {
		b.WriteString(" (no acquisition stack)\n")
	} else {
		b.WriteString(", acquired at:\n")
		writeFrames(b, stack.Trim(rec.Stack))
	}
	if l.why != "" {
		fmt.Fprintf(b, "      not blamed on one test, as %s\n", l.why)
	}
}

// writeFrames writes a stack down to the test function: the testing
// package's frames below it say nothing.
func writeFrames(b *strings.Builder, fs []stack.Frame) {
	if i := slices.IndexFunc(fs, func(f stack.Frame) bool { return f.Func == "testing.tRunner" }); i > 0 {
		fs = fs[:i]
	}
	for i, f := range fs {
		if i == maxFrames {
			fmt.Fprintf(b, "      ...%d more frames\n", len(fs)-i)
			break
		}
		fmt.Fprintf(b, "      %s\n          %s\n", f.Func, place(f))
	}
}

func place(f stack.Frame) string {
	if f.Line == 0 {
		return f.File
	}
	return f.File + ":" + strconv.Itoa(f.Line)
}

// tally lists the distinct values of key over ts. When ts are exactly the
// goroutines of a sample, it counts them when they differ: "chan receive" or
// "chan receive (3), select (1)"; otherwise it lists the values that the
// sample's goroutines are among: "A or B".
func tally(ts []*stack.Goroutine, exact bool, key func(*stack.Goroutine) string) string {
	counts := make(map[string]int)
	for _, t := range ts {
		if k := key(t); k != "" {
			counts[k]++
		}
	}
	keys := make([]string, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b string) int {
		return cmp.Or(counts[b]-counts[a], strings.Compare(a, b))
	})
	if len(keys) <= 1 {
		return strings.Join(keys, "")
	}
	if !exact {
		return strings.Join(keys, " or ")
	}
	for i, k := range keys {
		keys[i] = fmt.Sprintf("%s (%d)", k, counts[k])
	}
	return strings.Join(keys, ", ")
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return strconv.Itoa(n) + " " + noun + "s"
}
