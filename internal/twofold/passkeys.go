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

// PasskeysEnabled reports whether the application has a relying party configured.
func (s Settings) PasskeysEnabled() bool { return s.PasskeyRPID != "" }

// PasskeyAllowedOrigins returns the origins ceremonies may come from.
func (s Settings) PasskeyAllowedOrigins() []string {
	if len(s.PasskeyOrigins) > 0 {
		return s.PasskeyOrigins
	}
	if s.PasskeyRPID == "" {
		return nil
	}
	return []string{"https://" + s.PasskeyRPID}
}

// PasskeyUserVerification returns the user-verification policy, preferred when unset.
func (s Settings) PasskeyUserVerification() string {
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
