package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/twofold-auth/twofold/internal/twofold"
)

// InsertCode stores a newly issued code, setting its ID, and supersedes the user's earlier
// pending codes for the same action: only the newest code sent works.
func (s *Store) InsertCode(ctx context.Context, c *twofold.OneTimeCode) error {
	err := s.tx(ctx, func(tx *Tx) error {
		// Serialised per user with ConsumeCode, so the newest code (the highest id) is the live one.
		if err := s.lockUser(ctx, tx, c.AppID, c.UserID); err != nil {
			return err
		}
		return insertCode(ctx, tx, c)
	})
	if err != nil {
		return fmt.Errorf("insert code: %w", err)
	}
	return nil
}

// insertCode is InsertCode in tx, which holds the user's lock.
//
// The statements over the user's live codes (here, in consumeCode and in refundAttempt) write
// "used_at IS NULL AND superseded = 0" as the partial index codes_live (migration 00036) does,
// so that they read only live codes, not every code the user was sent.
func insertCode(ctx context.Context, tx *Tx, c *twofold.OneTimeCode) error {
	if _, err := tx.ExecContext(ctx, `UPDATE codes SET superseded = 1
		WHERE user_id = `+userKey("$1", "$2")+` AND action = $3 AND used_at IS NULL AND superseded = 0`,
		c.AppID, c.UserID, c.Action); err != nil {
		return err
	}
	return tx.QueryRowContext(ctx, `INSERT INTO codes (app_id, user_id, channel, action, mac, attempts, superseded,
		created_at, expires_at) VALUES ($1, `+userKey("$1", "$2")+`, $3, $4, $5, 0, 0, $6, $7) RETURNING id`,
		c.AppID, c.UserID, string(c.Channel), c.Action, c.MAC, unix(c.CreatedAt), unix(c.ExpiresAt)).Scan(&c.ID)
}

// UnexpiredCodes returns the user's codes that have not expired, used or not, newest first.
func (s *Store) UnexpiredCodes(ctx context.Context, appID, userID int64, now time.Time) ([]twofold.OneTimeCode, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT id, app_id, CAST($2 AS BIGINT), channel, action, mac, attempts, superseded,
		created_at, expires_at, COALESCE(used_at, 0) FROM codes WHERE user_id = `+userKey("$1", "$2")+` AND expires_at > $3
		ORDER BY id DESC`, appID, userID, unix(now))
	if err != nil {
		return nil, fmt.Errorf("codes: %w", err)
	}
	defer rows.Close()
	var out []twofold.OneTimeCode
	for rows.Next() {
		var c twofold.OneTimeCode
		var channel string
		var superseded int
		var created, expires, used int64
		if err := rows.Scan(&c.ID, &c.AppID, &c.UserID, &channel, &c.Action, &c.MAC, &c.Attempts, &superseded,
			&created, &expires, &used); err != nil {
			return nil, fmt.Errorf("codes: %w", err)
		}
		c.Channel, c.Superseded = twofold.Channel(channel), superseded == 1
		c.CreatedAt, c.ExpiresAt, c.UsedAt = fromUnix(created), fromUnix(expires), fromUnix(used)
		out = append(out, c)
	}
	return out, rows.Err()
}

// PutAuthenticator enrols (or re-enrols) the user's TOTP seed. A re-enrolment bumps the version
// and forgets the replay record, which belonged to the old seed. It sets a.Version.
//
// The seed lives in authenticators, its replay state (version, last step) in the narrow
// authenticator_steps (migration 00035), where a decision's compare-and-set writes it; both
// are written in one transaction, so no reader sees the new seed with the old version.
func (s *Store) PutAuthenticator(ctx context.Context, a *twofold.Authenticator) error {
	cols, vals := s.retiredAuthenticatorColumns()
	err := s.tx(ctx, func(tx *Tx) error {
		var key int64
		if err := tx.QueryRowContext(ctx, `INSERT INTO authenticators (user_id, app_id, secret_sealed, digits, period,
			created_at`+cols+`) VALUES (`+userKey("$2", "$1")+`, $2, $3, $4, $5, $6`+vals+`)
			ON CONFLICT (user_id) DO UPDATE SET secret_sealed = excluded.secret_sealed, digits = excluded.digits,
				period = excluded.period, created_at = excluded.created_at
			RETURNING user_id`,
			a.UserID, a.AppID, a.SecretSealed, a.Digits, a.Period, unix(a.CreatedAt)).Scan(&key); err != nil {
			return err
		}
		return tx.QueryRowContext(ctx, `INSERT INTO authenticator_steps (user_id, version, last_step) VALUES ($1, 1, -1)
			ON CONFLICT (user_id) DO UPDATE SET version = authenticator_steps.version + 1, last_step = -1
			RETURNING version`, key).Scan(&a.Version)
	})
	if err != nil {
		return fmt.Errorf("put authenticator: %w", err)
	}
	a.LastStep = -1
	return nil
}

// retiredAuthenticatorColumns are the columns that authenticators still has on SQLite but no
// longer uses (migration 00035: version and last_step moved to authenticator_steps, and
// SQLite's DROP COLUMN would rewrite the table), with the placeholders an insert gives them
// (they are NOT NULL). PostgreSQL dropped them: none.
func (s *Store) retiredAuthenticatorColumns() (cols, vals string) {
	if s.pg {
		return "", ""
	}
	return ", version, last_step", ", 0, -1"
}

// GetAuthenticator returns the user's TOTP seed, or ErrNotFound.
func (s *Store) GetAuthenticator(ctx context.Context, appID, userID int64) (twofold.Authenticator, error) {
	var a twofold.Authenticator
	var created int64
	err := s.r.QueryRowContext(ctx, `SELECT CAST($1 AS BIGINT), a.app_id, a.secret_sealed, a.digits, a.period, st.version,
		st.last_step, a.created_at
		FROM authenticators a JOIN authenticator_steps st ON st.user_id = a.user_id
		WHERE a.user_id = `+userKey("$2", "$1")+` AND a.app_id = $2`, userID, appID).
		Scan(&a.UserID, &a.AppID, &a.SecretSealed, &a.Digits, &a.Period, &a.Version, &a.LastStep, &created)
	if err != nil {
		return twofold.Authenticator{}, notFound(err)
	}
	a.CreatedAt = fromUnix(created)
	return a, nil
}

// AdvanceStep records step as the newest accepted TOTP step of the user's seed version, if it
// is newer than the recorded one. It is a compare-and-set: of two requests with the same code,
// exactly one gets true.
func (s *Store) AdvanceStep(ctx context.Context, appID, userID, version, step int64) (bool, error) {
	return advanceStep(ctx, s.w, appID, userID, version, step)
}

// advanceStep writes only the narrow authenticator_steps row (migration 00035), never the wide
// authenticators one. A re-enrolment bumps the version, so a step judged against the old seed
// is refused.
func advanceStep(ctx context.Context, ex writeExecer, appID, userID, version, step int64) (bool, error) {
	res, err := ex.ExecContext(ctx, `UPDATE authenticator_steps SET last_step = $1
		WHERE user_id = `+userKey("$4", "$2")+` AND version = $3 AND last_step < $1`, step, userID, version, appID)
	if err != nil {
		return false, fmt.Errorf("advance step: %w", err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// InsertQRLink stores a QR capability.
func (s *Store) InsertQRLink(ctx context.Context, l twofold.QRLink) error {
	_, err := s.w.ExecContext(ctx, `INSERT INTO qr_links (mac, app_id, user_id, version, size, uri_sealed, expires_at)
		VALUES ($1, $2, `+userKey("$2", "$3")+`, $4, $5, $6, $7)`, l.MAC, l.AppID, l.UserID, l.Version, l.Size, l.URISealed, unix(l.ExpiresAt))
	if err != nil {
		return fmt.Errorf("insert qr link: %w", err)
	}
	return nil
}

// GetQRLink returns the unexpired QR capability with mac, or ErrNotFound.
func (s *Store) GetQRLink(ctx context.Context, mac []byte, now time.Time) (twofold.QRLink, error) {
	var l twofold.QRLink
	var expires int64
	err := s.r.QueryRowContext(ctx, `SELECT mac, app_id, `+publicUserID("user_id")+`, version, size, uri_sealed, expires_at FROM qr_links
		WHERE mac = $1 AND expires_at > $2`, mac, unix(now)).
		Scan(&l.MAC, &l.AppID, &l.UserID, &l.Version, &l.Size, &l.URISealed, &expires)
	if err != nil {
		return twofold.QRLink{}, notFound(err)
	}
	l.ExpiresAt = fromUnix(expires)
	return l, nil
}

// CheckState reads, in one query, what checking a token for user id of the application needs
// first (twofold.CheckState), with the events of the failure limit's window (none when its
// name is empty); an unknown user is ErrNotFound. Every later step reads or writes again where
// it must decide: this is a starting point, not a lock. (The window is read by three scalar
// subqueries, not one aggregate in FROM: SQLite materialised that into a table built afresh
// at every run.)
func (s *Store) CheckState(ctx context.Context, appID, id int64, now time.Time, failures twofold.LimitWindow) (twofold.CheckState, error) {
	var st twofold.CheckState
	var confirmed int
	var seed []byte
	var digits, period, version, lastStep, oldest sql.NullInt64
	var refused bool
	err := s.hotRead(ctx, func(q rowQuerier) error {
		return q.QueryRowContext(ctx, `SELECT u.public_id, u.confirmed,
			EXISTS (SELECT 1 FROM codes c WHERE c.user_id = u.id AND c.expires_at > $3),
			a.secret_sealed, a.digits, a.period, st.version, st.last_step,
			EXISTS (SELECT 1 FROM devices d WHERE d.app_id = u.app_id AND d.user_id = u.id),
			(SELECT count(*) FROM limit_slots WHERE name = $4 AND at > $5 AND slot >= 0),
			(SELECT min(at) FROM limit_slots WHERE name = $4 AND at > $5 AND slot >= 0),
			EXISTS (SELECT 1 FROM limit_slots WHERE name = $4 AND at > $5 AND slot < 0)
		FROM users u LEFT JOIN authenticators a ON a.user_id = u.id AND a.app_id = u.app_id
		LEFT JOIN authenticator_steps st ON st.user_id = a.user_id
		WHERE u.public_id = $1 AND u.app_id = $2`, id, appID, unix(now), failures.Name, nanos(failures.Since)).
			Scan(&st.UserID, &confirmed, &st.LiveCodes, &seed, &digits, &period, &version, &lastStep, &st.HasDevices,
				&st.Failures, &oldest, &refused)
	})
	if err != nil {
		return twofold.CheckState{}, notFound(err)
	}
	st.Confirmed = confirmed == 1
	if oldest.Valid {
		st.Oldest = time.Unix(0, oldest.Int64).UTC()
	}
	st.Refused = refused
	if version.Valid {
		st.Authenticator = &twofold.Authenticator{UserID: id, AppID: appID, SecretSealed: seed, Digits: int(digits.Int64),
			Period: int(period.Int64), Version: version.Int64, LastStep: lastStep.Int64}
	}
	return st, nil
}

// ConsumeCode checks a token against the user's unexpired codes in one write transaction, so
// checks of one user are serialised: a code is accepted once; a code that matches after
// maxAttempts wrong tries, or after being superseded, counts as a wrong try; every wrong try is
// charged to all live codes. matches compares in constant time and is called for every code
// (with its ID, Action, Channel, MAC, Attempts, Superseded and UsedAt), newest first.
//
// Verifications make the same check inside a decision (Decide, Decision.ConsumeCode). This
// single call is serialised with the other single calls for the user (lockUser); with a
// decision, on PostgreSQL, only by the compare-and-set that uses a code.
//
// It takes the writer even when the user has no live code: a caller that knows there is none
// (CheckState.LiveCodes) need not call it, and most authenticator verifications then never
// queue for the writer.
func (s *Store) ConsumeCode(ctx context.Context, appID, userID int64, now time.Time, maxAttempts int, matches func(twofold.OneTimeCode) bool) (twofold.CodeCheck, error) {
	var result twofold.CodeCheck
	err := s.tx(ctx, func(tx *Tx) error {
		if err := s.lockUser(ctx, tx, appID, userID); err != nil {
			return err
		}
		var err error
		result, err = consumeCode(ctx, tx, appID, userID, now, maxAttempts, matches)
		return err
	})
	if err != nil {
		return twofold.CodeNoMatch, fmt.Errorf("check code: %w", err)
	}
	return result, nil
}

// consumeCode is ConsumeCode in tx, which holds the user's lock (lockUser).
func consumeCode(ctx context.Context, tx *Tx, appID, userID int64, now time.Time, maxAttempts int, matches func(twofold.OneTimeCode) bool) (twofold.CodeCheck, error) {
	result := twofold.CodeNoMatch
	err := func() error {
		var key int64
		if err := tx.QueryRowContext(ctx, `SELECT id FROM users WHERE app_id = $1 AND public_id = $2`, appID, userID).Scan(&key); err != nil {
			return notFound(err)
		}
		rows, err := tx.QueryContext(ctx, `SELECT id, attempts, superseded, COALESCE(used_at, 0), mac, action, channel FROM codes
			WHERE user_id = $1 AND expires_at > $2 ORDER BY id DESC`, key, unix(now))
		if err != nil {
			return err
		}
		var match *twofold.OneTimeCode
		for rows.Next() {
			var c twofold.OneTimeCode
			var superseded int
			var used int64
			var channel string
			if err := rows.Scan(&c.ID, &c.Attempts, &superseded, &used, &c.MAC, &c.Action, &channel); err != nil {
				rows.Close()
				return err
			}
			c.UserID, c.Superseded, c.UsedAt, c.Channel = userID, superseded == 1, fromUnix(used), twofold.Channel(channel)
			if matches(c) && match == nil {
				match = &c
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		switch {
		case match != nil && !match.UsedAt.IsZero():
			result = twofold.CodeReused
			return nil
		case match != nil && !match.Superseded && match.Attempts < maxAttempts:
			result = twofold.CodeAccepted
			// A compare-and-set, so that a code is used once even by a transaction that does not
			// hold the user's lock.
			res, err := tx.ExecContext(ctx, `UPDATE codes SET used_at = $1 WHERE id = $2 AND used_at IS NULL`, unix(now), match.ID)
			if err != nil {
				return err
			}
			if n, err := res.RowsAffected(); err != nil || n != 1 {
				result = twofold.CodeReused
				return err
			}
			return nil
		}
		_, err = tx.ExecContext(ctx, `UPDATE codes SET attempts = attempts + 1
			WHERE user_id = $1 AND used_at IS NULL AND superseded = 0 AND expires_at > $2`, key, unix(now))
		return err
	}()
	return result, err
}

// RefundAttempt takes back a wrong try charged by ConsumeCode from the user's live codes, for a
// token that turned out to be right by other means (an authenticator code). Call it only after
// a ConsumeCode that charged one.
func (s *Store) RefundAttempt(ctx context.Context, appID, userID int64, now time.Time) error {
	return refundAttempt(ctx, s.w, appID, userID, now)
}

func refundAttempt(ctx context.Context, ex writeExecer, appID, userID int64, now time.Time) error {
	_, err := ex.ExecContext(ctx, `UPDATE codes SET attempts = attempts - 1
		WHERE user_id = `+userKey("$3", "$1")+` AND used_at IS NULL AND superseded = 0 AND expires_at > $2 AND attempts > 0`,
		userID, unix(now), appID)
	if err != nil {
		return fmt.Errorf("refund attempt: %w", err)
	}
	return nil
}
