package verify

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/twofold-auth/twofold/internal/phone"
	"github.com/twofold-auth/twofold/internal/seal"
	"github.com/twofold-auth/twofold/internal/twofold"
	"github.com/twofold-auth/twofold/internal/users"
)

// Verify verifications (the Twilio Verify API's, internal/verifyapi): a code sent to a phone
// number or an email address through one of the application's Verify services, with Verify's
// rules. A start while a verification of the same recipient is live sends the same code again
// (its sealed copy is kept for that, and dropped when it ends); a verification takes at most
// VerificationMaxSends sends and VerificationMaxChecks checks, counted before the code is
// compared; it ends approved, canceled or expired. Sends go through the same fraud rules,
// send limits, delivery and outbox as Authy's codes.

// Verify's fixed limits per verification.
const (
	VerificationMaxChecks = 5
	VerificationMaxSends  = 5
)

// Refusals the Verify API answers with its own codes.
var (
	ErrMaxChecks = errors.New("max check attempts reached")
	ErrMaxSends  = errors.New("max send attempts reached")
)

// VerificationStart are the parameters of a start.
type VerificationStart struct {
	Service      twofold.VerifyService
	To           string // an E.164 number for sms and call; an email address for email
	Channel      twofold.Channel
	Locale       string
	CustomCode   string // the caller's own code, when the service and the application allow it
	FriendlyName string // names the sender in this message instead of the service's name
}

// VerificationStarted is what a start did.
type VerificationStarted struct {
	Verification twofold.Verification
	Message      twofold.Message
	Resent       bool // the code of a live verification was sent again
}

// maxLocale bounds a locale tag; message.Normalize reads the language from any text.
const maxLocale = 35

// VerificationCodeAD binds a verification's sealed code to the verification.
func VerificationCodeAD(publicID string) string { return "verification-code:" + publicID }

func verificationContext(publicID string) string { return "verification:" + publicID }

// StartVerification sends a code to p.To through p.Service, or sends the live verification's
// code again, and returns the verification.
func (s *Service) StartVerification(ctx context.Context, app twofold.App, p VerificationStart) (VerificationStarted, error) {
	to, number, err := s.recipient(app, p.Channel, p.To)
	if err != nil {
		return VerificationStarted{}, err
	}
	if p.CustomCode != "" {
		if !p.Service.Settings.CustomCodeEnabled || !app.CustomCodes {
			return VerificationStarted{}, twofold.ErrInvalidParam("custom_code",
				"custom codes are not enabled (the service's CustomCodeEnabled and the application's custom_codes)")
		}
		if !allDigits(p.CustomCode) || len(p.CustomCode) < 4 || len(p.CustomCode) > 10 {
			return VerificationStarted{}, twofold.ErrInvalidParam("custom_code", "must be 4 to 10 digits")
		}
	}
	if len(p.Locale) > maxLocale {
		return VerificationStarted{}, twofold.ErrInvalidParam("locale", "is not a language tag")
	}
	sender := p.Service.Name
	if p.FriendlyName != "" {
		if utf8.RuneCountInString(p.FriendlyName) > 32 || strings.ContainsFunc(p.FriendlyName, unicode.IsControl) {
			return VerificationStarted{}, twofold.ErrInvalidParam("custom_friendly_name", "must be at most 32 characters")
		}
		sender = p.FriendlyName
	}
	if p.Channel != twofold.Email {
		if err := s.destinationAllowed(ctx, app, number, p.Channel); err != nil {
			return VerificationStarted{}, err
		}
	}
	// A refusal of the live verification's own limits is told before the send limits count
	// anything (the store decides again below, in the transaction that records the send).
	if live, err := s.store.LiveVerification(ctx, p.Service.ID, to, s.now()); err == nil {
		if err := verificationRoom(live); err != nil {
			return VerificationStarted{}, err
		}
	} else if !errors.Is(err, twofold.ErrNotFound) {
		return VerificationStarted{}, err
	}
	spent, err := s.spend(ctx, app, p.Channel, number, 0)
	if err != nil {
		return VerificationStarted{}, err
	}
	code := p.CustomCode
	if code == "" {
		if code, err = randomDigits(p.Service.CodeLength); err != nil {
			s.giveBack(ctx, spent)
			return VerificationStarted{}, err
		}
	}
	now := s.now().UTC().Truncate(time.Second)
	id := twofold.NewPublicID()
	v := twofold.Verification{PublicID: id, AppID: app.ID, ServiceID: p.Service.ID, To: to, Channel: p.Channel,
		CodeMAC: s.keys.CodeMAC(verificationContext(id), code), CodeSealed: s.keys.Seal([]byte(code), VerificationCodeAD(id)),
		CreatedAt: now, UpdatedAt: now, ExpiresAt: now.Add(s.cfg.CodeTTL)}
	send := twofold.VerificationSend{PublicID: twofold.NewPublicID(), Channel: p.Channel, At: now}
	got, resent, err := s.store.StartVerification(ctx, v, send, now, verificationRoom)
	if err != nil {
		s.giveBack(ctx, spent)
		return VerificationStarted{}, err
	}
	if resent {
		plain, err := s.keys.Open(got.CodeSealed, VerificationCodeAD(got.PublicID))
		if err != nil {
			return VerificationStarted{}, fmt.Errorf("open the code of verification %s: %w", got.PublicID, err)
		}
		code = string(plain)
	}
	named := app
	named.Name = sender
	m := s.compose(named, p.Channel, p.Locale, number.Region, code, "")
	m.To = to
	if m, err = s.sender.Send(ctx, app, m); err != nil {
		return VerificationStarted{}, notSent(p.Channel, err)
	}
	usage := map[twofold.Channel]twofold.UsageKind{twofold.SMS: twofold.UsageSMS, twofold.Call: twofold.UsageCalls, twofold.Email: twofold.UsageEmails}
	if err := s.count(ctx, app.ID, now, usage[p.Channel]); err != nil {
		return VerificationStarted{}, err
	}
	return VerificationStarted{Verification: got, Message: m, Resent: resent}, nil
}

// verificationRoom refuses another send of a live verification that has no check or send left.
func verificationRoom(live twofold.Verification) error {
	switch {
	case live.Checks >= VerificationMaxChecks:
		return ErrMaxChecks // its code is dead until it expires
	case len(live.Sends) >= VerificationMaxSends:
		return ErrMaxSends
	}
	return nil
}

// recipient reads to for channel ch: an E.164 number by the application's rules for sms and
// call (returned parsed), an email address for email.
func (s *Service) recipient(app twofold.App, ch twofold.Channel, to string) (string, phone.Number, error) {
	to = strings.TrimSpace(to)
	switch ch {
	case twofold.SMS, twofold.Call:
		if ch == twofold.SMS && !app.SMSEnabled {
			return "", phone.Number{}, twofold.Errorf(twofold.CodeSMSDisabled, "SMS is disabled for this application.")
		}
		if ch == twofold.Call && !app.CallEnabled {
			return "", phone.Number{}, twofold.Errorf(twofold.CodeCallDisabled, "Phone calls are disabled for this application.")
		}
		n, err := phone.RulesFor(app).ParseE164(to)
		if err != nil {
			return "", phone.Number{}, twofold.ErrInvalidParam("to", "must be a phone number in E.164 format, such as +15017122661")
		}
		return n.E164(), n, nil
	case twofold.Email:
		addr, err := users.ValidEmail(to)
		if err != nil {
			return "", phone.Number{}, twofold.ErrInvalidParam("to", "must be an email address")
		}
		// One recipient whatever the case it is written in, so that a check by To finds the
		// verification a start made (mailboxes that differ only by case are not a thing).
		return strings.ToLower(addr), phone.Number{}, nil
	}
	return "", phone.Number{}, twofold.ErrInvalidParam("channel", "must be sms, call or email")
}

// VerificationCheck names what a check is about: the live verification with VerificationID,
// or the newest live one of To (a number or an email address).
type VerificationCheck struct {
	Service        twofold.VerifyService
	To             string
	VerificationID string
	Code           string
}

// maxCodeLen bounds a code that is compared at all: codes are 4 to 10 characters.
const maxCodeLen = 20

// CheckVerification counts a check of c.Code against the verification and then compares the
// code in constant time: approved reports a match, which approves the verification. With no
// such live verification (none, approved, canceled or expired) the error is
// twofold.ErrNotFound; with no check left, ErrMaxChecks.
func (s *Service) CheckVerification(ctx context.Context, app twofold.App, c VerificationCheck) (v twofold.Verification, approved bool, err error) {
	if c.Code == "" || len(c.Code) > maxCodeLen {
		return twofold.Verification{}, false, twofold.ErrInvalidParam("code", "must be the code sent, 4 to 10 characters")
	}
	to := ""
	switch {
	case c.VerificationID != "":
		if !twofold.ValidPublicID(c.VerificationID) {
			return twofold.Verification{}, false, twofold.ErrNotFound
		}
	case strings.Contains(c.To, "@"):
		if to, _, err = s.recipient(app, twofold.Email, c.To); err != nil {
			return twofold.Verification{}, false, err
		}
	case c.To != "":
		n, err := phone.RulesFor(app).ParseE164(strings.TrimSpace(c.To))
		if err != nil {
			return twofold.Verification{}, false, twofold.ErrInvalidParam("to", "must be a phone number in E.164 format or an email address")
		}
		to = n.E164()
	default:
		return twofold.Verification{}, false, twofold.ErrInvalidParam("to", "To or VerificationSid is required")
	}
	v, outcome, err := s.store.CheckVerification(ctx, c.Service.ID, to, c.VerificationID, s.now(), VerificationMaxChecks,
		func(v twofold.Verification) bool {
			return seal.EqualAny(v.CodeMAC, s.keys.CodeMACs(verificationContext(v.PublicID), c.Code))
		})
	switch {
	case err != nil:
		return twofold.Verification{}, false, err
	case outcome == twofold.CheckedExhausted:
		return v, false, ErrMaxChecks
	case outcome == twofold.CheckedWrong:
		s.record(ctx, twofold.AuditEvent{Action: twofold.AuditVerificationFailed, AppID: app.ID,
			Details: map[string]string{"why": "invalid", "api": "verify", "verification": v.PublicID}})
		return v, false, nil
	}
	s.record(ctx, twofold.AuditEvent{Action: twofold.AuditVerificationOK, AppID: app.ID,
		Details: map[string]string{"method": string(v.Channel), "api": "verify", "verification": v.PublicID}})
	if err := s.count(ctx, app.ID, s.now(), twofold.UsageAuths); err != nil {
		return twofold.Verification{}, false, err
	}
	return v, true, nil
}

// Verification returns the service's live verification with publicID: ErrNotFound once it is
// approved, canceled or expired, as Verify answers.
func (s *Service) Verification(ctx context.Context, svc twofold.VerifyService, publicID string) (twofold.Verification, error) {
	if !twofold.ValidPublicID(publicID) {
		return twofold.Verification{}, twofold.ErrNotFound
	}
	v, err := s.store.GetVerification(ctx, svc.ID, publicID)
	if err != nil {
		return twofold.Verification{}, err
	}
	if !v.Live(s.now()) {
		return twofold.Verification{}, twofold.ErrNotFound
	}
	return v, nil
}

// EndVerification approves or cancels the service's live verification with publicID (the
// customer checked a custom code itself, or gave up): ErrNotFound when there is no such live
// verification.
func (s *Service) EndVerification(ctx context.Context, app twofold.App, svc twofold.VerifyService, publicID, status string) (twofold.Verification, error) {
	if status != twofold.VerificationApproved && status != twofold.VerificationCanceled {
		return twofold.Verification{}, twofold.ErrInvalidParam("status", "must be canceled or approved")
	}
	if !twofold.ValidPublicID(publicID) {
		return twofold.Verification{}, twofold.ErrNotFound
	}
	v, err := s.store.EndVerification(ctx, svc.ID, publicID, status, s.now().UTC().Truncate(time.Second))
	if err != nil {
		return twofold.Verification{}, err
	}
	details := map[string]string{"api": "verify", "verification": v.PublicID}
	if status == twofold.VerificationCanceled {
		s.record(ctx, twofold.AuditEvent{Action: twofold.AuditVerificationCanceled, AppID: app.ID, Details: details})
	} else {
		details["method"] = "approved_by_api"
		s.record(ctx, twofold.AuditEvent{Action: twofold.AuditVerificationOK, AppID: app.ID, Details: details})
	}
	return v, nil
}
