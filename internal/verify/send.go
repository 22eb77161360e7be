package verify

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twofold-auth/twofold/internal/message"
	"github.com/twofold-auth/twofold/internal/phone"
	"github.com/twofold-auth/twofold/internal/twofold"
)

// SendParams are the options of sms/{id}, call/{id} and email/{id}.
type SendParams struct {
	Channel       twofold.Channel
	Force         bool   // send even though the user has an authenticator app
	Action        string // binds the code: verify must name the same action
	ActionMessage string // shown in the message
	Locale        string // language of the message ("es", "pt-BR"); default: from the number's country
}

// Sent is the outcome of a send.
type Sent struct {
	User    twofold.User
	Message twofold.Message // zero when Ignored
	Ignored bool            // not sent: the user has an authenticator and Force was false
	Device  string          // the device that made it unnecessary, when Ignored
}

// Send issues a new code for the user and hands it to delivery. Earlier codes for the same action
// stop working: only the newest one sent verifies.
func (s *Service) Send(ctx context.Context, app twofold.App, userID int64, p SendParams) (Sent, error) {
	u, err := s.user(ctx, app.ID, userID, twofold.ErrUserNotFound)
	if err != nil {
		return Sent{}, err
	}
	if len(p.Action) > s.cfg.MaxActionLen {
		return Sent{}, twofold.ErrInvalidParam("action", fmt.Sprintf("must be at most %d characters", s.cfg.MaxActionLen))
	}
	if len(p.ActionMessage) > s.cfg.MaxMessageLen {
		return Sent{}, twofold.ErrInvalidParam("action_message", fmt.Sprintf("must be at most %d characters", s.cfg.MaxMessageLen))
	}
	switch p.Channel {
	case twofold.SMS:
		if !app.SMSEnabled {
			return Sent{}, twofold.Errorf(twofold.CodeSMSDisabled, "SMS is disabled for this application.")
		}
	case twofold.Call:
		if !app.CallEnabled {
			return Sent{}, twofold.Errorf(twofold.CodeCallDisabled, "Phone calls are disabled for this application.")
		}
	case twofold.Email:
	default:
		return Sent{}, fmt.Errorf("verify: unknown channel %q", p.Channel)
	}
	// Users registered by QR code may have no phone number or email.
	if p.Channel == twofold.Email && u.Email == "" {
		return Sent{}, twofold.Errorf(twofold.CodeInvalidEmail, "This user has no email address.")
	}
	if p.Channel != twofold.Email && u.Phone == "" {
		return Sent{}, twofold.Errorf(twofold.CodeInvalidPhone, "This user has no phone number.")
	}
	var number phone.Number
	if p.Channel != twofold.Email {
		if number, err = phone.RulesFor(app).OfUser(u.CountryCode, u.Phone); err != nil {
			return Sent{}, twofold.Errorf(twofold.CodeInvalidPhone, "This user's phone number is invalid.")
		}
		if err := s.destinationAllowed(ctx, app, number, p.Channel); err != nil {
			return Sent{}, err
		}
		if !p.Force {
			device, err := s.appDevice(ctx, app, u)
			if err != nil {
				return Sent{}, err
			}
			if device != "" {
				if err := s.sender.Refuse(ctx, app, p.Channel, twofold.RefusedHasApp); err != nil {
					return Sent{}, err
				}
				return Sent{User: u, Ignored: true, Device: device}, nil
			}
		}
	}
	code, err := randomDigits(app.TokenLength)
	if err != nil {
		return Sent{}, err
	}
	now := s.now().UTC()
	c := twofold.OneTimeCode{
		AppID: app.ID, UserID: u.ID, Channel: p.Channel, Action: p.Action,
		MAC:       s.keys.CodeMAC(codeContext(app.ID, u.ID, p.Action), code),
		CreatedAt: now, ExpiresAt: now.Add(s.cfg.CodeTTL),
	}
	m := s.compose(app, p.Channel, p.Locale, number.Region, code, p.ActionMessage)
	m.UserID = u.ID
	if p.Channel == twofold.Email {
		m.To = u.Email
	} else {
		m.To = number.E164()
	}
	m = s.sender.Prepare(app, m)
	// One decision of the store: the send limits counted, the code stored (earlier ones for its
	// action superseded) and its message recorded in the outbox, in one transaction and one
	// commit. A send refused by a limit, or that fails, leaves nothing of it.
	var refused *sendCheck
	var oldest time.Time // of the refusing limit's window
	err = s.store.Decide(ctx, app.ID, u.ID, func(d twofold.Decision) error {
		refused = nil
		for _, chk := range s.sendChecks(app, p.Channel, number, u.ID) {
			if !chk.applies || chk.limit.Off() {
				continue
			}
			h, err := d.Hit(chk.counter.name, now, chk.limit)
			if err != nil {
				return err
			}
			if h.Refused {
				refused, oldest = &chk, h.Oldest
				return errSendRefused
			}
		}
		if err := d.InsertCode(&c); err != nil {
			return err
		}
		return d.InsertMessage(&m)
	})
	if refused != nil {
		return Sent{}, s.refuseSend(ctx, app, p.Channel, *refused, oldest, now)
	}
	if err != nil {
		return Sent{}, err
	}
	if m, err = s.sender.Deliver(ctx, app, m); err != nil {
		return Sent{}, notSent(p.Channel, err)
	}
	usage := map[twofold.Channel]twofold.UsageKind{twofold.SMS: twofold.UsageSMS, twofold.Call: twofold.UsageCalls, twofold.Email: twofold.UsageEmails}
	if err := s.count(ctx, app.ID, now, usage[p.Channel]); err != nil {
		return Sent{}, err
	}
	return Sent{User: u, Message: m}, nil
}

// errSendRefused undoes a send's decision when one of its limits is full: what the limits
// before it counted is given back with the rest.
var errSendRefused = errors.New("send refused by a limit")

// refuseSend answers a send that limit chk refused: the refusal is counted by reason, and the
// first within the limit's window goes into the audit trail.
func (s *Service) refuseSend(ctx context.Context, app twofold.App, ch twofold.Channel, chk sendCheck, oldest, now time.Time) error {
	first, err := s.store.RecordRefusal(ctx, chk.counter.name, now, chk.limit.Window)
	if err != nil {
		return err
	}
	if first {
		s.limitHit(ctx, chk.counter, chk.limit)
	}
	if err := s.sender.Refuse(ctx, app, ch, chk.reason); err != nil {
		return err
	}
	return &SendRefused{Limit: chk.counter.limit, Err: limitError(chk.limit, oldest, now, chk.what)}
}

// notSent turns a delivery failure into the error Authy gave (60015 for SMS and email, 60014 for
// a call); other errors (the store's) pass through.
func notSent(ch twofold.Channel, err error) error {
	if !errors.Is(err, twofold.ErrNotDelivered) {
		return err
	}
	if ch == twofold.Call {
		return twofold.Errorf(twofold.CodeCallNotStarted, "Call could not be started.")
	}
	return twofold.Errorf(twofold.CodeSMSNotSent, "Token could not be sent.")
}

// compose renders a code message in the asked language, else the language of the number's
// country (region), else English.
func (s *Service) compose(app twofold.App, ch twofold.Channel, locale, region, code, purpose string) twofold.Message {
	if locale == "" {
		locale = regionLanguage[region]
	}
	c := message.Render(ch, locale, message.Data{App: app.Name, Code: code, Minutes: int(s.cfg.CodeTTL.Minutes()), Purpose: purpose})
	return twofold.Message{AppID: app.ID, Channel: ch, Body: c.Text, Subject: c.Subject, HTML: c.HTML, Spoken: c.Spoken, Locale: c.Locale}
}

// regionLanguage is the language a number's country most likely reads, for messages sent without
// a locale, as Authy did. Countries whose language Twofold has no texts for get English.
var regionLanguage = map[string]string{
	"ES": "es", "MX": "es", "AR": "es", "CO": "es", "CL": "es", "PE": "es", "VE": "es", "EC": "es", "GT": "es",
	"CU": "es", "BO": "es", "DO": "es", "HN": "es", "PY": "es", "SV": "es", "NI": "es", "CR": "es", "PA": "es", "UY": "es",
	"BR": "pt", "PT": "pt", "AO": "pt", "MZ": "pt",
	"FR": "fr", "MC": "fr", "SN": "fr", "CI": "fr",
	"DE": "de", "AT": "de", "LI": "de",
	"IT": "it", "SM": "it",
	"PL": "pl",
	"JP": "ja",
	"CN": "zh", "SG": "zh",
}

// appDevice names a device or app that gives the user codes without SMS ("" if none): Authy did
// not text users who had its app unless asked to force it.
func (s *Service) appDevice(ctx context.Context, app twofold.App, u twofold.User) (string, error) {
	return s.store.CodesWithoutSMS(ctx, app.ID, u.ID)
}

// destinationAllowed applies the application's country list, refuses premium-rate numbers (the
// target of toll fraud) and SMS to numbers the numbering plan says cannot receive it (landlines,
// toll-free), before anything is spent.
func (s *Service) destinationAllowed(ctx context.Context, app twofold.App, n phone.Number, ch twofold.Channel) error {
	var reason string
	var refusal *twofold.Error
	switch {
	case !app.SendsTo(n.Region):
		reason = twofold.RefusedCountry
		refusal = twofold.Errorf(twofold.CodeBannedCountry, "This application does not send codes to numbers in %s.", n.Region)
	case n.Type == phone.PremiumRate || n.Type == phone.SharedCost:
		reason = twofold.RefusedPremium
		refusal = twofold.Errorf(twofold.CodeInvalidPhone, "Codes are not sent to premium-rate numbers.")
	case ch == twofold.SMS && (n.Type == phone.Landline || n.Type == phone.TollFree):
		reason = twofold.RefusedLandline
		refusal = twofold.Errorf(twofold.CodeSMSToLandline, "Cannot send SMS to a landline number; use a voice call.")
	default:
		return nil
	}
	if err := s.sender.Refuse(ctx, app, ch, reason); err != nil {
		return err
	}
	return refusal
}

// sendCheck is one of the send limits a code is counted against.
type sendCheck struct {
	applies bool
	counter counted
	limit   Limit
	reason  string // twofold.Refused*, when it refuses
	what    string // the refusal's message
}

// sendChecks are the send limits of a code, narrowest first: per user (userID 0: none), per
// phone number, per country calling code, per application (email has no number). The first one
// full refuses the send, and is counted as its reason.
func (s *Service) sendChecks(app twofold.App, ch twofold.Channel, n phone.Number, userID int64) []sendCheck {
	phoneSend := ch != twofold.Email
	count := func(name, limit string) counted {
		return counted{name: name, limit: limit, appID: app.ID, userID: userID}
	}
	checks := []sendCheck{
		{userID != 0, count(sendCounter(app.ID, userID), "sends"), limit(app, twofold.LimitSends, s.cfg.SendLimit), twofold.RefusedUserLimit, "too many codes sent to this user"},
		{phoneSend, counted{}, limit(app, twofold.LimitNumberSends, s.cfg.NumberSendLimit), twofold.RefusedNumberLimit, "too many codes sent to this number"},
		{phoneSend, counted{}, limit(app, twofold.LimitCountrySends, s.cfg.CountrySendLimit), twofold.RefusedCountryLimit, ""},
		{true, count(fmt.Sprintf("sends-app:%d", app.ID), "app_sends"), limit(app, twofold.LimitAppSends, s.cfg.AppSendLimit), twofold.RefusedAppLimit,
			"too many codes sent by this application"},
	}
	if phoneSend {
		checks[1].counter = count(fmt.Sprintf("sends-number:%d:%s", app.ID, n.E164()), "number_sends")
		checks[2].counter = count(fmt.Sprintf("sends-country:%d:%d", app.ID, n.CountryCode), "country_sends")
		checks[2].what = fmt.Sprintf("too many codes sent to numbers in +%d", n.CountryCode)
	}
	return checks
}

// spend counts one code against the send limits (sendChecks) outside a decision, for sends that
// store their code by other means (phone verification, Verify v2). The first limit passed
// refuses the send, and is counted as its reason; what the others counted is given back. It
// returns the events counted, for giveBack should the send fail before a provider has it.
func (s *Service) spend(ctx context.Context, app twofold.App, ch twofold.Channel, n phone.Number, userID int64) ([]twofold.LimitEvent, error) {
	var spent []twofold.LimitEvent
	for _, c := range s.sendChecks(app, ch, n, userID) {
		if !c.applies {
			continue
		}
		ev, err := s.hit(ctx, c.counter, c.limit, c.what)
		if err == nil {
			spent = append(spent, ev)
			continue
		}
		s.giveBack(ctx, spent)
		if twofold.ErrorCode(err) == twofold.CodeRateLimited {
			if rerr := s.sender.Refuse(ctx, app, ch, c.reason); rerr != nil {
				return nil, rerr
			}
			return nil, &SendRefused{Limit: c.counter.limit, Err: err}
		}
		return nil, err
	}
	return spent, nil
}

// SendRefused is a send refused by one of the send limits: Limit names which (sends,
// number_sends, country_sends, app_sends). It unwraps to the 60003 error, which the Authy API
// answers; the Verify API answers a number's limit with its own code.
type SendRefused struct {
	Limit string
	Err   error
}

func (e *SendRefused) Error() string { return e.Err.Error() }
func (e *SendRefused) Unwrap() error { return e.Err }

// giveBack refunds the events spend counted, for a send that failed before any provider had it:
// a failed request spends no quota. (Once a provider was asked, the send counts, delivered or
// not: the limits also bound what providers are asked to do.) It outlives ctx, which may be why
// the send failed; a refund that fails leaves the quota spent, the safe side.
func (s *Service) giveBack(ctx context.Context, spent []twofold.LimitEvent) {
	ctx = context.WithoutCancel(ctx)
	for _, ev := range spent {
		s.refund(ctx, ev)
	}
}
