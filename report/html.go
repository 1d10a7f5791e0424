package report

import (
	"fmt"
	"html/template"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
)

// renderHTML writes r as one self-contained page: a summary, every finding
// with its evidence, a chart of every series, and the report's tables. The
// page loads nothing: its style is inline, its charts are inline SVG drawn
// by svgChart, it has no script, and its Content-Security-Policy forbids any
// fetch, so it reads the same from a CI artifact, a mail or a file on disk.
func renderHTML(w io.Writer, r *Report) error {
	fails, err := r.failing()
	if err != nil {
		return err
	}
	t, err := template.New("report").Parse(htmlTemplate)
	if err != nil {
		return fmt.Errorf("parsing the page template: %w", err)
	}
	var b strings.Builder
	if err := t.Execute(&b, newHTMLPage(r, fails)); err != nil {
		return err
	}
	// The template escapes markup; this pass takes out what it lets through
	// (invalid UTF-8, control characters), whichever field carried it.
	_, err = io.WriteString(w, cleanText(b.String()))
	return err
}

// htmlPage is what the page template shows, every value already formatted.
type htmlPage struct {
	Title    string
	Time     string
	Metadata [][2]string
	Summary  string
	Policy   string
	Failing  int
	Counts   []htmlCount
	Findings []htmlFinding
	Series   []htmlSeries
	Tables   []Table
	Schema   string
}

type htmlCount struct {
	Class, Label string
	N            int
}

type htmlFinding struct {
	ID         string
	N          int
	Severity   string
	Kind       Kind
	Subject    string
	Owner      string
	Count      int
	Fails      bool
	Facts      [][2]string // label, value
	Top        []string    // the program's own top frames
	Stack      []string    // every frame, as captured
	Path       []string
	Suggestion string
	SeriesID   string // the chart of the finding's series, if any
	SeriesName string
	Signature  string
}

type htmlSeries struct {
	ID       string
	Name     string
	Owner    string
	Verdict  string
	Detail   string
	Note     string
	Chart    template.HTML
	Warmup   bool
	Fit      bool
	Monotone bool
}

func newHTMLPage(r *Report, fails func(Finding) bool) htmlPage {
	title := "leakcheck report"
	if r.Tool != "" {
		title = r.Tool + " report"
	}
	p := htmlPage{Title: title, Summary: summaryLine(r.Summary), Policy: r.Policy, Tables: r.Tables, Schema: r.Schema}
	if !r.Time.IsZero() {
		p.Time = r.Time.UTC().Format("2006-01-02 15:04:05 MST")
	}
	for _, k := range slices.Sorted(maps.Keys(r.Metadata)) {
		p.Metadata = append(p.Metadata, [2]string{k, r.Metadata[k]})
	}
	for _, sev := range []Severity{SeverityError, SeverityWarning, SeverityInfo} {
		if n := r.Summary.BySeverity[sev]; n > 0 {
			label := sev.String()
			if n > 1 && sev != SeverityInfo {
				label += "s"
			}
			p.Counts = append(p.Counts, htmlCount{Class: sev.String(), Label: label, N: n})
		}
	}
	seriesID := map[string]string{}
	for i, s := range r.Series {
		id := "series-" + strconv.Itoa(i+1)
		seriesID[s.Name] = id
		p.Series = append(p.Series, newHTMLSeries(s, id))
	}
	for i, f := range r.Findings {
		hf := htmlFinding{
			ID: "finding-" + strconv.Itoa(i+1), N: i + 1,
			Severity: f.Severity.String(), Kind: f.Kind, Subject: f.Subject, Owner: f.Owner,
			Count: f.count(), Fails: fails(f), Path: f.Evidence.Path, Suggestion: f.Suggestion,
			Signature: f.Signature,
		}
		if hf.Fails {
			p.Failing++
		}
		if f.Evidence.Because != "" {
			hf.Facts = append(hf.Facts, [2]string{"evidence", f.Evidence.Because})
		}
		for _, k := range slices.Sorted(maps.Keys(f.Evidence.Values)) {
			label, value := formatValue(k, f.Evidence.Values[k])
			hf.Facts = append(hf.Facts, [2]string{label, value})
		}
		if t := f.Evidence.Trend; t != nil {
			unit := quantityUnit(seriesUnit(r.Series, f.Evidence.Series))
			hf.Facts = append(hf.Facts,
				[2]string{"trend", fmt.Sprintf("%s %s, p %s, tau %.2f, %d samples", t.Verdict, formatRate(t.Window.SlopePerHour, unit), formatP(t.Window.P), t.Window.Tau, t.Samples)},
				[2]string{"recent", fmt.Sprintf("%s, p %s over the recent half", formatRate(t.Recent.SlopePerHour, unit), formatP(t.Recent.P))})
			if t.Note != "" {
				hf.Facts = append(hf.Facts, [2]string{"note", t.Note})
			}
		}
		for _, fr := range TopFrames(f.Evidence.Stack, stackFrames) {
			hf.Top = append(hf.Top, fr.String())
		}
		for _, fr := range f.Evidence.Stack {
			line := fr.Func
			if fr.File != "" {
				line += "\n\t" + fr.File + ":" + strconv.Itoa(fr.Line)
			}
			hf.Stack = append(hf.Stack, line)
		}
		if id, ok := seriesID[f.Evidence.Series]; ok {
			hf.SeriesID, hf.SeriesName = id, f.Evidence.Series
		}
		p.Findings = append(p.Findings, hf)
	}
	return p
}

func newHTMLSeries(s Series, id string) htmlSeries {
	hs := htmlSeries{ID: id, Name: s.Name, Owner: s.Owner, Verdict: "not tested", Chart: svgChart(s, id), Monotone: s.Monotone}
	unit := quantityUnit(s.Unit)
	switch t := s.Trend; {
	case s.Monotone:
		hs.Detail = "a high-water mark: it cannot fall, so it is charted but not tested"
	case t == nil:
		hs.Detail = plural(len(s.Points), "sample")
	default:
		hs.Verdict = string(t.Verdict)
		hs.Note = t.Note
		hs.Warmup = !t.WarmupEnd.IsZero()
		hs.Fit = t.Verdict == VerdictGrowing && !t.Window.From.IsZero()
		if t.Verdict == VerdictNotEnoughData {
			hs.Detail = fmt.Sprintf("%s after the warm-up; the test needs more", plural(t.Samples, "sample"))
		} else {
			hs.Detail = fmt.Sprintf("%s, p %s, tau %.2f, %s tested (recent half %s, p %s)",
				formatRate(t.Window.SlopePerHour, unit), formatP(t.Window.P), t.Window.Tau, plural(t.Samples, "sample"),
				formatRate(t.Recent.SlopePerHour, unit), formatP(t.Recent.P))
		}
	}
	return hs
}

// htmlTemplate is the page. Its markup is also well-formed XML (void
// elements closed, no named entities), which the tests use to check it.
// Colours are CSS variables, swapped for a dark colour scheme.
const htmlTemplate = `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8"/>
<meta name="viewport" content="width=device-width, initial-scale=1"/>
<meta name="color-scheme" content="light dark"/>
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:"/>
<title>{{.Title}}{{with .Time}}, {{.}}{{end}}</title>
<style>
:root {
  --bg: #ffffff; --fg: #1f2328; --muted: #59636e; --line: #d1d9e0; --panel: #f6f8fa;
  --error: #cf222e; --warning: #9a6700; --info: #0969da; --ok: #1a7f37;
  --series: #0969da; --fit: #cf222e; --warm: rgba(154, 103, 0, 0.12); --grid: #e6eaef;
}
@media (prefers-color-scheme: dark) {
  :root {
    --bg: #0d1117; --fg: #e6edf3; --muted: #9198a1; --line: #3d444d; --panel: #151b23;
    --error: #ff7b72; --warning: #d29922; --info: #58a6ff; --ok: #3fb950;
    --series: #58a6ff; --fit: #ff7b72; --warm: rgba(210, 153, 34, 0.16); --grid: #262c36;
  }
}
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--fg);
  font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", sans-serif; }
main { max-width: 980px; margin: 0 auto; padding: 24px 20px 48px; }
h1 { font-size: 1.6em; margin: 0 0 4px; }
h2 { font-size: 1.25em; margin: 36px 0 12px; padding-bottom: 4px; border-bottom: 1px solid var(--line); }
h3 { font-size: 1.05em; margin: 0 0 8px; overflow-wrap: anywhere; }
a { color: var(--info); }
code, pre, .mono { font-family: ui-monospace, SFMono-Regular, "SF Mono", Menlo, Consolas, monospace; font-size: 0.9em; }
pre { margin: 4px 0 0; padding: 8px 10px; background: var(--panel); border-radius: 6px; overflow-x: auto; }
.muted { color: var(--muted); }
.summary { font-size: 1.1em; margin: 12px 0; }
.badge { display: inline-block; padding: 0 8px; border-radius: 10px; font-size: 0.85em; font-weight: 600;
  border: 1px solid currentColor; white-space: nowrap; }
.error { color: var(--error); } .warning { color: var(--warning); } .info { color: var(--info); } .ok { color: var(--ok); }
dl.meta { display: grid; grid-template-columns: max-content 1fr; gap: 2px 16px; margin: 8px 0; }
dl.meta dt { color: var(--muted); } dl.meta dd { margin: 0; overflow-wrap: anywhere; }
table { border-collapse: collapse; width: 100%; margin: 8px 0; }
th, td { text-align: left; padding: 4px 8px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { color: var(--muted); font-weight: 600; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
td.subject { overflow-wrap: anywhere; }
.finding, figure { background: var(--panel); border: 1px solid var(--line); border-radius: 8px; padding: 14px 16px; margin: 12px 0; }
.finding.fails { border-left: 4px solid var(--error); }
.fix { margin: 8px 0 0; }
details { margin-top: 6px; } summary { cursor: pointer; color: var(--muted); }
figure { margin: 16px 0; }
figcaption { margin-bottom: 6px; }
.legend { font-size: 0.85em; color: var(--muted); margin-top: 4px; }
.swatch { display: inline-block; width: 18px; height: 0; vertical-align: middle; margin: 0 4px 0 10px; }
.swatch.line { border-top: 2px solid var(--series); }
.swatch.fit { border-top: 2px dashed var(--fit); }
.swatch.warmup { height: 10px; background: var(--warm); border: 1px solid var(--warning); }
svg.chart { display: block; width: 100%; height: auto; }
svg.chart text { fill: var(--muted); font-size: 11px; font-family: inherit; }
svg.chart .grid { stroke: var(--grid); }
svg.chart .tick, svg.chart .frame { stroke: var(--line); }
svg.chart .line { fill: none; stroke: var(--series); stroke-width: 1.8; stroke-linejoin: round; }
svg.chart circle { fill: var(--series); }
svg.chart .fit { stroke: var(--fit); stroke-width: 2; stroke-dasharray: 7 5; }
svg.chart .warmup { fill: var(--warm); }
svg.chart text.warmup-label { fill: var(--warning); }
footer { margin-top: 40px; font-size: 0.85em; }
</style>
</head>
<body>
<main>
<header>
<h1>{{.Title}}</h1>
{{with .Time}}<div class="muted">{{.}}</div>{{end}}
{{with .Metadata}}<dl class="meta">{{range .}}<dt>{{index . 0}}</dt><dd class="mono">{{index . 1}}</dd>{{end}}</dl>{{end}}
<p class="summary">{{.Summary}}{{range .Counts}} <span class="badge {{.Class}}">{{.N}} {{.Label}}</span>{{end}}</p>
{{if .Findings}}<p>{{if .Policy}}Fail policy <code>--fail-on {{.Policy}}</code>: {{else}}No fail policy recorded, so every finding counts: {{end}}
{{if .Failing}}<strong class="error">{{.Failing}} of {{len .Findings}} findings fail</strong>{{else}}<strong class="ok">no finding fails</strong>{{end}}.</p>{{end}}
</header>

<section id="findings">
<h2>Findings</h2>
{{if .Findings}}
<table>
<thead><tr><th class="num">#</th><th>severity</th><th>kind</th><th class="num">count</th><th>subject</th><th>fails</th></tr></thead>
<tbody>
{{range .Findings}}<tr><td class="num"><a href="#{{.ID}}">{{.N}}</a></td><td class="{{.Severity}}">{{.Severity}}</td><td>{{.Kind}}</td><td class="num">{{.Count}}</td><td class="subject">{{.Subject}}</td><td>{{if .Fails}}<span class="error">fails</span>{{else}}<span class="muted">no</span>{{end}}</td></tr>
{{end}}</tbody>
</table>
{{range .Findings}}
<article class="finding{{if .Fails}} fails{{end}}" id="{{.ID}}">
<h3>#{{.N}} <span class="badge {{.Severity}}">{{.Severity}}</span> {{.Kind}}: {{.Subject}}</h3>
<dl class="meta">
{{if gt .Count 1}}<dt>count</dt><dd>{{.Count}}</dd>{{end}}
{{with .Owner}}<dt>owner</dt><dd>{{.}}</dd>{{end}}
{{range .Facts}}<dt>{{index . 0}}</dt><dd>{{index . 1}}</dd>{{end}}
{{if .SeriesID}}<dt>chart</dt><dd><a href="#{{.SeriesID}}">{{.SeriesName}}</a></dd>{{end}}
{{with .Top}}<dt>stack</dt><dd class="mono">{{range $i, $f := .}}{{if $i}}<br/>{{end}}{{$f}}{{end}}</dd>{{end}}
{{with .Path}}<dt>path</dt><dd class="mono">{{range $i, $s := .}}{{if $i}}<br/>{{end}}{{if $i}}-&gt; {{end}}{{$s}}{{end}}</dd>{{end}}
<dt>signature</dt><dd class="mono">{{.Signature}}</dd>
</dl>
{{with .Suggestion}}<p class="fix"><strong>Fix:</strong> {{.}}</p>{{end}}
{{with .Stack}}<details><summary>full stack ({{len .}} frames)</summary><pre>{{range .}}{{.}}
{{end}}</pre></details>{{end}}
</article>
{{end}}
{{else}}<p class="ok">No leaks found.</p>{{end}}
</section>

{{if .Series}}<section id="series">
<h2>Series</h2>
<p class="muted">Every series sampled, with the verdict of its trend test (Mann-Kendall with a Theil-Sen slope, after the warm-up).</p>
{{range .Series}}
<figure id="{{.ID}}">
<figcaption><strong>{{.Name}}</strong>{{with .Owner}} <span class="muted">owned by {{.}}</span>{{end}}
<span class="badge {{if eq .Verdict "growing"}}warning{{else}}muted{{end}}">{{.Verdict}}</span>
<span class="muted">{{.Detail}}</span>{{with .Note}}<br/><span class="muted">Note: {{.}}</span>{{end}}</figcaption>
{{.Chart}}
<div class="legend"><span class="swatch line"></span>samples{{if .Warmup}}<span class="swatch warmup"></span>warm-up, not tested{{end}}{{if .Fit}}<span class="swatch fit"></span>fitted trend (Theil-Sen){{end}}</div>
</figure>
{{end}}
</section>{{end}}

{{range .Tables}}<section class="table">
<h2>{{.Title}}</h2>
<table>
<thead><tr>{{range .Columns}}<th>{{.}}</th>{{end}}</tr></thead>
<tbody>
{{range .Rows}}<tr>{{range .}}<td>{{.}}</td>{{end}}</tr>
{{end}}</tbody>
</table>
</section>
{{end}}
<footer class="muted">{{.Summary}}. Report schema {{.Schema}}.</footer>
</main>
</body>
</html>
`
