package cmd

import (
	"syscall"
	"unsafe"
)

// terminalWidth returns the width in columns of the terminal fd, or 0.
func terminalWidth(fd int) int {
	var ws [4]uint16 // rows, columns, and pixels
	_, _, errno := syscall.Syscall(syscall.SYS_IOCTL, uintptr(fd), syscall.TIOCGWINSZ, uintptr(unsafe.Pointer(&ws)))
	if errno != 0 {
		return 0
	}
	return int(ws[1])
}
