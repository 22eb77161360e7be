package verifyfactors

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/twofold-auth/twofold/internal/twofold"
)

// Challenge bounds (Twilio's).
const (
	DefaultChallengeTTL = 5 * time.Minute
	MaxChallengeTTL     = time.Hour
	maxMessage          = 256
	maxFieldLabel       = 36
	maxFieldValue       = 128
	maxFields           = 20
)

// Twilio's caps on the challenges of one totp factor (of codes of 5 digits or more): past them,
// a challenge is refused with ErrChallengeCap, so that codes cannot be guessed by making new
// challenges once one has taken its MaxAttempts.
var (
	ChallengesPerHour = twofold.Limit{N: 50, Window: time.Hour}
	ChallengesPerDay  = twofold.Limit{N: 100, Window: 24 * time.Hour}
)

// ChallengeCap is a refusal of a new challenge of a totp factor: too many were made.
type ChallengeCap struct{ RetryAfter time.Duration }

func (e *ChallengeCap) Error() string { return "too many challenges of the factor" }

// capChallenges counts a new challenge of the totp factor f against the caps.
func (s *Service) capChallenges(ctx context.Context, f twofold.VerifyFactor) error {
	now := s.now()
	var counted []twofold.LimitEvent
	for _, l := range []twofold.Limit{ChallengesPerHour, ChallengesPerDay} {
		hit, err := s.store.Hit(ctx, fmt.Sprintf("verify_challenges:%s:%s", l.Window, f.PublicID), now, l)
		if err != nil {
			return err
		}
		if hit.Refused {
			for _, ev := range counted {
				if err := s.store.RefundHit(ctx, ev); err != nil {
					return err
				}
			}
			return &ChallengeCap{RetryAfter: max(hit.Oldest.Add(l.Window).Sub(now), time.Second)}
		}
		counted = append(counted, hit.Event)
	}
	return nil
}

// NewChallenge are the parameters of a new challenge.
type NewChallenge struct {
	Details       twofold.ChallengeDetails
	HiddenDetails map[string]string
	ExpiresAt     time.Time // zero: DefaultChallengeTTL from now
	AuthPayload   string    // totp: the code, checked at once ("": later)
}

func (s *Service) checkChallenge(f twofold.VerifyFactor, p *NewChallenge) error {
	now := s.now().UTC()
	switch {
	case p.ExpiresAt.IsZero():
		p.ExpiresAt = now.Add(DefaultChallengeTTL)
	case !p.ExpiresAt.After(now) || p.ExpiresAt.After(now.Add(MaxChallengeTTL)):
		return twofold.ErrInvalidParam("expiration_date", "must be in the next 60 minutes")
	}
	if f.Type == twofold.VerifyFactorPush && p.AuthPayload != "" {
		return twofold.ErrInvalidParam("auth_payload", "answers a push challenge after it is made, signed by the device")
	}
	if f.Type == twofold.VerifyFactorPush && strings.TrimSpace(p.Details.Message) == "" {
		return twofold.ErrInvalidParam("details.message", "is required for a push factor")
	}
	if utf8len(p.Details.Message) > maxMessage {
		return twofold.ErrInvalidParam("details.message", "must be at most 256 characters")
	}
	if len(p.Details.Fields) > maxFields {
		return twofold.ErrInvalidParam("details.fields", "must be at most 20 fields")
	}
	for _, fl := range p.Details.Fields {
		if fl.Label == "" || utf8len(fl.Label) > maxFieldLabel || utf8len(fl.Value) > maxFieldValue {
			return twofold.ErrInvalidParam("details.fields", "labels must be 1 to 36 characters and values at most 128")
		}
	}
	if p.Details.Fields == nil {
		p.Details.Fields = []twofold.ChallengeField{}
	}
	if err := checkMetadata(p.HiddenDetails); err != nil {
		return twofold.ErrInvalidParam("hidden_details", "must be at most 1024 characters")
	}
	if f.Status != twofold.FactorVerified && f.Type == twofold.VerifyFactorTOTP {
		return ErrFactorNotVerified
	}
	return nil
}

// CreateChallenge challenges the entity's factor f. A code given for a totp factor answers it at
// once.
func (s *Service) CreateChallenge(ctx context.Context, app twofold.App, svc twofold.VerifyService, entity twofold.User, f twofold.VerifyFactor, p NewChallenge) (twofold.VerifyChallenge, error) {
	if err := s.checkChallenge(f, &p); err != nil {
		return twofold.VerifyChallenge{}, err
	}
	if f.Type == twofold.VerifyFactorTOTP {
		if err := s.capChallenges(ctx, f); err != nil {
			return twofold.VerifyChallenge{}, err
		}
	}
	now := s.now().UTC()
	c := twofold.VerifyChallenge{PublicID: twofold.NewPublicID(), AppID: f.AppID, ServiceID: svc.ID, UserID: entity.ID,
		FactorID: f.ID, Status: twofold.ChallengePending, RespondedReason: "none", Details: p.Details,
		HiddenDetails: p.HiddenDetails, CreatedAt: now, UpdatedAt: now, ExpiresAt: p.ExpiresAt.UTC()}
	if f.DeviceID != 0 && s.approvals != nil {
		uuid, err := s.askDevice(ctx, app, entity, p)
		if err != nil {
			return c, err
		}
		c.ApprovalUUID = uuid
	}
	if err := s.store.InsertVerifyChallenge(ctx, &c); err != nil {
		return c, fmt.Errorf("create challenge: %w", err)
	}
	if f.Type == twofold.VerifyFactorTOTP && p.AuthPayload != "" {
		return s.AnswerTOTP(ctx, svc, entity, f, c, p.AuthPayload)
	}
	return c, nil
}

// ChallengeAndFactor returns the entity's challenge publicID in svc, and its factor.
func (s *Service) ChallengeAndFactor(ctx context.Context, app twofold.App, svc twofold.VerifyService, entity twofold.User, publicID string) (twofold.VerifyFactor, twofold.VerifyChallenge, error) {
	c, err := s.store.GetVerifyChallenge(ctx, svc.ID, entity.ID, publicID)
	if err != nil {
		return twofold.VerifyFactor{}, c, err
	}
	if c, err = s.refresh(ctx, app, svc, entity, c); err != nil {
		return twofold.VerifyFactor{}, c, err
	}
	f, err := s.store.GetVerifyFactorByID(ctx, svc.ID, entity.ID, c.FactorID)
	return f, c, err
}

// Answer answers the pending challenge c of factor f: with a code for a totp factor, with the
// device's signed answer for a push one (signed holds the values of SignatureFields as shown).
func (s *Service) Answer(ctx context.Context, svc twofold.VerifyService, entity twofold.User, f twofold.VerifyFactor, c twofold.VerifyChallenge, payload string, signed map[string]string) (twofold.VerifyChallenge, error) {
	if f.DeviceID != 0 {
		return c, ErrDeviceFactor
	}
	if f.Type == twofold.VerifyFactorPush {
		return s.answerPush(ctx, svc, entity, f, c, payload, signed)
	}
	return s.AnswerTOTP(ctx, svc, entity, f, c, payload)
}

// Challenges lists the entity's challenges in svc that pass filter.
func (s *Service) Challenges(ctx context.Context, app twofold.App, svc twofold.VerifyService, entity twofold.User, filter twofold.ChallengeFilter, after int64, offset, limit int) ([]twofold.VerifyChallenge, error) {
	// The pending challenges of devices' factors read their answers first, so that the filter
	// sees them as they are.
	pending, err := s.store.ListVerifyChallenges(ctx, svc.ID, entity.ID, twofold.ChallengeFilter{FactorID: filter.FactorID,
		Status: twofold.ChallengePending, Now: s.now()}, 0, 0, maxFactors)
	if err != nil {
		return nil, err
	}
	for _, c := range pending {
		if _, err := s.refresh(ctx, app, svc, entity, c); err != nil {
			return nil, err
		}
	}
	filter.Now = s.now()
	return s.store.ListVerifyChallenges(ctx, svc.ID, entity.ID, filter, after, offset, limit)
}

// AnswerTOTP answers a pending challenge of the totp factor f with code: approved when it is
// right and unspent, still pending when wrong; after MaxAttempts codes, ErrChallengeMaxAttempts.
func (s *Service) AnswerTOTP(ctx context.Context, svc twofold.VerifyService, entity twofold.User, f twofold.VerifyFactor, c twofold.VerifyChallenge, code string) (twofold.VerifyChallenge, error) {
	if c.StatusAt(s.now()) != twofold.ChallengePending {
		return c, ErrNotPending
	}
	n, err := s.store.AddChallengeFailure(ctx, c.ID)
	if err != nil {
		return c, err
	}
	if n > MaxAttempts {
		return c, ErrChallengeMaxAttempts
	}
	ok, err := s.spendCode(ctx, f, code)
	if err != nil || !ok {
		return c, err
	}
	return s.answer(ctx, svc, entity, c, twofold.ChallengeApproved)
}

// answer ends the pending challenge c with status.
func (s *Service) answer(ctx context.Context, svc twofold.VerifyService, entity twofold.User, c twofold.VerifyChallenge, status string) (twofold.VerifyChallenge, error) {
	return s.answerAt(ctx, svc, entity, c, status, s.now())
}

// answerAt ends the pending challenge c with status, answered at now (before its expiry).
func (s *Service) answerAt(ctx context.Context, svc twofold.VerifyService, entity twofold.User, c twofold.VerifyChallenge, status string, now time.Time) (twofold.VerifyChallenge, error) {
	now = now.UTC()
	answered := c
	answered.Status, answered.RespondedReason, answered.RespondedAt, answered.UpdatedAt = status, "none", now, now
	events, err := s.challengeEvents(ctx, svc, entity, answered)
	if err != nil {
		return c, err
	}
	ok, err := s.store.AnswerVerifyChallenge(ctx, c.ID, status, answered.RespondedReason, now, events...)
	if err != nil {
		return c, err
	}
	if !ok {
		return c, ErrNotPending
	}
	s.queued(events)
	s.challengeAnswered(ctx, svc, entity, answered)
	return answered, nil
}
