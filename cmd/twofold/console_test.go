package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/twofold-auth/twofold/internal/callback"
)

// TestConsole drives the operators' console in a real browser against a real server: sign-in
// with a password and a TOTP code, an application created and its key read once, a callback URL
// set, callbacks failing until they are disabled and then re-enabled, a user found by email, and
// the audit trail. With TWOFOLD_SCREENSHOTS=1 it saves docs/screenshots/console-*.png.
func TestConsole(t *testing.T) {
	browser := newBrowser(t)
	dir := t.TempDir()
	const email, password = "ana@example.com", "correct horse battery staple"
	seed := createOperator(t, dir, email, password)

	rc := newReceiver(t)
	rc.failWith.Store(http.StatusInternalServerError)
	seen := make(attempts, 64)
	s := startServerEnv(t, dir, func(e *Env) { e.OnCallback = func(a callback.Attempt) { seen <- a } },
		"--rate-limit", "off", "--callback-allow-hosts", "127.0.0.1", "--callback-backoff", "10ms")

	ctx, cancel := context.WithTimeout(browser, 3*time.Minute)
	defer cancel()
	p := &page{t: t, ctx: ctx, began: time.Now()}
	checkConsole := watchConsole(t, ctx, cancel)
	defer checkConsole()
	text := func(sel string) string {
		t.Helper()
		return p.eval(`document.querySelector(` + strconv.Quote(sel) + `).textContent.trim()`)
	}
	value := func(sel string) string {
		t.Helper()
		return p.eval(`document.querySelector(` + strconv.Quote(sel) + `).value`)
	}
	typeInto := func(sel, s string) {
		t.Helper()
		p.eval(`(document.querySelector(` + strconv.Quote(sel) + `).value = '')`)
		p.do(chromedp.SendKeys(chromedp.CSS(sel), s))
	}

	p.section("sign in: password")
	p.do(chromedp.EmulateViewport(1280, 860), chromedp.Navigate(s.url+"/console/"))
	p.visible("#email")
	if loc := p.eval(`location.pathname`); loc != "/console/signin" {
		t.Fatalf("the console without a session shows %s, want the sign-in page", loc)
	}
	typeInto("#email", email)
	typeInto("#password", "not my password at all")
	p.click("#signin-submit")
	p.visible("#signin-error")
	if got := text("#signin-error"); got != "Wrong email or password." {
		t.Fatalf("a wrong password says %q", got)
	}
	typeInto("#password", password)
	p.screenshot("console-signin")
	p.click("#signin-submit")

	p.section("sign in: TOTP code")
	p.visible("#code")
	typeInto("#code", seed.TOTP.Code(time.Now()))
	p.screenshot("console-factor")
	p.click("#code-submit")
	p.visible("#new-app")
	if loc := p.eval(`location.pathname`); loc != "/console/apps" {
		t.Fatalf("after sign-in: %s", loc)
	}
	if strings.Contains(p.eval(`document.querySelector('main').textContent`), "Twofold Console") {
		t.Error("the console's own application is listed")
	}

	p.section("create an application")
	p.click("#new-app")
	p.visible("#app-name")
	typeInto("#app-name", "Acme Shop")
	p.click("#create-app")
	p.visible("#api-key")
	key := value("#api-key")
	if len(key) != 32 {
		t.Fatalf("API key shown: %q", key)
	}
	rc.key.Store(key)
	r := s.do("GET", "/protected/json/app/details", key, nil)
	if r.status != 200 || !strings.Contains(r.raw, "Acme Shop") {
		t.Fatalf("the key shown does not work: %d %s", r.status, r.raw)
	}
	p.click("#key-done")
	p.visible("#app-id")
	appID := text("#app-id")
	if strings.Contains(p.eval(`document.body.innerHTML`), key) {
		t.Fatal("the application's page shows the key again")
	}

	p.section("set the callback URL")
	p.click("#app-settings")
	p.visible("#callback_url")
	typeInto("#token_length", "11")
	typeInto("#callback_url", rc.srv.URL+"/authy/callback")
	typeInto("#contact_email", "owner@acme.example")
	p.click("#save-settings")
	p.visible("#settings-error")
	p.visible(`#token_length[aria-invalid="true"]`)
	typeInto("#token_length", "7")
	p.click("#save-settings")
	p.visible(`#callback-health[data-health="healthy"]`)
	if got := text("#callback-url"); got != "POST "+rc.srv.URL+"/authy/callback" {
		t.Fatalf("callback URL shown: %q", got)
	}

	p.section("callbacks fail until disabled")
	alice := s.register(key, "alice@example.com", "2015550123")
	phone := s.newDevice(key, alice)
	uuid := s.createRequest(key, alice, url.Values{"message": {"Sign in to Acme Shop"}, "details[Location]": {"Lisbon"}})
	if r := phone.answer(s, uuid, "approved", "", ""); r.status != 200 {
		t.Fatalf("answer: %s", r.raw)
	}
	for i := 1; i <= 3; i++ {
		if a := seen.next(t); a.OK || a.Status != 500 || a.Disabled != (i == 3) {
			t.Fatalf("callback attempt %d: %+v", i, a)
		}
	}
	p.do(chromedp.Reload())
	p.visible(`#callback-health[data-health="disabled"] #enable-callbacks`)
	if got := text("#callback-failures"); got != "3" {
		t.Errorf("failures shown: %q", got)
	}

	p.section("re-enable callbacks")
	rc.failWith.Store(0)
	p.click("#enable-callbacks")
	p.visible(`#callback-health[data-health="healthy"]`)
	if a := seen.next(t); !a.OK {
		t.Fatalf("the kept callback after re-enabling: %+v", a)
	}
	if cb := rc.next(t); cb["uuid"] != uuid || cb["status"] != "approved" {
		t.Fatalf("callback delivered after re-enabling: %v", cb)
	}
	p.do(chromedp.Reload())
	p.visible(`#recent-callbacks .status-delivered`)
	p.screenshot("console-app")

	p.section("find a user")
	p.click("#app-users")
	p.visible("#user-query")
	typeInto("#user-query", "ALICE@example")
	p.click("#user-search")
	// The search is a new page. Until it has loaded, the old page's unfiltered list shows the
	// same row, and a click on it can land on a node that navigation removes. The new page
	// writes the query into the input's value attribute; the old one never does.
	p.visible(`#user-query[value="ALICE@example"]`)
	row := fmt.Sprintf(`#user-list tr[data-user="%d"]`, alice)
	p.visible(row + " a")
	p.screenshot("console-users")
	p.click(row + " a")
	p.visible("#device-list")
	if got := text("#user-email"); got != "alice@example.com" {
		t.Fatalf("user page for %q", got)
	}
	p.screenshot("console-user")

	p.section("lists and charts")
	// Some traffic for the charts: codes sent by SMS, and verified after a wrong try.
	for i, number := range []string{"2015550124", "2015550125", "2015550126"} {
		id := s.register(key, fmt.Sprintf("user%d@example.com", i), number)
		if r := s.do("GET", fmt.Sprintf("/protected/json/sms/%d?force=true", id), key, nil); r.status != 200 {
			t.Fatalf("sms: %s", r.raw)
		}
		code := s.lastCode(number)
		s.do("GET", fmt.Sprintf("/protected/json/verify/%s/%d", wrongCode(code), id), key, nil)
		if r := s.do("GET", fmt.Sprintf("/protected/json/verify/%s/%d", code, id), key, nil); r.status != 200 {
			t.Fatalf("verify: %s", r.raw)
		}
	}
	p.do(chromedp.Navigate(s.url + "/console/approvals?app=" + appID))
	p.visible("#approval-list .status-approved")
	p.screenshot("console-approvals")
	p.do(chromedp.Navigate(s.url + "/console/activity?app=" + appID))
	p.visible("svg.chart rect.bar.bad") // the failed verifications
	p.screenshot("console-activity")

	p.section("audit trail")
	p.do(chromedp.Navigate(s.url + "/console/audit"))
	for _, action := range []string{"operator.login_failed", "operator.login", "app.created", "app.updated", "approval.approved"} {
		p.visible(`#audit-list tr[data-action="` + action + `"]`)
	}
	if by := text(`#audit-list tr[data-action="app.created"] td:nth-child(4)`); by != "operator:"+email {
		t.Errorf("app.created attributed to %q", by)
	}
	p.screenshot("console-audit")

	p.section("sign out")
	p.click("#signout")
	p.visible("#email")
	p.do(chromedp.Navigate(s.url + "/console/apps"))
	p.visible("#email")
}

// TestConsolePushSignIn signs in with a push approved on the operator's registered device: the
// waiting page shows the number to match, polls, and continues by itself once approved.
func TestConsolePushSignIn(t *testing.T) {
	browser := newBrowser(t)
	dir := t.TempDir()
	const email, password = "ops@example.com", "another long password"
	op := createOperator(t, dir, email, password)
	s := startServer(t, dir, "--rate-limit", "off")
	phone := s.redeem(op.RegistrationToken)

	ctx, cancel := context.WithTimeout(browser, 2*time.Minute)
	defer cancel()
	p := &page{t: t, ctx: ctx, began: time.Now()}
	checkConsole := watchConsole(t, ctx, cancel)
	defer checkConsole()

	p.section("password")
	p.do(chromedp.EmulateViewport(1280, 860), chromedp.Navigate(s.url+"/console/signin"))
	p.visible("#email")
	p.do(chromedp.SendKeys(chromedp.CSS("#email"), email), chromedp.SendKeys(chromedp.CSS("#password"), password))
	p.click("#signin-submit")

	p.section("push")
	p.visible("#push-submit")
	p.click("#push-submit")
	p.visible("#push-number")
	number := p.eval(`document.querySelector('#push-number').textContent.trim()`)
	p.screenshot("console-push")
	r := phone.call(s, "GET", "/device/v1/approval_requests?status=pending", nil)
	var pending struct {
		ApprovalRequests []struct {
			UUID    string            `json:"uuid"`
			Message string            `json:"message"`
			Details map[string]string `json:"details"`
		} `json:"approval_requests"`
	}
	if err := json.Unmarshal([]byte(r.raw), &pending); err != nil || len(pending.ApprovalRequests) != 1 {
		t.Fatalf("the device's pending requests: %s", r.raw)
	}
	req := pending.ApprovalRequests[0]
	if !strings.Contains(req.Message, email) || req.Details["IP address"] != "127.0.0.1" || !strings.Contains(req.Details["Browser"], "Chrome") {
		t.Fatalf("the push says: %+v", req)
	}
	if a := phone.answer(s, req.UUID, "approved", number, ""); a.status != 200 {
		t.Fatalf("approve: %s", a.raw)
	}
	p.visible("#new-app") // the page continued by itself
	if loc := p.eval(`location.pathname`); loc != "/console/apps" {
		t.Fatalf("after the push: %s", loc)
	}
}
