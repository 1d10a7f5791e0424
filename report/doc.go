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
// [New] builds a [Report]: it drops the findings that [IgnoreRule]s suppress,
// merges findings with equal signatures ([Group]) and orders them most
// important first. [Render] writes a report as "text" or "json"; [ReadReport]
// reads the JSON back. A [Policy], parsed from a --fail-on value, decides the
// exit code. The formats and syntaxes are documented in docs/findings.md.
package report
