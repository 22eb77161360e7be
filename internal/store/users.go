package store

import (
	"context"
	"fmt"
	"time"

	"github.com/twofold-auth/twofold/internal/twofold"
)

// userColumns are a user's columns as twofold.User has them: its id is the public one.
const userColumns = `public_id, app_id, email, country_code, phone, confirmed, custom_user_id, created_at, updated_at`

// userKey is the SQL for the row id of the user with the public id written as the parameter
// user, of the application written as app (e.g. userKey("$1", "$2")): rows of other tables
// reference users by row id, which nothing outside the store sees. An unknown user is NULL,
// which every user_id column refuses.
func userKey(app, user string) string {
	return `(SELECT id FROM users WHERE app_id = ` + app + ` AND public_id = ` + user + `)`
}

// publicUserID is the SQL for the public id of the user whose row id is in column col.
func publicUserID(col string) string { return `(SELECT public_id FROM users WHERE id = ` + col + `)` }

// nextPublicID is the SQL for a new user's public id: one past every public id yet written,
// imported ones included (migration 00017; spendPublicID and passPublicID keep it so).
func (s *Store) nextPublicID() string {
	if s.pg {
		return `nextval('user_public_ids')`
	}
	return `(SELECT next FROM user_public_ids)`
}

// createRetries is how often a new user's insert is tried when its new public id collides: only
// on PostgreSQL, where an import moving the sequence (setval) can race a nextval.
const createRetries = 3

func scanUser(row rowScanner) (twofold.User, error) {
	var u twofold.User
	var confirmed int
	var created, updated int64
	if err := row.Scan(&u.ID, &u.AppID, &u.Email, &u.CountryCode, &u.Phone, &confirmed, &u.CustomUserID, &created, &updated); err != nil {
		return twofold.User{}, notFound(err)
	}
	u.Confirmed = confirmed == 1
	u.CreatedAt, u.UpdatedAt = fromUnix(created), fromUnix(updated)
	return u, nil
}

// CreateUser inserts u unless the application already has a user with the same phone number,
// in which case u becomes that user. created reports which happened. It is one statement, so
// two concurrent registrations of one number get one id.
func (s *Store) CreateUser(ctx context.Context, u *twofold.User) (created bool, err error) {
	err = s.createTx(ctx, func(tx *Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO users (public_id, app_id, email, country_code, phone, confirmed, created_at, updated_at)
			VALUES (`+s.nextPublicID()+`, $1, $2, $3, $4, 0, $5, $5) ON CONFLICT (app_id, country_code, phone) WHERE phone <> '' DO NOTHING`,
			u.AppID, u.Email, u.CountryCode, u.Phone, unix(u.CreatedAt))
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		created = n == 1
		// phone <> '' lets SQLite use the partial index users_by_phone.
		got, err := scanUser(tx.QueryRowContext(ctx, `SELECT `+userColumns+` FROM users
			WHERE app_id = $1 AND country_code = $2 AND phone = $3 AND phone <> ''`, u.AppID, u.CountryCode, u.Phone))
		if err != nil {
			return err
		}
		*u = got
		return s.spendPublicID(ctx, tx)
	})
	if err != nil {
		return false, fmt.Errorf("create user: %w", err)
	}
	return created, nil
}

// CreateCustomUser inserts u, a user known by the customer's id for them (u.CustomUserID) and
// no phone number, unless the application has one with that id already, which u then becomes.
func (s *Store) CreateCustomUser(ctx context.Context, u *twofold.User) (created bool, err error) {
	err = s.createTx(ctx, func(tx *Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO users (public_id, app_id, email, country_code, phone, confirmed, custom_user_id,
			created_at, updated_at) VALUES (`+s.nextPublicID()+`, $1, $2, 0, '', 0, $3, $4, $4)
			ON CONFLICT (app_id, custom_user_id) WHERE custom_user_id <> '' DO NOTHING`,
			u.AppID, u.Email, u.CustomUserID, unix(u.CreatedAt))
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		created = n == 1
		got, err := scanUser(tx.QueryRowContext(ctx, `SELECT `+userColumns+` FROM users
			WHERE app_id = $1 AND custom_user_id = $2 AND custom_user_id <> ''`, u.AppID, u.CustomUserID))
		if err != nil {
			return err
		}
		*u = got
		return s.spendPublicID(ctx, tx)
	})
	if err != nil {
		return false, fmt.Errorf("create user: %w", err)
	}
	return created, nil
}

// LinkCustomUser gives the application's existing user id the customer's id customID, so a
// device registered by QR code for customID joins that user. A user already linked to another
// id, or an id already another user's, is ErrConflict; an unknown user ErrNotFound.
func (s *Store) LinkCustomUser(ctx context.Context, appID, id int64, customID string, now time.Time) (twofold.User, error) {
	var u twofold.User
	err := s.tx(ctx, func(tx *Tx) error {
		if err := s.lockUser(ctx, tx, appID, id); err != nil { // two links of one user: the second sees the first
			return err
		}
		got, err := scanUser(tx.QueryRowContext(ctx, `SELECT `+userColumns+` FROM users WHERE app_id = $1 AND public_id = $2`, appID, id))
		if err != nil {
			return err
		}
		switch got.CustomUserID {
		case customID:
			u = got
			return nil
		case "":
		default:
			return twofold.ErrConflict
		}
		_, err = tx.ExecContext(ctx, `UPDATE users SET custom_user_id = $1, updated_at = $2 WHERE app_id = $3 AND public_id = $4`,
			customID, unix(now), appID, id)
		if isUniqueViolation(err) {
			return twofold.ErrConflict
		}
		if err != nil {
			return err
		}
		got.CustomUserID, got.UpdatedAt = customID, now
		u = got
		return nil
	})
	if err != nil {
		return twofold.User{}, fmt.Errorf("link user %d: %w", id, err)
	}
	return u, nil
}

// UserByCustomID returns the application's user with the customer's id customID.
func (s *Store) UserByCustomID(ctx context.Context, appID int64, customID string) (twofold.User, error) {
	if customID == "" {
		return twofold.User{}, twofold.ErrNotFound
	}
	// custom_user_id <> '' lets SQLite use the partial index users_by_custom_id.
	return scanUser(s.r.QueryRowContext(ctx, `SELECT `+userColumns+` FROM users
		WHERE app_id = $1 AND custom_user_id = $2 AND custom_user_id <> ''`, appID, customID))
}

// GetUser returns user id of application appID; a user of another application is ErrNotFound.
func (s *Store) GetUser(ctx context.Context, appID, id int64) (twofold.User, error) {
	return scanUser(s.r.QueryRowContext(ctx, `SELECT `+userColumns+` FROM users WHERE public_id = $1 AND app_id = $2`, id, appID))
}

// UpdateUser writes email and phone. A phone number another user of the app has is ErrConflict.
func (s *Store) UpdateUser(ctx context.Context, u twofold.User) error {
	res, err := s.w.ExecContext(ctx, `UPDATE users SET email = $1, country_code = $2, phone = $3, updated_at = $4
		WHERE public_id = $5 AND app_id = $6`, u.Email, u.CountryCode, u.Phone, unix(u.UpdatedAt), u.ID, u.AppID)
	if isUniqueViolation(err) {
		return twofold.ErrConflict
	}
	if err != nil {
		return fmt.Errorf("update user %d: %w", u.ID, err)
	}
	return mustAffect(res)
}

// ConfirmUser records that the user has verified a code.
func (s *Store) ConfirmUser(ctx context.Context, appID, id int64) error {
	return confirmUser(ctx, s.w, appID, id)
}

func confirmUser(ctx context.Context, ex writeExecer, appID, id int64) error {
	_, err := ex.ExecContext(ctx, `UPDATE users SET confirmed = 1 WHERE public_id = $1 AND app_id = $2 AND confirmed = 0`, id, appID)
	if err != nil {
		return fmt.Errorf("confirm user %d: %w", id, err)
	}
	return nil
}

// DeleteUser removes the user and, by cascade, its codes, authenticator and activities.
func (s *Store) DeleteUser(ctx context.Context, appID, id int64) error {
	err := s.tx(ctx, func(tx *Tx) error {
		// A Verify entity's factors and challenges (keyed by the user's public id) go with it.
		for _, q := range []string{`DELETE FROM verify_challenges WHERE app_id = $1 AND user_id = $2`,
			`DELETE FROM verify_factors WHERE app_id = $1 AND user_id = $2`} {
			if _, err := tx.ExecContext(ctx, q, appID, id); err != nil {
				return err
			}
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM users WHERE public_id = $1 AND app_id = $2`, id, appID)
		if err != nil {
			return err
		}
		return mustAffect(res)
	})
	if err != nil {
		return fmt.Errorf("delete user %d: %w", id, err)
	}
	return nil
}

// CountUsers returns how many users the application has.
func (s *Store) CountUsers(ctx context.Context, appID int64) (int64, error) {
	var n int64
	err := s.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM users WHERE app_id = $1`, appID).Scan(&n)
	return n, err
}

// InsertActivity records an activity the customer registered for a user.
func (s *Store) InsertActivity(ctx context.Context, a twofold.Activity) error {
	_, err := s.w.ExecContext(ctx, `INSERT INTO activities (app_id, user_id, type, data, ip, created_at)
		VALUES ($1, `+userKey("$1", "$2")+`, $3, $4, $5, $6)`, a.AppID, a.UserID, a.Type, a.Data, a.IP, unix(a.CreatedAt))
	if err != nil {
		return fmt.Errorf("insert activity: %w", err)
	}
	return nil
}

// createTx runs fn, a transaction that inserts a user with a new public id, again when the id
// collided with an imported one (createRetries).
func (s *Store) createTx(ctx context.Context, fn func(*Tx) error) error {
	for try := 1; ; try++ {
		err := s.tx(ctx, fn)
		if !s.pg || try == createRetries || !isUniqueViolation(err) {
			return err
		}
	}
}

// spendPublicID moves SQLite's counter past the id nextPublicID gave an insert of tx, whether
// the insert made a user or met one (ON CONFLICT DO NOTHING), as PostgreSQL's nextval does: both
// engines number users alike. (On PostgreSQL nextval has done it.)
func (s *Store) spendPublicID(ctx context.Context, tx *Tx) error {
	if s.pg {
		return nil
	}
	if _, err := tx.ExecContext(ctx, `UPDATE user_public_ids SET next = next + 1`); err != nil {
		return fmt.Errorf("move the user id counter: %w", err)
	}
	return nil
}

// passPublicID keeps the ids of users made later past id, the largest public id of users tx
// has just imported: on SQLite by moving the counter that nextPublicID reads, on PostgreSQL the
// sequence, with setval. setval is not transactional: a nextval between its read and its write
// may be handed out again, and createTx retries the insert that then collides.
func (s *Store) passPublicID(ctx context.Context, tx *Tx, id int64) error {
	q := `UPDATE user_public_ids SET next = $1 + 1 WHERE next <= $1`
	if s.pg {
		q = `SELECT setval('user_public_ids', $1) WHERE $1 >= (SELECT last_value FROM user_public_ids)`
	}
	if _, err := tx.ExecContext(ctx, q, id); err != nil {
		return fmt.Errorf("move the user id counter past %d: %w", id, err)
	}
	return nil
}
