// Package verify issues one-time codes (SMS, voice, email), enrols generic authenticators
// (TOTP) and checks tokens against both, with the protections a 2FA service owes its users:
// codes stored as keyed hashes, single use, expiring, capped attempts, TOTP replay protection
// and per-user limits enforced atomically in the store.
package verify

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"math/big"
	"strconv"
	"time"

	"github.com/twofold-auth/twofold/internal/seal"
	"github.com/twofold-auth/twofold/internal/twofold"
)

// Store is what the service needs from persistence.
type Store interface {
	GetUser(ctx context.Context, appID, id int64) (twofold.User, error)
	CheckState(ctx context.Context, appID, id int64, now time.Time, failures twofold.LimitWindow) (twofold.CheckState, error)
	ConfirmUser(ctx context.Context, appID, id int64) error
	PutAuthenticator(ctx context.Context, a *twofold.Authenticator) error
	GetAuthenticator(ctx context.Context, appID, userID int64) (twofold.Authenticator, error)
	ListDevices(ctx context.Context, appID, userID int64) ([]twofold.Device, error)
	// CodesWithoutSMS names the first device's OS, else "authenticator", else "".
	CodesWithoutSMS(ctx context.Context, appID, userID int64) (string, error)
	// Decide runs fn as one decision about the user: one write transaction, serialised with
	// every other decision about the user (twofold.Decision).
	Decide(ctx context.Context, appID, userID int64, fn func(twofold.Decision) error) error
	InsertQRLink(ctx context.Context, l twofold.QRLink) error
	GetQRLink(ctx context.Context, mac []byte, now time.Time) (twofold.QRLink, error)
	Hit(ctx context.Context, name string, now time.Time, l twofold.Limit) (twofold.LimitHit, error)
	RefundHit(ctx context.Context, ev twofold.LimitEvent) error
	RecordRefusal(ctx context.Context, name string, now time.Time, window time.Duration) (bool, error)
	AddUsage(ctx context.Context, appID int64, at time.Time, kind twofold.UsageKind, n int64) error
	InsertPhoneVerification(ctx context.Context, v *twofold.PhoneVerification) error
	LatestPhoneVerification(ctx context.Context, appID int64, phone, uuid string) (twofold.PhoneVerification, error)
	ConsumePhoneVerification(ctx context.Context, appID int64, phone string, now time.Time, maxAttempts int,
		matches func(twofold.PhoneVerification) bool) (found, accepted bool, err error)
	// Verify verifications (verification.go).
	StartVerification(ctx context.Context, v twofold.Verification, send twofold.VerificationSend, now time.Time,
		decide func(live twofold.Verification) error) (twofold.Verification, bool, error)
	CheckVerification(ctx context.Context, serviceID int64, recipient, publicID string, now time.Time, maxChecks int,
		matches func(twofold.Verification) bool) (twofold.Verification, twofold.VerificationChecked, error)
	GetVerification(ctx context.Context, serviceID int64, publicID string) (twofold.Verification, error)
	LiveVerification(ctx context.Context, serviceID int64, recipient string, now time.Time) (twofold.Verification, error)
	EndVerification(ctx context.Context, serviceID int64, publicID, status string, now time.Time) (twofold.Verification, error)
}

// Sender hands messages to delivery (*deliver.Router). Send records one and delivers it, and
// returns it as recorded; an error wrapping twofold.ErrNotDelivered means no provider took it.
// Prepare and Deliver are Send in two steps, for a message stored in a decision of the store
// with the code it carries (Prepare makes the record, Deliver hands it over once stored).
// Refuse counts a send refused by reason.
type Sender interface {
	Send(ctx context.Context, app twofold.App, m twofold.Message) (twofold.Message, error)
	Prepare(app twofold.App, m twofold.Message) twofold.Message
	Deliver(ctx context.Context, app twofold.App, m twofold.Message) (twofold.Message, error)
	Refuse(ctx context.Context, app twofold.App, ch twofold.Channel, reason string) error
}

// UsageCounter counts usage statistics off the request's path (*apps.UsageRecorder).
type UsageCounter interface {
	Add(appID int64, at time.Time, kind twofold.UsageKind)
}

// SetUsage makes the service count sends and successful verifications through u, in memory and
// batched, instead of one database write each. Call it before the service is used.
func (s *Service) SetUsage(u UsageCounter) { s.usage = u }

// count adds one to an application's usage statistics.
func (s *Service) count(ctx context.Context, appID int64, at time.Time, kind twofold.UsageKind) error {
	if s.usage != nil {
		s.usage.Add(appID, at, kind)
		return nil
	}
	return s.store.AddUsage(ctx, appID, at, kind, 1)
}

// Limit is "at most N per Window". N <= 0 disables the limit.
type Limit = twofold.Limit

// limit is the application's own limit of kind k, else the server's def.
func limit(app twofold.App, k twofold.LimitKind, def Limit) Limit {
	if l, ok := app.Limits[k]; ok {
		return l
	}
	return def
}

// Config tunes the service; zero fields take the defaults of DefaultConfig.
type Config struct {
	CodeTTL      time.Duration // how long a sent code stays valid
	MaxAttempts  int           // wrong tries a code survives
	FailureLimit Limit         // failed verifications per user
	SendLimit    Limit         // codes sent per user (all channels)
	// Fraud and cost limits: SMS pumping sends many codes to numbers an attacker is paid for.
	NumberSendLimit  Limit         // codes sent per phone number (users and phone verification together)
	CountrySendLimit Limit         // codes sent per country calling code, per application
	AppSendLimit     Limit         // codes sent per application (all channels)
	QRLinkTTL        time.Duration // how long a QR code link works
	SandboxToken     string        // the token that always verifies in sandbox apps
	MaxActionLen     int
	MaxMessageLen    int
}

// DefaultConfig is what a server runs with unless told otherwise.
func DefaultConfig() Config {
	return Config{
		CodeTTL:      10 * time.Minute,
		MaxAttempts:  5,
		FailureLimit: Limit{N: 10, Window: 15 * time.Minute},
		SendLimit:    Limit{N: 5, Window: 10 * time.Minute},
		// Per number as per user; per country and application, generous bounds that stop a
		// runaway: operators set them to their traffic (twofold serve --limit-*-sends).
		NumberSendLimit:  Limit{N: 5, Window: 10 * time.Minute},
		CountrySendLimit: Limit{N: 500, Window: time.Hour},
		AppSendLimit:     Limit{N: 1000, Window: time.Hour},
		QRLinkTTL:        15 * time.Minute,
		SandboxToken:     "0000000",
		MaxActionLen:     255,
		MaxMessageLen:    255,
	}
}

// Auditor records security-relevant events (the audit trail, *audit.Log). Record never fails;
// Entry makes an event ready to be appended in the store's transaction that makes the change it
// records (Store.Decide), so that the change and its record commit together.
type Auditor interface {
	Record(ctx context.Context, e twofold.AuditEvent)
	Entry(ctx context.Context, e twofold.AuditEvent) twofold.AuditEntry
}

// Service issues and checks codes.
type Service struct {
	store  Store
	sender Sender
	keys   *seal.Keyring
	cfg    Config
	now    func() time.Time
	audit  Auditor      // nil: nothing is recorded
	usage  UsageCounter // nil: usage is written to the store at once
	// recovery spends recovery codes; nil: a token of their shape is refused as malformed.
	recovery RecoveryCodes
}

// New returns a Service. now may be nil for time.Now.
func New(store Store, sender Sender, keys *seal.Keyring, cfg Config, now func() time.Time) *Service {
	def := DefaultConfig()
	if cfg.CodeTTL <= 0 {
		cfg.CodeTTL = def.CodeTTL
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = def.MaxAttempts
	}
	if cfg.QRLinkTTL <= 0 {
		cfg.QRLinkTTL = def.QRLinkTTL
	}
	if cfg.SandboxToken == "" {
		cfg.SandboxToken = def.SandboxToken
	}
	if cfg.MaxActionLen <= 0 {
		cfg.MaxActionLen = def.MaxActionLen
	}
	if cfg.MaxMessageLen <= 0 {
		cfg.MaxMessageLen = def.MaxMessageLen
	}
	if now == nil {
		now = time.Now
	}
	return &Service{store: store, sender: sender, keys: keys, cfg: cfg, now: now}
}

// SetAuditor makes the service record verifications (succeeded, failed) and the first refusal
// of each limit within a window's length. Call it before the service is used.
func (s *Service) SetAuditor(a Auditor) { s.audit = a }

func (s *Service) record(ctx context.Context, e twofold.AuditEvent) {
	if s.audit != nil {
		s.audit.Record(ctx, e)
	}
}

// auditIn appends e in decision d (nothing when e has no action or there is no trail).
func (s *Service) auditIn(ctx context.Context, d twofold.Decision, e twofold.AuditEvent) error {
	if s.audit == nil || e.Action == "" {
		return nil
	}
	return d.Audit(s.audit.Entry(ctx, e))
}

// user loads a user for verification; an unknown user is Authy's 60016 on verify, 60026 elsewhere.
func (s *Service) user(ctx context.Context, appID, id int64, unknown func() *twofold.Error) (twofold.User, error) {
	u, err := s.store.GetUser(ctx, appID, id)
	if errors.Is(err, twofold.ErrNotFound) {
		return twofold.User{}, unknown()
	}
	return u, err
}

// counted names one use of a limit: the counter it is counted under, and for the audit trail
// which limit it is (never the counter's name, which may hold a phone number) and whose.
type counted struct {
	name   string // the store's counter
	limit  string // failures, sends, number_sends, country_sends, app_sends, phone_failures
	appID  int64
	userID int64 // 0 when no user is concerned
}

// hit counts one event against limit l, a sliding window: it reports a 60003 error, counting
// nothing, when the window ending now already holds N events. Counting before acting is what
// makes a burst of parallel requests safe. The first refusal within a window's length is
// recorded in the audit trail; the rest of a flood is not. The event counted is returned for
// refund (zero when the limit is off).
func (s *Service) hit(ctx context.Context, c counted, l Limit, what string) (twofold.LimitEvent, error) {
	if l.Off() {
		return twofold.LimitEvent{}, nil
	}
	now := s.now()
	h, err := s.store.Hit(ctx, c.name, now, l)
	if err != nil {
		return twofold.LimitEvent{}, err
	}
	if h.Refused {
		if h.FirstRefusal {
			s.limitHit(ctx, c, l)
		}
		return twofold.LimitEvent{}, limitError(l, h.Oldest, now, what)
	}
	return h.Event, nil
}

// attempt is hit for a user's failure limit, counted in a decision of the store (Decide), so
// that it is serialised with the verifications that read that limit and count a failure in one
// transaction: on PostgreSQL a count made outside one could slip between their read and write.
func (s *Service) attempt(ctx context.Context, c counted, l Limit) (twofold.LimitEvent, error) {
	if l.Off() {
		return twofold.LimitEvent{}, nil
	}
	now := s.now()
	var ev twofold.LimitEvent
	var refused error
	err := s.store.Decide(ctx, c.appID, c.userID, func(d twofold.Decision) error {
		ev, refused = twofold.LimitEvent{}, nil
		h, err := d.Hit(c.name, now, l)
		if err != nil {
			return err
		}
		if h.Refused {
			refused = limitError(l, h.Oldest, now, "too many failed verifications for this user")
			if h.FirstRefusal {
				return s.auditIn(ctx, d, limitHitEvent(c, l))
			}
			return nil
		}
		ev = h.Event
		return nil
	})
	if err != nil {
		return twofold.LimitEvent{}, err
	}
	return ev, refused
}

// refusedIn records, in decision d, a refusal of limit l (whose window's events were read in d):
// the first within a window's length is noted and goes into the audit trail.
func (s *Service) refusedIn(ctx context.Context, d twofold.Decision, c counted, l Limit, recorded bool, now time.Time) error {
	if recorded {
		return nil
	}
	first, err := d.RecordRefusal(c.name, now, l.Window)
	if err != nil || !first {
		return err
	}
	return s.auditIn(ctx, d, limitHitEvent(c, l))
}

// limitHit records the first refusal of limit l within a window's length.
func (s *Service) limitHit(ctx context.Context, c counted, l Limit) {
	s.record(ctx, limitHitEvent(c, l))
}

func limitHitEvent(c counted, l Limit) twofold.AuditEvent {
	return twofold.AuditEvent{Action: twofold.AuditLimitHit, AppID: c.appID, UserID: c.userID,
		Details: map[string]string{"limit": c.limit, "max": strconv.Itoa(l.N), "window": l.Window.String()}}
}

// limitError is the 60003 refusal of limit l, whose oldest event counted was at oldest. Its
// Retry-After is when that event leaves the window, rounded up to a whole second (at least
// one): a client that waits that long finds room, unless others took it meanwhile.
func limitError(l Limit, oldest, now time.Time, what string) error {
	wait := oldest.Add(l.Window).Sub(now)
	return twofold.ErrLimit(what, max((wait+time.Second-1).Truncate(time.Second), time.Second))
}

// refund gives back an event counted by hit, for a verification that succeeded or was not a
// guess: it removes exactly that event.
func (s *Service) refund(ctx context.Context, ev twofold.LimitEvent) error {
	if ev.Name == "" {
		return nil
	}
	return s.store.RefundHit(ctx, ev)
}

// randomDigits returns n uniformly random decimal digits.
func randomDigits(n int) (string, error) {
	max := new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(n)), nil)
	v, err := rand.Int(rand.Reader, max)
	if err != nil {
		return "", fmt.Errorf("random code: %w", err)
	}
	s := v.String()
	for len(s) < n {
		s = "0" + s
	}
	return s, nil
}

// codeContext binds a code's MAC to its application, user and action.
func codeContext(appID, userID int64, action string) string {
	return strconv.FormatInt(appID, 10) + ":" + strconv.FormatInt(userID, 10) + ":" + action
}

func failureCounter(appID, userID int64) string {
	return fmt.Sprintf("verify-failures:%d:%d", appID, userID)
}
func sendCounter(appID, userID int64) string { return fmt.Sprintf("sends:%d:%d", appID, userID) }

// ServerLimits are the limits of this server, by the kind an application may set for itself:
// what an application that sets none of its own gets.
func (s *Service) ServerLimits() map[twofold.LimitKind]twofold.Limit {
	return map[twofold.LimitKind]twofold.Limit{
		twofold.LimitFailures: s.cfg.FailureLimit, twofold.LimitSends: s.cfg.SendLimit,
		twofold.LimitNumberSends: s.cfg.NumberSendLimit, twofold.LimitCountrySends: s.cfg.CountrySendLimit,
		twofold.LimitAppSends: s.cfg.AppSendLimit,
	}
}
