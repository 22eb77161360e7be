package verify

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"

	"github.com/twofold-auth/twofold/internal/phone"
	"github.com/twofold-auth/twofold/internal/seal"
	"github.com/twofold-auth/twofold/internal/twofold"
)

// PhoneStart are the parameters of phones/verification/start.
type PhoneStart struct {
	Via           twofold.Channel // SMS or Call
	Number        phone.Number
	CodeLength    int    // 4..10; 0 means 4, the libraries' default
	CustomMessage string // the caller's text; {{code}} marks where the code goes
	CustomCode    string // the caller's own code, where the application allows it
	Locale        string // language of the message; default: from the number's country
}

// PhoneStarted is what start answers.
type PhoneStarted struct {
	Verification twofold.PhoneVerification
	Message      twofold.Message
}

// StartPhoneVerification sends a code to a phone number (Authy's Phone Verification). A newer
// start supersedes an earlier one. Sends per number are limited like sends per user.
func (s *Service) StartPhoneVerification(ctx context.Context, app twofold.App, p PhoneStart) (PhoneStarted, error) {
	if p.CodeLength == 0 {
		p.CodeLength = 4
	}
	if p.CodeLength < 4 || p.CodeLength > 10 {
		return PhoneStarted{}, twofold.ErrInvalidParam("code_length", "must be 4 to 10")
	}
	switch {
	case p.Via == twofold.SMS && !app.SMSEnabled:
		return PhoneStarted{}, twofold.Errorf(twofold.CodeSMSDisabled, "SMS is disabled for this application.")
	case p.Via == twofold.Call && !app.CallEnabled:
		return PhoneStarted{}, twofold.Errorf(twofold.CodeCallDisabled, "Phone calls are disabled for this application.")
	case p.Via != twofold.SMS && p.Via != twofold.Call:
		return PhoneStarted{}, twofold.ErrInvalidParam("via", "must be sms or call")
	}
	if p.CustomMessage != "" && !app.CustomMessages {
		return PhoneStarted{}, twofold.Errorf(twofold.CodeCustomMessageDisallowed, "Custom messages are not allowed for this application.")
	}
	if len(p.CustomMessage) > s.cfg.MaxMessageLen {
		return PhoneStarted{}, twofold.ErrInvalidParam("custom_message", fmt.Sprintf("must be at most %d characters", s.cfg.MaxMessageLen))
	}
	if p.CustomCode != "" {
		if !app.CustomCodes {
			return PhoneStarted{}, twofold.ErrInvalidParam("custom_code", "custom codes are not enabled for this application")
		}
		if !allDigits(p.CustomCode) || len(p.CustomCode) < 4 || len(p.CustomCode) > 10 {
			return PhoneStarted{}, twofold.ErrInvalidParam("custom_code", "must be 4 to 10 digits")
		}
	}
	if err := s.destinationAllowed(ctx, app, p.Number, p.Via); err != nil {
		return PhoneStarted{}, err
	}
	e164 := p.Number.E164()
	spent, err := s.spend(ctx, app, p.Via, p.Number, 0)
	if err != nil {
		return PhoneStarted{}, err
	}
	code := p.CustomCode
	if code == "" {
		if code, err = randomDigits(p.CodeLength); err != nil {
			s.giveBack(ctx, spent)
			return PhoneStarted{}, err
		}
	}
	now := s.now().UTC()
	id := make([]byte, 16)
	rand.Read(id) // never fails (crypto/rand panics rather than return an error)
	v := twofold.PhoneVerification{
		UUID: hex.EncodeToString(id), AppID: app.ID, Phone: e164, Via: p.Via,
		MAC: s.keys.CodeMAC(phoneContext(app.ID, e164), code), CreatedAt: now, ExpiresAt: now.Add(s.cfg.CodeTTL),
	}
	if err := s.store.InsertPhoneVerification(ctx, &v); err != nil {
		s.giveBack(ctx, spent)
		return PhoneStarted{}, err
	}
	m := s.compose(app, p.Via, p.Locale, p.Number.Region, code, "")
	m.To = e164
	switch {
	case p.CustomMessage != "" && p.Via == twofold.Call:
		line := customMessage(p.CustomMessage, strings.Join(strings.Split(code, ""), ", ")) // read digit by digit
		m.Spoken = []string{line, line}
		m.Body = strings.Join(m.Spoken, " ")
	case p.CustomMessage != "":
		m.Body = customMessage(p.CustomMessage, code)
	}
	m, err = s.sender.Send(ctx, app, m)
	if err != nil {
		return PhoneStarted{}, notSent(p.Via, err)
	}
	return PhoneStarted{Verification: v, Message: m}, nil
}

// customMessage puts the code where the customer's text says {{code}}, or after it. Control
// characters go: the text is the caller's, and a message is one paragraph.
func customMessage(text, code string) string {
	text = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, text)
	if before, after, ok := strings.Cut(text, "{{code}}"); ok {
		return before + code + after
	}
	return text + " " + code
}

func allDigits(s string) bool {
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return s != ""
}

func phoneContext(appID int64, e164 string) string { return fmt.Sprintf("phone:%d:%s", appID, e164) }

// CheckPhoneVerification checks a code sent by StartPhoneVerification: 60023 when nothing is
// pending for the number, 60022 for a wrong code, 60003 after too many failures.
func (s *Service) CheckPhoneVerification(ctx context.Context, app twofold.App, n phone.Number, code string) error {
	e164 := n.E164()
	counter := counted{name: fmt.Sprintf("pv-failures:%d:%s", app.ID, e164), limit: "phone_failures", appID: app.ID}
	attempt, err := s.hit(ctx, counter, limit(app, twofold.LimitFailures, s.cfg.FailureLimit), "too many failed verifications for this number")
	if err != nil {
		return err
	}
	macs := s.keys.CodeMACs(phoneContext(app.ID, e164), code) // a code sent before a key rotation verifies too
	found, ok, err := s.store.ConsumePhoneVerification(ctx, app.ID, e164, s.now(), s.cfg.MaxAttempts,
		func(v twofold.PhoneVerification) bool { return seal.EqualAny(v.MAC, macs) })
	switch {
	case err != nil:
		return err
	case !found:
		// A resubmit of the code that verified the number is no guess: its attempt is given
		// back, so that resubmits lock no one out (a wrong code with nothing pending counts).
		if v, err := s.store.LatestPhoneVerification(ctx, app.ID, e164, ""); err == nil &&
			!v.VerifiedAt.IsZero() && s.now().Before(v.ExpiresAt) && seal.EqualAny(v.MAC, macs) {
			if err := s.refund(ctx, attempt); err != nil {
				return err
			}
		} else if err != nil && !errors.Is(err, twofold.ErrNotFound) {
			return err
		}
		return twofold.Errorf(twofold.CodePhoneVerificationNotFound, "No pending verifications for %s found.", n.Format(true))
	case !ok:
		return twofold.Errorf(twofold.CodePhoneVerificationIncorrect, "Verification code is incorrect")
	}
	return s.refund(ctx, attempt)
}

// PhoneVerificationStatus reports pending, verified or expired for the number's newest
// verification (or the one with uuid).
func (s *Service) PhoneVerificationStatus(ctx context.Context, app twofold.App, e164, uuid string) (string, time.Duration, error) {
	v, err := s.store.LatestPhoneVerification(ctx, app.ID, e164, uuid)
	if errors.Is(err, twofold.ErrNotFound) {
		return "", 0, twofold.Errorf(twofold.CodePhoneVerificationNotFound, "No pending verifications found.")
	}
	if err != nil {
		return "", 0, err
	}
	now := s.now()
	switch {
	case !v.VerifiedAt.IsZero():
		return "verified", 0, nil
	case v.Superseded || !now.Before(v.ExpiresAt) || v.Attempts >= s.cfg.MaxAttempts:
		return "expired", 0, nil
	}
	return "pending", v.ExpiresAt.Sub(now), nil
}
