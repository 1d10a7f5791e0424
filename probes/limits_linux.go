package probes

import (
	"os"
	"path"
	"strconv"
)

// cgroupRoot is where the cgroup v2 hierarchy is mounted.
const cgroupRoot = "/sys/fs/cgroup"

// ReadLimits reads the limits of process pid. What cannot be read is left
// zero: limits are evidence for a projection, never a reason to fail a
// sample.
func ReadLimits(pid int) Limits {
	var l Limits
	dir := "/proc/" + strconv.Itoa(pid)
	if b, err := os.ReadFile(dir + "/limits"); err == nil {
		l.FDs, l.Threads = parseLimits(b)
	}
	if b, err := os.ReadFile("/proc/sys/kernel/threads-max"); err == nil {
		if max := parseMax(b); max > 0 && (l.Threads == 0 || max < l.Threads) {
			l.Threads = max
		}
	}
	if b, err := os.ReadFile(dir + "/cgroup"); err == nil {
		if p, ok := cgroupPath(b); ok {
			if b, err := os.ReadFile(path.Join(cgroupRoot, path.Clean("/"+p), "memory.max")); err == nil {
				l.Memory = parseMax(b)
			}
		}
	}
	return l
}
