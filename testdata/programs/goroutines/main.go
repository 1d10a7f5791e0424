// Command goroutines parks goroutines in known states and writes its own
// goroutine profile in every form, for the parser tests of package report
// (report/goroutines_test.go).
//
// It starts, each in a function of its own so that the tests can find them:
//
//	recvForever   5 goroutines blocked on a channel receive nobody sends to
//	selectForever 4 goroutines in a select with no timer and no ready case
//	lockForever   3 goroutines waiting for a mutex that main holds
//	waitForever   2 goroutines waiting on a WaitGroup that is never done
//	sleepLong     6 goroutines sleeping for an hour
//	labeled       2 goroutines blocked on a receive, with pprof labels
//	lockedThread  1 goroutine locked to its OS thread, blocked on a receive
//	recurse       1 goroutine blocked on a receive 150 calls deep
//
// The channels and the WaitGroup are reachable only from the goroutines
// blocked on them, so the runtime's leak detector (the goroutineleak profile)
// reports those 15 goroutines as leaked; the mutex is held and reachable from
// main, and sleepers are not blocked on anything, so those are not leaks.
//
// With -out DIR it writes the profiles named by -forms into DIR, then, with
// -series N, N more profiles at -every intervals, starting one more leaked
// goroutine (leakOne) before each and a varying number of short-lived ones
// (churn) that end before the next. It prints "written" on stdout when done
// and runs until its standard input ends; send it SIGQUIT with
// GOTRACEBACK=all for a crash dump of the same goroutines on stderr.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strings"
	"sync"
	"time"
)

func main() {
	out := flag.String("out", "", "directory to write the profiles into")
	forms := flag.String("forms", "goroutine0,goroutine1,goroutine2", "comma-separated PROFILE+DEBUG forms to write, e.g. goroutine2 or goroutineleak0")
	series := flag.Int("series", 0, "number of growing profiles to write after the forms")
	every := flag.Duration("every", 20*time.Millisecond, "time between the series' profiles")
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix("goroutines: ")

	var mu sync.Mutex
	mu.Lock() // held until exit: lockForever waits for it

	before := runtime.NumGoroutine()
	for range 5 {
		go recvForever(make(chan int))
	}
	for range 4 {
		go selectForever(make(chan int), make(chan string))
	}
	for range 3 {
		go lockForever(&mu)
	}
	wg := new(sync.WaitGroup)
	wg.Add(1)
	for range 2 {
		go waitForever(wg)
	}
	wg = nil // only the waiters hold it now
	for range 6 {
		go sleepLong()
	}
	ctx := context.Background()
	pprof.Do(ctx, pprof.Labels("worker", "labeled", "tenant", `a "quoted" tenant`), func(ctx context.Context) {
		for range 2 {
			go labeled(make(chan int))
		}
	})
	go lockedThread(make(chan int))
	go recurse(150, make(chan int))
	parked := before + 5 + 4 + 3 + 2 + 6 + 2 + 1 + 1
	settle(parked)

	if *out != "" {
		for _, form := range strings.Split(*forms, ",") {
			if form == "" {
				continue
			}
			if err := write(*out, form+".prof", form); err != nil {
				log.Fatal(err)
			}
		}
		var churn []chan struct{}
		var churning sync.WaitGroup
		for i := range *series {
			if i > 0 {
				time.Sleep(*every)
			}
			for _, c := range churn {
				close(c)
			}
			churning.Wait()
			churn = churn[:0]
			for range (i % 3) * 2 {
				c := make(chan struct{})
				churn = append(churn, c)
				churning.Go(func() { churnOne(c) })
			}
			go leakOne(make(chan int))
			settle(parked + i + 1 + len(churn))
			if err := write(*out, fmt.Sprintf("series-%02d.prof", i), "goroutine0"); err != nil {
				log.Fatal(err)
			}
		}
	}
	fmt.Println("written")

	// Run until stdin ends; the mutex stays held and reachable meanwhile.
	io.Copy(io.Discard, bufio.NewReader(os.Stdin))
	mu.Unlock()
}

// write writes the profile form ("goroutine2": the goroutine profile at
// debug=2) to dir/name.
func write(dir, name, form string) error {
	i := strings.LastIndexAny(form, "0123456789")
	if i < 0 {
		return fmt.Errorf("form %q: want a profile name and a debug level, e.g. goroutine1", form)
	}
	prof, debug := form[:i], int(form[i]-'0')
	p := pprof.Lookup(prof)
	if p == nil {
		return fmt.Errorf("form %q: no profile %q in this build (the goroutineleak profile needs GOEXPERIMENT=goroutineleakprofile)", form, prof)
	}
	f, err := os.Create(filepath.Join(dir, name))
	if err != nil {
		return err
	}
	if err := p.WriteTo(f, debug); err != nil {
		f.Close()
		return fmt.Errorf("writing %s: %w", form, err)
	}
	return f.Close()
}

// settle waits until n goroutines exist and every one but the caller has
// parked in the call it blocks in: none is runnable or running, as a dump of
// all stacks shows.
func settle(n int) {
	deadline := time.Now().Add(10 * time.Second)
	buf := make([]byte, 1<<20)
	for {
		all := string(buf[:runtime.Stack(buf, true)])
		if runtime.NumGoroutine() == n && strings.Count(all, " [running") == 1 && !strings.Contains(all, " [runnable") {
			return
		}
		if time.Now().After(deadline) {
			log.Fatalf("%d goroutines of %d started and parked in time:\n%s", runtime.NumGoroutine(), n, all)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func recvForever(c chan int) { <-c }

func selectForever(a chan int, b chan string) {
	select {
	case <-a:
	case b <- "never":
	}
}

func lockForever(mu *sync.Mutex) {
	mu.Lock()
	mu.Unlock()
}

func waitForever(wg *sync.WaitGroup) { wg.Wait() }

func sleepLong() { time.Sleep(time.Hour) }

func labeled(c chan int) { <-c }

func lockedThread(c chan int) {
	runtime.LockOSThread()
	<-c
}

// recurse calls itself depth times before blocking, deeper than the 100
// frames a traceback prints in full.
//
//go:noinline
func recurse(depth int, c chan int) int {
	if depth == 0 {
		return <-c
	}
	return recurse(depth-1, c) + 1
}

func leakOne(c chan int) { <-c }

func churnOne(c chan struct{}) { <-c }
