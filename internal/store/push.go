package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/twofold-auth/twofold/internal/twofold"
)

// PushSubscription is where a device wants to be woken when it is not connected: a browser's
// Web Push subscription, or an ntfy topic URL (P256dh and Auth empty).
type PushSubscription struct {
	ID        int64
	AppID     int64
	DeviceID  int64
	Kind      string // "webpush" or "ntfy"
	Endpoint  string
	P256dh    string // base64url, uncompressed P-256 point (Web Push only)
	Auth      string // base64url, 16 bytes (Web Push only)
	CreatedAt time.Time
	LastError string
	Failures  int // deliveries failed in a row
}

// ServerKey is a key pair the server made for itself, such as its VAPID key.
type ServerKey struct {
	Name          string
	PublicKey     []byte
	PrivateSealed []byte
	CreatedAt     time.Time
}

const pushColumns = `s.id, s.app_id, s.device_id, s.kind, s.endpoint, s.p256dh, s.auth, s.created_at, s.last_error, s.failures`

func scanPushSubscription(row rowScanner) (PushSubscription, error) {
	var p PushSubscription
	var created int64
	err := row.Scan(&p.ID, &p.AppID, &p.DeviceID, &p.Kind, &p.Endpoint, &p.P256dh, &p.Auth, &created, &p.LastError, &p.Failures)
	if err != nil {
		return PushSubscription{}, notFound(err)
	}
	p.CreatedAt = fromUnix(created)
	return p, nil
}

// UpsertPushSubscription saves p for its device. The same endpoint for the same device replaces
// the earlier subscription (new keys, failures cleared) and keeps its id. A device may hold at
// most maxPerDevice subscriptions: a new endpoint beyond that is twofold.ErrConflict. It sets
// p's ID.
func (s *Store) UpsertPushSubscription(ctx context.Context, p *PushSubscription, maxPerDevice int) error {
	return s.tx(ctx, func(tx *Tx) error {
		if err := s.lockRow(ctx, tx, "devices", p.DeviceID); err != nil {
			return err
		}
		var others int
		err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM push_subscriptions WHERE device_id = $1 AND endpoint <> $2`,
			p.DeviceID, p.Endpoint).Scan(&others)
		if err != nil {
			return fmt.Errorf("count push subscriptions: %w", err)
		}
		if others >= maxPerDevice {
			return twofold.ErrConflict
		}
		err = tx.QueryRowContext(ctx, `INSERT INTO push_subscriptions (app_id, device_id, kind, endpoint, p256dh, auth, created_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7)
			ON CONFLICT (device_id, endpoint) DO UPDATE SET kind = excluded.kind, p256dh = excluded.p256dh,
				auth = excluded.auth, last_error = '', failures = 0
			RETURNING id`, p.AppID, p.DeviceID, p.Kind, p.Endpoint, p.P256dh, p.Auth, unix(p.CreatedAt)).Scan(&p.ID)
		if err != nil {
			return fmt.Errorf("upsert push subscription: %w", err)
		}
		return nil
	})
}

// PushSubscriptionsForUser returns the subscriptions of every device of the user, oldest first.
func (s *Store) PushSubscriptionsForUser(ctx context.Context, appID, userID int64) ([]PushSubscription, error) {
	out, err := queryAll(ctx, s.r, scanPushSubscription, `SELECT `+pushColumns+` FROM push_subscriptions s
		JOIN devices d ON d.id = s.device_id WHERE d.app_id = $1 AND d.user_id = `+userKey("$1", "$2")+` ORDER BY s.id`, appID, userID)
	if err != nil {
		return nil, fmt.Errorf("list push subscriptions: %w", err)
	}
	return out, nil
}

// DeletePushSubscription removes the device's subscription to endpoint; none is ErrNotFound.
func (s *Store) DeletePushSubscription(ctx context.Context, deviceID int64, endpoint string) error {
	res, err := s.w.ExecContext(ctx, `DELETE FROM push_subscriptions WHERE device_id = $1 AND endpoint = $2`, deviceID, endpoint)
	if err != nil {
		return fmt.Errorf("delete push subscription: %w", err)
	}
	return mustAffect(res)
}

// RecordPushFailure counts a failed delivery to subscription id and keeps its error; it returns
// the failures in a row so far (0 when the subscription is gone).
func (s *Store) RecordPushFailure(ctx context.Context, id int64, lastError string) (int, error) {
	var n int
	err := s.w.QueryRowContext(ctx, `UPDATE push_subscriptions SET failures = failures + 1, last_error = $1
		WHERE id = $2 RETURNING failures`, lastError, id).Scan(&n)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("record push failure: %w", err)
	}
	return n, nil
}

// RecordPushSuccess clears subscription id's failures; it writes only when there were some.
func (s *Store) RecordPushSuccess(ctx context.Context, id int64) error {
	_, err := s.w.ExecContext(ctx, `UPDATE push_subscriptions SET failures = 0, last_error = '' WHERE id = $1 AND failures > 0`, id)
	if err != nil {
		return fmt.Errorf("record push success: %w", err)
	}
	return nil
}

// ServerKeyOrCreate returns the server key named k.Name, storing k first if there is none: of
// several processes starting at once, the first insert wins and every one reads back that key.
func (s *Store) ServerKeyOrCreate(ctx context.Context, k ServerKey) (ServerKey, error) {
	_, err := s.w.ExecContext(ctx, `INSERT INTO server_keys (name, public_key, private_sealed, created_at)
		VALUES ($1, $2, $3, $4) ON CONFLICT (name) DO NOTHING`, k.Name, k.PublicKey, k.PrivateSealed, unix(k.CreatedAt))
	if err != nil {
		return ServerKey{}, fmt.Errorf("insert server key %s: %w", k.Name, err)
	}
	var out ServerKey
	var created int64
	// Read from the writer: a reader could lag behind the insert that just won.
	err = s.w.QueryRowContext(ctx, `SELECT name, public_key, private_sealed, created_at FROM server_keys WHERE name = $1`, k.Name).
		Scan(&out.Name, &out.PublicKey, &out.PrivateSealed, &created)
	if err != nil {
		return ServerKey{}, fmt.Errorf("read server key %s: %w", k.Name, notFound(err))
	}
	out.CreatedAt = fromUnix(created)
	return out, nil
}

// ServerKeysNamed returns the server keys whose names start with prefix, oldest first (by
// created_at, then name).
func (s *Store) ServerKeysNamed(ctx context.Context, prefix string) ([]ServerKey, error) {
	out, err := queryAll(ctx, s.r, func(r rowScanner) (ServerKey, error) {
		var k ServerKey
		var created int64
		err := r.Scan(&k.Name, &k.PublicKey, &k.PrivateSealed, &created)
		k.CreatedAt = fromUnix(created)
		return k, err
	}, `SELECT name, public_key, private_sealed, created_at FROM server_keys
		WHERE substr(name, 1, length($1)) = $1 ORDER BY created_at, name`, prefix)
	if err != nil {
		return nil, fmt.Errorf("server keys %s*: %w", prefix, err)
	}
	return out, nil
}
