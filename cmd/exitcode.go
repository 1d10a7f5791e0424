package cmd

import "github.com/leakcheck/leakcheck/report"

// Exit codes of every leakcheck command. They are documented in README.md;
// change them only together with it.
const (
	// exitOK means the command ran and found nothing that fails the policy.
	exitOK = 0
	// exitUsage means the command line or an input was invalid.
	exitUsage = 2
	// exitLeaks means findings failed the --fail-on policy.
	exitLeaks = 3
	// exitCannotRun is returned by `leakcheck run` when the wrapped command
	// exists but cannot be run (not executable), as a shell does.
	exitCannotRun = 126
	// exitNotFound is returned by `leakcheck run` when the wrapped command
	// does not exist, as a shell does.
	exitNotFound = 127
	// exitSignalBase plus the signal number is returned by `leakcheck run`
	// when the wrapped command was killed by a signal, as a shell does.
	exitSignalBase = 128
)

// policyExit returns the exit code policy gives findings.
func policyExit(policy report.Policy, findings []report.Finding) int {
	if policy.FailsAny(findings) {
		return exitLeaks
	}
	return exitOK
}
