// Command goroutines-corpus runs one goroutine pattern, leaking or healthy,
// chosen by -pattern, and writes goroutine profiles of itself into -out: one
// program for the whole corpus, so that a test builds it once.
//
// Leaked goroutines run a function whose name begins with "leak"; no healthy
// goroutine does. That is the ground truth the accuracy test scores against.
// Build with GOEXPERIMENT=goroutineleakprofile (Go 1.26) to get the
// goroutineleak profile too.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"
)

// n is how many goroutines each pattern leaks or keeps.
var n = flag.Int("n", 5, "goroutines per pattern")

// Live state that healthy goroutines wait on: reachable all along.
var (
	jobs    = make(chan int)
	live    sync.Mutex
	liveCnd = sync.NewCond(&live)
	keep    []any
)

// The leak patterns, each started n times (or once, for those that start n
// goroutines themselves).
var leaks = map[string]func(){
	"send-no-receiver":    func() { c := make(chan int); go leakSend(c) },
	"recv-no-sender":      func() { c := make(chan int); go leakRecv(c) },
	"select-no-ready":     func() { a, b := make(chan int), make(chan int); go leakSelect(a, b) },
	"nil-chan-recv":       func() { go leakNilRecv() },
	"nil-chan-send":       func() { go leakNilSend() },
	"empty-select":        func() { go leakEmptySelect() },
	"mutex-never-unlock":  func() { var mu sync.Mutex; mu.Lock(); go leakLock(&mu) },
	"rwmutex-writer-held": func() { var mu sync.RWMutex; mu.Lock(); go leakRLock(&mu) },
	"rwmutex-reader-held": func() { var mu sync.RWMutex; mu.RLock(); go leakWLock(&mu) },
	"cond-never-signaled": func() { var mu sync.Mutex; c := sync.NewCond(&mu); go leakCondWait(c) },
	"waitgroup-missing-done": func() {
		var wg sync.WaitGroup
		wg.Add(1)
		go leakWGWait(&wg)
	},
	"double-send": func() {
		c := make(chan int)
		go leakDoubleSend(c)
		<-c
	},
	"early-return": func() { _ = earlyReturn() },
	"timeout-abandons-sender": func() {
		c := make(chan int)
		go leakSlowSender(c)
		select {
		case <-c:
		case <-time.After(time.Millisecond):
		}
	},
	"fan-in-missing-close": func() {
		out := make(chan int)
		go leakFanIn(out)
		out <- 1
	},
	"producer-consumer-early-exit": func() {
		c := make(chan int)
		go leakProducer(c)
		<-c // the consumer takes one and leaves
	},
	"loop-of-receivers": func() {
		for range 3 {
			c := make(chan int)
			go leakLoopRecv(c)
		}
	},
	"unbuffered-result-ignored": func() {
		res := make(chan error)
		go leakWorkerResult(res)
	},
	"select-send-no-receiver": func() {
		a, b := make(chan int), make(chan int)
		go leakSelectSend(a, b)
	},
	"mutex-lock-twice": func() { go leakLockTwice() },
}

func leakSend(c chan int) { c <- 1 }
func leakRecv(c chan int) { <-c }
func leakSelect(a, b chan int) {
	select {
	case <-a:
	case <-b:
	}
}
func leakNilRecv()                  { var c chan int; <-c }
func leakNilSend()                  { var c chan int; c <- 1 }
func leakEmptySelect()              { select {} }
func leakLock(mu *sync.Mutex)       { mu.Lock() }
func leakRLock(mu *sync.RWMutex)    { mu.RLock() }
func leakWLock(mu *sync.RWMutex)    { mu.Lock() }
func leakCondWait(c *sync.Cond)     { c.L.Lock(); c.Wait() }
func leakWGWait(wg *sync.WaitGroup) { wg.Wait() }
func leakDoubleSend(c chan int)     { c <- 1; c <- 2 }
func leakSlowSender(c chan int)     { time.Sleep(5 * time.Millisecond); c <- 1 }
func leakFanIn(in chan int) {
	for range in {
	}
}
func leakProducer(c chan int) {
	for i := 0; ; i++ {
		c <- i
	}
}
func leakLoopRecv(c chan int)         { <-c }
func leakWorkerResult(res chan error) { res <- errors.New("done") }
func leakSelectSend(a, b chan int) {
	select {
	case a <- 1:
	case b <- 1:
	}
}
func leakLockTwice() { var mu sync.Mutex; mu.Lock(); mu.Lock() }

// earlyReturn starts a worker and returns on an error before reading its
// result.
func earlyReturn() error {
	c := make(chan int)
	go leakEarlyWorker(c)
	if true {
		return errors.New("failed early")
	}
	return fmt.Errorf("%d", <-c)
}

func leakEarlyWorker(c chan int) { c <- 1 }

// The healthy patterns: goroutines that live on purpose.
var healthy = map[string]func(){
	"idle-pool":   func() { go worker(jobs) },
	"busy-pool":   func() { go busyWorker() },
	"ticker-loop": func() { t := time.NewTicker(time.Hour); keep = append(keep, t); go tickerLoop(t) },
	"signal-loop": func() {
		c := make(chan os.Signal, 1)
		signal.Notify(c, syscall.SIGHUP)
		keep = append(keep, c)
		go signalLoop(c)
	},
	"cond-waiters": func() { go condWaiter() },
	"pipeline-drains": func() {
		c := make(chan int)
		done := make(chan struct{})
		go produce(c)
		go func() { defer close(done); consume(c) }()
		<-done
	},
	"service-loop": func() { stop := make(chan struct{}); keep = append(keep, stop); go serviceLoop(stop) },
	"sql-style-pool": func() {
		conns := make(chan int, 4)
		keep = append(keep, conns)
		go connOpener(conns)
	},
	"timer-wait": func() { go sleeper() },
}

func worker(c chan int) {
	for range c {
	}
}

func busyWorker() {
	for {
		time.Sleep(time.Millisecond)
	}
}

func tickerLoop(t *time.Ticker) {
	for range t.C {
	}
}

func signalLoop(c chan os.Signal) {
	for range c {
	}
}

func condWaiter() {
	live.Lock()
	for {
		liveCnd.Wait()
	}
}

func produce(c chan int) {
	for i := range 10 {
		c <- i
	}
	close(c)
}

func consume(c chan int) {
	for range c {
	}
}

func serviceLoop(stop chan struct{}) { <-stop }

func connOpener(conns chan int) {
	for i := 0; ; i++ {
		conns <- i
	}
}

func sleeper() { time.Sleep(time.Hour) }

// httpKeepAlive serves HTTP on loopback and holds n idle keep-alive client
// connections to it.
func httpKeepAlive(count int) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })}
	go srv.Serve(ln)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: count}}
	keep = append(keep, srv, client)
	var wg sync.WaitGroup
	for range count {
		wg.Go(func() {
			resp, err := client.Get("http://" + ln.Addr().String())
			if err != nil {
				log.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		})
	}
	wg.Wait()
}

func names(m map[string]func()) []string {
	var s []string
	for k := range m {
		s = append(s, k)
	}
	sort.Strings(s)
	return s
}

func main() {
	pattern := flag.String("pattern", "", "the pattern to run; -list lists them")
	list := flag.Bool("list", false, "print the leak and healthy patterns, one a line, as leak:NAME or ok:NAME")
	out := flag.String("out", "", "directory to write the profiles into")
	forms := flag.String("forms", "goroutine0,goroutine1,goroutine2", "profiles to write, PROFILE+DEBUG")
	flag.Parse()
	if *list {
		for _, name := range names(leaks) {
			fmt.Println("leak:" + name)
		}
		for _, name := range append(names(healthy), "http-keepalive") {
			fmt.Println("ok:" + name)
		}
		return
	}
	switch f, leak := leaks[*pattern]; {
	case leak:
		for range *n {
			f()
		}
	case healthy[*pattern] != nil:
		for range *n {
			healthy[*pattern]()
		}
	case *pattern == "http-keepalive":
		httpKeepAlive(*n)
	default:
		log.Fatalf("unknown pattern %q (want one of -list)", *pattern)
	}
	// Let every goroutine reach where it stays.
	time.Sleep(100 * time.Millisecond)
	runtime.GC()
	for _, form := range strings.Split(*forms, ",") {
		name, debug := form[:len(form)-1], int(form[len(form)-1]-'0')
		p := pprof.Lookup(name)
		if p == nil {
			log.Fatalf("no %s profile in this build", name)
		}
		f, err := os.Create(filepath.Join(*out, form+".prof"))
		if err != nil {
			log.Fatal(err)
		}
		if err := p.WriteTo(f, debug); err != nil {
			log.Fatal(err)
		}
		if err := f.Close(); err != nil {
			log.Fatal(err)
		}
	}
	fmt.Println(len(keep), slices.Contains(keep, nil)) // keeps the healthy state reachable
}
