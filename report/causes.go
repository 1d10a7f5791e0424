package report

import "strings"

// Cause is a known way for goroutines to pile up inside the standard
// library: its stack says more than its wait state, and the fix is not in
// the frame where the goroutine waits.
type Cause struct {
	// Name identifies the cause: "http-body", "sql-open", "cancel",
	// "exec-wait".
	Name string
	// What says what the goroutines mean, for a finding's subject.
	What string
	// Fix is the one line to act on.
	Fix string
	// frames are the functions, any of which in a stack (or as its
	// creator) marks the cause.
	frames []string
}

// causes are the known causes, each tested against a real program
// (testdata/programs/stdleaks) in causes_test.go.
var causes = []Cause{
	{
		Name:   "http-body",
		What:   "HTTP response bodies never closed",
		Fix:    "close every resp.Body (read it to EOF first so the connection is reused): each body left open keeps a connection and its readLoop and writeLoop goroutines",
		frames: []string{"net/http.(*persistConn).readLoop", "net/http.(*persistConn).writeLoop"},
	},
	{
		Name:   "sql-open",
		What:   "database/sql handles opened and never closed",
		Fix:    "open one *sql.DB per database and share it (it is a pool), or Close each one: every DB keeps a connectionOpener goroutine",
		frames: []string{"database/sql.(*DB).connectionOpener"},
	},
	{
		Name:   "cancel",
		What:   "cancelable contexts whose cancel is never called",
		Fix:    "call the cancel function that context.WithCancel, WithTimeout or WithDeadline returned (defer cancel()): under a parent context of its own type each waits in a goroutine until one of them ends",
		frames: []string{"context.(*cancelCtx).propagateCancel.func"},
	},
	{
		Name:   "exec-wait",
		What:   "started commands never waited for",
		Fix:    "call cmd.Wait for every cmd.Start: until then the goroutines copying the command's output and its process stay",
		frames: []string{"os/exec.(*Cmd).Start.func", "os/exec.(*Cmd).writerDescriptor.func", "os/exec.(*Cmd).watchCtx"},
	},
}

// KnownCause returns the known cause that a goroutine's stack or creator
// shows, if any.
func KnownCause(stack []Frame, createdBy Frame) (Cause, bool) {
	for _, c := range causes {
		for _, fn := range c.frames {
			if strings.HasPrefix(createdBy.Func, fn) {
				return c, true
			}
			for _, f := range stack {
				if strings.HasPrefix(f.Func, fn) {
					return c, true
				}
			}
		}
	}
	return Cause{}, false
}

// nameCause gives a goroutine finding whose stack shows a known cause that
// cause's name and fix: the wait state of a persistConn's readLoop says
// nothing of the response body nobody closed.
func nameCause(f *Finding) {
	c, ok := KnownCause(f.Evidence.Stack, Frame{})
	if !ok {
		return
	}
	f.Subject = "goroutines of " + c.What
	f.Suggestion = c.Fix
	f.Evidence.Because += "; their stack is that of " + c.What
}
