package tracker

import (
	"io"
	"os"
	"strconv"

	"github.com/google/pprof/profile"
)

// noStack is the function shown for records tracked without a stack.
const noStack = "(stack not captured; set LEAKCHECK_STACKS=always)"

// WriteProfile writes the live records of kind (every kind when kind is "") as
// a gzipped pprof profile that go tool pprof reads: sample type "records"
// counted in "count", one sample per acquisition stack and owner, with labels
// kind, owner and label.
func (r *Registry) WriteProfile(w io.Writer, kind Kind) error {
	return buildProfile(r.Leftovers(), kind).Write(w)
}

// buildProfile turns records into a profile, merging records that share
// stack, kind, owner and label into one sample.
func buildProfile(recs []Record, kind Kind) *profile.Profile {
	p := &profile.Profile{
		SampleType: []*profile.ValueType{{Type: "records", Unit: "count"}},
		PeriodType: &profile.ValueType{Type: "records", Unit: "count"},
		Period:     1,
		Mapping: []*profile.Mapping{{
			ID: 1, File: os.Args[0],
			HasFunctions: true, HasFilenames: true, HasLineNumbers: true,
		}},
	}
	if kind != "" {
		p.Comments = []string{"kind " + string(kind)}
	}
	type sampleKey struct {
		stack              int
		kind, owner, label string
	}
	funcs := map[string]*profile.Function{}
	locs := map[Frame]*profile.Location{}
	location := func(f Frame) *profile.Location {
		if l, ok := locs[f]; ok {
			return l
		}
		fn, ok := funcs[f.Func]
		if !ok {
			fn = &profile.Function{ID: uint64(len(p.Function) + 1), Name: f.Func, SystemName: f.Func, Filename: f.File}
			funcs[f.Func] = fn
			p.Function = append(p.Function, fn)
		}
		l := &profile.Location{ID: uint64(len(p.Location) + 1), Mapping: p.Mapping[0], Line: []profile.Line{{Function: fn, Line: int64(f.Line)}}}
		locs[f] = l
		p.Location = append(p.Location, l)
		return l
	}
	samples := map[sampleKey]*profile.Sample{}
	for _, rec := range recs {
		if kind != "" && rec.Kind != kind {
			continue
		}
		owner := rec.OwnerLabel + " #" + strconv.FormatUint(rec.Owner, 10)
		key := sampleKey{rec.StackID, string(rec.Kind), owner, rec.Label}
		if s, ok := samples[key]; ok {
			s.Value[0]++
			continue
		}
		s := &profile.Sample{
			Value: []int64{1},
			Label: map[string][]string{"kind": {string(rec.Kind)}, "owner": {owner}, "label": {rec.Label}},
		}
		frames := rec.Stack
		if len(frames) == 0 {
			frames = []Frame{{Func: noStack}}
		}
		for _, f := range frames {
			s.Location = append(s.Location, location(f))
		}
		samples[key] = s
		p.Sample = append(p.Sample, s)
	}
	return p
}

// profileName is the name under which Handler serves the profile of kind.
func profileName(kind Kind) string {
	if kind == "" {
		return "all"
	}
	return string(kind)
}
