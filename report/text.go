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
	"time"
	"unicode/utf8"

	"github.com/olekukonko/tablewriter"
	"github.com/olekukonko/tablewriter/renderer"
	"github.com/olekukonko/tablewriter/tw"
)

// textWidth is the terminal width the text form is laid out for.
const textWidth = 80

// detail layout: "    label  value", values wrapped at textWidth.
const (
	detailIndent = 4
	labelWidth   = 7
)

// renderText writes r for people: a header, a table of findings most important
// first, the details of each finding, the report's listings (Tables), a table
// of the series analysed, and a summary line. Lines fit in 80 columns except
// for words longer than that.
func renderText(w io.Writer, r *Report) error {
	var b bytes.Buffer
	writeHeader(&b, r)
	if len(r.Findings) > 0 {
		b.WriteByte('\n')
		if err := findingsTable(&b, r.Findings); err != nil {
			return err
		}
		for i, f := range r.Findings {
			b.WriteByte('\n')
			writeDetails(&b, i+1, f, r.Series)
		}
	}
	for _, t := range r.Tables {
		b.WriteByte('\n')
		if err := listingTable(&b, t); err != nil {
			return err
		}
	}
	if len(r.Series) > 0 {
		b.WriteByte('\n')
		if err := seriesTable(&b, r.Series); err != nil {
			return err
		}
	}
	b.WriteByte('\n')
	b.WriteString(summaryLine(r.Summary))
	b.WriteByte('\n')
	_, err := w.Write(b.Bytes())
	return err
}

func writeHeader(b *bytes.Buffer, r *Report) {
	title := "leakcheck report"
	if r.Tool != "" {
		title = r.Tool + " report"
	}
	if !r.Time.IsZero() {
		title += ", " + r.Time.UTC().Format("2006-01-02 15:04:05 MST")
	}
	writeWrapped(b, "", title, 0)
	keys := slices.Sorted(maps.Keys(r.Metadata))
	width := 0
	for _, k := range keys {
		width = max(width, utf8.RuneCountInString(k))
	}
	for _, k := range keys {
		label := "  " + oneLine(k) + strings.Repeat(" ", width-utf8.RuneCountInString(k)+2)
		writeWrapped(b, label, oneLine(r.Metadata[k]), 2+width+2)
	}
}

// newTable returns a borderless table: columns separated by two spaces, a
// dashed line under the header, no automatic wrapping or reformatting.
func newTable(w io.Writer, aligns []tw.Align) *tablewriter.Table {
	return tablewriter.NewTable(w,
		tablewriter.WithRenderer(renderer.NewBlueprint(tw.Rendition{
			Borders: tw.BorderNone,
			Symbols: tw.NewSymbols(tw.StyleASCII),
			Settings: tw.Settings{
				Separators: tw.Separators{BetweenColumns: tw.Off, BetweenRows: tw.Off},
				Lines:      tw.Lines{ShowHeaderLine: tw.On},
			},
		})),
		tablewriter.WithHeaderAutoFormat(tw.Off),
		tablewriter.WithHeaderAutoWrap(tw.WrapNone),
		tablewriter.WithRowAutoWrap(tw.WrapNone),
		tablewriter.WithTrimSpace(tw.Off),
		tablewriter.WithPadding(tw.Padding{Left: "", Right: "  ", Overwrite: true}),
		tablewriter.WithHeaderAlignmentConfig(tw.CellAlignment{PerColumn: aligns}),
		tablewriter.WithRowAlignmentConfig(tw.CellAlignment{PerColumn: aligns}),
	)
}

// renderTable renders header and rows into b, without trailing blanks. The
// flex column is cut (in the middle) so that every line fits textWidth.
func renderTable(b *bytes.Buffer, aligns []tw.Align, flex int, header []string, rows [][]string) error {
	fixed := 0
	for col := range header {
		if col == flex {
			continue
		}
		width := utf8.RuneCountInString(header[col])
		for _, row := range rows {
			width = max(width, utf8.RuneCountInString(row[col]))
		}
		fixed += width + 2
	}
	budget := max(textWidth-fixed-2, 12)
	for _, row := range rows {
		row[flex] = shorten(row[flex], budget)
	}
	var out bytes.Buffer
	t := newTable(&out, aligns)
	t.Header(anySlice(header)...)
	for _, row := range rows {
		if err := t.Append(anySlice(row)...); err != nil {
			return fmt.Errorf("building table: %w", err)
		}
	}
	if err := t.Render(); err != nil {
		return fmt.Errorf("rendering table: %w", err)
	}
	for line := range strings.Lines(out.String()) {
		b.WriteString(strings.TrimRight(line, " \n"))
		b.WriteByte('\n')
	}
	return nil
}

func anySlice(s []string) []any {
	out := make([]any, len(s))
	for i, v := range s {
		out[i] = v
	}
	return out
}

func findingsTable(b *bytes.Buffer, fs []Finding) error {
	rows := make([][]string, len(fs))
	for i, f := range fs {
		rows[i] = []string{strconv.Itoa(i + 1), f.Severity.String(), string(f.Kind), strconv.Itoa(f.count()), oneLine(f.Subject)}
	}
	return renderTable(b, []tw.Align{tw.AlignRight, tw.AlignLeft, tw.AlignLeft, tw.AlignRight, tw.AlignLeft}, 4,
		[]string{"#", "SEVERITY", "KIND", "COUNT", "SUBJECT"}, rows)
}

func seriesTable(b *bytes.Buffer, series []Series) error {
	rows := make([][]string, len(series))
	var notes []string
	for i, s := range series {
		verdict, slope, p, n := "-", "-", "-", strconv.Itoa(len(s.Points))
		if t := s.Trend; t != nil {
			verdict, n = string(t.Verdict), strconv.Itoa(t.Samples)
			if t.Verdict != VerdictNotEnoughData {
				slope, p = formatRate(t.Window.SlopePerHour, s.Unit), formatP(t.Window.P)
			}
			if t.Note != "" {
				verdict += "*"
				notes = append(notes, fmt.Sprintf("* %s: %s", oneLine(s.Name), t.Note))
			}
		}
		rows[i] = []string{oneLine(s.Name), verdict, slope, p, n}
	}
	if err := renderTable(b, []tw.Align{tw.AlignLeft, tw.AlignLeft, tw.AlignRight, tw.AlignRight, tw.AlignRight}, 0,
		[]string{"SERIES", "VERDICT", "SLOPE", "P", "SAMPLES"}, rows); err != nil {
		return err
	}
	for _, note := range notes {
		writeWrapped(b, "", note, 2)
	}
	return nil
}

// listingTable writes one of the report's Tables: its title, then its rows
// under a header. Columns whose cells are all numbers (quantities, percentages,
// signed changes) are aligned right and kept whole; text columns are cut in
// the middle, the widest first, to fit the width.
func listingTable(b *bytes.Buffer, t Table) error {
	writeWrapped(b, "", oneLine(t.Title), 2)
	if len(t.Columns) == 0 {
		return nil
	}
	if len(t.Rows) == 0 {
		b.WriteString("  (none)\n")
		return nil
	}
	header := make([]string, len(t.Columns))
	for i, c := range t.Columns {
		header[i] = oneLine(c)
	}
	// Copy the rows: renderTable shortens cells in place, and a row may be
	// shorter or longer than the header.
	rows := make([][]string, len(t.Rows))
	for i, r := range t.Rows {
		row := make([]string, len(header))
		for j := range row {
			if j < len(r) {
				row[j] = oneLine(r[j])
			}
		}
		rows[i] = row
	}
	// Columns of numbers are aligned right and never cut. Text columns are
	// cut in the middle, the widest first, until the table fits.
	aligns := make([]tw.Align, len(header))
	widths := make([]int, len(header))
	text := make([]bool, len(header))
	total := 2 * (len(header) - 1)
	for col := range header {
		numeric := true
		widths[col] = utf8.RuneCountInString(header[col])
		for _, row := range rows {
			numeric = numeric && numericCell(row[col])
			widths[col] = max(widths[col], utf8.RuneCountInString(row[col]))
		}
		aligns[col], text[col] = tw.AlignLeft, !numeric
		if numeric {
			aligns[col] = tw.AlignRight
		}
		total += widths[col]
	}
	flex := len(header) - 1
	for total > textWidth-2 {
		widest := -1
		for col := range header {
			if text[col] && widths[col] > minCutWidth && (widest < 0 || widths[col] > widths[widest]) {
				widest = col
			}
		}
		if widest < 0 {
			break // nothing left to cut: the table is wider than the page
		}
		widths[widest]--
		total--
		flex = widest
	}
	for _, row := range rows {
		for col := range row {
			if text[col] {
				row[col] = shorten(row[col], widths[col])
			}
		}
	}
	return renderTable(b, aligns, flex, header, rows)
}

// minCutWidth is the narrowest a text column of a listing is cut to.
const minCutWidth = 12

// numericCell reports whether a table cell holds a number, with an optional
// sign and unit ("+1.5 MiB", "35%", "-"), rather than text. "new" is the
// relative change of something that was not there before.
func numericCell(s string) bool {
	s = strings.TrimLeft(s, "+-")
	if s == "" || s == "new" {
		return true // "", "-": no value
	}
	if s[0] < '0' || s[0] > '9' {
		return false
	}
	return strings.Count(s, " ") <= 1
}

// writeDetails writes finding number n: its subject, then one labelled line
// (or more) per fact.
func writeDetails(b *bytes.Buffer, n int, f Finding, series []Series) {
	writeWrapped(b, fmt.Sprintf("#%d ", n), fmt.Sprintf("%s %s: %s", f.Severity, f.Kind, oneLine(f.Subject)), detailIndent)
	detail := func(label, value string) {
		pad := strings.Repeat(" ", max(labelWidth-len(label), 1))
		writeWrapped(b, strings.Repeat(" ", detailIndent)+label+pad, oneLine(value), detailIndent+labelWidth)
	}
	if f.count() > 1 {
		detail("count", strconv.Itoa(f.count()))
	}
	if f.Owner != "" {
		detail("owner", f.Owner)
	}
	for _, fact := range valueFacts(f) {
		detail(fact[0], fact[1])
	}
	if t := f.Evidence.Trend; t != nil {
		unit := ""
		for _, s := range series {
			if s.Name == f.Evidence.Series {
				unit = s.Unit
			}
		}
		detail("trend", fmt.Sprintf("%s %s, p %s, tau %.2f, %d samples",
			t.Verdict, formatRate(t.Window.SlopePerHour, unit), formatP(t.Window.P), t.Window.Tau, t.Samples))
		detail("recent", fmt.Sprintf("%s, p %s over the recent half", formatRate(t.Recent.SlopePerHour, unit), formatP(t.Recent.P)))
		if t.Note != "" {
			detail("note", t.Note)
		}
	}
	for i, fr := range TopFrames(f.Evidence.Stack, stackFrames) {
		label := ""
		if i == 0 {
			label = "stack"
		}
		detail(label, fr.String())
	}
	for i, step := range f.Evidence.Path {
		label, prefix := "", "-> "
		if i == 0 {
			label, prefix = "path", ""
		}
		detail(label, prefix+step)
	}
	if f.Suggestion != "" {
		detail("fix", f.Suggestion)
	}
}

// valueFacts returns what a finding's verdict rests on, its named values,
// related series and instances as labelled facts, for every renderer to
// list: ("evidence", "growing at 120/h"), ("limit", "1024"), ("with",
// "fds, rss_bytes").
func valueFacts(f Finding) [][2]string {
	var facts [][2]string
	if f.Evidence.Because != "" {
		facts = append(facts, [2]string{"evidence", f.Evidence.Because})
	}
	for _, k := range slices.Sorted(maps.Keys(f.Evidence.Values)) {
		label, value := formatValue(k, f.Evidence.Values[k])
		facts = append(facts, [2]string{label, value})
	}
	if len(f.Evidence.Related) > 0 {
		facts = append(facts, [2]string{"with", strings.Join(f.Evidence.Related, ", ")})
	}
	if n := len(f.Evidence.Instances); n > 0 {
		list := strings.Join(f.Evidence.Instances, ", ")
		if more := f.count() - n; more > 0 {
			list += fmt.Sprintf(" and %d more", more)
		}
		facts = append(facts, [2]string{"which", list})
	}
	return facts
}

// formatValue labels and formats a named evidence value; a key's unit suffix
// ("_seconds", "_bytes") says how.
func formatValue(key string, v float64) (label, value string) {
	switch {
	case key == "gcs":
		if v == 1 {
			return "gcs", "survived 1 garbage collection"
		}
		return "gcs", fmt.Sprintf("survived %s garbage collections", formatNumber(v))
	case strings.HasSuffix(key, "_seconds"):
		return strings.ReplaceAll(strings.TrimSuffix(key, "_seconds"), "_", " "), formatDuration(v)
	case strings.HasSuffix(key, "_bytes"):
		return strings.ReplaceAll(strings.TrimSuffix(key, "_bytes"), "_", " "), formatQuantity(v, "bytes")
	}
	return key, formatNumber(v)
}

func formatDuration(seconds float64) string {
	if math.IsNaN(seconds) || math.Abs(seconds) > math.MaxInt64/1e9 {
		return formatNumber(seconds) + "s"
	}
	d := time.Duration(seconds * float64(time.Second))
	if d >= time.Second || d <= -time.Second {
		return d.Round(time.Second).String()
	}
	return d.Round(time.Millisecond).String()
}

// formatNumber writes v compactly: whole numbers and large values without
// decimals, others with up to three significant digits.
func formatNumber(v float64) string {
	switch a := math.Abs(v); {
	case a >= 100 || v == math.Trunc(v):
		return strconv.FormatFloat(v, 'f', 0, 64)
	case a >= 1:
		return strconv.FormatFloat(v, 'f', 1, 64)
	}
	return strconv.FormatFloat(v, 'g', 2, 64)
}

// formatQuantity writes v in unit; bytes are scaled to KiB, MiB, GiB, TiB.
func formatQuantity(v float64, unit string) string {
	if unit == "bytes" {
		scaled, suffix := v, "B"
		for _, s := range []string{"KiB", "MiB", "GiB", "TiB"} {
			if math.Abs(scaled) < 1024 {
				break
			}
			scaled, suffix = scaled/1024, s
		}
		if suffix == "B" {
			return formatNumber(scaled) + " B"
		}
		return strconv.FormatFloat(scaled, 'f', 1, 64) + " " + suffix
	}
	if unit == "" {
		return formatNumber(v)
	}
	return formatNumber(v) + " " + unit
}

// formatRate writes a slope per hour with its sign, e.g. "+120 fds/h".
func formatRate(perHour float64, unit string) string {
	sign := ""
	if perHour > 0 {
		sign = "+"
	}
	return sign + formatQuantity(perHour, unit) + "/h"
}

func formatP(p float64) string {
	if p < 0.001 {
		return "<0.001"
	}
	return strconv.FormatFloat(p, 'f', 3, 64)
}

// summaryLine says "3 findings (1 error, 2 warnings), 2 suppressed" or "no
// leaks found".
func summaryLine(s Summary) string {
	var line string
	if s.Findings == 0 {
		line = "no leaks found"
	} else {
		var parts []string
		for _, sev := range []Severity{SeverityError, SeverityWarning, SeverityInfo} {
			n := s.BySeverity[sev]
			switch {
			case n == 0:
			case n == 1 || sev == SeverityInfo:
				parts = append(parts, fmt.Sprintf("%d %s", n, sev))
			default:
				parts = append(parts, fmt.Sprintf("%d %ss", n, sev))
			}
		}
		line = plural(s.Findings, "finding")
		if len(parts) > 0 {
			line += " (" + strings.Join(parts, ", ") + ")"
		}
	}
	if s.Suppressed > 0 {
		line += fmt.Sprintf(", %d suppressed", s.Suppressed)
	}
	return line
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// oneLine replaces line breaks and tabs with spaces, so a subject from a
// label cannot break the layout.
func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '\n' || r == '\r' || r == '\t' {
			return ' '
		}
		return r
	}, s)
}

// shorten fits s into width runes for a table cell. It first drops the
// package paths of Go function names ("net/http.(*persistConn).readLoop"
// becomes "http.(*persistConn).readLoop"), then, if that is not enough, cuts
// the text after its first third, keeping the end: the end of a function
// name and its file:line, or an address's port, tell rows apart.
func shorten(s string, width int) string {
	if utf8.RuneCountInString(s) <= width {
		return s
	}
	words := strings.Split(s, " ")
	for i, w := range words {
		words[i] = dropPackagePath(w)
	}
	s = strings.Join(words, " ")
	n := utf8.RuneCountInString(s)
	if n <= width {
		return s
	}
	runes := []rune(s)
	keep := max(width-3, 2)
	head := keep / 3
	return string(runes[:head]) + "..." + string(runes[n-(keep-head):])
}

// dropPackagePath returns a Go function name without its package's path:
// "github.com/x/y/pkg.F" is "pkg.F". Anything else, such as a file path
// (it starts with a slash) or an address, is returned as it is.
func dropPackagePath(w string) string {
	i := strings.LastIndexByte(w, '/')
	if i <= 0 || w[0] == '/' || !strings.Contains(w[i:], ".") || strings.Contains(w, ":") && !strings.Contains(w, "(") {
		return w
	}
	return w[i+1:]
}

// writeWrapped writes prefix and then text word-wrapped at textWidth, with
// continuation lines indented by rest spaces. A word longer than a line stays
// whole.
func writeWrapped(b *bytes.Buffer, prefix, text string, rest int) {
	if strings.TrimSpace(text) == "" {
		b.WriteString(strings.TrimRight(prefix, " "))
		b.WriteByte('\n')
		return
	}
	b.WriteString(prefix)
	indent, col := "", utf8.RuneCountInString(prefix)
	lineStart := true
	for word := range strings.FieldsSeq(text) {
		wl := utf8.RuneCountInString(word)
		if !lineStart && col+1+wl > textWidth {
			b.WriteByte('\n')
			indent, col, lineStart = strings.Repeat(" ", rest), rest, true
		}
		if lineStart {
			b.WriteString(indent)
			lineStart = false
		} else {
			b.WriteByte(' ')
			col++
		}
		b.WriteString(word)
		col += wl
	}
	b.WriteByte('\n')
}
