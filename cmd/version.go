package cmd

import (
	"fmt"
	"io"
	"runtime/debug"

	"github.com/spf13/cobra"
)

type versionOptions struct {
	short bool
}

func newVersionCommand() *cobra.Command {
	var opts versionOptions
	c := &cobra.Command{
		Use:   "version",
		Short: "Print leakcheck's version and build information",
		Example: `  leakcheck version
  leakcheck version --short`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			info, _ := debug.ReadBuildInfo()
			return runVersion(opts, info, c.OutOrStdout())
		},
	}
	c.Flags().BoolVar(&opts.short, "short", false, "print only the module version")
	return c
}

// runVersion prints the module version and, unless short, the VCS and toolchain
// details recorded in info. A nil info (a binary built without module support)
// prints "unknown".
func runVersion(opts versionOptions, info *debug.BuildInfo, w io.Writer) error {
	version := moduleVersion(info)
	if opts.short {
		_, err := fmt.Fprintln(w, version)
		return err
	}
	fmt.Fprintf(w, "leakcheck %s\n", version)
	if info == nil {
		return nil
	}
	fmt.Fprintf(w, "%-14s %s\n", "go:", info.GoVersion)
	settings := map[string]string{}
	for _, s := range info.Settings {
		settings[s.Key] = s.Value
	}
	for _, key := range []string{"vcs", "vcs.revision", "vcs.time", "vcs.modified", "GOOS", "GOARCH"} {
		if v, ok := settings[key]; ok {
			fmt.Fprintf(w, "%-14s %s\n", key+":", v)
		}
	}
	return nil
}

// moduleVersion returns the module version recorded in info, or "unknown".
func moduleVersion(info *debug.BuildInfo) string {
	if info != nil && info.Main.Version != "" {
		return info.Main.Version
	}
	return "unknown"
}
