package step_test

import (
	"bytes"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/twofold-auth/twofold/internal/apps"
	"github.com/twofold-auth/twofold/internal/deliver"
	"github.com/twofold-auth/twofold/internal/hostedstep"
	"github.com/twofold-auth/twofold/internal/masterkey"
	"github.com/twofold-auth/twofold/internal/oidc"
	"github.com/twofold-auth/twofold/internal/onetouch"
	"github.com/twofold-auth/twofold/internal/otp"
	"github.com/twofold-auth/twofold/internal/recovery"
	"github.com/twofold-auth/twofold/internal/seal"
	"github.com/twofold-auth/twofold/internal/signingkeys"
	"github.com/twofold-auth/twofold/internal/store"
	"github.com/twofold-auth/twofold/internal/twofold"
	"github.com/twofold-auth/twofold/internal/users"
	"github.com/twofold-auth/twofold/internal/verify"
	"github.com/twofold-auth/twofold/internal/web/step"
)

// fixture is the page and the OpenID provider over real services and a real SQLite store, on
// a loopback server, with one application, one user (with an authenticator and a phone) and
// one client.
type fixture struct {
	t      *testing.T
	srv    *httptest.Server
	st     *store.Store
	outbox *deliver.Outbox
	app    twofold.App
	user   twofold.User
	key    otp.Key
	client hostedstep.Created
	rc     *recovery.Service
}

const redirectURI = "https://rp.example.com/callback"

func newFixture(t *testing.T, factors ...twofold.Factor) *fixture {
	t.Helper()
	return newFixtureWith(t, verify.Config{}, factors...)
}

// newFixtureWith is newFixture with the code service's limits of cfg.
func newFixtureWith(t *testing.T, cfg verify.Config, factors ...twofold.Factor) *fixture {
	t.Helper()
	return newFixtureOpts(t, fixtureOpts{verify: cfg}, factors...)
}

// fixtureOpts change how a fixture is wired.
type fixtureOpts struct {
	verify verify.Config
	log    *slog.Logger                        // the page's and the provider's; nil: discard
	steps  func(*hostedstep.Steps) stepService // wraps the step service; nil: as it is
	server func(http.Handler) *httptest.Server // starts the server; nil: httptest.NewServer
}

// stepService is what the page and the provider need of the step service.
type stepService interface {
	step.Steps
	oidc.Steps
}

func newFixtureOpts(t *testing.T, opts fixtureOpts, factors ...twofold.Factor) *fixture {
	t.Helper()
	cfg := opts.verify
	ctx := t.Context()
	st, err := store.OpenSQLite(ctx, filepath.Join(t.TempDir(), "twofold.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	keys, _ := seal.New(bytes.Repeat([]byte{7}, seal.KeySize))
	log := slog.New(slog.DiscardHandler)
	outbox := deliver.NewOutbox(st, keys, log, nil)
	router, err := deliver.NewRouter(outbox, nil, deliver.RouterConfig{}, nil, log)
	if err != nil {
		t.Fatal(err)
	}
	vs := verify.New(st, router, keys, cfg, nil)
	recoveryKey, err := masterkey.RecoveryKey(ctx, st, keys)
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, st: st, outbox: outbox, rc: recovery.New(st, recoveryKey, nil, nil)}
	vs.SetRecovery(f.rc)
	f.app, _, err = apps.New(st, keys, nil).Create(ctx, apps.CreateParams{Name: "Acme Bank"})
	if err != nil {
		t.Fatal(err)
	}
	f.user, _, err = users.New(st, nil).Register(ctx, f.app.ID, users.Contact{Email: "ana@example.com", Cellphone: "2015550123", CountryCode: "1"})
	if err != nil {
		t.Fatal(err)
	}
	enr, err := vs.Enroll(ctx, f.app, f.user.ID, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	f.key, _ = otp.ParseURI(enr.URI)
	clients := hostedstep.NewClients(st, keys, nil)
	if len(factors) == 0 {
		factors = []twofold.Factor{twofold.FactorTOTP, twofold.FactorSMS, twofold.FactorEmail}
	}
	name, uris, match := "Acme Bank login", []string{redirectURI}, twofold.MatchEmail
	f.client, err = clients.Create(ctx, f.app.ID, hostedstep.Spec{Name: &name, RedirectURIs: &uris, Factors: &factors, UserMatch: &match})
	if err != nil {
		t.Fatal(err)
	}
	var steps stepService = hostedstep.NewSteps(st, keys, vs, onetouch.New(st, onetouch.Config{}, onetouch.Hooks{}, nil), hostedstep.Config{}, nil)
	if opts.steps != nil {
		steps = opts.steps(steps.(*hostedstep.Steps))
	}
	mux := http.NewServeMux()
	if opts.server != nil {
		f.srv = opts.server(mux)
	} else {
		f.srv = httptest.NewServer(mux)
		t.Cleanup(f.srv.Close)
	}
	p, err := oidc.New(oidc.Config{Issuer: f.srv.URL, Clients: clients, Steps: steps, Keys: signingkeys.New(st, keys, nil),
		Remote: oidc.NewKeySets(http.DefaultClient, nil), Marks: st, MACs: keys, Log: opts.log})
	if err != nil {
		t.Fatal(err)
	}
	p.Routes(mux)
	step.New(step.Config{Steps: steps, Finishers: map[string]step.Finisher{oidc.Dialect: p}, MACs: keys, Log: opts.log}).Routes(mux)
	return f
}

// browser keeps cookies and follows redirects within the server only, so the last answer is
// the page or the redirect back to the relying party.
type browser struct {
	t    *testing.T
	f    *fixture
	hc   *http.Client
	lang string
}

func (f *fixture) browser() *browser {
	jar, _ := cookiejar.New(nil)
	host := strings.TrimPrefix(f.srv.URL, "http://")
	return &browser{t: f.t, f: f, hc: &http.Client{Jar: jar, CheckRedirect: func(req *http.Request, _ []*http.Request) error {
		if req.URL.Host != host {
			return http.ErrUseLastResponse
		}
		return nil
	}}}
}

type answer struct {
	status int
	header http.Header
	body   string
	url    *url.URL // where the browser ended up
}

func (b *browser) do(method, u string, form url.Values) answer {
	b.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	if strings.HasPrefix(u, "/") {
		u = b.f.srv.URL + u
	}
	req, _ := http.NewRequest(method, u, body)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if b.lang != "" {
		req.Header.Set("Accept-Language", b.lang)
	}
	resp, err := b.hc.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return answer{status: resp.StatusCode, header: resp.Header, body: string(raw), url: resp.Request.URL}
}

// begin signs in through the provider as a relying party does (a request object signed with
// the client secret names the user) and returns the step page the browser lands on.
func (b *browser) begin() answer {
	b.t.Helper()
	a := b.do("GET", b.f.authorizeURL(), nil)
	if a.status != http.StatusOK || !strings.HasPrefix(a.url.Path, step.Path) {
		b.t.Fatalf("authorize ended at %s with %d:\n%s", a.url, a.status, a.body)
	}
	return a
}

// authorizeURL is a relying party's authorization request for the user, on the server.
func (f *fixture) authorizeURL() string {
	f.t.Helper()
	now := time.Now()
	s, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: []byte(f.client.Secret)}, nil)
	request, err := jwt.Signed(s).Claims(map[string]any{"iss": f.client.Client.ClientID, "aud": f.srv.URL, "exp": now.Add(time.Minute).Unix(),
		"login_hint": "ana@example.com", "jti": strconv.FormatInt(now.UnixNano(), 10)}).Serialize()
	if err != nil {
		f.t.Fatal(err)
	}
	q := url.Values{"client_id": {f.client.Client.ClientID}, "redirect_uri": {redirectURI}, "response_type": {"code"},
		"scope": {"openid"}, "state": {"st"}, "nonce": {"n"}, "request": {request}}
	return f.srv.URL + "/oauth2/authorize?" + q.Encode()
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func csrfOf(t *testing.T, a answer) string {
	t.Helper()
	m := csrfField.FindStringSubmatch(a.body)
	if m == nil {
		t.Fatalf("no CSRF token on the page:\n%s", a.body)
	}
	return m[1]
}

// The page's answers carry the headers that keep it out of frames, caches and referrers, and a
// policy that runs no inline script and lets forms go only to the page and the client's
// registered redirect URIs.
func TestHeaders(t *testing.T) {
	f := newFixture(t)
	b := f.browser()
	page := b.begin()
	none := f.browser().do("GET", page.url.Path, nil) // another browser: the error page
	status := b.do("GET", page.url.Path+"/status", nil)
	for name, a := range map[string]answer{"page": page, "error page": none, "status": status} {
		h := a.header
		csp := h.Get("Content-Security-Policy")
		for _, want := range []string{"frame-ancestors 'none'", "script-src 'self'", "default-src 'none'", "base-uri 'none'"} {
			if !strings.Contains(csp, want) {
				t.Errorf("%s: CSP %q lacks %s", name, csp, want)
			}
		}
		if strings.Contains(csp, "unsafe-inline") {
			t.Errorf("%s: CSP allows inline code: %s", name, csp)
		}
		for k, want := range map[string]string{"X-Frame-Options": "DENY", "Cache-Control": "no-store", "Referrer-Policy": "no-referrer",
			"X-Content-Type-Options": "nosniff"} {
			if got := h.Get(k); got != want {
				t.Errorf("%s: %s = %q, want %q", name, k, got, want)
			}
		}
	}
	if csp := page.header.Get("Content-Security-Policy"); !strings.HasSuffix(csp, "form-action 'self' https://rp.example.com") {
		t.Errorf("page CSP form-action: %s", csp)
	}
	if csp := none.header.Get("Content-Security-Policy"); !strings.HasSuffix(csp, "form-action 'none'") {
		t.Errorf("error page CSP form-action: %s", csp)
	}
	if strings.Contains(page.body, "<script>") || strings.Contains(page.body, " on") && regexp.MustCompile(`\son[a-z]+=`).MatchString(page.body) {
		t.Errorf("inline script on the page:\n%s", page.body)
	}
}

// The TOTP path over plain HTTP, as a browser without JavaScript sends it: a wrong code says so
// and changes nothing; the right one goes back to the relying party with a code, and only
// there.
func TestCodeOverForms(t *testing.T) {
	f := newFixture(t)
	b := f.browser()
	page := b.begin()
	if !strings.Contains(page.body, `id="code-form"`) || !strings.Contains(page.body, "Acme Bank") {
		t.Fatalf("the first page is not the authenticator's code form:\n%s", page.body)
	}
	token := csrfOf(t, page)
	wrong := b.do("POST", page.url.Path+"/code", url.Values{"csrf": {token}, "via": {"totp"}, "code": {"000000"}})
	if wrong.status != http.StatusUnprocessableEntity || !strings.Contains(wrong.body, `role="alert"`) || !strings.Contains(wrong.body, `aria-invalid="true"`) {
		t.Fatalf("a wrong code: %d\n%s", wrong.status, wrong.body)
	}
	code := f.key.Code(time.Now())
	done := b.do("POST", page.url.Path+"/code", url.Values{"csrf": {token}, "via": {"totp"}, "code": {code[:3] + " " + code[3:]}})
	if done.status != http.StatusSeeOther {
		t.Fatalf("the right code: %d\n%s", done.status, done.body)
	}
	back, _ := url.Parse(done.header.Get("Location"))
	if back.Scheme+"://"+back.Host+back.Path != redirectURI || back.Query().Get("code") == "" || back.Query().Get("state") != "st" {
		t.Fatalf("went back to %s", back)
	}
	// Handed back: going back to the page offers to continue, but no second code is issued.
	again := b.do("GET", page.url.Path, nil)
	if again.status != http.StatusOK || !strings.Contains(again.body, `id="continue-form"`) {
		t.Fatalf("the page after the step: %d\n%s", again.status, again.body)
	}
	if a := b.do("POST", page.url.Path+"/continue", url.Values{"csrf": {token}}); a.status != http.StatusNotFound || a.header.Get("Location") != "" {
		t.Fatalf("continue after the step: %d %s", a.status, a.header.Get("Location"))
	}
}

// Every form of the page needs the session's CSRF token: a post without one, with a wrong one
// or with another session's changes nothing.
func TestCSRF(t *testing.T) {
	f := newFixture(t)
	b := f.browser()
	page := b.begin()
	other := f.browser()
	otherToken := csrfOf(t, other.begin())
	code := f.key.Code(time.Now())
	forms := map[string]url.Values{
		"code":     {"via": {"totp"}, "code": {code}},
		"send":     {"factor": {"sms"}},
		"cancel":   {},
		"continue": {},
	}
	for action, form := range forms {
		for name, token := range map[string]string{"none": "", "wrong": "AAAA", "another session's": otherToken, "garbage": "%%%"} {
			vals := url.Values{}
			for k, v := range form {
				vals[k] = v
			}
			if token != "" {
				vals.Set("csrf", token)
			}
			a := b.do("POST", page.url.Path+"/"+action, vals)
			if a.status != http.StatusForbidden || a.header.Get("Location") != "" {
				t.Errorf("%s with %s token: %d %s", action, name, a.status, a.header.Get("Location"))
			}
		}
	}
	// A form from another site is refused even with the token.
	req, _ := http.NewRequest("POST", f.srv.URL+page.url.Path+"/cancel", strings.NewReader(url.Values{"csrf": {csrfOf(t, page)}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	resp, err := b.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("a cross-site post: %d", resp.StatusCode)
	}
	// Nothing was sent, and the step still waits: the code typed above still passes it.
	msgs, err := f.st.ListOutbox(t.Context(), twofold.OutboxFilter{AppID: f.app.ID})
	if err != nil || len(msgs) != 0 {
		t.Fatalf("outbox after refused posts: %d messages, %v", len(msgs), err)
	}
	done := b.do("POST", page.url.Path+"/code", url.Values{"csrf": {csrfOf(t, page)}, "via": {"totp"}, "code": {code}})
	if done.status != http.StatusSeeOther || !strings.HasPrefix(done.header.Get("Location"), redirectURI+"?") {
		t.Fatalf("the step after refused posts: %d %s", done.status, done.header.Get("Location"))
	}
}

// The page opens only with its handle and the cookie of the browser that began it; anything
// else is the page that says to start again, with nothing else on it.
func TestNoSession(t *testing.T) {
	f := newFixture(t)
	b := f.browser()
	page := b.begin()
	handle := strings.TrimPrefix(page.url.Path, step.Path)
	cookie := &http.Cookie{Name: step.CookieName(handle), Value: "not-the-browser-secret-at-all-xxxxxxxxxxxx"}
	for name, get := range map[string]func() answer{
		"no cookie":      func() answer { return f.browser().do("GET", page.url.Path, nil) },
		"unknown handle": func() answer { return b.do("GET", step.Path+"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", nil) },
		"wrong cookie": func() answer {
			o := f.browser()
			u, _ := url.Parse(f.srv.URL + page.url.Path)
			o.hc.Jar.SetCookies(u, []*http.Cookie{cookie})
			return o.do("GET", page.url.Path, nil)
		},
		"post without cookie": func() answer {
			return f.browser().do("POST", page.url.Path+"/cancel", url.Values{"csrf": {csrfOf(t, page)}})
		},
	} {
		a := get()
		if a.status != http.StatusNotFound || !strings.Contains(a.body, "This sign-in has expired") || strings.Contains(a.body, "<form") {
			t.Errorf("%s: %d\n%s", name, a.status, a.body)
		}
	}
	if a := f.browser().do("GET", page.url.Path+"/status", nil); a.status != http.StatusNotFound || !strings.Contains(a.body, `"expired"`) {
		t.Errorf("status without cookie: %d %s", a.status, a.body)
	}
}

// Cancel goes back to the relying party with access_denied, through the Finisher.
func TestCancel(t *testing.T) {
	f := newFixture(t)
	b := f.browser()
	page := b.begin()
	a := b.do("POST", page.url.Path+"/cancel", url.Values{"csrf": {csrfOf(t, page)}})
	back, _ := url.Parse(a.header.Get("Location"))
	if a.status != http.StatusSeeOther || back.Host != "rp.example.com" || back.Query().Get("error") != "access_denied" || back.Query().Get("state") != "st" {
		t.Fatalf("cancel: %d %s", a.status, back)
	}
}

// A code sent by SMS: the page sends it in the page's language, then asks for it.
func TestSendInLanguage(t *testing.T) {
	f := newFixture(t, twofold.FactorSMS, twofold.FactorTOTP)
	b := f.browser()
	b.lang = "de-CH, de;q=0.9, en;q=0.5"
	page := b.begin()
	if !strings.Contains(page.body, `<html lang="de">`) || !strings.Contains(page.body, "SMS senden") {
		t.Fatalf("the first page is not the German send page:\n%s", page.body)
	}
	sent := b.do("POST", page.url.Path+"/send", url.Values{"csrf": {csrfOf(t, page)}, "factor": {"sms"}})
	if sent.status != http.StatusOK || sent.url.Query().Get("via") != "sms" || !strings.Contains(sent.body, `id="code-form"`) || !strings.Contains(sent.body, "1 ••••••••23") {
		t.Fatalf("after sending: %d %s\n%s", sent.status, sent.url, sent.body)
	}
	msgs, err := f.outbox.List(t.Context(), twofold.MessageFilter{AppID: f.app.ID})
	if err != nil || len(msgs) != 1 || !strings.HasPrefix(msgs[0].Body, "Ihr Bestätigungscode für Acme Bank") {
		t.Fatalf("outbox: %+v %v", msgs, err)
	}
}

// The limits say so on the page, and leave the other ways and cancel: too many wrong codes
// (the user's failure limit), too many codes sent (the user's send limit).
func TestLimits(t *testing.T) {
	f := newFixtureWith(t, verify.Config{FailureLimit: twofold.Limit{N: 2, Window: time.Hour}, SendLimit: twofold.Limit{N: 1, Window: time.Hour}})
	b := f.browser()
	page := b.begin()
	token := csrfOf(t, page)
	var last answer
	for range 3 {
		last = b.do("POST", page.url.Path+"/code", url.Values{"csrf": {token}, "via": {"totp"}, "code": {"000000"}})
	}
	if last.status != http.StatusTooManyRequests || !strings.Contains(last.body, "Too many wrong codes") ||
		!strings.Contains(last.body, `id="another-way"`) || !strings.Contains(last.body, `id="cancel"`) {
		t.Fatalf("the third wrong code: %d\n%s", last.status, last.body)
	}
	// Even the right code waits now: the limit counts for the user, whatever the code.
	if a := b.do("POST", page.url.Path+"/code", url.Values{"csrf": {token}, "via": {"totp"}, "code": {f.key.Code(time.Now())}}); a.status != http.StatusTooManyRequests {
		t.Fatalf("the right code past the limit: %d", a.status)
	}
	if a := b.do("POST", page.url.Path+"/send", url.Values{"csrf": {token}, "factor": {"email"}}); a.status != http.StatusOK || !strings.Contains(a.body, `id="code-form"`) {
		t.Fatalf("the first send: %d\n%s", a.status, a.body)
	}
	a := b.do("POST", page.url.Path+"/send", url.Values{"csrf": {token}, "factor": {"sms"}})
	if a.status != http.StatusTooManyRequests || !strings.Contains(a.body, "Too many codes were sent") || !strings.Contains(a.body, `id="another-way"`) {
		t.Fatalf("a send past the limit: %d\n%s", a.status, a.body)
	}
}

// The application's logo shows with its name, loaded from its own https origin, which the
// page's policy allows for images and nothing else; without a logo, the initial stands in.
func TestLogo(t *testing.T) {
	f := newFixture(t)
	plain := f.browser().begin()
	if strings.Contains(plain.body, `class="logo"`) || !strings.Contains(plain.body, `class="badge"`) ||
		!strings.Contains(plain.header.Get("Content-Security-Policy"), "img-src 'self' data:;") {
		t.Fatalf("without a logo: %s\n%s", plain.header.Get("Content-Security-Policy"), plain.body)
	}
	logo := "https://cdn.acme.example/brand/logo.png?v=2"
	keys, _ := seal.New(bytes.Repeat([]byte{7}, seal.KeySize))
	if _, err := apps.New(f.st, keys, nil).Update(t.Context(), f.app.ID, apps.Update{LogoURL: &logo}); err != nil {
		t.Fatal(err)
	}
	page := f.browser().begin()
	csp := page.header.Get("Content-Security-Policy")
	if !strings.Contains(page.body, `<img class="logo" src="https://cdn.acme.example/brand/logo.png?v=2"`) ||
		!strings.Contains(csp, "img-src 'self' data: https://cdn.acme.example;") || strings.Contains(csp, "script-src 'self' https://cdn") {
		t.Fatalf("with a logo: %s\n%s", csp, page.body)
	}
	// The applications service takes https logos only.
	for _, bad := range []string{"http://cdn.acme.example/logo.png", "javascript:alert(1)", "https://cdn.acme.example/a b.png", "data:image/png;base64,AAAA"} {
		if _, err := apps.New(f.st, keys, nil).Update(t.Context(), f.app.ID, apps.Update{LogoURL: &bad}); err == nil {
			t.Errorf("logo %q was taken", bad)
		}
	}
}
