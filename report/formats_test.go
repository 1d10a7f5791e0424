package report

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// runReport is what `leakcheck run --warmup 30s` would build after ten
// minutes at one sample a second: the daemon's final snapshot, series from
// /proc and from its pprof endpoint with noise, a GC saw-tooth and a
// high-water mark, a table of top heap holders, and the policy the run
// used. Its noise comes from a fixed seed, so it renders the same each time.
func runReport(t testing.TB) *Report {
	t.Helper()
	rng := rand.New(rand.NewPCG(1, 2))
	noise := func(sd float64) float64 { return rng.NormFloat64() * sd }
	const n = 600
	fds := gen(n, time.Second, func(i int) float64 { return math.Round(40 + float64(i)/10 + noise(1.5)) })
	closeWait := gen(n, time.Second, func(i int) float64 { return float64(i / 45) })
	rss := gen(n, time.Second, func(i int) float64 { return 48<<20 + float64(i%60)*(64<<10) + noise(100<<10) })
	hwm := make([]Point, n)
	for i, p := range rss {
		hwm[i] = p
		if i > 0 {
			hwm[i].Value = max(p.Value, hwm[i-1].Value)
		}
	}
	series := []Series{
		{Name: "fds", Unit: "fds", Points: fds},
		{Name: "sockets.tcp.CLOSE_WAIT", Unit: "sockets", Points: closeWait},
		{Name: "rss_bytes", Unit: "B", Points: rss},
		{Name: "hwm_bytes", Unit: "B", Points: hwm, Monotone: true},
		{Name: "threads", Unit: "threads", Points: gen(n, time.Second, func(i int) float64 { return 9 + float64(min(i, 20)/10) })},
		{Name: "goroutines", Unit: "goroutines", Points: gen(n, time.Second, func(i int) float64 { return math.Round(12 + float64(i)/20 + noise(2)) })},
		{Name: "heap_inuse_bytes", Unit: "B", Points: gen(n, time.Second, func(i int) float64 { return 6<<20 + noise(256<<10) })},
	}
	// A sample lost to a failed read breaks the line.
	series[5].Points[300].Value = math.NaN()
	trend := TrendOptions{Warmup: 30 * time.Second}
	findings := Growth(series, trend)
	snap := FromSnapshot(testSnapshot(), SnapshotOptions{AtExit: true, Trend: trend})
	snapFindings, gauges := snap.Findings, snap.Series
	r := New(append(findings, snapFindings...), append(series, gauges...), nil)
	r.Tool = "leakcheck v0.1.0"
	r.Time = clock.Add(10 * time.Minute)
	r.Policy = "leftover,growth"
	r.Metadata = map[string]string{
		"command":  "leakcheck run --warmup 30s --duration 10m -- ./mydaemon -listen :8080",
		"duration": "10m0s",
		"samples":  "600",
	}
	r.Tables = []Table{{
		Title:   "top holders by inuse_space",
		Columns: []string{"flat", "flat%", "function"},
		Rows: [][]string{
			{"4.0 MiB", "66.7%", "main.(*Cache).Put"},
			{"1.5 MiB", "25.0%", "bufio.NewReaderSize"},
			{"512 KiB", "8.3%", "main.handle | (inlined)"},
		},
	}}
	return r
}

// hostileReport carries text that every format must neutralise: markup,
// Markdown, workflow commands, control characters and invalid UTF-8.
func hostileReport() *Report {
	stack := []Frame{{Func: "main.open,file:x", File: "/src/a,b:c/%0A.go", Line: 3}}
	r := New([]Finding{
		{Kind: KindLeftover, Severity: SeverityError, Subject: "<script>alert(1)</script> | `x` **b** @team", Owner: "a\nb\r\x07c",
			Evidence: Evidence{Stack: stack}, Suggestion: "close it\n::error::injected"},
		{Kind: KindMisuse, Severity: SeverityInfo, Subject: "]]> \x00\x01 \xff&amp; %0A ${{ x }} \uFFFE", Count: 3},
		{Kind: KindLeftover, Severity: SeverityWarning, Subject: "<script>alert(1)</script> | `x` **b** @team", Owner: "other",
			Evidence: Evidence{Stack: []Frame{{Func: "main.other", File: "o.go", Line: 1}}}},
	}, []Series{{Name: "</title><script>x</script>", Unit: "</text>", Points: gen(14, time.Second, func(i int) float64 { return float64(i) })}}, nil)
	r.Tool = "leakcheck <b>"
	r.Time = clock
	r.Metadata = map[string]string{"command": "a & b < c", "<key>": "\"quoted\""}
	r.Tables = []Table{{Title: "<h1>", Columns: []string{"a|b"}, Rows: [][]string{{"<i>x</i>", "extra"}, {}}}}
	return r
}

func TestGoldenRun(t *testing.T) {
	r := runReport(t)
	for _, format := range []string{"markdown", "junit", "html", "github"} {
		t.Run(format, func(t *testing.T) {
			golden(t, "run."+format, render(t, r, format))
		})
	}
}

// TestRoundTripRun checks that what the new formats need (the policy, the
// warm-up, the fitted lines) survives the JSON form that `leakcheck report`
// reads back.
func TestRoundTripRun(t *testing.T) {
	r := runReport(t)
	// encoding/json cannot carry the NaN sample; the reader would see no point there.
	r.Series = slices.DeleteFunc(slices.Clone(r.Series), func(s Series) bool { return s.Name == "goroutines" })
	back, err := ReadReport(bytes.NewReader(render(t, r, "json")))
	if err != nil {
		t.Fatal(err)
	}
	if back.Policy != r.Policy {
		t.Errorf("policy %q read back as %q", r.Policy, back.Policy)
	}
	for _, format := range []string{"markdown", "junit", "html", "github"} {
		if want, got := render(t, r, format), render(t, back, format); !bytes.Equal(got, want) {
			t.Errorf("%s of the read-back report differs", format)
		}
	}
}

func TestTrendFitAndWarmup(t *testing.T) {
	// 60 points a second apart on the line 100 + 2/s; 10 s of warm-up.
	pts := gen(60, time.Second, func(i int) float64 { return 100 + 2*float64(i) })
	tr := AnalyzeTrend(pts, TrendOptions{Warmup: 10 * time.Second})
	if tr.Verdict != VerdictGrowing {
		t.Fatalf("verdict %s", tr.Verdict)
	}
	if want := clock.Add(10 * time.Second); !tr.WarmupEnd.Equal(want) || !tr.Window.From.Equal(want) {
		t.Errorf("warm-up ends %v, window from %v; want both %v", tr.WarmupEnd, tr.Window.From, want)
	}
	if tr.Window.Intercept != 120 || tr.Window.SlopePerHour != 7200 {
		t.Errorf("window fit %v + %v/h; want 120 + 7200/h", tr.Window.Intercept, tr.Window.SlopePerHour)
	}
	if want := clock.Add(35 * time.Second); !tr.Recent.From.Equal(want) || tr.Recent.Intercept != 170 {
		t.Errorf("recent fit from %v at %v; want %v at 170", tr.Recent.From, tr.Recent.Intercept, want)
	}
	// Without a warm-up WarmupEnd is zero; when the warm-up takes every
	// point it is the last point's time.
	if tr := AnalyzeTrend(pts, TrendOptions{}); !tr.WarmupEnd.IsZero() {
		t.Errorf("no warm-up: WarmupEnd %v", tr.WarmupEnd)
	}
	if tr := AnalyzeTrend(pts, TrendOptions{Warmup: time.Hour}); tr.Verdict != VerdictNotEnoughData || !tr.WarmupEnd.Equal(pts[59].Time) || !tr.Window.From.IsZero() {
		t.Errorf("all warm-up: %+v", tr)
	}
	// The intercept is robust: an outlier does not move it.
	pts[40].Value = 1e6
	if tr := AnalyzeTrend(pts, TrendOptions{Warmup: 10 * time.Second}); math.Abs(tr.Window.Intercept-120) > 1 {
		t.Errorf("with an outlier, intercept %v; want about 120", tr.Window.Intercept)
	}
}

type junitDoc struct {
	Tests    int `xml:"tests,attr"`
	Failures int `xml:"failures,attr"`
	Suites   []struct {
		Name     string `xml:"name,attr"`
		Tests    int    `xml:"tests,attr"`
		Failures int    `xml:"failures,attr"`
		Props    []struct {
			Name  string `xml:"name,attr"`
			Value string `xml:"value,attr"`
		} `xml:"properties>property"`
		Cases []struct {
			Classname string `xml:"classname,attr"`
			Name      string `xml:"name,attr"`
			Failure   *struct {
				Message string `xml:"message,attr"`
				Type    string `xml:"type,attr"`
				Text    string `xml:",chardata"`
			} `xml:"failure"`
			SystemOut string `xml:"system-out"`
		} `xml:"testcase"`
	} `xml:"testsuite"`
}

func decodeJUnit(t *testing.T, data []byte) junitDoc {
	t.Helper()
	var doc junitDoc
	d := xml.NewDecoder(bytes.NewReader(data))
	d.Strict = true
	if err := d.Decode(&doc); err != nil {
		t.Fatalf("JUnit output is not XML: %v\n%s", err, data)
	}
	return doc
}

func TestJUnit(t *testing.T) {
	tests := []struct {
		policy       string
		wantFailures int
	}{
		{"", 13}, // no policy recorded: everything fails
		{"none", 0},
		{"leftover,growth", 8},
		{"severity>=error", 5},
		{"all,severity>=warning", 13},
		{"cycle", 1},
	}
	for _, tt := range tests {
		t.Run(tt.policy, func(t *testing.T) {
			r := fixtureReport(t)
			r.Policy = tt.policy
			doc := decodeJUnit(t, render(t, r, "junit"))
			if doc.Tests != len(r.Findings) || doc.Failures != tt.wantFailures {
				t.Errorf("tests=%d failures=%d; want %d and %d", doc.Tests, doc.Failures, len(r.Findings), tt.wantFailures)
			}
			sum, failures := 0, 0
			for _, s := range doc.Suites {
				names := map[string]bool{}
				fails := 0
				for _, c := range s.Cases {
					if c.Classname != s.Name || !strings.HasPrefix(s.Name, "leakcheck.") {
						t.Errorf("case %q has class %q in suite %q", c.Name, c.Classname, s.Name)
					}
					if names[c.Name] {
						t.Errorf("suite %s has two cases named %q", s.Name, c.Name)
					}
					names[c.Name] = true
					if c.Failure != nil {
						fails++
						if c.Failure.Type != strings.TrimPrefix(s.Name, "leakcheck.") || !strings.Contains(c.Failure.Text, "fix") {
							t.Errorf("failure %+v", c.Failure)
						}
					} else if !strings.HasPrefix(c.SystemOut, "does not fail the policy") {
						t.Errorf("passing case %q has output %q", c.Name, c.SystemOut)
					}
				}
				if s.Tests != len(s.Cases) || s.Failures != fails {
					t.Errorf("suite %s counts tests=%d failures=%d; has %d and %d", s.Name, s.Tests, s.Failures, len(s.Cases), fails)
				}
				sum += s.Tests
				failures += fails
			}
			if sum != doc.Tests || failures != doc.Failures {
				t.Errorf("suites add up to %d tests, %d failures; root says %d, %d", sum, failures, doc.Tests, doc.Failures)
			}
		})
	}
}

func TestJUnitHostile(t *testing.T) {
	doc := decodeJUnit(t, render(t, hostileReport(), "junit"))
	var names []string
	for _, s := range doc.Suites {
		for _, c := range s.Cases {
			names = append(names, c.Name)
		}
	}
	// Two leftovers share a subject: the second is told apart by signature.
	if len(names) != 3 || names[0] != names[1][:len(names[0])] || !strings.HasSuffix(names[1], "]") {
		t.Errorf("case names %q", names)
	}
	if !slices.ContainsFunc(names, func(n string) bool { return strings.Contains(n, "]]> \uFFFD\uFFFD \uFFFD&amp;") }) {
		t.Errorf("control characters and invalid UTF-8 not replaced: %q", names)
	}
}

func TestRenderBadPolicy(t *testing.T) {
	r := fixtureReport(t)
	r.Policy = "leftover,bogus"
	for _, format := range []string{"markdown", "junit", "html", "github"} {
		err := Render(io.Discard, r, format)
		if err == nil || !strings.Contains(err.Error(), `the report's policy: fail policy "leftover,bogus": unknown item "bogus"`) {
			t.Errorf("%s: %v", format, err)
		}
	}
}

// annotationRE matches one workflow command: its name, its properties and
// its message, none of which may hold a raw line break.
var annotationRE = regexp.MustCompile(`^::(error|warning|notice)(?: ((?:file=[^,:]*,line=\d+,)?title=[^,:]*))?::([^\r\n]*)$`)

func TestGitHub(t *testing.T) {
	t.Setenv("GITHUB_WORKSPACE", "/src/mydaemon")
	r := fixtureReport(t)
	r.Policy = "leftover,growth"
	out := strings.TrimSuffix(string(render(t, r, "github")), "\n")
	lines := strings.Split(out, "\n")
	if len(lines) != len(r.Findings) {
		t.Fatalf("%d lines for %d findings:\n%s", len(lines), len(r.Findings), out)
	}
	counts := map[string]int{}
	for i, line := range lines {
		m := annotationRE.FindStringSubmatch(line)
		if m == nil {
			t.Fatalf("line %d is not a workflow command: %q", i+1, line)
		}
		counts[m[1]]++
	}
	if counts["error"] != 8 || counts["warning"] != 5 {
		t.Errorf("commands %v; want 8 errors (failing leftover and growth), 5 warnings", counts)
	}
	if want := "::error file=client.go,line=17,title=leakcheck%3A error leftover::socket tcp 127.0.0.1:6379 (+1 more)%0Acount: 1000%0A"; !strings.HasPrefix(lines[0], want) {
		t.Errorf("first line %q; want it to start %q", lines[0], want)
	}
	if !strings.HasPrefix(lines[12], "::warning file=cleanup.go,line=8,") {
		t.Errorf("misuse line %q", lines[12])
	}

	h := hostileReport()
	h.Policy = "leftover"
	hostile := string(render(t, h, "github"))
	for i, line := range strings.Split(strings.TrimSuffix(hostile, "\n"), "\n") {
		if annotationRE.FindStringSubmatch(line) == nil {
			t.Errorf("hostile line %d escapes its command: %q", i+1, line)
		}
	}
	if !strings.Contains(hostile, "::error file=/src/a%2Cb%3Ac/%250A.go,line=3,title=") || !strings.Contains(hostile, "%0Afix: close it ::error::injected") {
		t.Errorf("hostile output not escaped as expected:\n%s", hostile)
	}
	if !strings.HasPrefix(strings.Split(hostile, "\n")[2], "::notice title=") {
		t.Errorf("an info finding that passes is not a notice:\n%s", hostile)
	}
	if got := string(render(t, emptyReport(), "github")); got != "" {
		t.Errorf("empty report: %q", got)
	}
}

func TestAnnotationPath(t *testing.T) {
	tests := []struct{ file, workspace, want string }{
		{"/w/repo/cmd/main.go", "/w/repo", "cmd/main.go"},
		{"/w/repo/cmd/main.go", "/w/repo/", "cmd/main.go"},
		{"/w/other/main.go", "/w/repo", "/w/other/main.go"},
		{"/w/repo2/main.go", "/w/repo", "/w/repo2/main.go"},
		{"github.com/x/y/main.go", "/w/repo", "github.com/x/y/main.go"},
		{"/w/repo/main.go", "", "/w/repo/main.go"},
	}
	for _, tt := range tests {
		if got := annotationPath(tt.file, tt.workspace); got != tt.want {
			t.Errorf("annotationPath(%q, %q) = %q, want %q", tt.file, tt.workspace, got, tt.want)
		}
	}
	for _, tt := range []struct{ in, data, prop string }{
		{"a%b", "a%25b", "a%25b"},
		{"a\nb\rc", "a%0Ab%0Dc", "a%0Ab\uFFFDc"},
		{"x:y,z", "x:y,z", "x%3Ay%2Cz"},
	} {
		if got := escapeData(tt.in); got != tt.data {
			t.Errorf("escapeData(%q) = %q, want %q", tt.in, got, tt.data)
		}
		if got := escapeProperty(tt.in); got != tt.prop {
			t.Errorf("escapeProperty(%q) = %q, want %q", tt.in, got, tt.prop)
		}
	}
}

func TestMarkdownEscaping(t *testing.T) {
	tests := []struct{ got, want string }{
		{mdText("a*b_c [l](u) <b> | `x` #1 & ~s~ \\"), `a\*b\_c \[l\](u) \<b\> \| \` + "`x\\`" + ` \#1 \& \~s\~ \\`},
		{mdText("two\nlines"), "two lines"},
		{mdCode("plain", false), "`plain`"},
		{mdCode("a|b", true), "`a\\|b`"},
		{mdCode("a|b", false), "`a|b`"},
		{mdCode("has `tick`", false), "`` has `tick` ``"},
		{mdCode("``x", false), "``` ``x ```"},
		{mdCode("  ", false), ""},
		{sparkline(gen(4, time.Second, func(i int) float64 { return float64(i) })), "▁▃▆█"},
		{sparkline(gen(40, time.Second, func(int) float64 { return 7 })), strings.Repeat("▁", sparkWidth)},
		{sparkline([]Point{{Value: math.MaxFloat64}, {Value: -math.MaxFloat64}, {Value: math.NaN()}}), "█▁"},
		{sparkline(nil), ""},
	}
	for i, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("case %d: got %q, want %q", i, tt.got, tt.want)
		}
	}
}

// withoutCode returns md without its code spans and fenced blocks: a run of
// backticks and everything up to the next run of the same length.
func withoutCode(md string) string {
	var b strings.Builder
	for {
		i := strings.IndexByte(md, '`')
		if i < 0 {
			return b.String() + md
		}
		b.WriteString(md[:i])
		n := i
		for n < len(md) && md[n] == '`' {
			n++
		}
		fence := md[i:n]
		rest := md[n:]
		end := -1
		for j := 0; j < len(rest); {
			k := strings.Index(rest[j:], fence)
			if k < 0 {
				break
			}
			k += j
			m := k + len(fence)
			if m < len(rest) && rest[m] == '`' { // a longer run: not the closing fence
				for m < len(rest) && rest[m] == '`' {
					m++
				}
				j = m
				continue
			}
			end = m
			break
		}
		if end < 0 {
			return b.String() + md[i:] // an unclosed run is literal text
		}
		md = rest[end:]
	}
}

func TestMarkdownTables(t *testing.T) {
	for name, r := range map[string]*Report{"run": runReport(t), "hostile": hostileReport(), "fixture": fixtureReport(t)} {
		md := string(render(t, r, "markdown"))
		// Every row of a table has as many cells as its header: an escaped
		// pipe does not split a cell.
		cells := -1
		for i, line := range strings.Split(md, "\n") {
			if !strings.HasPrefix(line, "|") {
				cells = -1
				continue
			}
			n := len(regexp.MustCompile(`(^|[^\\])\|`).FindAllString(line, -1))
			if cells == -1 {
				cells = n
			} else if n != cells {
				t.Errorf("%s: line %d has %d cells, its header %d: %q", name, i+1, n-1, cells-1, line)
			}
		}
		// Outside code, the only markup is the <details> element's.
		text := withoutCode(md)
		for _, tag := range []string{"<details>", "<summary>", "</summary>", "</details>"} {
			text = strings.ReplaceAll(text, tag, "")
		}
		if i := regexp.MustCompile(`(^|[^\\])[<&]`).FindStringIndex(text); i != nil {
			t.Errorf("%s: unescaped markup outside code at %q", name, text[i[0]:min(i[0]+40, len(text))])
		}
	}
	many := &Report{Summary: Summary{Findings: maxMarkdownFindings + 5}}
	for i := range maxMarkdownFindings + 5 {
		many.Findings = append(many.Findings, Finding{Kind: KindLeftover, Subject: fmt.Sprint("fd ", i)})
	}
	md := string(render(t, many, "markdown"))
	if !strings.Contains(md, "…and 5 more findings") || strings.Contains(md, "`fd 50`") {
		t.Errorf("a long report is not cut at %d findings", maxMarkdownFindings)
	}
}

// decodeXML checks that data is well-formed XML and returns its elements'
// names with their attributes.
func decodeXML(t *testing.T, data []byte) []xml.StartElement {
	t.Helper()
	d := xml.NewDecoder(bytes.NewReader(data))
	d.Strict = true
	var elems []xml.StartElement
	for {
		tok, err := d.Token()
		if err == io.EOF {
			return elems
		}
		if err != nil {
			t.Fatalf("not well-formed: %v", err)
		}
		if se, ok := tok.(xml.StartElement); ok {
			elems = append(elems, se.Copy())
		}
	}
}

func attr(e xml.StartElement, name string) string {
	for _, a := range e.Attr {
		if a.Name.Local == name {
			return a.Value
		}
	}
	return ""
}

func TestHTML(t *testing.T) {
	for name, r := range map[string]*Report{"run": runReport(t), "hostile": hostileReport(), "empty": emptyReport(), "fixture": fixtureReport(t)} {
		t.Run(name, func(t *testing.T) {
			page := render(t, r, "html")
			elems := decodeXML(t, page)
			ids := map[string]bool{}
			charts, fits, warmups := 0, 0, 0
			for _, e := range elems {
				if id := attr(e, "id"); id != "" {
					if ids[id] {
						t.Errorf("id %q twice", id)
					}
					ids[id] = true
				}
				switch {
				case e.Name.Local == "script" || e.Name.Local == "link" || e.Name.Local == "img" || e.Name.Local == "iframe":
					t.Errorf("the page has a <%s> element", e.Name.Local)
				case attr(e, "src") != "":
					t.Errorf("<%s> loads %q", e.Name.Local, attr(e, "src"))
				case e.Name.Local == "svg" && attr(e, "class") == "chart":
					charts++
				case e.Name.Local == "line" && attr(e, "class") == "fit":
					fits++
				case e.Name.Local == "rect" && attr(e, "class") == "warmup":
					warmups++
				}
				if href := attr(e, "href"); href != "" && !strings.HasPrefix(href, "#") {
					t.Errorf("<%s> links out to %q", e.Name.Local, href)
				}
			}
			// Internal links go somewhere.
			for _, e := range elems {
				if href := attr(e, "href"); href != "" && !ids[href[1:]] {
					t.Errorf("link to missing %s", href)
				}
			}
			growing, warm := 0, 0
			for _, s := range r.Series {
				if s.Trend != nil && s.Trend.Verdict == VerdictGrowing {
					growing++
				}
				if s.Trend != nil && !s.Trend.WarmupEnd.IsZero() {
					warm++
				}
			}
			if charts != len(r.Series) || fits != growing || warmups != warm {
				t.Errorf("%d charts, %d trend lines, %d warm-ups; want %d, %d, %d", charts, fits, warmups, len(r.Series), growing, warm)
			}
			for _, bad := range []string{"<script", "<b>", "<h1>&", "<i>", "<key>", "NaN", "Inf"} {
				if bytes.Contains(page, []byte(bad)) {
					t.Errorf("page contains %q", bad)
				}
			}
		})
	}
}

// svgElements renders a chart of s and returns its elements.
func svgElements(t *testing.T, s Series) ([]xml.StartElement, string) {
	t.Helper()
	svg := string(svgChart(s, "c"))
	if strings.Contains(svg, "NaN") || strings.Contains(svg, "Inf") {
		t.Errorf("chart has a non-finite number:\n%s", svg)
	}
	return decodeXML(t, []byte(svg)), svg
}

func TestSVGChart(t *testing.T) {
	line := gen(100, time.Second, func(i int) float64 { return 1000 + 2*float64(i) })
	growing := Series{Name: "fds", Unit: "fds", Points: line}
	growing.Analyze(TrendOptions{Warmup: 20 * time.Second})
	gaps := Series{Name: "g", Points: gen(30, time.Second, func(i int) float64 {
		if i == 10 || i == 20 {
			return math.Inf(1)
		}
		return float64(i)
	})}
	long := Series{Name: "long", Unit: "B", Points: gen(100000, time.Second, func(i int) float64 { return float64(i%977) * 1024 })}
	tests := []struct {
		name  string
		s     Series
		check func(t *testing.T, elems []xml.StartElement, svg string)
	}{
		{"no points", Series{Name: "x"}, func(t *testing.T, _ []xml.StartElement, svg string) {
			if !strings.Contains(svg, ">no samples<") {
				t.Errorf("no message:\n%s", svg)
			}
		}},
		{"one point", Series{Name: "x", Points: []Point{{Time: clock, Value: 5}}}, func(t *testing.T, elems []xml.StartElement, svg string) {
			if n := count(elems, "circle"); n != 1 {
				t.Errorf("%d dots", n)
			}
		}},
		{"constant", Series{Name: "x", Unit: "threads", Points: gen(20, time.Second, func(int) float64 { return 12 })}, func(t *testing.T, elems []xml.StartElement, svg string) {
			if !strings.Contains(svg, ">12.0<") || !strings.Contains(svg, ">threads<") {
				t.Errorf("constant 12 threads not labelled:\n%s", svg)
			}
		}},
		{"growing with warm-up", growing, func(t *testing.T, elems []xml.StartElement, svg string) {
			var fit, warm xml.StartElement
			for _, e := range elems {
				switch attr(e, "class") {
				case "fit":
					fit = e
				case "warmup":
					warm = e
				}
			}
			// 100 points over 99 s: the warm-up is 20 s of the plot's width.
			if got, want := attr(warm, "width"), coord(20.0/99*plotWidth); got != want {
				t.Errorf("warm-up width %s, want %s", got, want)
			}
			// The data is a line: the fit runs through the first tested and the last point.
			wantY1 := 1040.0
			scale := newValueScale(1000, 1198, "fds")
			y := func(v float64) string { return coord(plotTop + (scale.hi-v)/(scale.hi-scale.lo)*plotHeight) }
			if attr(fit, "x1") != coord(plotLeft+20.0/99*plotWidth) || attr(fit, "y1") != y(wantY1) || attr(fit, "x2") != coord(plotLeft+plotWidth) || attr(fit, "y2") != y(1198) {
				t.Errorf("fit line %v; want (%s,%s) to (%s,%s)", fit.Attr, coord(plotLeft+20.0/99*plotWidth), y(wantY1), coord(plotLeft+plotWidth), y(1198))
			}
			if !strings.Contains(svg, "<title>trend +7200 fds/h</title>") {
				t.Error("the fit has no title")
			}
		}},
		{"gaps", gaps, func(t *testing.T, elems []xml.StartElement, svg string) {
			for _, e := range elems {
				if attr(e, "class") == "line" && strings.Count(attr(e, "d"), "M") != 3 {
					t.Errorf("two gaps should make three segments: %s", attr(e, "d"))
				}
			}
		}},
		{"long", long, func(t *testing.T, elems []xml.StartElement, svg string) {
			if len(svg) > 120_000 || count(elems, "circle") != 0 {
				t.Errorf("a 100,000-point chart is %d bytes with %d dots", len(svg), count(elems, "circle"))
			}
			if !strings.Contains(svg, ">KiB<") {
				t.Error("bytes up to 976 KiB are not labelled in KiB")
			}
		}},
		{"centuries", Series{Name: "x", Points: []Point{{Time: time.Time{}, Value: 1}, {Time: time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC), Value: 2}}}, nil},
		{"extremes", Series{Name: "x", Points: []Point{{Time: clock, Value: -math.MaxFloat64}, {Time: clock.Add(time.Second), Value: math.MaxFloat64}}}, nil},
		{"unordered", Series{Name: "x", Points: []Point{{Time: clock.Add(2 * time.Second), Value: 2}, {Time: clock, Value: 0}, {Time: clock.Add(time.Second), Value: 1}}}, func(t *testing.T, elems []xml.StartElement, svg string) {
			for _, e := range elems {
				if attr(e, "class") == "line" && attr(e, "d") != "M64 182L386 102L708 22" {
					t.Errorf("path %q", attr(e, "d"))
				}
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			elems, svg := svgElements(t, tt.s)
			if tt.check != nil {
				tt.check(t, elems, svg)
			}
		})
	}
}

func count(elems []xml.StartElement, name string) int {
	n := 0
	for _, e := range elems {
		if e.Name.Local == name {
			n++
		}
	}
	return n
}

func TestScales(t *testing.T) {
	tests := []struct {
		min, max float64
		unit     string
		want     string // the tick labels, then the unit
	}{
		{1040, 1093, "fds", "1040 1060 1080 1100 fds"},
		{0, 5, "sockets", "0 1 2 3 4 5 sockets"},
		{12, 12, "", "11.0 11.5 12.0 12.5 13.0 "},
		{48 << 20, 52 << 20, "B", "48 49 50 51 52 MiB"},
		{48 << 20, 52 << 20, "bytes", "48 49 50 51 52 MiB"},
		{0, 0.003, "", "0 0.001 0.002 0.003 "},
		{-3, 2, "", "-3 -2 -1 0 1 2 "},
		{0, 1 << 40, "B", "0 0.2 0.4 0.6 0.8 1.0 TiB"},
		{0, 1000 << 30, "B", "0 200 400 600 800 1000 GiB"},
	}
	for _, tt := range tests {
		s := newValueScale(tt.min, tt.max, tt.unit)
		var labels []string
		for _, v := range s.ticks {
			labels = append(labels, s.label(v))
		}
		if got := strings.Join(labels, " ") + " " + s.unit; got != tt.want {
			t.Errorf("scale(%v, %v, %q) = %q, want %q", tt.min, tt.max, tt.unit, got, tt.want)
		}
	}
	steps := []struct {
		span, want time.Duration
	}{
		{0, time.Millisecond},
		{50 * time.Second, 10 * time.Second},
		{10 * time.Minute, 2 * time.Minute},
		{time.Hour, 10 * time.Minute},
		{30 * 24 * time.Hour, 7 * 24 * time.Hour},
		{2000 * 24 * time.Hour, 448 * 24 * time.Hour},
	}
	for _, tt := range steps {
		if got := timeStep(tt.span); got != tt.want {
			t.Errorf("timeStep(%v) = %v, want %v", tt.span, got, tt.want)
		}
	}
	if got := timeStep(math.MaxInt64); got < math.MaxInt64/8 || got > math.MaxInt64/4 {
		t.Errorf("timeStep(MaxInt64) = %v", got)
	}
	for d, want := range map[time.Duration]string{
		0: "0", 250 * time.Millisecond: "250ms", 90 * time.Second: "1m30s", 2 * time.Hour: "2h",
		30 * time.Hour: "1d6h", -time.Minute: "-1m", 1500 * time.Millisecond: "1s500ms",
	} {
		if got := formatElapsed(d); got != want {
			t.Errorf("formatElapsed(%v) = %q, want %q", d, got, want)
		}
	}
}

// FuzzRenderFormats renders reports built from arbitrary text and numbers in
// the forms for people and CI: none may fail or panic, the XML forms must
// stay well-formed, and every annotation must stay on its line. (JSON is
// left out: encoding/json rejects the non-finite values these series may
// hold.)
func FuzzRenderFormats(f *testing.F) {
	f.Add("socket tcp 127.0.0.1:6379", "session \"w\"", "main.dial", "a.go", 17, 1.0, 2.0, int64(1))
	f.Add("<script>|`*", "\n::error::x", "%0A,:", "\xff\x00", -1, math.Inf(1), math.NaN(), int64(0))
	f.Add("", "", "", "", 0, -math.MaxFloat64, math.MaxFloat64, int64(-1))
	f.Fuzz(func(t *testing.T, subject, owner, fn, file string, line int, v1, v2 float64, step int64) {
		pts := []Point{{Time: clock, Value: v1}, {Time: clock.Add(time.Duration(step)), Value: v2}}
		for i := range 12 {
			pts = append(pts, Point{Time: clock.Add(time.Duration(i) * time.Second), Value: v1 + float64(i)*v2})
		}
		series := []Series{{Name: subject, Unit: owner, Points: pts}}
		fs := append(Growth(series, TrendOptions{}), Finding{
			Kind: KindLeftover, Subject: subject, Owner: owner, Count: 2,
			Evidence:   Evidence{Stack: []Frame{{Func: fn, File: file, Line: line}}, Path: []string{owner, subject}, Values: map[string]float64{subject: v1}},
			Suggestion: owner,
		})
		r := New(fs, series, nil)
		r.Metadata = map[string]string{subject: owner}
		r.Tables = []Table{{Title: subject, Columns: []string{owner}, Rows: [][]string{{fn, file}}}}
		for _, format := range []string{"text", "markdown", "junit", "html", "github"} {
			var b bytes.Buffer
			if err := Render(&b, r, format); err != nil {
				t.Fatalf("%s: %v", format, err)
			}
			switch format {
			case "html", "junit":
				d := xml.NewDecoder(&b)
				d.Strict = true
				for {
					_, err := d.Token()
					if err == io.EOF {
						break
					}
					if err != nil {
						t.Fatalf("%s is not well-formed: %v", format, err)
					}
				}
			case "github":
				lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
				if len(lines) != len(r.Findings) {
					t.Fatalf("%d annotation lines for %d findings", len(lines), len(r.Findings))
				}
				for _, l := range lines {
					if annotationRE.FindStringSubmatch(l) == nil {
						t.Fatalf("annotation escapes its command: %q", l)
					}
				}
			}
		}
	})
}

func BenchmarkRenderHTML(b *testing.B) {
	r := runReport(b)
	// Ten hours at one sample a second, in each of the report's series.
	for i := range r.Series {
		s := &r.Series[i]
		s.Points = gen(36000, time.Second, func(j int) float64 { return float64(j%600) + float64(i) })
		s.Analyze(TrendOptions{Warmup: time.Minute})
	}
	var size int
	for b.Loop() {
		var buf bytes.Buffer
		if err := Render(&buf, r, "html"); err != nil {
			b.Fatal(err)
		}
		size = buf.Len()
	}
	b.ReportMetric(float64(size), "bytes/page")
}
