package bounded

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"testing"
)

func gz(t testing.TB, data []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	zw.Write(data)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// goroutineProfile is this process's goroutine profile as served: gzipped.
func goroutineProfile(t testing.TB) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := pprof.Lookup("goroutine").WriteTo(&b, 0); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestReadAll(t *testing.T) {
	tests := []struct {
		name  string
		size  int
		limit int64
		ok    bool
	}{
		{"empty", 0, 10, true},
		{"under", 9, 10, true},
		{"exactly the limit", 10, 10, true},
		{"one past", 11, 10, false},
		{"far past", 1 << 20, 10, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data, err := ReadAll(bytes.NewReader(make([]byte, tt.size)), tt.limit)
			if tt.ok != (err == nil) {
				t.Fatalf("ReadAll(%d bytes, limit %d) = %d bytes, %v", tt.size, tt.limit, len(data), err)
			}
			if le, isLimit := errors.AsType[*LimitError](err); !tt.ok && (!isLimit || le.Limit != tt.limit) {
				t.Errorf("err = %v, want a *LimitError of %d", err, tt.limit)
			}
			if tt.ok && len(data) != tt.size {
				t.Errorf("read %d bytes of %d", len(data), tt.size)
			}
		})
	}
}

func TestGunzip(t *testing.T) {
	prof := goroutineProfile(t)
	plain, err := Gunzip(prof, 64<<20)
	if err != nil {
		t.Fatal(err)
	}
	lying := bytes.Clone(prof)
	copy(lying[len(lying)-4:], []byte{0xff, 0xff, 0xff, 0xff}) // the size field
	tests := []struct {
		name  string
		data  []byte
		limit int64
		want  string // "" for success
	}{
		{"a profile", prof, 64 << 20, ""},
		{"at the limit", prof, int64(len(plain)), ""},
		{"past the limit", prof, int64(len(plain)) - 1, "decompresses to more than the size limit"},
		{"truncated", prof[:len(prof)/2], 64 << 20, "decompressing: unexpected end of data (truncated?)"},
		{"header only", prof[:5], 64 << 20, "decompressing: unexpected end of data (truncated?)"},
		{"lying size field", lying, 64 << 20, "decompressing: gzip: invalid checksum"},
		{"not gzip", []byte("plain text"), 64 << 20, "decompressing: gzip: invalid header"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Gunzip(tt.data, tt.limit)
			if tt.want == "" {
				if err != nil || !bytes.Equal(got, plain) {
					t.Fatalf("Gunzip = %d bytes, %v; want the %d bytes", len(got), err, len(plain))
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Gunzip = %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

// TestGunzipLyingSizeAllocates checks that the size a gzip trailer claims is
// not allocated: a truncated stream costs what it decompressed.
func TestGunzipLyingSizeAllocates(t *testing.T) {
	data := gz(t, bytes.Repeat([]byte("leakcheck "), 1000))
	lying := append(bytes.Clone(data[:len(data)-4]), 0xff, 0xff, 0xff, 0x0f) // 256 MiB
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	Gunzip(lying[:len(lying)-10], 256<<20)
	runtime.ReadMemStats(&after)
	if got := after.TotalAlloc - before.TotalAlloc; got > 1<<20 {
		t.Errorf("a truncated 10 KB stream allocated %d bytes", got)
	}
}

func TestParseProfile(t *testing.T) {
	prof := goroutineProfile(t)
	plain, _ := Gunzip(prof, 64<<20)
	tests := []struct {
		name string
		data []byte
		want string
	}{
		{"gzipped", prof, ""},
		{"plain", plain, ""},
		{"compressed twice", gz(t, prof), "compressed twice"},
		{"garbage", []byte("\x00\x01\x02garbage"), "parsing profile"},
		{"empty", nil, "empty input"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := ParseProfile(tt.data, 64<<20)
			if tt.want == "" {
				if err != nil || len(p.Sample) == 0 {
					t.Fatalf("ParseProfile = %v, %v", p, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("ParseProfile = %v; want an error containing %q", err, tt.want)
			}
		})
	}
}

// TestGet serves the ways a sick daemon's endpoint answers, on loopback.
func TestGet(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/ok", func(w http.ResponseWriter, r *http.Request) { w.Write(make([]byte, 100)) })
	mux.HandleFunc("/fail", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "profiling disabled\nsecond line", http.StatusForbidden)
	})
	mux.HandleFunc("/long", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(1000))
		w.Write(make([]byte, 1000))
	})
	mux.HandleFunc("/endless", func(w http.ResponseWriter, r *http.Request) {
		for {
			if _, err := w.Write(make([]byte, 4096)); err != nil {
				return
			}
		}
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}

	tests := []struct {
		path string
		want string // "" for success
	}{
		{"/ok", ""},
		{"/fail", "GET " + srv.URL + "/fail: 403 Forbidden: profiling disabled"},
		{"/nosuch", "404 Not Found"},
		{"/long", "/long: body of 1000 B: larger than the size limit of 500 B"},
		{"/endless", "/endless: larger than the size limit of 500 B"},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			body, err := Get(context.Background(), client, srv.URL+tt.path, 500)
			if tt.want == "" {
				if err != nil || len(body) != 100 {
					t.Fatalf("Get = %d bytes, %v", len(body), err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Get = %v; want an error containing %q", err, tt.want)
			}
			if strings.Count(err.Error(), srv.URL) != 1 {
				t.Errorf("%v names the URL more than once", err)
			}
		})
	}
	_, err := Get(context.Background(), client, srv.URL+"/nosuch", 500)
	if se, ok := errors.AsType[*StatusError](err); !ok || se.Code != http.StatusNotFound {
		t.Errorf("404: %v is not a *StatusError of 404", err)
	}
}

func TestFormatSize(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 1000: "1000 B", 1024: "1 KiB", 1536: "1.5 KiB", 256 << 20: "256 MiB", 2 << 30: "2 GiB"} {
		if got := FormatSize(n); got != want {
			t.Errorf("FormatSize(%d) = %q, want %q", n, got, want)
		}
	}
}

func FuzzGunzip(f *testing.F) {
	f.Add(gz(f, []byte("profile")))
	f.Add([]byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff, 1, 2, 3})
	f.Fuzz(func(t *testing.T, data []byte) {
		out, err := Gunzip(data, 1<<20)
		if err == nil && len(out) > 1<<20 {
			t.Fatalf("%d bytes past the limit", len(out))
		}
		if _, err := ParseProfile(data, 1<<20); err != nil {
			return
		}
	})
}
