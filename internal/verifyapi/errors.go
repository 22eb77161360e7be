package verifyapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/twofold-auth/twofold/internal/accesslog"
	"github.com/twofold-auth/twofold/internal/apps"
	"github.com/twofold-auth/twofold/internal/twofold"
	"github.com/twofold-auth/twofold/internal/verify"
	"github.com/twofold-auth/twofold/internal/verifyfactors"
	"github.com/twofold-auth/twofold/internal/wiretext"
)

// Error is a refusal in Twilio's shape: its error code, message and HTTP status. Handlers
// return it, or a domain error that twilioError translates.
type Error struct {
	Code       int
	Status     int
	Message    string
	RetryAfter time.Duration // for 429s
}

func (e *Error) Error() string { return fmt.Sprintf("%d: %s", e.Code, e.Message) }

// Twilio's error codes this adapter answers with (https://www.twilio.com/docs/api/errors/NNNNN).
const (
	CodeInvalidParameter  = 20001 // a request that cannot be read at all
	CodeAuthenticate      = 20003 // missing or wrong credentials (401)
	CodeMethodNotAllowed  = 20004 // (405)
	CodeNotFound          = 20404 // no such resource (404)
	CodeTooManyRequests   = 20429 // a rate limit of the application (429)
	CodeInternal          = 20500 // (500)
	CodeUnavailable       = 20503 // delivery failed (503)
	CodeVerifyInvalid     = 60200 // Verify: invalid parameter (400)
	CodeMaxChecks         = 60202 // Verify: 5 checks of one verification (429)
	CodeMaxSends          = 60203 // Verify: 5 sends of one verification (429)
	CodeLandline          = 60205 // Verify: SMS to a landline (400)
	CodeNumberConcurrency = 60212 // Verify: too many verifications for one number (429)
	CodeChannelDisabled   = 60223 // Verify: the channel is disabled (400)
	CodeChallengeAttempts = 60308 // Verify: 5 wrong codes for one challenge (429)
	CodeFactorAttempts    = 60310 // Verify: 5 wrong codes verifying one factor (429)
	CodeChallengeCap      = 60312 // Verify: too many challenges of one totp factor (429)
	CodeBlocked           = 60410 // Verify: a destination blocked as fraud (premium-rate numbers) (403)
	CodeGeoBlocked        = 60605 // Verify: a country the application does not send to (403)
)

// Errorf makes an Error.
func Errorf(code, status int, format string, args ...any) *Error {
	return &Error{Code: code, Status: status, Message: fmt.Sprintf(format, args...)}
}

// InvalidParam is Verify's 60200 for the parameter named as on the wire.
func InvalidParam(name, why string) *Error {
	return Errorf(CodeVerifyInvalid, http.StatusBadRequest, "Invalid parameter `%s`: %s", wiretext.Clip(name), why)
}

// MissingParam is Verify's 60200 for a required parameter not given.
func MissingParam(name string) *Error {
	return Errorf(CodeVerifyInvalid, http.StatusBadRequest, "Missing required parameter %s in the post body", name)
}

// NotFound is 20404 for the resource at path (the request's, as Twilio words it).
func NotFound(path string) *Error {
	return Errorf(CodeNotFound, http.StatusNotFound, "The requested resource %s was not found", wiretext.Clip(path))
}

var (
	errAuthenticate   = Errorf(CodeAuthenticate, http.StatusUnauthorized, "Authenticate")
	errInternal       = Errorf(CodeInternal, http.StatusInternalServerError, "Internal Server Error")
	errBodyTooLarge   = Errorf(CodeInvalidParameter, http.StatusRequestEntityTooLarge, "Request body too large")
	errHeaderTooLarge = Errorf(CodeInvalidParameter, http.StatusRequestHeaderFieldsTooLarge, "Request header fields too large")
	errMaxChecks      = Errorf(CodeMaxChecks, http.StatusTooManyRequests, "Max check attempts reached")
	errMaxSends       = Errorf(CodeMaxSends, http.StatusTooManyRequests, "Max send attempts reached")
)

// fieldParams names the domain's fields of a Verify service (apps.InvalidSettings) as the
// parameters that set them.
var fieldParams = map[string]string{
	"name": "FriendlyName", "code_length": "CodeLength", "totp_issuer": "Totp.Issuer", "totp_time_step": "Totp.TimeStep",
	"totp_code_length": "Totp.CodeLength", "totp_skew": "Totp.Skew", "tts_name": "TtsName", "default_template_sid": "DefaultTemplateSid",
	"push_apn_credential_sid": "Push.ApnCredentialSid", "push_fcm_credential_sid": "Push.FcmCredentialSid",
	"whatsapp_msg_service_sid": "Whatsapp.MsgServiceSid", "whatsapp_from": "Whatsapp.From",
	// A webhook's (apps.CreateVerifyWebhook).
	"friendly_name": "FriendlyName", "webhook_url": "WebhookUrl", "event_types": "EventTypes", "status": "Status",
	"version": "Version",
}

// twilioError translates what a handler returned into Twilio's shape; ok is false for an
// internal error (the caller logs it and answers 20500).
func twilioError(err error, path string) (*Error, bool) {
	var te *Error
	var invalid apps.InvalidSettings
	var refused *verify.SendRefused
	var de *twofold.Error
	var capped *verifyfactors.ChallengeCap
	switch {
	case errors.As(err, &te):
		return te, true
	case errors.Is(err, twofold.ErrNotFound):
		return NotFound(path), true
	case errors.Is(err, verify.ErrMaxChecks):
		return errMaxChecks, true
	case errors.Is(err, verify.ErrMaxSends):
		return errMaxSends, true
	case errors.Is(err, verifyfactors.ErrChallengeMaxAttempts):
		return Errorf(CodeChallengeAttempts, http.StatusTooManyRequests, "Max attempts of the challenge reached"), true
	case errors.As(err, &capped):
		e := Errorf(CodeChallengeCap, http.StatusTooManyRequests, "Too many challenges of this factor: try again later")
		e.RetryAfter = capped.RetryAfter
		return e, true
	case errors.Is(err, verifyfactors.ErrFactorMaxAttempts):
		return Errorf(CodeFactorAttempts, http.StatusTooManyRequests, "Max verification attempts of the factor reached"), true
	case errors.Is(err, verifyfactors.ErrNotPending):
		return Errorf(CodeVerifyInvalid, http.StatusBadRequest, "The challenge is no longer pending (answered or expired)"), true
	case errors.Is(err, verifyfactors.ErrFactorNotVerified):
		return Errorf(CodeVerifyInvalid, http.StatusBadRequest, "The factor is not verified: verify it with its first code"), true
	case errors.Is(err, verifyfactors.ErrDeviceFactor):
		return Errorf(CodeVerifyInvalid, http.StatusBadRequest,
			"The factor is a Twofold authenticator: its challenges are answered there, and it goes when the device is removed"), true
	case errors.Is(err, verifyfactors.ErrBadSignature):
		return Errorf(CodeVerifyInvalid, http.StatusBadRequest, "Invalid parameter `AuthPayload`: not signed by the factor's key over this challenge"), true
	case errors.As(err, &invalid) && len(invalid) > 0:
		return InvalidParam(fieldParams[invalid[0].Field], invalid[0].Message), true
	case errors.As(err, &refused) && errors.As(err, &de):
		e := Errorf(CodeTooManyRequests, http.StatusTooManyRequests, "Too Many Requests: %s", de.Message)
		if refused.Limit == "number_sends" {
			e = Errorf(CodeNumberConcurrency, http.StatusTooManyRequests, "Too many concurrent requests for phone number")
		}
		e.RetryAfter = de.RetryAfter
		return e, true
	case errors.As(err, &de):
		return fromDomain(de), true
	}
	return nil, false
}

// fromDomain maps the domain's (Authy-coded) refusals to Verify's.
func fromDomain(e *twofold.Error) *Error {
	switch e.Code {
	case twofold.CodeSMSDisabled, twofold.CodeCallDisabled:
		return Errorf(CodeChannelDisabled, http.StatusBadRequest, "Delivery channel disabled: %s", e.Message)
	case twofold.CodeSMSToLandline:
		return Errorf(CodeLandline, http.StatusBadRequest, "SMS is not supported by landline phone number")
	case twofold.CodeBannedCountry:
		return Errorf(CodeGeoBlocked, http.StatusForbidden, "Verification delivery attempt blocked: %s", e.Message)
	case twofold.CodeInvalidPhone:
		return Errorf(CodeBlocked, http.StatusForbidden, "Verification delivery attempt blocked: %s", e.Message)
	case twofold.CodeSMSNotSent, twofold.CodeCallNotStarted:
		return Errorf(CodeUnavailable, http.StatusServiceUnavailable, "Service unavailable: %s", e.Message)
	case twofold.CodeRateLimited:
		return &Error{Code: CodeTooManyRequests, Status: http.StatusTooManyRequests, Message: "Too Many Requests", RetryAfter: e.RetryAfter}
	}
	return Errorf(CodeVerifyInvalid, http.StatusBadRequest, "%s", e.Message)
}

// writeError writes e as Twilio's error body:
//
//	{"code":20404,"message":"…","more_info":"https://www.twilio.com/docs/errors/20404","status":404}
func writeError(w http.ResponseWriter, e *Error) {
	if e.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int(e.RetryAfter.Seconds()+0.999)))
	}
	if e.Code == CodeAuthenticate {
		w.Header().Set("WWW-Authenticate", `Basic realm="Twilio API"`)
	}
	writeJSON(w, e.Status, struct {
		Code     int    `json:"code"`
		Message  string `json:"message"`
		MoreInfo string `json:"more_info"`
		Status   int    `json:"status"`
	}{e.Code, e.Message, "https://www.twilio.com/docs/errors/" + strconv.Itoa(e.Code), e.Status})
}

// fail answers err: Twilio's shape for refusals; 20500, logged, for anything else, unless the
// client went away.
func (a *API) fail(w http.ResponseWriter, r *http.Request, err error) {
	if e, ok := twilioError(err, r.URL.Path); ok {
		if e.Status == http.StatusTooManyRequests {
			a.metrics.Limited.WithLabelValues(limitName(e.Code)).Inc()
		}
		writeError(w, e)
		return
	}
	if accesslog.ClientGone(a.log, r, err) {
		return
	}
	a.log.ErrorContext(r.Context(), "request failed", "route", r.Pattern, "err", err)
	writeError(w, errInternal)
}

// limitName labels a refusal in the limits metric, as the Authy API labels its own (the
// request rate limit, "api_key", is counted where it refuses).
func limitName(code int) string {
	switch code {
	case CodeMaxChecks:
		return "verify_checks"
	case CodeChallengeAttempts, CodeFactorAttempts, CodeChallengeCap:
		return "verify_factor_checks"
	}
	return "sends"
}

// internalBody answers a body that cannot be encoded.
const internalBody = `{"code":20500,"message":"Internal Server Error","more_info":"https://www.twilio.com/docs/errors/20500","status":500}`

// writeJSON writes v with status (every body here is made of plain values, so it encodes).
func writeJSON(w http.ResponseWriter, status int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	body := []byte(internalBody)
	if err := enc.Encode(v); err == nil {
		body = bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
	} else {
		status = http.StatusInternalServerError
	}
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(body)
}
