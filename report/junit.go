package report

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
)

// JUnit XML, in the form CI servers read (Jenkins, GitLab, GitHub test
// reporters): <testsuites> holding one <testsuite> per finding kind, one
// <testcase> per finding. A finding that fails the report's policy has a
// <failure>; one that does not passes, with its details in <system-out>.
// encoding/xml replaces what XML cannot carry in attributes; the CDATA text
// goes through cleanText.
type junitSuites struct {
	XMLName  xml.Name     `xml:"testsuites"`
	Name     string       `xml:"name,attr"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Errors   int          `xml:"errors,attr"`
	Time     string       `xml:"time,attr"`
	Suites   []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name       string          `xml:"name,attr"`
	Tests      int             `xml:"tests,attr"`
	Failures   int             `xml:"failures,attr"`
	Errors     int             `xml:"errors,attr"`
	Skipped    int             `xml:"skipped,attr"`
	Time       string          `xml:"time,attr"`
	Timestamp  string          `xml:"timestamp,attr,omitempty"`
	Properties []junitProperty `xml:"properties>property,omitempty"`
	Cases      []junitCase     `xml:"testcase"`
}

type junitProperty struct {
	Name  string `xml:"name,attr"`
	Value string `xml:"value,attr"`
}

type junitCase struct {
	Classname string        `xml:"classname,attr"`
	Name      string        `xml:"name,attr"`
	Time      string        `xml:"time,attr"`
	Failure   *junitFailure `xml:"failure,omitempty"`
	SystemOut *junitText    `xml:"system-out,omitempty"`
}

type junitFailure struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr"`
	Text    string `xml:",cdata"`
}

// junitText is an element holding text as CDATA, which keeps the details'
// line breaks readable in the file.
type junitText struct {
	Text string `xml:",cdata"`
}

// renderJUnit writes r as JUnit XML: one test case per finding (a finding
// is one kind and subject), named by its subject and classed by its kind
// ("leakcheck.leftover"), failing when the finding fails the report's
// policy. The details are those of the text form. A report without findings
// is one passing test case, so a CI server shows that the check ran. The
// run's metadata and policy are properties of each suite.
func renderJUnit(w io.Writer, r *Report) error {
	fails, err := r.failing()
	if err != nil {
		return err
	}
	var props []junitProperty
	if r.Tool != "" {
		props = append(props, junitProperty{"tool", r.Tool})
	}
	if r.Policy != "" {
		props = append(props, junitProperty{"fail-on", r.Policy})
	}
	for _, k := range slices.Sorted(maps.Keys(r.Metadata)) {
		props = append(props, junitProperty{k, r.Metadata[k]})
	}
	if r.Summary.Suppressed > 0 {
		props = append(props, junitProperty{"suppressed", fmt.Sprint(r.Summary.Suppressed)})
	}
	timestamp := ""
	if !r.Time.IsZero() {
		timestamp = r.Time.UTC().Format("2006-01-02T15:04:05")
	}
	out := junitSuites{Name: "leakcheck", Time: "0"}

	// Suites in Kinds order; kinds this version does not know (from a newer
	// report) after them, by name.
	byKind := map[Kind][]Finding{}
	for _, f := range r.Findings {
		byKind[f.Kind] = append(byKind[f.Kind], f)
	}
	kinds := slices.DeleteFunc(Kinds(), func(k Kind) bool { return byKind[k] == nil })
	for _, k := range slices.Sorted(maps.Keys(byKind)) {
		if !k.known() {
			kinds = append(kinds, k)
		}
	}
	n := 0
	for _, kind := range kinds {
		suite := junitSuite{Name: "leakcheck." + string(kind), Time: "0", Timestamp: timestamp, Properties: props}
		names := map[string]int{}
		for _, f := range byKind[kind] {
			n++
			var b bytes.Buffer
			writeDetails(&b, n, f, r.Series)
			// CDATA is written as is: it must hold only what XML can carry.
			details := cleanText(b.String())
			c := junitCase{Classname: suite.Name, Name: stableName(f.Subject), Time: "0"}
			// Two findings of one kind and subject differ in their stacks: the
			// signature tells them apart, as CI servers merge equal names.
			if names[c.Name]++; names[c.Name] > 1 {
				c.Name += " [" + f.Signature + "]"
			}
			if fails(f) {
				msg := fmt.Sprintf("%s %s: %s", f.Severity, f.Kind, oneLine(f.Subject))
				if f.count() > 1 {
					msg += fmt.Sprintf(" (%d occurrences)", f.count())
				}
				c.Failure = &junitFailure{Message: msg, Type: string(f.Kind), Text: details}
				suite.Failures++
			} else {
				c.SystemOut = &junitText{"does not fail the policy\n" + details}
			}
			suite.Cases = append(suite.Cases, c)
		}
		suite.Tests = len(suite.Cases)
		out.Tests += suite.Tests
		out.Failures += suite.Failures
		out.Suites = append(out.Suites, suite)
	}
	if len(out.Suites) == 0 {
		out.Suites = []junitSuite{{
			Name: "leakcheck", Tests: 1, Time: "0", Timestamp: timestamp, Properties: props,
			Cases: []junitCase{{Classname: "leakcheck", Name: summaryLine(r.Summary), Time: "0"}},
		}}
		out.Tests = 1
	}

	var b bytes.Buffer
	b.WriteString(xml.Header)
	enc := xml.NewEncoder(&b)
	enc.Indent("", "  ")
	if err := enc.Encode(out); err != nil {
		return err
	}
	b.WriteByte('\n')
	_, err = w.Write(b.Bytes())
	return err
}

// stableName names a finding's test case by what stays from run to run: its
// subject with ports, counts of other subjects and the numbers in file
// paths as "*". CI keeps a test's history by name, and a random port would
// make every run a new test.
func stableName(subject string) string {
	words := strings.Split(oneLine(subject), " ")
	for i, w := range words {
		switch {
		case strings.HasPrefix(w, "/"):
			words[i] = Pattern(w)
		case strings.HasPrefix(w, "(+"):
			words[i] = Pattern(w)
		default:
			if j := strings.LastIndexByte(w, ':'); j > 0 && j < len(w)-1 && strings.Trim(w[j+1:], "0123456789") == "" &&
				(strings.Count(w[:j], ".") == 3 || strings.HasSuffix(w[:j], "]") || w[:j] == "*") {
				words[i] = w[:j] + ":*"
			}
		}
	}
	return strings.Join(words, " ")
}
