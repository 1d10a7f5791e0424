package report

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"unicode"
)

// DefaultFormat is the format for people, used when none is asked for.
const DefaultFormat = "text"

// rendererFor returns the function that renders format, or false if there is
// none. A new format is one more case here, one in Formats, and one file.
func rendererFor(format string) (func(io.Writer, *Report) error, bool) {
	switch format {
	case "text":
		return renderText, true
	case "json":
		return renderJSON, true
	case "markdown":
		return renderMarkdown, true
	case "junit":
		return renderJUnit, true
	case "html":
		return renderHTML, true
	case "github":
		return renderGitHub, true
	}
	return nil, false
}

// Formats returns the names Render accepts, for help text and completion:
//
//	text      tables for people (the default)
//	json      the report itself, for machines and for ReadReport
//	markdown  for a pull-request comment or a CI job summary
//	junit     JUnit XML, for CI servers' test views
//	html      one self-contained page with a chart of every series
//	github    GitHub Actions workflow commands (annotations)
func Formats() []string { return []string{"text", "json", "markdown", "junit", "html", "github"} }

// Render writes r to w in the named format (see Formats); "" means
// DefaultFormat.
func Render(w io.Writer, r *Report, format string) error {
	if format == "" {
		format = DefaultFormat
	}
	render, ok := rendererFor(format)
	if !ok {
		return fmt.Errorf("unknown report format %q (want one of %s)", format, strings.Join(Formats(), ", "))
	}
	if err := render(w, r); err != nil {
		return fmt.Errorf("rendering report as %s: %w", format, err)
	}
	return nil
}

// WriteFile renders r in format and writes it to the file name (see
// WriteOutput): a regular file is replaced atomically, so a reader never
// sees half a report and a failed run leaves any previous file intact; a
// device or a FIFO is written into, never replaced.
func WriteFile(name string, r *Report, format string) error {
	var buf bytes.Buffer
	if err := Render(&buf, r, format); err != nil {
		return err
	}
	if err := WriteOutput(name, func(w io.Writer) error { _, err := w.Write(buf.Bytes()); return err }); err != nil {
		return fmt.Errorf("writing report to %s: %w", name, err)
	}
	return nil
}

// failing returns the test that tells which findings fail r's recorded
// policy (see Report.Policy): every finding when none is recorded.
func (r *Report) failing() (func(Finding) bool, error) {
	if r.Policy == "" {
		return func(Finding) bool { return true }, nil
	}
	p, err := ParsePolicy(r.Policy)
	if err != nil {
		return nil, fmt.Errorf("the report's policy: %w", err)
	}
	return p.Fails, nil
}

// location returns where a finding points in the program's source: the first
// frame of its stack that is the program's own code and names a file and
// line. Annotations and links are attached there.
func location(f Finding) (Frame, bool) {
	for _, fr := range f.Evidence.Stack {
		if !hiddenFrame(fr) {
			return fr, fr.File != "" && fr.Line > 0
		}
	}
	return Frame{}, false
}

// seriesUnit returns the unit of the series called name, or "".
func seriesUnit(series []Series, name string) string {
	for _, s := range series {
		if s.Name == name {
			return s.Unit
		}
	}
	return ""
}

// cleanText makes s valid UTF-8 and replaces control characters other than
// tab and newline, and the noncharacters U+FFFE and U+FFFF, with U+FFFD: XML
// cannot carry them, and no format should let a label from the program being
// checked move the cursor or ring a bell.
func cleanText(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if !strings.ContainsFunc(s, badControl) {
		return s
	}
	return strings.Map(func(r rune) rune {
		if badControl(r) {
			return '\uFFFD'
		}
		return r
	}, s)
}

func badControl(r rune) bool {
	return unicode.IsControl(r) && r != '\t' && r != '\n' || r == 0xFFFE || r == 0xFFFF
}
