package cmd

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// writeSeries writes every sampled series to f: CSV (time, series, value)
// when the --series file ends in .csv, JSON otherwise.
func (w *watch) writeSeries(f io.Writer) error {
	series := w.rec.Series()
	if strings.ToLower(filepath.Ext(w.opts.series)) != ".csv" {
		enc := json.NewEncoder(f)
		enc.SetIndent("", "  ")
		return enc.Encode(series)
	}
	cw := csv.NewWriter(f)
	cw.Write([]string{"time", "series", "value"})
	for _, s := range series {
		for _, p := range s.Points {
			cw.Write([]string{p.Time.UTC().Format(time.RFC3339Nano), s.Name, strconv.FormatFloat(p.Value, 'f', -1, 64)})
		}
	}
	cw.Flush()
	return cw.Error()
}

// statusLine shows progress on stderr when stderr is a terminal, and nothing
// otherwise.
type statusLine struct {
	w     io.Writer
	shown bool
}

func newStatusLine(w io.Writer) *statusLine {
	f, ok := w.(*os.File)
	if !ok {
		return &statusLine{}
	}
	if fi, err := f.Stat(); err != nil || fi.Mode()&os.ModeCharDevice == 0 {
		return &statusLine{}
	}
	return &statusLine{w: w}
}

func (s *statusLine) update(w *watch) {
	if s.w == nil || w.last == nil {
		return
	}
	last := w.last
	line := fmt.Sprintf("leakcheck: %s  %d samples  %d fds  rss %.1f MiB",
		time.Since(w.start).Round(time.Second), w.rec.Samples(), last.NumFDs, float64(last.RSS)/(1<<20))
	if w.goNow > 0 {
		line += fmt.Sprintf("  %d goroutines", w.goNow)
	}
	if base := w.rec.Baseline(); base != nil {
		if d := last.NumFDs - base.NumFDs; d > 0 {
			line += fmt.Sprintf("  fds +%d since baseline", d)
		}
	}
	fmt.Fprintf(s.w, "\r\x1b[K%s", line)
	s.shown = true
}

func (s *statusLine) clear() {
	if s.shown {
		fmt.Fprint(s.w, "\r\x1b[K")
	}
}
