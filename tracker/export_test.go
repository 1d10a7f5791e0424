package tracker

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/pprof/profile"
)

// leakySetup tracks a small, known set of records: three sockets from one line
// under "conn", one file under the root.
func leakySetup(r *Registry) {
	s := r.StartSession("conn", nil)
	for range 3 {
		s.Track(KindSocket, "tcp 127.0.0.1:6379")
	}
	r.Track(KindFile, nil, "/var/log/x")
}

func TestWriteProfile(t *testing.T) {
	r := New(WithStacks(StacksAlways))
	leakySetup(r)
	r.WithoutStack(KindTimer)

	tests := []struct {
		kind        Kind
		wantSamples int
		wantTotal   int64
	}{
		{KindSocket, 1, 3},
		{KindFile, 1, 1},
		{KindTimer, 1, 1},
		{"", 4, 6}, // + the session itself
	}
	for _, tt := range tests {
		t.Run(profileName(tt.kind), func(t *testing.T) {
			var buf bytes.Buffer
			if err := r.WriteProfile(&buf, tt.kind); err != nil {
				t.Fatal(err)
			}
			p, err := profile.Parse(&buf)
			if err != nil {
				t.Fatalf("profile.Parse: %v", err)
			}
			if err := p.CheckValid(); err != nil {
				t.Fatal(err)
			}
			var total int64
			for _, s := range p.Sample {
				total += s.Value[0]
				if len(s.Label["kind"]) != 1 || len(s.Label["owner"]) != 1 || len(s.Label["label"]) != 1 {
					t.Errorf("sample labels = %v", s.Label)
				}
				if len(s.Location) == 0 {
					t.Error("sample without locations")
				}
			}
			if len(p.Sample) != tt.wantSamples || total != tt.wantTotal {
				t.Fatalf("%d samples totalling %d, want %d totalling %d", len(p.Sample), total, tt.wantSamples, tt.wantTotal)
			}
			if tt.kind == KindSocket {
				s := p.Sample[0]
				if s.Label["owner"][0] != "conn #1" || s.Label["label"][0] != "tcp 127.0.0.1:6379" {
					t.Fatalf("socket labels = %v", s.Label)
				}
				if fn := s.Location[0].Line[0].Function.Name; fn != "github.com/leakcheck/leakcheck/tracker.leakySetup" {
					t.Fatalf("top frame = %s, want leakySetup", fn)
				}
			}
			if tt.kind == KindTimer && p.Sample[0].Location[0].Line[0].Function.Name != noStack {
				t.Fatal("a record without a stack is not marked as such")
			}
		})
	}
}

// WithoutStack tracks a record of kind with stacks off, for tests.
func (r *Registry) WithoutStack(kind Kind) Handle {
	mode := r.StackMode()
	r.SetStackMode(StacksOff)
	defer r.SetStackMode(mode)
	return r.Track(kind, nil, "no stack")
}

func TestProfileOpensInGoToolPprof(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go not on PATH")
	}
	r := New(WithStacks(StacksAlways))
	leakySetup(r)
	path := filepath.Join(t.TempDir(), "socket.pb.gz")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.WriteProfile(f, KindSocket); err != nil {
		t.Fatal(err)
	}
	f.Close()
	out, err := exec.Command(goTool, "tool", "pprof", "-top", "-nodecount=5", path).CombinedOutput()
	if err != nil {
		t.Fatalf("go tool pprof: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "tracker.leakySetup") || !strings.Contains(string(out), "Type: records") {
		t.Fatalf("go tool pprof output lacks the acquisition site:\n%s", out)
	}
}

func TestHandler(t *testing.T) {
	r := New(WithStacks(StacksAlways))
	leakySetup(r)
	mux := http.NewServeMux()
	mux.Handle("/debug/leakcheck/", r.Handler())
	srv := httptest.NewServer(mux)
	defer srv.Close()

	get := func(path string) (int, string, []byte) {
		t.Helper()
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, resp.Header.Get("Content-Type"), body
	}

	code, ctype, body := get("/debug/leakcheck/")
	if code != 200 || !strings.HasPrefix(ctype, "text/plain") {
		t.Fatalf("index: %d %s", code, ctype)
	}
	for _, want := range []string{"5 live records", "socket", "profile/socket", "tcp 127.0.0.1:6379", "tracker.leakySetup"} {
		if !strings.Contains(string(body), want) {
			t.Errorf("index lacks %q:\n%s", want, body)
		}
	}

	code, ctype, body = get("/debug/leakcheck/snapshot.json")
	var snap Snapshot
	if code != 200 || ctype != "application/json" || json.Unmarshal(body, &snap) != nil {
		t.Fatalf("snapshot: %d %s %.200s", code, ctype, body)
	}
	if snap.Schema != SchemaVersion || len(snap.Records) != 5 {
		t.Fatalf("snapshot schema %d with %d records", snap.Schema, len(snap.Records))
	}
	if id := snap.Records[1].StackID; id == 0 || len(snap.StackTable[id]) == 0 {
		t.Fatalf("record stack %d not in the stack table", id)
	}

	code, _, body = get("/debug/leakcheck/profile/socket")
	if code != 200 {
		t.Fatalf("profile: %d", code)
	}
	p, err := profile.ParseData(body)
	if err != nil || len(p.Sample) != 1 || p.Sample[0].Value[0] != 3 {
		t.Fatalf("served socket profile: %v %+v", err, p)
	}
	if code, _, _ := get("/debug/leakcheck/nothing"); code != 404 {
		t.Fatalf("unknown path: %d, want 404", code)
	}
}

func TestWriteExitSnapshot(t *testing.T) {
	r := New(WithStacks(StacksAlways))
	leakySetup(r)

	t.Setenv(SnapshotEnv, "")
	if err := r.WriteExitSnapshot(); err != nil {
		t.Fatalf("unset variable: %v", err)
	}

	dir := t.TempDir()
	path := filepath.Join(dir, "report.json")
	t.Setenv(SnapshotEnv, path)
	if err := r.WriteExitSnapshot(); err != nil {
		t.Fatal(err)
	}
	assertReport(t, path, 5)
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("directory holds %d entries, want only the report", len(entries))
	}

	t.Setenv(SnapshotEnv, filepath.Join(dir, "missing-dir", "r.json"))
	if err := r.WriteExitSnapshot(); err == nil || !strings.Contains(err.Error(), "missing-dir") {
		t.Fatalf("write to a missing directory: %v", err)
	}
}

func assertReport(t *testing.T, path string, records int) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var snap Snapshot
	if err := json.Unmarshal(data, &snap); err != nil {
		t.Fatalf("report is not JSON: %v", err)
	}
	if snap.Schema != SchemaVersion || len(snap.Records) != records || snap.PID == 0 {
		t.Fatalf("report: schema %d, %d records, pid %d; want %d records", snap.Schema, len(snap.Records), snap.PID, records)
	}
}

// TestExitOnSignals runs this test binary as a daemon that installs the hook,
// sends it SIGTERM, and checks that it wrote its report and died of SIGTERM.
func TestExitOnSignals(t *testing.T) {
	if os.Getenv("TRACKER_EXIT_HELPER") == "1" {
		leakySetup(Default)
		Default.ExitOnSignals(syscall.SIGTERM)
		os.Stdout.WriteString("ready\n")
		time.Sleep(time.Minute)
		os.Exit(0)
	}
	path := filepath.Join(t.TempDir(), "report.json")
	cmd := exec.Command(os.Args[0], "-test.run=^TestExitOnSignals$")
	cmd.Env = append(os.Environ(), "TRACKER_EXIT_HELPER=1", SnapshotEnv+"="+path)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 6)
	if _, err := io.ReadFull(stdout, buf); err != nil || string(buf) != "ready\n" {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("helper did not start: %q %v", buf, err)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	err = cmd.Wait()
	var exit *exec.ExitError
	if !errors.As(err, &exit) {
		t.Fatalf("helper exited with %v, want death by SIGTERM", err)
	}
	if ws := exit.Sys().(syscall.WaitStatus); !ws.Signaled() || ws.Signal() != syscall.SIGTERM {
		t.Fatalf("helper status %v, want killed by SIGTERM", ws)
	}
	assertReport(t, path, 5)
}
