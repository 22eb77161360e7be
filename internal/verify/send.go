package verify

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/twofold-auth/twofold/internal/phone"
	"github.com/twofold-auth/twofold/internal/twofold"
)

// SendParams are the options of sms/{id}, call/{id} and email/{id}.
type SendParams struct {
	Channel       twofold.Channel
	Force         bool   // send even though the user has an authenticator app
	Action        string // binds the code: verify must name the same action
	ActionMessage string // shown in the message
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
	if p.Channel != twofold.Email {
		n, err := phone.OfUser(u.CountryCode, u.Phone)
		if err != nil {
			return Sent{}, twofold.Errorf(twofold.CodeInvalidPhone, "This user's phone number is invalid.")
		}
		if err := destinationAllowed(app, n, p.Channel); err != nil {
			return Sent{}, err
		}
	}
	if p.Channel != twofold.Email && !p.Force {
		device, err := s.appDevice(ctx, app, u)
		if err != nil {
			return Sent{}, err
		}
		if device != "" {
			return Sent{User: u, Ignored: true, Device: device}, nil
		}
	}
	if err := s.hit(ctx, sendCounter(app.ID, u.ID), s.cfg.SendLimit, "too many codes sent to this user"); err != nil {
		return Sent{}, err
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
	if err := s.store.InsertCode(ctx, &c); err != nil {
		return Sent{}, err
	}
	m := twofold.Message{AppID: app.ID, UserID: u.ID, Channel: p.Channel, Body: s.body(app, p, code)}
	if p.Channel == twofold.Email {
		m.To = u.Email
	} else {
		m.To = fmt.Sprintf("+%d%s", u.CountryCode, u.Phone)
	}
	m, err = s.sender.Send(ctx, m, app.Sandbox)
	if err != nil {
		if p.Channel == twofold.Call {
			return Sent{}, twofold.Errorf(twofold.CodeCallNotStarted, "Call could not be started.")
		}
		return Sent{}, twofold.Errorf(twofold.CodeSMSNotSent, "Token could not be sent.")
	}
	usage := map[twofold.Channel]twofold.UsageKind{twofold.SMS: twofold.UsageSMS, twofold.Call: twofold.UsageCalls, twofold.Email: twofold.UsageEmails}
	if err := s.store.AddUsage(ctx, app.ID, now, usage[p.Channel], 1); err != nil {
		return Sent{}, err
	}
	return Sent{User: u, Message: m}, nil
}

// body writes the message text. Voice reads the code digit by digit, twice.
func (s *Service) body(app twofold.App, p SendParams, code string) string {
	minutes := int(s.cfg.CodeTTL.Minutes())
	purpose := ""
	if p.ActionMessage != "" {
		purpose = " (" + p.ActionMessage + ")"
	}
	switch p.Channel {
	case twofold.Call:
		spoken := strings.Join(strings.Split(code, ""), ", ")
		return fmt.Sprintf("Your %s verification code%s is: %s. Again, your code is: %s.", app.Name, purpose, spoken, spoken)
	case twofold.Email:
		return fmt.Sprintf("Subject: Your %s verification code\n\nYour %s verification code%s is %s.\nIt is valid for %d minutes. If you did not ask for it, ignore this email.",
			app.Name, app.Name, purpose, code, minutes)
	default:
		return fmt.Sprintf("Your %s verification code%s is %s. It is valid for %d minutes.", app.Name, purpose, code, minutes)
	}
}

// appDevice names a device or app that gives the user codes without SMS ("" if none): Authy did
// not text users who had its app unless asked to force it.
func (s *Service) appDevice(ctx context.Context, app twofold.App, u twofold.User) (string, error) {
	devs, err := s.store.ListDevices(ctx, app.ID, u.ID)
	if err != nil {
		return "", err
	}
	if len(devs) > 0 {
		return devs[0].OSType, nil
	}
	switch _, err := s.store.GetAuthenticator(ctx, app.ID, u.ID); {
	case err == nil:
		return "authenticator", nil
	case errors.Is(err, twofold.ErrNotFound):
		return "", nil
	default:
		return "", err
	}
}

// destinationAllowed applies the application's country list and refuses SMS to numbers the
// numbering plan says cannot receive it (landlines, toll-free), before anything is spent.
func destinationAllowed(app twofold.App, n phone.Number, ch twofold.Channel) error {
	if !app.SendsTo(n.Region) {
		return twofold.Errorf(twofold.CodeBannedCountry, "This application does not send codes to numbers in %s.", n.Region)
	}
	if ch == twofold.SMS && (n.Type == phone.Landline || n.Type == phone.TollFree) {
		return twofold.Errorf(twofold.CodeSMSToLandline, "Cannot send SMS to a landline number; use a voice call.")
	}
	return nil
}
