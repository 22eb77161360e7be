package twofold

import "time"

// VerifyWebhook is a Verify service's subscription to factor and challenge events: each event
// of one of its EventTypes is POSTed to URL, signed as Twilio signs (X-Twilio-Signature).
type VerifyWebhook struct {
	ID         int64
	PublicID   string // 32 lower-case hex digits; YW… on the wire
	AppID      int64
	ServiceID  int64
	Name       string
	URL        string
	EventTypes []string // VerifyEvent* names, or "*" for all
	Status     string   // enabled, disabled
	Version    string   // v1, v2
	CreatedAt  time.Time
	UpdatedAt  time.Time
}

// The events a Verify webhook can subscribe to (Twilio's names).
const (
	VerifyEventFactorCreated     = "factor.created"
	VerifyEventFactorVerified    = "factor.verified"
	VerifyEventFactorDeleted     = "factor.deleted"
	VerifyEventChallengeApproved = "challenge.approved"
	VerifyEventChallengeDenied   = "challenge.denied"
	VerifyEventAll               = "*"
)

// VerifyEvents lists the events a webhook can subscribe to by name.
var VerifyEvents = []string{VerifyEventFactorCreated, VerifyEventFactorVerified, VerifyEventFactorDeleted,
	VerifyEventChallengeApproved, VerifyEventChallengeDenied}

// Wants reports whether the webhook subscribes to event.
func (w VerifyWebhook) Wants(event string) bool {
	for _, e := range w.EventTypes {
		if e == event || e == VerifyEventAll {
			return true
		}
	}
	return false
}

// VerifyWebhookEvent is a factor or challenge event made ready before the change it reports:
// the store queues it for the service's webhooks that want it in the change's own transaction,
// so the change and its deliveries are kept, or lost, together.
type VerifyWebhookEvent struct {
	AppID, ServiceID int64
	Event            string // a VerifyEvent* name
	EventID          string // names the event in every delivery (RequestUUID)
	Payload          []byte // the event's form parameters, as a JSON object
	At               time.Time
}
