package supervise

import (
	"fmt"
	"syscall"
	"unsafe"
)

// prSetChildSubreaper is PR_SET_CHILD_SUBREAPER of prctl(2).
const prSetChildSubreaper = 36

// becomeSubreaper makes this process the subreaper of its descendants: when
// one's parent exits, it is reparented here rather than to init.
func becomeSubreaper() error {
	if _, _, errno := syscall.RawSyscall(syscall.SYS_PRCTL, prSetChildSubreaper, 1, 0); errno != 0 {
		return fmt.Errorf("becoming the subreaper of the command's processes: %w", errno)
	}
	return nil
}

// sysProcAttr puts the command in its own process group, in the terminal's
// foreground when fg is set, and has the kernel kill it when the supervisor
// dies, even by SIGKILL.
func sysProcAttr(fg bool) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Foreground: fg, Ctty: 0, Pdeathsig: syscall.SIGKILL}
}

// terminalForeground reports whether standard input is a terminal whose
// foreground process group is the caller's: then the command gets it.
func terminalForeground() bool {
	var pgrp int32
	_, _, errno := syscall.Syscall(syscall.SYS_IOCTL, 0, syscall.TIOCGPGRP, uintptr(unsafe.Pointer(&pgrp)))
	return errno == 0 && int(pgrp) == syscall.Getpgrp()
}

// reclaimTerminal makes the caller's process group the terminal's foreground
// again. A background group that does so gets SIGTTOU unless it ignores it,
// as the caller does.
func reclaimTerminal() {
	pgrp := int32(syscall.Getpgrp())
	syscall.Syscall(syscall.SYS_IOCTL, 0, syscall.TIOCSPGRP, uintptr(unsafe.Pointer(&pgrp)))
}
