//go:build !linux

package probes

import (
	"errors"
	"fmt"
)

// SampleProcess reads a process from /proc, which only Linux provides; on
// other systems it returns an error wrapping errors.ErrUnsupported.
func SampleProcess(pid int) (*ProcSample, error) {
	return nil, fmt.Errorf("probes: sample pid %d: %w", pid, errors.ErrUnsupported)
}

// SampleProcessSince reads a process from /proc, which only Linux provides;
// on other systems it returns an error wrapping errors.ErrUnsupported.
func SampleProcessSince(pid int, prev *ProcSample) (*ProcSample, error) {
	return SampleProcess(pid)
}

// SampleCounts reads a process from /proc, which only Linux provides; on
// other systems it returns an error wrapping errors.ErrUnsupported.
func SampleCounts(pid int) (*ProcSample, error) {
	return nil, fmt.Errorf("probes: sample pid %d: %w", pid, errors.ErrUnsupported)
}

// CountFDs counts a process's descriptors from /proc, which only Linux
// provides; on other systems it returns an error wrapping
// errors.ErrUnsupported.
func CountFDs(pid int) (int, error) {
	return 0, fmt.Errorf("probes: count descriptors of pid %d: %w", pid, errors.ErrUnsupported)
}

// Descendants lists a process's descendants from /proc, which only Linux
// provides; on other systems it returns an error wrapping
// errors.ErrUnsupported.
func Descendants(pid int) ([]Child, error) {
	return nil, fmt.Errorf("probes: descendants of pid %d: %w", pid, errors.ErrUnsupported)
}

// ReadLimits reads a process's limits from /proc, which only Linux provides;
// on other systems every limit is unknown (zero).
func ReadLimits(pid int) Limits { return Limits{} }
