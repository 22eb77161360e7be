package store

import (
	"context"
	"fmt"
	"strconv"

	"github.com/twofold-auth/twofold/internal/twofold"
)

// Passwordless sign-in (migration 00026): a row per request begun, and for a request that went
// to a user's devices, the approval request of the same uuid.

// CreatePasswordless inserts p and, when r is not nil, the approval request r (of p's uuid), in
// one transaction. r is inserted only while its user exists and has fewer than maxPending live
// pending requests (maxPending <= 0: no bound); else p alone is inserted, a phantom. sent reports
// whether r was inserted. The same statements run either way but for r's insert, so a phantom
// costs what a request sent does, short of that one row.
func (s *Store) CreatePasswordless(ctx context.Context, p *twofold.PasswordlessRequest, r *twofold.ApprovalRequest, maxPending int) (sent bool, err error) {
	var userID int64
	if r != nil {
		userID = r.UserID
	}
	err = s.tx(ctx, func(tx *Tx) error {
		sent = false
		if err := s.lockUser(ctx, tx, p.AppID, userID); err != nil {
			return err
		}
		// A user deleted since they were looked up is asked nothing, like an unknown one.
		var known, pending int
		err := tx.QueryRowContext(ctx, `SELECT (SELECT COUNT(*) FROM users WHERE app_id = $1 AND public_id = $2),
			(SELECT COUNT(*) FROM approval_requests WHERE user_id = `+userKey("$1", "$2")+`
			AND status = 'pending' AND (expires_at = 0 OR expires_at > $3))`, p.AppID, userID, unix(p.CreatedAt)).Scan(&known, &pending)
		if err != nil {
			return err
		}
		if r != nil && known == 1 && (maxPending <= 0 || pending < maxPending) {
			// Counted above, under the user's lock: insertRequest need not count again.
			if err := s.insertRequest(ctx, tx, r, 0); err != nil {
				return err
			}
			sent = true
		}
		return tx.QueryRowContext(ctx, `INSERT INTO passwordless_requests (uuid, app_id, number, created_at, expires_at)
			VALUES ($1, $2, $3, $4, $5) RETURNING id`, p.UUID, p.AppID, p.Number, unix(p.CreatedAt), unix(p.ExpiresAt)).Scan(&p.ID)
	})
	if err != nil {
		return false, fmt.Errorf("create passwordless request: %w", err)
	}
	p.Sent = sent
	if sent {
		p.Status, p.UserID = r.Status, r.UserID
	} else {
		p.Status, p.UserID = twofold.Pending, 0
	}
	return sent, nil
}

// GetPasswordless returns the application's passwordless request with uuid, with the status,
// user and reason of its approval request when there is one (Sent). A request of another
// application is ErrNotFound.
func (s *Store) GetPasswordless(ctx context.Context, appID int64, uuid string) (twofold.PasswordlessRequest, error) {
	var p twofold.PasswordlessRequest
	var created, expires int64
	var status, reason *string
	var userID *int64
	err := s.r.QueryRowContext(ctx, `SELECT p.id, p.uuid, p.app_id, p.number, p.created_at, p.expires_at,
		a.status, a.reason, `+publicUserID("a.user_id")+`
		FROM passwordless_requests p LEFT JOIN approval_requests a ON a.uuid = p.uuid AND a.app_id = p.app_id
		WHERE p.uuid = $1 AND p.app_id = $2`, uuid, appID).Scan(&p.ID, &p.UUID, &p.AppID, &p.Number, &created, &expires,
		&status, &reason, &userID)
	if err != nil {
		return twofold.PasswordlessRequest{}, fmt.Errorf("passwordless request: %w", notFound(err))
	}
	p.CreatedAt, p.ExpiresAt = fromUnix(created), fromUnix(expires)
	p.Status = twofold.Pending
	if status != nil && userID != nil {
		p.Sent, p.Status, p.Reason, p.UserID = true, twofold.ApprovalStatus(*status), *reason, *userID
	}
	return p, nil
}

// subjectColumns read, for the user in users u, what a passwordless sign-in needs: the user's
// id, whether they have a device, and when they last denied a passwordless request as not
// requested (index approval_requests_not_requested, whose condition is written out so that
// SQLite uses it).
const subjectColumns = `u.public_id,
	EXISTS (SELECT 1 FROM devices d WHERE d.user_id = u.id),
	COALESCE((SELECT max(a.processed_at) FROM approval_requests a
		WHERE a.user_id = u.id AND a.status = 'denied' AND a.reason = 'not requested'
		AND EXISTS (SELECT 1 FROM passwordless_requests p WHERE p.uuid = a.uuid)), 0)`

// PasswordlessSubject finds, in one read, the application's user named by name as match says
// (the decimal id, the customer's id, or the email without regard to case) and what a
// passwordless sign-in needs to know of them. A name of no user, or an email of several users
// (which names none), is ErrNotFound.
func (s *Store) PasswordlessSubject(ctx context.Context, appID int64, match twofold.UserMatch, name string) (twofold.PasswordlessSubject, error) {
	var where string
	var arg any = name
	switch match {
	case twofold.MatchID:
		id, err := strconv.ParseInt(name, 10, 64)
		if err != nil || id <= 0 || strconv.FormatInt(id, 10) != name {
			return twofold.PasswordlessSubject{}, twofold.ErrNotFound
		}
		where, arg = `u.public_id = $2`, id
	case twofold.MatchCustomID:
		where = `u.custom_user_id = $2 AND u.custom_user_id <> ''` // the partial index users_by_custom_id
	case twofold.MatchEmail:
		where = `lower(u.email) = lower($2) AND u.email <> ''` // the partial index users_by_email
	default:
		return twofold.PasswordlessSubject{}, fmt.Errorf("passwordless subject: unknown match %q", match)
	}
	found, err := queryAll(ctx, s.r, func(r rowScanner) (twofold.PasswordlessSubject, error) {
		var sub twofold.PasswordlessSubject
		var last int64
		err := r.Scan(&sub.UserID, &sub.HasDevice, &last)
		sub.LastNotRequested = fromUnix(last)
		return sub, err
	}, `SELECT `+subjectColumns+` FROM users u WHERE u.app_id = $1 AND `+where+` LIMIT 2`, appID, arg)
	switch {
	case err != nil:
		return twofold.PasswordlessSubject{}, fmt.Errorf("passwordless subject: %w", err)
	case len(found) != 1:
		return twofold.PasswordlessSubject{}, twofold.ErrNotFound
	}
	return found[0], nil
}
