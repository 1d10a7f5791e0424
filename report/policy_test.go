package report

import (
	"flag"
	"slices"
	"strings"
	"testing"
)

func TestParsePolicy(t *testing.T) {
	tests := []struct {
		in      string
		kinds   []Kind
		floor   Severity
		str     string
		wantErr string
	}{
		{in: "leftover,growth", kinds: []Kind{KindLeftover, KindGrowth}, str: "leftover,growth"},
		{in: "growth, leftover ,growth", kinds: []Kind{KindGrowth, KindLeftover}, str: "leftover,growth"},
		{in: "all", kinds: Kinds(), str: "all"},
		{in: "none", str: "none"},
		{in: " none ", str: "none"},
		{in: "leftover,growth,severity>=warning", kinds: []Kind{KindLeftover, KindGrowth}, floor: SeverityWarning, str: "leftover,growth,severity>=warning"},
		{in: "severity>=error", kinds: Kinds(), floor: SeverityError, str: "all,severity>=error"},
		{in: "all,severity >= warn", kinds: Kinds(), floor: SeverityWarning, str: "all,severity>=warning"},
		{in: "all,leftover", kinds: Kinds(), str: "all"},
		{in: "leftover,retained,unreleased,cycle,growth,goroutine,misuse,limit", kinds: Kinds(), str: "all"},
		{in: "", wantErr: "empty fail policy"},
		{in: "leftover,,growth", wantErr: "empty item"},
		{in: "lefover", wantErr: `unknown item "lefover"`},
		{in: "none,leftover", wantErr: "none cannot be combined"},
		{in: "none,severity>=error", wantErr: "none cannot be combined"},
		{in: "severity>warning", wantErr: "want severity>=LEVEL"},
		{in: "severity>=fatal", wantErr: `unknown severity "fatal"`},
		{in: "severity>=info,severity>=error", wantErr: "more than one severity"},
		{in: "LEFTOVER", wantErr: "unknown item"},
	}
	for _, tt := range tests {
		p, err := ParsePolicy(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParsePolicy(%q) error = %v, want one containing %q", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParsePolicy(%q): %v", tt.in, err)
			continue
		}
		if !slices.Equal(p.Kinds, tt.kinds) || p.MinSeverity != tt.floor {
			t.Errorf("ParsePolicy(%q) = %+v, want kinds %v floor %v", tt.in, p, tt.kinds, tt.floor)
		}
		if got := p.String(); got != tt.str {
			t.Errorf("ParsePolicy(%q).String() = %q, want %q", tt.in, got, tt.str)
		}
		// String gives back the same policy.
		again, err := ParsePolicy(p.String())
		if err != nil || again.String() != p.String() {
			t.Errorf("ParsePolicy(%q) does not round-trip: %+v, %v", p.String(), again, err)
		}
	}
}

func TestPolicyFailsAny(t *testing.T) {
	findings := []Finding{
		{Kind: KindLeftover, Severity: SeverityWarning},
		{Kind: KindGrowth, Severity: SeverityInfo},
	}
	tests := []struct {
		policy string
		want   bool
	}{
		{"all", true},
		{"none", false},
		{"leftover", true},
		{"growth", true},
		{"cycle,misuse", false},
		{"severity>=warning", true},
		{"growth,severity>=warning", false},
		{"severity>=error", false},
	}
	for _, tt := range tests {
		p, err := ParsePolicy(tt.policy)
		if err != nil {
			t.Fatal(err)
		}
		if got := p.FailsAny(findings); got != tt.want {
			t.Errorf("policy %q: FailsAny = %v, want %v", tt.policy, got, tt.want)
		}
		if p.FailsAny(nil) {
			t.Errorf("policy %q: FailsAny(nil) = true", tt.policy)
		}
	}
	if (Policy{}).FailsAny(findings) {
		t.Error("zero Policy: FailsAny = true")
	}
}

func TestPolicyFlag(t *testing.T) {
	var p Policy
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.Var(&p, "fail-on", "")
	if err := fs.Parse([]string{"--fail-on", "leftover,severity>=error"}); err != nil {
		t.Fatal(err)
	}
	if p.String() != "leftover,severity>=error" || p.Type() != "policy" {
		t.Errorf("flag gave %q", p.String())
	}
	fs.SetOutput(new(strings.Builder))
	if err := fs.Parse([]string{"--fail-on", "bogus"}); err == nil {
		t.Error("bad --fail-on accepted")
	}
}
