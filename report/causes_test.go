package report

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestKnownCauses runs testdata/programs/stdleaks, which commits each classic
// standard-library leak 20 times for real, and checks that its goroutine dump
// shows the cause at least 20 times, and that the same work done properly
// shows none.
func TestKnownCauses(t *testing.T) {
	t.Parallel()
	bin := filepath.Join(t.TempDir(), "stdleaks")
	build := exec.Command("go", "build", "-trimpath", "-o", bin, "./testdata/programs/stdleaks")
	build.Dir = ".." // the module root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building stdleaks: %v\n%s", err, out)
	}
	tests := []struct {
		leak string
		want string // cause name; "" for none
	}{
		{"http-body", "http-body"},
		{"sql-open", "sql-open"},
		{"cancel", "cancel"},
		{"exec-nowait", "exec-wait"},
		{"none", ""},
	}
	for _, tt := range tests {
		t.Run(tt.leak, func(t *testing.T) {
			t.Parallel()
			out, err := exec.Command(bin, "-leak", tt.leak, "-n", "20").Output()
			if err != nil {
				t.Fatalf("stdleaks -leak %s: %v", tt.leak, err)
			}
			d, err := ParseGoroutineText(out)
			if err != nil {
				t.Fatal(err)
			}
			found := map[string]int{}
			for _, g := range d.Goroutines {
				if c, ok := KnownCause(g.Stack, g.CreatedBy); ok {
					found[c.Name] += max(g.Count, 1)
				}
			}
			switch {
			case tt.want == "" && len(found) > 0:
				t.Errorf("causes %v in a program that leaks nothing", found)
			case tt.want != "" && (found[tt.want] < 20 || len(found) != 1):
				t.Errorf("causes %v, want at least 20 of %s and no other", found, tt.want)
			}
		})
	}
}

// TestCauseNamesFinding checks that the goroutine finding about response
// bodies never closed says so, with the fix, rather than naming the wait.
func TestCauseNamesFinding(t *testing.T) {
	t.Parallel()
	bin := filepath.Join(t.TempDir(), "stdleaks")
	build := exec.Command("go", "build", "-trimpath", "-o", bin, "./testdata/programs/stdleaks")
	build.Dir = ".."
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building stdleaks: %v\n%s", err, out)
	}
	var dumps []*GoroutineDump
	start := time.Now()
	for i, n := range []string{"5", "10", "15", "20", "25", "30", "35", "40", "45", "50", "55", "60"} {
		out, err := exec.Command(bin, "-leak", "http-body", "-n", n).Output()
		if err != nil {
			t.Fatal(err)
		}
		d, err := ParseGoroutineText(out)
		if err != nil {
			t.Fatal(err)
		}
		d.Time = start.Add(time.Duration(i) * time.Minute)
		dumps = append(dumps, d)
	}
	_, fs := AnalyzeGoroutines(dumps, GoroutineOptions{}, TrendOptions{})
	var named []string
	for _, f := range fs {
		if strings.Contains(f.Subject, "HTTP response bodies never closed") && strings.Contains(f.Suggestion, "resp.Body") {
			named = append(named, f.Subject)
		}
	}
	if len(named) == 0 {
		for _, f := range fs {
			t.Logf("%s %s %q: %s", f.Severity, f.Kind, f.Subject, f.Evidence.Because)
		}
		t.Fatal("no goroutine finding names the HTTP bodies never closed")
	}
}
