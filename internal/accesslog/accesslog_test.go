package accesslog

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twofold-auth/twofold/internal/clientaddr"
)

// wrapper stands for a middleware between Handler and the handlers (metrics' recorder).
type wrapper struct{ http.ResponseWriter }

func (w wrapper) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// server is a mux with a route that has a code in its path, behind Handler.
func server(cfg Config) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /verify/{token}/{id}", func(w http.ResponseWriter, r *http.Request) {
		SetApp(w, 7)
		w.Write([]byte(`{"success":true}`))
	})
	mux.HandleFunc("GET /boom", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusServiceUnavailable) })
	mux.HandleFunc("GET /stream", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("data: 1\n\n"))
		if err := http.NewResponseController(w).Flush(); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
		}
	})
	inner := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { mux.ServeHTTP(wrapper{w}, r) })
	return Handler(inner, cfg)
}

func jsonLog(buf *bytes.Buffer) *slog.Logger {
	return slog.New(slog.NewJSONHandler(buf, nil))
}

var hexID = regexp.MustCompile(`^[0-9a-f]{16}$`)

// The line names the route, not the path, and holds neither the code of the path nor the key
// of the query; its request id is the header's.
func TestLineHoldsTheRouteNotThePath(t *testing.T) {
	var logs bytes.Buffer
	h := server(Config{Log: jsonLog(&logs)})
	const code, key = "8231456", "SECRETapiKEYnotInLogs0123456789ab"
	const authyID = "987654321"
	req := httptest.NewRequest("GET", "/verify/"+code+"/"+authyID+"?api_key="+key, nil)
	req.Header.Set("X-Authy-API-Key", key)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)

	id := rec.Header().Get(Header)
	if !hexID.MatchString(id) {
		t.Fatalf("X-Request-Id %q", id)
	}
	var line map[string]any
	if err := json.Unmarshal(logs.Bytes(), &line); err != nil {
		t.Fatalf("one JSON line: %v\n%s", err, logs.String())
	}
	want := map[string]any{"level": "INFO", "msg": "request", "method": "GET", "route": "GET /verify/{token}/{id}", "status": 200.0,
		"bytes": 16.0, "app_id": 7.0, "request_id": id, "remote": "192.0.2.1:1234"}
	for k, v := range want {
		if line[k] != v {
			t.Errorf("%s = %v, want %v", k, line[k], v)
		}
	}
	if _, ok := line["ms"].(float64); !ok {
		t.Errorf("no duration: %v", line)
	}
	for _, secret := range []string{code, key, authyID, "api_key"} {
		if strings.Contains(logs.String(), secret) {
			t.Errorf("the line holds %q: %s", secret, logs.String())
		}
	}
}

func TestLines(t *testing.T) {
	var logs bytes.Buffer
	h := server(Config{Log: jsonLog(&logs)})
	get := func(path string) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		return rec
	}
	lines := func() []map[string]any {
		var out []map[string]any
		for _, l := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
			var m map[string]any
			if err := json.Unmarshal([]byte(l), &m); err != nil {
				t.Fatalf("%v: %s", err, l)
			}
			out = append(out, m)
		}
		logs.Reset()
		return out
	}

	// A server error is a warning; no application is named when none was found.
	get("/boom")
	l := lines()[0]
	if l["level"] != "WARN" || l["status"] != 503.0 || l["route"] != "GET /boom" {
		t.Errorf("5xx line: %v", l)
	}
	if _, ok := l["app_id"]; ok {
		t.Errorf("app_id without an application: %v", l)
	}
	// Nothing routed: the path is not told.
	get("/secret-token-in-path")
	if l := lines()[0]; l["route"] != "unmatched" || l["status"] != 404.0 || strings.Contains(logs.String(), "secret-token") {
		t.Errorf("unrouted line: %v", l)
	}
	// Flushing reaches the connection through the recorder.
	if rec := get("/stream"); !rec.Flushed || rec.Code != 200 {
		t.Errorf("stream: flushed %v, status %d", rec.Flushed, rec.Code)
	}
	lines()
	// Each request its own id.
	a, b := get("/boom").Header().Get(Header), get("/boom").Header().Get(Header)
	if a == b || !hexID.MatchString(a) || !hexID.MatchString(b) {
		t.Errorf("ids %q and %q", a, b)
	}
	lines()

	// Without a logger, ids and nothing else.
	var quiet bytes.Buffer
	h = server(Config{})
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/boom", nil))
	if !hexID.MatchString(rec.Header().Get(Header)) || quiet.Len() != 0 {
		t.Errorf("without a log: id %q, logs %q", rec.Header().Get(Header), quiet.String())
	}
	// Below INFO's level: nothing, and 5xx still at WARN.
	h = server(Config{Log: slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/verify/1/2", nil))
	if logs.Len() != 0 {
		t.Errorf("an INFO line at level WARN: %s", logs.String())
	}
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/boom", nil))
	if !strings.Contains(logs.String(), `"status":503`) {
		t.Errorf("no WARN line for a 5xx: %q", logs.String())
	}
}

// An incoming request id is kept only from a trusted proxy and only when it is sane; anything
// else is replaced by a new id, never echoed.
func TestIncomingRequestID(t *testing.T) {
	proxies, err := clientaddr.ParseProxies("10.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	h := server(Config{Proxies: proxies})
	for _, tc := range []struct {
		name, remote string
		ids          []string
		kept         bool
	}{
		{"proxy, sane", "10.0.0.1:5555", []string{"req-2f1c.9:ab_C"}, true},
		{"proxy, 64 characters", "10.0.0.1:5555", []string{strings.Repeat("a", 64)}, true},
		{"client, sane", "192.0.2.9:5555", []string{"req-2f1c"}, false},
		{"proxy, too long", "10.0.0.1:5555", []string{strings.Repeat("a", 65)}, false},
		{"proxy, empty", "10.0.0.1:5555", []string{""}, false},
		{"proxy, markup", "10.0.0.1:5555", []string{"<script>alert(1)</script>"}, false},
		{"proxy, space", "10.0.0.1:5555", []string{"a b"}, false},
		{"proxy, line break", "10.0.0.1:5555", []string{"a\r\nSet-Cookie: x=1"}, false},
		{"proxy, NUL", "10.0.0.1:5555", []string{"a\x00b"}, false},
		{"proxy, bidi", "10.0.0.1:5555", []string{"a\u202eb"}, false},
		{"proxy, two", "10.0.0.1:5555", []string{"one", "two"}, false},
	} {
		req := httptest.NewRequest("GET", "/boom", nil)
		req.RemoteAddr = tc.remote
		req.Header[Header] = tc.ids
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		got := rec.Header().Values(Header)
		switch {
		case len(got) != 1:
			t.Errorf("%s: X-Request-Id %q", tc.name, got)
		case tc.kept && got[0] != tc.ids[0]:
			t.Errorf("%s: %q not kept: %q", tc.name, tc.ids[0], got[0])
		case !tc.kept && !hexID.MatchString(got[0]):
			t.Errorf("%s: answered %q, want a new id", tc.name, got[0])
		}
	}
}

// BenchmarkHandler: what the middleware adds to a request, with ids alone and with the log
// (text and JSON, written to io.Discard), against the bare handler.
func BenchmarkHandler(b *testing.B) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /verify/{token}/{id}", func(w http.ResponseWriter, r *http.Request) {
		SetApp(w, 7)
		w.WriteHeader(http.StatusOK)
	})
	for _, bc := range []struct {
		name string
		h    http.Handler
	}{
		{"bare", mux},
		{"ids", Handler(mux, Config{})},
		{"text", Handler(mux, Config{Log: slog.New(slog.NewTextHandler(io.Discard, nil))})},
		{"json", Handler(mux, Config{Log: slog.New(slog.NewJSONHandler(io.Discard, nil))})},
	} {
		b.Run(bc.name, func(b *testing.B) {
			req := httptest.NewRequest("GET", "/verify/1234567/42", nil)
			w := &discardWriter{h: http.Header{}}
			b.ReportAllocs()
			for b.Loop() {
				clear(w.h)
				bc.h.ServeHTTP(w, req)
			}
		})
	}
}

type discardWriter struct{ h http.Header }

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *discardWriter) WriteHeader(int)             {}

// A Buffer writes whole lines, in order: when it holds 32 KiB, on its timer, and at Close;
// after Close, at once.
func TestBuffer(t *testing.T) {
	var out syncBuffer
	b := NewBuffer(&out, time.Hour) // the timer never fires in this test
	line := []byte(strings.Repeat("x", 99) + "\n")
	for range flushSize/len(line) - 1 {
		b.Write(line)
	}
	if out.Len() != 0 {
		t.Fatalf("written before 32 KiB: %d bytes", out.Len())
	}
	for range 2 {
		b.Write(line)
	}
	if out.Len() != (flushSize/len(line)+1)*len(line) {
		t.Fatalf("at 32 KiB: %d bytes written", out.Len())
	}
	b.Write([]byte("last\n"))
	b.Close()
	if !strings.HasSuffix(out.String(), "x\nlast\n") {
		t.Fatalf("Close did not write the rest: %q", out.String()[max(0, out.Len()-20):])
	}
	b.Write([]byte("after\n"))
	if !strings.HasSuffix(out.String(), "last\nafter\n") {
		t.Fatal("a line after Close was held")
	}

	// The timer writes what is held.
	var timed syncBuffer
	tb := NewBuffer(&timed, time.Millisecond)
	defer tb.Close()
	tb.Write([]byte("soon\n"))
	deadline := time.Now().Add(10 * time.Second)
	for timed.Len() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the timer wrote nothing in 10 s")
		}
		runtime.Gosched()
	}
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) Len() int { b.mu.Lock(); defer b.mu.Unlock(); return b.buf.Len() }

func (b *syncBuffer) String() string { b.mu.Lock(); defer b.mu.Unlock(); return b.buf.String() }
