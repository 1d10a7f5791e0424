package report

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestMatchGlob(t *testing.T) {
	tests := []struct {
		pattern, name string
		want          bool
	}{
		{"", "", true},
		{"", "a", false},
		{"*", "", true},
		{"*", "anything / at all", true},
		{"socket*", "socket 127.0.0.1:6379", true},
		{"socket*", "file socket", false},
		{"*6379", "socket 127.0.0.1:6379", true},
		{"socket 10.0.0.?:6379", "socket 10.0.0.7:6379", true},
		{"socket 10.0.0.?:6379", "socket 10.0.0.17:6379", false},
		{"net/http.(*Transport).dialConn", "net/http.(*Transport).dialConn", true},
		{"*dialConn", "net/http.(*Transport).dialConn", true},
		{"net/*.dial*", "net/http.(*Transport).dialConn", true},
		{`a\*b`, "a*b", true},
		{`a\*b`, "axb", false},
		{`\?`, "?", true},
		{"*a*b*c*", "xxaxxbxxcxx", true},
		{"*a*b*c*", "xxaxxcxxbxx", false},
		{"?", "é", true},
		{"?é", "éé", true},
		{"a**", "a", true},
	}
	for _, tt := range tests {
		if got := matchGlob(tt.pattern, tt.name); got != tt.want {
			t.Errorf("matchGlob(%q, %q) = %v, want %v", tt.pattern, tt.name, got, tt.want)
		}
	}
}

const ignoreFile = `# Known leaks we accept for now.

leftover socket* func=net/http.(*Transport).dialConn
  # indented comment
growth "sockets.tcp.*"
* "session \"legacy\"" owner=*
misuse "double-release of *" func=main.cleanup func=main.*  owner="session \"w*\""
cycle * signature=0123456789abcdef
`

func TestParseIgnore(t *testing.T) {
	rules, err := ParseIgnore(strings.NewReader(ignoreFile), "leakcheck.ignore")
	if err != nil {
		t.Fatal(err)
	}
	want := []IgnoreRule{
		{Kind: KindLeftover, Subject: "socket*", Funcs: []string{"net/http.(*Transport).dialConn"}, Line: 3},
		{Kind: KindGrowth, Subject: "sockets.tcp.*", Line: 5},
		{Subject: `session "legacy"`, Owner: "*", Line: 6},
		{Kind: KindMisuse, Subject: "double-release of *", Funcs: []string{"main.cleanup", "main.*"}, Owner: `session "w*"`, Line: 7},
		{Kind: KindCycle, Subject: "*", Signature: "0123456789abcdef", Line: 8},
	}
	if !slices.EqualFunc(rules, want, func(a, b IgnoreRule) bool {
		return a.Kind == b.Kind && a.Subject == b.Subject && slices.Equal(a.Funcs, b.Funcs) &&
			a.Owner == b.Owner && a.Signature == b.Signature && a.Line == b.Line
	}) {
		t.Errorf("ParseIgnore =\n%+v\nwant\n%+v", rules, want)
	}
}

func TestParseIgnoreErrors(t *testing.T) {
	tests := []struct{ in, want string }{
		{"leftover", `f:1: rule "leftover" has no subject`},
		{"\n\nlefover x", `f:3: unknown kind "lefover"`},
		{"leftover x fn=main.x", `f:1: unknown option "fn"`},
		{"leftover x main.x", `f:1: unexpected "main.x" after the subject`},
		{"leftover x func=", "f:1: func= needs a value"},
		{`leftover "socket`, "f:1: bad quoted string"},
		{`leftover "a"b`, "f:1: want a blank after the quoted string"},
		{`leftover a\`, `f:1: subject "a\\": glob ends with a lone \`},
		{`leftover a func=x\`, `glob ends with a lone \`},
		{"leftover a owner=x owner=y", "owner= given twice"},
		{"leftover a signature=x signature=y", "signature= given twice"},
		{"leftover \xff", "not valid UTF-8"},
		{"leftover " + strings.Repeat("x", 70000), "f:1: reading ignore rules"},
	}
	for _, tt := range tests {
		_, err := ParseIgnore(strings.NewReader(tt.in), "f")
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ParseIgnore(%.30q) error = %v, want one containing %q", tt.in, err, tt.want)
		}
	}
}

func TestIgnoreMatch(t *testing.T) {
	rules, err := ParseIgnore(strings.NewReader(ignoreFile), "f")
	if err != nil {
		t.Fatal(err)
	}
	dial := []Frame{{Func: "net.(*Dialer).DialContext"}, {Func: "net/http.(*Transport).dialConn"}}
	tests := []struct {
		name string
		f    Finding
		want bool
	}{
		{"socket from the transport", Finding{Kind: KindLeftover, Subject: "socket 1.2.3.4:80", Evidence: Evidence{Stack: dial}}, true},
		{"socket from elsewhere", Finding{Kind: KindLeftover, Subject: "socket 1.2.3.4:80", Evidence: Evidence{Stack: deepStack}}, false},
		{"socket without stack", Finding{Kind: KindLeftover, Subject: "socket 1.2.3.4:80"}, false},
		{"file from the transport", Finding{Kind: KindLeftover, Subject: "file /tmp/x", Evidence: Evidence{Stack: dial}}, false},
		{"growing CLOSE_WAIT", Finding{Kind: KindGrowth, Subject: "sockets.tcp.CLOSE_WAIT"}, true},
		{"growing fds", Finding{Kind: KindGrowth, Subject: "fds"}, false},
		{"legacy session, any kind", Finding{Kind: KindRetained, Subject: `session "legacy"`}, true},
		{"misuse in cleanup by worker", Finding{Kind: KindMisuse, Subject: "double-release of file x", Owner: `session "worker"`,
			Evidence: Evidence{Stack: []Frame{{Func: "main.cleanup"}}}}, true},
		{"misuse in cleanup, no owner", Finding{Kind: KindMisuse, Subject: "double-release of file x",
			Evidence: Evidence{Stack: []Frame{{Func: "main.cleanup"}}}}, false},
		{"cycle by signature", Finding{Kind: KindCycle, Subject: "a -> a", Signature: "0123456789abcdef"}, true},
		{"other cycle", Finding{Kind: KindCycle, Subject: "a -> a"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			matched := slices.ContainsFunc(rules, func(r IgnoreRule) bool { return r.Match(tt.f) })
			if matched != tt.want {
				t.Errorf("matched = %v, want %v", matched, tt.want)
			}
			kept, suppressed := Suppress([]Finding{tt.f}, rules)
			if (len(suppressed) == 1) != tt.want || len(kept)+len(suppressed) != 1 {
				t.Errorf("Suppress: kept %d, suppressed %d", len(kept), len(suppressed))
			}
		})
	}
}

func TestReadIgnoreFile(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good")
	bad := filepath.Join(dir, "bad")
	os.WriteFile(good, []byte("# known\nleftover \"socket 10.0.0.*:6379\"\n"), 0o644)
	os.WriteFile(bad, []byte("nosuchkind x\n"), 0o644)
	tests := []struct {
		name  string
		rules int
		err   string
	}{
		{"", 0, ""},
		{good, 1, ""},
		{bad, 0, bad + ":1:"},
		{filepath.Join(dir, "missing"), 0, "reading ignore file"},
	}
	for _, tt := range tests {
		rules, err := ReadIgnoreFile(tt.name)
		switch {
		case tt.err == "" && err != nil:
			t.Errorf("ReadIgnoreFile(%q): %v", tt.name, err)
		case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
			t.Errorf("ReadIgnoreFile(%q) error %v, want one containing %q", tt.name, err, tt.err)
		case len(rules) != tt.rules:
			t.Errorf("ReadIgnoreFile(%q) = %d rules, want %d", tt.name, len(rules), tt.rules)
		}
	}
}
