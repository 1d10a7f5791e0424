package report

import (
	"cmp"
	"slices"
	"time"
)

// SchemaVersion identifies the JSON form of a Report: "leakcheck.report/"
// followed by MAJOR.MINOR. The minor version grows when fields are added; the
// major version changes when a field changes meaning or is removed, and
// ReadReport rejects other majors. See docs/findings.md.
const SchemaVersion = "leakcheck.report/1.3"

// schemaMajor is the major version of SchemaVersion.
const schemaMajor = 1

// Report is everything one leakcheck command found, ready to render.
type Report struct {
	// Schema is SchemaVersion for reports built by this package.
	Schema string `json:"schema"`
	// Tool names the program and version that made the report, e.g.
	// "leakcheck v0.4.0".
	Tool string    `json:"tool,omitempty"`
	Time time.Time `json:"time"`
	// Metadata holds free-form facts about the run: "command", "duration",
	// "inputs" and the like.
	Metadata map[string]string `json:"metadata,omitempty"`
	// Policy is the --fail-on policy the findings are judged by, in the form
	// Policy.String writes ("leftover,growth", "none"). The command that
	// decides the exit code records it here, so that the JUnit, Markdown,
	// HTML and GitHub forms mark the same findings as failing. Empty means
	// no policy was recorded: those forms then count every finding as failing.
	Policy  string  `json:"policy,omitempty"`
	Summary Summary `json:"summary"`
	// Findings are grouped by signature, most important first.
	Findings []Finding `json:"findings"`
	// Series are the series analysed, by name, with their points and verdicts.
	Series []Series `json:"series"`
	// Tables are listings that are not findings, such as a heap profile's top
	// holders or the growth between two profiles, in the order they were added.
	Tables []Table `json:"tables,omitempty"`
}

// Table is a ranked listing for people to read alongside the findings. Cells
// are formatted text; Columns names them.
type Table struct {
	// Title says what the rows are, e.g. "top holders by inuse_space".
	Title   string     `json:"title"`
	Columns []string   `json:"columns"`
	Rows    [][]string `json:"rows"`
}

// Summary counts a report's findings.
type Summary struct {
	// Findings is how many findings the report lists (groups, not occurrences).
	Findings int `json:"findings"`
	// Occurrences is the sum of the findings' counts.
	Occurrences int `json:"occurrences"`
	// Suppressed is how many findings ignore rules removed, after grouping.
	Suppressed int `json:"suppressed"`
	// ByKind and BySeverity count findings; every known kind and severity has
	// an entry, zero or not.
	ByKind     map[Kind]int     `json:"by_kind"`
	BySeverity map[Severity]int `json:"by_severity"`
}

// New builds a report: it removes the findings that the ignore rules suppress
// (before grouping, so rules see every occurrence's own subject and stack),
// groups the rest by signature, orders them most important first, sorts the
// series by name and summarizes. The caller sets Tool, Time and Metadata. The
// arguments are not modified.
func New(findings []Finding, series []Series, ignore []IgnoreRule) *Report {
	kept, suppressed := Suppress(findings, ignore)
	r := &Report{
		Schema:   SchemaVersion,
		Findings: Group(kept),
		Series:   slices.Clone(series),
	}
	if r.Series == nil {
		r.Series = []Series{}
	}
	slices.SortStableFunc(r.Series, func(a, b Series) int { return cmp.Compare(a.Name, b.Name) })
	r.Summary = Summarize(r.Findings, len(Group(suppressed)))
	return r
}

// Summarize counts findings by kind and severity; suppressed is reported as is.
func Summarize(findings []Finding, suppressed int) Summary {
	s := Summary{
		Findings:   len(findings),
		Suppressed: suppressed,
		ByKind:     make(map[Kind]int),
		BySeverity: make(map[Severity]int),
	}
	for _, k := range Kinds() {
		s.ByKind[k] = 0
	}
	for _, sev := range []Severity{SeverityInfo, SeverityWarning, SeverityError} {
		s.BySeverity[sev] = 0
	}
	for _, f := range findings {
		s.Occurrences += f.count()
		s.ByKind[f.Kind]++
		s.BySeverity[f.Severity]++
	}
	return s
}
