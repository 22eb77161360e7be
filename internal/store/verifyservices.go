package store

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/twofold-auth/twofold/internal/twofold"
)

// Verify services (migration 00027): configurations inside an application, found by their
// public id within it.

const verifyServiceColumns = `id, public_id, app_id, name, code_length, settings, created_at, updated_at`

func scanVerifyService(row rowScanner) (twofold.VerifyService, error) {
	var v twofold.VerifyService
	var settings string
	var created, updated int64
	if err := row.Scan(&v.ID, &v.PublicID, &v.AppID, &v.Name, &v.CodeLength, &settings, &created, &updated); err != nil {
		return twofold.VerifyService{}, notFound(err)
	}
	if err := json.Unmarshal([]byte(settings), &v.Settings); err != nil {
		return twofold.VerifyService{}, fmt.Errorf("verify service %d: settings: %w", v.ID, err)
	}
	v.CreatedAt, v.UpdatedAt = fromUnix(created), fromUnix(updated)
	return v, nil
}

func encodeServiceSettings(s twofold.VerifyServiceSettings) (string, error) {
	b, err := json.Marshal(s)
	return string(b), err
}

// CreateVerifyService inserts v, setting its ID.
func (s *Store) CreateVerifyService(ctx context.Context, v *twofold.VerifyService) error {
	settings, err := encodeServiceSettings(v.Settings)
	if err != nil {
		return fmt.Errorf("create verify service: %w", err)
	}
	err = s.w.QueryRowContext(ctx, `INSERT INTO verify_services (public_id, app_id, name, code_length, settings, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id`,
		v.PublicID, v.AppID, v.Name, v.CodeLength, settings, unix(v.CreatedAt), unix(v.UpdatedAt)).Scan(&v.ID)
	if isUniqueViolation(err) {
		return twofold.ErrConflict
	}
	if err != nil {
		return fmt.Errorf("create verify service: %w", err)
	}
	return nil
}

// GetVerifyService returns the application's service with publicID.
func (s *Store) GetVerifyService(ctx context.Context, appID int64, publicID string) (twofold.VerifyService, error) {
	return scanVerifyService(s.r.QueryRowContext(ctx, `SELECT `+verifyServiceColumns+` FROM verify_services
		WHERE app_id = $1 AND public_id = $2`, appID, publicID))
}

// UpdateVerifyService writes v's name, code length, settings and update time.
func (s *Store) UpdateVerifyService(ctx context.Context, v twofold.VerifyService) error {
	settings, err := encodeServiceSettings(v.Settings)
	if err != nil {
		return fmt.Errorf("update verify service: %w", err)
	}
	res, err := s.w.ExecContext(ctx, `UPDATE verify_services SET name = $1, code_length = $2, settings = $3, updated_at = $4
		WHERE id = $5 AND app_id = $6`, v.Name, v.CodeLength, settings, unix(v.UpdatedAt), v.ID, v.AppID)
	if err != nil {
		return fmt.Errorf("update verify service: %w", err)
	}
	return mustAffect(res)
}

// DeleteVerifyService removes the application's service with publicID, its verifications, its
// entities' factors and challenges, and its webhooks.
func (s *Store) DeleteVerifyService(ctx context.Context, appID int64, publicID string) error {
	err := s.tx(ctx, func(tx *Tx) error {
		for _, table := range []string{"verifications", "verify_challenges", "verify_factors", "verify_webhooks"} {
			if _, err := tx.ExecContext(ctx, `DELETE FROM `+table+` WHERE service_id IN
				(SELECT id FROM verify_services WHERE app_id = $1 AND public_id = $2)`, appID, publicID); err != nil {
				return err
			}
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM verify_services WHERE app_id = $1 AND public_id = $2`, appID, publicID)
		if err != nil {
			return err
		}
		return mustAffect(res)
	})
	if err != nil {
		return fmt.Errorf("delete verify service: %w", err)
	}
	return nil
}

// ListVerifyServices returns up to limit of the application's services, oldest first: those
// after the one with row id after when after > 0, else from the offset-th.
func (s *Store) ListVerifyServices(ctx context.Context, appID, after int64, offset, limit int) ([]twofold.VerifyService, error) {
	list, err := queryAll(ctx, s.r, scanVerifyService, `SELECT `+verifyServiceColumns+` FROM verify_services
		WHERE app_id = $1 AND id > $2 ORDER BY id LIMIT $3 OFFSET $4`, appID, after, limit, offset)
	if err != nil {
		return nil, fmt.Errorf("list verify services: %w", err)
	}
	return list, nil
}
