package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twofold-auth/twofold/client"
)

func TestPasswordHash(t *testing.T) {
	h, err := hashPassword("correct horse battery")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Fatalf("hash %q", h)
	}
	h2, _ := hashPassword("correct horse battery")
	if h == h2 {
		t.Fatal("two hashes of one password are equal: the salt is not random")
	}
	salt := strings.Split(h, "$")[4]
	if n := len(salt); n != 22 { // 16 bytes in unpadded base64
		t.Fatalf("salt %q is %d characters", salt, n)
	}
	tests := []struct {
		name, hash, password string
		want                 bool
	}{
		{"right", h, "correct horse battery", true},
		{"other salt", h2, "correct horse battery", true},
		{"wrong", h, "correct horse batterz", false},
		{"empty", h, "", false},
		{"argon2i", strings.Replace(h, "argon2id", "argon2i", 1), "correct horse battery", false},
		{"other version", strings.Replace(h, "v=19", "v=16", 1), "correct horse battery", false},
		{"huge memory", strings.Replace(h, "m=19456", "m=99999999", 1), "correct horse battery", false},
		{"truncated", h[:len(h)-10], "correct horse battery", false},
		{"garbage", "not a hash", "correct horse battery", false},
		{"empty hash", "", "", false},
	}
	for _, tt := range tests {
		if got := checkPassword(tt.hash, tt.password); got != tt.want {
			t.Errorf("%s: checkPassword = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestPhoneNumberOfAnotherAccount(t *testing.T) {
	tf := newFakeTwofold(t)
	s := newSample(t, tf)
	s.signup("ada@example.com", "201-555-0123", true)
	s.logout()
	// Twofold answers the same Authy id for the same phone number: here, the fake's next id.
	tf.mu.Lock()
	tf.nextID = 0
	tf.mu.Unlock()
	form := url.Values{"email": {"eve@example.com"}, "password": {"correct horse battery"}, "phone": {"201-555-0123"},
		"country_code": {"1"}, "two_factor": {"on"}}
	taken := s.post("/signup", "/signup", form)
	if _, ok := s.srv.users.byEmailAddr("eve@example.com"); ok {
		t.Fatal("the account was created")
	}
	// The answer does not tell that the number has an account: it is the answer to a number
	// Twofold refuses, word for word.
	form.Set("phone", refusedPhone)
	refused := s.post("/signup", "/signup", form)
	problem := func(a answer) string {
		return regexp.MustCompile(`id="problem">([^<]*)<`).FindStringSubmatch(a.body)[1]
	}
	if taken.status != http.StatusBadRequest || taken.status != refused.status || problem(taken) != problem(refused) ||
		strings.Contains(strings.ToLower(problem(taken)), "account") {
		t.Fatalf("another account's phone: %d %q; a refused phone: %d %q; want the same, not naming an account",
			taken.status, problem(taken), refused.status, problem(refused))
	}
	// Turning two-factor on later with another account's number says no more.
	form = url.Values{"email": {"eve@example.com"}, "password": {"correct horse battery"}, "phone": {"201-555-0123"}, "country_code": {"1"}}
	if a := s.post("/signup", "/signup", form); a.status != http.StatusSeeOther {
		t.Fatalf("sign-up without two-factor: %d", a.status)
	}
	tf.mu.Lock()
	tf.nextID = 0
	tf.mu.Unlock()
	s.post("/profile", "/profile/2fa/enable", url.Values{})
	a := s.get("/profile")
	if !strings.Contains(a.body, "Your phone number cannot be used for two-factor authentication.") || strings.Contains(a.body, "account already") {
		t.Fatalf("enabling two-factor with another account's phone: %s", problem(a))
	}
	if u, _ := s.srv.users.byEmailAddr("eve@example.com"); u.AuthyID != 0 {
		t.Fatal("two-factor was turned on with another account's phone")
	}
}

func TestCSRF(t *testing.T) {
	s := newSample(t, newFakeTwofold(t))
	s.signup("ada@example.com", "201-555-0123", false)
	other := newBrowserClient() // another visitor, with a session and token of their own
	otherToken := csrfField.FindStringSubmatch(s.do(other, "GET", "/login", nil).body)[1]
	for _, tt := range []struct {
		name, path string
		form       url.Values
	}{
		{"logout without a token", "/logout", url.Values{}},
		{"logout with a wrong token", "/logout", url.Values{"csrf": {strings.Repeat("A", 43)}}},
		{"logout with another session's token", "/logout", url.Values{"csrf": {otherToken}}},
		{"disable two-factor without a token", "/profile/2fa/disable", url.Values{}},
		{"log in without a token", "/login", url.Values{"email": {"ada@example.com"}, "password": {"correct horse battery"}}},
	} {
		a := s.do(s.hc, "POST", tt.path, tt.form)
		if a.status != http.StatusForbidden || !strings.Contains(a.body, "Form expired") {
			t.Errorf("%s: %d %s", tt.name, a.status, a.location)
		}
	}
	// Still logged in: the forged log-out did nothing.
	if a := s.get("/protected"); a.status != http.StatusOK || !strings.Contains(a.body, "You are in") {
		t.Fatalf("after the refused forms: %d %s", a.status, a.location)
	}
	// A request without any session cannot post either.
	if a := s.do(newBrowserClient(), "POST", "/signup", url.Values{"csrf": {""}, "email": {"eve@example.com"}}); a.status != http.StatusForbidden {
		t.Fatalf("sign-up without a session: %d", a.status)
	}
	// With the token, the same log-out works.
	s.logout()
	if a := s.get("/protected"); a.status != http.StatusSeeOther || a.location != "/login" {
		t.Fatalf("after log-out: %d %s", a.status, a.location)
	}
}

func TestHalfLoggedInSession(t *testing.T) {
	s := newSample(t, newFakeTwofold(t))
	s.signup("ada@example.com", "201-555-0123", true)
	s.logout()
	anon := s.sessionID()
	a := s.login("ada@example.com", "correct horse battery")
	if a.status != http.StatusSeeOther || a.location != "/login/code" {
		t.Fatalf("log in: %d %s %s", a.status, a.location, a.body)
	}
	half := s.sessionID()
	if half == anon || half == "" {
		t.Fatal("the session id did not change when the password was accepted")
	}
	// Only the second step answers: everything else sends the session back to it.
	for _, path := range []string{"/protected", "/profile", addAppPath, "/"} {
		if a := s.get(path); a.status != http.StatusSeeOther || a.location != "/login/code" {
			t.Errorf("GET %s while half logged in: %d %s", path, a.status, a.location)
		}
	}
	for _, path := range []string{"/profile/qr.png", "/profile/registration"} {
		if a := s.get(path); a.status == http.StatusOK {
			t.Errorf("GET %s while half logged in: %d %s", path, a.status, a.body)
		}
	}
	if a := s.post("/login/code", "/profile/2fa/disable", url.Values{}); a.status != http.StatusSeeOther || a.location != "/login" {
		t.Errorf("disable two-factor while half logged in: %d %s", a.status, a.location)
	}
	if u, _ := s.srv.users.byEmailAddr("ada@example.com"); u.AuthyID == 0 {
		t.Fatal("a half-logged-in session turned two-factor off")
	}
	if a := s.get("/login/code"); a.status != http.StatusOK || !strings.Contains(a.body, "Enter your code") ||
		!strings.Contains(html.UnescapeString(a.body), "We sent a code by SMS to <span class=\"nowrap\">+1 ••• ••• ••23</span>.") {
		t.Fatalf("code page: %d %s", a.status, a.body)
	}
	// A wrong code says so, and the session stays half logged in.
	a = s.post("/login/code", "/login/code", url.Values{"code": {"7654321"}})
	if a.status != http.StatusUnauthorized || !strings.Contains(a.body, "That code is wrong or has expired") {
		t.Fatalf("wrong code: %d %s", a.status, a.body)
	}
	if a := s.get("/protected"); a.status != http.StatusSeeOther {
		t.Fatalf("protected after a wrong code: %d", a.status)
	}
	// The right code logs in, under yet another session id (and, as ada has no authenticator yet,
	// offers to add one).
	if a := s.post("/login/code", "/login/code", url.Values{"code": {"123 4567"}}); a.status != http.StatusSeeOther || a.location != addAppPath {
		t.Fatalf("right code: %d %s %s", a.status, a.location, a.body)
	}
	if id := s.sessionID(); id == half {
		t.Fatal("the session id did not change after the second factor")
	}
	if a := s.get("/protected"); a.status != http.StatusOK || !strings.Contains(a.body, "a code sent to your phone by SMS") {
		t.Fatalf("protected: %d %s", a.status, a.body)
	}
	// The old half-logged-in session id is dead.
	stale := newBrowserClient()
	u, _ := url.Parse(s.url)
	stale.Jar.SetCookies(u, []*http.Cookie{{Name: "login_session", Value: half}})
	if a := s.do(stale, "GET", "/login/code", nil); a.status != http.StatusSeeOther || a.location != "/login" {
		t.Fatalf("the old session id still works: %d %s", a.status, a.location)
	}
}

func TestCallbackSignature(t *testing.T) {
	tf := newFakeTwofold(t)
	s := newSample(t, tf)
	s.signup("ada@example.com", "201-555-0123", true)
	u, _ := s.srv.users.byEmailAddr("ada@example.com")
	tf.mu.Lock()
	tf.devices[itoa(u.AuthyID)] = []string{"cli"}
	tf.mu.Unlock()
	s.logout()
	if a := s.login("ada@example.com", "correct horse battery"); a.location != "/login/wait" {
		t.Fatalf("log in with a device: %d %s", a.status, a.location)
	}
	if a := s.get("/login/wait"); !strings.Contains(a.body, "Check your phone") {
		t.Fatalf("wait page: %s", a.body)
	}
	s.srv.sessions.mu.Lock()
	var uuid string
	for _, sess := range s.srv.sessions.sessions {
		if sess.Stage == pending2FA {
			uuid = sess.ApprovalUUID
		}
	}
	s.srv.sessions.mu.Unlock()
	body := fmt.Sprintf(`{"authy_id":%d,"callback_action":"approval_request_status","uuid":%q,"status":"approved","device_uuid":"1"}`, u.AuthyID, uuid)
	var params map[string]any
	dec := json.NewDecoder(strings.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&params); err != nil {
		t.Fatal(err)
	}
	nonce := fmt.Sprint(time.Now().Unix())
	callbackURL := s.url + callbackPath
	send := func(sig, nonce string) int {
		req, _ := http.NewRequest("POST", callbackURL, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if sig != "" {
			req.Header.Set(client.SignatureHeader, sig)
		}
		if nonce != "" {
			req.Header.Set(client.NonceHeader, nonce)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	for _, tt := range []struct{ name, sig, nonce string }{
		{"unsigned", "", ""},
		{"no nonce", client.Signature(testKey, nonce, "POST", callbackURL, params), ""},
		{"another key", client.Signature(strings.Repeat("x", 32), nonce, "POST", callbackURL, params), nonce},
		{"another URL", client.Signature(testKey, nonce, "POST", "http://evil.example/authy/callback", params), nonce},
		{"another nonce", client.Signature(testKey, nonce, "POST", callbackURL, params), "1"},
		{"stale", client.Signature(testKey, "1000000000", "POST", callbackURL, params), "1000000000"},
	} {
		if got := send(tt.sig, tt.nonce); got != http.StatusUnauthorized {
			t.Errorf("%s callback: %d, want 401", tt.name, got)
		}
		if a, _ := s.srv.approvals.get(uuid); a.Status != "pending" {
			t.Fatalf("after the %s callback the request is %s", tt.name, a.Status)
		}
	}
	if a := s.get("/login/wait/status"); !strings.Contains(a.body, `"pending"`) {
		t.Fatalf("status after forged callbacks: %s", a.body)
	}
	// Signed with the key, the callback is believed.
	if got := send(client.Signature(testKey, nonce, "POST", callbackURL, params), nonce); got != http.StatusOK {
		t.Fatalf("signed callback: %d", got)
	}
	if a, _ := s.srv.approvals.get(uuid); a.Status != "approved" || a.Via != "callback" {
		t.Fatalf("after the signed callback: %+v", a)
	}
	if a := s.get("/login/wait/status"); !strings.Contains(a.body, `"approved"`) {
		t.Fatalf("status: %s", a.body)
	}
	if a := s.post("/login/wait", "/login/wait", url.Values{}); a.location != "/protected" {
		t.Fatalf("finish: %d %s", a.status, a.location)
	}
	if a := s.get("/protected"); !strings.Contains(a.body, "OneTouch") {
		t.Fatalf("protected: %s", a.body)
	}
}

// withDevice signs ada up with a OneTouch device and logs her in up to the wait page.
func withDevice(t *testing.T, tf *fakeTwofold, s *sample) (uuid string) {
	t.Helper()
	s.signup("ada@example.com", "201-555-0123", true)
	u, _ := s.srv.users.byEmailAddr("ada@example.com")
	tf.mu.Lock()
	tf.devices[itoa(u.AuthyID)] = []string{"android"}
	tf.mu.Unlock()
	s.logout()
	if a := s.login("ada@example.com", "correct horse battery"); a.location != "/login/wait" {
		t.Fatalf("log in with a device: %d %s", a.status, a.location)
	}
	s.srv.sessions.mu.Lock()
	defer s.srv.sessions.mu.Unlock()
	for _, sess := range s.srv.sessions.sessions {
		if sess.Stage == pending2FA {
			return sess.ApprovalUUID
		}
	}
	t.Fatal("no half-logged-in session")
	return ""
}

func TestWaitFallbacks(t *testing.T) {
	t.Run("a code instead", func(t *testing.T) {
		tf := newFakeTwofold(t)
		s := newSample(t, tf)
		uuid := withDevice(t, tf, s)
		if a := s.post("/login/wait", "/login/sms", url.Values{}); a.location != "/login/code" {
			t.Fatalf("send me a code: %d %s", a.status, a.location)
		}
		// The request the log-in no longer waits for is closed: the phone drops it.
		tf.mu.Lock()
		status, closes := tf.approvals[uuid], tf.closes
		tf.mu.Unlock()
		if status != "expired" || closes != 1 {
			t.Fatalf("the approval request after a code instead: %s, %d closes; want closed", status, closes)
		}
		a := s.get("/login/code")
		if !strings.Contains(a.body, "We sent a code by SMS to") || strings.Contains(a.body, `role="status"`) {
			t.Fatalf("code page (one message, no banner repeating it): %s", a.body)
		}
		// The wait page is over: it sends the browser to the code page.
		if a := s.get("/login/wait"); a.location != "/login/code" {
			t.Fatalf("wait page after a code was sent: %d %s", a.status, a.location)
		}
		// A second code is a new one; there is no request left to close.
		s.post("/login/code", "/login/sms", url.Values{})
		if a := s.get("/login/code"); !strings.Contains(a.body, "We sent a new code by SMS to") || strings.Contains(a.body, `role="status"`) {
			t.Fatalf("code page after resending: %s", a.body)
		}
		s.post("/login/code", "/login/call", url.Values{})
		if a := s.get("/login/code"); !strings.Contains(html.UnescapeString(a.body), "We are calling <span class=\"nowrap\">+1 ••• ••• ••23</span>: type the code") {
			t.Fatalf("code page after a call: %s", a.body)
		}
		if tf.closes != 1 {
			t.Fatalf("%d closes, want 1", tf.closes)
		}
	})
	t.Run("cancelled", func(t *testing.T) {
		tf := newFakeTwofold(t)
		s := newSample(t, tf)
		uuid := withDevice(t, tf, s)
		if a := s.post("/login/wait", "/logout", url.Values{}); a.location != "/login" {
			t.Fatalf("cancel log-in: %d %s", a.status, a.location)
		}
		tf.mu.Lock()
		defer tf.mu.Unlock()
		if tf.approvals[uuid] != "expired" || tf.closes != 1 {
			t.Fatalf("the approval request after the log-in was cancelled: %s, %d closes; want closed", tf.approvals[uuid], tf.closes)
		}
	})
	t.Run("answered meanwhile", func(t *testing.T) {
		tf := newFakeTwofold(t)
		s := newSample(t, tf)
		uuid := withDevice(t, tf, s)
		tf.mu.Lock()
		tf.approvals[uuid] = "approved" // the phone answered just as the user asked for a code
		tf.mu.Unlock()
		if a := s.post("/login/wait", "/login/sms", url.Values{}); a.location != "/login/code" {
			t.Fatalf("send me a code: %d %s", a.status, a.location)
		}
		// The log-in goes on with the code: the approval is not used.
		if a := s.get("/protected"); a.location != "/login/code" {
			t.Fatalf("protected after an approval the log-in left: %d %s", a.status, a.location)
		}
	})
	t.Run("expired", func(t *testing.T) {
		tf := newFakeTwofold(t)
		s := newSample(t, tf)
		uuid := withDevice(t, tf, s)
		tf.mu.Lock()
		tf.approvals[uuid] = "expired" // no callback: the sample learns it from Twofold
		tf.mu.Unlock()
		if a := s.post("/login/wait", "/login/wait", url.Values{}); a.location != "/login/wait" {
			t.Fatalf("finish: %d %s", a.status, a.location)
		}
		a := s.get("/login/wait")
		if !strings.Contains(a.body, "Request expired") || !strings.Contains(a.body, "Send me a code instead") {
			t.Fatalf("expired wait page: %s", a.body)
		}
		if a := s.get("/protected"); a.status != http.StatusSeeOther {
			t.Fatalf("protected after expiry: %d", a.status)
		}
	})
	t.Run("pending", func(t *testing.T) {
		tf := newFakeTwofold(t)
		s := newSample(t, tf)
		withDevice(t, tf, s)
		if a := s.post("/login/wait", "/login/wait", url.Values{}); a.location != "/login/wait" {
			t.Fatalf("finish while pending: %d %s", a.status, a.location)
		}
		if a := s.get("/login/wait"); !strings.Contains(a.body, "Not approved yet") {
			t.Fatalf("wait page: %s", a.body)
		}
	})
}

func TestLoginAttemptLimit(t *testing.T) {
	var offset atomic.Int64 // how far the test moved the clock on
	s := newSampleAt(t, newFakeTwofold(t), func() time.Time { return time.Now().Add(time.Duration(offset.Load())) })
	s.signup("ada@example.com", "201-555-0123", false)
	s.logout()
	for i := range 10 {
		if a := s.login("ada@example.com", fmt.Sprintf("wrong password %d", i)); a.status != http.StatusUnauthorized || !strings.Contains(a.body, "Wrong email or password.") {
			t.Fatalf("wrong password %d: %d", i, a.status)
		}
	}
	// The eleventh try is refused even with the right password.
	a := s.login("ada@example.com", "correct horse battery")
	if a.status != http.StatusTooManyRequests || !strings.Contains(a.body, "Too many failed attempts for this account. Try again in 15 minutes.") {
		t.Fatalf("after 10 failures: %d %s", a.status, a.body)
	}
	// Another account is not affected; an unknown email gets the same answer as a wrong password.
	if a := s.login("nobody@example.com", "correct horse battery"); a.status != http.StatusUnauthorized || !strings.Contains(a.body, "Wrong email or password.") {
		t.Fatalf("unknown email: %d", a.status)
	}
	// After the window the account opens again.
	offset.Store(int64(15*time.Minute + time.Second))
	if a := s.login("ada@example.com", "correct horse battery"); a.status != http.StatusSeeOther || a.location != "/protected" {
		t.Fatalf("after the window: %d %s", a.status, a.body)
	}
}

func TestAttemptLimiter(t *testing.T) {
	l := newAttemptLimiter(3, time.Minute)
	t0 := time.Unix(1_700_000_000, 0)
	for i := range 3 {
		if _, b := l.blocked("a", t0); b {
			t.Fatalf("blocked after %d failures", i)
		}
		l.fail("a", t0.Add(time.Duration(i)*10*time.Second))
	}
	wait, b := l.blocked("a", t0.Add(25*time.Second))
	if !b || wait != 35*time.Second {
		t.Fatalf("blocked = %v, %v; want true, 35s", b, wait)
	}
	if _, b := l.blocked("a", t0.Add(time.Minute)); b {
		t.Fatal("still blocked once the first failure left the window")
	}
	l.reset("a")
	if _, b := l.blocked("a", t0.Add(25*time.Second)); b {
		t.Fatal("blocked after reset")
	}
}

func TestSecurityHeaders(t *testing.T) {
	s := newSample(t, newFakeTwofold(t))
	res, err := s.hc.Get(s.url + "/login")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	for name, want := range map[string]string{
		"X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer", "X-Content-Type-Options": "nosniff", "Cache-Control": "no-store",
	} {
		if got := res.Header.Get(name); got != want {
			t.Errorf("%s: %q, want %q", name, got, want)
		}
	}
	if csp := res.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-inline") {
		t.Errorf("CSP %q", csp)
	}
	var cookie *http.Cookie
	for _, c := range res.Cookies() {
		cookie = c
	}
	if cookie == nil || !cookie.HttpOnly || cookie.SameSite != http.SameSiteLaxMode || cookie.Secure || len(cookie.Value) != 43 {
		t.Fatalf("session cookie %+v", cookie)
	}
}

func TestSignupChecks(t *testing.T) {
	s := newSample(t, newFakeTwofold(t))
	for _, tt := range []struct {
		name string
		form url.Values
		want string
	}{
		{"short password", url.Values{"email": {"a@example.com"}, "password": {"123456789"}, "phone": {"2015550123"}, "country_code": {"1"}}, "at least 10 characters"},
		{"bad email", url.Values{"email": {"not-an-email"}, "password": {"1234567890"}, "phone": {"2015550123"}, "country_code": {"1"}}, "valid email"},
		{"bad phone", url.Values{"email": {"a@example.com"}, "password": {"1234567890"}, "phone": {"call me"}, "country_code": {"1"}}, "phone number"},
		{"bad country", url.Values{"email": {"a@example.com"}, "password": {"1234567890"}, "phone": {"2015550123"}, "country_code": {"x"}}, "country calling code"},
	} {
		a := s.post("/signup", "/signup", tt.form)
		if a.status != http.StatusBadRequest || !strings.Contains(a.body, tt.want) {
			t.Errorf("%s: %d, want 400 with %q", tt.name, a.status, tt.want)
		}
	}
	// The sign-up page ticks two-factor authentication by default.
	if a := s.get("/signup"); !regexp.MustCompile(`id="two_factor"\s+checked`).MatchString(a.body) {
		t.Error("the two-factor checkbox is not checked by default")
	}
}

func TestConfig(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	_, err := parseConfig(nil, env(nil), io.Discard)
	if err == nil || !strings.Contains(err.Error(), "TWOFOLD_API_KEY") {
		t.Fatalf("without a key: %v", err)
	}
	if _, err := parseConfig([]string{"--help"}, env(nil), io.Discard); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("--help: %v", err)
	}
	cfg, err := parseConfig(nil, env(map[string]string{"TWOFOLD_API_KEY": "k", "SAMPLE_ADDR": "127.0.0.1:4000"}), io.Discard)
	if err != nil || cfg.PublicURL != "http://127.0.0.1:4000" || cfg.TwofoldURL != defaultTwofoldURL {
		t.Fatalf("defaults: %+v %v", cfg, err)
	}
	cfg, err = parseConfig([]string{"--public-url", "https://app.example.com/", "--twofold-url", "https://2fa.example.com"},
		env(map[string]string{"TWOFOLD_API_KEY": "k"}), io.Discard)
	if err != nil || cfg.TwofoldURL != "https://2fa.example.com" {
		t.Fatalf("flags: %+v %v", cfg, err)
	}
	h, err := newServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if srv := h.(*server); !srv.sessions.secure || srv.cfg.PublicURL != "https://app.example.com" {
		t.Fatalf("https public URL: secure=%v %s", srv.sessions.secure, srv.cfg.PublicURL)
	}
	if _, err := newServer(config{APIKey: "k", PublicURL: "ftp://x"}); err == nil {
		t.Fatal("a non-http public URL was accepted")
	}
}

// One mask for the phone, on every page: the country code and the last two digits, the rest a
// mask of one length whatever the number's.
func TestMaskPhone(t *testing.T) {
	for _, tt := range []struct{ cc, phone, want string }{
		{"1", "201-555-0123", "+1 ••• ••• ••23"},
		{"1", "(201) 555 0199", "+1 ••• ••• ••99"},
		{"44", "7700 900123", "+44 ••• ••• ••23"},
		{"49", "30 1234567890", "+49 ••• ••• ••90"},
		{"1", "12", "your phone"},
		{"1", "", "your phone"},
	} {
		if got := maskPhone(tt.cc, tt.phone); got != tt.want {
			t.Errorf("maskPhone(%q, %q) = %q, want %q", tt.cc, tt.phone, got, tt.want)
		}
	}
}
