package report

import (
	"fmt"
	"math"
	"slices"
	"time"
)

// Verdict is the outcome of a trend test on a series.
type Verdict string

// Verdicts.
const (
	// VerdictNotEnoughData means too few points remained after the warm-up to
	// decide anything.
	VerdictNotEnoughData Verdict = "not-enough-data"
	// VerdictSteady means no sustained monotonic trend: flat, oscillating
	// (saw-tooth, GC cycles), wandering, or grown earlier and now flat.
	VerdictSteady Verdict = "steady"
	// VerdictGrowing means a significant upward trend over the whole window and
	// over its most recent half, at least as steep as the minimum slope.
	VerdictGrowing Verdict = "growing"
	// VerdictShrinking is VerdictGrowing downwards.
	VerdictShrinking Verdict = "shrinking"
)

func (v Verdict) known() bool {
	switch v {
	case VerdictNotEnoughData, VerdictSteady, VerdictGrowing, VerdictShrinking:
		return true
	}
	return false
}

// Defaults for TrendOptions.
const (
	DefaultAlpha      = 0.01
	DefaultMinSamples = 12
	// DefaultMinEffect is the least growth over the tested window, as a
	// fraction of the series' level at its start, that is a leak: below
	// it a significant rise is too small to matter (a page or two of
	// resident memory).
	DefaultMinEffect = 0.01
	// LimitHorizon is how far ahead growth is projected against a limit:
	// a series that reaches its limit within it is growing whatever its
	// effect, and its finding is an error.
	LimitHorizon  = 24 * time.Hour
	DefaultBlocks = 32
	// MaxBlocks caps TrendOptions.Blocks; it bounds the test's cost.
	MaxBlocks = 1000
)

// TrendOptions configures AnalyzeTrend. The zero value uses the defaults.
type TrendOptions struct {
	// Warmup drops the points taken within this duration of the first point.
	Warmup time.Duration
	// WarmupSamples drops this many points from the start. A point is dropped
	// when either Warmup or WarmupSamples says so.
	WarmupSamples int
	// Alpha is the significance level of each test; 0 means DefaultAlpha.
	Alpha float64
	// MinSlope is the least slope, per hour in the series' unit, that counts as
	// growing or shrinking, so a tiny drift is steady; 0 accepts any slope.
	MinSlope float64
	// MinEffect is the least change over the tested window, as a fraction
	// of the fitted level at its start, that counts as growing or
	// shrinking; 0 means DefaultMinEffect, a negative value accepts any.
	// Growth that reaches Limit within LimitHorizon counts whatever its
	// effect.
	MinEffect float64
	// Limit is the ceiling the series runs into, 0 when none is known.
	// Series.Analyze sets it from the series.
	Limit float64
	// MinSamples is the fewest points after warm-up to test; fewer is
	// VerdictNotEnoughData. 0 means DefaultMinSamples. Values below 4 are
	// raised to 4.
	MinSamples int
	// Blocks is the most points a test looks at: a longer series is cut into
	// this many consecutive blocks of equal size, and each block becomes one
	// point, its median value at its middle time. Oscillations shorter than a
	// block then cancel out within it. 0 means DefaultBlocks; it is capped at
	// MaxBlocks and raised to at least 8.
	Blocks int
}

// Check reports options under which the test could never find a trend: an
// Alpha outside (0, 1), or one smaller than the least p-value the recent
// half of MinSamples points can reach (see AnalyzeTrend), so that every
// series would be steady however it grows.
func (o TrendOptions) Check() error {
	if o.Alpha != 0 && (o.Alpha <= 0 || o.Alpha >= 1) {
		return fmt.Errorf("significance level %v: want a number between 0 and 1", o.Alpha)
	}
	d := o.withDefaults()
	n := recentPoints(d.MinSamples, d.Blocks)
	if p := minP(n); p >= d.Alpha {
		need := d.MinSamples
		for minP(recentPoints(need, d.Blocks)) >= d.Alpha && need < 2*MaxBlocks {
			need++
		}
		return fmt.Errorf("at significance %v the recent half of %d samples (%d points) can never be significant (its least p-value is %.3g): test at least %d samples, or raise the significance level above %.3g",
			d.Alpha, d.MinSamples, n, p, need, p)
	}
	return nil
}

// recentPoints is how many points the recent-half test of a series of n
// points looks at: the newer half, reduced to at most blocks/2.
func recentPoints(n, blocks int) int { return min(n-n/2, max(blocks/2, 4)) }

// minP is the least p-value Mann-Kendall gives n points: those of a strictly
// rising series.
func minP(n int) float64 {
	xs := make([]float64, n)
	for i := range xs {
		xs[i] = float64(i)
	}
	return mannKendall(xs).p
}

func (o TrendOptions) withDefaults() TrendOptions {
	if o.Alpha <= 0 || o.Alpha >= 1 {
		o.Alpha = DefaultAlpha
	}
	if o.MinSamples == 0 {
		o.MinSamples = DefaultMinSamples
	}
	o.MinSamples = max(o.MinSamples, 4)
	if o.Blocks == 0 {
		o.Blocks = DefaultBlocks
	}
	o.Blocks = min(max(o.Blocks, 8), MaxBlocks)
	o.MinSlope = max(o.MinSlope, 0)
	if o.MinEffect == 0 {
		o.MinEffect = DefaultMinEffect
	}
	o.WarmupSamples = max(o.WarmupSamples, 0)
	return o
}

// Trend is the result of AnalyzeTrend.
type Trend struct {
	Verdict Verdict `json:"verdict"`
	// Samples is how many points remained after the warm-up.
	Samples int `json:"samples"`
	// Window is the test over every point after the warm-up.
	Window TrendTest `json:"window"`
	// Recent is the test over the most recent half of those points.
	Recent TrendTest `json:"recent"`
	// WarmupEnd is when the warm-up ended: the time of the first point
	// tested, or of the last point when the warm-up dropped them all. It is
	// zero when the warm-up dropped nothing. Charts shade the warm-up.
	WarmupEnd time.Time `json:"warmup_end,omitzero"`
	// Effect is the change over the tested window as a fraction of the
	// fitted level at its start (Window's slope times the window's length,
	// over Window.Intercept); 0 when the level is 0.
	Effect float64 `json:"effect,omitempty"`
	// Note explains a verdict that may surprise, e.g. a series that grew
	// earlier in the window but is flat now.
	Note string `json:"note,omitempty"`
}

// ETA returns how long until a series growing as t says reaches limit from
// last, its latest value; false when it does not grow or no limit is known.
func (t Trend) ETA(last, limit float64) (time.Duration, bool) {
	slope := t.Window.SlopePerHour
	if t.Verdict != VerdictGrowing || limit <= 0 || slope <= 0 {
		return 0, false
	}
	hours := max(limit-last, 0) / slope
	if hours > float64(math.MaxInt64/int64(time.Hour)) {
		return 0, false
	}
	return time.Duration(hours * float64(time.Hour)), true
}

// TrendTest is one Mann-Kendall test with its Theil-Sen slope.
type TrendTest struct {
	// N is how many points were tested (after reduction to blocks).
	N int `json:"n"`
	// S is the Mann-Kendall statistic: concordant minus discordant pairs.
	S int64 `json:"s"`
	// Tau is Kendall's tau-b between time and value, from -1 to 1.
	Tau float64 `json:"tau"`
	// P is the two-sided p-value of S under "no trend".
	P float64 `json:"p"`
	// Exact is true when P comes from the exact distribution of S (small N
	// without ties) rather than the normal approximation.
	Exact bool `json:"exact,omitempty"`
	// SlopePerHour is the Theil-Sen slope in the series' unit per hour.
	SlopePerHour float64 `json:"slope_per_hour"`
	// From is the time of the first point tested; zero when nothing was.
	From time.Time `json:"from,omitzero"`
	// Intercept is the fitted line's value at From: the median of
	// value - slope × (time - From) over the points tested, Theil-Sen's
	// companion to the slope. A chart draws the trend as the line through
	// (From, Intercept) with slope SlopePerHour.
	Intercept float64 `json:"intercept,omitempty"`
}

// exactMaxN is the largest N whose p-value is taken from the exact distribution
// of S; above it the normal approximation is good (Kendall 1975).
const exactMaxN = 10

// AnalyzeTrend decides whether the points grow, shrink or hold steady. It drops
// the warm-up and non-finite values, orders the points by time, and runs a
// Mann-Kendall test with a Theil-Sen slope on the whole remaining window and on
// its most recent half. The verdict is growing only when both are significant
// at Alpha, both slopes are positive and at least MinSlope: the recent-half
// test keeps a series that rose and then levelled off (a cache filling to its
// bound, a step) from being called growing. See docs/trend.md.
func AnalyzeTrend(points []Point, opts TrendOptions) Trend {
	opts = opts.withDefaults()
	pts, warmupEnd := afterWarmup(points, opts)
	tr := Trend{Samples: len(pts), WarmupEnd: warmupEnd}
	if len(pts) < opts.MinSamples || !pts[len(pts)-1].Time.After(pts[0].Time) {
		tr.Verdict = VerdictNotEnoughData
		tr.Window.P, tr.Recent.P = 1, 1 // nothing tested, nothing significant
		return tr
	}
	tr.Window = trendTest(pts, opts.Blocks)
	tr.Recent = trendTest(pts[len(pts)/2:], opts.Blocks/2)

	dir := func(t TrendTest) int {
		switch {
		case t.P >= opts.Alpha:
			return 0
		case t.S > 0 && t.SlopePerHour > 0 && t.SlopePerHour >= opts.MinSlope:
			return 1
		case t.S < 0 && t.SlopePerHour < 0 && -t.SlopePerHour >= opts.MinSlope:
			return -1
		}
		return 0
	}
	whole, recent := dir(tr.Window), dir(tr.Recent)
	span := pts[len(pts)-1].Time.Sub(pts[0].Time).Hours()
	change := tr.Window.SlopePerHour * span
	if level := math.Abs(tr.Window.Intercept); level > 0 {
		tr.Effect = change / level
	}
	small := opts.MinEffect > 0 && tr.Effect != 0 && math.Abs(tr.Effect) < opts.MinEffect
	if small && whole == 1 && opts.Limit > 0 {
		// Growth toward a known limit matters when it gets there soon.
		last := tr.Window.Intercept + change
		small = (opts.Limit-last)/tr.Window.SlopePerHour > LimitHorizon.Hours()
	}
	switch {
	case whole == 1 && recent == 1 && !small:
		tr.Verdict = VerdictGrowing
	case whole == -1 && recent == -1 && !small:
		tr.Verdict = VerdictShrinking
	case whole != 0 && whole == recent:
		tr.Verdict = VerdictSteady
		tr.Note = fmt.Sprintf("significant, but too small to matter: %+.2g%% over the window (the least that counts is %.2g%%)", 100*tr.Effect, 100*opts.MinEffect)
	default:
		tr.Verdict = VerdictSteady
		// sig is the direction of a significant S, whatever the slope.
		sig := func(t TrendTest) int64 {
			if t.P >= opts.Alpha {
				return 0
			}
			return min(max(t.S, -1), 1)
		}
		switch w, r := sig(tr.Window), sig(tr.Recent); {
		case w != 0 && w == r:
			tr.Note = "significant trend, but below the minimum slope"
		case w > 0:
			tr.Note = "grew earlier in the window but not in its recent half"
		case w < 0:
			tr.Note = "shrank earlier in the window but not in its recent half"
		case r > 0:
			tr.Note = "rising in the recent half only: watch it"
		}
	}
	return tr
}

// afterWarmup returns the finite points in time order without the warm-up,
// and when the warm-up ended (see Trend.WarmupEnd). It copies only when it
// must reorder or filter.
func afterWarmup(points []Point, opts TrendOptions) ([]Point, time.Time) {
	pts := points
	finite := func(p Point) bool { return !math.IsNaN(p.Value) && !math.IsInf(p.Value, 0) }
	if !slices.IsSortedFunc(pts, comparePointTimes) || !allFunc(pts, finite) {
		pts = make([]Point, 0, len(points))
		for _, p := range points {
			if finite(p) {
				pts = append(pts, p)
			}
		}
		slices.SortStableFunc(pts, comparePointTimes)
	}
	if len(pts) == 0 {
		return pts, time.Time{}
	}
	start := min(opts.WarmupSamples, len(pts))
	if opts.Warmup > 0 {
		end := pts[0].Time.Add(opts.Warmup)
		for start < len(pts) && pts[start].Time.Before(end) {
			start++
		}
	}
	var warmupEnd time.Time
	if start > 0 {
		warmupEnd = pts[min(start, len(pts)-1)].Time
	}
	return pts[start:], warmupEnd
}

func comparePointTimes(a, b Point) int { return a.Time.Compare(b.Time) }

func allFunc[T any](s []T, f func(T) bool) bool {
	for _, v := range s {
		if !f(v) {
			return false
		}
	}
	return true
}

// trendTest reduces pts to at most blocks points and tests them.
func trendTest(pts []Point, blocks int) TrendTest {
	ts, xs := reduce(pts, blocks)
	mk := mannKendall(xs)
	slope := theilSen(ts, xs)
	return TrendTest{
		N:            len(xs),
		S:            mk.s,
		Tau:          mk.tau,
		P:            mk.p,
		Exact:        mk.exact,
		SlopePerHour: slope * 3600,
		From:         pts[0].Time,
		Intercept:    intercept(ts, xs, slope),
	}
}

// intercept returns the median of xs[i] - slope*ts[i]: the value at time 0
// of the line with that slope that halves the points' residuals.
func intercept(ts, xs []float64, slope float64) float64 {
	rs := make([]float64, len(xs))
	for i := range xs {
		rs[i] = xs[i] - slope*ts[i]
	}
	return median(rs)
}

// reduce returns the times (in seconds since the first point) and values of
// pts, or, when there are more than blocks points, of blocks consecutive blocks
// of nearly equal size: each block's median value at the midpoint of its first
// and last times.
func reduce(pts []Point, blocks int) (ts, xs []float64) {
	t0 := pts[0].Time
	sec := func(t time.Time) float64 { return t.Sub(t0).Seconds() }
	if len(pts) <= blocks {
		ts = make([]float64, len(pts))
		xs = make([]float64, len(pts))
		for i, p := range pts {
			ts[i], xs[i] = sec(p.Time), p.Value
		}
		return ts, xs
	}
	ts = make([]float64, blocks)
	xs = make([]float64, blocks)
	buf := make([]float64, 0, len(pts)/blocks+1)
	for b := range blocks {
		lo, hi := b*len(pts)/blocks, (b+1)*len(pts)/blocks
		buf = buf[:0]
		for _, p := range pts[lo:hi] {
			buf = append(buf, p.Value)
		}
		xs[b] = median(buf)
		ts[b] = (sec(pts[lo].Time) + sec(pts[hi-1].Time)) / 2
	}
	return ts, xs
}

// median returns the median of xs, reordering xs. xs must not be empty.
func median(xs []float64) float64 {
	slices.Sort(xs)
	n := len(xs)
	if n%2 == 1 {
		return xs[n/2]
	}
	return (xs[n/2-1] + xs[n/2]) / 2
}

type mkResult struct {
	s     int64
	varS  float64
	tau   float64
	p     float64
	exact bool
}

// mannKendall computes the Mann-Kendall statistic S = Σ_{i<j} sgn(x_j - x_i),
// its variance under "no trend" with the correction for ties,
//
//	Var(S) = [n(n-1)(2n+5) - Σ t(t-1)(2t+5)] / 18   (t: sizes of groups of equal values),
//
// Kendall's tau-b, and the two-sided p-value: exact for n <= exactMaxN
// without ties, otherwise from the normal approximation with continuity
// correction, z = (S - sgn S) / sqrt(Var S). S is counted in O(n log n) by
// counting inversions with a merge sort.
func mannKendall(xs []float64) mkResult {
	n := int64(len(xs))
	if n < 2 {
		return mkResult{p: 1}
	}
	pairs := n * (n - 1) / 2
	sorted := slices.Clone(xs)
	inversions := countInversions(sorted, make([]float64, len(sorted)))
	// sorted is now in ascending order: find the groups of ties.
	var tiedPairs int64
	var tieTerm float64
	for i := 0; i < len(sorted); {
		j := i + 1
		for j < len(sorted) && sorted[j] == sorted[i] {
			j++
		}
		if t := int64(j - i); t > 1 {
			tiedPairs += t * (t - 1) / 2
			tieTerm += float64(t * (t - 1) * (2*t + 5))
		}
		i = j
	}
	r := mkResult{s: pairs - tiedPairs - 2*inversions}
	fn := float64(n)
	r.varS = (fn*(fn-1)*(2*fn+5) - tieTerm) / 18
	if d := float64(pairs) * float64(pairs-tiedPairs); d > 0 {
		r.tau = float64(r.s) / math.Sqrt(d)
	}
	switch {
	case tiedPairs == 0 && n <= exactMaxN:
		r.p, r.exact = exactP(int(n), r.s), true
	case r.varS <= 0 || r.s == 0:
		r.p = 1
	default:
		z := (math.Abs(float64(r.s)) - 1) / math.Sqrt(r.varS)
		r.p = math.Erfc(z / math.Sqrt2)
	}
	r.p = min(r.p, 1)
	return r
}

// countInversions sorts xs ascending and returns the number of pairs i < j with
// xs[i] > xs[j] (equal values are not inversions). tmp must be as long as xs.
func countInversions(xs, tmp []float64) int64 {
	if len(xs) < 2 {
		return 0
	}
	mid := len(xs) / 2
	inv := countInversions(xs[:mid], tmp[:mid]) + countInversions(xs[mid:], tmp[mid:])
	i, j, k := 0, mid, 0
	for i < mid && j < len(xs) {
		if xs[j] < xs[i] {
			inv += int64(mid - i)
			tmp[k] = xs[j]
			j++
		} else {
			tmp[k] = xs[i]
			i++
		}
		k++
	}
	k += copy(tmp[k:], xs[i:mid])
	copy(tmp[k:], xs[j:])
	copy(xs, tmp)
	return inv
}

// exactP returns the two-sided p-value P(|S| >= |s|) for n values without
// ties under "no trend", where every ordering is equally likely. S = N - 2I,
// where N = n(n-1)/2 and I is the number of inversions of a random
// permutation, whose distribution is built by adding one element at a time:
// the k-th element adds 0..k-1 inversions.
func exactP(n int, s int64) float64 {
	pairs := n * (n - 1) / 2
	counts := []float64{1}
	for k := 2; k <= n; k++ {
		next := make([]float64, len(counts)+k-1)
		for inv, c := range counts {
			for add := range k {
				next[inv+add] += c
			}
		}
		counts = next
	}
	var tail, total float64
	abs := s
	if abs < 0 {
		abs = -abs
	}
	for inv, c := range counts {
		total += c
		if v := int64(pairs - 2*inv); v >= abs || -v >= abs {
			tail += c
		}
	}
	return tail / total
}

// theilSen returns the median of the slopes (x_j - x_i) / (t_j - t_i) over all
// pairs i < j with distinct times, or 0 without such a pair. The caller keeps
// len(ts) at most MaxBlocks, so the O(n² log n) cost stays bounded.
func theilSen(ts, xs []float64) float64 {
	slopes := make([]float64, 0, len(ts)*(len(ts)-1)/2)
	for i := range ts {
		for j := i + 1; j < len(ts); j++ {
			if dt := ts[j] - ts[i]; dt != 0 {
				slopes = append(slopes, (xs[j]-xs[i])/dt)
			}
		}
	}
	if len(slopes) == 0 {
		return 0
	}
	return median(slopes)
}
