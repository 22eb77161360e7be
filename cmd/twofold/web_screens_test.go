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

	"github.com/chromedp/chromedp"

	"github.com/twofold-auth/twofold/internal/browsertest"
)

// TestWebAuthenticatorScreens walks every screen of the web authenticator at the desktop and
// the phone width, with realistic data (two accounts of one application with a long name, a
// long email, many accounts), and checks each with axe-core and for fitting its viewport. On
// the way it checks what issue 17 asked of them: which account each account, code and request
// is for; a second try at a mistyped matching number; what an answer answered; codes clear of
// their copy button; and a warning, not a duplicate, for an account added twice.
func TestWebAuthenticatorScreens(t *testing.T) {
	for _, vp := range browsertest.Viewports {
		t.Run(vp.Name, func(t *testing.T) { screensAt(t, vp) })
	}
}

const (
	longApp    = "Acme Shop — Customer Accounts and Loyalty Programme"
	aliceEmail = "alice.catherine.montgomery-smithson@accounts.example-corporation.com"
	bobEmail   = "bob@example.com"
)

// screens is a browser tab on the web authenticator, with the checks of every screen.
type screens struct {
	*page
	vp browsertest.Viewport
	s  *server
}

// check runs axe-core and the fit check on the screen as it is.
func (sc *screens) check(screen string) {
	sc.t.Helper()
	// As people see it: after the entrance animations (a dialog fading in is not a contrast
	// failure).
	sc.do(chromedp.Poll[chromedp.Void](`document.getAnimations().every(a => a.playState !== 'running')`))
	browsertest.Check(sc.t, sc.ctx, sc.vp.Name+": "+screen)
	sc.shot(screen)
}

// shot saves the screen to $TWOFOLD_SCREENS_DIR, when set, to look at while working on the page.
func (sc *screens) shot(screen string) {
	dir := os.Getenv("TWOFOLD_SCREENS_DIR")
	if dir == "" {
		return
	}
	buf, err := chromedp.Run(sc.ctx, chromedp.CaptureScreenshot())
	if err != nil {
		sc.t.Fatal(err)
	}
	name := strings.NewReplacer(" ", "-", ",", "").Replace(sc.vp.Name + "-" + screen)
	if err := os.WriteFile(filepath.Join(dir, name+".png"), buf, 0o644); err != nil {
		sc.t.Fatal(err)
	}
}

func (sc *screens) text(sel string) string {
	sc.t.Helper()
	return sc.eval(`(document.querySelector('` + sel + `')?.textContent ?? '<none>')`)
}

func (sc *screens) count(sel string) int {
	sc.t.Helper()
	return atoi(sc.eval(`String(document.querySelectorAll('` + sel + `').length)`))
}

// enrol opens a registration link for the user and waits for the confirmation.
func (sc *screens) enrolLink(authyID int64) {
	sc.t.Helper()
	reg := sc.s.post("/protected/json/sdk/registrations", url.Values{"authy_id": {fmt.Sprint(authyID)}})
	if reg.status != 200 {
		sc.t.Fatalf("sdk/registrations: %s", reg.raw)
	}
	sc.do(chromedp.Navigate(reg.body["registration_url"].(string)))
	sc.visible("#confirm-dialog[open] #confirm-ok")
}

// paste adds a pasted link through the add dialog, leaving the dialog as it answers.
func (sc *screens) paste(link string) {
	sc.t.Helper()
	sc.click("#add-open")
	sc.visible("#add-dialog[open] #add-input")
	sc.do(chromedp.SendKeys(chromedp.CSS("#add-input"), link))
	sc.click("#add-submit")
}

// codesClear reports the accounts whose code digits, copy icon and countdown ring overlap or
// leave their card.
const codesClear = `(() => {
	const bad = [];
	const overlap = (a, b) => a.left < b.right - 0.5 && b.left < a.right - 0.5 && a.top < b.bottom - 0.5 && b.top < a.bottom - 0.5;
	for (const li of document.querySelectorAll('#account-list .account')) {
		const card = li.getBoundingClientRect();
		const digits = li.querySelector('.code-digits').getBoundingClientRect();
		const icon = li.querySelector('.copy-icon').getBoundingClientRect();
		const ring = li.querySelector('.ring').getBoundingClientRect();
		const name = li.querySelector('.account-issuer').textContent;
		if (overlap(digits, icon) || icon.left < digits.right + 4) bad.push(name + ': the code runs into its copy icon');
		if (overlap(icon, ring) || overlap(digits, ring)) bad.push(name + ': the code runs into its ring');
		for (const r of [digits, icon, ring]) if (r.left < card.left || r.right > card.right) bad.push(name + ': the code leaves its card');
	}
	return bad.join('\n');
})()`

func screensAt(t *testing.T, vp browsertest.Viewport) {
	s := startServer(t, "", "--rate-limit", "off")
	if _, err := s.cli("app", "update", "1", "--name", longApp); err != nil {
		t.Fatal(err)
	}
	alice := s.register(s.key, aliceEmail, "2015550123")
	bob := s.register(s.key, bobEmail, "2015550124")

	ctx, cancel := context.WithTimeout(newBrowser(t), 4*time.Minute)
	defer cancel()
	sc := &screens{page: &page{t: t, ctx: ctx, began: time.Now()}, vp: vp, s: s}
	defer watchConsole(t, ctx, cancel)()

	sc.section("empty")
	sc.do(vp.Emulate(), chromedp.Navigate(s.url+"/authenticator/"))
	sc.visible("#empty-add")
	// One level-one heading names the page (axe's page-has-heading-one, a moderate rule).
	if h1 := sc.eval(`[...document.querySelectorAll('h1')].map(h => h.textContent).join('|')`); h1 != "Twofold Authenticator" {
		t.Errorf("level-one headings: %q, want one, Twofold Authenticator", h1)
	}
	sc.check("empty")
	sc.click("#empty-add")
	sc.visible("#add-dialog[open] #add-input")
	sc.check("add")
	sc.click("#add-cancel")

	sc.section("two accounts of one app")
	sc.enrolLink(alice)
	sc.check("enrol")
	sc.click("#confirm-ok")
	device := `#account-list li[data-kind="device"]`
	sc.visible(device + ` .code[data-ready]`)
	sc.enrolLink(bob)
	// The app is here already, for someone: the confirmation says so before anything is done.
	if note := sc.text("#confirm-note"); !strings.Contains(note, aliceEmail) {
		t.Errorf("confirming a second account of %s: note %q, want it to name %s", longApp, note, aliceEmail)
	}
	sc.check("enrol, the app is here already")
	sc.click("#confirm-ok")
	sc.visible(device + `:nth-child(2) .code[data-ready]`)
	for i, email := range []string{aliceEmail, bobEmail} {
		row := fmt.Sprintf(`%s:nth-child(%d)`, device, i+1)
		if got := sc.text(row + " .account-label"); got != email {
			t.Errorf("device account %d is labelled %q, want %q", i+1, got, email)
		}
		// The code button's name is "Copy the code for APP (EMAIL): DIGITS", its visible digits last.
		name := sc.eval(`(b => b.textContent.replace(/\s+/g, ' ').trim())(document.querySelector('` + row + ` .code'))`)
		digits := sc.eval(`document.querySelector('` + row + ` .code').dataset.code`)
		if want := "Copy the code for " + longApp + " (" + email + "): " + digits[:3] + " " + digits[3:]; name != want {
			t.Errorf("code button of account %d is named %q, want %q", i+1, name, want)
		}
	}

	sc.section("many accounts")
	for _, link := range []string{
		"otpauth://totp/GitHub:" + url.PathEscape(aliceEmail) + "?secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP&issuer=GitHub",
		"otpauth://totp/Northwind%20Traders%20Cloud%20Infrastructure%20Console:ops-admin?secret=HXDMVJECJJWSRB3HWIZR4IFUGFTMXBOZ&issuer=Northwind%20Traders%20Cloud%20Infrastructure%20Console&digits=8&algorithm=SHA256",
		"otpauth://totp/Mastodon:bob?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=Mastodon&period=60",
	} {
		sc.paste(link)
		sc.gone("#add-dialog[open]")
	}
	sc.do(chromedp.Poll[chromedp.Void](`document.querySelectorAll('#account-list .code[data-ready]').length === 5`))
	if bad := sc.eval(codesClear); bad != "" {
		t.Errorf("%s: codes:\n%s", vp.Name, bad)
	}
	sc.check("codes")

	sc.section("an account added twice")
	sc.paste("otpauth://totp/GitHub:" + url.PathEscape(aliceEmail) + "?secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP&issuer=GitHub")
	sc.do(chromedp.Poll[chromedp.Void](`document.querySelector('#add-error').textContent.includes('already in this browser')`))
	sc.check("add, the same account again")
	if n := sc.count("#account-list .account"); n != 5 {
		t.Errorf("after adding an account again: %d accounts, want 5", n)
	}
	sc.click("#add-cancel")
	// The same name with another key: a warning first, added on a second Add.
	sc.paste("otpauth://totp/GitHub:" + url.PathEscape(aliceEmail) + "?secret=KRSXG5CTMVRXEZLUKRSXG5CTMVRXEZLU&issuer=GitHub")
	sc.do(chromedp.Poll[chromedp.Void](`document.querySelector('#add-submit').textContent === 'Add anyway'`))
	if n := sc.count("#account-list .account"); n != 5 {
		t.Errorf("after a warning: %d accounts, want 5", n)
	}
	sc.check("add, another key for an account")
	sc.click("#add-submit")
	sc.gone("#add-dialog[open]")
	sc.do(chromedp.Poll[chromedp.Void](`document.querySelectorAll('#account-list .account').length === 6`))
	// An enrolment link for an account this browser has: nothing is added, here or on the server.
	sc.enrolLink(alice)
	sc.click("#confirm-ok")
	sc.do(chromedp.Poll[chromedp.Void](`document.querySelector('#confirm-title').textContent === 'Already in this browser'`))
	if got := sc.text("#confirm-body"); !strings.Contains(got, aliceEmail) || !strings.Contains(got, "nothing was added") {
		t.Errorf("enrolling an account again: %q", got)
	}
	sc.check("enrol, the account is here already")
	if n := sc.count(device); n != 2 {
		t.Errorf("after enrolling an account again: %d device accounts, want 2", n)
	}
	sc.click("#confirm-cancel")
	st := s.get(fmt.Sprintf("/protected/json/users/%d/status", alice)).body["status"].(map[string]any)
	if n := len(st["detailed_devices"].([]any)); n != 1 {
		t.Errorf("after enrolling the account again, the server has %d devices for it, want 1: %v", n, st)
	}

	sc.section("a request, and what was answered")
	uuid := s.createRequest(s.key, bob, url.Values{
		"message": {"Sign in to your Acme Shop customer account"}, "details[Browser]": {"Firefox 133 on macOS"},
		"details[Location]": {"Saint-Rémy-de-Provence, Provence-Alpes-Côte d'Azur, France"}, "details[IP address]": {"2001:db8:85a3::8a2e:370:7334"},
	})
	card := fmt.Sprintf(`#request-list li.request[data-uuid=%q]`, uuid)
	sc.visible(card + " .approve")
	if got := sc.text(card + " .request-account"); got != "For "+bobEmail {
		t.Errorf("the request card says %q of its account, want For %s", got, bobEmail)
	}
	sc.check("request")
	sc.click(card + " .deny-reason")
	sc.visible("#deny-dialog[open] #deny-confirm")
	if got := sc.text("#deny-what"); !strings.Contains(got, bobEmail) || !strings.Contains(got, "Sign in to your Acme Shop customer account") {
		t.Errorf("deny dialog: %q", got)
	}
	sc.check("deny")
	sc.click("#deny-cancel")
	sc.gone("#deny-dialog[open]")
	sc.click(card + " .approve")
	sc.visible(card + `[data-state="approved"] .request-outcome`)
	for _, sel := range []string{card + " .request-outcome", "#toast"} {
		got := sc.text(sel)
		for _, want := range []string{"Approved", "Sign in to your Acme Shop customer account", longApp, bobEmail} {
			if !strings.Contains(got, want) {
				t.Errorf("after approving, %s says %q: no %q", sel, got, want)
			}
		}
	}
	sc.check("answered")
	sc.gone(card)

	sc.section("number matching")
	created := s.post(fmt.Sprintf("/onetouch/json/users/%d/approval_requests", alice), url.Values{
		"message": {"Approve a payment of €1,240.00 to Northwind Traders"}, "number_matching": {"true"},
	})
	ar := created.body["approval_request"].(map[string]any)
	uuid, number := ar["uuid"].(string), ar["number"].(string)
	wrong := fmt.Sprint((atoi(number)+1)%90 + 10)
	card = fmt.Sprintf(`#request-list li.request[data-uuid=%q]`, uuid)
	sc.visible(card + " .number-input")
	sc.check("number matching")
	// One wrong number: the request stays, and the card asks again.
	sc.do(chromedp.SendKeys(chromedp.CSS(card+" .number-input"), wrong))
	sc.click(card + " .approve")
	sc.do(chromedp.Poll[chromedp.Void](`document.querySelector('` + card + ` .request-error').textContent.includes("doesn't match")`))
	if got := s.requestStatus(uuid); got["status"] != "pending" {
		t.Fatalf("after one wrong number: %v", got)
	}
	if state := sc.eval(`document.querySelector('` + card + `').dataset.state`); state != "pending" {
		t.Errorf("after one wrong number the card is %s", state)
	}
	sc.check("number matching, one wrong number")
	sc.do(chromedp.SendKeys(chromedp.CSS(card+" .number-input"), number))
	sc.click(card + " .approve")
	sc.visible(card + `[data-state="approved"]`)
	if got := s.requestStatus(uuid); got["status"] != "approved" {
		t.Fatalf("the right number after a wrong one: %v", got)
	}
	// Two wrong numbers deny.
	uuid = s.createRequest(s.key, alice, url.Values{"message": {"Sign in"}, "number_matching": {"true"}})
	card = fmt.Sprintf(`#request-list li.request[data-uuid=%q]`, uuid)
	for range 2 {
		sc.visible(card + ` .number-input`)
		sc.do(chromedp.SendKeys(chromedp.CSS(card+" .number-input"), "00"))
		sc.click(card + " .approve")
		sc.do(chromedp.Poll[chromedp.Void](`(c => !c || c.dataset.state !== 'sending' && (c.dataset.state !== 'pending' || c.querySelector('.request-error').textContent !== ''))(document.querySelector('` + card + `'))`))
	}
	sc.visible(card + `[data-state="mismatch"] .request-outcome`)
	if got := s.requestStatus(uuid); got["status"] != "denied" {
		t.Fatalf("after two wrong numbers: %v", got)
	}
	sc.check("number matching, denied")

	sc.section("account")
	sc.click(device + ":nth-child(1) .more")
	sc.visible("#account-dialog[open] #account-name")
	if got := sc.text("#account-facts"); !strings.Contains(got, aliceEmail) {
		t.Errorf("account dialog facts: %q", got)
	}
	sc.check("account")
	sc.click("#account-close")
	sc.gone("#account-dialog[open]")

	sc.section("dark")
	sc.colorScheme("dark")
	uuid = s.createRequest(s.key, alice, url.Values{"message": {"Sign in to Acme Shop"}, "details[Browser]": {"Safari 18 on iOS"}})
	card = fmt.Sprintf(`#request-list li.request[data-uuid=%q]`, uuid)
	sc.visible(card + " .approve")
	sc.check("dark, request and codes")
	sc.click(card + " .approve")
	sc.visible(card + `[data-state="approved"] .request-outcome`)
	sc.check("dark, answered")
	sc.colorScheme("")

	sc.section("offline")
	sc.do(chromedp.Evaluate[chromedp.Void](`navigator.serviceWorker.ready.then(() => undefined)`, chromedp.EvalAwaitPromise))
	s.stop()
	sc.do(chromedp.Reload())
	sc.visible(device + ` .code[data-ready]`)
	sc.visible(`#conn[data-state="offline"]`)
	sc.check("offline")
}
