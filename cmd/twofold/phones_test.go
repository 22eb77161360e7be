package main

import (
	"net/url"
	"regexp"
	"strings"
	"testing"
)

func TestPhoneVerification(t *testing.T) {
	s := startServer(t, "", "--rate-limit", "off", "--limit-failures", "3/15m")
	start := func(form url.Values) response {
		t.Helper()
		return s.post("/protected/json/phones/verification/start", form)
	}
	check := func(code string) response {
		t.Helper()
		// node-authy sends a form body on this GET; the harness sends url.Values as a form.
		return s.do("GET", "/protected/json/phones/verification/check", s.key,
			url.Values{"phone_number": {"201-555-0123"}, "country_code": {"1"}, "verification_code": {code}})
	}
	expectError(t, check("1234"), 404, "60023")

	r := start(url.Values{"via": {"sms"}, "phone_number": {"201-555-0123"}, "country_code": {"1"}})
	if r.status != 200 || r.body["message"] != "Text message sent to +1 201-555-0123." || r.body["uuid"] == "" ||
		r.body["seconds_to_expire"] != float64(599) || r.body["is_ported"] != false {
		t.Fatalf("start: %s", r.raw)
	}
	code := s.lastCode("+12015550123")
	if len(code) != 4 {
		t.Fatalf("default code length: %q", code)
	}
	if r := s.get("/protected/json/phones/verification/status?phone_number=2015550123&country_code=1"); r.body["status"] != "pending" {
		t.Fatalf("status: %s", r.raw)
	}
	expectError(t, check(wrongCode(code)), 401, "60022")
	if r := check(code); r.status != 200 || r.body["message"] != "Verification code is correct." {
		t.Fatalf("check: %s", r.raw)
	}
	expectError(t, check(code), 404, "60023") // single use
	if r := s.get("/protected/json/phones/verification/status?uuid=" + url.QueryEscape(r.body["uuid"].(string))); r.body["status"] != "verified" {
		t.Fatalf("status by uuid: %s", r.raw)
	}

	// A call with a longer code, and a custom message.
	r = start(url.Values{"via": {"call"}, "phone_number": {"2015550123"}, "country_code": {"1"}, "code_length": {"6"}})
	if r.body["message"] != "Call to +1 201-555-0123 initiated" {
		t.Fatalf("call: %s", r.raw)
	}
	if code := s.lastCode("+12015550123"); len(code) != 6 {
		t.Fatalf("code_length 6: %q", code)
	}
	start(url.Values{"via": {"sms"}, "phone_number": {"2015550123"}, "country_code": {"1"}, "custom_message": {"Shop: {{code}} is your code"}})
	var msgs []struct {
		Body string `json:"body"`
	}
	s.cliJSON(&msgs, "outbox", "--to", "+12015550123", "--limit", "1")
	if !regexp.MustCompile(`^Shop: \d{4} is your code$`).MatchString(msgs[0].Body) {
		t.Fatalf("custom message: %q", msgs[0].Body)
	}

	// Wrong tries are limited; the limit answers 429/60003.
	for range 3 {
		check("0000")
	}
	expectError(t, check("0000"), 429, "60003")

	for name, form := range map[string]url.Values{
		"no country code": {"via": {"sms"}, "phone_number": {"2015550123"}},
		"bad via":         {"via": {"pigeon"}, "phone_number": {"2015550123"}, "country_code": {"1"}},
		"short code":      {"via": {"sms"}, "phone_number": {"2015550123"}, "country_code": {"1"}, "code_length": {"3"}},
	} {
		t.Run(name, func(t *testing.T) { expectError(t, start(form), 400, "60004") })
	}
	r = start(url.Values{"via": {"sms"}, "phone_number": {"12"}, "country_code": {"1"}})
	expectError(t, r, 400, "60033")
	if r.body["message"] != "Phone number is invalid" {
		t.Fatalf("invalid phone: %s", r.raw)
	}
}

func TestPhoneInfo(t *testing.T) {
	s := startServer(t, "")
	r := s.get("/protected/json/phones/info?phone_number=7400123456&country_code=44")
	if r.status != 200 || r.body["type"] != "cellphone" || r.body["ported"] != false || r.body["provider"] != "" ||
		!regexp.MustCompile(`^Phone number information as of \d+-\d+-\d+ \d+:\d+:\d+ UTC$`).MatchString(r.body["message"].(string)) ||
		r.body["formats"].(map[string]any)["e164"] != "+447400123456" || !strings.Contains(r.body["source"].(string), "offline") {
		t.Fatalf("info: %s", r.raw)
	}
	if r := s.get("/protected/json/phones/info?phone_number=2079460018&country_code=44"); r.body["type"] != "landline" {
		t.Fatalf("landline: %s", r.raw)
	}
	expectError(t, s.get("/protected/json/phones/info?phone_number=1&country_code=44"), 400, "60033")
}

func TestSendingRefusals(t *testing.T) {
	s := startServer(t, "", "--rate-limit", "off")
	us := s.register(s.key, "us@example.com", "2015550123")
	r := s.do("POST", "/protected/json/users/new", s.key, `{"user":{"email":"uk@example.com","cellphone":"020 7946 0018","country_code":44}}`)
	landline := int64(r.body["user"].(map[string]any)["id"].(float64))

	// SMS cannot reach a landline; a call can.
	expectError(t, s.get("/protected/json/sms/"+itoa64(landline)+"?force=true"), 400, "60082")
	if r := s.get("/protected/json/call/" + itoa64(landline) + "?force=true"); r.status != 200 {
		t.Fatalf("call to a landline: %s", r.raw)
	}
	expectError(t, s.post("/protected/json/phones/verification/start",
		url.Values{"via": {"sms"}, "phone_number": {"2079460018"}, "country_code": {"44"}}), 400, "60082")

	// Premium-rate numbers, what toll fraud sends codes to, get neither SMS nor calls.
	for _, via := range []string{"sms", "call"} {
		for _, n := range []struct{ cc, number string }{{"1", "9002345678"}, {"44", "9012345678"}, {"33", "891123456"}} {
			expectError(t, s.post("/protected/json/phones/verification/start",
				url.Values{"via": {via}, "phone_number": {n.number}, "country_code": {n.cc}}), 400, "60033")
		}
	}
	var summary []struct{ Channel, Reason string }
	s.cliJSON(&summary, "outbox", "--summary")
	premium := 0
	for _, c := range summary {
		if c.Reason == "premium_rate" {
			premium++
		}
	}
	if premium != 2 { // one row per channel
		t.Fatalf("premium-rate refusals in the summary: %+v", summary)
	}

	// An application limited to some countries refuses the others before sending anything.
	var shown appJSON
	s.cliJSON(&shown, "app", "update", "1", "--allowed-countries", "gb, ca")
	if strings.Join(shown.AllowedCountries, ",") != "GB,CA" {
		t.Fatalf("allowed countries: %+v", shown.AllowedCountries)
	}
	expectError(t, s.get("/protected/json/sms/"+itoa64(us)+"?force=true"), 400, "60013")
	expectError(t, s.post("/protected/json/phones/verification/start",
		url.Values{"via": {"sms"}, "phone_number": {"2015550123"}, "country_code": {"1"}}), 400, "60013")
	if r := s.get("/protected/json/call/" + itoa64(landline) + "?force=true"); r.status != 200 {
		t.Fatalf("call to an allowed country: %s", r.raw)
	}
	var msgs []struct{}
	s.cliJSON(&msgs, "outbox", "--to", "+12015550123")
	if len(msgs) != 0 {
		t.Fatalf("refused sends reached the outbox: %d", len(msgs))
	}
	if _, err := s.cli("app", "update", "1", "--allowed-countries", "ZZ"); err == nil {
		t.Fatal("an unknown country was accepted")
	}
	s.cliJSON(&shown, "app", "update", "1", "--allowed-countries", "")
	if len(shown.AllowedCountries) != 0 {
		t.Fatalf("clearing the list: %+v", shown.AllowedCountries)
	}
	if r := s.get("/protected/json/sms/" + itoa64(us) + "?force=true"); r.status != 200 {
		t.Fatalf("after clearing: %s", r.raw)
	}
}
