package report

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
