package fleet

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// requirePrometheusEnv set to "1" turns a missing prometheus or promtool
// into a test failure instead of a skip; CI sets it.
const requirePrometheusEnv = "LEAKCHECK_REQUIRE_PROMETHEUS"

// lookTool finds a Prometheus tool, or skips (fails under
// LEAKCHECK_REQUIRE_PROMETHEUS=1) when it is not installed.
func lookTool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		msg := fmt.Sprintf("%s is not installed (Debian: apt-get install prometheus): %v", name, err)
		if os.Getenv(requirePrometheusEnv) == "1" {
			t.Fatalf("%s, and %s=1", msg, requirePrometheusEnv)
		}
		t.Skip(msg)
	}
	return p
}

// freePort returns a free TCP port on loopback.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startPrometheus runs a Prometheus server on loopback with the given
// scrape configuration (YAML, may be empty) and data directory (a new
// temporary one when empty), waits until it is ready, and returns its URL.
// The server is stopped when the test ends.
func startPrometheus(t testing.TB, scrapeConfig, dataDir string) string {
	t.Helper()
	bin := lookTool(t, "prometheus")
	dir := t.TempDir()
	if dataDir == "" {
		dataDir = filepath.Join(dir, "data")
	}
	cfg := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfg, []byte("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"+scrapeConfig), 0o644); err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	logf, err := os.Create(filepath.Join(dir, "prometheus.log"))
	if err != nil {
		t.Fatal(err)
	}
	c := exec.Command(bin,
		"--config.file="+cfg,
		"--storage.tsdb.path="+dataDir,
		"--storage.tsdb.retention.time=10y", // backfilled history stays
		"--web.listen-address="+addr,
		"--log.level=warn",
	)
	c.Stdout, c.Stderr = logf, logf
	if err := c.Start(); err != nil {
		t.Fatalf("starting prometheus: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- c.Wait() }()
	t.Cleanup(func() {
		c.Process.Signal(os.Interrupt)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			c.Process.Kill()
			<-done
		}
		logf.Close()
	})
	url := "http://" + addr
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(url + "/-/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return url
			}
		}
		select {
		case err := <-done:
			log, _ := os.ReadFile(logf.Name())
			t.Fatalf("prometheus exited before it was ready: %v\n%s", err, log)
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(logf.Name())
			t.Fatalf("prometheus at %s not ready after a minute\n%s", url, log)
		}
	}
}

// buildFixture builds testdata/programs/fleet into a temporary directory.
func buildFixture(t testing.TB) string {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("no go command to build the fixture with: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "fleet")
	c := exec.Command(goTool, "build", "-trimpath", "-o", bin, "./testdata/programs/fleet")
	c.Dir = "../.." // the module root
	if out, err := c.CombinedOutput(); err != nil {
		t.Fatalf("go build fleet fixture: %v\n%s", err, out)
	}
	return bin
}

// startFixture runs the fixture with args and returns the address it serves
// /metrics on. It ends with the test: its standard input is closed, then it
// is killed if it lingers.
func startFixture(t testing.TB, bin string, args ...string) string {
	t.Helper()
	c := exec.Command(bin, args...)
	stdin, err := c.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := c.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	c.Stderr = os.Stderr
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close()
		done := make(chan struct{})
		go func() { c.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			c.Process.Kill()
			<-done
		}
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("fixture %v: no address: %v", args, err)
	}
	go io.Copy(io.Discard, stdout)
	addr, ok := strings.CutPrefix(strings.TrimSpace(line), "listening on ")
	if !ok {
		t.Fatalf("fixture %v printed %q, not its address", args, line)
	}
	return addr
}

// waitCtx returns a context for the test's queries.
func waitCtx(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// waitScraping waits until Prometheus has tried to scrape each of its n
// targets once: it syncs new targets every few seconds, and a fixture
// started before that loses its first seconds.
func waitScraping(t testing.TB, url string, n int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(url + "/api/v1/targets?state=active")
		if err != nil {
			t.Fatal(err)
		}
		var body struct {
			Data struct {
				ActiveTargets []struct {
					LastScrape time.Time `json:"lastScrape"`
				} `json:"activeTargets"`
			} `json:"data"`
		}
		err = json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if err != nil {
			t.Fatalf("prometheus targets: %v", err)
		}
		tried := 0
		for _, tg := range body.Data.ActiveTargets {
			if !tg.LastScrape.IsZero() && tg.LastScrape.Year() > 1 {
				tried++
			}
		}
		if tried >= n {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("prometheus at %s did not scrape its %d targets within 30s", url, n)
}
