// Command verdicts holds goroutines in the shapes whose verdicts the report
// package's goroutine analysis must get right, and writes goroutine profiles
// of itself:
//
//   - pool: a healthy worker pool of -workers goroutines idle on a job
//     channel, a signal loop and a ticker loop: no leak;
//   - mix: -workers goroutines idle on a channel the program keeps, and as
//     many with the same stack on channels nobody can reach any more, which
//     the goroutineleak profile marks leaked;
//   - forever: goroutines blocked on a nil channel and in an empty select.
//
// -forms lists the profiles to write into -out as PROFILE+DEBUG, e.g.
// goroutine0 or goroutineleak2; goroutineleak needs
// GOEXPERIMENT=goroutineleakprofile at build time on Go 1.26. With -serve
// ADDR it serves net/http/pprof there instead, until SIGTERM or SIGINT.
package main

import (
	"flag"
	"fmt"
	"log"
	"net/http"
	_ "net/http/pprof" // for -serve
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"
)

// jobs is the live pool's channel: reachable for the program's whole life.
var jobs = make(chan int)

// worker waits for jobs on c until it is closed.
func worker(c chan int) {
	for range c {
	}
}

func signalLoop(c chan os.Signal) {
	for range c {
	}
}

func tickerLoop(t *time.Ticker) {
	for range t.C {
	}
}

func nilReceive() {
	var c chan int
	<-c
}

func emptySelect() { select {} }

func main() {
	mode := flag.String("mode", "pool", "pool, mix or forever")
	workers := flag.Int("workers", 200, "goroutines per group")
	out := flag.String("out", "", "directory to write the profiles into")
	forms := flag.String("forms", "goroutine0,goroutine1,goroutine2", "profiles to write, PROFILE+DEBUG")
	serve := flag.String("serve", "", "serve net/http/pprof on this loopback address until SIGTERM, instead of writing profiles")
	flag.Parse()

	started := 0
	switch *mode {
	case "pool":
		for range *workers {
			go worker(jobs)
		}
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGHUP)
		go signalLoop(sig)
		go tickerLoop(time.NewTicker(time.Hour))
		started = *workers + 2
	case "mix":
		for range *workers {
			go worker(jobs)
		}
		for range *workers {
			go worker(make(chan int)) // nobody else holds the channel
		}
		started = 2 * *workers
	case "forever":
		for range 3 {
			go nilReceive()
			go emptySelect()
		}
		started = 6
	default:
		log.Fatalf("unknown mode %q", *mode)
	}
	// Wait until every goroutine has parked.
	for deadline := time.Now().Add(10 * time.Second); runtime.NumGoroutine() < started+1 && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond)
	if *serve != "" {
		go http.ListenAndServe(*serve, nil)
		stop := make(chan os.Signal, 1)
		signal.Notify(stop, syscall.SIGTERM, os.Interrupt)
		<-stop
		fmt.Println(len(jobs))
		return
	}
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
	fmt.Println(len(jobs)) // keeps jobs reachable to the end
}
