// Package twilio delivers one-time codes by SMS and voice call through Twilio's REST API
// (2010-04-01 Messages and Calls resources) and receives Twilio's delivery status callbacks.
package twilio

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/twofold-auth/twofold/internal/deliver"
	"github.com/twofold-auth/twofold/internal/twofold"
)

// DefaultBaseURL is Twilio's REST API host.
const DefaultBaseURL = "https://api.twilio.com"

const (
	maxResponseBody = 64 << 10 // Twilio's answers are a few KiB; never buffer more than this
	maxErrorMessage = 500      // Twilio's message is copied into errors and logs; keep it short
	userAgent       = "twofold"
)

// Config configures the Twilio provider. Field comments name the environment settings that
// fill them, so validation errors can point the operator at the right one.
type Config struct {
	AccountSID          string       // TWOFOLD_TWILIO_ACCOUNT_SID, "AC…"
	AuthToken           string       // TWOFOLD_TWILIO_AUTH_TOKEN; also signs status callbacks
	From                string       // TWOFOLD_TWILIO_FROM: E.164 sender number; required for calls
	MessagingServiceSID string       // TWOFOLD_TWILIO_MESSAGING_SERVICE_SID, "MG…": used for SMS instead of From when set
	BaseURL             string       // TWOFOLD_TWILIO_BASE_URL; default DefaultBaseURL
	StatusCallbackURL   string       // TWOFOLD_TWILIO_STATUS_CALLBACK_URL: absolute URL Twilio posts delivery status to; optional
	HTTPClient          *http.Client // default: no global timeout, callers bound each Deliver with ctx
}

// Client sends SMS and calls through Twilio. It implements deliver.Provider.
type Client struct {
	cfg          Config
	endpoint     string // {BaseURL}/2010-04-01/Accounts/{AccountSID}/
	httpClient   *http.Client
	callbackURLs []string // StatusCallbackURL and its default-port twin, for signature checks
}

var _ deliver.Provider = (*Client)(nil)

// New validates cfg and returns a Client.
func New(cfg Config) (*Client, error) {
	if !validSID(cfg.AccountSID, "AC") {
		return nil, errors.New(`twilio: TWOFOLD_TWILIO_ACCOUNT_SID must be a Twilio account SID ("AC" followed by letters and digits)`)
	}
	if cfg.AuthToken == "" {
		return nil, errors.New("twilio: TWOFOLD_TWILIO_AUTH_TOKEN is required")
	}
	if cfg.From == "" && cfg.MessagingServiceSID == "" {
		return nil, errors.New("twilio: set TWOFOLD_TWILIO_FROM (a phone number) or TWOFOLD_TWILIO_MESSAGING_SERVICE_SID")
	}
	if cfg.From != "" && !validE164(cfg.From) {
		return nil, fmt.Errorf("twilio: TWOFOLD_TWILIO_FROM must be an E.164 number such as +14155550123, got %q", cfg.From)
	}
	if cfg.MessagingServiceSID != "" && !validSID(cfg.MessagingServiceSID, "MG") {
		return nil, errors.New(`twilio: TWOFOLD_TWILIO_MESSAGING_SERVICE_SID must be a messaging service SID ("MG" followed by letters and digits)`)
	}
	if cfg.BaseURL == "" {
		cfg.BaseURL = DefaultBaseURL
	}
	if !validHTTPURL(cfg.BaseURL) {
		return nil, fmt.Errorf("twilio: TWOFOLD_TWILIO_BASE_URL must be an http(s) URL such as %s, got %q", DefaultBaseURL, cfg.BaseURL)
	}
	if cfg.StatusCallbackURL != "" && !validHTTPURL(cfg.StatusCallbackURL) {
		return nil, fmt.Errorf("twilio: TWOFOLD_TWILIO_STATUS_CALLBACK_URL must be an absolute http(s) URL, got %q", cfg.StatusCallbackURL)
	}
	hc := cfg.HTTPClient
	if hc == nil {
		hc = &http.Client{}
	}
	return &Client{
		cfg:          cfg,
		endpoint:     strings.TrimRight(cfg.BaseURL, "/") + "/2010-04-01/Accounts/" + cfg.AccountSID + "/",
		httpClient:   hc,
		callbackURLs: callbackVariants(cfg.StatusCallbackURL),
	}, nil
}

// Name implements deliver.Provider.
func (c *Client) Name() string { return "twilio" }

// Deliver sends an SMS or places a call that reads the message aloud. Refusals that Twilio
// will repeat (bad number, bad credentials, unsupported channel) are deliver.Permanent.
func (c *Client) Deliver(ctx context.Context, m deliver.Outgoing) (deliver.Receipt, error) {
	if m.To == "" {
		return deliver.Receipt{}, deliver.Permanent(errors.New("twilio: message has no recipient"))
	}
	form := url.Values{}
	form.Set("To", m.To)
	var resource string
	switch m.Channel {
	case twofold.SMS:
		if m.Text == "" {
			return deliver.Receipt{}, deliver.Permanent(errors.New("twilio: sms has no text"))
		}
		resource = "Messages.json"
		if c.cfg.MessagingServiceSID != "" {
			form.Set("MessagingServiceSid", c.cfg.MessagingServiceSID)
		} else {
			form.Set("From", c.cfg.From)
		}
		form.Set("Body", m.Text)
	case twofold.Call:
		if c.cfg.From == "" {
			return deliver.Receipt{}, deliver.Permanent(errors.New("twilio: calls need TWOFOLD_TWILIO_FROM; a messaging service cannot place calls"))
		}
		lines := m.Spoken
		if len(lines) == 0 {
			lines = strings.Split(m.Text, "\n")
		}
		lines = nonBlank(lines)
		if len(lines) == 0 {
			return deliver.Receipt{}, deliver.Permanent(errors.New("twilio: call has nothing to say"))
		}
		resource = "Calls.json"
		form.Set("From", c.cfg.From)
		form.Set("Twiml", twiml(lines, voiceLanguage(m.Locale)))
	default:
		return deliver.Receipt{}, deliver.Permanent(fmt.Errorf("twilio: channel %q is not supported", m.Channel))
	}
	if c.cfg.StatusCallbackURL != "" {
		form.Set("StatusCallback", c.cfg.StatusCallbackURL)
	}
	return c.post(ctx, string(m.Channel), resource, form)
}

// APIError is Twilio's refusal of a request, decoded from its JSON error answer. Deliver
// returns it wrapped (and wrapped with deliver.Permanent unless the HTTP status is retryable),
// so callers can map Twilio codes with errors.As.
type APIError struct {
	HTTPStatus int
	Code       int    // Twilio error code, e.g. 21211 (invalid "To" number); 0 if the answer had none
	Message    string // Twilio's message, shortened and with the auth token redacted
	MoreInfo   string
}

func (e *APIError) Error() string {
	s := fmt.Sprintf("HTTP %d", e.HTTPStatus)
	if e.Code != 0 {
		s += fmt.Sprintf(", Twilio error %d", e.Code)
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	return s
}

// post sends form to the account's resource and decodes the answer.
func (c *Client) post(ctx context.Context, what, resource string, form url.Values) (deliver.Receipt, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.endpoint+resource, strings.NewReader(form.Encode()))
	if err != nil {
		return deliver.Receipt{}, deliver.Permanent(fmt.Errorf("twilio: %s: %w", what, err))
	}
	req.SetBasicAuth(c.cfg.AccountSID, c.cfg.AuthToken)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", userAgent)

	resp, err := c.httpClient.Do(req)
	if err != nil {
		// Network failures and ctx deadlines: worth another try. The error names the URL, which
		// holds the account SID but never the token (that travels in a header).
		return deliver.Receipt{}, fmt.Errorf("twilio: %s: %w", what, err)
	}
	defer resp.Body.Close()
	body, readErr := io.ReadAll(io.LimitReader(resp.Body, maxResponseBody))

	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		apiErr := c.decodeError(resp.StatusCode, body)
		err := fmt.Errorf("twilio: %s refused: %w", what, apiErr)
		if deliver.RetryableStatus(resp.StatusCode) {
			return deliver.Receipt{}, err
		}
		return deliver.Receipt{}, deliver.Permanent(err)
	}

	// Twilio accepted the request. If its answer cannot be read, the message may still go out,
	// so the failure is permanent: a retry could send the code twice.
	if readErr != nil {
		return deliver.Receipt{}, deliver.Permanent(fmt.Errorf("twilio: %s accepted (HTTP %d) but reading the answer failed; not retried: %w", what, resp.StatusCode, readErr))
	}
	var ok struct {
		SID    string `json:"sid"`
		Status string `json:"status"`
	}
	if err := json.Unmarshal(body, &ok); err != nil || ok.SID == "" {
		return deliver.Receipt{}, deliver.Permanent(fmt.Errorf("twilio: %s accepted (HTTP %d) but the answer has no sid; not retried", what, resp.StatusCode))
	}
	return deliver.Receipt{ID: ok.SID, Status: ok.Status}, nil
}

// decodeError reads Twilio's error answer. Whatever the body holds, the auth token is
// redacted from it: the message ends up in logs.
func (c *Client) decodeError(status int, body []byte) *APIError {
	var answer struct {
		Code     int    `json:"code"`
		Message  string `json:"message"`
		MoreInfo string `json:"more_info"`
	}
	e := &APIError{HTTPStatus: status}
	if json.Unmarshal(body, &answer) != nil {
		e.Message = http.StatusText(status)
		return e
	}
	e.Code = answer.Code
	e.Message = c.redact(answer.Message)
	e.MoreInfo = c.redact(answer.MoreInfo)
	if len(e.Message) > maxErrorMessage {
		e.Message = strings.ToValidUTF8(e.Message[:maxErrorMessage], "") + "…"
	}
	return e
}

func (c *Client) redact(s string) string {
	if c.cfg.AuthToken == "" {
		return s
	}
	return strings.ReplaceAll(s, c.cfg.AuthToken, "[redacted]")
}

// voiceLanguages maps Twofold's base languages to the language attribute of <Say>.
var voiceLanguages = map[string]string{
	"en": "en-US",
	"es": "es-ES",
	"pt": "pt-BR",
	"fr": "fr-FR",
	"de": "de-DE",
	"it": "it-IT",
	"pl": "pl-PL",
	"ja": "ja-JP",
	"zh": "zh-CN",
}

// voiceLanguage returns the <Say> language for locale ("pt", "pt-BR" and "pt_BR" alike),
// en-US for anything unknown.
func voiceLanguage(locale string) string {
	base := strings.ToLower(locale)
	if i := strings.IndexAny(base, "-_"); i >= 0 {
		base = base[:i]
	}
	if lang, ok := voiceLanguages[base]; ok {
		return lang
	}
	return "en-US"
}

// twiml builds the call's script: each line said in language, with a one-second pause between
// lines so a listener can write the code down. Lines are XML-escaped: they carry the
// customer's application name, which must never become TwiML verbs.
func twiml(lines []string, language string) string {
	var b strings.Builder
	b.WriteString("<Response>")
	for i, line := range lines {
		if i > 0 {
			b.WriteString(`<Pause length="1"/>`)
		}
		b.WriteString(`<Say language="`)
		b.WriteString(language) // from voiceLanguages: no escaping needed
		b.WriteString(`">`)
		_ = xml.EscapeText(&b, []byte(line)) // a strings.Builder never fails
		b.WriteString("</Say>")
	}
	b.WriteString("</Response>")
	return b.String()
}

func nonBlank(lines []string) []string {
	var out []string
	for _, l := range lines {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}

// validSID reports whether s is prefix followed by letters and digits (it goes in a URL path).
func validSID(s, prefix string) bool {
	rest, ok := strings.CutPrefix(s, prefix)
	if !ok || rest == "" {
		return false
	}
	for _, r := range rest {
		if !('0' <= r && r <= '9' || 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z') {
			return false
		}
	}
	return true
}

// validE164 reports whether s looks like "+" and 2 to 15 digits, the first not zero.
func validE164(s string) bool {
	digits, ok := strings.CutPrefix(s, "+")
	if !ok || len(digits) < 2 || len(digits) > 15 || digits[0] == '0' {
		return false
	}
	for _, r := range digits {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

func validHTTPURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}
