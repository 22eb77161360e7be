package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// liveCLI is a `twofold device` command running in the background, its stdin a pipe.
type liveCLI struct {
	t      *testing.T
	stdin  *io.PipeWriter
	out    *notifyBuffer
	errOut *notifyBuffer
	cancel context.CancelFunc
	done   chan error
}

func (a *authenticator) start(args ...string) *liveCLI {
	a.t.Helper()
	r, w := io.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	c := &liveCLI{t: a.t, stdin: w, out: newNotifyBuffer(), errOut: newNotifyBuffer(), cancel: cancel, done: make(chan error, 1)}
	env := a.env(r, c.out, c.errOut)
	go func() { c.done <- run(ctx, append([]string{"device"}, args...), env) }()
	a.t.Cleanup(func() {
		cancel()
		w.Close()
		<-c.done
	})
	return c
}

func (c *liveCLI) send(line string) {
	c.t.Helper()
	if _, err := io.WriteString(c.stdin, line+"\n"); err != nil {
		c.t.Fatalf("writing %q: %v", line, err)
	}
}

// wait waits for the command to end by itself.
func (c *liveCLI) wait() error {
	c.t.Helper()
	select {
	case err := <-c.done:
		c.done <- err // for the cleanup
		return err
	case <-time.After(20 * time.Second):
		c.t.Fatalf("the command did not end; output:\n%s\nstderr:\n%s", c.out.String(), c.errOut.String())
		return nil
	}
}

func TestDeviceWatchApprove(t *testing.T) {
	s := startServer(t, "", "--rate-limit", "off")
	a := newAuthenticator(t)
	alice := s.register(s.key, "alice@example.com", "2015550123")
	dev := enrolUser(t, s, a, alice)

	w := a.start("watch", "--once")
	w.errOut.waitFor(t, "Waiting for approval requests")
	// A request made while watching arrives live and is shown with its details.
	uuid := s.createRequest(s.key, alice, url.Values{"message": {"Login from Paris"}, "details[City]": {"Paris"},
		"details[Browser]": {"Firefox"}, "details[Note]": {"\x1b[2J\u202egnp.exe"}, "hidden_details[ip]": {"1.2.3.4"}})
	shown := w.out.waitFor(t, "approve? [y/n] ")
	for _, want := range []string{uuid, "Login from Paris", "City: Paris", "Browser: Firefox", dev.AppName, fmt.Sprintf("authy id %d", alice)} {
		if !strings.Contains(shown, want) {
			t.Errorf("the prompt lacks %q:\n%s", want, shown)
		}
	}
	if strings.Contains(shown, "1.2.3.4") {
		t.Errorf("hidden details shown:\n%s", shown)
	}
	// Terminal escapes and bidi overrides from the server are not passed to the terminal.
	if strings.ContainsAny(shown, "\x1b\u202e") || !strings.Contains(shown, "Note: \ufffd[2J\ufffdgnp.exe") {
		t.Errorf("control characters reach the terminal: %q", shown)
	}
	w.send("y")
	if err := w.wait(); err != nil {
		t.Fatalf("watch: %v\n%s", err, w.errOut.String())
	}
	w.out.waitFor(t, "Approved.")
	if got := s.requestStatus(uuid); got["status"] != "approved" {
		t.Fatalf("after watch approved: %v", got)
	}
}

func TestDeviceWatchDenyWithReason(t *testing.T) {
	s := startServer(t, "", "--rate-limit", "off")
	a := newAuthenticator(t)
	alice := s.register(s.key, "alice@example.com", "2015550123")
	enrolUser(t, s, a, alice)

	// A request made before watching is shown when the stream connects.
	uuid := s.createRequest(s.key, alice, url.Values{"message": {"Transfer $500"}})
	w := a.start("watch", "--once")
	w.out.waitFor(t, "Transfer $500")
	w.out.waitFor(t, "approve? [y/n] ")
	w.send("perhaps")
	w.out.waitFor(t, "Answer y")
	w.out.waitFor(t, "approve? [y/n] ")
	w.send("n")
	w.out.waitFor(t, "reason (optional")
	w.send("I did not ask for this")
	if err := w.wait(); err != nil {
		t.Fatalf("watch: %v", err)
	}
	if got := s.requestStatus(uuid); got["status"] != "denied" || got["reason"] != "I did not ask for this" {
		t.Fatalf("after watch denied: %v", got)
	}
}

// "x" at the reason is a request the user did not make: the reason "not requested".
func TestDeviceWatchDenyNotRequested(t *testing.T) {
	s := startServer(t, "", "--rate-limit", "off")
	a := newAuthenticator(t)
	alice := s.register(s.key, "alice@example.com", "2015550123")
	enrolUser(t, s, a, alice)
	uuid := s.createRequest(s.key, alice, url.Values{"message": {"Sign in?"}})
	w := a.start("watch", "--once")
	w.out.waitFor(t, "approve? [y/n] ")
	w.send("n")
	w.out.waitFor(t, "x if you did not make this request")
	w.send("X")
	if err := w.wait(); err != nil {
		t.Fatalf("watch: %v", err)
	}
	if got := s.requestStatus(uuid); got["status"] != "denied" || got["reason"] != "not requested" {
		t.Fatalf("after watch denied: %v", got)
	}
}

func TestDeviceWatchNumberMatching(t *testing.T) {
	s := startServer(t, "", "--rate-limit", "off")
	a := newAuthenticator(t)
	alice := s.register(s.key, "alice@example.com", "2015550123")
	enrolUser(t, s, a, alice)
	// A TOTP account in the vault too: watch ignores it.
	a.must("enrol", "otpauth://totp/GitHub:ada?secret=JBSWY3DPEHPK3PXP")

	r := s.post(fmt.Sprintf("/onetouch/json/users/%d/approval_requests", alice), url.Values{"message": {"Login"}, "number_matching": {"true"}})
	ar := r.body["approval_request"].(map[string]any)
	uuid, number := ar["uuid"].(string), ar["number"].(string)
	w := a.start("watch", "--once", "--account", "1")
	if shown := w.out.waitFor(t, "approve? [y/n] "); strings.Contains(shown, " "+number+"\n") || !strings.Contains(shown, "Number matching") {
		t.Fatalf("number matching prompt:\n%s", shown)
	}
	w.send("y")
	w.out.waitFor(t, "number shown on the login page: ")
	w.send("twelve")
	w.out.waitFor(t, "number shown on the login page: ")
	w.send(number)
	if err := w.wait(); err != nil {
		t.Fatalf("watch: %v", err)
	}
	if got := s.requestStatus(uuid); got["status"] != "approved" {
		t.Fatalf("after the right number: %v", got)
	}
}

func TestDeviceWatchKeepsGoing(t *testing.T) {
	s := startServer(t, "", "--rate-limit", "off")
	a := newAuthenticator(t)
	alice := s.register(s.key, "alice@example.com", "2015550123")
	dev := enrolUser(t, s, a, alice)

	w := a.start("watch")
	w.errOut.waitFor(t, "Waiting for approval requests")
	first := s.createRequest(s.key, alice, url.Values{"message": {"First"}})
	w.out.waitFor(t, "approve? [y/n] ")
	w.send("y")
	w.out.waitFor(t, "Approved.")

	// A request answered elsewhere while it is being asked about is dropped from the prompt.
	second := s.createRequest(s.key, alice, url.Values{"message": {"Second"}})
	w.out.waitFor(t, "approve? [y/n] ")
	a.must("deny", second, "--reason", "from the other terminal")
	w.out.waitFor(t, "denied elsewhere")

	third := s.createRequest(s.key, alice, url.Values{"message": {"Third"}})
	w.out.waitFor(t, "Third")
	w.out.waitFor(t, "approve? [y/n] ")
	w.send("n")
	w.out.waitFor(t, "reason")
	w.send("")
	w.out.waitFor(t, "Denied.")
	// End of input ends it cleanly.
	w.stdin.Close()
	if err := w.wait(); err != nil {
		t.Fatalf("watch after EOF: %v", err)
	}
	for uuid, want := range map[string]string{first: "approved", second: "denied", third: "denied"} {
		if got := s.requestStatus(uuid)["status"]; got != want {
			t.Errorf("%s: %v, want %s", uuid, got, want)
		}
	}

	// Cancelling (Ctrl-C) ends it cleanly too.
	w = a.start("watch")
	w.errOut.waitFor(t, "Waiting for approval requests")
	w.cancel()
	if err := w.wait(); err != nil {
		t.Fatalf("watch after cancel: %v", err)
	}

	// A device the application removed is refused at once, not retried.
	if r := s.do("DELETE", fmt.Sprintf("/protected/json/sdk/devices/%d", dev.DeviceID), s.key, nil); r.status != 200 {
		t.Fatalf("delete device: %s", r.raw)
	}
	w = a.start("watch")
	if err := w.wait(); err == nil || !strings.Contains(err.Error(), "60072") {
		t.Fatalf("watch with a removed device: %v", err)
	}
}

// TestStreamerReconnects drives the stream client against a server that drops the first
// connection: it resumes with Last-Event-ID, and gives up on refusals and endless failures.
func TestStreamerReconnects(t *testing.T) {
	var conns atomic.Int32
	lastIDs := make(chan string, 4)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer tfd_test" {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(401)
			io.WriteString(w, `{"message":"Invalid device access token","success":false,"error_code":"60072"}`)
			return
		}
		lastIDs <- r.Header.Get("Last-Event-ID")
		w.Header().Set("Content-Type", "text/event-stream")
		switch conns.Add(1) {
		case 1:
			io.WriteString(w, "retry: 1\n\nid: 7\nevent: approval_request\ndata: {\"uuid\":\"a\",\n\n")
			io.WriteString(w, "id: 8\nevent: approval_request\ndata: {\"uuid\":\"b\"}\n\n: keep-alive\n\n")
		case 2:
			io.WriteString(w, "event: approval_request_update\ndata: {\"uuid\":\"b\",\"status\":\"approved\"}\n\n")
			io.WriteString(w, "id: 9\nevent: approval_request\ndata: {\"uuid\":\"c\"}\n\n")
			w.(http.Flusher).Flush()
			<-r.Context().Done()
		}
	}))
	defer srv.Close()
	var logs []string
	st := &streamer{minDelay: time.Millisecond, maxDelay: 10 * time.Millisecond, maxFailures: 3, healthy: time.Minute, idle: time.Minute,
		log: func(f string, a ...any) { logs = append(logs, fmt.Sprintf(f, a...)) }}
	api := deviceAPI{client: srv.Client(), server: srv.URL, token: "tfd_test"}
	ctx, cancel := context.WithCancel(context.Background())
	var got []string
	err := st.run(ctx, api, "test", nil, func(ev streamEvent) error {
		got = append(got, ev.ID+" "+ev.Event+" "+ev.Data)
		if strings.Contains(ev.Data, `"c"`) {
			cancel()
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{`7 approval_request {"uuid":"a",`, `8 approval_request {"uuid":"b"}`,
		`8 approval_request_update {"uuid":"b","status":"approved"}`, `9 approval_request {"uuid":"c"}`}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("events:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if first, second := <-lastIDs, <-lastIDs; first != "" || second != "8" {
		t.Fatalf("Last-Event-ID %q then %q, want none then 8", first, second)
	}
	if len(logs) != 1 || !strings.Contains(logs[0], "reconnecting") {
		t.Fatalf("logs: %q", logs)
	}

	// A refused token is final; a server that keeps failing is given up on after maxFailures.
	err = st.run(context.Background(), deviceAPI{client: srv.Client(), server: srv.URL, token: "tfd_other"}, "test", nil, nil)
	if !errors.Is(err, errStreamRefused) || !strings.Contains(err.Error(), "60072") {
		t.Fatalf("refused token: %v", err)
	}
	var tries atomic.Int32
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tries.Add(1)
		w.WriteHeader(http.StatusBadGateway)
	}))
	defer down.Close()
	logs = nil
	err = st.run(context.Background(), deviceAPI{client: down.Client(), server: down.URL, token: "tfd_test"}, "test", nil, nil)
	if err == nil || !strings.Contains(err.Error(), "giving up") || tries.Load() != 4 || len(logs) != 3 {
		t.Fatalf("failing server: %v after %d tries, logs %q", err, tries.Load(), logs)
	}
}
