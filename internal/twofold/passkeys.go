package twofold

import "time"

// User-verification policies of an application's passkeys (WebAuthn's
// UserVerificationRequirement): required refuses an assertion without the UV flag.
const (
	UVRequired    = "required"
	UVPreferred   = "preferred"
	UVDiscouraged = "discouraged"
)

// UVPolicies lists the user-verification policies, for validation and forms.
var UVPolicies = []string{UVRequired, UVPreferred, UVDiscouraged}

// PasskeySettings are an application's relying-party settings for passkeys (issue 21). With no
// RPID the application has no passkeys.
type PasskeySettings struct {
	PasskeyRPID string // the relying party id, a domain such as example.com; "": passkeys off
	// PasskeyOrigins are the origins (https://login.example.com) the application's pages run
	// at; empty: https://<rp id> alone.
	PasskeyOrigins []string
	PasskeyUV      string // one of UVPolicies; "" reads as preferred
	// PasskeyUsernameless allows sign-in with a discoverable passkey and no user named first.
	PasskeyUsernameless bool
}

// PasskeysEnabled reports whether the application has a relying party configured.
func (s PasskeySettings) PasskeysEnabled() bool { return s.PasskeyRPID != "" }

// Origins returns the origins assertions may come from.
func (s PasskeySettings) Origins() []string {
	if len(s.PasskeyOrigins) > 0 {
		return s.PasskeyOrigins
	}
	if s.PasskeyRPID == "" {
		return nil
	}
	return []string{"https://" + s.PasskeyRPID}
}

// UV returns the user-verification policy, preferred when unset.
func (s PasskeySettings) UV() string {
	if s.PasskeyUV == "" {
		return UVPreferred
	}
	return s.PasskeyUV
}

// Passkey is a user's registered WebAuthn credential.
type Passkey struct {
	ID                int64
	PublicID          string // 32 hex digits, the wire's id
	AppID             int64
	UserID            int64 // the user's public (Authy) id
	Name              string
	CredentialID      []byte
	PublicKey         []byte // COSE_Key
	SignCount         uint32
	BackupEligible    bool
	BackupState       bool
	Transports        []string
	AAGUID            []byte
	AttestationFormat string
	CreatedAt         time.Time
	LastUsedAt        time.Time // zero: never
}

// Kinds of passkey ceremonies.
const (
	CeremonyRegistration   = "registration"
	CeremonyAuthentication = "authentication"
)

// PasskeyCeremony is a WebAuthn ceremony begun and not yet finished: single use, expiring,
// bound to its application and (registration, second factor) its user.
type PasskeyCeremony struct {
	ID        string // 32 hex digits
	AppID     int64
	UserID    int64  // public id; 0 for a usernameless sign-in
	Kind      string // CeremonyRegistration or CeremonyAuthentication
	Session   []byte // go-webauthn's SessionData as JSON
	Name      string // a registration's passkey name
	CreatedAt time.Time
	ExpiresAt time.Time
}
