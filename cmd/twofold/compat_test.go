package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// compatDir holds the Node.js compatibility suite: package.json pinning the real Authy client
// libraries from the npm registry, its package-lock.json, and compat.js.
const compatDir = "testdata/compat"

// TestAuthyClientsCompat runs the real Authy client libraries (npm authy-client 1.1.4 and
// authy 1.4.0) against a running server, through testdata/compat/compat.js, OneTouch included:
// the script plays the user's device on /device/v1 and the customer's callback endpoint, whose
// callbacks authy-client's verifyCallback checks. It needs node and the packages installed with
// `npm ci --prefix cmd/twofold/testdata/compat`; without them it is skipped, unless
// TWOFOLD_REQUIRE_COMPAT=1 makes that a failure (for CI).
func TestAuthyClientsCompat(t *testing.T) {
	node := compatNode(t, "authy-client", "authy")

	s := startServer(t, "", "--rate-limit", "off", "--callback-allow-hosts", "127.0.0.1")
	oracle := httptest.NewServer(compatCodeOracle(s))
	t.Cleanup(oracle.Close)

	runCompatScript(t, node, "compat.js",
		"TWOFOLD_URL="+s.url,
		"TWOFOLD_API_KEY="+s.key,
		"TWOFOLD_ORACLE="+oracle.URL,
	)
}

// runCompatScript runs a script of compatDir with node and env added to the environment, and
// fails the test unless it finishes in time, exits 0, prints no FAIL line and ends with ALL
// CHECKS PASSED.
func runCompatScript(t *testing.T, node, script string, env ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, script)
	cmd.Dir = compatDir
	cmd.Env = append(append(os.Environ(), env...), "NODE_OPTIONS=") // no inherited preloads or flags
	out := &compatLineLog{t: t}
	cmd.Stdout = out
	cmd.Stderr = out
	cmd.WaitDelay = 5 * time.Second
	err := cmd.Run()
	out.flush()
	output := out.String()

	var failed []string
	for _, line := range strings.Split(output, "\n") {
		if strings.HasPrefix(line, "FAIL") {
			failed = append(failed, line)
		}
	}
	switch {
	case ctx.Err() != nil:
		t.Fatalf("node %s did not finish within the timeout: %v\nfailed checks:\n%s", script, err, strings.Join(failed, "\n"))
	case err != nil:
		t.Fatalf("node %s: %v\nfailed checks:\n%s", script, err, strings.Join(failed, "\n"))
	case !strings.Contains(output, "ALL CHECKS PASSED"):
		t.Fatalf("node %s exited 0 without reporting that all checks passed", script)
	case len(failed) > 0:
		t.Fatalf("node %s exited 0 but reported failures:\n%s", script, strings.Join(failed, "\n"))
	}
}

// compatNode returns the path of node, once it has checked that the npm packages are installed
// in compatDir. Without them the test is skipped, unless TWOFOLD_REQUIRE_COMPAT=1 makes that a
// failure (for CI).
func compatNode(t *testing.T, packages ...string) string {
	t.Helper()
	required := os.Getenv("TWOFOLD_REQUIRE_COMPAT") == "1"
	unavailable := func(format string, args ...any) {
		t.Helper()
		msg := fmt.Sprintf(format, args...)
		if required {
			t.Fatalf("%s (TWOFOLD_REQUIRE_COMPAT=1)", msg)
		}
		t.Skipf("%s; set TWOFOLD_REQUIRE_COMPAT=1 to make this a failure", msg)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		unavailable("node not found in PATH: %v", err)
	}
	for _, pkg := range packages {
		if _, err := os.Stat(filepath.Join(compatDir, "node_modules", pkg, "package.json")); err != nil {
			unavailable("npm package %s is not installed in cmd/twofold/%s: run `npm ci --prefix cmd/twofold/testdata/compat`", pkg, compatDir)
		}
	}
	return node
}

// compatCodeOracle is the test's side channel for compat.js, doing what a developer would do
// with the twofold command:
//
//   - GET /code?to=+1...[&channel=sms|call|email] answers with the newest code sent to that
//     recipient (by that channel), read from `twofold outbox`;
//   - POST /callback-url?url=...&method=POST|GET points application 1's OneTouch callbacks at
//     url with `twofold app update 1 --callback-url url --callback-method method` (method
//     defaults to POST).
//
// It runs on the oracle server's goroutines, so it reports problems in its answer instead of
// failing the test.
func compatCodeOracle(s *server) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && r.URL.Path == "/callback-url" {
			compatSetCallbackURL(s, w, r)
			return
		}
		if r.Method != http.MethodGet || r.URL.Path != "/code" {
			http.NotFound(w, r)
			return
		}
		to := strings.TrimSpace(r.URL.Query().Get("to"))
		if to == "" {
			http.Error(w, "missing ?to=", http.StatusBadRequest)
			return
		}
		code, err := compatOutboxCode(s, to, r.URL.Query().Get("channel"))
		if err != nil {
			http.Error(w, err.Error(), http.StatusNotFound)
			return
		}
		io.WriteString(w, code)
	})
}

// compatSetCallbackURL serves POST /callback-url?url=...&method=... for compatCodeOracle.
func compatSetCallbackURL(s *server, w http.ResponseWriter, r *http.Request) {
	target := r.URL.Query().Get("url")
	if target == "" {
		http.Error(w, "missing ?url=", http.StatusBadRequest)
		return
	}
	method := r.URL.Query().Get("method")
	if method == "" {
		method = http.MethodPost
	}
	out, err := s.cli("app", "update", "1", "--callback-url", target, "--callback-method", method)
	if err != nil {
		http.Error(w, fmt.Sprintf("twofold app update 1 --callback-url %s --callback-method %s: %v\n%s", target, method, err, out),
			http.StatusInternalServerError)
		return
	}
	io.WriteString(w, out)
}

// compatOutboxCode is lastCode returning an error instead of failing the test, optionally only
// looking at messages of one channel. A voice message reads the code digit by digit
// ("is: 1, 2, 3, ..."), so digits separated by ", " are joined first.
func compatOutboxCode(s *server, recipient, channel string) (string, error) {
	out, err := s.cli("outbox", "--to", recipient, "--json")
	if err != nil {
		return "", fmt.Errorf("twofold outbox --to %s: %w", recipient, err)
	}
	var msgs []struct {
		Body    string `json:"body"`
		To      string `json:"to"`
		Channel string `json:"channel"`
	}
	if err := json.Unmarshal([]byte(out), &msgs); err != nil {
		return "", fmt.Errorf("twofold outbox --to %s: bad JSON %v:\n%s", recipient, err, out)
	}
	if channel != "" {
		kept := msgs[:0]
		for _, m := range msgs {
			if m.Channel == channel {
				kept = append(kept, m)
			}
		}
		msgs = kept
	}
	if len(msgs) == 0 {
		return "", fmt.Errorf("no %s message to %s in the outbox", channel, recipient)
	}
	body := msgs[len(msgs)-1].Body
	code := messageCode(body, 0)
	if code == "" {
		return "", fmt.Errorf("no code in %q", body)
	}
	return code, nil
}

// compatLineLog logs a child process's output line by line as it arrives and keeps all of it.
type compatLineLog struct {
	t       *testing.T
	mu      sync.Mutex
	all     bytes.Buffer
	partial []byte
}

func (l *compatLineLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.all.Write(p)
	l.partial = append(l.partial, p...)
	for {
		i := bytes.IndexByte(l.partial, '\n')
		if i < 0 {
			break
		}
		l.t.Log(string(l.partial[:i]))
		l.partial = l.partial[i+1:]
	}
	return len(p), nil
}

// flush logs an unterminated last line.
func (l *compatLineLog) flush() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.partial) > 0 {
		l.t.Log(string(l.partial))
		l.partial = nil
	}
}

func (l *compatLineLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.all.String()
}
