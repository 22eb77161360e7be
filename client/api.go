package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Client calls the Authy-compatible REST API of a Twofold server (or of Authy itself) with one
// application's API key. It is safe for concurrent use.
type Client struct {
	base  *url.URL
	key   string
	http  *http.Client
	agent string
}

// Option configures a Client.
type Option func(*Client)

// WithHTTPClient sets the HTTP client; the default has a 15 second timeout.
func WithHTTPClient(h *http.Client) Option { return func(c *Client) { c.http = h } }

// WithUserAgent sets the User-Agent of requests.
func WithUserAgent(ua string) Option { return func(c *Client) { c.agent = ua } }

// New returns a Client for the server at baseURL ("https://2fa.example.com", or Authy's
// "https://api.authy.com") with the application's API key.
func New(baseURL, apiKey string, opts ...Option) (*Client, error) {
	u, err := url.Parse(strings.TrimRight(baseURL, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("client: base URL %q is not an absolute http(s) URL", baseURL)
	}
	if apiKey == "" {
		return nil, errors.New("client: the API key is empty")
	}
	c := &Client{base: u, key: apiKey, http: &http.Client{Timeout: 15 * time.Second}, agent: "twofold-go-client"}
	for _, o := range opts {
		o(c)
	}
	return c, nil
}

// Error is an error answer of the API: Authy's envelope with its error code.
type Error struct {
	HTTPStatus int
	Code       string // Authy's error code, e.g. "60020" (token invalid); "" when the answer had none
	Message    string
	RetryAfter time.Duration // for "60003" (too many requests), when the server said
}

func (e *Error) Error() string {
	if e.Code == "" {
		return fmt.Sprintf("twofold: HTTP %d: %s", e.HTTPStatus, e.Message)
	}
	return fmt.Sprintf("twofold: %s (%s)", e.Message, e.Code)
}

// Codes worth telling apart in an application.
const (
	CodeInvalidAPIKey  = "60001"
	CodeRateLimited    = "60003" // any limit; see Error.RetryAfter
	CodeInvalidParam   = "60004"
	CodeSMSNotSent     = "60015"
	CodeCallNotStarted = "60014"
	CodeUserNotFound   = "60026"
	CodeTokenReused    = "60019"
	CodeTokenInvalid   = "60020"
	CodeUserInvalid    = "60027"
	CodeNoRequest      = "60049" // unknown approval request
	CodeNotPending     = "60079" // the approval request was answered already
)

// IsCode reports whether err is an API error with the given Authy code.
func IsCode(err error, code string) bool {
	var e *Error
	return errors.As(err, &e) && e.Code == code
}

// protected calls an endpoint under /protected/json.
func (c *Client) protected(ctx context.Context, method, path string, params url.Values, out any) error {
	return c.call(ctx, method, "/protected/json"+path, params, out)
}

// call sends one request: the parameters as a form body (POST, PUT) or query (GET, DELETE).
// out, when not nil, receives the JSON answer of a success.
func (c *Client) call(ctx context.Context, method, path string, params url.Values, out any) error {
	u := *c.base
	u.Path = c.base.Path + path
	var body io.Reader
	if params != nil && (method == http.MethodPost || method == http.MethodPut) {
		body = strings.NewReader(params.Encode())
	} else if params != nil {
		u.RawQuery = params.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		return fmt.Errorf("twofold: %w", err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	req.Header.Set("X-Authy-API-Key", c.key)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.agent)
	res, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("twofold: %s %s: %w", method, path, err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("twofold: %s %s: %w", method, path, err)
	}
	if res.StatusCode < 200 || res.StatusCode > 299 {
		return apiError(res, raw)
	}
	// Authy answered some failures with 200 and "success": false.
	var envelope struct {
		Success any `json:"success"`
	}
	if json.Unmarshal(raw, &envelope) == nil && (envelope.Success == false || envelope.Success == "false") {
		return apiError(res, raw)
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("twofold: %s %s: unreadable answer: %w", method, path, err)
	}
	return nil
}

func apiError(res *http.Response, raw []byte) error {
	var env struct {
		Message   string `json:"message"`
		ErrorCode any    `json:"error_code"`
	}
	e := &Error{HTTPStatus: res.StatusCode}
	if json.Unmarshal(raw, &env) == nil {
		e.Message = env.Message
		switch v := env.ErrorCode.(type) {
		case string:
			e.Code = v
		case float64:
			e.Code = strconv.Itoa(int(v))
		}
	}
	if e.Message == "" {
		e.Message = strings.TrimSpace(string(bytes.ToValidUTF8(raw[:min(len(raw), 200)], nil)))
	}
	if s, err := strconv.Atoi(res.Header.Get("Retry-After")); err == nil && s > 0 {
		e.RetryAfter = time.Duration(s) * time.Second
	}
	return e
}

// NewUser is who to register: an email and a phone number with its country calling code.
type NewUser struct {
	Email       string
	Phone       string // as people write it: "(201) 555-0123"
	CountryCode string // "1", "+44"
}

// RegisterUser registers a user and returns their Authy id. A user is known by their phone
// number: registering the same number again, with any email, returns the same id.
func (c *Client) RegisterUser(ctx context.Context, u NewUser) (int64, error) {
	var out struct {
		User struct {
			ID int64 `json:"id"`
		} `json:"user"`
	}
	err := c.protected(ctx, http.MethodPost, "/users/new", url.Values{
		"user[email]": {u.Email}, "user[cellphone]": {u.Phone}, "user[country_code]": {u.CountryCode},
	}, &out)
	return out.User.ID, err
}

// UserStatus is what the server knows of a user.
type UserStatus struct {
	AuthyID     int64  `json:"authy_id"`
	Confirmed   bool   `json:"confirmed"`  // has verified a code at least once
	Registered  bool   `json:"registered"` // has a device
	CountryCode int    `json:"country_code"`
	PhoneNumber string `json:"phone_number"` // masked: "XXX-XXX-0123"
	// Devices names what gives the user codes: "authenticator" for a TOTP app (codes only), and
	// what each registered device runs on, in Authy's terms where one is true ("iphone",
	// "ipad", "android", "android_tablet", …), else "web" (a desktop browser) or "cli".
	Devices         []string `json:"devices"`
	DetailedDevices []Device `json:"detailed_devices"` // the registered devices, which can approve requests
	HasHardToken    bool     `json:"has_hard_token"`
	// RecoveryCodesRemaining is how many of the user's recovery codes are unspent (Twofold's
	// addition; 0 without a set).
	RecoveryCodesRemaining int `json:"recovery_codes_remaining"`
	// Passkeys are the user's passkeys (Twofold's addition): only ID and Name are set.
	Passkeys []Passkey `json:"passkeys"`
}

// Device is a device registered for a user.
type Device struct {
	DeviceType string `json:"device_type"`
	OSType     string `json:"os_type"`
	Name       string `json:"name"`
}

// CanApprove reports whether the user has a registered device that can answer approval
// requests; a TOTP authenticator app only shows codes.
func (s UserStatus) CanApprove() bool { return len(s.DetailedDevices) > 0 }

// UserStatus returns the user's status, with the devices they can approve requests on.
func (c *Client) UserStatus(ctx context.Context, authyID int64) (UserStatus, error) {
	var out struct {
		Status UserStatus `json:"status"`
	}
	err := c.protected(ctx, http.MethodGet, "/users/"+itoa(authyID)+"/status", nil, &out)
	return out.Status, err
}

// RemoveUser deletes the user, their devices and codes.
func (c *Client) RemoveUser(ctx context.Context, authyID int64) error {
	return c.protected(ctx, http.MethodPost, "/users/"+itoa(authyID)+"/remove", url.Values{}, nil)
}

// SendOptions shape a code sent by SMS or voice.
type SendOptions struct {
	Force         bool   // send even when the user has an authenticator app
	Action        string // bind the code to an action; Verify must name the same one
	ActionMessage string // what the code is for, shown in the message
	Locale        string // language of the message: "es", "pt-BR", …
}

func (o SendOptions) values() url.Values {
	v := url.Values{}
	if o.Force {
		v.Set("force", "true")
	}
	if o.Action != "" {
		v.Set("action", o.Action)
	}
	if o.ActionMessage != "" {
		v.Set("action_message", o.ActionMessage)
	}
	if o.Locale != "" {
		v.Set("locale", o.Locale)
	}
	return v
}

// Sent is the answer to a request for a code.
type Sent struct {
	Message   string `json:"message"`
	Cellphone string `json:"cellphone"` // masked: "+1-XXX-XXX-XX23"
	Ignored   bool   `json:"ignored"`   // not sent: the user has an app and Force was false
	Device    string `json:"device"`    // the app that made it unnecessary, when Ignored
}

// RequestSMS sends the user a code by SMS.
func (c *Client) RequestSMS(ctx context.Context, authyID int64, o SendOptions) (Sent, error) {
	var out Sent
	err := c.protected(ctx, http.MethodGet, "/sms/"+itoa(authyID), o.values(), &out)
	return out, err
}

// RequestCall calls the user, who hears the code.
func (c *Client) RequestCall(ctx context.Context, authyID int64, o SendOptions) (Sent, error) {
	var out Sent
	err := c.protected(ctx, http.MethodGet, "/call/"+itoa(authyID), o.values(), &out)
	return out, err
}

// VerifyOptions shape a verification.
type VerifyOptions struct {
	Force  bool   // check the token even if the user never confirmed their number
	Action string // the action the code was sent for
}

// Verify checks a token the user typed: a code sent by SMS, voice or email, one from their
// authenticator, or one of their recovery codes. It returns nil when the token is valid, an
// *Error otherwise (CodeTokenInvalid, CodeTokenReused, CodeRateLimited, …). VerifyResult also
// says whether a recovery code was spent.
func (c *Client) Verify(ctx context.Context, authyID int64, token string, o VerifyOptions) error {
	_, err := c.VerifyResult(ctx, authyID, token, o)
	return err
}

// Verified is a token accepted.
type Verified struct {
	// Factor is FactorRecoveryCode when the token was one of the user's recovery codes, now
	// spent (ask the user to set up their second factor again), and "" for every other token.
	Factor string `json:"factor"`
	// RecoveryCodesRemaining is, for a recovery code, how many of the user's set are left.
	RecoveryCodesRemaining int `json:"recovery_codes_remaining"`
}

// FactorRecoveryCode is Verified.Factor for a recovery code.
const FactorRecoveryCode = "recovery_code"

// VerifyResult is Verify that says how the token was accepted. A recovery code is accepted
// in any case and with or without its dashes or spaces; a code spent before is refused with
// CodeTokenReused.
func (c *Client) VerifyResult(ctx context.Context, authyID int64, token string, o VerifyOptions) (Verified, error) {
	// A token is digits, or a recovery code's letters, digits, dashes and spaces; anything
	// else would change the path.
	if strings.TrimSpace(token) == "" || len(token) > 64 || strings.Trim(token, "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ- ") != "" {
		return Verified{}, &Error{HTTPStatus: http.StatusUnauthorized, Code: CodeTokenInvalid, Message: "Token is invalid"}
	}
	v := url.Values{}
	if o.Force {
		v.Set("force", "true")
	}
	if o.Action != "" {
		v.Set("action", o.Action)
	}
	var out struct {
		Token string `json:"token"`
		Verified
	}
	// Spaces carry no meaning in a recovery code; without them the path needs no escaping.
	token = strings.ReplaceAll(token, " ", "")
	if err := c.protected(ctx, http.MethodGet, "/verify/"+token+"/"+itoa(authyID), v, &out); err != nil {
		return Verified{}, err
	}
	if out.Token != "is valid" {
		return Verified{}, &Error{HTTPStatus: http.StatusOK, Code: CodeTokenInvalid, Message: "Token is invalid"}
	}
	return out.Verified, nil
}

// RecoveryCodes is a user's set of recovery codes (Twofold's addition). Codes is filled only by
// GenerateRecoveryCodes: the server shows a set's codes once.
type RecoveryCodes struct {
	Codes     []string  // formatted for people: "k7m2-9xqp-4tfh"
	Total     int       // codes in the set
	Remaining int       // of them, unspent
	CreatedAt time.Time // when the set was made; zero without one
}

type recoveryCodesJSON struct {
	Codes         []string `json:"codes"`
	RecoveryCodes struct {
		Total     int    `json:"total"`
		Remaining int    `json:"remaining"`
		CreatedAt *int64 `json:"created_at"`
	} `json:"recovery_codes"`
}

func (j recoveryCodesJSON) codes() RecoveryCodes {
	rc := RecoveryCodes{Codes: j.Codes, Total: j.RecoveryCodes.Total, Remaining: j.RecoveryCodes.Remaining}
	if j.RecoveryCodes.CreatedAt != nil {
		rc.CreatedAt = time.Unix(*j.RecoveryCodes.CreatedAt, 0).UTC()
	}
	return rc
}

// GenerateRecoveryCodes makes a new set of count recovery codes for the user (0: the server's
// default, 10; else 5 to 20) and returns them: show them to the user once, store them nowhere.
// The user's old set stops working.
func (c *Client) GenerateRecoveryCodes(ctx context.Context, authyID int64, count int) (RecoveryCodes, error) {
	v := url.Values{}
	if count != 0 {
		v.Set("count", strconv.Itoa(count))
	}
	var out recoveryCodesJSON
	err := c.protected(ctx, http.MethodPost, "/users/"+itoa(authyID)+"/recovery_codes", v, &out)
	return out.codes(), err
}

// RecoveryCodesStatus says how many of the user's recovery codes remain and when the set was
// made, never the codes.
func (c *Client) RecoveryCodesStatus(ctx context.Context, authyID int64) (RecoveryCodes, error) {
	var out recoveryCodesJSON
	err := c.protected(ctx, http.MethodGet, "/users/"+itoa(authyID)+"/recovery_codes", nil, &out)
	rc := out.codes()
	rc.Codes = nil
	return rc, err
}

// ApprovalRequest asks the user to approve something on their device (OneTouch).
type ApprovalRequest struct {
	Message         string            // what the user is asked, e.g. "Log in to Shop"
	Details         map[string]string // shown to the user
	HiddenDetails   map[string]string // kept with the request, not shown
	SecondsToExpire int               // 0: the server's default (a day)
}

// Approval is an approval request and its state.
type Approval struct {
	UUID            string            `json:"uuid"`
	Status          string            `json:"status"` // pending, approved, denied or expired
	Reason          string            `json:"reason"` // why the user denied, when they said
	Message         string            `json:"message"`
	Details         map[string]string `json:"details"`
	HiddenDetails   map[string]string `json:"hidden_details"`
	SecondsToExpire int64             `json:"seconds_to_expire"`
	Number          string            `json:"number"` // with number matching: show it beside "check your phone"
}

// CreateApprovalRequest sends an approval request to the user's devices. The answer arrives at
// the application's callback URL (check it with VerifyCallback), or by polling ApprovalRequest.
func (c *Client) CreateApprovalRequest(ctx context.Context, authyID int64, r ApprovalRequest) (Approval, error) {
	v := url.Values{"message": {r.Message}}
	for k, val := range r.Details {
		v.Set("details["+k+"]", val)
	}
	for k, val := range r.HiddenDetails {
		v.Set("hidden_details["+k+"]", val)
	}
	if r.SecondsToExpire > 0 {
		v.Set("seconds_to_expire", strconv.Itoa(r.SecondsToExpire))
	}
	var out struct {
		ApprovalRequest struct {
			UUID   string `json:"uuid"`
			Number string `json:"number"`
		} `json:"approval_request"`
	}
	if err := c.call(ctx, http.MethodPost, "/onetouch/json/users/"+itoa(authyID)+"/approval_requests", v, &out); err != nil {
		return Approval{}, err
	}
	return Approval{UUID: out.ApprovalRequest.UUID, Status: "pending", Message: r.Message, Details: r.Details,
		HiddenDetails: r.HiddenDetails, Number: out.ApprovalRequest.Number}, nil
}

// ApprovalRequest returns an approval request and its state.
func (c *Client) ApprovalRequest(ctx context.Context, uuid string) (Approval, error) {
	if uuid == "" || strings.ContainsAny(uuid, "/?#%") {
		return Approval{}, &Error{HTTPStatus: http.StatusNotFound, Code: CodeNoRequest, Message: "Approval request not found"}
	}
	var out struct {
		ApprovalRequest Approval `json:"approval_request"`
	}
	err := c.call(ctx, http.MethodGet, "/onetouch/json/approval_requests/"+uuid, nil, &out)
	return out.ApprovalRequest, err
}

// CloseApprovalRequest closes a pending approval request before its time: the user went on
// another way (a code by SMS, say), so their devices drop it and it can no longer be approved.
// It returns the request, now "expired" with Reason "closed" (Authy's clients know no other
// status for a request that can no longer be answered). Closing it again returns the same; an
// answered request cannot be closed (CodeNotPending), and another application's request is
// unknown (CodeNoRequest). This is Twofold's addition to the Authy API (docs/api.md).
func (c *Client) CloseApprovalRequest(ctx context.Context, uuid string) (Approval, error) {
	if uuid == "" || strings.ContainsAny(uuid, "/?#%") {
		return Approval{}, &Error{HTTPStatus: http.StatusNotFound, Code: CodeNoRequest, Message: "Approval request not found"}
	}
	var out struct {
		ApprovalRequest Approval `json:"approval_request"`
	}
	err := c.call(ctx, http.MethodPost, "/onetouch/json/approval_requests/"+uuid+"/close", url.Values{}, &out)
	return out.ApprovalRequest, err
}

// RegistrationLink adds one device for one user, once: Twofold's web authenticator opens URL
// (a phone's camera opens it from a QR code) and registers itself, and the command-line
// authenticator takes it too (twofold device enrol URL).
type RegistrationLink struct {
	Token     string    `json:"registration_token"`
	URL       string    `json:"registration_url"` // https://TWOFOLD/authenticator/#register=TOKEN&app=NAME
	ExpiresAt time.Time `json:"expires_at"`       // 10 minutes after it was made
}

// CreateRegistrationLink makes a single-use registration link for the user authyID (POST
// sdk/registrations). The URL is on the Twofold server's public URL (its --public-url), which
// the user's phone must be able to reach.
func (c *Client) CreateRegistrationLink(ctx context.Context, authyID int64) (RegistrationLink, error) {
	var out RegistrationLink
	err := c.protected(ctx, http.MethodPost, "/sdk/registrations", url.Values{"authy_id": {itoa(authyID)}}, &out)
	return out, err
}

// App is the application the API key belongs to.
type App struct {
	ID   int64  `json:"app_id"`
	Name string `json:"name"`
}

// App returns the application of the client's API key.
func (c *Client) App(ctx context.Context) (App, error) {
	var out struct {
		App App `json:"app"`
	}
	err := c.protected(ctx, http.MethodGet, "/app/details", nil, &out)
	return out.App, err
}

// Registration is the state of a device registration by QR code.
type Registration struct {
	Status  string `json:"status"` // "pending" until a device registered, then "completed"
	AuthyID int64  `json:"authy_id"`
}

// RegistrationStatus reports whether the application's user customUserID has registered a
// device with a QR code from RegistrationQR yet.
func (c *Client) RegistrationStatus(ctx context.Context, customUserID string) (Registration, error) {
	var out struct {
		Registration Registration `json:"registration"`
	}
	err := c.protected(ctx, http.MethodGet, "/registrations/status", url.Values{"custom_user_id": {customUserID}}, &out)
	return out.Registration, err
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
