// Package passwordless is sign-in with OneTouch as the first factor (issue 19): someone types a
// username, the user's device gets an approval request with number matching, and approving it
// signs them in. Every surface that offers it (the API, the login sample, the hosted step) goes
// through Service.
//
// Anyone can type a username, so the service is built against push bombing and against learning
// who is a user:
//   - requests are counted per username typed and per client address before the name is looked
//     up, and a refusal is the same 429 whether the name is of a user or not;
//   - a name of no user, of a user without a device, of a blocked user, or of a user asked too
//     often already gets a phantom: the same answer as a request sent (a UUID, a number, an
//     expiry), made with the same store work, which stays pending until it expires;
//   - a device that denies a passwordless request as "not requested" blocks the user's next
//     passwordless requests for a while (they get phantoms); the block is read from the store,
//     from that denied request itself, so no restart or crash loses it.
package passwordless

import (
	"context"
	"time"

	"github.com/twofold-auth/twofold/internal/onetouch"
	"github.com/twofold-auth/twofold/internal/twofold"
)

// Store is what the service needs from persistence.
type Store interface {
	Hit(ctx context.Context, name string, now time.Time, l twofold.Limit) (twofold.LimitHit, error)
	PasswordlessSubject(ctx context.Context, appID int64, match twofold.UserMatch, name string) (twofold.PasswordlessSubject, error)
	CreatePasswordless(ctx context.Context, p *twofold.PasswordlessRequest, r *twofold.ApprovalRequest, maxPending int) (bool, error)
	GetPasswordless(ctx context.Context, appID int64, uuid string) (twofold.PasswordlessRequest, error)
}

// Approvals makes and reads the approval requests sent (onetouch.Service): devices, pushes,
// answers, callbacks and the audit of answers are OneTouch's, as for any approval request.
type Approvals interface {
	Prepare(app twofold.App, userID int64, p onetouch.CreateParams) (twofold.ApprovalRequest, error)
	Announce(r twofold.ApprovalRequest)
	MaxPending() int
	Get(ctx context.Context, app twofold.App, uuid string) (twofold.ApprovalRequest, error)
}

// Auditor records security-relevant events (the audit trail); it never fails.
type Auditor interface {
	Record(ctx context.Context, e twofold.AuditEvent)
}

// MaxBlock is the longest a "not requested" denial may block a user: the store keeps the
// passwordless requests that long past their expiry, and no longer.
const MaxBlock = 24 * time.Hour

// Unlimited is a limit that allows everything: Config's zero Limits take the defaults instead.
var Unlimited = twofold.Limit{N: -1}

// Config tunes the service. Zero fields take DefaultConfig's values; a limit is disabled with
// Unlimited.
type Config struct {
	PerUsername twofold.Limit // requests per name typed, per application, known or not
	PerAddress  twofold.Limit // requests per client address (IPv6: per /64), per application
	// PerUser bounds the requests sent to one user however they are named (email, customer's
	// id, Authy id); past it, requests for them are phantoms.
	PerUser    twofold.Limit
	DefaultTTL time.Duration // when seconds_to_expire is not given
	MaxTTL     time.Duration
	BlockFor   time.Duration // how long a "not requested" denial blocks the user; at most MaxBlock
}

// DefaultConfig is what a server runs with unless told otherwise.
func DefaultConfig() Config {
	return Config{
		PerUsername: twofold.Limit{N: 5, Window: 15 * time.Minute},
		PerAddress:  twofold.Limit{N: 20, Window: 15 * time.Minute},
		PerUser:     twofold.Limit{N: 5, Window: 15 * time.Minute},
		DefaultTTL:  2 * time.Minute, MaxTTL: 10 * time.Minute, BlockFor: time.Hour,
	}
}

// Service runs passwordless sign-ins.
type Service struct {
	store     Store
	approvals Approvals
	cfg       Config
	now       func() time.Time
	audit     Auditor // nil: nothing is recorded
}

// New returns a Service. now may be nil for time.Now.
func New(st Store, a Approvals, cfg Config, now func() time.Time) *Service {
	def := DefaultConfig()
	for _, l := range []struct{ dst, def *twofold.Limit }{{&cfg.PerUsername, &def.PerUsername}, {&cfg.PerAddress, &def.PerAddress},
		{&cfg.PerUser, &def.PerUser}} {
		if *l.dst == (twofold.Limit{}) {
			*l.dst = *l.def
		}
	}
	if cfg.DefaultTTL <= 0 {
		cfg.DefaultTTL = def.DefaultTTL
	}
	if cfg.MaxTTL <= 0 {
		cfg.MaxTTL = def.MaxTTL
	}
	cfg.DefaultTTL = min(cfg.DefaultTTL, cfg.MaxTTL)
	if cfg.BlockFor <= 0 {
		cfg.BlockFor = def.BlockFor
	}
	cfg.BlockFor = min(cfg.BlockFor, MaxBlock)
	if now == nil {
		now = time.Now
	}
	return &Service{store: st, approvals: a, cfg: cfg, now: now}
}

// SetAuditor makes the service record the sign-ins begun and the limits hit. Call it before the
// service is used.
func (s *Service) SetAuditor(a Auditor) { s.audit = a }

// Start is a passwordless sign-in asked for by an application on behalf of someone who typed a
// username. Exactly one of Email, CustomUserID and AuthyID names the user: Twofold looks it up,
// so the application need not (and must not: its own "no such user" would tell).
type Start struct {
	Email        string
	CustomUserID string
	AuthyID      int64
	// UserIP is the address of the client who typed the name, as the application sees it: the
	// limits per address count it. Required.
	UserIP          string
	Message         string            // shown on the device; default "Sign in to <application>?"
	Details         map[string]string // shown on the device
	HiddenDetails   map[string]string // kept with the request, not shown
	Logos           []twofold.Logo
	SecondsToExpire *int64 // nil: the default (120); 1 to the maximum (600)
}

// Signin is a passwordless sign-in as its application sees it. Begin answers every request
// alike: pending, with a UUID, a number for the sign-in page to show, and an expiry.
type Signin struct {
	UUID      string
	Number    string // two digits, 10-99: the user picks it on their device
	ExpiresAt time.Time
	Status    twofold.ApprovalStatus // pending, approved, denied or expired
	AuthyID   int64                  // the user who approved; 0 unless approved
}
