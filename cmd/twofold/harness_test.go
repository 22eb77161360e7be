package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twofold-auth/twofold/internal/otp"
)

// server is a real twofold serve, started through run() on a loopback port with a data
// directory of its own.
type server struct {
	t       *testing.T
	dataDir string
	url     string
	key     string // API key of the first application
	cancel  context.CancelFunc
	done    chan error
	logs    *syncBuffer
	client  *http.Client // its own connections: never one left over from another test's server
	cliArgs []string     // given to every CLI command too: the server's --database
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

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// startServer runs `twofold serve` with extra args on dataDir ("" for a fresh one) and waits
// until it listens. It stops the server at the end of the test.
func startServer(t *testing.T, dataDir string, args ...string) *server {
	t.Helper()
	return startServerEnv(t, dataDir, nil, args...)
}

// startServerEnv is startServer with a chance to set hooks of the Env.
func startServerEnv(t *testing.T, dataDir string, hook func(*Env), args ...string) *server {
	t.Helper()
	if dataDir == "" {
		dataDir = t.TempDir()
	}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	s := &server{t: t, dataDir: dataDir, cancel: cancel, done: make(chan error, 1), logs: &syncBuffer{},
		client: &http.Client{Transport: &http.Transport{}, Timeout: time.Minute}}
	for i, a := range args {
		if a == "--database" && i+1 < len(args) {
			s.cliArgs = []string{"--database", args[i+1]}
		}
	}
	env := Env{Stdout: s.logs, Stderr: s.logs, Getenv: func(string) string { return "" }, Ready: func(a string) { ready <- a }}
	if hook != nil {
		hook(&env)
	}
	all := append([]string{"serve", "--addr", "127.0.0.1:0", "--data-dir", dataDir}, args...)
	go func() { s.done <- run(ctx, all, env) }()
	select {
	case addr := <-ready:
		s.url = "http://" + addr
	case err := <-s.done:
		t.Fatalf("server did not start: %v\n%s", err, s.logs.String())
	case <-time.After(30 * time.Second):
		t.Fatalf("server did not start in time\n%s", s.logs.String())
	}
	t.Cleanup(func() { s.stop() })
	var shown struct {
		APIKey string `json:"api_key"`
	}
	s.cliJSON(&shown, "app", "show", "1", "--show-key", "--json")
	s.key = shown.APIKey
	return s
}

// stop shuts the server down gracefully and waits for it.
func (s *server) stop() {
	if s.cancel == nil {
		return
	}
	s.cancel()
	s.cancel = nil
	if err := <-s.done; err != nil {
		s.t.Errorf("server stopped with error: %v\n%s", err, s.logs.String())
	}
}

// cli runs a twofold command against the server's data directory and returns its stdout.
func (s *server) cli(args ...string) (string, error) {
	return runCLI(s.dataDir, append(args, s.cliArgs...)...)
}

func runCLI(dataDir string, args ...string) (string, error) {
	var out, errOut bytes.Buffer
	env := Env{Stdout: &out, Stderr: &errOut, Getenv: func(string) string { return "" }}
	err := run(context.Background(), append(args, "--data-dir", dataDir), env)
	if err != nil {
		return out.String(), fmt.Errorf("%w (stderr: %s)", err, errOut.String())
	}
	return out.String(), nil
}

func (s *server) cliJSON(v any, args ...string) {
	s.t.Helper()
	out, err := s.cli(append(args, "--json")...)
	if err != nil {
		s.t.Fatalf("twofold %v: %v", args, err)
	}
	if err := json.Unmarshal([]byte(out), v); err != nil {
		s.t.Fatalf("twofold %v: bad JSON %v:\n%s", args, err, out)
	}
}

// response is an API answer.
type response struct {
	status int
	header http.Header
	raw    string
	body   map[string]any
}

// do sends method path with the API key in the header (key "" sends none) and a body: a
// url.Values is sent as a form, a string as JSON, nil as nothing.
func (s *server) do(method, path, key string, body any) response {
	s.t.Helper()
	var rd io.Reader
	ctype := ""
	switch b := body.(type) {
	case url.Values:
		rd, ctype = strings.NewReader(b.Encode()), "application/x-www-form-urlencoded"
	case string:
		rd, ctype = strings.NewReader(b), "application/json"
	case nil:
	default:
		s.t.Fatalf("unsupported body %T", body)
	}
	req, err := http.NewRequest(method, s.url+path, rd)
	if err != nil {
		s.t.Fatal(err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if key != "" {
		req.Header.Set("X-Authy-API-Key", key)
	}
	res, err := s.client.Do(req)
	if err != nil {
		s.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		s.t.Fatal(err)
	}
	r := response{status: res.StatusCode, header: res.Header, raw: string(raw)}
	if strings.HasPrefix(res.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(raw, &r.body); err != nil {
			s.t.Fatalf("%s %s: invalid JSON %q: %v", method, path, raw, err)
		}
	}
	return r
}

// get and post use the first application's key.
func (s *server) get(path string) response { s.t.Helper(); return s.do("GET", path, s.key, nil) }
func (s *server) post(path string, form url.Values) response {
	s.t.Helper()
	return s.do("POST", path, s.key, form)
}

// register makes a user and returns its Authy id.
func (s *server) register(key, email, phone string) int64 {
	s.t.Helper()
	r := s.do("POST", "/protected/json/users/new", key, url.Values{
		"user[email]": {email}, "user[cellphone]": {phone}, "user[country_code]": {"1"},
	})
	if r.status != 200 {
		s.t.Fatalf("register %s: %d %s", email, r.status, r.raw)
	}
	return int64(r.body["user"].(map[string]any)["id"].(float64))
}

// lastCode reads the newest code sent to recipient from the outbox, as a developer would.
func (s *server) lastCode(recipient string) string {
	s.t.Helper()
	var msgs []struct {
		Body string `json:"body"`
		To   string `json:"to"`
	}
	s.cliJSON(&msgs, "outbox", "--to", recipient)
	if len(msgs) == 0 {
		s.t.Fatalf("no message to %s in the outbox", recipient)
	}
	return codeIn(s.t, msgs[len(msgs)-1].Body)
}

// codeIn returns the code a message carries.
func codeIn(t *testing.T, body string) string {
	t.Helper()
	code := messageCode(body, 0)
	if code == "" {
		t.Fatalf("no code in %q", body)
	}
	return code
}

// expectError checks the Authy error envelope: status, error_code as a string, message in
// errors, success false.
func expectError(t *testing.T, r response, status int, code string) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d: %s", r.status, status, r.raw)
	}
	if got, ok := r.body["error_code"].(string); !ok || got != code {
		t.Fatalf("error_code %#v, want %q: %s", r.body["error_code"], code, r.raw)
	}
	if r.body["success"] != false {
		t.Fatalf("success %#v, want false: %s", r.body["success"], r.raw)
	}
	errs, ok := r.body["errors"].(map[string]any)
	if !ok || errs["message"] != r.body["message"] || r.body["message"] == "" {
		t.Fatalf("errors.message does not repeat message: %s", r.raw)
	}
	for k, v := range errs {
		if _, ok := v.(string); !ok {
			t.Fatalf("errors[%s] is %T, want string: %s", k, v, r.raw)
		}
	}
}

// operator is what `twofold admin create --json` gives a new console operator.
type operator struct {
	TOTP              otp.TOTP // the authenticator app's seed
	RegistrationToken string   // registers a device for push sign-in
}

// createOperator makes a console operator with `twofold admin create` on dataDir; args may name
// the database (--database).
func createOperator(t *testing.T, dataDir, email, password string, args ...string) operator {
	t.Helper()
	initDir(t, dataDir, args...)
	out, err := runWithStdin(t, dataDir, password+"\n", append([]string{"admin", "create", email, "--json"}, args...)...)
	if err != nil {
		t.Fatalf("admin create: %v\n%s", err, out)
	}
	var created struct {
		TOTPURI           string `json:"totp_uri"`
		RegistrationToken string `json:"registration_token"`
	}
	if err := json.Unmarshal([]byte(out), &created); err != nil {
		t.Fatal(err)
	}
	key, err := otp.ParseURI(created.TOTPURI)
	if err != nil {
		t.Fatal(err)
	}
	return operator{TOTP: key.TOTP, RegistrationToken: created.RegistrationToken}
}

// initDir makes an installation in dataDir (twofold init: nothing if there is one), for a test
// that runs a command other than serve before its first server. args may carry --database.
func initDir(t *testing.T, dataDir string, args ...string) {
	t.Helper()
	var db []string
	for i, a := range args {
		if a == "--database" && i+1 < len(args) {
			db = []string{"--database", args[i+1]}
		}
	}
	if out, err := runCLI(dataDir, append([]string{"init"}, db...)...); err != nil {
		t.Fatalf("init: %v\n%s", err, out)
	}
}
