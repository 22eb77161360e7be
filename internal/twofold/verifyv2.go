package twofold

import (
	"crypto/rand"
	"encoding/hex"
	"time"
)

// The domain side of the Twilio Verify v2 API (internal/verifyapi is its wire adapter). An
// application may hold Twilio-shaped credentials, Verify services (configurations inside the
// application) and their verifications (one-time codes sent to a phone number or an email
// address). Public ids are 32 lower-case hex digits; the adapter shows them with Twilio's
// prefixes (VA for a service, VE for a verification, VL for a send).

// TwilioCredential is one credential of an application on the Verify API: its account (one
// per application, the AC… SID with an auth token) or an API key (an SK… SID with a secret).
// The secret is kept as a keyed hash, to check it, and sealed, so that re-keying the master
// key can re-make the hash, and (for the auth token) so that Twilio-style webhook signatures
// can be made with it.
type TwilioCredential struct {
	ID           int64
	AppID        int64
	SID          string // AC… or SK… followed by 32 lower-case hex digits
	Kind         string // TwilioAccount or TwilioKey
	Name         string // an API key's friendly name; "" for the account
	SecretMAC    []byte
	SecretSealed []byte
	CreatedAt    time.Time
}

// Kinds of TwilioCredential.
const (
	TwilioAccount = "account"
	TwilioKey     = "key"
)

// VerifyService is a Verify service: a named configuration of one application. The
// application's settings still govern delivery, limits and fraud rules.
type VerifyService struct {
	ID         int64
	PublicID   string // 32 lower-case hex digits; VA… on the wire
	AppID      int64
	Name       string // FriendlyName: it names the sender in the messages
	CodeLength int    // digits of the codes sent: 4..10
	Settings   VerifyServiceSettings
	CreatedAt  time.Time
	UpdatedAt  time.Time
}

// VerifyServiceSettings are a service's other settings, kept and echoed back. Only
// CustomCodeEnabled changes what Twofold does today (docs/verify-v2.md says which do what);
// the TOTP and push ones are for the factors a later part serves.
type VerifyServiceSettings struct {
	LookupEnabled            bool   `json:"lookup_enabled"`
	SkipSMSToLandlines       bool   `json:"skip_sms_to_landlines"`
	DTMFInputRequired        bool   `json:"dtmf_input_required"`
	TTSName                  string `json:"tts_name"`
	PSD2Enabled              bool   `json:"psd2_enabled"`
	DoNotShareWarningEnabled bool   `json:"do_not_share_warning_enabled"`
	CustomCodeEnabled        bool   `json:"custom_code_enabled"`
	DefaultTemplateSID       string `json:"default_template_sid"`
	PushIncludeDate          bool   `json:"push_include_date"`
	PushAPNCredentialSID     string `json:"push_apn_credential_sid"`
	PushFCMCredentialSID     string `json:"push_fcm_credential_sid"`
	TOTPIssuer               string `json:"totp_issuer"` // "" means the service's name
	TOTPTimeStep             int    `json:"totp_time_step"`
	TOTPCodeLength           int    `json:"totp_code_length"`
	TOTPSkew                 int    `json:"totp_skew"`
	WhatsAppMsgServiceSID    string `json:"whatsapp_msg_service_sid"`
	WhatsAppFrom             string `json:"whatsapp_from"`
	VerifyEventSubscription  bool   `json:"verify_event_subscription_enabled"`
}

// Verification is one Verify verification: a code sent, and sent again on request, to one
// recipient (an E.164 number or an email address) until it is approved, canceled or expires.
// Its code is kept as a keyed hash to check it and, while it is pending, sealed, because a new
// send within its lifetime sends the same code again.
type Verification struct {
	ID         int64
	PublicID   string // 32 lower-case hex digits; VE… on the wire
	AppID      int64
	ServiceID  int64
	To         string // E.164 or an email address
	Channel    Channel
	Status     string // VerificationPending, VerificationApproved or VerificationCanceled
	CodeMAC    []byte
	CodeSealed []byte // empty once the verification has ended
	Checks     int    // codes checked, right or wrong
	Sends      []VerificationSend
	CreatedAt  time.Time
	UpdatedAt  time.Time
	ExpiresAt  time.Time
}

// VerificationSend is one send of a verification's code.
type VerificationSend struct {
	PublicID string    `json:"id"` // VL… on the wire
	Channel  Channel   `json:"channel"`
	At       time.Time `json:"at"`
}

// Statuses kept for a verification. Expired and max_attempts_reached are not kept: they
// follow from the time and the checks (Verification.StatusAt).
const (
	VerificationPending     = "pending"
	VerificationApproved    = "approved"
	VerificationCanceled    = "canceled"
	VerificationExpired     = "expired"
	VerificationMaxAttempts = "max_attempts_reached"
)

// StatusAt is the verification's status at now, given how many checks a code survives.
func (v Verification) StatusAt(now time.Time, maxChecks int) string {
	switch {
	case v.Status != VerificationPending:
		return v.Status
	case !now.Before(v.ExpiresAt):
		return VerificationExpired
	case v.Checks >= maxChecks:
		return VerificationMaxAttempts
	}
	return VerificationPending
}

// Live reports whether the verification can still be checked or sent again at now: pending
// and unexpired (it may have run out of checks).
func (v Verification) Live(now time.Time) bool {
	return v.Status == VerificationPending && now.Before(v.ExpiresAt)
}

// VerificationChecked is the outcome of checking a code against a live verification.
type VerificationChecked int

const (
	CheckedWrong     VerificationChecked = iota // the check was counted; the code did not match
	CheckedApproved                             // the code matched: the verification is approved
	CheckedExhausted                            // no check was left: nothing was counted or compared
)

// NewPublicID returns 32 random lower-case hex digits: the public id of a Verify service,
// verification or send.
func NewPublicID() string {
	b := make([]byte, 16)
	rand.Read(b) // never fails (crypto/rand panics rather than return an error)
	return hex.EncodeToString(b)
}

// ValidPublicID reports whether s is 32 lower-case hex digits.
func ValidPublicID(s string) bool {
	if len(s) != 32 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}
