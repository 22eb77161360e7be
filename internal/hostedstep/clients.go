// Package hostedstep is the hosted second-factor step: a page Twofold serves, per application,
// where a user sent mid-login by a relying party (an identity provider through OpenID Connect or
// an Auth0 Action, or an application) passes one of the factors they have, and from which they
// go back with a signed result. This package holds the domain: the relying parties (step
// clients), the sessions of users passing the step and their factors. The wire contracts live
// in internal/oidc, the page in internal/web/step.
package hostedstep

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/twofold-auth/twofold/internal/store"
	"github.com/twofold-auth/twofold/internal/twofold"
)

// Store is what the step needs from persistence.
type Store interface {
	GetApp(ctx context.Context, id int64) (twofold.App, error)
	CreateStepClient(ctx context.Context, c *twofold.StepClient, secrets func(id int64) map[string][]byte) error
	StepClientByClientID(ctx context.Context, clientID string) (twofold.StepClient, error)
	ListStepClients(ctx context.Context, appID int64) ([]twofold.StepClient, error)
	UpdateStepClient(ctx context.Context, c twofold.StepClient, secrets map[string][]byte) error
	DeleteStepClient(ctx context.Context, id int64) error
	StepClientSecret(ctx context.Context, id int64, kind string) ([]byte, error)
}

// Sealer seals secrets at rest (seal.Keyring).
type Sealer interface {
	Seal(plaintext []byte, ad string) []byte
	Open(sealed []byte, ad string) ([]byte, error)
}

// Auditor records security-relevant events (the audit trail); it never fails.
type Auditor interface {
	Record(ctx context.Context, e twofold.AuditEvent)
}

// Clients manages step clients: the relying parties that may send users to the step.
type Clients struct {
	store Store
	keys  Sealer
	now   func() time.Time
	audit Auditor // nil: nothing is recorded
}

// NewClients returns the client service. now may be nil for time.Now.
func NewClients(st Store, keys Sealer, now func() time.Time) *Clients {
	if now == nil {
		now = time.Now
	}
	return &Clients{store: st, keys: keys, now: now}
}

// SetAuditor makes the service record clients made, changed and deleted.
func (c *Clients) SetAuditor(a Auditor) { c.audit = a }

func (c *Clients) record(ctx context.Context, e twofold.AuditEvent) {
	if c.audit != nil {
		c.audit.Record(ctx, e)
	}
}

// Spec is a client's settings as an operator gives them. Nil fields of an update keep what the
// client has.
type Spec struct {
	Name           *string
	RedirectURIs   *[]string
	Factors        *[]twofold.Factor
	UserMatch      *twofold.UserMatch
	AllowLoginHint *bool
	HintJWKSURL    *string
	HintIssuer     *string
	ClientJWKSURL  *string
	Auth0Domain    *string
	Passwordless   *bool
}

// Limits of a client's settings.
const (
	maxName         = 100
	maxRedirectURIs = 10
	maxURL          = 2000
)

// apply writes the set fields of sp into c and returns every problem with the result, by field
// (the CLI's and the console's names), in one pass.
func (sp Spec) apply(c *twofold.StepClient) map[string]string {
	if sp.Name != nil {
		c.Name = strings.TrimSpace(*sp.Name)
	}
	if sp.RedirectURIs != nil {
		c.RedirectURIs = slices.Clone(*sp.RedirectURIs)
	}
	if sp.Factors != nil {
		c.Factors = slices.Clone(*sp.Factors)
	}
	if sp.UserMatch != nil {
		c.UserMatch = *sp.UserMatch
	}
	if sp.AllowLoginHint != nil {
		c.AllowLoginHint = *sp.AllowLoginHint
	}
	if sp.HintJWKSURL != nil {
		c.HintJWKSURL = strings.TrimSpace(*sp.HintJWKSURL)
	}
	if sp.HintIssuer != nil {
		c.HintIssuer = strings.TrimSpace(*sp.HintIssuer)
	}
	if sp.ClientJWKSURL != nil {
		c.ClientJWKSURL = strings.TrimSpace(*sp.ClientJWKSURL)
	}
	if sp.Auth0Domain != nil {
		c.Auth0Domain = strings.ToLower(strings.TrimSpace(*sp.Auth0Domain))
	}
	if sp.Passwordless != nil {
		c.Passwordless = *sp.Passwordless
	}
	if len(c.Factors) == 0 {
		c.Factors = slices.Clone(twofold.Factors)
	}
	if c.UserMatch == "" {
		c.UserMatch = twofold.MatchID
	}

	bad := map[string]string{}
	switch {
	case c.Name == "":
		bad["name"] = "is required"
	case utf8.RuneCountInString(c.Name) > maxName || !printable(c.Name):
		bad["name"] = fmt.Sprintf("must be printable text of at most %d characters", maxName)
	}
	switch {
	case len(c.RedirectURIs) == 0 && c.Auth0Domain == "":
		bad["redirect_uri"] = "at least one is required (or an Auth0 domain)"
	case len(c.RedirectURIs) > maxRedirectURIs:
		bad["redirect_uri"] = fmt.Sprintf("at most %d", maxRedirectURIs)
	default:
		for _, u := range c.RedirectURIs {
			if why := redirectProblem(u); why != "" {
				bad["redirect_uri"] = fmt.Sprintf("%q %s", clip(u), why)
				break
			}
		}
	}
	seen := map[twofold.Factor]bool{}
	for _, f := range c.Factors {
		if !slices.Contains(twofold.Factors, f) || seen[f] {
			bad["factors"] = fmt.Sprintf("%q is not one of push, totp, sms, call, email (each once)", clip(string(f)))
			break
		}
		seen[f] = true
	}
	if !slices.Contains([]twofold.UserMatch{twofold.MatchID, twofold.MatchCustomID, twofold.MatchEmail}, c.UserMatch) {
		bad["user_match"] = "must be id, custom_id or email"
	}
	for field, u := range map[string]string{"hint_jwks_url": c.HintJWKSURL, "client_jwks_url": c.ClientJWKSURL} {
		if u != "" {
			if why := jwksProblem(u); why != "" {
				bad[field] = why
			}
		}
	}
	// A key set may sign for many issuers (Entra ID's common keys sign every tenant's tokens):
	// a hint is only taken from the one issuer the operator names.
	switch {
	case c.HintJWKSURL != "" && c.HintIssuer == "":
		bad["hint_issuer"] = "is required with hint_jwks_url: the iss of the identity provider's tokens (for Entra ID https://login.microsoftonline.com/TENANT_ID/v2.0)"
	case c.HintIssuer != "" && (len(c.HintIssuer) > maxURL || !printable(c.HintIssuer)):
		bad["hint_issuer"] = "must be the identity provider's issuer identifier"
	}
	if c.Auth0Domain != "" && !validHost(c.Auth0Domain) {
		bad["auth0_domain"] = "must be a host name, like example.us.auth0.com"
	}
	// Passwordless sign-in asks people for the name they sign in with: an email or the
	// customer's id, never Twofold's sequential ids, which anyone could count through. It is an
	// OpenID Connect flow (an Auth0 Action always names the user), so it needs a redirect URI.
	switch {
	case c.Passwordless && c.UserMatch == twofold.MatchID:
		bad["passwordless"] = "needs users named by email or custom_id: people sign in with a name they know"
	case c.Passwordless && len(c.RedirectURIs) == 0:
		bad["passwordless"] = "is for OpenID Connect clients: it needs a redirect URI"
	}
	return bad
}

// Check reports what Create or Update would refuse in sp applied to c (a client as it is, or
// the zero client for a new one), without saving: the invalid-parameter error with every
// field's problem, or nil. The console checks a form with it while reporting its own problems.
func (sp Spec) Check(c twofold.StepClient) error {
	if bad := sp.apply(&c); len(bad) > 0 {
		return invalid(bad)
	}
	return nil
}

// redirectProblem says what is wrong with a redirect URI, or "": absolute, https (http only to
// this machine, as OAuth's native-app rules allow), no fragment, no user information.
func redirectProblem(raw string) string {
	if len(raw) > maxURL {
		return fmt.Sprintf("is longer than %d characters", maxURL)
	}
	u, err := url.Parse(raw)
	switch {
	case err != nil || u.Host == "" || !u.IsAbs():
		return "is not an absolute URL"
	case u.Fragment != "" || strings.Contains(raw, "#"):
		return "must not have a fragment"
	case u.User != nil:
		return "must not hold a user name or password"
	case u.Scheme == "https":
		return ""
	case u.Scheme == "http" && loopback(u.Hostname()):
		return ""
	}
	return "must be https (http only to localhost)"
}

// jwksProblem says what is wrong with a JWKS URL, or "". Which addresses it may reach is the
// egress guard's decision when it is fetched.
func jwksProblem(raw string) string {
	if len(raw) > maxURL {
		return fmt.Sprintf("is longer than %d characters", maxURL)
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") || u.User != nil || u.Fragment != "" {
		return "must be an http(s) URL"
	}
	return ""
}

func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func validHost(h string) bool {
	if len(h) > 253 || !strings.Contains(h, ".") {
		return false
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') {
				return false
			}
		}
	}
	return true
}

func printable(s string) bool {
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return false
		}
	}
	return utf8.ValidString(s)
}

// clip shortens what is echoed back in an error.
func clip(s string) string {
	if utf8.RuneCountInString(s) > 80 {
		return string([]rune(s)[:80]) + "…"
	}
	return s
}

// invalid is the error of a spec with problems: CodeInvalidParameter with every field's.
func invalid(bad map[string]string) error {
	fields := slices.Sorted(func(yield func(string) bool) {
		for f := range bad {
			if !yield(f) {
				return
			}
		}
	})
	var msgs []string
	for _, f := range fields {
		msgs = append(msgs, f+" "+bad[f])
	}
	return &twofold.Error{Code: twofold.CodeInvalidParameter, Message: "Invalid step client: " + strings.Join(msgs, "; "), Fields: bad}
}

// randomToken is a prefix and n random bytes in base64url.
func randomToken(prefix string, n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic("hostedstep: crypto/rand failed: " + err.Error())
	}
	return prefix + base64.RawURLEncoding.EncodeToString(b)
}

// Created is a new client with its secrets in clear, which are never shown again.
type Created struct {
	Client      twofold.StepClient
	Secret      string // the OIDC client_secret
	Auth0Secret string // the secret to give the Auth0 Action; "" without an Auth0 domain
}

// Create makes a client of the application appID.
func (c *Clients) Create(ctx context.Context, appID int64, sp Spec) (Created, error) {
	app, err := c.store.GetApp(ctx, appID)
	if err != nil {
		return Created{}, fmt.Errorf("application %d: %w", appID, err)
	}
	if app.Console {
		return Created{}, errors.New("the console's own application cannot have step clients")
	}
	now := c.now().UTC().Truncate(time.Second)
	cl := twofold.StepClient{AppID: appID, ClientID: randomToken("tfc_", 15), CreatedAt: now, UpdatedAt: now}
	if bad := sp.apply(&cl); len(bad) > 0 {
		return Created{}, invalid(bad)
	}
	out := Created{Secret: randomToken("tfs_", 32)}
	if cl.Auth0Domain != "" {
		out.Auth0Secret = randomToken("", 32)
	}
	err = c.store.CreateStepClient(ctx, &cl, func(id int64) map[string][]byte {
		m := map[string][]byte{twofold.SecretClient: c.keys.Seal([]byte(out.Secret), store.StepSecretAD(id, twofold.SecretClient))}
		if out.Auth0Secret != "" {
			m[twofold.SecretAuth0] = c.keys.Seal([]byte(out.Auth0Secret), store.StepSecretAD(id, twofold.SecretAuth0))
		}
		return m
	})
	if err != nil {
		return Created{}, err
	}
	out.Client = cl
	c.record(ctx, twofold.AuditEvent{AppID: appID, Action: twofold.AuditStepClientCreated,
		Details: map[string]string{"client_id": cl.ClientID}})
	return out, nil
}

// Get returns the client with the public id clientID.
func (c *Clients) Get(ctx context.Context, clientID string) (twofold.StepClient, error) {
	return c.store.StepClientByClientID(ctx, clientID)
}

// List returns the clients of an application (of all with appID 0).
func (c *Clients) List(ctx context.Context, appID int64) ([]twofold.StepClient, error) {
	return c.store.ListStepClients(ctx, appID)
}

// Rotation says which of a client's secrets an update replaces.
type Rotation struct {
	Secret      bool
	Auth0Secret bool
}

// Update changes a client's settings and, as rot says, replaces its secrets; the new secrets
// come back in clear, once. Setting an Auth0 domain on a client without an Auth0 secret makes one.
func (c *Clients) Update(ctx context.Context, clientID string, sp Spec, rot Rotation) (Created, error) {
	cl, err := c.store.StepClientByClientID(ctx, clientID)
	if err != nil {
		return Created{}, err
	}
	before := cl
	if bad := sp.apply(&cl); len(bad) > 0 {
		return Created{}, invalid(bad)
	}
	cl.UpdatedAt = c.now().UTC().Truncate(time.Second)
	out := Created{}
	secrets := map[string][]byte{}
	if rot.Secret {
		out.Secret = randomToken("tfs_", 32)
		secrets[twofold.SecretClient] = c.keys.Seal([]byte(out.Secret), store.StepSecretAD(cl.ID, twofold.SecretClient))
	}
	if cl.Auth0Domain != "" {
		_, err := c.store.StepClientSecret(ctx, cl.ID, twofold.SecretAuth0)
		if rot.Auth0Secret || errors.Is(err, twofold.ErrNotFound) {
			out.Auth0Secret = randomToken("", 32)
			secrets[twofold.SecretAuth0] = c.keys.Seal([]byte(out.Auth0Secret), store.StepSecretAD(cl.ID, twofold.SecretAuth0))
		} else if err != nil {
			return Created{}, err
		}
	}
	if err := c.store.UpdateStepClient(ctx, cl, secrets); err != nil {
		return Created{}, err
	}
	out.Client = cl
	details := map[string]string{"client_id": cl.ClientID, "changed": strings.Join(changed(before, cl, rot), ",")}
	c.record(ctx, twofold.AuditEvent{AppID: cl.AppID, Action: twofold.AuditStepClientUpdated, Details: details})
	return out, nil
}

// changed names the settings an update changed (never values or secrets).
func changed(a, b twofold.StepClient, rot Rotation) []string {
	var out []string
	add := func(name string, diff bool) {
		if diff {
			out = append(out, name)
		}
	}
	add("name", a.Name != b.Name)
	add("redirect_uris", !slices.Equal(a.RedirectURIs, b.RedirectURIs))
	add("factors", !slices.Equal(a.Factors, b.Factors))
	add("user_match", a.UserMatch != b.UserMatch)
	add("allow_login_hint", a.AllowLoginHint != b.AllowLoginHint)
	add("hint_jwks_url", a.HintJWKSURL != b.HintJWKSURL)
	add("hint_issuer", a.HintIssuer != b.HintIssuer)
	add("client_jwks_url", a.ClientJWKSURL != b.ClientJWKSURL)
	add("auth0_domain", a.Auth0Domain != b.Auth0Domain)
	add("passwordless", a.Passwordless != b.Passwordless)
	add("secret", rot.Secret)
	add("auth0_secret", rot.Auth0Secret)
	return out
}

// Delete removes a client; users in its step lose their sessions.
func (c *Clients) Delete(ctx context.Context, clientID string) error {
	cl, err := c.store.StepClientByClientID(ctx, clientID)
	if err != nil {
		return err
	}
	if err := c.store.DeleteStepClient(ctx, cl.ID); err != nil {
		return err
	}
	c.record(ctx, twofold.AuditEvent{AppID: cl.AppID, Action: twofold.AuditStepClientDeleted,
		Details: map[string]string{"client_id": cl.ClientID}})
	return nil
}

// Secret returns a client's secret of kind in clear, for checking what the client presents.
func (c *Clients) Secret(ctx context.Context, cl twofold.StepClient, kind string) ([]byte, error) {
	sealed, err := c.store.StepClientSecret(ctx, cl.ID, kind)
	if err != nil {
		return nil, err
	}
	plain, err := c.keys.Open(sealed, store.StepSecretAD(cl.ID, kind))
	if err != nil {
		return nil, fmt.Errorf("open the %s secret of step client %s: %w", kind, cl.ClientID, err)
	}
	return plain, nil
}
