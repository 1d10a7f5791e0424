package cmd

import (
	"github.com/spf13/cobra"

	"github.com/leakcheck/leakcheck/supervise"
)

// newGuardCommand returns the hidden guard that `leakcheck run` starts (as
// supervise.Options.GuardArgs): it kills the run's processes if leakcheck
// dies by SIGKILL. See supervise.Guard.
func newGuardCommand() *cobra.Command {
	return &cobra.Command{
		Use:    "guard",
		Short:  "Kill a run's processes if leakcheck dies (started by leakcheck run)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			supervise.Guard(c.InOrStdin())
			return nil
		},
	}
}
