package report

import (
	"bytes"
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// maxMarkdownFindings is how many findings the Markdown form lists. A
// pull-request comment holds at most 65,536 characters; the JSON and HTML
// forms list everything.
const maxMarkdownFindings = 50

// renderMarkdown writes r as GitHub-flavoured Markdown for a pull-request
// comment or a CI job summary: a heading with the summary line, the fail
// policy's verdict, a table of findings, their details folded in a
// <details> element, a table of the series with a sparkline each, and the
// report's tables. Everything that comes from the program under test
// (subjects, owners, frames, series names, table cells) is escaped, so it
// cannot add markup, links or mentions.
func renderMarkdown(w io.Writer, r *Report) error {
	fails, err := r.failing()
	if err != nil {
		return err
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "## leakcheck: %s\n\n", summaryLine(r.Summary))
	var about []string
	if r.Tool != "" {
		about = append(about, mdText(r.Tool))
	}
	if !r.Time.IsZero() {
		about = append(about, r.Time.UTC().Format("2006-01-02 15:04:05 MST"))
	}
	if len(about) > 0 {
		b.WriteString(strings.Join(about, ", ") + "\n\n")
	}
	for _, k := range slices.Sorted(maps.Keys(r.Metadata)) {
		fmt.Fprintf(&b, "- %s: %s\n", mdText(k), mdCode(r.Metadata[k], false))
	}
	if len(r.Metadata) > 0 {
		b.WriteByte('\n')
	}

	failing := 0
	for _, f := range r.Findings {
		if fails(f) {
			failing++
		}
	}
	if len(r.Findings) == 0 {
		b.WriteString("No leaks found.\n")
	} else {
		if r.Policy != "" {
			fmt.Fprintf(&b, "Fail policy %s: ", mdCode("--fail-on "+r.Policy, false))
		} else {
			b.WriteString("No fail policy recorded, so every finding counts: ")
		}
		if failing > 0 {
			fmt.Fprintf(&b, "**%d of %s fail.**\n\n", failing, plural(len(r.Findings), "finding"))
		} else {
			b.WriteString("**no finding fails.**\n\n")
		}
		shown := r.Findings[:min(len(r.Findings), maxMarkdownFindings)]
		b.WriteString("| # | fails | severity | kind | count | subject | where |\n")
		b.WriteString("| ---: | :---: | --- | --- | ---: | --- | --- |\n")
		for i, f := range shown {
			mark := ""
			if fails(f) {
				mark = "❌"
			}
			where := ""
			if fr, ok := location(f); ok {
				where = mdCode(fr.String(), true)
			} else if f.Evidence.Series != "" {
				where = "series " + mdCode(f.Evidence.Series, true)
			}
			fmt.Fprintf(&b, "| %d | %s | %s | %s | %d | %s | %s |\n",
				i+1, mark, f.Severity, mdText(string(f.Kind)), f.count(), mdCode(f.Subject, true), where)
		}
		if n := len(r.Findings) - len(shown); n > 0 {
			fmt.Fprintf(&b, "\n…and %s: see the JSON or HTML report.\n", plural(n, "more finding"))
		}
		fmt.Fprintf(&b, "\n<details><summary>Details of %s</summary>\n\n", plural(len(shown), "finding"))
		for i, f := range shown {
			writeMarkdownFinding(&b, i+1, f, r.Series)
		}
		b.WriteString("</details>\n")
	}

	if len(r.Series) > 0 {
		b.WriteString("\n### Series\n\n")
		b.WriteString("| series | verdict | slope | p | samples | shape |\n")
		b.WriteString("| --- | --- | ---: | ---: | ---: | --- |\n")
		for _, s := range r.Series {
			verdict, slope, p, n := "", "", "", strconv.Itoa(len(s.Points))
			switch t := s.Trend; {
			case s.Monotone:
				verdict = "not tested (high-water mark)"
			case t == nil:
				verdict = "not tested"
			default:
				verdict, n = string(t.Verdict), strconv.Itoa(t.Samples)
				if t.Verdict == VerdictGrowing {
					verdict = "**growing**"
				}
				if t.Verdict != VerdictNotEnoughData {
					slope, p = mdText(formatRate(t.Window.SlopePerHour, quantityUnit(s.Unit))), mdText(formatP(t.Window.P))
				}
				if t.Note != "" {
					verdict += ": " + mdText(t.Note)
				}
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s |\n", mdCode(s.Name, true), verdict, slope, p, n, sparkline(s.Points))
		}
	}

	for _, t := range r.Tables {
		fmt.Fprintf(&b, "\n### %s\n\n", mdText(t.Title))
		writeMarkdownTable(&b, t)
	}
	_, err = w.Write(b.Bytes())
	return err
}

// writeMarkdownFinding writes finding number n as a heading and a list of
// facts, the top frames in a code block.
func writeMarkdownFinding(b *bytes.Buffer, n int, f Finding, series []Series) {
	fmt.Fprintf(b, "#### %d. %s %s: %s\n\n", n, f.Severity, mdText(string(f.Kind)), mdCode(f.Subject, false))
	if f.count() > 1 {
		fmt.Fprintf(b, "- count: %d\n", f.count())
	}
	if f.Owner != "" {
		fmt.Fprintf(b, "- owner: %s\n", mdCode(f.Owner, false))
	}
	if f.Evidence.Because != "" {
		fmt.Fprintf(b, "- evidence: %s\n", mdText(f.Evidence.Because))
	}
	for _, k := range slices.Sorted(maps.Keys(f.Evidence.Values)) {
		label, value := formatValue(k, f.Evidence.Values[k])
		fmt.Fprintf(b, "- %s: %s\n", mdText(label), mdText(value))
	}
	if t := f.Evidence.Trend; t != nil {
		unit := quantityUnit(seriesUnit(series, f.Evidence.Series))
		fmt.Fprintf(b, "- trend: %s\n", mdText(fmt.Sprintf("%s %s, p %s, tau %.2f, %d samples; recent half %s, p %s",
			t.Verdict, formatRate(t.Window.SlopePerHour, unit), formatP(t.Window.P), t.Window.Tau, t.Samples,
			formatRate(t.Recent.SlopePerHour, unit), formatP(t.Recent.P))))
		if t.Note != "" {
			fmt.Fprintf(b, "- note: %s\n", mdText(t.Note))
		}
	}
	if top := TopFrames(f.Evidence.Stack, stackFrames); len(top) > 0 {
		lines := make([]string, len(top))
		for i, fr := range top {
			lines[i] = oneLine(cleanText(fr.String()))
		}
		b.WriteString("- stack:\n")
		writeCodeBlock(b, "  ", lines)
	}
	if len(f.Evidence.Path) > 0 {
		lines := make([]string, len(f.Evidence.Path))
		for i, step := range f.Evidence.Path {
			lines[i] = oneLine(cleanText(step))
			if i > 0 {
				lines[i] = "-> " + lines[i]
			}
		}
		b.WriteString("- path:\n")
		writeCodeBlock(b, "  ", lines)
	}
	if f.Suggestion != "" {
		fmt.Fprintf(b, "- fix: %s\n", mdText(f.Suggestion))
	}
	b.WriteByte('\n')
}

// writeCodeBlock writes lines as a fenced code block indented by indent,
// with a fence longer than any run of backticks in them.
func writeCodeBlock(b *bytes.Buffer, indent string, lines []string) {
	fence := strings.Repeat("`", max(3, longestRun(strings.Join(lines, "\n"), '`')+1))
	b.WriteString(indent + fence + "\n")
	for _, l := range lines {
		b.WriteString(indent + l + "\n")
	}
	b.WriteString(indent + fence + "\n")
}

func writeMarkdownTable(b *bytes.Buffer, t Table) {
	width := len(t.Columns)
	for _, row := range t.Rows {
		width = max(width, len(row))
	}
	if width == 0 {
		return
	}
	cell := func(row []string, i int) string {
		if i < len(row) {
			return row[i]
		}
		return ""
	}
	b.WriteString("|")
	for i := range width {
		fmt.Fprintf(b, " %s |", mdText(cell(t.Columns, i)))
	}
	b.WriteString("\n|")
	for i := range width {
		align := " --- |"
		if numericColumn(t.Rows, i) {
			align = " ---: |"
		}
		b.WriteString(align)
	}
	b.WriteByte('\n')
	for _, row := range t.Rows {
		b.WriteString("|")
		for i := range width {
			fmt.Fprintf(b, " %s |", mdText(cell(row, i)))
		}
		b.WriteByte('\n')
	}
}

// numericColumn reports whether every non-empty cell of column i reads as a
// number (with a unit or percent sign after it), so it is right-aligned.
func numericColumn(rows [][]string, i int) bool {
	seen := false
	for _, row := range rows {
		if i >= len(row) || row[i] == "" {
			continue
		}
		r, _ := utf8.DecodeRuneInString(strings.TrimLeft(row[i], "+-"))
		if !unicode.IsDigit(r) && r != '.' {
			return false
		}
		seen = true
	}
	return seen
}

// mdText escapes s for Markdown running text and table cells: one line,
// ASCII punctuation that could start markup backslash-escaped.
func mdText(s string) string {
	s = oneLine(cleanText(s))
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune("\\`*_[]<>|~#&!", r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// mdCode writes s as an inline code span, which shows it verbatim: no
// emphasis, links, mentions or HTML. In a table, pipes are escaped, as
// GitHub's tables require even inside code.
func mdCode(s string, inTable bool) string {
	s = oneLine(cleanText(s))
	if strings.TrimSpace(s) == "" {
		return ""
	}
	if inTable {
		s = strings.ReplaceAll(s, "|", `\|`)
	}
	fence := strings.Repeat("`", longestRun(s, '`')+1)
	if strings.HasPrefix(s, "`") || strings.HasSuffix(s, "`") {
		s = " " + s + " "
	}
	return fence + s + fence
}

// longestRun returns the length of the longest run of c in s.
func longestRun(s string, c rune) int {
	longest, run := 0, 0
	for _, r := range s {
		if r == c {
			run++
			longest = max(longest, run)
		} else {
			run = 0
		}
	}
	return longest
}

// sparkWidth is the most characters a sparkline has.
const sparkWidth = 16

// sparkline draws the finite values of pts, in time order, as a row of block
// characters from ▁ (the lowest) to █ (the highest); a longer series is
// averaged over sparkWidth consecutive stretches.
func sparkline(pts []Point) string {
	pts = slices.Clone(pts)
	slices.SortStableFunc(pts, comparePointTimes)
	var vs []float64
	for _, p := range pts {
		if isFinite(p.Value) {
			vs = append(vs, p.Value)
		}
	}
	if len(vs) == 0 {
		return ""
	}
	n := min(len(vs), sparkWidth)
	buckets := make([]float64, n)
	for i := range n {
		lo, hi := i*len(vs)/n, (i+1)*len(vs)/n
		var sum float64
		for _, v := range vs[lo:hi] {
			sum += v / float64(hi-lo) // divided first, so huge values cannot overflow
		}
		buckets[i] = sum
	}
	lo, hi := slices.Min(buckets), slices.Max(buckets)
	const levels = "▁▂▃▄▅▆▇█"
	blocks := []rune(levels)
	var b strings.Builder
	for _, v := range buckets {
		level := 0
		if hi > lo { // halved, so that hi - lo cannot overflow
			frac := (v/2 - lo/2) / (hi/2 - lo/2)
			level = min(max(int(math.Round(frac*float64(len(blocks)-1))), 0), len(blocks)-1)
		}
		b.WriteRune(blocks[level])
	}
	return b.String()
}
