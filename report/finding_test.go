package report

import (
	"encoding/json"
	"fmt"
	"slices"
	"testing"
)

func TestSeverity(t *testing.T) {
	if !(SeverityInfo < SeverityWarning && SeverityWarning < SeverityError) {
		t.Fatal("severities are not ordered")
	}
	tests := []struct {
		text string
		want Severity
		ok   bool
	}{
		{"info", SeverityInfo, true},
		{"warning", SeverityWarning, true},
		{"warn", SeverityWarning, true},
		{"error", SeverityError, true},
		{"Error", 0, false},
		{"", 0, false},
		{"fatal", 0, false},
	}
	for _, tt := range tests {
		got, err := ParseSeverity(tt.text)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("ParseSeverity(%q) = %v, %v; want %v, ok %v", tt.text, got, err, tt.want, tt.ok)
		}
	}
	data, err := json.Marshal(map[string]Severity{"s": SeverityWarning})
	if err != nil || string(data) != `{"s":"warning"}` {
		t.Errorf("marshal: %s, %v", data, err)
	}
	if _, err := json.Marshal(Severity(7)); err == nil {
		t.Error("marshal of an invalid severity succeeded")
	}
	var s Severity
	if err := json.Unmarshal([]byte(`"loud"`), &s); err == nil {
		t.Error("unmarshal of an unknown severity succeeded")
	}
}

func TestFrameString(t *testing.T) {
	tests := []struct {
		f    Frame
		want string
	}{
		{Frame{Func: "main.serve", File: "/home/x/srv/server.go", Line: 42}, "main.serve (server.go:42)"},
		{Frame{Func: "main.serve", File: `C:\x\server.go`, Line: 42}, "main.serve (server.go:42)"},
		{Frame{Func: "main.serve"}, "main.serve"},
	}
	for _, tt := range tests {
		if got := tt.f.String(); got != tt.want {
			t.Errorf("%#v.String() = %q, want %q", tt.f, got, tt.want)
		}
	}
}

var deepStack = []Frame{
	{Func: "runtime.gopark", File: "/go/src/runtime/proc.go", Line: 1},
	{Func: "github.com/leakcheck/leakcheck/tracker.(*Registry).Track", File: "/r/tracker/registry.go", Line: 2},
	{Func: "github.com/leakcheck/leakcheck/tracker.WrapConn", File: "/r/tracker/wrap.go", Line: 3},
	{Func: "internal/poll.(*FD).Init", File: "/go/src/internal/poll/fd.go", Line: 4},
	{Func: "main.dial", File: "/app/main.go", Line: 10},
	{Func: "github.com/leakcheck/leakcheck/keepalive.(*Kernel).dispatch", File: "/r/keepalive/kernel.go", Line: 6},
	{Func: "testing.tRunner", File: "/go/src/testing/testing.go", Line: 5},
	{Func: "main.serve", File: "/app/server.go", Line: 42},
	{Func: "main.handle", File: "/app/server.go", Line: 50},
	{Func: "main.main", File: "/app/main.go", Line: 5},
}

func TestTopFrames(t *testing.T) {
	got := TopFrames(deepStack, 3)
	want := []Frame{deepStack[4], deepStack[7], deepStack[8]}
	if !slices.Equal(got, want) {
		t.Errorf("TopFrames = %v, want %v", got, want)
	}
	runtimeOnly := deepStack[:1]
	if got := TopFrames(runtimeOnly, 3); !slices.Equal(got, runtimeOnly) {
		t.Errorf("TopFrames of runtime-only stack = %v, want it unfiltered", got)
	}
	if got := TopFrames(nil, 3); got != nil {
		t.Errorf("TopFrames(nil) = %v", got)
	}
}

func TestSignature(t *testing.T) {
	base := Signature(KindLeftover, "socket", deepStack)
	if len(base) != 16 {
		t.Errorf("signature %q is not 16 hex digits", base)
	}
	// Lines move when code is edited; hidden frames and frames below the top
	// three do not matter either.
	moved := slices.Clone(deepStack)
	moved[4].Line, moved[7].Line = 99, 99
	moved[0].Func = "runtime.other"
	moved[9].Func = "main.elsewhere"
	if got := Signature(KindLeftover, "socket", moved); got != base {
		t.Errorf("signature changed with lines and hidden frames: %s != %s", got, base)
	}
	differ := []struct {
		name string
		sig  string
	}{
		{"kind", Signature(KindUnreleased, "socket", deepStack)},
		{"key", Signature(KindLeftover, "file", deepStack)},
		{"function", Signature(KindLeftover, "socket", append([]Frame{{Func: "main.other"}}, deepStack...))},
		{"no stack", Signature(KindLeftover, "socket", nil)},
	}
	for _, d := range differ {
		if d.sig == base {
			t.Errorf("signature ignores the %s", d.name)
		}
	}
}

func TestGroup(t *testing.T) {
	var fs []Finding
	for i := range 1000 {
		fs = append(fs, Finding{
			Kind: KindLeftover, Severity: SeverityWarning,
			Subject: "socket 127.0.0.1:6379", Owner: `session "worker"`, Count: 1,
			Evidence:  Evidence{Stack: deepStack, Values: map[string]float64{"age_seconds": float64(1000 - i)}},
			Signature: Signature(KindLeftover, "socket", deepStack),
		})
	}
	fs[500].Severity = SeverityError
	fs[500].Owner = `session "worker" (stopped)`
	fs[700].Subject = "socket 127.0.0.1:6380"
	fs = append(fs,
		Finding{Kind: KindGrowth, Severity: SeverityWarning, Subject: "fds"},
		Finding{Kind: KindGrowth, Severity: SeverityWarning, Subject: "fds", Count: 2},
		Finding{Kind: KindCycle, Severity: SeverityError, Subject: "a -> b -> a"},
		Finding{Kind: KindMisuse, Severity: SeverityInfo, Subject: "x"},
	)
	in := slices.Clone(fs)
	got := Group(fs)
	if !slices.EqualFunc(fs, in, func(a, b Finding) bool {
		return a.Subject == b.Subject && a.Count == b.Count && a.Signature == b.Signature
	}) {
		t.Error("Group modified its input")
	}
	summary := make([]string, len(got))
	for i, f := range got {
		summary[i] = fmt.Sprintf("%s %s %d %s | %s", f.Severity, f.Kind, f.Count, f.Subject, f.Owner)
	}
	want := []string{
		`error leftover 1000 socket 127.0.0.1:6379 (+1 more) | session "worker" (stopped) (+1 more)`,
		`error cycle 1 a -> b -> a | `,
		`warning growth 3 fds | `,
		`info misuse 1 x | `,
	}
	if !slices.Equal(summary, want) {
		t.Errorf("Group =\n%q\nwant\n%q", summary, want)
	}
	// The representative is the most severe member: its evidence is kept.
	if age := got[0].Evidence.Values["age_seconds"]; age != 500 {
		t.Errorf("grouped evidence from the wrong member: age %g, want 500", age)
	}
	if got[2].Signature != Signature(KindGrowth, "fds", nil) {
		t.Errorf("missing signature not filled in: %q", got[2].Signature)
	}
}

func TestSort(t *testing.T) {
	fs := []Finding{
		{Kind: KindMisuse, Severity: SeverityWarning, Subject: "b", Count: 1},
		{Kind: KindLeftover, Severity: SeverityWarning, Subject: "z", Count: 1},
		{Kind: KindLeftover, Severity: SeverityWarning, Subject: "a", Count: 1},
		{Kind: KindGrowth, Severity: SeverityWarning, Subject: "a", Count: 5},
		{Kind: KindRetained, Severity: SeverityError, Subject: "q", Count: 1},
		{Kind: "custom", Severity: SeverityWarning, Subject: "a", Count: 1},
		{Kind: KindLeftover, Severity: SeverityWarning, Subject: "a", Count: 1, Signature: "0"},
	}
	Sort(fs)
	var got []string
	for _, f := range fs {
		got = append(got, fmt.Sprintf("%s/%s/%s/%s", f.Severity, f.Kind, f.Subject, f.Signature))
	}
	want := []string{
		"error/retained/q/",
		"warning/growth/a/",
		"warning/leftover/a/",
		"warning/leftover/a/0",
		"warning/leftover/z/",
		"warning/misuse/b/",
		"warning/custom/a/",
	}
	if !slices.Equal(got, want) {
		t.Errorf("Sort =\n%q\nwant\n%q", got, want)
	}
}
