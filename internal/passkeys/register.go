package passkeys

import (
	"context"
	"errors"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"

	"github.com/twofold-auth/twofold/internal/twofold"
)

// BeginRegistration starts registering a passkey for the user; name (optional) names it, unless
// FinishRegistration is given another. The user's passkeys are excluded, so one authenticator
// is not registered twice.
func (s *Service) BeginRegistration(ctx context.Context, app twofold.App, userID int64, name string) (Ceremony, error) {
	wa, err := relyingParty(app)
	if err != nil {
		return Ceremony{}, err
	}
	if name, err = cleanName(name); err != nil {
		return Ceremony{}, err
	}
	u, list, err := s.load(ctx, app, userID)
	if err != nil {
		return Ceremony{}, err
	}
	// The authenticator shows the account as the user's email or the customer's id for them,
	// when they have one: the user's own, on the customer's own page.
	if who, err := s.store.GetUser(ctx, app.ID, userID); err == nil {
		u.name = who.Email
		if u.name == "" {
			u.name = who.CustomUserID
		}
	}
	if len(list) >= MaxPerUser {
		return Ceremony{}, errRegistration("the user has the most passkeys allowed")
	}
	exclude := make([]protocol.CredentialDescriptor, len(u.creds))
	for i, c := range u.creds {
		exclude[i] = c.Descriptor()
	}
	creation, session, err := wa.BeginRegistration(u, webauthn.WithExclusions(exclude),
		webauthn.WithExtensions(webauthn.WithExtensionCredProps()))
	if err != nil {
		return Ceremony{}, errRegistration(why(err))
	}
	return s.begin(ctx, app, userID, twofold.CeremonyRegistration, name, creation, session)
}

// FinishRegistration verifies the browser's registration response (PublicKeyCredential JSON)
// for the ceremony and stores the passkey, named name, or the ceremony's name, or "Passkey".
func (s *Service) FinishRegistration(ctx context.Context, app twofold.App, userID int64, ceremony string, response []byte, name string) (twofold.Passkey, error) {
	wa, err := relyingParty(app)
	if err != nil {
		return twofold.Passkey{}, err
	}
	if name, err = cleanName(name); err != nil {
		return twofold.Passkey{}, err
	}
	if userID <= 0 {
		return twofold.Passkey{}, twofold.ErrUserNotFound()
	}
	c, session, err := s.consume(ctx, app, ceremony, twofold.CeremonyRegistration)
	if err != nil {
		return twofold.Passkey{}, err
	}
	if c.UserID != userID {
		return twofold.Passkey{}, errCeremony()
	}
	parsed, err := protocol.ParseCredentialCreationResponseBytes(response)
	if err != nil {
		return twofold.Passkey{}, errRegistration(why(err))
	}
	u, _, err := s.load(ctx, app, userID)
	if err != nil {
		return twofold.Passkey{}, err
	}
	cred, err := wa.CreateCredential(u, session, parsed)
	if err != nil {
		return twofold.Passkey{}, errRegistration(why(err))
	}
	if name == "" {
		name = c.Name
	}
	if name == "" {
		name = "Passkey"
	}
	p := twofold.Passkey{PublicID: newID(), AppID: app.ID, UserID: userID, Name: name, CredentialID: cred.ID,
		PublicKey: cred.PublicKey, SignCount: cred.Authenticator.SignCount, BackupEligible: cred.Flags.BackupEligible,
		BackupState: cred.Flags.BackupState, AAGUID: cred.Authenticator.AAGUID, AttestationFormat: cred.AttestationFormat,
		CreatedAt: s.now().UTC()}
	for _, t := range cred.Transport {
		p.Transports = append(p.Transports, string(t))
	}
	switch err := s.store.InsertPasskey(ctx, &p, MaxPerUser); {
	case errors.Is(err, twofold.ErrConflict):
		return twofold.Passkey{}, errRegistration("this credential is registered already")
	case errors.Is(err, twofold.ErrTooMany):
		return twofold.Passkey{}, errRegistration("the user has the most passkeys allowed")
	case errors.Is(err, twofold.ErrNotFound):
		return twofold.Passkey{}, twofold.ErrUserNotFound()
	case err != nil:
		return twofold.Passkey{}, err
	}
	s.record(ctx, twofold.AuditEvent{Action: twofold.AuditPasskeyRegistered, AppID: app.ID, UserID: userID,
		Details: map[string]string{"passkey": p.PublicID}})
	return p, nil
}

// List returns the user's passkeys; an unknown user is 60026.
func (s *Service) List(ctx context.Context, app twofold.App, userID int64) ([]twofold.Passkey, error) {
	if _, err := s.store.GetUser(ctx, app.ID, userID); errors.Is(err, twofold.ErrNotFound) {
		return nil, twofold.ErrUserNotFound()
	} else if err != nil {
		return nil, err
	}
	return s.store.ListPasskeys(ctx, app.ID, userID)
}

// Remove deletes the user's passkey with the public id.
func (s *Service) Remove(ctx context.Context, app twofold.App, userID int64, id string) error {
	if _, err := s.store.GetUser(ctx, app.ID, userID); errors.Is(err, twofold.ErrNotFound) {
		return twofold.ErrUserNotFound()
	} else if err != nil {
		return err
	}
	p, err := s.store.DeletePasskey(ctx, app.ID, userID, id)
	if errors.Is(err, twofold.ErrNotFound) {
		return ErrPasskeyNotFound()
	}
	if err != nil {
		return err
	}
	s.record(ctx, twofold.AuditEvent{Action: twofold.AuditPasskeyRemoved, AppID: app.ID, UserID: userID,
		Details: map[string]string{"passkey": p.PublicID}})
	return nil
}
