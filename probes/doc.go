// Package probes samples the resources of a running process from the outside,
// so that leakcheck can tell a daemon that holds steady from one that leaks.
//
// There are two kinds of probe. [SampleProcess] reads /proc/<pid> (Linux only)
// and returns a [ProcSample]: every open descriptor with its target, every
// socket joined with the kernel's tables in /proc/<pid>/net (protocol, state,
// local and remote address), the thread count, the resident memory and all
// descendant processes, zombies included. [SampleGo] reads the net/http/pprof
// endpoints of a Go daemon and returns a [GoSample]: the goroutine count and
// profile, the heap in use and, when the daemon embeds leakcheck's tracker, the
// tracker's JSON snapshot.
//
// Each sample carries the time it was taken. Probes are meant to be called
// repeatedly, typically once a second, for as long as a daemon runs, so they
// do little besides the system calls: a sample of a process holding 10,000
// descriptors makes a handful of allocations, not one per descriptor. Those system calls are the cost: the
// kernel answers one readlink per descriptor, around a microsecond each, so a
// full sample of a process with tens of thousands of descriptors takes tens
// of milliseconds. [CountFDs] gives the descriptor count alone in a few
// system calls; a caller watching such a process can count every interval
// and take full samples less often. [Schedule] does that for a watch of one
// process: full samples within a share of a core, the baseline after a
// warm-up and a final pair, counting samples between, and the Go endpoints
// at every tick, handing each sample to the caller's functions.
//
// # Failures
//
// A probe never panics on what it reads. When the process is gone, before or
// during a sample, SampleProcess returns an error for which
// errors.Is(err, os.ErrNotExist) is true; a process that has exited but has
// not been reaped (a zombie) counts as gone. Items that vanish between two
// reads of /proc, such as a descriptor closed between listing the descriptor
// directory and reading its link, or a child that exits while the tree is
// walked, are skipped. A part of a sample that cannot be read for another
// reason (for example the descriptors of another user's process) is recorded
// in the sample's Gaps, and its series are left out of Metrics, so a trend
// sees a gap rather than a false zero.
//
// # Identity
//
// Counting is not enough to report a leak: the report has to say what leaked.
// [NewFDs] and [NewSockets] return what a later sample holds that an earlier
// one did not, by identity (descriptor number and object: the device and inode
// of a file, else its target; socket inode), and
// [SummarizeSockets] groups sockets into lines such as
// "14 tcp sockets to 127.0.0.1:6379 in CLOSE_WAIT".
//
// # Metric names
//
// [ProcSample.Metrics] flattens a sample into named series for trend tests:
//
//	fds                     open descriptors
//	fds.file                regular files and directories (also /dev/shm)
//	fds.socket              sockets
//	fds.pipe                pipes (a named FIFO, opened by its path, is a file)
//	fds.anon                anonymous inodes (eventfd, epoll, timerfd, pidfd...) and memfds
//	fds.dev                 device files under /dev
//	fds.other               anything else (namespaces, unknown kinds)
//	sockets                 distinct sockets (a socket shared by two descriptors counts once)
//	sockets.PROTO           sockets per protocol: tcp, tcp6, udp, udp6, unix, other
//	sockets.PROTO.STATE     sockets per protocol and state, only for states present,
//	                        e.g. sockets.tcp.ESTABLISHED, sockets.tcp6.CLOSE_WAIT,
//	                        sockets.udp.UNCONN, sockets.unix.CONNECTED
//	threads                 threads of the process
//	rss_bytes               resident set size (VmRSS)
//	rss_anon_bytes          resident anonymous memory (RssAnon)
//	hwm_bytes               peak resident set size (VmHWM)
//	children                descendant processes, zombies included
//	zombies                 descendant processes that are zombies
//
// The fds and sockets series other than sockets.PROTO.STATE are always
// present (zero when there is none), so that a kind which appears later does
// not start a new series mid-run.
//
// [GoSample.Metrics] gives:
//
//	goroutines              goroutines, from the goroutine profile
//	heap_inuse_bytes        heap in use, from the heap profile's inuse_space
//
// # Socket states
//
// TCP states are the kernel's names: ESTABLISHED, SYN_SENT, SYN_RECV,
// FIN_WAIT1, FIN_WAIT2, TIME_WAIT, CLOSE, CLOSE_WAIT, LAST_ACK, LISTEN,
// CLOSING, NEW_SYN_RECV, BOUND_INACTIVE. A UDP socket is UNCONN unless it is
// connected (ESTABLISHED). A unix socket is LISTEN, UNCONNECTED, CONNECTING,
// CONNECTED or DISCONNECTING. A socket whose family is not in the tables read
// (netlink, packet, raw...) has protocol "other" and no state.
package probes
