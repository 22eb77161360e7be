package verifyapi

import (
	"strings"

	"github.com/twofold-auth/twofold/internal/twofold"
)

// Twilio's SID prefixes of the resources served here. The domain keeps public ids (32
// lower-case hex digits); the wire shows them with the prefix of their resource, and a SID with
// another prefix names nothing.
const (
	ServicePrefix      = "VA"
	VerificationPrefix = "VE"
	AttemptPrefix      = "VL" // a send of a verification (send_code_attempts)
	EntityPrefix       = "YE" // and the user's id, 32 hex digits (entities are addressed by Identity)
	FactorPrefix       = "YF"
	ChallengePrefix    = "YC"
	NotificationPrefix = "NT" // a challenge's notification (nothing keeps it)
	WebhookPrefix      = "YW"
)

// sid shows a public id with its resource's prefix.
func sid(prefix, publicID string) string { return prefix + publicID }

// publicID reads a SID of the resource with prefix: its public id, or false.
func publicID(prefix, s string) (string, bool) {
	id, ok := strings.CutPrefix(s, prefix)
	return id, ok && twofold.ValidPublicID(id)
}
