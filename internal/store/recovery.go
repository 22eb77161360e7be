package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/twofold-auth/twofold/internal/twofold"
)

// ReplaceRecoveryCodes makes macs the user's whole set of recovery codes, in one transaction:
// the old set, spent or not, is gone when the new one is there. ErrNotFound: no such user.
func (s *Store) ReplaceRecoveryCodes(ctx context.Context, appID, userID int64, macs [][]byte, now time.Time) error {
	err := s.tx(ctx, func(tx *Tx) error {
		// Serialised per user on PostgreSQL with other writers of the user (SQLite has one writer).
		if err := s.lockUser(ctx, tx, appID, userID); err != nil {
			return err
		}
		var rowID int64
		if err := tx.QueryRowContext(ctx, `SELECT id FROM users WHERE app_id = $1 AND public_id = $2`, appID, userID).
			Scan(&rowID); err != nil {
			return notFound(err)
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM recovery_codes WHERE user_id = $1`, rowID); err != nil {
			return err
		}
		for _, mac := range macs {
			if _, err := tx.ExecContext(ctx, `INSERT INTO recovery_codes (app_id, user_id, mac, created_at, used_at)
				VALUES ($1, $2, $3, $4, 0)`, appID, rowID, mac, unix(now)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("replace recovery codes of user %d: %w", userID, err)
	}
	return nil
}

// RecoveryCodes describes the user's set of recovery codes; a user without one (or unknown)
// has a zero set.
func (s *Store) RecoveryCodes(ctx context.Context, appID, userID int64) (twofold.RecoveryCodes, error) {
	var rc twofold.RecoveryCodes
	var created int64
	err := s.r.QueryRowContext(ctx, `SELECT COUNT(*), COALESCE(SUM(CASE WHEN used_at = 0 THEN 1 ELSE 0 END), 0),
		COALESCE(MAX(created_at), 0) FROM recovery_codes WHERE user_id = `+userKey("$1", "$2"), appID, userID).
		Scan(&rc.Total, &rc.Remaining, &created)
	if err != nil {
		return twofold.RecoveryCodes{}, fmt.Errorf("recovery codes of user %d: %w", userID, err)
	}
	rc.CreatedAt = fromUnix(created)
	return rc, nil
}

// SpendRecoveryCode spends the user's unused recovery code whose MAC is one of macs (one per
// key of the ring) with a compare-and-set: of two parallel spends of one code, one is
// RecoverySpent, the other RecoveryReused. It returns the set as it is after the spend.
func (s *Store) SpendRecoveryCode(ctx context.Context, appID, userID int64, macs [][]byte, now time.Time) (twofold.RecoverySpend, twofold.RecoveryCodes, error) {
	if len(macs) == 0 {
		return twofold.RecoveryUnknown, twofold.RecoveryCodes{}, nil
	}
	var result twofold.RecoverySpend
	err := s.tx(ctx, func(tx *Tx) error {
		var err error
		result, err = spendRecoveryCode(ctx, tx, appID, userID, macs, now)
		return err
	})
	if err != nil {
		return 0, twofold.RecoveryCodes{}, fmt.Errorf("spend recovery code of user %d: %w", userID, err)
	}
	rc, err := s.RecoveryCodes(ctx, appID, userID)
	return result, rc, err
}

// spendRecoveryCode is SpendRecoveryCode's compare-and-set in tx.
func spendRecoveryCode(ctx context.Context, tx *Tx, appID, userID int64, macs [][]byte, now time.Time) (twofold.RecoverySpend, error) {
	if len(macs) == 0 {
		return twofold.RecoveryUnknown, nil
	}
	// macIn is the condition "mac is one of macs", its parameters numbered from first on.
	macIn := func(first int) (string, []any) {
		in, args := make([]string, len(macs)), make([]any, len(macs))
		for i, m := range macs {
			in[i], args[i] = "$"+strconv.Itoa(first+i), m
		}
		return `mac IN (` + strings.Join(in, ", ") + `)`, args
	}
	result := twofold.RecoveryUnknown
	err := func() error {
		var id int64
		in, macArgs := macIn(4)
		err := tx.QueryRowContext(ctx, `UPDATE recovery_codes SET used_at = $3
			WHERE user_id = `+userKey("$1", "$2")+` AND used_at = 0 AND `+in+` RETURNING id`,
			append([]any{appID, userID, unix(now)}, macArgs...)...).Scan(&id)
		if err == nil {
			result = twofold.RecoverySpent
			return nil
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		var used int
		in, macArgs = macIn(3)
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM recovery_codes
			WHERE user_id = `+userKey("$1", "$2")+` AND used_at <> 0 AND `+in,
			append([]any{appID, userID}, macArgs...)...).Scan(&used); err != nil {
			return err
		}
		if used > 0 {
			result = twofold.RecoveryReused
		}
		return nil
	}()
	return result, err
}

// DeleteRecoveryCodes removes the user's set of recovery codes (an operator's revocation) and
// says how many codes it held.
func (s *Store) DeleteRecoveryCodes(ctx context.Context, appID, userID int64) (int64, error) {
	res, err := s.w.ExecContext(ctx, `DELETE FROM recovery_codes WHERE user_id = `+userKey("$1", "$2"), appID, userID)
	if err != nil {
		return 0, fmt.Errorf("delete recovery codes of user %d: %w", userID, err)
	}
	n, err := res.RowsAffected()
	return n, err
}
