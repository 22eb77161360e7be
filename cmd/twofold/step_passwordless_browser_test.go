package main

import (
	"context"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/twofold-auth/twofold/internal/hostedstep"
	"github.com/twofold-auth/twofold/internal/twofold"
)

// phoneSignIn starts at the relying party's "Sign in with your phone", which sends the browser
// to the step naming nobody: the page asks for the username.
func (st *stepTab) phoneSignIn() {
	st.t.Helper()
	st.do(chromedp.Navigate(st.rp.srv.URL + "/login?phone=1"))
	st.waitState("username")
}

// typeName types name on the username form and sends it: the page then waits with a number.
func (st *stepTab) typeName(name string) {
	st.t.Helper()
	st.do(chromedp.SendKeys(chromedp.CSS("#username"), name))
	st.click("#send-signin")
	st.waitState("signin")
}

// card is the page's card with what differs between two sessions blanked: its handle, its
// CSRF token and the number.
var (
	handleRE = regexp.MustCompile(`/step/[A-Za-z0-9_-]+`)
	tokenRE  = regexp.MustCompile(`name="csrf" value="[^"]*"`)
	digitsRE = regexp.MustCompile(`</span>\d\d</p>`)
)

func (st *stepTab) card() string {
	st.t.Helper()
	html := st.eval(`document.querySelector('.card').outerHTML`)
	html = handleRE.ReplaceAllString(html, "/step/HANDLE")
	html = tokenRE.ReplaceAllString(html, `name="csrf" value="CSRF"`)
	return digitsRE.ReplaceAllString(html, "</span>NN</p>")
}

// expectPasswordless checks a result: signed in with the passwordless push alone, as authyID.
func (rp *relyingParty) expectPasswordless(res rpResult, authyID int64, username string) {
	rp.t.Helper()
	if res.Error != "" {
		rp.t.Fatalf("the relying party: %s", res.Error)
	}
	if res.Subject != strconv.FormatInt(authyID, 10) || res.Nonce == "" || res.Nonce != res.WantNonce || strings.Join(res.AMR, " ") != "pop mca" ||
		res.ACR != "urn:twofold:acr:passwordless" || res.Username != username {
		rp.t.Fatalf("id token: %+v, want sub %d, amr pop mca, acr passwordless, preferred_username %s", res, authyID, username)
	}
}

// TestHostedStepPasswordlessBrowser signs in to a go-oidc relying party with the phone alone,
// in headless Chromium against `twofold serve`: the relying party names nobody, the page asks
// for the username, and the command-line authenticator (real device keys) approves with the
// number the page shows; the relying party gets an id token for that user. A denial ends on the
// neutral failure page, whose Try again asks the name again; an unknown username gets the same
// page as Ana's, number apart. Every state passes axe-core and fits at the desktop and the
// phone width; with TWOFOLD_SCREENSHOTS=1 it saves docs/screenshots/step-pl-*.png.
func TestHostedStepPasswordlessBrowser(t *testing.T) {
	browser := newBrowser(t)
	addr := freeAddr(t)
	s := startServer(t, "", "--addr", addr, "--rate-limit", "off")
	issuer := "http://" + addr
	if _, err := s.cli("app", "update", "1", "--name", longApp); err != nil {
		t.Fatal(err)
	}
	rp := newRelyingParty(t)
	name, uris, match, yes := "Acme Shop web", []string{rp.redirectURI()}, twofold.MatchEmail, true
	client := stepClientSpec(t, s, hostedstep.Spec{Name: &name, RedirectURIs: &uris, UserMatch: &match, Passwordless: &yes})
	rp.connect(t.Context(), issuer, client)
	ana := s.register(s.key, aliceEmail, "2015550123")
	a := newAuthenticator(t)
	enrolUser(t, s, a, ana)

	ctx, cancel := context.WithTimeout(browser, 5*time.Minute)
	defer cancel()
	checkConsole := watchConsole(t, ctx, cancel)
	defer checkConsole()
	st := &stepTab{page: &page{t: t, ctx: ctx, began: time.Now()}, rp: rp}

	st.section("approved on the device, with the number")
	st.phoneSignIn()
	if got := st.eval(`document.querySelector('#username').type + ' ' + document.querySelector('#username').autocomplete`); got != "email username" {
		t.Errorf("the username field: %s", got)
	}
	st.check("pl-username")
	st.typeName(aliceEmail)
	number := st.number()
	anaCard := st.card()
	st.check("pl-wait")
	approve(t, a, number)
	st.visible("#signed-in")
	rp.expectPasswordless(rp.result(), ana, aliceEmail)

	st.section("denied on the device: the neutral failure, and Try again")
	st.phoneSignIn()
	st.typeName(aliceEmail)
	w := a.start("watch", "--once")
	w.out.waitFor(t, "approve? [y/n] ")
	w.send("n")
	w.out.waitFor(t, "reason (optional")
	w.send("")
	if err := w.wait(); err != nil {
		t.Fatalf("device watch: %v", err)
	}
	st.waitState("signin_failed") // the page's script saw it, and went on
	if h := st.eval(`document.querySelector('h1').textContent`); h != "We couldn't sign you in with your phone" {
		t.Errorf("the failure's heading: %q", h)
	}
	st.check("pl-failed")
	st.click("#try-again")
	st.waitState("username")
	st.click("#cancel")
	st.visible("#refused")
	if res := rp.result(); !strings.HasPrefix(res.Error, "access_denied") {
		t.Fatalf("after cancelling, the relying party got %+v", res)
	}

	st.section("an unknown username: the same page as Ana's")
	st.phoneSignIn()
	st.typeName("nobody@example.com")
	if got := st.card(); got != anaCard {
		t.Errorf("the wait for an unknown name differs from Ana's:\n%s\n----\n%s", got, anaCard)
	}
	if n := st.number(); len(n) != 2 {
		t.Errorf("the number for an unknown name: %q", n)
	}
	st.click("#cancel")
	st.visible("#refused")
	if res := rp.result(); !strings.HasPrefix(res.Error, "access_denied") {
		t.Fatalf("after cancelling, the relying party got %+v", res)
	}
}
