package cmd

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/leakcheck/leakcheck/tracker"
)

// demoLeaks are the leaks the demo daemon can commit, each for real.
var demoLeaks = []struct{ name, what string }{
	{"fd", "opens a log file every tick and never closes it"},
	{"socket", "the echo server forgets to close connections the client closed (CLOSE_WAIT)"},
	{"goroutine", "starts a goroutine every tick that waits forever on a channel"},
	{"map", "adds every request to a map of tasks in flight and never deletes it"},
}

// defaultDemoLeaks is what `leakcheck run` with no command shows.
const defaultDemoLeaks = "fd,socket,goroutine,map"

type demoOptions struct {
	leaks    []string
	tick     time.Duration
	duration time.Duration
	pprof    string
	ready    string
}

func newDemoCommand() *cobra.Command {
	var opts demoOptions
	var leaks string
	c := &cobra.Command{
		Use:    "demo",
		Short:  "Run the built-in leaky demo daemon (used by `leakcheck run` with no command)",
		Hidden: true,
		Args:   cobra.NoArgs,
		Example: `  leakcheck demo --leak fd,socket --pprof 127.0.0.1:0
  leakcheck demo --leak none --duration 5s`,
		RunE: func(c *cobra.Command, _ []string) error {
			var err error
			if opts.leaks, err = parseDemoLeaks(leaks); err != nil {
				return usageError(err)
			}
			ctx, stop := signal.NotifyContext(c.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return runDemo(ctx, opts, c.OutOrStdout(), c.ErrOrStderr())
		},
	}
	c.Flags().StringVar(&leaks, "leak", defaultDemoLeaks, "leaks to commit: "+demoLeakNames()+", all or none")
	c.Flags().DurationVar(&opts.tick, "tick", 100*time.Millisecond, "time between client requests")
	c.Flags().DurationVar(&opts.duration, "duration", 0, "stop after this long (0: run until SIGTERM or SIGINT)")
	c.Flags().StringVar(&opts.pprof, "pprof", "", "serve net/http/pprof and the tracker on this loopback address")
	c.Flags().StringVar(&opts.ready, "ready-file", "", "write the pprof URL to this file once serving")
	return c
}

func demoLeakNames() string {
	names := make([]string, len(demoLeaks))
	for i, l := range demoLeaks {
		names[i] = l.name
	}
	return strings.Join(names, ", ")
}

// parseDemoLeaks reads a comma-separated list of leak names.
func parseDemoLeaks(s string) ([]string, error) {
	switch s = strings.TrimSpace(s); s {
	case "none", "":
		return nil, nil
	case "all":
		s = defaultDemoLeaks
	}
	var out []string
	for _, name := range strings.Split(s, ",") {
		name = strings.TrimSpace(name)
		if !slices.ContainsFunc(demoLeaks, func(l struct{ name, what string }) bool { return l.name == name }) {
			return nil, fmt.Errorf("unknown leak %q: want %s, all or none", name, demoLeakNames())
		}
		out = append(out, name)
	}
	return out, nil
}

// runDemo runs a loopback echo server and a client that talks to it every tick,
// committing the chosen leaks for real, until ctx ends. At the end it stops its
// sessions and writes the tracker's exit report (the LEAKCHECK_REPORT handshake).
func runDemo(ctx context.Context, opts demoOptions, stdout, stderr io.Writer) error {
	if opts.duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, opts.duration)
		defer cancel()
	}
	leak := func(name string) bool { return slices.Contains(opts.leaks, name) }
	reg := tracker.Default
	server := reg.StartSession("echo-server", nil)
	client := reg.StartSession("client", nil)
	logger := reg.StartSession("logger", nil)

	if opts.pprof != "" {
		stopHTTP, err := serveDemoDebug(ctx, reg, opts.pprof, opts.ready)
		if err != nil {
			return err
		}
		defer stopHTTP()
	}

	l, err := reg.Listen(ctx, server, "tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("demo: listening on loopback: %w", err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	conns := map[net.Conn]bool{} // accepted connections still open

	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.AcceptFor(server)
			if err != nil {
				return
			}
			mu.Lock()
			conns[c] = true
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				if echo(c) && !leak("socket") {
					mu.Lock()
					delete(conns, c)
					mu.Unlock()
					c.Close()
				}
			}()
		}
	}()

	tasks := map[int][]byte{}    // tasks in flight; the "map" leak never deletes
	var openLogs []*tracker.File // the "fd" leak keeps every log open
	block := make(chan struct{}) // never closed: the "goroutine" leak waits on it
	dir, err := os.MkdirTemp("", "leakcheck-demo-")
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	defer os.RemoveAll(dir)

	fmt.Fprintf(stdout, "demo: echo server on %s, leaks: %s\n", l.Addr(), strings.Join(opts.leaks, ","))
	tick := time.NewTicker(opts.tick)
	defer tick.Stop()
	for n := 0; ; n++ {
		select {
		case <-ctx.Done():
			l.Close()
			if !leak("socket") {
				mu.Lock()
				for c := range conns {
					c.Close() // unblocks its echo goroutine
				}
				mu.Unlock()
			}
			wg.Wait()
			err := finishDemo(reg, []*tracker.Session{client, server, logger}, stderr)
			runtime.KeepAlive(openLogs)
			return err
		case <-tick.C:
		}
		tasks[n] = make([]byte, 1024)
		if err := demoRequest(ctx, reg, client, l.Addr().String(), n); err != nil {
			fmt.Fprintf(stderr, "demo: request %d: %v\n", n, err)
		}
		if !leak("map") {
			delete(tasks, n)
		}
		f, err := reg.Create(logger, filepath.Join(dir, fmt.Sprintf("request-%d.log", n)))
		if err == nil {
			fmt.Fprintf(f, "request %d\n", n)
			if leak("fd") {
				openLogs = append(openLogs, f)
			} else {
				f.Close()
			}
		}
		if leak("goroutine") {
			reg.Go(client, "waiter", func() { <-block })
		}
	}
}

// demoRequest sends one line to the echo server and reads it back.
func demoRequest(ctx context.Context, reg *tracker.Registry, owner *tracker.Session, addr string, n int) error {
	c, err := reg.Dial(ctx, owner, "tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := fmt.Fprintf(c, "hello %d\n", n); err != nil {
		return err
	}
	_, err = bufio.NewReader(c).ReadString('\n')
	return err
}

// echo answers each line until the connection fails, and reports whether it
// ended at the peer's EOF: the caller must then close it, or the socket stays
// in CLOSE_WAIT.
func echo(c net.Conn) (eof bool) {
	r := bufio.NewReader(c)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return errors.Is(err, io.EOF)
		}
		if _, err := io.WriteString(c, line); err != nil {
			return false
		}
	}
}

// finishDemo stops the demo's sessions, printing what each still held, and
// writes the tracker's exit report when LEAKCHECK_REPORT asks for it.
func finishDemo(reg *tracker.Registry, sessions []*tracker.Session, stderr io.Writer) error {
	for _, s := range sessions {
		if left := s.Stop(); len(left) > 0 {
			fmt.Fprintf(stderr, "demo: session %q stopped holding %d resources\n", s.Label(), len(left))
		}
	}
	if err := reg.WriteExitReport(); err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	return nil
}

// serveDemoDebug serves pprof and the tracker handler on addr, writing the base
// URL to readyFile when it is set.
func serveDemoDebug(ctx context.Context, reg *tracker.Registry, addr, readyFile string) (func(), error) {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	mux.Handle("/debug/leakcheck/", reg.Handler())
	var lc net.ListenConfig
	l, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("demo: serving pprof on %s: %w", addr, err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(l)
	if readyFile != "" {
		if err := os.WriteFile(readyFile, []byte("http://"+l.Addr().String()), 0o644); err != nil {
			srv.Close()
			return nil, fmt.Errorf("demo: %w", err)
		}
	}
	return func() { srv.Close() }, nil
}
