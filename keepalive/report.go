package keepalive

import (
	"bytes"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"

	"github.com/leakcheck/leakcheck/tracker"
)

// Report is what Run leaves behind: every resource still registered to the
// kernel or one of its sessions when Run ended, POE's "!!! Leaked" lines with
// owners, ages and acquisition stacks.
type Report struct {
	// Kernel is the kernel's name.
	Kernel string
	// Started and Ended bound the Run.
	Started, Ended time.Time
	// Forced is true when Run's context ended while sessions were alive.
	Forced bool
	// Alive is how many sessions the kernel stopped itself at shutdown.
	Alive int
	// Leftovers lists the records, oldest first. A record with State
	// tracker.Released was still held by a session when Run's context ended
	// and released by the kernel as it stopped that session (a timer, wheel,
	// event, watched handle); one with State tracker.Live is still registered
	// now, like a file a stopped session never closed. Sessions alive at a
	// forced shutdown are listed too, with kind "session".
	Leftovers []tracker.Record
	// Pending lists the events still queued when Run's context ended, in
	// queue order. (The tracker keeps one record per session and event name
	// while such events are pending; this is the detail.)
	Pending []PendingEvent
}

// PendingEvent is an event that was still queued at a forced shutdown.
type PendingEvent struct {
	Session     SessionID
	SessionName string
	Event       string
	Sender      string // the sender as Session.String shows it; "kernel" for none
}

// maxPendingLines bounds the pending events WriteTo lists one by one.
const maxPendingLines = 20

// Len returns how many leftovers there are.
func (r *Report) Len() int { return len(r.Leftovers) }

// Of returns the leftovers of one kind.
func (r *Report) Of(kind tracker.Kind) []tracker.Record {
	var out []tracker.Record
	for _, rec := range r.Leftovers {
		if rec.Kind == kind {
			out = append(out, rec)
		}
	}
	return out
}

// maxFrames bounds the stack frames printed per leftover.
const maxFrames = 8

// WriteTo writes the report for people: a summary line, then one "!!! leaked"
// line per leftover followed by its acquisition stack, runtime frames left
// out.
func (r *Report) WriteTo(w io.Writer) (int64, error) {
	var b bytes.Buffer
	how := "all sessions stopped"
	if r.Forced {
		how = fmt.Sprintf("context ended with %d sessions alive", r.Alive)
	}
	fmt.Fprintf(&b, "keepalive %q: ran %s, %s, %d leftovers\n", r.Kernel, r.Ended.Sub(r.Started).Round(time.Millisecond), how, len(r.Leftovers))
	for _, rec := range r.Leftovers {
		owner := fmt.Sprintf("%q #%d", rec.OwnerLabel, rec.Owner)
		switch {
		case rec.OwnerStopped:
			owner += " (stopped)"
		case rec.State == tracker.Released:
			owner += " (stopped at shutdown)"
		}
		verb := "leaked"
		if rec.State == tracker.Released {
			verb = "released at shutdown"
		}
		fmt.Fprintf(&b, "!!! %s %s #%d %q, held by %s, age %s\n", verb, rec.Kind, rec.ID, rec.Label, owner, rec.Age.Round(time.Microsecond))
		n := 0
		for _, f := range rec.Stack {
			if internalFrame(f.Func) {
				if n > 0 {
					break // below the handler: the kernel's loop
				}
				continue
			}
			if n == maxFrames {
				b.WriteString("        ...\n")
				break
			}
			fmt.Fprintf(&b, "        at %s (%s:%d)\n", f.Func, filepath.Base(f.File), f.Line)
			n++
		}
		if len(rec.Stack) == 0 {
			b.WriteString("        (no acquisition stack: set LEAKCHECK_STACKS=always or use tracker.WithStacks)\n")
		}
	}
	if len(r.Pending) > 0 {
		fmt.Fprintf(&b, "!!! %d events pending at shutdown\n", len(r.Pending))
		for i, p := range r.Pending {
			if i == maxPendingLines {
				fmt.Fprintf(&b, "        ... and %d more\n", len(r.Pending)-i)
				break
			}
			fmt.Fprintf(&b, "        %q for %q #%d from %s\n", p.Event, p.SessionName, p.Session, p.Sender)
		}
	}
	n, err := w.Write(b.Bytes())
	return int64(n), err
}

// internalFrame reports whether fn is plumbing that acquisition stacks
// skip: the Go runtime, the tracker, and the kernel's own methods, so the
// frames shown are the caller's, from the handler up to the kernel's loop.
func internalFrame(fn string) bool {
	if strings.HasPrefix(fn, "runtime.") || strings.HasPrefix(fn, "github.com/leakcheck/leakcheck/tracker.") {
		return true
	}
	rest, ok := strings.CutPrefix(fn, "github.com/leakcheck/leakcheck/keepalive.")
	if !ok {
		return false
	}
	for _, p := range []string{"(*Kernel).", "(*Context).", "(*Wheel).", "(*Acceptor).", "(*Watched).", "(*Session)."} {
		if strings.HasPrefix(rest, p) {
			return true
		}
	}
	return false
}

// String returns the report as WriteTo writes it.
func (r *Report) String() string {
	var b strings.Builder
	r.WriteTo(&b)
	return b.String()
}
