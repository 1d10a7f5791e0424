package report

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"

	"github.com/leakcheck/leakcheck/tracker"
)

// Kind is what sort of leak a finding reports; docs/findings.md describes each.
type Kind string

// The kinds of finding, in the order reports list them when all else is equal.
const (
	// KindLeftover is a resource still owned when its owner stopped, or at exit.
	KindLeftover Kind = "leftover"
	// KindRetained is an object released or stopped but still reachable after
	// garbage collection: something keeps an extra reference to it.
	KindRetained Kind = "retained"
	// KindUnreleased is an object the garbage collector freed while it was still
	// registered: the program never released it.
	KindUnreleased Kind = "unreleased"
	// KindCycle is a reference cycle among sessions, heaps or tracked objects.
	KindCycle Kind = "cycle"
	// KindGrowth is a collection or measure that keeps growing, by a trend test.
	KindGrowth Kind = "growth"
	// KindGoroutine is goroutines left over, growing by stack, or blocked forever.
	KindGoroutine Kind = "goroutine"
	// KindMisuse is a double release, a release by a non-owner, or use after stop.
	KindMisuse Kind = "misuse"
	// KindLimit is a resource at or near its limit (descriptors against
	// RLIMIT_NOFILE, threads, memory against the cgroup's memory.max),
	// growing or not: the next leak, or the next burst, fails.
	KindLimit Kind = "limit"
)

// Kinds returns every kind of finding in report order.
func Kinds() []Kind {
	return []Kind{KindLeftover, KindRetained, KindUnreleased, KindCycle, KindGrowth, KindGoroutine, KindMisuse, KindLimit}
}

// rank orders kinds as Kinds lists them; unknown kinds come last.
func (k Kind) rank() int {
	if i := slices.Index(Kinds(), k); i >= 0 {
		return i
	}
	return len(Kinds())
}

// known reports whether k is one of the kinds Kinds returns.
func (k Kind) known() bool { return slices.Contains(Kinds(), k) }

// Severity says how sure and how serious a finding is. Severities are ordered:
// SeverityInfo < SeverityWarning < SeverityError. The zero value is SeverityInfo.
type Severity int

// Severities.
const (
	// SeverityInfo is worth knowing but not a leak by itself.
	SeverityInfo Severity = iota
	// SeverityWarning is probably a leak, or a leak that may not last.
	SeverityWarning
	// SeverityError is a leak for certain.
	SeverityError
)

var severityNames = [...]string{SeverityInfo: "info", SeverityWarning: "warning", SeverityError: "error"}

// String returns "info", "warning" or "error".
func (s Severity) String() string {
	if s >= 0 && int(s) < len(severityNames) {
		return severityNames[s]
	}
	return fmt.Sprintf("Severity(%d)", int(s))
}

// ParseSeverity parses "info", "warning" (or "warn") and "error".
func ParseSeverity(text string) (Severity, error) {
	switch text {
	case "info":
		return SeverityInfo, nil
	case "warning", "warn":
		return SeverityWarning, nil
	case "error":
		return SeverityError, nil
	}
	return 0, fmt.Errorf("unknown severity %q (want info, warning or error)", text)
}

// MarshalText encodes s by name, so JSON carries "warning", not 1.
func (s Severity) MarshalText() ([]byte, error) {
	if s < 0 || int(s) >= len(severityNames) {
		return nil, fmt.Errorf("invalid severity %d", int(s))
	}
	return []byte(s.String()), nil
}

// UnmarshalText decodes a severity name; see ParseSeverity.
func (s *Severity) UnmarshalText(text []byte) error {
	v, err := ParseSeverity(string(text))
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// Frame is one frame of a stack: the function, its file and line. It is
// tracker.Frame, the one frame type of leakcheck.
type Frame = tracker.Frame

// hiddenFrame reports whether a frame is machinery rather than the program's own
// code: the runtime, the testing package, the standard library's internal
// packages, leakcheck's tracker, and the methods of the keepalive runtime's
// types (kernel, context, wheel, pool), which sit between a resource and the
// handler that asked for it; keepalive's functions stay, as code written on
// it (a handler, a scenario) may live there.
func hiddenFrame(f Frame) bool {
	fn := f.Func
	for _, prefix := range []string{
		"runtime.", "runtime/", "testing.", "internal/",
		"github.com/leakcheck/leakcheck/tracker.",
		"github.com/leakcheck/leakcheck/tracker/",
		"github.com/leakcheck/leakcheck/keepalive.(",
		"github.com/leakcheck/leakcheck/internal/",
	} {
		if strings.HasPrefix(fn, prefix) {
			return true
		}
	}
	return false
}

// stackFrames is how many frames of a stack a report shows and groups by.
const stackFrames = 3

// TopFrames returns the first n frames of stack that are the program's own code,
// hiding the runtime, testing, internal, tracker and keepalive runtime frames. If every frame is
// hidden, it returns the first n frames as they are, so a stack is never empty
// only because it lies entirely in the runtime.
func TopFrames(stack []Frame, n int) []Frame {
	var top []Frame
	for _, f := range stack {
		if len(top) == n {
			break
		}
		if !hiddenFrame(f) {
			top = append(top, f)
		}
	}
	if len(top) == 0 && len(stack) > 0 {
		top = stack[:min(n, len(stack))]
	}
	return top
}

// Evidence is what a finding rests on. Every field is optional.
type Evidence struct {
	// Values holds named numbers, such as "age_seconds" or "gcs".
	Values map[string]float64 `json:"values,omitempty"`
	// Series names the series in Report.Series that shows the finding; its points
	// are there, not here, so a report carries each series once.
	Series string `json:"series,omitempty"`
	// Trend is the trend test's result for Series.
	Trend *Trend `json:"trend,omitempty"`
	// Related names the other series that grew with Series for the same
	// cause: one leak seen through several measures is one finding.
	Related []string `json:"related,omitempty"`
	// Stack is where the resource was acquired (or the misuse happened),
	// innermost frame first, unfiltered.
	Stack []Frame `json:"stack,omitempty"`
	// Instances names some of the occurrences a finding counts (descriptor
	// numbers, for example), at most ten; Count says how many there are.
	Instances []string `json:"instances,omitempty"`
	// Path is a reference cycle, starting and ending at the same object;
	// or, for a retained object, the path from a garbage-collection root
	// that holds it, root first.
	Path []string `json:"path,omitempty"`
	// Basis names what the verdict rests on, strongest first; goroutine
	// findings use the Basis* constants ("runtime", "stuck", "growing",
	// "blocked", "construction", "shape").
	Basis []string `json:"basis,omitempty"`
	// Because says the same in words, with the figures: "stuck across 4
	// dumps for 6m: ...", "suspect by shape: 200 goroutines share this
	// stack; ...".
	Because string `json:"because,omitempty"`
}

// Finding is one leak, or one group of identical leaks, that a report lists.
type Finding struct {
	Kind     Kind     `json:"kind"`
	Severity Severity `json:"severity"`
	// Subject says what leaked, e.g. "socket 127.0.0.1:6379" or "fds.socket".
	Subject string `json:"subject"`
	// Owner says who held it, e.g. `session "worker" (stopped)`; empty if nobody.
	Owner string `json:"owner,omitempty"`
	// Count is how many occurrences were grouped into this finding.
	Count    int      `json:"count"`
	Evidence Evidence `json:"evidence"`
	// Suggestion is one line a person can act on.
	Suggestion string `json:"suggestion"`
	// Signature identifies the leak across runs; findings with equal signatures
	// are the same leak and Group merges them. See Signature.
	Signature string `json:"signature"`

	// joins are keys other than the stack by which Correlate makes findings
	// one, such as the sessions that own what leaked (see ownerJoins). They
	// hold only while the findings of one run are put together; JSON does
	// not carry them.
	joins []string
}

// Signature returns a stable identifier for a leak of kind about key acquired at
// stack: a hash of the kind, the key and the functions (not the lines, which
// move when code is edited) of the top frames TopFrames keeps. key is usually
// the finding's subject; for resources with a stack it is the resource kind
// ("socket"), so that every socket opened at one place is one leak.
func Signature(kind Kind, key string, stack []Frame) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s", kind, key)
	if len(stack) > 0 {
		for _, f := range TopFrames(stack, stackFrames) {
			fmt.Fprintf(h, "\x00%s", f.Func)
		}
	}
	return hex.EncodeToString(h.Sum(nil)[:8])
}

// Pattern returns s with every run of digits replaced by "*", so that subjects
// that differ only in numbers (ports, descriptor numbers, request ids in file
// names) share one signature: "tcp 127.0.0.1:40312 -> 127.0.0.1:6379" and
// "tcp 127.0.0.1:40318 -> 127.0.0.1:6379" are one leak.
func Pattern(s string) string {
	var b strings.Builder
	inDigits := false
	for _, r := range s {
		if r >= '0' && r <= '9' {
			if !inDigits {
				b.WriteByte('*')
			}
			inDigits = true
			continue
		}
		inDigits = false
		b.WriteRune(r)
	}
	return b.String()
}

// signature returns f.Signature, or computes one from its kind, subject and
// stack when it is empty.
func (f *Finding) signature() string {
	if f.Signature != "" {
		return f.Signature
	}
	return Signature(f.Kind, f.Subject, f.Evidence.Stack)
}

// count returns f.Count, counting an unset count as one occurrence.
func (f *Finding) count() int { return max(f.Count, 1) }

// Group merges findings with equal signatures into one finding each and returns
// them in report order (see Sort). A merged finding takes its subject, owner,
// evidence and suggestion from the most severe of its members (the first of
// them in fs on a tie), the highest severity, and the sum of the counts. When
// members differ in subject or owner, " (+N more)" is appended to say how many
// other subjects or owners it stands for. Findings without a signature get one
// from Signature(kind, subject, stack). fs is not modified.
func Group(fs []Finding) []Finding {
	type group struct {
		f        Finding
		subjects map[string]bool
		owners   map[string]bool
		joins    []string
	}
	var order []string
	groups := make(map[string]*group)
	for _, f := range fs {
		sig := f.signature()
		g := groups[sig]
		if g == nil {
			f.Signature = sig
			f.Count = f.count()
			groups[sig] = &group{f: f, subjects: map[string]bool{f.Subject: true}, owners: map[string]bool{f.Owner: true}, joins: slices.Clone(f.joins)}
			order = append(order, sig)
			continue
		}
		g.subjects[f.Subject] = true
		g.owners[f.Owner] = true
		g.joins = append(g.joins, f.joins...)
		count := g.f.Count + f.count()
		if f.Severity > g.f.Severity {
			g.f = f
			g.f.Signature = sig
		}
		g.f.Count = count
	}
	out := make([]Finding, 0, len(order))
	for _, sig := range order {
		g := groups[sig]
		if n := len(g.subjects) - 1; n > 0 {
			g.f.Subject += fmt.Sprintf(" (+%d more)", n)
		}
		if n := len(g.owners) - 1; n > 0 {
			g.f.Owner += fmt.Sprintf(" (+%d more)", n)
		}
		slices.Sort(g.joins)
		g.f.joins = slices.Compact(g.joins)
		out = append(out, g.f)
	}
	Sort(out)
	return out
}

// Sort orders findings most important first: higher severity, then higher
// count, then kind in Kinds order, then subject, then signature. The order is
// total, so equal inputs always render the same.
func Sort(fs []Finding) {
	slices.SortStableFunc(fs, compareFindings)
}

func compareFindings(a, b Finding) int {
	if c := cmp.Compare(b.Severity, a.Severity); c != 0 {
		return c
	}
	if c := cmp.Compare(b.count(), a.count()); c != 0 {
		return c
	}
	if c := cmp.Compare(a.Kind.rank(), b.Kind.rank()); c != 0 {
		return c
	}
	if c := cmp.Compare(a.Kind, b.Kind); c != 0 {
		return c
	}
	if c := cmp.Compare(a.Subject, b.Subject); c != 0 {
		return c
	}
	return cmp.Compare(a.Signature, b.Signature)
}
