package onetouch

import (
	"context"
	"errors"

	"github.com/twofold-auth/twofold/internal/twofold"
)

// ErrNotSandbox refuses to answer a production application's request without a device: there,
// only the user's device may decide, with a signature only it can make.
var ErrNotSandbox = errors.New("not a sandbox application: its approval requests are answered only by the user's device")

// AnswerSandbox records a decision on a pending request of a sandbox application, made by its
// developer (from the command line) instead of a device: Authy's sandbox had no devices, and a
// test suite written against it waits for an answer no device will give. The request finishes
// as a device's answer would finish it, its callback included, with no device and no signature.
func (s *Service) AnswerSandbox(ctx context.Context, app twofold.App, uuid string, status twofold.ApprovalStatus, reason string) (twofold.ApprovalRequest, error) {
	if status != twofold.Approved && status != twofold.Denied {
		return twofold.ApprovalRequest{}, twofold.ErrInvalidParam("status", "must be approved or denied")
	}
	if len(reason) > 200 {
		return twofold.ApprovalRequest{}, twofold.ErrInvalidParam("reason", "must be at most 200 characters")
	}
	if !app.Sandbox {
		return twofold.ApprovalRequest{}, ErrNotSandbox
	}
	r, err := s.Get(ctx, app, uuid)
	if err != nil {
		return twofold.ApprovalRequest{}, err
	}
	if r.Status != twofold.Pending {
		return twofold.ApprovalRequest{}, twofold.Errorf(twofold.CodeNotPending, "Approval request is no longer pending: it is %s.", r.Status)
	}
	// The actor of the answer's audit entry is the context's: whoever answered.
	out, err := s.finish(ctx, app, r, status, reason, twofold.Device{}, "", s.now().UTC(), &answerer{})
	if err != nil {
		return twofold.ApprovalRequest{}, err
	}
	if !out.won {
		return twofold.ApprovalRequest{}, notPending(out)
	}
	if out.decided {
		s.groupDecided(out.group, out.members, out.queued)
	}
	return s.store.GetApprovalRequest(ctx, app.ID, r.UUID)
}
