package report

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Policy decides which findings fail a run (the --fail-on flag). The zero
// Policy fails nothing.
type Policy struct {
	// Kinds lists the kinds of finding that fail.
	Kinds []Kind
	// MinSeverity is the least severity that fails.
	MinSeverity Severity
}

// ParsePolicy parses a --fail-on value: a comma-separated list of items, each
// one of
//
//	KIND             a finding kind (leftover, growth, ...)
//	all              every kind
//	none             nothing fails (must be alone)
//	severity>=LEVEL  only findings of LEVEL (info, warning, error) or above
//
// A list with a severity floor but no kind means every kind. Examples:
// "leftover,growth", "all", "none", "leftover,growth,severity>=warning",
// "severity>=error".
func ParsePolicy(text string) (Policy, error) {
	var p Policy
	if strings.TrimSpace(text) == "" {
		return p, errors.New(`empty fail policy (want "none", "all", kinds, or severity>=LEVEL)`)
	}
	var all, none, floor bool
	for item := range strings.SplitSeq(text, ",") {
		item = strings.TrimSpace(item)
		switch {
		case item == "":
			return Policy{}, fmt.Errorf("fail policy %q has an empty item", text)
		case item == "all":
			all = true
		case item == "none":
			none = true
		case strings.HasPrefix(item, "severity"):
			level, ok := strings.CutPrefix(strings.TrimSpace(strings.TrimPrefix(item, "severity")), ">=")
			if !ok {
				return Policy{}, fmt.Errorf("fail policy %q: %q: want severity>=LEVEL", text, item)
			}
			if floor {
				return Policy{}, fmt.Errorf("fail policy %q: more than one severity>=", text)
			}
			sev, err := ParseSeverity(strings.TrimSpace(level))
			if err != nil {
				return Policy{}, fmt.Errorf("fail policy %q: %w", text, err)
			}
			p.MinSeverity, floor = sev, true
		case Kind(item).known():
			if !slices.Contains(p.Kinds, Kind(item)) {
				p.Kinds = append(p.Kinds, Kind(item))
			}
		default:
			return Policy{}, fmt.Errorf("fail policy %q: unknown item %q (want all, none, severity>=LEVEL or a kind: %s)", text, item, kindList())
		}
	}
	if none {
		if all || floor || len(p.Kinds) > 0 {
			return Policy{}, fmt.Errorf("fail policy %q: none cannot be combined with other items", text)
		}
		return Policy{}, nil
	}
	if all || len(p.Kinds) == 0 {
		p.Kinds = Kinds()
	}
	return p, nil
}

// Fails reports whether f fails the policy.
func (p Policy) Fails(f Finding) bool {
	return f.Severity >= p.MinSeverity && slices.Contains(p.Kinds, f.Kind)
}

// FailsAny reports whether any of findings fails the policy.
func (p Policy) FailsAny(findings []Finding) bool {
	return slices.ContainsFunc(findings, p.Fails)
}

// String returns the policy in the form ParsePolicy reads, kinds in Kinds
// order: "none", "all", "leftover,growth", "all,severity>=warning".
func (p Policy) String() string {
	var items []string
	switch {
	case len(p.Kinds) == 0:
		return "none"
	case !slices.ContainsFunc(Kinds(), func(k Kind) bool { return !slices.Contains(p.Kinds, k) }):
		items = append(items, "all")
	default:
		for _, k := range Kinds() {
			if slices.Contains(p.Kinds, k) {
				items = append(items, string(k))
			}
		}
	}
	if p.MinSeverity > SeverityInfo {
		items = append(items, "severity>="+p.MinSeverity.String())
	}
	return strings.Join(items, ",")
}

// Set parses text with ParsePolicy into p, so a *Policy is a flag.Value (and,
// with Type, a pflag.Value for cobra).
func (p *Policy) Set(text string) error {
	v, err := ParsePolicy(text)
	if err != nil {
		return err
	}
	*p = v
	return nil
}

// Type names the flag's value type in help output.
func (p *Policy) Type() string { return "policy" }
