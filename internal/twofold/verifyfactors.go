package twofold

import "time"

// Verify v2 factors and challenges (internal/verifyfactors): an entity is the application's user
// whose CustomUserID is the entity's Identity; its factors and challenges belong to one Verify
// service.

// Factor types and statuses.
const (
	VerifyFactorTOTP = "totp"
	VerifyFactorPush = "push"
	FactorUnverified = "unverified"
	FactorVerified   = "verified"
)

// FactorConfig is a factor's configuration (Twilio's Config.*).
type FactorConfig struct {
	TimeStep   int    `json:"time_step,omitempty"`   // totp
	Skew       int    `json:"skew,omitempty"`        // totp
	CodeLength int    `json:"code_length,omitempty"` // totp
	Alg        string `json:"alg,omitempty"`         // totp: sha1, sha256, sha512; push: ES256
	// push
	SdkVersion           string `json:"sdk_version,omitempty"`
	AppID                string `json:"app_id,omitempty"`
	NotificationPlatform string `json:"notification_platform,omitempty"`
	NotificationToken    string `json:"notification_token,omitempty"`
}

// VerifyFactor is a factor of an entity.
type VerifyFactor struct {
	ID           int64
	PublicID     string
	AppID        int64
	ServiceID    int64
	UserID       int64
	Type         string
	Name         string
	Status       string
	SecretSealed []byte // totp: the sealed secret; push: the PKIX DER public key (not secret)
	Config       FactorConfig
	Metadata     map[string]string
	LastStep     int64
	Failures     int
	DeviceID     int64 // a Twofold device this push factor is (Device.ID); 0: a key the customer's app holds
	CreatedAt    time.Time
	UpdatedAt    time.Time
}

// ChallengeField is one of a challenge's shown details.
type ChallengeField struct {
	Label string `json:"label"`
	Value string `json:"value"`
}

// ChallengeDetails is what a challenge shows the user.
type ChallengeDetails struct {
	Message string           `json:"message"`
	Fields  []ChallengeField `json:"fields"`
	Date    string           `json:"date,omitempty"`
}

// Challenge statuses beside Pending, Approved, Denied and Expired.
const (
	ChallengePending  = "pending"
	ChallengeApproved = "approved"
	ChallengeDenied   = "denied"
	ChallengeExpired  = "expired"
)

// VerifyChallenge is a challenge to one factor of an entity.
type VerifyChallenge struct {
	ID              int64
	PublicID        string
	AppID           int64
	ServiceID       int64
	UserID          int64
	FactorID        int64
	Status          string // as stored: pending, approved, denied
	RespondedReason string
	Details         ChallengeDetails
	HiddenDetails   map[string]string
	Failures        int
	ApprovalUUID    string // the OneTouch approval request a challenge of a device's factor is
	CreatedAt       time.Time
	UpdatedAt       time.Time
	ExpiresAt       time.Time
	RespondedAt     time.Time // zero while pending
}

// StatusAt is the challenge's status at now: a pending one past its expiry is expired.
func (c VerifyChallenge) StatusAt(now time.Time) string {
	if c.Status == ChallengePending && !now.Before(c.ExpiresAt) {
		return ChallengeExpired
	}
	return c.Status
}

// ChallengeFilter narrows a list of challenges.
type ChallengeFilter struct {
	FactorID int64  // 0: any
	Status   string // "": any; expired means pending and past its expiry at Now
	Now      time.Time
	Desc     bool // newest first
}
