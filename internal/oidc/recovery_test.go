package oidc_test

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/twofold-auth/twofold/internal/hostedstep"
	"github.com/twofold-auth/twofold/internal/twofold"
)

// A step passed with a recovery code says so to the relying party: the id token's amr is
// ["kba"], never otp. The code is spent: a second sign-in with it is refused, in any spelling.
func TestRecoveryCodeStepAMR(t *testing.T) {
	o := newOP(t)
	ctx := t.Context()
	u, _ := o.user("ana@example.com")
	codes, _, err := o.recovery.Generate(ctx, o.app, u.ID, 5)
	if err != nil {
		t.Fatal(err)
	}
	made := o.client(hostedstep.Spec{UserMatch: ptr(twofold.MatchEmail)})
	provider, err := gooidc.NewProvider(ctx, o.srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	conf := oauth2.Config{ClientID: made.Client.ClientID, ClientSecret: made.Secret, Endpoint: provider.Endpoint(),
		RedirectURL: "https://rp.example.com/callback", Scopes: []string{gooidc.ScopeOpenID}}
	signIn := func(jti, typed string) (*http.Response, string) {
		verifier, _ := pkce()
		now := time.Now()
		request := signHS256(t, made.Secret, map[string]any{"iss": made.Client.ClientID, "aud": o.srv.URL,
			"exp": now.Add(5 * time.Minute).Unix(), "iat": now.Unix(), "jti": jti, "login_hint": "ana@example.com"})
		b := newBrowser(t, o)
		resp, _ := b.get(conf.AuthCodeURL("st4te", oauth2.S256ChallengeOption(verifier), gooidc.Nonce("n0nce"), oauth2.SetAuthURLParam("request", request)))
		resp, body := b.get(resp.Request.URL.String() + "?totp=" + url.QueryEscape(typed))
		if resp.StatusCode != http.StatusSeeOther {
			return resp, body
		}
		back, _ := url.Parse(resp.Header.Get("Location"))
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
			AMR []string `json:"amr"`
		}
		if err := idt.Claims(&claims); err != nil {
			t.Fatal(err)
		}
		if idt.Subject != strconv.FormatInt(u.ID, 10) {
			t.Fatalf("sub %s", idt.Subject)
		}
		return resp, strings.Join(claims.AMR, ",")
	}
	if resp, amr := signIn("r1", strings.ToUpper(codes[0])); resp.StatusCode != http.StatusSeeOther || amr != "kba" {
		t.Fatalf("a recovery code: %d, amr %q", resp.StatusCode, amr)
	}
	if resp, body := signIn("r2", strings.ReplaceAll(codes[0], "-", "")); resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "already used") {
		t.Fatalf("the same code again: %d %s", resp.StatusCode, body)
	}
	if rc, err := o.recovery.Status(ctx, o.app, u.ID); err != nil || rc.Remaining != 4 {
		t.Fatalf("after one step: %+v, %v", rc, err)
	}
}
