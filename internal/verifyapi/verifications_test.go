package verifyapi_test

import (
	"context"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/twofold-auth/twofold/internal/apps"
	"github.com/twofold-auth/twofold/internal/twofold"
)

const to = "+12015550123"

// wrongCode is a code of the same length that is not code.
func wrongCode(code string) string {
	b := []byte(code)
	b[0] = '0' + (b[0]-'0'+1)%10
	return string(b)
}

func TestVerificationBruteForceOverTheWire(t *testing.T) {
	s := newServer(t)
	svc := s.newService(url.Values{"FriendlyName": {"Shop"}})
	base := "/v2/Services/" + svc
	a := s.call("POST", base+"/Verifications", url.Values{"To": {to}, "Channel": {"sms"}})
	if a.status != 201 || a.body["status"] != "pending" || a.body["valid"] != false || a.body["to"] != to || a.body["service_sid"] != svc {
		t.Fatalf("create: %d %s", a.status, a.raw)
	}
	ve := a.body["sid"].(string)
	code := s.code(to)
	if len(code) != 6 || !regexp.MustCompile(`^VE[0-9a-f]{32}$`).MatchString(ve) {
		t.Fatalf("code %q, sid %q", code, ve)
	}
	for i := 1; i <= 5; i++ {
		c := s.call("POST", base+"/VerificationCheck", url.Values{"To": {to}, "Code": {wrongCode(code)}})
		want := "pending"
		if i == 5 {
			want = "max_attempts_reached"
		}
		if c.status != 200 || c.body["status"] != want || c.body["valid"] != false || c.body["sid"] != ve {
			t.Fatalf("wrong code %d: %d %s", i, c.status, c.raw)
		}
	}
	wantError(t, "the right code sixth", s.call("POST", base+"/VerificationCheck", url.Values{"To": {to}, "Code": {code}}), 429, 60202)
	wantError(t, "the right code sixth, by sid", s.call("POST", base+"/VerificationCheck", url.Values{"VerificationSid": {ve}, "Code": {code}}), 429, 60202)
	if f := s.call("GET", base+"/Verifications/"+ve, nil); f.status != 200 || f.body["status"] != "max_attempts_reached" {
		t.Errorf("fetch: %d %s", f.status, f.raw)
	}
	wantError(t, "a send after five wrong checks", s.call("POST", base+"/Verifications", url.Values{"To": {to}, "Channel": {"sms"}}), 429, 60202)
	// Canceled, it is gone.
	if c := s.call("POST", base+"/Verifications/"+ve, url.Values{"Status": {"canceled"}}); c.status != 200 || c.body["status"] != "canceled" {
		t.Fatalf("cancel: %d %s", c.status, c.raw)
	}
	wantError(t, "fetch canceled", s.call("GET", base+"/Verifications/"+ve, nil), 404, 20404)
	wantError(t, "cancel again", s.call("POST", base+"/Verifications/"+ve, url.Values{"Status": {"canceled"}}), 404, 20404)
}

func TestVerificationLifecycleOverTheWire(t *testing.T) {
	s := newServer(t)
	svc := s.newService(url.Values{"FriendlyName": {"Shop"}, "CodeLength": {"7"}, "LookupEnabled": {"true"}})
	base := "/v2/Services/" + svc
	first := s.call("POST", base+"/Verifications", url.Values{"To": {to}, "Channel": {"sms"}, "Locale": {"es"}})
	code := s.code(to)
	lookup, _ := first.body["lookup"].(map[string]any)
	if carrier, _ := lookup["carrier"].(map[string]any); carrier["type"] != "mobile" {
		t.Errorf("lookup: %v", first.body["lookup"])
	}
	// Sent again within its life: the same verification, the same code, by call this time.
	for i := 2; i <= 5; i++ {
		ch := "sms"
		if i == 3 {
			ch = "call"
		}
		a := s.call("POST", base+"/Verifications", url.Values{"To": {to}, "Channel": {ch}})
		attempts, _ := a.body["send_code_attempts"].([]any)
		if a.status != 201 || a.body["sid"] != first.body["sid"] || len(attempts) != i || a.body["channel"] != ch || s.code(to) != code {
			t.Fatalf("send %d: %d %s", i, a.status, a.raw)
		}
		last := attempts[i-1].(map[string]any)
		if !regexp.MustCompile(`^VL[0-9a-f]{32}$`).MatchString(last["attempt_sid"].(string)) || last["channel"] != ch ||
			!regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$`).MatchString(last["time"].(string)) {
			t.Errorf("attempt %d: %v", i, last)
		}
	}
	wantError(t, "a sixth send", s.call("POST", base+"/Verifications", url.Values{"To": {to}, "Channel": {"sms"}}), 429, 60203)

	ve := first.body["sid"].(string)
	c := s.call("POST", base+"/VerificationCheck", url.Values{"VerificationSid": {ve}, "Code": {code}})
	if c.status != 200 || c.body["status"] != "approved" || c.body["valid"] != true || c.body["to"] != to {
		t.Fatalf("the right code: %d %s", c.status, c.raw)
	}
	// Approved, it is gone: its code works no more, by number or by sid.
	wantError(t, "the code again", s.call("POST", base+"/VerificationCheck", url.Values{"To": {to}, "Code": {code}}), 404, 20404)
	wantError(t, "the code again by sid", s.call("POST", base+"/VerificationCheck", url.Values{"VerificationSid": {ve}, "Code": {code}}), 404, 20404)
	wantError(t, "fetch approved", s.call("GET", base+"/Verifications/"+ve, nil), 404, 20404)
	// The number had its five codes in ten minutes: a new verification waits (the send limit
	// the Authy API shares).
	wantError(t, "a sixth code to the number", s.call("POST", base+"/Verifications", url.Values{"To": {to}, "Channel": {"sms"}}), 429, 60212)

	// Email, and approval by the application.
	e := s.call("POST", base+"/Verifications", url.Values{"To": {"ana@example.com"}, "Channel": {"email"}})
	if e.status != 201 || e.body["channel"] != "email" || len(e.body["lookup"].(map[string]any)) != 0 {
		t.Fatalf("email: %d %s", e.status, e.raw)
	}
	ok := s.call("POST", base+"/Verifications/"+e.body["sid"].(string), url.Values{"Status": {"approved"}})
	if ok.status != 200 || ok.body["status"] != "approved" || ok.body["valid"] != true {
		t.Errorf("approve: %d %s", ok.status, ok.raw)
	}
}

func TestVerificationParallelChecksOverTheWire(t *testing.T) {
	s := newServer(t)
	base := "/v2/Services/" + s.newService(url.Values{"FriendlyName": {"Shop"}})
	s.call("POST", base+"/Verifications", url.Values{"To": {to}, "Channel": {"sms"}})
	code := s.code(to)
	var mu sync.Mutex
	statuses := map[int]int{}
	approved := 0
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range 16 {
		guess := wrongCode(code)
		if i%4 == 0 {
			guess = code
		}
		wg.Go(func() {
			<-start
			a := s.call("POST", base+"/VerificationCheck", url.Values{"To": {to}, "Code": {guess}})
			mu.Lock()
			defer mu.Unlock()
			statuses[a.status]++
			if a.body["status"] == "approved" {
				approved++
			}
		})
	}
	close(start)
	wg.Wait()
	// However the race goes: at most five checks judged, at most one approval, the rest
	// refused (60202 once out of checks, 20404 once approved).
	if approved > 1 || statuses[200] > 5 || statuses[200]+statuses[429]+statuses[404] != 16 {
		t.Errorf("16 parallel checks: statuses %v, %d approved", statuses, approved)
	}
}

func TestVerificationRefusalsOverTheWire(t *testing.T) {
	s := newServer(t)
	base := "/v2/Services/" + s.newService(url.Values{"FriendlyName": {"Shop"}})
	for _, c := range []struct {
		name         string
		form         url.Values
		status, code int
	}{
		{"no To", url.Values{"Channel": {"sms"}}, 400, 60200},
		{"no Channel", url.Values{"To": {to}}, 400, 60200},
		{"whatsapp", url.Values{"To": {to}, "Channel": {"whatsapp"}}, 400, 60200},
		{"fax", url.Values{"To": {to}, "Channel": {"fax"}}, 400, 60200},
		{"a national number", url.Values{"To": {"2015550123"}, "Channel": {"sms"}}, 400, 60200},
		{"PSD2", url.Values{"To": {to}, "Channel": {"sms"}, "Amount": {"10"}, "Payee": {"Acme"}}, 400, 60200},
		{"RateLimits not JSON", url.Values{"To": {to}, "Channel": {"sms"}, "RateLimits": {"ip=1"}}, 400, 60200},
		{"a custom code not enabled", url.Values{"To": {to}, "Channel": {"sms"}, "CustomCode": {"1234"}}, 400, 60200},
		{"SMS to a landline", url.Values{"To": {"+442079460018"}, "Channel": {"sms"}}, 400, 60205},
	} {
		wantError(t, c.name, s.call("POST", base+"/Verifications", c.form), c.status, c.code)
	}
	if n, _ := s.outbox.List(context.Background(), twofold.MessageFilter{}); len(n) != 0 {
		t.Errorf("refused starts sent %d messages", len(n))
	}
	for _, c := range []struct {
		name         string
		form         url.Values
		status, code int
	}{
		{"no Code", url.Values{"To": {to}}, 400, 60200},
		{"neither To nor VerificationSid", url.Values{"Code": {"123456"}}, 400, 60200},
		{"a malformed VerificationSid", url.Values{"Code": {"123456"}, "VerificationSid": {"VE1"}}, 400, 60200},
		{"nothing pending", url.Values{"To": {to}, "Code": {"123456"}}, 404, 20404},
		{"an unknown VerificationSid", url.Values{"VerificationSid": {"VE" + strings.Repeat("a", 32)}, "Code": {"123456"}}, 404, 20404},
	} {
		wantError(t, c.name, s.call("POST", base+"/VerificationCheck", c.form), c.status, c.code)
	}
	wantError(t, "Status pending", s.call("POST", base+"/Verifications/VE"+strings.Repeat("a", 32), url.Values{"Status": {"pending"}}), 400, 60200)
	wantError(t, "a verification of an unknown service", s.call("POST", "/v2/Services/VA"+strings.Repeat("a", 32)+"/Verifications",
		url.Values{"To": {to}, "Channel": {"sms"}}), 404, 20404)

	// A custom code, where both the service and the application allow it.
	on := true
	if _, err := s.apps.Update(context.Background(), s.app.ID, apps.Update{CustomCodes: &on}); err != nil {
		t.Fatal(err)
	}
	custom := "/v2/Services/" + s.newService(url.Values{"FriendlyName": {"Shop"}, "CustomCodeEnabled": {"true"}})
	if a := s.call("POST", custom+"/Verifications", url.Values{"To": {to}, "Channel": {"sms"}, "CustomCode": {"8642"},
		"CustomFriendlyName": {"Acme Pay"}}); a.status != 201 || s.code(to) != "8642" {
		t.Fatalf("a custom code: %d %s", a.status, a.raw)
	}
}
