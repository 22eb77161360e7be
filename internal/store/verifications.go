package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/twofold-auth/twofold/internal/twofold"
)

// Verify verifications (migration 00027). Every change is one transaction that re-reads the
// verification's state: starts for one recipient take the recipient's lock (on PostgreSQL; the
// SQLite writer runs one transaction at a time anyway), and a check counts itself with a
// conditional UPDATE of the row before the code is compared, so parallel checks can neither
// pass the limit nor approve one verification twice.

const verificationColumns = `id, public_id, app_id, service_id, recipient, channel, status, code_mac, code_sealed, checks, sends,
	created_at, updated_at, expires_at`

func scanVerification(row rowScanner) (twofold.Verification, error) {
	var v twofold.Verification
	var sends string
	var created, updated, expires int64
	err := row.Scan(&v.ID, &v.PublicID, &v.AppID, &v.ServiceID, &v.To, &v.Channel, &v.Status, &v.CodeMAC, &v.CodeSealed,
		&v.Checks, &sends, &created, &updated, &expires)
	if err != nil {
		return twofold.Verification{}, notFound(err)
	}
	if err := json.Unmarshal([]byte(sends), &v.Sends); err != nil {
		return twofold.Verification{}, fmt.Errorf("verification %d: sends: %w", v.ID, err)
	}
	v.CreatedAt, v.UpdatedAt, v.ExpiresAt = fromUnix(created), fromUnix(updated), fromUnix(expires)
	return v, nil
}

func encodeSends(sends []twofold.VerificationSend) (string, error) {
	if sends == nil {
		sends = []twofold.VerificationSend{}
	}
	b, err := json.Marshal(sends)
	return string(b), err
}

// liveVerification is the WHERE clause of a verification that can still be checked or sent.
const liveVerification = `status = 'pending' AND expires_at > `

// StartVerification sends to v's recipient through v's service: when a live verification of
// that recipient exists, decide judges it (an error refuses the send, and nothing is written)
// and the send is recorded on it (resent is true); otherwise v is stored as a new verification
// with that one send. It returns the verification the send belongs to.
func (s *Store) StartVerification(ctx context.Context, v twofold.Verification, send twofold.VerificationSend, now time.Time,
	decide func(live twofold.Verification) error) (got twofold.Verification, resent bool, err error) {
	err = s.tx(ctx, func(tx *Tx) error {
		if err := s.lockKey(ctx, tx, "verifications", v.ServiceID, v.To); err != nil {
			return err
		}
		live, err := scanVerification(tx.QueryRowContext(ctx, `SELECT `+verificationColumns+` FROM verifications
			WHERE service_id = $1 AND recipient = $2 AND `+liveVerification+`$3 ORDER BY id DESC LIMIT 1`, v.ServiceID, v.To, unix(now)))
		switch {
		case err == nil:
			if err := decide(live); err != nil {
				return err
			}
			live.Sends = append(live.Sends, send)
			live.Channel, live.UpdatedAt = send.Channel, now
			sends, err := encodeSends(live.Sends)
			if err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `UPDATE verifications SET sends = $1, channel = $2, updated_at = $3 WHERE id = $4`,
				sends, live.Channel, unix(now), live.ID); err != nil {
				return err
			}
			got, resent = live, true
			return nil
		case !errors.Is(err, twofold.ErrNotFound):
			return err
		}
		v.Sends = []twofold.VerificationSend{send}
		sends, err := encodeSends(v.Sends)
		if err != nil {
			return err
		}
		if err := tx.QueryRowContext(ctx, `INSERT INTO verifications (public_id, app_id, service_id, recipient, channel, status,
			code_mac, code_sealed, checks, sends, created_at, updated_at, expires_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 0, $9, $10, $11, $12) RETURNING id`,
			v.PublicID, v.AppID, v.ServiceID, v.To, v.Channel, twofold.VerificationPending, v.CodeMAC, nonNil(v.CodeSealed), sends,
			unix(v.CreatedAt), unix(v.UpdatedAt), unix(v.ExpiresAt)).Scan(&v.ID); err != nil {
			return err
		}
		v.Status = twofold.VerificationPending
		got, resent = v, false
		return nil
	})
	if err != nil {
		return twofold.Verification{}, false, fmt.Errorf("start verification: %w", err)
	}
	return got, resent, nil
}

// CheckVerification checks a code against the live verification of the service named by
// publicID or, when publicID is "", the newest live one of recipient: ErrNotFound when there
// is none. The check is counted first, and only while fewer than maxChecks were made; then
// matches compares the code, and a match approves the verification and drops its sealed code.
func (s *Store) CheckVerification(ctx context.Context, serviceID int64, recipient, publicID string, now time.Time, maxChecks int,
	matches func(twofold.Verification) bool) (twofold.Verification, twofold.VerificationChecked, error) {
	var v twofold.Verification
	var outcome twofold.VerificationChecked
	err := s.tx(ctx, func(tx *Tx) error {
		var err error
		if publicID != "" {
			v, err = scanVerification(tx.QueryRowContext(ctx, `SELECT `+verificationColumns+` FROM verifications
				WHERE service_id = $1 AND public_id = $2 AND `+liveVerification+`$3`, serviceID, publicID, unix(now)))
		} else {
			v, err = scanVerification(tx.QueryRowContext(ctx, `SELECT `+verificationColumns+` FROM verifications
				WHERE service_id = $1 AND recipient = $2 AND `+liveVerification+`$3 ORDER BY id DESC LIMIT 1`,
				serviceID, recipient, unix(now)))
		}
		if err != nil {
			return err
		}
		// Counted before the code is compared; the row stays locked until the transaction ends.
		err = tx.QueryRowContext(ctx, `UPDATE verifications SET checks = checks + 1, updated_at = $1
			WHERE id = $2 AND `+liveVerification+`$1 AND checks < $3 RETURNING checks`, unix(now), v.ID, maxChecks).Scan(&v.Checks)
		if errors.Is(notFound(err), twofold.ErrNotFound) {
			// Out of checks, or ended since it was read.
			v, err = scanVerification(tx.QueryRowContext(ctx, `SELECT `+verificationColumns+` FROM verifications
				WHERE id = $1 AND `+liveVerification+`$2`, v.ID, unix(now)))
			outcome = twofold.CheckedExhausted
			return err
		}
		if err != nil {
			return err
		}
		v.UpdatedAt = now
		if !matches(v) {
			outcome = twofold.CheckedWrong
			return nil
		}
		if _, err := tx.ExecContext(ctx, `UPDATE verifications SET status = $1, code_sealed = $2 WHERE id = $3`,
			twofold.VerificationApproved, []byte{}, v.ID); err != nil {
			return err
		}
		v.Status, v.CodeSealed, outcome = twofold.VerificationApproved, nil, twofold.CheckedApproved
		return nil
	})
	if errors.Is(err, twofold.ErrNotFound) {
		return twofold.Verification{}, 0, twofold.ErrNotFound
	}
	if err != nil {
		return twofold.Verification{}, 0, fmt.Errorf("check verification: %w", err)
	}
	return v, outcome, nil
}

// GetVerification returns the service's verification with publicID, whatever its state.
func (s *Store) GetVerification(ctx context.Context, serviceID int64, publicID string) (twofold.Verification, error) {
	return scanVerification(s.r.QueryRowContext(ctx, `SELECT `+verificationColumns+` FROM verifications
		WHERE service_id = $1 AND public_id = $2`, serviceID, publicID))
}

// LiveVerification returns the newest live verification of recipient in the service.
func (s *Store) LiveVerification(ctx context.Context, serviceID int64, recipient string, now time.Time) (twofold.Verification, error) {
	return scanVerification(s.r.QueryRowContext(ctx, `SELECT `+verificationColumns+` FROM verifications
		WHERE service_id = $1 AND recipient = $2 AND `+liveVerification+`$3 ORDER BY id DESC LIMIT 1`, serviceID, recipient, unix(now)))
}

// EndVerification sets the live verification publicID of the service to status (approved or
// canceled) and drops its sealed code: ErrNotFound when there is no such live verification.
func (s *Store) EndVerification(ctx context.Context, serviceID int64, publicID, status string, now time.Time) (twofold.Verification, error) {
	v, err := scanVerification(s.w.QueryRowContext(ctx, `UPDATE verifications SET status = $1, code_sealed = $2, updated_at = $3
		WHERE service_id = $4 AND public_id = $5 AND `+liveVerification+`$3 RETURNING `+verificationColumns,
		status, []byte{}, unix(now), serviceID, publicID))
	if errors.Is(err, twofold.ErrNotFound) {
		return twofold.Verification{}, err
	}
	if err != nil {
		return twofold.Verification{}, fmt.Errorf("end verification: %w", err)
	}
	return v, nil
}
