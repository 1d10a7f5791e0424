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
	"context"
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
	"ticker-never-stopped": func() {
		t := time.NewTicker(100 * time.Millisecond) // nobody keeps it to Stop it
		go leakTickerLoop(t.C)
	},
	"context-never-canceled": func() {
		ctx, cancel := context.WithCancel(context.Background())
		_ = cancel // dropped: the context is never canceled
		go leakContextWait(ctx)
	},
	"worker-pool-never-closed": func() {
		jobs := make(chan int, 2)
		for range 2 {
			go leakPoolWorker(jobs)
		}
		jobs <- 1
		jobs <- 2 // and no close(jobs)
	},
	"first-response-wins": func() {
		c := make(chan int)
		for i := range 3 {
			go leakReplica(c, i)
		}
		<-c // the first answer; the two others block forever
	},
	"mutex-lock-order": func() {
		var a, b sync.Mutex
		var held sync.WaitGroup
		held.Add(2)
		go leakLockPair(&a, &b, &held)
		go leakLockPair(&b, &a, &held)
	},
	"rwmutex-recursive-rlock": func() { var mu sync.RWMutex; go leakRecursiveRead(&mu) },
	"cond-lost-wakeup": func() {
		var mu sync.Mutex
		c := sync.NewCond(&mu)
		mu.Lock()
		c.Broadcast() // before anyone waits
		mu.Unlock()
		go leakCondNoCheck(c)
	},
	"select-nil-cases": func() { go leakSelectNil() },
	"buffered-channel-full": func() {
		c := make(chan int, 1)
		go leakFill(c)
	},
	"semaphore-never-released": func() {
		sem := make(chan struct{}, 1)
		sem <- struct{}{} // acquired, never released
		go leakAcquire(sem)
	},
	"once-recursive":     func() { go leakOnceRecursive() },
	"stopped-timer-wait": func() { t := time.NewTimer(time.Hour); t.Stop(); go leakTimerWait(t.C) },
	"waitgroup-wait-for-self": func() {
		var wg sync.WaitGroup
		wg.Add(1)
		go leakWaitSelf(&wg)
	},
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
func leakTickerLoop(c <-chan time.Time) {
	for range c {
	}
}
func leakContextWait(ctx context.Context) { <-ctx.Done() }
func leakPoolWorker(jobs chan int) {
	for range jobs {
	}
}
func leakReplica(c chan int, i int) { c <- i }

// leakLockPair locks first, waits until its partner holds the other lock,
// then locks second: the two lock in opposite orders and deadlock.
func leakLockPair(first, second *sync.Mutex, held *sync.WaitGroup) {
	first.Lock()
	held.Done()
	held.Wait()
	second.Lock()
}

// leakRecursiveRead takes a read lock twice while a writer waits between
// them: the writer waits for the first, the second waits for the writer.
func leakRecursiveRead(mu *sync.RWMutex) {
	mu.RLock()
	go leakPendingWriter(mu)
	time.Sleep(20 * time.Millisecond)
	mu.RLock()
}
func leakPendingWriter(mu *sync.RWMutex) { mu.Lock() }

// leakCondNoCheck waits without checking the condition, which became true
// before it came.
func leakCondNoCheck(c *sync.Cond) { c.L.Lock(); c.Wait() }
func leakSelectNil() {
	var a, b chan int
	select {
	case <-a:
	case b <- 1:
	}
}
func leakFill(c chan int) {
	for i := range 3 {
		c <- i
	}
}
func leakAcquire(sem chan struct{}) { sem <- struct{}{} }
func leakOnceRecursive() {
	var once sync.Once
	once.Do(func() { once.Do(func() {}) })
}
func leakTimerWait(c <-chan time.Time) { <-c }

// leakWaitSelf waits for a group that counts itself.
func leakWaitSelf(wg *sync.WaitGroup) { wg.Wait(); wg.Done() }

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
	"ctx-workers": func() {
		ctx, cancel := context.WithCancel(context.Background())
		keep = append(keep, cancel)
		go ctxWorker(ctx, jobs)
	},
	"short-lived-churn": func() { go shortTask() },
}

// rerun are the healthy patterns whose goroutines end: in series mode they
// run again every round, as a daemon's requests come and go.
var rerun = map[string]bool{"pipeline-drains": true, "short-lived-churn": true}

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

func ctxWorker(ctx context.Context, jobs chan int) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-jobs:
		}
	}
}

func shortTask() { time.Sleep(20 * time.Millisecond) }

// httpKeepAlive serves HTTP on loopback and holds n idle keep-alive client
// connections to it; it returns a function that sends n requests again over
// them.
func httpKeepAlive(count int) func() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })}
	go srv.Serve(ln)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: count}}
	keep = append(keep, srv, client)
	requests := func() {
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
	requests()
	return requests
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
	every := flag.Duration("every", 0, "series mode: every this long, start a leak pattern's goroutines again (a healthy one keeps its steady state) and write the profiles again, named FORM-UNIXNANO.prof")
	dumps := flag.Int("dumps", 16, "series mode: how many times to write the profiles")
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
	start := func() {}
	switch f, leak := leaks[*pattern]; {
	case leak:
		start = func() {
			for range *n {
				f()
			}
		}
	case healthy[*pattern] != nil:
		f := healthy[*pattern]
		start = func() {
			for range *n {
				f()
			}
		}
	case *pattern == "http-keepalive":
	default:
		log.Fatalf("unknown pattern %q (want one of -list)", *pattern)
	}
	// round is what the pattern does again each round in series mode.
	round := func() {}
	switch {
	case *pattern == "http-keepalive":
		round = httpKeepAlive(*n)
	case leaks[*pattern] != nil, rerun[*pattern]:
		start()
		round = start
	default:
		start()
	}
	if *every <= 0 {
		// Let every goroutine reach where it stays.
		time.Sleep(100 * time.Millisecond)
		runtime.GC()
		for _, form := range strings.Split(*forms, ",") {
			writeProfile(form, filepath.Join(*out, form+".prof"))
		}
		fmt.Println(len(keep), slices.Contains(keep, nil)) // keeps the healthy state reachable
		return
	}
	tick := time.NewTicker(*every)
	defer tick.Stop()
	for i := range *dumps {
		if i > 0 {
			<-tick.C
			round()
		}
		time.Sleep(100 * time.Millisecond)
		// A daemon that allocates collects often; the collection is also
		// what stamps a blocked goroutine with the time it began to wait.
		runtime.GC()
		for _, form := range strings.Split(*forms, ",") {
			writeProfile(form, filepath.Join(*out, fmt.Sprintf("%s-%d.prof", form, time.Now().UnixNano())))
		}
	}
	fmt.Println(len(keep), slices.Contains(keep, nil))
}

// writeProfile writes the profile form (a profile name and a debug level,
// as in goroutine2) to path.
func writeProfile(form, path string) {
	name, debug := form[:len(form)-1], int(form[len(form)-1]-'0')
	p := pprof.Lookup(name)
	if p == nil {
		log.Fatalf("no %s profile in this build", name)
	}
	f, err := os.Create(path)
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
