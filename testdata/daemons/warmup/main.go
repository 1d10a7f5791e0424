// Command warmup is a healthy daemon that takes its time to settle, for the
// steady-twin tests of cmd/warmup_e2e_test.go: a run over it must find
// nothing that fails the default gate. For its first -ramp it fills a cache
// to its bound (memory rises, then holds); -pool after start it opens a
// fixed pool of -conns keep-alive connections to its own HTTP server and
// keeps them, as a client of a few scrape targets does; and every tick it
// opens and closes a file and makes a request on its pool. It serves
// net/http/pprof on -pprof and runs until SIGTERM or SIGINT.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	_ "net/http/pprof" // the endpoint `leakcheck run --pprof` samples
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"
)

func main() {
	dir := flag.String("dir", os.TempDir(), "directory for the scratch file")
	pprofAddr := flag.String("pprof", "", "serve net/http/pprof on this loopback address")
	ramp := flag.Duration("ramp", 3*time.Second, "time the cache takes to fill")
	pool := flag.Duration("pool", 3*time.Second, "time after start when the connection pool opens")
	conns := flag.Int("conns", 4, "connections in the pool")
	tick := flag.Duration("tick", 50*time.Millisecond, "time between rounds of work")
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix("warmup: ")

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if *pprofAddr != "" {
		go http.ListenAndServe(*pprofAddr, nil)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	defer l.Close()
	go http.Serve(l, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "ok") }))
	url := "http://" + l.Addr().String()

	start := time.Now()
	cache := map[int][]byte{}
	const cacheSize = 2000
	var client *http.Client
	t := time.NewTicker(*tick)
	defer t.Stop()
	for n := 0; ; n++ {
		select {
		case <-ctx.Done():
			log.Printf("stopping after %d rounds, cache of %d", n, len(cache))
			return
		case <-t.C:
		}
		if since := time.Since(start); since < *ramp {
			for len(cache) < int(cacheSize*since / *ramp) {
				cache[len(cache)] = make([]byte, 4<<10)
			}
		} else {
			for len(cache) < cacheSize {
				cache[len(cache)] = make([]byte, 4<<10)
			}
		}
		if client == nil && time.Since(start) >= *pool {
			client = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: *conns, MaxConnsPerHost: *conns}}
			// Open the whole pool at once, and keep it.
			done := make(chan struct{}, *conns)
			for range *conns {
				go func() { get(client, url); done <- struct{}{} }()
			}
			for range *conns {
				<-done
			}
		}
		if client != nil {
			get(client, url)
		}
		scratch(*dir, n)
	}
}

func get(c *http.Client, url string) {
	resp, err := c.Get(url)
	if err != nil {
		log.Print(err)
		return
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
}

func scratch(dir string, n int) {
	f, err := os.Create(filepath.Join(dir, "warmup-scratch"))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Fprintln(f, n)
	f.Close()
}
