package main

import (
	"context"
	"errors"
	"fmt"
	"strings"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"golang.org/x/oauth2"
)

// This file is all the sample knows of Twofold: an OpenID provider, found by discovery, that
// is asked for the second factor of a user named in a signed request object, or, for "Sign in
// with your phone", asked to sign in someone it names itself (passwordless sign-in).

// acrPasswordless is the acr of an id token for a passwordless sign-in: one factor, the phone.
const acrPasswordless = "urn:twofold:acr:passwordless"

// twofold returns Twofold's provider metadata, read once (and again after a failure).
func (s *server) twofold(ctx context.Context) (*gooidc.Provider, error) {
	s.mu.Lock()
	p := s.provider
	s.mu.Unlock()
	if p != nil {
		return p, nil
	}
	// go-oidc checks that the document's issuer is exactly TWOFOLD_URL.
	p, err := gooidc.NewProvider(gooidc.ClientContext(ctx, s.cfg.HTTPClient), s.cfg.TwofoldURL)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.provider = p
	s.mu.Unlock()
	return p, nil
}

func (s *server) oauthConfig(p *gooidc.Provider) *oauth2.Config {
	return &oauth2.Config{ClientID: s.cfg.ClientID, ClientSecret: s.cfg.ClientSecret, Endpoint: p.Endpoint(),
		RedirectURL: s.cfg.PublicURL + callbackPath, Scopes: []string{gooidc.ScopeOpenID}}
}

// authorizeURL is where the browser goes for the second factor: the authorization request,
// with the user named by login_hint inside a request object (RFC 9101) signed with the client
// secret, so that nobody else can start a step (and a push or an SMS) for this user. The object
// carries the whole request, so the signature covers the redirect URI, state, nonce and PKCE
// challenge too; the query repeats them for libraries and servers that read them there.
func (s *server) authorizeURL(p *gooidc.Provider, sess *session) (string, error) {
	conf := s.oauthConfig(p)
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: []byte(s.cfg.ClientSecret)},
		(&jose.SignerOptions{}).WithType("oauth-authz-req+jwt"))
	if err != nil {
		return "", err
	}
	now := s.cfg.now()
	claims := map[string]any{
		"iss": s.cfg.ClientID, "aud": s.cfg.TwofoldURL, "iat": now.Unix(), "exp": now.Add(pendingTTL).Unix(), "jti": randomString(),
		"client_id": s.cfg.ClientID, "response_type": "code", "redirect_uri": conf.RedirectURL, "scope": gooidc.ScopeOpenID,
		"state": sess.State, "nonce": sess.Nonce, "login_hint": sess.Email,
		"code_challenge": oauth2.S256ChallengeFromVerifier(sess.Verifier), "code_challenge_method": "S256",
	}
	if sess.Phone {
		delete(claims, "login_hint") // nobody named: Twofold's page asks who
	}
	object, err := jwt.Signed(signer).Claims(claims).Serialize()
	if err != nil {
		return "", err
	}
	return conf.AuthCodeURL(sess.State, oauth2.S256ChallengeOption(sess.Verifier), gooidc.Nonce(sess.Nonce),
		oauth2.SetAuthURLParam("request", object)), nil
}

// idClaims are what the sample reads from Twofold's id token.
type idClaims struct {
	Subject  string   `json:"sub"`
	Username string   `json:"preferred_username"` // the login_hint the step was for
	AMR      []string `json:"amr"`                // how: otp, sms, tel, pop (RFC 8176)
	ACR      string   `json:"acr"`
}

// redeem exchanges the code for an id token and checks it is about sess's user.
func (s *server) redeem(ctx context.Context, p *gooidc.Provider, code string, sess *session) (idClaims, error) {
	ctx = gooidc.ClientContext(ctx, s.cfg.HTTPClient)
	tok, err := s.oauthConfig(p).Exchange(ctx, code, oauth2.VerifierOption(sess.Verifier))
	if err != nil {
		return idClaims{}, fmt.Errorf("token: %w", err)
	}
	raw, _ := tok.Extra("id_token").(string)
	idt, err := p.Verifier(&gooidc.Config{ClientID: s.cfg.ClientID, Now: s.cfg.now}).Verify(ctx, raw)
	if err != nil {
		return idClaims{}, fmt.Errorf("id token: %w", err)
	}
	var c idClaims
	if err := idt.Claims(&c); err != nil {
		return idClaims{}, fmt.Errorf("id token claims: %w", err)
	}
	if sess.Phone {
		return c, s.checkPhone(idt.Nonce, c, sess)
	}
	switch {
	case idt.Nonce != sess.Nonce: // constant-time is moot: the nonce is no longer secret here
		return idClaims{}, errors.New("id token: the nonce is not this sign-in's")
	case c.ACR == acrPasswordless:
		return idClaims{}, errors.New("id token: a passwordless sign-in, not the second factor of the password typed")
	case c.Username != sess.Email:
		return idClaims{}, fmt.Errorf("id token: for %q, not %q", c.Username, sess.Email)
	case sess.TwofoldID != "" && c.Subject != sess.TwofoldID:
		return idClaims{}, fmt.Errorf("id token: sub %q, not the user's Twofold id %s", c.Subject, sess.TwofoldID)
	case len(c.AMR) == 0:
		return idClaims{}, errors.New("id token: no amr says what was passed")
	}
	return c, nil
}

// checkPhone checks the id token of "Sign in with your phone": this sign-in's, a passwordless
// one, and about one of the sample's users (Twofold's user of that email, and with the Twofold
// id the table has, when it has one).
func (s *server) checkPhone(nonce string, c idClaims, sess *session) error {
	u, known := s.users.byEmail[strings.ToLower(c.Username)]
	switch {
	case nonce != sess.Nonce:
		return errors.New("id token: the nonce is not this sign-in's")
	case c.ACR != acrPasswordless:
		return fmt.Errorf("id token: acr %q, not a passwordless sign-in", c.ACR)
	case !known:
		return fmt.Errorf("id token: %q is not a user of this application", c.Username)
	case u.TwofoldID != "" && c.Subject != u.TwofoldID:
		return fmt.Errorf("id token: sub %q, not the user's Twofold id %s", c.Subject, u.TwofoldID)
	}
	return nil
}
