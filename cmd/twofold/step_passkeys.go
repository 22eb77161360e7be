package main

import (
	"context"

	"github.com/twofold-auth/twofold/internal/hostedstep"
	"github.com/twofold-auth/twofold/internal/passkeys"
	"github.com/twofold-auth/twofold/internal/twofold"
)

// stepPasskeys lets the hosted step use the passkeys service: the same ceremonies, limits,
// counter checks and audit as the API's.
type stepPasskeys struct{ svc *passkeys.Service }

func (p stepPasskeys) RelyingParty(app twofold.App) (string, []string) {
	return app.PasskeyRPID, app.PasskeyAllowedOrigins()
}

func (p stepPasskeys) HasPasskeys(ctx context.Context, app twofold.App, userID int64) (bool, error) {
	list, err := p.svc.List(ctx, app, userID)
	if twofold.ErrorCode(err) == twofold.CodePasskeysNotConfigured {
		return false, nil
	}
	return len(list) > 0, err
}

func (p stepPasskeys) BeginLogin(ctx context.Context, app twofold.App, userID int64) (hostedstep.PasskeyCeremony, error) {
	c, err := p.svc.BeginLogin(ctx, app, userID)
	return hostedstep.PasskeyCeremony{ID: c.ID, Options: c.Options}, err
}

func (p stepPasskeys) FinishLogin(ctx context.Context, app twofold.App, ceremony string, response []byte) (hostedstep.PasskeyLogin, error) {
	l, err := p.svc.FinishLogin(ctx, app, ceremony, response)
	return hostedstep.PasskeyLogin{UserID: l.UserID, BackupEligible: l.Passkey.BackupEligible, UserVerified: l.UserVerified}, err
}
