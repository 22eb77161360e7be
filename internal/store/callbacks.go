package store

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/twofold-auth/twofold/internal/twofold"
)

const callbackColumns = `c.id, c.app_id, c.request_uuid, c.payload, c.status, c.attempts, c.next_attempt_at, c.last_error,
	c.last_status, c.created_at, c.delivered_at, c.webhook_id`

func scanCallback(row rowScanner) (twofold.Callback, error) {
	var c twofold.Callback
	var payload string
	var next, created, delivered int64
	err := row.Scan(&c.ID, &c.AppID, &c.RequestUUID, &payload, &c.Status, &c.Attempts, &next, &c.LastError,
		&c.LastStatus, &created, &delivered, &c.WebhookID)
	if err != nil {
		return twofold.Callback{}, notFound(err)
	}
	c.Payload = []byte(payload)
	c.NextAttemptAt, c.CreatedAt, c.DeliveredAt = fromUnix(next), fromUnix(created), fromUnix(delivered)
	return c, nil
}

// dueCallback is the condition on callbacks c joined with apps a of a callback due at $1. A
// Verify webhook's delivery does not wait for the application's OneTouch callbacks to be
// re-enabled: it has its own URL.
const dueCallback = `c.status = 'pending' AND c.next_attempt_at <= $1 AND (a.callback_disabled_at = 0 OR c.webhook_id <> 0)`

func (s *Store) listCallbacks(ctx context.Context, q string, args ...any) ([]twofold.Callback, error) {
	out, err := queryAll(ctx, s.r, scanCallback, q, args...)
	if err != nil {
		return nil, fmt.Errorf("callbacks: %w", err)
	}
	return out, nil
}

// RecentCallbacks returns the application's newest callbacks, newest first.
func (s *Store) RecentCallbacks(ctx context.Context, appID int64, limit int) ([]twofold.Callback, error) {
	return s.listCallbacks(ctx, `SELECT `+callbackColumns+` FROM callbacks c WHERE c.app_id = $1 ORDER BY c.id DESC LIMIT $2`, appID, limit)
}

// ClaimDueCallbacks leases up to n callbacks that are due at now (pending, next attempt not
// after now, of an application whose callbacks are enabled), those due soonest first, until
// leaseUntil, and returns them by id with the lease as their NextAttemptAt. Nobody else claims
// them until the lease runs out, so a delivery that dies with its process is retried then.
//
// On PostgreSQL the rows are chosen with FOR UPDATE SKIP LOCKED: instances claiming at once
// take different callbacks instead of queueing behind each other's locks, and a row another
// claim has just leased is re-checked and left out. On SQLite the single writer serialises
// claims.
func (s *Store) ClaimDueCallbacks(ctx context.Context, now, leaseUntil time.Time, n int) ([]twofold.Callback, error) {
	if n <= 0 {
		return nil, nil
	}
	lock := ""
	if s.pg {
		lock = " FOR UPDATE OF c SKIP LOCKED"
	}
	// A materialised CTE is evaluated once, so its LIMIT bounds the rows updated whatever plan
	// the UPDATE gets (a subquery with SKIP LOCKED that were scanned again could pick others).
	q := `WITH due AS MATERIALIZED (SELECT c.id FROM callbacks c JOIN apps a ON a.id = c.app_id
		WHERE ` + dueCallback + ` ORDER BY c.next_attempt_at, c.id LIMIT $3` + lock + `)
		UPDATE callbacks SET next_attempt_at = $2 WHERE id IN (SELECT id FROM due)
		RETURNING ` + strings.ReplaceAll(callbackColumns, "c.", "") // SQLite's RETURNING takes no table names
	args := []any{unix(now), unix(leaseUntil), n}
	var out []twofold.Callback
	var err error
	if s.pg {
		out, err = queryAll(ctx, s.r, scanCallback, q, args...)
	} else {
		err = s.tx(ctx, func(tx *Tx) error {
			out, err = queryAll(ctx, tx, scanCallback, q, args...)
			return err
		})
	}
	if err != nil {
		return nil, fmt.Errorf("claim due callbacks: %w", err)
	}
	slices.SortFunc(out, func(a, b twofold.Callback) int { return cmp.Compare(a.ID, b.ID) })
	return out, nil
}

// CallbackDelivered records a successful delivery and clears the application's failure count.
func (s *Store) CallbackDelivered(ctx context.Context, c twofold.Callback, httpStatus int, now time.Time) error {
	return s.tx(ctx, func(tx *Tx) error {
		if _, err := tx.ExecContext(ctx, `UPDATE callbacks SET status = 'delivered', attempts = attempts + 1, last_status = $1,
			last_error = '', delivered_at = $2 WHERE id = $3`, httpStatus, unix(now), c.ID); err != nil {
			return err
		}
		if c.WebhookID != 0 {
			return nil // a Verify webhook's delivery says nothing of the OneTouch callback URL
		}
		// Most deliveries follow deliveries: write the application's row only when there is a
		// failure to forget, so that a delivery does not count as a change of the application.
		_, err := tx.ExecContext(ctx, `UPDATE apps SET callback_failures = 0, callback_last_error = ''
			WHERE id = $1 AND (callback_failures <> 0 OR callback_last_error <> '')`, c.AppID)
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
