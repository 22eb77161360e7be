package main

import (
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/twofold-auth/twofold/internal/browsertest"
)

// Realistic step clients: long names, the ten redirect URIs a client may have, each long.
const (
	longClientName = "Okta Workforce Identity — Acme Global Payments merchant dashboard (EU production tenant, Frankfurt)"
	longAuth0Name  = "Auth0 post-login Action — customer sign-in for the Acme Global Payments mobile and web apps"
)

func longRedirect(i int) string {
	return fmt.Sprintf("https://acme-global-payments.okta-emea.com/oauth2/v1/authorize/callback/%02d?idp=0oa1b2c3d4e5f6g7h8i9&tenant=eu-central-1-production-customer-identity", i)
}

// stepClientJSON is what `twofold oidc-client create --json` prints.
type stepClientJSON struct {
	ClientID string `json:"client_id"`
	Secret   string `json:"client_secret"`
}

// setValue sets the value of the field sel, as pasting would (long text typed key by key is slow).
func (c *consoleEnv) setValue(sel, v string) {
	c.t.Helper()
	c.p.eval(`(document.querySelector(` + strconv.Quote(sel) + `).value = ` + strconv.Quote(v) + `, '')`)
}

// TestConsoleStepClients drives the step clients' pages in Chromium at a laptop's and a phone's
// width with long names and many redirect URIs, each page checked by axe-core and for fit: the
// application's list, a client made from its page whose secret shows once, the endpoints, a
// form with several errors, rotating both secrets, deleting. With TWOFOLD_SCREENSHOTS=1 it
// saves docs/screenshots/console-step-client*.png.
func TestConsoleStepClients(t *testing.T) {
	c := newConsoleEnv(t, longOperator, nil)
	s, p := c.s, c.p
	id, _ := c.newApp(longAppName)
	appPage := "/console/apps/" + id
	var made []stepClientJSON
	for i, name := range []string{longClientName, "Microsoft Entra ID external authentication method (contoso.onmicrosoft.com)", "Intranet"} {
		args := []string{"oidc-client", "create", "--app", id, "--name", name, "--user-match", []string{"email", "id", "custom_id"}[i], "--json"}
		for j := range 10 - 4*i {
			args = append(args, "--redirect-uri", longRedirect(j))
		}
		if i == 1 {
			args = append(args, "--factors", "totp,push", "--hint-jwks-url", "https://login.microsoftonline.com/common/discovery/v2.0/keys",
				"--hint-issuer", "https://login.microsoftonline.com/9188040d-6c67-4c5b-b112-36a304b66dad/v2.0")
		}
		var cl stepClientJSON
		s.cliJSON(&cl, args...)
		made = append(made, cl)
	}
	var auth0 stepClientJSON
	s.cliJSON(&auth0, "oidc-client", "create", "--app", id, "--name", longAuth0Name, "--auth0-domain", "login.acme-global-payments.example.com",
		"--user-match", "email", "--allow-login-hint", "--json")
	c.signIn()

	p.section("the application's clients")
	c.check("application with step clients", c.visit(appPage, "#client-list"))
	if n := p.eval(`String(document.querySelectorAll('#client-list tr[data-client]').length)`); n != "4" {
		t.Fatalf("the list has %s clients, want 4", n)
	}
	row := `#client-list tr[data-client="` + made[0].ClientID + `"]`
	if got := c.text(row); !strings.Contains(got, longClientName) || !strings.Contains(got, made[0].ClientID) ||
		!strings.Contains(got, "email") || !strings.Contains(got, longRedirect(1)) || !strings.Contains(got, "and 8 more") {
		t.Errorf("the first client's row reads %q", got)
	}
	p.eval(`document.querySelector('#step-clients').scrollIntoView(), ''`)
	p.screenshot("console-step-clients")

	p.section("a new client, made from the application's page")
	var clientPage, secret string
	c.check("new step client's secret", func() {
		p.do(chromedp.Navigate(s.url + appPage))
		p.visible("#client-list")
		p.click("#new-client > summary")
		p.visible("#create-client")
		c.typeInto("#name", "Keycloak authenticator plugin — staff single sign-on for the Frankfurt support centre")
		var uris []string
		for j := range 3 {
			uris = append(uris, longRedirect(j))
		}
		c.setValue("#redirect_uris", strings.Join(uris, "\n"))
		p.click("#factor-call")
		p.click("#create-client")
		p.visible("#client-secret")
		clientPage = strings.TrimPrefix(p.eval(`location.href`), s.url)
		secret = p.eval(`document.querySelector('#client-secret').value`)
	})
	if !strings.HasPrefix(secret, "tfs_") || !strings.Contains(c.text("#shown-once"), "Shown once") {
		t.Fatalf("the new client's page shows secret %q and %q", secret, c.text("#shown-once"))
	}
	if got := c.text("#client-factors"); got != "push, authenticator code, SMS, email" {
		t.Errorf("the new client offers %q", got)
	}
	// The copy button copies (or, where the clipboard is refused, says how), and selects the secret.
	p.click("#copy-client-secret")
	p.do(chromedp.Poll[chromedp.Void](`['Copied', 'Press Ctrl+C'].includes(document.querySelector('#copy-client-secret').textContent)`))
	if got := p.eval(`String(document.activeElement.id + ' ' + (document.querySelector('#client-secret').selectionEnd - document.querySelector('#client-secret').selectionStart))`); got != "client-secret "+strconv.Itoa(len(secret)) {
		t.Errorf("after copying, the focus and selection are %q", got)
	}
	// Reloading shows the page without the secret.
	p.do(chromedp.Reload())
	p.visible("#client-id")
	if n := p.eval(`String(document.querySelectorAll('#client-secret, #secrets').length)`); n != "0" || strings.Contains(p.eval(`document.body.innerHTML`), secret) {
		t.Fatal("the secret is shown again after a reload")
	}
	if got := c.text("#ep-issuer"); got != s.url {
		t.Errorf("the issuer reads %q, want %s (no --public-url: the page's own address)", got, s.url)
	}
	if got := c.text("#ep-discovery"); got != s.url+"/.well-known/openid-configuration" {
		t.Errorf("discovery reads %q", got)
	}
	p.visible("#ep-no-public-url")

	p.section("the Auth0 client's page, its secrets rotated")
	auth0Page := appPage + "/clients/" + auth0.ClientID
	c.check("step client", c.visit(auth0Page, "#endpoints"))
	if got := c.text("#ep-auth0"); got != s.url+"/auth0/"+auth0.ClientID {
		t.Errorf("the Action's redirect URL reads %q", got)
	}
	c.check("rotate the Auth0 secret", c.visit(auth0Page+"/rotate/auth0-secret", "#confirm-submit"))
	p.click("#confirm-submit")
	p.visible("#auth0-secret")
	p.eval(`document.querySelector('#copy-auth0-secret').focus(), ''`)
	if n := p.eval(`String(document.querySelectorAll('#client-secret').length)`); n != "0" {
		t.Error("rotating the Auth0 secret shows a client secret")
	}
	p.do(chromedp.Navigate(s.url + auth0Page + "/rotate/secret"))
	p.visible("#confirm-submit")
	p.click("#confirm-submit")
	p.visible("#client-secret")
	if got := p.eval(`document.querySelector('#client-secret').value`); got == auth0.Secret || !strings.HasPrefix(got, "tfs_") {
		t.Errorf("the rotated secret is %q (was %q)", got, auth0.Secret)
	}
	browsertest.Check(t, c.ctx, "a rotated secret")
	p.eval(`document.querySelector('#secrets').scrollIntoView(), ''`)
	p.screenshot("console-step-client")
	p.do(browsertest.Phone.Emulate(), chromedp.Reload())
	p.visible("#endpoints")
	browsertest.Check(t, c.ctx, "step client after a reload (phone)")
	p.do(browsertest.Desktop.Emulate())
	p.colorScheme("dark")
	c.check("step client, dark", c.visit(appPage+"/clients/"+made[1].ClientID, "#endpoints"))
	p.colorScheme("")

	p.section("every error at once")
	bad := map[string]string{"redirect_uris": "http://acme-global-payments.okta-emea.com/oauth2/v1/authorize/callback",
		"hint_jwks_url": "https://login.microsoftonline.com/common/discovery/v2.0/keys", "auth0_domain": "https://acme.us.auth0.com/",
		"client_jwks_url": "ftp://keys.example.com/jwks"}
	c.check("step client with errors", func() {
		p.do(chromedp.Navigate(s.url + appPage + "/clients/" + made[0].ClientID))
		p.visible("#save-client")
		c.setValue("#name", "")
		for field, v := range bad {
			c.setValue("#"+field, v)
		}
		for _, f := range []string{"push", "totp", "sms", "call", "email"} {
			p.eval(`(document.querySelector('#factor-` + f + `').checked = false, '')`)
		}
		p.click("#save-client")
		p.visible("#client-error")
	})
	for _, field := range []string{"name", "redirect_uris", "hint_issuer", "auth0_domain", "client_jwks_url"} {
		if got := p.eval(`document.querySelector('#` + field + `').getAttribute('aria-invalid') + ' ' + (document.querySelector('#` + field + `-error') || {}).textContent`); !strings.HasPrefix(got, "true ") || len(got) < 15 {
			t.Errorf("%s: %q, want its error beside it", field, got)
		}
	}
	if got := c.text("#factors-error"); got != "Choose at least one factor." {
		t.Errorf("the factors say %q", got)
	}
	if got := c.text("#client-error"); !strings.HasPrefix(got, "Not saved: 6 settings need fixing") {
		t.Errorf("the form says %q", got)
	}
	p.eval(`document.querySelector('#settings').scrollIntoView(), ''`)
	p.screenshot("console-step-client-errors")

	p.section("deleting")
	c.check("delete step client", c.visit(clientPage+"/delete", "#confirm-submit"))
	p.click("#confirm-submit")
	p.visible("#client-list")
	if got := c.text(".flash"); !strings.Contains(got, "Keycloak authenticator plugin") || !strings.Contains(got, "deleted") {
		t.Errorf("after deleting the flash reads %q", got)
	}
	var left []stepClientJSON
	s.cliJSON(&left, "oidc-client", "list", "--app", id, "--json")
	if len(left) != 5 { // the 4 made on the command line, and the first of the two made at each width
		t.Errorf("%d clients left, want 5", len(left))
	}
	for _, cl := range left {
		if strings.HasSuffix(clientPage, "/"+cl.ClientID) {
			t.Errorf("the deleted client %s is still listed", cl.ClientID)
		}
	}
	// The changes are the operator's in the audit trail.
	out, err := s.cli("audit", "list", "--app", id, "--json")
	if err != nil {
		t.Fatalf("audit: %v\n%s", err, out)
	}
	for _, action := range []string{"step_client.created", "step_client.updated", "step_client.deleted"} {
		if !strings.Contains(out, action) {
			t.Errorf("the audit trail lacks %s", action)
		}
	}
	if !strings.Contains(out, "operator:"+longOperator) {
		t.Errorf("the audit trail does not name the operator:\n%s", out)
	}
}
