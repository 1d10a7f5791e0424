package cmd

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/leakcheck/leakcheck/probes"
	"github.com/leakcheck/leakcheck/report"
)

// holdFDsEnv makes the test binary, run as a child, a daemon that holds that
// many descriptors (pipes) until its standard input closes.
const holdFDsEnv = "LEAKCHECK_TEST_HOLD_FDS"

func holdFDs(count string) {
	n, err := strconv.Atoi(count)
	if err != nil || n < 2 {
		fmt.Fprintf(os.Stderr, "%s=%q: want a number of descriptors\n", holdFDsEnv, count)
		os.Exit(2)
	}
	lim := syscall.Rlimit{Cur: uint64(n + 256), Max: uint64(n + 256)}
	var old syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &old) == nil && old.Max > lim.Max {
		lim.Max = old.Max
	}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		fmt.Fprintf(os.Stderr, "raising RLIMIT_NOFILE to %d: %v\n", lim.Cur, err)
		os.Exit(1)
	}
	for range n / 2 {
		var p [2]int
		if err := syscall.Pipe(p[:]); err != nil {
			fmt.Fprintf(os.Stderr, "pipe: %v\n", err)
			os.Exit(1)
		}
	}
	fmt.Println("ready")
	var b [1]byte
	os.Stdin.Read(b[:]) // returns when the parent closes the pipe
}

// BenchmarkWatchCPU measures the budget of `leakcheck watch` and `leakcheck
// run`: their own CPU, as a share of one core, while they watch a daemon
// holding 10,000 descriptors at the default 1 s interval. Both sample in
// watch.loop (run adds a goroutine waiting for its command, and signal
// forwarding), which the first two cases run in process: the baseline takes
// a full sample every tick, as run did before it counted descriptors
// between full samples; adaptive is the default. The last case runs the
// built `leakcheck watch` on the daemon and reads the whole process's CPU
// time from the kernel, start-up and report included. Each op is watchTicks
// real ticks (20 s), so run it as
//
//	go test -run '^$' -bench WatchCPU -benchtime 1x ./cmd/
//
// and read the cpu-% metric.
func BenchmarkWatchCPU(b *testing.B) {
	const watchTicks = 20
	for _, bc := range []struct {
		name   string
		budget float64
	}{
		{"baseline=full-every-tick", 1},
		{"adaptive", probes.DefaultCPUBudget},
	} {
		b.Run(bc.name, func(b *testing.B) {
			pid := startHolder(b, 10000)
			var cpu, wall time.Duration
			for b.Loop() {
				w := newWatch(runOptions{interval: time.Second, duration: watchTicks*time.Second + 500*time.Millisecond, maxCPU: 100 * bc.budget}, report.TrendOptions{}, pid)
				start, used := time.Now(), cpuTime(b)
				w.loop(context.Background(), nil, io.Discard)
				cpu += cpuTime(b) - used
				wall += time.Since(start)
				if gaps := w.sched.Gaps(); len(gaps) > 0 || w.last.NumFDs < 10000 || w.rec.Samples() != watchTicks+1 {
					b.Fatalf("gaps %v, %d fds, %d samples", gaps, w.last.NumFDs, w.rec.Samples())
				}
				b.ReportMetric(float64(w.rec.Full()-1), "full-samples")
			}
			b.ReportMetric(100*cpu.Seconds()/wall.Seconds(), "cpu-%")
		})
	}
	b.Run("watch-command", func(b *testing.B) {
		dir := b.TempDir()
		c := exec.Command("go", "build", "-o", dir+string(filepath.Separator), "..")
		if out, err := c.CombinedOutput(); err != nil {
			b.Fatalf("go build: %v\n%s", err, out)
		}
		pid := startHolder(b, 10000)
		var cpu, wall time.Duration
		for b.Loop() {
			start := time.Now()
			c := exec.Command(filepath.Join(dir, "leakcheck"), "watch", "--duration", fmt.Sprint(watchTicks, "s"),
				"--format", "json", "--output", filepath.Join(dir, "report.json"), strconv.Itoa(pid))
			if out, err := c.CombinedOutput(); err != nil {
				b.Fatalf("leakcheck watch: %v\n%s", err, out)
			}
			wall += time.Since(start)
			cpu += c.ProcessState.UserTime() + c.ProcessState.SystemTime()
		}
		b.ReportMetric(100*cpu.Seconds()/wall.Seconds(), "cpu-%")
	})
}

// startHolder starts the test binary as a daemon holding n descriptors and
// returns its pid; it ends with the benchmark.
func startHolder(b *testing.B, n int) int {
	self, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	c := exec.Command(self)
	c.Env = append(os.Environ(), holdFDsEnv+"="+strconv.Itoa(n))
	c.Stderr = os.Stderr
	in, err := c.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	out, err := c.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := c.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		in.Close()
		c.Wait()
	})
	var ready [6]byte
	if _, err := out.Read(ready[:]); err != nil || string(ready[:5]) != "ready" {
		b.Fatalf("descriptor holder did not start: %q, %v", ready, err)
	}
	return c.Process.Pid
}

// cpuTime is the CPU time this process has used, user and system.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
