package keepalive

import (
	"context"
	"fmt"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/leakcheck/leakcheck/tracker/leaktest"

	"github.com/leakcheck/leakcheck/tracker"
)

func TestMain(m *testing.M) {
	// The network poller opens its descriptors on first use and keeps them;
	// open them before any test takes its descriptor baseline.
	if l, err := net.Listen("tcp", "127.0.0.1:0"); err == nil {
		l.Close()
	}
	leaktest.VerifyTestMain(m)
}

// openFDs lists this process's descriptors as "fd -> target".
func openFDs(t testing.TB) map[string]string {
	t.Helper()
	dir := "/proc/self/fd"
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Skipf("no %s: %v", dir, err)
	}
	out := make(map[string]string, len(ents))
	for _, e := range ents {
		target, err := os.Readlink(dir + "/" + e.Name())
		if err != nil {
			continue // the directory's own descriptor, closed by now
		}
		out[e.Name()] = target
	}
	return out
}

// clean fails the test if it leaves goroutines or descriptors behind, with
// the project's own test helper.
func clean(t *testing.T) {
	t.Helper()
	leaktest.VerifyNone(t)
}

// newKernel returns a kernel with its own registry capturing every stack.
func newKernel(t *testing.T, opts ...Option) *Kernel {
	t.Helper()
	reg := tracker.New(tracker.WithStacks(tracker.StacksAlways))
	return NewKernel(append([]Option{WithRegistry(reg), WithName(t.Name())}, opts...)...)
}

// run runs k for at most d and returns its report and error.
func run(t *testing.T, k *Kernel, d time.Duration) (*Report, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	rep, err := k.Run(ctx)
	if rep == nil {
		t.Fatalf("Run returned no report (err %v)", err)
	}
	return rep, err
}

// mustRun runs k and fails unless every session stopped by itself with
// nothing left over.
func mustRun(t *testing.T, k *Kernel) *Report {
	t.Helper()
	rep, err := run(t, k, 10*time.Second)
	if err != nil {
		t.Fatalf("Run: %v\n%s", err, rep)
	}
	if rep.Len() != 0 {
		t.Fatalf("leftovers:\n%s", rep)
	}
	return rep
}

// journal collects lines from handlers; safe from any goroutine.
type journal struct {
	mu    sync.Mutex
	lines []string
}

func (j *journal) add(format string, args ...any) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.lines = append(j.lines, fmt.Sprintf(format, args...))
}

func (j *journal) get() []string {
	j.mu.Lock()
	defer j.mu.Unlock()
	return slices.Clone(j.lines)
}

func (j *journal) want(t *testing.T, want ...string) {
	t.Helper()
	if got := j.get(); !slices.Equal(got, want) {
		t.Errorf("events:\n got  %s\n want %s", strings.Join(got, "\n      "), strings.Join(want, "\n      "))
	}
}

// must fails the test on err.
func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// name returns a session's name, "kernel" for nil.
func name(s *Session) string {
	if s == nil {
		return "kernel"
	}
	return s.Name()
}
