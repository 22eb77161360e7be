package main

import (
	"context"
	"encoding/json"
	"fmt"
	"image/png"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/fetch"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/golang-jwt/jwt/v5"

	"github.com/twofold-auth/twofold/internal/browsertest"
	"github.com/twofold-auth/twofold/internal/otp"
)

// newBrowser starts chromium for a test (see browsertest.Start), also accepting the
// certificate of the httptest TLS server that serves the customer's logo.
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	return browsertest.Start(t, chromedp.Flag("disable-quic", true), chromedp.IgnoreCertErrors)
}

// page wraps a browser tab for the test: every step fails the test on error.
type page struct {
	t     *testing.T
	ctx   context.Context
	began time.Time
}

// section logs the start of a part of the flow, with the time so far (for slow runs).
func (p *page) section(name string) {
	p.t.Logf("%6s  %s", time.Since(p.began).Round(100*time.Millisecond), name)
}

func (p *page) do(actions ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	if err := chromedp.Do(p.ctx, actions...); err != nil {
		p.t.Fatalf("browser: %v", err)
	}
}

func (p *page) eval(js string) string {
	p.t.Helper()
	v, err := chromedp.Run(p.ctx, chromedp.Evaluate[string](js, chromedp.EvalAwaitPromise))
	if err != nil {
		p.t.Fatalf("browser: evaluating %s: %v", js, err)
	}
	return v
}

func (p *page) visible(sel string) { p.t.Helper(); p.do(chromedp.WaitVisible(chromedp.CSS(sel))) }
func (p *page) click(sel string)   { p.t.Helper(); p.do(chromedp.Click(chromedp.CSS(sel))) }
func (p *page) gone(sel string)    { p.t.Helper(); p.do(chromedp.WaitNotPresent(chromedp.CSS(sel))) }

// screenshot saves the viewport as docs/screenshots/name.png, only with TWOFOLD_SCREENSHOTS=1
// so that ordinary test runs leave the tree alone.
func (p *page) screenshot(name string) {
	p.t.Helper()
	if os.Getenv("TWOFOLD_SCREENSHOTS") != "1" {
		return
	}
	// Wait for the toast to go and the entrance animations to end.
	p.do(chromedp.Poll[chromedp.Void](`!document.querySelector('#toast.show') && document.getAnimations().every(a => a.playState !== 'running')`))
	buf, err := chromedp.Run(p.ctx, chromedp.CaptureScreenshot())
	if err != nil {
		p.t.Fatalf("screenshot %s: %v", name, err)
	}
	dir := filepath.Join("..", "..", "docs", "screenshots")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		p.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), buf, 0o644); err != nil {
		p.t.Fatal(err)
	}
}

// colorScheme emulates prefers-color-scheme ("" for the default).
func (p *page) colorScheme(scheme string) {
	p.t.Helper()
	params := emulation.SetEmulatedMediaParams{Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: scheme}}}
	if _, err := chromedp.Call(p.ctx, emulation.SetEmulatedMedia, params); err != nil {
		p.t.Fatal(err)
	}
}

// console collects what the page logs; uncaught exceptions, console.error calls and any
// Content-Security-Policy or Trusted Types violation fail the test.
// An exception also cancels the page's context, so that the test stops at once, not when a
// wait times out.
func watchConsole(t *testing.T, ctx context.Context, abort context.CancelFunc) func() {
	var mu sync.Mutex
	var bad []string
	done := make(chan struct{})
	cctx, stop := context.WithCancel(ctx)
	messages := chromedp.Console(cctx)
	go func() {
		defer close(done)
		for m, err := range messages {
			if err != nil {
				return
			}
			text := m.String()
			policy := strings.Contains(text, "Content Security Policy") || strings.Contains(text, "Trusted Type")
			if m.IsException() || policy || (m.Source == "" && m.Type == chromedp.ConsoleError) {
				mu.Lock()
				bad = append(bad, fmt.Sprintf("%s (%s:%d)", text, m.URL, m.Line+1))
				mu.Unlock()
				if m.IsException() {
					abort()
				}
			}
		}
	}()
	return func() {
		t.Helper()
		stop()
		<-done
		mu.Lock()
		defer mu.Unlock()
		for _, b := range bad {
			t.Errorf("page console: %s", b)
		}
	}
}

// logoServer is the customer's HTTPS logo host.
func logoServer(t *testing.T) *httptest.Server {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "image/svg+xml")
		fmt.Fprint(w, `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 96 96">`+
			`<rect width="96" height="96" rx="22" fill="#f97316"/>`+
			`<path d="M28 38h40l-4 34H32z" fill="#fff"/>`+
			`<path d="M38 40v-6a10 10 0 0 1 20 0v6" fill="none" stroke="#fff" stroke-width="5" stroke-linecap="round"/></svg>`)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestWebAuthenticator(t *testing.T) {
	browser := newBrowser(t)
	rc := newReceiver(t)
	logos := logoServer(t)
	s := startServer(t, "", "--rate-limit", "off", "--callback-allow-hosts", "127.0.0.1")
	rc.key.Store(s.key)
	if _, err := s.cli("app", "update", "1", "--name", "Acme Shop", "--callback-url", rc.srv.URL+"/authy/callback"); err != nil {
		t.Fatal(err)
	}
	alice := s.register(s.key, "alice@example.com", "2015550123")
	reg := s.post("/protected/json/sdk/registrations", url.Values{"authy_id": {fmt.Sprint(alice)}})
	if reg.status != 200 {
		t.Fatalf("sdk/registrations: %s", reg.raw)
	}
	regURL := reg.body["registration_url"].(string)
	if !strings.HasPrefix(regURL, s.url+"/authenticator/#register=tfr_") {
		t.Fatalf("registration_url %q", regURL)
	}
	if r := s.do("GET", "/authenticator/", "", nil); r.status != 200 {
		// The enrolment link itself is then dead: report it, and go on through index.html so
		// the rest of the flow is still checked.
		t.Errorf("GET /authenticator/ (the registration_url's page) answers %d %s: the server must route paths that end in a slash", r.status, r.raw)
		regURL = strings.Replace(regURL, "/authenticator/#", "/authenticator/index.html#", 1)
	}

	ctx, cancel := context.WithTimeout(browser, 3*time.Minute)
	defer cancel()
	p := &page{t: t, ctx: ctx, began: time.Now()}
	checkConsole := watchConsole(t, ctx, cancel)
	defer checkConsole()

	p.section("enrolment")
	// The enrolment link asks first, and takes the token out of the address bar.
	p.do(chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2), chromedp.EmulateMobile, chromedp.EmulatePortrait),
		chromedp.Navigate(regURL))
	p.visible("#confirm-dialog[open] #confirm-ok")
	if loc := p.eval(`location.href`); strings.Contains(loc, "tfr_") {
		t.Errorf("the registration token stays in the address bar: %s", loc)
	}
	p.screenshot("enrol")
	p.click("#confirm-ok")

	p.section("device code")
	// The device's code appears and the server accepts it.
	device := `#account-list li[data-kind="device"]`
	p.visible(device + ` .code[data-ready]`)
	if got := p.eval(`document.querySelector('` + device + ` .account-issuer').textContent`); got != "Acme Shop" {
		t.Errorf("device account named %q, want Acme Shop", got)
	}
	if got := p.eval(`document.querySelector('` + device + ` .account-label').textContent`); got != "alice@example.com" {
		t.Errorf("device account labelled %q, want alice@example.com", got)
	}
	// The code and what the page shows, read at once (a device's code changes every 10 s).
	both := strings.Fields(p.eval(`(b => b.dataset.code + ' ' + b.querySelector('.code-digits').textContent)(document.querySelector('` + device + ` .code'))`))
	code := both[0]
	if len(both) != 3 || len(code) != 7 || both[1]+both[2] != code {
		t.Fatalf("device code %q shown as %q", code, both[1:])
	}
	if r := s.get(fmt.Sprintf("/protected/json/verify/%s/%d", code, alice)); r.status != 200 {
		t.Fatalf("verify the code from the page: %d %s", r.status, r.raw)
	}
	st := s.get(fmt.Sprintf("/protected/json/users/%d/status", alice)).body["status"].(map[string]any)
	if st["registered"] != true || !strings.Contains(fmt.Sprint(st["devices"]), "web") {
		t.Fatalf("user status after enrolment: %v", st)
	}

	p.section("module checks")
	// The modules' own checks, in the browser that runs them.
	if fails := p.eval(moduleChecks); fails != "" {
		t.Errorf("module checks in the browser:\n%s", fails)
	}

	p.section("otpauth account")
	// An otpauth:// account, pasted: offline codes that match the Go implementation.
	p.click("#add-open")
	p.visible("#add-dialog[open] #add-input")
	const secret = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
	p.do(chromedp.SendKeys(chromedp.CSS("#add-input"), "otpauth://totp/GitHub:alice%40example.com?secret="+secret+"&issuer=GitHub"))
	p.click("#add-submit")
	totp := `#account-list li[data-kind="totp"]`
	p.visible(totp + ` .code[data-ready]`)
	seed, err := otp.DecodeSecret(secret)
	if err != nil {
		t.Fatal(err)
	}
	key := otp.TOTP{Secret: seed, Digits: 6, Period: 30}
	got := p.eval(`document.querySelector('` + totp + ` .code').dataset.code`)
	now := key.Step(time.Now())
	if got != key.At(now) && got != key.At(now-1) && got != key.At(now+1) {
		t.Fatalf("otpauth code %s, want %s", got, key.At(now))
	}
	if label := p.eval(`document.querySelector('` + totp + ` .account-label').textContent`); label != "alice@example.com" {
		t.Errorf("otpauth account label %q", label)
	}
	p.gone("#add-dialog[open]")
	p.visible(`#conn[data-state="live"]`) // the event stream is up
	p.screenshot("codes")

	p.section("approve")
	// A request appears live, with its details and logo; one tap approves it.
	uuid := s.createRequest(s.key, alice, url.Values{
		"message": {"Sign in to Acme Shop"}, "details[Location]": {"Paris, France"},
		"details[Browser]": {"Firefox on macOS"}, "details[Account]": {"alice@example.com"},
		"hidden_details[ip]": {"203.0.113.9"}, "logos[0][res]": {"default"}, "logos[0][url]": {logos.URL + "/acme.svg"},
		"seconds_to_expire": {"300"},
	})
	card := fmt.Sprintf(`#request-list li.request[data-uuid=%q]`, uuid)
	p.visible(card + " .approve")
	p.visible(card + " .request-logo")
	if msg := p.eval(`document.querySelector('` + card + ` .request-message').textContent`); msg != "Sign in to Acme Shop" {
		t.Errorf("request message %q", msg)
	}
	if details := p.eval(`document.querySelector('` + card + ` .request-details').textContent`); !strings.Contains(details, "Paris, France") || strings.Contains(details, "203.0.113.9") {
		t.Errorf("request details %q", details)
	}
	p.screenshot("request")
	if os.Getenv("TWOFOLD_SCREENSHOTS") == "1" {
		p.colorScheme("dark")
		p.screenshot("request-dark")
		p.colorScheme("")
	}
	p.click(card + " .approve")
	p.gone(card)
	if got := s.requestStatus(uuid); got["status"] != "approved" {
		t.Fatalf("after Approve: %v", got)
	}
	if cb := rc.next(t); cb["uuid"] != uuid || cb["status"] != "approved" {
		t.Fatalf("callback after Approve: %v", cb)
	}

	p.section("deny with a reason")
	// Deny, saying why.
	uuid = s.createRequest(s.key, alice, url.Values{"message": {"Sign in from a new device"}, "details[Location]": {"Lagos, Nigeria"}})
	card = fmt.Sprintf(`#request-list li.request[data-uuid=%q]`, uuid)
	p.visible(card + " .deny-reason")
	p.click(card + " .deny-reason")
	p.visible("#deny-dialog[open] #deny-confirm")
	p.screenshot("deny")
	p.click("#deny-confirm")
	p.gone(card)
	// The dialog's first reason is the one "I didn't request this" sends.
	if got := s.requestStatus(uuid); got["status"] != "denied" || got["reason"] != "not requested" {
		t.Fatalf("after Deny with a reason: %v", got)
	}
	cb := rc.next(t)
	tx, _ := cb["approval_request"].(map[string]any)["transaction"].(map[string]any)
	if cb["uuid"] != uuid || cb["status"] != "denied" || tx["reason"] != "not requested" {
		t.Fatalf("callback after Deny: %v", cb)
	}

	p.section("number matching")
	// Number matching: the page asks for the number the login page shows.
	created := s.post(fmt.Sprintf("/onetouch/json/users/%d/approval_requests", alice), url.Values{
		"message": {"Approve a payment of €42.00"}, "number_matching": {"true"}, "details[Merchant]": {"Acme Shop"},
	})
	ar := created.body["approval_request"].(map[string]any)
	uuid, number := ar["uuid"].(string), ar["number"].(string)
	card = fmt.Sprintf(`#request-list li.request[data-uuid=%q]`, uuid)
	p.visible(card + " .number-input")
	p.click(card + " .approve") // without the number: the page asks for it, nothing is sent
	p.visible(card + " .request-error")
	if got := s.requestStatus(uuid); got["status"] != "pending" {
		t.Fatalf("approving without a number sent an answer: %v", got)
	}
	p.do(chromedp.SendKeys(chromedp.CSS(card+" .number-input"), number))
	p.screenshot("request-number")
	p.click(card + " .approve")
	p.gone(card)
	if got := s.requestStatus(uuid); got["status"] != "approved" {
		t.Fatalf("after approving with the number: %v", got)
	}
	if cb := rc.next(t); cb["uuid"] != uuid || cb["status"] != "approved" {
		t.Fatalf("callback after number matching: %v", cb)
	}

	p.section("wrong number")
	// A wrong number asks again; a second wrong number denies the request, and the page says so.
	created = s.post(fmt.Sprintf("/onetouch/json/users/%d/approval_requests", alice), url.Values{
		"message": {"Sign in to Acme Shop"}, "number_matching": {"true"},
	})
	ar = created.body["approval_request"].(map[string]any)
	uuid = ar["uuid"].(string)
	wrong := fmt.Sprint((atoi(ar["number"].(string))+1)%90 + 10)
	card = fmt.Sprintf(`#request-list li.request[data-uuid=%q]`, uuid)
	p.visible(card + " .number-input")
	p.do(chromedp.SendKeys(chromedp.CSS(card+" .number-input"), wrong))
	p.click(card + " .approve")
	p.do(chromedp.Poll[chromedp.Void](`document.querySelector('` + card + ` .request-error').textContent.includes("doesn't match")`))
	if got := s.requestStatus(uuid); got["status"] != "pending" {
		t.Fatalf("after one wrong number: %v", got)
	}
	p.do(chromedp.SendKeys(chromedp.CSS(card+" .number-input"), wrong))
	p.click(card + " .approve")
	p.visible(card + `[data-state="mismatch"] .request-outcome`)
	p.gone(card)
	if got := s.requestStatus(uuid); got["status"] != "denied" {
		t.Fatalf("after a wrong number: %v", got)
	}
	if cb := rc.next(t); cb["uuid"] != uuid || cb["status"] != "denied" {
		t.Fatalf("callback after a wrong number: %v", cb)
	}

	p.section("authy:// link")
	// An Authy-style authy://account?token=JWT, pasted: the app's name (the JWT's iss) is shown
	// before the server checks the token, and the device registers for the customer's user.
	issued := time.Now()
	token, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"iss": "Acme Shop", "iat": issued.Unix(), "exp": issued.Add(5 * time.Minute).Unix(),
		"context": map[string]any{"custom_user_id": "web-user-7", "authy_app_id": 1},
	}).SignedString([]byte(s.key))
	if err != nil {
		t.Fatal(err)
	}
	p.click("#add-open")
	p.visible("#add-dialog[open] #add-input")
	p.do(chromedp.SendKeys(chromedp.CSS("#add-input"), "authy://account?token="+token))
	p.click("#add-submit")
	p.visible("#confirm-dialog[open] #confirm-ok")
	if title := p.eval(`document.querySelector('#confirm-title').textContent`); title != "Add Acme Shop to this browser?" {
		t.Errorf("confirmation for an authy:// link: %q", title)
	}
	p.screenshot("enrol-authy-link")
	p.click("#confirm-ok")
	p.gone("#confirm-dialog[open]")
	p.visible(`#account-list li[data-kind="device"]:nth-child(3) .code[data-ready]`)
	// A user registered by QR code has no email: the account is the site's id for them.
	if got := p.eval(`document.querySelector('#account-list li[data-kind="device"]:nth-child(3) .account-label').textContent`); got != "web-user-7" {
		t.Errorf("the authy:// link's account is labelled %q, want web-user-7", got)
	}
	status := s.get("/protected/json/registrations/status?custom_user_id=web-user-7").body["registration"].(map[string]any)
	if status["status"] != "completed" {
		t.Fatalf("registration status after the authy:// link: %v", status)
	}

	p.section("rename and remove")
	third := `#account-list li[data-kind="device"]:nth-child(3)`
	p.click(third + " .more")
	p.visible("#account-dialog[open] #account-name")
	p.do(chromedp.Evaluate[chromedp.Void](`document.querySelector('#account-name').select()`),
		chromedp.SendKeys(chromedp.CSS("#account-name"), "Acme Shop (work)\n"))
	p.do(chromedp.Poll[chromedp.Void](`document.querySelector('` + third + ` .account-issuer').textContent === 'Acme Shop (work)'`))
	p.screenshot("account")
	p.click("#account-remove")
	p.visible("#account-remove-confirm")
	p.click("#account-remove") // "Remove for good"
	p.gone("#account-dialog[open]")
	p.gone(third)
	workID := int64(status["authy_id"].(float64))
	if st := s.get(fmt.Sprintf("/protected/json/users/%d/status", workID)).body["status"].(map[string]any); st["registered"] != false {
		t.Fatalf("the removed device is still registered: %v", st)
	}

	p.section("polling fallback")
	// Without the event stream (as behind a proxy that cuts it), requests still arrive: the
	// page falls back to polling the pending list.
	blockCtx, unblock := context.WithCancel(ctx)
	paused := chromedp.Events(blockCtx, fetch.RequestPaused)
	go func() {
		for ev, err := range paused {
			if err != nil {
				return
			}
			chromedp.Call(ctx, fetch.FailRequest, fetch.FailRequestParams{RequestID: ev.RequestID, ErrorReason: network.ErrorReasonConnectionRefused})
		}
	}()
	if _, err := chromedp.Call(ctx, fetch.Enable, fetch.EnableParams{Patterns: []*fetch.RequestPattern{{URLPattern: "*/device/v1/events*"}}}); err != nil {
		t.Fatal(err)
	}
	p.do(chromedp.Reload())
	p.visible(`#conn[data-state="polling"]`)
	uuid = s.createRequest(s.key, alice, url.Values{"message": {"Sign in while the stream is down"}})
	card = fmt.Sprintf(`#request-list li.request[data-uuid=%q]`, uuid)
	p.visible(card + " .approve")
	p.click(card + " .approve")
	p.gone(card)
	if got := s.requestStatus(uuid); got["status"] != "approved" {
		t.Fatalf("approving a polled request: %v", got)
	}
	if cb := rc.next(t); cb["uuid"] != uuid || cb["status"] != "approved" {
		t.Fatalf("callback for a polled request: %v", cb)
	}
	if _, err := chromedp.Call(ctx, fetch.Disable, cdp.Empty{}); err != nil {
		t.Fatal(err)
	}
	unblock()

	p.section("offline")
	// Offline: with the server gone, the service worker serves the app and the codes still come.
	p.do(chromedp.Evaluate[chromedp.Void](`navigator.serviceWorker.ready.then(() => undefined)`, chromedp.EvalAwaitPromise))
	addr := strings.TrimPrefix(s.url, "http://")
	s.stop()
	p.do(chromedp.Reload())
	p.visible(device + ` .code[data-ready]`)
	p.visible(totp + ` .code[data-ready]`)
	p.visible(`#conn[data-state="offline"]`)
	p.screenshot("offline")

	p.section("reconnection")
	// The server comes back: the page reconnects by itself, and requests flow again.
	s = startServer(t, s.dataDir, "--rate-limit", "off", "--callback-allow-hosts", "127.0.0.1", "--addr", addr)
	uuid = s.createRequest(s.key, alice, url.Values{"message": {"Sign in after the outage"}})
	card = fmt.Sprintf(`#request-list li.request[data-uuid=%q]`, uuid)
	p.visible(card + " .approve")
	p.visible(`#conn[data-state="live"]`)
	p.click(card + " .approve")
	p.gone(card)
	if got := s.requestStatus(uuid); got["status"] != "approved" {
		t.Fatalf("approving after the outage: %v", got)
	}
	if cb := rc.next(t); cb["uuid"] != uuid || cb["status"] != "approved" {
		t.Fatalf("callback after the outage: %v", cb)
	}
}

// TestWebAuthenticatorFiles checks how the server serves the app: security headers, content
// types, revalidation, and nothing outside the app's files.
func TestWebAuthenticatorFiles(t *testing.T) {
	s := startServer(t, "")
	get := func(path string, header http.Header) *http.Response {
		t.Helper()
		req, _ := http.NewRequest("GET", s.url+path, nil)
		for k, v := range header {
			req.Header[k] = v
		}
		res, err := s.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { res.Body.Close() })
		return res
	}
	// The page of the registration_url ends in a slash. A server that refuses such paths
	// breaks every enrolment link: say so once, and check the rest.
	slashes := true
	if res := get("/authenticator/", nil); res.StatusCode != 200 {
		slashes = false
		t.Errorf("GET /authenticator/ answers %d %s, so registration_url links are dead: the server must route paths that end in a slash", res.StatusCode, res.Header.Get("Content-Type"))
	}
	for path, ctype := range map[string]string{
		"/authenticator/":                     "text/html; charset=utf-8",
		"/authenticator/index.html":           "text/html; charset=utf-8",
		"/authenticator/app.js":               "text/javascript; charset=utf-8",
		"/authenticator/sw.js":                "text/javascript; charset=utf-8",
		"/authenticator/style.css":            "text/css; charset=utf-8",
		"/authenticator/manifest.webmanifest": "application/manifest+json",
		"/authenticator/icon.svg":             "image/svg+xml",
		"/authenticator/icon-192.png":         "image/png",
	} {
		if !slashes && strings.HasSuffix(path, "/") {
			continue
		}
		res := get(path, nil)
		h := res.Header
		if res.StatusCode != 200 || h.Get("Content-Type") != ctype {
			t.Errorf("%s: %d %q, want 200 %q", path, res.StatusCode, h.Get("Content-Type"), ctype)
		}
		csp := h.Get("Content-Security-Policy")
		for _, want := range []string{"default-src 'self'", "script-src 'self'", "img-src 'self' https: data:", "connect-src 'self'", "frame-ancestors 'none'"} {
			if !strings.Contains(csp, want) {
				t.Errorf("%s: CSP %q lacks %q", path, csp, want)
			}
		}
		if strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "unsafe-eval") {
			t.Errorf("%s: CSP allows inline code: %q", path, csp)
		}
		if h.Get("X-Content-Type-Options") != "nosniff" || h.Get("Referrer-Policy") != "no-referrer" || h.Get("Cache-Control") != "no-cache" || h.Get("ETag") == "" {
			t.Errorf("%s: headers %v", path, h)
		}
		// Unchanged files revalidate with a 304.
		if again := get(path, http.Header{"If-None-Match": {h.Get("ETag")}}); again.StatusCode != http.StatusNotModified {
			t.Errorf("%s with its ETag: %d, want 304", path, again.StatusCode)
		}
	}

	var manifest struct {
		Name       string `json:"name"`
		StartURL   string `json:"start_url"`
		Display    string `json:"display"`
		ThemeColor string `json:"theme_color"`
		Icons      []struct{ Src, Sizes, Type, Purpose string }
	}
	res := get("/authenticator/manifest.webmanifest", nil)
	if err := json.NewDecoder(res.Body).Decode(&manifest); err != nil {
		t.Fatal(err)
	}
	start, _ := url.Parse(s.url + "/authenticator/manifest.webmanifest")
	startURL, _ := start.Parse(manifest.StartURL)
	if manifest.Name == "" || !strings.HasPrefix(startURL.Path, "/authenticator/") || manifest.Display != "standalone" || manifest.ThemeColor == "" {
		t.Errorf("manifest: %+v", manifest)
	}
	for _, icon := range manifest.Icons {
		r := get("/authenticator/"+icon.Src, nil)
		if r.StatusCode != 200 || r.Header.Get("Content-Type") != icon.Type {
			t.Errorf("manifest icon %s: %d %s", icon.Src, r.StatusCode, r.Header.Get("Content-Type"))
		}
		if icon.Type == "image/png" {
			img, err := png.Decode(r.Body)
			if err != nil || fmt.Sprintf("%dx%d", img.Bounds().Dx(), img.Bounds().Dy()) != icon.Sizes {
				t.Errorf("manifest icon %s: %v, want %s", icon.Src, err, icon.Sizes)
			}
		}
	}

	sw := s.do("GET", "/authenticator/sw.js", "", nil).raw
	if strings.Contains(sw, "__TWOFOLD_VERSION__") || !strings.Contains(sw, "const VERSION = '") {
		t.Errorf("sw.js is not stamped with a version")
	}
	for _, path := range []string{"/authenticator/nope.js", "/authenticator/authenticator/index.html", "/authenticator/icons/"} {
		if !slashes && strings.HasSuffix(path, "/") {
			continue
		}
		if r := get(path, nil); r.StatusCode != 404 || r.Header.Get("Content-Security-Policy") == "" {
			t.Errorf("%s: %d, want a 404 with the security headers", path, r.StatusCode)
		}
	}
}

// moduleChecks runs the app's modules against known answers in the page: RFC 4226 and RFC 6238
// vectors, base32, otpauth:// parsing, link classification, the signed message, and the
// event-stream parser fed in awkward pieces. It returns the failures, one a line.
const moduleChecks = `(async () => {
  const fail = [];
  const eq = (name, got, want) => {
    if (JSON.stringify(got) !== JSON.stringify(want)) fail.push(name + ': got ' + JSON.stringify(got) + ', want ' + JSON.stringify(want));
  };
  const load = (name) => import(new URL(name, location.href).href);
  const totp = await load('totp.js');
  const links = await load('links.js');
  const api = await load('api.js');
  const { SSEParser } = await load('events.js');
  const bytes = (s) => new TextEncoder().encode(s);

  const k = await totp.importSeed(bytes('12345678901234567890'), 'SHA-1');
  const hotps = [];
  for (let i = 0; i < 10; i++) hotps.push(await totp.hotp(k, i, 6));
  eq('RFC 4226', hotps, ['755224', '287082', '359152', '969429', '338314', '254676', '287922', '162583', '399871', '520489']);
  const seeds = {
    'SHA-1': ['12345678901234567890', '94287082', '65353130'],
    'SHA-256': ['12345678901234567890123456789012', '46119246', '77737706'],
    'SHA-512': ['1234567890123456789012345678901234567890123456789012345678901234', '90693936', '47863826'],
  };
  for (const [alg, [seed, at59, atLate]] of Object.entries(seeds)) {
    const key = await totp.importSeed(bytes(seed), alg);
    eq('RFC 6238 ' + alg, [await totp.hotp(key, totp.timeStep(59000, 30), 8), await totp.hotp(key, totp.timeStep(20000000000000, 30), 8)], [at59, atLate]);
  }
  eq('base32', Array.from(totp.base32Decode('mzxw6ytb oi======')), Array.from(bytes('foobar')));
  eq('groups', ['123456', '1234567', '12345678'].map(totp.groupCode), ['123 456', '123 4567', '1234 5678']);
  // Which step's code is shown, and for how long: 10-second steps with the server's window of
  // 1 show the code of step 2j+1 for 20 s from 5 s into step 2j; without a window, each step's own.
  eq('display 10 s, window 1', [4999, 5000, 24999, 25000].map((ms) => totp.display(ms, 10, 1)),
    [{ step: -1, length: 20000, left: 1 }, { step: 1, length: 20000, left: 20000 }, { step: 1, length: 20000, left: 1 }, { step: 3, length: 20000, left: 20000 }]);
  eq('display 30 s, window 1', [0, 29999, 30000].map((ms) => totp.display(ms, 30, 1)),
    [{ step: 0, length: 30000, left: 30000 }, { step: 0, length: 30000, left: 1 }, { step: 1, length: 30000, left: 30000 }]);
  eq('display 10 s, window 0', [0, 9999, 10000].map((ms) => totp.display(ms, 10, 0).step), [0, 0, 1]);
  eq('otpauth', totp.parseOtpauth('otpauth://totp/ACME%20Co:john.doe@email.com?secret=HXDMVJECJJWSRB3HWIZR4IFUGFTMXBOZ&issuer=ACME%20Co&algorithm=SHA256&digits=8&period=60'),
    { issuer: 'ACME Co', account: 'john.doe@email.com', secret: 'HXDMVJECJJWSRB3HWIZR4IFUGFTMXBOZ', digits: 8, period: 60, algorithm: 'SHA-256' });
  for (const bad of ['otpauth://hotp/x?secret=HXDMVJECJJWSRB3HWIZR4IFUGFTMXBOZ&counter=1', 'otpauth://totp/x', 'otpauth://totp/x?secret=AAAA',
    'otpauth://totp/x?secret=HXDMVJECJJWSRB3HWIZR4IFUGFTMXBOZ&digits=4', 'otpauth://totp/x?secret=HXDMVJECJJWSRB3HWIZR4IFUGFTMXBO1',
    'otpauth://totp/x?secret=HXDMVJECJJWSRB3HWIZR4IFUGFTMXBOZ&algorithm=MD5']) {
    try { totp.parseOtpauth(bad); fail.push('otpauth accepted ' + bad); } catch {}
  }

  const tfr = 'tfr_' + 'A'.repeat(32);
  eq('link', links.classify(location.origin + '/authenticator/#register=' + tfr), { kind: 'register', token: tfr, appHint: '' });
  eq('bare token', links.classify(' ' + tfr + ' ').token, tfr);
  eq('jwt', links.classify('authy://account?token=eyJhbGciOiJIUzI1NiJ9.eyJpc3MiOiJTaG9wIn0.sig'), { kind: 'register', jwt: 'eyJhbGciOiJIUzI1NiJ9.eyJpc3MiOiJTaG9wIn0.sig', appHint: 'Shop' });
  eq('elsewhere', links.classify('https://other.example/authenticator/#register=' + tfr).kind, 'elsewhere');
  eq('otpauth link', links.classify('otpauth://totp/A:b?secret=JBSWY3DPEHPK3PXP').kind, 'otpauth');
  for (const bad of ['', 'hello', 'https://x.example/', 'authy://account?token=nope', 'javascript:alert(1)//#register=' + tfr,
    location.origin + '/authenticator/#register=tfr_<b>x</b>']) {
    try { links.classify(bad); fail.push('classify accepted ' + bad); } catch {}
  }

  eq('answer message', api.answerMessage('u-1', 'denied', 1700000000, '', 'I did not request this'),
    'twofold-onetouch-v1\nu-1\ndenied\n1700000000\n\nI did not request this');

  const requests = await load('requests.js');
  eq('not requested', requests.NOT_REQUESTED, 'not requested');
  const member = (name, status, you = false) => ({ name, status, you });
  eq('group lines', [
    requests.groupLine({ status: 'pending', quorum: 3, size: 5, requester_name: '', approvers: [member('Ana', 'pending', true)] }),
    requests.groupLine({ status: 'pending', quorum: 2, size: 4, requester_name: 'Dan',
      approvers: [member('Ana', 'pending', true), member('Bob', 'approved'), member('Cy', 'denied'), member('Eve', 'denied')] }),
    requests.groupLine({ status: 'approved', quorum: 3, size: 3, requester_name: '',
      approvers: [member('Ana', 'approved', true), member('Bob', 'approved'), member('Approver 3', 'approved')] }),
  ], ['3 of 5 needed', '2 of 4 needed · approved by Bob · denied by Cy and Eve · asked by Dan', 'approved by you, Bob, and Approver 3']);

  const events = [];
  let retry = 0;
  const parser = new SSEParser((e) => events.push(e), { onRetry: (ms) => { retry = ms; } });
  const text = 'retry: 2000\r\n\r\n: keep-alive\n\nid: 7\nevent: approval_request\ndata: {"a":\ndata: 1}\n\r\n' +
    'event: approval_request_update\r\ndata:x\r\r\ndata: never finished';
  for (let i = 0; i < text.length; i += 3) parser.push(text.slice(i, i + 3));
  eq('sse', events, [{ type: 'approval_request', data: '{"a":\n1}', lastEventId: '7' }, { type: 'approval_request_update', data: 'x', lastEventId: '7' }]);
  eq('sse retry', retry, 2000);
  return fail.join('\n');
})()`
