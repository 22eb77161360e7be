package main

import (
	"encoding/json"
	"encoding/xml"
	"fmt"
	"mime"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/twofold-auth/twofold/internal/deliver/smtpmail/smtptest"
	"github.com/twofold-auth/twofold/internal/deliver/twilio"
)

// withEnv gives the server these environment variables.
func withEnv(vars map[string]string) func(*Env) {
	return func(e *Env) { e.Getenv = func(k string) string { return vars[k] } }
}

const (
	twilioSID   = "AC0123456789abcdef0123456789abcdef"
	twilioToken = "test-auth-token-0123456789"
	twilioFrom  = "+15005550006"
	publicURL   = "https://twofold.example"
)

// fakeTwilio is a local stand-in for api.twilio.com that checks what Twilio checks (the
// account in the path, Basic auth, form encoding) and records each request's form.
type fakeTwilio struct {
	*httptest.Server
	t       *testing.T
	mu      sync.Mutex
	forms   []url.Values
	paths   []string
	answer  func(n int) (int, string) // the nth request's status and JSON body
	release chan struct{}             // closed at the end: lets hanging answers go
}

func newFakeTwilio(t *testing.T) *fakeTwilio {
	f := &fakeTwilio{t: t, release: make(chan struct{})}
	f.answer = func(n int) (int, string) {
		return 201, fmt.Sprintf(`{"sid":"SM%032d","status":"queued"}`, n)
	}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user, pass, ok := r.BasicAuth()
		if !ok || user != twilioSID || pass != twilioToken {
			w.WriteHeader(401)
			fmt.Fprint(w, `{"code":20003,"message":"Authenticate","status":401}`)
			return
		}
		if r.Method != "POST" || r.Header.Get("Content-Type") != "application/x-www-form-urlencoded" ||
			!strings.HasPrefix(r.URL.Path, "/2010-04-01/Accounts/"+twilioSID+"/") {
			t.Errorf("twilio: unexpected %s %s (%s)", r.Method, r.URL.Path, r.Header.Get("Content-Type"))
		}
		if err := r.ParseForm(); err != nil {
			t.Errorf("twilio: form: %v", err)
		}
		f.mu.Lock()
		f.forms = append(f.forms, r.PostForm)
		f.paths = append(f.paths, strings.TrimPrefix(r.URL.Path, "/2010-04-01/Accounts/"+twilioSID+"/"))
		n, answer := len(f.forms), f.answer
		f.mu.Unlock()
		status, body := answer(n)
		if status == 0 { // hang until the client gives up or the test ends
			select {
			case <-r.Context().Done():
			case <-f.release:
			}
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		fmt.Fprint(w, body)
	}))
	t.Cleanup(func() { close(f.release); f.Close() })
	return f
}

// answerWith sets how the fake answers from now on: status 0 hangs.
func (f *fakeTwilio) answerWith(answer func(n int) (int, string)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.answer = answer
}

func (f *fakeTwilio) requests() ([]string, []url.Values) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string{}, f.paths...), append([]url.Values{}, f.forms...)
}

func (f *fakeTwilio) env() map[string]string {
	return map[string]string{
		"TWOFOLD_TWILIO_ACCOUNT_SID": twilioSID, "TWOFOLD_TWILIO_AUTH_TOKEN": twilioToken,
		"TWOFOLD_TWILIO_FROM": twilioFrom, "TWOFOLD_TWILIO_BASE_URL": f.URL,
	}
}

type outboxEntry struct {
	SID        string `json:"sid"`
	Channel    string `json:"channel"`
	To         string `json:"to"`
	Body       string `json:"body"`
	Status     string `json:"status"`
	Provider   string `json:"provider"`
	ProviderID string `json:"provider_id"`
	Delivery   string `json:"delivery"`
	Attempts   int    `json:"attempts"`
	Error      string `json:"error"`
}

func (s *server) outbox(args ...string) []outboxEntry {
	s.t.Helper()
	var msgs []outboxEntry
	s.cliJSON(&msgs, append([]string{"outbox"}, args...)...)
	return msgs
}

func (s *server) lastMessage() outboxEntry {
	s.t.Helper()
	msgs := s.outbox()
	if len(msgs) == 0 {
		s.t.Fatal("the outbox is empty")
	}
	return msgs[len(msgs)-1]
}

func TestDeliveryThroughTwilio(t *testing.T) {
	tw := newFakeTwilio(t)
	s := startServerEnv(t, "", withEnv(tw.env()), "--rate-limit", "off", "--public-url", publicURL,
		"--delivery-attempts", "3", "--delivery-deadline", "5s")
	id := s.register(s.key, "ana@example.com", "2015550123")

	// SMS: Twilio gets the number, the sender, the text and where to report delivery.
	if r := s.get("/protected/json/sms/" + itoa64(id) + "?force=true"); r.status != 200 {
		t.Fatalf("sms: %s", r.raw)
	}
	paths, forms := tw.requests()
	if len(forms) != 1 || paths[0] != "Messages.json" {
		t.Fatalf("twilio got %v", paths)
	}
	sms := forms[0]
	if sms.Get("To") != "+12015550123" || sms.Get("From") != twilioFrom ||
		sms.Get("StatusCallback") != publicURL+twilioStatusPath {
		t.Fatalf("sms form: %v", sms)
	}
	code := codeIn(t, sms.Get("Body"))
	if r := s.get("/protected/json/verify/" + code + "/" + itoa64(id)); r.status != 200 {
		t.Fatalf("the code Twilio carried does not verify: %s", r.raw)
	}
	m := s.lastMessage()
	wantSID := fmt.Sprintf("SM%032d", 1)
	if m.Provider != "twilio" || m.Status != "sent" || m.ProviderID != wantSID || m.Delivery != "queued" || m.Attempts != 1 {
		t.Fatalf("outbox after a Twilio send: %+v", m)
	}

	// Twilio's delivery report, signed with the auth token over the public URL, updates it;
	// an unsigned or forged one is refused.
	report := url.Values{"MessageSid": {wantSID}, "MessageStatus": {"delivered"}, "AccountSid": {twilioSID}}
	for _, tc := range []struct {
		name   string
		sig    string
		status int
	}{
		{"unsigned", "", 403},
		{"forged", twilio.Signature("wrong-token", publicURL+twilioStatusPath, report), 403},
		{"signed", twilio.Signature(twilioToken, publicURL+twilioStatusPath, report), 204},
	} {
		req, _ := http.NewRequest("POST", s.url+twilioStatusPath, strings.NewReader(report.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if tc.sig != "" {
			req.Header.Set("X-Twilio-Signature", tc.sig)
		}
		res, err := s.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != tc.status {
			t.Fatalf("%s delivery report: HTTP %d, want %d", tc.name, res.StatusCode, tc.status)
		}
		if tc.status == 403 && s.lastMessage().Delivery != "queued" {
			t.Fatalf("a %s report changed the message", tc.name)
		}
	}
	if m := s.lastMessage(); m.Delivery != "delivered" {
		t.Fatalf("after the report: %+v", m)
	}

	// A call in Spanish: TwiML that says the code digit by digit, twice, in Spanish.
	if r := s.get("/protected/json/call/" + itoa64(id) + "?force=true&locale=es"); r.status != 200 {
		t.Fatalf("call: %s", r.raw)
	}
	paths, forms = tw.requests()
	if paths[len(paths)-1] != "Calls.json" {
		t.Fatalf("call went to %s", paths[len(paths)-1])
	}
	var twiml struct {
		Says []struct {
			Lang string `xml:"language,attr"`
			Text string `xml:",chardata"`
		} `xml:"Say"`
	}
	if err := xml.Unmarshal([]byte(forms[len(forms)-1].Get("Twiml")), &twiml); err != nil || len(twiml.Says) != 4 {
		t.Fatalf("twiml %q: %v", forms[len(forms)-1].Get("Twiml"), err)
	}
	spoken := twiml.Says[1].Text
	if twiml.Says[0].Lang != "es-ES" || !strings.Contains(twiml.Says[0].Text, "código") || spoken != twiml.Says[3].Text ||
		!strings.Contains(spoken, ", ") {
		t.Fatalf("call script: %+v", twiml.Says)
	}
	if r := s.get("/protected/json/verify/" + joinSpokenDigits(spoken) + "/" + itoa64(id)); r.status != 200 {
		t.Fatalf("the spoken code does not verify: %s", r.raw)
	}

	// Twilio failing: retried, then a clear 60015/60014, never a 5xx a client would retry.
	before, _ := tw.requests()
	tw.answerWith(func(int) (int, string) { return 500, `{"code":20500,"message":"Internal Server Error","status":500}` })
	expectError(t, s.get("/protected/json/sms/"+itoa64(id)+"?force=true"), 400, "60015")
	after, _ := tw.requests()
	if len(after)-len(before) != 3 {
		t.Fatalf("a failing Twilio was tried %d times, want 3", len(after)-len(before))
	}
	if m := s.lastMessage(); m.Status != "failed" || m.Attempts != 3 || !strings.Contains(m.Error, "20500") {
		t.Fatalf("outbox after failures: %+v", m)
	}
	expectError(t, s.get("/protected/json/call/"+itoa64(id)+"?force=true"), 400, "60014")

	// Twilio refusing the number: not retried.
	before, _ = tw.requests()
	tw.answerWith(func(int) (int, string) {
		return 400, `{"code":21211,"message":"The 'To' number is not a valid phone number.","status":400}`
	})
	expectError(t, s.post("/protected/json/phones/verification/start",
		url.Values{"via": {"sms"}, "phone_number": {"2015550124"}, "country_code": {"1"}}), 400, "60015")
	if after, _ = tw.requests(); len(after)-len(before) != 1 {
		t.Fatalf("a refused number was tried %d times, want 1", len(after)-len(before))
	}

	metrics := s.do("GET", "/metrics", "", nil).raw
	for _, want := range []string{
		`twofold_messages_total{channel="sms",provider="twilio",status="sent"} 1`,
		`twofold_messages_total{channel="sms",provider="twilio",status="failed"} 2`,
		`twofold_messages_total{channel="call",provider="twilio",status="failed"} 1`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

// A provider that never answers costs the API caller the delivery deadline, not a hang.
func TestDeliveryDeadline(t *testing.T) {
	tw := newFakeTwilio(t)
	tw.answerWith(func(int) (int, string) { return 0, "" })
	s := startServerEnv(t, "", withEnv(tw.env()), "--delivery-timeout", "200ms", "--delivery-deadline", "500ms")
	id := s.register(s.key, "ana@example.com", "2015550123")
	expectError(t, s.get("/protected/json/sms/"+itoa64(id)+"?force=true"), 400, "60015")
	if m := s.lastMessage(); m.Status != "failed" || m.Attempts < 1 {
		t.Fatalf("outbox after timeouts: %+v", m)
	}
}

func TestDeliveryThroughGateway(t *testing.T) {
	type gatewayBody struct{ To, Text, ID string }
	var mu sync.Mutex
	var got []gatewayBody
	gw := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer gw-secret" || r.Header.Get("Content-Type") != "application/json" {
			w.WriteHeader(401)
			return
		}
		var b gatewayBody
		if err := json.NewDecoder(r.Body).Decode(&b); err != nil {
			w.WriteHeader(400)
			return
		}
		mu.Lock()
		got = append(got, b)
		n := len(got)
		mu.Unlock()
		fmt.Fprintf(w, `{"data":{"message_id":"gw-%d"}}`, n)
	}))
	defer gw.Close()
	s := startServerEnv(t, "", withEnv(map[string]string{
		"TWOFOLD_GATEWAY_URL": gw.URL, "TWOFOLD_GATEWAY_AUTH_HEADER": "Authorization: Bearer gw-secret",
		"TWOFOLD_GATEWAY_ID_FIELD": "data.message_id",
	}))

	// Phone verification through the gateway, in Portuguese for a Brazilian number.
	start := url.Values{"via": {"sms"}, "phone_number": {"11 96123 4567"}, "country_code": {"55"}}
	if r := s.post("/protected/json/phones/verification/start", start); r.status != 200 {
		t.Fatalf("start: %s", r.raw)
	}
	mu.Lock()
	if len(got) != 1 || got[0].To != "+5511961234567" || !strings.Contains(got[0].Text, "código") || !strings.HasPrefix(got[0].ID, "SM") {
		t.Fatalf("gateway got %+v", got)
	}
	code := codeIn(t, got[0].Text)
	mu.Unlock()
	check := "/protected/json/phones/verification/check?country_code=55&phone_number=11961234567&verification_code=" + code
	if r := s.get(check); r.status != 200 {
		t.Fatalf("the code the gateway carried does not verify: %s", r.raw)
	}
	if m := s.lastMessage(); m.Provider != "gateway" || m.ProviderID != "gw-1" || m.Status != "sent" {
		t.Fatalf("outbox: %+v", m)
	}
	// Calls are not the gateway's: they stay in the outbox.
	start.Set("via", "call")
	if r := s.post("/protected/json/phones/verification/start", start); r.status != 200 {
		t.Fatalf("call: %s", r.raw)
	}
	if m := s.lastMessage(); m.Provider != "outbox" || m.Status != "recorded" {
		t.Fatalf("a call with only a gateway configured: %+v", m)
	}
}

// An application can have its own provider; one this server lacks fails clearly, and the
// outbox choice keeps a test application's codes at home.
func TestPerApplicationProvider(t *testing.T) {
	tw := newFakeTwilio(t)
	s := startServerEnv(t, "", withEnv(tw.env()))
	id := s.register(s.key, "ana@example.com", "2015550123")
	var shown appJSON
	s.cliJSON(&shown, "app", "update", "1", "--sms-provider", "outbox")
	if shown.SMSProvider != "outbox" {
		t.Fatalf("app update: %+v", shown)
	}
	if r := s.get("/protected/json/sms/" + itoa64(id) + "?force=true"); r.status != 200 {
		t.Fatalf("sms: %s", r.raw)
	}
	if paths, _ := tw.requests(); len(paths) != 0 || s.lastMessage().Provider != "outbox" {
		t.Fatalf("an outbox application's SMS reached Twilio: %v", paths)
	}
	s.cliJSON(&shown, "app", "update", "1", "--sms-provider", "gateway")
	expectError(t, s.get("/protected/json/sms/"+itoa64(id)+"?force=true"), 400, "60015")
	if m := s.lastMessage(); m.Status != "failed" || !strings.Contains(m.Error, "not configured") {
		t.Fatalf("unconfigured provider: %+v", m)
	}
	if _, err := s.cli("app", "update", "1", "--sms-provider", "smtp"); err == nil {
		t.Fatal("smtp was accepted as an SMS provider")
	}
	s.cliJSON(&shown, "app", "update", "1", "--sms-provider", "")
	if r := s.get("/protected/json/sms/" + itoa64(id) + "?force=true"); r.status != 200 || s.lastMessage().Provider != "twilio" {
		t.Fatalf("back to the server's default: %s", r.raw)
	}
}

// Email through a real SMTP server on loopback: STARTTLS with a private CA, AUTH, plain text and
// HTML; the code read back from the server verifies.
func TestDeliveryThroughSMTP(t *testing.T) {
	mail := smtptest.Start(t, smtptest.Options{TLS: smtptest.StartTLS, User: "twofold", Pass: "smtp-secret"})
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, mail.CAPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	s := startServerEnv(t, "", withEnv(map[string]string{
		"TWOFOLD_SMTP_HOST": mail.Host(), "TWOFOLD_SMTP_PORT": strconv.Itoa(mail.Port()),
		"TWOFOLD_SMTP_USERNAME": "twofold", "TWOFOLD_SMTP_PASSWORD": "smtp-secret",
		"TWOFOLD_SMTP_FROM": "Shop Security <no-reply@shop.test>", "TWOFOLD_SMTP_CA_FILE": ca,
	}))
	id := s.register(s.key, "ana@example.com", "2015550123")
	r := s.do("POST", "/protected/json/email/"+itoa64(id), s.key, url.Values{"locale": {"fr"}})
	if r.status != 200 {
		t.Fatalf("email: %s", r.raw)
	}
	got := mail.Wait(t, 1)[0]
	if !got.TLS || got.AuthUser != "twofold" || got.From != "no-reply@shop.test" || len(got.To) != 1 || got.To[0] != "ana@example.com" {
		t.Fatalf("SMTP envelope: from %s to %v, TLS %v, user %q", got.From, got.To, got.TLS, got.AuthUser)
	}
	header, text, html := smtptest.Parts(t, got.Data)
	code := codeIn(t, text)
	subject, err := new(mime.WordDecoder).DecodeHeader(header.Get("Subject"))
	if err != nil || !strings.Contains(subject, "code de vérification") || strings.Contains(subject, code) {
		t.Fatalf("subject %q: %v", subject, err)
	}
	if !strings.Contains(html, code) || !strings.Contains(html, "<") {
		t.Fatalf("HTML part %q lacks the code", html)
	}
	if r := s.get("/protected/json/verify/" + code + "/" + itoa64(id)); r.status != 200 {
		t.Fatalf("the emailed code does not verify: %s", r.raw)
	}
	m := s.lastMessage()
	if m.Provider != "smtp" || m.Status != "sent" || m.ProviderID != header.Get("Message-Id") || r.body["email_id"] != m.SID {
		t.Fatalf("outbox: %+v (Message-ID %s)", m, header.Get("Message-Id"))
	}
	if strings.Contains(s.logs.String(), "smtp-secret") || strings.Contains(s.logs.String(), code) {
		t.Fatal("the logs show the SMTP password or the code")
	}
}
