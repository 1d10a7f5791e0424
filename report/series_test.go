package report

import (
	"testing"
	"time"
)

// line returns n points a second apart from v0, rising by step a second.
func line(n int, v0, step float64) []Point {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	pts := make([]Point, n)
	for i := range pts {
		pts[i] = Point{Time: start.Add(time.Duration(i) * time.Second), Value: v0 + step*float64(i)}
	}
	return pts
}

// TestGrowthLimits checks the projection of growing series to their limits
// and the finding for a series near its limit without growth.
func TestGrowthLimits(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		series   Series
		want     []Kind
		severity Severity // of the growth finding
		eta      float64  // eta_seconds of the growth finding, ±1
	}{
		{"no limit", Series{Name: "fds", Points: line(30, 100, 2)}, []Kind{KindGrowth}, SeverityWarning, 0},
		// 158 at the end, +2/s: 1024 is reached in 433 s.
		{"reached soon", Series{Name: "fds", Limit: 1024, Points: line(30, 100, 2)}, []Kind{KindGrowth}, SeverityError, 433},
		// +2/s from 158 toward a million: six days away.
		{"far away", Series{Name: "fds", Limit: 1 << 20, Points: line(30, 100, 2)}, []Kind{KindGrowth}, SeverityWarning, (1<<20 - 158) / 2.0},
		{"near its limit, steady", Series{Name: "fds", Limit: 1024, Points: line(30, 1000, 0)}, []Kind{KindLimit}, 0, 0},
		{"near its limit and growing", Series{Name: "fds", Limit: 1024, Points: line(30, 900, 2)}, []Kind{KindLimit, KindGrowth}, SeverityError, 33},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := Growth([]Series{tt.series}, TrendOptions{})
			var kinds []Kind
			for _, f := range fs {
				kinds = append(kinds, f.Kind)
				if f.Kind != KindGrowth {
					continue
				}
				if f.Severity != tt.severity {
					t.Errorf("growth severity %s, want %s", f.Severity, tt.severity)
				}
				eta, ok := f.Evidence.Values["eta_seconds"]
				if ok != (tt.eta > 0) || eta < tt.eta-1 || eta > tt.eta+1 {
					t.Errorf("eta_seconds = %v (present %v), want %v", eta, ok, tt.eta)
				}
			}
			if len(kinds) != len(tt.want) {
				t.Fatalf("findings %v, want %v", kinds, tt.want)
			}
			for i := range kinds {
				if kinds[i] != tt.want[i] {
					t.Errorf("findings %v, want %v", kinds, tt.want)
				}
			}
		})
	}
}

// TestSmallEffectIsSteady checks the practical-effect rule: a significant
// rise too small to matter (a steady Python daemon whose resident memory
// went from 21,136 to 21,156 KiB in 4 KiB pages over 30 s) is steady, with
// a note, while the same rise toward a limit it would reach within a day
// is growth.
func TestSmallEffectIsSteady(t *testing.T) {
	t.Parallel()
	var pts []Point
	for i, p := range line(31, 21136<<10, 0) {
		p.Value += float64(min(i/6, 5) * 4 << 10)
		pts = append(pts, p)
	}
	tr := AnalyzeTrend(pts, TrendOptions{})
	if tr.Verdict != VerdictSteady || tr.Note == "" || tr.Effect <= 0 || tr.Effect >= DefaultMinEffect {
		t.Errorf("21,136 to 21,156 KiB: verdict %s, effect %v, note %q; want steady with a note", tr.Verdict, tr.Effect, tr.Note)
	}
	if tr := AnalyzeTrend(pts, TrendOptions{MinEffect: -1}); tr.Verdict != VerdictGrowing {
		t.Errorf("with no least effect: verdict %s, want growing", tr.Verdict)
	}
	if tr := AnalyzeTrend(pts, TrendOptions{Limit: 21200 << 10}); tr.Verdict != VerdictGrowing {
		t.Errorf("toward a limit reached within a day: verdict %s, want growing", tr.Verdict)
	}
}

func TestTrendOptionsCheck(t *testing.T) {
	t.Parallel()
	tests := []struct {
		opts TrendOptions
		ok   bool
	}{
		{TrendOptions{}, true},
		{TrendOptions{Alpha: 0.05, MinSamples: 10}, true},
		{TrendOptions{Alpha: 0.01, MinSamples: 10}, false}, // 5 points: p >= 2/120
		{TrendOptions{Alpha: 0.001, MinSamples: 12}, false},
		{TrendOptions{Alpha: 0.001, MinSamples: 16}, true},
		{TrendOptions{Alpha: 1.5}, false},
		{TrendOptions{Alpha: -0.1}, false},
	}
	for _, tt := range tests {
		if err := tt.opts.Check(); (err == nil) != tt.ok {
			t.Errorf("%+v.Check() = %v, want ok %v", tt.opts, err, tt.ok)
		}
	}
}
