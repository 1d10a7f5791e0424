// Package proctest helps tests find and wait for the real processes they
// start: sleeps named by a unique duration, found by their arguments in
// /proc.
package proctest

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// SleepArg returns a sleep duration in seconds, about secs, that names the
// calling test process, so that WithArg finds its sleeps and no one else's.
func SleepArg(secs int) string { return fmt.Sprintf("%d.%d", secs, os.Getpid()) }

// WithArg returns the running processes that have arg among their
// arguments. Zombies have no arguments in /proc, so they do not count.
func WithArg(t testing.TB, arg string) []int {
	t.Helper()
	ents, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue // gone meanwhile, or not ours to read
		}
		if slices.Contains(strings.Split(string(b), "\x00"), arg) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// PollUntil calls cond every 10 ms until it holds, and reports whether it
// did within d.
func PollUntil(d time.Duration, cond func() bool) bool {
	for deadline := time.Now().Add(d); ; time.Sleep(10 * time.Millisecond) {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
	}
}
