package authyapi_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twofold-auth/twofold/internal/apps"
	"github.com/twofold-auth/twofold/internal/authyapi"
	"github.com/twofold-auth/twofold/internal/devices"
	"github.com/twofold-auth/twofold/internal/live"
	"github.com/twofold-auth/twofold/internal/metrics"
	"github.com/twofold-auth/twofold/internal/onetouch"
	"github.com/twofold-auth/twofold/internal/seal"
	"github.com/twofold-auth/twofold/internal/store"
	"github.com/twofold-auth/twofold/internal/twofold"
	"github.com/twofold-auth/twofold/internal/users"
	"github.com/twofold-auth/twofold/internal/verify"
)

// fakeClock is a live.Clock that moves only when told to.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer
}

type fakeTimer struct {
	c      *fakeClock
	at     time.Time
	f      func()
	active bool
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) AfterFunc(d time.Duration, f func()) live.Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{c: c, at: c.now.Add(d), f: f, active: true}
	c.timers = append(c.timers, t)
	return t
}

func (t *fakeTimer) Reset(d time.Duration) bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	was := t.active
	t.at, t.active = t.c.now.Add(d), true
	return was
}

func (t *fakeTimer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	was := t.active
	t.active = false
	return was
}

// Advance moves the clock on by d, running every timer due on the way at its own time.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	end := c.now.Add(d)
	for {
		var next *fakeTimer
		for _, t := range c.timers {
			if t.active && !t.at.After(end) && (next == nil || t.at.Before(next.at)) {
				next = t
			}
		}
		if next == nil {
			c.now = end
			c.mu.Unlock()
			return
		}
		if next.at.After(c.now) {
			c.now = next.at
		}
		next.active = false
		c.mu.Unlock()
		next.f()
		c.mu.Lock()
	}
}

// streamEnv is the API over a real SQLite store, served over loopback, with the broker's
// keep-alives on a fake clock.
type streamEnv struct {
	api    *authyapi.API
	srv    *httptest.Server
	broker *live.Broker
	clock  *fakeClock
	app    twofold.App
	users  *users.Service
	devs   *devices.Service
	ot     *onetouch.Service
	m      *metrics.Metrics
	phones int
}

func newStreamEnv(t *testing.T, http2 bool) *streamEnv {
	t.Helper()
	return newStreamEnvConfig(t, http2, authyapi.Config{})
}

// newStreamEnvConfig is newStreamEnv with the API's config cfg; the API and the devices tell
// time by the fake clock.
func newStreamEnvConfig(t *testing.T, http2 bool, cfg authyapi.Config) *streamEnv {
	t.Helper()
	ctx := context.Background()
	st, err := store.OpenSQLite(ctx, filepath.Join(t.TempDir(), "twofold.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	keys, _ := seal.New(bytes.Repeat([]byte{3}, seal.KeySize))
	log := slog.New(slog.DiscardHandler)
	e := &streamEnv{clock: &fakeClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}}
	e.broker = live.NewBrokerOptions(live.Options{Clock: e.clock})
	appSvc := apps.New(st, keys, nil)
	if e.app, _, err = appSvc.Create(ctx, apps.CreateParams{Name: "Streams"}); err != nil {
		t.Fatal(err)
	}
	e.users = users.New(st, nil)
	e.devs = devices.New(st, keys, appSvc.Reveal, 0, e.clock.Now)
	e.ot = onetouch.New(st, onetouch.Config{}, onetouch.Hooks{Changed: e.broker.Publish}, nil)
	m := metrics.New()
	e.m = m
	e.api = authyapi.New(authyapi.Services{Apps: appSvc, Users: e.users, Devices: e.devs, OneTouch: e.ot,
		Verify: verify.New(st, nil, keys, verify.Config{}, nil), // no sends here: QR links only
		Usage:  apps.NewUsageRecorder(st, log), Live: e.broker}, m, log, cfg, e.clock.Now)
	mux := http.NewServeMux()
	e.api.Routes(mux)
	e.srv = httptest.NewUnstartedServer(authyapi.Handler(mux, m, log))
	// As serve sets them: a stream must outlive both.
	e.srv.Config.ReadTimeout, e.srv.Config.WriteTimeout = 30*time.Second, 30*time.Second
	if http2 {
		e.srv.EnableHTTP2 = true
		e.srv.StartTLS()
	} else {
		e.srv.Start()
	}
	t.Cleanup(e.srv.Close)
	t.Cleanup(e.api.StopStreams) // taken-over connections are not the test server's to close
	return e
}

// device registers a user with a device and returns the user's id and the device's token.
func (e *streamEnv) device(t *testing.T) (int64, string) {
	t.Helper()
	e.phones++
	u, _, err := e.users.Register(context.Background(), e.app.ID, users.Contact{Email: fmt.Sprintf("u%d@example.com", e.phones),
		Cellphone: fmt.Sprintf("201555%04d", e.phones), CountryCode: "1"})
	if err != nil {
		t.Fatal(err)
	}
	return u.ID, e.deviceFor(t, u.ID)
}

// deviceFor registers another device for user userID and returns its token.
func (e *streamEnv) deviceFor(t *testing.T, userID int64) string {
	t.Helper()
	ctx := context.Background()
	tok, _, err := e.devs.RegistrationToken(ctx, e.app.ID, userID)
	if err != nil {
		t.Fatal(err)
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	spki, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	body, _ := json.Marshal(map[string]string{"registration_token": tok, "public_key": base64.StdEncoding.EncodeToString(spki),
		"name": "phone", "os_type": "test"})
	res, err := e.srv.Client().Post(e.srv.URL+"/device/v1/registrations", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var out struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(res.Body).Decode(&out); err != nil || out.AccessToken == "" {
		t.Fatalf("register device: %d %v", res.StatusCode, err)
	}
	return out.AccessToken
}

func (e *streamEnv) request(t *testing.T, userID int64, msg string) twofold.ApprovalRequest {
	t.Helper()
	req, err := e.ot.Create(context.Background(), e.app, userID, onetouch.CreateParams{Message: msg})
	if err != nil {
		t.Fatal(err)
	}
	return req
}

// sseStream reads a stream's frames (the lines up to a blank one) as they come.
type sseStream struct {
	res    *http.Response
	frames chan string
	err    error // why the body ended, once frames is closed
}

func (e *streamEnv) open(t *testing.T, token, lastID string) *sseStream {
	t.Helper()
	req, _ := http.NewRequest("GET", e.srv.URL+"/device/v1/events", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	res, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != "text/event-stream" || res.Header.Get("Cache-Control") != "no-store" ||
		res.Header.Get("X-Accel-Buffering") != "no" {
		t.Fatalf("event stream: %d %v", res.StatusCode, res.Header)
	}
	s := &sseStream{res: res, frames: make(chan string, 64)}
	t.Cleanup(func() { res.Body.Close() })
	go func() {
		defer close(s.frames)
		r := bufio.NewReader(res.Body)
		var frame []string
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				s.err = err
				return
			}
			if line = strings.TrimSuffix(line, "\n"); line != "" {
				frame = append(frame, line)
				continue
			}
			s.frames <- strings.Join(frame, "\n")
			frame = nil
		}
	}()
	if f := s.next(t); f != "retry: 2000" {
		t.Fatalf("first frame %q", f)
	}
	return s
}

func (s *sseStream) next(t *testing.T) string {
	t.Helper()
	select {
	case f, ok := <-s.frames:
		if !ok {
			t.Fatalf("stream ended: %v", s.err)
		}
		return f
	case <-time.After(10 * time.Second): // a hang guard: frames take milliseconds
		t.Fatal("no frame")
		return ""
	}
}

// ended waits for the end of the stream and returns why it ended (io.EOF: cleanly).
func (s *sseStream) ended(t *testing.T) error {
	t.Helper()
	select {
	case f, ok := <-s.frames:
		if ok {
			t.Fatalf("frame %q instead of the end", f)
		}
		return s.err
	case <-time.After(10 * time.Second):
		t.Fatal("the stream stayed open")
		return nil
	}
}

func eventFrame(t *testing.T, f, event, uuid string) {
	t.Helper()
	if !strings.Contains(f, "\nevent: "+event+"\n") && !strings.HasPrefix(f, "event: "+event+"\n") || !strings.Contains(f, `"uuid":"`+uuid+`"`) {
		t.Fatalf("frame %q, want %s of %s", f, event, uuid)
	}
}

var protocols = []struct {
	name  string
	http2 bool
}{{"HTTP/1.1, connection taken over", false}, {"HTTP/2, handler stays", true}}

// Keep-alives go out every 15 s of the stream's life, from the broker's one timer; a wake-up
// in between sends only what changed and does not move them.
func TestEventStreamKeepAlive(t *testing.T) {
	for _, p := range protocols {
		t.Run(p.name, func(t *testing.T) {
			e := newStreamEnv(t, p.http2)
			user, token := e.device(t)
			s := e.open(t, token, "")
			if want := map[bool]int{false: 1, true: 2}[p.http2]; s.res.ProtoMajor != want {
				t.Fatalf("protocol %s", s.res.Proto)
			}
			e.clock.Advance(keepAliveTest - time.Millisecond)
			req := e.request(t, user, "Sign in")
			eventFrame(t, s.next(t), "approval_request", req.UUID) // no keep-alive before it
			e.clock.Advance(time.Millisecond)
			if f := s.next(t); f != ": keep-alive" {
				t.Fatalf("at 15 s: %q", f)
			}
			e.clock.Advance(keepAliveTest)
			if f := s.next(t); f != ": keep-alive" {
				t.Fatalf("at 30 s: %q", f)
			}
		})
	}
}

const keepAliveTest = 15 * time.Second // authyapi's keepAlive

// A removed device's stream ends at once, cleanly, with nothing more sent; so do all streams on
// StopStreams, and a stream opened after it.
func TestEventStreamEnds(t *testing.T) {
	for _, p := range protocols {
		t.Run(p.name, func(t *testing.T) {
			e := newStreamEnv(t, p.http2)
			user, token := e.device(t)
			pending := e.request(t, user, "Before connecting")
			s := e.open(t, token, "")
			eventFrame(t, s.next(t), "approval_request", pending.UUID)
			req, _ := http.NewRequest("DELETE", e.srv.URL+"/device/v1/device", nil)
			req.Header.Set("Authorization", "Bearer "+token)
			res, err := e.srv.Client().Do(req)
			if err != nil || res.StatusCode != 200 {
				t.Fatalf("remove device: %v %v", res, err)
			}
			res.Body.Close()
			if err := s.ended(t); !errors.Is(err, io.EOF) {
				t.Fatalf("removed device's stream ended with %v, want a clean end", err)
			}

			_, token2 := e.device(t)
			_, token3 := e.device(t)
			a, b := e.open(t, token2, ""), e.open(t, token3, "")
			e.api.StopStreams()
			for _, s := range []*sseStream{a, b} {
				if err := s.ended(t); !errors.Is(err, io.EOF) {
					t.Fatalf("stream ended on shutdown with %v, want a clean end", err)
				}
			}
			req, _ = http.NewRequest("GET", e.srv.URL+"/device/v1/events", nil)
			req.Header.Set("Authorization", "Bearer "+token2)
			res, err = e.srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, err := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode != 200 || len(body) > len("retry: 2000\n\n") || err != nil {
				t.Fatalf("stream opened after StopStreams: %d %q %v, want it ended at once", res.StatusCode, body, err)
			}
		})
	}
}

// A resumed stream first says where each request the client had stands, then sends what it
// missed.
func TestEventStreamResumes(t *testing.T) {
	e := newStreamEnv(t, false)
	user, token := e.device(t)
	first := e.request(t, user, "First")
	s := e.open(t, token, "")
	f := s.next(t)
	eventFrame(t, f, "approval_request", first.UUID)
	if !strings.HasPrefix(f, "id: "+strconv.FormatInt(first.ID, 10)+"\n") {
		t.Fatalf("frame without the request's id: %q", f)
	}
	s.res.Body.Close()
	missed := e.request(t, user, "While away")
	s = e.open(t, token, strconv.FormatInt(first.ID, 10))
	eventFrame(t, s.next(t), "approval_request_update", first.UUID)
	eventFrame(t, s.next(t), "approval_request", missed.UUID)
}

// The connection is taken over: while a stream waits, the server holds one small goroutine for
// it (noticing the client leave), not net/http's two, and a stream whose client left is
// forgotten. An HTTP/1.0 client gets the body without chunks, ended by the connection's close.
func TestEventStreamConnection(t *testing.T) {
	e := newStreamEnv(t, false)
	const n = 20
	tokens := make([]string, n)
	for i := range tokens {
		_, tokens[i] = e.device(t)
	}
	e.srv.Client().CloseIdleConnections()
	base := runtime.NumGoroutine()
	addr := strings.TrimPrefix(e.srv.URL, "http://")
	conns := make([]net.Conn, n)
	for i, tok := range tokens {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		proto := "HTTP/1.1"
		if i == 0 {
			proto = "HTTP/1.0"
		}
		fmt.Fprintf(c, "GET /device/v1/events %s\r\nHost: x\r\nAuthorization: Bearer %s\r\n\r\n", proto, tok)
		r := bufio.NewReader(c)
		var head []string
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				t.Fatal(err)
			}
			if line == "\r\n" {
				break
			}
			head = append(head, strings.TrimSpace(line))
		}
		chunked := strings.Contains(strings.Join(head, "\n"), "Transfer-Encoding: chunked")
		if head[0] != proto+" 200 OK" || chunked != (i != 0) {
			t.Fatalf("%s response head %q", proto, head)
		}
		want := "retry: 2000\n\n"
		if chunked {
			want = "d\r\n" + want + "\r\n"
		}
		got := make([]byte, len(want))
		if _, err := io.ReadFull(r, got); err != nil || string(got) != want {
			t.Fatalf("%s: first bytes %q, %v", proto, got, err)
		}
		conns[i] = c
	}
	if got := e.broker.Count(); got != n {
		t.Fatalf("%d streams watched, want %d", got, n)
	}
	// net/http's goroutines for each connection end once it is taken over: poll for that.
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > base+n+2 {
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines for %d streams, want about one each", runtime.NumGoroutine()-base, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	for _, c := range conns {
		c.Close()
	}
	for e.broker.Count() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d streams still watched after their clients left", e.broker.Count())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A request the user left pending is still reported when it changes, however many requests came
// and went after it: a wake-up reads what is new and what was sent while pending, not the fifty
// newest.
func TestEventStreamReportsOldPendingRequest(t *testing.T) {
	e := newStreamEnv(t, false)
	uid, tok := e.device(t)
	s := e.open(t, tok, "")
	old := e.request(t, uid, "left pending")
	eventFrame(t, s.next(t), "approval_request", old.UUID)
	for i := range 60 {
		r := e.request(t, uid, fmt.Sprint("newer ", i))
		eventFrame(t, s.next(t), "approval_request", r.UUID)
		if _, err := e.ot.Close(context.Background(), e.app, r.UUID); err != nil {
			t.Fatal(err)
		}
		eventFrame(t, s.next(t), "approval_request_update", r.UUID)
	}
	if _, err := e.ot.Close(context.Background(), e.app, old.UUID); err != nil {
		t.Fatal(err)
	}
	eventFrame(t, s.next(t), "approval_request_update", old.UUID)
}
