package main

import (
	"context"
	"encoding/json"
	"net"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/twofold-auth/twofold/client"
	"github.com/twofold-auth/twofold/internal/browsertest"
)

// registerPasskeyInBrowser registers a passkey for user through the API, the browser (on a page
// at origin) making it with its virtual authenticator, as a customer's profile page would.
func registerPasskeyInBrowser(t *testing.T, p *page, api *client.Client, origin string, user int64, name string) {
	t.Helper()
	c, err := api.BeginPasskeyRegistration(t.Context(), user, name)
	if err != nil {
		t.Fatal(err)
	}
	var opts struct {
		PublicKey json.RawMessage `json:"publicKey"`
	}
	if err := json.Unmarshal(c.Options, &opts); err != nil {
		t.Fatal(err)
	}
	p.do(chromedp.Navigate(origin + "/healthz"))
	cred := p.eval(`(async () => {
		const publicKey = PublicKeyCredential.parseCreationOptionsFromJSON(` + string(opts.PublicKey) + `);
		return JSON.stringify((await navigator.credentials.create({publicKey})).toJSON());
	})()`)
	if _, err := api.FinishPasskeyRegistration(t.Context(), user, c.ID, json.RawMessage(cred), name); err != nil {
		t.Fatalf("registering the passkey: %v", err)
	}
}

// The hosted step offers a user's passkey when the application's rp id is the step's host (the
// server at http://localhost:PORT, rp id localhost): first, and by default for a user without a
// device. It passes the step with amr hwk (a device-bound key) and pin (the authenticator
// verified the user), or user when it only tested presence. A refused assertion (a bogus
// signature) leaves the step on the passkey page with its error. With the rp id elsewhere,
// the passkey is not offered. Every state of the new page passes the accessibility and fit
// checks.
func TestHostedStepPasskey(t *testing.T) {
	browser := newBrowser(t)
	_, port, _ := net.SplitHostPort(freeAddr(t))
	addr := "localhost:" + port
	s := startServer(t, "", "--addr", addr, "--rate-limit", "off")
	issuer := "http://" + addr
	if _, err := s.cli("app", "update", "1", "--passkey-rp-id", "localhost", "--passkey-origins", issuer); err != nil {
		t.Fatal(err)
	}
	rp := newRelyingParty(t)
	c := stepClient(t, s, "Acme Shop web", rp.redirectURI())
	rp.connect(t.Context(), issuer, c)
	cy := s.register(s.key, "cy@example.com", "2015550177") // a phone, then a passkey
	api, err := client.New(issuer, s.key)
	if err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(browser, 4*time.Minute)
	defer cancel()
	checkConsole := watchConsole(t, ctx, cancel)
	defer checkConsole()
	st := &stepTab{page: &page{t: t, ctx: ctx, began: time.Now()}, rp: rp}
	auth := browsertest.AddAuthenticator(t, ctx, browsertest.AuthenticatorOptions{})
	registerPasskeyInBrowser(t, st.page, api, issuer, cy, "Laptop")

	st.section("the passkey, offered first, passes the step")
	st.signIn("cy@example.com")
	st.waitState("passkey")
	st.check("passkey")
	st.click("#another-way")
	st.waitState("choose")
	if got := st.eval(`[...document.querySelectorAll('.options .option')].map(o => o.id).join(' ')`); got != "opt-passkey opt-sms opt-call opt-email" {
		t.Errorf("the ways offered: %s", got)
	}
	st.checkOnly("choose with a passkey")
	st.click("#opt-passkey")
	st.waitState("passkey")
	st.click("#use-passkey")
	st.visible("#signed-in")
	rp.expectSignedIn(rp.result(), cy, "cy@example.com", "hwk", "pin")

	st.section("a bogus signature is refused")
	auth.SetResponseOverrides(true, false, false)
	st.signIn("cy@example.com")
	st.waitState("passkey")
	stepURL := st.eval(`location.href`)
	st.click("#use-passkey")
	st.visible("#error")
	st.waitState("passkey")
	st.check("passkey-refused")
	auth.SetResponseOverrides(false, false, false)

	st.section("user verification discouraged: presence only")
	// The application no longer asks the authenticator to verify the user: its assertion
	// passes on presence alone, and the amr says so.
	if _, err := s.cli("app", "update", "1", "--passkey-user-verification", "discouraged"); err != nil {
		t.Fatal(err)
	}
	st.do(chromedp.Navigate(stepURL)) // the same step, still pending
	st.waitState("passkey")
	st.click("#use-passkey")
	st.visible("#signed-in, #error")
	if e := st.eval(`document.querySelector('#error')?.textContent ?? ''`); e != "" {
		t.Fatalf("the page says %q; the server's log:\n%s", e, s.logs.String())
	}
	rp.expectSignedIn(rp.result(), cy, "cy@example.com", "hwk", "user")

	st.section("an rp id the step's host is not under: no passkey")
	if _, err := s.cli("app", "update", "1", "--passkey-rp-id", "shop.example", "--passkey-origins", "https://shop.example"); err != nil {
		t.Fatal(err)
	}
	st.signIn("cy@example.com")
	st.visible(".card[data-state]")
	if got := st.eval(`document.querySelector('.card').dataset.state`); got == "passkey" {
		t.Fatal("a passkey of shop.example offered on localhost")
	}
}
