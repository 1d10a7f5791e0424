package fleet

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/leakcheck/leakcheck/report"
)

// TestLiveFleet runs six fixture daemons, two steady and four leaking, has
// a real Prometheus scrape them every second for about half a minute, and
// checks that Analyze names exactly the leaking ones.
func TestLiveFleet(t *testing.T) {
	lookTool(t, "prometheus")
	start := time.Now()
	bin := buildFixture(t)
	t.Logf("fixture built in %v", time.Since(start).Round(time.Millisecond))
	modes := []struct {
		mode  string
		args  []string
		leaks string // the resource that leaks; "" for none
	}{
		{mode: "steady"},
		{mode: "churn"},
		{mode: "fds", leaks: "fds"},
		{mode: "goroutines", args: []string{"-rate", "5"}, leaks: "goroutines"},
		{mode: "tracked", args: []string{"-rate", "4"}, leaks: "tracker.live.task"},
		{mode: "restart", args: []string{"-restart-every", "14s"}, leaks: "fds"},
	}
	// The fixtures start once Prometheus is up, so that the restarted one
	// has two whole runs scraped.
	byAddr := map[string]string{}
	addrs := make([]string, len(modes))
	var targets []string
	for i, m := range modes {
		addrs[i] = fmt.Sprintf("127.0.0.1:%d", freePort(t))
		byAddr[addrs[i]] = m.mode
		targets = append(targets, fmt.Sprintf("      - targets: ['%s']\n        labels: {mode: '%s'}\n", addrs[i], m.mode))
	}
	start = time.Now()
	url := startPrometheus(t, "scrape_configs:\n  - job_name: fleet\n    static_configs:\n"+strings.Join(targets, ""), "")
	waitScraping(t, url, len(modes))
	t.Logf("prometheus ready and scraping in %v", time.Since(start).Round(time.Millisecond))
	for i, m := range modes {
		startFixture(t, bin, append([]string{"-listen", addrs[i], "-mode", m.mode}, m.args...)...)
	}
	time.Sleep(30 * time.Second)

	res, err := Analyze(waitCtx(t, 30*time.Second), Options{
		URL: url, Range: time.Hour, Step: time.Second, Selector: `{job="fleet"}`,
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range res.Notes {
		t.Logf("note: %s", n)
	}
	for _, row := range res.Tables[0].Rows {
		t.Logf("%v", row)
	}
	if res.Instances != len(modes) {
		t.Errorf("analysed %d instances, want %d", res.Instances, len(modes))
	}
	found := map[string]report.Finding{}
	for _, f := range res.Findings {
		mode := ""
		for addr, m := range byAddr {
			if strings.HasPrefix(f.Owner, addr+" ") {
				mode = m
			}
		}
		if mode == "" {
			t.Fatalf("finding for an unknown instance: %+v", f)
		}
		found[mode] = f
		t.Logf("%s: %s %s: %s (%v)", mode, f.Severity, f.Subject, f.Suggestion, f.Evidence.Values)
	}
	for _, m := range modes {
		f, ok := found[m.mode]
		switch {
		case m.leaks == "" && ok:
			t.Errorf("steady fixture %s reported leaking: %s", m.mode, f.Subject)
		case m.leaks != "" && !ok:
			t.Errorf("leaking fixture %s not found", m.mode)
		case ok && !strings.HasPrefix(f.Subject, m.leaks+" of "):
			t.Errorf("fixture %s: finding %q, want one about %s", m.mode, f.Subject, m.leaks)
		}
	}
	if f, ok := found["fds"]; ok {
		if f.Evidence.Values["limit"] != 2048 || f.Evidence.Values["time_to_limit_seconds"] <= 0 {
			t.Errorf("fds leak without its limit and time to it: %v", f.Evidence.Values)
		}
	}
	if f, ok := found["restart"]; ok {
		if f.Evidence.Values["restarts"] < 1 {
			t.Errorf("restarted fixture: no restart seen: %v", f.Evidence.Values)
		}
		// Two whole runs of 14s fit in the window: a rising saw-tooth.
		if f.Evidence.Values["runs_growing"] >= 2 && !strings.Contains(f.Subject, "restarted before it runs out") {
			t.Errorf("restarted fixture grew in %v runs, but the finding does not say it is restarted: %q", f.Evidence.Values["runs_growing"], f.Subject)
		}
	}
	if !hasNote(res, "series read through remote read (streamed chunks)") {
		t.Errorf("notes %q do not say the series came through remote read", res.Notes)
	}
	if t.Failed() {
		t.Logf("found %v", slices.Sorted(maps.Keys(found)))
	}
	// The head's chunks (being written as they are read), the restarted
	// fixture's runs and the tracker's records summed over their owners'
	// kinds: the same points through both paths.
	t.Run("remote read and the query API agree", func(t *testing.T) {
		o := Options{URL: url, End: time.Now().Add(-5 * time.Second), Range: 40 * time.Second, Selector: `{job="fleet"}`}
		samePaths(t, waitCtx(t, 30*time.Second), o, []time.Duration{time.Second, 2500 * time.Millisecond})
	})
}
