package store

import (
	"context"
	"fmt"
	"time"

	"github.com/twofold-auth/twofold/internal/twofold"
)

const callbackColumns = `c.id, c.app_id, c.request_uuid, c.payload, c.status, c.attempts, c.next_attempt_at, c.last_error,
	c.last_status, c.created_at, c.delivered_at`

func scanCallback(row rowScanner) (twofold.Callback, error) {
	var c twofold.Callback
	var payload string
	var next, created, delivered int64
	err := row.Scan(&c.ID, &c.AppID, &c.RequestUUID, &payload, &c.Status, &c.Attempts, &next, &c.LastError,
		&c.LastStatus, &created, &delivered)
	if err != nil {
		return twofold.Callback{}, notFound(err)
	}
	c.Payload = []byte(payload)
	c.NextAttemptAt, c.CreatedAt, c.DeliveredAt = fromUnix(next), fromUnix(created), fromUnix(delivered)
	return c, nil
}

func (s *Store) listCallbacks(ctx context.Context, q string, args ...any) ([]twofold.Callback, error) {
	out, err := queryAll(ctx, s.r, scanCallback, q, args...)
	if err != nil {
		return nil, fmt.Errorf("callbacks: %w", err)
	}
	return out, nil
}

// DueCallbacks returns pending callbacks whose time has come, of applications whose callbacks
// are enabled, oldest first.
func (s *Store) DueCallbacks(ctx context.Context, now time.Time, limit int) ([]twofold.Callback, error) {
	return s.listCallbacks(ctx, `SELECT `+callbackColumns+` FROM callbacks c JOIN apps a ON a.id = c.app_id
		WHERE c.status = 'pending' AND c.next_attempt_at <= $1 AND a.callback_disabled_at = 0
		ORDER BY c.next_attempt_at, c.id LIMIT $2`, unix(now), limit)
}

// RecentCallbacks returns the application's newest callbacks, newest first.
func (s *Store) RecentCallbacks(ctx context.Context, appID int64, limit int) ([]twofold.Callback, error) {
	return s.listCallbacks(ctx, `SELECT `+callbackColumns+` FROM callbacks c WHERE c.app_id = $1 ORDER BY c.id DESC LIMIT $2`, appID, limit)
}

// ClaimCallback leases a due callback until leaseUntil, if nobody else has since: a delivery
// that dies with its process is retried once the lease runs out.
func (s *Store) ClaimCallback(ctx context.Context, c twofold.Callback, leaseUntil time.Time) (bool, error) {
	res, err := s.w.ExecContext(ctx, `UPDATE callbacks SET next_attempt_at = $1
		WHERE id = $2 AND status = 'pending' AND next_attempt_at = $3`, unix(leaseUntil), c.ID, unix(c.NextAttemptAt))
	if err != nil {
		return false, fmt.Errorf("claim callback %d: %w", c.ID, err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// CallbackDelivered records a successful delivery and clears the application's failure count.
func (s *Store) CallbackDelivered(ctx context.Context, c twofold.Callback, httpStatus int, now time.Time) error {
	return s.tx(ctx, func(tx *Tx) error {
		if _, err := tx.ExecContext(ctx, `UPDATE callbacks SET status = 'delivered', attempts = attempts + 1, last_status = $1,
			last_error = '', delivered_at = $2 WHERE id = $3`, httpStatus, unix(now), c.ID); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `UPDATE apps SET callback_failures = 0, callback_last_error = '' WHERE id = $1`, c.AppID)
		return err
	})
}

// CallbackFailed records a failed delivery, schedules the next attempt, and counts a consecutive
// failure for the application; at threshold failures its callbacks are disabled. disabledNow
// reports whether this failure disabled them.
func (s *Store) CallbackFailed(ctx context.Context, c twofold.Callback, httpStatus int, msg string, next, now time.Time, threshold int) (disabledNow bool, err error) {
	err = s.tx(ctx, func(tx *Tx) error {
		if _, err := tx.ExecContext(ctx, `UPDATE callbacks SET attempts = attempts + 1, last_status = $1, last_error = $2,
			next_attempt_at = $3 WHERE id = $4`, httpStatus, msg, unix(next), c.ID); err != nil {
			return err
		}
		var failures int
		var disabledAt int64
		if err := tx.QueryRowContext(ctx, `UPDATE apps SET callback_failures = callback_failures + 1, callback_last_error = $1
			WHERE id = $2 RETURNING callback_failures, callback_disabled_at`, msg, c.AppID).Scan(&failures, &disabledAt); err != nil {
			return err
		}
		if disabledAt == 0 && failures >= threshold {
			disabledNow = true
			_, err := tx.ExecContext(ctx, `UPDATE apps SET callback_disabled_at = $1 WHERE id = $2`, unix(now), c.AppID)
			return err
		}
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("record callback failure: %w", err)
	}
	return disabledNow, nil
}

// DropCallback gives up on a callback that can never be delivered (the application removed
// its callback URL).
func (s *Store) DropCallback(ctx context.Context, c twofold.Callback, reason string) error {
	_, err := s.w.ExecContext(ctx, `UPDATE callbacks SET status = 'dropped', last_error = $1 WHERE id = $2`, reason, c.ID)
	return err
}
