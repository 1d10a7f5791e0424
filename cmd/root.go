// Package cmd holds leakcheck's command-line interface: one file per command, each
// with an options struct filled by flags and a run function that tests call directly.
package cmd

import (
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/leakcheck/leakcheck/report"
)

// exitError carries the exit code a command wants, with an optional message.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit status %d", e.code)
	}
	return e.err.Error()
}

func (e *exitError) Unwrap() error { return e.err }

// usageError marks err as a usage or input error (exit code exitUsage).
func usageError(err error) error {
	return &exitError{code: exitUsage, err: err}
}

// checkFormat rejects a --format that report.Render does not know, before a
// command does its work rather than after.
func checkFormat(format string) error {
	if !slices.Contains(report.Formats(), format) {
		return fmt.Errorf("unknown --format %q: want %s", format, strings.Join(report.Formats(), ", "))
	}
	return nil
}

// writeReport writes r in format to the file output, or to stdout when output
// is empty: the end of both run and report. It stamps the report with the
// tool that made it and, unless it has one, the time.
func writeReport(stdout io.Writer, r *report.Report, output, format string) error {
	info, _ := debug.ReadBuildInfo()
	r.Tool = "leakcheck " + moduleVersion(info)
	if r.Time.IsZero() {
		r.Time = time.Now()
	}
	var err error
	if output != "" {
		err = report.WriteFile(output, r, format)
	} else {
		err = report.Render(stdout, r, format)
	}
	if err != nil {
		return fmt.Errorf("writing the report: %w", err)
	}
	return nil
}

// NewRootCommand returns the leakcheck command tree writing to stdout and stderr.
func NewRootCommand(stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:   "leakcheck",
		Short: "Find resource leaks in long-running daemons",
		Long: `leakcheck finds the leaks that kill daemons slowly: descriptors never closed,
timers never stopped, goroutines parked forever, collections that only grow.

It watches any daemon from outside (/proc), a Go daemon from inside (pprof
endpoints and the in-process tracker), and reads the profiles Go daemons write.`,
		Example: `  leakcheck version
  leakcheck completion bash > /etc/bash_completion.d/leakcheck`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.AddCommand(newRunCommand(), newReportCommand(), newVersionCommand(), newDemoCommand())
	return root
}

// Run executes leakcheck with args and returns the process exit code. Errors are
// printed to stderr.
func Run(args []string, stdout, stderr io.Writer) int {
	root := NewRootCommand(stdout, stderr)
	root.SetArgs(args)
	err := root.Execute()
	if err == nil {
		return exitOK
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil {
			fmt.Fprintf(stderr, "leakcheck: %v\n", ee.err)
		}
		return ee.code
	}
	// Anything cobra itself rejects (unknown command or flag, bad arguments) is usage.
	fmt.Fprintf(stderr, "leakcheck: %v\n", err)
	fmt.Fprintln(stderr, "Run 'leakcheck --help' for usage.")
	return exitUsage
}

// Execute runs leakcheck with the process's arguments and exits.
func Execute() {
	os.Exit(Run(os.Args[1:], os.Stdout, os.Stderr))
}
