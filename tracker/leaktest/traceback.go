package leaktest

import (
	"bytes"
	"runtime"
	"strconv"
	"strings"
)

// The goroutine profile carries stacks and labels but neither goroutine ids,
// wait states nor creators. Those come from the runtime's text tracebacks, as
// runtime.Stack and the debug=2 goroutine profile print them:
//
//	goroutine 18 [chan receive, 2 minutes, locked to thread labels:{"k": "v"}]:
//	example.com/pkg.worker(0xc000012345, {0x4f, 0x5})
//		/src/pkg/worker.go:14 +0x25
//	...3 frames elided...
//	created by example.com/pkg.Start in goroutine 7
//		/src/pkg/worker.go:9 +0x56
//
// The parser below reads that form and whatever it does not understand it
// skips: a line it cannot place never stops it, and nothing makes it panic.
// Labels are printed only under GODEBUG=tracebacklabels=1.

// frame is one function in a stack, leaf first.
type frame struct {
	Func string
	File string
	Line int
}

// tgoroutine is one goroutine of a text traceback.
type tgoroutine struct {
	id     uint64
	state  string            // wait reason, without durations and flags
	labels map[string]string // only when the runtime printed them
	frames []frame
	// elided counts frames the runtime left out; -1 when it did not say how
	// many ("...additional frames elided...").
	elided  int
	creator frame  // the go statement's function and place; zero when none
	parent  uint64 // goroutine that ran the go statement; 0 when not printed
}

// parseTraceback reads every goroutine in b, in order.
func parseTraceback(b []byte) []tgoroutine {
	var (
		gs      []tgoroutine
		cur     *tgoroutine
		pending = noPending // what the next location line belongs to
	)
	for len(b) > 0 {
		var line []byte
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line, b = b[:i], b[i+1:]
		} else {
			line, b = b, nil
		}
		line = bytes.TrimSuffix(line, []byte{'\r'})
		switch {
		case bytes.HasPrefix(line, []byte("goroutine ")):
			if g, ok := parseHeader(string(line)); ok {
				gs = append(gs, g)
				cur, pending = &gs[len(gs)-1], noPending
			}
		case cur == nil:
			// Outside a goroutine: panic messages, blank lines.
		case len(line) == 0:
			cur, pending = nil, noPending
		case line[0] == '\t' || line[0] == ' ':
			if pending == noPending {
				break
			}
			file, n := parseLocation(string(bytes.TrimSpace(line)))
			if pending == pendingCreator {
				cur.creator.File, cur.creator.Line = file, n
			} else {
				cur.frames[pending].File, cur.frames[pending].Line = file, n
			}
			pending = noPending
		case bytes.HasPrefix(line, []byte("created by ")):
			fn := string(line[len("created by "):])
			if i := strings.LastIndex(fn, " in goroutine "); i >= 0 {
				if id, err := strconv.ParseUint(fn[i+len(" in goroutine "):], 10, 64); err == nil {
					cur.parent = id
				}
				fn = fn[:i]
			}
			cur.creator = frame{Func: fn}
			pending = pendingCreator
		case bytes.HasPrefix(line, []byte("...")):
			cur.elided = addElided(cur.elided, string(line))
			pending = noPending
		default:
			cur.frames = append(cur.frames, frame{Func: funcName(string(line))})
			pending = len(cur.frames) - 1
		}
	}
	return gs
}

const (
	noPending      = -1
	pendingCreator = -2
)

// parseHeader reads a goroutine header: "goroutine ID [STATE...]:", where the
// runtime may put fields between the id and the bracket (gp=..., m=...) and,
// inside the bracket, after the state: ", N minutes", ", locked to thread",
// ", synctest bubble N", and " labels:{...}".
func parseHeader(line string) (tgoroutine, bool) {
	rest := line[len("goroutine "):]
	n := 0
	for n < len(rest) && rest[n] >= '0' && rest[n] <= '9' {
		n++
	}
	id, err := strconv.ParseUint(rest[:n], 10, 64)
	if err != nil {
		return tgoroutine{}, false
	}
	g := tgoroutine{id: id}
	open := strings.IndexByte(rest, '[')
	end := strings.LastIndexByte(rest, ']')
	if open < 0 || end < open {
		return g, true
	}
	inner := rest[open+1 : end]
	if i := strings.Index(inner, "labels:{"); i >= 0 {
		g.labels = parseLabels(inner[i+len("labels:"):])
		inner = inner[:i]
	}
	if i := strings.IndexByte(inner, ','); i >= 0 {
		inner = inner[:i]
	}
	g.state = strings.TrimSpace(inner)
	return g, true
}

// parseLabels reads {"key": "value", ...} as the runtime prints labels, and
// returns what it could read before anything unexpected.
func parseLabels(s string) map[string]string {
	s = strings.TrimPrefix(s, "{")
	m := make(map[string]string)
	for {
		s = strings.TrimLeft(s, " ,")
		if s == "" || s[0] == '}' {
			return m
		}
		k, rest, ok := cutQuoted(s)
		if !ok {
			return m
		}
		rest = strings.TrimLeft(rest, " ")
		if !strings.HasPrefix(rest, ":") {
			return m
		}
		v, rest, ok := cutQuoted(strings.TrimLeft(rest[1:], " "))
		if !ok {
			return m
		}
		m[k] = v
		s = rest
	}
}

// cutQuoted reads a Go-quoted string at the start of s.
func cutQuoted(s string) (val, rest string, ok bool) {
	q, err := strconv.QuotedPrefix(s)
	if err != nil {
		return "", s, false
	}
	val, err = strconv.Unquote(q)
	if err != nil {
		return "", s, false
	}
	return val, s[len(q):], true
}

// funcName strips the argument list from a frame line:
// "pkg.(*T).M[...](0xc0, {0x1, 0x2})" is "pkg.(*T).M[...]".
func funcName(line string) string {
	if !strings.HasSuffix(line, ")") {
		return line
	}
	depth := 0
	for i := len(line) - 1; i >= 0; i-- {
		switch line[i] {
		case ')':
			depth++
		case '(':
			depth--
			if depth == 0 {
				if i == 0 {
					return line
				}
				return line[:i]
			}
		}
	}
	return line
}

// parseLocation reads "/path/file.go:42 +0x1d" (the offset is optional).
func parseLocation(s string) (file string, line int) {
	if i := strings.LastIndex(s, " +0x"); i >= 0 {
		s = s[:i]
	}
	i := strings.LastIndexByte(s, ':')
	if i < 0 {
		return s, 0
	}
	n, err := strconv.Atoi(s[i+1:])
	if err != nil {
		return s, 0
	}
	return s[:i], n
}

// addElided adds the frames a "...N frames elided..." line reports to n.
func addElided(n int, line string) int {
	num, ok := strings.CutPrefix(line, "...")
	if !ok {
		return n
	}
	num, ok = strings.CutSuffix(num, " frames elided...")
	if !ok {
		if strings.Contains(line, "elided") && n == 0 {
			return -1
		}
		return n
	}
	k, err := strconv.Atoi(num)
	if err != nil || k < 0 || n < 0 {
		return n
	}
	return n + k
}

// currentGoroutine returns the calling goroutine as runtime.Stack prints it,
// with its id and, when the runtime printed it, the goroutine that created it.
func currentGoroutine() (tgoroutine, bool) {
	buf := make([]byte, 4<<10)
	for {
		n := runtime.Stack(buf, false)
		if n < len(buf) || len(buf) >= 1<<20 {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	gs := parseTraceback(buf)
	if len(gs) == 0 {
		return tgoroutine{}, false
	}
	return gs[0], true
}

// currentGoroutineID returns the calling goroutine's id, or 0.
func currentGoroutineID() uint64 {
	var buf [64]byte
	n := runtime.Stack(buf[:], false)
	line := buf[:n]
	if i := bytes.IndexByte(line, '\n'); i >= 0 {
		line = line[:i]
	}
	if !bytes.HasPrefix(line, []byte("goroutine ")) {
		return 0
	}
	g, _ := parseHeader(string(line))
	return g.id
}

// allGoroutinesText returns a text traceback of every goroutine.
func allGoroutinesText() []byte {
	buf := make([]byte, 64<<10)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) || len(buf) >= 64<<20 {
			return buf[:n]
		}
		buf = make([]byte, 2*len(buf))
	}
}
