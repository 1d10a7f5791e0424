package fleet

import (
	"flag"
	"slices"
	"strings"
	"testing"
	"time"
)

var scale = flag.Bool("fleet.scale", false, "run the fleet tests and benchmarks at full scale: 2,000 instances, 10,000 series of 2,000 points")

// simSize is the simulated fleet the tests use: small enough for CI unless
// -fleet.scale.
func simSize() simFleet {
	end := time.Now().Add(-5 * time.Minute).Truncate(time.Minute)
	if *scale {
		return simFleet{instances: 2000, points: 2000, end: end, interval: 43 * time.Second}
	}
	return simFleet{instances: 100, points: 720, end: end, interval: 2 * time.Minute}
}

// TestBackfilledFleet fills a Prometheus with a day of history of a fleet
// whose leaking instances are known, checks that Analyze names exactly
// those, and compares it with the usual alert expressions.
func TestBackfilledFleet(t *testing.T) {
	f := simSize()
	url := backfill(t, f)
	ctx := waitCtx(t, 10*time.Minute)
	start := time.Now()
	res, err := Analyze(ctx, Options{
		URL: url, End: f.end, Range: f.end.Sub(f.start()) + f.interval, Step: f.interval, Selector: `{job="sim"}`,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("analysed %d instances, %d points in %v", res.Instances, res.Points, time.Since(start).Round(time.Millisecond))
	for _, n := range res.Notes {
		t.Logf("note: %s", n)
	}
	if res.Instances != f.instances {
		t.Errorf("analysed %d instances, want %d", res.Instances, f.instances)
	}
	got := flagged(res)
	var want []string
	for i := range f.instances {
		if simKindOf(i).leaks {
			want = append(want, simInstance(i))
		}
	}
	slices.Sort(want)
	missed, wrong := diff(want, got)
	for _, m := range missed {
		t.Errorf("leaking instance %s (%s) not found", m, kindOfInstance(m))
	}
	for _, w := range wrong {
		t.Errorf("steady instance %s (%s) reported leaking", w, kindOfInstance(w))
	}
	// The saw-tooth instances are one finding each that says so.
	for _, fd := range res.Findings {
		inst := instanceOf(fd.Owner)
		if kindOfInstance(inst) == "fds-sawtooth" && fd.Evidence.Values["runs_growing"] < 2 {
			t.Errorf("saw-tooth instance %s: %q grew in %v runs", inst, fd.Subject, fd.Evidence.Values["runs_growing"])
		}
	}
	// Each finding's series is in the result; a restarted instance's
	// series come run by run.
	names := map[string]bool{}
	for _, s := range res.Series {
		names[s.Name] = true
	}
	for _, fd := range res.Findings {
		if !names[fd.Evidence.Series] {
			t.Errorf("finding %q refers to series %q, not in the result", fd.Subject, fd.Evidence.Series)
		}
		if kindOfInstance(instanceOf(fd.Owner)) == "fds-sawtooth" && !strings.Contains(fd.Evidence.Series, ", run ") {
			t.Errorf("saw-tooth finding %q: series %q is not one run", fd.Subject, fd.Evidence.Series)
		}
	}
	t.Run("alert comparison", func(t *testing.T) { compareAlerts(t, ctx, f, url, res) })
}

// instanceOf returns the instance label of an owner: its first word.
func instanceOf(owner string) string {
	inst, _, _ := strings.Cut(owner, " ")
	return inst
}

// flagged lists the instances Analyze found leaking, sorted.
func flagged(res *Result) []string {
	var out []string
	for _, f := range res.Findings {
		out = append(out, instanceOf(f.Owner))
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// diff returns what want has and got lacks, and what got has that want lacks.
func diff(want, got []string) (missed, wrong []string) {
	for _, w := range want {
		if _, ok := slices.BinarySearch(got, w); !ok {
			missed = append(missed, w)
		}
	}
	for _, g := range got {
		if _, ok := slices.BinarySearch(want, g); !ok {
			wrong = append(wrong, g)
		}
	}
	return missed, wrong
}

func kindOfInstance(inst string) string {
	var i int
	for _, c := range inst[len("node-"):] {
		if c < '0' || c > '9' {
			break
		}
		i = i*10 + int(c-'0')
	}
	return simKindOf(i).name
}
