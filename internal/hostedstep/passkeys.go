package hostedstep

import (
	"context"
	"encoding/json"
	"errors"
	"net/url"
	"slices"
	"strings"

	"github.com/twofold-auth/twofold/internal/twofold"
)

// Passkeys at the step (issue 21). A passkey is bound to its relying party id: one made on the
// customer's site (rp id shop.example) works on pages whose host is shop.example or a subdomain
// of it, and nowhere else; the browser enforces it. So the step, which runs on Twofold's own
// host, offers "Use a passkey" only when
//
//   - the user has a passkey in the application, and
//   - the application's rp id is the step's host or a registrable suffix of it (Twofold served
//     at login.shop.example, rp id shop.example), and
//   - the step's origin is one of the application's passkey origins, since Twofold checks the
//     origin of every assertion against them.
//
// Otherwise the user's passkeys could not sign here, and the button would only fail. The
// ceremony itself is the passkeys service's: single use, bound to the application and the user,
// with the application's user-verification policy, counter checks and audit; the step checks
// that the passkey is the session's user's and passes the session with how it was proven
// (twofold.PasskeyFactor, which the result's amr tells).

// Passkeys runs passkey sign-ins for the step (passkeys.Service, through an adapter).
type Passkeys interface {
	// RelyingParty returns the application's rp id and the origins its assertions may come
	// from; "" when the application has no passkeys.
	RelyingParty(app twofold.App) (rpID string, origins []string)
	// HasPasskeys reports whether the user has a passkey in the application.
	HasPasskeys(ctx context.Context, app twofold.App, userID int64) (bool, error)
	BeginLogin(ctx context.Context, app twofold.App, userID int64) (PasskeyCeremony, error)
	FinishLogin(ctx context.Context, app twofold.App, ceremony string, response []byte) (PasskeyLogin, error)
}

// PasskeyCeremony is a passkey sign-in begun: its id, and the options for the browser
// ({"publicKey": {...}}).
type PasskeyCeremony struct {
	ID      string
	Options json.RawMessage
}

// PasskeyLogin is an assertion the passkeys service accepted.
type PasskeyLogin struct {
	UserID         int64 // the user's public id
	BackupEligible bool  // a synced passkey
	UserVerified   bool  // the authenticator verified the user (PIN, biometrics)
}

// SetPasskeys lets the step offer passkeys, on its pages at stepURL (Twofold's public URL).
// Call it before the service is used.
func (s *Steps) SetPasskeys(p Passkeys, stepURL string) {
	s.pk = p
	if u, err := url.Parse(stepURL); err == nil && u.Host != "" {
		s.stepOrigin = u.Scheme + "://" + u.Host
		s.stepHost = u.Hostname()
	}
}

// PasskeysReach reports whether passkeys of relying party rpID, with assertions accepted from
// origins, can sign on a page at origin stepOrigin whose host is stepHost: the rp id is the host
// or a suffix of it at a label boundary, and the origin is accepted. (Whether rpID is a public
// suffix is the application's configuration's to refuse; the browser refuses it too.)
func PasskeysReach(rpID string, origins []string, stepOrigin, stepHost string) bool {
	rpID, stepHost = strings.ToLower(strings.TrimSuffix(rpID, ".")), strings.ToLower(strings.TrimSuffix(stepHost, "."))
	if rpID == "" || stepHost == "" || stepOrigin == "" {
		return false
	}
	if stepHost != rpID && !strings.HasSuffix(stepHost, "."+rpID) {
		return false
	}
	return slices.ContainsFunc(origins, func(o string) bool { return strings.EqualFold(strings.TrimSuffix(o, "/"), stepOrigin) })
}

// passkeysOffered reports whether the step offers the user's passkeys (see the package note).
func (s *Steps) passkeysOffered(ctx context.Context, app twofold.App, u twofold.User) (bool, error) {
	if s.pk == nil {
		return false, nil
	}
	rpID, origins := s.pk.RelyingParty(app)
	if !PasskeysReach(rpID, origins, s.stepOrigin, s.stepHost) {
		return false, nil
	}
	return s.pk.HasPasskeys(ctx, app, u.ID)
}

// BeginPasskey starts a passkey sign-in for the session's user.
func (s *Steps) BeginPasskey(ctx context.Context, v View) (PasskeyCeremony, error) {
	if err := v.pending(); err != nil {
		return PasskeyCeremony{}, err
	}
	if err := v.offers(twofold.FactorPasskey); err != nil {
		return PasskeyCeremony{}, err
	}
	return s.pk.BeginLogin(ctx, v.App, v.User.ID)
}

// ErrPasskeyRefused is a passkey that did not pass the step: the service refused the assertion
// (a wrong signature, origin, challenge, a counter going back, a ceremony finished already), or
// it was another user's.
var ErrPasskeyRefused = errors.New("hostedstep: the passkey was refused")

// FinishPasskey checks the browser's assertion for ceremony and, when it is the session's
// user's, passes the session with the factor it proved.
func (s *Steps) FinishPasskey(ctx context.Context, v View, ceremony string, response []byte) (twofold.Factor, error) {
	if err := v.pending(); err != nil {
		return "", err
	}
	if err := v.offers(twofold.FactorPasskey); err != nil {
		return "", err
	}
	login, err := s.pk.FinishLogin(ctx, v.App, ceremony, response)
	if err != nil {
		if twofold.ErrorCode(err) == twofold.CodeRateLimited || twofold.ErrorCode(err) == twofold.CodeInternal {
			return "", err
		}
		var te *twofold.Error
		if errors.As(err, &te) {
			return "", errors.Join(ErrPasskeyRefused, err)
		}
		return "", err
	}
	if login.UserID != v.User.ID {
		return "", ErrPasskeyRefused // a ceremony of another user's: the service binds them, this is belt and braces
	}
	f := twofold.PasskeyFactor(login.BackupEligible, login.UserVerified)
	if err := s.store.FinishStepSession(ctx, v.Session.ID, twofold.StepPassed, f, s.now()); err != nil {
		if errors.Is(err, twofold.ErrConflict) {
			return "", ErrFinished
		}
		return "", err
	}
	if err := s.ClosePush(ctx, v); err != nil {
		return "", err
	}
	return f, nil
}
