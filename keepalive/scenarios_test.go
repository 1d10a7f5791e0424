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

// scenarioRun is what runScenario observed.
type scenarioRun struct {
	rep *Report
	m   map[string]int64 // the instance's measures after Run
	fds int              // descriptors open after Run beyond those before
	k   *Kernel
	err error // Run's error
}

// runScenario runs one scenario for scenarioRounds rounds on a fresh kernel,
// for at most d. The instance is closed at cleanup, before the goroutine and
// descriptor checks.
func runScenario(t *testing.T, name string, d time.Duration) scenarioRun {
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
	return scenarioRun{rep: rep, m: m, fds: len(openFDs(t)) - before, k: k, err: runErr}
}

// retained counts the objects of kind the kernel's registry watched and
// found still reachable after garbage collection.
func retained(k *Kernel, kind tracker.Kind) int {
	n := 0
	for _, r := range k.Registry().CheckRetained() {
		if r.Record.Kind == kind {
			n++
		}
	}
	return n
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
		r := runScenario(t, "extra-filehandle", 5*time.Second)
		must(t, r.err)
		files, socks := r.rep.Of(tracker.KindFile), r.rep.Of(tracker.KindSocket)
		if len(files) != 3 || len(socks) != 2 || r.rep.Len() != 5 {
			t.Fatalf("leftovers: %d files, %d sockets, %d in all", len(files), len(socks), r.rep.Len())
		}
		for _, rec := range append(files, socks...) {
			if !rec.OwnerStopped || !strings.HasPrefix(rec.OwnerLabel, "writer round-") {
				t.Errorf("leftover %s %q owned by %q (stopped %v)", rec.Kind, rec.Label, rec.OwnerLabel, rec.OwnerStopped)
			}
		}
		if r.m["held_handles"] != 5 || r.fds != 5 {
			t.Errorf("held %d handles, %d more descriptors open", r.m["held_handles"], r.fds)
		}
	})
	t.Run("fixed", func(t *testing.T) {
		r := runScenario(t, "extra-filehandle-fixed", 5*time.Second)
		must(t, r.err)
		if r.rep.Len() != 0 || r.m["held_handles"] != 0 || r.fds != 0 {
			t.Errorf("%d leftovers, %d held, %d descriptors", r.rep.Len(), r.m["held_handles"], r.fds)
		}
	})
}

func TestScenarioForgottenWheel(t *testing.T) {
	t.Run("leaky", func(t *testing.T) {
		r := runScenario(t, "forgotten-wheel", 300*time.Millisecond)
		if !errors.Is(r.err, context.DeadlineExceeded) {
			t.Fatalf("Run ended by itself (%v): the forgotten wheels should keep it going", r.err)
		}
		wheels, socks := r.rep.Of(tracker.KindWheel), r.rep.Of(tracker.KindSocket)
		if len(wheels) != 2*scenarioRounds || len(socks) != 2*scenarioRounds {
			t.Errorf("%d wheels and %d sockets left, want %d each", len(wheels), len(socks), 2*scenarioRounds)
		}
		clients := 0
		for _, rec := range r.rep.Of(tracker.KindSession) {
			if strings.HasPrefix(rec.Label, "client ") {
				clients++
			}
		}
		// The clients, the server and the driver, kept alive by its children.
		if clients != scenarioRounds || r.rep.Alive != scenarioRounds+2 {
			t.Errorf("%d client sessions alive at shutdown, %d in all", clients, r.rep.Alive)
		}
	})
	t.Run("fixed", func(t *testing.T) {
		r := runScenario(t, "forgotten-wheel-fixed", 5*time.Second)
		must(t, r.err)
		if r.rep.Len() != 0 || r.m["live_clients"] != 0 {
			t.Errorf("%d leftovers, %d clients alive", r.rep.Len(), r.m["live_clients"])
		}
	})
}

func TestScenarioSessionCycle(t *testing.T) {
	t.Run("leaky", func(t *testing.T) {
		r := runScenario(t, "session-cycle", 5*time.Second)
		must(t, r.err)
		if r.m["heaps_retained"] != 2*scenarioRounds || r.m["heaps_finalized"] != 0 {
			t.Errorf("%d heaps retained, %d finalized; want all %d retained", r.m["heaps_retained"], r.m["heaps_finalized"], 2*scenarioRounds)
		}
		if n := retained(r.k, "heap"); n != 2*scenarioRounds {
			t.Errorf("the tracker found %d heaps retained, want %d", n, 2*scenarioRounds)
		}
	})
	t.Run("fixed", func(t *testing.T) {
		r := runScenario(t, "session-cycle-fixed", 5*time.Second)
		must(t, r.err)
		if r.rep.Len() != 0 || r.m["heaps_retained"] != 0 {
			t.Errorf("%d leftovers, %d heaps retained", r.rep.Len(), r.m["heaps_retained"])
		}
		if n := retained(r.k, "heap"); n != 0 {
			t.Errorf("the tracker found %d heaps retained", n)
		}
	})
}

func TestScenarioGrowingMap(t *testing.T) {
	t.Run("leaky", func(t *testing.T) {
		r := runScenario(t, "growing-map", 5*time.Second)
		must(t, r.err)
		if r.m["tasks"] != scenarioRounds {
			t.Errorf("%d tasks in the map, want %d", r.m["tasks"], scenarioRounds)
		}
	})
	t.Run("fixed", func(t *testing.T) {
		r := runScenario(t, "growing-map-fixed", 5*time.Second)
		must(t, r.err)
		if r.rep.Len() != 0 || r.m["tasks"] != 0 {
			t.Errorf("%d leftovers, %d tasks", r.rep.Len(), r.m["tasks"])
		}
	})
}

func TestScenarioClosureCapture(t *testing.T) {
	t.Run("leaky", func(t *testing.T) {
		r := runScenario(t, "closure-capture", 5*time.Second)
		must(t, r.err)
		timers := r.rep.Of(tracker.KindTimer)
		if len(timers) != scenarioRounds || r.rep.Len() != scenarioRounds {
			t.Fatalf("%d timers left, %d leftovers in all", len(timers), r.rep.Len())
		}
		for _, rec := range timers {
			if !rec.OwnerStopped || !strings.HasPrefix(rec.OwnerLabel, "job ") {
				t.Errorf("timer %q owned by %q", rec.Label, rec.OwnerLabel)
			}
		}
		if r.m["callbacks"] != scenarioRounds || r.m["payloads_retained"] != scenarioRounds {
			t.Errorf("%d callbacks, %d payloads retained", r.m["callbacks"], r.m["payloads_retained"])
		}
		if n := retained(r.k, "payload"); n != scenarioRounds {
			t.Errorf("the tracker found %d payloads retained, want %d", n, scenarioRounds)
		}
	})
	t.Run("fixed", func(t *testing.T) {
		r := runScenario(t, "closure-capture-fixed", 5*time.Second)
		must(t, r.err)
		if r.rep.Len() != 0 || r.m["callbacks"] != 0 || r.m["payloads_retained"] != 0 {
			t.Errorf("%d leftovers, %d callbacks, %d payloads retained", r.rep.Len(), r.m["callbacks"], r.m["payloads_retained"])
		}
		if n := retained(r.k, "payload"); n != 0 {
			t.Errorf("the tracker found %d payloads retained", n)
		}
	})
}
