package report

import "fmt"

// Result is what an analysis found, the one shape every analysis returns:
// findings, the series it tested, tables for people to read, and notes on
// how it worked (for the report's metadata).
type Result struct {
	Findings []Finding
	Series   []Series
	Tables   []Table
	// Notes say how the inputs were analysed, e.g. that a series was too
	// short for the trend test.
	Notes []string
}

// Add appends everything in o to r.
func (r *Result) Add(o Result) {
	r.Findings = append(r.Findings, o.Findings...)
	r.Series = append(r.Series, o.Series...)
	r.Tables = append(r.Tables, o.Tables...)
	r.Notes = append(r.Notes, o.Notes...)
}

// Report builds the report of what r found: New of its findings, series and
// ignore rules, with its tables, and its notes in the metadata as "note 1",
// "note 2"... The caller adds the rest of the metadata.
func (r Result) Report(ignore []IgnoreRule) *Report {
	rep := New(r.Findings, r.Series, ignore)
	rep.Tables = r.Tables
	rep.Metadata = map[string]string{}
	for i, n := range r.Notes {
		rep.Metadata[fmt.Sprintf("note %d", i+1)] = n
	}
	return rep
}
