// Package verifyfactors holds the rules of the Verify v2 API's entities, factors and challenges
// (internal/verifyapi is their wire adapter), over the same users as the Authy API:
//
//   - An entity of a service is the service's application's user whose custom user id is the
//     entity's Identity. Creating an entity makes that user (no phone) unless it exists, so a
//     user the Authy API registered with a custom id (QR registration) is the same entity.
//     Deleting an entity deletes its factors and challenges in that service, and nothing else:
//     the user stays, with whatever the Authy API gave it.
//   - A totp factor is a secret, sealed at rest bound to the factor, with its own time step,
//     skew, length and algorithm. It is verified by its first right code; while unverified it
//     takes MaxAttempts codes, then ErrFactorMaxAttempts. A code is spent once: an accepted
//     code's time step is recorded, and a code of that step or an earlier one is wrong after
//     it, whichever challenge it is given to.
//   - A challenge of a totp factor is answered by a code, at creation or later; it takes
//     MaxAttempts codes, then ErrChallengeMaxAttempts.
package verifyfactors

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/twofold-auth/twofold/internal/seal"
	"github.com/twofold-auth/twofold/internal/twofold"
)

// MaxAttempts bounds the codes an unverified factor, or a challenge, takes.
const MaxAttempts = 5

// Refusals the Verify API answers with its own codes.
var (
	ErrFactorMaxAttempts    = errors.New("max verification attempts of the factor reached")
	ErrChallengeMaxAttempts = errors.New("max attempts of the challenge reached")
	ErrNotPending           = errors.New("the challenge is no longer pending")
	ErrFactorNotVerified    = errors.New("the factor is not verified")
	ErrBadSignature         = errors.New("the answer is not signed by the factor's key over the challenge")
)

// Store is what the service needs from persistence.
type Store interface {
	UserByCustomID(ctx context.Context, appID int64, customID string) (twofold.User, error)
	ListEntities(ctx context.Context, appID, after int64, offset, limit int) ([]twofold.User, error)
	CreateCustomUser(ctx context.Context, u *twofold.User) (bool, error)
	InsertVerifyFactor(ctx context.Context, f *twofold.VerifyFactor, events ...twofold.VerifyWebhookEvent) error
	GetVerifyFactorByID(ctx context.Context, serviceID, userID, id int64) (twofold.VerifyFactor, error)
	GetVerifyFactor(ctx context.Context, serviceID, userID int64, publicID string) (twofold.VerifyFactor, error)
	ListVerifyFactors(ctx context.Context, serviceID, userID, after int64, offset, limit int) ([]twofold.VerifyFactor, error)
	UpdateVerifyFactor(ctx context.Context, f twofold.VerifyFactor, events ...twofold.VerifyWebhookEvent) error
	SpendFactorStep(ctx context.Context, factorID, step int64) (bool, error)
	AddFactorFailure(ctx context.Context, factorID int64) (int, error)
	DeleteVerifyFactor(ctx context.Context, serviceID, userID int64, publicID string, events ...twofold.VerifyWebhookEvent) error
	DeleteVerifyEntity(ctx context.Context, serviceID, userID int64, events ...twofold.VerifyWebhookEvent) (int64, error)
	InsertVerifyChallenge(ctx context.Context, c *twofold.VerifyChallenge) error
	GetVerifyChallenge(ctx context.Context, serviceID, userID int64, publicID string) (twofold.VerifyChallenge, error)
	ListVerifyChallenges(ctx context.Context, serviceID, userID int64, f twofold.ChallengeFilter, after int64, offset, limit int) ([]twofold.VerifyChallenge, error)
	AnswerVerifyChallenge(ctx context.Context, id int64, status, reason string, now time.Time, events ...twofold.VerifyWebhookEvent) (bool, error)
	AddChallengeFailure(ctx context.Context, id int64) (int, error)
	ListDevices(ctx context.Context, appID, userID int64) ([]twofold.Device, error)
	Hit(ctx context.Context, name string, now time.Time, l twofold.Limit) (twofold.LimitHit, error)
	RefundHit(ctx context.Context, ev twofold.LimitEvent) error
}

// maxFactors bounds the factors of an entity read at once (by deletion and device sync).
const maxFactors = 10000

// Events makes the webhook events of factor and challenge changes (verifyapi.WebhookEvents).
// The service has an event made before the change it reports, and the store queues it in the
// change's own transaction: a crash keeps both or neither.
type Events interface {
	FactorEvent(ctx context.Context, event string, svc twofold.VerifyService, entity twofold.User, f twofold.VerifyFactor) (twofold.VerifyWebhookEvent, error)
	ChallengeEvent(ctx context.Context, svc twofold.VerifyService, entity twofold.User, c twofold.VerifyChallenge) (twofold.VerifyWebhookEvent, error)
	// Queued is told after a change with events was committed.
	Queued()
}

// Service serves entities, factors and challenges.
type Service struct {
	store  Store
	keys   *seal.Keyring
	events Events  // nil: none
	audit  Auditor // nil: nothing is recorded
	// approvals makes the users' Twofold devices push factors (devices.go); nil: they are not.
	approvals Approvals
	now       func() time.Time
}

// New returns the service. now may be nil for time.Now.
func New(st Store, keys *seal.Keyring, now func() time.Time) *Service {
	if now == nil {
		now = time.Now
	}
	return &Service{store: st, keys: keys, now: now}
}

// Auditor records security-relevant events (the audit trail); it never fails.
type Auditor interface {
	Record(ctx context.Context, e twofold.AuditEvent)
}

// SetAuditor makes the service record factors made, verified and deleted, and challenges
// answered. Call it before the service is used.
func (s *Service) SetAuditor(a Auditor) { s.audit = a }

// SetEvents makes the service queue ev's events with the factor and challenge changes they
// report. Call it before the service is used.
func (s *Service) SetEvents(ev Events) { s.events = ev }

// Identity bounds (Twilio's).
const (
	MinIdentity = 8
	MaxIdentity = 64
)

func checkIdentity(identity string) error {
	n := utf8.RuneCountInString(identity)
	if n < MinIdentity || n > MaxIdentity || strings.TrimSpace(identity) != identity {
		return twofold.ErrInvalidParam("identity", fmt.Sprintf("must be %d to %d characters, without surrounding spaces", MinIdentity, MaxIdentity))
	}
	return nil
}

// Entity returns the application's user that is the entity identity: ErrNotFound if none.
func (s *Service) Entity(ctx context.Context, app twofold.App, identity string) (twofold.User, error) {
	if err := checkIdentity(identity); err != nil {
		return twofold.User{}, twofold.ErrNotFound
	}
	return s.store.UserByCustomID(ctx, app.ID, identity)
}

// Entities lists the application's entities, by the user's id (paging as the store's lists):
// its users whose custom id is 8 to 64 characters, whichever API made them.
func (s *Service) Entities(ctx context.Context, app twofold.App, after int64, offset, limit int) ([]twofold.User, error) {
	return s.store.ListEntities(ctx, app.ID, after, offset, limit)
}

// CreateEntity makes the entity identity (a user with that custom id and no phone) unless the
// application has that user already; created says which.
func (s *Service) CreateEntity(ctx context.Context, app twofold.App, identity string) (u twofold.User, created bool, err error) {
	if err := checkIdentity(identity); err != nil {
		return twofold.User{}, false, err
	}
	now := s.now().UTC()
	u = twofold.User{AppID: app.ID, CustomUserID: identity, CreatedAt: now, UpdatedAt: now}
	created, err = s.store.CreateCustomUser(ctx, &u)
	if err != nil {
		return twofold.User{}, false, fmt.Errorf("create entity: %w", err)
	}
	return u, created, nil
}

// DeleteEntity deletes the entity's factors and challenges in svc (the user stays).
func (s *Service) DeleteEntity(ctx context.Context, svc twofold.VerifyService, entity twofold.User) error {
	factors, err := s.store.ListVerifyFactors(ctx, svc.ID, entity.ID, 0, 0, maxFactors)
	if err != nil {
		return err
	}
	events, err := s.factorEvents(ctx, twofold.VerifyEventFactorDeleted, svc, entity, factors...)
	if err != nil {
		return err
	}
	if _, err := s.store.DeleteVerifyEntity(ctx, svc.ID, entity.ID, events...); err != nil {
		return err
	}
	s.queued(events)
	for _, f := range factors {
		s.factorDeleted(ctx, svc, entity, f)
	}
	return nil
}

// factorEvents makes event of each factor, for the store method that changes them; none
// without Events.
func (s *Service) factorEvents(ctx context.Context, event string, svc twofold.VerifyService, entity twofold.User, fs ...twofold.VerifyFactor) ([]twofold.VerifyWebhookEvent, error) {
	if s.events == nil {
		return nil, nil
	}
	events := make([]twofold.VerifyWebhookEvent, 0, len(fs))
	for _, f := range fs {
		ev, err := s.events.FactorEvent(ctx, event, svc, entity, f)
		if err != nil {
			return nil, fmt.Errorf("%s event: %w", event, err)
		}
		events = append(events, ev)
	}
	return events, nil
}

// challengeEvents makes the event of the answered challenge c; none without Events.
func (s *Service) challengeEvents(ctx context.Context, svc twofold.VerifyService, entity twofold.User, c twofold.VerifyChallenge) ([]twofold.VerifyWebhookEvent, error) {
	if s.events == nil {
		return nil, nil
	}
	ev, err := s.events.ChallengeEvent(ctx, svc, entity, c)
	if err != nil {
		return nil, fmt.Errorf("challenge event: %w", err)
	}
	return []twofold.VerifyWebhookEvent{ev}, nil
}

// queued tells Events that events were committed.
func (s *Service) queued(events []twofold.VerifyWebhookEvent) {
	if len(events) > 0 && s.events != nil {
		s.events.Queued()
	}
}

// The changes below are recorded in the audit trail (the actor is the request's: the
// application) once committed.

func factorDetails(svc twofold.VerifyService, f twofold.VerifyFactor) map[string]string {
	d := map[string]string{"service": svc.PublicID, "factor": f.PublicID, "factor_type": f.Type}
	if f.DeviceID != 0 {
		d["device_id"] = strconv.FormatInt(f.DeviceID, 10)
	}
	return d
}

func (s *Service) record(ctx context.Context, action string, entity twofold.User, details map[string]string) {
	if s.audit != nil {
		s.audit.Record(ctx, twofold.AuditEvent{Action: action, AppID: entity.AppID, UserID: entity.ID, Details: details})
	}
}

func (s *Service) factorCreated(ctx context.Context, svc twofold.VerifyService, entity twofold.User, f twofold.VerifyFactor) {
	s.record(ctx, twofold.AuditVerifyFactorCreated, entity, factorDetails(svc, f))
}

func (s *Service) factorVerified(ctx context.Context, svc twofold.VerifyService, entity twofold.User, f twofold.VerifyFactor) {
	s.record(ctx, twofold.AuditVerifyFactorVerified, entity, factorDetails(svc, f))
}

func (s *Service) factorDeleted(ctx context.Context, svc twofold.VerifyService, entity twofold.User, f twofold.VerifyFactor) {
	s.record(ctx, twofold.AuditVerifyFactorDeleted, entity, factorDetails(svc, f))
}

func (s *Service) challengeAnswered(ctx context.Context, svc twofold.VerifyService, entity twofold.User, c twofold.VerifyChallenge) {
	action := twofold.AuditVerifyChallengeApproved
	if c.Status == twofold.ChallengeDenied {
		action = twofold.AuditVerifyChallengeDenied
	}
	s.record(ctx, action, entity, map[string]string{"service": svc.PublicID, "challenge": c.PublicID})
}

// insertFactor stores the new factor f with its factor.created event.
func (s *Service) insertFactor(ctx context.Context, svc twofold.VerifyService, entity twofold.User, f *twofold.VerifyFactor) error {
	events, err := s.factorEvents(ctx, twofold.VerifyEventFactorCreated, svc, entity, *f)
	if err != nil {
		return err
	}
	if err := s.store.InsertVerifyFactor(ctx, f, events...); err != nil {
		return err
	}
	s.queued(events)
	s.factorCreated(ctx, svc, entity, *f)
	return nil
}

// markVerified stores that f is verified, with its factor.verified event.
func (s *Service) markVerified(ctx context.Context, svc twofold.VerifyService, entity twofold.User, f twofold.VerifyFactor) (twofold.VerifyFactor, error) {
	f.Status, f.UpdatedAt = twofold.FactorVerified, s.now().UTC()
	events, err := s.factorEvents(ctx, twofold.VerifyEventFactorVerified, svc, entity, f)
	if err != nil {
		return f, err
	}
	if err := s.store.UpdateVerifyFactor(ctx, f, events...); err != nil {
		return f, err
	}
	s.queued(events)
	s.factorVerified(ctx, svc, entity, f)
	return f, nil
}

// deleteFactor deletes f and its challenges, with its factor.deleted event.
func (s *Service) deleteFactor(ctx context.Context, svc twofold.VerifyService, entity twofold.User, f twofold.VerifyFactor) error {
	events, err := s.factorEvents(ctx, twofold.VerifyEventFactorDeleted, svc, entity, f)
	if err != nil {
		return err
	}
	if err := s.store.DeleteVerifyFactor(ctx, svc.ID, entity.ID, f.PublicID, events...); err != nil {
		return err
	}
	s.queued(events)
	s.factorDeleted(ctx, svc, entity, f)
	return nil
}

// Factor returns the entity's factor publicID in svc.
func (s *Service) Factor(ctx context.Context, svc twofold.VerifyService, entity twofold.User, publicID string) (twofold.VerifyFactor, error) {
	if err := s.syncDevices(ctx, svc, entity); err != nil {
		return twofold.VerifyFactor{}, err
	}
	return s.store.GetVerifyFactor(ctx, svc.ID, entity.ID, publicID)
}

// Factors lists the entity's factors in svc (paging as the store's lists), with its Twofold
// devices.
func (s *Service) Factors(ctx context.Context, svc twofold.VerifyService, entity twofold.User, after int64, offset, limit int) ([]twofold.VerifyFactor, error) {
	if err := s.syncDevices(ctx, svc, entity); err != nil {
		return nil, err
	}
	return s.store.ListVerifyFactors(ctx, svc.ID, entity.ID, after, offset, limit)
}

// UpdateFactor renames the factor and changes its push configuration (name or cfg empty: kept).
func (s *Service) UpdateFactor(ctx context.Context, f twofold.VerifyFactor, name string, cfg twofold.FactorConfig) (twofold.VerifyFactor, error) {
	if name != "" {
		if err := checkName(name); err != nil {
			return f, err
		}
		f.Name = name
	}
	if cfg.NotificationToken != "" {
		if f.Type != twofold.VerifyFactorPush {
			return f, twofold.ErrInvalidParam("config.notification_token", "is for push factors")
		}
		f.Config.NotificationToken = cfg.NotificationToken
	}
	f.UpdatedAt = s.now().UTC()
	return f, s.store.UpdateVerifyFactor(ctx, f)
}

// DeleteFactor deletes the factor and its challenges.
func (s *Service) DeleteFactor(ctx context.Context, svc twofold.VerifyService, entity twofold.User, f twofold.VerifyFactor) error {
	if f.DeviceID != 0 {
		return ErrDeviceFactor
	}
	return s.deleteFactor(ctx, svc, entity, f)
}

// maxMetadata bounds a factor's metadata, as JSON (Twilio's).
const maxMetadata = 1024

func checkMetadata(m map[string]string) error {
	n := 2
	for k, v := range m {
		n += len(k) + len(v) + 6
	}
	if n > maxMetadata {
		return twofold.ErrInvalidParam("metadata", "must be at most 1024 characters")
	}
	return nil
}

func utf8len(s string) int { return utf8.RuneCountInString(s) }

// VerifyFactor verifies an unverified factor with payload: a totp factor's first code, or a
// push factor's JWT signed by its key. A wrong payload leaves it unverified.
func (s *Service) VerifyFactor(ctx context.Context, svc twofold.VerifyService, entity twofold.User, f twofold.VerifyFactor, payload string) (twofold.VerifyFactor, error) {
	if f.Type == twofold.VerifyFactorPush {
		return s.verifyPushFactor(ctx, svc, entity, f, payload)
	}
	return s.VerifyTOTPFactor(ctx, svc, entity, f, payload)
}

// FactorByID returns the entity's factor with row id in svc.
func (s *Service) FactorByID(ctx context.Context, svc twofold.VerifyService, entity twofold.User, id int64) (twofold.VerifyFactor, error) {
	return s.store.GetVerifyFactorByID(ctx, svc.ID, entity.ID, id)
}
