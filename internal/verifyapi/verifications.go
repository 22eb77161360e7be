package verifyapi

import (
	"errors"
	"net/http"
	"strings"

	"github.com/twofold-auth/twofold/internal/phone"
	"github.com/twofold-auth/twofold/internal/twofold"
	"github.com/twofold-auth/twofold/internal/verify"
)

// Verifications (/v2/Services/{service}/Verifications and VerificationCheck): one-time codes by
// SMS, voice call or email, with Verify's rules, made by internal/verify over the same sends,
// fraud rules, limits and outbox as the Authy API's codes.

// attemptTimeFormat is how a send's time is written (Twilio writes milliseconds there).
const attemptTimeFormat = "2006-01-02T15:04:05.000Z"

type attemptJSON struct {
	AttemptSID string `json:"attempt_sid"`
	Channel    string `json:"channel"`
	Time       string `json:"time"`
}

type carrierJSON struct {
	ErrorCode         *int    `json:"error_code"`
	Name              *string `json:"name"`
	MobileCountryCode *string `json:"mobile_country_code"`
	MobileNetworkCode *string `json:"mobile_network_code"`
	Type              *string `json:"type"`
}

// verificationJSON is a verification on the wire.
type verificationJSON struct {
	SID              string         `json:"sid"`
	ServiceSID       string         `json:"service_sid"`
	AccountSID       string         `json:"account_sid"`
	To               string         `json:"to"`
	Channel          string         `json:"channel"`
	Status           string         `json:"status"`
	Valid            bool           `json:"valid"`
	Lookup           map[string]any `json:"lookup"`
	Amount           *string        `json:"amount"`
	Payee            *string        `json:"payee"`
	SendCodeAttempts []attemptJSON  `json:"send_code_attempts"`
	DateCreated      string         `json:"date_created"`
	DateUpdated      string         `json:"date_updated"`
	SNA              any            `json:"sna"`
	URL              string         `json:"url"`
}

// lineTypes are Lookup's words for the numbering plan's types.
var lineTypes = map[phone.Type]string{phone.Mobile: "mobile", phone.Landline: "landline", phone.VoIP: "voip",
	phone.FixedOrMobile: "mobile", phone.TollFree: "tollfree"}

func (a *API) verificationJSON(r *http.Request, c *call, svc twofold.VerifyService, v twofold.Verification) verificationJSON {
	status := v.StatusAt(a.now(), verify.VerificationMaxChecks)
	attempts := make([]attemptJSON, 0, len(v.Sends))
	for _, s := range v.Sends {
		attempts = append(attempts, attemptJSON{sid(AttemptPrefix, s.PublicID), string(s.Channel), s.At.UTC().Format(attemptTimeFormat)})
	}
	lookup := map[string]any{}
	if svc.Settings.LookupEnabled && v.Channel != twofold.Email {
		// From the offline numbering plan only: no carrier is asked.
		if n, err := phone.RulesFor(c.app()).ParseE164(v.To); err == nil {
			lookup["carrier"] = carrierJSON{Type: nullable(lineTypes[n.Type])}
		}
	}
	return verificationJSON{
		SID: sid(VerificationPrefix, v.PublicID), ServiceSID: sid(ServicePrefix, svc.PublicID), AccountSID: c.caller.AccountSID,
		To: v.To, Channel: string(v.Channel), Status: status, Valid: status == twofold.VerificationApproved, Lookup: lookup,
		SendCodeAttempts: attempts, DateCreated: v.CreatedAt.UTC().Format(timeFormat), DateUpdated: v.UpdatedAt.UTC().Format(timeFormat),
		URL: a.baseURL(r) + Prefix + "/Services/" + sid(ServicePrefix, svc.PublicID) + "/Verifications/" + sid(VerificationPrefix, v.PublicID),
	}
}

// notServed are the channels Verify has that Twofold does not serve.
var notServed = map[string]bool{"whatsapp": true, "sna": true, "auto": true, "rbm": true}

// createVerification: POST /v2/Services/{service}/Verifications. While a verification of the
// same recipient is pending, its code is sent again (on the channel asked for): 201 either way.
func (a *API) createVerification(w http.ResponseWriter, r *http.Request, c *call) error {
	svc, err := a.service(r, c)
	if err != nil {
		return err
	}
	p := c.params
	to, err := p.Required("To")
	if err != nil {
		return err
	}
	channel, err := p.Required("Channel")
	if err != nil {
		return err
	}
	channel = strings.ToLower(strings.TrimSpace(channel))
	switch {
	case notServed[channel]:
		return InvalidParam("Channel", channel+" is not served by Twofold: use sms, call or email")
	case channel != "sms" && channel != "call" && channel != "email":
		return InvalidParam("Channel", "must be sms, call or email")
	}
	if err := p.Refuse("PSD2 dynamic linking is not served by Twofold", "Amount", "Payee"); err != nil {
		return err
	}
	if err := p.Refuse("custom message texts are not served by Twofold (Twilio deprecated them)", "CustomMessage"); err != nil {
		return err
	}
	for _, name := range []string{"RateLimits", "ChannelConfiguration"} {
		if err := p.JSONObject(name); err != nil {
			return err
		}
	}
	started, err := a.verify.StartVerification(r.Context(), c.app(), verify.VerificationStart{
		Service: svc, To: to, Channel: twofold.Channel(channel), Locale: p.String("Locale"),
		CustomCode: p.String("CustomCode"), FriendlyName: p.String("CustomFriendlyName"),
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, a.verificationJSON(r, c, svc, started.Verification))
	return nil
}

// verificationSID reads the path's {sid}.
func verificationSID(r *http.Request) (string, error) {
	id, ok := publicID(VerificationPrefix, r.PathValue("sid"))
	if !ok {
		return "", twofold.ErrNotFound
	}
	return id, nil
}

// fetchVerification: GET /v2/Services/{service}/Verifications/{sid}: 20404 once it was
// approved or canceled, or expired.
func (a *API) fetchVerification(w http.ResponseWriter, r *http.Request, c *call) error {
	svc, err := a.service(r, c)
	if err != nil {
		return err
	}
	id, err := verificationSID(r)
	if err != nil {
		return err
	}
	v, err := a.verify.Verification(r.Context(), svc, id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, a.verificationJSON(r, c, svc, v))
	return nil
}

// updateVerification: POST /v2/Services/{service}/Verifications/{sid} with Status canceled or
// approved (the application checked a custom code itself).
func (a *API) updateVerification(w http.ResponseWriter, r *http.Request, c *call) error {
	svc, err := a.service(r, c)
	if err != nil {
		return err
	}
	id, err := verificationSID(r)
	if err != nil {
		return err
	}
	status, err := c.params.Required("Status")
	if err != nil {
		return err
	}
	status = strings.ToLower(strings.TrimSpace(status))
	if status != twofold.VerificationCanceled && status != twofold.VerificationApproved {
		return InvalidParam("Status", "must be canceled or approved")
	}
	v, err := a.verify.EndVerification(r.Context(), c.app(), svc, id, status)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, a.verificationJSON(r, c, svc, v))
	return nil
}

// checkJSON is a verification check on the wire.
type checkJSON struct {
	SID                   string  `json:"sid"`
	ServiceSID            string  `json:"service_sid"`
	AccountSID            string  `json:"account_sid"`
	To                    string  `json:"to"`
	Channel               string  `json:"channel"`
	Status                string  `json:"status"`
	Valid                 bool    `json:"valid"`
	Amount                *string `json:"amount"`
	Payee                 *string `json:"payee"`
	DateCreated           string  `json:"date_created"`
	DateUpdated           string  `json:"date_updated"`
	SNAAttemptsErrorCodes []any   `json:"sna_attempts_error_codes"`
}

// checkVerification: POST /v2/Services/{service}/VerificationCheck with Code and To or
// VerificationSid. A wrong code answers 200 with status pending and valid false; the fifth
// wrong one, status max_attempts_reached; a check after that, 60202; a check of no live
// verification (approved, canceled, expired, none), 20404.
func (a *API) checkVerification(w http.ResponseWriter, r *http.Request, c *call) error {
	svc, err := a.service(r, c)
	if err != nil {
		return err
	}
	p := c.params
	code, err := p.Required("Code")
	if err != nil {
		return err
	}
	if err := p.Refuse("PSD2 dynamic linking is not served by Twofold", "Amount", "Payee"); err != nil {
		return err
	}
	id := ""
	if vs := p.String("VerificationSid"); vs != "" {
		var ok bool
		if id, ok = publicID(VerificationPrefix, vs); !ok {
			return InvalidParam("VerificationSid", "is not a verification SID (VE and 32 hex digits)")
		}
	} else if strings.TrimSpace(p.String("To")) == "" {
		return MissingParam("To")
	}
	v, approved, err := a.verify.CheckVerification(r.Context(), c.app(), verify.VerificationCheck{
		Service: svc, To: p.String("To"), VerificationID: id, Code: code,
	})
	a.metrics.Verifications.WithLabelValues(checkOutcome(approved, err)).Inc()
	if err != nil {
		return err
	}
	status := v.StatusAt(a.now(), verify.VerificationMaxChecks)
	writeJSON(w, http.StatusOK, checkJSON{
		SID: sid(VerificationPrefix, v.PublicID), ServiceSID: sid(ServicePrefix, svc.PublicID), AccountSID: c.caller.AccountSID,
		To: v.To, Channel: string(v.Channel), Status: status, Valid: status == twofold.VerificationApproved,
		DateCreated: v.CreatedAt.UTC().Format(timeFormat), DateUpdated: v.UpdatedAt.UTC().Format(timeFormat),
		SNAAttemptsErrorCodes: []any{},
	})
	return nil
}

// checkOutcome labels a check in the verifications metric, beside the Authy API's outcomes.
func checkOutcome(approved bool, err error) string {
	switch {
	case approved:
		return "verify_api_success"
	case err == nil:
		return "verify_api_invalid"
	case errors.Is(err, twofold.ErrNotFound):
		return "verify_api_not_found"
	case errors.Is(err, verify.ErrMaxChecks):
		return "verify_api_rate_limited"
	}
	return "verify_api_error"
}
