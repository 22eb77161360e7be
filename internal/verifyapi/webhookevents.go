package verifyapi

import (
	"context"
	"encoding/json"
	"log/slog"
	"time"

	"github.com/twofold-auth/twofold/internal/twofold"
)

// Emitter queues a Verify webhook event for the webhooks of an application's service that want
// it (apps.Service.Emit).
type Emitter interface {
	Emit(ctx context.Context, appID int64, servicePublicID, event string, params map[string]string) (int, error)
}

// WebhookEvents makes the factor and challenge events of verifyfactors into the service's
// webhooks, with the fields Twilio's Verify Push webhooks carry (the emitter adds uuid, type,
// account_sid and service_sid). An event is emitted after its change was stored: a failure to
// queue it is logged, and the change stands.
type WebhookEvents struct {
	Emitter Emitter
	Log     *slog.Logger
}

func (w WebhookEvents) factor(ctx context.Context, event string, svc twofold.VerifyService, entity twofold.User, f twofold.VerifyFactor) {
	w.emit(ctx, svc, event, map[string]string{
		"entity_identity": entity.CustomUserID, "entity_sid": entitySID(entity), "factor_sid": sid(FactorPrefix, f.PublicID),
		"factor_type": f.Type, "factor_friendly_name": f.Name, "factor_status": f.Status,
		"created_date": f.CreatedAt.UTC().Format(time.RFC3339),
	})
}

// FactorCreated emits factor.created.
func (w WebhookEvents) FactorCreated(ctx context.Context, svc twofold.VerifyService, entity twofold.User, f twofold.VerifyFactor) {
	w.factor(ctx, twofold.VerifyEventFactorCreated, svc, entity, f)
}

// FactorVerified emits factor.verified.
func (w WebhookEvents) FactorVerified(ctx context.Context, svc twofold.VerifyService, entity twofold.User, f twofold.VerifyFactor) {
	w.factor(ctx, twofold.VerifyEventFactorVerified, svc, entity, f)
}

// FactorDeleted emits factor.deleted.
func (w WebhookEvents) FactorDeleted(ctx context.Context, svc twofold.VerifyService, entity twofold.User, f twofold.VerifyFactor) {
	w.factor(ctx, twofold.VerifyEventFactorDeleted, svc, entity, f)
}

// ChallengeAnswered emits challenge.approved or challenge.denied.
func (w WebhookEvents) ChallengeAnswered(ctx context.Context, svc twofold.VerifyService, entity twofold.User, c twofold.VerifyChallenge) {
	event := twofold.VerifyEventChallengeApproved
	if c.Status == twofold.ChallengeDenied {
		event = twofold.VerifyEventChallengeDenied
	}
	details, _ := json.Marshal(c.Details)
	hidden, _ := json.Marshal(c.HiddenDetails)
	w.emit(ctx, svc, event, map[string]string{
		"entity_identity": entity.CustomUserID, "entity_sid": entitySID(entity), "challenge_sid": sid(ChallengePrefix, c.PublicID),
		"challenge_status": c.Status, "challenge_responded_reason": c.RespondedReason, "challenge_details": string(details),
		"challenge_hidden_details": string(hidden), "created_date": c.CreatedAt.UTC().Format(time.RFC3339),
	})
}

func (w WebhookEvents) emit(ctx context.Context, svc twofold.VerifyService, event string, params map[string]string) {
	if w.Emitter == nil {
		return
	}
	if _, err := w.Emitter.Emit(ctx, svc.AppID, svc.PublicID, event, params); err != nil && w.Log != nil {
		w.Log.ErrorContext(ctx, "verify webhook event NOT queued", "event", event, "app_id", svc.AppID, "err", err)
	}
}
