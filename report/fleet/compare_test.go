package fleet

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/api"
	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"
)

// alertRules are the leak alerts people write today, evaluated by the same
// Prometheus over the same backfilled fleet.
var alertRules = []struct{ name, expr string }{
	{"predict_linear fds", `predict_linear(process_open_fds{job="sim"}[6h], 24*3600) > process_max_fds{job="sim"}`},
	{"deriv goroutines", `deriv(go_goroutines{job="sim"}[1h]) > 0`},
	{"deriv goroutines over 6h > 5/h", `deriv(go_goroutines{job="sim"}[6h]) > 5/3600`},
	{"deriv fds over 6h > 5/h", `deriv(process_open_fds{job="sim"}[6h]) > 5/3600`},
	{"either alert", `(predict_linear(process_open_fds{job="sim"}[6h], 24*3600) > process_max_fds{job="sim"}) or on (instance) (deriv(go_goroutines{job="sim"}[1h]) > 0)`},
}

// score is the precision and recall of a set of flagged instances.
type score struct {
	tp, fp, fn int
}

func scoreOf(want, got []string) score {
	missed, wrong := diff(want, got)
	return score{tp: len(got) - len(wrong), fp: len(wrong), fn: len(missed)}
}

func (s score) precision() float64 {
	if s.tp+s.fp == 0 {
		return 1
	}
	return float64(s.tp) / float64(s.tp+s.fp)
}

func (s score) recall() float64 {
	if s.tp+s.fn == 0 {
		return 1
	}
	return float64(s.tp) / float64(s.tp+s.fn)
}

// alertFlagged evaluates expr at t, and, with window, whether it held at
// any moment in the window before t (evaluated every 5 minutes), as an
// alert that fired during the day would have paged; it returns the
// instances flagged.
func alertFlagged(ctx context.Context, promURL, expr string, t time.Time, window time.Duration) ([]string, error) {
	c, err := api.NewClient(api.Config{Address: promURL})
	if err != nil {
		return nil, err
	}
	q := expr
	if window > 0 {
		q = fmt.Sprintf("max_over_time((%s)[%ds:5m])", expr, int(window.Seconds()))
	}
	v, _, _, err := v1.NewAPI(c).Query(ctx, q, t)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", q, err)
	}
	var out []string
	for _, s := range v.(model.Vector) {
		out = append(out, string(s.Metric[model.InstanceLabel]))
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// compareAlerts compares leakcheck's verdicts res on the backfilled fleet
// f at url with the usual alert expressions, evaluated by the same
// Prometheus, and checks the goal: at least the best alert's recall, and at
// most half its false positives. The table it logs is the one in
// docs/accuracy.md.
func compareAlerts(t *testing.T, ctx context.Context, f simFleet, url string, res *Result) {
	var want, wantFDs, wantGoroutines []string
	for i := range f.instances {
		k := simKindOf(i)
		if !k.leaks {
			continue
		}
		want = append(want, simInstance(i))
		if strings.HasPrefix(k.name, "fds-") {
			wantFDs = append(wantFDs, simInstance(i))
		}
		if strings.HasPrefix(k.name, "goroutines-") {
			wantGoroutines = append(wantGoroutines, simInstance(i))
		}
	}
	slices.Sort(want)
	slices.Sort(wantFDs)
	slices.Sort(wantGoroutines)

	type row struct {
		method     string
		all, scope score
		scopeName  string
		fpKinds    map[string]int
	}
	fpKinds := func(got []string) map[string]int {
		_, wrong := diff(want, got)
		m := map[string]int{}
		for _, w := range wrong {
			m[kindOfInstance(w)]++
		}
		return m
	}
	lc := flagged(res)
	rows := []row{{method: "leakcheck report --prometheus", all: scoreOf(want, lc), fpKinds: fpKinds(lc)}}
	for _, a := range alertRules {
		for _, window := range []time.Duration{0, 18 * time.Hour} {
			got, err := alertFlagged(ctx, url, a.expr, f.end, window)
			if err != nil {
				t.Fatal(err)
			}
			name := "`" + a.name + "` at the end"
			if window > 0 {
				name = "`" + a.name + "` at any time in the last 18h"
			}
			r := row{method: name, all: scoreOf(want, got), fpKinds: fpKinds(got)}
			switch {
			case strings.Contains(a.name, " fds"):
				r.scope, r.scopeName = scoreOf(wantFDs, intersect(got, wantFDs, want)), "descriptor leaks"
			case strings.Contains(a.name, "goroutines"):
				r.scope, r.scopeName = scoreOf(wantGoroutines, intersect(got, wantGoroutines, want)), "goroutine leaks"
			}
			rows = append(rows, r)
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "\n%d instances, %d leaking; a day at %v\n\n", f.instances, len(want), f.interval)
	b.WriteString("| method | flagged | true | false | precision | recall | recall of its own kind | false positives by kind |\n")
	b.WriteString("| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |\n")
	for _, r := range rows {
		own := "-"
		if r.scopeName != "" {
			own = fmt.Sprintf("%.2f (%s)", r.scope.recall(), r.scopeName)
		}
		var kinds []string
		for k, n := range r.fpKinds {
			kinds = append(kinds, fmt.Sprintf("%s %d", k, n))
		}
		slices.Sort(kinds)
		fmt.Fprintf(&b, "| %s | %d | %d | %d | %.2f | %.2f | %s | %s |\n", r.method, r.all.tp+r.all.fp, r.all.tp, r.all.fp,
			r.all.precision(), r.all.recall(), own, strings.Join(kinds, ", "))
	}
	t.Log(b.String())

	// The goal: recall at least the best alert's, half its false positives
	// or fewer.
	best := rows[1]
	for _, r := range rows[1:] {
		if r.all.recall() > best.all.recall() || r.all.recall() == best.all.recall() && r.all.fp < best.all.fp {
			best = r
		}
	}
	if lc := rows[0].all; lc.recall() < best.all.recall() || 2*lc.fp > best.all.fp && lc.fp > 0 {
		t.Errorf("leakcheck: recall %.2f with %d false positives; the best alert (%s): recall %.2f with %d",
			lc.recall(), lc.fp, best.method, best.all.recall(), best.all.fp)
	}
}

// intersect returns the instances of got that are in scope, or not leaking
// at all: an alert is judged on its own kind of leak, and still pays for its
// false positives.
func intersect(got, scope, leaking []string) []string {
	var out []string
	for _, g := range got {
		_, inScope := slices.BinarySearch(scope, g)
		_, leaks := slices.BinarySearch(leaking, g)
		if inScope || !leaks {
			out = append(out, g)
		}
	}
	return out
}
