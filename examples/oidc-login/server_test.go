package main

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/twofold-auth/twofold/internal/otp"
)

// browser is an HTTP client with cookies that follows redirects, except (when stop is set) into
// the sample's callback, so a test can hold the answer Twofold sent back.
type browser struct {
	t    *testing.T
	hc   *http.Client
	stop bool
}

func newBrowser(t *testing.T) *browser {
	jar, _ := cookiejar.New(nil)
	b := &browser{t: t}
	b.hc = &http.Client{Jar: jar, CheckRedirect: func(req *http.Request, via []*http.Request) error {
		if b.stop && req.URL.Path == callbackPath {
			return http.ErrUseLastResponse
		}
		return nil
	}}
	return b
}

func (b *browser) do(method, u string, form url.Values) (*http.Response, string) {
	b.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, _ := http.NewRequest(method, u, body)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := b.hc.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp, string(raw)
}

func (b *browser) get(u string) (*http.Response, string) { return b.do("GET", u, nil) }

// logIn posts the password form and returns where the redirects ended.
func (b *browser) logIn(sample, email, password string) (*http.Response, string) {
	b.t.Helper()
	return b.do("POST", sample+"/login", url.Values{"email": {email}, "password": {password}})
}

// toStep logs in and returns the step page's URL.
func (b *browser) toStep(sample, email, password string) string {
	b.t.Helper()
	resp, body := b.logIn(sample, email, password)
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Request.URL.Path, "/step/") {
		b.t.Fatalf("log-in went to %s (%d), not the step page:\n%s", resp.Request.URL, resp.StatusCode, body)
	}
	return resp.Request.URL.String()
}

const password = "correct horse battery staple"

// The whole sign-in as the sample does it: the password, the step with the user's authenticator
// code, the code redeemed and the id token checked; the home page says who and how.
func TestSignIn(t *testing.T) {
	tf := newStandIn(t)
	id, key := tf.EnrolledUser(t, "ana@example.com")
	sample := startSample(t, tf, "email,password,twofold_id\n"+csvLine("Ana@Example.com", password, id), nil)
	b := newBrowser(t)

	if resp, body := b.logIn(sample, "ana@example.com", "wrong"); resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "Wrong email or password") {
		t.Fatalf("wrong password: %d\n%s", resp.StatusCode, body)
	}
	if resp, _ := b.get(sample + "/"); resp.Request.URL.Path != "/login" {
		t.Fatalf("home before signing in: %s", resp.Request.URL)
	}
	page := b.toStep(sample, "ana@example.com", password)
	resp, body := b.get(page + "?totp=" + key.Code(time.Now()))
	if resp.StatusCode != http.StatusOK || resp.Request.URL.String() != sample+"/" {
		t.Fatalf("after the step: %s %d\n%s", resp.Request.URL, resp.StatusCode, body)
	}
	for _, want := range []string{"Signed in as <strong>ana@example.com</strong>, second factor: <strong id=\"amr\">otp</strong>",
		`<dd id="sub">` + id + `</dd>`, "urn:twofold:acr:mfa"} {
		if !strings.Contains(body, want) {
			t.Errorf("home page lacks %q:\n%s", want, body)
		}
	}
	if resp, body := b.do("POST", sample+"/logout", url.Values{}); resp.Request.URL.Path != "/login" || strings.Contains(body, "Signed in") {
		t.Fatalf("log out: %s", resp.Request.URL)
	}
	if resp, _ := b.get(sample + "/"); resp.Request.URL.Path != "/login" {
		t.Fatalf("home after logging out: %s", resp.Request.URL)
	}
}

// The user is named only inside the request object, signed with the client secret: nobody
// without the secret can start a step (a push, an SMS) for them, and it covers the redirect URI,
// state, nonce and PKCE challenge.
func TestRequestObject(t *testing.T) {
	tf := newStandIn(t)
	tf.EnrolledUser(t, "ana@example.com")
	var secret string
	sample := startSample(t, tf, csvLine("ana@example.com", password), func(c *config) { secret = c.ClientSecret })
	b := newBrowser(t)
	b.hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, _ := b.logIn(sample, "ana@example.com", password)
	to, _ := url.Parse(resp.Header.Get("Location"))
	q := to.Query()
	if q.Has("login_hint") || q.Get("code_challenge_method") != "S256" || q.Get("state") == "" || q.Get("nonce") == "" {
		t.Fatalf("authorization request: %s", to)
	}
	tok, err := jwt.ParseSigned(q.Get("request"), []jose.SignatureAlgorithm{jose.HS256})
	if err != nil {
		t.Fatal(err)
	}
	var claims map[string]any
	if err := tok.Claims([]byte(secret), &claims); err != nil {
		t.Fatalf("the request object does not verify with the client secret: %v", err)
	}
	for k, want := range map[string]string{"login_hint": "ana@example.com", "aud": tf.Issuer(), "redirect_uri": sample + callbackPath,
		"state": q.Get("state"), "nonce": q.Get("nonce"), "code_challenge": q.Get("code_challenge"), "response_type": "code"} {
		if claims[k] != want {
			t.Errorf("request object %s = %v, want %q", k, claims[k], want)
		}
	}
	if claims["jti"] == "" || claims["exp"] == nil {
		t.Errorf("request object without jti or exp: %v", claims)
	}
}

// What the callback refuses: an answer this browser did not ask for, an answer twice, another
// sign-in's answer, Twofold's refusal, and an id token about someone else than who typed the
// password.
func TestCallbackRefuses(t *testing.T) {
	tf := newStandIn(t)
	anaID, anaKey := tf.EnrolledUser(t, "ana@example.com")
	_, bobKey := tf.EnrolledUser(t, "bob@example.com")
	sample := startSample(t, tf, csvLine("ana@example.com", password, anaID)+csvLine("bob@example.com", password)+
		csvLine("eve@example.com", password, "999999"), nil)
	_, eveKey := tf.EnrolledUser(t, "eve@example.com") // her id in the sample's table is wrong

	// answer runs a sign-in up to Twofold's answer, and returns the callback URL unvisited.
	answer := func(b *browser, email string, key otp.Key) string {
		t.Helper()
		b.stop = true
		defer func() { b.stop = false }()
		resp, body := b.get(b.toStep(sample, email, password) + "?totp=" + key.Code(time.Now()))
		if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), sample+callbackPath) {
			t.Fatalf("Twofold's answer: %d %s\n%s", resp.StatusCode, resp.Header.Get("Location"), body)
		}
		return resp.Header.Get("Location")
	}
	refused := func(name string, b *browser, u string, status int, says string) {
		t.Helper()
		resp, body := b.get(u)
		if resp.StatusCode != status || !strings.Contains(body, says) || strings.Contains(body, "Signed in as") {
			t.Errorf("%s: %d, want %d saying %q:\n%s", name, resp.StatusCode, status, says, body)
		}
	}

	// Eve's attack on Ana: Eve's own answer, given to Ana's browser, which is mid sign-in.
	eve, ana := newBrowser(t), newBrowser(t)
	eveAnswer := answer(eve, "bob@example.com", bobKey)
	ana.toStep(sample, "ana@example.com", password)
	refused("another sign-in's answer", ana, eveAnswer, http.StatusBadRequest, "not started in this browser")
	refused("an answer in a browser that started nothing", newBrowser(t), eveAnswer, http.StatusBadRequest, "not started in this browser")

	// Ana's own answer works once.
	good := answer(ana, "ana@example.com", anaKey)
	if resp, body := ana.get(good); !strings.Contains(body, "Signed in as <strong>ana@example.com") {
		t.Fatalf("Ana's answer: %d\n%s", resp.StatusCode, body)
	}
	refused("the same answer again", ana, good, http.StatusBadRequest, "not started in this browser")

	// Twofold refuses: the user cancels.
	cancel := newBrowser(t)
	resp, body := cancel.get(cancel.toStep(sample, "ana@example.com", password) + "?cancel=1")
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "The second factor was not confirmed: The user gave up.") {
		t.Errorf("cancelled: %d\n%s", resp.StatusCode, body)
	}

	// The id token is about a Twofold user other than the one the sample's table says.
	other := newBrowser(t)
	refused("an id token of another Twofold user", other, answer(other, "eve@example.com", eveKey), http.StatusForbidden, "could not be confirmed")
}

// What a sign-in meets when something is wrong on the way: each ends on the sample's own
// page, signed out, saying what happened.
func TestSignInProblems(t *testing.T) {
	tf := newStandIn(t)
	tf.EnrolledUser(t, "ana@example.com")
	users := csvLine("ana@example.com", password) + csvLine("zoe@example.com", password) // Zoë is not in Twofold
	down := httptest.NewServer(http.NotFoundHandler())
	down.Close()
	for _, tc := range []struct {
		name   string
		change func(*config)
		email  string
		status int
		says   string
	}{
		{"user not in Twofold", nil, "zoe@example.com", http.StatusForbidden, "The user named is not enrolled with this application."},
		{"wrong client secret", func(c *config) { c.ClientSecret = "tfs_" + strings.Repeat("x", 43) }, "ana@example.com", http.StatusForbidden,
			"The request object is not valid: the signature does not verify"},
		{"Twofold down", func(c *config) { c.TwofoldURL = down.URL }, "ana@example.com", http.StatusBadGateway, "not answering"},
		{"an issuer that is not TWOFOLD_URL", func(c *config) { c.TwofoldURL = strings.Replace(c.TwofoldURL, "127.0.0.1", "localhost", 1) }, "ana@example.com", http.StatusBadGateway, "not answering"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sample := startSample(t, tf, users, tc.change)
			resp, body := newBrowser(t).logIn(sample, tc.email, password)
			if resp.StatusCode != tc.status || !strings.Contains(body, tc.says) || !strings.HasPrefix(resp.Request.URL.String(), sample) {
				t.Errorf("%s %d, want %d saying %q:\n%s", resp.Request.URL, resp.StatusCode, tc.status, tc.says, body)
			}
		})
	}
}

// Wrong passwords: the same answer for an unknown email; after ten for one email in a quarter
// of an hour, even the right password waits.
func TestPasswords(t *testing.T) {
	us, err := loadUsers(writeFile(t, "email,password\n"+csvLine("Ana@Example.com", password)))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	if u, ok, err := us.check(" ANA@example.com", password, now); !ok || err != nil || u.Email != "ana@example.com" {
		t.Fatalf("right password: %+v %v %v", u, ok, err)
	}
	if _, ok, err := us.check("nobody@example.com", password, now); ok || err != nil {
		t.Fatalf("unknown email: %v %v", ok, err)
	}
	for range maxFailures {
		if _, ok, _ := us.check("ana@example.com", "wrong", now); ok {
			t.Fatal("a wrong password passed")
		}
	}
	if _, _, err := us.check("ana@example.com", password, now.Add(time.Minute)); err != errLocked {
		t.Fatalf("after %d wrong passwords: %v", maxFailures, err)
	}
	if _, ok, err := us.check("ana@example.com", password, now.Add(failureWindow)); !ok || err != nil {
		t.Fatalf("after the window: %v %v", ok, err)
	}
	for _, bad := range []string{"ana@example.com\n", "ana,pw,x\n", "ana@example.com,pw,1,2\n", "ana@example.com,\n"} {
		if _, err := loadUsers(writeFile(t, bad)); err == nil {
			t.Errorf("loadUsers accepted %q", bad)
		}
	}
}

func TestConfig(t *testing.T) {
	env := map[string]string{"TWOFOLD_CLIENT_ID": "tfc_x", "TWOFOLD_CLIENT_SECRET": "tfs_y"}
	cfg, err := parseConfig([]string{"--addr", "127.0.0.1:4000"}, func(k string) string { return env[k] }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.check(); err != nil || cfg.PublicURL != "http://127.0.0.1:4000" || cfg.TwofoldURL != defaultTwofoldURL || cfg.ClientSecret != "tfs_y" ||
		cfg.Passwordless {
		t.Fatalf("%+v %v", cfg, err)
	}
	env["TWOFOLD_PASSWORDLESS"] = "1"
	if cfg, err := parseConfig(nil, func(k string) string { return env[k] }, io.Discard); err != nil || !cfg.Passwordless {
		t.Fatalf("TWOFOLD_PASSWORDLESS=1: %+v %v", cfg, err)
	}
	if cfg, err := parseConfig([]string{"--passwordless=false"}, func(k string) string { return env[k] }, io.Discard); err != nil || cfg.Passwordless {
		t.Fatalf("--passwordless=false over the environment: %+v %v", cfg, err)
	}
	for _, bad := range []config{{ClientID: "x"}, {ClientID: "x", ClientSecret: "y", TwofoldURL: "127.0.0.1:8080"},
		{ClientID: "x", ClientSecret: "y", PublicURL: "http://127.0.0.1:3001/?a=b"}} {
		if err := bad.check(); err == nil {
			t.Errorf("check accepted %+v", bad)
		}
	}
}

func writeFile(t *testing.T, text string) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "users.csv")
	if err := os.WriteFile(f, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}
