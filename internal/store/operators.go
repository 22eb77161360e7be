package store

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/twofold-auth/twofold/internal/twofold"
)

const operatorColumns = `id, email, password_hash, authy_id, last_login_at, created_at, updated_at`

func scanOperator(r rowScanner) (twofold.Operator, error) {
	var o twofold.Operator
	var last, created, updated int64
	err := r.Scan(&o.ID, &o.Email, &o.PasswordHash, &o.AuthyID, &last, &created, &updated)
	if err != nil {
		return twofold.Operator{}, notFound(err)
	}
	o.LastLoginAt, o.CreatedAt, o.UpdatedAt = fromUnix(last), fromUnix(created), fromUnix(updated)
	return o, nil
}

// CreateOperator inserts o, setting its ID. An email already taken (in any case) is ErrConflict.
func (s *Store) CreateOperator(ctx context.Context, o *twofold.Operator) error {
	o.Email = strings.ToLower(o.Email)
	err := s.w.QueryRowContext(ctx, `INSERT INTO operators (email, password_hash, authy_id, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $4) RETURNING id`, o.Email, o.PasswordHash, o.AuthyID, unix(o.CreatedAt)).Scan(&o.ID)
	if isUniqueViolation(err) {
		return twofold.ErrConflict
	}
	if err != nil {
		return fmt.Errorf("create operator: %w", err)
	}
	return nil
}

// OperatorByEmail returns the operator with email (case-insensitive).
func (s *Store) OperatorByEmail(ctx context.Context, email string) (twofold.Operator, error) {
	return scanOperator(s.r.QueryRowContext(ctx, `SELECT `+operatorColumns+` FROM operators WHERE email = $1`, strings.ToLower(email)))
}

// ListOperators returns every operator, oldest first, with the state of their sign-in lockout
// (FailedLogins, LockedUntil).
func (s *Store) ListOperators(ctx context.Context) ([]twofold.Operator, error) {
	out, err := queryAll(ctx, s.r, scanOperator, `SELECT `+operatorColumns+` FROM operators ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("list operators: %w", err)
	}
	for i, o := range out { // a handful of operators: one lookup each
		var locked int64
		err := s.r.QueryRowContext(ctx, `SELECT failures, locked_until FROM signin_lockouts WHERE email_hash = $1`,
			emailHash(o.Email)).Scan(&out[i].FailedLogins, &locked)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return nil, fmt.Errorf("list operators: lockout: %w", err)
		}
		out[i].LockedUntil = fromUnix(locked)
	}
	return out, nil
}

// DeleteOperator removes the operator with email.
func (s *Store) DeleteOperator(ctx context.Context, email string) error {
	res, err := s.w.ExecContext(ctx, `DELETE FROM operators WHERE email = $1`, strings.ToLower(email))
	if err != nil {
		return fmt.Errorf("delete operator: %w", err)
	}
	return mustAffect(res)
}

// UpdateOperator writes the operator's password hash and console user, and clears a lockout of
// their email.
func (s *Store) UpdateOperator(ctx context.Context, o twofold.Operator) error {
	var email string
	err := s.w.QueryRowContext(ctx, `UPDATE operators SET password_hash = $1, authy_id = $2, updated_at = $3 WHERE id = $4
		RETURNING email`, o.PasswordHash, o.AuthyID, unix(o.UpdatedAt), o.ID).Scan(&email)
	if err != nil {
		return fmt.Errorf("update operator: %w", notFound(err))
	}
	return s.clearSignInLockout(ctx, email)
}

// emailHash is the key of an email's sign-in lockout: SHA-256 of the email in lower case.
func emailHash(email string) []byte {
	h := sha256.Sum256([]byte(strings.ToLower(email)))
	return h[:]
}

// CountSignInAttempt counts a sign-in attempt at email (an operator's or not) before its
// password is checked, atomically: unless sign-in to email is locked at now, the failures in a
// row grow by one and the lockAfter-th locks sign-in until now+lockFor. It reports whether the
// attempt was counted (and may be checked), else until when sign-in is locked. The count is
// forgotten keep after the last attempt counted (keep must be at least lockFor); a sign-in that
// succeeds clears it (OperatorSignedIn).
func (s *Store) CountSignInAttempt(ctx context.Context, email string, now time.Time, lockAfter int, lockFor, keep time.Duration) (bool, time.Time, error) {
	key, at, until := emailHash(email), unix(now), unix(now.Add(lockFor))
	first := int64(0) // the lock a first failure sets
	if lockAfter <= 1 {
		first = until
	}
	// A row past its expiry that the sweep has not deleted yet counts as none.
	var failures int64
	err := s.w.QueryRowContext(ctx, `INSERT INTO signin_lockouts (email_hash, failures, locked_until, expires_at)
		VALUES ($1, 1, $2, $3)
		ON CONFLICT (email_hash) DO UPDATE SET
			failures = CASE WHEN signin_lockouts.expires_at <= $4 THEN 1 ELSE signin_lockouts.failures + 1 END,
			locked_until = CASE WHEN (CASE WHEN signin_lockouts.expires_at <= $4 THEN 1 ELSE signin_lockouts.failures + 1 END) >= $5
				THEN $6 ELSE signin_lockouts.locked_until END,
			expires_at = excluded.expires_at
		WHERE signin_lockouts.locked_until <= $4
		RETURNING failures`, key, first, unix(now.Add(keep)), at, lockAfter, until).Scan(&failures)
	if err == nil {
		return true, time.Time{}, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return false, time.Time{}, fmt.Errorf("count sign-in attempt: %w", err)
	}
	// Locked: nothing was counted or written.
	var locked int64
	if err := s.w.QueryRowContext(ctx, `SELECT locked_until FROM signin_lockouts WHERE email_hash = $1`, key).Scan(&locked); err != nil {
		return false, time.Time{}, fmt.Errorf("count sign-in attempt: %w", err)
	}
	return false, fromUnix(locked), nil
}

// OperatorSignedIn records a sign-in whose password was right: the operator's last sign-in is
// now and the failures counted at their email are cleared. It returns the operator as stored.
func (s *Store) OperatorSignedIn(ctx context.Context, id int64, now time.Time) (twofold.Operator, error) {
	o, err := scanOperator(s.w.QueryRowContext(ctx, `UPDATE operators SET last_login_at = $1 WHERE id = $2 RETURNING `+operatorColumns,
		unix(now), id))
	if err != nil {
		return twofold.Operator{}, fmt.Errorf("operator sign-in: %w", err)
	}
	return o, s.clearSignInLockout(ctx, o.Email)
}

func (s *Store) clearSignInLockout(ctx context.Context, email string) error {
	if _, err := s.w.ExecContext(ctx, `DELETE FROM signin_lockouts WHERE email_hash = $1`, emailHash(email)); err != nil {
		return fmt.Errorf("clear sign-in lockout: %w", err)
	}
	return nil
}
