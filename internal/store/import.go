package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/twofold-auth/twofold/internal/twofold"
)

// ImportBatch is the most users ImportUsers takes at once: 7 parameters a user stays well under
// PostgreSQL's 65535 and SQLite's 32766.
const ImportBatch = 1000

// errDryRun rolls back a dry run's transaction.
var errDryRun = errors.New("dry run")

// ImportUsers writes users into application appID, each with the public id it had elsewhere,
// in one transaction, and reports per user (in order) whether it was written, was there already
// (a user with that id: nothing changes, so a re-run or resume duplicates no one), or was not
// written because another user of the application has its phone number. Written users are
// confirmed (they were in use where they came from). Users made later get ids past every
// imported one (migration 00017). dryRun reports the same and writes nothing.
func (s *Store) ImportUsers(ctx context.Context, appID int64, users []twofold.ImportedUser, now time.Time, dryRun bool) ([]twofold.ImportResult, error) {
	if len(users) > ImportBatch {
		return nil, fmt.Errorf("import users: %d users, more than %d at once", len(users), ImportBatch)
	}
	if len(users) == 0 {
		return nil, nil
	}
	seen := make(map[int64]bool, len(users))
	for _, u := range users {
		if seen[u.User.ID] {
			return nil, fmt.Errorf("import users: id %d twice in one batch", u.User.ID)
		}
		seen[u.User.ID] = true
	}
	var results []twofold.ImportResult
	// Once more when a user written beside the import took an id or phone number between the
	// check and the insert (PostgreSQL): the second try sees it.
	err := s.createTx(ctx, func(tx *Tx) error {
		var err error
		results, err = s.importUsers(ctx, tx, appID, users, now, dryRun)
		if err == nil && dryRun {
			err = errDryRun
		}
		return err
	})
	if errors.Is(err, errDryRun) {
		err = nil
	}
	if err != nil {
		return nil, fmt.Errorf("import users: %w", err)
	}
	return results, nil
}

func (s *Store) importUsers(ctx context.Context, tx *Tx, appID int64, users []twofold.ImportedUser, now time.Time, dryRun bool) ([]twofold.ImportResult, error) {
	// What the application has already: the ids, and the phone numbers (by their users' ids).
	// Asked first, then the rest written with one plain INSERT: each user's outcome must be
	// known, and PostgreSQL's ON CONFLICT takes one target where users have two (id, phone).
	present, phones, err := s.importConflicts(ctx, tx, appID, users)
	if err != nil {
		return nil, err
	}
	results := make([]twofold.ImportResult, len(users))
	var write []int // indexes into users
	var maxID int64
	for i, iu := range users {
		u := iu.User
		switch owner, taken := phones[phoneKey(u)]; {
		case present[u.ID]:
			results[i] = twofold.ImportResult{Status: twofold.ImportPresent}
		case taken:
			results[i] = twofold.ImportResult{Status: twofold.ImportPhoneTaken, Owner: owner}
		default:
			results[i] = twofold.ImportResult{Status: twofold.ImportWritten}
			if u.Phone != "" {
				phones[phoneKey(u)] = u.ID // the batch's later users with this number
			}
			write = append(write, i)
			maxID = max(maxID, u.ID)
		}
	}
	if len(write) == 0 || dryRun {
		return results, nil
	}

	var b strings.Builder
	b.WriteString(`INSERT INTO users (public_id, app_id, email, country_code, phone, confirmed, custom_user_id, created_at, updated_at) VALUES `)
	args := make([]any, 0, len(write)*7)
	for n, i := range write {
		u := users[i].User
		if n > 0 {
			b.WriteString(", ")
		}
		p := len(args)
		fmt.Fprintf(&b, "($%d, $%d, $%d, $%d, $%d, 1, '', $%d, $%d)", p+1, p+2, p+3, p+4, p+5, p+6, p+7)
		created := u.CreatedAt
		if created.IsZero() {
			created = now
		}
		args = append(args, u.ID, appID, u.Email, u.CountryCode, u.Phone, unix(created), unix(now))
	}
	b.WriteString(` RETURNING id, public_id`)
	keys := make(map[int64]int64, len(write)) // public id -> row id
	rows, err := tx.QueryContext(ctx, b.String(), args...)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var key, id int64
		if err := rows.Scan(&key, &id); err != nil {
			rows.Close()
			return nil, err
		}
		keys[id] = key
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	cols, vals := s.retiredAuthenticatorColumns()
	for _, i := range write {
		iu := users[i]
		a := iu.Authenticator
		if a == nil {
			continue
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO authenticators (user_id, app_id, secret_sealed, digits, period,
			created_at`+cols+`) VALUES ($1, $2, $3, $4, $5, $6`+vals+`)`,
			keys[iu.User.ID], appID, a.SecretSealed, a.Digits, a.Period, unix(now)); err != nil {
			return nil, fmt.Errorf("authenticator of user %d: %w", iu.User.ID, err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO authenticator_steps (user_id, version, last_step) VALUES ($1, 1, $2)`,
			keys[iu.User.ID], a.LastStep); err != nil {
			return nil, fmt.Errorf("authenticator step of user %d: %w", iu.User.ID, err)
		}
	}
	if err := s.passPublicID(ctx, tx, maxID); err != nil {
		return nil, err
	}
	return results, nil
}

type phone struct {
	cc     int
	number string
}

func phoneKey(u twofold.User) phone { return phone{u.CountryCode, u.Phone} }

// importConflicts returns which of the users' ids the application has already, and which of
// their phone numbers, with the id of the user who has each: one statement for the ids and one
// per calling code for the numbers, each an equality probe of a unique index per user
// (users_by_public_id, users_by_phone). Probes, not "IN (...)" or a join: PostgreSQL, before it
// has statistics of a table an import is filling, planned the IN list as a filter over every row
// of the application, and the import turned quadratic.
func (s *Store) importConflicts(ctx context.Context, tx *Tx, appID int64, users []twofold.ImportedUser) (map[int64]bool, map[phone]int64, error) {
	present := map[int64]bool{}
	ids := make([]any, 0, len(users))
	byCC := map[int][]any{}
	var ccs []int
	for _, iu := range users {
		u := iu.User
		ids = append(ids, u.ID)
		if u.Phone == "" {
			continue
		}
		if _, ok := byCC[u.CountryCode]; !ok {
			ccs = append(ccs, u.CountryCode)
		}
		byCC[u.CountryCode] = append(byCC[u.CountryCode], u.Phone)
	}
	// Scalar subqueries, not joins: each runs as a lookup per row, whatever the statistics.
	rows, err := tx.QueryContext(ctx, `SELECT v.column1, (SELECT count(*) FROM users u WHERE u.app_id = $1 AND u.public_id = v.column1)
		FROM (VALUES `+castValues(2, len(ids), "BIGINT")+`) AS v`, append([]any{appID}, ids...)...)
	if err != nil {
		return nil, nil, err
	}
	for rows.Next() {
		var id, n int64
		if err := rows.Scan(&id, &n); err != nil {
			rows.Close()
			return nil, nil, err
		}
		present[id] = n > 0
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, nil, err
	}
	phones := map[phone]int64{}
	for _, cc := range ccs {
		numbers := byCC[cc]
		rows, err := tx.QueryContext(ctx, `SELECT v.column1, (SELECT u.public_id FROM users u WHERE u.app_id = $1
			AND u.country_code = $2 AND u.phone = v.column1 AND u.phone <> '') FROM (VALUES `+castValues(3, len(numbers), "TEXT")+`) AS v`,
			append([]any{appID, cc}, numbers...)...)
		if err != nil {
			return nil, nil, err
		}
		for rows.Next() {
			var number string
			var owner sql.NullInt64
			if err := rows.Scan(&number, &owner); err != nil {
				rows.Close()
				return nil, nil, err
			}
			if owner.Valid {
				phones[phone{cc, number}] = owner.Int64
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, nil, err
		}
	}
	return present, phones, nil
}

// castValues is "(CAST($first AS typ)), (CAST($first+1 AS typ)), ..." for n parameters: the
// rows of a VALUES list, typed so PostgreSQL need not guess.
func castValues(first, n int, typ string) string {
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "(CAST($%d AS %s))", first+i, typ)
	}
	return b.String()
}
