// Package stack reads the goroutine tracebacks the Go runtime prints: the
// debug=2 goroutine profile and runtime.Stack, crash output (a panic, a fatal
// error, a SIGQUIT dump) amid whatever else the program printed, and the
// debug=1 goroutine profile. It is leakcheck's one parser of that text: the
// report package reads untrusted dumps with it in Strict mode, and the test
// helper reads its own process with it in Lenient mode.
//
// It imports only the standard library and tracker (for Frame), so a test
// binary that uses it pulls in no renderer.
package stack

import (
	"bytes"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/leakcheck/leakcheck/tracker"
)

// Frame is one frame of a stack: function, file and line.
type Frame = tracker.Frame

// Goroutine is one goroutine of a traceback, or, in the debug=1 form, which
// aggregates, one stack that Count goroutines share.
type Goroutine struct {
	// ID is the goroutine's id; 0 in the debug=1 and protobuf forms.
	ID int64
	// State is the wait reason or status as the runtime prints it, without
	// the "(leaked)" and "(scan)" marks: "chan receive", "select", "IO
	// wait", "running", ... Empty in debug=1, which prints none.
	State string
	// Wait is how long the goroutine has been blocked, from the header's
	// "N minutes"; 0 when absent (under a minute, or not printed).
	Wait time.Duration
	// Locked reports "locked to thread".
	Locked bool
	// Leaked reports the runtime's "(leaked)" mark: its leak detector found
	// nothing that can ever wake the goroutine. Every goroutine of a
	// goroutineleak profile is leaked.
	Leaked bool
	// Bubble is the synctest bubble's id ("synctest bubble N"); 0 when none.
	Bubble int64
	// Labels are the pprof labels: "labels:{...}" in a header (printed only
	// under GODEBUG=tracebacklabels=1) or "# labels: {...}" in debug=1.
	Labels map[string]string
	// Stack is the goroutine's stack, innermost first, every frame printed.
	Stack []Frame
	// CreatedBy is the go statement that started the goroutine; Func is
	// empty when the traceback does not say.
	CreatedBy Frame
	// CreatorID is the goroutine that ran that go statement ("in goroutine
	// N"); 0 when not printed.
	CreatorID int64
	// Elided is how many frames the runtime left out of a deep stack.
	Elided int
	// Count is how many goroutines this entry stands for: 1 in a
	// traceback, the record's count in debug=1.
	Count int
}

// Mode says what a parser does with text it does not understand.
type Mode int

const (
	// Strict returns an error naming the first line inside a goroutine
	// block, or of a debug=1 profile, that does not parse. Text outside
	// goroutine blocks is skipped in both modes.
	Strict Mode = iota
	// Lenient skips what it does not understand and never fails: for
	// reading the process's own tracebacks, whose format may grow.
	Lenient
)

// Dump is what Parse read.
type Dump struct {
	// Form is "debug=1" (the count profile), "debug=2" (nothing but
	// goroutine blocks) or "crash" (goroutine blocks amid other text).
	Form string
	// Leak is true for a "goroutineleak profile: total N" header.
	Leak bool
	// Total is the number of goroutines: the sum of the Counts.
	Total      int
	Goroutines []Goroutine
}

// The text forms' fixed parts.
const (
	profileHeader     = "goroutine profile: total "
	leakProfileHeader = "goroutineleak profile: total "
	stackUnavailable  = "\tgoroutine running on other thread; stack unavailable"
)

// IsProfileHeader reports whether line begins the debug=1 form.
func IsProfileHeader(line []byte) bool {
	line = bytes.TrimLeft(line, " \t\r\n")
	return bytes.HasPrefix(line, []byte(profileHeader)) || bytes.HasPrefix(line, []byte(leakProfileHeader))
}

// Parse reads a goroutine traceback in any of the text forms the package
// doc lists. The blocks of goroutine 0 (a thread's system stack in crash
// dumps, not a goroutine) and the creators' stacks that
// GODEBUG=tracebackancestors adds are skipped. In Strict mode an error names
// the line and what was expected there; in Lenient mode the error is nil.
func Parse(data []byte, mode Mode) (*Dump, error) {
	p := &parser{rest: data, strict: mode == Strict, intern: make(map[string]string)}
	if IsProfileHeader(data) {
		return p.debug1()
	}
	first := bytes.TrimLeft(data, " \t\r\n")
	// Other profiles' legacy text forms: "heap profile: 1: 2 [...]",
	// "threadcreate profile: total 5".
	if i := bytes.Index(first, []byte(" profile: ")); i > 0 && bytes.IndexAny(first[:i], " \t\r\n") < 0 {
		if p.strict {
			return nil, fmt.Errorf("not a goroutine profile: %q", first[:i+len(" profile")])
		}
		return &Dump{Form: "debug=1"}, nil
	}
	return p.traceback()
}

// parser reads a text form line by line.
type parser struct {
	rest   []byte
	line   int // number of the line last returned
	strict bool
	intern map[string]string // one string per distinct function and file name
}

// next returns the next line without its line ending, or false at the end.
func (p *parser) next() ([]byte, bool) {
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
func (p *parser) peek() ([]byte, bool) {
	rest, line := p.rest, p.line
	l, ok := p.next()
	p.rest, p.line = rest, line
	return l, ok
}

// str returns b as a string, the same string for equal names.
func (p *parser) str(b []byte) string {
	if s, ok := p.intern[string(b)]; ok {
		return s
	}
	s := string(b)
	p.intern[s] = s
	return s
}

// errorf returns an error about the line last read; format may use %w.
func (p *parser) errorf(format string, args ...any) error {
	return fmt.Errorf("goroutine dump line %d: "+format, append([]any{p.line}, args...)...)
}

// traceback parses the debug=2 and crash forms.
func (p *parser) traceback() (*Dump, error) {
	d := &Dump{Form: "debug=2"}
	for {
		line, ok := p.next()
		if !ok {
			break
		}
		g, isHeader, err := ParseHeader(line)
		if !isHeader {
			if len(bytes.TrimSpace(line)) > 0 {
				d.Form = "crash" // text that a full dump does not have
			}
			continue
		}
		if err != nil {
			if p.strict {
				return nil, p.errorf("%w", err)
			}
			p.skipBlock()
			continue
		}
		trailing, err := p.block(&g)
		if err != nil {
			return nil, err
		}
		if trailing {
			d.Form = "crash"
		}
		if g.ID == 0 {
			continue // a thread's g0 or signal stack, in crash dumps
		}
		d.Goroutines = append(d.Goroutines, g)
		d.Total++
	}
	if len(d.Goroutines) == 0 && p.strict {
		return nil, errors.New(`no goroutines found: want "goroutine profile: total N" (debug=1), or goroutine headers such as "goroutine 1 [running]:" (debug=2 and crash dumps)`)
	}
	return d, nil
}

// skipBlock skips lines up to a blank line or the end.
func (p *parser) skipBlock() {
	for l, ok := p.next(); ok && len(l) > 0; l, ok = p.next() {
	}
}

// Headers calls yield with each goroutine header of a traceback, in order,
// as ParseHeader reads it (err is that of a line that begins like a header
// but cannot be read), until yield returns false. Other lines are skipped.
func Headers(text []byte, yield func(g Goroutine, err error) bool) {
	for rest := text; len(rest) > 0; {
		line := rest
		if i := bytes.IndexByte(rest, '\n'); i >= 0 {
			line, rest = rest[:i], rest[i+1:]
		} else {
			rest = nil
		}
		if !bytes.HasPrefix(line, []byte("goroutine ")) {
			continue
		}
		g, ok, err := ParseHeader(bytes.TrimSuffix(line, []byte("\r")))
		if ok && !yield(g, err) {
			return
		}
	}
}

// ParseHeader parses a goroutine header, "goroutine 7 [chan receive, 3
// minutes, locked to thread labels:{"k": "v"}]:", with the " gp=... m=...
// mp=..." that tracebacks at GOTRACEBACK=system or in a crash add after the
// id. isHeader is false when line is not a header at all; err says what is
// wrong with a line that begins like one.
func ParseHeader(line []byte) (g Goroutine, isHeader bool, err error) {
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
	if err := parseStatus(&g, string(rest[open+2:len(rest)-2])); err != nil {
		return g, true, fmt.Errorf("goroutine header %q: %w", line, err)
	}
	return g, true, nil
}

// parseStatus parses what a goroutine header has between its brackets: the
// status with its marks, then ", N minutes", ", locked to thread", ",
// synctest bubble N", then " labels:{...}".
func parseStatus(g *Goroutine, s string) error {
	if i := strings.Index(s, " labels:{"); i >= 0 {
		labels, rest, err := ParseLabels(s[i+len(" labels:"):])
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
			if err != nil || n < 0 || n > maxWaitMinutes {
				return fmt.Errorf("want a number of minutes in %q", note)
			}
			g.Wait = time.Duration(n) * time.Minute
		case strings.HasPrefix(note, "synctest bubble "):
			n, err := strconv.ParseInt(strings.TrimPrefix(note, "synctest bubble "), 10, 64)
			if err != nil || n < 0 {
				return fmt.Errorf("want a bubble id in %q", note)
			}
			g.Bubble = n
		}
		// Notes that later releases add are skipped.
	}
	return nil
}

// maxWaitMinutes keeps a Wait in a time.Duration.
const maxWaitMinutes = int64(1<<63-1) / int64(time.Minute)

// ParseLabels parses a label set as the runtime prints it, {"k": "v", ...}
// in headers or {"k":"v", ...} in debug=1, both with Go-quoted strings, and
// returns what follows the closing brace.
func ParseLabels(s string) (map[string]string, string, error) {
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

// block reads a goroutine block's lines after its header, up to a blank line
// or the end: call lines each followed by a tab-indented file line, and
// "created by", elision and ancestor lines. A line that is none of these and
// has no file line after it ends the block: text the program or the go
// command printed after the traceback, such as "exit status 2". trailing
// reports such a line.
func (p *parser) block(g *Goroutine) (trailing bool, err error) {
	for {
		line, ok := p.next()
		if !ok || len(line) == 0 {
			return false, nil
		}
		switch {
		case bytes.HasPrefix(line, []byte("created by ")):
			fn := line[len("created by "):]
			if i := bytes.LastIndex(fn, []byte(" in goroutine ")); i >= 0 {
				id, err := strconv.ParseInt(string(fn[i+len(" in goroutine "):]), 10, 64)
				if err == nil && id >= 0 {
					g.CreatorID = id
				} else if p.strict {
					return false, p.errorf("want a goroutine id in %q", line)
				}
				fn = fn[:i]
			}
			if len(fn) == 0 && p.strict {
				return false, p.errorf("want a function after \"created by\"")
			}
			f, err := p.fileLine(p.str(fn))
			if err != nil {
				return false, err
			}
			g.CreatedBy = f
		case bytes.HasPrefix(line, []byte("...")) && bytes.HasSuffix(line, []byte(" frames elided...")):
			n, err := strconv.Atoi(string(line[len("...") : len(line)-len(" frames elided...")]))
			if err == nil && n >= 0 {
				g.Elided += n
			} else if p.strict {
				return false, p.errorf("want a number of frames in %q", line)
			}
		case bytes.HasPrefix(line, []byte("[originating from goroutine ")):
			// GODEBUG=tracebackancestors: the stacks of the goroutines that
			// created this one, up to the end of the block. Not its own stack.
			p.skipBlock()
			return false, nil
		case string(line) == stackUnavailable,
			bytes.HasPrefix(line, []byte("runtime: ")):
			// A goroutine running elsewhere when the dump was taken, and the
			// unwinder's own complaints about a stack it could not walk.
		case line[0] == '\t':
			if p.strict {
				return false, p.errorf("want a function call such as \"main.f(...)\" before file line %q", line)
			}
		default:
			fn, ok := callName(line)
			if !ok {
				if next, more := p.peek(); !more || len(next) == 0 || next[0] != '\t' {
					// Text after the traceback: the block ends before it.
					return true, nil
				}
				if p.strict {
					return false, p.errorf("want a function call such as \"main.f(...)\", got %q", line)
				}
				fn = line
			}
			f, err := p.fileLine(p.str(fn))
			if err != nil {
				return false, err
			}
			g.Stack = append(g.Stack, f)
		}
	}
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
// dumps. In Lenient mode a missing or unreadable file line leaves the file
// empty.
func (p *parser) fileLine(fn string) (Frame, error) {
	if !p.strict {
		if l, ok := p.peek(); !ok || len(l) == 0 || l[0] != '\t' {
			return Frame{Func: fn}, nil
		}
	}
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
		if !p.strict {
			return Frame{Func: fn, File: p.str(s)}, nil
		}
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
	digits := s[i+1:]
	if len(digits) == 0 || len(digits) > 9 {
		return nil, 0, false
	}
	n := 0
	for _, c := range digits {
		if c < '0' || c > '9' {
			return nil, 0, false
		}
		n = n*10 + int(c-'0')
	}
	return s[:i], n, true
}

// debug1 parses the debug=1 form: the header, then records of a count and
// the stack's addresses ("3 @ 0x45e2ce 0x42b5b4"), optional "# labels:
// {...}", and one "#\t0xPC\tfunc+0xOFF\tfile:line" line per frame, each
// record ending with a blank line.
func (p *parser) debug1() (*Dump, error) {
	d := &Dump{Form: "debug=1"}
	var header []byte
	for {
		l, ok := p.next()
		if !ok {
			break
		}
		if len(bytes.TrimSpace(l)) > 0 {
			header = bytes.TrimSpace(l)
			break
		}
	}
	d.Leak = bytes.HasPrefix(header, []byte(leakProfileHeader))
	total, err := strconv.Atoi(string(header[bytes.LastIndexByte(header, ' ')+1:]))
	if err != nil || total < 0 {
		if p.strict {
			return nil, p.errorf("want a number of goroutines in %q", header)
		}
		total = maxGoroutines
	}
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
		if !ok || err != nil || count < 1 || count > total-d.Total {
			if !p.strict {
				continue
			}
			if ok && err == nil && count >= 1 {
				return nil, p.errorf("records count more goroutines than the header's total %d", total)
			}
			return nil, p.errorf("want a record such as \"3 @ 0x45e2ce 0x42b5b4\", got %q", line)
		}
		g := Goroutine{Count: count, Leaked: d.Leak}
		for {
			l, ok := p.peek()
			if !ok || len(l) == 0 || l[0] != '#' {
				break
			}
			p.next()
			if s, ok := bytes.CutPrefix(l, []byte("# labels: ")); ok {
				labels, rest, err := ParseLabels(string(s))
				switch {
				case err == nil && rest == "":
					g.Labels = labels
				case !p.strict:
				case err != nil:
					return nil, p.errorf("%w", err)
				default:
					return nil, p.errorf("want the end of the line after the labels, got %q", rest)
				}
				continue
			}
			f, err := p.debug1Frame(l)
			if err != nil {
				if p.strict {
					return nil, err
				}
				continue
			}
			g.Stack = append(g.Stack, f)
		}
		d.Goroutines = append(d.Goroutines, g)
		d.Total += count
	}
	if d.Total != total && p.strict {
		return nil, p.errorf("records count %d goroutines, but the header says total %d: is the profile truncated?", d.Total, total)
	}
	return d, nil
}

// maxGoroutines bounds the counts a profile may claim, so that sums fit an
// int on every platform.
const maxGoroutines = 1<<31 - 1

// debug1Frame parses "#\t0x4f0224\tmain.write+0x144\t\tmain.go:137", whose
// fields tabwriter separates by one tab or more, or "#\t0x4f0224" for an
// address without a symbol.
func (p *parser) debug1Frame(line []byte) (Frame, error) {
	// Up to four fields, without allocating: this runs for every frame of
	// every profile the test helper reads.
	var fields [4][]byte
	n := 0
	for rest := line; len(rest) > 0; {
		f := rest
		if i := bytes.IndexByte(rest, '\t'); i >= 0 {
			f, rest = rest[:i], rest[i+1:]
		} else {
			rest = nil
		}
		if len(f) == 0 {
			continue
		}
		if n == len(fields) {
			n++ // too many
			break
		}
		fields[n] = f
		n++
	}
	if n < 2 || string(fields[0]) != "#" || !bytes.HasPrefix(fields[1], []byte("0x")) || n == 3 || n > 4 {
		return Frame{}, p.errorf("want a frame such as \"#\\t0x4f0224\\tmain.f+0x44\\tmain.go:12\", got %q", line)
	}
	if n == 2 {
		return Frame{Func: p.str(fields[1])}, nil // no symbol: keep the address
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

// Hidden reports whether f is machinery that one form of a goroutine's
// stack shows and another does not, so that Trim gives one goroutine the
// same frames in every form: the runtime's unexported functions and the
// compiler's wrappers, which a default traceback leaves out while profiles
// keep them, and the wrappers of go statements ("main.main.gowrap1").
func Hidden(f Frame) bool {
	fn := f.Func
	if strings.HasPrefix(fn, "0x") {
		return false // an address without a symbol
	}
	if f.File == "<autogenerated>" || !strings.Contains(fn, ".") {
		return true
	}
	if rest, ok := strings.CutPrefix(fn, "runtime."); ok {
		r, _ := utf8.DecodeRuneInString(rest)
		return !unicode.IsUpper(r)
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

// Trim returns the frames of s that are not Hidden, or s itself when every
// frame is, so that a stack entirely in the runtime keeps its frames.
func Trim(s []Frame) []Frame {
	n := 0
	for _, f := range s {
		if !Hidden(f) {
			n++
		}
	}
	if n == len(s) || n == 0 {
		return s
	}
	out := make([]Frame, 0, n)
	for _, f := range s {
		if !Hidden(f) {
			out = append(out, f)
		}
	}
	return out
}

// All returns the traceback of every goroutine, as runtime.Stack writes it.
func All() []byte { return traceback(true, 64<<10, 64<<20) }

// AllSized is All for a caller that knows about how long the traceback is,
// from an earlier one: it starts from a buffer of size bytes (at least 4
// KiB), not 64 KiB, which a caller taking many tracebacks of a small process
// would otherwise allocate and clear every time. The runtime writes the
// traceback again, with the world stopped, into a buffer twice as large when
// one is too small.
func AllSized(size int) []byte { return traceback(true, max(size, 4<<10), 64<<20) }

// Current returns the calling goroutine's traceback.
func Current() []byte { return traceback(false, 4<<10, 1<<20) }

func traceback(all bool, size, limit int) []byte {
	buf := make([]byte, size)
	for {
		n := runtime.Stack(buf, all)
		if n < len(buf) || len(buf) >= limit {
			return buf[:n]
		}
		buf = make([]byte, 2*len(buf))
	}
}

// CurrentID returns the calling goroutine's id, or 0 if the runtime's
// header does not parse.
func CurrentID() int64 {
	var buf [64]byte
	n := runtime.Stack(buf[:], false)
	rest, ok := bytes.CutPrefix(buf[:n], []byte("goroutine "))
	if !ok {
		return 0
	}
	i := 0
	for i < len(rest) && '0' <= rest[i] && rest[i] <= '9' {
		i++
	}
	id, err := strconv.ParseInt(string(rest[:i]), 10, 64)
	if err != nil {
		return 0
	}
	return id
}
