package report

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// DefaultFormat is the format for people, used when none is asked for.
const DefaultFormat = "text"

// rendererFor returns the function that renders format, or false if there is
// none. A new format is one more case here and one file.
func rendererFor(format string) (func(io.Writer, *Report) error, bool) {
	switch format {
	case "text":
		return renderText, true
	case "json":
		return renderJSON, true
	}
	return nil, false
}

// Formats returns the names Render accepts, for help text and completion.
func Formats() []string { return []string{"text", "json"} }

// Render writes r to w in the named format (see Formats); "" means
// DefaultFormat.
func Render(w io.Writer, r *Report, format string) error {
	if format == "" {
		format = DefaultFormat
	}
	render, ok := rendererFor(format)
	if !ok {
		return fmt.Errorf("unknown report format %q (want %s)", format, strings.Join(Formats(), " or "))
	}
	if err := render(w, r); err != nil {
		return fmt.Errorf("rendering report as %s: %w", format, err)
	}
	return nil
}

// WriteFile renders r in format and writes it to the file name atomically: it
// writes a temporary file in the same directory, syncs it, and renames it over
// name, so a reader never sees half a report and a failed run leaves any
// previous file intact. The file's mode is 0644.
func WriteFile(name string, r *Report, format string) error {
	var buf bytes.Buffer
	if err := Render(&buf, r, format); err != nil {
		return err
	}
	dir, base := filepath.Split(name)
	if dir == "" {
		dir = "."
	}
	tmp, err := os.CreateTemp(dir, "."+base+".*.tmp")
	if err != nil {
		return fmt.Errorf("writing report to %s: %w", name, err)
	}
	defer os.Remove(tmp.Name()) // after a successful rename this fails harmlessly
	_, err = tmp.Write(buf.Bytes())
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp.Name(), 0o644)
	}
	if err == nil {
		err = os.Rename(tmp.Name(), name)
	}
	if err != nil {
		return fmt.Errorf("writing report to %s: %w", name, err)
	}
	return nil
}
