package report

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/leakcheck/leakcheck/tracker"
)

// testSnapshot is a daemon's final snapshot with one of everything: a
// thousand sockets leaked from one line by a stopped session, a file and a
// listener still open at exit, a timer, a goroutine, an orphaned session,
// misuse, an unreleased socket, retained objects, a cycle and two gauges.
func testSnapshot() *tracker.Snapshot {
	at := func(d time.Duration) time.Time { return clock.Add(d) }
	s := &tracker.Snapshot{
		Schema: tracker.SchemaVersion, Time: at(time.Hour), PID: 4242, Program: "mydaemon", Stacks: "always",
		StackTable: map[int][]tracker.Frame{
			1: {
				{Func: "github.com/leakcheck/leakcheck/tracker.WrapConn", File: "/src/leakcheck/tracker/wrap.go", Line: 88},
				{Func: "main.dial", File: "/src/mydaemon/client.go", Line: 17},
				{Func: "main.serve", File: "/src/mydaemon/server.go", Line: 42},
				{Func: "main.(*Server).handle", File: "/src/mydaemon/server.go", Line: 90},
				{Func: "main.main", File: "/src/mydaemon/main.go", Line: 12},
				{Func: "runtime.main", File: "/go/src/runtime/proc.go", Line: 283},
			},
			2: {
				{Func: "github.com/leakcheck/leakcheck/tracker.AfterFunc", File: "/src/leakcheck/tracker/timer.go", Line: 30},
				{Func: "main.(*Worker).retryLater", File: "/src/mydaemon/worker.go", Line: 61},
			},
			3: {
				{Func: "github.com/leakcheck/leakcheck/tracker.(*Registry).Release", File: "/src/leakcheck/tracker/registry.go", Line: 120},
				{Func: "main.cleanup", File: "/src/mydaemon/cleanup.go", Line: 8},
			},
		},
	}
	rec := func(id uint64, kind tracker.Kind, label string, owner uint64, ownerLabel string, stopped bool, stack int, age time.Duration) tracker.Record {
		return tracker.Record{ID: id, Kind: kind, Label: label, Owner: owner, OwnerLabel: ownerLabel, Created: at(time.Hour - age),
			Age: age, State: tracker.Live, OwnerStopped: stopped, StackID: stack}
	}
	s.Records = append(s.Records,
		rec(1, tracker.KindSession, "main", 0, "", false, 0, time.Hour),
		rec(3, tracker.KindSession, "orphan", 2, "worker", true, 0, 50*time.Minute),
		rec(20, tracker.KindFile, "/var/log/mydaemon.log", 1, "main", false, 0, time.Hour),
		rec(21, tracker.KindTimer, "retry", 2, "worker", true, 2, 40*time.Minute),
		rec(22, tracker.KindListener, "tcp :8080", 1, "main", false, 0, time.Hour),
	)
	pump := rec(23, tracker.KindGoroutine, "pump", 0, "", false, 0, 30*time.Minute)
	pump.Creator = "TestPump"
	s.Records = append(s.Records, pump)
	for i := range 1000 {
		label := "tcp 127.0.0.1:6379"
		if i%400 == 399 {
			label = "tcp 127.0.0.1:6380"
		}
		s.Records = append(s.Records, rec(uint64(100+i), tracker.KindSocket, label, 2, "worker", true, 1, 45*time.Minute-time.Duration(i)*time.Second))
	}
	s.Misuse = []tracker.Misuse{{
		Kind: tracker.DoubleRelease, Time: at(time.Hour),
		Record:  rec(101, tracker.KindSocket, "tcp 127.0.0.1:6379", 2, "worker", true, 1, time.Minute),
		StackID: 3,
	}}
	s.MisuseTotal = 1
	s.Unreleased = []tracker.Unreleased{{Record: rec(40, tracker.KindSocket, "tcp 10.0.0.5:443", 1, "main", false, 1, 20*time.Minute), Collected: at(50 * time.Minute)}}
	s.Retained = []tracker.Retained{
		{Record: rec(30, tracker.KindSession, "bob", 1, "main", false, 0, 30*time.Minute), Released: at(40 * time.Minute), GCs: 4},
		{Record: rec(41, tracker.KindFile, "/tmp/upload-1", 1, "main", false, 0, 10*time.Minute), Released: at(55 * time.Minute), GCs: 1},
	}
	s.Cycles = []tracker.Cycle{{
		Path:     []string{`(*Session "alice").Heap["peer"]`, `(*Session "bob").Heap["peer"]`, `(*Session "alice")`},
		Sessions: []uint64{31, 30}, Stopped: true,
	}}
	gauge := func(name string, owner uint64, label string, f func(i int) float64) tracker.Gauge {
		g := tracker.Gauge{Name: name, Owner: owner, OwnerLabel: label, Auto: owner != 0}
		for _, p := range gen(24, 10*time.Second, f) {
			g.Points = append(g.Points, tracker.Point{Time: p.Time, Value: p.Value})
		}
		return g
	}
	s.Gauges = []tracker.Gauge{
		gauge(`session "worker".Heap.tasks`, 2, "worker", func(i int) float64 { return float64(3 * i) }),
		gauge("cache.entries", 0, "", func(i int) float64 { return float64(10 * (i % 4)) }),
	}
	return s
}

func TestFromSnapshot(t *testing.T) {
	res := FromSnapshot(testSnapshot(), SnapshotOptions{AtExit: true})
	fs, series := res.Findings, res.Series
	if len(series) != 2 || series[0].Trend == nil || series[1].Trend == nil {
		t.Fatalf("series = %+v; want both gauges, analysed", series)
	}
	if series[0].Trend.Verdict != VerdictGrowing || series[1].Trend.Verdict != VerdictSteady {
		t.Errorf("gauge verdicts %s, %s; want growing, steady", series[0].Trend.Verdict, series[1].Trend.Verdict)
	}
	byKind := map[Kind]int{}
	for _, f := range fs {
		byKind[f.Kind]++
	}
	// 6 records + 1000 sockets at exit; sessions count too.
	want := map[Kind]int{KindLeftover: 1006, KindMisuse: 1, KindUnreleased: 1, KindRetained: 2, KindCycle: 1, KindGrowth: 1}
	if fmt.Sprint(byKind) != fmt.Sprint(want) {
		t.Errorf("findings by kind %v, want %v", byKind, want)
	}

	grouped := Group(fs)
	var lines []string
	for _, f := range grouped {
		lines = append(lines, fmt.Sprintf("%s %s %d %s | %s | %s", f.Severity, f.Kind, f.Count, f.Subject, f.Owner, f.Suggestion))
	}
	wantLines := []string{
		`error leftover 1000 socket tcp 127.0.0.1:6379 (+1 more) | session "worker" (stopped) | its owner, session "worker", stopped still holding it: close it in the owner's stop handler, or hand it to an owner that lives on; it was opened at main.dial (client.go:17)`,
		`error leftover 1 session "orphan" | session "worker" (stopped) | let it stop: remove its timers, wheels, aliases and extra references (no stack captured: enable stack capture to see where)`,
		`error leftover 1 timer retry | session "worker" (stopped) | its owner, session "worker", stopped still holding it: stop it in the owner's stop handler, or hand it to an owner that lives on; it was created at main.(*Worker).retryLater (worker.go:61)`,
		`error retained 1 session "bob" | session "main" | stopped but still reachable: do not keep references to sessions; keep the session's id and look it up`,
		`error cycle 1 (*Session "alice").Heap["peer"] -> (*Session "bob").Heap["peer"] -> (*Session "alice") |  | break the cycle at (*Session "bob").Heap["peer"]: hold an id or a weak.Pointer there instead of the reference`,
		`warning leftover 1 file /var/log/mydaemon.log | session "main" | close it where it was opened (no stack captured: enable stack capture to see where)`,
		`warning leftover 1 goroutine pump | TestPump | make it return when its owner stops (no stack captured: enable stack capture to see where)`,
		`warning leftover 1 listener tcp :8080 | session "main" | close it where it was opened (no stack captured: enable stack capture to see where)`,
		`warning leftover 1 session "main" |  | let it stop: remove its timers, wheels, aliases and extra references (no stack captured: enable stack capture to see where)`,
		`warning retained 1 file /tmp/upload-1 | session "main" | released but still reachable: drop the extra reference (a map entry, a closure, another session's heap) that holds it`,
		`warning unreleased 1 socket tcp 10.0.0.5:443 | session "main" | freed by the garbage collector, not by the program: close it where it was opened: main.dial (client.go:17)`,
		`warning growth 1 session "worker".Heap.tasks | session "worker" | prune session "worker".Heap.tasks: delete entries when their work is done, or bound its size`,
		`warning misuse 1 double-release of socket tcp 127.0.0.1:6379 | session "worker" (stopped) | release it once; it was released again at main.cleanup (cleanup.go:8)`,
	}
	if !slices.Equal(lines, wantLines) {
		t.Errorf("grouped findings:\n%s\nwant:\n%s", strings.Join(lines, "\n"), strings.Join(wantLines, "\n"))
	}

	// Not at exit, only what stopped owners still hold is left over.
	fs = FromSnapshot(testSnapshot(), SnapshotOptions{}).Findings
	n := 0
	for _, f := range fs {
		if f.Kind == KindLeftover {
			n++
			if f.Severity != SeverityError {
				t.Errorf("leftover %q under a live owner", f.Subject)
			}
		}
	}
	if n != 1002 {
		t.Errorf("%d leftovers before exit, want 1002 (1000 sockets, the timer, the orphan session)", n)
	}
}

func TestFromSnapshotDropped(t *testing.T) {
	s := testSnapshot()
	s.MisuseTotal = 51
	s.UnreleasedTotal = 10
	s.Cycles[0].Owner, s.Cycles[0].OwnerLabel, s.Cycles[0].Root = 1, "main", `(*Session "main").Heap["peers"]`
	fs := FromSnapshot(s, SnapshotOptions{}).Findings
	counts := map[Kind]int{}
	for _, f := range Group(fs) {
		counts[f.Kind] += f.Count
		if f.Kind == KindCycle && (f.Owner != `session "main"` || !strings.HasSuffix(f.Suggestion, `; the cycle hangs from (*Session "main").Heap["peers"]`)) {
			t.Errorf("cycle owner %q, suggestion %q", f.Owner, f.Suggestion)
		}
	}
	if counts[KindMisuse] != 51 || counts[KindUnreleased] != 10 {
		t.Errorf("misuse %d, unreleased %d occurrences; want the tracker's totals 51 and 10", counts[KindMisuse], counts[KindUnreleased])
	}
}

func TestFromSnapshotEmpty(t *testing.T) {
	res := FromSnapshot(&tracker.Snapshot{}, SnapshotOptions{AtExit: true})
	fs, series := res.Findings, res.Series
	if len(fs) != 0 || len(series) != 0 {
		t.Errorf("empty snapshot gave %v, %v", fs, series)
	}
}
