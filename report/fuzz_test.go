package report

import (
	"bytes"
	"strings"
	"testing"
)

func FuzzParsePolicy(f *testing.F) {
	for _, seed := range []string{
		"leftover,growth", "all", "none", "leftover,growth,severity>=warning", "severity>=error",
		"", ",", "none,all", "severity>=", "severity>=warn ,cycle", "lefover", " all , misuse ",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, text string) {
		p, err := ParsePolicy(text)
		if err != nil {
			return
		}
		// A parsed policy prints in a form that parses to the same policy.
		again, err := ParsePolicy(p.String())
		if err != nil {
			t.Fatalf("ParsePolicy(%q).String() = %q does not parse: %v", text, p.String(), err)
		}
		if again.String() != p.String() || again.MinSeverity != p.MinSeverity || len(again.Kinds) != len(p.Kinds) {
			t.Fatalf("policy %q does not round-trip: %+v then %+v", text, p, again)
		}
	})
}

func FuzzParseIgnore(f *testing.F) {
	f.Add(ignoreFile)
	for _, seed := range []string{
		"", "# only a comment\n", "leftover", "* *", `misuse "a b" func="c d" owner=e`, `leftover "unterminated`,
		`growth a\`, "cycle * signature=00", "x y z", "\xff", "leftover a\"b\" c",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, text string) {
		rules, err := ParseIgnore(strings.NewReader(text), "fuzz")
		if err != nil {
			if !strings.HasPrefix(err.Error(), "fuzz:") {
				t.Fatalf("error %q does not name the file and line", err)
			}
			return
		}
		f := Finding{Kind: KindLeftover, Subject: text, Owner: text, Evidence: Evidence{Stack: []Frame{{Func: text}}}}
		for _, r := range rules {
			r.Match(f) // must not panic or hang
			if r.Line < 1 {
				t.Fatalf("rule %+v has no line number", r)
			}
		}
	})
}

func FuzzMatchGlob(f *testing.F) {
	f.Add("*a*b", "xaxb")
	f.Add(`\*?`, "*é")
	f.Fuzz(func(t *testing.T, pattern, name string) {
		got := matchGlob(pattern, name)
		// A pattern without metacharacters matches only itself.
		if !strings.ContainsAny(pattern, `*?\`) && got != (pattern == name) {
			t.Fatalf("matchGlob(%q, %q) = %v", pattern, name, got)
		}
		// Every string matches itself escaped.
		var esc strings.Builder
		for _, b := range []byte(name) {
			if b == '*' || b == '?' || b == '\\' {
				esc.WriteByte('\\')
			}
			esc.WriteByte(b)
		}
		if !matchGlob(esc.String(), name) {
			t.Fatalf("%q does not match its escaped form %q", name, esc.String())
		}
	})
}

func FuzzReadReport(f *testing.F) {
	var b bytes.Buffer
	r := emptyReport()
	r.Findings = []Finding{{Kind: KindLeftover, Severity: SeverityError, Subject: "socket x", Count: 2,
		Evidence: Evidence{Stack: []Frame{{Func: "main.f", File: "f.go", Line: 1}}, Values: map[string]float64{"age_seconds": 3}, Path: []string{"a", "a"}}}}
	r.Series = []Series{{Name: "fds", Unit: "fds", Points: gen(3, 1e9, func(i int) float64 { return float64(i) })}}
	r.Series[0].Analyze(TrendOptions{})
	r.Summary = Summarize(r.Findings, 1)
	if err := Render(&b, r, "json"); err != nil {
		f.Fatal(err)
	}
	f.Add(b.String())
	for _, seed := range []string{
		"", "{}", "null", `{"schema": 1}`, `{"schema": "leakcheck.report/1.0"}`, `{"schema": "leakcheck.report/2.0"}`,
		`{"schema": "leakcheck.report/1.0", "findings": [{"kind": "x", "severity": "warn", "count": 0}]}`,
		`{"schema": "leakcheck.report/1.0", "summary": {"by_severity": {"warn": 1, "warning": 2}}}`,
		`{"schema": "leakcheck.report/1.0", "time": "9999-12-31T23:59:59Z", "metadata": {"a\n": "b\tc"}}`,
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data string) {
		r, err := ReadReport(strings.NewReader(data))
		if err != nil {
			return
		}
		var text, js bytes.Buffer
		if err := Render(&text, r, "text"); err != nil {
			t.Fatalf("text of an accepted report: %v", err)
		}
		if err := Render(&js, r, "json"); err != nil {
			t.Fatalf("JSON of an accepted report: %v", err)
		}
		// What we write, we read back to the same report.
		back, err := ReadReport(bytes.NewReader(js.Bytes()))
		if err != nil {
			t.Fatalf("cannot read back our own JSON: %v\n%s", err, js.Bytes())
		}
		var js2 bytes.Buffer
		if err := Render(&js2, back, "json"); err != nil || !bytes.Equal(js.Bytes(), js2.Bytes()) {
			t.Fatalf("JSON does not round-trip (%v):\n%s\nthen\n%s", err, js.Bytes(), js2.Bytes())
		}
	})
}
