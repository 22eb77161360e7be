package step_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twofold-auth/twofold/internal/apps"
	"github.com/twofold-auth/twofold/internal/deliver"
	"github.com/twofold-auth/twofold/internal/devices"
	"github.com/twofold-auth/twofold/internal/hostedstep"
	"github.com/twofold-auth/twofold/internal/oidc"
	"github.com/twofold-auth/twofold/internal/onetouch"
	"github.com/twofold-auth/twofold/internal/passwordless"
	"github.com/twofold-auth/twofold/internal/seal"
	"github.com/twofold-auth/twofold/internal/signingkeys"
	"github.com/twofold-auth/twofold/internal/store"
	"github.com/twofold-auth/twofold/internal/twofold"
	"github.com/twofold-auth/twofold/internal/users"
	"github.com/twofold-auth/twofold/internal/verify"
	"github.com/twofold-auth/twofold/internal/web/step"
)

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time          { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Advance(d time.Duration) { c.mu.Lock(); defer c.mu.Unlock(); c.now = c.now.Add(d) }

// plFixture is the page and the provider over real services and SQLite, with a clock, for a
// client that allows passwordless sign-in (users named by email) and users of every kind: Ana
// with a device, Dan without one, Eve with one but blocked ("I didn't request this").
type plFixture struct {
	*fixture
	clock    *clock
	onetouch *onetouch.Service
	pw       *passwordless.Service
	devices  *devices.Service
	phones   map[string]func(uuid string, status twofold.ApprovalStatus, number, reason string)
}

func newPLFixture(t *testing.T, cfg hostedstep.Config) *plFixture {
	t.Helper()
	ctx := t.Context()
	st, err := store.OpenSQLite(ctx, filepath.Join(t.TempDir(), "twofold.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	keys, _ := seal.New(bytes.Repeat([]byte{7}, seal.KeySize))
	log := slog.New(slog.DiscardHandler)
	c := &clock{now: time.Now()} // the provider's tokens are checked against the real time
	outbox := deliver.NewOutbox(st, keys, log, c.Now)
	router, err := deliver.NewRouter(outbox, nil, deliver.RouterConfig{}, nil, log)
	if err != nil {
		t.Fatal(err)
	}
	vs := verify.New(st, router, keys, verify.Config{}, c.Now)
	f := &plFixture{fixture: &fixture{t: t, st: st, outbox: outbox}, clock: c, phones: map[string]func(string, twofold.ApprovalStatus, string, string){}}
	as := apps.New(st, keys, c.Now)
	f.app, _, err = as.Create(ctx, apps.CreateParams{Name: "Acme Bank"})
	if err != nil {
		t.Fatal(err)
	}
	f.onetouch = onetouch.New(st, onetouch.Config{}, onetouch.Hooks{}, c.Now)
	f.pw = passwordless.New(st, f.onetouch, passwordless.Config{}, c.Now)
	f.devices = devices.New(st, keys, as.Reveal, 0, c.Now)
	clients := hostedstep.NewClients(st, keys, c.Now)
	name, uris, match, yes := "Acme Bank web", []string{redirectURI}, twofold.MatchEmail, true
	f.client, err = clients.Create(ctx, f.app.ID, hostedstep.Spec{Name: &name, RedirectURIs: &uris, UserMatch: &match, Passwordless: &yes})
	if err != nil {
		t.Fatal(err)
	}
	us := users.New(st, c.Now)
	for i, email := range []string{"ana@example.com", "dan@example.com", "eve@example.com"} {
		u, _, err := us.Register(ctx, f.app.ID, users.Contact{Email: email, Cellphone: "201555010" + string(rune('0'+i)), CountryCode: "1"})
		if err != nil {
			t.Fatal(err)
		}
		if email != "dan@example.com" {
			f.phones[email] = f.phone(u)
		}
	}
	steps := hostedstep.NewSteps(st, keys, vs, f.onetouch, cfg, c.Now)
	steps.SetPasswordless(f.pw)
	mux := http.NewServeMux()
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	p, err := oidc.New(oidc.Config{Issuer: f.srv.URL, Clients: clients, Steps: steps, Keys: signingkeys.New(st, keys, nil),
		Remote: oidc.NewKeySets(http.DefaultClient, nil), Marks: st, MACs: keys})
	if err != nil {
		t.Fatal(err)
	}
	p.Routes(mux)
	step.New(step.Config{Steps: steps, Finishers: map[string]step.Finisher{oidc.Dialect: p}, MACs: keys}).Routes(mux)

	// Eve said "I didn't request this" to a passwordless sign-in: she is blocked for an hour.
	sg, err := f.pw.Begin(ctx, f.app, passwordless.Start{Email: "eve@example.com", UserIP: "192.0.2.9"})
	if err != nil {
		t.Fatal(err)
	}
	f.phones["eve@example.com"](sg.UUID, twofold.Denied, "", onetouch.NotRequestedReason)
	return f
}

// phone registers a device for u, returning its answer function (signed with its key).
func (f *plFixture) phone(u twofold.User) func(uuid string, status twofold.ApprovalStatus, number, reason string) {
	f.t.Helper()
	ctx := f.t.Context()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	pub, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	token, _, err := f.devices.RegistrationToken(ctx, f.app.ID, u.ID)
	if err != nil {
		f.t.Fatal(err)
	}
	reg, err := f.devices.Register(ctx, token, pub, "phone", "cli")
	if err != nil {
		f.t.Fatal(err)
	}
	return func(uuid string, status twofold.ApprovalStatus, number, reason string) {
		f.t.Helper()
		if uuid == "" { // the device's one pending request
			pending, err := f.onetouch.ForDevice(ctx, reg.Device, twofold.Pending, 10)
			if err != nil || len(pending) != 1 {
				f.t.Fatalf("pending requests of %s's device: %d, %v", u.Email, len(pending), err)
			}
			uuid = pending[0].UUID
		}
		ts := f.clock.Now().Unix()
		digest := sha256.Sum256(onetouch.AnswerMessage(uuid, status, ts, number, reason))
		sig, _ := ecdsa.SignASN1(rand.Reader, key, digest[:])
		if _, err := f.onetouch.Answer(ctx, reg.Device, uuid, onetouch.Answer{Status: status, Timestamp: ts,
			Signature: base64.StdEncoding.EncodeToString(sig), Number: number, Reason: reason}); err != nil {
			f.t.Fatalf("%s's device answers: %v", u.Email, err)
		}
	}
}

// beginAnonymous sends the browser to the provider naming nobody, as a relying party's "Sign in
// with your phone" does, and returns the page it lands on.
func (b *browser) beginAnonymous() answer {
	b.t.Helper()
	q := url.Values{"client_id": {b.f.client.Client.ClientID}, "redirect_uri": {redirectURI}, "response_type": {"code"},
		"scope": {"openid"}, "state": {"st"}, "nonce": {"n"}}
	a := b.do("GET", "/oauth2/authorize?"+q.Encode(), nil)
	if a.status != http.StatusOK || !strings.HasPrefix(a.url.Path, step.Path) || !strings.Contains(a.body, `data-state="username"`) {
		b.t.Fatalf("authorize without a user ended at %s with %d:\n%s", a.url, a.status, a.body)
	}
	return a
}

// signIn types name on the username form and returns the answer to the post and the page
// after it.
func (b *browser) signIn(page answer, name string) (post, after answer) {
	b.t.Helper()
	hc := *b.hc
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	b2 := &browser{t: b.t, f: b.f, hc: &hc, lang: b.lang}
	post = b2.do("POST", page.url.Path+"/signin", url.Values{"csrf": {csrfOf(b.t, page)}, "username": {name}})
	return post, b.do("GET", page.url.Path, nil)
}

var (
	numberRE = regexp.MustCompile(`</span>(\d\d)</p>`)
	stateRE  = regexp.MustCompile(`data-state="([a-z_]+)"`)
)

func numberOf(t *testing.T, a answer) string {
	t.Helper()
	m := numberRE.FindStringSubmatch(a.body)
	if m == nil {
		t.Fatalf("no number on the page:\n%s", a.body)
	}
	return m[1]
}

func stateOf(a answer) string {
	if m := stateRE.FindStringSubmatch(a.body); m != nil {
		return m[1]
	}
	return ""
}

// normalised is a page with what differs between any two sessions blanked: its handle, its
// CSRF token, and the number to pick.
func normalised(t *testing.T, page, a answer) string {
	t.Helper()
	s := strings.ReplaceAll(a.body, page.url.Path, "/step/HANDLE")
	s = strings.ReplaceAll(s, csrfOf(t, page), "CSRF")
	return numberRE.ReplaceAllString(s, "</span>NN</p>")
}

// The page gives every name the same answers: the post, the wait (apart from its number), the
// script's status and, once nothing was approved in time or the request was denied, the
// failure. Ana has a device, nobody@ is no user, Dan has no device, Eve is blocked.
func TestPasswordlessPageSameForEveryName(t *testing.T) {
	f := newPLFixture(t, hostedstep.Config{})
	names := []string{"ana@example.com", "nobody@example.com", "dan@example.com", "eve@example.com"}
	type seen struct {
		b                        *browser
		page, post, wait, status answer
	}
	all := map[string]seen{}
	for _, name := range names {
		b := f.browser()
		page := b.beginAnonymous()
		post, wait := b.signIn(page, name)
		if post.status != http.StatusSeeOther || post.header.Get("Location") != page.url.Path || stateOf(wait) != "signin" {
			t.Fatalf("%s: the post %d to %q, then %q:\n%s", name, post.status, post.header.Get("Location"), stateOf(wait), wait.body)
		}
		if n := numberOf(t, wait); n < "10" || n > "99" {
			t.Errorf("%s: number %s", name, n)
		}
		all[name] = seen{b: b, page: page, post: post, wait: wait, status: b.do("GET", page.url.Path+"/status", nil)}
	}
	ref := all[names[0]]
	for _, name := range names[1:] {
		got := all[name]
		if a, b := normalised(t, ref.page, ref.wait), normalised(t, got.page, got.wait); a != b {
			t.Errorf("the wait for %s differs from Ana's:\n%s\n----\n%s", name, b, a)
		}
		if got.status.body != ref.status.body || got.status.status != ref.status.status || got.post.status != ref.post.status {
			t.Errorf("%s: status %d %s, post %d; Ana's %d %s, %d", name, got.status.status, got.status.body, got.post.status,
				ref.status.status, ref.status.body, ref.post.status)
		}
	}
	if !strings.Contains(ref.status.body, `"pending"`) {
		t.Errorf("the status while waiting: %s", ref.status.body)
	}

	// Ana denies hers; the others' time runs out.
	f.phones["ana@example.com"]("", twofold.Denied, "", "")
	f.clock.Advance(passwordless.DefaultConfig().DefaultTTL)
	var failed []string
	for _, name := range names {
		s := all[name]
		page := s.b.do("GET", s.page.url.Path, nil)
		status := s.b.do("GET", s.page.url.Path+"/status", nil)
		if stateOf(page) != "signin_failed" || !strings.Contains(page.body, `id="try-again"`) || status.body != "{\"status\":\"failed\"}\n" {
			t.Fatalf("%s after the end: %q, status %s\n%s", name, stateOf(page), status.body, page.body)
		}
		failed = append(failed, normalised(t, s.page, page))
	}
	for i, name := range names[1:] {
		if failed[i+1] != failed[0] {
			t.Errorf("the failure for %s differs from Ana's (denied):\n%s\n----\n%s", name, failed[i+1], failed[0])
		}
	}
	if !strings.Contains(failed[0], "We couldn&#39;t sign you in with your phone") {
		t.Errorf("the failure page:\n%s", failed[0])
	}
}

// Approved on Ana's device with the number the page shows: the script's status says so, and
// Continue (the script's submit, or the button without it) goes back to the relying party with
// a code. Before the approval, Continue says the request waits.
func TestPasswordlessPageApproved(t *testing.T) {
	f := newPLFixture(t, hostedstep.Config{})
	b := f.browser()
	page := b.beginAnonymous()
	_, wait := b.signIn(page, "Ana@Example.com")
	token := csrfOf(t, page)
	early := b.do("POST", page.url.Path+"/continue", url.Values{"csrf": {token}})
	if early.status != http.StatusOK || stateOf(early) != "signin" || !strings.Contains(early.body, `role="alert"`) || numberOf(t, early) != numberOf(t, wait) {
		t.Fatalf("Continue before the approval: %d %q\n%s", early.status, stateOf(early), early.body)
	}
	f.phones["ana@example.com"]("", twofold.Approved, numberOf(t, wait), "")
	if a := b.do("GET", page.url.Path+"/status", nil); a.body != "{\"status\":\"approved\"}\n" {
		t.Fatalf("the status after the approval: %s", a.body)
	}
	done := b.do("POST", page.url.Path+"/continue", url.Values{"csrf": {token}})
	back, _ := url.Parse(done.header.Get("Location"))
	if done.status != http.StatusSeeOther || back.Host != "rp.example.com" || back.Query().Get("code") == "" || back.Query().Get("state") != "st" {
		t.Fatalf("Continue after the approval: %d %s\n%s", done.status, back, done.body)
	}
	// Handed back: another name typed asks nothing (the step has its user), and no second
	// code is issued.
	if a := b.do("POST", page.url.Path+"/signin", url.Values{"csrf": {token}, "username": {"dan@example.com"}}); stateOf(a) != "passed" {
		t.Errorf("a name typed on a finished step: %d %q\n%s", a.status, stateOf(a), a.body)
	}
	if a := b.do("POST", page.url.Path+"/continue", url.Values{"csrf": {token}}); a.status != http.StatusNotFound || a.header.Get("Location") != "" {
		t.Errorf("Continue once handed back: %d %s", a.status, a.header.Get("Location"))
	}
}

// The username form: a post without the session's token, or from another site, asks nothing;
// an empty name says what to type; past the step's limit per session the page says so, for
// any name; the pages carry the step's headers; Cancel goes back with access_denied.
func TestPasswordlessPageForms(t *testing.T) {
	f := newPLFixture(t, hostedstep.Config{PushesPerSession: 2})
	b := f.browser()
	page := b.beginAnonymous()
	other := f.browser().beginAnonymous()
	for name, token := range map[string]string{"none": "", "wrong": "AAAA", "another session's": csrfOf(t, other)} {
		vals := url.Values{"username": {"ana@example.com"}}
		if token != "" {
			vals.Set("csrf", token)
		}
		if a := b.do("POST", page.url.Path+"/signin", vals); a.status != http.StatusForbidden {
			t.Errorf("a name with %s token: %d", name, a.status)
		}
	}
	req, _ := http.NewRequest("POST", f.srv.URL+page.url.Path+"/signin",
		strings.NewReader(url.Values{"csrf": {csrfOf(t, page)}, "username": {"ana@example.com"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	if resp, err := b.hc.Do(req); err != nil || resp.StatusCode != http.StatusForbidden {
		t.Errorf("a cross-site post: %v %v", resp, err)
	}
	if a := b.do("GET", page.url.Path, nil); stateOf(a) != "username" {
		t.Fatalf("a refused post asked a name: %q", stateOf(a))
	}

	empty, _ := b.signIn(page, "  ")
	if empty.status != http.StatusUnprocessableEntity || !strings.Contains(empty.body, "Enter your email address.") || !strings.Contains(empty.body, `aria-invalid="true"`) {
		t.Fatalf("an empty name: %d\n%s", empty.status, empty.body)
	}
	for i, name := range []string{"ana@example.com", "nobody@example.com", "dan@example.com"} {
		post, after := b.signIn(page, name)
		if i < 2 && (post.status != http.StatusSeeOther || stateOf(after) != "signin") {
			t.Fatalf("name %d: %d, then %q", i, post.status, stateOf(after))
		}
		if i == 2 && (post.status != http.StatusTooManyRequests || !strings.Contains(post.body, "Too many sign-in requests") ||
			!strings.Contains(post.body, `value="dan@example.com"`)) {
			t.Fatalf("a third name in one step: %d\n%s", post.status, post.body)
		}
	}
	for _, state := range []answer{b.do("GET", page.url.Path, nil), b.do("GET", page.url.Path+"?via=username", nil)} {
		h := state.header
		if !strings.Contains(h.Get("Content-Security-Policy"), "frame-ancestors 'none'") || h.Get("X-Frame-Options") != "DENY" ||
			h.Get("Cache-Control") != "no-store" || !strings.HasSuffix(h.Get("Content-Security-Policy"), "form-action 'self' https://rp.example.com") {
			t.Errorf("%s page headers: %v", stateOf(state), h)
		}
	}
	a := b.do("POST", page.url.Path+"/cancel", url.Values{"csrf": {csrfOf(t, page)}})
	back, _ := url.Parse(a.header.Get("Location"))
	if a.status != http.StatusSeeOther || back.Query().Get("error") != "access_denied" || back.Query().Get("state") != "st" {
		t.Fatalf("cancel: %d %s", a.status, back)
	}
	if a := b.do("GET", page.url.Path, nil); a.status != http.StatusNotFound {
		t.Errorf("the page after cancel: %d %q", a.status, stateOf(a))
	}
}
