package oidc_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/twofold-auth/twofold/internal/apps"
	"github.com/twofold-auth/twofold/internal/devices"
	"github.com/twofold-auth/twofold/internal/hostedstep"
	"github.com/twofold-auth/twofold/internal/onetouch"
	"github.com/twofold-auth/twofold/internal/twofold"
)

// approver registers a device for u and returns a function that approves the user's pending
// request with number, signed with the device's key.
func (o *op) approver(u twofold.User) func(number string) {
	o.t.Helper()
	ctx := o.t.Context()
	ds := devices.New(o.st, o.keys, apps.New(o.st, o.keys, nil).Reveal, 0, nil)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	pub, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	token, _, err := ds.RegistrationToken(ctx, o.app.ID, u.ID)
	if err != nil {
		o.t.Fatal(err)
	}
	reg, err := ds.Register(ctx, token, pub, "phone", "cli")
	if err != nil {
		o.t.Fatal(err)
	}
	return func(number string) {
		o.t.Helper()
		pending, err := o.onetouch.ForDevice(ctx, reg.Device, twofold.Pending, 10)
		if err != nil || len(pending) != 1 {
			o.t.Fatalf("the device's pending requests: %d, %v", len(pending), err)
		}
		uuid, ts := pending[0].UUID, time.Now().Unix()
		digest := sha256.Sum256(onetouch.AnswerMessage(uuid, twofold.Approved, ts, number, ""))
		sig, _ := ecdsa.SignASN1(rand.Reader, key, digest[:])
		if _, err := o.onetouch.Answer(ctx, reg.Device, uuid, onetouch.Answer{Status: twofold.Approved, Timestamp: ts,
			Signature: base64.StdEncoding.EncodeToString(sig), Number: number}); err != nil {
			o.t.Fatal(err)
		}
	}
}

// An authorization request that names no user is refused as before for a client without the
// passwordless setting, and begins a step that asks for a username for a client with it; a
// client with it still refuses an unsigned login_hint it does not allow.
func TestAuthorizeWithoutAUser(t *testing.T) {
	o := newOP(t)
	o.user("ana@example.com")
	second := o.client(hostedstep.Spec{UserMatch: ptr(twofold.MatchEmail)})
	pl := o.client(hostedstep.Spec{UserMatch: ptr(twofold.MatchEmail), Passwordless: ptr(true)})
	for _, tc := range []struct {
		what   string
		made   hostedstep.Created
		params func(url.Values)
		error  string // "" : the step begins
	}{
		{"no user, no setting", second, func(url.Values) {}, "The user must be named"},
		{"a request object naming nobody, no setting", second, func(v url.Values) {
			v.Set("request", requestObject(t, o, second, "", map[string]any{"login_hint": nil}))
		}, "The user must be named"},
		{"no user, passwordless", pl, func(url.Values) {}, ""},
		{"a request object naming nobody, passwordless", pl, func(v url.Values) {
			v.Set("request", requestObject(t, o, pl, "", map[string]any{"login_hint": nil}))
		}, ""},
		{"an unsigned login_hint, passwordless", pl, func(v url.Values) { v.Set("login_hint", "ana@example.com") },
			"must name the user in a signed request object"},
	} {
		p := baseParams(tc.made)
		tc.params(p)
		resp, body := newBrowser(t, o).get(authorizeURL(o, p))
		if tc.error == "" {
			if !strings.HasPrefix(resp.Request.URL.Path, "/step/") || resp.StatusCode != http.StatusOK ||
				!strings.Contains(body, `"dialect":"oidc"`) {
				t.Errorf("%s: %d at %s, want the step page", tc.what, resp.StatusCode, resp.Request.URL)
			}
			continue
		}
		back, _ := url.Parse(resp.Header.Get("Location"))
		if resp.StatusCode != http.StatusSeeOther || back.Query().Get("error") != "invalid_request" ||
			!strings.Contains(back.Query().Get("error_description"), tc.error) {
			t.Errorf("%s: %d, back to %s", tc.what, resp.StatusCode, back)
		}
	}
}

// The code flow without a user, as a go-oidc relying party runs it: the page asks for the
// username, the user approves on their device with the number, and the id token is about that
// user: sub their id, preferred_username their email, amr pop and mca, acr passwordless; the
// code works once.
func TestPasswordlessCodeFlow(t *testing.T) {
	o := newOP(t)
	ctx := t.Context()
	ana, _ := o.user("ana@example.com")
	approve := o.approver(ana)
	made := o.client(hostedstep.Spec{UserMatch: ptr(twofold.MatchEmail), Passwordless: ptr(true)})
	provider, err := gooidc.NewProvider(ctx, o.srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	conf := oauth2.Config{ClientID: made.Client.ClientID, ClientSecret: made.Secret, Endpoint: provider.Endpoint(),
		RedirectURL: callback, Scopes: []string{gooidc.ScopeOpenID}}
	verifier, _ := pkce()
	b := newBrowser(t, o)
	// acr_values asks for the second factor's: a passwordless sign-in answers with its own.
	resp, _ := b.get(conf.AuthCodeURL("st4te", oauth2.S256ChallengeOption(verifier), gooidc.Nonce("n0nce"),
		oauth2.SetAuthURLParam("acr_values", "urn:twofold:acr:mfa")))
	page := resp.Request.URL
	if !strings.HasPrefix(page.Path, "/step/") {
		t.Fatalf("authorize went to %s", page)
	}
	resp, body := b.get(page.String() + "?signin=" + url.QueryEscape("Ana@Example.com"))
	number, ok := strings.CutPrefix(body, "number ")
	if resp.StatusCode != http.StatusOK || !ok {
		t.Fatalf("the username: %d %s", resp.StatusCode, body)
	}
	// Not approved yet: nothing to hand back.
	if resp, _ := b.get(page.String() + "?await"); resp.StatusCode != http.StatusConflict {
		t.Fatalf("handed back before the approval: %d", resp.StatusCode)
	}
	approve(number)
	resp, _ = b.get(page.String() + "?await")
	back, _ := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusSeeOther || back.Query().Get("state") != "st4te" || back.Query().Get("code") == "" {
		t.Fatalf("after the approval: %d, back to %s", resp.StatusCode, back)
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
		AMR  []string `json:"amr"`
		ACR  string   `json:"acr"`
		Name string   `json:"preferred_username"`
	}
	if err := idt.Claims(&claims); err != nil {
		t.Fatal(err)
	}
	if idt.Subject != strconv.FormatInt(ana.ID, 10) || idt.Nonce != "n0nce" || strings.Join(claims.AMR, " ") != "pop mca" ||
		claims.ACR != "urn:twofold:acr:passwordless" || claims.Name != "ana@example.com" {
		t.Fatalf("id token: sub %s nonce %s %+v", idt.Subject, idt.Nonce, claims)
	}
	if _, err := conf.Exchange(ctx, back.Query().Get("code"), oauth2.VerifierOption(verifier)); err == nil || !strings.Contains(err.Error(), "invalid_grant") {
		t.Fatalf("the code redeemed twice: %v", err)
	}
}
