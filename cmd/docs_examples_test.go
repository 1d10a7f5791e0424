package cmd

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The example commands in README.md and docs/*.md are run by
// TestDocExamples, so they cannot rot. A fenced ```sh block is runnable when
// the line before its fence is a marker:
//
//	<!-- test: exit=3 timeout=30s creates=report.html slow -->
//
// Items, all optional:
//
//	exit=N         the status the block must end with (default 0)
//	timeout=D      how long it may take (default 60s)
//	creates=F,...  files the block must leave behind, not empty
//	dir=module     run in the module's root instead of the document's directory
//	slow           skip under go test -short
//
// The block runs as one `sh -e` script. The blocks of one document run in
// order in one temporary directory, so a block may use what an earlier one
// wrote. That directory starts with what a reader who followed the guide has:
// `leakcheck` on the PATH, and the test daemons of testdata/daemons built as
// ./leaky and ./steady.

// docExample is one runnable block.
type docExample struct {
	doc     string // the document, relative to the module root
	line    int    // the line of the opening fence
	script  string
	exit    int
	timeout time.Duration
	creates []string
	module  bool
	slow    bool
}

var markerRE = regexp.MustCompile(`^<!--\s*test:(.*?)-->\s*$`)

// parseExamples returns the runnable blocks of a Markdown document. A marker
// that is not followed by a ```sh block, or has an item it does not know, is
// an error: the example would silently go untested.
func parseExamples(doc string, data []byte) ([]docExample, error) {
	var out []docExample
	sc := bufio.NewScanner(bytes.NewReader(data))
	n := 0
	var pending *docExample
	var script *strings.Builder
	for sc.Scan() {
		n++
		line := sc.Text()
		switch {
		case script != nil: // inside a runnable block
			if strings.TrimSpace(line) == "```" {
				pending.script = script.String()
				out = append(out, *pending)
				pending, script = nil, nil
				continue
			}
			script.WriteString(line + "\n")
		case pending != nil: // after a marker: the fence must follow
			if strings.TrimSpace(line) != "```sh" {
				return nil, fmt.Errorf("%s:%d: a test marker must be followed by a ```sh block, not %q", doc, n, line)
			}
			pending.line = n
			script = &strings.Builder{}
		default:
			m := markerRE.FindStringSubmatch(line)
			if m == nil {
				continue
			}
			ex := docExample{doc: doc, timeout: 60 * time.Second}
			for item := range strings.FieldsSeq(m[1]) {
				key, value, _ := strings.Cut(item, "=")
				var err error
				switch key {
				case "exit":
					ex.exit, err = strconv.Atoi(value)
				case "timeout":
					ex.timeout, err = time.ParseDuration(value)
				case "creates":
					ex.creates = strings.Split(value, ",")
				case "dir":
					if value != "module" {
						err = fmt.Errorf("want dir=module")
					}
					ex.module = true
				case "slow":
					ex.slow = true
				default:
					err = fmt.Errorf("unknown item")
				}
				if err != nil {
					return nil, fmt.Errorf("%s:%d: test marker item %q: %v", doc, n, item, err)
				}
			}
			pending = &ex
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", doc, err)
	}
	if pending != nil {
		return nil, fmt.Errorf("%s:%d: unterminated runnable block", doc, pending.line)
	}
	return out, nil
}

func TestParseExamples(t *testing.T) {
	tests := []struct {
		in      string
		want    []docExample
		wantErr string
	}{
		{"text\n```sh\nnot marked\n```\n", nil, ""},
		{"<!-- test: -->\n```sh\necho hi\n```\n", []docExample{{doc: "d", line: 2, script: "echo hi\n", timeout: time.Minute}}, ""},
		{"<!-- test: exit=3 timeout=5s creates=a,b dir=module slow -->\n```sh\nx\ny\n```\n",
			[]docExample{{doc: "d", line: 2, script: "x\ny\n", exit: 3, timeout: 5 * time.Second, creates: []string{"a", "b"}, module: true, slow: true}}, ""},
		{"<!-- test: exit=x -->\n```sh\n```\n", nil, `d:1: test marker item "exit=x"`},
		{"<!-- test: fast -->\n```sh\n```\n", nil, `"fast": unknown item`},
		{"<!-- test: -->\n\n```sh\n```\n", nil, "d:2: a test marker must be followed by a ```sh block"},
		{"<!-- test: -->\n```go\n```\n", nil, "must be followed by a ```sh block"},
		{"<!-- test: -->\n```sh\necho\n", nil, "unterminated"},
	}
	for _, tt := range tests {
		got, err := parseExamples("d", []byte(tt.in))
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("parse %q: error %v, want %q", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil || fmt.Sprint(got) != fmt.Sprint(tt.want) {
			t.Errorf("parse %q = %+v, %v; want %+v", tt.in, got, err, tt.want)
		}
	}
}

// docsWithExamples returns README.md and docs/*.md (not the generated
// docs/cli), relative to the module root.
func docsWithExamples(t *testing.T) []string {
	t.Helper()
	docs, err := filepath.Glob("../docs/*.md")
	if err != nil {
		t.Fatal(err)
	}
	out := []string{"README.md"}
	for _, d := range docs {
		out = append(out, strings.TrimPrefix(d, "../"))
	}
	return out
}

func TestDocExamples(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the examples run leakcheck run, which samples /proc: Linux only")
	}
	var all []docExample
	for _, doc := range docsWithExamples(t) {
		data, err := os.ReadFile(filepath.Join("..", doc))
		if err != nil {
			t.Fatal(err)
		}
		examples, err := parseExamples(doc, data)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, examples...)
	}
	if len(all) == 0 {
		t.Fatal("no runnable examples in the docs")
	}
	bin := buildE2E(t, t.TempDir())
	module, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	dirs := map[string]string{} // document -> its working directory
	for _, ex := range all {
		if _, ok := dirs[ex.doc]; !ok {
			dirs[ex.doc] = newExampleDir(t, bin)
		}
	}
	for _, ex := range all {
		name := fmt.Sprintf("%s:%d", ex.doc, ex.line)
		t.Run(name, func(t *testing.T) {
			if ex.slow && testing.Short() {
				t.Skip("slow example; skipped under -short")
			}
			runDir := dirs[ex.doc]
			if ex.module {
				runDir = module
			}
			code, out := runExample(t, ex, runDir, filepath.Dir(bin.leakcheck))
			if code != ex.exit {
				t.Fatalf("exit status %d, want %d; script:\n%s\noutput:\n%s", code, ex.exit, ex.script, out)
			}
			for _, f := range ex.creates {
				if fi, err := os.Stat(filepath.Join(runDir, f)); err != nil || fi.Size() == 0 {
					t.Errorf("the example did not create %s: %v\noutput:\n%s", f, err, out)
				}
			}
		})
	}
}

// newExampleDir makes a working directory for one document's examples, with
// the test daemons in it.
func newExampleDir(t *testing.T, bin e2eBinaries) string {
	t.Helper()
	dir := t.TempDir()
	for _, src := range []string{bin.leaky, bin.steady} {
		if err := os.Symlink(src, filepath.Join(dir, filepath.Base(src))); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// runExample runs ex's script with sh in dir, leakcheck's directory first on
// the PATH, and returns its exit status and output. When it overruns its
// timeout, its whole process group is killed.
func runExample(t *testing.T, ex docExample, dir, binDir string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), ex.timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "sh", "-ec", ex.script)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "PATH="+binDir+string(os.PathListSeparator)+os.Getenv("PATH"))
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err := cmd.Run()
	t.Logf("ran in %v", time.Since(start).Round(time.Millisecond))
	if ctx.Err() != nil {
		t.Fatalf("the example took longer than %v; output:\n%s", ex.timeout, out.String())
	}
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode(), out.String()
		}
		t.Fatalf("running the example: %v", err)
	}
	return 0, out.String()
}
