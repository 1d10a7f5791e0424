package report

import (
	"fmt"
	"slices"
	"strings"

	"github.com/leakcheck/leakcheck/tracker"
)

// SnapshotOptions configures FromSnapshot.
type SnapshotOptions struct {
	// AtExit says the snapshot was taken as the program ended: every live
	// record is then a leftover, not only those whose owner stopped.
	AtExit bool
	// Trend configures the trend test run on the snapshot's gauges.
	Trend TrendOptions
}

// retainedErrorGCs is how many garbage collections a released object must
// survive before being retained is an error rather than a warning: a closure
// or an event still being handled may hold it for a collection or two.
const retainedErrorGCs = 3

// FromSnapshot turns a tracker snapshot into findings, one per record or event
// (Group merges them), and returns the snapshot's gauges as series, analysed.
//
// Severities: a leftover under a stopped owner is an error (nothing can
// release it any more); any other record live at exit is a warning. Retained
// objects are warnings, errors after surviving retainedErrorGCs collections.
// Unreleased objects are warnings: the collector did release them, late. A
// cycle is an error when every session on it stopped (it is garbage only the
// cycle keeps), a warning otherwise. Misuse is a warning, except acquiring for
// or moving to a stopped owner, which orphans a resource: an error. Growing
// gauges are warnings (see Growth).
func FromSnapshot(s *tracker.Snapshot, opts SnapshotOptions) Result {
	var fs []Finding
	for _, r := range s.Records {
		if r.State != tracker.Live || !(r.OwnerStopped || opts.AtExit) {
			continue
		}
		sev := SeverityWarning
		if r.OwnerStopped {
			sev = SeverityError
		}
		f := recordFinding(KindLeftover, sev, r, stackOf(s, r.Stack, r.StackID))
		f.Evidence.Values = map[string]float64{"age_seconds": r.Age.Seconds()}
		f.Suggestion = releaseAdvice(r.Kind, f.Evidence.Stack)
		if r.OwnerStopped {
			f.Suggestion = leftoverAdvice(r.Kind, sessionName(r.Owner, r.OwnerLabel), f.Evidence.Stack)
		}
		fs = append(fs, f)
	}
	for _, m := range s.Misuse {
		fs = append(fs, misuseFinding(m, stackOf(s, m.Stack, m.StackID)))
	}
	for _, u := range s.Unreleased {
		f := recordFinding(KindUnreleased, SeverityWarning, u.Record, stackOf(s, u.Record.Stack, u.Record.StackID))
		f.Evidence.Values = map[string]float64{"age_seconds": u.Record.Age.Seconds()}
		f.Suggestion = "freed by the garbage collector, not by the program: " + releaseAdvice(u.Record.Kind, f.Evidence.Stack)
		fs = append(fs, f)
	}
	for _, r := range s.Retained {
		sev := SeverityWarning
		if r.GCs >= retainedErrorGCs {
			sev = SeverityError
		}
		f := recordFinding(KindRetained, sev, r.Record, stackOf(s, r.Record.Stack, r.Record.StackID))
		f.Evidence.Values = map[string]float64{"gcs": float64(r.GCs)}
		f.Evidence.Path = r.Path // who holds it, when the tracker looked
		if r.Record.Kind == tracker.KindSession {
			f.Suggestion = "stopped but still reachable: do not keep references to sessions; keep the session's id and look it up"
		} else {
			f.Suggestion = "released but still reachable: drop the extra reference (a map entry, a closure, another session's heap) that holds it"
		}
		fs = append(fs, f)
	}
	for _, c := range s.Cycles {
		fs = append(fs, cycleFinding(c))
	}
	if n := s.MisuseTotal - len(s.Misuse); n > 0 {
		fs = append(fs, droppedFinding(KindMisuse, "misuse events", n))
	}
	if n := s.UnreleasedTotal - len(s.Unreleased); n > 0 {
		fs = append(fs, droppedFinding(KindUnreleased, "unreleased objects", n))
	}
	series := make([]Series, 0, len(s.Gauges))
	gaugeJoins := map[string][]string{} // by series name
	for _, g := range s.Gauges {
		gaugeJoins[g.Name] = append(gaugeJoins[g.Name], ownerJoins(g.Owner, g.Ancestors)...)
		points := make([]Point, len(g.Points))
		for i, p := range g.Points {
			points[i] = Point{Time: p.Time, Value: p.Value}
		}
		series = append(series, Series{Name: g.Name, Unit: "items", Owner: sessionName(g.Owner, g.OwnerLabel), Points: points})
	}
	for _, f := range Growth(series, opts.Trend) {
		f.joins = gaugeJoins[f.Evidence.Series]
		fs = append(fs, f)
	}
	return Result{Findings: fs, Series: series}
}

// stackOf returns a record's or event's stack: its own frames if it carries
// them, else the snapshot's stack table entry.
func stackOf(s *tracker.Snapshot, frames []tracker.Frame, id int) []Frame {
	if len(frames) == 0 && id != 0 {
		frames = s.StackTable[id]
	}
	if len(frames) == 0 {
		return nil
	}
	return slices.Clone(frames)
}

// recordFinding builds the finding common to leftover, unreleased and retained
// records. Records with a stack are grouped by their kind and acquisition
// site, so a thousand sockets opened on one line are one finding; records
// without a stack are grouped by subject.
func recordFinding(kind Kind, sev Severity, r tracker.Record, stack []Frame) Finding {
	subject := recordSubject(r)
	key := Pattern(subject) // without a stack, records differing only in numbers are one leak
	if len(stack) > 0 {
		key = string(r.Kind)
	}
	return Finding{
		Kind:      kind,
		Severity:  sev,
		Subject:   subject,
		Owner:     recordOwner(r),
		Count:     1,
		Evidence:  Evidence{Stack: stack},
		Signature: Signature(kind, key, stack),
		joins:     ownerJoins(r.Owner, r.Ancestors),
	}
}

// recordSubject names a record: its kind and label, e.g.
// "socket 127.0.0.1:6379" or `session "worker"`.
func recordSubject(r tracker.Record) string {
	if r.Kind == tracker.KindSession {
		return sessionName(r.ID, r.Label)
	}
	if r.Label == "" {
		return fmt.Sprintf("%s #%d", r.Kind, r.ID)
	}
	return string(r.Kind) + " " + r.Label
}

// recordOwner names the session that owns r, noting whether it stopped; for
// a record without an owner, it names the record's creator, if known.
func recordOwner(r tracker.Record) string {
	owner := sessionName(r.Owner, r.OwnerLabel)
	switch {
	case owner == "":
		return r.Creator
	case r.OwnerStopped:
		owner += " (stopped)"
	}
	return owner
}

// sessionName formats a session as `session "label"`, or "session #id"
// without a label; id 0 is no session and gives "".
func sessionName(id uint64, label string) string {
	switch {
	case label != "":
		return fmt.Sprintf("session %q", label)
	case id != 0:
		return fmt.Sprintf("session #%d", id)
	}
	return ""
}

// releaseAdvice says how to release a resource of kind acquired at stack.
func releaseAdvice(kind tracker.Kind, stack []Frame) string {
	advice, where := "release it where it was acquired", ": "
	switch kind {
	case tracker.KindFile, tracker.KindSocket, tracker.KindListener:
		advice = "close it where it was opened"
	case tracker.KindTimer:
		advice = "stop it where it was created"
	case tracker.KindGoroutine:
		advice, where = "make it return when its owner stops", "; it was started at "
	case tracker.KindWheel:
		advice = "drop it (closing its connection) where it was created"
	case tracker.KindSession:
		advice, where = "let it stop: remove its timers, wheels, aliases and extra references", "; it was created at "
	}
	return advice + at(stack, where)
}

// leftoverAdvice says how to release a resource of kind acquired at stack
// that its owner, stopped, still holds: in the owner's stop handler, where
// POE's FAQ says a session cleans up.
func leftoverAdvice(kind tracker.Kind, owner string, stack []Frame) string {
	verb, acquired := "release it", "acquired"
	switch kind {
	case tracker.KindFile, tracker.KindSocket, tracker.KindListener:
		verb, acquired = "close it", "opened"
	case tracker.KindTimer:
		verb, acquired = "stop it", "created"
	case tracker.KindWheel:
		verb, acquired = "drop it (closing its connection)", "created"
	case tracker.KindGoroutine, tracker.KindSession:
		return releaseAdvice(kind, stack)
	}
	return fmt.Sprintf("its owner, %s, stopped still holding it: %s in the owner's stop handler, or hand it to an owner that lives on%s",
		owner, verb, at(stack, "; it was "+acquired+" at "))
}

// at returns sep followed by the first frame of the program's own code in
// stack, e.g. ": pkg.Func (file.go:42)", or a hint to capture stacks when
// there is no stack.
func at(stack []Frame, sep string) string {
	top := TopFrames(stack, 1)
	if len(top) == 0 {
		return " (no stack captured: enable stack capture to see where)"
	}
	return sep + top[0].String()
}

func misuseFinding(m tracker.Misuse, stack []Frame) Finding {
	sev := SeverityWarning
	var advice string
	switch m.Kind {
	case tracker.DoubleRelease:
		advice = "release it once; it was released again"
	case tracker.DoubleStop:
		advice = "stop the session once; it was stopped again"
	case tracker.ReleaseAfterStop:
		advice = "release it before its owner stops, or move it to a live owner; it was released"
	case tracker.TrackUnderStopped:
		sev = SeverityError
		advice = "check that the owner is alive before acquiring for it; the orphan was acquired"
	case tracker.MoveToStopped:
		sev = SeverityError
		advice = "move it to a live owner; it was moved"
	case tracker.ReleaseZeroHandle:
		advice = "check the handle before releasing it; a zero handle was released"
	default:
		advice = "fix the misuse; it happened"
	}
	subject := fmt.Sprintf("%s of %s", m.Kind, recordSubject(m.Record))
	key := subject
	if len(stack) > 0 {
		key = string(m.Kind) + " " + string(m.Record.Kind)
	}
	return Finding{
		Kind:       KindMisuse,
		Severity:   sev,
		Subject:    subject,
		Owner:      recordOwner(m.Record),
		Count:      1,
		Evidence:   Evidence{Stack: stack},
		Suggestion: advice + at(stack, " at "),
		Signature:  Signature(KindMisuse, key, stack),
		joins:      ownerJoins(m.Record.Owner, m.Record.Ancestors),
	}
}

// droppedFinding stands for the n events of kind that the tracker counted but
// did not keep (it keeps only the most recent), so that counts stay true.
func droppedFinding(kind Kind, what string, n int) Finding {
	subject := what + " the tracker counted but did not keep"
	return Finding{
		Kind:       kind,
		Severity:   SeverityWarning,
		Subject:    subject,
		Count:      n,
		Suggestion: "fix the ones listed, then run again: the tracker keeps only the most recent",
		Signature:  Signature(kind, subject, nil),
	}
}

// cycleFinding reports a reference cycle. It suggests breaking the edge that
// closes the cycle, the reference held by the last step of the path, since a
// path starts at the object the finder began from, usually the session.
func cycleFinding(c tracker.Cycle) Finding {
	sev := SeverityWarning
	if c.Stopped {
		sev = SeverityError
	}
	subject := strings.Join(c.Path, " -> ")
	advice := "break the cycle: hold an id or a weak.Pointer instead of one of its references"
	if len(c.Path) >= 2 {
		advice = fmt.Sprintf("break the cycle at %s: hold an id or a weak.Pointer there instead of the reference", c.Path[len(c.Path)-2])
	}
	if c.Root != "" {
		advice += "; the cycle hangs from " + c.Root
	}
	return Finding{
		Kind:       KindCycle,
		Severity:   sev,
		Subject:    subject,
		Owner:      sessionName(c.Owner, c.OwnerLabel),
		Count:      1,
		Evidence:   Evidence{Path: c.Path},
		Suggestion: advice,
		Signature:  Signature(KindCycle, subject, nil),
		joins:      ownerJoins(c.Owner, c.Ancestors),
	}
}
