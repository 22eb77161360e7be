package oidc

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/twofold-auth/twofold/internal/accesslog"
	"github.com/twofold-auth/twofold/internal/hostedstep"
	"github.com/twofold-auth/twofold/internal/twofold"
)

// idTokenTTL is how long an id token is valid: long enough to carry, short enough not to keep.
const idTokenTTL = 5 * time.Minute

const assertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// token handles /oauth2/token: the client authenticates (client_secret_basic,
// client_secret_post or private_key_jwt), and redeems its authorization code, once, with the
// redirect URI and PKCE verifier of its request, for an id token.
func (p *Provider) token(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	r.Body = http.MaxBytesReader(w, r.Body, maxParams)
	if err := r.ParseForm(); err != nil {
		writeJSON(w, http.StatusBadRequest, oauthError{"invalid_request", "The body must be a form (application/x-www-form-urlencoded)."})
		return
	}
	f := r.PostForm
	if len(r.URL.RawQuery) > 0 {
		writeJSON(w, http.StatusBadRequest, oauthError{"invalid_request", "Parameters go in the body, not the URL."})
		return
	}
	if once := onceEach(f, "grant_type", "code", "redirect_uri", "code_verifier", "client_id", "client_secret",
		"client_assertion", "client_assertion_type"); once != "" {
		writeJSON(w, http.StatusBadRequest, oauthError{"invalid_request", once + " is given more than once."})
		return
	}
	c, basic, err := p.authenticate(ctx, r, f)
	if err != nil {
		if basic {
			w.Header().Set("WWW-Authenticate", `Basic realm="twofold"`)
		}
		writeJSON(w, http.StatusUnauthorized, oauthError{"invalid_client", err.Error()})
		return
	}
	if f.Get("grant_type") != "authorization_code" {
		writeJSON(w, http.StatusBadRequest, oauthError{"unsupported_grant_type", "grant_type must be authorization_code."})
		return
	}
	res, err := p.steps.Redeem(ctx, c, f.Get("code"))
	if errors.Is(err, hostedstep.ErrNoCode) {
		writeJSON(w, http.StatusBadRequest, oauthError{"invalid_grant", "The code is unknown, expired, used already or another client's."})
		return
	}
	if accesslog.ClientGone(p.log, r, err, "surface", "oidc") {
		return
	}
	if err != nil {
		p.log.ErrorContext(ctx, "token: redeem", "client_id", c.ClientID, "err", err)
		writeJSON(w, http.StatusInternalServerError, oauthError{Error: "server_error"})
		return
	}
	var req request
	if err := json.Unmarshal(res.Session.Request, &req); err != nil || req.Dialect != dialect || req.ResponseType != "code" {
		writeJSON(w, http.StatusBadRequest, oauthError{"invalid_grant", "The code was not issued by this flow."})
		return
	}
	if f.Get("redirect_uri") != req.RedirectURI {
		writeJSON(w, http.StatusBadRequest, oauthError{"invalid_grant", "redirect_uri differs from the authorization request's."})
		return
	}
	// PKCE (RFC 7636): a request with a challenge needs its verifier; one without refuses a
	// verifier (a downgrade attempt, RFC 9700 section 2.1.1).
	verifier := f.Get("code_verifier")
	switch {
	case req.CodeChallenge == "" && verifier != "":
		writeJSON(w, http.StatusBadRequest, oauthError{"invalid_grant", "code_verifier given for a request without code_challenge."})
		return
	case req.CodeChallenge != "":
		sum := sha256.Sum256([]byte(verifier))
		if !hmac.Equal([]byte(base64.RawURLEncoding.EncodeToString(sum[:])), []byte(req.CodeChallenge)) {
			writeJSON(w, http.StatusBadRequest, oauthError{"invalid_grant", "code_verifier does not match code_challenge."})
			return
		}
	}
	idToken, err := p.idToken(ctx, res, req)
	if accesslog.ClientGone(p.log, r, err, "surface", "oidc") {
		return
	}
	if err != nil {
		p.log.ErrorContext(ctx, "token: sign", "err", err)
		writeJSON(w, http.StatusInternalServerError, oauthError{Error: "server_error"})
		return
	}
	w.Header().Set("Pragma", "no-cache")
	writeJSON(w, http.StatusOK, map[string]any{
		// An access token is required by the response's shape; it grants nothing here (there is
		// no API that takes it), so it is not stored.
		"access_token": randomString(32), "token_type": "Bearer", "expires_in": int(idTokenTTL / time.Second),
		"id_token": idToken, "scope": "openid",
	})
}

// authenticate finds and checks the client of a token request by exactly one method. basic
// says whether the client used HTTP Basic (so a refusal names the scheme).
func (p *Provider) authenticate(ctx context.Context, r *http.Request, f url.Values) (twofold.StepClient, bool, error) {
	id, secret, basic := r.BasicAuth()
	if basic {
		// RFC 6749 section 2.3.1: both are form-encoded before Basic encoding.
		var err1, err2 error
		id, err1 = url.QueryUnescape(id)
		secret, err2 = url.QueryUnescape(secret)
		if err1 != nil || err2 != nil {
			return twofold.StepClient{}, true, errors.New("the Basic credentials are not form-encoded")
		}
	}
	methods := 0
	for _, used := range []bool{basic, f.Get("client_secret") != "", f.Get("client_assertion") != ""} {
		if used {
			methods++
		}
	}
	if methods != 1 {
		return twofold.StepClient{}, basic, errors.New("authenticate the client by exactly one method: client_secret_basic, client_secret_post or private_key_jwt")
	}
	if !basic {
		id = f.Get("client_id")
	}
	if f.Get("client_assertion") != "" {
		if f.Get("client_assertion_type") != assertionType {
			return twofold.StepClient{}, false, errors.New("client_assertion_type must be " + assertionType)
		}
		return p.assertion(ctx, id, f.Get("client_assertion"))
	}
	if !basic {
		secret = f.Get("client_secret")
	}
	c, err := p.clients.Get(ctx, id)
	if err != nil {
		// The same work as a known client's check, so timing says nothing of which ids exist.
		hmac.Equal([]byte(secret), []byte(randomString(32)))
		return twofold.StepClient{}, basic, errors.New("unknown client or wrong secret")
	}
	want, err := p.clients.Secret(ctx, c, twofold.SecretClient)
	if err != nil || !hmac.Equal([]byte(secret), want) {
		return twofold.StepClient{}, basic, errors.New("unknown client or wrong secret")
	}
	return c, basic, nil
}

// assertion authenticates a client by a JWT it signed (private_key_jwt, RFC 7523): iss and
// sub its client id, aud this token endpoint (or the issuer), spent once by its jti.
func (p *Provider) assertion(ctx context.Context, id, raw string) (twofold.StepClient, bool, error) {
	if id == "" {
		var unverified struct {
			Issuer string `json:"iss"`
		}
		tok, err := jwt.ParseSigned(raw, []jose.SignatureAlgorithm{jose.RS256, jose.PS256, jose.ES256, jose.HS256})
		if err != nil || tok.UnsafeClaimsWithoutVerification(&unverified) != nil {
			return twofold.StepClient{}, false, errors.New("the client assertion is not a signed JWT")
		}
		id = unverified.Issuer
	}
	c, err := p.clients.Get(ctx, id)
	if err != nil {
		return twofold.StepClient{}, false, errors.New("unknown client")
	}
	claims, err := p.verifyClientJWT(ctx, c, raw, p.issuer+pathToken, p.issuer)
	if err == nil && claims.Subject != c.ClientID {
		err = errors.New("sub is not the client id")
	}
	if err == nil {
		err = p.spend(ctx, c, "assertion", claims)
	}
	if err != nil {
		return twofold.StepClient{}, false, errors.New("the client assertion is not valid: " + err.Error())
	}
	return c, false, nil
}

// subject is who the id token is about: the identity provider's own subject when it named the
// user by an id_token_hint (Entra wants it back), the customer's id when the client names users
// so, else the user's id.
func subject(res hostedstep.Result, req request) string {
	switch {
	case req.HintSubject != "":
		return req.HintSubject
	case res.Client.UserMatch == twofold.MatchCustomID && res.User.CustomUserID != "":
		return res.User.CustomUserID
	}
	return strconv.FormatInt(res.User.ID, 10)
}

// userName is the user's name by the client's user match: what a passwordless sign-in's user
// typed, as the application knows it.
func userName(res hostedstep.Result) string {
	switch res.Client.UserMatch {
	case twofold.MatchEmail:
		return res.User.Email
	case twofold.MatchCustomID:
		return res.User.CustomUserID
	}
	return strconv.FormatInt(res.User.ID, 10)
}

// idToken signs the id token of a result.
func (p *Provider) idToken(ctx context.Context, res hostedstep.Result, req request) (string, error) {
	key, err := p.keys.Signer(ctx)
	if err != nil {
		return "", err
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: key.Private, KeyID: key.ID}},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return "", err
	}
	now := p.now()
	acr, name := req.ACR, req.Name
	if res.Factor == twofold.FactorPasswordless {
		// Signed in with the passwordless push alone, as the user the approval named: one
		// factor, whatever the request asked for; the name is the user's own, by the client's
		// user match.
		acr, name = acrPasswordless, userName(res)
	}
	claims := map[string]any{
		"iss": p.issuer, "sub": subject(res, req), "aud": res.Client.ClientID,
		"iat": now.Unix(), "exp": now.Add(idTokenTTL).Unix(), "auth_time": res.AuthTime.Unix(),
		"acr": acr, "amr": hostedstep.AMR(res.Factor), "preferred_username": name,
	}
	if req.Nonce != "" {
		claims["nonce"] = req.Nonce
	}
	return jwt.Signed(signer).Claims(claims).Serialize()
}

func randomString(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic("oidc: crypto/rand failed: " + err.Error())
	}
	return base64.RawURLEncoding.EncodeToString(b)
}
