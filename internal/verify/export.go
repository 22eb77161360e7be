package verify

import (
	"context"
	"errors"
	"fmt"

	"github.com/twofold-auth/twofold/internal/otp"
	"github.com/twofold-auth/twofold/internal/twofold"
)

// SeedExport is a user's authenticator seed as the migration export gives it: the secret, the
// parameters that make its codes, and a code valid now, with which the importer checks the
// factor it makes.
type SeedExport struct {
	Secret []byte
	Digits int
	Period int
	Code   string
}

// ErrNoSeed is the export of a user who has no seed to export: 404, and not 60026, since the
// user exists (its phone number exports) and an importer must not drop it. 60113 is Authy's
// own code for a missing authenticator.
func ErrNoSeed() *twofold.Error {
	return twofold.Errorf(twofold.CodeAuthenticatorNotFound,
		"Authenticator not found: the user has no TOTP app seed (enrolled with users/{id}/secret) to export; registered devices' seeds are not exported.")
}

// ExportSeed gives the seed of the user's TOTP app (enrolled with Enroll), for a customer moving
// its users elsewhere; it is refused (60154) unless the application has enabled the migration
// tools. Only that seed is exported: a registered device's seed is the device's own credential,
// as the Authy app's seeds were, and a user with devices only has none to give (ErrNoSeed).
// The code is computed, not accepted: it spends no time step, so it verifies once here too.
// The export is recorded in the audit trail, without the seed or the code.
func (s *Service) ExportSeed(ctx context.Context, app twofold.App, userID int64) (SeedExport, error) {
	if !app.MigrationTools {
		return SeedExport{}, twofold.ErrMigrationToolsDisabled()
	}
	u, err := s.user(ctx, app.ID, userID, twofold.ErrUserNotFound)
	if err != nil {
		return SeedExport{}, err
	}
	a, err := s.store.GetAuthenticator(ctx, app.ID, u.ID)
	if errors.Is(err, twofold.ErrNotFound) {
		return SeedExport{}, ErrNoSeed()
	}
	if err != nil {
		return SeedExport{}, err
	}
	secret, err := s.keys.Open(a.SecretSealed, seedAD(app.ID, u.ID))
	if err != nil {
		return SeedExport{}, fmt.Errorf("open TOTP seed of user %d: %w", u.ID, err)
	}
	code := otp.TOTP{Secret: secret, Digits: a.Digits, Period: a.Period}.Code(s.now())
	s.record(ctx, twofold.AuditEvent{Action: twofold.AuditUserExported, AppID: app.ID, UserID: u.ID,
		Details: map[string]string{"what": "totp_secret"}})
	return SeedExport{Secret: secret, Digits: a.Digits, Period: a.Period, Code: code}, nil
}
