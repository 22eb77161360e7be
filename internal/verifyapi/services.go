package verifyapi

import (
	"net/http"

	"github.com/twofold-auth/twofold/internal/apps"
	"github.com/twofold-auth/twofold/internal/twofold"
)

// Services (/v2/Services): a Verify service is a named configuration inside the caller's
// application. Its settings are stored and echoed back; which of them change what Twofold does
// is in docs/verify-v2.md.

// timeFormat is how dates are written: ISO 8601 in UTC, as the Verify API writes them.
const timeFormat = "2006-01-02T15:04:05Z"

type servicePush struct {
	IncludeDate      bool    `json:"include_date"`
	APNCredentialSID *string `json:"apn_credential_sid"`
	FCMCredentialSID *string `json:"fcm_credential_sid"`
}

type serviceTOTP struct {
	Issuer     string `json:"issuer"`
	TimeStep   int    `json:"time_step"`
	CodeLength int    `json:"code_length"`
	Skew       int    `json:"skew"`
}

type serviceWhatsApp struct {
	MsgServiceSID *string `json:"msg_service_sid"`
	From          *string `json:"from"`
}

// serviceJSON is a service on the wire.
type serviceJSON struct {
	SID                            string            `json:"sid"`
	AccountSID                     string            `json:"account_sid"`
	FriendlyName                   string            `json:"friendly_name"`
	CodeLength                     int               `json:"code_length"`
	LookupEnabled                  bool              `json:"lookup_enabled"`
	PSD2Enabled                    bool              `json:"psd2_enabled"`
	SkipSMSToLandlines             bool              `json:"skip_sms_to_landlines"`
	DTMFInputRequired              bool              `json:"dtmf_input_required"`
	TTSName                        *string           `json:"tts_name"`
	DoNotShareWarningEnabled       bool              `json:"do_not_share_warning_enabled"`
	CustomCodeEnabled              bool              `json:"custom_code_enabled"`
	Push                           servicePush       `json:"push"`
	TOTP                           serviceTOTP       `json:"totp"`
	DefaultTemplateSID             *string           `json:"default_template_sid"`
	WhatsApp                       serviceWhatsApp   `json:"whatsapp"`
	Passkeys                       any               `json:"passkeys"` // not served: null
	VerifyEventSubscriptionEnabled bool              `json:"verify_event_subscription_enabled"`
	DateCreated                    string            `json:"date_created"`
	DateUpdated                    string            `json:"date_updated"`
	URL                            string            `json:"url"`
	Links                          map[string]string `json:"links"`
}

// nullable is s, or null when it is empty.
func nullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func (a *API) serviceJSON(r *http.Request, c *call, v twofold.VerifyService) serviceJSON {
	st := v.Settings
	issuer := st.TOTPIssuer
	if issuer == "" {
		issuer = v.Name
	}
	url := a.baseURL(r) + Prefix + "/Services/" + sid(ServicePrefix, v.PublicID)
	links := map[string]string{}
	for key, sub := range map[string]string{
		"verifications": "Verifications", "verification_checks": "VerificationCheck", "entities": "Entities",
		"webhooks": "Webhooks", "access_tokens": "AccessTokens", "rate_limits": "RateLimits",
		"messaging_configurations": "MessagingConfigurations",
	} {
		links[key] = url + "/" + sub
	}
	return serviceJSON{
		SID: sid(ServicePrefix, v.PublicID), AccountSID: c.caller.AccountSID, FriendlyName: v.Name, CodeLength: v.CodeLength,
		LookupEnabled: st.LookupEnabled, PSD2Enabled: st.PSD2Enabled, SkipSMSToLandlines: st.SkipSMSToLandlines,
		DTMFInputRequired: st.DTMFInputRequired, TTSName: nullable(st.TTSName), DoNotShareWarningEnabled: st.DoNotShareWarningEnabled,
		CustomCodeEnabled:              st.CustomCodeEnabled,
		Push:                           servicePush{st.PushIncludeDate, nullable(st.PushAPNCredentialSID), nullable(st.PushFCMCredentialSID)},
		TOTP:                           serviceTOTP{issuer, st.TOTPTimeStep, st.TOTPCodeLength, st.TOTPSkew},
		DefaultTemplateSID:             nullable(st.DefaultTemplateSID),
		WhatsApp:                       serviceWhatsApp{nullable(st.WhatsAppMsgServiceSID), nullable(st.WhatsAppFrom)},
		VerifyEventSubscriptionEnabled: st.VerifyEventSubscription,
		DateCreated:                    v.CreatedAt.UTC().Format(timeFormat), DateUpdated: v.UpdatedAt.UTC().Format(timeFormat),
		URL: url, Links: links,
	}
}

// readService applies the request's service parameters to v.
func readService(p Params, v *twofold.VerifyService) error {
	if name := p.WithPrefix("Passkeys."); name != "" {
		return InvalidParam(name, "passkeys are not served by Twofold yet")
	}
	st := &v.Settings
	p.Text("FriendlyName", &v.Name)
	p.Text("TtsName", &st.TTSName)
	p.Text("DefaultTemplateSid", &st.DefaultTemplateSID)
	p.Text("Push.ApnCredentialSid", &st.PushAPNCredentialSID)
	p.Text("Push.FcmCredentialSid", &st.PushFCMCredentialSID)
	p.Text("Totp.Issuer", &st.TOTPIssuer)
	p.Text("Whatsapp.MsgServiceSid", &st.WhatsAppMsgServiceSID)
	p.Text("Whatsapp.From", &st.WhatsAppFrom)
	for _, f := range []struct {
		name string
		dst  *bool
	}{
		{"LookupEnabled", &st.LookupEnabled}, {"SkipSmsToLandlines", &st.SkipSMSToLandlines},
		{"DtmfInputRequired", &st.DTMFInputRequired}, {"Psd2Enabled", &st.PSD2Enabled},
		{"DoNotShareWarningEnabled", &st.DoNotShareWarningEnabled}, {"CustomCodeEnabled", &st.CustomCodeEnabled},
		{"Push.IncludeDate", &st.PushIncludeDate}, {"VerifyEventSubscriptionEnabled", &st.VerifyEventSubscription},
	} {
		if err := p.Bool(f.name, f.dst); err != nil {
			return err
		}
	}
	for _, f := range []struct {
		name string
		dst  *int
	}{
		{"CodeLength", &v.CodeLength}, {"Totp.TimeStep", &st.TOTPTimeStep}, {"Totp.CodeLength", &st.TOTPCodeLength},
		{"Totp.Skew", &st.TOTPSkew},
	} {
		if err := p.Int(f.name, f.dst); err != nil {
			return err
		}
	}
	return nil
}

// createService: POST /v2/Services.
func (a *API) createService(w http.ResponseWriter, r *http.Request, c *call) error {
	if _, err := c.params.Required("FriendlyName"); err != nil {
		return err
	}
	v := apps.NewVerifyService("")
	if err := readService(c.params, &v); err != nil {
		return err
	}
	v, err := a.apps.CreateVerifyService(r.Context(), c.app(), v)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, a.serviceJSON(r, c, v))
	return nil
}

// fetchService: GET /v2/Services/{service}.
func (a *API) fetchService(w http.ResponseWriter, r *http.Request, c *call) error {
	v, err := a.service(r, c)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, a.serviceJSON(r, c, v))
	return nil
}

// updateService: POST /v2/Services/{service}; parameters not sent stay as they are.
func (a *API) updateService(w http.ResponseWriter, r *http.Request, c *call) error {
	v, err := a.service(r, c)
	if err != nil {
		return err
	}
	if err := readService(c.params, &v); err != nil {
		return err
	}
	if v, err = a.apps.UpdateVerifyService(r.Context(), c.app(), v); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, a.serviceJSON(r, c, v))
	return nil
}

// deleteService: DELETE /v2/Services/{service}, with its verifications: 204.
func (a *API) deleteService(w http.ResponseWriter, r *http.Request, c *call) error {
	id, ok := publicID(ServicePrefix, r.PathValue("service"))
	if !ok {
		return twofold.ErrNotFound
	}
	if err := a.apps.DeleteVerifyService(r.Context(), c.app(), id); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// listServices: GET /v2/Services, oldest first, paged.
func (a *API) listServices(w http.ResponseWriter, r *http.Request, c *call) error {
	pg, err := readPage(c.params)
	if err != nil {
		return err
	}
	list, err := a.apps.VerifyServices(r.Context(), c.app(), pg.After, pg.Offset(), pg.Size+1)
	if err != nil {
		return err
	}
	more := len(list) > pg.Size
	list = list[:min(len(list), pg.Size)]
	out := make([]serviceJSON, 0, len(list))
	var last int64
	for _, v := range list {
		out = append(out, a.serviceJSON(r, c, v))
		last = v.ID
	}
	writeJSON(w, http.StatusOK, struct {
		Services []serviceJSON `json:"services"`
		Meta     Meta          `json:"meta"`
	}{out, a.meta(r, "services", pg, last, more)})
	return nil
}
