package report

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// renderJSON writes r as indented JSON, the form docs/findings.md documents.
// Empty lists are written as [] rather than null.
func renderJSON(w io.Writer, r *Report) error {
	out := *r
	if out.Findings == nil {
		out.Findings = []Finding{}
	}
	out.Series = make([]Series, len(r.Series))
	for i, s := range r.Series {
		if s.Points == nil {
			s.Points = []Point{}
		}
		out.Series[i] = s
	}
	if out.Summary.ByKind == nil {
		out.Summary.ByKind = map[Kind]int{}
	}
	if out.Summary.BySeverity == nil {
		out.Summary.BySeverity = map[Severity]int{}
	}
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	return enc.Encode(&out)
}

// maxReportSize bounds what ReadReport reads, so a wrong or hostile input
// cannot exhaust memory.
const maxReportSize = 1 << 30

const schemaPrefix = "leakcheck.report/"

// ReadReport reads a report in the JSON form that Render writes for "json". It
// rejects input that is not a leakcheck report (for instance a tracker
// snapshot) and reports of another schema major version, and accepts newer
// minor versions, ignoring fields it does not know.
func ReadReport(r io.Reader) (*Report, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxReportSize+1))
	if err != nil {
		return nil, fmt.Errorf("reading report: %w", err)
	}
	if len(data) > maxReportSize {
		return nil, fmt.Errorf("reading report: larger than %d bytes", maxReportSize)
	}
	var head struct {
		Schema json.RawMessage `json:"schema"`
	}
	if err := json.Unmarshal(data, &head); err != nil {
		return nil, fmt.Errorf("reading report: not a JSON report: %w", err)
	}
	if head.Schema == nil {
		return nil, errors.New("reading report: not a leakcheck report: no \"schema\" field")
	}
	var schema string
	if err := json.Unmarshal(head.Schema, &schema); err != nil {
		return nil, fmt.Errorf("reading report: not a leakcheck report: schema is %.40s, not %q (a tracker snapshot has a number there)", head.Schema, SchemaVersion)
	}
	if err := checkSchema(schema); err != nil {
		return nil, fmt.Errorf("reading report: %w", err)
	}
	var rep Report
	if err := json.Unmarshal(data, &rep); err != nil {
		return nil, fmt.Errorf("reading report: %w", err)
	}
	if err := rep.validate(); err != nil {
		return nil, fmt.Errorf("reading report: %w", err)
	}
	return &rep, nil
}

// checkSchema accepts "leakcheck.report/MAJOR.MINOR" with this package's major.
func checkSchema(schema string) error {
	version, ok := strings.CutPrefix(schema, schemaPrefix)
	if !ok {
		return fmt.Errorf("not a leakcheck report: schema %q", schema)
	}
	majorText, minorText, ok := strings.Cut(version, ".")
	major, err1 := strconv.Atoi(majorText)
	_, err2 := strconv.Atoi(minorText)
	if !ok || err1 != nil || err2 != nil {
		return fmt.Errorf("malformed schema %q (want %sMAJOR.MINOR)", schema, schemaPrefix)
	}
	if major != schemaMajor {
		return fmt.Errorf("schema %q has major version %d; this leakcheck reads %s%d.x", schema, major, schemaPrefix, schemaMajor)
	}
	return nil
}

// validate rejects what the renderers could not show faithfully.
func (r *Report) validate() error {
	for i, f := range r.Findings {
		if f.Kind == "" {
			return fmt.Errorf("finding %d has no kind", i+1)
		}
		if f.Count < 0 {
			return fmt.Errorf("finding %d has a negative count %d", i+1, f.Count)
		}
		if t := f.Evidence.Trend; t != nil && !t.Verdict.known() {
			return fmt.Errorf("finding %d: unknown verdict %q", i+1, t.Verdict)
		}
	}
	for _, s := range r.Series {
		if s.Trend != nil && !s.Trend.Verdict.known() {
			return fmt.Errorf("series %q: unknown verdict %q", s.Name, s.Trend.Verdict)
		}
	}
	return nil
}
