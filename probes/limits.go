package probes

import (
	"bufio"
	"bytes"
	"strconv"
	"strings"
)

// Limits are the ceilings a process's resources run into; zero means none is
// known (unlimited, or not readable).
type Limits struct {
	// FDs is the soft RLIMIT_NOFILE: the most descriptors the process may
	// hold open.
	FDs uint64
	// Threads is the lower of the soft RLIMIT_NPROC (which counts the
	// threads of every process of the user) and the kernel's threads-max.
	Threads uint64
	// Memory is memory.max of the process's cgroup (cgroup v2), when set.
	Memory uint64
}

// parseLimits reads the soft limits of /proc/<pid>/limits, whose lines are
// "Max open files            1024                 1048576              files".
func parseLimits(b []byte) (fds, procs uint64) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := sc.Text()
		var name string
		switch {
		case strings.HasPrefix(line, "Max open files"):
			name = "Max open files"
		case strings.HasPrefix(line, "Max processes"):
			name = "Max processes"
		default:
			continue
		}
		f := strings.Fields(line[len(name):])
		if len(f) == 0 {
			continue
		}
		v, err := strconv.ParseUint(f[0], 10, 64) // "unlimited" stays 0
		if err != nil {
			continue
		}
		if name == "Max open files" {
			fds = v
		} else {
			procs = v
		}
	}
	return fds, procs
}

// cgroupPath returns the cgroup v2 path in /proc/<pid>/cgroup, whose
// unified line reads "0::/system.slice/app.service".
func cgroupPath(b []byte) (string, bool) {
	for line := range strings.SplitSeq(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "0::"); ok {
			return rest, true
		}
	}
	return "", false
}

// parseMax reads a cgroup limit file: a number, or "max" for none (0).
func parseMax(b []byte) uint64 {
	v, err := strconv.ParseUint(string(bytes.TrimSpace(b)), 10, 64)
	if err != nil {
		return 0
	}
	return v
}
