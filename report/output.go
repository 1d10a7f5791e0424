package report

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// CheckOutput returns an error when path, an output file, cannot be written,
// so that a run fails before it starts rather than lose its report at the
// end. An empty path is stdout.
func CheckOutput(path string) error {
	if path == "" {
		return nil
	}
	target, _, direct, err := outputTarget(path)
	switch {
	case err != nil:
		return err
	case direct:
		if err := syscall.Access(target, 2 /* W_OK */); err != nil {
			return fmt.Errorf("output %s: cannot write to it: %w", path, err)
		}
		return nil
	}
	f, err := os.CreateTemp(filepath.Dir(target), ".leakcheck-*")
	if err != nil {
		return fmt.Errorf("output %s: cannot create files in its directory: %w", path, err)
	}
	f.Close()
	return os.Remove(f.Name())
}

// outputTarget resolves path, following symbolic links, to the file an
// output replaces, and returns that file's info (nil when it does not exist
// yet); or, when direct is set, returns path itself, to be written straight
// into: a device or FIFO, or /dev/stdout and the like.
func outputTarget(path string) (target string, fi os.FileInfo, direct bool, err error) {
	fi, err = os.Stat(path)
	switch {
	case err == nil && (!fi.Mode().IsRegular() || strings.HasPrefix(path, "/dev/") || strings.HasPrefix(path, "/proc/")):
		return path, fi, true, nil
	case err == nil:
		target, err = filepath.EvalSymlinks(path)
		return target, fi, false, err
	case !errors.Is(err, os.ErrNotExist):
		return "", nil, false, fmt.Errorf("output %s: %w", path, err)
	}
	// A new file, or a symbolic link to one: create the link's target.
	for range 40 {
		link, err := os.Readlink(path)
		if err != nil {
			return path, nil, false, nil
		}
		if !filepath.IsAbs(link) {
			link = filepath.Join(filepath.Dir(path), link)
		}
		path = link
	}
	return "", nil, false, fmt.Errorf("output %s: too many levels of symbolic links", path)
}

// WriteOutput writes the output path with write. A regular file (or a new
// one) is replaced atomically, keeping its mode: written to a temporary file
// beside it, then renamed over it, so that a failed run leaves the old one
// whole. Anything else (a device, a FIFO) is written straight into.
func WriteOutput(path string, write func(io.Writer) error) error {
	target, fi, direct, err := outputTarget(path)
	if err != nil {
		return err
	}
	if direct {
		f, err := os.OpenFile(target, os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			return err
		}
		err = write(f)
		return errors.Join(err, f.Close())
	}
	mode := os.FileMode(0o644)
	if fi != nil {
		mode = fi.Mode().Perm()
	}
	f, err := os.CreateTemp(filepath.Dir(target), "."+filepath.Base(target)+".*")
	if err != nil {
		return err
	}
	err = errors.Join(write(f), f.Chmod(mode), f.Close())
	if err == nil {
		err = os.Rename(f.Name(), target)
	}
	if err != nil {
		os.Remove(f.Name())
	}
	return err
}
