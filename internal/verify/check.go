package verify

import (
	"context"
	"errors"
	"fmt"

	"github.com/twofold-auth/twofold/internal/otp"
	"github.com/twofold-auth/twofold/internal/seal"
	"github.com/twofold-auth/twofold/internal/twofold"
)

// Method says what a token was accepted as.
type Method string

const (
	MethodCode        Method = "code"        // an SMS, call or email code
	MethodTOTP        Method = "totp"        // the user's authenticator app
	MethodSandbox     Method = "sandbox"     // the sandbox test token
	MethodUnconfirmed Method = "unconfirmed" // the app allows unconfirmed users through without force
)

// CheckParams are the options of verify/{token}/{id}.
type CheckParams struct {
	Action string
	Force  bool
}

// Check verifies token for the user. It returns how the token was accepted, or an *twofold.Error:
// 60016 unknown user, 60020 wrong token, 60019 reused token, 60003 too many failures.
func (s *Service) Check(ctx context.Context, app twofold.App, userID int64, token string, p CheckParams) (Method, error) {
	u, err := s.user(ctx, app.ID, userID, twofold.ErrUserDoesNotExist)
	if err != nil {
		return "", err
	}
	if !wellFormed(token) {
		return "", twofold.ErrTokenInvalid()
	}
	if app.Sandbox && token == s.cfg.SandboxToken {
		return MethodSandbox, nil
	}
	if app.UnconfirmedBypass && !p.Force && !u.Confirmed {
		return MethodUnconfirmed, nil
	}

	counter := failureCounter(app.ID, u.ID)
	if err := s.hit(ctx, counter, s.cfg.FailureLimit, "too many failed verifications for this user"); err != nil {
		return "", err
	}
	method, err := s.check(ctx, app, u, token, p.Action)
	if err != nil {
		return "", err
	}
	// Success is not a failure: give back the attempt counted above.
	if err := s.refund(ctx, counter, s.cfg.FailureLimit); err != nil {
		return "", err
	}
	if !u.Confirmed {
		if err := s.store.ConfirmUser(ctx, app.ID, u.ID); err != nil {
			return "", err
		}
	}
	if err := s.store.AddUsage(ctx, app.ID, s.now(), twofold.UsageAuths, 1); err != nil {
		return "", err
	}
	return method, nil
}

func (s *Service) check(ctx context.Context, app twofold.App, u twofold.User, token, action string) (Method, error) {
	now := s.now()
	// Charge the attempt to every live code first; a code whose attempts run out dies even if
	// the right guess is among a parallel burst.
	if err := s.store.SpendAttempt(ctx, u.ID, now); err != nil {
		return "", err
	}
	codes, err := s.store.UnexpiredCodes(ctx, u.ID, now)
	if err != nil {
		return "", err
	}
	mac := s.keys.CodeMAC(codeContext(app.ID, u.ID, action), token)
	var match *twofold.OneTimeCode
	for i := range codes {
		// Compare against every code, in constant time, without stopping at a match.
		if seal.Equal(codes[i].MAC, mac) && match == nil {
			match = &codes[i]
		}
	}
	if match != nil {
		switch {
		case !match.UsedAt.IsZero():
			return "", twofold.ErrTokenReused()
		case match.Superseded || match.Attempts > s.cfg.MaxAttempts:
			return "", twofold.ErrTokenInvalid()
		}
		ok, err := s.store.UseCode(ctx, match.ID, now, s.cfg.MaxAttempts)
		if err != nil {
			return "", err
		}
		if !ok {
			return "", twofold.ErrTokenReused() // a parallel request used it first
		}
		return MethodCode, nil
	}
	return s.checkTOTP(ctx, app, u, token)
}

func (s *Service) checkTOTP(ctx context.Context, app twofold.App, u twofold.User, token string) (Method, error) {
	a, err := s.store.GetAuthenticator(ctx, app.ID, u.ID)
	if errors.Is(err, twofold.ErrNotFound) {
		return "", twofold.ErrTokenInvalid()
	}
	if err != nil {
		return "", err
	}
	secret, err := s.keys.Open(a.SecretSealed, seedAD(app.ID, u.ID))
	if err != nil {
		return "", fmt.Errorf("open TOTP seed of user %d: %w", u.ID, err)
	}
	step, ok := otp.TOTP{Secret: secret, Digits: a.Digits, Period: a.Period}.Match(token, s.now(), app.TOTPSkew)
	if !ok {
		return "", twofold.ErrTokenInvalid()
	}
	if step <= a.LastStep {
		return "", twofold.ErrTokenReused()
	}
	advanced, err := s.store.AdvanceStep(ctx, u.ID, a.Version, step)
	if err != nil {
		return "", err
	}
	if !advanced {
		return "", twofold.ErrTokenReused() // another request (or instance) accepted this step first
	}
	return MethodTOTP, nil
}

// wellFormed accepts what Authy's verify accepted: 6 to 10 digits.
func wellFormed(token string) bool {
	if len(token) < 6 || len(token) > 10 {
		return false
	}
	for i := 0; i < len(token); i++ {
		if token[i] < '0' || token[i] > '9' {
			return false
		}
	}
	return true
}

func seedAD(appID, userID int64) string { return fmt.Sprintf("totp:%d:%d", appID, userID) }
