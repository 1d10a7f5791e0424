package report

import (
	"maps"
	"testing"
	"time"
)

// TestResultReport checks that a Result becomes a report with its tables,
// its notes as numbered metadata, and its findings less those ignored.
func TestResultReport(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	leftover := Finding{Kind: KindLeftover, Severity: SeverityWarning, Subject: "3 pipes", Count: 3, Signature: Signature(KindLeftover, "3 pipes", nil)}
	growth := Finding{Kind: KindGrowth, Severity: SeverityWarning, Subject: "fds", Count: 1, Signature: Signature(KindGrowth, "fds", nil)}
	res := Result{
		Findings: []Finding{leftover, growth},
		Series:   []Series{{Name: "fds", Unit: "fds", Points: []Point{{Time: t0, Value: 4}}}},
		Tables:   []Table{{Title: "top holders", Columns: []string{"site"}, Rows: [][]string{{"main.f"}}}},
		Notes:    []string{"first", "second"},
	}
	tests := []struct {
		name     string
		ignore   []IgnoreRule
		kinds    []Kind
		suppress int
	}{
		{name: "no rules", kinds: []Kind{KindLeftover, KindGrowth}},
		{name: "growth ignored", ignore: []IgnoreRule{{Kind: KindGrowth, Subject: "fds"}}, kinds: []Kind{KindLeftover}, suppress: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := res.Report(tt.ignore)
			var kinds []Kind
			for _, f := range r.Findings {
				kinds = append(kinds, f.Kind)
			}
			if len(kinds) != len(tt.kinds) || r.Summary.Suppressed != tt.suppress {
				t.Errorf("findings of kinds %v, %d suppressed; want %v, %d", kinds, r.Summary.Suppressed, tt.kinds, tt.suppress)
			}
			for _, k := range tt.kinds {
				if r.Summary.ByKind[k] != 1 {
					t.Errorf("%d findings of kind %s, want 1", r.Summary.ByKind[k], k)
				}
			}
			if want := map[string]string{"note 1": "first", "note 2": "second"}; !maps.Equal(r.Metadata, want) {
				t.Errorf("metadata %v, want %v", r.Metadata, want)
			}
			if len(r.Tables) != 1 || r.Tables[0].Title != "top holders" || len(r.Series) != 1 || r.Schema != SchemaVersion {
				t.Errorf("tables %v, series %v, schema %q", r.Tables, r.Series, r.Schema)
			}
		})
	}
	// Without notes, the metadata is ready for the caller's entries.
	if r := (Result{}).Report(nil); r.Metadata == nil || len(r.Metadata) != 0 {
		t.Errorf("empty result: metadata %v, want an empty map", r.Metadata)
	}
}
