package hostedstep

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/twofold-auth/twofold/internal/onetouch"
	"github.com/twofold-auth/twofold/internal/recovery"
	"github.com/twofold-auth/twofold/internal/twofold"
	"github.com/twofold-auth/twofold/internal/verify"
)

// The factors of an open session: a push approval with number matching, a code of the user's
// authenticator, or a code sent by SMS, voice or email. Each send is counted against the
// client's limit before it is made; pushes also against the session's and the user's.

// Push is the approval request a session waits on.
type Push struct {
	UUID   string
	Number string // the number the user picks on the device
	Status twofold.ApprovalStatus
}

// StartPush sends the user an approval request (with number matching) for this sign-in, or
// returns the one already pending, so reloading the page sends nothing new.
func (s *Steps) StartPush(ctx context.Context, v View, browser string) (Push, error) {
	if err := v.pending(); err != nil {
		return Push{}, err
	}
	if err := v.offers(twofold.FactorPush); err != nil {
		return Push{}, err
	}
	if v.Session.ApprovalUUID != "" {
		r, err := s.approvals.Get(ctx, v.App, v.Session.ApprovalUUID)
		if err == nil && r.Status == twofold.Pending {
			return Push{UUID: r.UUID, Number: r.Number, Status: r.Status}, nil
		}
	}
	session := strconv.FormatInt(v.Session.ID, 10)
	if err := s.hit(ctx, "step_pushes:session:"+session, twofold.Limit{N: s.cfg.PushesPerSession, Window: s.cfg.SessionTTL},
		"approval requests for this sign-in"); err != nil {
		return Push{}, err
	}
	if err := s.hit(ctx, "step_pushes:user:"+strconv.FormatInt(v.App.ID, 10)+":"+strconv.FormatInt(v.User.ID, 10), s.cfg.UserPushes,
		"approval requests for this user"); err != nil {
		return Push{}, err
	}
	if err := s.clientSend(ctx, v); err != nil {
		return Push{}, err
	}
	// The request lives as long as the sign-in it is for.
	ttl := int64(v.Session.ExpiresAt.Sub(s.now()) / time.Second)
	if ttl < 1 {
		return Push{}, ErrNoSession
	}
	details := map[string]string{"Signing in through": v.Client.Name}
	if browser != "" {
		details["Browser"] = browser
	}
	yes := true
	r, err := s.approvals.Create(ctx, v.App, v.User.ID, onetouch.CreateParams{
		Message: "Sign in to " + v.App.Name, Details: details, SecondsToExpire: &ttl, NumberMatching: &yes})
	if err != nil {
		return Push{}, err
	}
	if err := s.store.SetStepApproval(ctx, v.Session.ID, r.UUID); err != nil {
		if errors.Is(err, twofold.ErrNotFound) {
			return Push{}, ErrFinished
		}
		return Push{}, err
	}
	return Push{UUID: r.UUID, Number: r.Number, Status: r.Status}, nil
}

// PushStatus reads the session's approval request and finishes the session when it was
// answered: approved passes the step, denied fails it.
func (s *Steps) PushStatus(ctx context.Context, v View) (Push, error) {
	if v.Session.ApprovalUUID == "" {
		return Push{}, ErrNotOffered
	}
	r, err := s.approvals.Get(ctx, v.App, v.Session.ApprovalUUID)
	if err != nil {
		return Push{}, err
	}
	p := Push{UUID: r.UUID, Number: r.Number, Status: r.Status}
	if v.Session.Status != twofold.StepPending {
		return p, nil
	}
	switch r.Status {
	case twofold.Approved:
		err = s.finish(ctx, v, twofold.StepPassed, twofold.FactorPush)
	case twofold.Denied:
		err = s.finish(ctx, v, twofold.StepFailed, "")
	}
	return p, err
}

// finish moves a pending session on; one that another request moved first is left as it is.
func (s *Steps) finish(ctx context.Context, v View, status twofold.StepStatus, f twofold.Factor) error {
	err := s.store.FinishStepSession(ctx, v.Session.ID, status, f, s.now())
	if errors.Is(err, twofold.ErrConflict) {
		return nil
	}
	return err
}

// channels are the code factors' delivery channels.
var channels = map[twofold.Factor]twofold.Channel{twofold.FactorSMS: twofold.SMS, twofold.FactorCall: twofold.Call, twofold.FactorEmail: twofold.Email}

// action binds the codes a session sends to it: verify accepts them for this session only.
func action(v View) string { return "hosted-step:" + strconv.FormatInt(v.Session.ID, 10) }

// Send sends the user a code by the factor's channel, in locale (may be "": the number's).
func (s *Steps) Send(ctx context.Context, v View, f twofold.Factor, locale string) error {
	if err := v.pending(); err != nil {
		return err
	}
	ch, ok := channels[f]
	if !ok {
		return ErrNotOffered
	}
	if err := v.offers(f); err != nil {
		return err
	}
	if err := s.clientSend(ctx, v); err != nil {
		return err
	}
	// Force: the step sends what the user chose even when they have an authenticator app.
	if _, err := s.verify.Send(ctx, v.App, v.User.ID, verify.SendParams{Channel: ch, Force: true, Action: action(v), Locale: locale}); err != nil {
		return err
	}
	if err := s.store.SetStepSent(ctx, v.Session.ID, ch); err != nil && !errors.Is(err, twofold.ErrNotFound) {
		return err
	}
	return nil
}

func (s *Steps) clientSend(ctx context.Context, v View) error {
	return s.hit(ctx, "step_sends:client:"+strconv.FormatInt(v.Client.ID, 10), s.cfg.ClientSends, "codes and approval requests through this client")
}

// Check verifies a code the user typed: their authenticator's, the last one the session sent, or
// one of their recovery codes (told by its shape). Wrong codes count against the user's failure
// limit, as at the API. A code that passes finishes the session and returns the factor it proved.
func (s *Steps) Check(ctx context.Context, v View, code string) (twofold.Factor, error) {
	if err := v.pending(); err != nil {
		return "", err
	}
	totp := v.offers(twofold.FactorTOTP) == nil
	sent := v.Session.SentChannel != ""
	// A recovery code is judged by verify like every token (the failure limit, counted first)
	// and spent there; a user without codes has none to try.
	recoveryCode := recovery.Shaped(code)
	if recoveryCode && v.RecoveryCodes == 0 || !recoveryCode && !totp && !sent {
		return "", ErrNotOffered
	}
	// The session's action: codes the session did not send (the application's own, through the
	// API) never pass the step. Force: an application's "unconfirmed users pass" setting never
	// passes it either.
	m, err := s.verify.Check(ctx, v.App, v.User.ID, code, verify.CheckParams{Action: action(v), Force: true, CodesOnly: !totp})
	if err != nil {
		return "", err
	}
	var f twofold.Factor
	switch m {
	case verify.MethodTOTP:
		if !totp {
			return "", ErrNotOffered
		}
		f = twofold.FactorTOTP
	case verify.MethodCode:
		if !sent {
			return "", ErrNotOffered
		}
		for factor, ch := range channels {
			if ch == v.Session.SentChannel {
				f = factor
			}
		}
	case verify.MethodRecoveryCode:
		f = twofold.FactorRecoveryCode
	case verify.MethodSandbox:
		f = twofold.FactorTOTP // the sandbox's test token stands for any code
	default:
		return "", ErrNotOffered
	}
	if err := s.store.FinishStepSession(ctx, v.Session.ID, twofold.StepPassed, f, s.now()); err != nil {
		if errors.Is(err, twofold.ErrConflict) {
			return "", ErrFinished
		}
		return "", err
	}
	// The user passed another way: the push still waiting on their phone goes.
	if err := s.ClosePush(ctx, v); err != nil {
		return "", err
	}
	return f, nil
}

// Abandon ends a session the user gave up on: a pending one fails (nothing can pass it
// afterwards, should the user come back to the page) and its push is closed.
func (s *Steps) Abandon(ctx context.Context, v View) error {
	if v.Session.Status == twofold.StepPending {
		if err := s.finish(ctx, v, twofold.StepFailed, ""); err != nil {
			return err
		}
	}
	return s.ClosePush(ctx, v)
}

// ClosePush closes the session's approval request if it is still pending (the user chose
// another way, passed with a code, or gave up), so it does not wait on their phone. A request
// already answered or expired is left as it is.
func (s *Steps) ClosePush(ctx context.Context, v View) error {
	if v.Session.ApprovalUUID == "" {
		return nil
	}
	_, err := s.approvals.Close(ctx, v.App, v.Session.ApprovalUUID)
	if c := twofold.ErrorCode(err); err != nil && (c == twofold.CodeNotPending || c == twofold.CodeRequestNotFound) {
		return nil
	}
	return err
}
