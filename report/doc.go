// Package report turns what leakcheck observed (tracker snapshots, probe samples,
// profiles) into findings, decides growth with trend tests, renders findings for
// people and machines, and maps them to exit codes through a fail policy.
package report
