package verify

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

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

	const tooMany = "too many failed verifications for this user"
	// A user whose failures fill the limit is refused on what CheckState read: a flood of
	// guesses against a locked-out user costs a read each, not a durable write. The first
	// refusal within a window's length is recorded; the store notes it once, and CheckState
	// tells the rest of the flood that it was.
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
	if recoveryCode {
		return s.checkRecoveryCode(ctx, app, u, token, counter, failures)
	}
	j, err := s.judgement(ctx, app, st, token, p, now)
	if err != nil {
		return Result{}, err
	}
	// One decision of the store: the failure limit read, the token judged, and the outcome
	// recorded (the code used or charged, the TOTP step, a failure counted, the audit entry),
	// in one transaction that waits for one commit. Decisions of one user are serialised, so the
	// count read here holds until the outcome is written: a burst of parallel guesses gets no
	// more judged than the limit allows, and a success writes no counter at all.
	var res Result
	var how string
	var verdict error
	err = s.store.Decide(ctx, app.ID, u.ID, func(d twofold.Decision) error {
		res, how, verdict = Result{}, "", nil
		if !failures.Off() {
			n, oldest, refused, err := d.Window(window)
			if err != nil {
				return err
			}
			if n >= int64(failures.N) {
				verdict = limitError(failures, oldest, now, tooMany)
				return s.refusedIn(ctx, d, counter, failures, refused, now)
			}
		}
		var err error
		res.Method, how, verdict, err = j.judge(d)
		if err != nil {
			return err
		}
		if verdict == nil {
			if !u.Confirmed {
				if err := d.ConfirmUser(); err != nil {
					return err
				}
			}
			return s.auditIn(ctx, d, verifiedEvent(app, u, how))
		}
		if twofold.ErrorCode(verdict) == twofold.CodeTokenInvalid && !failures.Off() {
			// A guess: counted against the failure limit. The window read above had room, and
			// nothing else counts for this user until the decision commits.
			if _, err := d.Hit(counter.name, now, failures); err != nil {
				return err
			}
		}
		// A resubmit of a token already accepted (reused) is no guess and counts nothing: however
		// many, resubmits lock no one out.
		return s.auditIn(ctx, d, failedEvent(app, u, verdict))
	})
	if err != nil {
		return Result{}, err
	}
	if verdict != nil {
		return Result{}, verdict
	}
	if err := s.count(ctx, app.ID, s.now(), twofold.UsageAuths); err != nil {
		return Result{}, err
	}
	return res, nil
}

// checkRecoveryCode judges a token of a recovery code's shape: counted against the failure
// limit before it is judged, given back when it was no guess (accepted, or spent before). It is
// rare enough to take three commits (the count, the spend, the refund) where a code or TOTP
// token takes one (CheckResult).
func (s *Service) checkRecoveryCode(ctx context.Context, app twofold.App, u twofold.User, token string, counter counted, failures Limit) (Result, error) {
	attempt, err := s.attempt(ctx, counter, failures)
	if err != nil {
		return Result{}, err
	}
	rc, err := s.recovery.Spend(ctx, app, u.ID, token)
	if err != nil {
		if twofold.ErrorCode(err) == twofold.CodeTokenReused {
			if rerr := s.refund(ctx, attempt); rerr != nil {
				return Result{}, rerr
			}
		}
		s.failed(ctx, app, u, err)
		return Result{}, err
	}
	err = together(
		func() error { return s.refund(ctx, attempt) },
		func() error {
			if u.Confirmed {
				return nil
			}
			return s.store.ConfirmUser(ctx, app.ID, u.ID)
		},
		func() error { return s.count(ctx, app.ID, s.now(), twofold.UsageAuths) },
		func() error { s.verified(ctx, app, u, string(MethodRecoveryCode)); return nil },
	)
	if err != nil {
		return Result{}, err
	}
	return Result{Method: MethodRecoveryCode, Recovery: rc}, nil
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
	s.record(ctx, verifiedEvent(app, u, how))
}

func verifiedEvent(app twofold.App, u twofold.User, how string) twofold.AuditEvent {
	return twofold.AuditEvent{Action: twofold.AuditVerificationOK, AppID: app.ID, UserID: u.ID,
		Details: map[string]string{"method": how}}
}

// failed records a token judged and refused: invalid (wrong, expired, superseded or spent) or
// reused. Tokens refused before being judged (malformed, or past the failure limit) are not
// recorded one by one: the failure limit bounds how many entries a guessing attack makes.
func (s *Service) failed(ctx context.Context, app twofold.App, u twofold.User, err error) {
	s.record(ctx, failedEvent(app, u, err))
}

// failedEvent is the entry of a token refused; the zero event (no Action) for a refusal that is
// not recorded.
func failedEvent(app twofold.App, u twofold.User, err error) twofold.AuditEvent {
	why := map[twofold.Code]string{twofold.CodeTokenInvalid: "invalid", twofold.CodeTokenReused: "reused"}[twofold.ErrorCode(err)]
	if why == "" {
		return twofold.AuditEvent{}
	}
	return twofold.AuditEvent{Action: twofold.AuditVerificationFailed, AppID: app.ID, UserID: u.ID,
		Details: map[string]string{"why": why}}
}

// judgement is what judging a token needs, worked out before the store's decision so that the
// decision (on SQLite, the one writer) does no more than compare and write: the token's MACs
// under every key of the ring, for the user's codes, and the step the token matches under
// each of the user's TOTP seeds.
type judgement struct {
	s         *Service
	now       time.Time
	liveCodes bool
	codesOnly bool
	macs      [][]byte
	seeds     []seed
}

func (s *Service) judgement(ctx context.Context, app twofold.App, st twofold.CheckState, token string, p CheckParams, now time.Time) (judgement, error) {
	j := judgement{s: s, now: now, liveCodes: st.LiveCodes, codesOnly: p.CodesOnly}
	if st.LiveCodes {
		// Under every key of the ring: a code sent before a master key rotation still verifies.
		j.macs = s.keys.CodeMACs(codeContext(app.ID, st.UserID, p.Action), token)
	}
	if p.CodesOnly {
		return j, nil
	}
	seeds, err := s.seeds(ctx, app, st)
	if err != nil {
		return judgement{}, err
	}
	for _, sd := range seeds {
		if sd.step, sd.matched = sd.totp.Match(token, now, app.TOTPSkew); sd.matched {
			j.seeds = append(j.seeds, sd)
		}
	}
	return j, nil
}

// judge judges the token in decision d against the user's codes, then their TOTP seeds. It
// returns how the token was accepted (for the audit trail: the code's channel, totp or device),
// or the verdict refusing it (60020 wrong, 60019 reused); err is the store's.
func (j judgement) judge(d twofold.Decision) (m Method, how string, verdict, err error) {
	if !j.liveCodes {
		if j.codesOnly {
			return "", "", twofold.ErrTokenInvalid(), nil
		}
		// No code to judge, none to charge a wrong try to: the authenticators alone decide. A
		// code sent since CheckState read is judged as if this verification came first.
		return j.judgeTOTP(d)
	}
	var channel twofold.Channel // of the code that matched; ConsumeCode judges the newest match
	result, err := d.ConsumeCode(j.now, j.s.cfg.MaxAttempts, func(c twofold.OneTimeCode) bool {
		ok := seal.EqualAny(c.MAC, j.macs)
		if ok && channel == "" {
			channel = c.Channel
		}
		return ok
	})
	if err != nil {
		return "", "", nil, err
	}
	switch result {
	case twofold.CodeAccepted:
		return MethodCode, string(channel), nil, nil
	case twofold.CodeReused:
		return "", "", twofold.ErrTokenReused(), nil
	}
	if j.codesOnly {
		return "", "", twofold.ErrTokenInvalid(), nil
	}
	m, how, verdict, err = j.judgeTOTP(d)
	if err == nil && (verdict == nil || twofold.ErrorCode(verdict) == twofold.CodeTokenReused) {
		// An authenticator's code after all, accepted now or before: it was no guess at the
		// pending codes, and the wrong try charged to them is taken back.
		err = d.RefundAttempt(j.now)
	}
	return m, how, verdict, err
}

// judgeTOTP accepts a code of any of the user's seeds, once: the matched step must be newer than
// the last one accepted for that seed, and recording it is a compare-and-set.
func (j judgement) judgeTOTP(d twofold.Decision) (Method, string, error, error) {
	reused := false
	for _, sd := range j.seeds {
		if sd.step <= sd.lastStep {
			reused = true
			continue
		}
		advanced, err := sd.advance(d, sd.step)
		if err != nil {
			return "", "", nil, err
		}
		if advanced {
			return MethodTOTP, sd.kind, nil, nil
		}
		reused = true // accepted first by a decision that committed since CheckState read
	}
	if reused {
		return "", "", twofold.ErrTokenReused(), nil
	}
	return "", "", twofold.ErrTokenInvalid(), nil
}

// seed is one TOTP secret a user holds: the generic authenticator's or a registered device's.
type seed struct {
	kind     string // "totp" (an authenticator app) or "device"
	totp     otp.TOTP
	lastStep int64
	advance  func(d twofold.Decision, step int64) (bool, error) // compare-and-set of the newest accepted step
	step     int64                                              // the step the token matched
	matched  bool
}

func (s *Service) seeds(ctx context.Context, app twofold.App, st twofold.CheckState) ([]seed, error) {
	var out []seed
	u := twofold.User{ID: st.UserID, AppID: app.ID}
	if a := st.Authenticator; a != nil {
		secret, err := s.keys.Open(a.SecretSealed, seedAD(app.ID, u.ID))
		if err != nil {
			return nil, fmt.Errorf("open TOTP seed of user %d: %w", u.ID, err)
		}
		out = append(out, seed{kind: "totp", totp: otp.TOTP{Secret: secret, Digits: a.Digits, Period: a.Period}, lastStep: a.LastStep,
			advance: func(d twofold.Decision, step int64) (bool, error) { return d.AdvanceStep(a.Version, step) }})
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
		out = append(out, seed{kind: "device", totp: otp.TOTP{Secret: secret, Digits: d.Digits, Period: d.Period}, lastStep: d.LastStep,
			advance: func(dc twofold.Decision, step int64) (bool, error) { return dc.AdvanceDeviceStep(d.ID, step) }})
	}
	return out, nil
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
