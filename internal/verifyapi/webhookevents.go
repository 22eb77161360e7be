package verifyapi

import (
	"context"
	"encoding/json"
	"time"

	"github.com/twofold-auth/twofold/internal/twofold"
)

// Emitter makes a Verify webhook event of an application's service, for the store to queue
// with the change it reports, and is told when events were committed (apps.Service).
type Emitter interface {
	Event(ctx context.Context, svc twofold.VerifyService, event string, params map[string]string) (twofold.VerifyWebhookEvent, error)
	Wake()
}

// WebhookEvents makes the factor and challenge events of verifyfactors into events of the
// service's webhooks, with the fields Twilio's Verify Push webhooks carry (the emitter adds uuid,
// type, account_sid and service_sid). verifyfactors has an event made before the change it
// reports and the store queues it in the change's own transaction: both are kept, or neither.
type WebhookEvents struct {
	Emitter Emitter
}

// FactorEvent makes event (factor.created, factor.verified or factor.deleted) of f.
func (w WebhookEvents) FactorEvent(ctx context.Context, event string, svc twofold.VerifyService, entity twofold.User, f twofold.VerifyFactor) (twofold.VerifyWebhookEvent, error) {
	return w.Emitter.Event(ctx, svc, event, map[string]string{
		"entity_identity": entity.CustomUserID, "entity_sid": entitySID(entity), "factor_sid": sid(FactorPrefix, f.PublicID),
		"factor_type": f.Type, "factor_friendly_name": f.Name, "factor_status": f.Status,
		"created_date": f.CreatedAt.UTC().Format(time.RFC3339),
	})
}

// ChallengeEvent makes challenge.approved or challenge.denied of c (answered).
func (w WebhookEvents) ChallengeEvent(ctx context.Context, svc twofold.VerifyService, entity twofold.User, c twofold.VerifyChallenge) (twofold.VerifyWebhookEvent, error) {
	event := twofold.VerifyEventChallengeApproved
	if c.Status == twofold.ChallengeDenied {
		event = twofold.VerifyEventChallengeDenied
	}
	details, err := json.Marshal(c.Details)
	if err != nil {
		return twofold.VerifyWebhookEvent{}, err
	}
	hidden, err := json.Marshal(c.HiddenDetails)
	if err != nil {
		return twofold.VerifyWebhookEvent{}, err
	}
	return w.Emitter.Event(ctx, svc, event, map[string]string{
		"entity_identity": entity.CustomUserID, "entity_sid": entitySID(entity), "challenge_sid": sid(ChallengePrefix, c.PublicID),
		"challenge_status": c.Status, "challenge_responded_reason": c.RespondedReason, "challenge_details": string(details),
		"challenge_hidden_details": string(hidden), "created_date": c.CreatedAt.UTC().Format(time.RFC3339),
	})
}

// Queued wakes the deliveries after events were committed.
func (w WebhookEvents) Queued() { w.Emitter.Wake() }
