// Package cleanmain is run by leaktest's tests in a subprocess, with the
// testing package's -cpuprofile and -trace: its tests leave nothing behind,
// and VerifyTestMain must not blame it for the profile files that the
// testing package keeps open.
package cleanmain

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/leakcheck/leakcheck/tracker/leaktest"
)

func TestMain(m *testing.M) {
	leaktest.VerifyTestMain(m)
}

func TestOpensAndCloses(t *testing.T) {
	leaktest.VerifyNone(t)
	name := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(name, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { close(done) }()
	<-done
}

// TestKeepsFile leaves a file open when the environment asks, so that the
// run shows VerifyTestMain still reports descriptors other than the profiles.
func TestKeepsFile(t *testing.T) {
	if name := os.Getenv("CLEANMAIN_KEEP"); name != "" {
		f, err := os.Open(name)
		if err != nil {
			t.Fatal(err)
		}
		kept = f
	}
}

var kept *os.File
