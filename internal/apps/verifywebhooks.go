package apps

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/twofold-auth/twofold/internal/twofold"
)

// Verify webhooks: a service's subscriptions to factor and challenge events (docs/verify-v2.md).
// An event is queued in the callbacks outbox, one delivery per enabled webhook that wants it, and
// internal/callback delivers it at least once, form-encoded and signed with the account's auth
// token as Twilio signs (X-Twilio-Signature), through the same egress rules as OneTouch callbacks.

// Limits of a webhook's settings.
const (
	MaxWebhookName = 64
	MaxWebhookURL  = 2048
)

// Webhook statuses and versions (Twilio's).
const (
	WebhookEnabled  = "enabled"
	WebhookDisabled = "disabled"
)

// NewVerifyWebhook is a webhook with Twilio's defaults (enabled, version v2), to fill in.
func NewVerifyWebhook() twofold.VerifyWebhook {
	return twofold.VerifyWebhook{Status: WebhookEnabled, Version: "v2"}
}

// CreateVerifyWebhook validates w and stores it as a webhook of the application's service svc.
func (s *Service) CreateVerifyWebhook(ctx context.Context, app twofold.App, svc twofold.VerifyService, w twofold.VerifyWebhook) (twofold.VerifyWebhook, error) {
	w.Name = strings.TrimSpace(w.Name)
	if err := validateWebhook(w); err != nil {
		return twofold.VerifyWebhook{}, err
	}
	if svc.AppID != app.ID {
		return twofold.VerifyWebhook{}, twofold.ErrNotFound
	}
	now := s.now().UTC().Truncate(time.Second)
	w.ID, w.PublicID, w.AppID, w.ServiceID, w.CreatedAt, w.UpdatedAt = 0, twofold.NewPublicID(), app.ID, svc.ID, now, now
	if err := s.store.CreateVerifyWebhook(ctx, &w); err != nil {
		return twofold.VerifyWebhook{}, err
	}
	s.recordWebhook(ctx, twofold.AuditVerifyWebhookCreated, w)
	return w, nil
}

// VerifyWebhook returns the service's webhook with publicID (ErrNotFound if none).
func (s *Service) VerifyWebhook(ctx context.Context, app twofold.App, svc twofold.VerifyService, publicID string) (twofold.VerifyWebhook, error) {
	if !twofold.ValidPublicID(publicID) {
		return twofold.VerifyWebhook{}, twofold.ErrNotFound
	}
	return s.store.GetVerifyWebhook(ctx, app.ID, svc.ID, publicID)
}

// VerifyWebhooks lists up to limit of the service's webhooks, oldest first: after the one with
// row id after when after > 0, else from the offset-th.
func (s *Service) VerifyWebhooks(ctx context.Context, app twofold.App, svc twofold.VerifyService, after int64, offset, limit int) ([]twofold.VerifyWebhook, error) {
	return s.store.ListVerifyWebhooks(ctx, app.ID, svc.ID, after, offset, limit)
}

// UpdateVerifyWebhook stores w, a webhook read with VerifyWebhook and changed, after validating it.
func (s *Service) UpdateVerifyWebhook(ctx context.Context, app twofold.App, w twofold.VerifyWebhook) (twofold.VerifyWebhook, error) {
	w.Name = strings.TrimSpace(w.Name)
	if err := validateWebhook(w); err != nil {
		return twofold.VerifyWebhook{}, err
	}
	w.AppID, w.UpdatedAt = app.ID, s.now().UTC().Truncate(time.Second)
	if err := s.store.UpdateVerifyWebhook(ctx, w); err != nil {
		return twofold.VerifyWebhook{}, err
	}
	s.recordWebhook(ctx, twofold.AuditVerifyWebhookUpdated, w)
	return w, nil
}

// DeleteVerifyWebhook removes the service's webhook with publicID.
func (s *Service) DeleteVerifyWebhook(ctx context.Context, app twofold.App, svc twofold.VerifyService, publicID string) error {
	if !twofold.ValidPublicID(publicID) {
		return twofold.ErrNotFound
	}
	if err := s.store.DeleteVerifyWebhook(ctx, app.ID, svc.ID, publicID); err != nil {
		return err
	}
	s.recordWebhook(ctx, twofold.AuditVerifyWebhookDeleted, twofold.VerifyWebhook{AppID: app.ID, PublicID: publicID, ServiceID: svc.ID})
	return nil
}

func (s *Service) recordWebhook(ctx context.Context, action string, w twofold.VerifyWebhook) {
	// The URL may carry a customer's secret in its query: the audit trail names the webhook only.
	s.record(ctx, twofold.AuditEvent{Action: action, AppID: w.AppID, Details: map[string]string{"webhook": w.PublicID}})
}

// validateWebhook reports every setting of w that is not valid.
func validateWebhook(w twofold.VerifyWebhook) error {
	var bad InvalidSettings
	fail := func(field, format string, args ...any) {
		bad = append(bad, FieldError{Field: field, Message: fmt.Sprintf(format, args...)})
	}
	if n := utf8.RuneCountInString(w.Name); n == 0 || n > MaxWebhookName || !plainText(w.Name) {
		fail("friendly_name", "must be 1 to %d characters, without control characters", MaxWebhookName)
	}
	u, err := url.Parse(w.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || len(w.URL) > MaxWebhookURL || !plainText(w.URL) {
		fail("webhook_url", "must be an absolute http(s) URL of at most %d characters, without user information", MaxWebhookURL)
	}
	if len(w.EventTypes) == 0 {
		fail("event_types", "name at least one event")
	}
	for _, e := range w.EventTypes {
		if e != twofold.VerifyEventAll && !slices.Contains(twofold.VerifyEvents, e) {
			// Not quoted back: the input may be large.
			fail("event_types", "each must be one of %s or *", strings.Join(twofold.VerifyEvents, ", "))
			break
		}
	}
	if w.Status != WebhookEnabled && w.Status != WebhookDisabled {
		fail("status", "must be enabled or disabled")
	}
	if w.Version != "v1" && w.Version != "v2" {
		fail("version", "must be v1 or v2")
	}
	if len(bad) > 0 {
		return bad
	}
	return nil
}

// VerifyEvents is the entry point of factor and challenge code for Verify webhook events.
// *Service implements it; a nil *Service's Emit queues nothing.
type VerifyEvents interface {
	// Event makes event (twofold.VerifyEventFactorCreated, …) of the application's service svc,
	// for the store to queue in the transaction of the change it reports (a factor or challenge
	// store method's events). params are the event's fields (entity_identity, factor_sid,
	// factor_type, challenge_sid, …); Event adds uuid, type, account_sid and service_sid.
	Event(ctx context.Context, svc twofold.VerifyService, event string, params map[string]string) (twofold.VerifyWebhookEvent, error)
	// Wake tells the deliveries that events were committed.
	Wake()
	// Emit queues event on its own, for every enabled webhook of the service with public id
	// servicePublicID that wants it, and returns how many deliveries were queued.
	Emit(ctx context.Context, appID int64, servicePublicID, event string, params map[string]string) (int, error)
}

var _ VerifyEvents = (*Service)(nil)

// SetWebhookNotify gives the service a function that wakes the callbacks dispatcher when an
// event was queued (without it deliveries wait for the dispatcher's next poll).
func (s *Service) SetWebhookNotify(notify func()) { s.notify = notify }

// Wake implements VerifyEvents.
func (s *Service) Wake() {
	if s != nil && s.notify != nil {
		s.notify()
	}
}

// Event implements VerifyEvents.
func (s *Service) Event(ctx context.Context, svc twofold.VerifyService, event string, params map[string]string) (twofold.VerifyWebhookEvent, error) {
	if !slices.Contains(twofold.VerifyEvents, event) {
		return twofold.VerifyWebhookEvent{}, fmt.Errorf("%w: %q is not a Verify webhook event", ErrInvalid, event)
	}
	acct, err := s.store.TwilioAccount(ctx, svc.AppID)
	if err != nil {
		return twofold.VerifyWebhookEvent{}, fmt.Errorf("%s event: account: %w", event, err)
	}
	eventID := twofold.NewPublicID()
	form := make(map[string]string, len(params)+4)
	for k, v := range params {
		form[k] = v
	}
	form["uuid"], form["type"], form["account_sid"], form["service_sid"] = eventID, event, acct.SID, "VA"+svc.PublicID
	payload, err := json.Marshal(form)
	if err != nil {
		return twofold.VerifyWebhookEvent{}, fmt.Errorf("%s event: %w", event, err)
	}
	return twofold.VerifyWebhookEvent{AppID: svc.AppID, ServiceID: svc.ID, Event: event, EventID: eventID, Payload: payload,
		At: s.now()}, nil
}

// Emit implements VerifyEvents: the event is queued durably, and delivered at least once, from
// the moment Emit returns.
func (s *Service) Emit(ctx context.Context, appID int64, servicePublicID, event string, params map[string]string) (int, error) {
	if s == nil {
		return 0, nil
	}
	svc, err := s.store.GetVerifyService(ctx, appID, servicePublicID)
	if err != nil {
		return 0, fmt.Errorf("emit %s: service: %w", event, err)
	}
	ev, err := s.Event(ctx, svc, event, params)
	if err != nil {
		return 0, fmt.Errorf("emit: %w", err)
	}
	n, err := s.store.QueueVerifyEvent(ctx, appID, svc.ID, ev.Event, ev.EventID, ev.Payload, ev.At)
	if err != nil {
		return 0, err
	}
	if n > 0 {
		s.Wake()
	}
	return n, nil
}

// RevealTwilioToken returns the application's auth token in clear: it signs the application's
// Verify webhooks.
func (s *Service) RevealTwilioToken(ctx context.Context, appID int64) (string, error) {
	c, err := s.store.TwilioAccount(ctx, appID)
	if err != nil {
		return "", fmt.Errorf("twilio account of app %d: %w", appID, err)
	}
	token, err := s.keys.Open(c.SecretSealed, TwilioSecretAD(c.SID))
	if err != nil {
		return "", fmt.Errorf("open auth token of app %d: %w", appID, err)
	}
	return string(token), nil
}
