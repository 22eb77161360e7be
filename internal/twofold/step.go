package twofold

import (
	"strings"
	"time"
)

// Factor is a way to pass the hosted second-factor step.
type Factor string

const (
	FactorPush  Factor = "push"  // an approval request on the user's device, with number matching
	FactorTOTP  Factor = "totp"  // a code of the user's authenticator (app or device)
	FactorSMS   Factor = "sms"   // a one-time code by SMS
	FactorCall  Factor = "call"  // a one-time code read by a voice call
	FactorEmail Factor = "email" // a one-time code by email

	// FactorPasswordless is not a second factor a client offers but the first one: a
	// passwordless sign-in (internal/passwordless) approved on the device of the user who typed
	// their name, for a session begun without a user. It is never in a client's Factors.
	FactorPasswordless Factor = "passwordless"

	// FactorRecoveryCode is one of the user's recovery codes, spent: a fallback the step offers
	// to a user who has some (the customer's backend made them), whatever the client's Factors.
	// It is never in a client's Factors.
	FactorRecoveryCode Factor = "recovery_code"
	// FactorPasskey is a passkey of the user's (WebAuthn), offered by the step when the user has
	// one the step's page can use (hostedstep.PasskeysReach), whatever the client's Factors. A
	// session it passed records how, for the result's amr: PasskeyFactor.
	FactorPasskey Factor = "passkey"
)

// PasskeyFactor is the factor a passkey passed a session with: "passkey.KEY.CHECK", KEY hwk for
// a device-bound key, swk for a synced one (backup eligible: the private key leaves the
// authenticator's hardware for the provider's cloud), CHECK pin when the authenticator verified
// the user (PIN or biometrics: the relying party cannot tell which) and user when it only tested
// their presence. RFC 8176 names both parts; the step keeps them in its one factor column.
func PasskeyFactor(synced, userVerified bool) Factor {
	key, check := "hwk", "user"
	if synced {
		key = "swk"
	}
	if userVerified {
		check = "pin"
	}
	return Factor(string(FactorPasskey) + "." + key + "." + check)
}

// Base is the factor without what PasskeyFactor adds: FactorPasskey for any passkey.
func (f Factor) Base() Factor {
	if strings.HasPrefix(string(f), string(FactorPasskey)+".") {
		return FactorPasskey
	}
	return f
}

// Factors are all of them, in the order the step offers them by default.
var Factors = []Factor{FactorPush, FactorTOTP, FactorSMS, FactorCall, FactorEmail}

// UserMatch says how the name a step client gives for a user finds the user.
type UserMatch string

const (
	MatchID       UserMatch = "id"        // the user's id (authy_id)
	MatchCustomID UserMatch = "custom_id" // the customer's own id for the user (custom_user_id)
	MatchEmail    UserMatch = "email"     // the user's email, which must be unique in the application
)

// StepClient is a relying party of the hosted second-factor step: an identity provider or an
// application that sends its users there mid-login and takes back a signed result. It belongs
// to one application and may name that application's users only.
type StepClient struct {
	ID             int64 // row id; never leaves the store's users
	AppID          int64
	ClientID       string // public: "tfc_" and random letters
	Name           string
	RedirectURIs   []string  // a redirect must match one of these exactly
	Factors        []Factor  // offered, in this order; never empty
	UserMatch      UserMatch // how a hinted name finds the user
	AllowLoginHint bool      // an unsigned login_hint may name the user (else only signed hints)
	HintJWKSURL    string    // the IdP's JWKS, which signs the id_token_hint (Entra)
	HintIssuer     string    // the iss an id_token_hint must have (one tenant of a shared key set)
	ClientJWKSURL  string    // the client's own JWKS: private_key_jwt and signed request objects
	Auth0Domain    string    // the Auth0 tenant whose Action sends users (the redirect dialect)
	Passwordless   bool      // a request naming no user begins a passwordless sign-in (the page asks who)
	CreatedAt      time.Time
	UpdatedAt      time.Time
}

// Step client secret kinds (StepClientSecret.Kind).
const (
	SecretClient = "client" // the OIDC client_secret
	SecretAuth0  = "auth0"  // the secret shared with an Auth0 Action (HS256 tokens both ways)
)

// StepStatus is where a step session is.
type StepStatus string

const (
	StepPending StepStatus = "pending" // the user has not passed a factor yet
	StepPassed  StepStatus = "passed"  // a factor passed; the result waits to be handed back
	StepFailed  StepStatus = "failed"  // refused (a push denied, too many wrong codes)
	StepDone    StepStatus = "done"    // the result was handed back (its code spent)
)

// StepSession is one user's pass through the hosted step for one client.
type StepSession struct {
	ID           int64
	HandleMAC    []byte // keyed hash of the random handle in the page's URL
	ClientID     int64  // StepClient.ID
	AppID        int64
	UserID       int64  // the user's public id; 0 for a passwordless session not yet approved
	BrowserMAC   []byte // keyed hash of the cookie of the browser that started it
	Request      []byte // what the client asked, as its adapter wrote it (JSON)
	Status       StepStatus
	Factor       Factor  // the factor that passed
	ApprovalUUID string  // the push approval request it waits on, if any
	SentChannel  Channel // the channel of the last code sent, if any
	Passwordless bool    // begun without a user: the user is whoever approves its sign-in, bound once
	SigninUUID   string  // the passwordless sign-in it waits on, if any
	PassedAt     time.Time
	CreatedAt    time.Time
	ExpiresAt    time.Time
}
