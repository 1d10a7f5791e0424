//go:build !linux

package supervise

import (
	"errors"
	"fmt"
	"syscall"
)

// becomeSubreaper needs Linux's PR_SET_CHILD_SUBREAPER.
func becomeSubreaper() error {
	return fmt.Errorf("becoming the subreaper of the command's processes: %w", errors.ErrUnsupported)
}

// sysProcAttr puts the command in its own process group; the parent-death
// signal is Linux's.
func sysProcAttr(bool) *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }

func terminalForeground() bool { return false }

func reclaimTerminal() {}
