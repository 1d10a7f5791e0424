// Command heapgrow allocates in known places and writes its own heap
// profiles, for the tests of `leakcheck report` (cmd/report_e2e_test.go and
// report/heap_test.go).
//
// Every round of work it
//
//	stores an entry in a cache map              main.(*cache).put
//	marks 100 ids seen in a set (a map)         main.(*dedup).mark
//	appends a record to a journal slice         main.(*journal).add
//	opens a session object and keeps it         main.openSession
//	builds a reply buffer and drops it          main.reply
//
// With -mode leaky the cache, the set, the journal and the list of sessions
// only grow, and every session is a record in leakcheck's tracker, acquired
// with its stack, that is never released. With -mode steady the same code
// runs but the cache and the set are cleared at -bound entries (clear keeps
// a map's memory), the journal truncated and the oldest sessions closed
// (their tracker records released), so that the heap holds steady.
//
// With -out DIR it writes -profiles heap profiles into DIR, after -rounds
// rounds each and a garbage collection: heap-NN.pb.gz (the gzipped protocol
// buffer, debug=0) and, with -text, heap-NN.txt (the legacy text form,
// debug=1); with -tracker also the tracker's snapshot-NN.json and its
// profile of live records tracker-NN.pb.gz. It prints "written" when done.
//
// With -pprof ADDR it serves net/http/pprof and the tracker's handler (under
// /debug/leakcheck/) on ADDR, prints "listening on ADDR", and does a round
// of work every -tick until its standard input ends.
package main

import (
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	_ "net/http/pprof" // the endpoint `leakcheck report --every` polls
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"sync"
	"time"

	"github.com/leakcheck/leakcheck/tracker"
)

type entry struct {
	key   string
	value [512]byte
}

type cache struct{ m map[string]*entry }

func (c *cache) put(k string) {
	e := &entry{key: k}
	c.m[k] = e
}

type dedup struct{ seen map[uint64]struct{} }

func (d *dedup) mark(id uint64) {
	d.seen[id] = struct{}{}
}

type record struct {
	at   int64
	note [1016]byte
}

type journal struct{ recs []record }

func (j *journal) add(at int64) {
	j.recs = append(j.recs, record{at: at})
}

type session struct {
	id     int
	handle tracker.Handle
	state  [256]byte
}

//go:noinline
func openSession(id int, owner *tracker.Session) *session {
	return &session{id: id, handle: tracker.Track("client", owner, "client "+strconv.Itoa(id))}
}

var sink []byte

//go:noinline
func reply(n int) {
	sink = make([]byte, 2048+n%7)
}

// daemon is the state a round of work changes.
type daemon struct {
	mu       sync.Mutex
	steady   bool
	bound    int
	round    int
	cache    cache
	dedup    dedup
	journal  journal
	sessions []*session
	server   *tracker.Session
}

func (d *daemon) work() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.round++
	if d.steady && len(d.cache.m) >= d.bound {
		clear(d.cache.m) // keeps the map's memory: steady
	}
	d.cache.put("key-" + strconv.Itoa(d.round))
	if d.steady && len(d.dedup.seen) >= 100*d.bound {
		clear(d.dedup.seen)
	}
	for i := range 100 {
		d.dedup.mark(uint64(d.round*100 + i))
	}
	if d.steady && len(d.journal.recs) >= d.bound {
		d.journal.recs = d.journal.recs[:0]
	}
	d.journal.add(int64(d.round))
	d.sessions = append(d.sessions, openSession(d.round, d.server))
	if d.steady && len(d.sessions) > d.bound {
		old := d.sessions[0]
		old.handle.Release()
		d.sessions = append(d.sessions[:0], d.sessions[1:]...)
	}
	reply(d.round)
}

func (d *daemon) cacheLen() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.cache.m)
}

func main() {
	mode := flag.String("mode", "leaky", "leaky or steady")
	out := flag.String("out", "", "directory to write the profiles into")
	profiles := flag.Int("profiles", 3, "number of heap profiles to write into -out")
	rounds := flag.Int("rounds", 100, "rounds of work before each profile")
	text := flag.Bool("text", false, "also write each heap profile in the legacy text form")
	withTracker := flag.Bool("tracker", false, "also write the tracker's snapshot and profile")
	every := flag.Duration("every", 2*time.Millisecond, "pause between profiles, so each has its own time")
	pprofAddr := flag.String("pprof", "", "serve net/http/pprof on this loopback address and work every -tick")
	tick := flag.Duration("tick", 5*time.Millisecond, "time between rounds with -pprof")
	bound := flag.Int("bound", 64, "steady mode: entries at which the collections are reset")
	rate := flag.Int("rate", 1, "runtime.MemProfileRate: 1 records every allocation")
	initSize := flag.Int("init", 0, "build a table of this many bytes once, after the first profile, and keep it (see buildTable)")
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix("heapgrow: ")
	runtime.MemProfileRate = *rate

	if *mode != "leaky" && *mode != "steady" {
		log.Fatalf("unknown -mode %q: want leaky or steady", *mode)
	}
	d := &daemon{steady: *mode == "steady", bound: *bound, cache: cache{m: map[string]*entry{}}, dedup: dedup{seen: map[uint64]struct{}{}}}
	tracker.Default.SetStackMode(tracker.StacksAlways)
	d.server = tracker.StartSession("server", nil)
	tracker.AddGauge("cache", d.server, d.cacheLen)

	if *pprofAddr != "" {
		serve(d, *pprofAddr, *tick)
		return
	}
	if *out == "" {
		log.Fatal("want -out DIR or -pprof ADDR")
	}
	for n := 1; n <= *profiles; n++ {
		if n == 2 && *initSize > 0 {
			table = buildTable(*initSize)
		}
		for range *rounds {
			d.work()
		}
		runtime.GC()
		tracker.Default.SampleGauges()
		name := func(prefix, ext string) string {
			return filepath.Join(*out, fmt.Sprintf("%s-%02d%s", prefix, n, ext))
		}
		write(name("heap", ".pb.gz"), func(f *os.File) error { return pprof.Lookup("heap").WriteTo(f, 0) })
		if *text {
			write(name("heap", ".txt"), func(f *os.File) error { return pprof.Lookup("heap").WriteTo(f, 1) })
		}
		if *withTracker {
			if err := tracker.Default.WriteSnapshot(name("snapshot", ".json")); err != nil {
				log.Fatal(err)
			}
			write(name("tracker", ".pb.gz"), func(f *os.File) error { return tracker.Default.WriteProfile(f, "") })
		}
		time.Sleep(*every)
	}
	fmt.Println("written")
}

// write creates name and fills it with fn.
func write(name string, fn func(*os.File) error) {
	f, err := os.Create(name)
	if err != nil {
		log.Fatal(err)
	}
	if err := fn(f); err != nil {
		log.Fatalf("writing %s: %v", name, err)
	}
	if err := f.Close(); err != nil {
		log.Fatal(err)
	}
}

// serve works every tick and serves the debug endpoints until standard
// input ends.
func serve(d *daemon, addr string, tick time.Duration) {
	// Warm up before serving: after 2*bound rounds every bounded structure
	// of a steady daemon has filled and been flushed, so what a poller
	// sees from the first profile on is its steady state, not its start.
	for range 2 * d.bound {
		d.work()
	}
	// The tracker keeps the latest DefaultGaugePoints samples of each
	// gauge, in a slice that grows to that bound: fill it too.
	for range tracker.DefaultGaugePoints {
		tracker.Default.SampleGauges()
	}
	runtime.GC()
	l, err := net.Listen("tcp", addr)
	if err != nil {
		log.Fatal(err)
	}
	http.Handle("/debug/leakcheck/", tracker.Handler())
	go http.Serve(l, nil)
	fmt.Printf("listening on %s\n", l.Addr())

	done := make(chan struct{})
	go func() {
		io.Copy(io.Discard, os.Stdin)
		close(done)
	}()
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case <-t.C:
			d.work()
			tracker.Default.SampleGauges()
		}
	}
}

// table is built once (-init) and kept.
var table [][]byte

// buildTable makes a lookup table of size bytes in 1 KiB blocks. With
// -init the program builds it once, on the first round after the first
// profile, and keeps it: a one-time allocation, as a daemon makes on its
// first request, which is no leak. (It is at the end of the file so that
// the lines of the sites above, which tests name, stay where they are.)
//
//go:noinline
func buildTable(size int) [][]byte {
	t := make([][]byte, size/1024)
	for i := range t {
		t[i] = make([]byte, 1024)
	}
	return t
}
