package oidc

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/twofold-auth/twofold/internal/twofold"
)

// signedByClient are the algorithms a client may sign with: HS256 with its client secret, or
// its own keys (its JWKS URL).
var signedByClient = []string{"HS256", "RS256", "PS256", "ES256"}

// signedByIdP are the algorithms an identity provider's id_token_hint may be signed with.
var signedByIdP = []jose.SignatureAlgorithm{jose.RS256, jose.PS256, jose.ES256}

// leeway is the clock skew allowed on others' tokens.
const leeway = time.Minute

// maxJWTLife bounds how far ahead a client's JWT may expire: a request object or assertion
// that lives longer is one a thief could use longer.
const maxJWTLife = time.Hour

// clientJWT is a verified JWT a client signed: its registered claims and all of its claims.
type clientJWT struct {
	jwt.Claims
	all map[string]any
}

// verifyClientJWT checks a JWT the client c signed for audience (one of auds): signature with its
// secret (HS256) or its keys, issuer its client id, an expiry in the next hour.
func (p *Provider) verifyClientJWT(ctx context.Context, c twofold.StepClient, raw string, auds ...string) (clientJWT, error) {
	algs := make([]jose.SignatureAlgorithm, 0, len(signedByClient))
	for _, a := range signedByClient {
		algs = append(algs, jose.SignatureAlgorithm(a))
	}
	tok, err := jwt.ParseSigned(raw, algs)
	if err != nil {
		return clientJWT{}, fmt.Errorf("not a signed JWT: %w", err)
	}
	if len(tok.Headers) != 1 {
		return clientJWT{}, errors.New("one signature expected")
	}
	h := tok.Headers[0]
	var keys []any
	if h.Algorithm == string(jose.HS256) {
		secret, err := p.clients.Secret(ctx, c, twofold.SecretClient)
		if err != nil {
			return clientJWT{}, err
		}
		keys = []any{secret}
	} else {
		if c.ClientJWKSURL == "" {
			return clientJWT{}, errors.New("signed with a key, but the client has no key set (--client-jwks-url)")
		}
		found, err := p.remote.Keys(ctx, c.ClientJWKSURL, h.KeyID)
		if err != nil {
			return clientJWT{}, err
		}
		for _, k := range found {
			keys = append(keys, k.Key)
		}
	}
	var out clientJWT
	verified := false
	for _, k := range keys {
		if err := tok.Claims(k, &out.Claims, &out.all); err == nil {
			verified = true
			break
		}
	}
	if !verified {
		return clientJWT{}, errors.New("the signature does not verify")
	}
	if err := p.checkTimes(out.Claims); err != nil {
		return clientJWT{}, err
	}
	if out.Issuer != c.ClientID {
		return clientJWT{}, errors.New("iss is not the client id")
	}
	if !slices.ContainsFunc(auds, func(a string) bool { return out.Audience.Contains(a) }) {
		return clientJWT{}, fmt.Errorf("aud must be %s", auds[0])
	}
	return out, nil
}

// checkTimes wants an expiry that has not passed and is not more than maxJWTLife away, and no
// not-before or issued-at in the future.
func (p *Provider) checkTimes(c jwt.Claims) error {
	now := p.now()
	if c.Expiry == nil {
		return errors.New("exp is required")
	}
	if err := c.ValidateWithLeeway(jwt.Expected{Time: now}, leeway); err != nil {
		return err
	}
	if c.Expiry.Time().After(now.Add(maxJWTLife + leeway)) {
		return fmt.Errorf("exp is more than %s away", maxJWTLife)
	}
	return nil
}

// spend records a client's JWT as used by its jti, until it expires: a second use is refused.
func (p *Provider) spend(ctx context.Context, c twofold.StepClient, kind string, claims clientJWT) error {
	if claims.ID == "" {
		return errors.New("jti is required")
	}
	err := p.marks.SpendMarks(ctx, p.macs.Lookups("oidc-"+kind+":"+c.ClientID+":"+claims.ID), c.AppID,
		claims.Expiry.Time().Add(leeway), p.now())
	if errors.Is(err, twofold.ErrConflict) {
		return errors.New("this JWT (its jti) was used already")
	}
	return err
}

// hint is a verified id_token_hint: the user its identity provider signed it for.
type hint struct {
	Subject string
	Name    string // preferred_username, else email, else sub
}

// verifyHint checks an id_token_hint the client's identity provider signed (its key set is the
// client's hint JWKS URL) for the client (aud). An expired hint is accepted (OpenID Connect
// Core 3.1.2.1: it identifies, it does not authenticate), one from the future is not.
func (p *Provider) verifyHint(ctx context.Context, c twofold.StepClient, raw string) (hint, error) {
	if c.HintJWKSURL == "" {
		return hint{}, errors.New("the client has no identity provider key set (--hint-jwks-url) to check an id_token_hint with")
	}
	tok, err := jwt.ParseSigned(raw, signedByIdP)
	if err != nil {
		return hint{}, fmt.Errorf("not a signed JWT: %w", err)
	}
	if len(tok.Headers) != 1 {
		return hint{}, errors.New("one signature expected")
	}
	keys, err := p.remote.Keys(ctx, c.HintJWKSURL, tok.Headers[0].KeyID)
	if err != nil {
		return hint{}, err
	}
	var claims jwt.Claims
	var extra struct {
		PreferredUsername string `json:"preferred_username"`
		Email             string `json:"email"`
	}
	verified := false
	for _, k := range keys {
		if err := tok.Claims(k.Key, &claims, &extra); err == nil {
			verified = true
			break
		}
	}
	if !verified {
		return hint{}, errors.New("the signature does not verify")
	}
	if c.HintIssuer == "" || claims.Issuer != c.HintIssuer {
		return hint{}, errors.New("iss is not the client's identity provider")
	}
	if !claims.Audience.Contains(c.ClientID) {
		return hint{}, errors.New("aud is not the client id")
	}
	if claims.IssuedAt != nil && claims.IssuedAt.Time().After(p.now().Add(leeway)) {
		return hint{}, errors.New("issued in the future")
	}
	if claims.Subject == "" {
		return hint{}, errors.New("sub is required")
	}
	h := hint{Subject: claims.Subject, Name: extra.PreferredUsername}
	if h.Name == "" {
		h.Name = extra.Email
	}
	if h.Name == "" {
		h.Name = claims.Subject
	}
	return h, nil
}
