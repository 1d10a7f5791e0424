//go:build !linux

package probes

import "time"

// threadCPUTime is not available here; threadCPU falls back to wall time.
func threadCPUTime() (time.Duration, bool) { return 0, false }
