package cmd

import (
	"bytes"
	"fmt"
	"io"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/leakcheck/leakcheck/report"
)

// TestWatchInProcess runs runWatch, in this process, on a real process that
// keeps running or exits while watched: the schedule's goroutine, the
// recorder and the report meet here, under the race detector when it is on.
func TestWatchInProcess(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("watch samples /proc: Linux only")
	}
	tests := []struct {
		name   string
		script string
		exit   string
		min    int // least samples
	}{
		{name: "still running", script: "sleep 30", exit: "still running", min: 4},
		{name: "exits while watched", script: "sleep 0.3", exit: "exited while watched", min: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := exec.Command("sh", "-c", "exec "+tt.script)
			if err := c.Start(); err != nil {
				t.Fatal(err)
			}
			exited := make(chan struct{})
			go func() { c.Wait(); close(exited) }()
			defer func() { c.Process.Kill(); <-exited }()
			opts := runOptions{interval: 100 * time.Millisecond, duration: time.Second, format: "json", maxCPU: 100, leakEvery: time.Minute}
			opts.failOn, _ = report.ParsePolicy(defaultRunFailOn)
			var out bytes.Buffer
			code, err := runWatch(t.Context(), opts, c.Process.Pid, &out, io.Discard)
			if code != exitOK || err != nil {
				t.Fatalf("runWatch: %d, %v; want %d", code, err, exitOK)
			}
			r, err := report.ReadReport(&out)
			if err != nil {
				t.Fatal(err)
			}
			var samples int
			if _, err := fmt.Sscan(r.Metadata["samples"], &samples); err != nil || samples < tt.min {
				t.Errorf("samples %q, want at least %d", r.Metadata["samples"], tt.min)
			}
			if r.Metadata["exit"] != tt.exit || !strings.HasPrefix(r.Metadata["command"], "pid ") || r.Metadata["gaps"] != "" {
				t.Errorf("metadata %v, want exit %q, the pid, no gaps", r.Metadata, tt.exit)
			}
		})
	}
}
