package apps

import (
	"fmt"
	"net/mail"
	"net/url"
	"strings"

	"github.com/twofold-auth/twofold/internal/phone"
	"github.com/twofold-auth/twofold/internal/twofold"
)

func validName(name string) error {
	if name == "" || len(name) > 100 {
		return fmt.Errorf("%w: name must be 1 to 100 characters", ErrInvalid)
	}
	return nil
}

// FieldError is one setting that is not valid: Field is its name as `twofold app show --json`
// and the console's settings form name it ("" for the application as a whole).
type FieldError struct {
	Field, Message string
}

// InvalidSettings are all the settings of one change that are not valid, in the order of the
// form. It wraps ErrInvalid.
type InvalidSettings []FieldError

func (e InvalidSettings) Error() string {
	msgs := make([]string, len(e))
	for i, f := range e {
		msgs[i] = f.Message
	}
	return ErrInvalid.Error() + ": " + strings.Join(msgs, "; ")
}

func (e InvalidSettings) Unwrap() error { return ErrInvalid }

// validate checks every setting of a and reports all that are wrong at once (InvalidSettings),
// so that a form can show each beside its field.
func validate(a twofold.App) error {
	var bad InvalidSettings
	fail := func(field, format string, args ...any) {
		bad = append(bad, FieldError{Field: field, Message: fmt.Sprintf(format, args...)})
	}
	if a.Console && (a.Sandbox || a.UnconfirmedBypass) {
		// Either would let any token pass as an operator's second factor.
		fail("", "the console's application cannot be a sandbox or bypass unconfirmed users")
	}
	if a.Name == "" || len(a.Name) > 100 {
		fail("name", "name must be 1 to 100 characters")
	}
	if a.ContactEmail != "" {
		if _, err := mail.ParseAddress(a.ContactEmail); err != nil {
			fail("contact_email", "contact email is not an email address")
		}
	}
	if a.TokenLength < 6 || a.TokenLength > 10 {
		fail("token_length", "token length must be 6 to 10")
	}
	for _, c := range a.AllowedCountries {
		if !phone.ValidRegion(c) {
			fail("allowed_countries", "%q is not a country code such as US or PT", c)
			break
		}
	}
	for _, ch := range []twofold.Channel{twofold.SMS, twofold.Call, twofold.Email} {
		if name, ok := a.Providers[ch]; ok && !twofold.Carries(name, ch) {
			fail(string(ch)+"_provider", "provider %q cannot deliver %s (choose from: %s)", name, ch,
				strings.Join(twofold.ProvidersFor(ch), ", "))
		}
	}
	for ch, name := range a.Providers { // a channel the form does not know
		if ch != twofold.SMS && ch != twofold.Call && ch != twofold.Email && !twofold.Carries(name, ch) {
			fail("", "provider %q cannot deliver %s", name, ch)
		}
	}
	if a.TOTPDigits < 6 || a.TOTPDigits > 8 {
		fail("totp_digits", "TOTP digits must be 6 to 8")
	}
	if a.TOTPPeriod < 10 || a.TOTPPeriod > 120 {
		fail("totp_period", "TOTP period must be 10 to 120 seconds")
	}
	if a.TOTPSkew < 0 || a.TOTPSkew > 3 {
		fail("totp_window", "TOTP window must be 0 to 3 steps")
	}
	if a.DeviceTOTPPeriod < 10 || a.DeviceTOTPPeriod > 120 {
		fail("device_totp_period", "device TOTP period must be 10 to 120 seconds")
	}
	methodOK := a.CallbackMethod == "POST" || a.CallbackMethod == "GET"
	if a.CallbackURL != "" {
		u, err := url.Parse(a.CallbackURL)
		switch {
		case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
			fail("callback_url", "callback URL must be an absolute http(s) URL")
		case a.CallbackMethod == "GET" && u.RawQuery != "":
			// In GET mode the signed fields are the query; a query of the URL's own would make
			// every verifier fail.
			fail("callback_url", "a GET callback URL cannot have a query string of its own")
		}
	}
	if !methodOK {
		fail("callback_method", "callback method must be POST or GET")
	}
	if a.LogoURL != "" {
		// Users' browsers load it on the hosted step: https only, so the page stays secure and
		// no one on the way swaps the picture.
		u, err := url.Parse(a.LogoURL)
		if err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil || len(a.LogoURL) > 2000 ||
			strings.ContainsAny(a.LogoURL, " '\"<>\\") {
			fail("logo_url", "logo URL must be an https URL of at most 2000 characters")
		}
	}
	for _, f := range validatePasskeys(a.Settings) {
		fail(f.Field, "%s", f.Message)
	}
	if len(bad) > 0 {
		return bad
	}
	return nil
}
