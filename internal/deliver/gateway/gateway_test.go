package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"

	"github.com/twofold-auth/twofold/internal/deliver"
	"github.com/twofold-auth/twofold/internal/twofold"
)

// seen is one request as the test server got it.
type seen struct {
	method, path, query string
	header              http.Header
	body                []byte
}

// recorder is a test gateway that records requests and answers with status and answer.
type recorder struct {
	mu       sync.Mutex
	requests []seen
	status   int
	answer   string
	srv      *httptest.Server
}

func newRecorder(t *testing.T, status int, answer string) *recorder {
	t.Helper()
	rec := &recorder{status: status, answer: answer}
	rec.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rec.mu.Lock()
		rec.requests = append(rec.requests, seen{method: r.Method, path: r.URL.Path, query: r.URL.RawQuery, header: r.Header.Clone(), body: body})
		rec.mu.Unlock()
		w.WriteHeader(rec.status)
		io.WriteString(w, rec.answer)
	}))
	t.Cleanup(rec.srv.Close)
	return rec
}

func (rec *recorder) only(t *testing.T) seen {
	t.Helper()
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.requests) != 1 {
		t.Fatalf("gateway got %d requests, want 1", len(rec.requests))
	}
	return rec.requests[0]
}

func (rec *recorder) count() int {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return len(rec.requests)
}

func sms(text string) deliver.Outgoing {
	return deliver.Outgoing{SID: "SM0123456789abcdef", Channel: twofold.SMS, To: "+14155550123", Text: text, Locale: "es"}
}

func ctxTimeout(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// hostile tries to close the JSON string and add its own recipient, and the form value likewise.
const hostile = "Code 123456 \"quoted\" \\ back\nnew line\t</script>\"},\"to\":\"+1999\" & to=+1999&id=x; ünï"

func TestDeliverRequest(t *testing.T) {
	tests := []struct {
		name       string
		cfg        Config // URL is filled in
		path       string // appended to the server URL
		out        deliver.Outgoing
		wantMethod string
		wantCT     string // "" means no Content-Type
		wantAuth   [2]string
		check      func(t *testing.T, r seen)
	}{
		{
			name: "default json", out: sms("Your code is 123456"),
			wantMethod: "POST", wantCT: "application/json",
			check: jsonBody(map[string]any{"to": "+14155550123", "text": "Your code is 123456", "id": "SM0123456789abcdef"}),
		},
		{
			name: "json escaping of hostile text", out: sms(hostile),
			wantMethod: "POST", wantCT: "application/json",
			check: jsonBody(map[string]any{"to": "+14155550123", "text": hostile, "id": "SM0123456789abcdef"}),
		},
		{
			name: "default form with bearer auth",
			cfg:  Config{Format: "form", AuthHeader: "Authorization: Bearer tok3n"},
			out:  sms(hostile), wantMethod: "POST", wantCT: "application/x-www-form-urlencoded",
			wantAuth: [2]string{"Authorization", "Bearer tok3n"},
			check:    formBody(url.Values{"to": {"+14155550123"}, "text": {hostile}, "id": {"SM0123456789abcdef"}}),
		},
		{
			name: "custom nested json template with PUT and api key",
			cfg: Config{
				Method:     "put",
				AuthHeader: "X-Api-Key:  k3y ",
				Template:   `{"messages":[{"destination":{{json .To}},"body":{{json .Text}}}],"lang":{{json .Locale}},"channel":{{json .Channel}},"ref":{{json .SID}}}`,
			},
			out: sms(hostile), wantMethod: "PUT", wantCT: "application/json",
			wantAuth: [2]string{"X-Api-Key", "k3y"},
			check: jsonBody(map[string]any{
				"messages": []any{map[string]any{"destination": "+14155550123", "body": hostile}},
				"lang":     "es", "channel": "sms", "ref": "SM0123456789abcdef",
			}),
		},
		{
			name: "custom form template",
			cfg:  Config{Format: "form", Template: `username=twofold&to={{urlquery .To}}&content={{urlquery .Text}}&coding=8`},
			out:  sms("código 123456"), wantMethod: "POST", wantCT: "application/x-www-form-urlencoded",
			check: formBody(url.Values{"username": {"twofold"}, "to": {"+14155550123"}, "content": {"código 123456"}, "coding": {"8"}}),
		},
		{
			name: "GET puts the form in the query",
			cfg:  Config{Method: "GET", Format: "form"},
			path: "/cgi-bin/sendsms?username=u&password=p",
			out:  sms(hostile), wantMethod: "GET",
			check: func(t *testing.T, r seen) {
				if len(r.body) != 0 {
					t.Errorf("GET carried a body: %q", r.body)
				}
				got, err := url.ParseQuery(r.query)
				if err != nil {
					t.Fatal(err)
				}
				want := url.Values{"username": {"u"}, "password": {"p"}, "to": {"+14155550123"}, "text": {hostile}, "id": {"SM0123456789abcdef"}}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("query (-want +got):\n%s", diff)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := newRecorder(t, http.StatusAccepted, `{"status":"queued"}`)
			cfg := tt.cfg
			cfg.URL = rec.srv.URL + "/send"
			if tt.path != "" {
				cfg.URL = rec.srv.URL + tt.path
			}
			g, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			rcpt, err := g.Deliver(ctxTimeout(t, 5*time.Second), tt.out)
			if err != nil {
				t.Fatalf("Deliver: %v", err)
			}
			if rcpt != (deliver.Receipt{}) {
				t.Errorf("receipt = %+v, want empty (no IDField)", rcpt)
			}
			r := rec.only(t)
			if r.method != tt.wantMethod {
				t.Errorf("method = %s, want %s", r.method, tt.wantMethod)
			}
			if got := r.header.Get("Content-Type"); got != tt.wantCT {
				t.Errorf("Content-Type = %q, want %q", got, tt.wantCT)
			}
			if got := r.header.Get("User-Agent"); got != "twofold" {
				t.Errorf("User-Agent = %q", got)
			}
			if tt.wantAuth[0] != "" {
				if got := r.header.Get(tt.wantAuth[0]); got != tt.wantAuth[1] {
					t.Errorf("%s = %q, want %q", tt.wantAuth[0], got, tt.wantAuth[1])
				}
			}
			tt.check(t, r)
		})
	}
}

func jsonBody(want map[string]any) func(*testing.T, seen) {
	return func(t *testing.T, r seen) {
		t.Helper()
		var got map[string]any
		if err := json.Unmarshal(r.body, &got); err != nil {
			t.Fatalf("body is not JSON: %v\n%s", err, r.body)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("body (-want +got):\n%s\nraw: %s", diff, r.body)
		}
	}
}

func formBody(want url.Values) func(*testing.T, seen) {
	return func(t *testing.T, r seen) {
		t.Helper()
		got, err := url.ParseQuery(string(r.body))
		if err != nil {
			t.Fatalf("body is not a form: %v\n%s", err, r.body)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("body (-want +got):\n%s\nraw: %s", diff, r.body)
		}
	}
}

func TestDeliverID(t *testing.T) {
	tests := []struct {
		name, field, answer, want string
	}{
		{"top-level string", "id", `{"id":"msg-42","status":"ok"}`, "msg-42"},
		{"nested", "data.message_id", `{"data":{"message_id":"abc-1"}}`, "abc-1"},
		{"numeric, kept exact", "data.id", `{"data":{"id":12345678901234567890}}`, "12345678901234567890"},
		{"array index", "messages.0.message-id", `{"messages":[{"message-id":"0A0000001234","status":"0"}]}`, "0A0000001234"},
		{"absent", "data.id", `{"data":{}}`, ""},
		{"not a scalar", "data", `{"data":{"id":"x"}}`, ""},
		{"index out of range", "messages.3.id", `{"messages":[]}`, ""},
		{"not json", "id", `Success "1234"`, ""},
		{"no field configured", "", `{"id":"msg-42"}`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := newRecorder(t, http.StatusOK, tt.answer)
			g, err := New(Config{URL: rec.srv.URL, IDField: tt.field})
			if err != nil {
				t.Fatal(err)
			}
			rcpt, err := g.Deliver(ctxTimeout(t, 5*time.Second), sms("hi"))
			if err != nil {
				t.Fatal(err)
			}
			if rcpt.ID != tt.want || rcpt.Status != "" {
				t.Errorf("receipt = %+v, want ID %q", rcpt, tt.want)
			}
		})
	}
}

func TestDeliverRefused(t *testing.T) {
	const secret = "Bearer s3cr3t-token"
	long := strings.Repeat("x", 100<<10) // past both the error excerpt and the read limit
	tests := []struct {
		status        int
		answer        string
		wantPermanent bool
	}{
		{http.StatusBadRequest, `{"error":"invalid number"}`, true},
		{http.StatusUnauthorized, `bad token s3cr3t-token for ` + secret, true},
		{http.StatusNotFound, long, true},
		{http.StatusFound, ``, true}, // redirects are not followed
		{http.StatusUnprocessableEntity, `{"error":"unsupported destination"}`, true},
		{http.StatusRequestTimeout, ``, false},
		{http.StatusTooManyRequests, `{"error":"slow down"}`, false},
		{http.StatusInternalServerError, long, false},
		{http.StatusBadGateway, `upstream s3cr3t-token down`, false},
		{http.StatusServiceUnavailable, ``, false},
	}
	for _, tt := range tests {
		t.Run(http.StatusText(tt.status), func(t *testing.T) {
			rec := newRecorder(t, tt.status, tt.answer)
			g, err := New(Config{URL: rec.srv.URL + "/send?api_key=query-secret", AuthHeader: "Authorization: " + secret})
			if err != nil {
				t.Fatal(err)
			}
			_, err = g.Deliver(ctxTimeout(t, 5*time.Second), sms("hi"))
			if err == nil {
				t.Fatal("Deliver succeeded")
			}
			if got := deliver.IsPermanent(err); got != tt.wantPermanent {
				t.Errorf("IsPermanent = %v, want %v (%v)", got, tt.wantPermanent, err)
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, "gateway: ") || !strings.Contains(msg, http.StatusText(tt.status)) {
				t.Errorf("error %q lacks the prefix or the status", msg)
			}
			for _, leak := range []string{"s3cr3t-token", "query-secret"} {
				if strings.Contains(msg, leak) {
					t.Errorf("error reveals %q: %s", leak, msg)
				}
			}
			if len(msg) > 500 {
				t.Errorf("error is %d bytes long, want the answer cut short", len(msg))
			}
			if tt.status == http.StatusBadRequest && !strings.Contains(msg, "invalid number") {
				t.Errorf("error %q does not quote the answer", msg)
			}
		})
	}
}

func TestDeliverHangingGateway(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })

	g, err := New(Config{URL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	const budget = 300 * time.Millisecond
	start := time.Now()
	_, err = g.Deliver(ctxTimeout(t, budget), sms("hi"))
	elapsed := time.Since(start)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want a deadline error", err)
	}
	if deliver.IsPermanent(err) {
		t.Errorf("timeout is permanent: %v", err)
	}
	if elapsed > budget+2*time.Second {
		t.Errorf("Deliver took %v with a %v deadline", elapsed, budget)
	}
}

func TestDeliverNetworkError(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	addr := srv.URL
	srv.Close() // nothing listens there now

	g, err := New(Config{URL: addr + "/send?token=query-secret"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = g.Deliver(ctxTimeout(t, 5*time.Second), sms("hi"))
	if err == nil || deliver.IsPermanent(err) {
		t.Fatalf("err = %v, want a retryable error", err)
	}
	if strings.Contains(err.Error(), "query-secret") {
		t.Errorf("error reveals the URL's query: %v", err)
	}
}

func TestDeliverChannels(t *testing.T) {
	tests := []struct {
		name     string
		channels []twofold.Channel
		channel  twofold.Channel
		wantSent bool
	}{
		{"sms by default", nil, twofold.SMS, true},
		{"no calls by default", nil, twofold.Call, false},
		{"no email by default", nil, twofold.Email, false},
		{"calls when configured", []twofold.Channel{twofold.Call}, twofold.Call, true},
		{"only what is configured", []twofold.Channel{twofold.Call}, twofold.SMS, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := newRecorder(t, http.StatusOK, `{}`)
			g, err := New(Config{URL: rec.srv.URL, Channels: tt.channels})
			if err != nil {
				t.Fatal(err)
			}
			out := sms("hi")
			out.Channel = tt.channel
			_, err = g.Deliver(ctxTimeout(t, 5*time.Second), out)
			if tt.wantSent {
				if err != nil {
					t.Fatal(err)
				}
				if got := jsonField(t, rec.only(t).body, "to"); got != out.To {
					t.Errorf("to = %q", got)
				}
				return
			}
			if !deliver.IsPermanent(err) {
				t.Errorf("err = %v, want permanent", err)
			}
			if rec.count() != 0 {
				t.Error("a channel the gateway does not carry reached it")
			}
		})
	}
}

func jsonField(t *testing.T, body []byte, key string) string {
	t.Helper()
	var m map[string]string
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatal(err)
	}
	return m[key]
}

func TestNew(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		wantErr string // substring; "" means valid
	}{
		{name: "minimal", cfg: Config{URL: "https://sms.example/send"}},
		{name: "form get", cfg: Config{URL: "http://kannel:13013/cgi-bin/sendsms", Method: "get", Format: "FORM"}},
		{name: "all set", cfg: Config{URL: "https://sms.example/send", Method: "PATCH", AuthHeader: "X-Key: v", IDField: "a.b", Channels: []twofold.Channel{twofold.SMS, twofold.Call}}},
		{name: "no url", cfg: Config{}, wantErr: "TWOFOLD_GATEWAY_URL"},
		{name: "not http", cfg: Config{URL: "ftp://sms.example/"}, wantErr: "TWOFOLD_GATEWAY_URL"},
		{name: "no host", cfg: Config{URL: "https:///send"}, wantErr: "TWOFOLD_GATEWAY_URL"},
		{name: "relative", cfg: Config{URL: "/send"}, wantErr: "TWOFOLD_GATEWAY_URL"},
		{name: "unparsable", cfg: Config{URL: "http://[::1"}, wantErr: "TWOFOLD_GATEWAY_URL"},
		{name: "method", cfg: Config{URL: "https://sms.example/", Method: "DELETE"}, wantErr: "TWOFOLD_GATEWAY_METHOD"},
		{name: "get with json", cfg: Config{URL: "https://sms.example/", Method: "GET"}, wantErr: "TWOFOLD_GATEWAY_FORMAT"},
		{name: "format", cfg: Config{URL: "https://sms.example/", Format: "xml"}, wantErr: "TWOFOLD_GATEWAY_FORMAT"},
		{name: "template syntax", cfg: Config{URL: "https://sms.example/", Template: `{"to":{{json .To}`}, wantErr: "TWOFOLD_GATEWAY_TEMPLATE"},
		{name: "template field", cfg: Config{URL: "https://sms.example/", Template: `{"to":{{json .Phone}}}`}, wantErr: "TWOFOLD_GATEWAY_TEMPLATE"},
		{name: "template function", cfg: Config{URL: "https://sms.example/", Template: `{"to":{{upper .To}}}`}, wantErr: "TWOFOLD_GATEWAY_TEMPLATE"},
		{name: "template not json", cfg: Config{URL: "https://sms.example/", Template: `{"key":"api-secret","text":"{{.Text}}"}`}, wantErr: "TWOFOLD_GATEWAY_TEMPLATE"},
		{name: "auth header without colon", cfg: Config{URL: "https://sms.example/", AuthHeader: "Bearer xyz-secret"}, wantErr: "TWOFOLD_GATEWAY_AUTH_HEADER"},
		{name: "auth header without value", cfg: Config{URL: "https://sms.example/", AuthHeader: "Authorization:"}, wantErr: "TWOFOLD_GATEWAY_AUTH_HEADER"},
		{name: "auth header bad name", cfg: Config{URL: "https://sms.example/", AuthHeader: "X Key: xyz-secret"}, wantErr: "TWOFOLD_GATEWAY_AUTH_HEADER"},
		{name: "id field", cfg: Config{URL: "https://sms.example/", IDField: "data..id"}, wantErr: "TWOFOLD_GATEWAY_ID_FIELD"},
		{name: "channel", cfg: Config{URL: "https://sms.example/", Channels: []twofold.Channel{"fax"}}, wantErr: "channel"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, err := New(tt.cfg)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				if g.Name() != "gateway" {
					t.Errorf("Name = %q", g.Name())
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want one naming %s", err, tt.wantErr)
			}
			for _, leak := range []string{"xyz-secret", "api-secret"} {
				if strings.Contains(err.Error(), leak) {
					t.Errorf("error reveals %q: %v", leak, err)
				}
			}
		})
	}
}

// FuzzDefaultJSON checks that no recipient or text can escape its place in the default JSON body.
func FuzzDefaultJSON(f *testing.F) {
	f.Add("+14155550123", "Your code is 123456", "SM01")
	f.Add(`"},"to":"+1999`, hostile, "\x00\u2028\u2029")
	f.Add("", "{{.To}}", `\`)
	g, err := New(Config{URL: "https://sms.example/send"})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, to, text, sid string) {
		if !utf8.ValidString(to) || !utf8.ValidString(text) || !utf8.ValidString(sid) {
			t.Skip("json replaces invalid UTF-8")
		}
		body, err := g.render(templateData{To: to, Text: text, SID: sid})
		if err != nil {
			t.Fatal(err)
		}
		var got map[string]string
		if err := json.Unmarshal(body, &got); err != nil {
			t.Fatalf("invalid JSON %q: %v", body, err)
		}
		want := map[string]string{"to": to, "text": text, "id": sid}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("body %q (-want +got):\n%s", body, diff)
		}
	})
}

// FuzzDefaultForm is the same check for the default form body, which needs no valid UTF-8.
func FuzzDefaultForm(f *testing.F) {
	f.Add("+14155550123", "Your code is 123456", "SM01")
	f.Add("+1&to=+1999", hostile, "a=b;c")
	g, err := New(Config{URL: "https://sms.example/send", Format: "form"})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, to, text, sid string) {
		body, err := g.render(templateData{To: to, Text: text, SID: sid})
		if err != nil {
			t.Fatal(err)
		}
		got, err := url.ParseQuery(string(body))
		if err != nil {
			t.Fatalf("invalid form %q: %v", body, err)
		}
		want := url.Values{"to": {to}, "text": {text}, "id": {sid}}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("body %q (-want +got):\n%s", body, diff)
		}
	})
}
