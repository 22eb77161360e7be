package store

import (
	"context"
	"fmt"

	"github.com/twofold-auth/twofold/internal/twofold"
)

// An application's credentials on the Verify API (migration 00027): its account and its API
// keys, found by SID. The store keeps what the apps service hands it; it checks nothing.

const twilioCredentialColumns = `id, app_id, sid, kind, name, secret_mac, secret_sealed, created_at`

func scanTwilioCredential(row rowScanner) (twofold.TwilioCredential, error) {
	var c twofold.TwilioCredential
	var created int64
	if err := row.Scan(&c.ID, &c.AppID, &c.SID, &c.Kind, &c.Name, &c.SecretMAC, &c.SecretSealed, &created); err != nil {
		return twofold.TwilioCredential{}, notFound(err)
	}
	c.CreatedAt = fromUnix(created)
	return c, nil
}

// CreateTwilioCredential inserts c, setting its ID. A SID already taken, or a second account
// for the application, is ErrConflict.
func (s *Store) CreateTwilioCredential(ctx context.Context, c *twofold.TwilioCredential) error {
	err := s.w.QueryRowContext(ctx, `INSERT INTO twilio_credentials (app_id, sid, kind, name, secret_mac, secret_sealed, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id`,
		c.AppID, c.SID, c.Kind, c.Name, c.SecretMAC, c.SecretSealed, unix(c.CreatedAt)).Scan(&c.ID)
	if isUniqueViolation(err) {
		return twofold.ErrConflict
	}
	if err != nil {
		return fmt.Errorf("create twilio credential: %w", err)
	}
	return nil
}

// TwilioCredentialBySID returns the credential whose SID is sid, of any application.
func (s *Store) TwilioCredentialBySID(ctx context.Context, sid string) (twofold.TwilioCredential, error) {
	return scanTwilioCredential(s.r.QueryRowContext(ctx, `SELECT `+twilioCredentialColumns+` FROM twilio_credentials
		WHERE sid = $1`, sid))
}

// TwilioAccount returns the application's account credential.
func (s *Store) TwilioAccount(ctx context.Context, appID int64) (twofold.TwilioCredential, error) {
	return scanTwilioCredential(s.r.QueryRowContext(ctx, `SELECT `+twilioCredentialColumns+` FROM twilio_credentials
		WHERE app_id = $1 AND kind = $2`, appID, twofold.TwilioAccount))
}

// ListTwilioCredentials returns the application's credentials, the account first, then the
// keys, oldest first.
func (s *Store) ListTwilioCredentials(ctx context.Context, appID int64) ([]twofold.TwilioCredential, error) {
	list, err := queryAll(ctx, s.r, scanTwilioCredential, `SELECT `+twilioCredentialColumns+` FROM twilio_credentials
		WHERE app_id = $1 ORDER BY CASE kind WHEN 'account' THEN 0 ELSE 1 END, id`, appID)
	if err != nil {
		return nil, fmt.Errorf("list twilio credentials: %w", err)
	}
	return list, nil
}

// ReplaceTwilioSecret gives the application's credential sid a new secret (hash and sealed);
// the old one stops working at once.
func (s *Store) ReplaceTwilioSecret(ctx context.Context, appID int64, sid string, mac, sealed []byte) error {
	res, err := s.w.ExecContext(ctx, `UPDATE twilio_credentials SET secret_mac = $1, secret_sealed = $2
		WHERE app_id = $3 AND sid = $4`, mac, sealed, appID, sid)
	if err != nil {
		return fmt.Errorf("replace twilio secret: %w", err)
	}
	return mustAffect(res)
}

// DeleteTwilioCredential removes the application's credential sid.
func (s *Store) DeleteTwilioCredential(ctx context.Context, appID int64, sid string) error {
	res, err := s.w.ExecContext(ctx, `DELETE FROM twilio_credentials WHERE app_id = $1 AND sid = $2`, appID, sid)
	if err != nil {
		return fmt.Errorf("delete twilio credential: %w", err)
	}
	return mustAffect(res)
}
