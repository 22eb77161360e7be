package main

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/twofold-auth/twofold/internal/callback"
	"github.com/twofold-auth/twofold/internal/otp"
	"github.com/twofold-auth/twofold/internal/testbin"
)

// cbStates returns the state of each callback row of the table sel, by request uuid.
func (c *consoleEnv) cbStates(sel string) map[string]string {
	c.t.Helper()
	out := map[string]string{}
	raw := c.p.eval(`JSON.stringify(Object.fromEntries([...document.querySelectorAll(` + strconv.Quote(sel+` tr[data-request]`) +
		`)].map(r => [r.dataset.request, r.querySelector('.cb-state').dataset.state])))`)
	if err := json.Unmarshal([]byte(raw), &out); err != nil {
		c.t.Fatal(err)
	}
	return out
}

// newApp creates an application with the command line, and returns its id and key.
func (c *consoleEnv) newApp(name string) (string, string) {
	c.t.Helper()
	var a appJSON
	c.s.cliJSON(&a, "app", "create", "--name", name)
	return strconv.FormatInt(a.AppID, 10), a.APIKey
}

// TestConsoleCallbackStates follows callbacks in the console as they fail, wait for a retry,
// are held while callbacks are paused, and are delivered once re-enabled; before re-enabling,
// a test callback shows whether the endpoint works. The retry wait is an hour (the backoff),
// so a callback held while paused shows no retry time, and re-enabling delivers at once.
func TestConsoleCallbackStates(t *testing.T) {
	seen := make(attempts, 64)
	c := newConsoleEnv(t, "ana@example.com", func(e *Env) { e.OnCallback = func(a callback.Attempt) { seen <- a } },
		"--callback-backoff", "1h")
	s, p := c.s, c.p
	id, key := c.newApp("Shop")
	appPage := "/console/apps/" + id
	h := newHook(t)
	h.key.Store(key)
	h.failWith.Store(http.StatusServiceUnavailable)
	if out, err := s.cli("app", "update", id, "--callback-url", h.srv.URL+"/authy/callback"); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	alice := s.register(key, "alice@example.com", "2015550123")
	phone := s.newDevice(key, alice)
	answer := func() string {
		uuid := s.createRequest(key, alice, url.Values{"message": {"Sign in"}})
		if r := phone.answer(s, uuid, "approved", "", ""); r.status != 200 {
			t.Fatalf("answer: %s", r.raw)
		}
		return uuid
	}
	c.signIn()

	p.section("a failed callback waits for its retry")
	first := answer()
	if a := seen.next(t); a.OK || a.Disabled {
		t.Fatalf("first attempt: %+v", a)
	}
	p.do(chromedp.Navigate(s.url + appPage))
	p.visible(`#recent-callbacks .cb-state[data-state="retrying"]`)
	next := p.eval(`document.querySelector('#recent-callbacks .cb-state[data-state="retrying"] time').getAttribute('datetime')`)
	if at, err := time.Parse(time.RFC3339, next); err != nil || at.Before(time.Now().Add(50*time.Minute)) {
		t.Fatalf("the next try is shown at %q, want in about an hour", next)
	}
	if got := c.text(`#recent-callbacks .cb-state[data-state="retrying"]`); !strings.Contains(got, "failed next try") {
		t.Errorf("a retrying callback reads %q", got)
	}

	p.section("paused: the callbacks are held")
	held := []string{first, answer(), answer()}
	for i := 2; i <= 3; i++ {
		if a := seen.next(t); a.OK || a.Disabled != (i == 3) {
			t.Fatalf("attempt %d: %+v", i, a)
		}
	}
	for _, page := range []struct{ path, table string }{{appPage, "#recent-callbacks"}, {"/console/callbacks", "#callback-list"}} {
		p.do(chromedp.Navigate(s.url + page.path))
		p.visible(page.table)
		states := c.cbStates(page.table)
		for _, uuid := range held {
			if states[uuid] != "held" {
				t.Errorf("%s: callback %s is %q, want held (all: %v)", page.path, uuid, states[uuid], states)
			}
		}
		if strings.Contains(c.text(page.table), "next try") || strings.Contains(c.text(page.table), "pending") {
			t.Errorf("%s: a held callback shows a next try or 'pending': %s", page.path, c.text(page.table))
		}
	}

	p.section("a test callback, while the endpoint still fails")
	c.check("application with a failed test callback", func() {
		p.do(chromedp.Navigate(s.url + appPage))
		p.click("#test-callback")
		p.visible(`#callback-test[data-ok="false"]`)
	})
	if got := c.text("#callback-test-error"); got != "HTTP 503" {
		t.Errorf("the failed test says %q", got)
	}
	if n := len(seen); n != 0 {
		t.Fatalf("a test callback counted as %d deliveries", n)
	}

	p.section("a test callback to the fixed endpoint")
	h.failWith.Store(0)
	c.check("application with a delivered test callback", func() {
		p.do(chromedp.Navigate(s.url + appPage))
		p.click("#test-callback")
		p.visible(`#callback-test[data-ok="true"]`)
	})
	for range 2 { // the endpoint checked each signature
		if body := <-h.got; body["status"] != "test" {
			t.Fatalf("test callback: %v", body)
		}
	}
	p.visible(`#callback-health[data-health="disabled"]`) // a test does not re-enable
	p.eval(`document.querySelector('#callback-health').scrollIntoView(), ''`)
	p.screenshot("console-callbacks-disabled")

	p.section("re-enabled: the held callbacks go out at once")
	p.click("#enable-callbacks")
	p.visible(`#callback-health[data-health="healthy"]`)
	for range held {
		if a := seen.next(t); !a.OK { // within the wait, not an hour later
			t.Fatalf("after re-enabling: %+v", a)
		}
	}
	p.do(chromedp.Navigate(s.url + "/console/callbacks"))
	p.visible("#callback-list")
	for uuid, state := range c.cbStates("#callback-list") {
		if state != "delivered" {
			t.Errorf("callback %s is %s after re-enabling", uuid, state)
		}
	}
	p.screenshot("console-callbacks")
}

// TestConsoleSettingsErrors types several wrong values and saves once: every error is shown
// beside its field; empty fields show the server's limits.
func TestConsoleSettingsErrors(t *testing.T) {
	c := newConsoleEnv(t, "ana@example.com", nil, "--limit-sends", "3/5m", "--limit-app-sends", "off")
	p := c.p
	id, _ := c.newApp("Shop")
	c.signIn()
	p.do(chromedp.Navigate(c.s.url + "/console/apps/" + id + "/settings"))
	p.visible("#save-settings")
	for field, want := range map[string]string{"limit_sends": "server: 3/5m", "limit_app_sends": "server: off", "limit_failures": "server: 10/15m"} {
		if got := p.eval(`document.querySelector('#` + field + `').placeholder`); got != want {
			t.Errorf("%s shows %q where empty, want %q", field, got, want)
		}
	}
	bad := map[string]string{"token_length": "11", "totp_period": "5", "totp_window": "many", "callback_url": "ftp://example.com/cb",
		"contact_email": "not an email", "limit_sends": "lots"}
	c.check("settings with errors", func() {
		p.do(chromedp.Navigate(c.s.url + "/console/apps/" + id + "/settings"))
		p.visible("#save-settings")
		for field, v := range bad {
			c.typeInto("#"+field, v)
		}
		p.click("#save-settings")
		p.visible("#settings-error")
	})
	for field := range bad {
		if got := p.eval(`document.querySelector('#` + field + `').getAttribute('aria-invalid') + ' ' + (document.querySelector('#` + field + `-error') || {}).textContent`); !strings.HasPrefix(got, "true ") || len(got) < 10 {
			t.Errorf("%s: %q, want its error beside it", field, got)
		}
	}
	if got := c.text("#settings-error"); got != "Not saved: 6 settings need fixing, each shown beside its field." {
		t.Errorf("the form says %q", got)
	}
	p.screenshot("console-settings")
}

// TestConsoleEnrolmentQR enrols an operator again with the printed link: the page it opens
// shows a QR code that an authenticator app reads as the printed otpauth:// URI, and its codes
// sign in.
func TestConsoleEnrolmentQR(t *testing.T) {
	c := newConsoleEnv(t, "ana@example.com", nil)
	p := c.p
	addr := strings.TrimPrefix(c.s.url, "http://")
	out, err := c.s.cli("admin", "enrol", c.email, "--addr", addr)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	link := regexp.MustCompile(`http://\S+/console/enrol/[0-9a-f]{48}`).FindString(out)
	uri := regexp.MustCompile(`otpauth://totp/\S+`).FindString(out)
	if link == "" || uri == "" || !strings.HasPrefix(link, c.s.url) {
		t.Fatalf("the enrolment printed:\n%s", out)
	}
	c.check("enrolment QR code", func() {
		p.do(chromedp.Navigate(link))
		p.visible("#enrol-qr")
	})
	p.screenshot("console-enrol")
	src := p.eval(`document.querySelector('#enrol-qr').src`)
	raw, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(src, "data:image/png;base64,"))
	if err != nil {
		t.Fatal(err)
	}
	png := filepath.Join(t.TempDir(), "qr.png")
	if err := os.WriteFile(png, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	if got, err := decodeQR(png); err != nil || got != uri {
		t.Fatalf("the QR code reads %q, %v; want %s", got, err, uri)
	}
	key, err := otp.ParseURI(uri)
	if err != nil {
		t.Fatal(err)
	}
	c.op.TOTP = key.TOTP // the new seed replaced the first
	p.click("#enrol-signin")
	p.visible("#email") // the sign-in page, before signIn opens it again
	c.signIn()
}

// TestConsoleStartPanel runs the first call a new application's pages show, as an operator
// would paste it: with the key shown once, and on the server with the command that reads it.
func TestConsoleStartPanel(t *testing.T) {
	bin := testbin.Twofold(t)
	c := newConsoleEnv(t, "ana@example.com", nil)
	p := c.p
	c.signIn()
	run := func(script string) map[string]any { // the application in the answer of app/details
		t.Helper()
		cmd := exec.Command("sh", "-c", script)
		cmd.Env = append(os.Environ(), "PATH="+filepath.Dir(bin)+":"+os.Getenv("PATH"), "TWOFOLD_DATA_DIR="+c.s.dataDir)
		out, err := cmd.Output()
		var details struct {
			App map[string]any `json:"app"`
		}
		if err != nil || json.Unmarshal(out, &details) != nil || details.App == nil {
			t.Fatalf("running %s: %v\n%s", script, err, out)
		}
		return details.App
	}
	c.check("new application's key", func() {
		p.do(chromedp.Navigate(c.s.url + "/console/apps/new"))
		p.visible("#app-name")
		c.typeInto("#app-name", "Checkout")
		p.click("#create-app")
		p.visible("#first-call")
	})
	p.screenshot("console-app-key")
	if got := run(c.p.eval(`document.querySelector('#first-call').textContent`)); got["name"] != "Checkout" {
		t.Fatalf("the first call on the key's page answered %v", got)
	}
	p.click("#key-done")
	p.visible("#app-id") // the application's page (the key's page has a first call too)
	script := c.p.eval(`document.querySelector('#first-call').textContent`)
	if !strings.Contains(script, "twofold app show "+c.text("#app-id")+" --show-key") {
		t.Fatalf("the application's page fetches another key: %s", script)
	}
	if got := run(script); got["name"] != "Checkout" {
		t.Fatalf("the first call on the application's page answered %v", got)
	}
	if base := c.text("#api-base"); base != c.s.url {
		t.Errorf("API base URL %q, want %s", base, c.s.url)
	}
}
