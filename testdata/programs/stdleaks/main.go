// Command stdleaks commits, -n times, one of the classic leaks whose
// goroutines sit in the standard library, then writes its goroutine dump
// (debug=2) to standard output, for report's table of known causes
// (report/causes_test.go):
//
//	http-body    GETs from a loopback server and never closes the response
//	             bodies: each connection keeps a persistConn readLoop and
//	             writeLoop goroutine
//	sql-open     opens a database/sql handle per request and never closes it:
//	             each keeps a connectionOpener goroutine
//	cancel       derives a cancelable context from a parent of its own type
//	             and never calls cancel: each keeps a propagateCancel goroutine
//	exec-nowait  starts a child whose output goes to a buffer and never waits
//	             for it: each keeps a goroutine copying the output
//	none         does the same work and cleans up after it
package main

import (
	"bytes"
	"context"
	"database/sql"
	"database/sql/driver"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime/pprof"
	"time"
)

func main() {
	leak := flag.String("leak", "none", "http-body, sql-open, cancel, exec-nowait or none")
	n := flag.Int("n", 20, "how many times to commit the leak")
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix("stdleaks: ")

	var cleanup []func()
	for i := range *n {
		done, err := commit(*leak, i)
		if err != nil {
			log.Fatal(err)
		}
		if *leak == "none" && done != nil {
			done()
		} else if done != nil {
			cleanup = append(cleanup, done)
		}
	}
	time.Sleep(100 * time.Millisecond) // let the goroutines park
	if err := pprof.Lookup("goroutine").WriteTo(os.Stdout, 2); err != nil {
		log.Fatal(err)
	}
	for _, f := range cleanup {
		f()
	}
}

// commit does one round of the work, leaking as named, and returns what
// would have undone it.
func commit(leak string, i int) (func(), error) {
	switch leak {
	case "http-body", "none":
		return httpBody(leak == "none")
	case "sql-open":
		return sqlOpen()
	case "cancel":
		return cancelNever()
	case "exec-nowait":
		return execNoWait()
	}
	return nil, fmt.Errorf("unknown leak %q", leak)
}

var server = startServer()

func startServer() string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	go http.Serve(l, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "hello")
	}))
	return "http://" + l.Addr().String()
}

// httpBody makes a request on a client of its own and, unless closeBody,
// never closes the response body, so the connection can neither be reused
// nor closed.
func httpBody(closeBody bool) (func(), error) {
	client := &http.Client{Transport: &http.Transport{}}
	resp, err := client.Get(server)
	if err != nil {
		return nil, err
	}
	if closeBody {
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		client.CloseIdleConnections()
		return nil, nil
	}
	return func() { resp.Body.Close() }, nil
}

func sqlOpen() (func(), error) {
	db, err := sql.Open("stdleaks", "")
	if err != nil {
		return nil, err
	}
	return func() { db.Close() }, nil
}

// ownCtx is a context of its own type with a Done channel of its own:
// deriving a cancelable context from it takes a goroutine that waits for
// either to end.
type ownCtx struct {
	context.Context
	done chan struct{}
}

func (c ownCtx) Done() <-chan struct{} { return c.done }

func cancelNever() (func(), error) {
	_, cancel := context.WithCancel(ownCtx{context.Background(), make(chan struct{})})
	return cancel, nil
}

func execNoWait() (func(), error) {
	cmd := exec.Command("sleep", "60")
	var out bytes.Buffer
	cmd.Stdout = &out
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	return func() { cmd.Process.Kill(); cmd.Wait() }, nil
}

// A database/sql driver that does nothing: opening a DB handle is enough to
// start its connection opener.
type nopDriver struct{}

func (nopDriver) Open(string) (driver.Conn, error) {
	return nil, fmt.Errorf("stdleaks: no connections")
}

func init() { sql.Register("stdleaks", nopDriver{}) }
