package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twofold-auth/twofold/internal/twofold"
)

// Approval groups (migration 00024): several users asked to approve one thing, decided once by
// a quorum.

const groupColumns = `id, uuid, app_id, quorum, size, approvals, denials, status, message, created_at, updated_at, expires_at, decided_at`

func scanGroup(r rowScanner) (twofold.ApprovalGroup, error) {
	var g twofold.ApprovalGroup
	var status string
	var created, updated, expires, decided int64
	err := r.Scan(&g.ID, &g.UUID, &g.AppID, &g.Quorum, &g.Size, &g.Approvals, &g.Denials, &status, &g.Message,
		&created, &updated, &expires, &decided)
	if err != nil {
		return twofold.ApprovalGroup{}, notFound(err)
	}
	g.Status = twofold.ApprovalStatus(status)
	g.CreatedAt, g.UpdatedAt, g.ExpiresAt, g.DecidedAt = fromUnix(created), fromUnix(updated), fromUnix(expires), fromUnix(decided)
	return g, nil
}

// CreateApprovalGroup inserts g (pending, its Size the members') and one pending request per
// member, each with GroupID set, in one transaction: all of them or none. A member with
// maxPending live pending requests already makes it ErrTooMany; an unknown member ErrNotFound.
func (s *Store) CreateApprovalGroup(ctx context.Context, g *twofold.ApprovalGroup, members []*twofold.ApprovalRequest, maxPending int) error {
	g.Size, g.Status = len(members), twofold.Pending
	err := s.tx(ctx, func(tx *Tx) error {
		err := tx.QueryRowContext(ctx, `INSERT INTO approval_groups (uuid, app_id, quorum, size, status, message, created_at, updated_at,
			expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $7, $8) RETURNING id`,
			g.UUID, g.AppID, g.Quorum, g.Size, string(g.Status), g.Message, unix(g.CreatedAt), unix(g.ExpiresAt)).Scan(&g.ID)
		if err != nil {
			return err
		}
		for _, r := range members {
			var known int
			if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM users WHERE app_id = $1 AND public_id = $2`, r.AppID, r.UserID).Scan(&known); err != nil {
				return err
			}
			if known == 0 {
				return twofold.ErrNotFound
			}
			r.GroupID = g.ID
			if err := s.insertRequest(ctx, tx, r, maxPending); err != nil {
				return err
			}
		}
		return nil
	})
	if errors.Is(err, ErrTooMany) || errors.Is(err, twofold.ErrNotFound) {
		return err
	}
	if err != nil {
		return fmt.Errorf("create approval group: %w", err)
	}
	g.UpdatedAt = g.CreatedAt
	return nil
}

// GetApprovalGroup returns the application's group with uuid and its members' requests, in the
// order they were made.
func (s *Store) GetApprovalGroup(ctx context.Context, appID int64, uuid string) (twofold.ApprovalGroup, []twofold.ApprovalRequest, error) {
	g, err := scanGroup(s.r.QueryRowContext(ctx, `SELECT `+groupColumns+` FROM approval_groups WHERE uuid = $1 AND app_id = $2`, uuid, appID))
	if err != nil {
		return twofold.ApprovalGroup{}, nil, err
	}
	members, err := queryAll(ctx, s.r, scanRequest, `SELECT `+requestColumns+` FROM approval_requests WHERE group_id = $1 AND group_id <> 0 ORDER BY id`, g.ID)
	if err != nil {
		return twofold.ApprovalGroup{}, nil, fmt.Errorf("approval group %s: %w", uuid, err)
	}
	return g, members, nil
}

// GroupCallback makes the callback of a group just decided, from the group and its members as
// the deciding transaction sees them; nil queues none.
type GroupCallback func(g twofold.ApprovalGroup, members []twofold.ApprovalRequest) (*twofold.Callback, error)

// FinishGroupMember is FinishApprovalRequest for a member's request of group r.GroupID: in one
// transaction, which takes the group's row first (so answers on several instances are counted
// one after the other), it records the member's answer (the first wins), counts it, and when
// that decides the group (approved, denied, or expired once its time passed), records the
// decision, closes the members' requests still pending (their devices stop showing them) and
// queues the callback cb makes. It returns whether the answer won and the group as it left it.
// An answer to a group already decided does not win: the group's decision is final.
func (s *Store) FinishGroupMember(ctx context.Context, r twofold.ApprovalRequest, cb GroupCallback) (bool, twofold.ApprovalGroup, error) {
	var won bool
	var g twofold.ApprovalGroup
	err := s.tx(ctx, func(tx *Tx) error {
		won, g = false, twofold.ApprovalGroup{}
		lock := ""
		if s.pg {
			lock = ` FOR UPDATE`
		}
		var err error
		g, err = scanGroup(tx.QueryRowContext(ctx, `SELECT `+groupColumns+` FROM approval_groups WHERE id = $1`+lock, r.GroupID))
		if err != nil {
			return err
		}
		if g.Status != twofold.Pending {
			return nil // decided: later answers are refused
		}
		if won, err = finishRequest(ctx, tx, r); err != nil || !won {
			return err
		}
		switch r.Status {
		case twofold.Approved:
			g.Approvals++
		case twofold.Denied:
			g.Denials++
		}
		g.UpdatedAt = r.ProcessedAt
		decision := g.Decide(r.ProcessedAt)
		if decision != twofold.Pending {
			g.Status, g.DecidedAt = decision, r.ProcessedAt
		}
		_, err = tx.ExecContext(ctx, `UPDATE approval_groups SET approvals = $1, denials = $2, status = $3, updated_at = $4,
			decided_at = $5 WHERE id = $6`, g.Approvals, g.Denials, string(g.Status), unix(g.UpdatedAt), unix(g.DecidedAt), g.ID)
		if err != nil || decision == twofold.Pending {
			return err
		}
		// Decided: the others need answer nothing more.
		_, err = tx.ExecContext(ctx, `UPDATE approval_requests SET status = $1, reason = $2, expires_at = $3, processed_at = $3,
			updated_at = $3 WHERE group_id = $4 AND group_id <> 0 AND status = 'pending'`, string(twofold.Expired), GroupDecidedReason, unix(r.ProcessedAt), g.ID)
		if err != nil || cb == nil {
			return err
		}
		members, err := queryAll(ctx, tx, scanRequest, `SELECT `+requestColumns+` FROM approval_requests WHERE group_id = $1 AND group_id <> 0 ORDER BY id`, g.ID)
		if err != nil {
			return err
		}
		c, err := cb(g, members)
		if err != nil || c == nil {
			return err
		}
		return insertCallback(ctx, tx, c, r.ProcessedAt)
	})
	if err != nil {
		return false, twofold.ApprovalGroup{}, fmt.Errorf("finish member of approval group %d: %w", r.GroupID, err)
	}
	return won, g, nil
}

// GroupDecidedReason is the reason of a member's request closed because its group was decided.
const GroupDecidedReason = "group decided"

// DueGroupExpiries returns pending groups whose time has passed.
func (s *Store) DueGroupExpiries(ctx context.Context, now time.Time, limit int) ([]twofold.ApprovalGroup, error) {
	out, err := queryAll(ctx, s.r, scanGroup, `SELECT `+groupColumns+` FROM approval_groups
		WHERE status = 'pending' AND expires_at <> 0 AND expires_at <= $1 ORDER BY expires_at LIMIT $2`, unix(now), limit)
	if err != nil {
		return nil, fmt.Errorf("due group expiries: %w", err)
	}
	return out, nil
}
