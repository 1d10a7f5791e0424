package fleet

import (
	"math"
	"testing"
	"time"

	"github.com/prometheus/common/model"
)

// TestJudge checks the verdict on one resource of one instance for the
// shapes that matter, run by run: start times mark the restarts.
func TestJudge(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	step := time.Minute
	const n = 240 // four hours
	series := func(f func(i int) float64) []model.SamplePair {
		out := make([]model.SamplePair, n)
		for i := range out {
			out[i] = model.SamplePair{Timestamp: model.TimeFromUnixNano(t0.Add(time.Duration(i) * step).UnixNano()), Value: model.SampleValue(f(i))}
		}
		return out
	}
	noise := func(i int) float64 { return float64((i * 7919) % 5) }
	once := series(func(int) float64 { return float64(t0.Unix()) })
	hourly := series(func(i int) float64 { return float64(t0.Unix() + int64(i/60)*3600) }) // restarts every hour
	tests := []struct {
		name     string
		values   []model.SamplePair
		start    []model.SamplePair
		unit     string
		leaking  bool
		sawtooth bool
		runs     int
	}{
		{"flat", series(func(i int) float64 { return 40 + noise(i) }), once, "fds", false, false, 1},
		{"linear", series(func(i int) float64 { return 40 + float64(i)/10 + noise(i) }), once, "fds", true, false, 1},
		{"tiny drift is not material", series(func(i int) float64 { return 40 + float64(i/100) }), once, "fds", false, false, 1},
		{"step then flat", series(func(i int) float64 { return 40 + 30*float64(min(i/120, 1)) + noise(i) }), once, "fds", false, false, 1},
		{"rising saw-tooth", series(func(i int) float64 { return 40 + float64(i%60) + noise(i) }), hourly, "fds", true, true, 4},
		{"restarts, steady", series(func(i int) float64 { return 40 + noise(i) }), hourly, "fds", false, false, 4},
		{"the restarts' drops alone are no leak", series(func(i int) float64 { return 100 - float64(i/60)*10 + noise(i) }), hourly, "fds", false, false, 4},
		{"memory settling by 1MiB", series(func(i int) float64 { return 8e6 + 1e6*math.Min(float64(i)/200, 1) }), once, "bytes", false, false, 1},
		{"memory leak", series(func(i int) float64 { return 100e6 + 1e6*float64(i) }), once, "bytes", true, false, 1},
	}
	o, err := Options{URL: "http://127.0.0.1:9", Range: 4 * time.Hour, Step: step}.withDefaults(t0)
	if err != nil {
		t.Fatal(err)
	}
	a := &analyzer{opts: o}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			restarts := restartTimes(tt.start, nil, step)
			v := a.judge(namedStream{name: "x", unit: tt.unit, values: tt.values}, restarts, nil)
			if v.leaking != tt.leaking || v.sawtooth != tt.sawtooth || v.runs != tt.runs {
				t.Errorf("leaking %v, saw-tooth %v, runs %d (%d tested, %d growing); want %v, %v, %d",
					v.leaking, v.sawtooth, v.runs, v.tested, v.growing, tt.leaking, tt.sawtooth, tt.runs)
			}
		})
	}
}

// TestRestartTimes checks restarts from start times and counter resets.
func TestRestartTimes(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(min int, v float64) model.SamplePair {
		return model.SamplePair{Timestamp: model.TimeFromUnixNano(t0.Add(time.Duration(min) * time.Minute).UnixNano()), Value: model.SampleValue(v)}
	}
	start := []model.SamplePair{at(0, 100), at(1, 100), at(2, 100.2), at(3, 500), at(4, 500), at(5, 900)}
	cpu := [][]model.SamplePair{{at(0, 5), at(1, 6), at(2, 7), at(3, 0.1), at(4, 1), at(5, 2), at(6, 3), at(7, 0.5)}}
	got := restartTimes(start, cpu, time.Minute)
	want := []time.Time{t0.Add(3 * time.Minute), t0.Add(5 * time.Minute), t0.Add(7 * time.Minute)}
	if len(got) != len(want) {
		t.Fatalf("restarts %v, want %v", got, want)
	}
	for i := range want {
		if !got[i].Equal(want[i]) {
			t.Errorf("restart %d at %v, want %v", i, got[i], want[i])
		}
	}
}
