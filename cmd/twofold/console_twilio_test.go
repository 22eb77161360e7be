package main

import (
	"net/url"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// TestConsoleVerifyCredentials drives an application's Verify API section in Chromium at a
// laptop's and a phone's width, each state checked by axe-core and for fit: credentials made
// with the token shown once (and not after a reload), an API key made whose secret works on the
// Verify API and then revoked, the token rotated, and the application's Verify services listed.
// The audit trail names each change, never a secret.
func TestConsoleVerifyCredentials(t *testing.T) {
	c := newConsoleEnv(t, longOperator, nil)
	s, p := c.s, c.p
	id, _ := c.newApp(longAppName)
	appPage := "/console/apps/" + id
	c.signIn()

	p.section("no credentials yet")
	c.check("application without Verify credentials", c.visit(appPage, "#twilio-create"))

	p.section("credentials made, the token shown once")
	var account, token string
	c.check("Verify credentials made", func() {
		if token != "" {
			return // the phone's width: the same page, which shows the token once
		}
		p.do(chromedp.Navigate(s.url + appPage))
		p.click("#twilio-create")
		p.visible("#twilio-secret")
		account, token = c.text("#twilio-account"), p.eval(`document.querySelector('#twilio-secret').value`)
	})
	if !strings.HasPrefix(account, "AC") {
		t.Fatalf("account %q", account)
	}
	if len(token) != 32 {
		t.Fatalf("token %q", token)
	}
	p.do(chromedp.Reload())
	p.visible("#twilio-account")
	if strings.Contains(p.eval(`document.body.innerHTML`), token) {
		t.Fatal("the token is shown again after a reload")
	}

	p.section("an API key")
	c.typeInto("#twilio-key-name", "Backend — payments cluster in Frankfurt, blue/green")
	p.click("#twilio-create-key")
	p.visible("#twilio-secret")
	secret := p.eval(`document.querySelector('#twilio-secret').value`)
	keySID := p.eval(`document.querySelector('#twilio-keys tr[data-sid]').dataset.sid`)
	c.check("Verify API key made", c.visit(appPage, "#twilio-keys"))
	if status, svc := s.twilioCall("POST", "/v2/Services", keySID, secret, url.Values{"FriendlyName": {"Console made"}}); status != 201 {
		t.Fatalf("the key made in the console: %d %v", status, svc)
	}
	p.do(chromedp.Reload())
	p.visible("#verify-services")
	if got := c.text("#verify-services"); !strings.Contains(got, "Console made") {
		t.Errorf("the services read %q", got)
	}

	p.section("revoke the key, rotate the token")
	p.click(`#twilio-keys tr[data-sid="` + keySID + `"] button`)
	p.visible("#no-twilio-keys")
	if status, _ := s.twilioCall("GET", "/v2/Services", keySID, secret, nil); status != 401 {
		t.Errorf("a revoked key: %d", status)
	}
	p.click("#twilio-rotate")
	p.visible("#twilio-secret")
	rotated := p.eval(`document.querySelector('#twilio-secret').value`)
	if status, _ := s.twilioCall("GET", "/v2/Services", account, token, nil); status != 401 {
		t.Errorf("the token before rotation: %d", status)
	}
	if status, _ := s.twilioCall("GET", "/v2/Services", account, rotated, nil); status != 200 {
		t.Errorf("the rotated token: %d", status)
	}

	out, err := s.cli("audit", "list", "--json")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"twilio_credential.created", "twilio_credential.rotated", "twilio_credential.revoked"} {
		if !strings.Contains(out, want) {
			t.Errorf("the audit trail has no %s", want)
		}
	}
	for _, secret := range []string{token, secret, rotated} {
		if strings.Contains(out, secret) {
			t.Error("the audit trail holds a secret")
		}
	}
}
