package supervise

import (
	"errors"
	"fmt"
	"os/exec"
	"syscall"
)

// An Ending is how a command ended, read from the error that Process.Wait
// (or exec.Cmd.Wait) returned.
type Ending struct {
	// Status is the command's exit status, or -1 when a signal killed it
	// or Err is set.
	Status int
	// Signal is the signal that killed the command, or 0.
	Signal syscall.Signal
	// Err is Wait's error when it is not how the command ended (copying
	// its output failed, say), else nil.
	Err error
}

// EndingOf returns how a command ended from the error Wait returned.
func EndingOf(err error) Ending {
	var ee *exec.ExitError
	switch {
	case err == nil:
		return Ending{}
	case !errors.As(err, &ee):
		return Ending{Status: -1, Err: err}
	}
	if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return Ending{Status: -1, Signal: ws.Signal()}
	}
	return Ending{Status: ee.ExitCode()}
}

// String says how the command ended: "exited with status 3", "was killed by
// signal 9 (killed)", or Err's message.
func (e Ending) String() string {
	switch {
	case e.Err != nil:
		return e.Err.Error()
	case e.Signal != 0:
		return fmt.Sprintf("was killed by signal %d (%s)", int(e.Signal), e.Signal)
	}
	return fmt.Sprintf("exited with status %d", e.Status)
}
