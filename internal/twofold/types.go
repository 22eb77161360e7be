package twofold

import (
	"errors"
	"slices"
	"time"
)

// ErrNotFound is returned by stores when a row does not exist (for this application).
var ErrNotFound = errors.New("not found")

// ErrConflict is returned by stores when a unique value is already taken.
var ErrConflict = errors.New("conflict")

// ErrExpired is returned by stores for a token that exists but whose time has passed.
var ErrExpired = errors.New("expired")

// ErrNotDelivered is returned (wrapped) by delivery when no provider took a message.
var ErrNotDelivered = errors.New("message not delivered")

// ErrTooMany is returned by stores when an insert would pass a limit it enforces atomically.
var ErrTooMany = errors.New("too many")

// App is a customer application: it owns an API key, users and settings.
type App struct {
	ID      int64
	Name    string
	Sandbox bool // nothing is delivered; the token 0000000 verifies for every user
	Console bool // the console's own application: its users are the operators

	KeyMAC    []byte // keyed hash of the API key, for lookup
	KeySealed []byte // the API key, sealed; callbacks are signed with the plaintext

	Settings
	CallbackHealth

	CreatedAt time.Time
	UpdatedAt time.Time
}

// Settings are an application's tunables, changed with `twofold app update`.
type Settings struct {
	TokenLength       int  // digits of SMS, call and email codes: 6..10, default 7
	TOTPDigits        int  // digits of authenticator codes: 6..8, default 6
	TOTPPeriod        int  // seconds per authenticator code: default 30
	TOTPSkew          int  // steps accepted either side of now: default 1
	SMSEnabled        bool // default true
	CallEnabled       bool // default true
	UnconfirmedBypass bool // old Authy `force` semantics: without force=true, unconfirmed users pass. Off by default.
	CallbackURL       string
	CallbackMethod    string // "POST" (JSON body) or "GET"
	CallbackExpired   bool   // also call back when a request expires (Authy only reported answers)
	ContactEmail      string
	NumberMatching    bool // every approval request asks the device for a 2-digit number shown by the customer
	DeviceTOTPPeriod  int  // seconds per code of registered devices' seeds: default 10, as Authy's app
	// AllowedCountries are the ISO regions ("US", "PT") SMS and calls may go to; empty: all.
	AllowedCountries []string
	CustomMessages   bool // phone verification may send the caller's custom_message (default true)
	CustomCodes      bool // phone verification may send the caller's custom_code (default false)
	// MigrationTools enables the migration exports, users/{id}/phone_number and
	// users/{id}/secret/export, for a customer moving its users elsewhere. Off by default: Authy
	// enabled them only on request, and with them an API key reads every user's phone number
	// and authenticator seed.
	MigrationTools bool
	// LogoURL is the application's logo, an https URL, shown with its name on the hosted
	// second-factor step; empty: none.
	LogoURL string
	// Limits are the application's own limits; a kind not set takes the server's. A Limit that
	// is Off disables that kind for the application.
	Limits map[LimitKind]Limit
	// Providers names the provider that delivers each channel ("twilio", "gateway", "smtp",
	// "outbox"); a channel not named uses the server's default.
	Providers map[Channel]string
	// Passkeys (issue 21, passkeys.go). With no PasskeyRPID the application has none.
	PasskeyRPID string // the relying party id, a domain such as example.com; "": passkeys off
	// PasskeyOrigins are the origins (https://login.example.com) the application's pages run
	// at; empty: https://<rp id> alone.
	PasskeyOrigins []string
	PasskeyUV      string // one of UVPolicies; "" reads as preferred
	// PasskeyUsernameless allows sign-in with a discoverable passkey and no user named first.
	PasskeyUsernameless bool
}

// providerChannels are the delivery providers Twofold has and the channels each can carry.
var providerChannels = map[string][]Channel{
	"outbox": {SMS, Call, Email}, "twilio": {SMS, Call}, "gateway": {SMS}, "smtp": {Email},
}

// Carries reports whether the provider named can deliver channel ch at all.
func Carries(provider string, ch Channel) bool {
	return slices.Contains(providerChannels[provider], ch)
}

// ProvidersFor lists the providers that can carry ch, sorted.
func ProvidersFor(ch Channel) []string {
	var names []string
	for name := range providerChannels {
		if Carries(name, ch) {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names
}

// Provider returns the provider chosen for channel c, or "" for the server's default.
func (s Settings) Provider(c Channel) string { return s.Providers[c] }

// SendsTo reports whether the application may send codes to numbers of region.
func (s Settings) SendsTo(region string) bool {
	if len(s.AllowedCountries) == 0 {
		return true
	}
	for _, c := range s.AllowedCountries {
		if c == region {
			return true
		}
	}
	return false
}

// CallbackHealth is the state of an application's callback delivery.
type CallbackHealth struct {
	CallbackFailures   int       // consecutive failed deliveries
	CallbackDisabledAt time.Time // zero while enabled
	CallbackLastError  string
}

// CallbackDisabled reports whether deliveries are paused after repeated failures.
func (h CallbackHealth) CallbackDisabled() bool { return !h.CallbackDisabledAt.IsZero() }

// DefaultSettings are the settings of a new application.
func DefaultSettings() Settings {
	return Settings{
		TokenLength:      7,
		TOTPDigits:       6,
		TOTPPeriod:       30,
		TOTPSkew:         1,
		SMSEnabled:       true,
		CallEnabled:      true,
		CallbackMethod:   "POST",
		DeviceTOTPPeriod: 10,
		CustomMessages:   true,
		PasskeyUV:        UVPreferred,
	}
}

// Plan is what app/details reports as the application's plan.
func (a App) Plan() string {
	if a.Sandbox {
		return "sandbox"
	}
	return "self_hosted"
}

// User is an end user of one application, known by an Authy id.
type User struct {
	ID          int64
	AppID       int64
	Email       string
	CountryCode int
	Phone       string // national significant number, digits only; "" for users registered by QR code
	Confirmed   bool   // has verified a code at least once
	// CustomUserID is the customer's own id for a user registered by QR code (Authy's
	// custom_user_id); "" otherwise.
	CustomUserID string
	CreatedAt    time.Time
	UpdatedAt    time.Time
}

// Authenticator is a user's TOTP seed for a generic authenticator app.
type Authenticator struct {
	UserID       int64
	AppID        int64
	SecretSealed []byte
	Digits       int
	Period       int
	Version      int64 // bumped on every re-enrolment, so old QR links stop working
	LastStep     int64 // the newest time step accepted; older and equal steps are replays
	CreatedAt    time.Time
}

// Channel is how a one-time code travels.
type Channel string

const (
	SMS   Channel = "sms"
	Call  Channel = "call"
	Email Channel = "email"
)

// OneTimeCode is an issued one-time code, stored only as a keyed hash.
type OneTimeCode struct {
	ID         int64
	AppID      int64
	UserID     int64
	Channel    Channel
	Action     string
	MAC        []byte
	Attempts   int
	CreatedAt  time.Time
	ExpiresAt  time.Time
	UsedAt     time.Time // zero while unused
	Superseded bool      // a newer code was issued for the same user and action
}

// CheckState is what checking a token for a user starts from, read in one query: whether the
// user is confirmed, whether any code of theirs is unexpired, their authenticator's seed (nil
// when they have none; CreatedAt is not read), whether they have registered devices (whose
// seeds are read only then) and the failures counted in the limit's window up to now. It holds
// no more than that: every column read costs.
type CheckState struct {
	UserID        int64
	Confirmed     bool
	LiveCodes     bool
	Authenticator *Authenticator
	HasDevices    bool
	Failures      int64     // events of the limit window asked for; 0 when there is none
	Oldest        time.Time // the oldest of those events, the first to leave the window
	Refused       bool      // a refusal of that limit was recorded within the window
}

// LimitWindow names the window of a limit (the store's Hit) that ends now: the limit's name
// and the time the window starts after (now less the window's length; an event exactly that
// old no longer counts). The zero value names none.
type LimitWindow struct {
	Name  string
	Since time.Time
}

// CodeCheck is the outcome of checking a token against a user's one-time codes.
type CodeCheck int

const (
	CodeNoMatch  CodeCheck = iota // no live code matched: a wrong try was charged to every live code
	CodeAccepted                  // the matching code is now used
	CodeReused                    // the matching code was used before
)

// Message is one message handed to the delivery layer, as recorded in the outbox.
type Message struct {
	ID         int64
	SID        string // public id, e.g. "EM…" for emails
	AppID      int64
	UserID     int64
	Channel    Channel
	To         string
	Body       string // plaintext in memory (an email's starts "Subject: …"); sealed at rest
	BodySealed []byte
	Status     string // see the Message* statuses
	Provider   string // "outbox", "twilio", "gateway", "smtp"
	ProviderID string // the provider's id for the message
	Delivery   string // the provider's latest report: "queued", "delivered", "undelivered", …
	Attempts   int    // hand-over attempts made
	Error      string // why it failed
	CreatedAt  time.Time
	UpdatedAt  time.Time

	// Rendered content for the provider; not stored.
	Subject string   // email
	HTML    string   // email
	Spoken  []string // calls: lines to read aloud
	Locale  string   // base language of the content
}

// Statuses of messages.
const (
	MessageRecorded = "recorded" // kept in the outbox only: no provider for the channel
	MessageSandbox  = "sandbox"  // sandbox application: never delivered
	MessageSending  = "sending"  // being handed to the provider
	MessageSent     = "sent"     // the provider accepted it
	MessageFailed   = "failed"   // the provider refused it or could not be reached
)

// Reasons a send is refused before anything is sent.
const (
	RefusedUserLimit    = "limit_user"    // codes per user
	RefusedNumberLimit  = "limit_number"  // codes per phone number
	RefusedCountryLimit = "limit_country" // codes per country calling code
	RefusedAppLimit     = "limit_app"     // codes per application
	RefusedCountry      = "country"       // the application does not send to the number's country
	RefusedLandline     = "landline"      // SMS to a number that cannot receive it
	RefusedPremium      = "premium_rate"  // a premium-rate or shared-cost number: toll fraud
	RefusedHasApp       = "app_installed" // the user has an authenticator and force was not set
)

// DeliveryCount is a number of messages, or of refusals, grouped for a summary.
type DeliveryCount struct {
	Channel  Channel
	Provider string // "" for refusals
	Status   string // a Message* status, or "refused"
	Reason   string // refusal reason or "" ("delivery" of the provider for sent messages is not grouped)
	Count    int64
}

// MessageFilter narrows a listing of the outbox. Zero fields match everything.
type MessageFilter struct {
	AppID int64
	Since time.Time // only messages created at or after
	To    string    // recipient contains this text (digits of a phone number, or an email)
	Limit int       // the newest Limit messages; 0 means 100
}

// Activity is an event a customer registered for a user (password reset, ban, ...).
type Activity struct {
	AppID     int64
	UserID    int64
	Type      string
	Data      string // JSON object
	IP        string
	CreatedAt time.Time
}

// Usage is one month of an application's counters, as app/stats reports them.
type Usage struct {
	Year, Month int
	APICalls    int64
	SMS         int64
	Calls       int64
	Emails      int64
	Auths       int64 // successful verifications
	Users       int64 // users created
}

// UsageKind names a counter of Usage.
type UsageKind string

const (
	UsageAPICalls UsageKind = "api_calls"
	UsageSMS      UsageKind = "sms"
	UsageCalls    UsageKind = "calls"
	UsageEmails   UsageKind = "emails"
	UsageAuths    UsageKind = "auths"
	UsageUsers    UsageKind = "users"
)

// QRLink is a capability URL to fetch one user's authenticator QR code, stored as a keyed hash
// of its random token and bound to the seed version it was made for.
type QRLink struct {
	MAC       []byte
	AppID     int64
	UserID    int64
	Version   int64
	Size      int
	URISealed []byte // the otpauth URI, sealed
	ExpiresAt time.Time
}

// RegistrationToken lets one device register for one user; stored as a keyed hash, single use.
type RegistrationToken struct {
	MAC       []byte
	AppID     int64
	UserID    int64
	ExpiresAt time.Time
}

// Device is a user's registered authenticator device (the CLI or web authenticator, or any
// client of the device API). It signs approvals with its private key and holds a TOTP seed.
type Device struct {
	ID           int64
	AppID        int64
	UserID       int64
	PublicKey    []byte // PKIX DER of an ECDSA P-256 key
	TokenMAC     []byte // keyed hash of the device's access token
	Name         string
	OSType       string
	SecretSealed []byte
	Digits       int
	Period       int
	LastStep     int64
	CreatedAt    time.Time
	LastSeenAt   time.Time
}

// ApprovalStatus is the state of an approval request. Only pending changes, once.
type ApprovalStatus string

const (
	Pending  ApprovalStatus = "pending"
	Approved ApprovalStatus = "approved"
	Denied   ApprovalStatus = "denied"
	Expired  ApprovalStatus = "expired"
)

// Logo is an image shown with an approval request.
type Logo struct {
	Res string `json:"res"`
	URL string `json:"url"`
}

// ApprovalRequest is a OneTouch push: the customer asks the user to approve something.
type ApprovalRequest struct {
	ID              int64
	UUID            string
	AppID           int64
	UserID          int64
	Message         string
	Details         map[string]string
	HiddenDetails   map[string]string
	Logos           []Logo
	Number          string // for number matching: what the device must send back; "" when not asked
	SecondsToExpire int64  // 0: never
	Status          ApprovalStatus
	Reason          string // a denial's reason
	DeviceID        int64  // the device that answered
	Signature       string // the device's signature of its answer, base64
	Notified        bool   // a device has seen it
	CreatedAt       time.Time
	UpdatedAt       time.Time
	ExpiresAt       time.Time // zero: never
	ProcessedAt     time.Time // zero while pending
	GroupID         int64     // the approval group it asks for one member's answer; 0: none
	ApproverName    string    // a group member's name, as the application gave it; "" otherwise
}

// Callback is one notification to a customer's callback URL, kept until delivered.
type Callback struct {
	ID            int64
	AppID         int64
	RequestUUID   string
	Payload       []byte // the JSON body; signed at each delivery with a fresh nonce
	Status        string // pending, delivered, dropped
	Attempts      int
	NextAttemptAt time.Time
	LastError     string
	LastStatus    int
	CreatedAt     time.Time
	DeliveredAt   time.Time
	// WebhookID is the Verify webhook (VerifyWebhook.ID) the delivery is for, 0 for a OneTouch
	// callback: its Payload is then the event's form parameters as a JSON object of strings.
	WebhookID int64
}

// PhoneVerification is a code sent to a phone number by Phone Verification (no user involved).
type PhoneVerification struct {
	ID         int64
	UUID       string
	AppID      int64
	Phone      string // E.164
	Via        Channel
	MAC        []byte
	Attempts   int // wrong tries
	Superseded bool
	CreatedAt  time.Time
	ExpiresAt  time.Time
	VerifiedAt time.Time // zero until verified
}

// Operator is a person who runs this Twofold and signs in to its console.
type Operator struct {
	ID           int64
	Email        string
	PasswordHash string // argon2id, PHC string
	AuthyID      int64  // their user in the console application, for the second factor; 0 before enrolment
	// The sign-in lockout of the operator's email (kept per email, for unknown ones too), as
	// ListOperators reports it: wrong passwords in a row, and until when sign-in is refused.
	FailedLogins int
	LockedUntil  time.Time
	LastLoginAt  time.Time
	CreatedAt    time.Time
	UpdatedAt    time.Time
}

// Locked reports whether sign-in is refused at now after repeated failures.
func (o Operator) Locked(now time.Time) bool { return now.Before(o.LockedUntil) }

// ImportedUser is a user brought from another service with the public id it had there (User.ID,
// kept exactly) and, when one came with it, its authenticator seed (already sealed, with its
// replay state in LastStep).
type ImportedUser struct {
	User          User
	Authenticator *Authenticator
}

// ImportStatus is what became of one imported user in the store.
type ImportStatus int

const (
	ImportWritten    ImportStatus = iota // written now
	ImportPresent                        // the application has a user with this id already; nothing changed
	ImportPhoneTaken                     // another user of the application has this phone number
)

// ImportResult is the store's outcome for one ImportedUser, in the order given. Owner is, for
// ImportPhoneTaken, the id of the user who has the phone number.
type ImportResult struct {
	Status ImportStatus
	Owner  int64
}
