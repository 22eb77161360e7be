package store

import (
	"context"
	"fmt"
	"time"

	"github.com/twofold-auth/twofold/internal/twofold"
)

// InsertPhoneVerification stores a new verification and supersedes the earlier live ones of
// the same number: only the newest code sent works.
func (s *Store) InsertPhoneVerification(ctx context.Context, v *twofold.PhoneVerification) error {
	err := s.tx(ctx, func(tx *Tx) error {
		if err := s.lockKey(ctx, tx, "phone_verifications", v.AppID, v.Phone); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE phone_verifications SET superseded = 1
			WHERE app_id = $1 AND phone = $2 AND verified_at = 0 AND superseded = 0`, v.AppID, v.Phone); err != nil {
			return err
		}
		return tx.QueryRowContext(ctx, `INSERT INTO phone_verifications (uuid, app_id, phone, via, mac, created_at, expires_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id`,
			v.UUID, v.AppID, v.Phone, v.Via, v.MAC, unix(v.CreatedAt), unix(v.ExpiresAt)).Scan(&v.ID)
	})
	if err != nil {
		return fmt.Errorf("insert phone verification: %w", err)
	}
	return nil
}

func scanPhoneVerification(row rowScanner) (twofold.PhoneVerification, error) {
	var v twofold.PhoneVerification
	var superseded int
	var created, expires, verified int64
	err := row.Scan(&v.ID, &v.UUID, &v.AppID, &v.Phone, &v.Via, &v.MAC, &v.Attempts, &superseded, &created, &expires, &verified)
	if err != nil {
		return twofold.PhoneVerification{}, notFound(err)
	}
	v.Superseded = superseded == 1
	v.CreatedAt, v.ExpiresAt, v.VerifiedAt = fromUnix(created), fromUnix(expires), fromUnix(verified)
	return v, nil
}

const phoneVerificationColumns = `id, uuid, app_id, phone, via, mac, attempts, superseded, created_at, expires_at, verified_at`

// LatestPhoneVerification returns the newest verification of the number (by uuid when uuid is
// not ""), whatever its state.
func (s *Store) LatestPhoneVerification(ctx context.Context, appID int64, phone, uuid string) (twofold.PhoneVerification, error) {
	return scanPhoneVerification(s.r.QueryRowContext(ctx, `SELECT `+phoneVerificationColumns+` FROM phone_verifications
		WHERE app_id = $1 AND (($2 <> '' AND phone = $2) OR ($3 <> '' AND uuid = $3)) ORDER BY id DESC LIMIT 1`, appID, phone, uuid))
}

// ConsumePhoneVerification checks a code against the number's live verification in one write
// transaction: accepted once; a wrong code charges a try; after maxAttempts wrong tries the
// verification is dead. found is false when no live verification exists.
func (s *Store) ConsumePhoneVerification(ctx context.Context, appID int64, phone string, now time.Time, maxAttempts int,
	matches func(twofold.PhoneVerification) bool) (found, accepted bool, err error) {
	err = s.tx(ctx, func(tx *Tx) error {
		if err := s.lockKey(ctx, tx, "phone_verifications", appID, phone); err != nil {
			return err
		}
		v, err := scanPhoneVerification(tx.QueryRowContext(ctx, `SELECT `+phoneVerificationColumns+` FROM phone_verifications
			WHERE app_id = $1 AND phone = $2 AND superseded = 0 AND verified_at = 0 AND expires_at > $3 AND attempts < $4
			ORDER BY id DESC LIMIT 1`, appID, phone, unix(now), maxAttempts))
		if err == twofold.ErrNotFound {
			return nil
		}
		if err != nil {
			return err
		}
		found = true
		if matches(v) {
			accepted = true
			_, err = tx.ExecContext(ctx, `UPDATE phone_verifications SET verified_at = $1 WHERE id = $2`, unix(now), v.ID)
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE phone_verifications SET attempts = attempts + 1 WHERE id = $1`, v.ID)
		return err
	})
	if err != nil {
		return false, false, fmt.Errorf("check phone verification: %w", err)
	}
	return found, accepted, nil
}
