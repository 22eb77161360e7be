package hostedstep_test

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twofold-auth/twofold/internal/apps"
	"github.com/twofold-auth/twofold/internal/hostedstep"
	"github.com/twofold-auth/twofold/internal/seal"
	"github.com/twofold-auth/twofold/internal/store"
	"github.com/twofold-auth/twofold/internal/twofold"
)

var t0 = time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)

type recorder struct {
	mu     sync.Mutex
	events []twofold.AuditEvent
}

func (r *recorder) Record(_ context.Context, e twofold.AuditEvent) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
}

type fixture struct {
	st      *store.Store
	keys    *seal.Keyring
	clients *hostedstep.Clients
	audit   *recorder
	app     twofold.App
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	st, err := store.OpenSQLite(t.Context(), filepath.Join(t.TempDir(), "twofold.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	keys, err := seal.New(bytes.Repeat([]byte{7}, seal.KeySize))
	if err != nil {
		t.Fatal(err)
	}
	app, _, err := apps.New(st, keys, func() time.Time { return t0 }).Create(t.Context(), apps.CreateParams{Name: "Shop"})
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{st: st, keys: keys, clients: hostedstep.NewClients(st, keys, func() time.Time { return t0 }), audit: &recorder{}, app: app}
	f.clients.SetAuditor(f.audit)
	return f
}

func ptr[T any](v T) *T { return &v }

func TestCreateClient(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	made, err := f.clients.Create(ctx, f.app.ID, hostedstep.Spec{Name: ptr("Okta"), RedirectURIs: ptr([]string{"https://acme.okta.com/oauth2/v1/authorize/callback"})})
	if err != nil {
		t.Fatal(err)
	}
	c := made.Client
	if !strings.HasPrefix(c.ClientID, "tfc_") || len(c.ClientID) != 24 || !strings.HasPrefix(made.Secret, "tfs_") || made.Auth0Secret != "" {
		t.Fatalf("created %+v", made)
	}
	if c.UserMatch != twofold.MatchID || len(c.Factors) != len(twofold.Factors) || c.AllowLoginHint {
		t.Errorf("defaults: %+v", c)
	}
	secret, err := f.clients.Secret(ctx, c, twofold.SecretClient)
	if err != nil || string(secret) != made.Secret {
		t.Fatalf("Secret = %q, %v; want what Create returned", secret, err)
	}
	// At rest the secret is sealed, and bound to its row: another client's row does not open it.
	sealed, _ := f.st.StepClientSecret(ctx, c.ID, twofold.SecretClient)
	if bytes.Contains(sealed, []byte(made.Secret)) {
		t.Fatal("the client secret is stored in clear")
	}
	if _, err := f.keys.Open(sealed, store.StepSecretAD(c.ID+1, twofold.SecretClient)); err == nil {
		t.Fatal("the sealed secret opens under another row's additional data")
	}
	if len(f.audit.events) != 1 || f.audit.events[0].Action != twofold.AuditStepClientCreated || f.audit.events[0].Details["client_id"] != c.ClientID {
		t.Errorf("audit: %+v", f.audit.events)
	}
	for _, e := range f.audit.events {
		for _, v := range e.Details {
			if strings.Contains(v, made.Secret) {
				t.Fatal("the audit trail holds the secret")
			}
		}
	}
}

// Every problem of a spec is reported at once, each beside its field.
func TestCreateReportsEveryProblem(t *testing.T) {
	f := newFixture(t)
	_, err := f.clients.Create(t.Context(), f.app.ID, hostedstep.Spec{
		Name:          ptr(" "),
		RedirectURIs:  ptr([]string{"http://idp.example.com/cb"}),
		Factors:       ptr([]twofold.Factor{"push", "carrier-pigeon"}),
		UserMatch:     ptr(twofold.UserMatch("phone")),
		HintJWKSURL:   ptr("ftp://keys"),
		ClientJWKSURL: ptr("https://user:pw@rp.example.com/jwks"),
		Auth0Domain:   ptr("not a host"),
	})
	var te *twofold.Error
	if !errors.As(err, &te) || te.Code != twofold.CodeInvalidParameter {
		t.Fatalf("err = %v, want an invalid parameter error", err)
	}
	for _, field := range []string{"name", "redirect_uri", "factors", "user_match", "hint_jwks_url", "hint_issuer", "client_jwks_url", "auth0_domain"} {
		if te.Fields[field] == "" {
			t.Errorf("no problem reported for %s: %v", field, te.Fields)
		}
	}
	if list, _ := f.clients.List(t.Context(), 0); len(list) != 0 {
		t.Errorf("an invalid client was stored: %+v", list)
	}
}

// Spec.Check finds what Create and Update refuse, against the client as it is, and changes
// nothing: the console checks a form with it.
func TestSpecCheck(t *testing.T) {
	f := newFixture(t)
	made, err := f.clients.Create(t.Context(), f.app.ID, hostedstep.Spec{Name: ptr("Okta"), RedirectURIs: ptr([]string{"https://idp.example.com/cb"})})
	if err != nil {
		t.Fatal(err)
	}
	cl := made.Client
	for _, tc := range []struct {
		name   string
		base   twofold.StepClient
		sp     hostedstep.Spec
		fields []string // the problems expected; none: valid
	}{
		{"a valid update", cl, hostedstep.Spec{Name: ptr("Okta 2")}, nil},
		{"a name of spaces", cl, hostedstep.Spec{Name: ptr("  ")}, []string{"name"}},
		{"a new client needs a name and a redirect", twofold.StepClient{}, hostedstep.Spec{}, []string{"name", "redirect_uri"}},
		{"hint keys need an issuer", cl, hostedstep.Spec{HintJWKSURL: ptr("https://keys.example.com"), Auth0Domain: ptr("x")},
			[]string{"hint_issuer", "auth0_domain"}},
		// Passwordless sign-in asks for a name people know, through OpenID Connect.
		{"passwordless by Twofold id", cl, hostedstep.Spec{Passwordless: ptr(true)}, []string{"passwordless"}},
		{"passwordless by email", cl, hostedstep.Spec{Passwordless: ptr(true), UserMatch: ptr(twofold.MatchEmail)}, nil},
		{"passwordless by the customer's id", cl, hostedstep.Spec{Passwordless: ptr(true), UserMatch: ptr(twofold.MatchCustomID)}, nil},
		{"passwordless for an Auth0 Action only", cl, hostedstep.Spec{Passwordless: ptr(true), UserMatch: ptr(twofold.MatchEmail),
			RedirectURIs: ptr([]string{}), Auth0Domain: ptr("acme.us.auth0.com")}, []string{"passwordless"}},
	} {
		err := tc.sp.Check(tc.base)
		var te *twofold.Error
		switch {
		case tc.fields == nil && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.fields != nil && (!errors.As(err, &te) || len(te.Fields) != len(tc.fields)):
			t.Errorf("%s: %v, want problems with %v", tc.name, err, tc.fields)
		}
		for _, field := range tc.fields {
			if te != nil && te.Fields[field] == "" {
				t.Errorf("%s: no problem for %s: %v", tc.name, field, te.Fields)
			}
		}
	}
	if got, _ := f.clients.Get(t.Context(), cl.ClientID); got.Name != "Okta" || cl.Name != "Okta" {
		t.Fatalf("Check changed the client: %+v, %+v", got, cl)
	}
}

func TestRedirectURIs(t *testing.T) {
	f := newFixture(t)
	for _, tc := range []struct {
		uri string
		ok  bool
	}{
		{"https://idp.example.com/cb", true},
		{"https://idp.example.com/cb?tenant=1", true},
		{"http://127.0.0.1:3001/callback", true},
		{"http://localhost:3001/callback", true},
		{"http://[::1]/cb", true},
		{"http://idp.example.com/cb", false},
		{"https://idp.example.com/cb#frag", false},
		{"https://idp.example.com/cb#", false},
		{"https://user@idp.example.com/cb", false},
		{"/relative/cb", false},
		{"javascript:alert(1)", false},
		{"https://" + strings.Repeat("a", 2000) + ".com/", false},
	} {
		_, err := f.clients.Create(t.Context(), f.app.ID, hostedstep.Spec{Name: ptr("x"), RedirectURIs: ptr([]string{tc.uri})})
		if (err == nil) != tc.ok {
			t.Errorf("redirect %q: err %v, want ok=%v", tc.uri, err, tc.ok)
		}
	}
}

func TestUpdateRotatesSecrets(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	made, err := f.clients.Create(ctx, f.app.ID, hostedstep.Spec{Name: ptr("App"), RedirectURIs: ptr([]string{"https://app.example.com/cb"})})
	if err != nil {
		t.Fatal(err)
	}
	id := made.Client.ClientID
	// Setting an Auth0 domain makes the Auth0 secret; the client secret stays.
	up, err := f.clients.Update(ctx, id, hostedstep.Spec{Auth0Domain: ptr("Acme.us.auth0.com"), Factors: ptr([]twofold.Factor{twofold.FactorTOTP})}, hostedstep.Rotation{})
	if err != nil {
		t.Fatal(err)
	}
	if up.Secret != "" || up.Auth0Secret == "" || up.Client.Auth0Domain != "acme.us.auth0.com" || len(up.Client.Factors) != 1 {
		t.Fatalf("update: %+v", up)
	}
	if s, _ := f.clients.Secret(ctx, up.Client, twofold.SecretClient); string(s) != made.Secret {
		t.Error("the client secret changed without a rotation")
	}
	if s, _ := f.clients.Secret(ctx, up.Client, twofold.SecretAuth0); string(s) != up.Auth0Secret {
		t.Error("the Auth0 secret is not the one returned")
	}
	rot, err := f.clients.Update(ctx, id, hostedstep.Spec{}, hostedstep.Rotation{Secret: true})
	if err != nil || rot.Secret == "" || rot.Secret == made.Secret || rot.Auth0Secret != "" {
		t.Fatalf("rotate: %+v, %v", rot, err)
	}
	if s, _ := f.clients.Secret(ctx, rot.Client, twofold.SecretClient); string(s) != rot.Secret {
		t.Error("the rotated secret is not stored")
	}
	last := f.audit.events[len(f.audit.events)-1]
	if last.Action != twofold.AuditStepClientUpdated || last.Details["changed"] != "secret" {
		t.Errorf("audit of the rotation: %+v", last)
	}
	if _, err := f.clients.Update(ctx, id, hostedstep.Spec{RedirectURIs: ptr([]string{}), Auth0Domain: ptr("")}, hostedstep.Rotation{}); err == nil {
		t.Error("an update left the client nowhere to send users back to")
	}
	if err := f.clients.Delete(ctx, id); err != nil {
		t.Fatal(err)
	}
	if _, err := f.clients.Get(ctx, id); !errors.Is(err, twofold.ErrNotFound) {
		t.Errorf("deleted client: %v", err)
	}
	if _, err := f.clients.Create(ctx, 999, hostedstep.Spec{Name: ptr("x"), RedirectURIs: ptr([]string{"https://a.example/cb"})}); !errors.Is(err, twofold.ErrNotFound) {
		t.Errorf("a client of an application that does not exist: %v", err)
	}
}
