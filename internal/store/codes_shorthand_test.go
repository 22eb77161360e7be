package store

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/twofold-auth/twofold/internal/twofold"
)

// Test shorthands over ConsumeCode, the one production path for codes, in the terms the tests
// were written in.

// SpendAttempt charges one wrong try to the user's live codes.
func (s *Store) SpendAttempt(ctx context.Context, u twofold.User, now time.Time) error {
	_, err := s.ConsumeCode(ctx, u.AppID, u.ID, now, 1<<30, func(twofold.OneTimeCode) bool { return false })
	return err
}

// UseCode submits the right token for code id, as the try after the ones already charged: it is
// accepted if at most maxAttempts tries (this one included) were made and the code is live.
func (s *Store) UseCode(ctx context.Context, id int64, now time.Time, maxAttempts int) (bool, error) {
	var appID, userID int64
	err := s.r.QueryRowContext(ctx, `SELECT app_id, `+publicUserID("user_id")+` FROM codes WHERE id = $1`, id).Scan(&appID, &userID)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	r, err := s.ConsumeCode(ctx, appID, userID, now, maxAttempts+1, func(c twofold.OneTimeCode) bool { return c.ID == id })
	return r == twofold.CodeAccepted, err
}
