package probes

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/pprof"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// pprofMux serves the goroutine and heap profiles as net/http/pprof does.
func pprofMux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle("/debug/pprof/goroutine", pprof.Handler("goroutine"))
	mux.Handle("/debug/pprof/heap", pprof.Handler("heap"))
	return mux
}

// newServer starts a loopback server that is closed when the test ends.
func newServer(t *testing.T, h http.Handler) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

// newClient returns a client whose idle connections are closed when the
// test ends, so that no transport goroutine outlives it.
func newClient(t *testing.T) *http.Client {
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

func TestSampleGo(t *testing.T) {
	srv := newServer(t, pprofMux())
	client := newClient(t)
	ctx := context.Background()

	// A live allocation well above the sampling rate, reflected in the heap
	// profile once two collections have run.
	held := make([]byte, 8<<20)
	runtime.GC()
	runtime.GC()

	before, err := SampleGo(ctx, client, srv.URL, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(before.Gaps) != 0 || before.Tracker != nil {
		t.Fatalf("gaps %v, tracker %q; want neither", before.Gaps, before.Tracker)
	}
	if before.HeapInuse < int64(len(held)) {
		t.Errorf("HeapInuse = %d, want at least the %d bytes held", before.HeapInuse, len(held))
	}
	runtime.KeepAlive(held)
	p := before.GoroutineProfile
	if p == nil {
		t.Fatal("no GoroutineProfile")
	}
	var total int64
	for _, s := range p.Sample {
		total += s.Value[0]
	}
	if before.Goroutines < 1 || int64(before.Goroutines) != total {
		t.Errorf("Goroutines = %d, profile holds %d", before.Goroutines, total)
	}

	const n = 50
	block := make(chan struct{})
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() { <-block })
	}
	after, err := SampleGo(ctx, client, srv.URL, "")
	close(block)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if after.Goroutines-before.Goroutines < n {
		t.Errorf("goroutines went from %d to %d, want a rise of at least %d", before.Goroutines, after.Goroutines, n)
	}
	if m := MetricMap(after.Metrics()); m["goroutines"] != float64(after.Goroutines) || m["heap_inuse_bytes"] != float64(after.HeapInuse) {
		t.Errorf("Metrics = %v", m)
	}
	if !after.Time.After(before.Time) {
		t.Errorf("sample times %v then %v", before.Time, after.Time)
	}
}

func TestSampleGoTracker(t *testing.T) {
	const snapshot = `{"schema":1,"records":[]}`
	mux := pprofMux()
	mux.HandleFunc(DefaultTrackerPath, func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, snapshot)
	})
	mux.HandleFunc("/custom/snap", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `[1,2]`)
	})
	mux.HandleFunc("/broken", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"schema":`)
	})
	mux.HandleFunc("/failing", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "boom", http.StatusInternalServerError)
	})
	srv := newServer(t, mux)
	client := newClient(t)

	tests := []struct {
		path    string
		want    string // Tracker; "" for nil
		gap     bool
		message string
	}{
		{"", snapshot, false, ""},
		{DefaultTrackerPath, snapshot, false, ""},
		{"custom/snap", `[1,2]`, false, ""},
		{"/absent.json", "", false, ""},
		{"/broken", "", true, "not JSON"},
		{"/failing", "", true, "500"},
	}
	for _, tt := range tests {
		s, err := SampleGo(context.Background(), client, srv.URL+"/", tt.path)
		if err != nil {
			t.Errorf("%q: %v", tt.path, err)
			continue
		}
		if string(s.Tracker) != tt.want || (tt.want == "") != (s.Tracker == nil) {
			t.Errorf("%q: Tracker = %q, want %q", tt.path, s.Tracker, tt.want)
		}
		if tt.gap {
			if len(s.Gaps) != 1 || s.Gaps[0].Part != "tracker" || !strings.Contains(s.Gaps[0].Err.Error(), tt.message) {
				t.Errorf("%q: gaps = %v, want a tracker gap saying %q", tt.path, s.Gaps, tt.message)
			}
		} else if len(s.Gaps) != 0 {
			t.Errorf("%q: gaps = %v", tt.path, s.Gaps)
		}
	}
}

func TestSampleGoWithoutHeap(t *testing.T) {
	mux := http.NewServeMux()
	mux.Handle("/debug/pprof/goroutine", pprof.Handler("goroutine"))
	srv := newServer(t, mux)
	s, err := SampleGo(context.Background(), newClient(t), srv.URL, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Gaps) != 1 || s.Gaps[0].Part != "heap" || !strings.Contains(s.Gaps[0].Err.Error(), srv.URL+"/debug/pprof/heap") {
		t.Fatalf("gaps = %v, want a heap gap naming the URL", s.Gaps)
	}
	if _, ok := MetricMap(s.Metrics())["heap_inuse_bytes"]; ok || s.Goroutines < 1 {
		t.Errorf("Metrics = %v, want goroutines without heap", MetricMap(s.Metrics()))
	}
}

// repeatedGzip returns n gzip members of size zero bytes each, which
// decompress as one stream of n*size bytes: a decompression bomb that is
// cheap to build.
func repeatedGzip(t *testing.T, size, n int) []byte {
	t.Helper()
	var member bytes.Buffer
	zw, err := gzip.NewWriterLevel(&member, gzip.BestCompression)
	if err != nil {
		t.Fatal(err)
	}
	zw.Write(make([]byte, size))
	zw.Close()
	return bytes.Repeat(member.Bytes(), n)
}

func TestSampleGoFailures(t *testing.T) {
	heap := pprof.Handler("heap")
	bomb := repeatedGzip(t, 1<<20, MaxBodySize>>20+1)
	var nested bytes.Buffer
	zw := gzip.NewWriter(&nested)
	zw.Write(repeatedGzip(t, 1<<10, 1))
	zw.Close()

	tests := []struct {
		name    string
		handler http.HandlerFunc
		message string
	}{
		{"server error", func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "boom", http.StatusInternalServerError)
		}, "500 Internal Server Error"},
		{"not found", http.NotFound, "404 Not Found"},
		{"not a profile", func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, "<html><body>Welcome to nginx!</body></html>\n")
		}, "parsing profile"},
		{"corrupt gzip", func(w http.ResponseWriter, r *http.Request) {
			w.Write([]byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff, 1, 2, 3})
		}, "decompressing: unexpected end of data"},
		{"wrong profile type", heap.ServeHTTP, `no "goroutine" sample type`},
		{"oversized body", func(w http.ResponseWriter, r *http.Request) {
			chunk := make([]byte, 1<<20)
			for range MaxBodySize>>20 + 2 {
				if _, err := w.Write(chunk); err != nil {
					return
				}
			}
		}, "larger than the size limit of 64 MiB"},
		{"oversized length", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", strconv.Itoa(MaxBodySize+1))
			w.WriteHeader(http.StatusOK)
		}, "body of 64 MiB: larger than the size limit of 64 MiB"},
		{"decompression bomb", func(w http.ResponseWriter, r *http.Request) {
			w.Write(bomb)
		}, "decompresses to more than the size limit of 64 MiB"},
		{"gzip in gzip", func(w http.ResponseWriter, r *http.Request) {
			w.Write(nested.Bytes())
		}, "compressed twice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mux := http.NewServeMux()
			mux.Handle("/debug/pprof/goroutine", tt.handler)
			mux.Handle("/debug/pprof/heap", heap)
			srv := newServer(t, mux)
			s, err := SampleGo(context.Background(), newClient(t), srv.URL, "")
			if err == nil {
				t.Fatalf("no error; sample %+v", s)
			}
			url := srv.URL + "/debug/pprof/goroutine?debug=0"
			if !strings.Contains(err.Error(), tt.message) || !strings.Contains(err.Error(), url) {
				t.Errorf("err = %v, want it to say %q and name %s", err, tt.message, url)
			}
		})
	}
}

func TestSampleGoServerDown(t *testing.T) {
	srv := httptest.NewServer(pprofMux())
	url := srv.URL
	srv.Close()
	_, err := SampleGo(context.Background(), newClient(t), url, "")
	if err == nil || !strings.Contains(err.Error(), url+"/debug/pprof/goroutine?debug=0") {
		t.Fatalf("err = %v, want an error naming the URL", err)
	}
	if strings.Count(err.Error(), url) != 1 {
		t.Errorf("err = %v names the URL more than once", err)
	}
}

func TestSampleGoTimeout(t *testing.T) {
	srv := newServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done() // a hung daemon
	}))
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := SampleGo(ctx, newClient(t), srv.URL, "")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want context.DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("SampleGo took %v past a 100ms deadline", d)
	}

	// The client's own timeout applies too.
	client := newClient(t)
	client.Timeout = 100 * time.Millisecond
	if _, err := SampleGo(context.Background(), client, srv.URL, ""); err == nil || !strings.Contains(err.Error(), "Timeout") {
		t.Fatalf("err = %v, want a client timeout", err)
	}
}

// TestSampleGoDefaultClient uses the nil client, which goes through
// http.DefaultTransport.
func TestSampleGoDefaultClient(t *testing.T) {
	srv := newServer(t, pprofMux())
	t.Cleanup(http.DefaultTransport.(*http.Transport).CloseIdleConnections)
	s, err := SampleGo(context.Background(), nil, srv.URL, "")
	if err != nil || s.Goroutines < 1 {
		t.Fatalf("SampleGo(nil client) = %+v, %v", s, err)
	}
}

var profileSeeds = [][]byte{
	nil,
	[]byte("not a profile"),
	{0x1f, 0x8b},
	{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff, 1, 2, 3},
	{0x0a, 0x02, 0x08, 0x01},
}

func TestDecodeProfileNeverPanics(t *testing.T) {
	for _, b := range profileSeeds {
		if _, _, err := sumProfile(b, "goroutine"); err == nil {
			t.Errorf("sumProfile(%q) accepted garbage", b)
		}
	}
}
