package cmd

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/leakcheck/leakcheck/report"
)

// promHistory starts a real Prometheus on loopback holding an hour of two
// instances backfilled with promtool, "leaky" leaking descriptors and
// "steady" not, and returns its URL. It skips without Prometheus, unless
// LEAKCHECK_REQUIRE_PROMETHEUS=1.
func promHistory(t *testing.T) string {
	t.Helper()
	var tools []string
	for _, name := range []string{"promtool", "prometheus"} {
		p, err := exec.LookPath(name)
		if err != nil {
			if os.Getenv("LEAKCHECK_REQUIRE_PROMETHEUS") == "1" {
				t.Fatalf("%s is not installed, and LEAKCHECK_REQUIRE_PROMETHEUS=1", name)
			}
			t.Skipf("%s is not installed (Debian: apt-get install prometheus)", name)
		}
		tools = append(tools, p)
	}
	dir := t.TempDir()
	end := time.Now().Add(-2 * time.Minute).Truncate(time.Minute)
	var b strings.Builder
	for _, fam := range []string{"process_start_time_seconds", "process_open_fds", "process_max_fds", "go_goroutines"} {
		fmt.Fprintf(&b, "# TYPE %s gauge\n", fam)
		for _, inst := range []string{"leaky", "steady"} {
			for i := range 60 {
				v := map[string]float64{"process_start_time_seconds": float64(end.Add(-2 * time.Hour).Unix()), "process_max_fds": 1024, "go_goroutines": 9}[fam]
				if fam == "process_open_fds" {
					v = float64(30 + i%4)
					if inst == "leaky" {
						v = float64(30 + 3*i)
					}
				}
				fmt.Fprintf(&b, "%s{job=\"cli\",instance=\"%s\"} %g %d\n", fam, inst, v, end.Add(time.Duration(i-59)*time.Minute).Unix())
			}
		}
	}
	b.WriteString("# EOF\n")
	om, data := filepath.Join(dir, "history.om"), filepath.Join(dir, "data")
	if err := os.WriteFile(om, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(tools[0], "tsdb", "create-blocks-from", "openmetrics", om, data).CombinedOutput(); err != nil {
		t.Fatalf("promtool: %v\n%s", err, out)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	cfg := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfg, []byte("global:\n  scrape_interval: 1m\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c := exec.Command(tools[1], "--config.file="+cfg, "--storage.tsdb.path="+data,
		"--storage.tsdb.retention.time=10y", "--web.listen-address="+addr, "--log.level=warn")
	var logs bytes.Buffer
	c.Stdout, c.Stderr = &logs, &logs
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Process.Kill(); c.Wait() })
	url := "http://" + addr
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if resp, err := http.Get(url + "/-/ready"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return url
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("prometheus not ready:\n%s", logs.String())
		}
	}
}

// TestReportPrometheus runs `leakcheck report --prometheus` against a real
// Prometheus: the leaking instance fails the default policy, bad input is
// exit 2 with a clear message.
func TestReportPrometheus(t *testing.T) {
	url := promHistory(t)
	closed := func() string {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		return "http://" + l.Addr().String()
	}()
	tests := []struct {
		name           string
		args           []string
		code           int
		stdout, stderr string
	}{
		{"leaky instance found", []string{"--prometheus", url, "--range", "1h", "--step", "1m"}, exitLeaks,
			`fds of leaky {job="cli"}`, ""},
		{"selector", []string{"--prometheus", url, "--range", "1h", "--step", "1m", "--selector", `{instance="steady"}`}, 0,
			"1 instances analysed", ""},
		{"extra query", []string{"--prometheus", url, "--range", "1h", "--step", "1m", "--query", `open=process_open_fds{job="cli"}`}, exitLeaks,
			"open_slope_per_hour", ""},
		{"bad query", []string{"--prometheus", url, "--query", "nonsense"}, exitUsage, "", "want NAME=PROMQL"},
		{"nothing selected", []string{"--prometheus", url, "--range", "1h", "--selector", `{job="none"}`}, exitUsage, "", `for selector {job="none"}`},
		{"unreachable", []string{"--prometheus", closed, "--range", "1h"}, exitUsage, "", "connection refused"},
		{"no input, no --prometheus", nil, exitUsage, "", "requires at least 1 arg"},
	}
	// Every format renders the fleet's report.
	for _, format := range report.Formats() {
		tests = append(tests, struct {
			name           string
			args           []string
			code           int
			stdout, stderr string
		}{"format " + format, []string{"--format", format, "--prometheus", url, "--range", "1h", "--step", "1m"}, exitLeaks, "leaky", ""})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			code := Run(append([]string{"report"}, tt.args...), &out, &errOut)
			if code != tt.code || !strings.Contains(out.String(), tt.stdout) || !strings.Contains(errOut.String(), tt.stderr) {
				t.Errorf("exit %d, want %d; want %q in stdout and %q in stderr\nstdout:\n%s\nstderr:\n%s",
					code, tt.code, tt.stdout, tt.stderr, out.String(), errOut.String())
			}
		})
	}
}
