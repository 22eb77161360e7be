package main

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/twofold-auth/twofold/client"
	"github.com/twofold-auth/twofold/internal/store/storetest"
)

// Passwordless sign-in end to end, on each engine: a real server, the public Go client as the
// customer's backend, the command-line authenticator (a real device key in a vault) as the
// user's phone, and a callback receiver that checks every signature.
func TestPasswordlessEndToEnd(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) { passwordlessEndToEnd(t) })
	t.Run("postgres", func(t *testing.T) { passwordlessEndToEnd(t, "--database", storetest.Schema(t)) })
}

func passwordlessEndToEnd(t *testing.T, args ...string) {
	rc := newReceiver(t)
	clock := &testClock{}
	s := startServerEnv(t, "", func(e *Env) { e.Now = clock.Now }, append([]string{"--rate-limit", "off",
		"--callback-allow-hosts", "127.0.0.1", "--passwordless-limit-username", "50/15m", "--passwordless-limit-user", "50/15m"}, args...)...)
	rc.key.Store(s.key)
	if out, err := s.cli("app", "update", "1", "--callback-url", rc.srv.URL+"/authy/callback"); err != nil {
		t.Fatalf("app update: %v\n%s", err, out)
	}
	alice := s.register(s.key, "alice@example.com", "2015550123")
	s.register(s.key, "bob@example.com", "2015550124") // no device
	phone := newAuthenticator(t)
	enrolUser(t, s, phone, alice)
	ctx := context.Background()
	c, err := client.New(s.url, s.key, client.WithHTTPClient(s.client))
	if err != nil {
		t.Fatal(err)
	}
	start := func(st client.PasswordlessStart) client.PasswordlessRequest {
		t.Helper()
		if st.UserIP == "" {
			st.UserIP = "203.0.113.5"
		}
		pr, err := c.StartPasswordless(ctx, st)
		n, _ := strconv.Atoi(pr.Number)
		if err != nil || pr.UUID == "" || n < 10 || n > 99 || pr.Status != "pending" || pr.AuthyID != 0 || pr.ExpiresAt.IsZero() {
			t.Fatalf("StartPasswordless(%+v) = %+v, %v", st, pr, err)
		}
		return pr
	}
	status := func(uuid string) client.PasswordlessRequest {
		t.Helper()
		pr, err := c.PasswordlessRequest(ctx, uuid)
		if err != nil || pr.UUID != uuid {
			t.Fatalf("PasswordlessRequest(%s) = %+v, %v", uuid, pr, err)
		}
		return pr
	}
	callback := func(uuid, want, reason string) {
		t.Helper()
		cb := rc.next(t)
		tx := cb["approval_request"].(map[string]any)["transaction"].(map[string]any)
		if cb["uuid"] != uuid || cb["status"] != want || tx["reason"] != reason || cb["authy_id"] != float64(alice) {
			t.Fatalf("callback %v, want %s %s (%q)", cb, uuid, want, reason)
		}
	}

	// Approving with the number shown signs alice in.
	pr := start(client.PasswordlessStart{Email: " Alice@Example.com", Details: map[string]string{"Browser": "Firefox"}})
	if !pr.ExpiresAt.After(time.Now().Add(110*time.Second)) || pr.ExpiresAt.After(time.Now().Add(121*time.Second)) {
		t.Fatalf("expires at %v, want in 120 s", pr.ExpiresAt)
	}
	if got := status(pr.UUID); got.Status != "pending" || got.AuthyID != 0 || got.Number != pr.Number {
		t.Fatalf("before the answer: %+v", got)
	}
	var answered approvalRequest
	phone.json(&answered, "approve", pr.UUID, "--number", pr.Number)
	if answered.Status != "approved" || answered.Message != "Sign in to "+appName(t, s)+"?" || answered.Details["Browser"] != "Firefox" {
		t.Fatalf("the device answered %+v", answered)
	}
	if got := status(pr.UUID); got.Status != "approved" || got.AuthyID != alice {
		t.Fatalf("after approval: %+v", got)
	}
	callback(pr.UUID, "approved", "")

	// A wrong number leaves it pending, a second denies it.
	pr = start(client.PasswordlessStart{AuthyID: alice})
	wrong := fmt.Sprint(10 + (mustAtoi(t, pr.Number)-10+1)%90)
	phone.fails([]string{"60080"}, "approve", pr.UUID, "--number", wrong)
	if got := status(pr.UUID); got.Status != "pending" {
		t.Fatalf("after a wrong number: %+v", got)
	}
	phone.fails([]string{"60080"}, "approve", pr.UUID, "--number", wrong)
	if got := status(pr.UUID); got.Status != "denied" || got.AuthyID != 0 {
		t.Fatalf("after two wrong numbers: %+v", got)
	}
	callback(pr.UUID, "denied", "number mismatch")

	// Denied.
	pr = start(client.PasswordlessStart{Email: "alice@example.com"})
	phone.must("deny", pr.UUID)
	if got := status(pr.UUID); got.Status != "denied" || got.AuthyID != 0 {
		t.Fatalf("denied: %+v", got)
	}
	callback(pr.UUID, "denied", "")

	// Expired: pending to its last second, expired after, and then nobody can approve it.
	pr = start(client.PasswordlessStart{Email: "alice@example.com", SecondsToExpire: 30})
	clock.Set(pr.ExpiresAt.Add(-time.Second))
	if got := status(pr.UUID); got.Status != "pending" {
		t.Fatalf("a second before the expiry: %+v", got)
	}
	clock.Set(pr.ExpiresAt)
	if got := status(pr.UUID); got.Status != "expired" || got.AuthyID != 0 {
		t.Fatalf("at the expiry: %+v", got)
	}
	clock.Set(time.Time{})
	phone.fails([]string{"expired"}, "approve", pr.UUID, "--number", pr.Number)

	// Names of nobody and of a user without a device are answered alike, and stay pending.
	for _, st := range []client.PasswordlessStart{{Email: "nobody@example.com"}, {Email: "bob@example.com"}, {CustomUserID: "nobody-7"}} {
		ph := start(st)
		if got := status(ph.UUID); got.Status != "pending" || got.Number != ph.Number {
			t.Fatalf("%+v: %+v", st, got)
		}
		expectError(t, s.get("/onetouch/json/approval_requests/"+ph.UUID), 404, "60049")
	}

	// "I didn't request this": denied with the reason, which the signed callback carries; then
	// alice's passwordless requests go nowhere for an hour, answered as before.
	pr = start(client.PasswordlessStart{Email: "alice@example.com"})
	phone.fails([]string{"not both"}, "deny", "--not-requested", "--reason", "spam", pr.UUID)
	deniedAt := time.Now()
	phone.must("deny", "--not-requested", pr.UUID)
	if got := status(pr.UUID); got.Status != "denied" {
		t.Fatalf("denied as not requested: %+v", got)
	}
	callback(pr.UUID, "denied", "not requested")
	phantom := start(client.PasswordlessStart{Email: "alice@example.com"})
	expectError(t, s.get("/onetouch/json/approval_requests/"+phantom.UUID), 404, "60049")
	phone.fails([]string{"60049"}, "approve", phantom.UUID, "--number", phantom.Number)
	if got := status(phantom.UUID); got.Status != "pending" {
		t.Fatalf("while blocked: %+v", got)
	}
	clock.Set(deniedAt.Add(time.Hour + time.Second))
	pr = start(client.PasswordlessStart{Email: "alice@example.com"})
	if r := s.get("/onetouch/json/approval_requests/" + pr.UUID); r.status != 200 {
		t.Fatalf("an hour later the request was not sent: %s", r.raw)
	}
	clock.Set(time.Time{})

	// The client refuses what cannot be a uuid without asking; the server, an unknown one.
	for _, uuid := range []string{"", "a/b", "00000000-0000-4000-8000-000000000000"} {
		if _, err := c.PasswordlessRequest(ctx, uuid); !client.IsCode(err, client.CodeNoRequest) {
			t.Fatalf("PasswordlessRequest(%q): %v", uuid, err)
		}
	}
	if _, err := c.StartPasswordless(ctx, client.PasswordlessStart{Email: "alice@example.com"}); !client.IsCode(err, client.CodeInvalidParam) ||
		!strings.Contains(err.Error(), "user_ip") {
		t.Fatalf("without user_ip: %v", err)
	}
}

// Over HTTP, the limits answer 429/60003 with Retry-After, for a user's name and a name of
// nobody alike, and the answers to the requests before are alike too (status, keys).
func TestPasswordlessLimitsOverHTTP(t *testing.T) {
	s := startServer(t, "", "--rate-limit", "off")
	alice := s.register(s.key, "alice@example.com", "2015550123")
	s.newDevice(s.key, alice)
	c, err := client.New(s.url, s.key, client.WithHTTPClient(s.client))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"alice@example.com", "nobody@example.com"} {
		for i := range 5 {
			r := s.post("/onetouch/json/passwordless_requests", url.Values{"email": {name}, "user_ip": {fmt.Sprintf("192.0.2.%d", i+1)}})
			pr, _ := r.body["passwordless_request"].(map[string]any)
			if r.status != 200 || len(pr) != 3 || pr["uuid"] == nil || pr["number"] == nil || pr["expires_at"] == nil || r.body["success"] != true {
				t.Fatalf("request %d for %s: %s", i+1, name, r.raw)
			}
		}
		r := s.post("/onetouch/json/passwordless_requests", url.Values{"email": {name}, "user_ip": {"192.0.2.99"}})
		expectError(t, r, 429, "60003")
		if r.header.Get("Retry-After") == "" {
			t.Fatalf("429 without Retry-After: %v", r.header)
		}
		_, err := c.StartPasswordless(context.Background(), client.PasswordlessStart{Email: name, UserIP: "192.0.2.98"})
		var e *client.Error
		if !client.IsCode(err, client.CodeRateLimited) || !asClientError(err, &e) || e.RetryAfter <= 0 {
			t.Fatalf("the client over the limit: %v", err)
		}
	}
}

// appName is the first application's name.
func appName(t *testing.T, s *server) string {
	t.Helper()
	var app struct {
		Name string `json:"name"`
	}
	s.cliJSON(&app, "app", "show", "1", "--json")
	return app.Name
}

func asClientError(err error, target **client.Error) bool { return errors.As(err, target) }

func mustAtoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// The console says, on the user's page, until when their passwordless sign-ins are blocked,
// at a laptop's and a phone's width, with no serious accessibility violation (axe-core).
func TestConsoleShowsPasswordlessBlock(t *testing.T) {
	c := newConsoleEnv(t, "ops@example.com", nil)
	s := c.s
	var app appJSON
	s.cliJSON(&app, "app", "create", "--name", "Shop")
	var shown struct {
		APIKey string `json:"api_key"`
	}
	s.cliJSON(&shown, "app", "show", strconv.FormatInt(app.AppID, 10), "--show-key")
	alice := s.register(shown.APIKey, "alice@example.com", "2015550123")
	bob := s.register(shown.APIKey, "bob@example.com", "2015550124")
	phone := s.newDevice(shown.APIKey, alice)
	r := s.do("POST", "/onetouch/json/passwordless_requests", shown.APIKey, url.Values{"email": {"alice@example.com"}, "user_ip": {"192.0.2.1"}})
	if r.status != 200 {
		t.Fatalf("passwordless request: %s", r.raw)
	}
	uuid := r.body["passwordless_request"].(map[string]any)["uuid"].(string)
	if a := phone.answer(s, uuid, "denied", "", "not requested"); a.status != 200 {
		t.Fatalf("deny: %s", a.raw)
	}
	c.signIn()
	user := fmt.Sprintf("/console/apps/%d/users/%d", app.AppID, alice)
	c.check("user with a passwordless block", c.visit(user, "#passwordless-blocked"))
	got := c.text("#passwordless-blocked")
	if !strings.HasPrefix(got, "Passwordless sign-in blocked until "+time.Now().UTC().Add(time.Hour).Format("2006-01-02")) ||
		!strings.HasSuffix(got, "(the user reported a request they did not make).") {
		t.Fatalf("the notice says %q", got)
	}
	c.p.do(chromedp.Navigate(s.url + fmt.Sprintf("/console/apps/%d/users/%d", app.AppID, bob)))
	c.p.visible("#user-id")
	if n := c.p.eval(`String(document.querySelectorAll('#passwordless-blocked').length)`); n != "0" {
		t.Fatalf("another user's page shows a block (%s)", n)
	}
}
