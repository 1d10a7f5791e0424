package cmd

import (
	"bytes"
	"runtime/debug"
	"strings"
	"testing"
)

func TestRunExitCodes(t *testing.T) {
	tests := []struct {
		args       []string
		wantCode   int
		wantOut    string
		wantStderr string
	}{
		{[]string{"version"}, 0, "leakcheck ", ""},
		{[]string{"version", "--short"}, 0, "", ""},
		{[]string{"--help"}, 0, "leakcheck finds", ""},
		{[]string{"completion", "bash"}, 0, "bash completion", ""},
		{[]string{"nosuch"}, 2, "", "unknown command"},
		{[]string{"version", "--bogus"}, 2, "", "unknown flag"},
		{[]string{"version", "extra"}, 2, "", "unknown command"},
		{[]string{"demo", "--leak", "nosuch"}, 2, "", `unknown leak "nosuch"`},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			var out, errOut bytes.Buffer
			code := Run(tt.args, &out, &errOut)
			if code != tt.wantCode {
				t.Fatalf("exit %d, want %d; stderr: %s", code, tt.wantCode, errOut.String())
			}
			if !strings.Contains(out.String(), tt.wantOut) || !strings.Contains(errOut.String(), tt.wantStderr) {
				t.Fatalf("stdout %q, stderr %q; want %q and %q", out.String(), errOut.String(), tt.wantOut, tt.wantStderr)
			}
		})
	}
}

func TestRunVersion(t *testing.T) {
	info := &debug.BuildInfo{
		GoVersion: "go1.26.8",
		Main:      debug.Module{Path: "github.com/leakcheck/leakcheck", Version: "v0.1.0"},
		Settings: []debug.BuildSetting{
			{Key: "vcs", Value: "git"},
			{Key: "vcs.revision", Value: "abc123"},
			{Key: "vcs.modified", Value: "true"},
		},
	}
	tests := []struct {
		name string
		opts versionOptions
		info *debug.BuildInfo
		want string
	}{
		{"full", versionOptions{}, info, "leakcheck v0.1.0\ngo:            go1.26.8\nvcs:           git\nvcs.revision:  abc123\nvcs.modified:  true\n"},
		{"short", versionOptions{short: true}, info, "v0.1.0\n"},
		{"no build info", versionOptions{}, nil, "leakcheck unknown\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := runVersion(tt.opts, tt.info, &buf); err != nil {
				t.Fatal(err)
			}
			if buf.String() != tt.want {
				t.Fatalf("got\n%s\nwant\n%s", buf.String(), tt.want)
			}
		})
	}
}
