package oidc_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"golang.org/x/oauth2"

	"github.com/twofold-auth/twofold/internal/apps"
	"github.com/twofold-auth/twofold/internal/deliver"
	"github.com/twofold-auth/twofold/internal/hostedstep"
	"github.com/twofold-auth/twofold/internal/masterkey"
	"github.com/twofold-auth/twofold/internal/oidc"
	"github.com/twofold-auth/twofold/internal/onetouch"
	"github.com/twofold-auth/twofold/internal/otp"
	"github.com/twofold-auth/twofold/internal/passwordless"
	"github.com/twofold-auth/twofold/internal/recovery"
	"github.com/twofold-auth/twofold/internal/seal"
	"github.com/twofold-auth/twofold/internal/signingkeys"
	"github.com/twofold-auth/twofold/internal/store"
	"github.com/twofold-auth/twofold/internal/twofold"
	"github.com/twofold-auth/twofold/internal/users"
	"github.com/twofold-auth/twofold/internal/verify"
	"github.com/twofold-auth/twofold/internal/web/step"
)

// op is an OpenID provider over real services and a real SQLite store, on a loopback server.
// Its stand-in for the step page passes the step with the user's authenticator code, given in
// the page's query (?totp=...), and then calls the provider's Finish, as the page does.
type op struct {
	t        *testing.T
	srv      *httptest.Server
	st       *store.Store
	keys     *seal.Keyring
	app      twofold.App
	clients  *hostedstep.Clients
	steps    *hostedstep.Steps
	verify   *verify.Service
	onetouch *onetouch.Service
	users    *users.Service
	p        *oidc.Provider
	phones   int
	recovery *recovery.Service
}

func newOP(t *testing.T) *op {
	t.Helper()
	st, err := store.OpenSQLite(t.Context(), filepath.Join(t.TempDir(), "twofold.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	keys, _ := seal.New(bytes.Repeat([]byte{9}, seal.KeySize))
	log := slog.New(slog.DiscardHandler)
	outbox := deliver.NewOutbox(st, keys, log, nil)
	router, err := deliver.NewRouter(outbox, nil, deliver.RouterConfig{}, nil, log)
	if err != nil {
		t.Fatal(err)
	}
	o := &op{t: t, st: st, keys: keys, users: users.New(st, nil), verify: verify.New(st, router, keys, verify.Config{}, nil)}
	recoveryKey, err := masterkey.RecoveryKey(t.Context(), st, keys)
	if err != nil {
		t.Fatal(err)
	}
	o.recovery = recovery.New(st, recoveryKey, nil, nil)
	o.verify.SetRecovery(o.recovery)
	o.app, _, err = apps.New(st, keys, nil).Create(t.Context(), apps.CreateParams{Name: "Shop"})
	if err != nil {
		t.Fatal(err)
	}
	o.clients = hostedstep.NewClients(st, keys, nil)
	o.onetouch = onetouch.New(st, onetouch.Config{}, onetouch.Hooks{}, nil)
	o.steps = hostedstep.NewSteps(st, keys, o.verify, o.onetouch, hostedstep.Config{}, nil)
	o.steps.SetPasswordless(passwordless.New(st, o.onetouch, passwordless.Config{}, nil))
	mux := http.NewServeMux()
	o.srv = httptest.NewServer(mux)
	t.Cleanup(o.srv.Close)
	o.p, err = oidc.New(oidc.Config{Issuer: o.srv.URL, Clients: o.clients, Steps: o.steps, Keys: signingkeys.New(st, keys, nil),
		Remote: oidc.NewKeySets(http.DefaultClient, nil), Marks: st, MACs: keys})
	if err != nil {
		t.Fatal(err)
	}
	o.p.Routes(mux)
	mux.HandleFunc("GET /step/{handle}", func(w http.ResponseWriter, r *http.Request) {
		h := r.PathValue("handle")
		v, err := o.steps.Open(r.Context(), h, step.Browser(r, h))
		if err != nil {
			http.Error(w, err.Error(), http.StatusNotFound)
			return
		}
		if name := r.URL.Query().Get("signin"); name != "" { // a passwordless step's username form
			sg, err := o.steps.AskPasswordless(r.Context(), v, name, "192.0.2.1", "")
			if err != nil {
				http.Error(w, err.Error(), http.StatusForbidden)
				return
			}
			_, _ = io.WriteString(w, "number "+sg.Number)
			return
		}
		if r.URL.Query().Has("await") { // a passwordless step's wait: on when approved
			if _, err := o.steps.SigninStatus(r.Context(), v); err != nil {
				http.Error(w, err.Error(), http.StatusForbidden)
				return
			}
			if v, err = o.steps.Open(r.Context(), h, step.Browser(r, h)); err != nil {
				http.Error(w, err.Error(), http.StatusNotFound)
				return
			}
		} else if !r.URL.Query().Has("totp") && !r.URL.Query().Has("cancel") {
			_, _ = io.WriteString(w, "the step page; the request: "+string(v.Session.Request))
			return
		}
		if code := r.URL.Query().Get("totp"); code != "" {
			if _, err := o.steps.Check(r.Context(), v, code); err != nil {
				http.Error(w, err.Error(), http.StatusForbidden)
				return
			}
			if v, err = o.steps.Open(r.Context(), h, step.Browser(r, h)); err != nil {
				http.Error(w, err.Error(), http.StatusNotFound)
				return
			}
		}
		if r.URL.Query().Has("cancel") {
			_ = o.p.Refuse(w, r, v, "The user gave up.")
			return
		}
		if err := o.p.Finish(w, r, v); err != nil {
			http.Error(w, err.Error(), http.StatusConflict)
		}
	})
	return o
}

// user registers a user with an authenticator and returns it and its TOTP key.
func (o *op) user(email string) (twofold.User, otp.Key) {
	o.t.Helper()
	o.phones++
	u, _, err := o.users.Register(o.t.Context(), o.app.ID, users.Contact{Email: email, Cellphone: "201555" + strconv.Itoa(1000+o.phones), CountryCode: "1"})
	if err != nil {
		o.t.Fatal(err)
	}
	enr, err := o.verify.Enroll(o.t.Context(), o.app, u.ID, "", 0)
	if err != nil {
		o.t.Fatal(err)
	}
	key, _ := otp.ParseURI(enr.URI)
	return u, key
}

func ptr[T any](v T) *T { return &v }

func (o *op) client(sp hostedstep.Spec) hostedstep.Created {
	o.t.Helper()
	if sp.Name == nil {
		sp.Name = ptr("RP")
	}
	if sp.RedirectURIs == nil {
		sp.RedirectURIs = ptr([]string{"https://rp.example.com/callback"})
	}
	made, err := o.clients.Create(o.t.Context(), o.app.ID, sp)
	if err != nil {
		o.t.Fatal(err)
	}
	return made
}

// browser follows redirects within the provider and stops at anything else (the relying
// party's redirect URI), returning the last response.
type browser struct {
	t  *testing.T
	hc *http.Client
}

func newBrowser(t *testing.T, o *op) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, hc: &http.Client{Jar: jar, CheckRedirect: func(req *http.Request, via []*http.Request) error {
		if req.URL.Host != strings.TrimPrefix(o.srv.URL, "http://") {
			return http.ErrUseLastResponse
		}
		return nil
	}}}
}

func (b *browser) get(u string) (*http.Response, string) {
	b.t.Helper()
	resp, err := b.hc.Get(u)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

// signHS256 signs claims with a client secret.
func signHS256(t *testing.T, secret string, claims map[string]any) string {
	t.Helper()
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: []byte(secret)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := jwt.Signed(s).Claims(claims).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func signWith(t *testing.T, key any, alg jose.SignatureAlgorithm, kid string, claims map[string]any) string {
	t.Helper()
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: jose.JSONWebKey{Key: key, KeyID: kid}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := jwt.Signed(s).Claims(claims).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// jwksServer serves the public halves of keys as a JWKS.
func jwksServer(t *testing.T, keys map[string]any) string {
	set := jose.JSONWebKeySet{}
	for kid, k := range keys {
		set.Keys = append(set.Keys, jose.JSONWebKey{Key: k, KeyID: kid, Use: "sig"})
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(set)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func pkce() (verifier, challenge string) {
	verifier = oauth2.GenerateVerifier()
	sum := sha256.Sum256([]byte(verifier))
	return verifier, base64.RawURLEncoding.EncodeToString(sum[:])
}

// The code flow as an ordinary relying party runs it with golang.org/x/oauth2 and go-oidc: the
// user named in a request object signed with the client secret, PKCE, client_secret_basic; the
// id token verifies against the provider's JWKS with the right sub, amr, acr and nonce.
func TestCodeFlowWithOIDCLibraries(t *testing.T) {
	o := newOP(t)
	ctx := t.Context()
	u, key := o.user("ana@example.com")
	made := o.client(hostedstep.Spec{UserMatch: ptr(twofold.MatchEmail)})
	provider, err := gooidc.NewProvider(ctx, o.srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	conf := oauth2.Config{ClientID: made.Client.ClientID, ClientSecret: made.Secret, Endpoint: provider.Endpoint(),
		RedirectURL: "https://rp.example.com/callback", Scopes: []string{gooidc.ScopeOpenID}}
	verifier, _ := pkce()
	now := time.Now()
	request := signHS256(t, made.Secret, map[string]any{"iss": made.Client.ClientID, "aud": o.srv.URL,
		"exp": now.Add(5 * time.Minute).Unix(), "iat": now.Unix(), "jti": "r1", "login_hint": "ana@example.com"})
	authURL := conf.AuthCodeURL("st4te", oauth2.S256ChallengeOption(verifier), gooidc.Nonce("n0nce"), oauth2.SetAuthURLParam("request", request),
		oauth2.SetAuthURLParam("ui_locales", "fr-CA fr"))

	b := newBrowser(t, o)
	resp, body := b.get(authURL)
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("authorize: %d", resp.StatusCode)
	}
	if !strings.Contains(body, `"ui_locales":"fr-CA fr"`) {
		t.Errorf("the page is not told the languages asked for: %s", body)
	}
	page := resp.Request.URL
	if !strings.HasPrefix(page.Path, "/step/") {
		t.Fatalf("authorize went to %s, want the step page", page)
	}
	// The page's URL alone (another browser) does not open the step.
	if r, _ := (&browser{t: t, hc: &http.Client{}}).get(page.String()); r.StatusCode != http.StatusNotFound {
		t.Fatalf("the step opened without its cookie: %d", r.StatusCode)
	}
	resp, _ = b.get(page.String() + "?totp=" + key.Code(time.Now()))
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("finish: %d", resp.StatusCode)
	}
	back, _ := url.Parse(resp.Header.Get("Location"))
	if back.Host != "rp.example.com" || back.Query().Get("state") != "st4te" || back.Query().Get("iss") != o.srv.URL || back.Query().Get("code") == "" {
		t.Fatalf("back to %s", back)
	}
	tok, err := conf.Exchange(ctx, back.Query().Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := tok.Extra("id_token").(string)
	idt, err := provider.Verifier(&gooidc.Config{ClientID: made.Client.ClientID}).Verify(ctx, raw)
	if err != nil {
		t.Fatal(err)
	}
	var claims struct {
		AMR      []string `json:"amr"`
		ACR      string   `json:"acr"`
		Name     string   `json:"preferred_username"`
		AuthTime int64    `json:"auth_time"`
	}
	if err := idt.Claims(&claims); err != nil {
		t.Fatal(err)
	}
	if idt.Subject != strconv.FormatInt(u.ID, 10) || idt.Nonce != "n0nce" || strings.Join(claims.AMR, ",") != "otp" ||
		claims.ACR != "urn:twofold:acr:mfa" || claims.Name != "ana@example.com" || claims.AuthTime == 0 {
		t.Fatalf("id token: sub %s nonce %s %+v", idt.Subject, idt.Nonce, claims)
	}
	// The code works once.
	if _, err := conf.Exchange(ctx, back.Query().Get("code"), oauth2.VerifierOption(verifier)); err == nil || !strings.Contains(err.Error(), "invalid_grant") {
		t.Fatalf("the code redeemed twice: %v", err)
	}
}

// Entra ID's external authentication methods: response_type id_token, form_post, the user
// named by an id_token_hint its IdP signed; the id token comes back in a form post, with the
// hint's sub and the acr Entra asked for.
func TestIDTokenHintFormPost(t *testing.T) {
	o := newOP(t)
	ctx := t.Context()
	_, key := o.user("ana@example.com")
	idpKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	made := o.client(hostedstep.Spec{UserMatch: ptr(twofold.MatchEmail), HintJWKSURL: ptr(jwksServer(t, map[string]any{"idp1": &idpKey.PublicKey})),
		HintIssuer: ptr("https://login.example.com/tenant/v2.0")})
	now := time.Now()
	// The same keys sign for every tenant: a hint from another tenant names nobody here.
	foreign := signWith(t, idpKey, jose.RS256, "idp1", map[string]any{"iss": "https://login.example.com/other-tenant/v2.0",
		"aud": made.Client.ClientID, "sub": "x", "preferred_username": "ana@example.com", "exp": now.Add(time.Hour).Unix()})
	fq := url.Values{"client_id": {made.Client.ClientID}, "redirect_uri": {"https://rp.example.com/callback"}, "response_type": {"id_token"},
		"scope": {"openid"}, "nonce": {"n"}, "id_token_hint": {foreign}}
	if resp, body := newBrowser(t, o).get(o.srv.URL + "/oauth2/authorize?" + fq.Encode()); !strings.Contains(body, `name="error" value="invalid_request"`) {
		t.Fatalf("a hint from another tenant: %d\n%s", resp.StatusCode, body)
	}
	hint := signWith(t, idpKey, jose.RS256, "idp1", map[string]any{"iss": "https://login.example.com/tenant/v2.0",
		"aud": made.Client.ClientID, "sub": "pairwise-sub-123", "preferred_username": "ana@example.com",
		"iat": now.Add(-time.Minute).Unix(), "exp": now.Add(time.Hour).Unix()})
	claimsParam := `{"id_token":{"acr":{"essential":true,"values":["possessionorinherence"]},"amr":{"essential":true,"values":["otp","pop","sms"]}}}`
	q := url.Values{"client_id": {made.Client.ClientID}, "redirect_uri": {"https://rp.example.com/callback"},
		"response_type": {"id_token"}, "response_mode": {"form_post"}, "scope": {"openid"}, "nonce": {"entra-nonce"},
		"state": {"s"}, "id_token_hint": {hint}, "claims": {claimsParam}}
	b := newBrowser(t, o)
	resp, _ := b.get(o.srv.URL + "/oauth2/authorize?" + q.Encode())
	page := resp.Request.URL
	resp, body := b.get(page.String() + "?totp=" + key.Code(time.Now()))
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `action="https://rp.example.com/callback"`) {
		t.Fatalf("form post: %d\n%s", resp.StatusCode, body)
	}
	m := regexp.MustCompile(`name="id_token" value="([^"]+)"`).FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no id_token in the form post:\n%s", body)
	}
	provider, err := gooidc.NewProvider(ctx, o.srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	idt, err := provider.Verifier(&gooidc.Config{ClientID: made.Client.ClientID}).Verify(ctx, m[1])
	if err != nil {
		t.Fatal(err)
	}
	var claims struct {
		ACR string   `json:"acr"`
		AMR []string `json:"amr"`
	}
	_ = idt.Claims(&claims)
	if idt.Subject != "pairwise-sub-123" || idt.Nonce != "entra-nonce" || claims.ACR != "possessionorinherence" || claims.AMR[0] != "otp" {
		t.Fatalf("id token: sub %q nonce %q %+v", idt.Subject, idt.Nonce, claims)
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "form-action https://rp.example.com") || !strings.Contains(csp, "frame-ancestors 'none'") {
		t.Errorf("form post CSP: %s", csp)
	}
}

// private_key_jwt: the client authenticates at the token endpoint with a JWT signed by its own
// key (published at its JWKS URL), and signs its request object with it too; an assertion
// works once.
func TestPrivateKeyJWT(t *testing.T) {
	o := newOP(t)
	u, key := o.user("ana@example.com")
	ck, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	made := o.client(hostedstep.Spec{ClientJWKSURL: ptr(jwksServer(t, map[string]any{"c1": &ck.PublicKey}))})
	id := made.Client.ClientID
	now := time.Now()
	request := signWith(t, ck, jose.ES256, "c1", map[string]any{"iss": id, "aud": o.srv.URL, "exp": now.Add(time.Minute).Unix(),
		"login_hint": strconv.FormatInt(u.ID, 10), "redirect_uri": "https://rp.example.com/callback", "response_type": "code",
		"scope": "openid", "state": "s"})
	b := newBrowser(t, o)
	resp, _ := b.get(o.srv.URL + "/oauth2/authorize?" + url.Values{"client_id": {id}, "request": {request}}.Encode())
	resp, _ = b.get(resp.Request.URL.String() + "?totp=" + key.Code(time.Now()))
	back, _ := url.Parse(resp.Header.Get("Location"))
	code := back.Query().Get("code")
	if code == "" {
		t.Fatalf("no code: %s", back)
	}
	assertion := signWith(t, ck, jose.ES256, "c1", map[string]any{"iss": id, "sub": id, "aud": o.srv.URL + "/oauth2/token",
		"exp": now.Add(time.Minute).Unix(), "jti": "a1"})
	form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {"https://rp.example.com/callback"},
		"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"}, "client_assertion": {assertion}}
	status, body := post(t, o.srv.URL+"/oauth2/token", form, "")
	if status != 200 || !strings.Contains(body, `"id_token"`) {
		t.Fatalf("token with private_key_jwt: %d %s", status, body)
	}
	if status, body := post(t, o.srv.URL+"/oauth2/token", form, ""); status != 401 || !strings.Contains(body, "used already") {
		t.Fatalf("the same assertion again: %d %s", status, body)
	}
}

func post(t *testing.T, u string, form url.Values, basic string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("POST", u, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if basic != "" {
		req.Header.Set("Authorization", "Basic "+basic)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}
