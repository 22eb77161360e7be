package passkeys

import (
	"context"
	"errors"
	"strconv"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"

	"github.com/twofold-auth/twofold/internal/twofold"
)

// BeginLogin starts a sign-in with a passkey: for the user's passkeys (a second factor, or
// passwordless after a username), or with userID 0 for any discoverable passkey of the
// application (usernameless), where the application allows it. A usernameless sign-in always
// requires user verification: the passkey is then the only factor.
func (s *Service) BeginLogin(ctx context.Context, app twofold.App, userID int64) (Ceremony, error) {
	wa, err := relyingParty(app)
	if err != nil {
		return Ceremony{}, err
	}
	if userID == 0 {
		if !app.PasskeyUsernameless {
			return Ceremony{}, twofold.Errorf(twofold.CodeUsernamelessDisabled,
				"Usernameless sign-in is not allowed for this application: name the user (user_id).")
		}
		assertion, session, err := wa.BeginDiscoverableLogin(webauthn.WithUserVerification(protocol.VerificationRequired))
		if err != nil {
			return Ceremony{}, errAssertion(why(err))
		}
		return s.begin(ctx, app, 0, twofold.CeremonyAuthentication, "", assertion, session)
	}
	u, _, err := s.load(ctx, app, userID)
	if err != nil {
		return Ceremony{}, err
	}
	if len(u.creds) == 0 {
		return Ceremony{}, twofold.Errorf(twofold.CodeNoPasskeys, "The user has no passkeys.")
	}
	assertion, session, err := wa.BeginLogin(u)
	if err != nil {
		return Ceremony{}, errAssertion(why(err))
	}
	return s.begin(ctx, app, userID, twofold.CeremonyAuthentication, "", assertion, session)
}

// FinishLogin verifies the browser's assertion (PublicKeyCredential JSON) for the ceremony. The
// try counts against the user's failure limit before it is judged and is given back when it
// succeeds. A signature counter that did not move forward is a cloned authenticator: refused
// and recorded (passkey.clone_detected).
func (s *Service) FinishLogin(ctx context.Context, app twofold.App, ceremony string, response []byte) (Login, error) {
	wa, err := relyingParty(app)
	if err != nil {
		return Login{}, err
	}
	c, session, err := s.consume(ctx, app, ceremony, twofold.CeremonyAuthentication)
	if err != nil {
		return Login{}, err
	}
	parsed, perr := protocol.ParseCredentialRequestResponseBytes(response)
	userID := c.UserID
	if userID == 0 { // usernameless: the assertion's user handle names the user
		if perr != nil {
			return Login{}, errAssertion(why(perr))
		}
		if len(parsed.Response.UserHandle) == 0 {
			return Login{}, errAssertion("the passkey gave no user handle (it is not discoverable)")
		}
		if userID, err = s.store.UserByPasskeyHandle(ctx, app.ID, parsed.Response.UserHandle); errors.Is(err, twofold.ErrNotFound) {
			return Login{}, errAssertion("no user of this application has this passkey")
		} else if err != nil {
			return Login{}, err
		}
	}
	release := func(context.Context) error { return nil }
	if s.limiter != nil {
		if release, err = s.limiter.Attempt(ctx, app, userID); err != nil {
			return Login{}, err
		}
	}
	login, err := s.judge(ctx, app, wa, c, session, userID, parsed, perr)
	if err != nil {
		why := "invalid"
		if twofold.ErrorCode(err) == twofold.CodePasskeyCloned {
			why = "cloned"
		}
		if code := twofold.ErrorCode(err); code == twofold.CodePasskeyInvalid || code == twofold.CodePasskeyCloned {
			s.record(ctx, twofold.AuditEvent{Action: twofold.AuditVerificationFailed, AppID: app.ID, UserID: userID,
				Details: map[string]string{"why": why, "method": "passkey"}})
		}
		return Login{}, err
	}
	if err := release(ctx); err != nil {
		return Login{}, err
	}
	s.record(ctx, twofold.AuditEvent{Action: twofold.AuditPasskeyUsed, AppID: app.ID, UserID: userID,
		Details: map[string]string{"passkey": login.Passkey.PublicID, "user_verified": strconv.FormatBool(login.UserVerified),
			"usernameless": strconv.FormatBool(c.UserID == 0)}})
	return login, nil
}

// judge verifies the parsed assertion for the user and records the passkey's use.
func (s *Service) judge(ctx context.Context, app twofold.App, wa *webauthn.WebAuthn, c twofold.PasskeyCeremony,
	session webauthn.SessionData, userID int64, parsed *protocol.ParsedCredentialAssertionData, perr error) (Login, error) {
	if perr != nil {
		return Login{}, errAssertion(why(perr))
	}
	u, list, err := s.load(ctx, app, userID)
	if errors.Is(err, twofold.ErrNotFound) || twofold.ErrorCode(err) == twofold.CodeUserNotFound {
		return Login{}, errAssertion("the user is gone")
	}
	if err != nil {
		return Login{}, err
	}
	var cred *webauthn.Credential
	if c.UserID == 0 {
		_, cred, err = wa.ValidatePasskeyLogin(func(_, handle []byte) (webauthn.User, error) { return u, nil }, session, parsed)
	} else {
		cred, err = wa.ValidateLogin(u, session, parsed)
	}
	if err != nil {
		return Login{}, errAssertion(why(err))
	}
	var p twofold.Passkey
	for _, q := range list {
		if string(q.CredentialID) == string(cred.ID) {
			p = q
		}
	}
	if p.ID == 0 {
		return Login{}, errAssertion("unknown passkey")
	}
	presented := parsed.Response.AuthenticatorData.Counter
	now := s.now().UTC()
	ok := !cred.Authenticator.CloneWarning
	if ok {
		ok, err = s.store.UsePasskey(ctx, app.ID, p.ID, presented, parsed.Response.AuthenticatorData.Flags.HasBackupState(), now)
		if err != nil {
			return Login{}, err
		}
	}
	if !ok {
		s.record(ctx, twofold.AuditEvent{Action: twofold.AuditPasskeyCloneDetected, AppID: app.ID, UserID: userID,
			Details: map[string]string{"passkey": p.PublicID, "stored_count": strconv.FormatUint(uint64(p.SignCount), 10),
				"presented_count": strconv.FormatUint(uint64(presented), 10)}})
		return Login{}, errCloned()
	}
	p.SignCount, p.BackupState, p.LastUsedAt = presented, parsed.Response.AuthenticatorData.Flags.HasBackupState(), now
	return Login{UserID: userID, Passkey: p, UserVerified: parsed.Response.AuthenticatorData.Flags.HasUserVerified()}, nil
}
