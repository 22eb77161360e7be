package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/twofold-auth/twofold/client"
	"github.com/twofold-auth/twofold/internal/browsertest"
	"github.com/twofold-auth/twofold/internal/otp"
	"github.com/twofold-auth/twofold/internal/testbin"
)

// The end-to-end test runs the real parts: the twofold binary (built here) as a subprocess, this
// sample's handler in process, Debian's chromium driven by chromedp as the user's browser, and
// `twofold device` as the user's authenticator app.

// lockedBuffer collects a log that goroutines write to; the test prints it when it fails.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// twofoldServer is `twofold serve` running as a subprocess on a fresh data directory.
type twofoldServer struct {
	t       *testing.T
	bin     string
	dataDir string
	url     string
	key     string
	log     *lockedBuffer
}

func startTwofold(t *testing.T, bin string) *twofoldServer {
	t.Helper()
	s := &twofoldServer{t: t, bin: bin, dataDir: t.TempDir(), log: &lockedBuffer{}}
	// The sample listens on loopback: its callbacks must be allowed there, as an operator would.
	cmd := exec.Command(bin, "serve", "--addr", "127.0.0.1:0", "--data-dir", s.dataDir, "--callback-allow-hosts", "127.0.0.1")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	addr := make(chan string, 1)
	go func() {
		listening := regexp.MustCompile(`twofold listening.* addr=(http://\S+)`)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(s.log, line)
			if m := listening.FindStringSubmatch(line); m != nil {
				select {
				case addr <- m[1]:
				default:
				}
			}
		}
		exited <- cmd.Wait()
	}()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(20 * time.Second):
			cmd.Process.Kill()
			<-exited
			t.Errorf("twofold did not stop on SIGTERM")
		}
		if t.Failed() {
			t.Logf("twofold's log:\n%s", s.log.String())
		}
	})
	select {
	case s.url = <-addr:
	case err := <-exited:
		t.Fatalf("twofold serve exited: %v\n%s", err, s.log.String())
	case <-time.After(60 * time.Second):
		t.Fatalf("twofold serve did not say where it listens:\n%s", s.log.String())
	}
	var app struct {
		APIKey string `json:"api_key"`
	}
	s.cliJSON(&app, "app", "show", "1", "--show-key", "--json", "--data-dir", s.dataDir)
	if app.APIKey == "" {
		t.Fatal("twofold app show printed no API key")
	}
	s.key = app.APIKey
	return s
}

// cli runs the twofold binary with args (and stdin, when not empty), and returns its stdout.
func (s *twofoldServer) cli(stdin string, env []string, args ...string) string {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, s.bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		s.t.Fatalf("twofold %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String()
}

func (s *twofoldServer) cliJSON(v any, args ...string) {
	s.t.Helper()
	out := s.cli("", nil, args...)
	if err := json.Unmarshal([]byte(out), v); err != nil {
		s.t.Fatalf("twofold %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// authenticator is `twofold device` with its own vault: the user's phone.
type authenticator struct {
	tf    *twofoldServer
	vault string
}

func (a *authenticator) run(stdin string, args ...string) string {
	a.tf.t.Helper()
	args = append([]string{"device"}, args...)
	return a.tf.cli(stdin, []string{"TWOFOLD_VAULT_PASSPHRASE=correct horse battery staple", "TWOFOLD_VAULT=" + a.vault}, args...)
}

// tab is the browser tab, with helpers that fail the test.
type tab struct {
	t   *testing.T
	ctx context.Context
}

// newTab starts chromium (browsertest.Start) and emulates a phone.
func newTab(t *testing.T) *tab {
	t.Helper()
	ctx := browsertest.Start(t)
	p := &tab{t: t, ctx: ctx}
	p.watchConsole()
	p.do(chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2), chromedp.EmulateMobile, chromedp.EmulatePortrait))
	return p
}

// watchConsole fails the test on an uncaught exception or a Content-Security-Policy violation.
func (p *tab) watchConsole() {
	t := p.t
	var mu sync.Mutex
	var bad []string
	ctx, stop := context.WithCancel(p.ctx)
	done := make(chan struct{})
	messages := chromedp.Console(ctx)
	go func() {
		defer close(done)
		for m, err := range messages {
			if err != nil {
				return
			}
			if text := m.String(); m.IsException() || strings.Contains(text, "Content Security Policy") {
				mu.Lock()
				bad = append(bad, fmt.Sprintf("%s (%s:%d)", text, m.URL, m.Line+1))
				mu.Unlock()
			}
		}
	}()
	t.Cleanup(func() {
		stop()
		<-done
		mu.Lock()
		defer mu.Unlock()
		for _, b := range bad {
			t.Errorf("page console: %s", b)
		}
	})
}

// do runs actions, each wait bounded so that a broken step fails rather than hangs.
func (p *tab) do(actions ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 45*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		loc, _ := chromedp.Run(p.ctx, chromedp.Location())
		body, _ := chromedp.Run(p.ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ''`))
		p.t.Fatalf("browser at %s: %v\npage text:\n%s", loc, err, body)
	}
}

func (p *tab) eval(js string) string {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 45*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[string](js, chromedp.EvalAwaitPromise))
	if err != nil {
		p.t.Fatalf("browser: evaluating %s: %v", js, err)
	}
	return v
}

// at waits for the page whose heading is marked data-page=name, and returns the heading.
func (p *tab) at(name string) string {
	p.t.Helper()
	return p.text(fmt.Sprintf(`h1[data-page=%q]`, name))
}

// text waits for the element sel and returns its text, in one evaluation in the page, so a
// navigation between finding the element and reading it cannot make it vanish.
func (p *tab) text(sel string) string {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 45*time.Second)
	defer cancel()
	js := fmt.Sprintf(`(() => { const e = document.querySelector(%q); return e && e.offsetParent !== null ? e.textContent : null })()`, sel)
	for {
		got, err := chromedp.Run(ctx, chromedp.Poll[string](js, chromedp.WithPollingTimeout(40*time.Second)))
		if err == nil {
			return got
		}
		// A navigation ends the page the poll ran in: poll again in the new one.
		if ctx.Err() != nil || !strings.Contains(err.Error(), "navigated") && !strings.Contains(err.Error(), "context") {
			p.t.Fatalf("browser: waiting for %s: %v", sel, err)
		}
	}
}

func (p *tab) fill(fields ...string) {
	p.t.Helper()
	for i := 0; i+1 < len(fields); i += 2 {
		p.eval(fmt.Sprintf(`document.querySelector(%q).value = ''`, fields[i]))
		p.do(chromedp.SendKeys(chromedp.CSS(fields[i]), fields[i+1]))
	}
}

func (p *tab) click(sel string) { p.t.Helper(); p.do(chromedp.Click(chromedp.CSS(sel))) }

// screenshot saves the viewport as docs/screenshots/login-name.png, only with
// TWOFOLD_SCREENSHOTS=1, so that ordinary runs leave the tree alone.
func (p *tab) screenshot(name string) {
	p.t.Helper()
	if os.Getenv("TWOFOLD_SCREENSHOTS") != "1" {
		return
	}
	// Wait for the images and the style sheet.
	p.do(chromedp.Poll[chromedp.Void](`document.readyState === 'complete' && [...document.images].every(i => i.complete)`))
	buf, err := chromedp.Run(p.ctx, chromedp.CaptureScreenshot())
	if err != nil {
		p.t.Fatalf("screenshot %s: %v", name, err)
	}
	dir := filepath.Join("..", "..", "docs", "screenshots")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		p.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "login-"+name+".png"), buf, 0o644); err != nil {
		p.t.Fatal(err)
	}
}

// importedUsers registers users through the Authy API (users/new), as importing them from Authy
// leaves them: a phone, an authy_id, and no authenticator; with totp, the user also gets a TOTP
// authenticator (users/{id}/secret), as one whose seed Authy exported does. It returns the sample's
// seed file (--seed-users) with their authy_ids, as the application's user table holds them after
// the move, and each user's TOTP key when they have one.
func importedUsers(t *testing.T, tf *twofoldServer, password string, users []importedUser) (string, map[string]otp.Key) {
	t.Helper()
	api, err := client.New(tf.url, tf.key)
	if err != nil {
		t.Fatal(err)
	}
	hash, err := hashPassword(password)
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string]otp.Key{}
	seed := "email,password_hash,country_code,phone,authy_id\n"
	for _, u := range users {
		id, err := api.RegisterUser(context.Background(), client.NewUser{Email: u.email, Phone: u.phone, CountryCode: "1"})
		if err != nil {
			t.Fatalf("users/new %s: %v", u.email, err)
		}
		if u.totp {
			keys[u.email] = enrolTOTP(t, tf, id)
		}
		seed += fmt.Sprintf("%s,%q,1,%s,%d\n", u.email, hash, u.phone, id)
	}
	file := filepath.Join(t.TempDir(), "users.csv")
	if err := os.WriteFile(file, []byte(seed), 0o600); err != nil {
		t.Fatal(err)
	}
	return file, keys
}

type importedUser struct {
	email, phone string
	totp         bool // has a TOTP authenticator
}

// enrolTOTP gives the user a TOTP authenticator with POST users/{id}/secret.
func enrolTOTP(t *testing.T, tf *twofoldServer, authyID int64) otp.Key {
	t.Helper()
	req, _ := http.NewRequest("POST", fmt.Sprintf("%s/protected/json/users/%d/secret", tf.url, authyID), strings.NewReader(url.Values{"label": {"Login sample"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-Authy-API-Key", tf.key)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var body struct {
		URI string `json:"uri"`
	}
	if err := json.NewDecoder(res.Body).Decode(&body); err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("users/%d/secret: %d %v", authyID, res.StatusCode, err)
	}
	key, err := otp.ParseURI(body.URI)
	if err != nil {
		t.Fatalf("users/%d/secret: %v", authyID, err)
	}
	return key
}

func TestLoginInBrowser(t *testing.T) {
	p := newTab(t)
	tf := startTwofold(t, testbin.Twofold(t))
	const password = "correct horse battery"

	// Users moved from Authy: in the application's table with their authy_ids, in Twofold with
	// their phones. Bob and Dave had the Authy app, whose seeds stayed behind; Erin had a TOTP app
	// whose seed Authy exported.
	seedFile, totpKeys := importedUsers(t, tf, password, []importedUser{
		{email: "bob@example.com", phone: "201-555-0199"},
		{email: "dave@example.com", phone: "201-555-0142"},
		{email: "erin@example.com", phone: "201-555-0155", totp: true},
	})

	// The sample, in process, on a loopback port: its URL is the public URL Twofold calls back.
	hs := httptest.NewUnstartedServer(nil)
	sampleURL := "http://" + hs.Listener.Addr().String()
	sampleLog := &lockedBuffer{}
	h, err := newServer(config{TwofoldURL: tf.url, APIKey: tf.key, PublicURL: sampleURL, SeedUsers: seedFile,
		Logger: slog.New(slog.NewTextHandler(sampleLog, nil))})
	if err != nil {
		t.Fatal(err)
	}
	srv := h.(*server)
	type answer struct{ uuid, status string }
	callbacks := make(chan answer, 10)
	srv.onCallback = func(uuid, status string) { callbacks <- answer{uuid, status} }
	hs.Config.Handler = h
	hs.Start()
	t.Cleanup(hs.Close)
	t.Cleanup(func() {
		if t.Failed() || testing.Verbose() {
			t.Logf("the sample's log:\n%s", sampleLog.String())
		}
	})
	tf.cli("", nil, "app", "update", "1", "--callback-url", sampleURL+callbackPath, "--data-dir", tf.dataDir)

	phone := &authenticator{tf: tf, vault: filepath.Join(t.TempDir(), "vault")}
	began := time.Now()
	step := func(name string) { t.Logf("%6s  %s", time.Since(began).Round(100*time.Millisecond), name) }

	// pendingUUID is the OneTouch request the browser's half-logged-in session waits for.
	pendingUUID := func() string {
		srv.sessions.mu.Lock()
		defer srv.sessions.mu.Unlock()
		for _, s := range srv.sessions.sessions {
			if s.Stage == pending2FA && s.ApprovalUUID != "" {
				return s.ApprovalUUID
			}
		}
		t.Fatal("no session waits for a OneTouch answer")
		return ""
	}
	// callbackFor waits for Twofold's signed callback with the answer to uuid.
	callbackFor := func(uuid, status string) {
		t.Helper()
		deadline := time.After(30 * time.Second)
		for {
			select {
			case a := <-callbacks:
				if a.uuid == uuid && a.status == status {
					return
				}
			case <-deadline:
				t.Fatalf("no %s callback for %s", status, uuid)
			}
		}
	}
	login := func(email string) {
		t.Helper()
		p.do(chromedp.Navigate(sampleURL + "/login"))
		p.at("login")
		p.fill("#email", email, "#password", password)
		p.click("#login-form button[type=submit]")
	}
	logout := func() {
		t.Helper()
		p.click("#logout")
		p.at("login")
	}
	// scanQR saves the page's QR code as the browser gets it, scans it with the CLI
	// authenticator app, and waits for the page to notice the registration.
	scanQR := func(app *authenticator, email, name string) {
		t.Helper()
		u, _ := srv.users.byEmailAddr(email)
		p.do(chromedp.WaitVisible(chromedp.CSS("#enrol-qr img.qr")),
			chromedp.Poll[chromedp.Void](`document.querySelector('img.qr').complete && document.querySelector('img.qr').naturalWidth > 0`))
		if link := p.eval(`document.getElementById('enrol-link').value`); !strings.HasPrefix(link, "authy://account?token=ey") {
			t.Fatalf("registration link %q", link)
		}
		dataURL := p.eval(`fetch('/profile/qr.png').then(r => r.blob()).then(b => new Promise(ok => {
			const f = new FileReader(); f.onload = () => ok(f.result); f.readAsDataURL(b); }))`)
		png, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(dataURL, "data:image/png;base64,"))
		if err != nil || !bytes.HasPrefix(png, []byte("\x89PNG")) {
			t.Fatalf("qr.png: %v %.40q", err, dataURL)
		}
		qrFile := filepath.Join(t.TempDir(), "qr.png")
		if err := os.WriteFile(qrFile, png, 0o600); err != nil {
			t.Fatal(err)
		}
		var dev struct {
			Type    string `json:"type"`
			AuthyID int64  `json:"authy_id"`
		}
		out := app.run("", "enrol", "--qr", qrFile, "--server", tf.url, "--name", name, "--json")
		if err := json.Unmarshal([]byte(out), &dev); err != nil || dev.Type != "device" || dev.AuthyID != u.AuthyID {
			t.Fatalf("enrolled %+v (%v), want a device of authy id %d:\n%s", dev, err, u.AuthyID, out)
		}
		// The page's poll sees the registration.
		p.do(chromedp.WaitVisible(chromedp.CSS("#enrol-done")), chromedp.WaitNotVisible(chromedp.CSS("#enrol-qr")))
		if got := p.text("#enrol-done"); !strings.Contains(got, "Authenticator registered") {
			t.Fatalf("after enrolling: %q", got)
		}
	}
	// smsCode reads the last code texted to the number from Twofold's outbox.
	smsCode := func(number string) string {
		t.Helper()
		var msgs []struct {
			Channel string `json:"channel"`
			Body    string `json:"body"`
		}
		tf.cliJSON(&msgs, "outbox", "--to", number, "--json", "--data-dir", tf.dataDir)
		if len(msgs) == 0 || msgs[len(msgs)-1].Channel != "sms" {
			t.Fatalf("outbox for %s: %+v", number, msgs)
		}
		m := regexp.MustCompile(`\b(\d{6,10})\b`).FindStringSubmatch(msgs[len(msgs)-1].Body)
		if m == nil {
			t.Fatalf("no code in the SMS %q", msgs[len(msgs)-1].Body)
		}
		return m[1]
	}
	enterCode := func(code string) {
		t.Helper()
		p.fill("#code", code)
		p.click("#code-form button[type=submit]")
	}

	step("sign up and add the authenticator")
	{
		p.do(chromedp.Navigate(sampleURL + "/signup"))
		p.at("signup")
		if p.eval(`String(document.getElementById('two_factor').checked)`) != "true" {
			t.Fatal("two-factor authentication is not ticked by default")
		}
		p.fill("#email", "ada@example.com", "#password", password, "#country_code", "1", "#phone", "201-555-0123")
		p.screenshot("signup")
		p.click("#signup-form button[type=submit]")
		p.at("profile")
		u, _ := srv.users.byEmailAddr("ada@example.com")
		if u.AuthyID == 0 {
			t.Fatal("signed up without an Authy id")
		}
		p.do(chromedp.WaitVisible(chromedp.CSS("#enrol-qr img.qr")),
			chromedp.Poll[chromedp.Void](`document.querySelector('img.qr').complete && document.querySelector('img.qr').naturalWidth > 0`))
		p.eval(`document.querySelector('#enrol h3').scrollIntoView({block: 'start'}), ''`)
		p.screenshot("profile-qr")
		scanQR(phone, "ada@example.com", "Ada's phone")
	}

	step("log in and approve in the authenticator")
	{
		logout()
		login("ada@example.com")
		if got := p.at("wait"); got != "Check your phone" {
			t.Fatalf("wait page heading %q", got)
		}
		p.screenshot("waiting")
		uuid := pendingUUID()
		// The user's phone shows the request; they approve it.
		out := phone.run("y\n", "watch", "--once")
		for _, want := range []string{uuid, "Log in to", "Email: ada@example.com", "Browser: ", "Approved."} {
			if !strings.Contains(out, want) {
				t.Errorf("device watch lacks %q:\n%s", want, out)
			}
		}
		if got := p.at("protected"); got != "You are in" {
			t.Fatalf("protected page heading %q", got)
		}
		if who, how := p.text("#who"), p.text("#method"); who != "ada@example.com" || !strings.Contains(how, "OneTouch") {
			t.Fatalf("protected page says %q, %q", who, how)
		}
		callbackFor(uuid, "approved")
		p.screenshot("protected")
	}

	step("log in and deny in the authenticator")
	{
		logout()
		login("ada@example.com")
		p.at("wait")
		uuid := pendingUUID()
		out := phone.run("n\nI did not try to log in\n", "watch", "--once")
		if !strings.Contains(out, uuid) || !strings.Contains(out, "Denied") {
			t.Fatalf("device watch:\n%s", out)
		}
		if got := p.at("refused"); got != "Login refused" {
			t.Fatalf("refused page heading %q", got)
		}
		callbackFor(uuid, "denied")
		p.screenshot("refused")
		// The way back leads to the log-in page; refused means logged out, so the protected page
		// sends the browser there too.
		p.click("#back")
		p.at("login")
		p.do(chromedp.Navigate(sampleURL + "/protected"))
		p.at("login")
	}

	step("an imported user logs in with a code sent by SMS, is offered the app, and says not now")
	{
		login("bob@example.com")
		if got := p.at("code"); got != "Enter your code" {
			t.Fatalf("code page heading %q", got)
		}
		if got := p.eval(`document.querySelector('main p').textContent`); !strings.Contains(got, "We sent a code by SMS to") || !strings.Contains(got, "99") {
			t.Fatalf("code page says %q", got)
		}
		p.screenshot("code")
		code := smsCode("2015550199")
		wrong := "1111111"
		if code == wrong {
			wrong = "2222222"
		}
		enterCode(wrong)
		if got := p.text("#problem"); !strings.Contains(got, "That code is wrong or has expired") {
			t.Fatalf("after a wrong code: %q", got)
		}
		enterCode(code)
		// Bob has no authenticator in Twofold (users/{id}/status): the sample offers the app, once.
		if got := p.at("add-app"); got != "Add the authenticator app" {
			t.Fatalf("offer page heading %q", got)
		}
		p.do(chromedp.WaitVisible(chromedp.CSS("#enrol-qr img.qr")),
			chromedp.Poll[chromedp.Void](`document.querySelector('img.qr').complete && document.querySelector('img.qr').naturalWidth > 0`))
		p.screenshot("add-app")
		p.click("#not-now")
		p.at("protected")
		if who, how := p.text("#who"), p.text("#method"); who != "bob@example.com" || !strings.Contains(how, "SMS") {
			t.Fatalf("protected page says %q, %q", who, how)
		}
		// The next log-in is not asked.
		logout()
		login("bob@example.com")
		p.at("code")
		enterCode(smsCode("2015550199"))
		p.at("protected")
		if who := p.text("#who"); who != "bob@example.com" {
			t.Fatalf("protected page says %q", who)
		}
		logout()
	}

	step("an imported user adds the app when offered, and is not asked again")
	{
		login("dave@example.com")
		p.at("code")
		enterCode(smsCode("2015550142"))
		p.at("add-app")
		davesPhone := &authenticator{tf: tf, vault: filepath.Join(t.TempDir(), "vault")}
		scanQR(davesPhone, "dave@example.com", "Dave's phone")
		p.click("#continue")
		p.at("protected")
		// The next log-in goes to the app; a code instead is not asked either.
		logout()
		login("dave@example.com")
		p.at("wait")
		p.click("#send-code")
		p.at("code")
		enterCode(smsCode("2015550142"))
		p.at("protected")
		if who, how := p.text("#who"), p.text("#method"); who != "dave@example.com" || !strings.Contains(how, "SMS") {
			t.Fatalf("protected page says %q, %q", who, how)
		}
		logout()
	}

	step("an imported user with a TOTP authenticator is never asked")
	{
		login("erin@example.com")
		p.at("code")
		if got := p.eval(`document.querySelector('main p').textContent`); !strings.Contains(got, "authenticator app") {
			t.Fatalf("code page says %q", got)
		}
		enterCode(totpKeys["erin@example.com"].Code(time.Now()))
		p.at("protected")
		if who, how := p.text("#who"), p.text("#method"); who != "erin@example.com" || !strings.Contains(how, "authenticator app") {
			t.Fatalf("protected page says %q, %q", who, how)
		}
		if u, _ := srv.users.byEmailAddr("erin@example.com"); !u.AskedToAddApp.IsZero() {
			t.Fatal("erin answered an offer she was never made")
		}
	}

	step("forged callbacks are refused")
	{
		body := `{"authy_id":1,"callback_action":"approval_request_status","uuid":"x","status":"approved"}`
		for name, headers := range map[string]map[string]string{
			"unsigned": nil,
			"forged":   {"X-Authy-Signature": base64.StdEncoding.EncodeToString(make([]byte, 32)), "X-Authy-Signature-Nonce": fmt.Sprint(time.Now().Unix())},
		} {
			req, _ := http.NewRequest("POST", sampleURL+callbackPath, strings.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			for k, v := range headers {
				req.Header.Set(k, v)
			}
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode != http.StatusUnauthorized {
				t.Errorf("%s callback: %d, want 401", name, res.StatusCode)
			}
		}
	}
}
