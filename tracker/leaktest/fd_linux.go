//go:build linux

package leaktest

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
)

// descriptorsSupported reports whether open descriptors can be listed here.
const descriptorsSupported = true

// listDescriptors returns the process's open descriptors and their targets as
// readlink(2) shows them, leaving out the one it opened to read the list.
func listDescriptors() (map[int]string, error) {
	d, err := os.Open("/proc/self/fd")
	if err != nil {
		return nil, fmt.Errorf("listing descriptors: %w", err)
	}
	self := int(d.Fd())
	names, err := d.Readdirnames(-1)
	d.Close()
	if err != nil {
		return nil, fmt.Errorf("listing descriptors: %w", err)
	}
	fds := make(map[int]string, len(names))
	for _, name := range names {
		n, err := strconv.Atoi(name)
		if err != nil || n == self {
			continue
		}
		target, err := os.Readlink("/proc/self/fd/" + name)
		if errors.Is(err, fs.ErrNotExist) {
			continue // closed meanwhile
		}
		if err != nil {
			return nil, fmt.Errorf("reading descriptor %d: %w", n, err)
		}
		fds[n] = target
	}
	return fds, nil
}
