// Command leaky is a daemon that leaks on purpose, for the end-to-end tests of
// `leakcheck run` in cmd/run_e2e_test.go. Every tick it opens a file and keeps it
// open, makes a loopback TCP connection to its own listener whose client side
// closes while the accepted side never does (CLOSE_WAIT), starts a goroutine
// that blocks forever, and adds an entry to a map. It serves net/http/pprof on
// -pprof, prints "listening on ADDR" for its own listener, and runs until
// SIGTERM or SIGINT. With -after it starts leaking late, with -max it stops
// after so many rounds and holds what it leaked, and with -signals it records
// the signals it receives.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	_ "net/http/pprof" // the endpoint `leakcheck run --pprof` samples
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"time"
)

func main() {
	dir := flag.String("dir", "", "directory for the leaked files (default: a new temporary directory)")
	pprofAddr := flag.String("pprof", "", "serve net/http/pprof on this loopback address, e.g. 127.0.0.1:6060")
	tick := flag.Duration("tick", 20*time.Millisecond, "time between leaks")
	after := flag.Duration("after", 0, "start leaking after this long")
	most := flag.Int("max", -1, "stop leaking after this many rounds, and hold what leaked (-1: never stop)")
	signals := flag.String("signals", "", "append the name of each signal received to this file")
	listen := flag.String("listen", "127.0.0.1:0", "address to accept connections on (\":0\": every address); its clients dial it on loopback")
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix("leaky: ")

	if *signals != "" {
		recordSignals(*signals)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()

	if *dir == "" {
		d, err := os.MkdirTemp("", "leaky-")
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

	l, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("listening on %s\n", l.Addr())
	loopback := net.JoinHostPort("127.0.0.1", strconv.Itoa(l.Addr().(*net.TCPAddr).Port))
	var mu sync.Mutex
	var accepted []net.Conn // never closed: each ends in CLOSE_WAIT
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			accepted = append(accepted, c)
			mu.Unlock()
		}
	}()

	var files []*os.File // never closed, and kept reachable so no finalizer closes them
	tasks := map[int][]byte{}
	block := make(chan struct{}) // never closed
	select {
	case <-ctx.Done():
	case <-time.After(*after):
	}
	t := time.NewTicker(*tick)
	defer t.Stop()
	for n := 0; ; n++ {
		if n == *most {
			log.Printf("holding %d files", n)
			t.Stop()
		}
		select {
		case <-ctx.Done():
			mu.Lock()
			log.Printf("stopping with %d files, %d accepted connections, %d tasks", len(files), len(accepted), len(tasks))
			mu.Unlock()
			runtime.KeepAlive(files)
			return
		case <-t.C:
		}
		f, err := os.Create(filepath.Join(*dir, fmt.Sprintf("leak-%d.log", n)))
		if err != nil {
			log.Fatal(err)
		}
		files = append(files, f)
		c, err := net.Dial("tcp", loopback)
		if err != nil {
			log.Fatal(err)
		}
		c.Close()
		go func() { <-block }()
		tasks[n] = make([]byte, 512)
	}
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
