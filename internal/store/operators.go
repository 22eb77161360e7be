package store

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/twofold-auth/twofold/internal/twofold"
)

const operatorColumns = `id, email, password_hash, authy_id, failed_logins, locked_until, last_login_at, created_at, updated_at`

func scanOperator(r rowScanner) (twofold.Operator, error) {
	var o twofold.Operator
	var locked, last, created, updated int64
	err := r.Scan(&o.ID, &o.Email, &o.PasswordHash, &o.AuthyID, &o.FailedLogins, &locked, &last, &created, &updated)
	if err != nil {
		return twofold.Operator{}, notFound(err)
	}
	o.LockedUntil, o.LastLoginAt, o.CreatedAt, o.UpdatedAt = fromUnix(locked), fromUnix(last), fromUnix(created), fromUnix(updated)
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

// ListOperators returns every operator, oldest first.
func (s *Store) ListOperators(ctx context.Context) ([]twofold.Operator, error) {
	out, err := queryAll(ctx, s.r, scanOperator, `SELECT `+operatorColumns+` FROM operators ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("list operators: %w", err)
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

// UpdateOperator writes the operator's password hash and console user, and clears a lockout.
func (s *Store) UpdateOperator(ctx context.Context, o twofold.Operator) error {
	res, err := s.w.ExecContext(ctx, `UPDATE operators SET password_hash = $1, authy_id = $2, failed_logins = 0,
		locked_until = 0, updated_at = $3 WHERE id = $4`, o.PasswordHash, o.AuthyID, unix(o.UpdatedAt), o.ID)
	if err != nil {
		return fmt.Errorf("update operator: %w", err)
	}
	return mustAffect(res)
}

// OperatorSignIn records the outcome of a password check atomically: a success clears the
// failures, a failure counts one and, at the lockAfter-th in a row, locks sign-in until
// now+lockFor. It returns the operator as stored after.
func (s *Store) OperatorSignIn(ctx context.Context, id int64, ok bool, now time.Time, lockAfter int, lockFor time.Duration) (twofold.Operator, error) {
	q := `UPDATE operators SET failed_logins = 0, locked_until = 0, last_login_at = $1 WHERE id = $2 RETURNING ` + operatorColumns
	args := []any{unix(now), id}
	if !ok {
		q = `UPDATE operators SET failed_logins = failed_logins + 1,
			locked_until = CASE WHEN failed_logins + 1 >= $1 THEN $2 ELSE locked_until END
			WHERE id = $3 RETURNING ` + operatorColumns
		args = []any{lockAfter, unix(now.Add(lockFor)), id}
	}
	o, err := scanOperator(s.w.QueryRowContext(ctx, q, args...))
	if err != nil {
		return twofold.Operator{}, fmt.Errorf("operator sign-in: %w", err)
	}
	return o, nil
}
