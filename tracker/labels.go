package tracker

import (
	"context"
	"runtime/pprof"
	"strconv"
	"strings"
)

// SessionLabel is the pprof label that names the session a goroutine runs
// for: the session's id, then its ancestors' (see Record.Ancestors),
// separated by spaces. Goroutine profiles carry it, so a report can say
// whose goroutines pile up and join them with what else that session leaks.
const SessionLabel = "leakcheck.session"

// LabelGoroutine labels the calling goroutine as running for s (see
// SessionLabel), replacing the labels it inherited. Registry.Go does it for
// the goroutines it starts; a runtime built on the tracker calls it first
// thing in the goroutines it starts for a session. A nil s or the root does
// nothing.
func (s *Session) LabelGoroutine() {
	if s == nil || s == s.reg.root {
		return
	}
	ids := append([]uint64{s.rec.id}, s.ancestors()...)
	parts := make([]string, len(ids))
	for i, id := range ids {
		parts[i] = strconv.FormatUint(id, 10)
	}
	pprof.SetGoroutineLabels(pprof.WithLabels(context.Background(), pprof.Labels(SessionLabel, strings.Join(parts, " "))))
}

// ParseSessionLabel reads the value of a SessionLabel: the session's id and
// its ancestors' ids.
func ParseSessionLabel(v string) (id uint64, ancestors []uint64, ok bool) {
	for i, f := range strings.Fields(v) {
		n, err := strconv.ParseUint(f, 10, 64)
		if err != nil {
			return 0, nil, false
		}
		if i == 0 {
			id = n
		} else {
			ancestors = append(ancestors, n)
		}
	}
	return id, ancestors, id != 0
}
