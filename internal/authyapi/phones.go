package authyapi

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/twofold-auth/twofold/internal/phone"
	"github.com/twofold-auth/twofold/internal/twofold"
	"github.com/twofold-auth/twofold/internal/verify"
)

// phoneParam reads phone_number and country_code (spec 5): 60004 when one is missing, 60033
// when they are not a valid number by the application's rules (phone.RulesFor).
func phoneParam(app twofold.App, p Params) (phone.Number, error) {
	cc, _ := p.String("country_code")
	number, _ := p.String("phone_number")
	switch {
	case strings.TrimSpace(cc) == "":
		return phone.Number{}, twofold.ErrInvalidParam("country_code", "Parameter is required")
	case strings.TrimSpace(number) == "":
		return phone.Number{}, twofold.ErrInvalidParam("phone_number", "Parameter is required")
	}
	n, err := phone.RulesFor(app).Parse(cc, number)
	if err != nil {
		return phone.Number{}, twofold.Errorf(twofold.CodeInvalidPhone, "Phone number is invalid")
	}
	return n, nil
}

// phoneVerificationStart: POST /protected/json/phones/verification/start (spec 5.1).
func (a *API) phoneVerificationStart(w http.ResponseWriter, r *http.Request, c *call) error {
	n, err := phoneParam(c.app, c.params)
	if err != nil {
		return err
	}
	via, _ := c.params.String("via")
	length, _, err := c.params.Int("code_length")
	if err != nil {
		return twofold.ErrInvalidParam("code_length", "must be a number from 4 to 10")
	}
	custom, _ := c.params.String("custom_message")
	customCode, _ := c.params.String("custom_code")
	locale, _ := c.params.String("locale")
	started, err := a.verify.StartPhoneVerification(r.Context(), c.app, verify.PhoneStart{
		Via: twofold.Channel(strings.ToLower(via)), Number: n, CodeLength: int(length), CustomMessage: custom,
		CustomCode: customCode, Locale: locale,
	})
	if err != nil {
		return err
	}
	msg := fmt.Sprintf("Text message sent to %s.", n.Format(true))
	if started.Message.Channel == twofold.Call {
		msg = fmt.Sprintf("Call to %s initiated", n.Format(true))
	}
	v := started.Verification
	writeJSON(w, http.StatusOK, struct {
		Carrier         *string `json:"carrier"`
		IsCellphone     bool    `json:"is_cellphone"`
		IsPorted        bool    `json:"is_ported"`
		Message         string  `json:"message"`
		SecondsToExpire int64   `json:"seconds_to_expire"`
		UUID            string  `json:"uuid"`
		Success         bool    `json:"success"`
	}{nil, n.Type == phone.Mobile, false, msg, int64(v.ExpiresAt.Sub(v.CreatedAt).Seconds()) - 1, v.UUID, true})
	return nil
}

// phoneVerificationCheck: GET /protected/json/phones/verification/check (spec 5.2).
func (a *API) phoneVerificationCheck(w http.ResponseWriter, r *http.Request, c *call) error {
	n, err := phoneParam(c.app, c.params)
	if err != nil {
		return err
	}
	code, _ := c.params.String("verification_code")
	if code == "" {
		return twofold.ErrInvalidParam("verification_code", "Parameter is required")
	}
	if err := a.verify.CheckPhoneVerification(r.Context(), c.app, n, code); err != nil {
		a.metrics.Verifications.WithLabelValues("phone_" + outcome(err)).Inc()
		return err
	}
	a.metrics.Verifications.WithLabelValues("phone_success").Inc()
	writeJSON(w, http.StatusOK, okMessage{"Verification code is correct.", true})
	return nil
}

// phoneVerificationStatus: GET /protected/json/phones/verification/status (spec 5.3), by
// phone_number and country_code, or by uuid.
func (a *API) phoneVerificationStatus(w http.ResponseWriter, r *http.Request, c *call) error {
	uuid, _ := c.params.String("uuid")
	e164 := ""
	if uuid == "" {
		n, err := phoneParam(c.app, c.params)
		if err != nil {
			return err
		}
		e164 = n.E164()
	}
	status, left, err := a.verify.PhoneVerificationStatus(r.Context(), c.app, e164, uuid)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, struct {
		Message         string `json:"message"`
		Status          string `json:"status"`
		SecondsToExpire int64  `json:"seconds_to_expire"`
		Success         bool   `json:"success"`
	}{"Phone Verification status.", status, int64(left.Seconds()), true})
	return nil
}

// lineTypes maps the numbering plan's types to Authy's words for them.
var lineTypes = map[phone.Type]string{phone.Mobile: "cellphone", phone.Landline: "landline", phone.VoIP: "voip"}

// phoneInfo: GET /protected/json/phones/info (spec 5.4), from the offline numbering plan only:
// no carrier lookup is made, so provider is empty and ported is false, and the answer says so.
// A sandbox application's number off the plan is answered too, as Authy's sandbox answered any
// number (lholden/authy-rs tests/api_phone.rs), with valid false and type unknown.
func (a *API) phoneInfo(w http.ResponseWriter, r *http.Request, c *call) error {
	n, err := phoneParam(c.app, c.params)
	if err != nil {
		return err
	}
	typ := lineTypes[n.Type]
	if typ == "" {
		typ = "unknown"
	}
	type formats struct {
		E164          string `json:"e164"`
		International string `json:"international"`
		National      string `json:"national"`
	}
	writeJSON(w, http.StatusOK, struct {
		Message  string  `json:"message"`
		Type     string  `json:"type"`
		LineType string  `json:"line_type"`
		Provider string  `json:"provider"`
		Ported   bool    `json:"ported"`
		Valid    bool    `json:"valid"`
		Country  string  `json:"country"`
		Formats  formats `json:"formats"`
		Source   string  `json:"source"`
		Success  bool    `json:"success"`
	}{
		"Phone number information as of " + a.now().UTC().Format("2006-01-02 15:04:05") + " UTC", typ, string(n.Type), "", false, !n.OffPlan,
		n.Region, formats{n.E164(), n.Format(true), n.Format(false)},
		"offline numbering plan: no carrier or porting lookup was made", true,
	})
	return nil
}
