package keepalive

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/leakcheck/leakcheck/tracker"
)

const scenarioRounds = 5

// runScenario runs one scenario for scenarioRounds rounds on a fresh kernel
// (for at most d) and returns the report, Run's error, the measures taken
// after Run, and how many more descriptors are open than before the start.
// The instance is closed at cleanup, before the goroutine and descriptor
// checks.
func runScenario(t *testing.T, name string, d time.Duration) (*Report, error, map[string]int64, int) {
	t.Helper()
	clean(t)
	sc, ok := LookupScenario(name)
	if !ok {
		t.Fatalf("no scenario %q", name)
	}
	before := len(openFDs(t))
	k := newKernel(t)
	in, err := sc.Start(k, ScenarioConfig{Rounds: scenarioRounds, Interval: time.Millisecond, Payload: 1 << 10, Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := in.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	rep, runErr := run(t, k, d)
	m := in.Measure()
	if m["rounds"] != scenarioRounds {
		t.Errorf("ran %d rounds, want %d", m["rounds"], scenarioRounds)
	}
	t.Logf("%s: %v\n%s", name, m, rep)
	return rep, runErr, m, len(openFDs(t)) - before
}

func TestScenarioList(t *testing.T) {
	scs := Scenarios()
	if len(scs) != 10 {
		t.Fatalf("%d scenarios", len(scs))
	}
	for _, sc := range scs {
		twin, ok := LookupScenario(sc.Twin)
		if !ok || twin.Twin != sc.Name || twin.Leaky == sc.Leaky {
			t.Errorf("%s: twin %q is not its pair", sc.Name, sc.Twin)
		}
		if sc.Description == "" || sc.Evidence == "" {
			t.Errorf("%s: undocumented", sc.Name)
		}
		if strings.HasSuffix(sc.Name, "-fixed") == sc.Leaky {
			t.Errorf("%s: Leaky %v", sc.Name, sc.Leaky)
		}
	}
}

func TestScenarioExtraFilehandle(t *testing.T) {
	t.Run("leaky", func(t *testing.T) {
		rep, err, m, fds := runScenario(t, "extra-filehandle", 5*time.Second)
		must(t, err)
		files, socks := rep.Of(tracker.KindFile), rep.Of(tracker.KindSocket)
		if len(files) != 3 || len(socks) != 2 || rep.Len() != 5 {
			t.Fatalf("leftovers: %d files, %d sockets, %d in all", len(files), len(socks), rep.Len())
		}
		for _, r := range append(files, socks...) {
			if !r.OwnerStopped || !strings.HasPrefix(r.OwnerLabel, "writer round-") {
				t.Errorf("leftover %s %q owned by %q (stopped %v)", r.Kind, r.Label, r.OwnerLabel, r.OwnerStopped)
			}
		}
		if m["held_handles"] != 5 || fds != 5 {
			t.Errorf("held %d handles, %d more descriptors open", m["held_handles"], fds)
		}
	})
	t.Run("fixed", func(t *testing.T) {
		rep, err, m, fds := runScenario(t, "extra-filehandle-fixed", 5*time.Second)
		must(t, err)
		if rep.Len() != 0 || m["held_handles"] != 0 || fds != 0 {
			t.Errorf("%d leftovers, %d held, %d descriptors", rep.Len(), m["held_handles"], fds)
		}
	})
}

func TestScenarioForgottenWheel(t *testing.T) {
	t.Run("leaky", func(t *testing.T) {
		rep, err, _, _ := runScenario(t, "forgotten-wheel", 300*time.Millisecond)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Run ended by itself (%v): the forgotten wheels should keep it going", err)
		}
		wheels, socks := rep.Of(tracker.KindWheel), rep.Of(tracker.KindSocket)
		if len(wheels) != 2*scenarioRounds || len(socks) != 2*scenarioRounds {
			t.Errorf("%d wheels and %d sockets left, want %d each", len(wheels), len(socks), 2*scenarioRounds)
		}
		clients := 0
		for _, r := range rep.Of(tracker.KindSession) {
			if strings.HasPrefix(r.Label, "client ") {
				clients++
			}
		}
		// The clients, the server and the driver, kept alive by its children.
		if clients != scenarioRounds || rep.Alive != scenarioRounds+2 {
			t.Errorf("%d client sessions alive at shutdown, %d in all", clients, rep.Alive)
		}
	})
	t.Run("fixed", func(t *testing.T) {
		rep, err, m, _ := runScenario(t, "forgotten-wheel-fixed", 5*time.Second)
		must(t, err)
		if rep.Len() != 0 || m["live_clients"] != 0 {
			t.Errorf("%d leftovers, %d clients alive", rep.Len(), m["live_clients"])
		}
	})
}

func TestScenarioSessionCycle(t *testing.T) {
	t.Run("leaky", func(t *testing.T) {
		_, err, m, _ := runScenario(t, "session-cycle", 5*time.Second)
		must(t, err)
		if m["heaps_retained"] != 2*scenarioRounds || m["heaps_finalized"] != 0 {
			t.Errorf("%d heaps retained, %d finalized; want all %d retained", m["heaps_retained"], m["heaps_finalized"], 2*scenarioRounds)
		}
	})
	t.Run("fixed", func(t *testing.T) {
		rep, err, m, _ := runScenario(t, "session-cycle-fixed", 5*time.Second)
		must(t, err)
		if rep.Len() != 0 || m["heaps_retained"] != 0 {
			t.Errorf("%d leftovers, %d heaps retained", rep.Len(), m["heaps_retained"])
		}
	})
}

func TestScenarioGrowingMap(t *testing.T) {
	t.Run("leaky", func(t *testing.T) {
		_, err, m, _ := runScenario(t, "growing-map", 5*time.Second)
		must(t, err)
		if m["tasks"] != scenarioRounds {
			t.Errorf("%d tasks in the map, want %d", m["tasks"], scenarioRounds)
		}
	})
	t.Run("fixed", func(t *testing.T) {
		rep, err, m, _ := runScenario(t, "growing-map-fixed", 5*time.Second)
		must(t, err)
		if rep.Len() != 0 || m["tasks"] != 0 {
			t.Errorf("%d leftovers, %d tasks", rep.Len(), m["tasks"])
		}
	})
}

func TestScenarioClosureCapture(t *testing.T) {
	t.Run("leaky", func(t *testing.T) {
		rep, err, m, _ := runScenario(t, "closure-capture", 5*time.Second)
		must(t, err)
		timers := rep.Of(tracker.KindTimer)
		if len(timers) != scenarioRounds || rep.Len() != scenarioRounds {
			t.Fatalf("%d timers left, %d leftovers in all", len(timers), rep.Len())
		}
		for _, r := range timers {
			if !r.OwnerStopped || !strings.HasPrefix(r.OwnerLabel, "job ") {
				t.Errorf("timer %q owned by %q", r.Label, r.OwnerLabel)
			}
		}
		if m["callbacks"] != scenarioRounds || m["payloads_retained"] != scenarioRounds {
			t.Errorf("%d callbacks, %d payloads retained", m["callbacks"], m["payloads_retained"])
		}
	})
	t.Run("fixed", func(t *testing.T) {
		rep, err, m, _ := runScenario(t, "closure-capture-fixed", 5*time.Second)
		must(t, err)
		if rep.Len() != 0 || m["callbacks"] != 0 || m["payloads_retained"] != 0 {
			t.Errorf("%d leftovers, %d callbacks, %d payloads retained", rep.Len(), m["callbacks"], m["payloads_retained"])
		}
	})
}
