package leaktest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// The packages under testdata leak on purpose. They are run with `go test`
// in a subprocess, from the module root, and their results read from -json
// events: the tests that leak must fail with the right report, their clean
// twins must pass.

const (
	testdataPkg = "github.com/leakcheck/leakcheck/tracker/leaktest/testdata/"
	leaky       = testdataPkg + "leaky"
	leakyMain   = testdataPkg + "leakymain"
)

// result is what `go test -json` said about one test, or about a package
// (Test is empty).
type result struct {
	action string // pass, fail or skip
	output string
}

var subprocess struct {
	once    sync.Once
	results map[[2]string]*result // package, test
	exit    int
	err     error
	stderr  string
}

// runTestdata runs the testdata packages once for all the tests that ask.
func runTestdata(t *testing.T) map[[2]string]*result {
	t.Helper()
	if testing.Short() {
		t.Skip("runs go test in a subprocess")
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command:", err)
	}
	s := &subprocess
	s.once.Do(func() {
		cmd := exec.Command(goTool, "test", "-json", "-count=1", "-parallel=4", "-timeout=2m",
			"./tracker/leaktest/testdata/leaky", "./tracker/leaktest/testdata/leakymain")
		cmd.Dir = filepath.Join("..", "..")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		s.stderr = stderr.String()
		var exitErr *exec.ExitError
		if errors.As(err, &exitErr) {
			s.exit, err = exitErr.ExitCode(), nil
		}
		if err != nil {
			s.err = err
			return
		}
		s.results = make(map[[2]string]*result)
		sc := bufio.NewScanner(bytes.NewReader(out))
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			var ev struct{ Action, Package, Test, Output string }
			if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
				continue // a line of the go command's own
			}
			k := [2]string{ev.Package, ev.Test}
			r := s.results[k]
			if r == nil {
				r = &result{}
				s.results[k] = r
			}
			switch ev.Action {
			case "output":
				r.output += ev.Output
			case "pass", "fail", "skip":
				r.action = ev.Action
			}
		}
	})
	if s.err != nil {
		t.Fatalf("go test on testdata: %v\n%s", s.err, s.stderr)
	}
	if s.exit != 1 {
		t.Fatalf("go test on testdata exited with %d, want 1\n%s", s.exit, s.stderr)
	}
	return s.results
}

// expect checks how a test ended and what its output says.
func expect(t *testing.T, results map[[2]string]*result, pkg, test, action string, contains ...string) {
	t.Helper()
	r := results[[2]string{pkg, test}]
	name := path.Base(pkg) + " " + test
	if r == nil {
		t.Errorf("%s: no result", name)
		return
	}
	if r.action != action {
		t.Errorf("%s: %s, want %s\n%s", name, r.action, action, r.output)
	}
	for _, c := range contains {
		if !strings.Contains(r.output, c) {
			t.Errorf("%s: output does not contain %q:\n%s", name, c, r.output)
		}
	}
}

func TestSubprocessParallel(t *testing.T) {
	rs := runTestdata(t)
	// The report points at the test's call of VerifyNone.
	src, err := os.ReadFile(filepath.Join("testdata", "leaky", "leaky_test.go"))
	if err != nil {
		t.Fatal(err)
	}
	before, _, _ := strings.Cut(string(src), `t.Run("leaks_goroutine"`)
	line := strings.Count(before, "\n") + 3
	expect(t, rs, leaky, "TestParallel/leaks_goroutine", "fail",
		fmt.Sprintf("leaky_test.go:%d: leaktest: TestParallel/leaks_goroutine leaked 1 goroutine:", line),
		"  1 goroutine [chan receive], created by "+leaky+".TestParallel.func1 at ",
		leaky+".parkForever\n")
	expect(t, rs, leaky, "TestParallel/leaks_record", "fail",
		"leaktest: TestParallel/leaks_record leaked 1 record:",
		`1 record: widget "leaky widget", owner root, created by TestParallel/leaks_record, age `,
		", acquired at:\n",
		leaky+".TestParallel.func3\n")
	expect(t, rs, leaky, "TestParallel/clean_goroutine", "pass")
	expect(t, rs, leaky, "TestParallel/clean_record", "pass")
	for _, test := range []string{"TestParallel/leaks_goroutine", "TestParallel/leaks_record"} {
		if out := rs[[2]string{leaky, test}].output; strings.Count(out, "leaktest:") != 1 {
			t.Errorf("%s was blamed for more than its own leak:\n%s", test, out)
		}
	}
}

func TestSubprocessSequential(t *testing.T) {
	rs := runTestdata(t)
	if descriptorsSupported {
		expect(t, rs, leaky, "TestSeqLeaksFile", "fail",
			"leaktest: TestSeqLeaksFile leaked 1 descriptor:",
			"/tracker/leaktest/testdata/leaky/leaky_test.go\n")
		// Neither parallel subtest is blamed; their parent is, and says why.
		expect(t, rs, leaky, "TestParallelFile", "fail",
			"leaktest: TestParallelFile leaked 1 descriptor:",
			"not blamed on one test, as TestParallelFile/")
		expect(t, rs, leaky, "TestParallelFile/leaks_file", "pass", "it is left to an enclosing check")
		expect(t, rs, leaky, "TestParallelFile/clean", "pass")
	}
	expect(t, rs, leaky, "TestSeqCleanFile", "pass")
	expect(t, rs, leaky, "TestUnlabeled", "fail",
		"leaktest: TestUnlabeled leaked 1 goroutine:",
		"created by "+leaky+".startUnlabeled.func1 at ",
		"not labeled with the test")
	expect(t, rs, leaky, "TestParallelUnlabeled", "fail",
		"leaktest: TestParallelUnlabeled leaked 1 goroutine:",
		leaky+".parkUnlabeled\n",
		"not blamed on one test, as TestParallelUnlabeled/")
	expect(t, rs, leaky, "TestParallelUnlabeled/leaks", "pass", "without a leaktest label (top function "+leaky+".parkUnlabeled)")
	expect(t, rs, leaky, "TestParallelUnlabeled/clean", "pass")
	expect(t, rs, leaky, "TestManyGoroutines", "fail",
		"leaktest: TestManyGoroutines leaked 1000 goroutines:",
		"  1000 goroutines [chan receive], created by "+leaky+".TestManyGoroutines at ")
	expect(t, rs, leaky, "TestRecordInSession", "fail",
		"leaktest: TestRecordInSession leaked 2 records:",
		`1 record: session "worker", owner root, created by TestRecordInSession,`,
		`1 record: widget "from a goroutine", owner session `,
		leaky+".TestRecordInSession.func1\n")
	expect(t, rs, leaky, "TestNested", "fail", "created by "+leaky+".startWorker.func1 at ")
	expect(t, rs, leaky, "TestIgnoreCreatedBy", "pass")
	expect(t, rs, leaky, "TestIgnoreTopFunction", "pass")
	expect(t, rs, leaky, "TestFailedStillChecked", "fail", "failed on its own", "leaked 1 goroutine")
	expect(t, rs, leaky, "TestFailedSkipped", "fail", "failed on its own")
	if out := rs[[2]string{leaky, "TestFailedSkipped"}].output; strings.Contains(out, "leaktest:") {
		t.Errorf("SkipIfFailed checked a failed test:\n%s", out)
	}
}

func TestSubprocessVerifyTestMain(t *testing.T) {
	rs := runTestdata(t)
	for _, test := range []string{"TestLeaksUnverified", "TestJudgedLeak", "TestParallelFile/leaks_file", "TestParallelFile/clean"} {
		expect(t, rs, leakyMain, test, "pass")
	}
	want := []string{
		"PASS\nleaktest: the tests leaked 1 goroutine",
		"created by " + leakyMain + ".TestLeaksUnverified at ",
		", started in TestLeaksUnverified:\n",
		"FAIL\t" + leakyMain,
	}
	if descriptorsSupported {
		want = append(want, "1 goroutine, 1 descriptor:",
			"/tracker/leaktest/testdata/leakymain/leakymain_test.go\n",
			"not blamed on one test, as TestParallelFile/")
	}
	expect(t, rs, leakyMain, "", "fail", want...)
	if out := rs[[2]string{leakyMain, ""}].output; strings.Contains(out, "parkJudged") {
		t.Errorf("VerifyTestMain reported a goroutine its test's check ignored:\n%s", out)
	}
}

// TestVerifyTestMainUnderProfiles runs a clean package with the testing
// package's -cpuprofile and -trace, whose files it never closes: the run
// must pass. With a file left open on purpose, it must fail, naming that file
// and not the profiles.
func TestVerifyTestMainUnderProfiles(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go test in a subprocess")
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command:", err)
	}
	dir := t.TempDir()
	kept := filepath.Join(dir, "kept.txt")
	if err := os.WriteFile(kept, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		keep string
		fail bool
	}{
		{"clean", "", false},
		{"keeps-a-file", kept, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			out := filepath.Join(dir, c.name)
			cmd := exec.Command(goTool, "test", "-count=1",
				"-o", out+".test", "-cpuprofile", out+".cpu", "-trace", out+".trace",
				"./tracker/leaktest/testdata/cleanmain")
			cmd.Dir = filepath.Join("..", "..")
			cmd.Env = append(os.Environ(), "CLEANMAIN_KEEP="+c.keep)
			got, err := cmd.CombinedOutput()
			var exitErr *exec.ExitError
			if err != nil && !errors.As(err, &exitErr) {
				t.Fatal(err)
			}
			if failed := err != nil; failed != c.fail {
				t.Fatalf("failed = %v, want %v:\n%s", failed, c.fail, got)
			}
			if strings.Contains(string(got), out+".cpu") || strings.Contains(string(got), out+".trace") {
				t.Errorf("the profiles' descriptors were reported:\n%s", got)
			}
			if c.fail && !strings.Contains(string(got), "-> "+kept) {
				t.Errorf("the kept file is not reported:\n%s", got)
			}
			for _, ext := range []string{".cpu", ".trace"} {
				if st, err := os.Stat(out + ext); err != nil || st.Size() == 0 {
					t.Errorf("%s: %v, want a profile written", out+ext, err)
				}
			}
		})
	}
}
