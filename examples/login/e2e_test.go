package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/twofold-auth/twofold/client"
	"github.com/twofold-auth/twofold/internal/testbin"
)

// Realistic data for the pages: an application name and an email address as long as real ones
// get, which the pages must fit on a phone.
const (
	longAppName = "Acme Widgets International — Customer Portal"
	adaEmail    = "ada.lovelace.byron.analyticalengine@computinghistorysociety.example.org"
)

func TestLoginInBrowser(t *testing.T) {
	p := newTab(t)
	tf := startTwofold(t, testbin.Twofold(t))
	tf.cli("", nil, "app", "update", "1", "--name", longAppName, "--data-dir", tf.dataDir)
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
	api, err := client.New(tf.url, tf.key)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

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
	// enrolQR waits for the page's QR code, checks that it holds the https link that opens
	// Twofold's web authenticator, which the page shows too, and saves it as the browser got it.
	enrolQR := func() (link, file string) {
		t.Helper()
		p.do(chromedp.WaitVisible(chromedp.CSS("#enrol-qr img.qr")),
			chromedp.Poll[chromedp.Void](`document.querySelector('img.qr').complete && document.querySelector('img.qr').naturalWidth > 0`))
		text := p.text("#enrol-qr")
		for _, want := range []string{"Twofold's web authenticator", "command-line authenticator", "twofold device enrol '"} {
			if !strings.Contains(text, want) {
				t.Errorf("the enrolment does not say %q:\n%s", want, text)
			}
		}
		link = p.eval(`document.getElementById('enrol-link').getAttribute('href')`)
		if !strings.HasPrefix(link, tf.url+"/authenticator/#register=tfr_") {
			t.Fatalf("registration link %q, want %s/authenticator/#register=tfr_…", link, tf.url)
		}
		if cmd := p.eval(`document.getElementById('enrol-command').value`); cmd != "twofold device enrol '"+link+"'" {
			t.Errorf("enrolment command %q", cmd)
		}
		dataURL := p.eval(`fetch('/profile/qr.png').then(r => r.blob()).then(b => new Promise(ok => {
			const f = new FileReader(); f.onload = () => ok(f.result); f.readAsDataURL(b); }))`)
		png, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(dataURL, "data:image/png;base64,"))
		if err != nil || !bytes.HasPrefix(png, []byte("\x89PNG")) {
			t.Fatalf("qr.png: %v %.40q", err, dataURL)
		}
		file = filepath.Join(t.TempDir(), "qr.png")
		if err := os.WriteFile(file, png, 0o600); err != nil {
			t.Fatal(err)
		}
		if got := decodeQR(t, file); got != link {
			t.Fatalf("the QR code holds %q, want the link %q", got, link)
		}
		return link, file
	}
	// registered waits for the page's poll to notice the registration.
	registered := func() {
		t.Helper()
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

	step("sign up, and add the account to the web authenticator from the QR code")
	var adaPhone string        // the phone as the profile masks it
	var recoveryCodes []string // Ada's, as the page showed them
	webAuth := newWebAuthenticator(t)
	{
		p.do(chromedp.Navigate(sampleURL + "/signup"))
		p.at("signup")
		if p.eval(`String(document.getElementById('two_factor').checked)`) != "true" {
			t.Fatal("two-factor authentication is not ticked by default")
		}
		p.fill("#email", adaEmail, "#password", password, "#country_code", "1", "#phone", "201-555-0123")
		p.check("sign-up")
		p.screenshot("signup")
		p.click("#signup-form button[type=submit]")
		// Two-factor authentication on: the recovery codes, once, on a page to acknowledge.
		p.at("recovery-codes")
		p.check("recovery codes")
		p.screenshot("recovery-codes")
		recoveryCodes = strings.Fields(p.text("#recovery-codes"))
		if len(recoveryCodes) != 10 || !regexp.MustCompile(`^[2-9a-z]{4}-[2-9a-z]{4}-[2-9a-z]{4}$`).MatchString(recoveryCodes[0]) {
			t.Fatalf("recovery codes shown: %q", recoveryCodes)
		}
		p.do(chromedp.Navigate(sampleURL + "/profile")) // not acknowledged: shown until they are
		p.at("recovery-codes")
		p.click("#saved")
		p.click("#recovery-saved button[type=submit]")
		p.at("profile")
		p.do(chromedp.Navigate(sampleURL + recoveryCodesPath)) // never shown again
		p.at("profile")
		if got := p.text("main"); strings.Count(got, "Two-factor authentication is on") > 0 {
			t.Errorf("the profile says again what its page says:\n%s", got)
		}
		adaPhone = p.text("#tfa-state .nowrap")
		if adaPhone != "+1 ••• ••• ••23" {
			t.Errorf("the profile shows the phone as %q", adaPhone)
		}
		link, _ := enrolQR()
		p.check("profile with the QR code")
		p.eval(`document.querySelector('#enrol h3').scrollIntoView({block: 'start'}), ''`)
		p.screenshot("profile-qr")
		// The phone's camera opens the link: the web authenticator adds the account.
		webAuth.enrol(link)
		if got := webAuth.text(`#account-list li[data-kind="device"] .account-issuer`); got != longAppName {
			t.Errorf("the web authenticator names the account %q, want %q", got, longAppName)
		}
		registered()
		p.do(chromedp.Navigate(sampleURL + "/profile"))
		p.at("profile")
		p.check("profile with the app")
	}

	step("log in and approve in the web authenticator")
	{
		logout()
		login(adaEmail)
		if got := p.at("wait"); got != "Check your phone" {
			t.Fatalf("wait page heading %q", got)
		}
		p.check("wait")
		p.screenshot("waiting")
		uuid := pendingUUID()
		// The phone shows the request, with the browser as people name it, not its User-Agent.
		details := webAuth.request(uuid)
		browser := browserSummary(p.eval(`navigator.userAgent`))
		if !regexp.MustCompile(`^(Headless )?Chrome \d+ on Linux$`).MatchString(browser) ||
			!strings.Contains(details, browser) || strings.Contains(details, "Mozilla") {
			t.Errorf("the request's details %q, want the browser %q", details, browser)
		}
		webAuth.answer(uuid, true)
		if got := p.at("protected"); got != "You are in" {
			t.Fatalf("protected page heading %q", got)
		}
		if who, how := p.text("#who"), p.text("#method"); who != adaEmail || !strings.Contains(how, "OneTouch") {
			t.Fatalf("protected page says %q, %q", who, how)
		}
		callbackFor(uuid, "approved")
		p.check("protected")
		p.screenshot("protected")
	}

	step("log in and deny in the web authenticator")
	{
		logout()
		login(adaEmail)
		p.at("wait")
		uuid := pendingUUID()
		webAuth.answer(uuid, false)
		if got := p.at("refused"); got != "Login refused" {
			t.Fatalf("refused page heading %q", got)
		}
		callbackFor(uuid, "denied")
		// The sample has no password change: the page does not offer one.
		if got := p.text("main"); strings.Contains(strings.ToLower(got), "change") {
			t.Errorf("the refused page offers what the sample does not have:\n%s", got)
		}
		p.check("refused")
		p.screenshot("refused")
		// The way back leads to the log-in page; refused means logged out, so the protected page
		// sends the browser there too.
		p.click("#back")
		p.at("login")
		p.do(chromedp.Navigate(sampleURL + "/protected"))
		p.at("login")
	}

	step("log in with a code instead: the request on the phone is closed")
	{
		login(adaEmail)
		p.at("wait")
		uuid := pendingUUID()
		webAuth.request(uuid) // on the phone
		p.click("#send-code")
		p.at("code")
		// The phone drops the request at once, and it can no longer be approved.
		webAuth.dropped(uuid)
		if a, err := api.ApprovalRequest(ctx, uuid); err != nil || a.Status != "expired" || a.Reason != "closed" {
			t.Fatalf("the request after a code instead: %+v, %v; want closed", a, err)
		}
		// One message, with the phone masked as on the profile.
		if got := p.text("#code-via .nowrap"); got != adaPhone {
			t.Errorf("the code page shows the phone as %q, the profile as %q", got, adaPhone)
		}
		if n := p.eval(`String(document.querySelectorAll('main .notice').length)`); n != "0" {
			t.Errorf("the code page has %s banners besides its text:\n%s", n, p.text("main"))
		}
		enterCode(smsCode("2015550123"))
		p.at("protected")
		if how := p.text("#method"); !strings.Contains(how, "SMS") {
			t.Fatalf("protected page says %q", how)
		}
		logout()
	}

	step("a request that expires while the page waits; the log-in cancelled")
	{
		login(adaEmail)
		p.at("wait")
		uuid := pendingUUID()
		webAuth.request(uuid)
		// Closed from elsewhere (as its time running out would): the page learns it from Twofold.
		if _, err := api.CloseApprovalRequest(ctx, uuid); err != nil {
			t.Fatal(err)
		}
		if got := p.at("wait-expired"); got != "Request expired" {
			t.Fatalf("wait page heading %q", got)
		}
		p.check("wait (expired)")
		p.click("#cancel")
		p.at("login")
		if got := p.text("main .notice"); got != "Log-in cancelled." {
			t.Errorf("after cancelling: %q", got)
		}
		p.check("log-in")
		// A form sent without its security token gets the expired page.
		p.eval(`document.querySelector('#login-form input[name=csrf]').value = 'forged', ''`)
		p.fill("#email", adaEmail, "#password", password)
		p.click("#login-form button[type=submit]")
		p.at("expired")
		p.check("form expired")
	}

	step("a sign-up with another account's phone number is not told so")
	{
		p.do(chromedp.Navigate(sampleURL + "/signup"))
		p.at("signup")
		p.fill("#email", "mallory.eavesdropper.long-address@example.com", "#password", password, "#country_code", "1", "#phone", "201-555-0123")
		p.click("#signup-form button[type=submit]")
		p.at("signup")
		if got := p.text("#problem"); got != phoneRefused {
			t.Errorf("sign-up with another account's phone: %q, want %q", got, phoneRefused)
		}
		p.check("sign-up with a problem")
	}

	step("an imported user logs in with a code sent by SMS, is offered the app, and says not now")
	{
		login("bob@example.com")
		if got := p.at("code"); got != "Enter your code" {
			t.Fatalf("code page heading %q", got)
		}
		if got := p.text("#code-via"); got != "We sent a code by SMS to +1 ••• ••• ••99." {
			t.Fatalf("code page says %q", got)
		}
		p.check("code")
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
		p.check("code with a problem")
		enterCode(code)
		// Bob has no authenticator in Twofold (users/{id}/status): the sample offers the app, once.
		if got := p.at("add-app"); got != "Add the authenticator app" {
			t.Fatalf("offer page heading %q", got)
		}
		enrolQR()
		p.check("add the app")
		p.screenshot("add-app")
		p.click("#not-now")
		p.at("protected")
		if who, how := p.text("#who"), p.text("#method"); who != "bob@example.com" || !strings.Contains(how, "SMS") {
			t.Fatalf("protected page says %q, %q", who, how)
		}
		p.check("protected, after not now")
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

	step("an imported user adds the command-line authenticator when offered, and is not asked again")
	{
		login("dave@example.com")
		p.at("code")
		enterCode(smsCode("2015550142"))
		p.at("add-app")
		_, qrFile := enrolQR()
		davesPhone := &authenticator{tf: tf, vault: filepath.Join(t.TempDir(), "vault")}
		var dev struct {
			Type    string `json:"type"`
			AuthyID int64  `json:"authy_id"`
		}
		out := davesPhone.run("", "enrol", "--qr", qrFile, "--name", "Dave's laptop", "--json")
		u, _ := srv.users.byEmailAddr("dave@example.com")
		if err := json.Unmarshal([]byte(out), &dev); err != nil || dev.Type != "device" || dev.AuthyID != u.AuthyID {
			t.Fatalf("enrolled %+v (%v), want a device of authy id %d:\n%s", dev, err, u.AuthyID, out)
		}
		registered()
		p.click("#continue")
		p.at("protected")
		// The next log-in goes to the app, which shows it; a code instead is not asked either.
		logout()
		login("dave@example.com")
		p.at("wait")
		uuid := pendingUUID()
		if out := davesPhone.run("y\n", "watch", "--once"); !strings.Contains(out, uuid) || !strings.Contains(out, "Browser: "+browserSummary(p.eval(`navigator.userAgent`))) {
			t.Fatalf("device watch:\n%s", out)
		}
		p.at("protected")
		callbackFor(uuid, "approved")
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
		if got := p.text("#code-via"); !strings.Contains(got, "authenticator app") {
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

	step("Ada lost her phone: she logs in with a recovery code, once")
	{
		useRecovery := func(typed string) {
			t.Helper()
			login(adaEmail)
			p.at("wait")
			p.click("#use-recovery")
			p.at("recovery")
			p.fill("#recovery-code", typed)
			p.click("#recovery-form button[type=submit]")
		}
		logout()
		useRecovery(strings.ToUpper(strings.ReplaceAll(recoveryCodes[3], "-", " ")))
		p.at("protected")
		if how, notice := p.text("#method"), p.text(".notice"); !strings.Contains(how, "a recovery code") || !strings.Contains(notice, "9 left") {
			t.Fatalf("protected page says %q, %q", how, notice)
		}
		logout()
		useRecovery(recoveryCodes[3])
		p.at("recovery")
		p.check("recovery code refused")
		if got := p.text("#problem"); !strings.Contains(got, "already used") {
			t.Fatalf("a used recovery code: %q", got)
		}
		st, err := api.RecoveryCodesStatus(ctx, adaAuthyID(t, srv))
		if err != nil || st.Remaining != 9 {
			t.Fatalf("recovery codes left: %+v, %v", st, err)
		}
	}
}

// adaAuthyID is Ada's Authy id, as the sample keeps it.
func adaAuthyID(t *testing.T, srv *server) int64 {
	t.Helper()
	u, ok := srv.users.byEmailAddr(adaEmail)
	if !ok || u.AuthyID == 0 {
		t.Fatal("Ada has no Authy id")
	}
	return u.AuthyID
}
