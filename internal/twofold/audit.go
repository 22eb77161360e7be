package twofold

import (
	"strconv"
	"time"
)

// AuditEvent is one entry of the audit trail: a security-relevant event, appended once and never
// changed. Each entry's Hash covers its own fields and the previous entry's hash, so a change,
// a deletion or a reordering breaks the chain.
//
// Details say what else matters (which setting changed, how a token was accepted, which limit
// was hit). They never hold secrets or personal data: no codes, keys, seeds, tokens, phone
// numbers or email addresses.
type AuditEvent struct {
	ID int64 // 1, 2, 3, … without gaps, assigned when the entry is appended
	At time.Time
	// Actor is who caused the event: "api:app/3" (a customer's backend with its API key),
	// "device:12" (a user's authenticator), "cli" (an operator at the command line),
	// "operator:ana@example.com" (the console, later), or "system" (the server on its own).
	Actor    string
	Action   string // one of the Audit* constants
	AppID    int64  // 0 when no application is concerned
	UserID   int64  // 0 when no user is concerned
	Details  map[string]string
	PrevHash []byte // the previous entry's Hash; empty for the first entry
	Hash     []byte
}

// Audit actions.
const (
	AuditAppCreated         = "app.created"
	AuditAppKeyRotated      = "app.key_rotated"
	AuditAppUpdated         = "app.updated" // details: changed (setting names, never values or the key)
	AuditAppDeleted         = "app.deleted"
	AuditUserCreated        = "user.created"
	AuditUserDeleted        = "user.deleted"
	AuditUsersImported      = "users.imported" // details: imported, present, failed, seeds (counts of one batch)
	AuditUserExported       = "user.exported"  // details: what (phone_number, totp_secret), never the value
	AuditDeviceAdded        = "device.added"
	AuditDeviceRemoved      = "device.removed"
	AuditVerificationOK     = "verification.succeeded" // details: method (sms, call, email, totp, device, sandbox, unconfirmed, recovery_code)
	AuditVerificationFailed = "verification.failed"    // details: why (invalid, reused)
	AuditApprovalApproved   = "approval.approved"
	AuditApprovalDenied     = "approval.denied" // details: reason when the device gave one
	AuditApprovalClosed     = "approval.closed" // the application closed its pending request (Twofold's addition)
	// An approval group was asked for (details: uuid, quorum, size; the user is the requester when
	// named) and decided (details: uuid, status, approvals, denials, quorum, reason "closed" when the
	// application closed it). Each member's answer is an approval.approved/denied with details.group.
	AuditApprovalGroupCreated = "approval_group.created"
	AuditApprovalGroupDecided = "approval_group.decided"
	AuditLimitHit             = "limit.hit" // details: limit (failures, sends, number_sends, …), max, window
	AuditOperatorLogin        = "operator.login"
	AuditOperatorLoginFailed  = "operator.login_failed"
	AuditStepClientCreated    = "step_client.created" // details: client_id
	AuditStepClientUpdated    = "step_client.updated" // details: client_id, changed (setting names, never values or secrets)
	AuditStepClientDeleted    = "step_client.deleted" // details: client_id
	// The Verify API (internal/verifyapi): an application's credentials (details: sid, kind:
	// account or key; never the token or secret), its services (details: service, the public id;
	// changed: setting names) and a verification canceled through the API (details:
	// verification). A verification approved or failed is a verification.succeeded or
	// verification.failed with details api=verify.
	AuditTwilioCredentialCreated = "twilio_credential.created"
	AuditTwilioCredentialRotated = "twilio_credential.rotated" // the account's auth token was replaced
	AuditTwilioCredentialRevoked = "twilio_credential.revoked"
	AuditVerifyServiceCreated    = "verify_service.created"
	AuditVerifyServiceUpdated    = "verify_service.updated"
	AuditVerifyServiceDeleted    = "verify_service.deleted"
	AuditVerificationCanceled    = "verification.canceled"
	// Verify factors and challenges (internal/verifyfactors). Details: service, factor,
	// factor_type (and device_id for a Twofold device's factor); service and challenge.
	AuditVerifyFactorCreated     = "verify_factor.created"
	AuditVerifyFactorVerified    = "verify_factor.verified"
	AuditVerifyFactorDeleted     = "verify_factor.deleted"
	AuditVerifyChallengeApproved = "verify_challenge.approved"
	AuditVerifyChallengeDenied   = "verify_challenge.denied"
	// A Verify webhook created, updated or deleted (details: webhook, its public id; never
	// its URL, which may carry a secret).
	AuditVerifyWebhookCreated = "verify_webhook.created"
	AuditVerifyWebhookUpdated = "verify_webhook.updated"
	AuditVerifyWebhookDeleted = "verify_webhook.deleted"

	// Recovery codes (issue 21). Details: count (generated, revoked), remaining (used); never a code.
	AuditRecoveryCodesGenerated = "recovery_codes.generated"
	AuditRecoveryCodeUsed       = "recovery_code.used"
	AuditRecoveryCodesRevoked   = "recovery_codes.revoked"
)

// AuditApprovalNumberMismatch is a wrong matching number that left an approval request pending
// (the next wrong one denies it). Details: uuid, device_id, tries_left.
const AuditApprovalNumberMismatch = "approval.number_mismatch"

// AuditPasswordlessStarted is a passwordless sign-in begun (Twofold's addition). Details: uuid,
// and outcome: sent (an approval request went to the user's devices), or why none did while the
// caller got the same answer: unknown (no user has that name), no_device, blocked (the user
// reported a request they did not make), user_limit (too many for this user however named),
// pending_limit (too many pending requests). Never the name typed.
const AuditPasswordlessStarted = "passwordless.started"

// Passkeys (issue 21). Details: passkey (its public id); for passkey.used also user_verified
// and usernameless; for passkey.clone_detected the stored and presented sign counts. A refused
// assertion is also a verification.failed with method=passkey.
const (
	AuditPasskeyRegistered    = "passkey.registered"
	AuditPasskeyUsed          = "passkey.used"
	AuditPasskeyRemoved       = "passkey.removed"
	AuditPasskeyCloneDetected = "passkey.clone_detected"
)

// AuditActions lists every action, for validating filters.
var AuditActions = []string{
	AuditAppCreated, AuditAppKeyRotated, AuditAppUpdated, AuditAppDeleted, AuditUserCreated, AuditUserDeleted, AuditUsersImported, AuditUserExported,
	AuditDeviceAdded, AuditDeviceRemoved, AuditVerificationOK, AuditVerificationFailed, AuditApprovalApproved,
	AuditApprovalDenied, AuditApprovalNumberMismatch, AuditApprovalClosed, AuditApprovalGroupCreated, AuditApprovalGroupDecided, AuditLimitHit, AuditOperatorLogin, AuditOperatorLoginFailed,
	AuditStepClientCreated, AuditStepClientUpdated, AuditStepClientDeleted, AuditPasswordlessStarted,
	AuditTwilioCredentialCreated, AuditTwilioCredentialRotated, AuditTwilioCredentialRevoked,
	AuditVerifyServiceCreated, AuditVerifyServiceUpdated, AuditVerifyServiceDeleted, AuditVerificationCanceled,
	AuditVerifyFactorCreated, AuditVerifyFactorVerified, AuditVerifyFactorDeleted, AuditVerifyChallengeApproved, AuditVerifyChallengeDenied,
	AuditVerifyWebhookCreated, AuditVerifyWebhookUpdated, AuditVerifyWebhookDeleted,
	AuditRecoveryCodesGenerated, AuditRecoveryCodeUsed, AuditRecoveryCodesRevoked,
	AuditPasskeyRegistered, AuditPasskeyUsed, AuditPasskeyRemoved, AuditPasskeyCloneDetected,
}

// AuditFilter narrows a listing of the audit trail. Zero fields match everything.
type AuditFilter struct {
	AppID   int64
	UserID  int64
	Action  string
	Since   time.Time // only entries at or after
	AfterID int64     // only entries with a greater id (paging forward)
	Limit   int       // at most this many; 0 means 100
	// Newest returns the newest Limit matching entries instead of the first Limit; either way
	// they come oldest first.
	Newest bool
}

// AppActor is the actor of requests made with an application's API key.
func AppActor(appID int64) string { return "api:app/" + strconv.FormatInt(appID, 10) }

// DeviceActor is the actor of requests made by a registered device.
func DeviceActor(deviceID int64) string { return "device:" + strconv.FormatInt(deviceID, 10) }

// AuditEntry is an event ready to be appended inside a store transaction that makes the change
// it records (store.Decide): the event, with At and Actor set, and the function that chains it to
// the entry before (the audit trail's keyed hash).
type AuditEntry struct {
	Event AuditEvent
	Chain func(prev []byte, e AuditEvent) []byte
}
