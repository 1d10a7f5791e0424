package report

import (
	"slices"
	"strings"

	"github.com/leakcheck/leakcheck/probes"
	"github.com/leakcheck/leakcheck/tracker"
)

// descriptorJoins returns the owner joins (see ownerJoins) of the
// descriptors and sockets cur has open that base did not, by the subject of
// the leftover group each falls in (see leftoverGroups), as far as the
// tracker snapshots name them: their live records label sockets by their
// addresses and files by their paths, with the sessions that own them. So
// sockets seen in CLOSE_WAIT from outside join the finding of the session
// that holds them. The series that count descriptors (fds.file,
// sockets.udp) are there too, by name, with the owners that all the
// tracked descriptors they count share.
func descriptorJoins(base, cur *probes.ProcSample, snaps ...*tracker.Snapshot) map[string][]string {
	owners := map[string][]string{} // address pair, address or path: joins
	for _, s := range snaps {
		if s == nil {
			continue
		}
		for _, r := range s.Records {
			if r.State != tracker.Live || r.Kind == tracker.KindSession {
				continue
			}
			joins := ownerJoins(r.Owner, r.Ancestors)
			if len(joins) == 0 {
				continue
			}
			for _, name := range labelNames(r.Label) {
				owners[name] = append(owners[name], joins...)
			}
		}
	}
	if len(owners) == 0 || base == nil || cur == nil {
		return nil
	}
	out := map[string][]string{}
	// A series (fds.file, sockets.udp) joins the owners that every tracked
	// descriptor it counts shares, when most of them are tracked: the
	// total of every descriptor joins none when two parts leak.
	type count struct {
		tracked, untracked int
		joins              []string // shared by every tracked one so far
	}
	series := map[string]*count{}
	note := func(joins []string, names ...string) {
		for _, name := range names {
			c := series[name]
			if c == nil {
				c = &count{}
				series[name] = c
			}
			switch {
			case len(joins) == 0:
				c.untracked++
			case c.tracked == 0:
				c.tracked, c.joins = 1, slices.Clone(joins)
			default:
				c.tracked++
				c.joins = slices.DeleteFunc(c.joins, func(j string) bool { return !slices.Contains(joins, j) })
			}
		}
	}
	for _, s := range probes.NewSockets(base, cur) {
		name := s.Local
		if s.Remote != "" {
			name += " -> " + s.Remote
		}
		joins := owners[name]
		note(joins, "fds", "fds.socket", "sockets", "sockets."+s.Proto, "sockets."+s.Proto+"."+s.State)
		if len(joins) == 0 {
			continue
		}
		for _, g := range probes.SummarizeSockets([]probes.Socket{s}, cur.Sockets) {
			subject := socketSubject(g)
			out[subject] = append(out[subject], joins...)
		}
	}
	for _, fd := range probes.NewFDs(base, cur) {
		if fd.Type == "socket" {
			continue
		}
		joins := owners[fd.Target]
		note(joins, "fds", "fds."+fd.Type)
		if len(joins) > 0 {
			subject := "fd " + fd.Type + " " + Pattern(fd.Target)
			out[subject] = append(out[subject], joins...)
		}
	}
	for name, c := range series {
		if c.tracked > 0 && c.tracked >= c.untracked && len(c.joins) > 0 {
			out[name] = c.joins
		}
	}
	for k, v := range out {
		slices.Sort(v)
		out[k] = slices.Compact(v)
	}
	return out
}

// labelNames returns what a record's label may name a descriptor by: the
// label itself (a file's path), and, for the "PROTO LOCAL -> REMOTE" and
// "PROTO LOCAL" labels of sockets and listeners, "LOCAL -> REMOTE" or
// "LOCAL".
func labelNames(label string) []string {
	names := []string{label}
	w := strings.Fields(label)
	switch {
	case len(w) == 4 && w[2] == "->":
		names = append(names, w[1]+" -> "+w[3])
	case len(w) == 2:
		names = append(names, w[1])
	}
	return names
}

// joinOwners adds to each finding the joins its subject has in joins.
func joinOwners(fs []Finding, joins map[string][]string) {
	for i := range fs {
		if j := joins[fs[i].Subject]; len(j) > 0 {
			fs[i].joins = append(slices.Clip(fs[i].joins), j...)
		}
	}
}
