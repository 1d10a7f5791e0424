package report

import "regexp"

// Correlate makes the findings that one piece of the program's code caused
// one finding: a handler that leaks a timer whose callback holds a payload
// gives a leftover timer and a retained payload, both acquired there. Two
// findings have one cause when the first frame of the program's own code in
// their stacks is in the same function (its closures included). The most
// severe (then the most numerous) leads; the others become its related
// evidence, as "kind: subject". Findings without a stack of the program's
// own code stand as they are.
func Correlate(fs []Finding) []Finding {
	lead := map[string]int{} // cause site: index in out
	var out []Finding
	for _, f := range Group(fs) {
		site := causeSite(f.Evidence.Stack)
		i, ok := lead[site]
		if site == "" || !ok {
			if site != "" {
				lead[site] = len(out)
			}
			out = append(out, f)
			continue
		}
		l := &out[i]
		if f.Severity > l.Severity || f.Severity == l.Severity && f.count() > l.count() {
			f, *l = *l, f
			l.Evidence.Related = append(l.Evidence.Related, f.Evidence.Related...)
			f.Evidence.Related = nil
		}
		l.Evidence.Related = append(l.Evidence.Related, string(f.Kind)+": "+f.Subject)
	}
	return out
}

// closureSuffix matches the names the compiler gives closures and go
// statement wrappers: ".func1", ".gowrap2", ".func1.2".
var closureSuffix = regexp.MustCompile(`(\.(func|gowrap)\d+(\.\d+)*)+$`)

// causeSite returns the function of the first frame of the program's own
// code in stack, without closure suffixes; "" when there is none.
func causeSite(stack []Frame) string {
	for _, f := range stack {
		if f.Func != "" && !hiddenFrame(f) && !standardLibrary(f.Func) {
			return closureSuffix.ReplaceAllString(f.Func, "")
		}
	}
	return ""
}
