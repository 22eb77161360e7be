package main

import (
	"fmt"
	"net"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/twofold-auth/twofold/internal/browsertest"
)

// passkeySample is the sample on http://localhost:PORT (WebAuthn wants a domain for rp id, and
// localhost is a secure context over http), with its passkey calls answered by fakePasskeys.
type passkeySample struct {
	*sample
	pk *fakePasskeys
}

func newPasskeySample(t *testing.T, passwordless bool) *passkeySample {
	t.Helper()
	tf := newFakeTwofold(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	public := "http://localhost:" + port
	h, err := newServer(config{TwofoldURL: tf.URL, APIKey: testKey, PublicURL: public, now: time.Now})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewUnstartedServer(h)
	hs.Listener.Close()
	hs.Listener = ln
	hs.Start()
	t.Cleanup(hs.Close)
	srv := h.(*server)
	pk := newFakePasskeys(t, "localhost", public, passwordless)
	pk.attach(srv)
	return &passkeySample{sample: &sample{t: t, srv: srv, url: public, hc: newBrowserClient()}, pk: pk}
}

// signupInBrowser signs up email with two-factor authentication on, and lands on the profile.
func signupInBrowser(p *tab, url, email string) {
	p.t.Helper()
	p.do(chromedp.Navigate(url + "/signup"))
	p.at("signup")
	p.fill("#email", email, "#password", "correct horse battery", "#phone", "201-555-0123")
	p.click(`button[type=submit].primary`)
	// With two-factor authentication on, a real Twofold's recovery codes come first, once.
	p.text(`h1[data-page="recovery-codes"], h1[data-page="profile"]`)
	if p.eval(`document.querySelector('h1').dataset.page`) == "recovery-codes" {
		p.click("#saved")
		p.click("#recovery-saved button[type=submit]")
	}
	p.at("profile")
}

func logoutInBrowser(p *tab) {
	p.t.Helper()
	p.click("#logout")
	p.at("login")
}

// passkeyProblem waits for the passkey form's problem and returns it.
func passkeyProblem(p *tab) string {
	p.t.Helper()
	return p.text("#passkey-problem")
}

// The whole passkey story in chromium with a virtual authenticator, against go-webauthn's
// verification: a passkey added on the profile, listed, used as the second factor after the
// password and alone (usernameless), removed; every new page passes the accessibility and
// screen-size checks.
func TestPasskeysInBrowser(t *testing.T) {
	s := newPasskeySample(t, true)
	p := newTab(t)
	auth := browsertest.AddAuthenticator(t, p.ctx, browsertest.AuthenticatorOptions{})

	signupInBrowser(p, s.url, "ada@example.com")
	p.text("#passkey-add #passkey-create")
	if got := p.text("#no-passkeys"); !strings.Contains(got, "no passkey") {
		t.Fatalf("profile before a passkey says %q", got)
	}
	p.check("profile with passkeys")
	p.fill("#passkey-name", "Laptop")
	p.click("#passkey-create")
	if got := p.text("#passkey-list"); !strings.Contains(got, "Laptop") {
		t.Fatalf("the passkey list after adding one: %q", got)
	}
	p.check("profile listing a passkey")
	p.eval(`(document.getElementById('passkeys').scrollIntoView(), '')`)
	p.screenshot("passkeys")
	cred := auth.Credential()
	if !cred.IsResidentCredential || cred.RpID != "localhost" {
		t.Fatalf("the new passkey: resident %v, rp id %q", cred.IsResidentCredential, cred.RpID)
	}

	// Second factor: the password, then "Use a passkey" beside the code.
	logoutInBrowser(p)
	p.text("#passkey-signin")
	p.check("login with a passkey")
	p.fill("#email", "ada@example.com", "#password", "correct horse battery")
	p.click(`#login-form button[type=submit].primary`)
	p.at("code")
	if got := p.text("#passkey-signin"); got != "Use a passkey" {
		t.Fatalf("second step offers %q", got)
	}
	p.check("code page with a passkey")
	p.screenshot("passkey-second-step")
	p.click("#passkey-signin")
	p.at("protected")
	if got := p.text("#method"); !strings.Contains(got, "your password and a passkey (“Laptop”)") {
		t.Fatalf("logged in by %q", got)
	}

	// Passwordless: the passkey alone, the browser picking the account.
	logoutInBrowser(p)
	p.click("#passkey-signin")
	p.at("protected")
	if got := p.text("#who") + " / " + p.text("#method"); !strings.Contains(got, "ada@example.com / a passkey (“Laptop”), without a password") {
		t.Fatalf("signed in as %q", got)
	}

	// Removed on the profile: it signs nobody in any more.
	p.do(chromedp.Navigate(s.url + "/profile"))
	p.at("profile")
	p.click(`#passkey-list button[aria-label="Remove the passkey Laptop"]`)
	p.text("#no-passkeys")
	logoutInBrowser(p)
	p.click("#passkey-signin")
	passkeyProblem(p)
	if got := s.pk.lastRefusal(); !strings.Contains(got, "user") && !strings.Contains(got, "credential") {
		t.Fatalf("a removed passkey was refused for %q", got)
	}
}

// tamperHook makes the page change one byte of field (in the credential's response) of the next
// credential it posts: the attacker between the authenticator and the server.
func tamperHook(field string) string {
	return fmt.Sprintf(`(() => {
		const toJSON = PublicKeyCredential.prototype.toJSON;
		PublicKeyCredential.prototype.toJSON = function () {
			const j = toJSON.call(this);
			const b64 = j.response[%q].replace(/-/g, '+').replace(/_/g, '/');
			const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
			bytes[Math.floor(bytes.length / 2)] ^= 1;
			j.response[%[1]q] = btoa(String.fromCharCode(...bytes)).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
			return j;
		};
		return 'ok';
	})()`, field)
}

// captureHook keeps a copy of the credential JSON the page posts, in the tab's sessionStorage.
const captureHook = `(() => {
	const toJSON = PublicKeyCredential.prototype.toJSON;
	PublicKeyCredential.prototype.toJSON = function () {
		const j = toJSON.call(this);
		sessionStorage.setItem('captured', JSON.stringify(j)); // kept across the navigation that follows
		return j;
	};
	return 'ok';
})()`

// Refused: a tampered assertion (signature, authenticator data or client data), an assertion
// posted again (to its own ceremony, and to a new one), a counter going back (the credential
// re-imported with a lower sign count, as a clone), and a relying party whose rp id or origin is
// not the page's. Each ends with the problem on the login page and nobody signed in.
func TestPasskeysRefused(t *testing.T) {
	s := newPasskeySample(t, true)
	p := newTab(t)
	auth := browsertest.AddAuthenticator(t, p.ctx, browsertest.AuthenticatorOptions{})
	signupInBrowser(p, s.url, "ada@example.com")
	p.fill("#passkey-name", "Phone")
	p.click("#passkey-create")
	p.text("#passkey-list")
	logoutInBrowser(p)

	refused := func(what, wantRefusal string) {
		t.Helper()
		if got := passkeyProblem(p); !strings.Contains(got, "did not sign you in") && !strings.Contains(got, "No passkey was used") {
			t.Fatalf("%s: the page says %q", what, got)
		}
		if got := p.eval(`location.pathname`); got != "/login" {
			t.Fatalf("%s: the page went to %s", what, got)
		}
		t.Logf("%s: refused: %s", what, s.pk.lastRefusal())
		if wantRefusal != "" {
			if got := s.pk.lastRefusal(); !strings.Contains(got, wantRefusal) {
				t.Fatalf("%s: refused for %q, want %q", what, got, wantRefusal)
			}
		}
		p.do(chromedp.Navigate(s.url + "/login")) // a fresh page: no hooks
		p.at("login")
	}

	for i, field := range []string{"signature", "authenticatorData", "clientDataJSON"} {
		p.eval(tamperHook(field))
		p.click("#passkey-signin")
		if i == 0 {
			passkeyProblem(p)
			p.check("login with a refused passkey")
		}
		refused("tampered "+field, "login")
	}

	// Replay: the assertion of a sign-in that worked, posted again.
	p.eval(captureHook)
	p.click("#passkey-signin")
	p.at("protected")
	captured := p.eval(`sessionStorage.getItem('captured') || ''`)
	if captured == "" {
		t.Fatal("no credential captured")
	}
	logoutInBrowser(p)
	// To a new ceremony of the same session: its challenge is not the assertion's.
	got := p.eval(fmt.Sprintf(`(async () => {
		const csrf = document.querySelector('#passkey-form [name=csrf]').value;
		const begin = await postForm('/login/passkey/begin', {csrf});
		if (!begin.options) return 'no begin: ' + JSON.stringify(begin);
		const done = await postForm('/login/passkey/finish', {csrf, credential: %q});
		return JSON.stringify(done);
	})()`, captured))
	if !strings.Contains(got, "did not sign you in") || strings.Contains(got, "next") {
		t.Fatalf("a replayed assertion to a new ceremony: %s", got)
	}
	if r := s.pk.lastRefusal(); !strings.Contains(r, "hallenge") {
		t.Fatalf("the replay was refused for %q, want the challenge", r)
	}
	// Straight to the finish, with no ceremony begun: the sample has none to finish.
	got = p.eval(fmt.Sprintf(`(async () => {
		const csrf = document.querySelector('#passkey-form [name=csrf]').value;
		return JSON.stringify(await postForm('/login/passkey/finish', {csrf, credential: %q}));
	})()`, captured))
	if !strings.Contains(got, "did not sign you in") {
		t.Fatalf("a replayed assertion without a ceremony: %s", got)
	}

	// A counter going back: the key copied when its counter stood lower.
	p.click("#passkey-signin")
	p.at("protected")
	logoutInBrowser(p)
	auth.ReimportWithSignCount(auth.Credential().CredentialID, 0)
	p.click("#passkey-signin")
	refused("counter going back", "sign counter went back")

	// Another relying party: the browser will not use a localhost passkey for example.com.
	s.pk.setRP(t, "example.com", "https://example.com")
	before := s.pk.refusalCount()
	p.click("#passkey-signin")
	if got := passkeyProblem(p); !strings.Contains(got, "No passkey was used") {
		t.Fatalf("rp id example.com: the page says %q", got)
	}
	refused("rp id example.com", "")
	if s.pk.refusalCount() != before {
		t.Fatalf("rp id example.com: the browser posted an assertion: %s", s.pk.lastRefusal())
	}
	// The right rp id, but an origin that is not the page's: the browser signs, the server refuses.
	s.pk.setRP(t, "localhost", "http://localhost:1")
	p.click("#passkey-signin")
	refused("origin http://localhost:1", "origin")
}

// setRP makes f verify for another relying party, as an application configured with another rp
// id or origin does.
func (f *fakePasskeys) setRP(t *testing.T, rpID, origin string) {
	t.Helper()
	g := newFakePasskeys(t, rpID, origin, f.passwordless)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.wa = g.wa
}

func (f *fakePasskeys) refusalCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.refusals)
}
