package report

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// clock is the fixed start of every generated series.
var clock = time.Date(2025, 3, 14, 15, 9, 26, 0, time.UTC)

// gen returns n points step apart starting at clock, valued f(i).
func gen(n int, step time.Duration, f func(i int) float64) []Point {
	pts := make([]Point, n)
	for i := range pts {
		pts[i] = Point{Time: clock.Add(time.Duration(i) * step), Value: f(i)}
	}
	return pts
}

// bruteS is the Mann-Kendall S by its definition, the O(n²) pair loop.
func bruteS(xs []float64) int64 {
	var s int64
	for i := range xs {
		for j := i + 1; j < len(xs); j++ {
			switch {
			case xs[j] > xs[i]:
				s++
			case xs[j] < xs[i]:
				s--
			}
		}
	}
	return s
}

// bruteVar is Var(S) with the tie correction, counting tie groups with a map.
func bruteVar(xs []float64) float64 {
	groups := map[float64]float64{}
	for _, x := range xs {
		groups[x]++
	}
	n := float64(len(xs))
	v := n * (n - 1) * (2*n + 5)
	for _, t := range groups {
		v -= t * (t - 1) * (2*t + 5)
	}
	return v / 18
}

// permutations calls f with every permutation of 0..n-1 (Heap's algorithm).
func permutations(n int, f func([]float64)) {
	a := make([]float64, n)
	for i := range a {
		a[i] = float64(i)
	}
	var rec func(k int)
	rec = func(k int) {
		if k <= 1 {
			f(a)
			return
		}
		for i := range k - 1 {
			rec(k - 1)
			if k%2 == 0 {
				a[i], a[k-1] = a[k-1], a[i]
			} else {
				a[0], a[k-1] = a[k-1], a[0]
			}
		}
		rec(k - 1)
	}
	rec(n)
}

func TestMannKendallByHand(t *testing.T) {
	tests := []struct {
		name  string
		xs    []float64
		s     int64
		varS  float64
		tau   float64
		p     float64
		exact bool
	}{
		// Pairs of 1 3 2 4: five rise, (3,2) falls: S = 5-1 = 4. Var = 4·3·13/18.
		// The exact distribution of inversions for n = 4 is 1 3 5 6 5 3 1 (of 24);
		// |S| >= 4 means 0, 1, 5 or 6 inversions: (1+3+3+1)/24 = 1/3.
		{"1 3 2 4", []float64{1, 3, 2, 4}, 4, 156.0 / 18, 4.0 / 6, 1.0 / 3, true},
		// A perfect rise of 5: S = 10, only the identity and its reverse reach |S| = 10.
		{"rising 5", []float64{1, 2, 3, 4, 5}, 10, 300.0 / 18, 1, 2.0 / 120, true},
		// 1 2 2 3 1: from 1: +,+,+,0; from 2: 0,+,-; from 2: +,-; from 3: -. S = 2.
		// Two tie groups of 2 each take 2·1·9 = 18: Var = (5·4·15 - 36)/18 = 264/18.
		// tau-b = 2 / sqrt(10·(10-2)). p from the normal approximation,
		// z = (2-1)/sqrt(264/18) = 0.26112, two-sided p = erfc(z/√2) = 0.794003
		// (Python's math.erfc).
		{"ties", []float64{1, 2, 2, 3, 1}, 2, 264.0 / 18, 0.2236068, 0.794003, false},
		{"constant", []float64{7, 7, 7, 7, 7, 7}, 0, 0, 0, 1, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := mannKendall(tt.xs)
			if r.s != tt.s || math.Abs(r.varS-tt.varS) > 1e-9 || math.Abs(r.tau-tt.tau) > 1e-6 ||
				math.Abs(r.p-tt.p) > 1e-6 || r.exact != tt.exact {
				t.Errorf("mannKendall(%v) = S %d var %g tau %g p %g exact %v; want S %d var %g tau %g p %g exact %v",
					tt.xs, r.s, r.varS, r.tau, r.p, r.exact, tt.s, tt.varS, tt.tau, tt.p, tt.exact)
			}
		})
	}
}

func TestMannKendallNormalApproximation(t *testing.T) {
	// n = 11 without ties: Var = 11·10·27/18 = 165. In 10 0 2 1 4 3 5 6 7 8 9
	// the 10 is inverted with all 10 others, and 2 1 and 4 3 add one each:
	// 12 inversions of 55 pairs, S = 55 - 2·12 = 31.
	xs := []float64{10, 0, 2, 1, 4, 3, 5, 6, 7, 8, 9}
	r := mannKendall(xs)
	// z = (31-1)/sqrt(165) = 2.335497; p = erfc(z/√2) = 0.0195175 (Python).
	if r.s != 31 || r.varS != 165 || r.exact || math.Abs(r.p-0.0195175) > 1e-6 {
		t.Errorf("mannKendall(%v) = S %d var %g p %g exact %v; want S 31 var 165 p 0.0195175 normal", xs, r.s, r.varS, r.p, r.exact)
	}
}

// TestMannKendallAgainstBruteForce checks the merge-sort S and the tie
// variance against the definitions, on random series with and without ties.
func TestMannKendallAgainstBruteForce(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 7))
	for _, n := range []int{2, 3, 7, 16, 33, 100, 257} {
		for _, levels := range []int{3, 20, 0} { // 0: continuous, no ties
			xs := make([]float64, n)
			for i := range xs {
				if levels == 0 {
					xs[i] = r.NormFloat64()
				} else {
					xs[i] = float64(r.IntN(levels)) + float64(i)*0.01*float64(r.IntN(2))
				}
			}
			got := mannKendall(xs)
			if want := bruteS(xs); got.s != want {
				t.Errorf("n=%d levels=%d: S = %d, brute force %d", n, levels, got.s, want)
			}
			if want := bruteVar(xs); math.Abs(got.varS-want) > 1e-6*want {
				t.Errorf("n=%d levels=%d: Var(S) = %g, brute force %g", n, levels, got.varS, want)
			}
		}
	}
}

// TestExactPAgainstPermutations checks the exact p-values, built from the
// distribution of inversions, against counting S over all n! orderings.
func TestExactPAgainstPermutations(t *testing.T) {
	for n := 2; n <= 8; n++ {
		counts := map[int64]int{}
		total := 0
		permutations(n, func(p []float64) {
			counts[bruteS(p)]++
			total++
		})
		for s := range counts {
			tail := 0
			for s2, c := range counts {
				if s2 >= abs64(s) || s2 <= -abs64(s) {
					tail += c
				}
			}
			want := float64(tail) / float64(total)
			if got := exactP(n, s); math.Abs(got-want) > 1e-12 {
				t.Errorf("exactP(%d, %d) = %g, permutations give %g", n, s, got, want)
			}
		}
	}
}

func abs64(v int64) int64 {
	if v < 0 {
		return -v
	}
	return v
}

func TestTheilSen(t *testing.T) {
	// Slopes of (0,0) (1,1) (2,4) (3,3): 1 2 1 3 1 -1; sorted -1 1 1 1 2 3;
	// the median is (1+1)/2 = 1.
	if got := theilSen([]float64{0, 1, 2, 3}, []float64{0, 1, 4, 3}); got != 1 {
		t.Errorf("theilSen = %g, want 1", got)
	}
	// Odd count: (0,0) (1,10) (2,0): slopes 10, 0, -10: median 0.
	if got := theilSen([]float64{0, 1, 2}, []float64{0, 10, 0}); got != 0 {
		t.Errorf("theilSen = %g, want 0", got)
	}
	// Equal times carry no slope; none left gives 0.
	if got := theilSen([]float64{5, 5}, []float64{1, 2}); got != 0 {
		t.Errorf("theilSen with equal times = %g, want 0", got)
	}
}

// TestTheilSenAgainstBruteForce compares with the median computed by sorting
// every pairwise slope, on irregular times.
func TestTheilSenAgainstBruteForce(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	ts, xs := make([]float64, 40), make([]float64, 40)
	now := 0.0
	for i := range ts {
		now += 1 + r.Float64()*9
		ts[i], xs[i] = now, 0.3*now+r.NormFloat64()
	}
	var slopes []float64
	for i := range ts {
		for j := range ts {
			if ts[j] > ts[i] {
				slopes = append(slopes, (xs[j]-xs[i])/(ts[j]-ts[i]))
			}
		}
	}
	slices.Sort(slopes)
	want := (slopes[len(slopes)/2-1] + slopes[len(slopes)/2]) / 2 // 780 slopes: even
	if got := theilSen(ts, xs); math.Abs(got-want) > 1e-12 {
		t.Errorf("theilSen = %g, brute force %g", got, want)
	}
}

// TestAnalyzeTrendKnownSeries runs the whole test on series whose verdicts
// are known by construction. Series are sampled every 10s unless noted.
func TestAnalyzeTrendKnownSeries(t *testing.T) {
	noise := func(seed uint64, sd float64) func() float64 {
		r := rand.New(rand.NewPCG(seed, 1))
		return func() float64 { return sd * r.NormFloat64() }
	}
	walk := func(seed uint64) func(int) float64 {
		r := rand.New(rand.NewPCG(seed, 99))
		v := 0.0
		return func(int) float64 { v += r.NormFloat64(); return v }
	}
	n1, n2 := noise(1, 20), noise(2, 1e6)
	tests := []struct {
		name      string
		points    []Point
		opts      TrendOptions
		verdict   Verdict
		slope     float64 // want Window.SlopePerHour within tol, if tol > 0
		tol       float64
		wantNote  bool
		wantExact bool
	}{
		// 0.5 per 10s is 180 per hour, exactly: block medians of a line lie on it.
		{name: "line", points: gen(360, 10*time.Second, func(i int) float64 { return 100 + 0.5*float64(i) }),
			verdict: VerdictGrowing, slope: 180, tol: 1e-9},
		{name: "falling line", points: gen(360, 10*time.Second, func(i int) float64 { return 500 - 0.5*float64(i) }),
			verdict: VerdictShrinking, slope: -180, tol: 1e-9},
		// Noise of sd 20 against a rise of 180 over the hour: still plainly
		// growing; the slope is estimated within 10%.
		{name: "line plus noise", points: gen(360, 10*time.Second, func(i int) float64 { return 100 + 0.5*float64(i) + n1() }),
			verdict: VerdictGrowing, slope: 180, tol: 18},
		// A cache that fills by one item per sample and is flushed at 100,
		// 36 times over 10 hours: steady.
		{name: "saw-tooth", points: gen(3600, 10*time.Second, func(i int) float64 { return float64(i % 100) }),
			verdict: VerdictSteady},
		// A slow saw-tooth: only 5 flushes in the window, still steady.
		{name: "slow saw-tooth", points: gen(3600, 10*time.Second, func(i int) float64 { return float64(i % 700) }),
			verdict: VerdictSteady},
		// GC: the heap swings 40..60 MB with a period of 44s, plus noise, every second.
		{name: "gc oscillation", points: gen(3600, time.Second, func(i int) float64 { return 50e6 + 10e6*math.Sin(float64(i)/7) + n2() }),
			verdict: VerdictSteady},
		// The same kind of GC saw-tooth riding on a leak of 500 B/s: growing.
		{name: "gc saw-tooth over a leak", points: gen(3600, time.Second, func(i int) float64 { return 50e6 + 1e5*float64(i%37) + 500*float64(i) }),
			verdict: VerdictGrowing, slope: 1.8e6, tol: 0.2e6},
		// Rises for the first 10 minutes, then flat: the warm-up removes the rise.
		{name: "step after warm-up", points: gen(360, 10*time.Second, func(i int) float64 { return float64(min(i, 60)) }),
			opts: TrendOptions{Warmup: 10 * time.Minute}, verdict: VerdictSteady, slope: 0, tol: 1e-9},
		{name: "step after warm-up samples", points: gen(360, 10*time.Second, func(i int) float64 { return float64(min(i, 60)) }),
			opts: TrendOptions{WarmupSamples: 60}, verdict: VerdictSteady, slope: 0, tol: 1e-9},
		// Without the warm-up the same step is a plateau after growth.
		{name: "step without warm-up", points: gen(360, 10*time.Second, func(i int) float64 { return float64(min(i, 60)) }),
			verdict: VerdictSteady, wantNote: true},
		// Grows for half the window then holds: significant over the window,
		// flat in the recent half, so steady, with a note.
		{name: "plateau after growth", points: gen(400, 10*time.Second, func(i int) float64 { return float64(min(i, 200)) }),
			verdict: VerdictSteady, wantNote: true},
		{name: "constant", points: gen(100, 10*time.Second, func(int) float64 { return 42 }),
			verdict: VerdictSteady, slope: 0, tol: 1e-12},
		// A random walk has no trend, but a window of one drifts and Mann-Kendall,
		// which assumes independent samples, does not know that. The walk
		// seeded 0 wanders (S 58 of ±496 over the window, then down in the
		// recent half): steady. The walk seeded 2 drifts up by about 7 per hour
		// through the whole window and through its recent half: growing. That is
		// the documented limit (docs/trend.md): such a measure did grow.
		{name: "random walk 0", points: gen(3600, 10*time.Second, walk(0)), verdict: VerdictSteady},
		{name: "random walk 2", points: gen(3600, 10*time.Second, walk(2)), verdict: VerdictGrowing},
		// A tiny but real drift: 180 per hour is below a minimum of 200 per hour.
		{name: "below min slope", points: gen(360, 10*time.Second, func(i int) float64 { return 0.5 * float64(i) }),
			opts: TrendOptions{MinSlope: 200}, verdict: VerdictSteady, wantNote: true},
		{name: "too short", points: gen(5, 10*time.Second, func(i int) float64 { return float64(i) }),
			verdict: VerdictNotEnoughData},
		{name: "too short after warm-up", points: gen(30, 10*time.Second, func(i int) float64 { return float64(i) }),
			opts: TrendOptions{Warmup: 4 * time.Minute}, verdict: VerdictNotEnoughData},
		{name: "no time span", points: gen(20, 0, func(i int) float64 { return float64(i) }),
			verdict: VerdictNotEnoughData},
		{name: "empty", verdict: VerdictNotEnoughData},
		// 12 points, a perfect rise: the recent half (6 points) has the exact
		// p = 2/720 = 0.0028 < 0.01: growing, on the exact distribution.
		{name: "short rise", points: gen(12, time.Minute, func(i int) float64 { return float64(i) }),
			verdict: VerdictGrowing, slope: 60, tol: 1e-9, wantExact: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := AnalyzeTrend(tt.points, tt.opts)
			if got.Verdict != tt.verdict {
				t.Fatalf("verdict %s, want %s (%+v)", got.Verdict, tt.verdict, got)
			}
			if tt.tol > 0 && math.Abs(got.Window.SlopePerHour-tt.slope) > tt.tol {
				t.Errorf("slope %g/h, want %g ± %g", got.Window.SlopePerHour, tt.slope, tt.tol)
			}
			if (got.Note != "") != tt.wantNote {
				t.Errorf("note %q, want a note: %v", got.Note, tt.wantNote)
			}
			if got.Recent.Exact != tt.wantExact {
				t.Errorf("recent test exact = %v, want %v", got.Recent.Exact, tt.wantExact)
			}
			if got.Verdict != VerdictNotEnoughData && (got.Window.N > DefaultBlocks || got.Recent.N > DefaultBlocks/2) {
				t.Errorf("tested %d and %d points; want at most %d and %d", got.Window.N, got.Recent.N, DefaultBlocks, DefaultBlocks/2)
			}
		})
	}
}

// TestRandomWalkRate documents how often the test calls a random walk a trend;
// see docs/trend.md. With 200 seeded walks of 3600 steps about a third come
// out growing or shrinking (about one in six growing); white noise almost never.
func TestRandomWalkRate(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	walks, noise := 0, 0
	for seed := range uint64(200) {
		r := rand.New(rand.NewPCG(seed, 5))
		v := 0.0
		if AnalyzeTrend(gen(3600, 10*time.Second, func(int) float64 { v += r.NormFloat64(); return v }), TrendOptions{}).Verdict == VerdictGrowing {
			walks++
		}
		if AnalyzeTrend(gen(3600, 10*time.Second, func(int) float64 { return r.NormFloat64() }), TrendOptions{}).Verdict != VerdictSteady {
			noise++
		}
	}
	if walks < 10 || walks > 60 {
		t.Errorf("%d of 200 random walks growing; docs/trend.md says about one in six", walks)
	}
	if noise > 2 {
		t.Errorf("%d of 200 white-noise series not steady; want at most 2", noise)
	}
}

func TestAnalyzeTrendInput(t *testing.T) {
	line := gen(50, time.Minute, func(i int) float64 { return float64(i) })
	want := AnalyzeTrend(line, TrendOptions{})

	shuffled := slices.Clone(line)
	rand.New(rand.NewPCG(1, 1)).Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	if got := AnalyzeTrend(shuffled, TrendOptions{}); got != want {
		t.Errorf("shuffled points: %+v, want %+v", got, want)
	}
	if slices.IsSortedFunc(shuffled, comparePointTimes) {
		t.Fatal("shuffle did nothing")
	}

	withBad := append(slices.Clone(line), Point{clock.Add(time.Hour), math.NaN()}, Point{clock.Add(2 * time.Hour), math.Inf(1)})
	if got := AnalyzeTrend(withBad, TrendOptions{}); got != want {
		t.Errorf("NaN and Inf not dropped: %+v, want %+v", got, want)
	}
	if !math.IsNaN(withBad[50].Value) {
		t.Error("AnalyzeTrend modified its input")
	}
}

func TestGrowth(t *testing.T) {
	series := []Series{
		{Name: "fds", Unit: "fds", Points: gen(360, 10*time.Second, func(i int) float64 { return 20 + float64(i/6) })},
		{Name: "threads", Unit: "threads", Points: gen(360, 10*time.Second, func(int) float64 { return 9 })},
		{Name: "tasks", Unit: "items", Owner: `session "worker"`, Points: gen(360, 10*time.Second, func(i int) float64 { return float64(i) })},
	}
	fs := Growth(series, TrendOptions{})
	if len(fs) != 2 || fs[0].Subject != "fds" || fs[1].Subject != "tasks" {
		t.Fatalf("Growth found %+v; want fds and tasks", fs)
	}
	for _, s := range series {
		if s.Trend == nil {
			t.Errorf("series %s not analysed", s.Name)
		}
	}
	f := fs[1]
	if f.Kind != KindGrowth || f.Severity != SeverityWarning || f.Owner != `session "worker"` || f.Count != 1 ||
		f.Evidence.Series != "tasks" || f.Evidence.Trend == nil || f.Signature == "" {
		t.Errorf("growth finding %+v", f)
	}
	if want := "prune tasks: delete entries when their work is done, or bound its size"; f.Suggestion != want {
		t.Errorf("suggestion %q, want %q", f.Suggestion, want)
	}
	if fs[0].Suggestion == f.Suggestion {
		t.Errorf("fds got the generic suggestion %q", fs[0].Suggestion)
	}
}

func BenchmarkAnalyzeTrend(b *testing.B) {
	for _, n := range []int{10_000, 100_000} {
		r := rand.New(rand.NewPCG(1, 2))
		pts := gen(n, time.Second, func(i int) float64 { return float64(i%600) + 0.01*float64(i) + 10*r.NormFloat64() })
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			for b.Loop() {
				AnalyzeTrend(pts, TrendOptions{})
			}
		})
	}
}
