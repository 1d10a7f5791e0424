package report

import (
	"bytes"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// renderGitHub writes r as GitHub Actions workflow commands, one annotation
// per finding, most important first (GitHub shows only the first few of a
// step): ::error for a finding that fails the report's policy, else ::warning,
// or ::notice for an info finding. A finding whose stack reaches the
// program's own code is attached to that file and line (see location); one
// without is a plain annotation. A report without findings writes nothing.
//
// Files are written as recorded in the stack, relative to GITHUB_WORKSPACE
// when they lie under it, since GitHub resolves annotation paths against the
// repository's root. A binary built with -trimpath records module paths,
// which GitHub cannot resolve: the annotation then shows on the job only.
func renderGitHub(w io.Writer, r *Report) error {
	fails, err := r.failing()
	if err != nil {
		return err
	}
	workspace := os.Getenv("GITHUB_WORKSPACE")
	var b bytes.Buffer
	for _, f := range r.Findings {
		command := "warning"
		switch {
		case fails(f):
			command = "error"
		case f.Severity == SeverityInfo:
			command = "notice"
		}
		props := [][2]string{}
		if fr, ok := location(f); ok {
			props = append(props, [2]string{"file", annotationPath(fr.File, workspace)}, [2]string{"line", fmt.Sprint(fr.Line)})
		}
		props = append(props, [2]string{"title", fmt.Sprintf("leakcheck: %s %s", f.Severity, f.Kind)})
		b.WriteString("::" + command)
		for i, p := range props {
			sep := ","
			if i == 0 {
				sep = " "
			}
			fmt.Fprintf(&b, "%s%s=%s", sep, p[0], escapeProperty(p[1]))
		}
		b.WriteString("::" + escapeData(annotationMessage(f, r.Series)) + "\n")
	}
	_, err = w.Write(b.Bytes())
	return err
}

// annotationMessage is the text of f's annotation: its subject, then one
// line per fact, as the text form has them.
func annotationMessage(f Finding, series []Series) string {
	lines := []string{oneLine(f.Subject)}
	if f.count() > 1 {
		lines = append(lines, fmt.Sprintf("count: %d", f.count()))
	}
	if f.Owner != "" {
		lines = append(lines, "owner: "+oneLine(f.Owner))
	}
	if f.Evidence.Because != "" {
		lines = append(lines, "evidence: "+oneLine(f.Evidence.Because))
	}
	for _, k := range slices.Sorted(maps.Keys(f.Evidence.Values)) {
		label, value := formatValue(k, f.Evidence.Values[k])
		lines = append(lines, label+": "+value)
	}
	if t := f.Evidence.Trend; t != nil {
		unit := quantityUnit(seriesUnit(series, f.Evidence.Series))
		lines = append(lines, fmt.Sprintf("trend: %s %s, p %s, %d samples", t.Verdict, formatRate(t.Window.SlopePerHour, unit), formatP(t.Window.P), t.Samples))
	}
	for i, fr := range TopFrames(f.Evidence.Stack, stackFrames) {
		prefix := "     "
		if i == 0 {
			prefix = "at:  "
		}
		lines = append(lines, prefix+oneLine(fr.String()))
	}
	if len(f.Evidence.Path) > 0 {
		lines = append(lines, "path: "+oneLine(strings.Join(f.Evidence.Path, " -> ")))
	}
	if f.Suggestion != "" {
		lines = append(lines, "fix: "+oneLine(f.Suggestion))
	}
	return cleanText(strings.Join(lines, "\n"))
}

// annotationPath returns file relative to workspace when it lies under it,
// else file unchanged.
func annotationPath(file, workspace string) string {
	if workspace == "" || !filepath.IsAbs(file) {
		return file
	}
	rel, err := filepath.Rel(workspace, file)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return file
	}
	return filepath.ToSlash(rel)
}

// escapeData escapes a workflow command's message: GitHub decodes %25, %0D
// and %0A, so a message can hold line breaks and cannot end the command.
func escapeData(s string) string {
	return strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A").Replace(s)
}

// escapeProperty escapes a workflow command's property value: as escapeData,
// and also ':' and ',', which would end the value.
func escapeProperty(s string) string {
	return strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A", ":", "%3A", ",", "%2C").Replace(cleanText(s))
}
