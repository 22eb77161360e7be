package store

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/twofold-auth/twofold/internal/twofold"
)

// Approval groups (migration 00024): several users asked to approve one thing, decided once by
// a quorum.

const groupColumns = `id, uuid, app_id, quorum, size, approvals, denials, status, message, created_at, updated_at, expires_at, decided_at,
	requester_authy_id, requester_name, reason`

func scanGroup(r rowScanner) (twofold.ApprovalGroup, error) {
	var g twofold.ApprovalGroup
	var status string
	var created, updated, expires, decided int64
	err := r.Scan(&g.ID, &g.UUID, &g.AppID, &g.Quorum, &g.Size, &g.Approvals, &g.Denials, &status, &g.Message,
		&created, &updated, &expires, &decided, &g.RequesterID, &g.RequesterName, &g.Reason)
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
func (s *Store) CreateApprovalGroup(ctx context.Context, g *twofold.ApprovalGroup, members []*twofold.ApprovalRequest, maxPending int, audit ...twofold.AuditEntry) error {
	g.Size, g.Status = len(members), twofold.Pending
	err := s.auditedTx(ctx, len(audit) > 0, func(tx *Tx) error {
		err := tx.QueryRowContext(ctx, `INSERT INTO approval_groups (uuid, app_id, quorum, size, status, message, created_at, updated_at,
			expires_at, requester_authy_id, requester_name) VALUES ($1, $2, $3, $4, $5, $6, $7, $7, $8, $9, $10) RETURNING id`,
			g.UUID, g.AppID, g.Quorum, g.Size, string(g.Status), g.Message, unix(g.CreatedAt), unix(g.ExpiresAt),
			g.RequesterID, g.RequesterName).Scan(&g.ID)
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
		return s.auditEntries(ctx, tx, audit)
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
	return s.getGroup(ctx, `uuid = $1 AND app_id = $2`, uuid, appID)
}

// GetApprovalGroupByID is GetApprovalGroup for the group a member's request names (GroupID).
func (s *Store) GetApprovalGroupByID(ctx context.Context, appID, id int64) (twofold.ApprovalGroup, []twofold.ApprovalRequest, error) {
	return s.getGroup(ctx, `id = $1 AND app_id = $2`, id, appID)
}

func (s *Store) getGroup(ctx context.Context, where string, key any, appID int64) (twofold.ApprovalGroup, []twofold.ApprovalRequest, error) {
	g, err := scanGroup(s.r.QueryRowContext(ctx, `SELECT `+groupColumns+` FROM approval_groups WHERE `+where, key, appID))
	if err != nil {
		return twofold.ApprovalGroup{}, nil, err
	}
	members, err := groupMembers(ctx, s.r, g.ID)
	if err != nil {
		return twofold.ApprovalGroup{}, nil, fmt.Errorf("approval group %s: %w", g.UUID, err)
	}
	return g, members, nil
}

// groupMembers reads a group's members' requests in the order they were made.
func groupMembers(ctx context.Context, q execer, groupID int64) ([]twofold.ApprovalRequest, error) {
	return queryAll(ctx, q, scanRequest, `SELECT `+requestColumns+` FROM approval_requests WHERE group_id = $1 AND group_id <> 0 ORDER BY id`, groupID)
}

// ListApprovalGroups returns the application's groups with ids below beforeID (0: from the
// newest), newest first, at most limit.
func (s *Store) ListApprovalGroups(ctx context.Context, appID, beforeID int64, limit int) ([]twofold.ApprovalGroup, error) {
	if beforeID <= 0 {
		beforeID = math.MaxInt64
	}
	out, err := queryAll(ctx, s.r, scanGroup, `SELECT `+groupColumns+` FROM approval_groups WHERE app_id = $1 AND id < $2
		ORDER BY id DESC LIMIT $3`, appID, beforeID, limit)
	if err != nil {
		return nil, fmt.Errorf("list approval groups: %w", err)
	}
	return out, nil
}

// FinishGroupMember is FinishApprovalRequest for a member's request of group r.GroupID: in one
// transaction, which takes the group's row first (so answers on several instances are counted
// one after the other), it records the member's answer (the first wins), counts it, and when
// that decides the group (approved, denied, or expired once its time passed), records the
// decision, closes the members' requests still pending (their devices stop showing them) and
// queues the callback cb makes. When the answer wins, audit (if not nil) makes the entries that
// are appended in the same transaction, from the group as the answer left it. It returns whether
// the answer won and the group as it left it. An answer to a group already decided does not
// win: the group's decision is final.
func (s *Store) FinishGroupMember(ctx context.Context, r twofold.ApprovalRequest, cb twofold.GroupCallback, audit twofold.GroupAudit) (bool, twofold.ApprovalGroup, error) {
	var won bool
	var g twofold.ApprovalGroup
	err := s.auditedTx(ctx, audit != nil, func(tx *Tx) error {
		won, g = false, twofold.ApprovalGroup{}
		var err error
		if g, err = lockGroup(ctx, tx, s.pg, `id = $1`, r.GroupID); err != nil {
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
		if err != nil {
			return err
		}
		if decision != twofold.Pending {
			if err := decided(ctx, tx, g, GroupDecidedReason, cb); err != nil {
				return err
			}
		}
		return s.groupAudit(ctx, tx, g, audit)
	})
	if err != nil {
		return false, twofold.ApprovalGroup{}, fmt.Errorf("finish member of approval group %d: %w", r.GroupID, err)
	}
	return won, g, nil
}

// groupAudit appends, in tx, the entries audit makes of group g as a change that won left it.
func (s *Store) groupAudit(ctx context.Context, tx *Tx, g twofold.ApprovalGroup, audit twofold.GroupAudit) error {
	if audit == nil {
		return nil
	}
	return s.auditEntries(ctx, tx, audit(g))
}

// GroupDecidedReason is the reason of a member's request closed because its group was decided.
const GroupDecidedReason = "group decided"

// decided finishes, in tx, what deciding group g leaves to do (g's row already says so): the
// members' requests still pending are closed with reason (their devices stop showing them), and
// the callback cb makes, if any, is queued.
func decided(ctx context.Context, tx *Tx, g twofold.ApprovalGroup, reason string, cb twofold.GroupCallback) error {
	_, err := tx.ExecContext(ctx, `UPDATE approval_requests SET status = $1, reason = $2, expires_at = $3, processed_at = $3,
		updated_at = $3 WHERE group_id = $4 AND group_id <> 0 AND status = 'pending'`, string(twofold.Expired), reason, unix(g.DecidedAt), g.ID)
	if err != nil || cb == nil {
		return err
	}
	members, err := groupMembers(ctx, tx, g.ID)
	if err != nil {
		return err
	}
	c, err := cb(g, members)
	if err != nil || c == nil {
		return err
	}
	return insertCallback(ctx, tx, c, g.DecidedAt)
}

// EndApprovalGroup ends the application's pending group before any quorum: expired once its
// time has passed (the sweep, for a group whose members' requests cannot expire it, such as
// one whose members were deleted), or closed by the application (reason "closed", before its
// time). Its members' pending requests are closed with the group's reason or, when it expired,
// GroupDecidedReason, cb's callback is queued and the entries audit (if not nil) makes of the
// group as ended are appended, in one transaction that takes the group's row first. It reports
// whether this change won (false: decided already, and nothing is appended) and the group as left.
func (s *Store) EndApprovalGroup(ctx context.Context, appID, id int64, reason string, at time.Time, cb twofold.GroupCallback, audit twofold.GroupAudit) (bool, twofold.ApprovalGroup, error) {
	var won bool
	var g twofold.ApprovalGroup
	err := s.auditedTx(ctx, audit != nil, func(tx *Tx) error {
		won = false
		var err error
		if g, err = lockGroup(ctx, tx, s.pg, `id = $1 AND app_id = $2`, id, appID); err != nil || g.Status != twofold.Pending {
			return err
		}
		if reason == "" && (g.ExpiresAt.IsZero() || at.Before(g.ExpiresAt)) {
			return nil // not due: only a closing ends a group before its time
		}
		g.Status, g.Reason, g.DecidedAt, g.UpdatedAt = twofold.Expired, reason, at, at
		_, err = tx.ExecContext(ctx, `UPDATE approval_groups SET status = $1, reason = $2, updated_at = $3, decided_at = $3 WHERE id = $4`,
			string(g.Status), g.Reason, unix(at), g.ID)
		if err != nil {
			return err
		}
		won = true
		memberReason := reason
		if memberReason == "" {
			memberReason = GroupDecidedReason
		}
		if err := decided(ctx, tx, g, memberReason, cb); err != nil {
			return err
		}
		return s.groupAudit(ctx, tx, g, audit)
	})
	if err != nil {
		return false, twofold.ApprovalGroup{}, fmt.Errorf("end approval group %d: %w", id, err)
	}
	return won, g, nil
}

// lockGroup reads a group's row in tx, taking it (FOR UPDATE on PostgreSQL; SQLite's writer is
// one at a time already), so that whatever decides the group runs one after the other.
func lockGroup(ctx context.Context, tx *Tx, pg bool, where string, args ...any) (twofold.ApprovalGroup, error) {
	lock := ""
	if pg {
		lock = ` FOR UPDATE`
	}
	return scanGroup(tx.QueryRowContext(ctx, `SELECT `+groupColumns+` FROM approval_groups WHERE `+where+lock, args...))
}

// DueGroupExpiries returns pending groups whose time has passed.
func (s *Store) DueGroupExpiries(ctx context.Context, now time.Time, limit int) ([]twofold.ApprovalGroup, error) {
	out, err := queryAll(ctx, s.r, scanGroup, `SELECT `+groupColumns+` FROM approval_groups
		WHERE status = 'pending' AND expires_at <> 0 AND expires_at <= $1 ORDER BY expires_at LIMIT $2`, unix(now), limit)
	if err != nil {
		return nil, fmt.Errorf("due group expiries: %w", err)
	}
	return out, nil
}
