// Package report turns what leakcheck observed (tracker snapshots, probe samples,
// profiles) into findings, decides growth with trend tests, renders findings for
// people and machines, and maps them to exit codes through a fail policy.
//
// Every leak is a [Finding] of one [Kind] (leftover, retained, unreleased, cycle,
// growth, goroutine, misuse) with a [Severity], a subject, an owner, [Evidence]
// and a one-line suggestion. [FromSnapshot] derives findings from a tracker
// snapshot; [Growth] derives them from sampled [Series] with [AnalyzeTrend], a
// Mann-Kendall test with a Theil-Sen slope (see docs/trend.md).
//
// Profiles are inputs too: [ReadInput] reads a file or URL and tells by
// content what it holds; [AnalyzeProfiles] finds the top holders and the
// growth of heap profiles; [ParseGoroutineText] and [GoroutinesFromProfile]
// read goroutine dumps and profiles in every form, [GroupGoroutines] groups
// them by state and stack, and [GoroutineFindings] and [GoroutineSeries]
// report the goroutines that are blocked, leaked or growing.
//
// [New] builds a [Report]: it drops the findings that [IgnoreRule]s suppress,
// merges findings with equal signatures ([Group]) and orders them most
// important first. [Render] writes a report in one of the [Formats] (text,
// json, markdown, junit, html, github); [ReadReport] reads the JSON back. A
// [Policy], parsed from a --fail-on value, decides the exit code, and the
// report records it for the formats that mark failing findings. The formats
// and syntaxes are documented in docs/findings.md.
package report
