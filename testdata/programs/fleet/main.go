// Command fleet is a daemon of a fleet for the tests of leakcheck's
// Prometheus analysis (report/fleet): it serves client_golang's default
// collectors (go_*, process_*) on /metrics, prints "listening on ADDR", and
// behaves as -mode says until it is killed or its standard input ends:
//
//	steady      opens and closes a file, starts short goroutines, tracks a
//	            task and releases it: flat
//	churn       a pool of goroutines that fills to 40 and drains, over and over
//	fds         leaks -rate descriptors a second (pipes never closed)
//	goroutines  leaks -rate goroutines a second (parked forever)
//	tracked     tracks -rate records a second in leakcheck's tracker, under a
//	            session, and never releases them; the tracker is exported
//	            with tracker/prommetrics, descriptors and goroutines stay flat
//	restart     supervises a child in -mode fds and kills and restarts it
//	            every -restart-every on the same listening socket: a leak
//	            that restarts hide, a rising saw-tooth
//
// -max-fds lowers the soft limit of descriptors, so the time to exhaustion
// the analysis projects is minutes, not years.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/leakcheck/leakcheck/tracker"
	"github.com/leakcheck/leakcheck/tracker/prommetrics"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "address to serve /metrics on")
	mode := flag.String("mode", "steady", "steady, churn, fds, goroutines or restart")
	rate := flag.Int("rate", 10, "leaks a second in modes fds and goroutines")
	maxFDs := flag.Uint64("max-fds", 2048, "soft limit of open descriptors; 0 keeps it")
	restartEvery := flag.Duration("restart-every", 16*time.Second, "mode restart: the child's lifetime")
	child := flag.Bool("child", false, "internal: serve on the listener passed as descriptor 3")
	flag.Parse()

	if *maxFDs > 0 {
		var lim syscall.Rlimit
		if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
			log.Fatalf("getrlimit: %v", err)
		}
		lim.Cur = min(*maxFDs, lim.Max)
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
			log.Fatalf("setrlimit: %v", err)
		}
	}

	var ln net.Listener
	var err error
	if *child {
		ln, err = net.FileListener(os.NewFile(3, "listener"))
	} else {
		ln, err = net.Listen("tcp", *listen)
	}
	if err != nil {
		log.Fatalf("listen: %v", err)
	}
	if !*child {
		fmt.Printf("listening on %s\n", ln.Addr())
	}
	// Ending standard input ends the program (and its child).
	stop := make(chan struct{})
	if !*child {
		go func() {
			io := bufio.NewReader(os.Stdin)
			for {
				if _, err := io.ReadByte(); err != nil {
					close(stop)
					return
				}
			}
		}()
	}

	if *mode == "restart" {
		supervise(ln, *rate, *maxFDs, *restartEvery, stop)
		return
	}
	reg := tracker.New()
	prometheus.MustRegister(prommetrics.NewCollector(reg))
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.Handler())
	go func() { log.Fatal(http.Serve(ln, mux)) }()
	go behave(reg, *mode, *rate)
	<-stop
}

// behave does what mode says, forever.
func behave(reg *tracker.Registry, mode string, rate int) {
	tick := time.NewTicker(time.Second / time.Duration(max(rate, 1)))
	defer tick.Stop()
	var (
		leaked []*os.File
		mu     sync.Mutex
		pool   []chan struct{}
		n      int
		worker = reg.StartSession("worker", nil)
	)
	for range tick.C {
		n++
		switch mode {
		case "steady":
			// A task tracked and released: the tracker's metrics stay flat.
			reg.Track("task", worker, "short").Release()
			if f, err := os.Open(os.DevNull); err == nil {
				f.Close()
			}
			done := make(chan struct{})
			go func() { close(done) }()
			<-done
		case "churn":
			// 40 ticks filling, 40 draining.
			mu.Lock()
			if n%80 < 40 {
				c := make(chan struct{})
				pool = append(pool, c)
				go func() { <-c }()
			} else if len(pool) > 0 {
				close(pool[0])
				pool = pool[1:]
			}
			mu.Unlock()
		case "fds":
			r, w, err := os.Pipe()
			if err != nil {
				continue // at the limit: the daemon is broken, as in real life
			}
			leaked = append(leaked, r, w)
		case "goroutines":
			c := make(chan struct{})
			pool = append(pool, c)
			go func() { <-c }()
		case "tracked":
			reg.Track("task", worker, fmt.Sprintf("task %d", n))
		default:
			log.Fatalf("unknown mode %q", mode)
		}
	}
}

// supervise runs this program as a child leaking descriptors on ln, and
// replaces the child every every.
func supervise(ln net.Listener, rate int, maxFDs uint64, every time.Duration, stop chan struct{}) {
	f, err := ln.(*net.TCPListener).File()
	if err != nil {
		log.Fatalf("listener file: %v", err)
	}
	self, err := os.Executable()
	if err != nil {
		log.Fatalf("executable: %v", err)
	}
	for {
		c := exec.Command(self, "-child", "-mode", "fds", "-rate", fmt.Sprint(rate), "-max-fds", fmt.Sprint(maxFDs))
		c.ExtraFiles = []*os.File{f}
		c.Stderr = os.Stderr
		if err := c.Start(); err != nil {
			log.Fatalf("start child: %v", err)
		}
		t := time.NewTimer(every)
		select {
		case <-stop:
			c.Process.Kill()
			c.Wait()
			return
		case <-t.C:
		}
		c.Process.Kill()
		c.Wait()
	}
}
