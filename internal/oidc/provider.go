// Package oidc is the hosted second-factor step's OpenID Connect contract: Twofold as an OpenID
// provider that only does the second factor, as Okta's "IdP authenticator", Entra ID's external
// authentication methods, authentik's sources and any OIDC library expect. A relying party
// sends the user to /oauth2/authorize naming them in a signed request object (RFC 9101), a
// signed id_token_hint from its identity provider, or (where the operator allows it for that
// client) a plain login_hint, or, where the operator allows passwordless sign-in for that
// client, names nobody (the page asks for a username and the user signs in with a passwordless
// push alone); the user passes the hosted step (internal/web/step); the relying party gets an
// authorization code for /oauth2/token (or, for Entra, an id token posted back)
// whose id token says who passed, how (amr, RFC 8176) and when.
package oidc

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/twofold-auth/twofold/internal/accesslog"
	"github.com/twofold-auth/twofold/internal/hostedstep"
	"github.com/twofold-auth/twofold/internal/message"
	"github.com/twofold-auth/twofold/internal/signingkeys"
	"github.com/twofold-auth/twofold/internal/twofold"
	"github.com/twofold-auth/twofold/internal/web/step"
)

// Clients finds step clients and their secrets (hostedstep.Clients).
type Clients interface {
	Get(ctx context.Context, clientID string) (twofold.StepClient, error)
	Secret(ctx context.Context, c twofold.StepClient, kind string) ([]byte, error)
}

// Steps runs users through the step (hostedstep.Steps).
type Steps interface {
	Begin(ctx context.Context, c twofold.StepClient, name string, request []byte) (hostedstep.Begun, error)
	BeginPasswordless(ctx context.Context, c twofold.StepClient, request []byte) (hostedstep.Begun, error)
	IssueCode(ctx context.Context, v hostedstep.View) (string, error)
	Redeem(ctx context.Context, c twofold.StepClient, code string) (hostedstep.Result, error)
	Close(ctx context.Context, v hostedstep.View) (hostedstep.Result, error)
}

// Keys signs what this provider issues (signingkeys.Keys).
type Keys interface {
	Signer(ctx context.Context) (signingkeys.Key, error)
	JWKS(ctx context.Context) ([]byte, error)
}

// Marks spends JWTs once by what they are (the store's SpendMarks, with the ring's MACs).
type Marks interface {
	SpendMarks(ctx context.Context, macs [][]byte, appID int64, expires, now time.Time) error
}

// MACer makes the keyed hashes of spent JWTs under every key of the ring (seal.Keyring).
type MACer interface {
	Lookups(s string) [][]byte
}

// Provider is the OpenID provider.
type Provider struct {
	issuer  string // the public URL, without a trailing slash
	clients Clients
	steps   Steps
	keys    Keys
	remote  *KeySets
	marks   Marks
	macs    MACer
	now     func() time.Time
	log     *slog.Logger
}

// Config is what the provider is built from.
type Config struct {
	Issuer  string // the server's public URL (https, or http to this machine)
	Clients Clients
	Steps   Steps
	Keys    Keys
	Remote  *KeySets
	Marks   Marks
	MACs    MACer
	Now     func() time.Time // nil: time.Now
	Log     *slog.Logger     // nil: discard
}

// New returns the provider. The issuer must be an absolute http(s) URL without query or
// fragment: it is what id tokens name and verifiers compare exactly.
func New(c Config) (*Provider, error) {
	u, err := url.Parse(c.Issuer)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return nil, errors.New("oidc: the issuer (--public-url) must be an absolute http(s) URL")
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	return &Provider{issuer: strings.TrimSuffix(c.Issuer, "/"), clients: c.Clients, steps: c.Steps, keys: c.Keys,
		remote: c.Remote, marks: c.Marks, macs: c.MACs, now: c.Now, log: c.Log}, nil
}

// Issuer is the issuer identifier id tokens carry.
func (p *Provider) Issuer() string { return p.issuer }

// Routes adds the provider's endpoints to mux (an *http.ServeMux, or the server's mux that
// notes each route).
func (p *Provider) Routes(mux step.Router) {
	mux.HandleFunc("GET /.well-known/openid-configuration", p.discovery)
	mux.HandleFunc("GET /oauth2/jwks", p.jwks)
	mux.HandleFunc("GET /oauth2/authorize", p.authorize)
	mux.HandleFunc("POST /oauth2/authorize", p.authorize)
	mux.HandleFunc("POST /oauth2/token", p.token)
}

// Endpoint paths.
const (
	pathAuthorize = "/oauth2/authorize"
	pathToken     = "/oauth2/token"
	pathJWKS      = "/oauth2/jwks"
)

func (p *Provider) discovery(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{
		"issuer":                                           p.issuer,
		"authorization_endpoint":                           p.issuer + pathAuthorize,
		"token_endpoint":                                   p.issuer + pathToken,
		"jwks_uri":                                         p.issuer + pathJWKS,
		"response_types_supported":                         []string{"code", "id_token"},
		"response_modes_supported":                         []string{"query", "form_post"},
		"grant_types_supported":                            []string{"authorization_code", "implicit"},
		"subject_types_supported":                          []string{"public"},
		"id_token_signing_alg_values_supported":            []string{"RS256"},
		"scopes_supported":                                 []string{"openid", "profile", "email"},
		"claims_supported":                                 []string{"sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "acr", "amr", "preferred_username"},
		"token_endpoint_auth_methods_supported":            []string{"client_secret_basic", "client_secret_post", "private_key_jwt"},
		"token_endpoint_auth_signing_alg_values_supported": signedByClient,
		"request_parameter_supported":                      true,
		"request_uri_parameter_supported":                  false,
		"request_object_signing_alg_values_supported":      signedByClient,
		"code_challenge_methods_supported":                 []string{"S256"},
		"claims_parameter_supported":                       true,
		"acr_values_supported":                             []string{acrMFA, acrPasswordless, acrEntra},
		"ui_locales_supported":                             message.Locales(), // the page's and the codes' languages
		"authorization_response_iss_parameter_supported":   true,
		"require_request_uri_registration":                 false,
	})
}

func (p *Provider) jwks(w http.ResponseWriter, r *http.Request) {
	set, err := p.keys.JWKS(r.Context())
	if accesslog.ClientGone(p.log, r, err, "surface", "oidc") {
		return
	}
	if err != nil {
		p.log.ErrorContext(r.Context(), "signing keys", "err", err)
		writeJSON(w, http.StatusServiceUnavailable, oauthError{Error: "temporarily_unavailable"})
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age=300")
	_, _ = w.Write(set)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// oauthError is an error response of RFC 6749 section 5.2.
type oauthError struct {
	Error       string `json:"error"`
	Description string `json:"error_description,omitempty"`
}

// Step's dialect for sessions this provider began.
const dialect = "oidc"

// Dialect names this provider among the step page's Finishers.
const Dialect = dialect

var _ step.Finisher = (*Provider)(nil)
