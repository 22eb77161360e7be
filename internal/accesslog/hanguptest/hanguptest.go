// Package hanguptest drives, over real HTTP, a request whose client hangs up while the server
// is busy with it, and checks what the server logged of it: nothing above DEBUG, and at most
// one line (accesslog.ClientGone's). For tests only.
package hanguptest

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// guard bounds each wait, so that a broken handler fails the test instead of hanging it.
const guard = 30 * time.Second

// Log is a logger at DEBUG whose JSON records are kept in memory. Safe for concurrent use.
type Log struct {
	*slog.Logger
	mu  sync.Mutex
	buf bytes.Buffer
}

// NewLog returns an empty Log.
func NewLog() *Log {
	l := &Log{}
	l.Logger = slog.New(slog.NewJSONHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
	return l
}

func (l *Log) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

// Reset forgets what was logged.
func (l *Log) Reset() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf.Reset()
}

// Records are the records logged since the last Reset.
func (l *Log) Records(t testing.TB) []map[string]any {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	var records []map[string]any
	for line := range strings.Lines(l.buf.String()) {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		records = append(records, rec)
	}
	return records
}

// CheckGone fails t unless what was logged since the last Reset is one DEBUG record that the
// client went away, and nothing else: a client that hangs up is no fault of the server's.
func (l *Log) CheckGone(t testing.TB, what string) {
	t.Helper()
	records := l.Records(t)
	for _, rec := range records {
		if rec["level"] != "DEBUG" {
			t.Errorf("%s: the client's hanging up was logged at %v: %v", what, rec["level"], rec)
		}
	}
	if len(records) != 1 || records[0]["msg"] != "client went away" {
		t.Errorf("%s: logged %d records, want one DEBUG \"client went away\": %v", what, len(records), records)
	}
}

// Hold is a point inside a handler (a stand-in for a store or service call) where one
// request, once armed, waits until its client has gone.
type Hold struct {
	mu     sync.Mutex
	armed  bool
	held   chan struct{}
	result chan error
}

// Wait holds the caller, if the Hold is armed, until ctx (the request's) is done. The caller
// then makes its call with ctx, as a slow store would, and reports what it returned.
func (h *Hold) Wait(ctx context.Context) (report func(error)) {
	h.mu.Lock()
	if !h.armed {
		h.mu.Unlock()
		return func(error) {}
	}
	h.armed = false
	held, result := h.held, h.result
	h.mu.Unlock()
	close(held)
	<-ctx.Done()
	return func(err error) { result <- err }
}

func (h *Hold) arm() (held <-chan struct{}, result <-chan error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.armed, h.held, h.result = true, make(chan struct{}), make(chan error, 1)
	return h.held, h.result
}

// Server is a test server that notes when a request whose client went away has been handled.
type Server struct {
	*httptest.Server
	handled chan struct{}
}

// NewServer starts a server over h, closed when t ends.
func NewServer(t testing.TB, h http.Handler) *Server {
	s := &Server{handled: make(chan struct{}, 1)}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(w, r)
		if r.Context().Err() != nil {
			select {
			case s.handled <- struct{}{}:
			default:
			}
		}
	}))
	t.Cleanup(s.Close)
	return s
}

// HangUp sends req with c (nil: the server's client), hangs up once the server holds it at
// h, and returns when the server has finished with it, with the error the held call
// returned (nil if it succeeded in spite of the cancelled context).
func (s *Server) HangUp(t testing.TB, c *http.Client, req *http.Request, h *Hold) error {
	t.Helper()
	if c == nil {
		c = s.Client()
	}
	held, result := h.arm()
	ctx, cancel := context.WithCancel(req.Context())
	defer cancel()
	answered := make(chan string, 1)
	go func() {
		resp, err := c.Do(req.WithContext(ctx))
		if err != nil {
			answered <- err.Error()
			return
		}
		resp.Body.Close()
		answered <- resp.Status
	}()
	select {
	case <-held:
	case got := <-answered:
		t.Fatalf("%s %s: answered (%s) before the server reached the held call", req.Method, req.URL.Path, got)
	case <-time.After(guard):
		t.Fatalf("%s %s: never reached the held call", req.Method, req.URL.Path)
	}
	cancel() // the client hangs up: its transport closes the connection
	var err error
	handled := s.handled
	for range 3 { // the client's error, the held call's result and the handler's end, in any order
		select {
		case <-answered:
			answered = nil
		case err = <-result:
			result = nil
		case <-handled:
			handled = nil
		case <-time.After(guard):
			t.Fatalf("%s %s: the server did not finish with the request", req.Method, req.URL.Path)
		}
	}
	return err
}
