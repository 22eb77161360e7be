package twofold

import "time"

// ReasonNotRequested is the reason a device denies a request with when its user did not ask for
// it ("I didn't request this"). A passwordless request denied so blocks further passwordless
// requests for that user for a while (issue 19).
const ReasonNotRequested = "not requested"

// PasswordlessRequest is a passwordless sign-in begun by someone who typed a username. When the
// name is of a user with a registered device who is not blocked, an ordinary approval request
// with the same UUID went to their devices (Sent); otherwise it is a phantom: the same answer
// to the caller, but nothing was sent and it stays pending until it expires.
type PasswordlessRequest struct {
	ID        int64
	UUID      string
	AppID     int64
	Number    string // the two digits the sign-in page shows
	CreatedAt time.Time
	ExpiresAt time.Time

	// Read from the approval request of the same UUID, when there is one (Sent).
	Sent   bool
	Status ApprovalStatus
	UserID int64
	Reason string
}

// PasswordlessSubject is what a passwordless sign-in needs to know of the user a name found.
type PasswordlessSubject struct {
	UserID    int64
	HasDevice bool // a registered device can answer
	// LastNotRequested is when the user last denied a passwordless request as not requested
	// (ReasonNotRequested); zero: never.
	LastNotRequested time.Time
}
