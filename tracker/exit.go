package tracker

import (
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
)

// SnapshotEnv names the environment variable through which `leakcheck run` asks a
// daemon for its exit report: the path to write the final snapshot to, or
// "stderr" for a plain-text summary on standard error.
const SnapshotEnv = "LEAKCHECK_REPORT"

// WriteExitSnapshot writes the final snapshot where LEAKCHECK_REPORT says, and
// does nothing when it is unset. Call it last in main, after stopping
// sessions, or install ExitOnSignals.
func (r *Registry) WriteExitSnapshot() error {
	switch path := os.Getenv(SnapshotEnv); path {
	case "":
		return nil
	case "stderr":
		r.WriteText(os.Stderr)
		return nil
	default:
		return r.WriteSnapshot(path)
	}
}

// WriteSnapshot writes the snapshot as JSON to path atomically: to a temporary
// file in the same directory, then renamed, so a reader never sees half a
// report.
func (r *Registry) WriteSnapshot(path string) error {
	data, err := json.MarshalIndent(r.Snapshot(), "", "  ")
	if err != nil {
		return fmt.Errorf("tracker: encoding the snapshot: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("tracker: writing the snapshot: %w", err)
	}
	_, err = tmp.Write(append(data, '\n'))
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("tracker: writing the snapshot to %s: %w", path, err)
	}
	return nil
}

// ExitOnSignals is the opt-in automatic exit hook: when one of sigs arrives,
// it writes the exit snapshot (see WriteExitSnapshot), restores the signal's
// default action and sends the signal again, so the process ends as it would
// have without the hook. The returned function uninstalls the hook.
func (r *Registry) ExitOnSignals(sigs ...os.Signal) (stop func()) {
	c := make(chan os.Signal, 1)
	done := make(chan struct{})
	signal.Notify(c, sigs...)
	go func() {
		select {
		case sig := <-c:
			if err := r.WriteExitSnapshot(); err != nil {
				fmt.Fprintln(os.Stderr, err)
			}
			signal.Reset(sig)
			if p, err := os.FindProcess(os.Getpid()); err == nil {
				p.Signal(sig)
			}
		case <-done:
		}
	}()
	return func() {
		signal.Stop(c)
		select {
		case <-done:
		default:
			close(done)
		}
	}
}
