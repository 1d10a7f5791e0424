package report

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"image/png"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The browser test opens the HTML report in headless Chromium, driven by
// chromedriver over the WebDriver protocol (plain HTTP and JSON, so no
// dependency), and checks what a person would see: no console errors (the
// page's Content-Security-Policy turns any attempt to load something into
// one), every chart laid out, nothing fetched, no horizontal scrolling, in
// the light and the dark colour scheme. It keeps full-page screenshots as
// artifacts.
//
// Environment:
//
//	LEAKCHECK_ARTIFACTS        directory for report.html and the screenshots
//	                           (default: a directory under the test's temporary
//	                           directory, removed when the test ends)
//	LEAKCHECK_REQUIRE_BROWSER  "1" turns a missing Chromium into a failure
//	                           rather than a skip; .ci/run sets it
const (
	artifactsEnv      = "LEAKCHECK_ARTIFACTS"
	requireBrowserEnv = "LEAKCHECK_REQUIRE_BROWSER"
)

// browserPaths finds Chromium and chromedriver, or skips the test (fails it
// under LEAKCHECK_REQUIRE_BROWSER=1).
func browserPaths(t *testing.T) (chromium, driver string) {
	t.Helper()
	look := func(names ...string) string {
		for _, name := range names {
			if p, err := exec.LookPath(name); err == nil {
				return p
			}
		}
		return ""
	}
	chromium = look("chromium", "/usr/bin/chromium", "chromium-browser")
	driver = look("chromedriver", "/usr/bin/chromedriver")
	if chromium == "" || driver == "" {
		msg := "the browser test needs Chromium and chromedriver: install the Debian packages chromium and chromium-driver (apt-get install chromium chromium-driver)"
		if os.Getenv(requireBrowserEnv) == "1" {
			t.Fatal(msg + "; " + requireBrowserEnv + "=1 makes this a failure")
		}
		t.Skip(msg)
	}
	return chromium, driver
}

// webDriver is a chromedriver process and one browser session in it.
type webDriver struct {
	base    string // http://127.0.0.1:PORT
	client  *http.Client
	session string
}

// startBrowser starts chromedriver on a free loopback port and a headless
// Chromium session with a fresh profile and no background networking. Both
// are stopped when the test ends.
func startBrowser(t *testing.T, chromium, driverPath string) *webDriver {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, driverPath, "--port=0", "--allowed-ips=127.0.0.1")
	// Its own process group, so the browsers it starts can be killed with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	out := &portWatcher{port: make(chan string, 1)}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("starting chromedriver: %v", err)
	}
	d := &webDriver{client: &http.Client{Timeout: 90 * time.Second, Transport: &http.Transport{}}}
	t.Cleanup(func() {
		if d.session != "" {
			// Closing the session quits the browser cleanly.
			if err := d.call("DELETE", "/session/"+d.session, nil, nil); err != nil {
				t.Logf("closing the browser session: %v", err)
			}
		}
		d.client.CloseIdleConnections()
		cancel()
		cmd.Wait()
		if t.Failed() {
			t.Logf("chromedriver output:\n%s", out.String())
		}
	})
	select {
	case port := <-out.port:
		d.base = "http://127.0.0.1:" + port
	case <-time.After(30 * time.Second):
		t.Fatalf("chromedriver did not say which port it listens on:\n%s", out.String())
	}

	userData := t.TempDir()
	caps := map[string]any{"capabilities": map[string]any{"alwaysMatch": map[string]any{
		"browserName": "chrome",
		"goog:chromeOptions": map[string]any{
			"binary": chromium,
			"args": []string{
				"--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
				"--no-first-run", "--disable-background-networking", "--disable-component-update",
				"--disable-sync", "--disable-extensions", "--disable-dev-shm-usage", "--disable-crash-reporter",
				"--user-data-dir=" + userData,
				"--window-size=1280,900", "--force-device-scale-factor=1",
			},
		},
		"goog:loggingPrefs": map[string]string{"browser": "ALL"},
	}}}
	var session struct {
		SessionID string `json:"sessionId"`
	}
	if err := d.call("POST", "/session", caps, &session); err != nil {
		t.Fatalf("starting Chromium: %v", err)
	}
	d.session = session.SessionID
	return d
}

// portWatcher collects chromedriver's output and sends the port it reports
// listening on.
type portWatcher struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	port chan string
	sent bool
}

func (w *portWatcher) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if !w.sent {
		sc := bufio.NewScanner(bytes.NewReader(w.buf.Bytes()))
		for sc.Scan() {
			if _, rest, ok := strings.Cut(sc.Text(), "was started successfully on port "); ok {
				w.port <- strings.TrimSuffix(strings.TrimSpace(rest), ".")
				w.sent = true
				break
			}
		}
	}
	return len(p), nil
}

func (w *portWatcher) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// call makes one WebDriver request and decodes the response's "value" into
// out. A WebDriver error becomes a Go error.
func (d *webDriver) call(method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		data, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, d.base+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := d.client.Do(req)
	if err != nil {
		return fmt.Errorf("webdriver %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	var reply struct {
		Value json.RawMessage `json:"value"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&reply); err != nil {
		return fmt.Errorf("webdriver %s %s: reading the reply: %w", method, path, err)
	}
	if resp.StatusCode != http.StatusOK {
		var e struct{ Error, Message string }
		json.Unmarshal(reply.Value, &e)
		return fmt.Errorf("webdriver %s %s: %s: %s", method, path, e.Error, e.Message)
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(reply.Value, out)
}

func (d *webDriver) sessionCall(method, path string, in, out any) error {
	return d.call(method, "/session/"+d.session+path, in, out)
}

// open loads url and returns what the browser logged while loading it,
// after the page's load event.
func (d *webDriver) open(url string) ([]consoleEntry, error) {
	if _, err := d.consoleLog(); err != nil { // drop what came before
		return nil, err
	}
	if err := d.sessionCall("POST", "/url", map[string]string{"url": url}, nil); err != nil {
		return nil, err
	}
	return d.consoleLog()
}

// consoleEntry is one message of the browser's console log: console calls,
// uncaught exceptions, failed loads and security (CSP) violations.
type consoleEntry struct {
	Level   string `json:"level"`
	Source  string `json:"source"`
	Message string `json:"message"`
}

// consoleLog returns the console messages logged since the last call.
func (d *webDriver) consoleLog() ([]consoleEntry, error) {
	var entries []consoleEntry
	err := d.sessionCall("POST", "/se/log", map[string]string{"type": "browser"}, &entries)
	return entries, err
}

// problems returns the entries at warning level or above.
func problems(entries []consoleEntry) []consoleEntry {
	var out []consoleEntry
	for _, e := range entries {
		if e.Level == "SEVERE" || e.Level == "WARNING" {
			out = append(out, e)
		}
	}
	return out
}

func (d *webDriver) script(script string, out any) error {
	return d.sessionCall("POST", "/execute/sync", map[string]any{"script": script, "args": []any{}}, out)
}

// cdp runs a Chrome DevTools Protocol command through chromedriver.
func (d *webDriver) cdp(cmd string, params, out any) error {
	return d.sessionCall("POST", "/goog/cdp/execute", map[string]any{"cmd": cmd, "params": params}, out)
}

// screenshot captures the whole page, not only the window, as a PNG of
// width × height CSS pixels at scale 1.
func (d *webDriver) screenshot(width, height int) ([]byte, error) {
	var shot struct {
		Data string `json:"data"`
	}
	err := d.cdp("Page.captureScreenshot", map[string]any{
		"format": "png", "captureBeyondViewport": true,
		"clip": map[string]any{"x": 0, "y": 0, "width": width, "height": height, "scale": 1},
	}, &shot)
	if err != nil {
		return nil, err
	}
	return base64.StdEncoding.DecodeString(shot.Data)
}

// pageFacts is what the test reads back from the rendered page.
type pageFacts struct {
	Title      string  `json:"title"`
	Charts     int     `json:"charts"`
	LaidOut    int     `json:"laidOut"`
	Lines      int     `json:"lines"`
	Fits       int     `json:"fits"`
	Warmups    int     `json:"warmups"`
	Resources  int     `json:"resources"`
	Width      int     `json:"width"`
	Height     int     `json:"height"`
	ViewWidth  int     `json:"viewWidth"`
	Background string  `json:"background"`
	Scale      float64 `json:"scale"`
}

const pageFactsScript = `
const charts = [...document.querySelectorAll('svg.chart')];
const laidOut = charts.filter(c => { const r = c.getBoundingClientRect(); return r.width >= 300 && r.height >= 80; });
return {
  title: document.title,
  charts: charts.length,
  laidOut: laidOut.length,
  lines: document.querySelectorAll('svg.chart path.line').length,
  fits: document.querySelectorAll('svg.chart line.fit').length,
  warmups: document.querySelectorAll('svg.chart rect.warmup').length,
  resources: performance.getEntriesByType('resource').length,
  width: document.documentElement.scrollWidth,
  height: document.documentElement.scrollHeight,
  viewWidth: window.innerWidth,
  background: getComputedStyle(document.body).backgroundColor,
  scale: window.devicePixelRatio,
};`

func TestHTMLInBrowser(t *testing.T) {
	chromium, driverPath := browserPaths(t)
	artifacts := os.Getenv(artifactsEnv)
	if artifacts == "" {
		artifacts = filepath.Join(t.TempDir(), "artifacts")
	}
	if err := os.MkdirAll(artifacts, 0o755); err != nil {
		t.Fatal(err)
	}

	r := runReport(t)
	page := render(t, r, "html")
	if err := os.WriteFile(filepath.Join(artifacts, "report.html"), page, 0o644); err != nil {
		t.Fatal(err)
	}
	// Pages that must fail the console check, so that a passing check means
	// something.
	broken := map[string]string{
		"/script-error.html":  `<!DOCTYPE html><title>x</title><script>throw new Error("boom-script")</script>`,
		"/console-error.html": `<!DOCTYPE html><title>x</title><script>console.error("boom-console")</script>`,
		"/missing-image.html": `<!DOCTYPE html><title>x</title><img src="/nope.png" alt="">`,
		// The report's own policy: anything it would fetch is blocked, and
		// the block is logged.
		"/fetches.html": `<!DOCTYPE html><meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:"><title>x</title><link rel="stylesheet" href="/font.css">`,
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		if req.URL.Path == "/report.html" {
			w.Write(page)
			return
		}
		if html, ok := broken[req.URL.Path]; ok {
			io.WriteString(w, html)
			return
		}
		http.NotFound(w, req)
	}))
	defer srv.Close()

	d := startBrowser(t, chromium, driverPath)

	wants := map[string]string{
		"/script-error.html":  "boom-script",
		"/console-error.html": "boom-console",
		"/missing-image.html": "404",
		"/fetches.html":       "Content Security Policy",
	}
	for path, want := range wants {
		entries, err := d.open(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, e := range problems(entries) {
			found = found || strings.Contains(e.Message, want)
		}
		if !found {
			t.Errorf("%s: the console check did not catch it (want an error with %q); log: %+v", path, want, entries)
		}
	}

	for _, scheme := range []string{"light", "dark"} {
		if err := d.cdp("Emulation.setEmulatedMedia", map[string]any{
			"features": []map[string]string{{"name": "prefers-color-scheme", "value": scheme}},
		}, nil); err != nil {
			t.Fatal(err)
		}
		entries, err := d.open(srv.URL + "/report.html")
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range problems(entries) {
			t.Errorf("%s: console %s from %s: %s", scheme, e.Level, e.Source, e.Message)
		}
		var facts pageFacts
		if err := d.script(pageFactsScript, &facts); err != nil {
			t.Fatal(err)
		}
		growing, warm := 0, 0
		for _, s := range r.Series {
			if s.Trend != nil && s.Trend.Verdict == VerdictGrowing {
				growing++
			}
			if s.Trend != nil && !s.Trend.WarmupEnd.IsZero() {
				warm++
			}
		}
		if !strings.HasPrefix(facts.Title, "leakcheck v0.1.0 report") || facts.Charts != len(r.Series) || facts.LaidOut != facts.Charts ||
			facts.Lines != facts.Charts || facts.Fits != growing || facts.Warmups != warm || growing == 0 || warm == 0 {
			t.Errorf("%s: page %+v; want %d charts laid out, %d trend lines, %d warm-ups", scheme, facts, len(r.Series), growing, warm)
		}
		if facts.Resources != 0 {
			t.Errorf("%s: the page fetched %d resources; it must be self-contained", scheme, facts.Resources)
		}
		if facts.Width > facts.ViewWidth {
			t.Errorf("%s: the page is %d px wide in a %d px window: it scrolls sideways", scheme, facts.Width, facts.ViewWidth)
		}
		dark := facts.Background != "rgb(255, 255, 255)"
		if dark != (scheme == "dark") {
			t.Errorf("%s: body background %s", scheme, facts.Background)
		}

		shot, err := d.screenshot(facts.Width, facts.Height)
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := png.DecodeConfig(bytes.NewReader(shot))
		if err != nil {
			t.Fatalf("%s: the screenshot is not a PNG: %v", scheme, err)
		}
		if wantW, wantH := int(float64(facts.Width)*facts.Scale), int(float64(facts.Height)*facts.Scale); cfg.Width != wantW || cfg.Height != wantH {
			t.Errorf("%s: screenshot is %dx%d, want the whole page, %dx%d", scheme, cfg.Width, cfg.Height, wantW, wantH)
		}
		name := filepath.Join(artifacts, "report-"+scheme+".png")
		if err := os.WriteFile(name, shot, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("%s screenshot: %s (%dx%d)", scheme, name, cfg.Width, cfg.Height)
	}
}
