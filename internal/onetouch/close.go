package onetouch

import (
	"context"

	"github.com/twofold-auth/twofold/internal/twofold"
)

// ClosedReason is the reason a closed request carries, beside its status expired.
const ClosedReason = "closed"

// Close ends the application's pending request before its time: the user went on another way
// (a code by SMS), so the request must not wait on their devices any longer, nor be approvable.
// The request becomes expired, now, with the reason "closed": expired is the status Authy's
// clients know for a request that can no longer be answered, and which they accept (they check
// the status against pending, approved, denied and expired), and it is what the devices already
// drop. A request that is already expired or closed is returned as it is (closing is
// idempotent); an answered one cannot be closed (60079), and another application's is not found
// (60049). No callback is sent: the application did it, and has the answer. Devices are woken,
// so their streams carry the change at once, and the close is recorded in the audit trail.
func (s *Service) Close(ctx context.Context, app twofold.App, uuid string) (twofold.ApprovalRequest, error) {
	r, err := s.Get(ctx, app, uuid) // expires it first if its time has passed
	if err != nil {
		return twofold.ApprovalRequest{}, err
	}
	if r.Status == twofold.Pending {
		// The close and its audit entry commit together, the entry only if the close won.
		closed := s.entries(ctx, twofold.AuditEvent{Action: twofold.AuditApprovalClosed, AppID: r.AppID, UserID: r.UserID,
			Details: map[string]string{"uuid": r.UUID}})
		won, err := s.store.CloseApprovalRequest(ctx, app.ID, r.ID, ClosedReason, s.now().UTC(), closed...)
		if err != nil {
			return twofold.ApprovalRequest{}, err
		}
		if won {
			s.hooks.Changed(r.AppID, r.UserID)
		}
		// Whoever won (an answer may have come first), the request is final now.
		if r, err = s.store.GetApprovalRequest(ctx, app.ID, r.UUID); err != nil {
			return twofold.ApprovalRequest{}, err
		}
	}
	if r.Status != twofold.Expired {
		return r, twofold.Errorf(twofold.CodeNotPending, "Approval request was already answered: it is %s.", r.Status)
	}
	return r, nil
}
