package hostedstep

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/twofold-auth/twofold/internal/twofold"
)

// Result is what a passed step hands back to its client: who passed, how and when, and what
// the client asked at the start.
type Result struct {
	Session  twofold.StepSession
	Client   twofold.StepClient
	User     twofold.User
	Factor   twofold.Factor
	AuthTime time.Time // when the factor passed
}

// IssueCode gives a passed session a single-use authorization code that the client redeems
// (Redeem) within Config.CodeTTL.
func (s *Steps) IssueCode(ctx context.Context, v View) (string, error) {
	if v.Session.Status != twofold.StepPassed {
		return "", ErrFinished
	}
	code := randomToken("", 32)
	if err := s.store.IssueStepCode(ctx, v.Session.ID, s.macs.Lookup(macCode+code), s.now().Add(s.cfg.CodeTTL)); err != nil {
		if errors.Is(err, twofold.ErrConflict) {
			return "", ErrFinished
		}
		return "", err
	}
	return code, nil
}

// Redeem spends an authorization code of client c and returns the result it stands for. A code
// that is unknown, expired, already spent or another client's is ErrNoCode: a code works once,
// for the client it was issued to.
func (s *Steps) Redeem(ctx context.Context, c twofold.StepClient, code string) (Result, error) {
	if code == "" || len(code) > 100 {
		return Result{}, ErrNoCode
	}
	for _, mac := range s.macs.Lookups(macCode + code) {
		x, err := s.store.RedeemStepCode(ctx, mac, c.ID, s.now())
		if errors.Is(err, twofold.ErrNotFound) {
			continue
		}
		if err != nil {
			return Result{}, err
		}
		return s.result(ctx, c, x)
	}
	return Result{}, ErrNoCode
}

// Close finishes a passed session whose result goes back through the browser (a form post of an
// id token, an Auth0 redirect) and returns the result, once.
func (s *Steps) Close(ctx context.Context, v View) (Result, error) {
	if err := s.store.CloseStepSession(ctx, v.Session.ID, s.now()); err != nil {
		if errors.Is(err, twofold.ErrConflict) {
			return Result{}, ErrFinished
		}
		return Result{}, err
	}
	x, err := s.store.StepSessionByHandle(ctx, v.Session.HandleMAC, s.now())
	if err != nil {
		return Result{}, err
	}
	return s.result(ctx, v.Client, x)
}

func (s *Steps) result(ctx context.Context, c twofold.StepClient, x twofold.StepSession) (Result, error) {
	u, err := s.store.GetUser(ctx, x.AppID, x.UserID)
	if err != nil {
		return Result{}, err
	}
	return Result{Session: x, Client: c, User: u, Factor: x.Factor, AuthTime: x.PassedAt}, nil
}

// AMR names how a factor authenticates in RFC 8176's values, for the results the wire
// contracts hand back (an id token's amr, the Auth0 token's).
func AMR(f twofold.Factor) []string {
	if f.Base() == twofold.FactorPasskey && f != twofold.FactorPasskey {
		// A passkey (twofold.PasskeyFactor): proof of possession of a device-bound key (hwk)
		// or of one a password manager syncs (swk), and either the authenticator's test of the
		// user's presence (user) or its verification of the user by PIN or biometrics (pin:
		// RFC 8176 has no value for "one of the two", and a PIN is what every verifying
		// authenticator has).
		return strings.Split(string(f), ".")[1:]
	}
	switch f {
	case twofold.FactorPush:
		return []string{"pop"} // the device signed the approval with its key
	case twofold.FactorPasswordless:
		// The device signed the approval with its key (pop: whether that key is in hardware is
		// the device's to know, not Twofold's), and the user matched the number the browser
		// showed on the phone: two channels (mca). One factor, so not mfa.
		return []string{"pop", "mca"}
	case twofold.FactorPasskey:
		return []string{"swk", "user"} // never recorded bare (PasskeyFactor): the weakest reading
	case twofold.FactorSMS:
		return []string{"sms"}
	case twofold.FactorCall:
		return []string{"tel"}
	case twofold.FactorRecoveryCode:
		// A written-down, single-use secret (NIST SP 800-63B's look-up secret), for which RFC
		// 8176 has no value. Not otp: a relying party that asks for an authenticator's or a sent
		// code must not take it for one. kba, a secret the user holds with no device, is the
		// registered value nearest to it and ranks below otp in any relying party's policy.
		return []string{"kba"}
	}
	return []string{"otp"} // an authenticator's code, a code by email
}
