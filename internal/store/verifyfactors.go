package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/twofold-auth/twofold/internal/twofold"
)

// Verify factors and challenges (migration 00029), found by their public id within one service
// and one entity (a user of the service's application).

const verifyFactorColumns = `id, public_id, app_id, service_id, user_id, factor_type, name, status, secret_sealed, config,
	metadata, last_step, failures, device_id, created_at, updated_at`

func scanVerifyFactor(row rowScanner) (twofold.VerifyFactor, error) {
	var f twofold.VerifyFactor
	var config, metadata string
	var created, updated int64
	if err := row.Scan(&f.ID, &f.PublicID, &f.AppID, &f.ServiceID, &f.UserID, &f.Type, &f.Name, &f.Status, &f.SecretSealed,
		&config, &metadata, &f.LastStep, &f.Failures, &f.DeviceID, &created, &updated); err != nil {
		return twofold.VerifyFactor{}, notFound(err)
	}
	if err := json.Unmarshal([]byte(config), &f.Config); err != nil {
		return twofold.VerifyFactor{}, fmt.Errorf("verify factor %d: config: %w", f.ID, err)
	}
	if err := json.Unmarshal([]byte(metadata), &f.Metadata); err != nil {
		return twofold.VerifyFactor{}, fmt.Errorf("verify factor %d: metadata: %w", f.ID, err)
	}
	f.CreatedAt, f.UpdatedAt = fromUnix(created), fromUnix(updated)
	return f, nil
}

func jsonText(v any) (string, error) {
	b, err := json.Marshal(v)
	return string(b), err
}

// InsertVerifyFactor inserts f, setting its ID, and queues events in the same transaction.
func (s *Store) InsertVerifyFactor(ctx context.Context, f *twofold.VerifyFactor, events ...twofold.VerifyWebhookEvent) error {
	config, err := jsonText(f.Config)
	if err != nil {
		return fmt.Errorf("insert verify factor: %w", err)
	}
	metadata, err := jsonText(f.Metadata)
	if err != nil {
		return fmt.Errorf("insert verify factor: %w", err)
	}
	err = s.tx(ctx, func(tx *Tx) error {
		err := tx.QueryRowContext(ctx, `INSERT INTO verify_factors (public_id, app_id, service_id, user_id, factor_type, name, status,
			secret_sealed, config, metadata, last_step, failures, device_id, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 0, 0, $11, $12, $13) RETURNING id`,
			f.PublicID, f.AppID, f.ServiceID, f.UserID, f.Type, f.Name, f.Status, f.SecretSealed, config, metadata, f.DeviceID,
			unix(f.CreatedAt), unix(f.UpdatedAt)).Scan(&f.ID)
		if isUniqueViolation(err) {
			return twofold.ErrConflict
		}
		if err != nil {
			return err
		}
		return queueVerifyEvents(ctx, tx, events)
	})
	if errors.Is(err, twofold.ErrConflict) {
		return err
	}
	if err != nil {
		return fmt.Errorf("insert verify factor: %w", err)
	}
	return nil
}

// GetVerifyFactor returns the entity's factor with publicID in the service.
func (s *Store) GetVerifyFactor(ctx context.Context, serviceID, userID int64, publicID string) (twofold.VerifyFactor, error) {
	return scanVerifyFactor(s.r.QueryRowContext(ctx, `SELECT `+verifyFactorColumns+` FROM verify_factors
		WHERE service_id = $1 AND user_id = $2 AND public_id = $3`, serviceID, userID, publicID))
}

// GetVerifyFactorByID returns the entity's factor with row id in the service.
func (s *Store) GetVerifyFactorByID(ctx context.Context, serviceID, userID, id int64) (twofold.VerifyFactor, error) {
	return scanVerifyFactor(s.r.QueryRowContext(ctx, `SELECT `+verifyFactorColumns+` FROM verify_factors
		WHERE service_id = $1 AND user_id = $2 AND id = $3`, serviceID, userID, id))
}

// ListVerifyFactors returns up to limit of the entity's factors in the service, oldest first:
// those after row id after when after > 0, else from the offset-th.
func (s *Store) ListVerifyFactors(ctx context.Context, serviceID, userID, after int64, offset, limit int) ([]twofold.VerifyFactor, error) {
	list, err := queryAll(ctx, s.r, scanVerifyFactor, `SELECT `+verifyFactorColumns+` FROM verify_factors
		WHERE service_id = $1 AND user_id = $2 AND id > $3 ORDER BY id LIMIT $4 OFFSET $5`, serviceID, userID, after, limit, offset)
	if err != nil {
		return nil, fmt.Errorf("list verify factors: %w", err)
	}
	return list, nil
}

// ListEntities returns up to limit of the application's users whose custom user id could be a
// Verify entity's identity (8 to 64 characters), by public id: those after public id after when
// after > 0, else from the offset-th.
func (s *Store) ListEntities(ctx context.Context, appID, after int64, offset, limit int) ([]twofold.User, error) {
	list, err := queryAll(ctx, s.r, scanUser, `SELECT `+userColumns+` FROM users WHERE app_id = $1 AND custom_user_id <> ''
		AND length(custom_user_id) BETWEEN 8 AND 64 AND public_id > $2 ORDER BY public_id LIMIT $3 OFFSET $4`, appID, after, limit, offset)
	if err != nil {
		return nil, fmt.Errorf("list entities: %w", err)
	}
	return list, nil
}

// UpdateVerifyFactor writes f's name, status, config, metadata and update time.
func (s *Store) UpdateVerifyFactor(ctx context.Context, f twofold.VerifyFactor, events ...twofold.VerifyWebhookEvent) error {
	config, err := jsonText(f.Config)
	if err != nil {
		return fmt.Errorf("update verify factor: %w", err)
	}
	metadata, err := jsonText(f.Metadata)
	if err != nil {
		return fmt.Errorf("update verify factor: %w", err)
	}
	err = s.tx(ctx, func(tx *Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE verify_factors SET name = $1, status = $2, config = $3, metadata = $4, updated_at = $5
			WHERE id = $6`, f.Name, f.Status, config, metadata, unix(f.UpdatedAt), f.ID)
		if err != nil {
			return err
		}
		if err := mustAffect(res); err != nil {
			return err
		}
		return queueVerifyEvents(ctx, tx, events)
	})
	if errors.Is(err, twofold.ErrNotFound) {
		return err
	}
	if err != nil {
		return fmt.Errorf("update verify factor: %w", err)
	}
	return nil
}

// SpendFactorStep records that a code of the factor's time step was accepted: false when a code
// of that step or a later one already was (a replay).
func (s *Store) SpendFactorStep(ctx context.Context, factorID, step int64) (bool, error) {
	res, err := s.w.ExecContext(ctx, `UPDATE verify_factors SET last_step = $1 WHERE id = $2 AND last_step < $1`, step, factorID)
	if err != nil {
		return false, fmt.Errorf("spend factor step: %w", err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// AddFactorFailure counts a wrong code of the factor and returns how many there have been.
func (s *Store) AddFactorFailure(ctx context.Context, factorID int64) (int, error) {
	var n int
	err := s.w.QueryRowContext(ctx, `UPDATE verify_factors SET failures = failures + 1 WHERE id = $1 RETURNING failures`,
		factorID).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("add factor failure: %w", notFound(err))
	}
	return n, nil
}

// DeleteVerifyFactor removes the entity's factor with publicID and its challenges.
func (s *Store) DeleteVerifyFactor(ctx context.Context, serviceID, userID int64, publicID string, events ...twofold.VerifyWebhookEvent) error {
	err := s.tx(ctx, func(tx *Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM verify_challenges WHERE factor_id IN (SELECT id FROM verify_factors
			WHERE service_id = $1 AND user_id = $2 AND public_id = $3)`, serviceID, userID, publicID); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM verify_factors WHERE service_id = $1 AND user_id = $2 AND public_id = $3`,
			serviceID, userID, publicID)
		if err != nil {
			return err
		}
		if err := mustAffect(res); err != nil {
			return err
		}
		return queueVerifyEvents(ctx, tx, events)
	})
	if errors.Is(err, twofold.ErrNotFound) {
		return err
	}
	if err != nil {
		return fmt.Errorf("delete verify factor: %w", err)
	}
	return nil
}

// DeleteVerifyEntity removes the entity's factors and challenges in the service, and returns how
// many factors there were. events (the factors' deletions) are queued in the same transaction.
func (s *Store) DeleteVerifyEntity(ctx context.Context, serviceID, userID int64, events ...twofold.VerifyWebhookEvent) (int64, error) {
	var n int64
	err := s.tx(ctx, func(tx *Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM verify_challenges WHERE service_id = $1 AND user_id = $2`, serviceID, userID); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM verify_factors WHERE service_id = $1 AND user_id = $2`, serviceID, userID)
		if err != nil {
			return err
		}
		if n, err = res.RowsAffected(); err != nil {
			return err
		}
		return queueVerifyEvents(ctx, tx, events)
	})
	if err != nil {
		return 0, fmt.Errorf("delete verify entity: %w", err)
	}
	return n, nil
}

const verifyChallengeColumns = `id, public_id, app_id, service_id, user_id, factor_id, status, responded_reason, details,
	hidden_details, failures, approval_uuid, created_at, updated_at, expires_at, responded_at`

func scanVerifyChallenge(row rowScanner) (twofold.VerifyChallenge, error) {
	var c twofold.VerifyChallenge
	var details, hidden string
	var created, updated, expires, responded int64
	if err := row.Scan(&c.ID, &c.PublicID, &c.AppID, &c.ServiceID, &c.UserID, &c.FactorID, &c.Status, &c.RespondedReason,
		&details, &hidden, &c.Failures, &c.ApprovalUUID, &created, &updated, &expires, &responded); err != nil {
		return twofold.VerifyChallenge{}, notFound(err)
	}
	if err := json.Unmarshal([]byte(details), &c.Details); err != nil {
		return twofold.VerifyChallenge{}, fmt.Errorf("verify challenge %d: details: %w", c.ID, err)
	}
	if err := json.Unmarshal([]byte(hidden), &c.HiddenDetails); err != nil {
		return twofold.VerifyChallenge{}, fmt.Errorf("verify challenge %d: hidden details: %w", c.ID, err)
	}
	c.CreatedAt, c.UpdatedAt, c.ExpiresAt = fromUnix(created), fromUnix(updated), fromUnix(expires)
	if responded != 0 {
		c.RespondedAt = fromUnix(responded)
	}
	return c, nil
}

// InsertVerifyChallenge inserts c, setting its ID.
func (s *Store) InsertVerifyChallenge(ctx context.Context, c *twofold.VerifyChallenge) error {
	details, err := jsonText(c.Details)
	if err != nil {
		return fmt.Errorf("insert verify challenge: %w", err)
	}
	hidden, err := jsonText(c.HiddenDetails)
	if err != nil {
		return fmt.Errorf("insert verify challenge: %w", err)
	}
	err = s.w.QueryRowContext(ctx, `INSERT INTO verify_challenges (public_id, app_id, service_id, user_id, factor_id, status,
		responded_reason, details, hidden_details, failures, approval_uuid, created_at, updated_at, expires_at, responded_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 0, $10, $11, $12, $13, 0) RETURNING id`,
		c.PublicID, c.AppID, c.ServiceID, c.UserID, c.FactorID, c.Status, c.RespondedReason, details, hidden, c.ApprovalUUID,
		unix(c.CreatedAt), unix(c.UpdatedAt), unix(c.ExpiresAt)).Scan(&c.ID)
	if isUniqueViolation(err) {
		return twofold.ErrConflict
	}
	if err != nil {
		return fmt.Errorf("insert verify challenge: %w", err)
	}
	return nil
}

// GetVerifyChallenge returns the entity's challenge with publicID in the service.
func (s *Store) GetVerifyChallenge(ctx context.Context, serviceID, userID int64, publicID string) (twofold.VerifyChallenge, error) {
	return scanVerifyChallenge(s.r.QueryRowContext(ctx, `SELECT `+verifyChallengeColumns+` FROM verify_challenges
		WHERE service_id = $1 AND user_id = $2 AND public_id = $3`, serviceID, userID, publicID))
}

// ListVerifyChallenges returns up to limit of the entity's challenges in the service that pass
// f: those after row id after (before it when f.Desc) when after > 0, else from the offset-th.
func (s *Store) ListVerifyChallenges(ctx context.Context, serviceID, userID int64, f twofold.ChallengeFilter, after int64, offset, limit int) ([]twofold.VerifyChallenge, error) {
	args := []any{serviceID, userID}
	arg := func(v any) string { args = append(args, v); return fmt.Sprintf("$%d", len(args)) }
	q := `SELECT ` + verifyChallengeColumns + ` FROM verify_challenges WHERE service_id = $1 AND user_id = $2`
	if f.FactorID != 0 {
		q += ` AND factor_id = ` + arg(f.FactorID)
	}
	switch f.Status {
	case "":
	case twofold.ChallengeExpired:
		q += ` AND status = 'pending' AND expires_at <= ` + arg(unix(f.Now))
	case twofold.ChallengePending:
		q += ` AND status = 'pending' AND expires_at > ` + arg(unix(f.Now))
	default:
		q += ` AND status = ` + arg(f.Status)
	}
	switch {
	case f.Desc && after > 0:
		q += ` AND id < ` + arg(after) + ` ORDER BY id DESC`
	case f.Desc:
		q += ` ORDER BY id DESC`
	default:
		q += ` AND id > ` + arg(after) + ` ORDER BY id`
	}
	q += ` LIMIT ` + arg(limit) + ` OFFSET ` + arg(offset)
	list, err := queryAll(ctx, s.r, scanVerifyChallenge, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list verify challenges: %w", err)
	}
	return list, nil
}

// AnswerVerifyChallenge ends a pending, unexpired challenge with status: false when it had
// already ended or expired.
func (s *Store) AnswerVerifyChallenge(ctx context.Context, id int64, status, reason string, now time.Time, events ...twofold.VerifyWebhookEvent) (bool, error) {
	answered := false
	err := s.tx(ctx, func(tx *Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE verify_challenges SET status = $1, responded_reason = $2, responded_at = $3, updated_at = $3
			WHERE id = $4 AND status = 'pending' AND expires_at > $3`, status, reason, unix(now), id)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil || n != 1 {
			return err
		}
		answered = true
		return queueVerifyEvents(ctx, tx, events)
	})
	if err != nil {
		return false, fmt.Errorf("answer verify challenge: %w", err)
	}
	return answered, nil
}

// AddChallengeFailure counts a wrong answer to the challenge and returns how many there have been.
func (s *Store) AddChallengeFailure(ctx context.Context, id int64) (int, error) {
	var n int
	err := s.w.QueryRowContext(ctx, `UPDATE verify_challenges SET failures = failures + 1 WHERE id = $1 RETURNING failures`,
		id).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("add challenge failure: %w", notFound(err))
	}
	return n, nil
}
