package verify

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/twofold-auth/twofold/internal/devices"
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
	// MethodRecoveryCode is one of the user's recovery codes, spent (a factor of its own: the
	// customer should have the user re-enrol).
	MethodRecoveryCode Method = "recovery_code"
)

// Result is how a token was accepted and, for a recovery code, the user's set after the spend.
type Result struct {
	Method   Method
	Recovery twofold.RecoveryCodes // zero unless Method is MethodRecoveryCode
}

// RecoveryCodes spends recovery codes (*recovery.Service). Shaped is a check of the token's
// shape alone, so that numeric tokens never reach it.
type RecoveryCodes interface {
	Shaped(token string) bool
	Spend(ctx context.Context, app twofold.App, userID int64, token string) (twofold.RecoveryCodes, error)
}

// SetRecovery makes Check accept the users' recovery codes through r. Call it before the
// service is used.
func (s *Service) SetRecovery(r RecoveryCodes) { s.recovery = r }

// CheckParams are the options of verify/{token}/{id}.
type CheckParams struct {
	Action string
	Force  bool
	// CodesOnly accepts only codes that were sent, never an authenticator's (the hosted step
	// of a client that does not allow authenticator codes).
	CodesOnly bool
}

// Check verifies token for the user. It returns how the token was accepted, or an *twofold.Error:
// 60016 unknown user, 60020 wrong token, 60019 reused token, 60003 too many failures.
func (s *Service) Check(ctx context.Context, app twofold.App, userID int64, token string, p CheckParams) (Method, error) {
	r, err := s.CheckResult(ctx, app, userID, token, p)
	return r.Method, err
}

// CheckResult is Check that also describes, for a recovery code accepted, the user's set after
// the spend. A token of a recovery code's shape (recovery.Shaped) is judged as one, under the same
// failure limit, counted before, as every other token; it is refused as reused (60019, its own
// message) when it was spent before.
func (s *Service) CheckResult(ctx context.Context, app twofold.App, userID int64, token string, p CheckParams) (Result, error) {
	now := s.now()
	failures := limit(app, twofold.LimitFailures, s.cfg.FailureLimit)
	counter := counted{name: failureCounter(app.ID, userID), limit: "failures", appID: app.ID, userID: userID}
	var window twofold.LimitWindow
	if !failures.Off() {
		window = twofold.LimitWindow{Name: counter.name, Since: now.Add(-failures.Window)}
	}
	st, err := s.store.CheckState(ctx, app.ID, userID, now, window)
	if errors.Is(err, twofold.ErrNotFound) {
		return Result{}, twofold.ErrUserDoesNotExist()
	}
	if err != nil {
		return Result{}, err
	}
	u := twofold.User{ID: st.UserID, AppID: app.ID, Confirmed: st.Confirmed}
	// A recovery code is told by its shape alone (12 symbols, never 6 to 10 digits), so numeric
	// tokens take the path they always took. It is always judged: neither the sandbox token nor
	// the unconfirmed bypass stands in for it.
	recoveryCode := !wellFormed(token) && s.recovery != nil && s.recovery.Shaped(token)
	if !wellFormed(token) && !recoveryCode {
		return Result{}, twofold.ErrTokenInvalid()
	}
	if !recoveryCode && app.Sandbox && token == s.cfg.SandboxToken {
		s.verified(ctx, app, u, string(MethodSandbox))
		return Result{Method: MethodSandbox}, nil
	}
	if !recoveryCode && app.UnconfirmedBypass && !p.Force && !u.Confirmed {
		s.verified(ctx, app, u, string(MethodUnconfirmed))
		return Result{Method: MethodUnconfirmed}, nil
	}

	// A user whose failures fill the limit is refused on what CheckState read: a flood of
	// guesses against a locked-out user costs a read each, not a durable write. The first
	// refusal within a window's length is recorded; the store notes it once, and CheckState
	// tells the rest of the flood that it was.
	const tooMany = "too many failed verifications for this user"
	if !failures.Off() && st.Failures >= int64(failures.N) {
		if !st.Refused {
			first, err := s.store.RecordRefusal(ctx, counter.name, now, failures.Window)
			if err != nil {
				return Result{}, err
			}
			if first {
				s.limitHit(ctx, counter, failures)
			}
		}
		return Result{}, limitError(failures, st.Oldest, now, tooMany)
	}
	attempt, err := s.hit(ctx, counter, failures, tooMany)
	if err != nil {
		return Result{}, err
	}
	var res Result
	var how string
	if recoveryCode {
		res.Method, how = MethodRecoveryCode, string(MethodRecoveryCode)
		res.Recovery, err = s.recovery.Spend(ctx, app, u.ID, token)
	} else {
		res.Method, how, err = s.check(ctx, app, st, token, p)
	}
	if err != nil {
		if twofold.ErrorCode(err) == twofold.CodeTokenReused {
			// A resubmit of a token already accepted is not a guess (only a token that matched
			// a code or TOTP step is "reused"): give back the attempt counted above, so that
			// resubmits, however many, lock no one out.
			if rerr := s.refund(ctx, attempt); rerr != nil {
				return Result{}, rerr
			}
		}
		s.failed(ctx, app, u, err)
		return Result{}, err
	}
	// The token is accepted. What follows are independent writes: made at once, they share one
	// commit of the store's writer instead of waiting for one each.
	err = together(
		// Success is not a failure: give back the attempt counted above.
		func() error {
			return s.refund(ctx, attempt)
		},
		func() error {
			if u.Confirmed {
				return nil
			}
			return s.store.ConfirmUser(ctx, app.ID, u.ID)
		},
		func() error { return s.count(ctx, app.ID, s.now(), twofold.UsageAuths) },
		func() error { s.verified(ctx, app, u, how); return nil },
	)
	if err != nil {
		return Result{}, err
	}
	return res, nil
}

// together runs fns at once and returns when all have, with their errors joined. A panic in
// one is raised again in the caller's goroutine.
func together(fns ...func() error) error {
	errs := make([]error, len(fns))
	panics := make(chan any, len(fns))
	var wg sync.WaitGroup
	for i, fn := range fns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() {
				if v := recover(); v != nil {
					panics <- v
				}
			}()
			errs[i] = fn()
		}()
	}
	wg.Wait()
	select {
	case v := <-panics:
		panic(v)
	default:
	}
	return errors.Join(errs...)
}

// verified records a token accepted, and how: sms, call, email, totp, device, sandbox or
// unconfirmed.
func (s *Service) verified(ctx context.Context, app twofold.App, u twofold.User, how string) {
	s.record(ctx, twofold.AuditEvent{Action: twofold.AuditVerificationOK, AppID: app.ID, UserID: u.ID,
		Details: map[string]string{"method": how}})
}

// failed records a token judged and refused: invalid (wrong, expired, superseded or spent) or
// reused. Tokens refused before being judged (malformed, or past the failure limit) are not
// recorded one by one: the failure limit bounds how many entries a guessing attack makes.
func (s *Service) failed(ctx context.Context, app twofold.App, u twofold.User, err error) {
	why := map[twofold.Code]string{twofold.CodeTokenInvalid: "invalid", twofold.CodeTokenReused: "reused"}[twofold.ErrorCode(err)]
	if why != "" {
		s.record(ctx, twofold.AuditEvent{Action: twofold.AuditVerificationFailed, AppID: app.ID, UserID: u.ID,
			Details: map[string]string{"why": why}})
	}
}

// check judges token against the user's codes, then their TOTP seeds. how is what accepted it
// for the audit trail: the code's channel (sms, call, email), totp or device.
func (s *Service) check(ctx context.Context, app twofold.App, st twofold.CheckState, token string, p CheckParams) (Method, string, error) {
	u, now, action := twofold.User{ID: st.UserID, AppID: app.ID}, s.now(), p.Action
	if !st.LiveCodes && p.CodesOnly {
		return "", "", twofold.ErrTokenInvalid()
	}
	if !st.LiveCodes {
		// No code to judge, none to charge a wrong try to: the authenticators alone decide. A
		// code sent since CheckState read is judged as if this verification came first.
		return s.checkTOTP(ctx, app, st, token)
	}
	// Under every key of the ring: a code sent before a master key rotation still verifies.
	macs := s.keys.CodeMACs(codeContext(app.ID, u.ID, action), token)
	var channel twofold.Channel // of the code that matched; ConsumeCode judges the newest match
	result, err := s.store.ConsumeCode(ctx, u.AppID, u.ID, now, s.cfg.MaxAttempts,
		func(c twofold.OneTimeCode) bool {
			ok := seal.EqualAny(c.MAC, macs)
			if ok && channel == "" {
				channel = c.Channel
			}
			return ok
		})
	if err != nil {
		return "", "", err
	}
	switch result {
	case twofold.CodeAccepted:
		return MethodCode, string(channel), nil
	case twofold.CodeReused:
		return "", "", twofold.ErrTokenReused()
	}
	if p.CodesOnly {
		return "", "", twofold.ErrTokenInvalid()
	}
	method, how, err := s.checkTOTP(ctx, app, st, token)
	if err == nil || twofold.ErrorCode(err) == twofold.CodeTokenReused {
		// An authenticator's code after all, accepted now or before: it was no guess at the
		// pending codes, and the wrong try charged to them is taken back.
		if err := s.store.RefundAttempt(ctx, u.AppID, u.ID, now); err != nil {
			return "", "", err
		}
	}
	return method, how, err
}

// seed is one TOTP secret a user holds: the generic authenticator's or a registered device's.
type seed struct {
	kind     string // "totp" (an authenticator app) or "device"
	totp     otp.TOTP
	lastStep int64
	advance  func(step int64) (bool, error) // compare-and-set of the newest accepted step
}

func (s *Service) seeds(ctx context.Context, app twofold.App, st twofold.CheckState) ([]seed, error) {
	var out []seed
	u := twofold.User{ID: st.UserID, AppID: app.ID}
	if a := st.Authenticator; a != nil {
		secret, err := s.keys.Open(a.SecretSealed, seedAD(app.ID, u.ID))
		if err != nil {
			return nil, fmt.Errorf("open TOTP seed of user %d: %w", u.ID, err)
		}
		out = append(out, seed{"totp", otp.TOTP{Secret: secret, Digits: a.Digits, Period: a.Period}, a.LastStep,
			func(step int64) (bool, error) { return s.store.AdvanceStep(ctx, u.AppID, u.ID, a.Version, step) }})
	}
	if !st.HasDevices {
		return out, nil
	}
	devs, err := s.store.ListDevices(ctx, app.ID, u.ID)
	if err != nil {
		return nil, err
	}
	for _, d := range devs {
		secret, err := s.keys.Open(d.SecretSealed, devices.SeedAD(d.TokenMAC))
		if err != nil {
			return nil, fmt.Errorf("open TOTP seed of device %d: %w", d.ID, err)
		}
		out = append(out, seed{"device", otp.TOTP{Secret: secret, Digits: d.Digits, Period: d.Period}, d.LastStep,
			func(step int64) (bool, error) { return s.store.AdvanceDeviceStep(ctx, d.ID, step) }})
	}
	return out, nil
}

// checkTOTP accepts a code of any of the user's seeds, once: the matched step must be newer than
// the last one accepted for that seed, and recording it is a compare-and-set.
func (s *Service) checkTOTP(ctx context.Context, app twofold.App, st twofold.CheckState, token string) (Method, string, error) {
	seeds, err := s.seeds(ctx, app, st)
	if err != nil {
		return "", "", err
	}
	reused := false
	for _, sd := range seeds {
		step, ok := sd.totp.Match(token, s.now(), app.TOTPSkew)
		if !ok {
			continue
		}
		if step <= sd.lastStep {
			reused = true
			continue
		}
		advanced, err := sd.advance(step)
		if err != nil {
			return "", "", err
		}
		if advanced {
			return MethodTOTP, sd.kind, nil
		}
		reused = true // another request (or instance) accepted this step first
	}
	if reused {
		return "", "", twofold.ErrTokenReused()
	}
	return "", "", twofold.ErrTokenInvalid()
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
