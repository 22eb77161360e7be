package store

import (
	"context"
	"fmt"
	"time"

	"github.com/twofold-auth/twofold/internal/twofold"
)

// InsertRegistrationToken stores a device registration token.
func (s *Store) InsertRegistrationToken(ctx context.Context, t twofold.RegistrationToken) error {
	_, err := s.w.ExecContext(ctx, `INSERT INTO registration_tokens (mac, app_id, user_id, expires_at) VALUES ($1, $2, `+userKey("$2", "$3")+`, $4)`,
		t.MAC, t.AppID, t.UserID, unix(t.ExpiresAt))
	if err != nil {
		return fmt.Errorf("insert registration token: %w", err)
	}
	return nil
}

// RegistrationTokenApp returns the application of an unused registration token.
func (s *Store) RegistrationTokenApp(ctx context.Context, mac []byte) (int64, error) {
	var appID int64
	err := s.r.QueryRowContext(ctx, `SELECT app_id FROM registration_tokens WHERE mac = $1 AND used_at IS NULL`, mac).Scan(&appID)
	return appID, notFound(err)
}

// ErrExpired is twofold.ErrExpired: a token that exists but whose time has passed.
var ErrExpired = twofold.ErrExpired

// RegisterDevice spends the registration token with mac and creates d for its user, in one
// transaction: a token registers one device, once. An unknown or used token is ErrNotFound, an
// expired one ErrExpired. It sets d's ID, AppID and UserID.
func (s *Store) RegisterDevice(ctx context.Context, mac []byte, now time.Time, d *twofold.Device) error {
	return s.tx(ctx, func(tx *Tx) error {
		var expires, key int64
		err := tx.QueryRowContext(ctx, `UPDATE registration_tokens SET used_at = $1
			WHERE mac = $2 AND used_at IS NULL RETURNING app_id, user_id, expires_at`, unix(now), mac).
			Scan(&d.AppID, &key, &expires)
		if err != nil {
			return notFound(err)
		}
		if expires <= unix(now) {
			return ErrExpired // the rollback leaves the token unused, and still expired
		}
		if err := tx.QueryRowContext(ctx, `SELECT public_id FROM users WHERE id = $1`, key).Scan(&d.UserID); err != nil {
			return notFound(err)
		}
		return tx.QueryRowContext(ctx, `INSERT INTO devices (app_id, user_id, public_key, token_mac, name, os_type,
			secret_sealed, digits, period, last_step, created_at, last_seen_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, -1, $10, $10) RETURNING id`,
			d.AppID, key, d.PublicKey, d.TokenMAC, d.Name, d.OSType, d.SecretSealed, d.Digits, d.Period, unix(now)).Scan(&d.ID)
	})
}

// deviceColumns read a device's user by public id (publicUserID), from a query on devices.
const deviceColumns = `id, app_id, (SELECT public_id FROM users WHERE id = devices.user_id), public_key, token_mac, name, os_type, secret_sealed, digits, period, last_step,
	created_at, last_seen_at`

func scanDevice(row rowScanner) (twofold.Device, error) {
	var d twofold.Device
	var created, seen int64
	err := row.Scan(&d.ID, &d.AppID, &d.UserID, &d.PublicKey, &d.TokenMAC, &d.Name, &d.OSType, &d.SecretSealed,
		&d.Digits, &d.Period, &d.LastStep, &created, &seen)
	if err != nil {
		return twofold.Device{}, notFound(err)
	}
	d.CreatedAt, d.LastSeenAt = fromUnix(created), fromUnix(seen)
	return d, nil
}

// DeviceByTokenMAC finds the device whose access token hashes to mac.
func (s *Store) DeviceByTokenMAC(ctx context.Context, mac []byte) (twofold.Device, error) {
	return scanDevice(s.r.QueryRowContext(ctx, `SELECT `+deviceColumns+` FROM devices WHERE token_mac = $1`, mac))
}

// GetDevice returns device id of the application.
func (s *Store) GetDevice(ctx context.Context, appID, id int64) (twofold.Device, error) {
	return scanDevice(s.r.QueryRowContext(ctx, `SELECT `+deviceColumns+` FROM devices WHERE id = $1 AND app_id = $2`, id, appID))
}

// ListDevices returns the user's devices, oldest first.
func (s *Store) ListDevices(ctx context.Context, appID, userID int64) ([]twofold.Device, error) {
	out, err := queryAll(ctx, s.r, scanDevice, `SELECT `+deviceColumns+` FROM devices WHERE app_id = $1 AND user_id = `+userKey("$1", "$2")+` ORDER BY id`, appID, userID)
	if err != nil {
		return nil, fmt.Errorf("list devices: %w", err)
	}
	return out, nil
}

// CodesWithoutSMS names what gives the user codes without a text message, in one read: the OS
// of the first device the user registered, else "authenticator" when the user has an
// authenticator app, else "".
func (s *Store) CodesWithoutSMS(ctx context.Context, appID, userID int64) (string, error) {
	var what string
	err := s.r.QueryRowContext(ctx, `SELECT COALESCE(
		(SELECT os_type FROM devices WHERE app_id = $1 AND user_id = `+userKey("$1", "$2")+` ORDER BY id LIMIT 1),
		(SELECT 'authenticator' FROM authenticators WHERE app_id = $1 AND user_id = `+userKey("$1", "$2")+`), '')`,
		appID, userID).Scan(&what)
	if err != nil {
		return "", fmt.Errorf("codes without SMS of user %d: %w", userID, err)
	}
	return what, nil
}

// UserReach reports whether the application's user userID has a registered device and whether
// any device of theirs has a push subscription, in one read that neither decodes the user's row
// nor any device's: creating an approval request needs to know no more (it pushes only to a
// user who has somewhere to be pushed). An unknown user is ErrNotFound.
func (s *Store) UserReach(ctx context.Context, appID, userID int64) (hasDevice, hasPush bool, err error) {
	err = s.r.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM devices d WHERE d.app_id = u.app_id AND d.user_id = u.id),
			EXISTS (SELECT 1 FROM devices d JOIN push_subscriptions p ON p.device_id = d.id
				WHERE d.app_id = u.app_id AND d.user_id = u.id)
		FROM users u WHERE u.public_id = $1 AND u.app_id = $2`, userID, appID).Scan(&hasDevice, &hasPush)
	if err != nil {
		return false, false, notFound(err)
	}
	return hasDevice, hasPush, nil
}

// DeleteDevice removes device id of the application.
func (s *Store) DeleteDevice(ctx context.Context, appID, id int64) error {
	res, err := s.w.ExecContext(ctx, `DELETE FROM devices WHERE id = $1 AND app_id = $2`, id, appID)
	if err != nil {
		return fmt.Errorf("delete device %d: %w", id, err)
	}
	return mustAffect(res)
}

// AdvanceDeviceStep is AdvanceStep for a device's seed: a compare-and-set of its newest step.
func (s *Store) AdvanceDeviceStep(ctx context.Context, deviceID, step int64) (bool, error) {
	return advanceDeviceStep(ctx, s.w, deviceID, step)
}

func advanceDeviceStep(ctx context.Context, ex writeExecer, deviceID, step int64) (bool, error) {
	res, err := ex.ExecContext(ctx, `UPDATE devices SET last_step = $1 WHERE id = $2 AND last_step < $1`, step, deviceID)
	if err != nil {
		return false, fmt.Errorf("advance device step: %w", err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// TouchDevice records that the device was seen, at most once a minute per device.
func (s *Store) TouchDevice(ctx context.Context, id int64, now time.Time) error {
	_, err := s.w.ExecContext(ctx, `UPDATE devices SET last_seen_at = $1 WHERE id = $2 AND last_seen_at < $3`,
		unix(now), id, unix(now)-60)
	return err
}

// RegisterDeviceOnce records the one-time credential with mac as spent and creates d for user
// userID of application appID, in one transaction; a credential spent before is ErrConflict. It
// is for credentials made outside Twofold (the customer's registration JWTs), which Twofold sees
// for the first time when they are used.
func (s *Store) RegisterDeviceOnce(ctx context.Context, mac []byte, appID, userID int64, expires, now time.Time, d *twofold.Device) error {
	return s.RegisterDeviceOnceMACs(ctx, [][]byte{mac}, appID, userID, expires, now, d)
}

// RemacDevice moves device id from token MAC old to mac with its seed re-sealed as sealed (its
// additional data names the MAC), in one compare-and-set: false when the device is gone or its
// MAC changed meanwhile. It is for master key rotation: only the device knows its token, so a
// device is re-MAC'd under a new key when it next authenticates.
func (s *Store) RemacDevice(ctx context.Context, id int64, old, mac, sealed []byte) (bool, error) {
	res, err := s.w.ExecContext(ctx, `UPDATE devices SET token_mac = $1, secret_sealed = $2 WHERE id = $3 AND token_mac = $4`,
		mac, sealed, id, old)
	if err != nil {
		return false, fmt.Errorf("re-MAC device %d: %w", id, err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}
