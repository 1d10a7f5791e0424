package cmd

import (
	"bytes"
	"flag"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"
)

// cliDocsDir holds the CLI reference, one Markdown page per command,
// generated from the cobra commands by TestCLIDocs.
const cliDocsDir = "../docs/cli"

// The -update flag rewrites generated files. It is looked up rather than
// declared with a variable so that other test files of this package may
// declare it too without a clash.
func init() {
	if flag.Lookup("update") == nil {
		flag.Bool("update", false, "rewrite generated files (docs/cli) instead of comparing them")
	}
}

func updating() bool {
	f := flag.Lookup("update")
	return f != nil && f.Value.String() == "true"
}

// generateCLIDocs writes the reference of every visible command into dir, as
// users see the tree: with cobra's completion command, without timestamps.
func generateCLIDocs(dir string) error {
	root := NewRootCommand(io.Discard, io.Discard)
	root.InitDefaultCompletionCmd()
	var stable func(c *cobra.Command)
	stable = func(c *cobra.Command) {
		c.DisableAutoGenTag = true
		for _, sub := range c.Commands() {
			stable(sub)
		}
	}
	stable(root)
	return doc.GenMarkdownTree(root, dir)
}

// TestCLIDocs fails when docs/cli is stale: a command, flag or help text
// changed without regenerating it. Regenerate with
//
//	go test ./cmd -run CLIDocs -update
func TestCLIDocs(t *testing.T) {
	fresh := t.TempDir()
	if err := generateCLIDocs(fresh); err != nil {
		t.Fatal(err)
	}
	want := readMarkdown(t, fresh)
	if len(want) == 0 {
		t.Fatal("cobra generated no pages")
	}
	if updating() {
		if err := os.MkdirAll(cliDocsDir, 0o755); err != nil {
			t.Fatal(err)
		}
		for name := range readMarkdown(t, cliDocsDir) {
			if _, ok := want[name]; !ok {
				if err := os.Remove(filepath.Join(cliDocsDir, name)); err != nil {
					t.Fatal(err)
				}
			}
		}
		for name, data := range want {
			if err := os.WriteFile(filepath.Join(cliDocsDir, name), data, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		return
	}
	have := readMarkdown(t, cliDocsDir)
	var stale []string
	for name, data := range want {
		if old, ok := have[name]; !ok {
			stale = append(stale, name+" is missing")
		} else if !bytes.Equal(old, data) {
			stale = append(stale, name+" differs")
		}
	}
	for name := range have {
		if _, ok := want[name]; !ok {
			stale = append(stale, name+" documents no command")
		}
	}
	if len(stale) > 0 {
		slices.Sort(stale)
		t.Errorf("docs/cli is stale (regenerate: go test ./cmd -run CLIDocs -update):\n\t%s", strings.Join(stale, "\n\t"))
	}
}

// readMarkdown returns the .md files of dir by name; a missing dir has none.
func readMarkdown(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{}
	for _, e := range entries {
		if e.IsDir() || filepath.Ext(e.Name()) != ".md" {
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		files[e.Name()] = data
	}
	return files
}
