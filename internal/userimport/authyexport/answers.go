package authyexport

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/twofold-auth/twofold/internal/userimport/records"
	"github.com/twofold-auth/twofold/internal/wiretext"
)

// phoneAnswer reads a phone_number export: {"phone_number":"<national>","country_code":<n or
// "n">,"e164":"+…"}. A user without a phone number has none of them.
func phoneAnswer(body []byte) (cc int, national, fail string) {
	var b struct {
		PhoneNumber json.RawMessage `json:"phone_number"`
		CountryCode json.RawMessage `json:"country_code"`
		E164        json.RawMessage `json:"e164"`
	}
	if err := json.Unmarshal(body, &b); err != nil {
		return 0, "", "not a JSON object"
	}
	number, msg := records.JSONText(b.PhoneNumber, false, true)
	if msg != "" {
		return 0, "", "phone_number: " + msg
	}
	code, msg := records.JSONText(b.CountryCode, true, true)
	if msg != "" {
		return 0, "", "country_code: " + msg
	}
	e164, msg := records.JSONText(b.E164, false, true)
	if msg != "" {
		return 0, "", "e164: " + msg
	}
	if code = strings.TrimPrefix(strings.TrimSpace(code), "+"); code != "" {
		n, err := strconv.Atoi(code)
		if err != nil || !records.IsNumber(code) {
			return 0, "", fmt.Sprintf("country_code %q is not a number", wiretext.ClipN(code, 10))
		}
		cc = n
	}
	if number == "" && cc > 0 && strings.HasPrefix(e164, "+"+code) {
		number = strings.TrimPrefix(e164, "+"+code)
	}
	if number == "" && cc == 0 {
		return 0, "", "" // no phone number
	}
	digits, ok := records.PhoneDigits(number, cc)
	if !ok {
		return 0, "", fmt.Sprintf("phone_number %q is not a phone number", wiretext.ClipN(number, 24))
	}
	return cc, digits, ""
}

// seedAnswer reads a secret export: {"secret":"BASE32","otp":"123456","success":true}, with
// "digits" and "period" when the source is a Twofold. Without them the code's length gives the
// digits, and the period is Authy's 30 seconds. No secret is no seed.
func seedAnswer(body []byte) (secret string, digits, period int, fail string) {
	var b struct {
		Secret json.RawMessage `json:"secret"`
		OTP    json.RawMessage `json:"otp"`
		Digits json.RawMessage `json:"digits"`
		Period json.RawMessage `json:"period"`
	}
	if err := json.Unmarshal(body, &b); err != nil {
		return "", 0, 0, "not a JSON object"
	}
	s, msg := records.JSONText(b.Secret, false, true)
	if msg != "" {
		return "", 0, 0, "secret: " + msg // never the value: it is the seed
	}
	if secret = records.NormalSecret(s); secret == "" {
		return "", 0, 0, ""
	}
	otp, msg := records.JSONText(b.OTP, true, true)
	if msg != "" {
		return "", 0, 0, "otp: " + msg
	}
	for _, f := range []struct {
		name string
		raw  json.RawMessage
		to   *int
	}{{"digits", b.Digits, &digits}, {"period", b.Period, &period}} {
		v, msg := records.JSONText(f.raw, true, true)
		if msg != "" {
			return "", 0, 0, f.name + ": " + msg
		}
		if v == "" {
			continue
		}
		n, err := strconv.Atoi(v)
		if err != nil {
			return "", 0, 0, fmt.Sprintf("%s %q is not a whole number", f.name, wiretext.ClipN(v, 10))
		}
		*f.to = n
	}
	if digits == 0 {
		digits = len(strings.TrimSpace(otp)) // 0 (no code given) means 6
	}
	return secret, digits, period, ""
}
