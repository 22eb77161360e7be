package main

import (
	"net/url"
	"strings"
	"testing"
)

// SMS pumping: an attacker makes an application text many numbers, or one number many times,
// or a whole expensive country. Each limit refuses with 429/60003 before anything is sent, and
// the refusals are counted by reason in the outbox summary and /metrics.
func TestSendLimits(t *testing.T) {
	s := startServer(t, "", "--rate-limit", "off", "--limit-sends", "off", "--limit-number-sends", "2/1h",
		"--limit-country-sends", "3/1h", "--limit-app-sends", "4/1h")
	register := func(email, cc, phone string) string {
		r := s.post("/protected/json/users/new", url.Values{"user[email]": {email}, "user[cellphone]": {phone}, "user[country_code]": {cc}})
		if r.status != 200 {
			t.Fatalf("register %s: %s", email, r.raw)
		}
		return itoa64(int64(r.body["user"].(map[string]any)["id"].(float64)))
	}
	a := register("a@example.com", "1", "2015550123")
	b := register("b@example.com", "1", "2015550123") // the same number as a
	c := register("c@example.com", "1", "2015550124")
	d := register("d@example.com", "1", "2015550125")
	uk1 := register("fr1@example.com", "33", "612345678")
	uk2 := register("fr2@example.com", "33", "612345679")
	sms := func(id string) response { return s.get("/protected/json/sms/" + id + "?force=true") }
	ok := func(id string) {
		t.Helper()
		if r := sms(id); r.status != 200 {
			t.Fatalf("sms to %s: %s", id, r.raw)
		}
	}
	refused := func(id, why string) {
		t.Helper()
		r := sms(id)
		expectError(t, r, 429, "60003")
		if !strings.Contains(r.body["message"].(string), why) {
			t.Fatalf("refusal %q does not say %q", r.body["message"], why)
		}
	}
	ok(a)
	ok(b)                     // the number's second code
	refused(a, "this number") // its third, whoever asks
	// Phone verification counts against the same number.
	expectError(t, s.post("/protected/json/phones/verification/start",
		url.Values{"via": {"sms"}, "phone_number": {"2015550123"}, "country_code": {"1"}}), 429, "60003")
	ok(c)               // +1's third code
	refused(d, "in +1") // and its fourth
	ok(uk1)             // the application's fourth code
	refused(uk2, "application")
	if r := s.post("/protected/json/email/"+a, nil); r.status != 429 {
		t.Fatalf("email past the application's limit: %s", r.raw)
	}

	var summary []struct {
		Channel, Provider, Status, Reason string
		Count                             int
	}
	s.cliJSON(&summary, "outbox", "--summary")
	got := map[string]int{}
	for _, c := range summary {
		got[c.Channel+"/"+c.Status+"/"+c.Reason] = c.Count
	}
	want := map[string]int{
		"sms/recorded/": 4, "sms/refused/limit_number": 2, "sms/refused/limit_country": 1,
		"sms/refused/limit_app": 1, "email/refused/limit_app": 1,
	}
	for k, n := range want {
		if got[k] != n {
			t.Errorf("summary %s = %d, want %d (all: %v)", k, got[k], n, got)
		}
	}
	metrics := s.do("GET", "/metrics", "", nil).raw
	for _, line := range []string{
		`twofold_message_refusals_total{channel="sms",reason="limit_number"} 2`,
		`twofold_message_refusals_total{channel="sms",reason="limit_country"} 1`,
		`twofold_message_refusals_total{channel="sms",reason="limit_app"} 1`,
		`twofold_messages_total{channel="sms",provider="outbox",status="recorded"} 4`,
	} {
		if !strings.Contains(metrics, line) {
			t.Errorf("metrics lack %s", line)
		}
	}
	out, err := s.cli("outbox", "--summary")
	if err != nil || !strings.Contains(out, "limit_country") || !strings.Contains(out, "REASON") {
		t.Errorf("outbox --summary for people: %v\n%s", err, out)
	}
}

// Phone verification's locale, custom_message and custom_code, each where the application
// allows it.
func TestPhoneVerificationOptions(t *testing.T) {
	s := startServer(t, "", "--rate-limit", "off", "--limit-number-sends", "off")
	start := func(extra url.Values) response {
		v := url.Values{"via": {"sms"}, "phone_number": {"2015550123"}, "country_code": {"1"}}
		for k, vs := range extra {
			v[k] = vs
		}
		return s.post("/protected/json/phones/verification/start", v)
	}
	check := func(code string) response {
		return s.get("/protected/json/phones/verification/check?country_code=1&phone_number=2015550123&verification_code=" + code)
	}
	for _, tc := range []struct{ locale, word string }{
		{"es", "código"}, {"pt-BR", "código"}, {"fr", "code de vérification"}, {"de", "Bestätigungscode"},
		{"ja", "認証コード"}, {"xx", "verification code"},
	} {
		if r := start(url.Values{"locale": {tc.locale}}); r.status != 200 {
			t.Fatalf("start in %s: %s", tc.locale, r.raw)
		}
		if body := s.lastMessage().Body; !strings.Contains(body, tc.word) {
			t.Errorf("locale %s: %q lacks %q", tc.locale, body, tc.word)
		}
	}

	if r := start(url.Values{"custom_message": {"Acme: {{code}} is your code.\nCall +1 900 now"}}); r.status != 200 {
		t.Fatalf("custom message: %s", r.raw)
	}
	body := s.lastMessage().Body
	code := codeIn(t, body)
	if !strings.HasPrefix(body, "Acme: "+code+" is your code.") || strings.Contains(body, "\n") {
		t.Fatalf("custom message body %q", body)
	}
	if r := check(code); r.status != 200 {
		t.Fatalf("check: %s", r.raw)
	}

	expectError(t, start(url.Values{"custom_code": {"424242"}}), 400, "60004")
	s.cliJSON(&appJSON{}, "app", "update", "1", "--custom-codes", "--custom-messages=false")
	expectError(t, start(url.Values{"custom_message": {"hi {{code}}"}}), 400, "60091")
	for _, bad := range []string{"12a4", "123", "12345678901"} {
		expectError(t, start(url.Values{"custom_code": {bad}}), 400, "60004")
	}
	if r := start(url.Values{"custom_code": {"424242"}}); r.status != 200 {
		t.Fatalf("custom code: %s", r.raw)
	}
	if code := codeIn(t, s.lastMessage().Body); code != "424242" {
		t.Fatalf("sent %s, want the custom code", code)
	}
	expectError(t, check("000000"), 401, "60022")
	if r := check("424242"); r.status != 200 {
		t.Fatalf("check custom code: %s", r.raw)
	}
}

// An application can set its own limits, tighter or looser than the server's, and go back to
// the server's.
func TestApplicationLimits(t *testing.T) {
	s := startServer(t, "", "--rate-limit", "off", "--limit-sends", "5/10m", "--limit-number-sends", "off")
	id := itoa64(s.register(s.key, "a@example.com", "2015550123"))
	var shown appJSON
	s.cliJSON(&shown, "app", "update", "1", "--limit", "app_sends=2/1h", "--limit", "sends=off")
	if shown.Limits["app_sends"] != "2/1h" || shown.Limits["sends"] != "off" || len(shown.Limits) != 2 {
		t.Fatalf("limits: %+v", shown.Limits)
	}
	for i := range 3 {
		r := s.get("/protected/json/sms/" + id + "?force=true")
		if i < 2 && r.status != 200 {
			t.Fatalf("send %d: %s", i+1, r.raw)
		}
		if i == 2 {
			expectError(t, r, 429, "60003")
		}
	}
	// Back to the server's: five per user per ten minutes (sends were not counted per user while
	// the application had that limit off), no application limit.
	shown = appJSON{}
	s.cliJSON(&shown, "app", "update", "1", "--limit", "app_sends=default", "--limit", "sends=default")
	if len(shown.Limits) != 0 {
		t.Fatalf("limits after default: %+v", shown.Limits)
	}
	for range 5 {
		if r := s.get("/protected/json/sms/" + id + "?force=true"); r.status != 200 {
			t.Fatalf("under the server's limit: %s", r.raw)
		}
	}
	expectError(t, s.get("/protected/json/sms/"+id+"?force=true"), 429, "60003")
	for _, bad := range []string{"nonsense=1/1h", "app_sends", "app_sends=lots"} {
		if _, err := s.cli("app", "update", "1", "--limit", bad); err == nil {
			t.Errorf("--limit %s accepted", bad)
		}
	}
	out, _ := s.cli("app", "show", "1")
	if !strings.Contains(out, "limits:") || !strings.Contains(out, "the server's") {
		t.Errorf("app show:\n%s", out)
	}
}
