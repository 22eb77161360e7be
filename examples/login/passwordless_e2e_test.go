package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/twofold-auth/twofold/client"
	"github.com/twofold-auth/twofold/internal/testbin"
)

// runningSample is the sample, in process, on a loopback port, talking to a real Twofold.
type runningSample struct {
	srv     *server
	url     string
	dropped chan string // the sign-ins with the phone left and closed
}

// startSample starts the sample against tf with its users from seedFile, waiting phoneWait for a
// phone; with callbacks, Twofold's callbacks are pointed at it.
func startSample(t *testing.T, tf *twofoldServer, seedFile string, phoneWait time.Duration, callbacks bool) runningSample {
	t.Helper()
	hs := httptest.NewUnstartedServer(nil)
	sampleURL := "http://" + hs.Listener.Addr().String()
	sampleLog := &lockedBuffer{}
	h, err := newServer(config{TwofoldURL: tf.url, APIKey: tf.key, PublicURL: sampleURL, SeedUsers: seedFile, PhoneWait: phoneWait,
		Logger: slog.New(slog.NewTextHandler(sampleLog, nil))})
	if err != nil {
		t.Fatal(err)
	}
	rs := runningSample{srv: h.(*server), url: sampleURL, dropped: make(chan string, 64)}
	rs.srv.onPhoneDropped = func(uuid string) {
		select {
		case rs.dropped <- uuid:
		default:
		}
	}
	hs.Config.Handler = h
	hs.Start()
	t.Cleanup(hs.Close)
	t.Cleanup(func() {
		if t.Failed() || testing.Verbose() {
			t.Logf("the sample's log (%s):\n%s", sampleURL, sampleLog.String())
		}
	})
	if callbacks {
		tf.cli("", nil, "app", "update", "1", "--callback-url", sampleURL+callbackPath, "--data-dir", tf.dataDir)
	}
	return rs
}

// waiting returns the uuid and number of the one sign-in with the phone a session of the sample
// waits for: the browser's.
func (rs runningSample) waiting(t *testing.T) (uuid, number string) {
	t.Helper()
	rs.srv.sessions.mu.Lock()
	var uuids []string
	for _, s := range rs.srv.sessions.sessions {
		if s.PhoneUUID != "" {
			uuids = append(uuids, s.PhoneUUID)
		}
	}
	rs.srv.sessions.mu.Unlock()
	if len(uuids) != 1 {
		t.Fatalf("%d sessions wait for a sign-in with the phone, want 1", len(uuids))
	}
	rs.srv.phones.mu.Lock()
	defer rs.srv.phones.mu.Unlock()
	return uuids[0], rs.srv.phones.m[uuids[0]].Number
}

// enrolCLI adds a command-line authenticator (a vault of its own, with a real device key) for
// the Twofold user authyID, through a registration link as the profile page would show.
func enrolCLI(t *testing.T, tf *twofoldServer, api *client.Client, authyID int64, name string) *authenticator {
	t.Helper()
	link, err := api.CreateRegistrationLink(context.Background(), authyID)
	if err != nil {
		t.Fatal(err)
	}
	a := &authenticator{tf: tf, vault: filepath.Join(t.TempDir(), "vault")}
	a.run("", "enrol", link.URL, "--name", name, "--json")
	return a
}

// Sign in with the phone, end to end: Debian's chromium on the sample, the real twofold serve,
// and the command-line authenticator (real device keys) as the users' phones.
func TestPhoneSignInBrowser(t *testing.T) {
	p := newTab(t)
	// The test signs the same people in many times over: Twofold's limits are raised (they
	// have a test of their own below).
	tf := startTwofold(t, testbin.Twofold(t), "--passwordless-limit-username", "100/15m",
		"--passwordless-limit-user", "100/15m", "--passwordless-limit-address", "500/15m")
	tf.cli("", nil, "app", "update", "1", "--name", longAppName, "--data-dir", tf.dataDir)
	const password = "correct horse battery"
	// Ada and Carol have the app; Bob has none.
	seedFile, _ := importedUsers(t, tf, password, []importedUser{
		{email: adaEmail, phone: "201-555-0123"},
		{email: "bob@example.com", phone: "201-555-0199"},
		{email: "carol@example.com", phone: "201-555-0142"},
	})
	// The sample as it runs, waiting two minutes for the phone; and one that waits five seconds,
	// for the sign-ins that nobody can approve and that must end by themselves.
	patient := startSample(t, tf, seedFile, 2*time.Minute, true)
	short := startSample(t, tf, seedFile, 5*time.Second, false)
	api, err := client.New(tf.url, tf.key)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	ada, _ := patient.srv.users.byEmailAddr(adaEmail)
	carol, _ := patient.srv.users.byEmailAddr("carol@example.com")
	adaPhone := enrolCLI(t, tf, api, ada.AuthyID, "Ada's phone")
	carolPhone := enrolCLI(t, tf, api, carol.AuthyID, "Carol's phone")

	began := time.Now()
	step := func(name string) { t.Logf("%6s  %s", time.Since(began).Round(100*time.Millisecond), name) }
	// start types email on the sample's log-in page and chooses to sign in with the phone; it
	// returns the number the page shows, which must be the one Twofold gave.
	start := func(rs runningSample, email string) (uuid, number string) {
		t.Helper()
		p.do(chromedp.Navigate(rs.url + "/login"))
		p.at("login")
		p.fill("#email", email)
		p.click("#phone-signin")
		p.at("phone")
		shown := p.text("#phone-number strong")
		uuid, number = rs.waiting(t)
		if shown != number {
			t.Fatalf("the page shows %q, Twofold gave %q", shown, number)
		}
		if got := p.text("#phone-number"); got != "Check your phone and tap "+number {
			t.Errorf("the page says %q", got)
		}
		return uuid, number
	}
	// fellBack waits for the password form, which must say only that the phone did not sign
	// them in, with the email typed.
	fellBack := func(email string) {
		t.Helper()
		p.at("login")
		if got := p.text("#problem"); got != phoneFailed {
			t.Fatalf("the password form says %q, want %q", got, phoneFailed)
		}
		if got := p.eval(`document.getElementById('email').value`); got != email {
			t.Fatalf("the password form has the email %q, want %q", got, email)
		}
	}
	wrongNumber := func(n string) string {
		v, err := strconv.Atoi(n)
		if err != nil {
			t.Fatal(err)
		}
		return strconv.Itoa(10 + (v-10+1)%90)
	}

	step("approve with the number shown: signed in")
	{
		uuid, number := start(patient, adaEmail)
		p.check("sign in with the phone")
		p.screenshot("passwordless")
		// The phone shows what the page asks for, and who asks.
		var shown struct {
			Status         string            `json:"status"`
			Message        string            `json:"message"`
			Details        map[string]string `json:"details"`
			NumberRequired bool              `json:"number_required"`
		}
		if err := json.Unmarshal([]byte(adaPhone.run("", "approve", uuid, "--number", number, "--json")), &shown); err != nil {
			t.Fatal(err)
		}
		if shown.Status != "approved" || !shown.NumberRequired || shown.Message != "Sign in to "+longAppName+"?" ||
			shown.Details["Browser"] != browserSummary(p.eval(`navigator.userAgent`)) {
			t.Errorf("the phone was asked %+v", shown)
		}
		if got := p.at("protected"); got != "You are in" {
			t.Fatalf("protected page heading %q", got)
		}
		if who, how := p.text("#who"), p.text("#method"); who != adaEmail || !strings.Contains(how, "passwordless") {
			t.Fatalf("protected page says %q, %q", who, how)
		}
		p.click("#logout")
		p.at("login")
	}

	step("deny: the password form")
	{
		uuid, _ := start(patient, adaEmail)
		adaPhone.run("", "deny", uuid)
		fellBack(adaEmail)
		p.check("log-in after the phone did not sign in")
	}

	step("a wrong number twice: the password form")
	{
		uuid, number := start(patient, adaEmail)
		wrong := wrongNumber(number)
		adaPhone.fails("60080", "approve", uuid, "--number", wrong)
		adaPhone.fails("60080", "approve", uuid, "--number", wrong)
		fellBack(adaEmail)
	}

	step("use my password instead: the password form, and the phone's request closed")
	{
		uuid, _ := start(patient, adaEmail)
		p.click("#use-password")
		p.at("login")
		if got := p.eval(`document.getElementById('email').value`); got != adaEmail {
			t.Fatalf("the password form has the email %q", got)
		}
		if n := p.eval(`String(document.querySelectorAll('#problem').length)`); n != "0" {
			t.Fatalf("the password form shows a problem: %s", p.text("#problem"))
		}
		// The sample closes it after answering the browser: wait for it to have done so.
		select {
		case got := <-patient.dropped:
			if got != uuid {
				t.Fatalf("the sample closed %s, want %s", got, uuid)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("the sample did not close the request left")
		}
		if a, err := api.ApprovalRequest(ctx, uuid); err != nil || a.Status != "expired" || a.Reason != "closed" {
			t.Fatalf("the request after 'use my password': %+v, %v; want closed", a, err)
		}
		adaPhone.fails("already expired", "approve", uuid, "--number", "10")
	}

	step("an unknown email: the same page, then the password form when it expires")
	{
		start(short, "nobody@example.com")
		fellBack("nobody@example.com")
	}

	step("I didn't request this: Carol's next sign-ins reach no device and go as an unknown email's")
	{
		uuid, _ := start(patient, "carol@example.com")
		carolPhone.run("", "deny", "--not-requested", uuid)
		fellBack("carol@example.com")

		phantom, number := start(short, "carol@example.com")
		// Not sent: the device does not know it...
		carolPhone.fails("60049", "approve", phantom, "--number", number)
		// ...nor has anything else pending: the first request its watch sees is one made after.
		later, err := api.CreateApprovalRequest(ctx, carol.AuthyID, client.ApprovalRequest{Message: "Later"})
		if err != nil {
			t.Fatal(err)
		}
		out := carolPhone.run("n\n\n", "watch", "--once")
		if !strings.Contains(out, later.UUID) || strings.Contains(out, phantom) {
			t.Fatalf("carol's device watch, with request %s made after the blocked sign-in %s:\n%s", later.UUID, phantom, out)
		}
		fellBack("carol@example.com")
	}

	step("the same answers for an email with the app, one without, one of nobody, one blocked")
	{
		visitor := &sample{t: t, srv: patient.srv, url: patient.url, hc: newBrowserClient()}
		number := regexp.MustCompile(`tap <strong>\d\d</strong>`)
		type seen struct{ start, page, status string }
		var first seen
		emails := []string{adaEmail, "bob@example.com", "nobody@example.com", "carol@example.com"}
		for i, email := range emails {
			a := visitor.startPhone(email)
			page := visitor.get(phonePath)
			status := visitor.get(phonePath + "/status")
			got := seen{
				start:  fmt.Sprint(a.status, " ", a.location, " ", a.body),
				page:   fmt.Sprint(page.status, " ", number.ReplaceAllString(page.body, "tap <strong>NN</strong>")),
				status: fmt.Sprint(status.status, " ", status.body),
			}
			if a.status != http.StatusSeeOther || page.status != http.StatusOK || !number.MatchString(page.body) || status.body != "{\"status\":\"pending\"}\n" {
				t.Fatalf("%s: %+v", email, got)
			}
			if i == 0 {
				first = got
			} else if got != first {
				t.Errorf("%s is answered otherwise than %s:\n%+v\n%+v", email, emails[0], got, first)
			}
			visitor.post(phonePath, phonePath+"/cancel", url.Values{})
		}
	}
}

// Over Twofold's limits, the sample says the same for an email of a user with the app and an
// email of nobody: "Too many attempts, try again later", with 429.
func TestPhoneSignInLimited(t *testing.T) {
	tf := startTwofold(t, testbin.Twofold(t), "--passwordless-limit-username", "1/15m")
	seedFile, _ := importedUsers(t, tf, "correct horse battery", []importedUser{{email: "ada@example.com", phone: "201-555-0123"}})
	rs := startSample(t, tf, seedFile, time.Minute, false)
	api, err := client.New(tf.url, tf.key)
	if err != nil {
		t.Fatal(err)
	}
	ada, _ := rs.srv.users.byEmailAddr("ada@example.com")
	enrolCLI(t, tf, api, ada.AuthyID, "Ada's phone")
	visitor := &sample{t: t, srv: rs.srv, url: rs.url, hc: newBrowserClient()}
	var limited string
	for i, email := range []string{"ada@example.com", "nobody@example.com"} {
		if a := visitor.startPhone(email); a.status != http.StatusSeeOther {
			t.Fatalf("%s, first: %d %s", email, a.status, a.body)
		}
		a := visitor.startPhone(email)
		if a.status != http.StatusTooManyRequests || problemText(a.body) != phoneLimited {
			t.Fatalf("%s, second: %d %q", email, a.status, problemText(a.body))
		}
		body := strings.ReplaceAll(a.body, email, "EMAIL")
		if i == 0 {
			limited = body
		} else if body != limited {
			t.Errorf("%s over the limit is answered otherwise than ada@example.com", email)
		}
	}
}
