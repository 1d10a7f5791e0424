package report

// Exit codes shared by every leakcheck command. They are documented in README.md;
// change them only together with it.
const (
	// ExitOK means the command ran and found nothing that fails the policy.
	ExitOK = 0
	// ExitUsage means the command line or an input was invalid.
	ExitUsage = 2
	// ExitLeaks means findings failed the --fail-on policy.
	ExitLeaks = 3
	// ExitNotFound is returned by `leakcheck run` when the wrapped command
	// does not exist, as a shell does.
	ExitNotFound = 127
	// ExitSignalBase plus the signal number is returned by `leakcheck run`
	// when the wrapped command was killed by a signal, as a shell does.
	ExitSignalBase = 128
)
