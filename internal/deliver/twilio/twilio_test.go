package twilio

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/twofold-auth/twofold/internal/deliver"
	"github.com/twofold-auth/twofold/internal/twofold"
)

const (
	testSID      = "AC0123456789abcdef0123456789abcdef"
	testToken    = "tok-3f9a0c1d2e4b5a6978c0d1e2f3a4b5c6"
	testFrom     = "+15005550006"
	testService  = "MG0123456789abcdef0123456789abcdef"
	testCallback = "https://twofold.example.com/twilio/status?env=prod"
)

// captured is what the fake Twilio saw of one request.
type captured struct {
	Method, Path, ContentType, UserAgent string
	User, Password                       string
	BasicAuth                            bool
	Form                                 url.Values
}

// fakeTwilio answers every request with status and body and records what it received.
type fakeTwilio struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []captured
}

func newFakeTwilio(t *testing.T, status int, body string) *fakeTwilio {
	t.Helper()
	f := &fakeTwilio{}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, err := io.ReadAll(r.Body)
		if err != nil {
			t.Errorf("fake twilio: reading body: %v", err)
		}
		form, err := url.ParseQuery(string(raw))
		if err != nil {
			t.Errorf("fake twilio: body is not a form: %v", err)
		}
		user, pass, ok := r.BasicAuth()
		f.mu.Lock()
		f.reqs = append(f.reqs, captured{
			Method: r.Method, Path: r.URL.Path, ContentType: r.Header.Get("Content-Type"),
			UserAgent: r.Header.Get("User-Agent"), User: user, Password: pass, BasicAuth: ok, Form: form,
		})
		f.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		io.WriteString(w, body)
	}))
	t.Cleanup(f.Close)
	return f
}

func (f *fakeTwilio) only(t *testing.T) captured {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.reqs) != 1 {
		t.Fatalf("fake twilio got %d requests, want 1", len(f.reqs))
	}
	return f.reqs[0]
}

func newClient(t *testing.T, cfg Config) *Client {
	t.Helper()
	c, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c
}

// codeLines is how callers spell a code for a call: digit by digit, twice.
var codeLines = []string{
	"Your <Play>http://evil</Play> & \"Co\" verification code is",
	"1, 2, 3, 4, 5, 6",
	"Again, your code is",
	"1, 2, 3, 4, 5, 6",
}

func TestDeliverWireFormat(t *testing.T) {
	tests := []struct {
		name      string
		cfg       Config // AccountSID, AuthToken and BaseURL are filled in
		msg       deliver.Outgoing
		wantPath  string
		wantForm  url.Values // without Twiml
		wantTwiml []string   // verbs as "Say[lang] text" or "Pause[1]"
	}{
		{
			name:     "sms from a number",
			cfg:      Config{From: testFrom},
			msg:      deliver.Outgoing{SID: "SM1", Channel: twofold.SMS, To: "+14155550123", Text: "Your code is 123456", Locale: "en"},
			wantPath: "/2010-04-01/Accounts/" + testSID + "/Messages.json",
			wantForm: url.Values{"To": {"+14155550123"}, "From": {testFrom}, "Body": {"Your code is 123456"}},
		},
		{
			name:     "sms through a messaging service with a status callback",
			cfg:      Config{From: testFrom, MessagingServiceSID: testService, StatusCallbackURL: testCallback},
			msg:      deliver.Outgoing{Channel: twofold.SMS, To: "+351912345678", Text: "Código: 123456 & <b>", Locale: "pt"},
			wantPath: "/2010-04-01/Accounts/" + testSID + "/Messages.json",
			wantForm: url.Values{"To": {"+351912345678"}, "MessagingServiceSid": {testService},
				"Body": {"Código: 123456 & <b>"}, "StatusCallback": {testCallback}},
		},
		{
			name:     "call reads spoken lines with pauses, escaped",
			cfg:      Config{From: testFrom, StatusCallbackURL: testCallback},
			msg:      deliver.Outgoing{Channel: twofold.Call, To: "+14155550123", Text: "ignored", Spoken: codeLines, Locale: "es"},
			wantPath: "/2010-04-01/Accounts/" + testSID + "/Calls.json",
			wantForm: url.Values{"To": {"+14155550123"}, "From": {testFrom}, "StatusCallback": {testCallback}},
			wantTwiml: []string{
				"Say[es-ES] " + codeLines[0], "Pause[1]",
				"Say[es-ES] 1, 2, 3, 4, 5, 6", "Pause[1]",
				"Say[es-ES] Again, your code is", "Pause[1]",
				"Say[es-ES] 1, 2, 3, 4, 5, 6",
			},
		},
		{
			name:      "call falls back to the text, line by line",
			cfg:       Config{From: testFrom, MessagingServiceSID: testService},
			msg:       deliver.Outgoing{Channel: twofold.Call, To: "+14155550123", Text: "Your code is\n\n1, 2, 3\n", Locale: "xx"},
			wantPath:  "/2010-04-01/Accounts/" + testSID + "/Calls.json",
			wantForm:  url.Values{"To": {"+14155550123"}, "From": {testFrom}},
			wantTwiml: []string{"Say[en-US] Your code is", "Pause[1]", "Say[en-US] 1, 2, 3"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := newFakeTwilio(t, http.StatusCreated, `{"sid":"SMabc","status":"queued"}`)
			cfg := tt.cfg
			cfg.AccountSID, cfg.AuthToken, cfg.BaseURL = testSID, testToken, fake.URL+"/"
			c := newClient(t, cfg)

			got, err := c.Deliver(context.Background(), tt.msg)
			if err != nil {
				t.Fatalf("Deliver: %v", err)
			}
			if want := (deliver.Receipt{ID: "SMabc", Status: "queued"}); got != want {
				t.Errorf("receipt = %+v, want %+v", got, want)
			}

			req := fake.only(t)
			if req.Method != http.MethodPost || req.Path != tt.wantPath {
				t.Errorf("request = %s %s, want POST %s", req.Method, req.Path, tt.wantPath)
			}
			if req.ContentType != "application/x-www-form-urlencoded" {
				t.Errorf("Content-Type = %q", req.ContentType)
			}
			if !req.BasicAuth || req.User != testSID || req.Password != testToken {
				t.Errorf("basic auth = %v %q:%q, want account SID and token", req.BasicAuth, req.User, req.Password)
			}
			if req.UserAgent != "twofold" {
				t.Errorf("User-Agent = %q", req.UserAgent)
			}
			form := req.Form
			twimlText := form.Get("Twiml")
			form.Del("Twiml")
			if diff := cmp.Diff(tt.wantForm, form); diff != "" {
				t.Errorf("form (-want +got):\n%s", diff)
			}
			if tt.wantTwiml == nil {
				if twimlText != "" {
					t.Errorf("unexpected Twiml %q", twimlText)
				}
				return
			}
			if strings.Contains(twimlText, "<Play>") {
				t.Errorf("hostile text became TwiML: %s", twimlText)
			}
			if diff := cmp.Diff(tt.wantTwiml, parseTwiml(t, twimlText)); diff != "" {
				t.Errorf("TwiML verbs (-want +got):\n%s\n%s", diff, twimlText)
			}
		})
	}
}

// parseTwiml checks that s is one well-formed <Response> of flat verbs and lists them.
func parseTwiml(t *testing.T, s string) []string {
	t.Helper()
	var doc struct {
		XMLName xml.Name `xml:"Response"`
		Verbs   []struct {
			XMLName  xml.Name
			Language string `xml:"language,attr"`
			Length   string `xml:"length,attr"`
			Text     string `xml:",chardata"`
			Inner    string `xml:",innerxml"`
		} `xml:",any"`
	}
	dec := xml.NewDecoder(strings.NewReader(s))
	dec.Strict = true
	if err := dec.Decode(&doc); err != nil {
		t.Fatalf("TwiML is not well-formed XML: %v\n%s", err, s)
	}
	var out []string
	for _, v := range doc.Verbs {
		if strings.Contains(v.Inner, "<") {
			t.Errorf("<%s> has nested markup: %s", v.XMLName.Local, v.Inner)
		}
		switch v.XMLName.Local {
		case "Say":
			out = append(out, fmt.Sprintf("Say[%s] %s", v.Language, v.Text))
		case "Pause":
			out = append(out, fmt.Sprintf("Pause[%s]", v.Length))
		default:
			t.Errorf("unexpected verb <%s>", v.XMLName.Local)
		}
	}
	return out
}

func TestVoiceLanguage(t *testing.T) {
	tests := map[string]string{
		"en": "en-US", "es": "es-ES", "pt": "pt-BR", "fr": "fr-FR", "de": "de-DE", "it": "it-IT",
		"pl": "pl-PL", "ja": "ja-JP", "zh": "zh-CN", "pt-PT": "pt-BR", "ZH_tw": "zh-CN",
		"": "en-US", "nl": "en-US", `"><Play>`: "en-US",
	}
	for locale, want := range tests {
		if got := voiceLanguage(locale); got != want {
			t.Errorf("voiceLanguage(%q) = %q, want %q", locale, got, want)
		}
	}
}

func TestDeliverAnswers(t *testing.T) {
	sms := deliver.Outgoing{Channel: twofold.SMS, To: "+15005550001", Text: "Your code is 123456"}
	tests := []struct {
		name          string
		status        int
		body          string
		wantPermanent bool
		wantCode      int      // Twilio code expected through errors.As; 0: none
		wantIn        []string // substrings of the error
	}{
		{
			name:   "invalid number",
			status: http.StatusBadRequest,
			body: `{"code":21211,"message":"The 'To' number +15005550001 is not a valid phone number.",` +
				`"more_info":"https://www.twilio.com/docs/errors/21211","status":400}`,
			wantPermanent: true, wantCode: 21211,
			wantIn: []string{"21211", "is not a valid phone number", "HTTP 400"},
		},
		{
			name:          "bad credentials, token echoed back",
			status:        http.StatusUnauthorized,
			body:          `{"code":20003,"message":"Authenticate with ` + testToken + `","more_info":"x","status":401}`,
			wantPermanent: true, wantCode: 20003,
			wantIn: []string{"20003", "[redacted]"},
		},
		{
			name:   "rate limited",
			status: http.StatusTooManyRequests,
			body:   `{"code":20429,"message":"Too Many Requests","status":429}`,
			wantIn: []string{"20429", "HTTP 429"}, wantCode: 20429,
		},
		{
			name:   "server error without JSON",
			status: http.StatusInternalServerError,
			body:   `<html>oops</html>`,
			wantIn: []string{"HTTP 500", "Internal Server Error"},
		},
		{
			name:          "accepted without a sid",
			status:        http.StatusCreated,
			body:          `{"status":"queued"}`,
			wantPermanent: true,
			wantIn:        []string{"no sid"},
		},
		{
			name:          "accepted with garbage",
			status:        http.StatusOK,
			body:          `not json`,
			wantPermanent: true,
			wantIn:        []string{"not retried"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := newFakeTwilio(t, tt.status, tt.body)
			c := newClient(t, Config{AccountSID: testSID, AuthToken: testToken, From: testFrom, BaseURL: fake.URL})
			_, err := c.Deliver(context.Background(), sms)
			if err == nil {
				t.Fatal("Deliver succeeded, want an error")
			}
			if got := deliver.IsPermanent(err); got != tt.wantPermanent {
				t.Errorf("IsPermanent = %v, want %v (%v)", got, tt.wantPermanent, err)
			}
			msg := err.Error()
			if strings.Contains(msg, testToken) {
				t.Errorf("error leaks the auth token: %s", msg)
			}
			if !strings.HasPrefix(msg, "twilio: ") {
				t.Errorf("error %q lacks the twilio: prefix", msg)
			}
			for _, s := range tt.wantIn {
				if !strings.Contains(msg, s) {
					t.Errorf("error %q does not contain %q", msg, s)
				}
			}
			var apiErr *APIError
			if errors.As(err, &apiErr) != (tt.wantCode != 0 || tt.status >= 300) {
				t.Errorf("errors.As(*APIError) = %v for HTTP %d", apiErr != nil, tt.status)
			}
			if tt.wantCode != 0 && (apiErr == nil || apiErr.Code != tt.wantCode || apiErr.HTTPStatus != tt.status) {
				t.Errorf("APIError = %+v, want code %d HTTP %d", apiErr, tt.wantCode, tt.status)
			}
		})
	}
}

func TestDeliverRefusesWithoutSending(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		msg  deliver.Outgoing
		want string
	}{
		{"email", Config{From: testFrom}, deliver.Outgoing{Channel: twofold.Email, To: "a@example.com", Text: "x"}, "not supported"},
		{"unknown channel", Config{From: testFrom}, deliver.Outgoing{Channel: "push", To: "+14155550123", Text: "x"}, "not supported"},
		{"call without From", Config{MessagingServiceSID: testService}, deliver.Outgoing{Channel: twofold.Call, To: "+14155550123", Spoken: []string{"hi"}}, "TWOFOLD_TWILIO_FROM"},
		{"no recipient", Config{From: testFrom}, deliver.Outgoing{Channel: twofold.SMS, Text: "x"}, "no recipient"},
		{"empty sms", Config{From: testFrom}, deliver.Outgoing{Channel: twofold.SMS, To: "+14155550123"}, "no text"},
		{"silent call", Config{From: testFrom}, deliver.Outgoing{Channel: twofold.Call, To: "+14155550123", Spoken: []string{" ", ""}}, "nothing to say"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := newFakeTwilio(t, http.StatusCreated, `{"sid":"SMx","status":"queued"}`)
			cfg := tt.cfg
			cfg.AccountSID, cfg.AuthToken, cfg.BaseURL = testSID, testToken, fake.URL
			_, err := newClient(t, cfg).Deliver(context.Background(), tt.msg)
			if !deliver.IsPermanent(err) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want a permanent error containing %q", err, tt.want)
			}
			fake.mu.Lock()
			defer fake.mu.Unlock()
			if len(fake.reqs) != 0 {
				t.Errorf("sent %d requests, want none", len(fake.reqs))
			}
		})
	}
}

func TestDeliverHonoursDeadline(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select { // never answers on its own
		case <-r.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) }) // runs first: lets srv.Close finish
	c := newClient(t, Config{AccountSID: testSID, AuthToken: testToken, From: testFrom, BaseURL: srv.URL})

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := c.Deliver(ctx, deliver.Outgoing{Channel: twofold.SMS, To: "+14155550123", Text: "x"})
	if elapsed := time.Since(start); elapsed > 5*time.Second {
		t.Errorf("Deliver took %v past a 50ms deadline", elapsed)
	}
	if !errors.Is(err, context.DeadlineExceeded) || deliver.IsPermanent(err) {
		t.Errorf("err = %v, want a retryable error wrapping context.DeadlineExceeded", err)
	}
}

func TestDeliverConnectionRefused(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	base := srv.URL
	srv.Close() // nothing listens there any more
	c := newClient(t, Config{AccountSID: testSID, AuthToken: testToken, From: testFrom, BaseURL: base})
	_, err := c.Deliver(context.Background(), deliver.Outgoing{Channel: twofold.SMS, To: "+14155550123", Text: "x"})
	if err == nil || deliver.IsPermanent(err) || !strings.HasPrefix(err.Error(), "twilio: ") {
		t.Errorf("err = %v, want a retryable twilio: error", err)
	}
	if err != nil && strings.Contains(err.Error(), testToken) {
		t.Errorf("error leaks the auth token: %v", err)
	}
}

func TestNewValidates(t *testing.T) {
	valid := Config{AccountSID: testSID, AuthToken: testToken, From: testFrom}
	tests := []struct {
		name   string
		modify func(*Config)
		want   string // substring of the error; "" means valid
	}{
		{"valid", func(*Config) {}, ""},
		{"messaging service only", func(c *Config) { c.From, c.MessagingServiceSID = "", testService }, ""},
		{"http base URL for a local fake", func(c *Config) { c.BaseURL = "http://127.0.0.1:8080" }, ""},
		{"missing account SID", func(c *Config) { c.AccountSID = "" }, "TWOFOLD_TWILIO_ACCOUNT_SID"},
		{"API key instead of account SID", func(c *Config) { c.AccountSID = "SK0123456789abcdef" }, "TWOFOLD_TWILIO_ACCOUNT_SID"},
		{"account SID with a slash", func(c *Config) { c.AccountSID = "AC12/../x" }, "TWOFOLD_TWILIO_ACCOUNT_SID"},
		{"missing token", func(c *Config) { c.AuthToken = "" }, "TWOFOLD_TWILIO_AUTH_TOKEN"},
		{"no sender", func(c *Config) { c.From = "" }, "TWOFOLD_TWILIO_FROM"},
		{"From not E.164", func(c *Config) { c.From = "415-555-0123" }, "TWOFOLD_TWILIO_FROM"},
		{"bad messaging service", func(c *Config) { c.MessagingServiceSID = "PN123" }, "TWOFOLD_TWILIO_MESSAGING_SERVICE_SID"},
		{"base URL without scheme", func(c *Config) { c.BaseURL = "api.twilio.com" }, "TWOFOLD_TWILIO_BASE_URL"},
		{"base URL ftp", func(c *Config) { c.BaseURL = "ftp://api.twilio.com" }, "TWOFOLD_TWILIO_BASE_URL"},
		{"base URL unparsable", func(c *Config) { c.BaseURL = "http://[::1" }, "TWOFOLD_TWILIO_BASE_URL"},
		{"relative callback URL", func(c *Config) { c.StatusCallbackURL = "/twilio/status" }, "TWOFOLD_TWILIO_STATUS_CALLBACK_URL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := valid
			tt.modify(&cfg)
			c, err := New(cfg)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("New: %v", err)
				}
				if c.Name() != "twilio" {
					t.Errorf("Name() = %q", c.Name())
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want one naming %s", err, tt.want)
			}
			if strings.Contains(err.Error(), testToken) {
				t.Errorf("error leaks the auth token: %v", err)
			}
		})
	}
}
