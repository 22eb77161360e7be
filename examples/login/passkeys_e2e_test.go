package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/twofold-auth/twofold/client"
	"github.com/twofold-auth/twofold/internal/browsertest"
	"github.com/twofold-auth/twofold/internal/testbin"
)

// localSample is the sample on http://localhost:PORT against a real Twofold whose application 1
// has passkeys for the sample's host, as the sample's README says to configure it.
type localSample struct {
	srv      *server
	url      string
	log      *lockedBuffer
	recorder *recordingPasskeys
}

func startLocalSample(t *testing.T, tf *twofoldServer) localSample {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	public := "http://localhost:" + port
	log := &lockedBuffer{}
	h, err := newServer(config{TwofoldURL: tf.url, APIKey: tf.key, PublicURL: public, Logger: slog.New(slog.NewTextHandler(log, nil))})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewUnstartedServer(h)
	hs.Listener.Close()
	hs.Listener = ln
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("the sample's log:\n%s", log.String())
		}
	})
	defer func() { hs.Start(); t.Cleanup(hs.Close) }()
	ls := localSample{srv: h.(*server), url: public, log: log}
	ls.recorder = &recordingPasskeys{passkeyAPI: ls.srv.pk}
	ls.srv.pk = ls.recorder // before the first request
	return ls
}

// passkeySettings points application 1's passkeys at rpID and origin.
func passkeySettings(tf *twofoldServer, rpID, origin string) {
	tf.t.Helper()
	tf.cli("", nil, "app", "update", "1", "--passkey-rp-id", rpID, "--passkey-origins", origin, "--passkey-usernameless",
		"--data-dir", tf.dataDir)
}

// twofoldSaid waits for nothing: it reports whether the sample logged Twofold refusing a passkey
// with code, which the sample's log has from the client's error ("... (60172)").
func (ls localSample) twofoldSaid(code string) bool {
	return strings.Contains(ls.log.String(), "("+code+")")
}

// recordingPasskeys keeps the last ceremony and assertion the sample finished, to post them again.
type recordingPasskeys struct {
	passkeyAPI
	mu         sync.Mutex
	ceremony   string
	credential json.RawMessage
}

func (r *recordingPasskeys) FinishPasskeyLogin(ctx context.Context, ceremony string, credential json.RawMessage) (client.PasskeyLogin, error) {
	r.mu.Lock()
	r.ceremony, r.credential = ceremony, credential
	r.mu.Unlock()
	return r.passkeyAPI.FinishPasskeyLogin(ctx, ceremony, credential)
}

func (r *recordingPasskeys) last() (string, json.RawMessage) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.ceremony, r.credential
}

// The proof through the sample, against the real server: a passkey registered on the profile,
// then used as the second factor and alone; refused: a tampered assertion, an assertion posted
// again, a counter going back, another rp id, another origin.
func TestPasskeysEndToEnd(t *testing.T) {
	tf := startTwofold(t, testbin.Twofold(t))
	ls := startLocalSample(t, tf)
	rec := ls.recorder
	passkeySettings(tf, "localhost", ls.url)

	p := newTab(t)
	auth := browsertest.AddAuthenticator(t, p.ctx, browsertest.AuthenticatorOptions{})
	signupInBrowser(p, ls.url, "ada@example.com")
	p.fill("#passkey-name", "Laptop")
	p.click("#passkey-create")
	if got := p.text("#passkey-list"); !strings.Contains(got, "Laptop") {
		t.Fatalf("the passkey list: %q", got)
	}
	id := auth.Credential().CredentialID

	// Second factor.
	logoutInBrowser(p)
	p.fill("#email", "ada@example.com", "#password", "correct horse battery")
	p.click(`#login-form button[type=submit].primary`)
	p.at("code")
	p.click("#passkey-signin")
	p.at("protected")
	if got := p.text("#method"); !strings.Contains(got, "your password and a passkey (“Laptop”)") {
		t.Fatalf("logged in by %q", got)
	}
	// Passwordless.
	logoutInBrowser(p)
	p.click("#passkey-signin")
	p.at("protected")
	if got := p.text("#who") + " / " + p.text("#method"); got != "ada@example.com / a passkey (“Laptop”), without a password" {
		t.Fatalf("signed in as %q", got)
	}
	logoutInBrowser(p)

	refused := func(what, code string) {
		t.Helper()
		if got := passkeyProblem(p); !strings.Contains(got, "did not sign you in") && !strings.Contains(got, "No passkey was used") {
			t.Fatalf("%s: the page says %q", what, got)
		}
		if got := p.eval(`location.pathname`); got != "/login" {
			t.Fatalf("%s: the page went to %s", what, got)
		}
		if code != "" && !ls.twofoldSaid(code) {
			t.Fatalf("%s: Twofold did not refuse it with %s; the sample's log:\n%s", what, code, ls.log.String())
		}
		p.do(chromedp.Navigate(ls.url + "/login"))
		p.at("login")
	}
	for _, field := range []string{"signature", "authenticatorData", "clientDataJSON"} {
		p.eval(tamperHook(field))
		p.click("#passkey-signin")
		refused("tampered "+field, "60172")
	}

	// Replay: a captured assertion posted to a new ceremony (its challenge is another), and to
	// its own ceremony again, straight to Twofold (finished already).
	p.eval(captureHook)
	p.click("#passkey-signin")
	p.at("protected")
	captured := p.eval(`sessionStorage.getItem('captured') || ''`)
	ceremony, credential := rec.last() // what signed in just now
	if string(credential) != captured {
		t.Fatalf("the sample posted %s, the page captured %s", credential, captured)
	}
	logoutInBrowser(p)
	got := p.eval(fmt.Sprintf(`(async () => {
		const csrf = document.querySelector('#passkey-form [name=csrf]').value;
		const begin = await postForm('/login/passkey/begin', {csrf});
		if (!begin.options) return 'no begin: ' + JSON.stringify(begin);
		return JSON.stringify(await postForm('/login/passkey/finish', {csrf, credential: %q}));
	})()`, captured))
	if !strings.Contains(got, "did not sign you in") || strings.Contains(got, "next") {
		t.Fatalf("a replayed assertion to a new ceremony: %s", got)
	}
	if !ls.twofoldSaid("60172") {
		t.Fatalf("Twofold did not refuse the replay to a new ceremony as an invalid assertion:\n%s", ls.log.String())
	}
	// The very post that signed in, ceremony and assertion, sent to Twofold again.
	if _, err := rec.passkeyAPI.FinishPasskeyLogin(t.Context(), ceremony, credential); !client.IsCode(err, client.CodePasskeyCeremonyNotFound) {
		t.Fatalf("the same ceremony and assertion again: %v, want 60171", err)
	}

	// A counter going back: a copy of the key made when its counter stood at 1.
	auth.ReimportWithSignCount(id, 1)
	p.click("#passkey-signin")
	refused("counter going back", "60175")

	// Another relying party: the browser will not use a localhost passkey for example.com.
	passkeySettings(tf, "example.com", "https://example.com")
	p.click("#passkey-signin")
	refused("rp id example.com", "")
	// The right rp id, an origin that is not the sample's: the browser signs, Twofold refuses.
	passkeySettings(tf, "localhost", "http://localhost:1")
	p.click("#passkey-signin")
	refused("origin http://localhost:1", "60172")
}
