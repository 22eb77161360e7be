package store

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/twofold-auth/twofold/internal/twofold"
)

// Verify webhooks (migration 00030): a service's subscriptions to factor and challenge events,
// found by their public id within the service. An event is queued in the callbacks outbox, one
// row per webhook that wants it, marked with the webhook's row id.

const verifyWebhookColumns = `id, public_id, app_id, service_id, name, url, event_types, status, version, created_at, updated_at`

func scanVerifyWebhook(row rowScanner) (twofold.VerifyWebhook, error) {
	var w twofold.VerifyWebhook
	var events string
	var created, updated int64
	if err := row.Scan(&w.ID, &w.PublicID, &w.AppID, &w.ServiceID, &w.Name, &w.URL, &events, &w.Status, &w.Version,
		&created, &updated); err != nil {
		return twofold.VerifyWebhook{}, notFound(err)
	}
	w.EventTypes = strings.Fields(events)
	w.CreatedAt, w.UpdatedAt = fromUnix(created), fromUnix(updated)
	return w, nil
}

// CreateVerifyWebhook inserts w, setting its ID.
func (s *Store) CreateVerifyWebhook(ctx context.Context, w *twofold.VerifyWebhook) error {
	err := s.w.QueryRowContext(ctx, `INSERT INTO verify_webhooks (public_id, app_id, service_id, name, url, event_types, status,
		version, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id`,
		w.PublicID, w.AppID, w.ServiceID, w.Name, w.URL, strings.Join(w.EventTypes, " "), w.Status, w.Version,
		unix(w.CreatedAt), unix(w.UpdatedAt)).Scan(&w.ID)
	if isUniqueViolation(err) {
		return twofold.ErrConflict
	}
	if err != nil {
		return fmt.Errorf("create verify webhook: %w", err)
	}
	return nil
}

// GetVerifyWebhook returns the service's webhook with publicID, if the service is the
// application's.
func (s *Store) GetVerifyWebhook(ctx context.Context, appID, serviceID int64, publicID string) (twofold.VerifyWebhook, error) {
	return scanVerifyWebhook(s.r.QueryRowContext(ctx, `SELECT `+verifyWebhookColumns+` FROM verify_webhooks
		WHERE app_id = $1 AND service_id = $2 AND public_id = $3`, appID, serviceID, publicID))
}

// VerifyWebhookByID returns the webhook with row id (a delivery's Callback.WebhookID).
func (s *Store) VerifyWebhookByID(ctx context.Context, id int64) (twofold.VerifyWebhook, error) {
	return scanVerifyWebhook(s.r.QueryRowContext(ctx, `SELECT `+verifyWebhookColumns+` FROM verify_webhooks WHERE id = $1`, id))
}

// UpdateVerifyWebhook writes w's name, URL, events, status, version and update time.
func (s *Store) UpdateVerifyWebhook(ctx context.Context, w twofold.VerifyWebhook) error {
	res, err := s.w.ExecContext(ctx, `UPDATE verify_webhooks SET name = $1, url = $2, event_types = $3, status = $4, version = $5,
		updated_at = $6 WHERE id = $7 AND app_id = $8`, w.Name, w.URL, strings.Join(w.EventTypes, " "), w.Status, w.Version,
		unix(w.UpdatedAt), w.ID, w.AppID)
	if err != nil {
		return fmt.Errorf("update verify webhook: %w", err)
	}
	return mustAffect(res)
}

// DeleteVerifyWebhook removes the service's webhook with publicID; its deliveries not yet made
// are dropped when their turn comes.
func (s *Store) DeleteVerifyWebhook(ctx context.Context, appID, serviceID int64, publicID string) error {
	res, err := s.w.ExecContext(ctx, `DELETE FROM verify_webhooks WHERE app_id = $1 AND service_id = $2 AND public_id = $3`,
		appID, serviceID, publicID)
	if err != nil {
		return fmt.Errorf("delete verify webhook: %w", err)
	}
	return mustAffect(res)
}

// ListVerifyWebhooks returns up to limit of the service's webhooks, oldest first: those after
// the one with row id after when after > 0, else from the offset-th.
func (s *Store) ListVerifyWebhooks(ctx context.Context, appID, serviceID, after int64, offset, limit int) ([]twofold.VerifyWebhook, error) {
	list, err := queryAll(ctx, s.r, scanVerifyWebhook, `SELECT `+verifyWebhookColumns+` FROM verify_webhooks
		WHERE app_id = $1 AND service_id = $2 AND id > $3 ORDER BY id LIMIT $4 OFFSET $5`, appID, serviceID, after, limit, offset)
	if err != nil {
		return nil, fmt.Errorf("list verify webhooks: %w", err)
	}
	return list, nil
}

// QueueVerifyEvent queues, in one transaction, a delivery of payload (the event's form
// parameters as a JSON object) to each enabled webhook of the service that wants event, and
// returns how many were queued. eventID names the event in every delivery (RequestUUID).
func (s *Store) QueueVerifyEvent(ctx context.Context, appID, serviceID int64, event, eventID string, payload []byte, now time.Time) (int, error) {
	n := 0
	err := s.tx(ctx, func(tx *Tx) error {
		var err error
		n, err = queueVerifyEvent(ctx, tx, appID, serviceID, event, eventID, payload, now)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("queue verify event: %w", err)
	}
	return n, nil
}

// queueVerifyEvents queues each event inside tx: the store methods that commit a factor or
// challenge change queue the change's events in the same transaction, so that the change and its
// webhooks' deliveries are kept or lost together.
func queueVerifyEvents(ctx context.Context, tx *Tx, events []twofold.VerifyWebhookEvent) error {
	for _, e := range events {
		if _, err := queueVerifyEvent(ctx, tx, e.AppID, e.ServiceID, e.Event, e.EventID, e.Payload, e.At); err != nil {
			return fmt.Errorf("queue %s: %w", e.Event, err)
		}
	}
	return nil
}

// queueVerifyEvent is QueueVerifyEvent inside tx.
func queueVerifyEvent(ctx context.Context, tx *Tx, appID, serviceID int64, event, eventID string, payload []byte, now time.Time) (int, error) {
	hooks, err := queryAll(ctx, tx, scanVerifyWebhook, `SELECT `+verifyWebhookColumns+` FROM verify_webhooks
		WHERE app_id = $1 AND service_id = $2 AND status = 'enabled' ORDER BY id`, appID, serviceID)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, w := range hooks {
		if !w.Wants(event) {
			continue
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO callbacks (app_id, request_uuid, payload, status, next_attempt_at,
			created_at, webhook_id) VALUES ($1, $2, $3, 'pending', $4, $4, $5)`, appID, eventID, string(payload), unix(now), w.ID); err != nil {
			return 0, err
		}
		n++
	}
	return n, nil
}

// WebhookDeliveryFailed records a failed delivery to a Verify webhook and schedules the next
// attempt. Unlike CallbackFailed it leaves the application's OneTouch callbacks alone.
func (s *Store) WebhookDeliveryFailed(ctx context.Context, c twofold.Callback, httpStatus int, msg string, next time.Time) error {
	_, err := s.w.ExecContext(ctx, `UPDATE callbacks SET attempts = attempts + 1, last_status = $1, last_error = $2,
		next_attempt_at = $3 WHERE id = $4`, httpStatus, msg, unix(next), c.ID)
	if err != nil {
		return fmt.Errorf("record webhook failure: %w", err)
	}
	return nil
}
