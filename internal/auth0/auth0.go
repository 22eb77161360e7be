// Package auth0 is the hosted step's Auth0 contract: a post-login Action sends the user to
// Twofold with api.redirect.sendUserTo(".../auth0/CLIENT_ID", {query: {session_token}}), the
// token signed (api.redirect.encodeToken, HS256) with the secret the Action shares with that
// client; Auth0 adds its state. The user passes the hosted step and goes back to the tenant's
// /continue with the state and a token the Action's api.redirect.validateToken accepts:
// signed with the same secret, not expired, its state claim the state of the redirect, its sub
// the user the Action named. What passed, and how, are claims the Action reads.
package auth0

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/twofold-auth/twofold/internal/accesslog"
	"github.com/twofold-auth/twofold/internal/hostedstep"
	"github.com/twofold-auth/twofold/internal/twofold"
	"github.com/twofold-auth/twofold/internal/web/step"
)

// Clients finds step clients and their secrets (hostedstep.Clients).
type Clients interface {
	Get(ctx context.Context, clientID string) (twofold.StepClient, error)
	Secret(ctx context.Context, c twofold.StepClient, kind string) ([]byte, error)
}

// Steps begins and closes sessions of the step (hostedstep.Steps).
type Steps interface {
	Begin(ctx context.Context, c twofold.StepClient, name string, request []byte) (hostedstep.Begun, error)
	Close(ctx context.Context, v hostedstep.View) (hostedstep.Result, error)
}

// Marks spends a redirect once (the store's SpendMarks with the ring's MACs).
type Marks interface {
	SpendMarks(ctx context.Context, macs [][]byte, appID int64, expires, now time.Time) error
}

// MACer makes keyed hashes under every key of the ring (seal.Keyring).
type MACer interface {
	Lookups(s string) [][]byte
}

// Config is what the dialect is built from.
type Config struct {
	Issuer  string // the server's public URL: the iss of the tokens it sends back
	Clients Clients
	Steps   Steps
	Marks   Marks
	MACs    MACer
	// ContinueURL is where a tenant resumes its login; nil: https://DOMAIN/continue. Tests point
	// it at a stand-in for Auth0.
	ContinueURL func(domain string) string
	Now         func() time.Time // nil: time.Now
	Log         *slog.Logger     // nil: discard
}

// Dialect is the Auth0 redirect contract.
type Dialect struct{ cfg Config }

// New returns the dialect.
func New(cfg Config) *Dialect {
	if cfg.ContinueURL == nil {
		cfg.ContinueURL = func(domain string) string { return "https://" + domain + "/continue" }
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	return &Dialect{cfg: cfg}
}

// Path is where an Action sends users: Path + the client id.
const Path = "/auth0/"

// Name is the dialect's name in a session's request.
const Name = "auth0"

// Routes adds the entry point to mux.
func (d *Dialect) Routes(mux step.Router) {
	mux.HandleFunc("GET "+Path+"{client}", d.enter)
}

// request is what a redirect asked, kept with the session.
type request struct {
	Dialect string `json:"dialect"`
	Domain  string `json:"domain"` // the tenant to send the user back to
	State   string `json:"state"`  // Auth0's state of this login transaction
	Subject string `json:"sub"`    // the Auth0 user the Action named
}

// leeway is the clock skew allowed on Auth0's tokens; maxLife bounds how long one may live.
const (
	leeway  = time.Minute
	maxLife = time.Hour
)

// sessionClaims are the claims of the Action's session_token that the step reads.
type sessionClaims struct {
	jwt.Claims
	LoginHint string `json:"login_hint"` // names the user by the client's user match; else sub does
}

// enter checks the Action's session token and begins the step. Nothing leaves for the tenant
// until the token is known to be the client's: before that an error is a page of its own.
func (d *Dialect) enter(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	q := r.URL.Query()
	if len(q["session_token"]) != 1 || len(q["state"]) != 1 || len(r.URL.RawQuery) > 16<<10 {
		errorPage(w, "The sign-in request is missing its session token or state.")
		return
	}
	c, err := d.cfg.Clients.Get(ctx, r.PathValue("client"))
	if err != nil || c.Auth0Domain == "" {
		errorPage(w, "The application that sent you here is not known to this server.")
		return
	}
	secret, err := d.cfg.Clients.Secret(ctx, c, twofold.SecretAuth0)
	if accesslog.ClientGone(d.cfg.Log, r, err, "surface", "auth0") {
		return
	}
	if err != nil {
		d.cfg.Log.ErrorContext(ctx, "auth0: secret", "client_id", c.ClientID, "err", err)
		errorPage(w, "The sign-in request could not be checked.")
		return
	}
	claims, err := d.verify(q.Get("session_token"), secret, c.Auth0Domain)
	if err != nil {
		errorPage(w, "The sign-in request is not valid: "+err.Error())
		return
	}
	state := q.Get("state")
	if state == "" || len(state) > 2048 {
		errorPage(w, "The sign-in request's state is missing or too long.")
		return
	}
	// One step per login transaction: the state is Auth0's, unique to it.
	err = d.cfg.Marks.SpendMarks(ctx, d.cfg.MACs.Lookups("auth0-state:"+c.ClientID+":"+state), c.AppID,
		claims.Expiry.Time().Add(leeway), d.cfg.Now())
	if errors.Is(err, twofold.ErrConflict) {
		errorPage(w, "This sign-in request was used already. Start again from the application.")
		return
	}
	if accesslog.ClientGone(d.cfg.Log, r, err, "surface", "auth0") {
		return
	}
	if err != nil {
		d.cfg.Log.ErrorContext(ctx, "auth0: spend", "err", err)
		errorPage(w, "The sign-in request could not be checked.")
		return
	}
	name := claims.LoginHint
	if name == "" {
		name = claims.Subject
	}
	req := request{Dialect: Name, Domain: c.Auth0Domain, State: state, Subject: claims.Subject}
	raw, _ := json.Marshal(req)
	b, err := d.cfg.Steps.Begin(ctx, c, name, raw)
	switch {
	case errors.Is(err, hostedstep.ErrUnknownUser):
		d.back(w, req, c, secret, outcome{Result: "unknown_user", Reason: "The user is not enrolled with this application."})
		return
	case twofold.ErrorCode(err) == twofold.CodeRateLimited:
		errorPage(w, "Too many sign-ins right now. Try again in a minute.")
		return
	case accesslog.ClientGone(d.cfg.Log, r, err, "surface", "auth0"):
		return
	case err != nil:
		d.cfg.Log.ErrorContext(ctx, "auth0: begin", "client_id", c.ClientID, "err", err)
		errorPage(w, "The sign-in could not start.")
		return
	}
	step.Enter(w, r, b, strings.HasPrefix(d.cfg.Issuer, "https://"))
}

// verify checks a session token the Action signed: HS256 with the shared secret, issued by the
// client's tenant, with a subject and an expiry within maxLife.
func (d *Dialect) verify(raw string, secret []byte, domain string) (sessionClaims, error) {
	tok, err := jwt.ParseSigned(raw, []jose.SignatureAlgorithm{jose.HS256})
	if err != nil {
		return sessionClaims{}, errors.New("the session token is not an HS256 JWT")
	}
	var c sessionClaims
	if err := tok.Claims(secret, &c); err != nil {
		return sessionClaims{}, errors.New("the session token's signature does not verify")
	}
	now := d.cfg.Now()
	if c.Expiry == nil || c.Expiry.Time().After(now.Add(maxLife+leeway)) {
		return sessionClaims{}, errors.New("the session token needs an expiry within the hour")
	}
	if err := c.ValidateWithLeeway(jwt.Expected{Time: now}, leeway); err != nil {
		return sessionClaims{}, errors.New("the session token has expired")
	}
	if c.Issuer != domain && c.Issuer != "https://"+domain+"/" {
		return sessionClaims{}, errors.New("the session token is not from this client's Auth0 tenant")
	}
	if c.Subject == "" {
		return sessionClaims{}, errors.New("the session token names no user (sub)")
	}
	return c, nil
}

// outcome is what the token sent back says beyond the claims validateToken checks.
type outcome struct {
	Result   string   // passed, refused, unknown_user
	Reason   string   // why, when not passed
	Factor   string   // the factor that passed
	AMR      []string // RFC 8176 values of it
	UserID   string   // the Twofold user (authy_id)
	AuthTime int64
}

// back sends the browser to the tenant's /continue with the state and a signed token, by POST
// (Auth0 asks for a POST so the token stays out of logs and history).
func (d *Dialect) back(w http.ResponseWriter, req request, c twofold.StepClient, secret []byte, o outcome) {
	now := d.cfg.Now()
	claims := map[string]any{
		"iss": d.cfg.Issuer, "sub": req.Subject, "state": req.State, "iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(),
		"twofold_result": o.Result,
	}
	if o.Reason != "" {
		claims["twofold_reason"] = o.Reason
	}
	if o.Result == "passed" {
		claims["amr"] = o.AMR
		claims["twofold_factor"] = o.Factor
		claims["twofold_user_id"] = o.UserID
		claims["auth_time"] = o.AuthTime
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: secret}, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		errorPage(w, "The result could not be signed.")
		return
	}
	tok, err := jwt.Signed(signer).Claims(claims).Serialize()
	if err != nil {
		errorPage(w, "The result could not be signed.")
		return
	}
	target := d.cfg.ContinueURL(req.Domain) + "?" + url.Values{"state": {req.State}}.Encode()
	formPost(w, target, url.Values{"state": {req.State}, "session_token": {tok}})
}

// Finish sends a passed step back to the tenant.
func (d *Dialect) Finish(w http.ResponseWriter, r *http.Request, v hostedstep.View) error {
	req, secret, err := d.session(r.Context(), v)
	if err != nil {
		return err
	}
	res, err := d.cfg.Steps.Close(r.Context(), v)
	if err != nil {
		return err
	}
	d.back(w, req, v.Client, secret, outcome{Result: "passed", Factor: string(res.Factor.Base()), AMR: hostedstep.AMR(res.Factor),
		UserID: strconv.FormatInt(res.User.ID, 10), AuthTime: res.AuthTime.Unix()})
	return nil
}

// Refuse sends the browser back to the tenant with a refusal the Action turns into a denial.
func (d *Dialect) Refuse(w http.ResponseWriter, r *http.Request, v hostedstep.View, reason string) error {
	req, secret, err := d.session(r.Context(), v)
	if err != nil {
		return err
	}
	d.back(w, req, v.Client, secret, outcome{Result: "refused", Reason: reason})
	return nil
}

func (d *Dialect) session(ctx context.Context, v hostedstep.View) (request, []byte, error) {
	var req request
	if err := json.Unmarshal(v.Session.Request, &req); err != nil || req.Dialect != Name {
		return request{}, nil, errors.New("auth0: the session was not begun by this dialect")
	}
	secret, err := d.cfg.Clients.Secret(ctx, v.Client, twofold.SecretAuth0)
	return req, secret, err
}

func formPost(w http.ResponseWriter, action string, v url.Values) { step.FormPost(w, action, v) }

func errorPage(w http.ResponseWriter, msg string) { step.ErrorPage(w, http.StatusBadRequest, msg) }

var _ step.Finisher = (*Dialect)(nil)
