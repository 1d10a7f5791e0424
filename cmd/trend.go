package cmd

import (
	"fmt"
	"time"

	"github.com/spf13/pflag"

	"github.com/leakcheck/leakcheck/report"
)

// trendFlags are the trend test's flags, which run and report share. A
// command builds its report.TrendOptions from them once and hands that to
// every analysis.
type trendFlags struct {
	warmup   time.Duration
	alpha    float64
	minSlope float64
}

// addTrendFlags defines the trend flags on f; warmupHelp says what the
// warm-up means for the command.
func addTrendFlags(f *pflag.FlagSet, t *trendFlags, warmup time.Duration, warmupHelp string) {
	f.DurationVar(&t.warmup, "warmup", warmup, warmupHelp)
	f.Float64Var(&t.alpha, "alpha", report.DefaultAlpha, "significance level of the trend test (smaller: fewer false alarms, more samples needed)")
	f.Float64Var(&t.minSlope, "min-slope", 0, "least growth per hour, in each series' unit, that counts")
}

// options returns the trend options the flags ask for, or an error when the
// test they describe could never find anything.
func (t trendFlags) options() (report.TrendOptions, error) {
	if t.warmup < 0 {
		return report.TrendOptions{}, fmt.Errorf("--warmup %v: want zero or more", t.warmup)
	}
	if t.minSlope < 0 {
		return report.TrendOptions{}, fmt.Errorf("--min-slope %v: want zero or more", t.minSlope)
	}
	o := report.TrendOptions{Warmup: t.warmup, Alpha: t.alpha, MinSlope: t.minSlope}
	if err := o.Check(); err != nil {
		return report.TrendOptions{}, fmt.Errorf("--alpha: %w", err)
	}
	return o, nil
}
