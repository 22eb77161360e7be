package main

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/network"
	cdppage "github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/twofold-auth/twofold/internal/browsertest"
	"github.com/twofold-auth/twofold/internal/hostedstep"
	"github.com/twofold-auth/twofold/internal/otp"
	"github.com/twofold-auth/twofold/internal/twofold"
	"github.com/twofold-auth/twofold/internal/web/step"
)

// stepTab is a browser tab on the hosted step, signing in to a relying party.
type stepTab struct {
	*page
	rp *relyingParty
}

// signIn starts at the relying party's login, which sends the browser to the step.
func (st *stepTab) signIn(user string) {
	st.t.Helper()
	st.do(chromedp.Navigate(st.rp.srv.URL + "/login?user=" + url.QueryEscape(user)))
	st.visible(".card[data-state]")
}

// waitState waits for the page to show state.
func (st *stepTab) waitState(state string) {
	st.t.Helper()
	st.visible(`.card[data-state="` + state + `"]`)
}

// check runs axe-core and the fit check on the page as it is, at the desktop and the phone
// width, and saves the phone's view as docs/screenshots/step-NAME.png with
// TWOFOLD_SCREENSHOTS=1.
func (st *stepTab) check(name string) {
	st.t.Helper()
	st.checkOnly(name)
	if os.Getenv("TWOFOLD_SCREENSHOTS") != "1" {
		return
	}
	// Not page.screenshot: it waits for animations to end, and the push page's spinner
	// turns for as long as it waits.
	buf, err := chromedp.Run(st.ctx, chromedp.CaptureScreenshot())
	if err != nil {
		st.t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.WriteFile(filepath.Join("..", "..", "docs", "screenshots", "step-"+name+".png"), buf, 0o644); err != nil {
		st.t.Fatal(err)
	}
}

// enter begins a step for user directly with the step service, as a wire adapter would (with
// request as the adapter's record), gives the browser its cookie and opens its page; it
// returns the page's URL.
func (st *stepTab) enter(issuer string, steps *hostedstep.Steps, c twofold.StepClient, user, request string) string {
	st.t.Helper()
	b, err := steps.Begin(st.ctx, c, user, []byte(request))
	if err != nil {
		st.t.Fatal(err)
	}
	if _, err := chromedp.Call(st.ctx, network.SetCookie, network.SetCookieParams{Name: step.CookieName(b.Handle), Value: b.Browser,
		URL: issuer + step.Path + b.Handle, Path: step.Path + b.Handle, HTTPOnly: new(true), SameSite: network.CookieSameSiteLax}); err != nil {
		st.t.Fatal(err)
	}
	u := issuer + step.Path + b.Handle
	st.do(chromedp.Navigate(u))
	return u
}

// checkOnly is check without the screenshot.
func (st *stepTab) checkOnly(name string) {
	st.t.Helper()
	for _, vp := range browsertest.Viewports {
		st.do(vp.Emulate())
		browsertest.Check(st.t, st.ctx, vp.Name+": step "+name)
	}
}

// number is the number the push page shows to pick on the device.
func (st *stepTab) number() string {
	st.t.Helper()
	n, err := chromedp.Run(st.ctx, chromedp.TextContent(chromedp.CSS("#push-number")))
	if err != nil {
		st.t.Fatal(err)
	}
	digits := strings.Map(func(r rune) rune {
		if r >= '0' && r <= '9' {
			return r
		}
		return -1
	}, n)
	if len(digits) < 2 {
		st.t.Fatalf("the push page shows no number: %q", n)
	}
	return digits
}

// typeCode replaces the code field's text with code and sends the form.
func (st *stepTab) typeCode(code string) {
	st.t.Helper()
	st.eval(`document.querySelector('#code').value = ''`)
	st.do(chromedp.SendKeys(chromedp.CSS("#code"), code))
	st.click("#verify")
}

// approve answers the user's pending request with the command-line authenticator, picking
// number as the page asks.
func approve(t *testing.T, a *authenticator, number string) {
	t.Helper()
	w := a.start("watch", "--once")
	w.out.waitFor(t, "approve? [y/n] ")
	w.send("y")
	w.out.waitFor(t, "number shown on the login page: ")
	w.send(number)
	if err := w.wait(); err != nil {
		t.Fatalf("device watch: %v\n%s", err, w.errOut.String())
	}
}

// TestHostedStepBrowser signs users in to a relying party built on go-oidc and x/oauth2
// through the hosted step of a real `twofold serve`, in headless Chromium: with a push answered
// by the command-line authenticator picking the number the page shows, with an authenticator
// code, with an SMS code from the outbox, without JavaScript (the push's Continue button),
// and in Japanese with a code by email; a push denied refuses the sign-in. Every state of the
// page passes axe-core and fits the desktop and the phone width, dark mode too; the page
// inside a frame is not rendered. With TWOFOLD_SCREENSHOTS=1 it saves
// docs/screenshots/step-*.png.
func TestHostedStepBrowser(t *testing.T) {
	browser := newBrowser(t)
	addr := freeAddr(t)
	// No --public-url: a server on this machine is its own issuer, at its listen address.
	s := startServer(t, "", "--addr", addr, "--rate-limit", "off")
	issuer := "http://" + addr
	if _, err := s.cli("app", "update", "1", "--name", longApp); err != nil {
		t.Fatal(err)
	}
	rp := newRelyingParty(t)
	client := stepClient(t, s, "Acme Shop web", rp.redirectURI())
	rp.connect(t.Context(), issuer, client)

	ana := s.register(s.key, aliceEmail, "2015550123") // a device, so push comes first
	a := newAuthenticator(t)
	enrolUser(t, s, a, ana)
	bob := s.register(s.key, bobEmail, "2015550188") // an authenticator app, a phone and an email
	secret := s.post(fmt.Sprintf("/protected/json/users/%d/secret", bob), nil)
	bobKey, err := otp.ParseURI(fmt.Sprint(secret.body["uri"]))
	if err != nil {
		t.Fatalf("secret: %v %s", err, secret.raw)
	}

	ctx, cancel := context.WithTimeout(browser, 5*time.Minute)
	defer cancel()
	checkConsole := watchConsole(t, ctx, cancel)
	defer checkConsole()
	st := &stepTab{page: &page{t: t, ctx: ctx, began: time.Now()}, rp: rp}

	st.section("push, answered by the command-line authenticator")
	st.signIn(aliceEmail)
	st.waitState("push")
	pushURL := st.eval(`location.href`)
	number := st.number()
	st.check("push")
	// Another way lists every way; going back to the push shows the request still pending,
	// not a new one.
	st.click("#another-way")
	st.waitState("choose")
	if got := st.eval(`[...document.querySelectorAll('.options .option')].map(o => o.id).join(' ')`); got != "opt-push opt-totp opt-sms opt-call opt-email" {
		t.Errorf("the ways offered: %s", got)
	}
	st.check("choose")
	st.click("#opt-push")
	st.waitState("push")
	if again := st.number(); again != number {
		t.Errorf("going back to the push showed number %s, then %s: a second request", number, again)
	}
	approve(t, a, number)
	st.visible("#signed-in")
	rp.expectSignedIn(rp.result(), ana, aliceEmail, "pop")

	st.section("the step's page once handed back")
	st.do(chromedp.Navigate(pushURL))
	st.visible(`.card[data-state="passed"], .card[data-state="expired"]`)
	st.waitState("expired") // the passed page continues by itself, and finds the step handed back
	st.check("expired")

	st.section("authenticator code, a wrong one first")
	st.signIn(bobEmail)
	st.waitState("code")
	st.check("code")
	codeURL := st.eval(`location.href`)
	// The page of a factor that sends a code, before it is sent.
	st.do(chromedp.Navigate(codeURL + "?via=call"))
	st.waitState("send")
	st.check("send")
	st.do(chromedp.Navigate(codeURL))
	st.waitState("code")
	// A form without its token is refused, and says how to go on.
	st.eval(`document.querySelector('#code-form input[name=csrf]').remove() ?? ''`)
	st.typeCode(bobKey.Code(time.Now()))
	st.waitState("refused")
	st.check("refused")
	st.click("#reload")
	st.waitState("code")
	st.typeCode("000000")
	st.visible("#error")
	if focused := st.eval(`document.activeElement.id`); focused != "code" {
		t.Errorf("after a wrong code the focus is on %q, not the code field", focused)
	}
	st.check("wrong-code")
	st.typeCode(bobKey.Code(time.Now()))
	st.visible("#signed-in")
	rp.expectSignedIn(rp.result(), bob, bobEmail, "otp")

	st.section("SMS code from the outbox, in dark mode")
	st.signIn(bobEmail)
	st.waitState("code")
	st.colorScheme("dark")
	st.click("#another-way")
	st.waitState("choose")
	st.check("dark")
	st.colorScheme("")
	st.click("#opt-sms")
	st.waitState("sent")
	st.check("sent")
	st.typeCode(s.lastCode("+12015550188"))
	st.visible("#signed-in")
	rp.expectSignedIn(rp.result(), bob, bobEmail, "sms")

	st.section("a push denied")
	st.signIn(aliceEmail)
	st.waitState("push")
	w := a.start("watch", "--once")
	w.out.waitFor(t, "approve? [y/n] ")
	w.send("n")
	w.out.waitFor(t, "reason (optional")
	w.send("not me")
	if err := w.wait(); err != nil {
		t.Fatalf("device watch: %v", err)
	}
	st.waitState("denied")
	st.check("denied")
	st.click("#back")
	st.visible("#refused")
	if res := rp.result(); !strings.HasPrefix(res.Error, "access_denied") {
		t.Fatalf("after a denied push the relying party got %+v", res)
	}

	st.section("Japanese, with a code by email")
	if _, err := chromedp.Call(ctx, network.SetExtraHTTPHeaders, network.SetExtraHTTPHeadersParams{Headers: network.Headers{"Accept-Language": "ja,en;q=0.5"}}); err != nil {
		t.Fatal(err)
	}
	st.signIn(bobEmail)
	st.waitState("code")
	if lang, h := st.eval(`document.documentElement.lang`), st.eval(`document.querySelector('h1').textContent`); lang != "ja" || h != "認証アプリのコードを入力してください" {
		t.Errorf("the page in Japanese: lang %q, heading %q", lang, h)
	}
	st.checkOnly("ja") // no screenshot: this machine's chromium has no CJK fonts
	st.click("#another-way")
	st.waitState("choose")
	st.click("#opt-email")
	st.waitState("sent")
	st.checkOnly("ja sent")
	msgs := s.outbox("--to", bobEmail)
	if len(msgs) == 0 || !strings.Contains(msgs[len(msgs)-1].Body, "の認証コードは") {
		t.Fatalf("the email is not in the page's language: %+v", msgs)
	}
	// The browser's language changes: the page follows on the next load.
	if _, err := chromedp.Call(ctx, network.SetExtraHTTPHeaders, network.SetExtraHTTPHeadersParams{Headers: network.Headers{"Accept-Language": "fr-FR"}}); err != nil {
		t.Fatal(err)
	}
	st.do(chromedp.Reload())
	st.visible(`html[lang="fr"] .card[data-state="sent"]`)
	st.check("fr")
	st.typeCode(codeIn(t, msgs[len(msgs)-1].Body))
	st.visible("#signed-in")
	rp.expectSignedIn(rp.result(), bob, bobEmail, "otp")
	if _, err := chromedp.Call(ctx, network.SetExtraHTTPHeaders, network.SetExtraHTTPHeadersParams{Headers: network.Headers{}}); err != nil {
		t.Fatal(err)
	}

	st.section("no way offered")
	// A client that allows push only, for a user without a device: the page says there is no
	// way, and offers to go back.
	db, keys := stepStore(t, s)
	steps := hostedstep.NewSteps(db, keys, nil, nil, hostedstep.Config{}, nil)
	pushOnly := stepClient(t, s, "Push only", rp.redirectURI(), twofold.FactorPush)
	st.enter(issuer, steps, pushOnly.Client, bobEmail, `{"dialect":"oidc"}`)
	st.waitState("none")
	st.check("none")

	st.section("the error page")
	// A session that no wire adapter of this server began (a dialect since retired) cannot be
	// handed back: its cancel fails, and the page says so.
	retired := st.enter(issuer, steps, client.Client, bobEmail, `{"dialect":"retired"}`)
	st.waitState("code")
	st.click("#cancel")
	st.waitState("error")
	st.check("error")

	st.section("a recovery code, then the same one again")
	made := s.post(fmt.Sprintf("/protected/json/users/%d/recovery_codes", bob), nil)
	codes, _ := made.body["codes"].([]any)
	if len(codes) != 10 {
		t.Fatalf("recovery codes: %s", made.raw)
	}
	recoveryCode := fmt.Sprint(codes[0])
	useRecovery := func(typed string) {
		t.Helper()
		st.signIn(bobEmail)
		st.waitState("code")
		st.click("#another-way")
		st.waitState("choose")
		st.click("#opt-recovery_code")
		st.waitState("recovery")
		st.typeCode(typed)
	}
	useRecovery(strings.ToUpper(recoveryCode))
	st.visible("#signed-in")
	rp.expectSignedIn(rp.result(), bob, bobEmail, "kba")
	useRecovery(strings.ReplaceAll(recoveryCode, "-", " "))
	st.visible("#error")
	st.waitState("recovery")
	st.check("recovery-used")
	if got := st.eval(`document.querySelector('#error').textContent`); !strings.Contains(got, "used already") {
		t.Errorf("a used recovery code: %q", got)
	}

	st.section("without JavaScript: the push's Continue button")
	noJS(t, ctx, rp, a, ana)

	st.section("inside a frame")
	framed(t, ctx, rp, retired)
}

// noJS signs in with a push in a tab whose scripts are off: the page cannot poll, so Continue
// says the request waits, and once approved goes on.
func noJS(t *testing.T, parent context.Context, rp *relyingParty, a *authenticator, ana int64) {
	ctx, cancel := chromedp.NewContext(parent)
	defer cancel()
	scripts(t, ctx, false)
	st := &stepTab{page: &page{t: t, ctx: ctx, began: time.Now()}, rp: rp}
	st.signIn(aliceEmail)
	st.waitState("push")
	if ran := st.eval(`String(document.documentElement.dataset.js)`); ran != "undefined" {
		t.Fatalf("the page's script ran: %s", ran)
	}
	number := st.number()
	st.click("#continue")
	st.visible("#error") // not approved yet
	if again := st.number(); again != number {
		t.Errorf("Continue before approving showed number %s, then %s", number, again)
	}
	// axe-core needs scripts to run: on for the check (the page's own script, skipped at load,
	// does not run later), off again after.
	scripts(t, ctx, true)
	st.check("nojs-waiting")
	scripts(t, ctx, false)
	approve(t, a, number)
	st.click("#continue")
	st.visible("#signed-in")
	rp.expectSignedIn(rp.result(), ana, aliceEmail, "pop")

	// Approved while the page was away: on its return it has passed, and Continue goes on.
	st.signIn(aliceEmail)
	st.waitState("push")
	approve(t, a, st.number())
	st.do(chromedp.Reload())
	st.waitState("passed")
	scripts(t, ctx, true)
	st.check("passed")
	scripts(t, ctx, false)
	st.click("#continue")
	st.visible("#signed-in")
	rp.expectSignedIn(rp.result(), ana, aliceEmail, "pop")
}

// scripts turns the scripts of the tab in ctx on or off.
func scripts(t *testing.T, ctx context.Context, on bool) {
	t.Helper()
	if _, err := chromedp.Call(ctx, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: !on}); err != nil {
		t.Fatal(err)
	}
}

// framed opens a page of the relying party's origin that frames the step's page (one the
// browser holds the cookie of) beside a page that may be framed: the step's is not rendered.
func framed(t *testing.T, parent context.Context, rp *relyingParty, stepURL string) {
	ctx, cancel := chromedp.NewContext(parent) // no console watch: the refusal is logged
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.Navigate(rp.srv.URL+"/frame?src="+url.QueryEscape(stepURL)),
		chromedp.Poll[chromedp.Void](`document.readyState === 'complete'`)); err != nil {
		t.Fatal(err)
	}
	tree, err := chromedp.Call(ctx, cdppage.GetFrameTree, cdp.Empty{})
	if err != nil {
		t.Fatal(err)
	}
	frames := map[string]*cdp.Frame{}
	for _, child := range tree.FrameTree.ChildFrames {
		frames[child.Frame.Name] = child.Frame
	}
	if own := frames["own"]; own == nil || own.URL != rp.srv.URL+"/plain" || own.UnreachableURL != "" {
		t.Fatalf("the control frame did not render: %+v", frames["own"])
	}
	f := frames["step"]
	if f == nil {
		t.Fatal("no frame of the step's page")
	}
	if f.URL == stepURL && f.UnreachableURL == "" {
		t.Fatalf("the step's page rendered inside a frame: %+v", f)
	}
	t.Logf("the framed step's page: url %s, unreachable %s", f.URL, f.UnreachableURL)
}
