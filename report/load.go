package report

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/leakcheck/leakcheck/probes/bounded"
)

// LoadOptions configures Load.
type LoadOptions struct {
	// Input bounds each read.
	Input InputOptions
	// Heap says how heap and tracker profiles are summarized as they are
	// read (SampleIndex and Top).
	Heap HeapOptions
	// Base, when set, is read first, once: the input the others are
	// compared with.
	Base string
	// Every, when positive, polls each URL Count times, Every apart.
	Every time.Duration
	Count int
	// Save, when set, is a directory that keeps every polled input as it
	// was received.
	Save string
	// Progress, when set, is told after each round of polls.
	Progress func(round, rounds int)
	// Log, when set, receives a line for each failed poll.
	Log io.Writer
}

// Load reads the named inputs (files, URLs, "-" for standard input, and
// directories, which stand for the files in them) and, with Every, polls
// the URLs. Each input's Source groups those of one process: the files are
// one source, each polled URL another. Heap and tracker profiles are
// summarized as they come, so that a long series costs little more than one
// profile. The notes say which polls failed; a URL that never answered is
// an error.
func Load(ctx context.Context, names []string, opts LoadOptions) ([]*Input, []string, error) {
	names, err := expandDirs(names)
	if err != nil {
		return nil, nil, err
	}
	if opts.Base != "" {
		names = append([]string{opts.Base}, names...)
	}
	sites := NewSiteTable(opts.Heap)
	var (
		out      []*Input
		urls     []string
		profiles int
	)
	for _, name := range names {
		if opts.Every > 0 && isURL(name) {
			if name == opts.Base {
				return nil, nil, fmt.Errorf("base %s: a base is read once; give a file, or poll without a base", name)
			}
			urls = append(urls, name)
			continue
		}
		// A profile read is garbage once summarized, but for its values
		// by site: in a series of three or more, collect each before the
		// next is read and before the analysis, so that the heap's goal
		// is set by what is kept and a series peaks at one profile's
		// parse, not two. (A base and a target are not worth it.)
		if profiles == 2 {
			runtime.GC()
		}
		in, err := ReadInput(ctx, name, opts.Input)
		if err == nil && (in.Kind == InputHeap || in.Kind == InputTrackerProfile) {
			err = in.Summarize(sites)
			if profiles++; profiles >= 3 {
				runtime.GC()
			}
		}
		if err != nil {
			return nil, nil, err
		}
		out = append(out, in)
	}
	if len(urls) == 0 {
		if opts.Every > 0 {
			return nil, nil, errors.New("polling needs URLs, and no input is an http(s) URL")
		}
		return out, nil, nil
	}
	if opts.Save != "" {
		if err := os.MkdirAll(opts.Save, 0o755); err != nil {
			return nil, nil, fmt.Errorf("keeping polled inputs: %w", err)
		}
	}
	polled, notes, err := poll(ctx, urls, opts, sites)
	if err != nil {
		return nil, nil, err
	}
	return append(out, polled...), notes, nil
}

// expandDirs replaces each directory among names by the files in it (not
// below it), in name order, leaving out hidden files: a directory of saved
// polls, or anyone's directory of dumps.
func expandDirs(names []string) ([]string, error) {
	var out []string
	for _, name := range names {
		fi, err := os.Stat(name)
		if isURL(name) || name == "-" || err != nil || !fi.IsDir() {
			out = append(out, name) // reading it says what is wrong
			continue
		}
		ents, err := os.ReadDir(name)
		if err != nil {
			return nil, err
		}
		n := len(out)
		for _, e := range ents {
			if e.Type().IsRegular() && !strings.HasPrefix(e.Name(), ".") {
				out = append(out, filepath.Join(name, e.Name()))
			}
		}
		if len(out) == n {
			return nil, fmt.Errorf("%s: a directory with no file to read", name)
		}
	}
	return out, nil
}

// poll fetches every URL Count times, Every apart, until ctx ends. A failed
// fetch is logged and skipped; a URL that never answered is an error.
func poll(ctx context.Context, urls []string, opts LoadOptions, sites *SiteTable) ([]*Input, []string, error) {
	in := opts.Input
	in.Client = &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
	in.KeepRaw = opts.Save != ""
	defer in.Client.CloseIdleConnections()
	var (
		out    []*Input
		failed = map[string]int{}
		got    = map[string]int{}
		errs   = map[string]error{}
	)
	tick := time.NewTicker(opts.Every)
	defer tick.Stop()
polls:
	for i := 1; i <= opts.Count; i++ {
		for _, u := range urls {
			polled, err := ReadInput(ctx, u, in)
			if ctx.Err() != nil {
				break polls
			}
			if err != nil {
				failed[u]++
				errs[u] = err
				if opts.Log != nil {
					fmt.Fprintf(opts.Log, "leakcheck: poll %d of %d: %v\n", i, opts.Count, err)
				}
				continue
			}
			got[u]++
			polled.Name, polled.Source = fmt.Sprintf("%s [%d]", u, i), u
			if opts.Save != "" {
				name, err := saveInput(opts.Save, u, i, polled)
				if err != nil {
					return nil, nil, err
				}
				polled.Name, polled.Raw = name, nil
			}
			if err := polled.Summarize(sites); err != nil {
				return nil, nil, err
			}
			out = append(out, polled)
		}
		if opts.Progress != nil {
			opts.Progress(i, opts.Count)
		}
		if i == opts.Count {
			break
		}
		select {
		case <-ctx.Done():
			break polls
		case <-tick.C:
		}
	}
	var notes []string
	for _, u := range urls {
		if got[u] == 0 {
			if err := errs[u]; err != nil {
				return nil, nil, fmt.Errorf("no poll of %s succeeded: %w", u, err)
			}
			return nil, nil, fmt.Errorf("%s was not polled: interrupted", u)
		}
		if n := failed[u]; n > 0 {
			notes = append(notes, fmt.Sprintf("%d of %d polls of %s failed (last: %v)", n, n+got[u], u, errs[u]))
		}
	}
	return out, notes, nil
}

// saveInput writes a polled input into dir as it was received, named after
// the URL's last path element, the poll's number and the content:
// "heap-003.pb.gz", "goroutine-003.txt", "snapshot.json-003.json".
func saveInput(dir, rawURL string, n int, in *Input) (string, error) {
	base := "profile"
	if u, err := url.Parse(rawURL); err == nil && path.Base(u.Path) != "/" && path.Base(u.Path) != "." {
		base = path.Base(u.Path)
	}
	base = strings.Map(func(r rune) rune {
		if r == '/' || r == '\\' || r < ' ' {
			return '_'
		}
		return r
	}, base)
	ext := ".txt"
	switch {
	case bounded.IsGzip(in.Raw):
		ext = ".pb.gz"
	case in.Snapshot != nil || in.Report != nil:
		ext = ".json"
	case in.Profile != nil || in.Goroutines != nil && in.Goroutines.Form == "proto":
		ext = ".pb"
	}
	name := filepath.Join(dir, fmt.Sprintf("%s-%03d%s", base, n, ext))
	if err := os.WriteFile(name, in.Raw, 0o644); err != nil {
		return "", fmt.Errorf("keeping a polled input: %w", err)
	}
	// The saved file keeps the time the profile was taken, so that a later
	// report of the directory orders files without a time of their own
	// (legacy text, goroutine dumps) as they were polled.
	os.Chtimes(name, in.Time, in.Time)
	return name, nil
}
