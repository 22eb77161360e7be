package store

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/twofold-auth/twofold/internal/twofold"
)

// ErrTooMany is twofold.ErrTooMany: creating a request would pass a limit.
var ErrTooMany = twofold.ErrTooMany

// requestColumns read a request's user by public id (publicUserID), from a query on
// approval_requests.
const requestColumns = `id, uuid, app_id, (SELECT public_id FROM users WHERE id = approval_requests.user_id), message, details, hidden_details, logos, number, seconds_to_expire,
	status, reason, device_id, signature, notified, created_at, updated_at, expires_at, processed_at, group_id, approver_name`

func scanRequest(row rowScanner) (twofold.ApprovalRequest, error) {
	var r twofold.ApprovalRequest
	var details, hidden, logos, status string
	var notified int
	var created, updated, expires, processed int64
	err := row.Scan(&r.ID, &r.UUID, &r.AppID, &r.UserID, &r.Message, &details, &hidden, &logos, &r.Number,
		&r.SecondsToExpire, &status, &r.Reason, &r.DeviceID, &r.Signature, &notified, &created, &updated, &expires, &processed,
		&r.GroupID, &r.ApproverName)
	if err != nil {
		return twofold.ApprovalRequest{}, notFound(err)
	}
	r.Status, r.Notified = twofold.ApprovalStatus(status), notified == 1
	r.CreatedAt, r.UpdatedAt, r.ExpiresAt, r.ProcessedAt = fromUnix(created), fromUnix(updated), fromUnix(expires), fromUnix(processed)
	for _, f := range []struct {
		raw string
		dst any
	}{{details, &r.Details}, {hidden, &r.HiddenDetails}, {logos, &r.Logos}} {
		if err := json.Unmarshal([]byte(f.raw), f.dst); err != nil {
			return twofold.ApprovalRequest{}, fmt.Errorf("approval request %s: %w", r.UUID, err)
		}
	}
	return r, nil
}

// CreateApprovalRequest inserts r unless the user already has maxPending live pending requests
// (then ErrTooMany). Counting and inserting happen in one write transaction, serialised per user.
func (s *Store) CreateApprovalRequest(ctx context.Context, r *twofold.ApprovalRequest, maxPending int) error {
	return s.tx(ctx, func(tx *Tx) error { return s.insertRequest(ctx, tx, r, maxPending) })
}

// insertRequest is CreateApprovalRequest in tx.
func (s *Store) insertRequest(ctx context.Context, tx *Tx, r *twofold.ApprovalRequest, maxPending int) error {
	details, _ := json.Marshal(r.Details)
	hidden, _ := json.Marshal(r.HiddenDetails)
	logos, _ := json.Marshal(r.Logos)
	if err := s.lockUser(ctx, tx, r.AppID, r.UserID); err != nil {
		return err
	}
	if maxPending > 0 {
		// The user's live pending requests, read from the index approval_requests_by_user_status
		// alone (migration 00033). No LIMIT: SQLite prepares a statement with a bound LIMIT
		// again at every run.
		var n int
		err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM approval_requests WHERE user_id = `+userKey("$3", "$1")+`
			AND status = 'pending' AND (expires_at = 0 OR expires_at > $2)`, r.UserID, unix(r.CreatedAt), r.AppID).Scan(&n)
		if err != nil {
			return err
		}
		if n >= maxPending {
			return ErrTooMany
		}
	}
	return tx.QueryRowContext(ctx, `INSERT INTO approval_requests (uuid, app_id, user_id, message, details, hidden_details,
		logos, number, seconds_to_expire, status, created_at, updated_at, expires_at, group_id, approver_name)
		VALUES ($1, $2, `+userKey("$2", "$3")+`, $4, $5, $6, $7, $8, $9, $10, $11, $11, $12, $13, $14) RETURNING id`,
		r.UUID, r.AppID, r.UserID, r.Message, string(details), string(hidden), string(logos), r.Number,
		r.SecondsToExpire, string(r.Status), unix(r.CreatedAt), unix(r.ExpiresAt), r.GroupID, r.ApproverName).Scan(&r.ID)
}

// GetApprovalRequest returns the application's request with uuid.
func (s *Store) GetApprovalRequest(ctx context.Context, appID int64, uuid string) (twofold.ApprovalRequest, error) {
	return scanRequest(s.r.QueryRowContext(ctx, `SELECT `+requestColumns+` FROM approval_requests WHERE uuid = $1 AND app_id = $2`, uuid, appID))
}

// ListApprovalRequests returns a user's requests with status ("" for all), newest first.
func (s *Store) ListApprovalRequests(ctx context.Context, appID, userID int64, status twofold.ApprovalStatus, limit int) ([]twofold.ApprovalRequest, error) {
	out, err := queryAll(ctx, s.r, scanRequest, `SELECT `+requestColumns+` FROM approval_requests
		WHERE app_id = $1 AND user_id = `+userKey("$1", "$2")+` AND ($3 = '' OR status = $3) ORDER BY id DESC LIMIT $4`,
		appID, userID, string(status), limit)
	if err != nil {
		return nil, fmt.Errorf("list approval requests: %w", err)
	}
	return out, nil
}

// ListApprovalRequestsSince returns a user's requests with ids above after (at most limit, the
// newest) and those of ids (whatever their id, if they are the user's), newest first: what a
// device's event stream must look at on a wake-up, the new requests and the ones it sent while
// pending. Both are index lookups (approval_requests_by_user_id, the primary key), so a user
// who left old requests pending costs a row each, not every request since.
func (s *Store) ListApprovalRequestsSince(ctx context.Context, appID, userID, after int64, ids []int64, limit int) ([]twofold.ApprovalRequest, error) {
	out, err := queryAll(ctx, s.r, scanRequest, `SELECT `+requestColumns+` FROM approval_requests
		WHERE app_id = $1 AND user_id = `+userKey("$1", "$2")+` AND id > $3 ORDER BY id DESC LIMIT $4`, appID, userID, after, limit)
	if err != nil {
		return nil, fmt.Errorf("list approval requests: %w", err)
	}
	if len(ids) == 0 {
		return out, nil
	}
	args := []any{appID, userID}
	in := make([]string, len(ids))
	for i, id := range ids {
		args = append(args, id)
		in[i] = "$" + strconv.Itoa(len(args))
	}
	watched, err := queryAll(ctx, s.r, scanRequest, `SELECT `+requestColumns+` FROM approval_requests
		WHERE id IN (`+strings.Join(in, ", ")+`) AND app_id = $1 AND user_id = `+userKey("$1", "$2"), args...)
	if err != nil {
		return nil, fmt.Errorf("list approval requests: %w", err)
	}
	for _, r := range watched {
		if !slices.ContainsFunc(out, func(x twofold.ApprovalRequest) bool { return x.ID == r.ID }) {
			out = append(out, r)
		}
	}
	slices.SortFunc(out, func(a, b twofold.ApprovalRequest) int { return cmp.Compare(b.ID, a.ID) })
	return out, nil
}

// MarkNotified records that a device has seen the requests.
func (s *Store) MarkNotified(ctx context.Context, ids []int64) error {
	for _, id := range ids {
		if _, err := s.w.ExecContext(ctx, `UPDATE approval_requests SET notified = 1 WHERE id = $1 AND notified = 0`, id); err != nil {
			return fmt.Errorf("mark notified: %w", err)
		}
	}
	return nil
}

// FinishApprovalRequest moves request r.ID from pending to r.Status (with r.Reason, r.DeviceID,
// r.Signature, at r.ProcessedAt) if it is still pending and, for an answer, not expired: the
// first change wins and is final. When it wins, cb (if not nil) is queued and the audit entries
// appended in the same transaction, so a change is never recorded without its callback nor
// without its audit entries, and it waits for one commit. A change that loses appends nothing.
func (s *Store) FinishApprovalRequest(ctx context.Context, r twofold.ApprovalRequest, cb *twofold.Callback, audit ...twofold.AuditEntry) (bool, error) {
	won := false
	err := s.auditedTx(ctx, len(audit) > 0, func(tx *Tx) error {
		var err error
		if won, err = finishRequest(ctx, tx, r); err != nil || !won {
			return err
		}
		if cb != nil {
			if err := insertCallback(ctx, tx, cb, r.ProcessedAt); err != nil {
				return err
			}
		}
		return s.auditEntries(ctx, tx, audit)
	})
	if err != nil {
		return false, fmt.Errorf("finish approval request %d: %w", r.ID, err)
	}
	return won, nil
}

// auditedTx runs fn in a write transaction: chained (decision.go) when it may append to the
// audit trail, a plain one otherwise, which on PostgreSQL need not wait for the trail's lock.
func (s *Store) auditedTx(ctx context.Context, audited bool, fn func(*Tx) error) error {
	if audited {
		return s.chained(ctx, fn)
	}
	return s.tx(ctx, fn)
}

// finishRequest is FinishApprovalRequest's change of the request's row, in tx.
func finishRequest(ctx context.Context, tx *Tx, r twofold.ApprovalRequest) (bool, error) {
	// Answers must come before expiry; expiry must come after it.
	cond := `(expires_at = 0 OR expires_at > $5)`
	if r.Status == twofold.Expired {
		cond = `(expires_at <> 0 AND expires_at <= $5)`
	}
	res, err := tx.ExecContext(ctx, `UPDATE approval_requests SET status = $1, reason = $2, device_id = $3, signature = $4,
		processed_at = $5, updated_at = $5 WHERE id = $6 AND status = 'pending' AND `+cond,
		string(r.Status), r.Reason, r.DeviceID, r.Signature, unix(r.ProcessedAt), r.ID)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// insertCallback queues cb in tx, due at at. When cb.NextAttemptAt is after at, the caller has
// a worker waiting to deliver it as soon as tx commits (callback.Dispatcher.Reserve): it is
// inserted leased until then, as ClaimDueCallbacks would lease it, if a claim could take it now
// (its application's callbacks are enabled; due at at otherwise). A process that dies before
// delivering it leaves it to the claims after the lease, as a claimed one. cb.ID and
// cb.NextAttemptAt are set to the row's: the caller delivers cb only if it is after at.
func insertCallback(ctx context.Context, tx *Tx, cb *twofold.Callback, at time.Time) error {
	if unix(cb.NextAttemptAt) <= unix(at) {
		cb.NextAttemptAt = fromUnix(unix(at))
		return tx.QueryRowContext(ctx, `INSERT INTO callbacks (app_id, request_uuid, payload, status, next_attempt_at, created_at)
			VALUES ($1, $2, $3, 'pending', $4, $4) RETURNING id`, cb.AppID, cb.RequestUUID, string(cb.Payload), unix(at)).Scan(&cb.ID)
	}
	var next int64
	err := tx.QueryRowContext(ctx, `INSERT INTO callbacks (app_id, request_uuid, payload, status, next_attempt_at, created_at)
		SELECT id, $2, $3, 'pending', CASE WHEN callback_disabled_at = 0 THEN CAST($4 AS BIGINT) ELSE CAST($5 AS BIGINT) END,
		CAST($5 AS BIGINT) FROM apps WHERE id = $1 RETURNING id, next_attempt_at`,
		cb.AppID, cb.RequestUUID, string(cb.Payload), unix(cb.NextAttemptAt), unix(at)).Scan(&cb.ID, &next)
	cb.NextAttemptAt = fromUnix(next)
	return err
}

// DueExpiries returns pending requests whose time has passed.
func (s *Store) DueExpiries(ctx context.Context, now time.Time, limit int) ([]twofold.ApprovalRequest, error) {
	out, err := queryAll(ctx, s.r, scanRequest, `SELECT `+requestColumns+` FROM approval_requests
		WHERE status = 'pending' AND expires_at <> 0 AND expires_at <= $1 ORDER BY expires_at LIMIT $2`, unix(now), limit)
	if err != nil {
		return nil, fmt.Errorf("due expiries: %w", err)
	}
	return out, nil
}

// CloseApprovalRequest ends the application's pending request id at the time at, before its
// time: it becomes expired, now (expires_at is set to at), with reason. It reports whether it
// won: false when the request is not the application's or is no longer pending (answered, or
// expired or closed before). No callback is queued: the application closed it itself. When it
// wins, the audit entries are appended in the same transaction; a close that loses appends none.
func (s *Store) CloseApprovalRequest(ctx context.Context, appID, id int64, reason string, at time.Time, audit ...twofold.AuditEntry) (bool, error) {
	won := false
	close := func(ctx context.Context, q writeExecer) error {
		res, err := q.ExecContext(ctx, `UPDATE approval_requests SET status = $1, reason = $2, expires_at = $3,
			processed_at = $3, updated_at = $3 WHERE id = $4 AND app_id = $5 AND status = 'pending'`,
			string(twofold.Expired), reason, unix(at), id, appID)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		won = n == 1
		return err
	}
	var err error
	if len(audit) == 0 {
		err = close(ctx, s.w) // one statement: no transaction of its own needed
	} else {
		err = s.chained(ctx, func(tx *Tx) error {
			if err := close(ctx, tx); err != nil || !won {
				return err
			}
			return s.auditEntries(ctx, tx, audit)
		})
	}
	if err != nil {
		return false, fmt.Errorf("close approval request %d: %w", id, err)
	}
	return won, nil
}
