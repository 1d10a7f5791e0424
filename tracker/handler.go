package tracker

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime/debug"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// Handler serves the registry under any prefix it is mounted at, for example
//
//	mux.Handle("/debug/leakcheck/", tracker.Default.Handler())
//
// PREFIX/ is a plain-text summary, PREFIX/snapshot.json the snapshot as JSON,
// and PREFIX/profile/KIND the live records of KIND (or "all") as a gzipped
// pprof profile. PREFIX/heapdump is a heap dump of the process only when the
// registry was made WithHeapDumps(true): a dump holds every byte of the
// heap, secrets included.
func (r *Registry) Handler() http.Handler {
	return http.HandlerFunc(r.serveHTTP)
}

func (r *Registry) serveHTTP(w http.ResponseWriter, req *http.Request) {
	path := req.URL.Path
	switch {
	case strings.HasSuffix(path, "/snapshot.json"):
		// Encoded whole before the first byte is sent, so that a failure
		// can still be an error status; a client that goes away mid-body
		// is nobody's to tell.
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetIndent("", "  ")
		if err := enc.Encode(r.Snapshot()); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(buf.Bytes())
	case strings.Contains(path, "/profile/"):
		name := path[strings.LastIndex(path, "/profile/")+len("/profile/"):]
		kind := Kind(name)
		if name == "all" {
			kind = ""
		}
		var buf bytes.Buffer
		if err := r.WriteProfile(&buf, kind); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", profileName(kind)+".pb.gz"))
		w.Write(buf.Bytes())
	case strings.HasSuffix(path, "/heapdump"):
		r.serveHeapDump(w)
	case strings.HasSuffix(path, "/"):
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		r.WriteText(w)
	default:
		http.NotFound(w, req)
	}
}

// WriteText writes a plain-text table of live records by kind and the oldest
// records with their owners, as people read it in a browser or terminal.
func (r *Registry) WriteText(w io.Writer) {
	s := r.Snapshot()
	byKind := map[Kind]int{}
	for _, rec := range s.Records {
		byKind[rec.Kind]++
	}
	kinds := make([]Kind, 0, len(byKind))
	for k := range byKind {
		kinds = append(kinds, k)
	}
	slices.Sort(kinds)

	fmt.Fprintf(w, "leakcheck tracker: %d live records, %d misuse, stacks %s\n\n", len(s.Records), s.MisuseTotal, s.Stacks)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KIND\tLIVE\tPROFILE")
	for _, k := range kinds {
		fmt.Fprintf(tw, "%s\t%d\tprofile/%s\n", k, byKind[k], k)
	}
	tw.Flush()

	const maxRows = 50
	fmt.Fprintf(w, "\nOldest records (up to %d):\n", maxRows)
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tKIND\tLABEL\tOWNER\tAGE\tACQUIRED AT")
	for i, rec := range s.Records {
		if i == maxRows {
			break
		}
		owner := fmt.Sprintf("%s #%d", rec.OwnerLabel, rec.Owner)
		if rec.OwnerStopped {
			owner += " (stopped)"
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", rec.ID, rec.Kind, rec.Label, owner, rec.Age.Round(time.Millisecond), firstUserFrame(rec.Stack))
	}
	tw.Flush()
	for _, m := range s.Misuse {
		fmt.Fprintf(w, "misuse: %s of %s %q at %s\n", m.Kind, m.Record.Kind, m.Record.Label, firstUserFrame(m.Stack))
	}
	writeFindingsText(w, s) // unreleased, retained, cycles, gauges (checks.go)
}

// firstUserFrame returns the first frame outside the runtime and the tracker's
// own wrappers, as "func (file:line)".
func firstUserFrame(frames []Frame) string {
	for _, f := range frames {
		if strings.HasPrefix(f.Func, "runtime.") ||
			strings.HasPrefix(f.Func, "github.com/leakcheck/leakcheck/tracker.") && !strings.HasSuffix(f.File, "_test.go") {
			continue
		}
		return fmt.Sprintf("%s (%s:%d)", f.Func, shortFile(f.File), f.Line)
	}
	return "-"
}

func shortFile(file string) string {
	if i := strings.LastIndex(file, "/"); i >= 0 {
		return file[i+1:]
	}
	return file
}

// serveHeapDump writes a heap dump to a temporary file, which
// runtime/debug.WriteHeapDump needs (it writes to a descriptor), sends it
// and removes it. Off unless WithHeapDumps turned it on.
func (r *Registry) serveHeapDump(w http.ResponseWriter) {
	if !r.checks.heapDumps.Load() {
		http.Error(w, "heap dumps are off: a dump holds every byte of the heap, secrets included; "+
			"the program enables them with tracker.WithHeapDumps(true)", http.StatusForbidden)
		return
	}
	f, err := os.CreateTemp("", "leakcheck-*.heapdump")
	if err != nil {
		http.Error(w, fmt.Sprintf("heap dump: %v", err), http.StatusInternalServerError)
		return
	}
	defer os.Remove(f.Name())
	defer f.Close()
	debug.WriteHeapDump(f.Fd())
	fi, err := f.Stat()
	if err == nil {
		_, err = f.Seek(0, io.SeekStart)
	}
	if err != nil {
		http.Error(w, fmt.Sprintf("heap dump: %v", err), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", fmt.Sprint(fi.Size()))
	w.Header().Set("Content-Disposition", `attachment; filename="heap.dump"`)
	io.Copy(w, f)
}
