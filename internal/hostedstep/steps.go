package hostedstep

import (
	"context"
	"crypto/hmac"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/twofold-auth/twofold/internal/onetouch"
	"github.com/twofold-auth/twofold/internal/twofold"
	"github.com/twofold-auth/twofold/internal/verify"
)

// StepStore is what the sessions of the step need from persistence.
type StepStore interface {
	GetApp(ctx context.Context, id int64) (twofold.App, error)
	GetUser(ctx context.Context, appID, id int64) (twofold.User, error)
	UserByCustomID(ctx context.Context, appID int64, customID string) (twofold.User, error)
	UserByEmail(ctx context.Context, appID int64, email string) (twofold.User, error)
	GetAuthenticator(ctx context.Context, appID, userID int64) (twofold.Authenticator, error)
	ListDevices(ctx context.Context, appID, userID int64) ([]twofold.Device, error)
	RecoveryCodes(ctx context.Context, appID, userID int64) (twofold.RecoveryCodes, error)
	StepClientByID(ctx context.Context, id int64) (twofold.StepClient, error)
	CreateStepSession(ctx context.Context, x *twofold.StepSession) error
	StepSessionByHandle(ctx context.Context, mac []byte, now time.Time) (twofold.StepSession, error)
	SetStepApproval(ctx context.Context, id int64, uuid string) error
	SetStepSent(ctx context.Context, id int64, channel twofold.Channel) error
	SetStepSignin(ctx context.Context, id int64, uuid string) error
	BindStepSession(ctx context.Context, id int64, uuid string, userID int64, now time.Time) error
	FinishStepSession(ctx context.Context, id int64, status twofold.StepStatus, factor twofold.Factor, now time.Time) error
	IssueStepCode(ctx context.Context, id int64, mac []byte, expires time.Time) error
	RedeemStepCode(ctx context.Context, mac []byte, client int64, now time.Time) (twofold.StepSession, error)
	CloseStepSession(ctx context.Context, id int64, now time.Time) error
	Hit(ctx context.Context, name string, now time.Time, l twofold.Limit) (twofold.LimitHit, error)
}

// MACer makes keyed hashes of the step's random handles (seal.Keyring): the current key's for
// new rows, every accepted key's for lookups while the master key rotates.
type MACer interface {
	Lookup(s string) []byte
	Lookups(s string) [][]byte
}

// Verifier sends and checks codes (verify.Service).
type Verifier interface {
	Send(ctx context.Context, app twofold.App, userID int64, p verify.SendParams) (verify.Sent, error)
	Check(ctx context.Context, app twofold.App, userID int64, token string, p verify.CheckParams) (verify.Method, error)
}

// Approvals asks for and reads push approvals (onetouch.Service).
type Approvals interface {
	Create(ctx context.Context, app twofold.App, userID int64, p onetouch.CreateParams) (twofold.ApprovalRequest, error)
	Get(ctx context.Context, app twofold.App, uuid string) (twofold.ApprovalRequest, error)
	Close(ctx context.Context, app twofold.App, uuid string) (twofold.ApprovalRequest, error)
}

// Config bounds the step.
type Config struct {
	SessionTTL       time.Duration // how long a user has to pass the step (default 10 minutes)
	CodeTTL          time.Duration // an authorization code's life (default 1 minute)
	PushesPerSession int           // pushes one session may send (default 3)
	UserPushes       twofold.Limit // pushes per user across sessions (default 5/10m)
	ClientSessions   twofold.Limit // sessions a client may start (default 600/1m)
	ClientSends      twofold.Limit // codes and pushes a client's sessions may send (default 120/1m)
}

// DefaultConfig is the step's configuration unless the operator changes it.
func DefaultConfig() Config {
	return Config{SessionTTL: 10 * time.Minute, CodeTTL: time.Minute, PushesPerSession: 3,
		UserPushes: twofold.Limit{N: 5, Window: 10 * time.Minute}, ClientSessions: twofold.Limit{N: 600, Window: time.Minute},
		ClientSends: twofold.Limit{N: 120, Window: time.Minute}}
}

// Steps runs users through the step.
type Steps struct {
	store     StepStore
	macs      MACer
	verify    Verifier
	approvals Approvals
	pw        Passwordless // nil: no passwordless sign-in
	pk        Passkeys     // nil: no passkeys (passkeys.go)
	// stepOrigin and stepHost are where the step's pages are (SetPasskeys), which passkeys
	// must reach to be offered.
	stepOrigin, stepHost string
	cfg                  Config
	now                  func() time.Time
}

// NewSteps returns the step's sessions service. Zero fields of cfg take DefaultConfig's; now may
// be nil for time.Now.
func NewSteps(st StepStore, macs MACer, v Verifier, a Approvals, cfg Config, now func() time.Time) *Steps {
	def := DefaultConfig()
	if cfg.SessionTTL <= 0 {
		cfg.SessionTTL = def.SessionTTL
	}
	if cfg.CodeTTL <= 0 {
		cfg.CodeTTL = def.CodeTTL
	}
	if cfg.PushesPerSession <= 0 {
		cfg.PushesPerSession = def.PushesPerSession
	}
	if cfg.UserPushes == (twofold.Limit{}) {
		cfg.UserPushes = def.UserPushes
	}
	if cfg.ClientSessions == (twofold.Limit{}) {
		cfg.ClientSessions = def.ClientSessions
	}
	if cfg.ClientSends == (twofold.Limit{}) {
		cfg.ClientSends = def.ClientSends
	}
	if now == nil {
		now = time.Now
	}
	return &Steps{store: st, macs: macs, verify: v, approvals: a, cfg: cfg, now: now}
}

// The step's own failures; codes' and limits' come as *twofold.Error from the services.
var (
	ErrNoSession   = errors.New("hostedstep: no such step, or it expired, or it belongs to another browser")
	ErrUnknownUser = errors.New("hostedstep: the user named is not a user of the application")
	ErrNotOffered  = errors.New("hostedstep: that factor is not offered to this user")
	ErrFinished    = errors.New("hostedstep: the step is no longer pending")
	ErrNoCode      = errors.New("hostedstep: the authorization code is unknown, expired, spent or another client's")
)

// handle contexts keep a handle's MAC from matching another kind's.
const (
	macHandle  = "step-handle:"
	macBrowser = "step-browser:"
	macCode    = "step-code:"
)

// Begun is a new session: the handle for the page's URL and the secret for the browser's cookie.
type Begun struct {
	Session twofold.StepSession
	Handle  string
	Browser string
}

// Begin starts a step for the user a client named (by the client's user match), after the
// client's wire adapter checked who is asking. request is what the adapter needs back at the
// end (redirect URI, state, nonce, PKCE), stored as given.
func (s *Steps) Begin(ctx context.Context, c twofold.StepClient, name string, request []byte) (Begun, error) {
	now := s.now()
	if err := s.hit(ctx, "step_sessions:client:"+strconv.FormatInt(c.ID, 10), s.cfg.ClientSessions, "sign-ins through this client"); err != nil {
		return Begun{}, err
	}
	u, err := s.resolve(ctx, c, name)
	if err != nil {
		return Begun{}, err
	}
	b := Begun{Handle: randomToken("", 32), Browser: randomToken("", 32)}
	b.Session = twofold.StepSession{HandleMAC: s.macs.Lookup(macHandle + b.Handle), ClientID: c.ID, AppID: c.AppID, UserID: u.ID,
		BrowserMAC: s.macs.Lookup(macBrowser + b.Browser), Request: request, CreatedAt: now, ExpiresAt: now.Add(s.cfg.SessionTTL)}
	if err := s.store.CreateStepSession(ctx, &b.Session); err != nil {
		if errors.Is(err, twofold.ErrNotFound) {
			return Begun{}, ErrUnknownUser
		}
		return Begun{}, err
	}
	return b, nil
}

// resolve finds the user a client named.
func (s *Steps) resolve(ctx context.Context, c twofold.StepClient, name string) (twofold.User, error) {
	var u twofold.User
	var err error
	switch c.UserMatch {
	case twofold.MatchID:
		id, perr := strconv.ParseInt(name, 10, 64)
		if perr != nil || id <= 0 || strconv.FormatInt(id, 10) != name {
			return twofold.User{}, ErrUnknownUser
		}
		u, err = s.store.GetUser(ctx, c.AppID, id)
	case twofold.MatchCustomID:
		if name == "" {
			return twofold.User{}, ErrUnknownUser
		}
		u, err = s.store.UserByCustomID(ctx, c.AppID, name)
	case twofold.MatchEmail:
		u, err = s.store.UserByEmail(ctx, c.AppID, name)
	default:
		return twofold.User{}, fmt.Errorf("hostedstep: client %s matches users by %q", c.ClientID, c.UserMatch)
	}
	if errors.Is(err, twofold.ErrNotFound) || errors.Is(err, twofold.ErrConflict) {
		return twofold.User{}, ErrUnknownUser
	}
	return u, err
}

// View is an open session with what the page shows.
type View struct {
	Session twofold.StepSession
	Client  twofold.StepClient
	App     twofold.App
	User    twofold.User
	Offer   []twofold.Factor // what this user can pass, in the client's order; none without a user
	// RecoveryCodes is how many of the user's recovery codes remain: with any, the page offers
	// "Use a recovery code" besides Offer.
	RecoveryCodes int
}

// NeedsUser says the session was begun without a user and has none yet: its page asks for a
// username and runs a passwordless sign-in (AskPasswordless).
func (v View) NeedsUser() bool { return v.Session.Passwordless && v.Session.UserID == 0 }

// Open returns the session whose page has handle, for the browser holding browser (its cookie).
// Anything else, an expired session included, is ErrNoSession.
func (s *Steps) Open(ctx context.Context, handle, browser string) (View, error) {
	x, err := s.byHandle(ctx, handle)
	if err != nil {
		return View{}, err
	}
	if !s.matches(macBrowser+browser, x.BrowserMAC) {
		return View{}, ErrNoSession
	}
	c, err := s.store.StepClientByID(ctx, x.ClientID)
	if errors.Is(err, twofold.ErrNotFound) {
		return View{}, ErrNoSession // deleted meanwhile
	}
	if err != nil {
		return View{}, err
	}
	app, err := s.store.GetApp(ctx, x.AppID)
	if err != nil {
		return View{}, err
	}
	if x.Passwordless && x.UserID == 0 {
		// No user yet: the page asks who. A client whose operator turned passwordless sign-in
		// off meanwhile ends such steps.
		if !c.Passwordless || s.pw == nil {
			return View{}, ErrNoSession
		}
		return View{Session: x, Client: c, App: app}, nil
	}
	u, err := s.store.GetUser(ctx, x.AppID, x.UserID)
	if errors.Is(err, twofold.ErrNotFound) {
		return View{}, ErrNoSession
	}
	if err != nil {
		return View{}, err
	}
	offer, err := s.offer(ctx, app, c, u)
	if err != nil {
		return View{}, err
	}
	rc, err := s.store.RecoveryCodes(ctx, app.ID, u.ID)
	if err != nil {
		return View{}, err
	}
	return View{Session: x, Client: c, App: app, User: u, Offer: offer, RecoveryCodes: rc.Remaining}, nil
}

func (s *Steps) byHandle(ctx context.Context, handle string) (twofold.StepSession, error) {
	if handle == "" || len(handle) > 100 {
		return twofold.StepSession{}, ErrNoSession
	}
	for _, mac := range s.macs.Lookups(macHandle + handle) {
		x, err := s.store.StepSessionByHandle(ctx, mac, s.now())
		if err == nil {
			return x, nil
		}
		if !errors.Is(err, twofold.ErrNotFound) {
			return twofold.StepSession{}, err
		}
	}
	return twofold.StepSession{}, ErrNoSession
}

// matches compares s's MACs under every accepted key with stored, in constant time.
func (s *Steps) matches(v string, stored []byte) bool {
	ok := false
	for _, mac := range s.macs.Lookups(v) {
		ok = hmac.Equal(mac, stored) || ok
	}
	return ok
}

// offer is what the user has of what the client allows, in the client's order.
func (s *Steps) offer(ctx context.Context, app twofold.App, c twofold.StepClient, u twofold.User) ([]twofold.Factor, error) {
	devs, err := s.store.ListDevices(ctx, app.ID, u.ID)
	if err != nil {
		return nil, err
	}
	_, err = s.store.GetAuthenticator(ctx, app.ID, u.ID)
	hasApp := err == nil
	if err != nil && !errors.Is(err, twofold.ErrNotFound) {
		return nil, err
	}
	has := map[twofold.Factor]bool{
		twofold.FactorPush:  len(devs) > 0,
		twofold.FactorTOTP:  hasApp || len(devs) > 0, // a device's own codes verify too
		twofold.FactorSMS:   u.Phone != "" && app.SMSEnabled,
		twofold.FactorCall:  u.Phone != "" && app.CallEnabled,
		twofold.FactorEmail: u.Email != "",
	}
	var out []twofold.Factor
	// A passkey the step's page can use comes first: the strongest, and one tap. It is offered
	// whatever the client's factors, as the application's passkeys are the operator's choice.
	pk, err := s.passkeysOffered(ctx, app, u)
	if err != nil {
		return nil, err
	}
	if pk {
		out = append(out, twofold.FactorPasskey)
	}
	for _, f := range c.Factors {
		if has[f] {
			out = append(out, f)
		}
	}
	return out, nil
}

func (v View) pending() error {
	if v.Session.Status != twofold.StepPending {
		return ErrFinished
	}
	return nil
}

func (v View) offers(f twofold.Factor) error {
	if !slices.Contains(v.Offer, f) {
		return ErrNotOffered
	}
	return nil
}

// hit counts one event against a limit, answering a refusal as the API's 60003.
func (s *Steps) hit(ctx context.Context, name string, l twofold.Limit, what string) error {
	if l.Off() {
		return nil
	}
	now := s.now()
	h, err := s.store.Hit(ctx, name, now, l)
	if err != nil {
		return err
	}
	if h.Refused {
		return twofold.ErrLimit(what, h.Oldest.Add(l.Window).Sub(now))
	}
	return nil
}
