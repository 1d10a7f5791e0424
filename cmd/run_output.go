package cmd

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"
)

// statusLine shows progress on stderr when stderr is a terminal, and nothing
// otherwise: one line, cut to the terminal's width so that it never wraps
// (a wrapped line cannot be redrawn in place), redrawn in place. When the
// watched command shares the terminal (run), the line is erased again after
// a moment, so that the command's output rarely lands on it.
type statusLine struct {
	mu    sync.Mutex
	w     io.Writer
	fd    int
	shown bool
	show  time.Duration // how long the line stays; 0: until the next one
	hide  *time.Timer
}

func newStatusLine(w io.Writer) *statusLine {
	f, ok := w.(*os.File)
	if !ok {
		return &statusLine{}
	}
	if fi, err := f.Stat(); err != nil || fi.Mode()&os.ModeCharDevice == 0 {
		return &statusLine{}
	}
	return &statusLine{w: w, fd: int(f.Fd())}
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
	s.print(line)
}

// print shows line, cut to the terminal's width, in place of the last.
func (s *statusLine) print(line string) {
	if s.w == nil {
		return
	}
	width := terminalWidth(s.fd)
	if width <= 0 {
		width = 80
	}
	line = line[:min(len(line), width-1)] // ASCII: bytes are columns
	s.mu.Lock()
	defer s.mu.Unlock()
	fmt.Fprintf(s.w, "\r\x1b[K%s", line)
	s.shown = true
	if s.show > 0 {
		if s.hide == nil {
			s.hide = time.AfterFunc(s.show, s.clear)
		} else {
			s.hide.Reset(s.show)
		}
	}
}

// clear erases the line, if shown.
func (s *statusLine) clear() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.shown {
		fmt.Fprint(s.w, "\r\x1b[K")
		s.shown = false
	}
}

// stop erases the line for good.
func (s *statusLine) stop() {
	if s.hide != nil {
		s.hide.Stop()
	}
	s.clear()
}
