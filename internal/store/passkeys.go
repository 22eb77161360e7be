package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/twofold-auth/twofold/internal/twofold"
)

// Passkeys (migration 00032): each user's WebAuthn user handle, their credential records, and
// the ceremonies begun and not yet finished. Users are named by their public id, as everywhere
// outside the store; rows hold the internal id.

// PasskeyHandle returns the user's WebAuthn user handle, storing handle as it when the user has
// none yet (two callers racing both get the one stored). An unknown user is ErrNotFound.
func (s *Store) PasskeyHandle(ctx context.Context, appID, userID int64, handle []byte) ([]byte, error) {
	var out []byte
	err := s.tx1(ctx, func(tx *Tx) error {
		err := tx.QueryRowContext(ctx, `SELECT h.handle FROM passkey_handles h JOIN users u ON u.id = h.user_id
			WHERE u.app_id = $1 AND u.public_id = $2`, appID, userID).Scan(&out)
		if err == nil {
			return nil
		}
		if !errors.Is(notFound(err), twofold.ErrNotFound) {
			return err
		}
		err = tx.QueryRowContext(ctx, `INSERT INTO passkey_handles (user_id, app_id, handle)
			SELECT id, app_id, $3 FROM users WHERE app_id = $1 AND public_id = $2
			ON CONFLICT (user_id) DO UPDATE SET handle = passkey_handles.handle RETURNING handle`,
			appID, userID, handle).Scan(&out)
		return notFound(err)
	})
	if err != nil && !errors.Is(err, twofold.ErrNotFound) {
		return nil, fmt.Errorf("passkey handle: %w", err)
	}
	return out, err
}

// UserByPasskeyHandle returns the public id of the application's user with handle.
func (s *Store) UserByPasskeyHandle(ctx context.Context, appID int64, handle []byte) (int64, error) {
	var id int64
	err := s.r.QueryRowContext(ctx, `SELECT u.public_id FROM passkey_handles h JOIN users u ON u.id = h.user_id
		WHERE h.app_id = $1 AND h.handle = $2`, appID, handle).Scan(&id)
	return id, notFound(err)
}

// InsertPasskeyCeremony stores c, and drops ceremonies that expired a while ago.
func (s *Store) InsertPasskeyCeremony(ctx context.Context, c twofold.PasskeyCeremony) error {
	err := s.tx(ctx, func(tx *Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM passkey_ceremonies WHERE expires_at < $1`,
			unix(c.CreatedAt.Add(-time.Hour))); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO passkey_ceremonies (id, app_id, user_id, kind, session, name, created_at, expires_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`, c.ID, c.AppID, c.UserID, c.Kind, c.Session, c.Name,
			unix(c.CreatedAt), unix(c.ExpiresAt))
		return err
	})
	if isUniqueViolation(err) {
		return twofold.ErrConflict
	}
	if err != nil {
		return fmt.Errorf("insert passkey ceremony: %w", err)
	}
	return nil
}

// ConsumePasskeyCeremony finishes the application's ceremony id of kind: one compare-and-set,
// so of any number of callers at once exactly one gets it. A ceremony unknown, of another
// application or kind, expired at now, or finished before is ErrNotFound.
func (s *Store) ConsumePasskeyCeremony(ctx context.Context, appID int64, id, kind string, now time.Time) (twofold.PasskeyCeremony, error) {
	c := twofold.PasskeyCeremony{ID: id, AppID: appID, Kind: kind}
	var created, expires int64
	err := s.w.QueryRowContext(ctx, `UPDATE passkey_ceremonies SET used_at = $4
		WHERE id = $1 AND app_id = $2 AND kind = $3 AND used_at = 0 AND expires_at > $4
		RETURNING user_id, session, name, created_at, expires_at`, id, appID, kind, unix(now)).
		Scan(&c.UserID, &c.Session, &c.Name, &created, &expires)
	if err != nil {
		if err = notFound(err); errors.Is(err, twofold.ErrNotFound) {
			return twofold.PasskeyCeremony{}, err
		}
		return twofold.PasskeyCeremony{}, fmt.Errorf("consume passkey ceremony: %w", err)
	}
	c.CreatedAt, c.ExpiresAt = fromUnix(created), fromUnix(expires)
	return c, nil
}

const passkeyColumns = `p.id, p.public_id, p.app_id, u.public_id, p.name, p.credential_id, p.public_key, p.sign_count,
	p.backup_eligible, p.backup_state, p.transports, p.aaguid, p.attestation_format, p.created_at, p.last_used_at`

const passkeyFrom = ` FROM passkeys p JOIN users u ON u.id = p.user_id `

func scanPasskey(row rowScanner) (twofold.Passkey, error) {
	var p twofold.Passkey
	var count, created, used int64
	var be, bs int
	var transports string
	if err := row.Scan(&p.ID, &p.PublicID, &p.AppID, &p.UserID, &p.Name, &p.CredentialID, &p.PublicKey, &count,
		&be, &bs, &transports, &p.AAGUID, &p.AttestationFormat, &created, &used); err != nil {
		return twofold.Passkey{}, notFound(err)
	}
	p.SignCount, p.BackupEligible, p.BackupState = uint32(count), be == 1, bs == 1
	p.Transports = strings.Fields(transports)
	p.CreatedAt, p.LastUsedAt = fromUnix(created), fromUnix(used)
	return p, nil
}

// InsertPasskey stores p for its user (p.UserID, a public id), setting p.ID, unless the user
// already holds max passkeys (ErrTooMany). A credential id the application has already is
// ErrConflict; an unknown user is ErrNotFound.
func (s *Store) InsertPasskey(ctx context.Context, p *twofold.Passkey, max int) error {
	err := s.tx(ctx, func(tx *Tx) error {
		var internal int64
		if err := tx.QueryRowContext(ctx, `SELECT id FROM users WHERE app_id = $1 AND public_id = $2`, p.AppID, p.UserID).
			Scan(&internal); err != nil {
			return notFound(err)
		}
		if err := s.lockRow(ctx, tx, "users", internal); err != nil {
			return err
		}
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM passkeys WHERE user_id = $1`, internal).Scan(&n); err != nil {
			return err
		}
		if n >= max {
			return twofold.ErrTooMany
		}
		return tx.QueryRowContext(ctx, `INSERT INTO passkeys (public_id, app_id, user_id, name, credential_id, public_key,
			sign_count, backup_eligible, backup_state, transports, aaguid, attestation_format, created_at, last_used_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) RETURNING id`,
			p.PublicID, p.AppID, internal, p.Name, p.CredentialID, p.PublicKey, int64(p.SignCount), b2i(p.BackupEligible),
			b2i(p.BackupState), strings.Join(p.Transports, " "), nonNil(p.AAGUID), p.AttestationFormat, unix(p.CreatedAt),
			unix(p.LastUsedAt)).Scan(&p.ID)
	})
	switch {
	case isUniqueViolation(err):
		return twofold.ErrConflict
	case errors.Is(err, twofold.ErrNotFound), errors.Is(err, twofold.ErrTooMany):
		return err
	case err != nil:
		return fmt.Errorf("insert passkey: %w", err)
	}
	return nil
}

// ListPasskeys returns the user's passkeys, oldest first.
func (s *Store) ListPasskeys(ctx context.Context, appID, userID int64) ([]twofold.Passkey, error) {
	out, err := queryAll(ctx, s.r, scanPasskey, `SELECT `+passkeyColumns+passkeyFrom+`WHERE u.app_id = $1 AND u.public_id = $2
		ORDER BY p.id`, appID, userID)
	if err != nil {
		return nil, fmt.Errorf("list passkeys: %w", err)
	}
	return out, nil
}

// PasskeyByCredentialID returns the application's passkey with the credential id.
func (s *Store) PasskeyByCredentialID(ctx context.Context, appID int64, credentialID []byte) (twofold.Passkey, error) {
	return scanPasskey(s.r.QueryRowContext(ctx, `SELECT `+passkeyColumns+passkeyFrom+`WHERE p.app_id = $1 AND p.credential_id = $2`,
		appID, credentialID))
}

// UsePasskey records a use of the application's passkey id with the sign count its
// authenticator presented: a compare-and-set that moves the stored count only forward (or keeps
// it at zero when the authenticator keeps none). false: the stored count is already at or past
// count (a replayed or cloned authenticator) or the passkey is gone.
func (s *Store) UsePasskey(ctx context.Context, appID, id int64, count uint32, backupState bool, now time.Time) (bool, error) {
	res, err := s.w.ExecContext(ctx, `UPDATE passkeys SET sign_count = $3, backup_state = $4, last_used_at = $5
		WHERE id = $1 AND app_id = $2 AND (sign_count < $3 OR (sign_count = 0 AND $3 = 0))`,
		id, appID, int64(count), b2i(backupState), unix(now))
	if err != nil {
		return false, fmt.Errorf("use passkey %d: %w", id, err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// DeletePasskey removes the user's passkey with publicID and returns it.
func (s *Store) DeletePasskey(ctx context.Context, appID, userID int64, publicID string) (twofold.Passkey, error) {
	var p twofold.Passkey
	err := s.tx1(ctx, func(tx *Tx) error {
		var err error
		p, err = scanPasskey(tx.QueryRowContext(ctx, `SELECT `+passkeyColumns+passkeyFrom+`WHERE u.app_id = $1 AND u.public_id = $2
			AND p.public_id = $3`, appID, userID, publicID))
		if err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM passkeys WHERE id = $1`, p.ID)
		if err != nil {
			return err
		}
		return mustAffect(res)
	})
	if err != nil && !errors.Is(err, twofold.ErrNotFound) {
		return twofold.Passkey{}, fmt.Errorf("delete passkey: %w", err)
	}
	return p, err
}
