package console

import (
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/twofold-auth/twofold/internal/apps"
	"github.com/twofold-auth/twofold/internal/twofold"
)

// The settings form maps one to one onto apps.Update. One save reports every field that is
// wrong at once, each beside its field: what does not parse here (a number, a limit), and what
// the service refuses among the rest (apps.InvalidSettings names the field). An empty field
// takes the server's value, which the form shows as the field's placeholder.

type settingsData struct {
	App       twofold.App
	V         map[string]string // the form's values, as shown
	Errors    map[string]string // by field
	Error     string            // for the whole form
	Providers map[string][]string
	Defaults  map[string]string // by field: what an empty field means
}

var boolFields = []string{"sandbox", "sms_enabled", "call_enabled", "number_matching", "unconfirmed_bypass",
	"custom_messages", "custom_codes", "callback_expired", "passkey_usernameless"}

var intFields = []string{"token_length", "totp_digits", "totp_period", "totp_window", "device_totp_period"}

var providerFields = map[string]twofold.Channel{"sms_provider": twofold.SMS, "call_provider": twofold.Call, "email_provider": twofold.Email}

func checked(b bool) string {
	if b {
		return "on"
	}
	return ""
}

// formValues are an application's settings as the form shows them.
func formValues(a twofold.App) map[string]string {
	v := map[string]string{
		"name": a.Name, "sandbox": checked(a.Sandbox),
		"token_length": strconv.Itoa(a.TokenLength), "totp_digits": strconv.Itoa(a.TOTPDigits),
		"totp_period": strconv.Itoa(a.TOTPPeriod), "totp_window": strconv.Itoa(a.TOTPSkew),
		"device_totp_period": strconv.Itoa(a.DeviceTOTPPeriod),
		"sms_enabled":        checked(a.SMSEnabled), "call_enabled": checked(a.CallEnabled),
		"number_matching": checked(a.NumberMatching), "unconfirmed_bypass": checked(a.UnconfirmedBypass),
		"custom_messages": checked(a.CustomMessages), "custom_codes": checked(a.CustomCodes),
		"allowed_countries": strings.Join(a.AllowedCountries, ", "),
		"callback_url":      a.CallbackURL, "callback_method": a.CallbackMethod, "callback_expired": checked(a.CallbackExpired),
		"contact_email": a.ContactEmail, "logo_url": a.LogoURL,
		"sms_provider": a.Provider(twofold.SMS), "call_provider": a.Provider(twofold.Call), "email_provider": a.Provider(twofold.Email),
		"passkey_rp_id": a.PasskeyRPID, "passkey_origins": strings.Join(a.PasskeyOrigins, ", "),
		"passkey_user_verification": a.PasskeyUserVerification(), "passkey_usernameless": checked(a.PasskeyUsernameless),
	}
	for _, k := range twofold.LimitKinds {
		v[limitField(k)] = ""
		if l, ok := a.Limits[k]; ok {
			v[limitField(k)] = l.String()
		}
	}
	return v
}

// limitField is the form field of an application's own limit of kind k; empty means the
// server's limit.
func limitField(k twofold.LimitKind) string { return "limit_" + string(k) }

func providerChoices() map[string][]string {
	out := map[string][]string{}
	for field, ch := range providerFields {
		out[field] = twofold.ProvidersFor(ch)
	}
	return out
}

// fieldDefaults are the values empty fields stand for: the defaults of a new application's
// numbers, and this server's limits and providers.
func (c *console) fieldDefaults() map[string]string {
	def := twofold.DefaultSettings()
	out := map[string]string{
		"token_length": strconv.Itoa(def.TokenLength), "totp_digits": strconv.Itoa(def.TOTPDigits),
		"totp_period": strconv.Itoa(def.TOTPPeriod), "totp_window": strconv.Itoa(def.TOTPSkew),
		"device_totp_period": strconv.Itoa(def.DeviceTOTPPeriod), "allowed_countries": "every country",
		"passkey_rp_id": "none: passkeys off", "passkey_origins": "https:// and the relying party id",
	}
	for _, k := range twofold.LimitKinds {
		if l, ok := c.cfg.Defaults.Limits[k]; ok {
			out[limitField(k)] = "server: " + l.String()
		} else {
			out[limitField(k)] = "the server's"
		}
	}
	for field, ch := range providerFields {
		out[field] = "server default"
		if name := c.cfg.Defaults.Providers[ch]; name != "" {
			out[field] += " (" + name + ")"
		}
	}
	return out
}

func (c *console) appSettings(w http.ResponseWriter, r *http.Request, q *request, a twofold.App) {
	c.page(w, r, q, http.StatusOK, "settings", "Settings of "+a.Name, "apps",
		settingsData{App: a, V: formValues(a), Errors: map[string]string{}, Providers: providerChoices(), Defaults: c.fieldDefaults()})
}

// parseSettings reads the form into an update of every setting.
func parseSettings(r *http.Request) (apps.Update, map[string]string, map[string]string) {
	v := map[string]string{}
	errs := map[string]string{}
	for _, f := range []string{"name", "allowed_countries", "callback_url", "callback_method", "contact_email", "logo_url",
		"passkey_rp_id", "passkey_origins", "passkey_user_verification"} {
		v[f] = strings.TrimSpace(r.PostFormValue(f))
	}
	origins := strings.FieldsFunc(v["passkey_origins"], func(r rune) bool { return r == ',' || r == ' ' || r == ';' })
	u := apps.Update{Name: ptr(v["name"]), CallbackURL: ptr(v["callback_url"]), CallbackMethod: ptr(strings.ToUpper(v["callback_method"])),
		ContactEmail: ptr(v["contact_email"]), LogoURL: ptr(v["logo_url"]), Providers: map[twofold.Channel]string{},
		PasskeyRPID: ptr(v["passkey_rp_id"]), PasskeyOrigins: &origins, PasskeyUV: ptr(v["passkey_user_verification"])}
	bools := map[string]**bool{"sandbox": &u.Sandbox, "sms_enabled": &u.SMSEnabled, "call_enabled": &u.CallEnabled,
		"number_matching": &u.NumberMatching, "unconfirmed_bypass": &u.UnconfirmedBypass, "custom_messages": &u.CustomMessages,
		"custom_codes": &u.CustomCodes, "callback_expired": &u.CallbackExpired, "passkey_usernameless": &u.PasskeyUsernameless}
	for _, f := range boolFields {
		on := r.PostFormValue(f) != ""
		v[f] = checked(on)
		*bools[f] = &on
	}
	def := twofold.DefaultSettings()
	ints := map[string]**int{"token_length": &u.TokenLength, "totp_digits": &u.TOTPDigits, "totp_period": &u.TOTPPeriod,
		"totp_window": &u.TOTPSkew, "device_totp_period": &u.DeviceTOTPPeriod}
	defaults := map[string]int{"token_length": def.TokenLength, "totp_digits": def.TOTPDigits, "totp_period": def.TOTPPeriod,
		"totp_window": def.TOTPSkew, "device_totp_period": def.DeviceTOTPPeriod}
	for _, f := range intFields {
		v[f] = strings.TrimSpace(r.PostFormValue(f))
		if v[f] == "" { // empty: the default, as the placeholder says
			n := defaults[f]
			*ints[f] = &n
			continue
		}
		n, err := strconv.Atoi(v[f])
		if err != nil {
			errs[f] = "Enter a whole number."
			continue // left as it is, so that the other fields are still checked
		}
		*ints[f] = &n
	}
	countries := []string{}
	for _, c := range strings.FieldsFunc(v["allowed_countries"], func(r rune) bool { return r == ',' || r == ' ' || r == ';' }) {
		countries = append(countries, strings.ToUpper(c))
	}
	u.AllowedCountries = &countries
	for f, ch := range providerFields {
		v[f] = strings.TrimSpace(r.PostFormValue(f))
		u.Providers[ch] = v[f]
	}
	u.Limits = map[twofold.LimitKind]*twofold.Limit{}
	for _, k := range twofold.LimitKinds {
		f := limitField(k)
		v[f] = strings.TrimSpace(r.PostFormValue(f))
		if v[f] == "" {
			u.Limits[k] = nil // the server's
			continue
		}
		l, err := twofold.ParseLimit(v[f])
		if err != nil {
			errs[f] = "Write N/DURATION such as 100/1h, or off; empty for the server's limit."
			continue
		}
		u.Limits[k] = &l
	}
	return u, v, errs
}

func ptr[T any](v T) *T { return &v }

func (c *console) appSave(w http.ResponseWriter, r *http.Request, q *request, a twofold.App) {
	u, v, errs := parseSettings(r)
	d := settingsData{App: a, V: v, Errors: errs, Providers: providerChoices(), Defaults: c.fieldDefaults()}
	// The service checks what could be read, while the fields that could not are reported too.
	err := c.d.Apps.Validate(r.Context(), a.ID, u)
	if err == nil && len(errs) == 0 {
		_, err = c.d.Apps.Update(r.Context(), a.ID, u)
	}
	if err != nil && !errors.Is(err, apps.ErrInvalid) {
		c.fail(w, r, err)
		return
	}
	var invalid apps.InvalidSettings
	switch {
	case errors.As(err, &invalid):
		for _, fe := range invalid {
			if _, ok := d.Errors[fe.Field]; ok || fe.Field == "" {
				continue // the field's own parse error says more; a general one is below
			}
			d.Errors[fe.Field] = sentence(fe.Message)
		}
		for _, fe := range invalid {
			if fe.Field == "" {
				d.Error = "Not saved: " + sentence(fe.Message)
			}
		}
	case err != nil:
		d.Error = "Not saved: " + invalidText(err)
	}
	if len(d.Errors) > 0 || d.Error != "" {
		if d.Error == "" {
			d.Error = errorCount(len(d.Errors))
		}
		c.page(w, r, q, http.StatusUnprocessableEntity, "settings", "Settings of "+a.Name, "apps", d)
		return
	}
	c.flash(q, "Settings saved.")
	http.Redirect(w, r, appURL(a), http.StatusSeeOther)
}

// errorCount says how many fields need fixing.
func errorCount(n int) string {
	if n == 1 {
		return "Not saved: one setting needs fixing, shown beside its field."
	}
	return "Not saved: " + strconv.Itoa(n) + " settings need fixing, each shown beside its field."
}

// sentence is a validation message as a sentence: capitalised, with a full stop.
func sentence(msg string) string {
	if msg == "" {
		return "That is not valid."
	}
	return strings.ToUpper(msg[:1]) + msg[1:] + "."
}
