package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twofold-auth/twofold/internal/testbin"
)

// requestLines returns the access log's lines (text format) in logs.
func requestLines(logs string) []string {
	var out []string
	for _, l := range strings.Split(logs, "\n") {
		if strings.Contains(l, " msg=request ") {
			out = append(out, l)
		}
	}
	return out
}

// lineWith returns the one access log line in logs that holds the request id, or fails. The
// line is written once the handler returns, which may be after the client has its answer: it
// is waited for, a few seconds at most.
func lineWith(t *testing.T, logs *syncBuffer, id string) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var found []string
		for _, l := range requestLines(logs.String()) {
			if strings.Contains(l, "request_id="+id) {
				found = append(found, l)
			}
		}
		if len(found) == 1 {
			return found[0]
		}
		if len(found) > 1 || time.Now().After(deadline) {
			t.Fatalf("%d access log lines with request_id=%s:\n%s", len(found), id, logs.String())
		}
		runtime.Gosched()
	}
}

var requestID = regexp.MustCompile(`^[0-9a-f]{16}$`)

// Every request is logged at info with its route pattern, status, application and request id,
// and answered with that id: never the code or token in its path, nor the API key, wherever the
// key was sent.
func TestAccessLog(t *testing.T) {
	s := startServer(t, "", "--rate-limit", "off")
	user := s.register(s.key, "ana@example.com", "2015550123")
	const code = "8231456"

	// The key in the query string, a code in the path.
	res := s.do("GET", fmt.Sprintf("/protected/json/verify/%s/%d?api_key=%s", code, user, s.key), "", nil)
	id := res.header.Get("X-Request-Id")
	if res.status != 401 || !requestID.MatchString(id) {
		t.Fatalf("verify: %d, X-Request-Id %q", res.status, id)
	}
	line := lineWith(t, s.logs, id)
	for _, want := range []string{"level=INFO", "method=GET", `route="GET /protected/json/verify/{token}/{id}"`, "status=401", "app_id=1", "ms="} {
		if !strings.Contains(line, want) {
			t.Errorf("the line lacks %s: %s", want, line)
		}
	}
	// The key in the header: the same.
	res = s.do("GET", fmt.Sprintf("/protected/json/users/%d/status", user), s.key, nil)
	line = lineWith(t, s.logs, res.header.Get("X-Request-Id"))
	if !strings.Contains(line, `route="GET /protected/json/users/{id}/status"`) || !strings.Contains(line, "status=200") {
		t.Errorf("status line: %s", line)
	}
	// A wrong key: no application.
	res = s.do("GET", "/protected/json/app/details", "wrong-key-"+strings.Repeat("x", 22), nil)
	if line := lineWith(t, s.logs, res.header.Get("X-Request-Id")); strings.Contains(line, "app_id=") || !strings.Contains(line, "status=401") {
		t.Errorf("wrong key line: %s", line)
	}
	// Every surface answers with an id: the API's 404, the console, the health check, the
	// web authenticator, the home page.
	for _, path := range []string{"/no/such/route", "/console/signin", "/healthz", "/authenticator/", "/", "/metrics"} {
		res := s.do("GET", path, "", nil)
		if id := res.header.Get("X-Request-Id"); !requestID.MatchString(id) {
			t.Errorf("GET %s: X-Request-Id %q", path, id)
		} else if line := lineWith(t, s.logs, id); !strings.Contains(line, fmt.Sprintf("status=%d", res.status)) {
			t.Errorf("GET %s: %s", path, line)
		}
	}
	logs := s.logs.String()
	for _, secret := range []string{s.key, code, "api_key", "/no/such/route"} {
		if strings.Contains(logs, secret) {
			t.Errorf("the logs hold %q", secret)
		}
	}
}

// A request id from a client is not believed (it could say anything); a trusted proxy's is
// kept when it is sane, and replaced when it is not.
func TestRequestIDFromProxies(t *testing.T) {
	send := func(s *server, id string) string {
		req, err := http.NewRequest("GET", s.url+"/healthz", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("X-Request-Id", id)
		res, err := s.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		return res.Header.Get("X-Request-Id")
	}
	hostile := []string{"<script>alert(1)</script>", strings.Repeat("a", 65), "a b", "id\u202eevil", `"quoted"`, "a,b"}

	s := startServer(t, "") // no trusted proxies: the loopback client is a client
	if got := send(s, "proxy-id-1"); got == "proxy-id-1" || !requestID.MatchString(got) {
		t.Errorf("a client's id was kept: %q", got)
	}
	s.stop()
	p := startServer(t, "", "--trusted-proxies", "127.0.0.1")
	if got := send(p, "proxy-id-1"); got != "proxy-id-1" {
		t.Errorf("the trusted proxy's id became %q", got)
	}
	lineWith(t, p.logs, "proxy-id-1")
	for _, id := range hostile {
		if got := send(p, id); got == id || !requestID.MatchString(got) {
			t.Errorf("%q from the proxy answered %q", id, got)
		}
	}
	for _, id := range hostile {
		if strings.Contains(p.logs.String(), id) {
			t.Errorf("the logs hold %q", id)
		}
	}
}

// --access-log=false (TWOFOLD_ACCESS_LOG=false) logs no request; ids are still given.
func TestAccessLogOff(t *testing.T) {
	for _, tc := range []struct {
		args []string
		env  map[string]string
	}{
		{[]string{"--access-log=false"}, nil},
		{nil, map[string]string{"TWOFOLD_ACCESS_LOG": "false"}},
	} {
		s := startServerEnv(t, "", func(e *Env) { e.Getenv = func(k string) string { return tc.env[k] } }, tc.args...)
		res := s.do("GET", "/healthz", "", nil)
		if !requestID.MatchString(res.header.Get("X-Request-Id")) {
			t.Errorf("%v %v: no request id", tc.args, tc.env)
		}
		s.stop()
		if lines := requestLines(s.logs.String()); len(lines) != 0 {
			t.Errorf("%v %v: requests logged:\n%s", tc.args, tc.env, strings.Join(lines, "\n"))
		}
		if !strings.Contains(s.logs.String(), "twofold listening") {
			t.Errorf("%v %v: the other logs are gone too", tc.args, tc.env)
		}
	}
}

// With JSON logs (here from TWOFOLD_LOG_FORMAT) every line a server writes on standard error,
// from its first start to its stop, and when it cannot start, is JSON; nothing is written on
// standard output. The placeholder Web Push contact is not warned about: nothing uses Web Push.
func TestJSONLogsOnly(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := testbin.Twofold(t)
	dir := t.TempDir()
	env := cleanEnv("TWOFOLD_LOG_FORMAT=json", "TWOFOLD_ADDR=127.0.0.1:0", "TWOFOLD_DATA_DIR="+dir)
	p := startBin(t, bin, env, "serve")
	m := p.waitFor(t, regexp.MustCompile(`"addr":"http://(127\.0\.0\.1:\d+)"`))
	base := "http://" + m[1]
	for _, path := range []string{"/", "/healthz", "/protected/json/app/details?api_key=nope", "/console/signin", "/no/such"} {
		res, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := p.exit(t); code != 0 {
		t.Fatalf("serve exited %d:\n%s", code, p.logs.String())
	}
	checkJSONLines(t, p.logs.String(), `"msg":"request"`)
	if out := p.stdout.String(); out != "" {
		t.Errorf("serve wrote on standard output: %q", out)
	}

	// A server that cannot start (the port is taken) says why in JSON too, and exits 1.
	q := startBin(t, bin, env, "serve")
	m = q.waitFor(t, regexp.MustCompile(`"addr":"http://(127\.0\.0\.1:\d+)"`))
	busy := startBin(t, bin, cleanEnv("TWOFOLD_LOG_FORMAT=json", "TWOFOLD_ADDR="+m[1], "TWOFOLD_DATA_DIR="+t.TempDir()), "serve")
	if code := busy.exit(t); code != 1 {
		t.Fatalf("serve on a busy port exited %d", code)
	}
	checkJSONLines(t, busy.logs.String(), "in use")
	// And one refused by the lock of a data directory in use.
	locked := startBin(t, bin, env, "serve")
	if code := locked.exit(t); code != 1 {
		t.Fatalf("a second serve exited %d", code)
	}
	checkJSONLines(t, locked.logs.String(), "already running")
}

// checkJSONLines fails unless every line of logs is a JSON object, some with want.
func checkJSONLines(t *testing.T, logs, want string) {
	t.Helper()
	sc := bufio.NewScanner(strings.NewReader(logs))
	n := 0
	for sc.Scan() {
		n++
		var v map[string]any
		if err := json.Unmarshal(sc.Bytes(), &v); err != nil {
			t.Errorf("a line on stderr is not JSON: %q", sc.Text())
		}
	}
	if n == 0 || !strings.Contains(logs, want) {
		t.Errorf("%d lines, none with %q:\n%s", n, want, logs)
	}
	if strings.Contains(logs, "placeholder") {
		t.Errorf("warned about the Web Push contact with no Web Push in use:\n%s", logs)
	}
}
