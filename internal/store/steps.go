package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/twofold-auth/twofold/internal/twofold"
)

// The hosted second-factor step's clients and sessions (migration 00022; passwordless sessions,
// which begin without a user, 00028).

const stepClientColumns = `id, app_id, client_id, name, redirect_uris, factors, user_match, allow_login_hint,
	hint_jwks_url, hint_issuer, client_jwks_url, auth0_domain, passwordless, created_at, updated_at`

func scanStepClient(r rowScanner) (twofold.StepClient, error) {
	var c twofold.StepClient
	var uris, factors string
	var hint, passwordless int
	var created, updated int64
	err := r.Scan(&c.ID, &c.AppID, &c.ClientID, &c.Name, &uris, &factors, &c.UserMatch, &hint,
		&c.HintJWKSURL, &c.HintIssuer, &c.ClientJWKSURL, &c.Auth0Domain, &passwordless, &created, &updated)
	if err != nil {
		return twofold.StepClient{}, notFound(err)
	}
	if err := json.Unmarshal([]byte(uris), &c.RedirectURIs); err != nil {
		return twofold.StepClient{}, fmt.Errorf("step client %s: redirect_uris: %w", c.ClientID, err)
	}
	if err := json.Unmarshal([]byte(factors), &c.Factors); err != nil {
		return twofold.StepClient{}, fmt.Errorf("step client %s: factors: %w", c.ClientID, err)
	}
	c.AllowLoginHint, c.Passwordless = hint == 1, passwordless == 1
	c.CreatedAt, c.UpdatedAt = fromUnix(created), fromUnix(updated)
	return c, nil
}

// stepClientLists are a client's lists as their columns hold them (JSON arrays, never null).
func stepClientLists(c twofold.StepClient) (uris, factors string) {
	u, _ := json.Marshal(append([]string{}, c.RedirectURIs...))
	f, _ := json.Marshal(append([]twofold.Factor{}, c.Factors...))
	return string(u), string(f)
}

// CreateStepClient inserts c, setting c.ID, with the sealed secrets (by kind) that secrets makes
// once the row id is known (their additional data names the row: StepSecretAD), all in one
// transaction. A client id already taken is ErrConflict; an application that does not exist is
// ErrNotFound.
func (s *Store) CreateStepClient(ctx context.Context, c *twofold.StepClient, secrets func(id int64) map[string][]byte) error {
	uris, factors := stepClientLists(*c)
	err := s.tx(ctx, func(tx *Tx) error {
		var exists int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM apps WHERE id = $1`, c.AppID).Scan(&exists); err != nil {
			return err
		}
		if exists == 0 {
			return twofold.ErrNotFound
		}
		err := tx.QueryRowContext(ctx, `INSERT INTO step_clients (app_id, client_id, name, redirect_uris, factors, user_match,
			allow_login_hint, hint_jwks_url, hint_issuer, client_jwks_url, auth0_domain, passwordless, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $13) RETURNING id`,
			c.AppID, c.ClientID, c.Name, uris, factors, string(c.UserMatch), b2i(c.AllowLoginHint),
			c.HintJWKSURL, c.HintIssuer, c.ClientJWKSURL, c.Auth0Domain, b2i(c.Passwordless), unix(c.CreatedAt)).Scan(&c.ID)
		if isUniqueViolation(err) {
			return twofold.ErrConflict
		}
		if err != nil {
			return err
		}
		if secrets == nil {
			return nil
		}
		for kind, sealed := range secrets(c.ID) {
			if err := putStepSecret(ctx, tx, c.ID, kind, sealed, c.CreatedAt); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("create step client: %w", err)
	}
	c.UpdatedAt = c.CreatedAt
	return nil
}

func putStepSecret(ctx context.Context, tx *Tx, client int64, kind string, sealed []byte, now time.Time) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO step_client_secrets (client_id, kind, secret_sealed, created_at)
		VALUES ($1, $2, $3, $4) ON CONFLICT (client_id, kind) DO UPDATE SET secret_sealed = excluded.secret_sealed,
		created_at = excluded.created_at`, client, kind, sealed, unix(now))
	return err
}

// StepClientByClientID returns the client with the public id clientID.
func (s *Store) StepClientByClientID(ctx context.Context, clientID string) (twofold.StepClient, error) {
	return scanStepClient(s.r.QueryRowContext(ctx, `SELECT `+stepClientColumns+` FROM step_clients WHERE client_id = $1`, clientID))
}

// StepClientByID returns the client with row id id.
func (s *Store) StepClientByID(ctx context.Context, id int64) (twofold.StepClient, error) {
	return scanStepClient(s.r.QueryRowContext(ctx, `SELECT `+stepClientColumns+` FROM step_clients WHERE id = $1`, id))
}

// ListStepClients returns the clients of the application appID (of every application when it
// is 0), oldest first.
func (s *Store) ListStepClients(ctx context.Context, appID int64) ([]twofold.StepClient, error) {
	q, args := `SELECT `+stepClientColumns+` FROM step_clients ORDER BY id`, []any{}
	if appID != 0 {
		q, args = `SELECT `+stepClientColumns+` FROM step_clients WHERE app_id = $1 ORDER BY id`, []any{appID}
	}
	out, err := queryAll(ctx, s.r, scanStepClient, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list step clients: %w", err)
	}
	return out, nil
}

// UpdateStepClient writes c's settings (not its application or client id) and, when secrets
// holds any, replaces those secrets, in one transaction.
func (s *Store) UpdateStepClient(ctx context.Context, c twofold.StepClient, secrets map[string][]byte) error {
	uris, factors := stepClientLists(c)
	err := s.tx(ctx, func(tx *Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE step_clients SET name = $1, redirect_uris = $2, factors = $3, user_match = $4,
			allow_login_hint = $5, hint_jwks_url = $6, hint_issuer = $7, client_jwks_url = $8, auth0_domain = $9, passwordless = $10,
			updated_at = $11 WHERE id = $12`,
			c.Name, uris, factors, string(c.UserMatch), b2i(c.AllowLoginHint), c.HintJWKSURL, c.HintIssuer, c.ClientJWKSURL,
			c.Auth0Domain, b2i(c.Passwordless), unix(c.UpdatedAt), c.ID)
		if err != nil {
			return err
		}
		if err := mustAffect(res); err != nil {
			return err
		}
		for kind, sealed := range secrets {
			if err := putStepSecret(ctx, tx, c.ID, kind, sealed, c.UpdatedAt); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("update step client %s: %w", c.ClientID, err)
	}
	return nil
}

// DeleteStepClient deletes the client (its secrets and sessions go with it).
func (s *Store) DeleteStepClient(ctx context.Context, id int64) error {
	err := s.tx(ctx, func(tx *Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM step_sessions WHERE client_id = $1`, id); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM step_client_secrets WHERE client_id = $1`, id); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM step_clients WHERE id = $1`, id)
		if err != nil {
			return err
		}
		return mustAffect(res)
	})
	if err != nil {
		return fmt.Errorf("delete step client %d: %w", id, err)
	}
	return nil
}

// StepClientSecret returns the client's sealed secret of kind (ErrNotFound when it has none).
func (s *Store) StepClientSecret(ctx context.Context, id int64, kind string) ([]byte, error) {
	var sealed []byte
	err := s.r.QueryRowContext(ctx, `SELECT secret_sealed FROM step_client_secrets WHERE client_id = $1 AND kind = $2`,
		id, kind).Scan(&sealed)
	if err != nil {
		return nil, fmt.Errorf("step client secret: %w", notFound(err))
	}
	return sealed, nil
}

// StepSecretAD is the additional data of a step client's sealed secret: the client's row and the
// secret's kind, so the ciphertext opens only there.
func StepSecretAD(client int64, kind string) string {
	return fmt.Sprintf("step_secret:%d:%s", client, kind)
}

// UserByEmail returns the application's user with email, compared without case. Two users with
// that email are ErrConflict: an email that does not name one user names none.
func (s *Store) UserByEmail(ctx context.Context, appID int64, email string) (twofold.User, error) {
	users, err := queryAll(ctx, s.r, scanUser, `SELECT `+userColumns+` FROM users
		WHERE app_id = $1 AND lower(email) = lower($2) AND email <> '' LIMIT 2`, appID, email)
	switch {
	case err != nil:
		return twofold.User{}, fmt.Errorf("user by email: %w", err)
	case len(users) == 0:
		return twofold.User{}, twofold.ErrNotFound
	case len(users) > 1:
		return twofold.User{}, twofold.ErrConflict
	}
	return users[0], nil
}

// stepSessionColumns read a session; a passwordless session without its user yet reads user 0.
const stepSessionColumns = `id, handle_mac, client_id, app_id, ` + `COALESCE((SELECT public_id FROM users WHERE id = step_sessions.user_id), 0)` +
	`, browser_mac, request, status, factor, approval_uuid, sent_channel, passed_at, created_at, expires_at, passwordless, signin_uuid`

func scanStepSession(r rowScanner) (twofold.StepSession, error) {
	var x twofold.StepSession
	var request string
	var passed, created, expires int64
	var passwordless int
	err := r.Scan(&x.ID, &x.HandleMAC, &x.ClientID, &x.AppID, &x.UserID, &x.BrowserMAC, &request, &x.Status, &x.Factor,
		&x.ApprovalUUID, &x.SentChannel, &passed, &created, &expires, &passwordless, &x.SigninUUID)
	if err != nil {
		return twofold.StepSession{}, notFound(err)
	}
	x.Passwordless = passwordless == 1
	x.Request = []byte(request)
	x.PassedAt, x.CreatedAt, x.ExpiresAt = fromUnix(passed), fromUnix(created), fromUnix(expires)
	return x, nil
}

// CreateStepSession inserts x (pending), setting its ID. A user the application does not have
// is ErrNotFound. A passwordless session (x.Passwordless) is begun without a user: its UserID
// must be 0, and BindStepSession gives it its user.
func (s *Store) CreateStepSession(ctx context.Context, x *twofold.StepSession) error {
	if x.Passwordless && x.UserID != 0 {
		return fmt.Errorf("create step session: a passwordless session begins without a user, not with user %d", x.UserID)
	}
	err := s.tx1(ctx, func(tx *Tx) error {
		var user *int64
		if !x.Passwordless {
			var id int64
			err := tx.QueryRowContext(ctx, `SELECT id FROM users WHERE app_id = $1 AND public_id = $2`, x.AppID, x.UserID).Scan(&id)
			if err != nil {
				return notFound(err)
			}
			user = &id
		}
		return tx.QueryRowContext(ctx, `INSERT INTO step_sessions (handle_mac, client_id, app_id, user_id, browser_mac, request,
			status, created_at, expires_at, passwordless) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id`,
			x.HandleMAC, x.ClientID, x.AppID, user, x.BrowserMAC, string(x.Request), string(twofold.StepPending),
			unix(x.CreatedAt), unix(x.ExpiresAt), b2i(x.Passwordless)).Scan(&x.ID)
	})
	if errors.Is(err, twofold.ErrNotFound) {
		return twofold.ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("create step session: %w", err)
	}
	x.Status = twofold.StepPending
	return nil
}

// StepSessionByHandle returns the session whose handle has the keyed hash mac, unless it has
// expired at now (ErrNotFound either way).
func (s *Store) StepSessionByHandle(ctx context.Context, mac []byte, now time.Time) (twofold.StepSession, error) {
	return scanStepSession(s.r.QueryRowContext(ctx, `SELECT `+stepSessionColumns+` FROM step_sessions
		WHERE handle_mac = $1 AND expires_at > $2`, mac, unix(now)))
}

// SetStepApproval records the push approval request a pending session waits on.
func (s *Store) SetStepApproval(ctx context.Context, id int64, uuid string) error {
	res, err := s.w.ExecContext(ctx, `UPDATE step_sessions SET approval_uuid = $1 WHERE id = $2 AND status = $3`,
		uuid, id, string(twofold.StepPending))
	if err != nil {
		return fmt.Errorf("set step approval: %w", err)
	}
	return mustAffect(res)
}

// SetStepSignin records the passwordless sign-in a pending passwordless session without its
// user waits on (replacing the one before). Any other session is ErrNotFound.
func (s *Store) SetStepSignin(ctx context.Context, id int64, uuid string) error {
	res, err := s.w.ExecContext(ctx, `UPDATE step_sessions SET signin_uuid = $1
		WHERE id = $2 AND status = $3 AND passwordless = 1 AND user_id IS NULL`, uuid, id, string(twofold.StepPending))
	if err != nil {
		return fmt.Errorf("set step signin: %w", err)
	}
	return mustAffect(res)
}

// BindStepSession gives a pending passwordless session without its user the user with public id
// userID of its application, who approved its sign-in uuid, and passes it (factor passwordless,
// at now), in one statement. Only a session still waiting on that very sign-in is bound, and
// only once: a session with a user already, another sign-in's, no longer pending, or a user
// since deleted is ErrConflict.
func (s *Store) BindStepSession(ctx context.Context, id int64, uuid string, userID int64, now time.Time) error {
	if uuid == "" {
		return twofold.ErrConflict
	}
	res, err := s.w.ExecContext(ctx, `UPDATE step_sessions
		SET user_id = (SELECT u.id FROM users u WHERE u.app_id = step_sessions.app_id AND u.public_id = $1),
			status = $2, factor = $3, passed_at = $4
		WHERE id = $5 AND signin_uuid = $6 AND passwordless = 1 AND user_id IS NULL AND status = $7
			AND EXISTS (SELECT 1 FROM users u WHERE u.app_id = step_sessions.app_id AND u.public_id = $1)`,
		userID, string(twofold.StepPassed), string(twofold.FactorPasswordless), unix(now), id, uuid, string(twofold.StepPending))
	if err != nil {
		return fmt.Errorf("bind step session: %w", err)
	}
	if err := mustAffect(res); errors.Is(err, twofold.ErrNotFound) {
		return twofold.ErrConflict
	} else if err != nil {
		return fmt.Errorf("bind step session: %w", err)
	}
	return nil
}

// SetStepSent records the channel of the last code a pending session sent.
func (s *Store) SetStepSent(ctx context.Context, id int64, channel twofold.Channel) error {
	res, err := s.w.ExecContext(ctx, `UPDATE step_sessions SET sent_channel = $1 WHERE id = $2 AND status = $3`,
		string(channel), id, string(twofold.StepPending))
	if err != nil {
		return fmt.Errorf("set step sent: %w", err)
	}
	return mustAffect(res)
}

// FinishStepSession moves a pending session to passed (with the factor that passed, at now) or
// failed. Only one caller wins: a session no longer pending is ErrConflict, and so is passing a
// passwordless session that has no user yet.
func (s *Store) FinishStepSession(ctx context.Context, id int64, status twofold.StepStatus, factor twofold.Factor, now time.Time) error {
	if status != twofold.StepPassed && status != twofold.StepFailed {
		return fmt.Errorf("finish step session: status %q", status)
	}
	q := `UPDATE step_sessions SET status = $1, factor = $2, passed_at = $3 WHERE id = $4 AND status = $5`
	if status == twofold.StepPassed {
		q += ` AND user_id IS NOT NULL` // a session without its user passes only by BindStepSession
	}
	res, err := s.w.ExecContext(ctx, q, string(status), string(factor), unix(now), id, string(twofold.StepPending))
	if err != nil {
		return fmt.Errorf("finish step session: %w", err)
	}
	if err := mustAffect(res); errors.Is(err, twofold.ErrNotFound) {
		return twofold.ErrConflict
	} else if err != nil {
		return fmt.Errorf("finish step session: %w", err)
	}
	return nil
}

// IssueStepCode gives a passed session its authorization code (by keyed hash), valid until
// expires. A session that is not passed, or already has a code, is ErrConflict.
func (s *Store) IssueStepCode(ctx context.Context, id int64, mac []byte, expires time.Time) error {
	res, err := s.w.ExecContext(ctx, `UPDATE step_sessions SET code_mac = $1, code_expires_at = $2
		WHERE id = $3 AND status = $4 AND code_mac IS NULL`, mac, unix(expires), id, string(twofold.StepPassed))
	if err != nil {
		return fmt.Errorf("issue step code: %w", err)
	}
	if err := mustAffect(res); errors.Is(err, twofold.ErrNotFound) {
		return twofold.ErrConflict
	} else if err != nil {
		return fmt.Errorf("issue step code: %w", err)
	}
	return nil
}

// RedeemStepCode spends the authorization code with keyed hash mac for the client (row id
// client) at now and returns its session, now done. A code that is unknown, expired, of another
// client or already spent is ErrNotFound, and only one of two concurrent redemptions wins.
func (s *Store) RedeemStepCode(ctx context.Context, mac []byte, client int64, now time.Time) (twofold.StepSession, error) {
	var x twofold.StepSession
	err := s.tx(ctx, func(tx *Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE step_sessions SET code_used_at = $1, status = $2
			WHERE code_mac = $3 AND client_id = $4 AND code_used_at = 0 AND code_expires_at > $1 AND status = $5`,
			unix(now), string(twofold.StepDone), mac, client, string(twofold.StepPassed))
		if err != nil {
			return err
		}
		if err := mustAffect(res); err != nil {
			return err
		}
		x, err = scanStepSession(tx.QueryRowContext(ctx, `SELECT `+stepSessionColumns+` FROM step_sessions WHERE code_mac = $1`, mac))
		return err
	})
	if errors.Is(err, twofold.ErrNotFound) {
		return twofold.StepSession{}, twofold.ErrNotFound
	}
	if err != nil {
		return twofold.StepSession{}, fmt.Errorf("redeem step code: %w", err)
	}
	return x, nil
}

// CloseStepSession marks a passed session done without a code (a result handed back in the
// browser: Entra's form_post, Auth0's redirect). A session not passed is ErrConflict.
func (s *Store) CloseStepSession(ctx context.Context, id int64, now time.Time) error {
	res, err := s.w.ExecContext(ctx, `UPDATE step_sessions SET status = $1, code_used_at = $2 WHERE id = $3 AND status = $4`,
		string(twofold.StepDone), unix(now), id, string(twofold.StepPassed))
	if err != nil {
		return fmt.Errorf("close step session: %w", err)
	}
	if err := mustAffect(res); errors.Is(err, twofold.ErrNotFound) {
		return twofold.ErrConflict
	} else if err != nil {
		return fmt.Errorf("close step session: %w", err)
	}
	return nil
}

// SpendMarks records that the JWT the keyed hashes macs stand for (one per key of the ring) is
// spent, for the application appID, until expires (then the sweep takes them). If any of them
// is already recorded, nothing is and the answer is ErrConflict: a JWT is spent once. The marks
// share the spent registration JWTs' table (migration 00016).
func (s *Store) SpendMarks(ctx context.Context, macs [][]byte, appID int64, expires, now time.Time) error {
	err := s.tx(ctx, func(tx *Tx) error {
		for _, mac := range macs {
			var n int
			if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM spent_registration_jwts WHERE mac = $1`, mac).Scan(&n); err != nil {
				return err
			}
			if n > 0 {
				return twofold.ErrConflict
			}
		}
		for _, mac := range macs {
			_, err := tx.ExecContext(ctx, `INSERT INTO spent_registration_jwts (mac, app_id, expires_at, spent_at) VALUES ($1, $2, $3, $4)`,
				mac, appID, unix(expires), unix(now))
			if isUniqueViolation(err) {
				return twofold.ErrConflict
			}
			if err != nil {
				return err
			}
		}
		return nil
	})
	if errors.Is(err, twofold.ErrConflict) {
		return twofold.ErrConflict
	}
	if err != nil {
		return fmt.Errorf("spend marks: %w", err)
	}
	return nil
}
