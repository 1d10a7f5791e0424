// Command steady is a busy daemon that leaks nothing, for the end-to-end tests
// of `leakcheck run` in cmd/run_e2e_test.go: a run over it must find no leftover
// and no growth. Every tick it opens, writes and closes a file, makes a
// loopback TCP connection to its own listener and closes both ends, and hands
// work to a fixed pool of goroutines that fill a cache which is flushed when it
// reaches -cache entries (a saw-tooth, not growth). It serves net/http/pprof on
// -pprof and runs until SIGTERM or SIGINT.
//
// The descriptors a round opens live for some microseconds, all in one
// goroutine, and the pause between rounds is jittered so that rounds do not
// fall in step with a sampler's ticks: a sample rarely catches one, and a test
// that finds one in the final sample knows it for a race with the churn, not a
// leak. The garbage collector runs at a low GOGC, and every -release the
// daemon returns its free memory to the kernel, so that within a run of a few
// seconds its resident set does not creep up as a young Go process's does
// while the runtime's heap and caches settle.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"math/rand/v2"
	"net"
	"net/http"
	_ "net/http/pprof" // the endpoint `leakcheck run --pprof` samples
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"sync"
	"syscall"
	"time"
)

func main() {
	dir := flag.String("dir", "", "directory for the scratch file (default: a new temporary directory)")
	pprofAddr := flag.String("pprof", "", "serve net/http/pprof on this loopback address, e.g. 127.0.0.1:6060")
	tick := flag.Duration("tick", 20*time.Millisecond, "mean time between rounds of work")
	workers := flag.Int("workers", 4, "size of the goroutine pool")
	cacheSize := flag.Int("cache", 100, "entries at which the cache is flushed")
	release := flag.Duration("release", 250*time.Millisecond, "time between returns of free memory to the kernel (0: never)")
	signals := flag.String("signals", "", "append the name of each signal received to this file")
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix("steady: ")
	debug.SetGCPercent(25)

	if *signals != "" {
		recordSignals(*signals)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()

	if *dir == "" {
		d, err := os.MkdirTemp("", "steady-")
		if err != nil {
			log.Fatal(err)
		}
		defer os.RemoveAll(d)
		*dir = d
	}
	if *pprofAddr != "" {
		l, err := net.Listen("tcp", *pprofAddr)
		if err != nil {
			log.Fatal(err)
		}
		go http.Serve(l, nil)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	defer l.Close()

	var mu sync.Mutex
	cache := make(map[int]int, *cacheSize)
	flushes := 0
	jobs := make(chan int)
	var wg sync.WaitGroup
	for range *workers {
		wg.Go(func() {
			for n := range jobs {
				mu.Lock()
				if len(cache) >= *cacheSize {
					clear(cache) // keeps the buckets: the flush allocates nothing
					flushes++
				}
				cache[n] = n * n
				mu.Unlock()
			}
		})
	}

	scratch := filepath.Join(*dir, "scratch.log")
	msg := []byte("steady\n")
	t := time.NewTimer(*tick)
	defer t.Stop()
	released := time.Now()
	for n := 0; ; n++ {
		select {
		case <-ctx.Done():
			close(jobs)
			wg.Wait()
			log.Printf("stopping after %d rounds, %d cache flushes", n, flushes)
			return
		case <-t.C:
		}
		t.Reset(*tick/2 + rand.N(*tick)) // jitter: mean *tick
		if err := os.WriteFile(scratch, msg, 0o644); err != nil {
			log.Fatal(err)
		}
		if err := roundTrip(l, msg); err != nil {
			log.Fatal(err)
		}
		for i := range 10 {
			jobs <- n*10 + i
		}
		if *release > 0 && time.Since(released) >= *release {
			debug.FreeOSMemory()
			released = time.Now()
		}
	}
}

// roundTrip connects to l, accepts the connection, sends msg across and
// closes both ends. The connection is queued by the kernel when Dial returns,
// so Accept does not wait.
func roundTrip(l net.Listener, msg []byte) error {
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		return err
	}
	defer c.Close()
	s, err := l.Accept()
	if err != nil {
		return err
	}
	defer s.Close()
	if _, err := c.Write(msg); err != nil {
		return err
	}
	buf := make([]byte, len(msg))
	_, err = s.Read(buf)
	return err
}

// recordSignals appends the name of every signal in watched that the
// process receives to path, at once: a test that must not signal the daemon
// reads it.
func recordSignals(path string) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		log.Fatal(err)
	}
	c := make(chan os.Signal, 16)
	signal.Notify(c, watched...)
	go func() {
		for sig := range c {
			fmt.Fprintln(f, sig)
		}
	}()
}

// watched are the signals recordSignals records.
var watched = []os.Signal{syscall.SIGHUP, syscall.SIGINT, syscall.SIGQUIT, syscall.SIGTERM, syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGCONT, syscall.SIGALRM}
