package main

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/twofold-auth/twofold/client"
	"github.com/twofold-auth/twofold/internal/store/storetest"
	"github.com/twofold-auth/twofold/internal/testbin"
)

// Several `twofold serve` processes on one PostgreSQL database behave as one service. These
// tests start real servers on loopback, on one schema and one data directory (one master key).

// startInstances starts n servers on one fresh schema and one data directory.
func startInstances(t *testing.T, n int, args ...string) []*server {
	t.Helper()
	dsn := storetest.Schema(t)
	dir := t.TempDir()
	var out []*server
	for range n {
		out = append(out, startServer(t, dir, append([]string{"--database", dsn}, args...)...))
	}
	return out
}

// A code sent by one instance verifies on another, once for all of them; so does a TOTP code.
func TestInstancesShareCodes(t *testing.T) {
	in := startInstances(t, 3, "--rate-limit", "off")
	a, b, c := in[0], in[1], in[2]
	id := a.register(a.key, "ana@example.com", "2015550123")
	if r := a.get("/protected/json/sms/" + itoa64(id) + "?force=true"); r.status != 200 {
		t.Fatalf("sms on A: %s", r.raw)
	}
	code := b.lastCode("2015550123")
	if r := b.get("/protected/json/verify/" + code + "/" + itoa64(id)); r.status != 200 {
		t.Fatalf("verify on B: %s", r.raw)
	}
	expectError(t, a.get("/protected/json/verify/"+code+"/"+itoa64(id)), 401, "60019")
	expectError(t, c.get("/protected/json/verify/"+code+"/"+itoa64(id)), 401, "60019")

	phone := b.newDevice(b.key, id)
	totp := phone.totp.Code(time.Now())
	if r := a.get("/protected/json/verify/" + totp + "/" + itoa64(id)); r.status != 200 {
		t.Fatalf("TOTP on A: %s", r.raw)
	}
	expectError(t, b.get("/protected/json/verify/"+totp+"/"+itoa64(id)), 401, "60019")
	expectError(t, c.get("/protected/json/verify/"+totp+"/"+itoa64(id)), 401, "60019")
}

// An approval request made on A reaches a device streaming from B at once (not at the next
// keep-alive, 15s away); answered on B, it is approved on A and A's streams hear of it. The
// cap on pending requests holds across instances.
func TestInstancesShareApprovals(t *testing.T) {
	in := startInstances(t, 2, "--rate-limit", "off", "--max-pending-approvals", "3")
	a, b := in[0], in[1]
	alice := a.register(a.key, "alice@example.com", "2015550123")
	phone := a.newDevice(a.key, alice)
	onB, closeB := phone.stream(t, b, "")
	defer closeB()
	onA, closeA := phone.stream(t, a, "")
	defer closeA()

	start := time.Now()
	uuid := a.createRequest(a.key, alice, url.Values{"message": {"Login"}})
	if ev := nextEvent(t, onB); ev.event != "approval_request" || ev.data["uuid"] != uuid {
		t.Fatalf("B's stream: %+v", ev)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("the request took %v to reach B's stream", d)
	}
	if ev := nextEvent(t, onA); ev.event != "approval_request" || ev.data["uuid"] != uuid {
		t.Fatalf("A's stream: %+v", ev)
	}
	if r := phone.answer(b, uuid, "approved", "", ""); r.status != 200 {
		t.Fatalf("answer on B: %s", r.raw)
	}
	if st := a.requestStatus(uuid); st["status"] != "approved" {
		t.Fatalf("on A after answering on B: %v", st)
	}
	for name, events := range map[string]<-chan sseEvent{"A": onA, "B": onB} {
		if ev := nextEvent(t, events); ev.event != "approval_request_update" || ev.data["status"] != "approved" {
			t.Fatalf("%s's stream after the answer: %+v", name, ev)
		}
	}

	// 10 requests at once, spread over both: 3 pending at most.
	var ok atomic.Int32
	var wg sync.WaitGroup
	for i := range 10 {
		s := in[i%2]
		wg.Go(func() {
			r, err := tryDo(s, "POST", fmt.Sprintf("/onetouch/json/users/%d/approval_requests", alice), s.key, "", url.Values{"message": {"Again"}})
			if err == nil && r.status == 200 {
				ok.Add(1)
			}
		})
	}
	wg.Wait()
	if ok.Load() != 3 {
		t.Fatalf("%d pending requests accepted across instances, want 3", ok.Load())
	}
}

// countingReceiver counts the callbacks it gets, per approval request, and answers 200.
type countingReceiver struct {
	srv   *httptest.Server
	mu    sync.Mutex
	got   map[string]int
	event chan struct{}
}

func newCountingReceiver(t *testing.T, delay time.Duration) *countingReceiver {
	rc := &countingReceiver{got: map[string]int{}, event: make(chan struct{}, 1)}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			UUID string `json:"uuid"`
		}
		json.NewDecoder(r.Body).Decode(&body)
		if delay > 0 {
			time.Sleep(delay) // a slow customer endpoint, so that deliveries are in flight
		}
		rc.mu.Lock()
		rc.got[body.UUID]++
		rc.mu.Unlock()
		select {
		case rc.event <- struct{}{}:
		default:
		}
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

// waitFor waits until every uuid has been delivered at least once.
func (rc *countingReceiver) waitFor(t *testing.T, uuids []string) {
	t.Helper()
	guard := time.After(90 * time.Second)
	for {
		rc.mu.Lock()
		missing := 0
		for _, u := range uuids {
			if rc.got[u] == 0 {
				missing++
			}
		}
		rc.mu.Unlock()
		if missing == 0 {
			return
		}
		select {
		case <-rc.event:
		case <-time.After(2 * time.Second): // also look again now and then
		case <-guard:
			t.Fatalf("%d of %d callbacks never delivered", missing, len(uuids))
		}
	}
}

// Three instances deliver the callbacks of many answers: each exactly once.
func TestInstancesDeliverEachCallbackOnce(t *testing.T) {
	rc := newCountingReceiver(t, 0)
	in := startInstances(t, 3, "--rate-limit", "off", "--callback-allow-hosts", "127.0.0.1", "--max-pending-approvals", "100", "--callback-workers", "4")
	a := in[0]
	if _, err := a.cli("app", "update", "1", "--callback-url", rc.srv.URL+"/cb"); err != nil {
		t.Fatal(err)
	}
	alice := a.register(a.key, "alice@example.com", "2015550123")
	phone := a.newDevice(a.key, alice)
	var uuids []string
	for i := range 30 {
		uuids = append(uuids, in[i%3].createRequest(a.key, alice, url.Values{"message": {"Login " + fmt.Sprint(i)}}))
	}
	var wg sync.WaitGroup
	for i, u := range uuids {
		s := in[(i+1)%3]
		wg.Go(func() {
			if r, err := tryAnswer(s, phone, u, "approved"); err != nil || r.status != 200 {
				t.Errorf("answer %s: %v %s", u, err, r.raw)
			}
		})
	}
	wg.Wait()
	rc.waitFor(t, uuids)
	for _, s := range in {
		s.stop() // deliveries in flight finish
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	for _, u := range uuids {
		if rc.got[u] != 1 {
			t.Errorf("callback of %s delivered %d times", u, rc.got[u])
		}
	}
	if len(rc.got) != len(uuids) {
		t.Errorf("%d callbacks delivered, want %d", len(rc.got), len(uuids))
	}
}

// The per-key request rate holds across instances: a burst spread over two gets about N.
func TestInstancesShareRateLimit(t *testing.T) {
	const n = 10
	in := startInstances(t, 2, "--rate-limit", fmt.Sprintf("%d/1s", n))
	var ok, limited atomic.Int32
	start := time.Now()
	var wg sync.WaitGroup
	for i := range 4 * n {
		s := in[i%2]
		wg.Go(func() {
			r, err := tryDo(s, "GET", "/protected/json/app/details", s.key, "", nil)
			switch {
			case err != nil:
				t.Error(err)
			case r.status == 200:
				ok.Add(1)
			case r.status == 429:
				limited.Add(1)
			default:
				t.Errorf("status %d: %s", r.status, r.raw)
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	// A sliding window lets through N, plus what time frees while the burst lasts.
	bound := int32(n + float64(n)*elapsed.Seconds() + 1)
	t.Logf("%d accepted, %d refused in %v", ok.Load(), limited.Load(), elapsed)
	if ok.Load() < 1 || ok.Load() > bound || limited.Load() < 1 {
		t.Fatalf("%d accepted (want 1..%d), %d refused (want some), in %v", ok.Load(), bound, limited.Load(), elapsed)
	}
}

// tryDo is server.do for goroutines and for servers that may be dead: it returns errors.
func tryDo(s *server, method, path, key, bearer string, body any) (response, error) {
	var rd io.Reader
	ctype := ""
	switch b := body.(type) {
	case url.Values:
		rd, ctype = strings.NewReader(b.Encode()), "application/x-www-form-urlencoded"
	case []byte:
		rd, ctype = bytes.NewReader(b), "application/json"
	}
	req, err := http.NewRequest(method, s.url+path, rd)
	if err != nil {
		return response{}, err
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if key != "" {
		req.Header.Set("X-Authy-API-Key", key)
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	res, err := s.client.Do(req)
	if err != nil {
		return response{}, err
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		return response{}, err
	}
	r := response{status: res.StatusCode, header: res.Header, raw: string(raw)}
	json.Unmarshal(raw, &r.body)
	return r, nil
}

func tryAnswer(s *server, d *device, uuid, status string) (response, error) {
	ts := time.Now().Unix()
	body, _ := json.Marshal(map[string]any{"status": status, "timestamp": ts, "signature": d.sign(uuid, status, ts, "", ""),
		"number": "", "reason": ""})
	return tryDo(s, "POST", "/device/v1/approval_requests/"+uuid, "", d.token, body)
}

var listeningAddr = regexp.MustCompile(`addr=http://(127\.0\.0\.1:\d+)`)

// startProcess runs the built binary as `twofold serve` in a process of its own, so that it
// can be killed with SIGKILL, and returns it as a server (whose key is the first app's).
func startProcess(t *testing.T, like *server, args ...string) (*server, *exec.Cmd, *syncBuffer) {
	t.Helper()
	bin := testbin.Twofold(t)
	cmd := exec.Command(bin, append([]string{"serve", "--addr", "127.0.0.1:0", "--data-dir", like.dataDir}, args...)...)
	cmd.Env = append(os.Environ(), "TWOFOLD_MASTER_KEY=")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	logs := &syncBuffer{}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		found := false
		for sc.Scan() {
			fmt.Fprintln(logs, sc.Text())
			if m := listeningAddr.FindStringSubmatch(sc.Text()); m != nil && !found {
				found = true
				addr <- m[1]
			}
		}
		close(addr)
	}()
	select {
	case a, ok := <-addr:
		if !ok {
			t.Fatalf("the process did not start:\n%s", logs.String())
		}
		return &server{t: t, dataDir: like.dataDir, url: "http://" + a, key: like.key, logs: logs,
			client: &http.Client{Transport: &http.Transport{}, Timeout: 20 * time.Second}, cliArgs: like.cliArgs}, cmd, logs
	case <-time.After(60 * time.Second):
		t.Fatalf("the process did not start in time:\n%s", logs.String())
	}
	return nil, nil, nil
}

// kill -9 of one instance under load loses nothing that was accepted: users registered, codes
// verified (a second try says reused), approvals answered, and their callbacks, which the
// survivor delivers once the dead instance's leases run out.
func TestInstancesSurviveKill(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	rc := newCountingReceiver(t, 100*time.Millisecond)
	lease := []string{"--rate-limit", "off", "--callback-allow-hosts", "127.0.0.1", "--max-pending-approvals", "100", "--callback-timeout", "1s", "--callback-lease", "3s"}
	a := startInstances(t, 1, lease...)[0]
	b, proc, _ := startProcess(t, a, append([]string{"--database", a.cliArgs[1]}, lease...)...)
	if _, err := a.cli("app", "update", "1", "--callback-url", rc.srv.URL+"/cb"); err != nil {
		t.Fatal(err)
	}
	const workers = 6
	devices := make([]*device, workers)
	users := make([]int64, workers)
	for w := range workers {
		users[w] = a.register(a.key, fmt.Sprintf("dev%d@example.com", w), fmt.Sprintf("20155501%02d", w))
		devices[w] = a.newDevice(a.key, users[w])
	}

	var mu sync.Mutex
	var registered []int64
	type verified struct {
		id   int64
		code string
	}
	var codes []verified
	var approved []string
	var successes atomic.Int32
	killed := make(chan struct{})
	killNow := make(chan struct{})
	var killOnce sync.Once
	success := func() {
		if successes.Add(1) >= 40 {
			killOnce.Do(func() { close(killNow) })
		}
	}
	go func() {
		<-killNow
		proc.Process.Kill() // SIGKILL: no shutdown, no flush
		close(killed)
	}()

	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for k := 0; k < 14; k++ {
				s, other := a, b
				if (w+k)%2 == 0 {
					s, other = b, a
				}
				phone := fmt.Sprintf("2025550%d%02d", w, k)
				r, err := tryDo(s, "POST", "/protected/json/users/new", a.key, "", url.Values{
					"user[email]": {fmt.Sprintf("u%d-%d@example.com", w, k)}, "user[cellphone]": {phone}, "user[country_code]": {"1"}})
				if err == nil && r.status == 200 {
					id := int64(r.body["user"].(map[string]any)["id"].(float64))
					mu.Lock()
					registered = append(registered, id)
					mu.Unlock()
					success()
					if r, err := tryDo(other, "GET", "/protected/json/sms/"+itoa64(id)+"?force=true", a.key, "", nil); err == nil && r.status == 200 {
						success()
						var msgs []struct{ Body string }
						if out, err := a.cli("outbox", "--to", phone, "--json"); err == nil && json.Unmarshal([]byte(out), &msgs) == nil && len(msgs) > 0 {
							code := messageCode(msgs[len(msgs)-1].Body, 0)
							if r, err := tryDo(s, "GET", "/protected/json/verify/"+code+"/"+itoa64(id), a.key, "", nil); err == nil && r.status == 200 {
								mu.Lock()
								codes = append(codes, verified{id, code})
								mu.Unlock()
								success()
							}
						}
					}
				}
				r, err = tryDo(s, "POST", fmt.Sprintf("/onetouch/json/users/%d/approval_requests", users[w]), a.key, "", url.Values{"message": {"Login"}})
				if err != nil || r.status != 200 {
					continue
				}
				uuid := r.body["approval_request"].(map[string]any)["uuid"].(string)
				success()
				if r, err := tryAnswer(other, devices[w], uuid, "approved"); err == nil && r.status == 200 {
					mu.Lock()
					approved = append(approved, uuid)
					mu.Unlock()
					success()
				}
			}
		})
	}
	wg.Wait()
	killOnce.Do(func() { close(killNow) })
	<-killed
	t.Logf("accepted: %d users, %d codes verified, %d approvals answered", len(registered), len(codes), len(approved))
	if len(registered) == 0 || len(codes) == 0 || len(approved) == 0 {
		t.Fatal("the load did nothing")
	}
	if _, err := tryDo(b, "GET", "/healthz", "", "", nil); err == nil {
		t.Fatal("the killed instance still answers")
	}

	for _, id := range registered {
		if r := a.get("/protected/json/users/" + itoa64(id) + "/status"); r.status != 200 {
			t.Errorf("user %d lost: %s", id, r.raw)
		}
	}
	for _, c := range codes {
		expectError(t, a.get("/protected/json/verify/"+c.code+"/"+itoa64(c.id)), 401, "60019")
	}
	for _, u := range approved {
		if st := a.requestStatus(u); st["status"] != "approved" {
			t.Errorf("approval %s: %v", u, st["status"])
		}
	}
	rc.waitFor(t, approved) // the survivor delivers what the dead one had leased
}

// stallingReceiver is a customer endpoint that never answers the first delivery of a callback
// (it hangs until the test ends) and answers 200 to every later one. It checks every signature.
type stallingReceiver struct {
	srv     *httptest.Server
	mu      sync.Mutex
	got     map[string]int // deliveries per request uuid
	first   chan string    // the uuid, when its first delivery arrives
	later   chan string    // the uuid, when a later delivery has been answered
	release chan struct{}
}

func newStallingReceiver(t *testing.T, apiKey func() string) *stallingReceiver {
	rc := &stallingReceiver{got: map[string]int{}, first: make(chan string, 8), later: make(chan string, 8), release: make(chan struct{})}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := client.VerifyCallback(r, apiKey(), rc.srv.URL+"/cb", client.WithMaxAge(5*time.Minute, nil)); err != nil {
			t.Errorf("callback signature: %v", err)
			w.WriteHeader(http.StatusForbidden)
			return
		}
		var body struct {
			UUID string `json:"uuid"`
		}
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil || body.UUID == "" {
			t.Errorf("callback body: %v %+v", err, body)
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		rc.mu.Lock()
		rc.got[body.UUID]++
		n := rc.got[body.UUID]
		rc.mu.Unlock()
		if n == 1 {
			rc.first <- body.UUID
			select { // never answer: the sender dies (or the test ends) first
			case <-rc.release:
			case <-r.Context().Done():
			}
			return
		}
		w.WriteHeader(http.StatusOK)
		rc.later <- body.UUID
	}))
	t.Cleanup(rc.srv.Close)
	t.Cleanup(func() { close(rc.release) }) // runs before Close, which waits for handlers
	return rc
}

// An instance killed mid-delivery leaves its callbacks to the others: S (a process of its own)
// claims a callback and is killed with SIGKILL while the customer's endpoint holds the request;
// once S's lease has run out, C, started afterwards on the same database, delivers it, signed,
// and it is recorded delivered after one recorded attempt (S never recorded any).
func TestInstancesKilledMidDeliveryLeavesCallbacks(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	// B answers the API and delivers nothing.
	b := startInstances(t, 1, "--rate-limit", "off", "--callback-allow-hosts", "127.0.0.1", "--callback-workers", "0")[0]
	dsn := b.cliArgs[1]
	rc := newStallingReceiver(t, func() string { return b.key })
	// The lease must exceed the timeout (else the dispatcher stretches it to timeout+1m): S's
	// HTTP client would give up after 1.5s, but S is killed within moments of the request.
	s, proc, sLogs := startProcess(t, b, "--database", dsn, "--rate-limit", "off", "--callback-allow-hosts", "127.0.0.1",
		"--callback-workers", "1", "--callback-lease", "2s", "--callback-timeout", "1500ms")
	if _, err := b.cli("app", "update", "1", "--callback-url", rc.srv.URL+"/cb"); err != nil {
		t.Fatal(err)
	}
	alice := b.register(b.key, "alice@example.com", "2015550123")
	phone := b.newDevice(b.key, alice)
	uuid := b.createRequest(b.key, alice, url.Values{"message": {"Login"}})
	if r := phone.answer(b, uuid, "approved", "", ""); r.status != 200 {
		t.Fatalf("answer on B: %s", r.raw)
	}

	select {
	case u := <-rc.first:
		if u != uuid {
			t.Fatalf("first callback for %s, want %s", u, uuid)
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("S never delivered the callback\n%s", sLogs.String())
	}
	if err := proc.Process.Kill(); err != nil { // SIGKILL, mid-delivery
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- proc.Wait() }()
	select {
	case <-exited:
	case <-time.After(30 * time.Second):
		t.Fatal("S did not exit after SIGKILL")
	}
	if ws, ok := proc.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("S ended with %v, want killed by SIGKILL", proc.ProcessState)
	}
	if _, err := tryDo(s, "GET", "/healthz", "", "", nil); err == nil {
		t.Fatal("the killed instance still answers")
	}

	c := startServer(t, b.dataDir, "--database", dsn, "--rate-limit", "off", "--callback-allow-hosts", "127.0.0.1",
		"--callback-workers", "1", "--callback-lease", "2s", "--callback-timeout", "1s")
	select {
	case u := <-rc.later:
		if u != uuid {
			t.Fatalf("second callback for %s, want %s", u, uuid)
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("no other instance delivered the callback S was killed delivering\n%s", c.logs.String())
	}
	c.stop() // the delivery in flight is recorded
	rc.mu.Lock()
	got := rc.got[uuid]
	rc.mu.Unlock()
	if got != 2 {
		t.Errorf("callback of %s reached the receiver %d times, want 2 (S's, unanswered, then C's)", uuid, got)
	}

	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.QueryContext(context.Background(), `SELECT status, attempts, last_status, last_error, delivered_at
		FROM callbacks WHERE request_uuid = $1`, uuid)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		n++
		var status, lastError string
		var attempts, lastStatus int
		var deliveredAt int64
		if err := rows.Scan(&status, &attempts, &lastStatus, &lastError, &deliveredAt); err != nil {
			t.Fatal(err)
		}
		if status != "delivered" || attempts != 1 || lastStatus != 200 || lastError != "" || deliveredAt == 0 {
			t.Errorf("callback row: status=%q attempts=%d last_status=%d last_error=%q delivered_at=%d; want delivered once, 200",
				status, attempts, lastStatus, lastError, deliveredAt)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Errorf("%d callback rows for %s, want 1", n, uuid)
	}
}
