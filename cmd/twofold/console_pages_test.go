package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/twofold-auth/twofold/client"
	"github.com/twofold-auth/twofold/internal/browsertest"
	"github.com/twofold-auth/twofold/internal/callback"
	"github.com/twofold-auth/twofold/internal/otp"
)

// Realistic data for the console's pages: what overflows a layout made with short names.
const (
	longOperator = "ana.maria.de.souza.operations@platform-engineering.really-long-company-domain.example.com"
	longAppName  = "Acme Global Payments — Customer Identity Verification Service (EU production, Frankfurt)"
	longPath     = "/webhooks/authy/onetouch/callback/receiver/v2/production/eu-central-1/customer-identity-verification-service"
)

// longEmail is the email of the i-th seeded user.
func longEmail(i int) string {
	return fmt.Sprintf("firstname.middlename.lastname.%02d+security-notifications@subdomain.long-corporate-domain.example.com", i)
}

// consoleEnv is a server, an operator and a browser tab, for the console's tests.
type consoleEnv struct {
	t        *testing.T
	s        *server
	p        *page
	ctx      context.Context
	email    string
	password string
	op       operator
}

// newConsoleEnv starts a server with an operator of the given email (and a browser). hook may
// set Env hooks; args are more flags of serve.
func newConsoleEnv(t *testing.T, email string, hook func(*Env), args ...string) *consoleEnv {
	t.Helper()
	browser := newBrowser(t)
	dir := t.TempDir()
	const password = "correct horse battery staple"
	op := createOperator(t, dir, email, password)
	s := startServerEnv(t, dir, hook, append([]string{"--rate-limit", "off", "--callback-allow-hosts", "127.0.0.1"}, args...)...)
	ctx, cancel := context.WithTimeout(browser, 4*time.Minute)
	t.Cleanup(cancel)
	checkConsole := watchConsole(t, ctx, cancel)
	t.Cleanup(checkConsole)
	return &consoleEnv{t: t, s: s, p: &page{t: t, ctx: ctx, began: time.Now()}, ctx: ctx, email: email, password: password, op: op}
}

// typeInto replaces the value of the input sel with s, typed.
func (c *consoleEnv) typeInto(sel, s string) {
	c.t.Helper()
	c.p.eval(`(document.querySelector(` + strconv.Quote(sel) + `).value = '')`)
	c.p.do(chromedp.SendKeys(chromedp.CSS(sel), s))
}

func (c *consoleEnv) text(sel string) string {
	c.t.Helper()
	return c.p.eval(`document.querySelector(` + strconv.Quote(sel) + `).textContent.trim().replace(/\s+/g, ' ')`)
}

// password signs in up to the second factor.
func (c *consoleEnv) password1() {
	c.t.Helper()
	c.p.do(chromedp.Navigate(c.s.url + "/console/signin"))
	c.p.visible("#email")
	c.typeInto("#email", c.email)
	c.typeInto("#password", c.password)
	c.p.click("#signin-submit")
	c.p.visible("#code")
}

// signIn signs the operator in with a TOTP code.
func (c *consoleEnv) signIn() {
	c.t.Helper()
	c.password1()
	c.typeInto("#code", c.op.TOTP.Code(time.Now()))
	c.p.click("#code-submit")
	c.p.visible("#new-app")
}

// check runs browsertest.Check on a page at both viewports: open shows the page (at the
// viewport already set) and waits for it.
func (c *consoleEnv) check(name string, open func()) {
	c.t.Helper()
	for _, vp := range browsertest.Viewports {
		c.p.do(vp.Emulate())
		open()
		browsertest.Check(c.t, c.ctx, name+" ("+vp.Name+")")
	}
	c.p.do(browsertest.Desktop.Emulate())
}

// visit returns an open func for check that loads path and waits for sel.
func (c *consoleEnv) visit(path, sel string) func() {
	return func() {
		c.t.Helper()
		c.p.do(chromedp.Navigate(c.s.url + path))
		c.p.visible(sel)
	}
}

// hook is a customer's callback endpoint at any path: it checks each signature against the
// URL it was called at and answers with failWith when set.
type hook struct {
	srv      *httptest.Server
	key      atomic.Value
	failWith atomic.Int32
	got      chan map[string]any
}

func newHook(t *testing.T) *hook {
	h := &hook{got: make(chan map[string]any, 256)}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if code := h.failWith.Load(); code != 0 {
			w.WriteHeader(int(code))
			return
		}
		key, _ := h.key.Load().(string)
		at := h.srv.URL + r.URL.Path
		if r.Method == http.MethodPost && r.URL.RawQuery != "" {
			at += "?" + r.URL.RawQuery
		}
		if err := client.VerifyCallback(r, key, at); err != nil {
			http.Error(w, "bad signature", http.StatusForbidden)
			return
		}
		var body map[string]any
		json.NewDecoder(r.Body).Decode(&body)
		h.got <- body
	}))
	t.Cleanup(h.srv.Close)
	return h
}

// registerCustom makes a user known by the customer's own id (a device registered with the
// application's signed JWT, as Authy's QR tutorials do) and returns its Authy id.
func registerCustom(t *testing.T, s *server, apiKey, appName string, appID int64, customID string) int64 {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	now := time.Now()
	body, _ := json.Marshal(map[string]string{"jwt": tutorialJWT(t, apiKey, appName, appID, customID, now, now.Add(5*time.Minute)),
		"public_key": base64.StdEncoding.EncodeToString(der), "name": "Pixel 9 Pro XL of the customer", "os_type": "android"})
	r := s.do("POST", "/device/v1/registrations", "", string(body))
	if r.status != 200 {
		t.Fatalf("register with a JWT: %s", r.raw)
	}
	st := s.do("GET", "/protected/json/registrations/status?custom_user_id="+url.QueryEscape(customID), apiKey, nil)
	reg, _ := st.body["registration"].(map[string]any)
	id, _ := reg["authy_id"].(float64)
	if id == 0 {
		t.Fatalf("registration status: %s", st.raw)
	}
	return int64(id)
}

// busyApp is an application with a long name and a long callback URL, many users with long
// emails, approval requests in every state, codes sent, and callbacks delivered, failed and
// held while paused.
type busyApp struct {
	id     int64
	key    string
	users  []int64
	custom int64 // a user known only by the customer's id
	hook   *hook
}

func seedBusyApp(t *testing.T, s *server, seen attempts, users int) busyApp {
	t.Helper()
	var app appJSON
	s.cliJSON(&app, "app", "create", "--name", longAppName)
	var shown struct {
		APIKey string `json:"api_key"`
	}
	s.cliJSON(&shown, "app", "show", strconv.FormatInt(app.AppID, 10), "--show-key")
	b := busyApp{id: app.AppID, key: shown.APIKey, hook: newHook(t)}
	b.hook.key.Store(b.key)
	id := strconv.FormatInt(b.id, 10)
	if out, err := s.cli("app", "update", id, "--callback-url", b.hook.srv.URL+longPath+"?tenant=acme-global-payments-eu-production",
		"--contact-email", "identity-platform-oncall@acme-global-payments.example.com"); err != nil {
		t.Fatalf("app update: %v\n%s", err, out)
	}
	for i := range users {
		b.users = append(b.users, s.register(b.key, longEmail(i), fmt.Sprintf("20155%05d", 10000+i)))
	}
	b.custom = registerCustom(t, s, b.key, longAppName, b.id, "customer-account-7f3e9a2c-5d41-4b8e-9c0a-1e2f3a4b5c6d")
	phone := s.newDevice(b.key, b.users[0])

	// Codes sent by SMS, one verified after a wrong try.
	for i := range 6 {
		if r := s.do("GET", fmt.Sprintf("/protected/json/sms/%d?force=true", b.users[i]), b.key, nil); r.status != 200 {
			t.Fatalf("sms: %s", r.raw)
		}
	}
	code := s.lastCode(fmt.Sprintf("+120155%05d", 10000))
	s.do("GET", fmt.Sprintf("/protected/json/verify/%s/%d", wrongCode(code), b.users[0]), b.key, nil)
	s.do("GET", fmt.Sprintf("/protected/json/verify/%s/%d", code, b.users[0]), b.key, nil)

	// Approval requests: delivered callbacks, then failing ones until callbacks are paused,
	// then more held while paused, and some never answered.
	details := url.Values{"message": {"Sign in to the Acme Global Payments merchant dashboard from a new browser"},
		"details[Location]": {"Frankfurt am Main, Hesse, Germany"}, "details[Browser]": {"Firefox 133 on macOS"}}
	answer := func(status string) {
		uuid := s.createRequest(b.key, b.users[0], details)
		if r := phone.answer(s, uuid, status, "", ""); r.status != 200 {
			t.Fatalf("answer: %s", r.raw)
		}
	}
	for _, status := range []string{"approved", "denied"} {
		answer(status)
		if a := seen.next(t); !a.OK {
			t.Fatalf("callback: %+v", a)
		}
	}
	b.hook.failWith.Store(http.StatusServiceUnavailable)
	answer("approved")
	for i := 1; ; i++ {
		if a := seen.next(t); a.OK {
			t.Fatalf("callback %d delivered while failing: %+v", i, a)
		} else if a.Disabled {
			break
		}
	}
	for _, status := range []string{"approved", "denied", "approved"} {
		answer(status)
	}
	for range 4 {
		s.createRequest(b.key, b.users[0], details)
	}
	return b
}

// TestConsolePagesFit visits every page of the console at a laptop's and a phone's width, with
// long names, long emails, a long callback URL and many rows, and checks that each fits its
// viewport and has no serious or critical accessibility violation (axe-core).
func TestConsolePagesFit(t *testing.T) {
	seen := make(attempts, 256)
	c := newConsoleEnv(t, longOperator, func(e *Env) { e.OnCallback = func(a callback.Attempt) { seen <- a } },
		"--callback-backoff", "10ms")
	s, p := c.s, c.p
	s.redeem(c.op.RegistrationToken) // the operator's device, for the push page
	b := seedBusyApp(t, s, seen, 40)
	for _, name := range []string{"Staging: Customer Identity Verification Service (sandbox, shared with QA)", "Internal tools"} {
		var a appJSON
		s.cliJSON(&a, "app", "create", "--name", name, "--sandbox")
	}
	app := "/console/apps/" + strconv.FormatInt(b.id, 10)
	user := app + "/users/" + strconv.FormatInt(b.users[0], 10)
	// The user's page shows their recovery codes (how many remain) and the revoke button.
	if r := s.do("POST", fmt.Sprintf("/protected/json/users/%d/recovery_codes", b.users[0]), b.key, nil); r.status != 200 {
		t.Fatalf("recovery codes: %d %s", r.status, r.raw)
	}

	p.section("signed out")
	c.check("sign-in", c.visit("/console/signin", "#email"))
	out, err := s.cli("admin", "enrol", c.email, "--addr", strings.TrimPrefix(s.url, "http://"))
	if err != nil {
		t.Fatalf("admin enrol: %v\n%s", err, out)
	}
	enrol := strings.TrimPrefix(regexp.MustCompile(`http://\S+(/console/enrol/\w+)`).FindString(out), s.url)
	c.check("enrolment QR code", c.visit(enrol, "#enrol-qr"))
	c.check("enrolment link expired", c.visit("/console/enrol/"+strings.Repeat("0", 48), "main h1"))
	key, err := otp.ParseURI(regexp.MustCompile(`otpauth://\S+`).FindString(out))
	if err != nil {
		t.Fatal(err)
	}
	c.op.TOTP = key.TOTP // the seed the enrolment replaced the first with
	c.check("sign-in refused", func() {
		c.p.do(chromedp.Navigate(s.url + "/console/signin"))
		c.p.visible("#email")
		c.typeInto("#email", c.email)
		c.typeInto("#password", "wrong password")
		c.p.click("#signin-submit")
		c.p.visible("#signin-error")
	})
	c.password1()
	c.check("second factor", c.visit("/console/signin/factor", "#push-submit"))
	c.check("push", func() {
		c.p.do(chromedp.Navigate(s.url + "/console/signin/factor"))
		c.p.click("#push-submit")
		c.p.visible("#push-number")
	})
	c.p.do(chromedp.Navigate(s.url + "/console/signin/factor"))
	c.p.visible("#code")
	c.typeInto("#code", c.op.TOTP.Code(time.Now()))
	c.p.click("#code-submit")
	c.p.visible("#new-app")

	p.section("signed in")
	for _, pg := range []struct{ name, path, sel string }{
		{"applications", "/console/apps", "#app-list"},
		{"new application", "/console/apps/new", "#app-name"},
		{"application", app, "#recent-callbacks"},
		{"settings", app + "/settings", "#save-settings"},
		{"rotate key", app + "/rotate", "#confirm-submit"},
		{"delete application", app + "/delete", "#confirm-name"},
		{"users", app + "/users", "#user-list"},
		{"no user found", app + "/users?q=nobody-at-all", ".empty"},
		{"user", user, "#recovery-revoke"},
		{"delete user", user + "/delete", "#confirm-submit"},
		{"approvals", "/console/approvals?since=all", "#approval-list"},
		{"outbox", "/console/outbox?since=all", "#outbox-list"},
		{"callbacks", "/console/callbacks?since=all", "#callback-list"},
		{"audit trail", "/console/audit?since=all", "#audit-list"},
		{"activity", "/console/activity", "svg.chart"},
		{"not found", "/console/nothing-here", "main h1"},
	} {
		p.section(pg.name)
		c.check(pg.name, c.visit(pg.path, pg.sel))
	}
	// For the docs: a list as a phone shows it.
	p.do(browsertest.Phone.Emulate(), chromedp.Navigate(s.url+"/console/approvals?since=all"))
	p.visible("#approval-list")
	p.screenshot("console-phone")
	p.do(browsertest.Desktop.Emulate())

	p.section("dark")
	// Browsers set to a dark theme get the dark palette: its badges and links are checked too.
	p.colorScheme("dark")
	for _, pg := range []struct{ name, path, sel string }{
		{"application", app, "#recent-callbacks"}, {"approvals", "/console/approvals?since=all", "#approval-list"},
		{"callbacks", "/console/callbacks?since=all", "#callback-list"}, {"users", app + "/users", "#user-list"},
		{"settings", app + "/settings", "#save-settings"},
	} {
		c.check(pg.name+", dark", c.visit(pg.path, pg.sel))
	}
	p.colorScheme("")

	p.section("users by name")
	// Lists name users by email, or by the customer's id; the users list says what they enrolled.
	p.do(chromedp.Navigate(s.url + "/console/approvals?since=all"))
	p.visible("#approval-list")
	if got := c.text(fmt.Sprintf(`#approval-list .who-ref[data-user="%d"]`, b.users[0])); got != longEmail(0)+fmt.Sprintf(" #%d", b.users[0]) {
		t.Errorf("approvals name the user %q", got)
	}
	p.do(chromedp.Navigate(s.url + app + "/users"))
	p.visible("#user-list")
	for id, want := range map[int64]string{b.users[0]: "device", b.users[1]: "none", b.custom: "device"} {
		if got := p.eval(fmt.Sprintf(`document.querySelector('#user-list tr[data-user="%d"] .factors [data-factor]').dataset.factor`, id)); got != want {
			t.Errorf("user %d's factors: %q, want %q", id, got, want)
		}
	}
	if got := c.text(fmt.Sprintf(`#user-list tr[data-user="%d"] .user-name`, b.custom)); !strings.HasPrefix(got, "customer-account-") {
		t.Errorf("a user known by the customer's id is named %q", got)
	}

	c.check("new application's key", func() {
		c.p.do(chromedp.Navigate(s.url + "/console/apps/new"))
		c.p.visible("#app-name")
		c.typeInto("#app-name", "Checkout "+strings.Repeat("and payments ", 6))
		c.p.click("#create-app")
		c.p.visible("#api-key")
	})
}
