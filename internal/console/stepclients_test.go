package console_test

import (
	"encoding/json"
	"html"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/twofold-auth/twofold/internal/auth0"
	"github.com/twofold-auth/twofold/internal/console"
	"github.com/twofold-auth/twofold/internal/hostedstep"
	"github.com/twofold-auth/twofold/internal/oidc"
	"github.com/twofold-auth/twofold/internal/twofold"
)

var (
	clientSecretField = regexp.MustCompile(`id="client-secret"[^>]*value="(tfs_[A-Za-z0-9_-]{40,})"`)
	auth0SecretField  = regexp.MustCompile(`id="auth0-secret"[^>]*value="([A-Za-z0-9_-]{40,})"`)
)

// fieldError is the message beside field on the last page, "" if none.
func (b *browser) fieldError(field string) string {
	m := regexp.MustCompile(`id="` + regexp.QuoteMeta(field) + `-error">([^<]*)<`).FindStringSubmatch(b.body)
	if m == nil {
		return ""
	}
	return html.UnescapeString(m[1])
}

// secret returns the secret re shows on the last page, or "".
func (b *browser) secret(re *regexp.Regexp) string {
	if m := re.FindStringSubmatch(b.body); m != nil {
		return m[1]
	}
	return ""
}

// clientForm is a complete, valid form of a step client.
func clientForm(name string, redirects ...string) url.Values {
	return url.Values{"name": {name}, "redirect_uris": {strings.Join(redirects, "\n")}, "user_match": {"email"},
		"factors": {"totp", "push", "sms"}}
}

func (f *fixture) clientSecretIs(cl twofold.StepClient, kind, want string) bool {
	f.t.Helper()
	got, err := f.clients.Secret(f.t.Context(), cl, kind)
	if err != nil {
		f.t.Fatalf("the %s secret: %v", kind, err)
	}
	return string(got) == want
}

// An operator makes a client on its application's page, sees its secret once, edits it,
// rotates both secrets (each shown once), and deletes it; the audit trail names the operator.
func TestStepClientLifecycle(t *testing.T) {
	f := newFixture(t, console.Config{PublicURL: "https://twofold.example.com"})
	b := f.signedIn()
	a, _, _ := f.apps.Create(t.Context(), appsCreate("Shop"))
	appPage := "/console/apps/" + itoa(a.ID)
	b.get(appPage)
	b.expect(http.StatusOK, "")
	b.contains(`id="step-clients"`, `id="no-clients"`, `id="new-client"`, `action="/console/apps/`+itoa(a.ID)+`/clients/new"`)

	// Made from the application's page: the secret is on the client's page once.
	form := clientForm("Okta <prod>", "https://acme.okta.com/oauth2/v1/authorize/callback", "https://acme.okta.com/cb2")
	b.post(appPage+"/clients/new", form, true)
	list, _ := f.clients.List(t.Context(), a.ID)
	if len(list) != 1 {
		t.Fatalf("clients after making one: %+v", list)
	}
	cl := list[0]
	clientPage := appPage + "/clients/" + cl.ClientID
	b.expect(http.StatusSeeOther, clientPage)
	if cl.Name != "Okta <prod>" || !slices.Equal(cl.Factors, []twofold.Factor{"totp", "push", "sms"}) || cl.UserMatch != twofold.MatchEmail ||
		len(cl.RedirectURIs) != 2 || cl.AllowLoginHint {
		t.Fatalf("made %+v", cl)
	}
	b.get(clientPage)
	b.expect(http.StatusOK, "")
	secret := b.secret(clientSecretField)
	if secret == "" || !f.clientSecretIs(cl, twofold.SecretClient, secret) {
		t.Fatalf("the page shows secret %q, not the client's:\n%s", secret, b.body)
	}
	b.contains("Shown once", `data-copy="#client-secret"`, "Step client Okta &lt;prod&gt; made.", cl.ClientID)
	b.lacks(`id="auth0-secret"`)
	if b.last.Header.Get("Cache-Control") != "no-store" {
		t.Fatal("the secret's page may be cached")
	}
	for _, p := range []string{clientPage, appPage, "/console/apps", "/console/audit"} {
		b.get(p) // reloading shows it no more, and nor does any other page
		b.expect(http.StatusOK, "")
		b.lacks(secret, `id="client-secret"`)
	}
	// The application's page lists it: name, client id, how users are named, factors, URIs.
	b.get(appPage)
	b.contains(`id="client-list"`, `href="`+clientPage+`"`, "Okta &lt;prod&gt;", "email", "authenticator code, push, SMS",
		"https://acme.okta.com/cb2")

	// Editing: the whole form, the order of the factors kept.
	b.get(clientPage)
	b.contains(`id="factor-totp" checked`, `value="email" selected`, "https://acme.okta.com/cb2")
	edit := clientForm("Okta", "https://acme.okta.com/cb2")
	edit["factors"] = []string{"totp", "push"}
	edit.Set("allow_login_hint", "on")
	b.post(clientPage, edit, true)
	b.expect(http.StatusSeeOther, clientPage)
	cl, _ = f.clients.Get(t.Context(), cl.ClientID)
	if cl.Name != "Okta" || !slices.Equal(cl.RedirectURIs, []string{"https://acme.okta.com/cb2"}) || !cl.AllowLoginHint ||
		!slices.Equal(cl.Factors, []twofold.Factor{"totp", "push"}) {
		t.Fatalf("saved %+v", cl)
	}
	b.get(clientPage)
	b.contains("Settings saved.", `id="client-passwordless">off`)
	b.lacks(`id="secrets"`)

	// Passwordless sign-in: refused beside its box for users named by Twofold id, then allowed.
	pl := clientForm("Okta", "https://acme.okta.com/cb2")
	pl["factors"] = []string{"totp", "push"}
	pl.Set("allow_login_hint", "on")
	pl.Set("passwordless", "on")
	pl.Set("user_match", "id")
	b.post(clientPage, pl, true)
	b.expect(http.StatusUnprocessableEntity, "")
	if got := b.fieldError("passwordless"); !strings.HasPrefix(got, "Passwordless sign-in needs users named by email or custom_id") {
		t.Errorf("passwordless by Twofold id: %q", got)
	}
	b.contains(`id="passwordless" checked aria-invalid="true"`)
	pl.Set("user_match", "email")
	b.post(clientPage, pl, true)
	b.expect(http.StatusSeeOther, clientPage)
	if cl, _ = f.clients.Get(t.Context(), cl.ClientID); !cl.Passwordless {
		t.Fatalf("passwordless not saved: %+v", cl)
	}
	b.get(clientPage)
	b.contains(`id="client-passwordless">allowed`, `id="passwordless" checked`, "or not at all for passwordless sign-in")
	b.post(clientPage, edit, true) // the form without the box turns it off
	b.expect(http.StatusSeeOther, clientPage)
	if cl, _ = f.clients.Get(t.Context(), cl.ClientID); cl.Passwordless {
		t.Fatalf("passwordless still on: %+v", cl)
	}

	// Rotating the client secret: a confirmation, then the new secret once; the old one is gone.
	b.get(clientPage + "/rotate/secret")
	b.contains("Rotate the client secret of Okta?", `id="confirm-submit"`)
	b.post(clientPage+"/rotate/secret", nil, true)
	b.expect(http.StatusSeeOther, clientPage)
	b.get(clientPage)
	rotated := b.secret(clientSecretField)
	if rotated == "" || rotated == secret || !f.clientSecretIs(cl, twofold.SecretClient, rotated) {
		t.Fatalf("after rotating the page shows %q (was %q)", rotated, secret)
	}
	b.contains("Shown once", "the old one no longer works")
	b.get(clientPage)
	b.lacks(rotated)

	// An Auth0 domain set by editing makes the Action's secret, shown once; it rotates too.
	b.get(clientPage + "/rotate/auth0-secret")
	b.expect(http.StatusNotFound, "") // not before there is an Auth0 domain
	b.get(clientPage)
	edit.Set("auth0_domain", "acme.us.auth0.com")
	b.post(clientPage, edit, true)
	b.expect(http.StatusSeeOther, clientPage)
	b.get(clientPage)
	action := b.secret(auth0SecretField)
	cl, _ = f.clients.Get(t.Context(), cl.ClientID)
	if action == "" || !f.clientSecretIs(cl, twofold.SecretAuth0, action) {
		t.Fatalf("the Auth0 secret shown is %q:\n%s", action, b.body)
	}
	b.contains("https://twofold.example.com/auth0/"+cl.ClientID, `id="rotate-auth0-secret"`)
	b.lacks(`id="client-secret"`) // the client secret did not change
	b.get(clientPage + "/rotate/auth0-secret")
	b.post(clientPage+"/rotate/auth0-secret", nil, true)
	b.expect(http.StatusSeeOther, clientPage)
	b.get(clientPage)
	if again := b.secret(auth0SecretField); again == "" || again == action || !f.clientSecretIs(cl, twofold.SecretAuth0, again) {
		t.Fatalf("after rotating the Auth0 secret the page shows %q (was %q)", again, action)
	}
	if !f.clientSecretIs(cl, twofold.SecretClient, rotated) {
		t.Fatal("rotating the Auth0 secret changed the client secret")
	}

	// Deleting asks first.
	b.get(clientPage + "/delete")
	b.contains("Delete the step client Okta?", `id="confirm-submit"`)
	b.post(clientPage+"/delete", nil, true)
	b.expect(http.StatusSeeOther, appPage+"#step-clients")
	if _, err := f.clients.Get(t.Context(), cl.ClientID); err == nil {
		t.Fatal("the client is still there")
	}
	b.get(appPage)
	b.contains("Step client Okta deleted.", `id="no-clients"`)
	b.get(clientPage)
	b.expect(http.StatusNotFound, "")

	// Each change is in the audit trail, by the operator, naming what changed (never a secret).
	events, _ := f.audit.List(t.Context(), twofold.AuditFilter{AppID: a.ID})
	var got []string
	for _, e := range events {
		if !strings.HasPrefix(e.Action, "step_client.") {
			continue
		}
		if !strings.HasPrefix(e.Actor, "operator:op") || e.Details["client_id"] != cl.ClientID {
			t.Errorf("audit event %+v", e)
		}
		raw, _ := json.Marshal(e)
		for _, s := range []string{secret, rotated, action} {
			if strings.Contains(string(raw), s) {
				t.Errorf("the audit trail holds a secret: %s", raw)
			}
		}
		got = append(got, e.Action+" "+e.Details["changed"])
	}
	want := []string{"step_client.created ", "step_client.updated name,redirect_uris,factors,allow_login_hint",
		"step_client.updated passwordless", "step_client.updated passwordless", "step_client.updated secret",
		"step_client.updated auth0_domain", "step_client.updated auth0_secret", "step_client.deleted "}
	if !slices.Equal(got, want) {
		t.Errorf("audit trail:\n%q\nwant\n%q", got, want)
	}
}

// A form with many problems reports each beside its field at once, keeps what was typed, and
// saves nothing; on the new-client page and on the client's page alike.
func TestStepClientFormErrors(t *testing.T) {
	f := newFixture(t, console.Config{})
	b := f.signedIn()
	a, _, _ := f.apps.Create(t.Context(), appsCreate("Shop"))
	appPage := "/console/apps/" + itoa(a.ID)
	bad := url.Values{"name": {"  "}, "redirect_uris": {"https://ok.example.com/cb\nhttp://idp.example.com/cb"}, "user_match": {"phone"},
		"hint_jwks_url": {"https://login.microsoftonline.com/common/discovery/v2.0/keys"}, "client_jwks_url": {"ftp://keys.example.com"},
		"auth0_domain": {"https://acme.us.auth0.com/"}}
	want := map[string]string{
		"name":            "The name is required.",
		"redirect_uris":   `"http://idp.example.com/cb" must be https (http only to localhost).`,
		"factors":         "Choose at least one factor.",
		"user_match":      "This must be id, custom_id or email.",
		"hint_issuer":     "The issuer is required with the identity provider's key set",
		"client_jwks_url": "The key set URL must be an http(s) URL.",
		"auth0_domain":    "The domain must be a host name, like example.us.auth0.com.",
	}
	check := func(where string) {
		t.Helper()
		b.expect(http.StatusUnprocessableEntity, "")
		for field, text := range want {
			if got := b.fieldError(field); !strings.HasPrefix(got, text) {
				t.Errorf("%s: beside %s %q, want %q", where, field, got, text)
			}
		}
		b.contains("Not saved: 7 settings need fixing, each shown beside its field.", `id="name" value=""`,
			"https://ok.example.com/cb\nhttp://idp.example.com/cb</textarea>", `value="https://acme.us.auth0.com/"`,
			`id="redirect_uris" rows="3" spellcheck="false" autocapitalize="off" placeholder="https://acme.okta.com/oauth2/v1/authorize/callback" aria-invalid="true"`)
	}
	b.get(appPage)
	b.post(appPage+"/clients/new", bad, true)
	check("new")
	if list, _ := f.clients.List(t.Context(), 0); len(list) != 0 {
		t.Fatalf("an invalid form made %+v", list)
	}
	// The new-client page has the same form.
	b.get(appPage + "/clients/new")
	b.expect(http.StatusOK, "")
	b.contains(`id="factor-push" checked`, `id="factor-email" checked`, `value="id" selected`)

	made, err := f.clients.Create(t.Context(), a.ID, hostedstep.Spec{Name: ptr("Okta"), RedirectURIs: &[]string{"https://acme.okta.com/cb"}})
	if err != nil {
		t.Fatal(err)
	}
	clientPage := appPage + "/clients/" + made.Client.ClientID
	b.get(clientPage)
	b.post(clientPage, bad, true)
	check("edit")
	b.contains(`id="endpoints"`) // the rest of the page is still there
	if cl, _ := f.clients.Get(t.Context(), made.Client.ClientID); cl.Name != "Okta" || cl.UpdatedAt != made.Client.UpdatedAt {
		t.Fatalf("an invalid form changed the client: %+v", cl)
	}
	// Too many redirect URIs and a factor that is not one: the service's words.
	b.get(clientPage)
	var uris []string
	for i := range 11 {
		uris = append(uris, "https://idp.example.com/cb/"+strings.Repeat("x", i))
	}
	many := clientForm("Okta", uris...)
	many["factors"] = []string{"push", "carrier-pigeon"}
	b.post(clientPage, many, true)
	b.expect(http.StatusUnprocessableEntity, "")
	if got := b.fieldError("redirect_uris"); got != "At most 10." {
		t.Errorf("11 redirect URIs: %q", got)
	}
	if got := b.fieldError("factors"); !strings.Contains(got, "carrier-pigeon") {
		t.Errorf("an unknown factor: %q", got)
	}
}

// What is refused: posts without the page's CSRF token or from another site, anyone without a
// session, another application's client through this application's address, the console's
// own application, a secret that a client does not have.
func TestStepClientRefusals(t *testing.T) {
	f := newFixture(t, console.Config{})
	b := f.signedIn()
	shop, _, _ := f.apps.Create(t.Context(), appsCreate("Shop"))
	other, _, _ := f.apps.Create(t.Context(), appsCreate("Other"))
	theirs, err := f.clients.Create(t.Context(), other.ID, hostedstep.Spec{Name: ptr("Theirs"), RedirectURIs: &[]string{"https://other.example.com/cb"}})
	if err != nil {
		t.Fatal(err)
	}
	ours, err := f.clients.Create(t.Context(), shop.ID, hostedstep.Spec{Name: ptr("Ours"), RedirectURIs: &[]string{"https://shop.example.com/cb"}})
	if err != nil {
		t.Fatal(err)
	}
	shopPage := "/console/apps/" + itoa(shop.ID)
	ourPage := shopPage + "/clients/" + ours.Client.ClientID
	unchanged := func(what string) {
		t.Helper()
		for _, c := range []hostedstep.Created{theirs, ours} {
			got, err := f.clients.Get(t.Context(), c.Client.ClientID)
			if err != nil || got.Name != c.Client.Name || got.UpdatedAt != c.Client.UpdatedAt || !f.clientSecretIs(got, twofold.SecretClient, c.Secret) {
				t.Fatalf("%s changed client %s: %+v %v", what, c.Client.ClientID, got, err)
			}
		}
		if list, _ := f.clients.List(t.Context(), 0); len(list) != 2 {
			t.Fatalf("%s: %d clients", what, len(list))
		}
	}
	posts := []struct {
		path string
		form url.Values
	}{
		{shopPage + "/clients/new", clientForm("New", "https://new.example.com/cb")},
		{ourPage, clientForm("Renamed", "https://shop.example.com/cb")},
		{ourPage + "/rotate/secret", nil},
		{ourPage + "/delete", nil},
	}

	// Without the page's CSRF token, with another's, or from another site.
	for _, p := range posts {
		b.get(shopPage)
		token := b.csrf()
		form := url.Values{}
		for k, v := range p.form {
			form[k] = v
		}
		b.post(p.path, form, false)
		b.expect(http.StatusForbidden, "")
		form.Set("csrf", "x"+token)
		b.post(p.path, form, false)
		b.expect(http.StatusForbidden, "")
		b.origin = "https://evil.example"
		form.Set("csrf", token)
		b.post(p.path, form, false)
		b.expect(http.StatusForbidden, "")
		b.origin = "http://" + host
	}
	unchanged("a forged post")

	// Without a session: pages go to the sign-in form, posts are refused.
	anon := f.browser()
	for _, p := range []string{shopPage + "/clients/new", ourPage, ourPage + "/rotate/secret", ourPage + "/delete"} {
		anon.get(p)
		anon.expect(http.StatusSeeOther, "/console/signin")
	}
	for _, p := range posts {
		anon.get("/console/signin")
		anon.post(p.path, p.form, true) // the sign-in form's token, which is no session's
		anon.expect(http.StatusUnauthorized, "")
		anon.lacks(ours.Client.ClientID)
	}
	// An operator who passed the password but not the second factor is not signed in either.
	o := f.operator("half@example.com", true)
	half := f.browser()
	half.password(o.op.Email, o.pw)
	half.get(ourPage)
	half.expect(http.StatusSeeOther, "/console/signin")
	unchanged("a post without a session")

	// Another application's client is not found through this application's address.
	theirsHere := shopPage + "/clients/" + theirs.Client.ClientID
	for _, p := range []string{theirsHere, theirsHere + "/rotate/secret", theirsHere + "/delete", shopPage + "/clients/tfc_nothing"} {
		b.get(p)
		b.expect(http.StatusNotFound, "")
		b.lacks("Theirs")
	}
	for _, p := range []string{theirsHere, theirsHere + "/rotate/secret", theirsHere + "/delete"} {
		b.get(shopPage)
		b.post(p, clientForm("Stolen", "https://evil.example.com/cb"), true)
		b.expect(http.StatusNotFound, "")
		b.lacks("tfs_")
	}
	b.get(shopPage)
	b.lacks(theirs.Client.ClientID) // nor listed
	unchanged("another application's address")

	// A secret the client does not have, or no secret at all.
	for _, kind := range []string{"auth0-secret", "password", ""} {
		b.get(ourPage + "/rotate/" + kind)
		b.expect(http.StatusNotFound, "")
		b.get(ourPage)
		b.post(ourPage+"/rotate/"+kind, nil, true)
		b.expect(http.StatusNotFound, "")
	}
	unchanged("rotating what is not there")

	// The console's own application has no step clients.
	con, err := f.apps.EnsureConsole(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	conPage := "/console/apps/" + itoa(con.ID)
	b.get(conPage + "/clients/new")
	b.expect(http.StatusNotFound, "")
	b.get(shopPage)
	b.post(conPage+"/clients/new", clientForm("Console", "https://console.example.com/cb"), true)
	b.expect(http.StatusNotFound, "")
	if list, _ := f.clients.List(t.Context(), con.ID); len(list) != 0 {
		t.Fatalf("the console's application has clients: %+v", list)
	}
	unchanged("the console's application")
}

// The client's page gives the endpoints Twofold's provider serves: under the public URL, or
// without one the address the console was opened at, saying so.
func TestStepClientEndpoints(t *testing.T) {
	for _, tc := range []struct {
		publicURL, issuer string
		warned            bool
	}{
		{"https://twofold.example.com/", "https://twofold.example.com", false},
		{"", "http://" + host, true},
	} {
		f := newFixture(t, console.Config{PublicURL: tc.publicURL})
		b := f.signedIn()
		a, _, _ := f.apps.Create(t.Context(), appsCreate("Shop"))
		made, err := f.clients.Create(t.Context(), a.ID, hostedstep.Spec{Name: ptr("Auth0"), Auth0Domain: ptr("acme.us.auth0.com")})
		if err != nil {
			t.Fatal(err)
		}
		b.get("/console/apps/" + itoa(a.ID) + "/clients/" + made.Client.ClientID)
		b.expect(http.StatusOK, "")
		if got := strings.Contains(b.body, `id="ep-no-public-url"`); got != tc.warned {
			t.Errorf("%q: warned of no public URL: %v", tc.publicURL, got)
		}

		// The provider's own discovery document, at the same issuer, names the same endpoints.
		p, err := oidc.New(oidc.Config{Issuer: tc.issuer})
		if err != nil {
			t.Fatal(err)
		}
		mux := http.NewServeMux()
		p.Routes(mux)
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, httptest.NewRequest("GET", "/.well-known/openid-configuration", nil))
		var doc map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &doc); err != nil {
			t.Fatal(err)
		}
		for id, want := range map[string]any{"ep-issuer": doc["issuer"], "ep-authorize": doc["authorization_endpoint"],
			"ep-token": doc["token_endpoint"], "ep-jwks": doc["jwks_uri"], "ep-discovery": tc.issuer + "/.well-known/openid-configuration",
			"ep-auth0": tc.issuer + auth0.Path + made.Client.ClientID} {
			m := regexp.MustCompile(`id="` + id + `">([^<]*)<`).FindStringSubmatch(b.body)
			if m == nil || m[1] != want {
				t.Errorf("%s: %q, want %v", id, m, want)
			}
		}
	}
}
