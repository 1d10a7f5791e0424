//go:build !linux

package cmd

import (
	"errors"
	"fmt"
)

// becomeSubreaper needs Linux's PR_SET_CHILD_SUBREAPER.
func becomeSubreaper() error {
	return fmt.Errorf("becoming the subreaper of the command's processes: %w", errors.ErrUnsupported)
}
