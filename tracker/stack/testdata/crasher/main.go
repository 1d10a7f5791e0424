// Command crasher prints a line, parks goroutines in the states a traceback
// shows (a channel receive, a labelled select, one locked to its thread,
// nested go statements), then crashes: with a panic by default, or by
// waiting for SIGQUIT with -wait. The stack package's tests read its output.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"time"
)

func receiver(ch chan int) { <-ch }

func labelled(ch chan int) {
	pprof.Do(context.Background(), pprof.Labels("tenant", "a \"quoted\" one"), func(context.Context) {
		select {
		case <-ch:
		case <-ch:
		}
	})
}

func locked(ch chan int) {
	runtime.LockOSThread()
	<-ch
}

func spawner(ch chan int, ready chan struct{}) {
	go receiver(ch)
	close(ready)
	<-ch
}

func main() {
	wait := flag.Bool("wait", false, "wait for SIGQUIT instead of panicking")
	flag.Parse()
	ch := make(chan int)
	ready := make(chan struct{})
	go receiver(ch)
	go labelled(ch)
	go locked(ch)
	go spawner(ch, ready)
	<-ready
	time.Sleep(50 * time.Millisecond) // let every goroutine park
	fmt.Println("the program printed this before it crashed")
	if *wait {
		// A sleeper keeps the runtime from calling the rest a deadlock.
		go func() {
			for {
				time.Sleep(time.Hour)
			}
		}()
		fmt.Fprintln(os.Stderr, "ready")
		select {}
	}
	panic("crasher: boom")
}
