package twofold

import "time"

// RecoveryCodes describes a user's set of recovery codes, never the codes: how many were made,
// how many are left unspent, and when the set was made (zero when the user has none).
type RecoveryCodes struct {
	Total     int
	Remaining int
	CreatedAt time.Time
}

// RecoverySpend is what spending a recovery code found.
type RecoverySpend int

const (
	RecoveryUnknown RecoverySpend = iota // no code of the user's set has this hash
	RecoverySpent                        // an unused code, now spent
	RecoveryReused                       // a code of the set that was spent before
)
