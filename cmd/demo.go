package cmd

import (
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/leakcheck/leakcheck/keepalive/demo"
)

func newDemoCommand() *cobra.Command {
	var opts demo.Options
	var leaks string
	c := &cobra.Command{
		Use:    "demo",
		Short:  "Run the built-in leaky demo daemon (used by `leakcheck run` with no command)",
		Hidden: true,
		Args:   cobra.NoArgs,
		Example: `  leakcheck demo --leak session-cycle,close-wait --pprof 127.0.0.1:0
  leakcheck demo --leak none --duration 5s`,
		RunE: func(c *cobra.Command, _ []string) error {
			var err error
			if opts.Leaks, err = demo.ParseLeaks(leaks); err != nil {
				return usageError(err)
			}
			ctx, stop := signal.NotifyContext(c.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return demo.Run(ctx, opts, c.OutOrStdout(), c.ErrOrStderr())
		},
	}
	c.Flags().StringVar(&leaks, "leak", demo.DefaultLeaks, "leaks to commit: "+demo.LeakNames()+", all or none")
	c.Flags().DurationVar(&opts.Tick, "tick", 100*time.Millisecond, "time between client requests")
	c.Flags().DurationVar(&opts.Duration, "duration", 0, "stop after this long (0: run until SIGTERM or SIGINT)")
	c.Flags().StringVar(&opts.Debug, "pprof", "", "serve net/http/pprof and the tracker on this loopback address")
	c.Flags().StringVar(&opts.ReadyFile, "ready-file", "", "write the pprof URL to this file once serving")
	return c
}
