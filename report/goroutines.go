package report

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/pprof/profile"
)

// Goroutine is one goroutine of a dump, or, in the forms that aggregate
// (debug=1 and proto), one stack that Count goroutines share.
type Goroutine struct {
	// ID is the goroutine's id; 0 when the form does not carry ids (debug=1,
	// proto).
	ID int64
	// State is the wait reason or status as the runtime prints it: "chan
	// receive", "select", "IO wait", "sync.Mutex.Lock", "sleep", "running",
	// "runnable", ... The debug=1 and proto forms print no state: there it is
	// inferred from a known blocking call in the stack, and empty when the
	// stack shows none (debug=1 hides the runtime frames that would tell a
	// channel operation or a select).
	State string
	// Wait is how long the goroutine has been blocked, as the header's "12
	// minutes" says; 0 when absent (under a minute, or a form without it).
	Wait time.Duration
	// Locked reports "locked to thread" in the header.
	Locked bool
	// Leaked reports that the runtime's leak detector found the goroutine
	// blocked on something no running goroutine can reach, so it can never
	// run again: every goroutine of a goroutineleak profile, and those marked
	// "(leaked)" in a full dump taken through that profile.
	Leaked bool
	// Labels are the pprof labels: from the proto's labels, "# labels: {...}"
	// in debug=1, or "labels:{...}" in debug=2 headers, which the runtime
	// prints only when GODEBUG=tracebacklabels=1.
	Labels map[string]string
	// Stack is the goroutine's stack, innermost first. The frames of go
	// statement wrappers (main.main.gowrap1) and runtime.goexit are dropped, so
	// one goroutine has the same program frames in every form.
	Stack []Frame
	// CreatedBy is the "created by" frame: the go statement that started the
	// goroutine. Func is empty when absent (debug=1, proto, the main goroutine).
	CreatedBy Frame
	// CreatorID is the id of the goroutine that ran that go statement ("in
	// goroutine 1"); 0 when absent.
	CreatorID int64
	// Elided is how many frames the runtime left out of a deep stack
	// ("...N frames elided...").
	Elided int
	// Count is how many goroutines this entry stands for: 1 in full dumps,
	// the sample's count in the aggregating forms.
	Count int
}

// GoroutineDump is one goroutine profile or dump.
type GoroutineDump struct {
	// Time is when the dump was taken: the proto's time; zero for the text
	// forms, which do not say, unless the caller knows and sets it.
	Time time.Time
	// Total is the number of goroutines: the sum of the Counts.
	Total int
	// Leak is true for a goroutineleak profile: every goroutine in it is a
	// leak by construction.
	Leak bool
	// Form is the form the dump was read from: "debug=1", "debug=2" (a full
	// dump that is nothing but goroutines), "crash" (goroutines inside other
	// text, such as a SIGQUIT or panic traceback) or "proto".
	Form       string
	Goroutines []Goroutine
}

// The text forms' fixed parts.
const (
	goroutineProfileHeader     = "goroutine profile: total "
	goroutineLeakProfileHeader = "goroutineleak profile: total "
	stackUnavailable           = "\tgoroutine running on other thread; stack unavailable"
)

// ParseGoroutineText parses the text forms of goroutine profiles and dumps:
//
//   - debug=1: "goroutine profile: total N" (or "goroutineleak profile:
//     total N") followed by one record per distinct stack and label set;
//   - debug=2: full dumps, "goroutine 1 [chan receive, 12 minutes]:" followed
//     by the stack, one block per goroutine, as runtime.Stack writes them;
//   - crash dumps: the same blocks amid other text, as a SIGQUIT, a panic or a
//     fatal error writes them to standard error with GOTRACEBACK=all or
//     higher ("SIGQUIT: quit\nPC=... m=0 sigcode=0\n\ngoroutine 0 gp=...",
//     and register dumps after).
//
// Text outside goroutine blocks is skipped, and so are the blocks of
// goroutine 0 (a thread's system stack, not a goroutine) and the creators'
// stacks that GODEBUG=tracebackancestors adds. Inside a block every line must
// parse; an error names the line and says what was expected there.
func ParseGoroutineText(data []byte) (*GoroutineDump, error) {
	p := &textParser{rest: data, intern: make(map[string]string)}
	first := bytes.TrimLeft(data, " \t\r\n")
	if bytes.HasPrefix(first, []byte(goroutineProfileHeader)) || bytes.HasPrefix(first, []byte(goroutineLeakProfileHeader)) {
		return p.parseDebug1()
	}
	// Other profiles' legacy text forms: "heap profile: 1: 2 [...]",
	// "threadcreate profile: total 5".
	if i := bytes.Index(first, []byte(" profile: ")); i > 0 && bytes.IndexAny(first[:i], " \t\r\n") < 0 {
		return nil, fmt.Errorf("not a goroutine profile: %q", first[:i+len(" profile")])
	}
	return p.parseDump()
}

// textParser reads a text form line by line.
type textParser struct {
	rest   []byte
	line   int               // number of the line last returned
	intern map[string]string // one string per distinct function and file name
}

// next returns the next line without its line ending, or false at the end.
func (p *textParser) next() ([]byte, bool) {
	if len(p.rest) == 0 {
		return nil, false
	}
	line := p.rest
	if i := bytes.IndexByte(line, '\n'); i >= 0 {
		line, p.rest = line[:i], line[i+1:]
	} else {
		p.rest = nil
	}
	p.line++
	return bytes.TrimSuffix(line, []byte("\r")), true
}

// peek returns the next line without consuming it.
func (p *textParser) peek() ([]byte, bool) {
	rest, line := p.rest, p.line
	l, ok := p.next()
	p.rest, p.line = rest, line
	return l, ok
}

// str returns b as a string, the same string for equal names.
func (p *textParser) str(b []byte) string {
	if s, ok := p.intern[string(b)]; ok {
		return s
	}
	s := string(b)
	p.intern[s] = s
	return s
}

// errorf returns an error about the line last read; format may use %w.
func (p *textParser) errorf(format string, args ...any) error {
	return fmt.Errorf("goroutine dump line %d: "+format, append([]any{p.line}, args...)...)
}

// parseDump parses the debug=2 and crash forms.
func (p *textParser) parseDump() (*GoroutineDump, error) {
	d := &GoroutineDump{Form: "debug=2"}
	for {
		line, ok := p.next()
		if !ok {
			break
		}
		g, isHeader, err := parseGoroutineHeader(line)
		if !isHeader {
			if len(bytes.TrimSpace(line)) > 0 {
				d.Form = "crash" // text that a full dump does not have
			}
			continue
		}
		if err != nil {
			return nil, p.errorf("%w", err)
		}
		if err := p.parseStack(&g); err != nil {
			return nil, err
		}
		if g.ID == 0 {
			continue // a thread's g0 or signal stack, in crash dumps
		}
		d.Goroutines = append(d.Goroutines, g)
		d.Total++
	}
	if len(d.Goroutines) == 0 {
		return nil, errors.New(`no goroutines found: want "goroutine profile: total N" (debug=1), or goroutine headers such as "goroutine 1 [running]:" (debug=2 and crash dumps)`)
	}
	return d, nil
}

// parseGoroutineHeader parses "goroutine 7 [chan receive, 3 minutes, locked
// to thread labels:{"k": "v"}]:", with the " gp=... m=... mp=..." that
// tracebacks at GOTRACEBACK=system or in a crash add after the id. isHeader is
// false when line is not a header at all; err says what is wrong with a line
// that begins like one.
func parseGoroutineHeader(line []byte) (g Goroutine, isHeader bool, err error) {
	rest, ok := bytes.CutPrefix(line, []byte("goroutine "))
	if !ok || len(rest) == 0 || rest[0] < '0' || rest[0] > '9' || !bytes.HasSuffix(rest, []byte("]:")) {
		return g, false, nil
	}
	open := bytes.Index(rest, []byte(" ["))
	if open < 0 {
		return g, false, nil
	}
	idText, _, _ := bytes.Cut(rest[:open], []byte(" ")) // the id, then gp=, m=, mp=
	id, err := strconv.ParseInt(string(idText), 10, 64)
	if err != nil || id < 0 {
		return g, true, fmt.Errorf("goroutine header %q: want a goroutine id after \"goroutine \"", line)
	}
	g = Goroutine{ID: id, Count: 1}
	if err := parseHeaderStatus(&g, string(rest[open+2:len(rest)-2])); err != nil {
		return g, true, fmt.Errorf("goroutine header %q: %w", line, err)
	}
	return g, true, nil
}

// parseHeaderStatus parses what a goroutine header has between its brackets:
// the status, then ", N minutes", ", locked to thread" and the like, then
// " labels:{...}".
func parseHeaderStatus(g *Goroutine, s string) error {
	if i := strings.Index(s, " labels:{"); i >= 0 {
		labels, rest, err := parseLabels(s[i+len(" labels:"):])
		if err != nil {
			return err
		}
		if rest != "" {
			return fmt.Errorf("want \"]:\" after the labels, got %q", rest)
		}
		g.Labels, s = labels, s[:i]
	}
	state, notes, _ := strings.Cut(s, ", ")
	// The runtime follows the wait reason with " (leaked)", then " (scan)"
	// while the collector scans the stack, then " (durable)" in a synctest
	// bubble. The first two say how the goroutine is, not what it waits for.
	durable := ""
	if st, ok := strings.CutSuffix(state, " (durable)"); ok {
		state, durable = st, " (durable)"
	}
	state = strings.TrimSuffix(state, " (scan)")
	if st, ok := strings.CutSuffix(state, " (leaked)"); ok {
		state, g.Leaked = st, true
	}
	state += durable
	if state == "" {
		return errors.New("want a goroutine state after \"[\"")
	}
	g.State = state
	for notes != "" {
		var note string
		note, notes, _ = strings.Cut(notes, ", ")
		switch {
		case note == "locked to thread":
			g.Locked = true
		case strings.HasSuffix(note, " minutes"):
			n, err := strconv.ParseInt(strings.TrimSuffix(note, " minutes"), 10, 64)
			if err != nil || n < 0 || n > int64(maxWaitMinutes) {
				return fmt.Errorf("want a number of minutes in %q", note)
			}
			g.Wait = time.Duration(n) * time.Minute
		}
		// Other notes ("synctest bubble 3", and whatever later releases add)
		// say nothing leakcheck uses.
	}
	return nil
}

// maxWaitMinutes keeps a Wait in a time.Duration.
const maxWaitMinutes = int64(1<<63-1) / int64(time.Minute)

// parseLabels parses a label set as the runtime prints it, {"k": "v", ...}
// in headers or {"k":"v", ...} in debug=1, both with Go-quoted strings, and
// returns what follows the closing brace.
func parseLabels(s string) (map[string]string, string, error) {
	rest, ok := strings.CutPrefix(s, "{")
	if !ok {
		return nil, s, errors.New(`want labels in braces, {"key": "value"}`)
	}
	labels := make(map[string]string)
	if r, ok := strings.CutPrefix(rest, "}"); ok {
		return labels, r, nil
	}
	for {
		key, r, err := cutQuoted(rest)
		if err != nil {
			return nil, s, fmt.Errorf("label key: %w", err)
		}
		r, ok := strings.CutPrefix(r, ":")
		if !ok {
			return nil, s, fmt.Errorf("want \":\" after label key %q", key)
		}
		value, r, err := cutQuoted(strings.TrimPrefix(r, " "))
		if err != nil {
			return nil, s, fmt.Errorf("value of label %q: %w", key, err)
		}
		labels[key] = value
		if r, ok := strings.CutPrefix(r, "}"); ok {
			return labels, r, nil
		}
		if rest, ok = strings.CutPrefix(r, ","); !ok {
			return nil, s, fmt.Errorf("want \",\" or \"}\" after the value of label %q", key)
		}
		rest = strings.TrimPrefix(rest, " ")
	}
}

// cutQuoted unquotes the Go string literal that s begins with and returns
// what follows it.
func cutQuoted(s string) (string, string, error) {
	if !strings.HasPrefix(s, `"`) {
		return "", s, errors.New("want a double-quoted string")
	}
	for i := 1; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case '"':
			v, err := strconv.Unquote(s[:i+1])
			if err != nil {
				return "", s, fmt.Errorf("bad quoted string %s: %w", s[:i+1], err)
			}
			return v, s[i+1:], nil
		}
	}
	return "", s, errors.New("unterminated quoted string")
}

// parseStack reads a goroutine block's lines after its header, up to a blank
// line or the end: call lines each followed by a tab-indented file line, and
// "created by", elision and ancestor lines.
func (p *textParser) parseStack(g *Goroutine) error {
	for {
		line, ok := p.next()
		if !ok || len(line) == 0 {
			break
		}
		switch {
		case bytes.HasPrefix(line, []byte("created by ")):
			fn := line[len("created by "):]
			if i := bytes.LastIndex(fn, []byte(" in goroutine ")); i >= 0 {
				id, err := strconv.ParseInt(string(fn[i+len(" in goroutine "):]), 10, 64)
				if err != nil || id < 0 {
					return p.errorf("want a goroutine id in %q", line)
				}
				fn, g.CreatorID = fn[:i], id
			}
			if len(fn) == 0 {
				return p.errorf("want a function after \"created by\"")
			}
			f, err := p.fileLine(p.str(fn))
			if err != nil {
				return err
			}
			g.CreatedBy = f
		case bytes.HasPrefix(line, []byte("...")) && bytes.HasSuffix(line, []byte(" frames elided...")):
			n, err := strconv.Atoi(string(line[len("...") : len(line)-len(" frames elided...")]))
			if err != nil || n < 0 {
				return p.errorf("want a number of frames in %q", line)
			}
			g.Elided += n
		case bytes.HasPrefix(line, []byte("[originating from goroutine ")):
			// GODEBUG=tracebackancestors: the stacks of the goroutines that
			// created this one, up to the end of the block. Not its own stack.
			for l, ok := p.next(); ok && len(l) > 0; l, ok = p.next() {
			}
			return nil
		case string(line) == stackUnavailable,
			bytes.HasPrefix(line, []byte("runtime: ")):
			// A goroutine running elsewhere when the dump was taken, and the
			// unwinder's own complaints about a stack it could not walk.
		case line[0] == '\t':
			return p.errorf("want a function call such as \"main.f(...)\" before file line %q", line)
		default:
			fn, ok := callName(line)
			if !ok {
				return p.errorf("want a function call such as \"main.f(...)\", got %q", line)
			}
			f, err := p.fileLine(p.str(fn))
			if err != nil {
				return err
			}
			if !wrapperFrame(f.Func) {
				g.Stack = append(g.Stack, f)
			}
		}
	}
	return nil
}

// callName returns the function of a call line, "main.(*T).f(0x1, ...)",
// whose arguments run from the last "(" to the closing ")" at the end.
func callName(line []byte) ([]byte, bool) {
	if !bytes.HasSuffix(line, []byte(")")) {
		return nil, false
	}
	i := bytes.LastIndexByte(line, '(')
	if i <= 0 {
		return nil, false
	}
	return line[:i], true
}

// fileLine reads the file line that follows the call line of fn:
// "\t/src/main.go:42 +0x1d", with " fp=0x... sp=0x... pc=0x..." in crash
// dumps.
func (p *textParser) fileLine(fn string) (Frame, error) {
	line, ok := p.next()
	if !ok {
		return Frame{}, p.errorf("dump ends after the call line of %s: want its tab-indented file:line", fn)
	}
	s, ok := bytes.CutPrefix(line, []byte("\t"))
	if !ok {
		return Frame{}, p.errorf("want a tab-indented file:line after the call line of %s, got %q", fn, line)
	}
	if i := bytes.LastIndex(s, []byte(" fp=0x")); i >= 0 && registersNote(s[i+1:]) {
		s = s[:i]
	}
	if i := bytes.LastIndex(s, []byte(" +0x")); i >= 0 && hexDigits(s[i+len(" +0x"):]) {
		s = s[:i]
	}
	file, lineNo, ok := splitFileLine(s)
	if !ok {
		return Frame{}, p.errorf("want file:line after the call line of %s, got %q", fn, line)
	}
	return Frame{Func: fn, File: p.str(file), Line: lineNo}, nil
}

// registersNote reports whether s is "fp=0x... sp=0x... pc=0x...".
func registersNote(s []byte) bool {
	fields := bytes.Fields(s)
	if len(fields) != 3 {
		return false
	}
	for i, name := range []string{"fp=0x", "sp=0x", "pc=0x"} {
		v, ok := bytes.CutPrefix(fields[i], []byte(name))
		if !ok || !hexDigits(v) {
			return false
		}
	}
	return true
}

// hexDigits reports whether s is one or more hexadecimal digits.
func hexDigits(s []byte) bool {
	for _, c := range s {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return len(s) > 0
}

// splitFileLine splits "path/file.go:42".
func splitFileLine(s []byte) ([]byte, int, bool) {
	i := bytes.LastIndexByte(s, ':')
	if i <= 0 {
		return nil, 0, false
	}
	n, err := strconv.Atoi(string(s[i+1:]))
	if err != nil || n < 0 {
		return nil, 0, false
	}
	return s[:i], n, true
}

// wrapperFrame reports whether fn is machinery that some forms print and
// others do not: the wrappers the compiler makes for go statements
// ("main.main.gowrap1") and runtime.goexit, the bottom of every goroutine.
func wrapperFrame(fn string) bool {
	if fn == "runtime.goexit" {
		return true
	}
	i := strings.LastIndex(fn, ".gowrap")
	if i < 0 || i+len(".gowrap") == len(fn) {
		return false
	}
	for _, c := range fn[i+len(".gowrap"):] {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// parseDebug1 parses the debug=1 form: the header, then records of a count
// and the stack's addresses ("3 @ 0x45e2ce 0x42b5b4"), optional "# labels:
// {...}", and one "#\t0xPC\tfunc+0xOFF\tfile:line" line per frame, each
// record ending with a blank line.
func (p *textParser) parseDebug1() (*GoroutineDump, error) {
	d := &GoroutineDump{Form: "debug=1"}
	var header []byte
	for {
		l, ok := p.next()
		if !ok {
			break
		}
		if len(bytes.TrimSpace(l)) > 0 {
			header = l
			break
		}
	}
	header = bytes.TrimSpace(header)
	total, err := strconv.Atoi(string(header[bytes.LastIndexByte(header, ' ')+1:]))
	if err != nil || total < 0 {
		return nil, p.errorf("want a number of goroutines in %q", header)
	}
	d.Leak = bytes.HasPrefix(header, []byte(goroutineLeakProfileHeader))
	for {
		line, ok := p.next()
		if !ok {
			break
		}
		if len(line) == 0 {
			continue
		}
		countText, _, ok := bytes.Cut(line, []byte(" @"))
		count, err := strconv.Atoi(string(countText))
		if !ok || err != nil || count < 1 {
			return nil, p.errorf("want a record such as \"3 @ 0x45e2ce 0x42b5b4\", got %q", line)
		}
		if count > total-d.Total {
			return nil, p.errorf("records count more goroutines than the header's total %d", total)
		}
		g := Goroutine{Count: count, Leaked: d.Leak}
		for {
			l, ok := p.peek()
			if !ok || len(l) == 0 || l[0] != '#' {
				break
			}
			p.next()
			if s, ok := bytes.CutPrefix(l, []byte("# labels: ")); ok {
				labels, rest, err := parseLabels(string(s))
				if err != nil {
					return nil, p.errorf("%w", err)
				}
				if rest != "" {
					return nil, p.errorf("want the end of the line after the labels, got %q", rest)
				}
				g.Labels = labels
				continue
			}
			f, err := p.debug1Frame(l)
			if err != nil {
				return nil, err
			}
			if !wrapperFrame(f.Func) {
				g.Stack = append(g.Stack, f)
			}
		}
		g.State = inferState(g.Stack)
		d.Goroutines = append(d.Goroutines, g)
		d.Total += count
	}
	if d.Total != total {
		return nil, p.errorf("records count %d goroutines, but the header says total %d: is the profile truncated?", d.Total, total)
	}
	return d, nil
}

// debug1Frame parses "#\t0x4f0224\tmain.write+0x144\t\tmain.go:137", whose
// fields tabwriter separates by one tab or more, or "#\t0x4f0224" for an
// address without a symbol.
func (p *textParser) debug1Frame(line []byte) (Frame, error) {
	var fields [][]byte
	for _, f := range bytes.Split(line, []byte("\t")) {
		if len(f) > 0 {
			fields = append(fields, f)
		}
	}
	if len(fields) < 2 || string(fields[0]) != "#" || !bytes.HasPrefix(fields[1], []byte("0x")) {
		return Frame{}, p.errorf("want a frame such as \"#\\t0x4f0224\\tmain.f+0x44\\tmain.go:12\", got %q", line)
	}
	if len(fields) == 2 {
		return Frame{Func: p.str(fields[1])}, nil // no symbol: keep the address
	}
	if len(fields) != 4 {
		return Frame{}, p.errorf("want a frame such as \"#\\t0x4f0224\\tmain.f+0x44\\tmain.go:12\", got %q", line)
	}
	fn := fields[2]
	if i := bytes.LastIndex(fn, []byte("+0x")); i > 0 {
		fn = fn[:i]
	}
	file, lineNo, ok := splitFileLine(fields[3])
	if !ok {
		return Frame{}, p.errorf("want file:line in %q", line)
	}
	return Frame{Func: p.str(fn), File: p.str(file), Line: lineNo}, nil
}

// callState returns the state the runtime prints for a goroutine blocked in
// the call fn, to infer states in the forms that do not print them.
func callState(fn string) (string, bool) {
	switch fn {
	case "runtime.chanrecv1", "runtime.chanrecv2":
		return "chan receive", true
	case "runtime.chansend1":
		return "chan send", true
	case "runtime.selectgo":
		return "select", true
	case "runtime.block":
		return "select (no cases)", true
	case "internal/sync.runtime_SemacquireMutex", "sync.runtime_SemacquireMutex":
		return "sync.Mutex.Lock", true
	case "sync.runtime_SemacquireRWMutexR":
		return "sync.RWMutex.RLock", true
	case "sync.runtime_SemacquireRWMutex":
		return "sync.RWMutex.Lock", true
	case "sync.runtime_SemacquireWaitGroup":
		return "sync.WaitGroup.Wait", true
	case "sync.runtime_notifyListWait":
		return "sync.Cond.Wait", true
	case "sync.runtime_Semacquire":
		return "semacquire", true
	case "time.Sleep":
		return "sleep", true
	case "internal/poll.runtime_pollWait", "runtime.netpollblock":
		return "IO wait", true
	case "syscall.Syscall", "syscall.Syscall6", "internal/runtime/syscall.Syscall6":
		return "syscall", true
	case "runtime.goroutineProfileWithLabels", "runtime.pprof_goroutineProfileWithLabels":
		return "running", true // the goroutine writing the profile
	}
	return "", false
}

// inferState returns the state of a goroutine blocked in a known call near
// the top of its stack, or "" when none shows before the program's own code.
func inferState(stack []Frame) string {
	for _, f := range stack {
		if s, ok := callState(f.Func); ok {
			return s
		}
		if !standardLibrary(f.Func) {
			break
		}
	}
	return ""
}

// standardLibrary reports whether the function fn is in the standard library:
// its package path's first element has no dot, and it is not package main.
func standardLibrary(fn string) bool {
	if i := strings.IndexAny(fn, "[("); i >= 0 {
		fn = fn[:i] // type parameters and receivers may hold other paths
	}
	name := fn
	if i := strings.LastIndexByte(fn, '/'); i >= 0 {
		if strings.Contains(fn[:strings.IndexByte(fn, '/')], ".") {
			return false
		}
		name = fn[i+1:]
	}
	name, _, _ = strings.Cut(name, ".")
	return name != "main" && name != ""
}

// IsGoroutineText reports whether data looks like one of the text forms
// ParseGoroutineText reads, by its beginning: a debug=1 header, a goroutine
// header, or the first line of a crash (a signal, panic or fatal error) with
// a goroutine header within the first 64 KiB. It is cheap, for detecting what
// an input is; ParseGoroutineText decides.
func IsGoroutineText(data []byte) bool {
	const sniff = 64 << 10
	data = data[:min(len(data), sniff)]
	s := bytes.TrimLeft(data, " \t\r\n")
	if bytes.HasPrefix(s, []byte(goroutineProfileHeader)) || bytes.HasPrefix(s, []byte(goroutineLeakProfileHeader)) {
		return true
	}
	first, _, _ := bytes.Cut(s, []byte("\n"))
	if _, ok, err := parseGoroutineHeader(bytes.TrimSuffix(first, []byte("\r"))); ok && err == nil {
		return true
	}
	crash := false
	for _, prefix := range []string{"SIG", "panic: ", "fatal error: ", "unexpected fault address ", "runtime: "} {
		crash = crash || bytes.HasPrefix(s, []byte(prefix))
	}
	if !crash {
		return false
	}
	for rest := s; ; {
		i := bytes.Index(rest, []byte("\ngoroutine "))
		if i < 0 {
			return false
		}
		rest = rest[i+1:]
		line, _, _ := bytes.Cut(rest, []byte("\n"))
		if _, ok, err := parseGoroutineHeader(bytes.TrimSuffix(line, []byte("\r"))); ok && err == nil {
			return true
		}
	}
}

// IsGoroutineProfile reports whether a parsed profile is a goroutine profile
// (its period or first sample type is "goroutine"), and whether it is the
// goroutineleak one.
func IsGoroutineProfile(p *profile.Profile) (goroutine, leak bool) {
	if p == nil {
		return false, false
	}
	var types []string
	if p.PeriodType != nil {
		types = append(types, p.PeriodType.Type)
	}
	if len(p.SampleType) > 0 && p.SampleType[0] != nil {
		types = append(types, p.SampleType[0].Type)
	}
	for _, t := range types {
		switch t {
		case "goroutine":
			return true, false
		case "goroutineleak":
			return true, true
		}
	}
	return false, false
}

// GoroutinesFromProfile converts a parsed goroutine or goroutineleak profile
// (the debug=0 protobuf form, or the debug=1 text that profile.Parse also
// reads) into a dump: one Goroutine per sample, its Count the sample's value,
// its State inferred from the stack (see Goroutine.State).
func GoroutinesFromProfile(p *profile.Profile) (*GoroutineDump, error) {
	goroutine, leak := IsGoroutineProfile(p)
	if !goroutine {
		return nil, fmt.Errorf("not a goroutine profile: %s", profileTypes(p))
	}
	value := 0
	for i, st := range p.SampleType {
		if st != nil && (st.Type == "goroutine" || st.Type == "goroutineleak") {
			value = i
			break
		}
	}
	d := &GoroutineDump{Leak: leak, Form: "proto"}
	if p.TimeNanos != 0 {
		d.Time = time.Unix(0, p.TimeNanos)
	}
	for i, s := range p.Sample {
		if s == nil || value >= len(s.Value) {
			return nil, fmt.Errorf("goroutine profile sample %d: want a value for each sample type", i)
		}
		n := s.Value[value]
		if n < 0 || n > int64(maxGoroutines-d.Total) {
			return nil, fmt.Errorf("goroutine profile sample %d: bad goroutine count %d", i, n)
		}
		if n == 0 {
			continue // a sample merged away
		}
		g := Goroutine{Count: int(n), Leaked: leak}
		for _, loc := range s.Location {
			if loc == nil {
				continue
			}
			if len(loc.Line) == 0 {
				g.Stack = append(g.Stack, Frame{Func: fmt.Sprintf("%#x", loc.Address)})
			}
			for _, l := range loc.Line { // innermost (inlined) first
				f := Frame{Line: int(l.Line)}
				if l.Function != nil {
					f.Func, f.File = l.Function.Name, l.Function.Filename
				}
				if !wrapperFrame(f.Func) {
					g.Stack = append(g.Stack, f)
				}
			}
		}
		for k, v := range s.Label {
			if g.Labels == nil {
				g.Labels = make(map[string]string)
			}
			g.Labels[k] = strings.Join(v, ",")
		}
		g.State = inferState(g.Stack)
		d.Goroutines = append(d.Goroutines, g)
		d.Total += g.Count
	}
	return d, nil
}

// maxGoroutines bounds the counts a profile may claim, so that sums fit an int
// on every platform.
const maxGoroutines = 1<<31 - 1

// profileTypes describes a profile's types for an error message.
func profileTypes(p *profile.Profile) string {
	if p == nil {
		return "no profile"
	}
	var types []string
	for _, st := range p.SampleType {
		if st != nil {
			types = append(types, st.Type+"/"+st.Unit)
		}
	}
	if len(types) == 0 {
		return "no sample types"
	}
	return "sample types " + strings.Join(types, ", ")
}

// GoroutineGroup is goroutines with the same state and stack, the way
// panicparse buckets them: a thousand goroutines parked at one line are one
// group.
type GoroutineGroup struct {
	State string
	// Leaked is true when the group's goroutines are leaked (Goroutine.Leaked).
	Leaked    bool
	Stack     []Frame
	CreatedBy Frame
	Elided    int
	// Count is how many goroutines the group holds.
	Count int
	// MinWait and MaxWait bound the members' waits.
	MinWait, MaxWait time.Duration
	// Locked counts the members locked to their thread.
	Locked int
	// IDs are the first few members' ids, as examples; empty in forms
	// without ids.
	IDs []int64
	// Labels are the labels every member has, with the same value.
	Labels map[string]string
}

// groupIDs is how many example ids a group keeps.
const groupIDs = 5

// GroupGoroutines groups a dump's goroutines by state, leaked mark, stack
// (functions, files and lines), elision and creator, and returns the groups
// with the largest Count first; groups of equal Count keep the order of their
// first members in the dump.
func GroupGoroutines(d *GoroutineDump) []GoroutineGroup {
	if d == nil {
		return nil
	}
	var groups []GoroutineGroup
	index := make(map[string]int)
	// The key holds each string after its length, so no two keys collide.
	var key []byte
	str := func(s string) { key = append(append(strconv.AppendInt(key, int64(len(s)), 10), ':'), s...) }
	num := func(n int) { key = append(strconv.AppendInt(key, int64(n), 10), ',') }
	frame := func(f Frame) { str(f.Func); str(f.File); num(f.Line) }
	for _, g := range d.Goroutines {
		key = strconv.AppendBool(key[:0], g.Leaked)
		str(g.State)
		num(g.Elided)
		frame(g.CreatedBy)
		for _, f := range g.Stack {
			frame(f)
		}
		i, ok := index[string(key)] // no allocation to look up
		if !ok {
			i = len(groups)
			index[string(key)] = i
			groups = append(groups, GoroutineGroup{
				State: g.State, Leaked: g.Leaked, Stack: g.Stack, CreatedBy: g.CreatedBy, Elided: g.Elided,
				MinWait: g.Wait, MaxWait: g.Wait, Labels: maps.Clone(g.Labels),
			})
		}
		gr := &groups[i]
		gr.Count += max(g.Count, 1)
		gr.MinWait, gr.MaxWait = min(gr.MinWait, g.Wait), max(gr.MaxWait, g.Wait)
		if g.Locked {
			gr.Locked += max(g.Count, 1)
		}
		if g.ID != 0 && len(gr.IDs) < groupIDs {
			gr.IDs = append(gr.IDs, g.ID)
		}
		for k, v := range gr.Labels {
			if w, ok := g.Labels[k]; !ok || w != v {
				delete(gr.Labels, k)
			}
		}
	}
	for i := range groups {
		if len(groups[i].Labels) == 0 {
			groups[i].Labels = nil
		}
	}
	slices.SortStableFunc(groups, func(a, b GoroutineGroup) int { return cmp.Compare(b.Count, a.Count) })
	return groups
}

// Defaults for GoroutineOptions.
const (
	DefaultBlockedFor = 10 * time.Minute
	DefaultLargeGroup = 100
)

// GoroutineOptions tunes GoroutineFindings. Zero values mean the defaults;
// negative values turn the rule off.
type GoroutineOptions struct {
	// BlockedFor: a group blocked at least this long in a channel operation,
	// a select, a lock, a wait group, a condition or a semaphore, with no
	// timer in its stack, is a finding. 0 means DefaultBlockedFor. Only
	// debug=2 and crash dumps say how long goroutines have waited.
	BlockedFor time.Duration
	// LargeGroup: a group of at least this many identical goroutines is a
	// finding. 0 means DefaultLargeGroup.
	LargeGroup int
}

func (o GoroutineOptions) withDefaults() GoroutineOptions {
	if o.BlockedFor == 0 {
		o.BlockedFor = DefaultBlockedFor
	}
	if o.LargeGroup == 0 {
		o.LargeGroup = DefaultLargeGroup
	}
	return o
}

// blockingState reports whether goroutines in state wait for another
// goroutine to do something: only it can wake them.
func blockingState(state string) bool {
	switch state {
	case "chan receive", "chan send", "chan receive (nil chan)", "chan send (nil chan)",
		"select", "select (no cases)",
		"sync.Mutex.Lock", "sync.RWMutex.RLock", "sync.RWMutex.Lock",
		"sync.WaitGroup.Wait", "sync.Cond.Wait", "semacquire":
		return true
	}
	return false
}

// GoroutineFindings returns the goroutine findings (KindGoroutine) of one
// dump, at most one per group (see GroupGoroutines):
//
//   - leaked goroutines (a goroutineleak profile, or "(leaked)" in a dump):
//     an error, since nothing can ever wake them;
//   - a group blocked at least opts.BlockedFor in a blocking state with no
//     timer (no time.* frame) in its stack: a warning. The main goroutine
//     (id 1) is exempt: daemons park it on a signal channel for good;
//   - a group of at least opts.LargeGroup goroutines: a warning when they
//     block, info otherwise (a busy server has many goroutines in IO wait).
//
// The subject names the state and the top frame of the program's own code,
// e.g. "goroutines blocked in chan receive at main.worker (main.go:42)"; the
// owner is the creator and the common labels. The evidence holds the stack
// and, in Values, when the dump says, "min_wait_seconds" and
// "max_wait_seconds". The signature comes from Signature with the state as
// key, so the same group in another dump of the same form matches.
func GoroutineFindings(d *GoroutineDump, opts GoroutineOptions) []Finding {
	opts = opts.withDefaults()
	var fs []Finding
	for _, g := range GroupGoroutines(d) {
		var prefix string
		var sev Severity
		switch blocking := blockingState(g.State); {
		case g.Leaked:
			prefix, sev = "leaked goroutines blocked", SeverityError
		case blocking && opts.BlockedFor > 0 && g.MaxWait >= opts.BlockedFor && !hasTimer(g.Stack) && !(len(g.IDs) > 0 && g.IDs[0] == 1 && g.Count == 1):
			prefix, sev = "goroutines blocked", SeverityWarning
		case opts.LargeGroup > 0 && g.Count >= opts.LargeGroup:
			prefix, sev = "goroutines", SeverityInfo
			if blocking {
				prefix, sev = "goroutines blocked", SeverityWarning
			}
		default:
			continue
		}
		f := groupFinding(g, goroutineSubject(prefix, g.State, g.Stack, g.CreatedBy), sev)
		if g.Leaked {
			f.Suggestion = "the runtime found nothing that can wake them: " + f.Suggestion
		}
		fs = append(fs, f)
	}
	Sort(fs)
	return fs
}

// groupFinding builds the finding about a group; the caller decides the
// subject and severity.
func groupFinding(g GoroutineGroup, subject string, sev Severity) Finding {
	var values map[string]float64 // the count is Finding.Count
	if g.MaxWait > 0 {
		values = map[string]float64{"min_wait_seconds": g.MinWait.Seconds(), "max_wait_seconds": g.MaxWait.Seconds()}
	}
	return Finding{
		Kind:       KindGoroutine,
		Severity:   sev,
		Subject:    subject,
		Owner:      goroutineOwner(g.CreatedBy, g.Labels),
		Count:      g.Count,
		Evidence:   Evidence{Values: values, Stack: g.Stack},
		Suggestion: goroutineSuggestion(g.State),
		Signature:  goroutineSignature(g.State, g.Stack),
	}
}

// goroutineSignature identifies a group across dumps: its state and the
// functions of its top frames.
func goroutineSignature(state string, stack []Frame) string {
	return Signature(KindGoroutine, state, stack)
}

// hasTimer reports whether a stack shows a timer that will wake it: a
// frame of package time, except time.goFunc, the bottom of the goroutine a
// time.AfterFunc starts, which waits like any other once it runs.
func hasTimer(stack []Frame) bool {
	for _, f := range stack {
		if strings.HasPrefix(f.Func, "time.") && f.Func != "time.goFunc" {
			return true
		}
	}
	return false
}

// goroutineSubject says "PREFIX in STATE at FRAME", e.g. "goroutines blocked
// in select at main.worker (main.go:42)", with the top frame of the program's
// own code, or the creator for an empty stack.
func goroutineSubject(prefix, state string, stack []Frame, createdBy Frame) string {
	var b strings.Builder
	b.WriteString(prefix)
	if state != "" {
		b.WriteString(" in " + state)
	}
	switch top, ok := userFrame(stack); {
	case ok:
		b.WriteString(" at " + top.String())
	case createdBy.Func != "":
		b.WriteString(" created by " + createdBy.String())
	}
	return b.String()
}

// userFrame returns the first frame of stack outside the standard library,
// or, if there is none, the first that TopFrames keeps: a group of
// goroutines waiting for a mutex is named after the function that locks it,
// not after sync.(*Mutex).Lock.
func userFrame(stack []Frame) (Frame, bool) {
	for _, f := range stack {
		if !standardLibrary(f.Func) && !hiddenFrame(f) {
			return f, true
		}
	}
	if top := TopFrames(stack, 1); len(top) > 0 {
		return top[0], true
	}
	return Frame{}, false
}

// goroutineOwner names what started a group and the labels its members share:
// `created by main.main (main.go:12) {tenant="a", worker="pool"}`.
func goroutineOwner(createdBy Frame, labels map[string]string) string {
	var parts []string
	if createdBy.Func != "" {
		parts = append(parts, "created by "+createdBy.String())
	}
	if len(labels) > 0 {
		var kv []string
		for _, k := range slices.Sorted(maps.Keys(labels)) {
			kv = append(kv, fmt.Sprintf("%s=%q", k, labels[k]))
		}
		parts = append(parts, "{"+strings.Join(kv, ", ")+"}")
	}
	return strings.Join(parts, " ")
}

// goroutineSuggestion says what usually keeps goroutines in state.
func goroutineSuggestion(state string) string {
	switch state {
	case "chan receive", "chan receive (nil chan)":
		return "nothing sends on or closes the channel they receive from: close it when the sender is done, or also select on ctx.Done()"
	case "chan send", "chan send (nil chan)":
		return "nothing receives from the channel they send on: give every send a receiver or a buffer slot, or also select on ctx.Done()"
	case "select", "select (no cases)":
		return "no case of the select ever becomes ready: add a ctx.Done() or quit-channel case and return on it"
	case "sync.Mutex.Lock", "sync.RWMutex.RLock", "sync.RWMutex.Lock":
		return "they wait for a lock that is never released: find the path that returns without Unlock, and defer the Unlock"
	case "sync.WaitGroup.Wait":
		return "Done is called fewer times than Add: Add before each go statement and defer Done in the goroutine"
	case "sync.Cond.Wait":
		return "nobody signals the condition: Signal or Broadcast on every change, and on shutdown"
	case "semacquire":
		return "they wait for a semaphore that is never released: release it on every path"
	case "IO wait":
		return "many goroutines wait on connections: set read deadlines and close connections that are done"
	}
	return "many goroutines share this stack: bound how many are started (a worker pool or a semaphore) and make sure each one returns"
}

// GoroutineSeries follows goroutine groups through a series of dumps, which
// must carry their times (GoroutineDump.Time: the proto form does; set it for
// text dumps). It returns the series "goroutines" (the total) and one series
// per group signature, named after its state and top function, with the
// group's count in each dump (0 where it is absent), each analysed with
// AnalyzeTrend. Each group found growing is a warning finding of
// KindGoroutine, with the series and its trend as evidence; if the total
// grows but no group does, the total is the finding.
func GoroutineSeries(dumps []*GoroutineDump, opts TrendOptions) ([]Series, []Finding) {
	type track struct {
		state  string
		stack  []Frame
		points []Point
		last   int
	}
	total := Series{Name: "goroutines", Unit: "goroutines"}
	tracks := make(map[string]*track)
	var order []string
	for _, d := range dumps {
		if d == nil {
			continue
		}
		total.Points = append(total.Points, Point{Time: d.Time, Value: float64(d.Total)})
		counts := make(map[string]int)
		for _, g := range GroupGoroutines(d) {
			sig := goroutineSignature(g.State, g.Stack)
			t := tracks[sig]
			if t == nil {
				t = &track{}
				tracks[sig] = t
				order = append(order, sig)
			}
			t.state, t.stack = g.State, g.Stack // the latest dump's
			counts[sig] += g.Count
		}
		for _, sig := range order {
			t := tracks[sig]
			t.last = counts[sig]
			t.points = append(t.points, Point{Time: d.Time, Value: float64(t.last)})
		}
	}
	n := len(total.Points)
	// Groups first seen late have no points for the dumps before: zeros.
	for _, sig := range order {
		t := tracks[sig]
		if missing := n - len(t.points); missing > 0 {
			zeros := make([]Point, missing, n)
			for i := range zeros {
				zeros[i] = Point{Time: total.Points[i].Time}
			}
			t.points = append(zeros, t.points...)
		}
	}
	slices.SortStableFunc(order, func(a, b string) int { return cmp.Compare(tracks[b].last, tracks[a].last) })

	series := []Series{total}
	var fs []Finding
	names := map[string]bool{total.Name: true}
	for _, sig := range order {
		t := tracks[sig]
		name := goroutineSubject("goroutines", t.state, nil, Frame{})
		if top, ok := userFrame(t.stack); ok {
			name += " at " + top.Func
		}
		if names[name] {
			name += " #" + sig
		}
		names[name] = true
		s := Series{Name: name, Unit: "goroutines", Points: t.points}
		tr := s.Analyze(opts)
		series = append(series, s)
		if tr.Verdict != VerdictGrowing {
			continue
		}
		fs = append(fs, Finding{
			Kind:       KindGoroutine,
			Severity:   SeverityWarning,
			Subject:    goroutineSubject("growing goroutines", t.state, t.stack, Frame{}),
			Count:      max(t.last, 1),
			Evidence:   Evidence{Series: name, Trend: &tr, Stack: t.stack},
			Suggestion: "more goroutines park here in every dump: " + goroutineSuggestion(t.state),
			Signature:  Signature(KindGoroutine, "growing "+t.state, t.stack),
		})
	}
	if tr := series[0].Analyze(opts); tr.Verdict == VerdictGrowing && len(fs) == 0 {
		last := 0
		if n > 0 {
			last = int(total.Points[n-1].Value)
		}
		fs = append(fs, Finding{
			Kind:       KindGoroutine,
			Severity:   SeverityWarning,
			Subject:    "goroutines",
			Count:      max(last, 1),
			Evidence:   Evidence{Series: total.Name, Trend: &tr},
			Suggestion: growthSuggestion("goroutines"),
			Signature:  Signature(KindGoroutine, "growing goroutines", nil),
		})
	}
	Sort(fs)
	return series, fs
}
