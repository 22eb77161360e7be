package twilio

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/twofold-auth/twofold/internal/wiretext"
)

// TestSignatureKnownVector is the worked example of Twilio's "Webhooks security" page.
func TestSignatureKnownVector(t *testing.T) {
	params := url.Values{
		"CallSid": {"CA1234567890ABCDE"},
		"Caller":  {"+12349013030"},
		"Digits":  {"1234"},
		"From":    {"+12349013030"},
		"To":      {"+18005551212"},
	}
	const want = "0/KCTR6DLpKmkAf8muzZqo1nDgQ="
	if got := Signature("12345", "https://mycompany.com/myapp.php?foo=1&bar=2", params); got != want {
		t.Errorf("Signature = %q, want %q", got, want)
	}
	params.Set("Digits", "1235")
	if got := Signature("12345", "https://mycompany.com/myapp.php?foo=1&bar=2", params); got == want {
		t.Error("Signature ignores a parameter's value")
	}
}

func TestCallbackVariants(t *testing.T) {
	tests := map[string][]string{
		"":                           nil,
		"https://a.example/s?x=1":    {"https://a.example/s?x=1", "https://a.example:443/s?x=1"},
		"https://a.example:443/s":    {"https://a.example:443/s", "https://a.example/s"},
		"http://a.example/s":         {"http://a.example/s", "http://a.example:80/s"},
		"https://a.example:8443/s":   {"https://a.example:8443/s"},
		"https://[2001:db8::1]/s":    {"https://[2001:db8::1]/s", "https://[2001:db8::1]:443/s"},
		"https://[2001:db8::1]:443/": {"https://[2001:db8::1]:443/", "https://[2001:db8::1]/"},
	}
	for in, want := range tests {
		if diff := cmp.Diff(want, callbackVariants(in)); diff != "" {
			t.Errorf("callbackVariants(%q) (-want +got):\n%s", in, diff)
		}
	}
}

type statusUpdate struct{ ID, Status, ErrorCode string }

func TestStatusHandler(t *testing.T) {
	msgParams := url.Values{
		"AccountSid": {testSID}, "MessageSid": {"SM0123"}, "MessageStatus": {"undelivered"},
		"ErrorCode": {"30003"}, "To": {"+14155550123"}, "SmsStatus": {"undelivered"},
	}
	callParams := url.Values{"AccountSid": {testSID}, "CallSid": {"CA0123"}, "CallStatus": {"completed"}, "CallDuration": {"21"}}
	sign := func(u string, p url.Values) string { return Signature(testToken, u, p) }
	const form = "application/x-www-form-urlencoded"

	tests := []struct {
		name        string
		method      string
		contentType string
		callbackURL string     // the client's configured StatusCallbackURL
		body        string     // defaults to params.Encode()
		params      url.Values // what is posted
		signature   string     // X-Twilio-Signature; "" omits it
		updateErr   error
		wantCode    int
		wantUpdate  *statusUpdate
	}{
		{
			name: "message status", params: msgParams, signature: sign(testCallback, msgParams),
			wantCode: http.StatusNoContent, wantUpdate: &statusUpdate{"SM0123", "undelivered", "30003"},
		},
		{
			name: "call status", params: callParams, signature: sign(testCallback, callParams),
			wantCode: http.StatusNoContent, wantUpdate: &statusUpdate{"CA0123", "completed", ""},
		},
		{
			name: "signed with the default port written out", params: callParams,
			signature: sign("https://twofold.example.com:443/twilio/status?env=prod", callParams),
			wantCode:  http.StatusNoContent, wantUpdate: &statusUpdate{"CA0123", "completed", ""},
		},
		{
			name: "form with a charset", contentType: form + "; charset=utf-8", params: callParams,
			signature: sign(testCallback, callParams), wantCode: http.StatusNoContent,
			wantUpdate: &statusUpdate{"CA0123", "completed", ""},
		},
		{
			name: "tampered status", params: with(msgParams, "MessageStatus", "delivered"),
			signature: sign(testCallback, msgParams), wantCode: http.StatusForbidden,
		},
		{
			name: "added parameter", params: with(msgParams, "Extra", "1"),
			signature: sign(testCallback, msgParams), wantCode: http.StatusForbidden,
		},
		{
			name: "signed for another URL", params: msgParams,
			signature: sign("https://twofold.example.com/twilio/status", msgParams), wantCode: http.StatusForbidden,
		},
		{
			name: "signed with another token", params: msgParams,
			signature: Signature("other-token", testCallback, msgParams), wantCode: http.StatusForbidden,
		},
		{name: "missing signature", params: msgParams, wantCode: http.StatusForbidden},
		{
			name: "no callback URL configured", callbackURL: "none", params: msgParams,
			signature: sign("", msgParams), wantCode: http.StatusForbidden,
		},
		{
			name: "bad form encoding", body: "MessageSid=%zz", signature: "x", wantCode: http.StatusBadRequest,
		},
		{
			name: "JSON body", contentType: "application/json", body: `{"MessageSid":"SM1"}`,
			signature: "x", wantCode: http.StatusBadRequest,
		},
		{
			name: "body too large", body: "Pad=" + strings.Repeat("a", maxCallbackBody+1),
			signature: "x", wantCode: http.StatusBadRequest,
		},
		{
			name: "signed but not a status callback", params: url.Values{"Foo": {"bar"}},
			signature: sign(testCallback, url.Values{"Foo": {"bar"}}), wantCode: http.StatusBadRequest,
		},
		{
			// A signed callback is still refused before the update when its text is not
			// UTF-8 without NUL: PostgreSQL would fail the update with a 500.
			name: "signed, NUL in a value", params: with(msgParams, "MessageSid", "SM\x00"),
			signature: sign(testCallback, with(msgParams, "MessageSid", "SM\x00")), wantCode: http.StatusBadRequest,
		},
		{
			name: "signed, invalid UTF-8 in a value", params: with(msgParams, "ErrorCode", "\xff"),
			signature: sign(testCallback, with(msgParams, "ErrorCode", "\xff")), wantCode: http.StatusBadRequest,
		},
		{
			name: "update fails", params: msgParams, signature: sign(testCallback, msgParams),
			updateErr: errors.New("store down"), wantCode: http.StatusInternalServerError,
			wantUpdate: &statusUpdate{"SM0123", "undelivered", "30003"},
		},
		{name: "GET", method: http.MethodGet, params: msgParams, signature: sign(testCallback, msgParams), wantCode: http.StatusMethodNotAllowed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := Config{AccountSID: testSID, AuthToken: testToken, From: testFrom, StatusCallbackURL: testCallback}
			if tt.callbackURL == "none" {
				cfg.StatusCallbackURL = ""
			}
			c := newClient(t, cfg)
			var got *statusUpdate
			h := c.StatusHandler(func(ctx context.Context, id, status, errorCode string) error {
				if got != nil {
					t.Error("update called twice")
				}
				got = &statusUpdate{id, status, errorCode}
				return tt.updateErr
			})

			body := tt.body
			if body == "" {
				body = tt.params.Encode()
			}
			method, ct := tt.method, tt.contentType
			if method == "" {
				method = http.MethodPost
			}
			if ct == "" {
				ct = form
			}
			// The request reaches the handler behind a proxy, under another host and path:
			// only the configured URL counts.
			req := httptest.NewRequest(method, "http://10.0.0.5:8080/internal/status", strings.NewReader(body))
			req.Header.Set("Content-Type", ct)
			if tt.signature != "" {
				req.Header.Set(SignatureHeader, tt.signature)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)

			if rec.Code != tt.wantCode {
				t.Errorf("status = %d %q, want %d", rec.Code, rec.Body.String(), tt.wantCode)
			}
			if diff := cmp.Diff(tt.wantUpdate, got); diff != "" {
				t.Errorf("update (-want +got):\n%s", diff)
			}
		})
	}
}

func with(v url.Values, key, value string) url.Values {
	out := url.Values{}
	for k, vs := range v {
		out[k] = append([]string(nil), vs...)
	}
	out.Set(key, value)
	return out
}

func FuzzStatusHandler(f *testing.F) {
	f.Add("MessageSid=SM1&MessageStatus=delivered&ErrorCode=", true, "application/x-www-form-urlencoded")
	f.Add("CallSid=CA1&CallStatus=busy", true, "application/x-www-form-urlencoded; charset=utf-8")
	f.Add("MessageSid=%zz", false, "application/x-www-form-urlencoded")
	f.Add("a=1&a=2&b", true, "application/x-www-form-urlencoded")
	f.Add(";;&&==", true, "text/plain; charset")
	f.Add("MessageSid=SM%00&MessageStatus=%FF", true, "application/x-www-form-urlencoded")
	c, err := New(Config{AccountSID: testSID, AuthToken: testToken, From: testFrom, StatusCallbackURL: testCallback})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body string, signIt bool, contentType string) {
		h := c.StatusHandler(func(ctx context.Context, id, status, errorCode string) error {
			if id == "" || status == "" {
				return errors.New("empty update")
			}
			for _, s := range []string{id, status, errorCode} {
				if !wiretext.Valid(s) {
					t.Errorf("update called with %q, which is not text every store keeps", s)
				}
			}
			if errorCode == "fail" {
				return errors.New("update failed")
			}
			return nil
		})
		sig := "bm90IGEgc2lnbmF0dXJl"
		if params, err := url.ParseQuery(body); err == nil && signIt {
			sig = Signature(testToken, testCallback, params)
		}
		req := httptest.NewRequest(http.MethodPost, "/status", strings.NewReader(body))
		req.Header.Set("Content-Type", contentType)
		req.Header.Set(SignatureHeader, sig)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		switch rec.Code {
		case http.StatusNoContent, http.StatusBadRequest, http.StatusForbidden, http.StatusInternalServerError:
		default:
			t.Errorf("status %d", rec.Code)
		}
	})
}
