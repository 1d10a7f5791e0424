package report

import (
	"os/exec"
	"path/filepath"
	"testing"
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
