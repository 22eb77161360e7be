package twofold

import "time"

// ApprovalGroup asks several users of an application to approve one thing, each through an
// approval request of their own, and is decided once by a quorum (issue 19).
type ApprovalGroup struct {
	ID        int64
	UUID      string
	AppID     int64
	Quorum    int // approvals needed
	Size      int // members asked
	Approvals int
	Denials   int
	Status    ApprovalStatus // pending until decided: approved, denied or expired
	Message   string
	// Requester is who asked, as the application named them (RequesterID a user's public id,
	// 0 when not given); shown to the approvers.
	RequesterID   int64
	RequesterName string
	Reason        string // "closed" when the application closed it; else ""
	CreatedAt     time.Time
	UpdatedAt     time.Time
	ExpiresAt     time.Time // zero: never
	DecidedAt     time.Time // zero while pending
}

// Decide is what the group's counts decide at now: approved once the quorum's approvals are in,
// denied as soon as the members who have not denied are fewer than the quorum, expired once its
// time has passed; else pending.
func (g ApprovalGroup) Decide(now time.Time) ApprovalStatus {
	switch {
	case g.Approvals >= g.Quorum:
		return Approved
	case g.Size-g.Denials < g.Quorum:
		return Denied
	case !g.ExpiresAt.IsZero() && !now.Before(g.ExpiresAt):
		return Expired
	}
	return Pending
}

// GroupCallback makes the callback of a group just decided, from the group and its members as
// the deciding transaction sees them; a nil callback queues none.
type GroupCallback func(g ApprovalGroup, members []ApprovalRequest) (*Callback, error)

// GroupAudit makes the audit entries of a change to a group that won (a member's answer, the
// group ended), from the group as the change left it (decided when its status is no longer
// pending); the store appends them in the change's transaction, so they commit with it.
type GroupAudit func(g ApprovalGroup) []AuditEntry
