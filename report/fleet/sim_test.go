package fleet

import (
	"bufio"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// A simulated fleet: instances whose history is written in the OpenMetrics
// text format and backfilled into a Prometheus with promtool, each behaving
// in a known way, leaking or not.

// simKind is one way an instance behaves.
type simKind struct {
	name  string
	leaks bool
	per   int // instances of this kind in every 100
}

// simKinds are the behaviours of the fleet and their shares, 15 leaking in
// every 100 instances. The steady ones are those that fool an alert
// expression: daily traffic, a deploy that raises the baseline, restarts, GC
// saw-teeth, noise.
var simKinds = []simKind{
	{"fds-linear", true, 3},           // slow descriptor leak, far from the limit
	{"fds-fast", true, 2},             // fast leak, near the limit within a day
	{"fds-staircase", true, 2},        // leaks a batch every two hours
	{"fds-sawtooth", true, 3},         // leaks, restarted every four hours
	{"goroutines-linear", true, 2},    // goroutine leak
	{"goroutines-underload", true, 2}, // leaks only during load, four times a day
	{"memory-linear", true, 1},        // resident memory grows
	{"flat", false, 60},               // noise around a level
	{"traffic", false, 8},             // goroutines and descriptors follow daily traffic
	{"deploy-step", false, 5},         // a deploy raises the descriptors once
	{"restarts", false, 5},            // restarted every three hours, steady
	{"gc-sawtooth", false, 5},         // memory and goroutines oscillate
	{"noisy", false, 2},               // large noise on goroutines
}

// simKindOf returns the kind of instance i.
func simKindOf(i int) simKind {
	r := i % 100
	for _, k := range simKinds {
		if r < k.per {
			return k
		}
		r -= k.per
	}
	panic("shares do not add up to 100")
}

// simFleet describes the history to write.
type simFleet struct {
	instances int
	points    int           // per series
	end       time.Time     // time of the last point
	interval  time.Duration // between points
}

func (f simFleet) start() time.Time { return f.end.Add(-time.Duration(f.points-1) * f.interval) }

func simInstance(i int) string { return fmt.Sprintf("node-%05d:9100", i) }

// simSample is the state of an instance at one point.
type simSample struct {
	start, fds, maxFDs, goroutines, rss float64
}

// sample returns instance i's state at hour h (0 at the first point) of a
// history of hours; rnd gives its noise.
func (f simFleet) sample(i int, h, hours float64, rnd *rand.Rand) simSample {
	k := simKindOf(i)
	base := 40 + float64(i%17)
	s := simSample{
		start:      float64(f.start().Add(-time.Hour).Unix()),
		fds:        base + float64(rnd.IntN(5)),
		maxFDs:     1024,
		goroutines: 60 + float64(i%13) + float64(rnd.IntN(7)),
		rss:        200e6 + float64(rnd.IntN(4e6)),
	}
	restartEvery := func(period float64) float64 { // hours into the current run
		run := math.Floor(h / period)
		s.start = float64(f.start().Unix()) + run*period*3600
		return h - run*period
	}
	switch k.name {
	case "fds-linear":
		s.maxFDs = 65536
		s.fds += 5 * h
	case "fds-fast":
		s.fds = 300 + 25*h + float64(rnd.IntN(9))
	case "fds-staircase":
		s.fds += 25 * math.Floor(h/2)
	case "fds-sawtooth":
		s.fds += 40 * restartEvery(4)
	case "goroutines-linear":
		s.goroutines += 20 * h
	case "goroutines-underload":
		// Load from hour 2 to 5 of every six; ten leaked an hour under load.
		cycles := math.Floor(h / 6)
		in := math.Min(math.Max(h-cycles*6-2, 0), 3)
		s.goroutines += 10 * (3*cycles + in)
	case "memory-linear":
		s.rss += 30e6 * h
	case "traffic":
		day := math.Sin(2 * math.Pi * h / hours)
		s.goroutines += 150 * (1 + day)
		s.fds += 60 * (1 + day)
	case "deploy-step":
		s.fds += 600
		if h >= hours/4 {
			s.fds += 200 // the new version keeps a bigger pool
		}
	case "restarts":
		run := restartEvery(3)
		s.goroutines += 40 * math.Min(run*12, 1) // warms up within five minutes
	case "gc-sawtooth":
		phase := math.Mod(h, 1.0/3) * 3 // twenty-minute cycles
		s.rss += 80e6 * phase
		s.goroutines += 30 * phase
	case "noisy":
		s.goroutines += float64(rnd.IntN(120))
	}
	return s
}

// writeOpenMetrics writes the fleet's history in the OpenMetrics text
// format, one metric family after the other, streaming.
func (f simFleet) writeOpenMetrics(path string) error {
	file, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(file, 1<<20)
	families := []struct {
		name string
		get  func(simSample) float64
	}{
		{"process_start_time_seconds", func(s simSample) float64 { return s.start }},
		{"process_open_fds", func(s simSample) float64 { return s.fds }},
		{"process_max_fds", func(s simSample) float64 { return s.maxFDs }},
		{"go_goroutines", func(s simSample) float64 { return s.goroutines }},
		{"process_resident_memory_bytes", func(s simSample) float64 { return s.rss }},
	}
	hours := f.end.Sub(f.start()).Hours()
	buf := make([]byte, 0, 128)
	for _, fam := range families {
		fmt.Fprintf(w, "# TYPE %s gauge\n", fam.name)
		for i := range f.instances {
			// The same seed for every family: one instance, one history.
			rnd := rand.New(rand.NewPCG(uint64(i), 1))
			prefix := fmt.Sprintf("%s{job=\"sim\",instance=\"%s\",kind=\"%s\"} ", fam.name, simInstance(i), simKindOf(i).name)
			for p := range f.points {
				t := f.start().Add(time.Duration(p) * f.interval)
				s := f.sample(i, t.Sub(f.start()).Hours(), hours, rnd)
				buf = append(buf[:0], prefix...)
				buf = strconv.AppendFloat(buf, fam.get(s), 'g', -1, 64)
				buf = append(buf, ' ')
				buf = strconv.AppendInt(buf, t.Unix(), 10)
				buf = append(buf, '\n')
				w.Write(buf)
			}
		}
	}
	fmt.Fprintln(w, "# EOF")
	if err := w.Flush(); err != nil {
		file.Close()
		return err
	}
	return file.Close()
}

// backfill writes the fleet's history, turns it into TSDB blocks with
// promtool in a new data directory, starts a Prometheus on it and returns
// its URL.
func backfill(t testing.TB, f simFleet) string {
	t.Helper()
	return backfillWith(t, fmt.Sprintf("%d instances x 5 series x %d points", f.instances, f.points), f.writeOpenMetrics)
}

// backfillWith writes history in the OpenMetrics text format with write,
// turns it into TSDB blocks with promtool, starts a Prometheus on them and
// returns its URL.
func backfillWith(t testing.TB, what string, write func(path string) error) string {
	t.Helper()
	promtool := lookTool(t, "promtool")
	lookTool(t, "prometheus")
	dir := t.TempDir()
	om := filepath.Join(dir, "history.om")
	start := time.Now()
	if err := write(om); err != nil {
		t.Fatalf("writing the history: %v", err)
	}
	written := time.Since(start)
	data := filepath.Join(dir, "data")
	start = time.Now()
	c := exec.Command(promtool, "tsdb", "create-blocks-from", "openmetrics", om, data)
	if out, err := c.CombinedOutput(); err != nil {
		t.Fatalf("promtool tsdb create-blocks-from openmetrics: %v\n%s", err, out)
	}
	os.Remove(om)
	t.Logf("backfilled %s: written in %v, blocks made in %v", what, written.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
	return startPrometheus(t, "", data)
}
