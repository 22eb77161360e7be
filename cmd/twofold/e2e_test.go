package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/twofold-auth/twofold/internal/otp"
)

func TestFirstStartIsCallable(t *testing.T) {
	s := startServer(t, "")
	if !strings.Contains(s.logs.String(), "twofold app show 1 --show-key") {
		t.Fatalf("first start did not say how to get the API key:\n%s", s.logs.String())
	}
	if strings.Contains(s.logs.String(), s.key) {
		t.Fatal("the API key was written to the logs")
	}
	r := s.get("/protected/json/app/details")
	if r.status != 200 || r.body["message"] != "Application information." {
		t.Fatalf("app details: %d %s", r.status, r.raw)
	}
	s.stop()

	again := startServer(t, s.dataDir)
	if strings.Contains(again.logs.String(), "--show-key") {
		t.Fatal("the first-start message was shown again on the second start")
	}
	if again.key != s.key {
		t.Fatal("the first application's key changed across restarts")
	}
}

func TestAPIKeyLocations(t *testing.T) {
	s := startServer(t, "")
	tests := []struct {
		name   string
		method string
		path   string
		header string
		body   any
		status int
	}{
		{"header", "GET", "/protected/json/app/details", s.key, nil, 200},
		{"query", "GET", "/protected/json/app/details?api_key=" + s.key, "", nil, 200},
		{"form body", "POST", "/protected/json/users/new", "", url.Values{"api_key": {s.key}, "user[email]": {"a@example.com"}, "user[cellphone]": {"2015550123"}, "user[country_code]": {"1"}}, 200},
		{"form body on GET", "GET", "/protected/json/app/details", "", url.Values{"api_key": {s.key}}, 200},
		{"json body", "POST", "/protected/json/users/new", "", `{"api_key":"` + s.key + `","user":{"email":"b@example.com","cellphone":"2015550124","country_code":1}}`, 200},
		{"missing", "GET", "/protected/json/app/details", "", nil, 401},
		{"wrong", "GET", "/protected/json/app/details", strings.Repeat("A", 32), nil, 401},
		{"malformed", "GET", "/protected/json/app/details", "short", nil, 401},
		{"wrong header beats right query", "GET", "/protected/json/app/details?api_key=" + s.key, strings.Repeat("B", 32), nil, 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := s.do(tt.method, tt.path, tt.header, tt.body)
			if tt.status == 401 {
				expectError(t, r, 401, "60001")
				if r.body["message"] != "Invalid API key" {
					t.Fatalf("message %q", r.body["message"])
				}
				return
			}
			if r.status != tt.status || r.body["success"] != true {
				t.Fatalf("%d %s", r.status, r.raw)
			}
		})
	}
}

func TestUsersAPI(t *testing.T) {
	s := startServer(t, "")
	id := s.register(s.key, "alice@example.com", "201-555-0123")
	if again := s.register(s.key, "alice@example.com", "(201) 555.0123"); again != id {
		t.Fatalf("same phone registered twice: ids %d and %d", id, again)
	}

	// authy-client sends JSON with a numeric country code, and a JSON body on GET.
	r := s.do("POST", "/protected/json/users/new", s.key, `{"user":{"cellphone":"2015550124","country_code":1,"email":"bob@example.com"}}`)
	if r.status != 200 || r.body["message"] != "User created successfully." {
		t.Fatalf("JSON register: %s", r.raw)
	}
	r = s.do("GET", fmt.Sprintf("/protected/json/users/%d/status", id), s.key, `{"user_ip":"1.2.3.4"}`)
	st := r.body["status"].(map[string]any)
	if r.status != 200 || r.body["message"] != "User status." || st["authy_id"] != float64(id) ||
		st["phone_number"] != "XXX-XXX-0123" || st["country_code"] != float64(1) || st["confirmed"] != false ||
		st["registered"] != false || st["has_hard_token"] != false || st["devices"] == nil {
		t.Fatalf("status: %s", r.raw)
	}

	r = s.post("/protected/json/users/new", url.Values{"user[email]": {"not an email"}, "user[cellphone]": {"12"}, "user[country_code]": {"1"}})
	expectError(t, r, 400, "60027")
	if r.body["message"] != "User was not valid" || r.body["cellphone"] != "is invalid" || r.body["email"] != "is invalid" {
		t.Fatalf("validation error: %s", r.raw)
	}

	r = s.post(fmt.Sprintf("/protected/json/users/%d/update", id), url.Values{"email": {"alice2@example.com"}})
	if r.status != 200 {
		t.Fatalf("update: %s", r.raw)
	}
	expectError(t, s.get(fmt.Sprintf("/protected/json/users/%d/phone_number", id)), 400, "60154") // until enabled
	if _, err := s.cli("app", "update", "1", "--migration-tools"); err != nil {
		t.Fatal(err)
	}
	r = s.get(fmt.Sprintf("/protected/json/users/%d/phone_number", id))
	if r.body["phone_number"] != "2015550123" || r.body["e164"] != "+12015550123" || r.body["country_code"] != "1" {
		t.Fatalf("phone number: %s", r.raw)
	}
	r = s.do("POST", fmt.Sprintf("/protected/json/users/%d/register_activity", id), s.key,
		`{"data":{"reason":"x y"},"type":"password_reset","user_ip":"1.2.3.4"}`)
	if r.status != 200 || r.body["message"] != "Activity was created." {
		t.Fatalf("activity: %s", r.raw)
	}
	expectError(t, s.post(fmt.Sprintf("/protected/json/users/%d/register_activity", id), url.Values{"type": {"party"}}), 400, "60004")

	// Every delete spelling in use by a client library works.
	for _, path := range []string{"/protected/json/users/%d/remove", "/protected/json/users/%d/delete", "/protected/json/users/delete/%d"} {
		uid := s.register(s.key, "del@example.com", "2015550199")
		r := s.post(fmt.Sprintf(path, uid), nil)
		if r.status != 200 || r.body["success"] != true {
			t.Fatalf("%s: %s", path, r.raw)
		}
		expectError(t, s.get(fmt.Sprintf("/protected/json/users/%d/status", uid)), 404, "60026")
	}
	expectError(t, s.get("/protected/json/users/tony/status"), 404, "60026")
	expectError(t, s.post("/protected/json/users/999999/remove", nil), 404, "60026")
}

func TestCodesOverHTTP(t *testing.T) {
	s := startServer(t, "")
	id := s.register(s.key, "carol@example.com", "2015550123")
	r := s.get(fmt.Sprintf("/protected/json/sms/%d?force=true&action=login&action_message=Login%%20code", id))
	if r.status != 200 || r.body["message"] != "SMS token was sent" || r.body["cellphone"] != "+1-XXX-XXX-XX23" {
		t.Fatalf("sms: %s", r.raw)
	}
	if _, ok := r.body["ignored"]; ok {
		t.Fatal("a sent SMS must not carry ignored (authy-python tests its presence)")
	}
	code := s.lastCode("+12015550123")
	if len(code) != 7 {
		t.Fatalf("code %q is not the default 7 digits", code)
	}
	expectError(t, s.get(fmt.Sprintf("/protected/json/verify/%s/%d", code, id)), 401, "60020") // action missing
	r = s.get(fmt.Sprintf("/protected/json/verify/%s/%d?action=login", code, id))
	if r.status != 200 || !strings.Contains(r.raw, `"token":"is valid"`) || !strings.Contains(r.raw, `"success":"true"`) ||
		r.body["message"] != "Token is valid." {
		t.Fatalf("verify: %s", r.raw)
	}
	r = s.get(fmt.Sprintf("/protected/json/verify/%s/%d?action=login", code, id))
	expectError(t, r, 401, "60019")
	if !strings.Contains(r.body["message"].(string), "Token was used recently") {
		t.Fatalf("reuse message: %s", r.raw)
	}
	expectError(t, s.get(fmt.Sprintf("/protected/json/verify/abcdefg/%d", id)), 401, "60020")
	expectError(t, s.get("/protected/json/verify/1234567/987654"), 404, "60016")

	r = s.get(fmt.Sprintf("/protected/json/call/%d?force=true", id))
	if r.status != 200 || r.body["message"] != "Call started..." {
		t.Fatalf("call: %s", r.raw)
	}
	r = s.post(fmt.Sprintf("/protected/json/email/%d", id), nil)
	if r.status != 200 || r.body["email"] != "carol@example.com" || !strings.HasPrefix(r.body["email_id"].(string), "EM") {
		t.Fatalf("email: %s", r.raw)
	}
	emailCode := s.lastCode("carol@example.com")
	if r := s.get(fmt.Sprintf("/protected/json/verify/%s/%d", emailCode, id)); r.status != 200 {
		t.Fatalf("email code: %s", r.raw)
	}

	// Generic authenticator: the QR image is served without the key; the URI works in any app.
	r = s.post(fmt.Sprintf("/protected/json/users/%d/secret", id), url.Values{"label": {"carol"}, "qr_size": {"200"}})
	if r.status != 200 {
		t.Fatalf("secret: %s", r.raw)
	}
	res, err := s.client.Get(r.body["qr_code"].(string))
	if err != nil {
		t.Fatal(err)
	}
	png, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || !bytes.HasPrefix(png, []byte("\x89PNG")) || res.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("QR image: %d %q", res.StatusCode, res.Header)
	}
	key, err := otp.ParseURI(r.body["uri"].(string))
	if err != nil {
		t.Fatal(err)
	}
	totp := key.Code(time.Now())
	if r := s.get(fmt.Sprintf("/protected/json/verify/%s/%d", totp, id)); r.status != 200 {
		t.Fatalf("TOTP: %s", r.raw)
	}
	expectError(t, s.get(fmt.Sprintf("/protected/json/verify/%s/%d", totp, id)), 401, "60019")

	// With an authenticator, SMS is skipped unless forced, as Authy did.
	r = s.get(fmt.Sprintf("/protected/json/sms/%d", id))
	if r.status != 200 || r.body["ignored"] != true || r.body["device"] != "authenticator" {
		t.Fatalf("ignored sms: %s", r.raw)
	}
	resp404, _ := s.client.Get(s.url + "/qr/" + strings.Repeat("0", 48) + ".png")
	resp404.Body.Close()
	if resp404.StatusCode != 404 {
		t.Fatalf("unknown QR link: %d", resp404.StatusCode)
	}
}

func TestTenantIsolationOverHTTP(t *testing.T) {
	s := startServer(t, "")
	var other struct {
		AppID  int64  `json:"app_id"`
		APIKey string `json:"api_key"`
	}
	s.cliJSON(&other, "app", "create", "--name", "Other")
	s.cliJSON(&appJSON{}, "app", "update", fmt.Sprint(other.AppID), "--migration-tools") // its exports answer, for its own users
	id := s.register(s.key, "dave@example.com", "2015550123")
	s.get(fmt.Sprintf("/protected/json/sms/%d?force=true", id))
	code := s.lastCode("+12015550123")
	for _, c := range []struct{ method, path, code string }{
		{"GET", "/protected/json/users/%d/status", "60026"},
		{"GET", "/protected/json/users/%d/phone_number", "60026"},
		{"GET", "/protected/json/users/%d/secret/export", "60026"},
		{"GET", "/protected/json/sms/%d?force=true", "60026"},
		{"POST", "/protected/json/users/%d/secret", "60026"},
		{"POST", "/protected/json/users/%d/update?email=x@example.com", "60026"},
		{"POST", "/protected/json/users/%d/remove", "60026"},
		{"GET", "/protected/json/verify/" + code + "/%d", "60016"},
	} {
		status := 404
		expectError(t, s.do(c.method, fmt.Sprintf(c.path, id), other.APIKey, nil), status, c.code)
	}
	// The other app's own registration of the same phone is a different user.
	if otherID := s.register(other.APIKey, "dave@example.com", "2015550123"); otherID == id {
		t.Fatal("two applications share a user")
	}
	if r := s.get(fmt.Sprintf("/protected/json/verify/%s/%d", code, id)); r.status != 200 {
		t.Fatalf("own app after the other's attempts: %s", r.raw)
	}
}

func TestMalformedRequests(t *testing.T) {
	s := startServer(t, "")
	id := s.register(s.key, "eve@example.com", "2015550123")
	huge := strings.Repeat("a", 300<<10)
	tests := []struct {
		name   string
		method string
		path   string
		ctype  string
		body   string
		status int
		code   string
	}{
		{"unknown route", "GET", "/protected/json/nothing", "", "", 404, "60000"},
		{"xml format", "GET", "/protected/xml/app/details", "", "", 404, "60000"},
		{"wrong method", "DELETE", "/protected/json/users/new", "", "", 405, "60002"},
		{"GET on a POST route", "GET", "/protected/json/users/1/remove", "", "", 405, "60002"},
		{"unknown user action", "POST", "/protected/json/users/1/explode", "", "", 404, "60000"},
		{"broken JSON", "POST", "/protected/json/users/new", "application/json", `{"user":`, 400, "60005"},
		{"JSON array", "POST", "/protected/json/users/new", "application/json", `[1,2]`, 400, "60005"},
		{"deep JSON", "POST", "/protected/json/users/new", "application/json", strings.Repeat(`{"a":`, 50) + "1" + strings.Repeat("}", 50), 400, "60005"},
		{"huge body", "POST", "/protected/json/users/new", "application/x-www-form-urlencoded", "x=" + huge, 413, "60002"},
		{"bad percent encoding", "POST", "/protected/json/users/new", "application/x-www-form-urlencoded", "user[email]=%zz", 400, "60005"},
		{"bad brackets", "POST", "/protected/json/users/new", "application/x-www-form-urlencoded", "user[email=a&user]]=b&[]=c", 400, "60027"},
		{"type conflict", "POST", "/protected/json/users/new", "application/json", `{"user":"a string"}`, 400, "60027"},
		{"number as email", "POST", "/protected/json/users/new", "application/json", `{"user":{"email":5,"cellphone":["x"],"country_code":{}}}`, 400, "60027"},
		{"negative id", "GET", "/protected/json/users/-1/status", "", "", 404, "60026"},
		{"huge id", "GET", "/protected/json/users/99999999999999999999999/status", "", "", 404, "60026"},
		{"non-numeric token", "GET", fmt.Sprintf("/protected/json/verify/12ab567/%d", id), "", "", 401, "60020"},
		{"long token", "GET", fmt.Sprintf("/protected/json/verify/%s/%d", strings.Repeat("1", 40), id), "", "", 401, "60020"},
		{"bad force", "GET", fmt.Sprintf("/protected/json/sms/%d?force=maybe", id), "", "", 400, "60004"},
		{"bad qr size", "POST", fmt.Sprintf("/protected/json/users/%d/secret?qr_size=big", id), "", "", 400, "60004"},
		{"activity data not a hash", "POST", fmt.Sprintf("/protected/json/users/%d/register_activity?type=banned&data=x", id), "", "", 400, "60004"},
		{"long action", "GET", fmt.Sprintf("/protected/json/sms/%d?force=true&action=%s", id, strings.Repeat("a", 300)), "", "", 400, "60004"},
		{"unknown country", "POST", "/protected/json/users/new?user[email]=a@b.co&user[cellphone]=2015550123&user[country_code]=999", "", "", 400, "60027"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(tt.method, s.url+tt.path, strings.NewReader(tt.body))
			req.Header.Set("X-Authy-API-Key", s.key)
			if tt.ctype != "" {
				req.Header.Set("Content-Type", tt.ctype)
			}
			res, err := s.client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			raw, _ := io.ReadAll(res.Body)
			res.Body.Close()
			r := response{status: res.StatusCode, header: res.Header, raw: string(raw)}
			if err := json.Unmarshal(raw, &r.body); err != nil {
				t.Fatalf("not JSON (%d): %q", res.StatusCode, raw)
			}
			expectError(t, r, tt.status, tt.code)
		})
	}
	// A doubled leading slash (base URL with a trailing slash) still routes.
	if r := s.get("//protected/json/app/details"); r.status != 200 {
		t.Fatalf("double slash: %s", r.raw)
	}
}

func TestLimitsAnswer429(t *testing.T) {
	s := startServer(t, "", "--rate-limit", "off", "--limit-sends", "2/10m", "--limit-failures", "3/15m")
	id := s.register(s.key, "frank@example.com", "2015550123")
	for range 2 {
		if r := s.get(fmt.Sprintf("/protected/json/sms/%d?force=true", id)); r.status != 200 {
			t.Fatalf("send: %s", r.raw)
		}
	}
	r := s.get(fmt.Sprintf("/protected/json/sms/%d?force=true", id))
	expectError(t, r, 429, "60003")
	if r.header.Get("Retry-After") == "" {
		t.Fatal("429 without Retry-After")
	}
	code := s.lastCode("+12015550123")
	for range 3 {
		expectError(t, s.get(fmt.Sprintf("/protected/json/verify/%s/%d", wrongCode(code), id)), 401, "60020")
	}
	expectError(t, s.get(fmt.Sprintf("/protected/json/verify/%s/%d", code, id)), 429, "60003")

	limited := startServer(t, "", "--rate-limit", "3/1h")
	for range 3 {
		if r := limited.get("/protected/json/app/details"); r.status != 200 {
			t.Fatalf("within rate: %s", r.raw)
		}
	}
	expectError(t, limited.get("/protected/json/app/details"), 429, "60003")
	metrics := limited.do("GET", "/metrics", "", nil).raw
	if !strings.Contains(metrics, `twofold_rate_limited_total{limit="api_key"} 1`) {
		t.Fatalf("rate limit not in metrics:\n%s", grep(metrics, "rate_limited"))
	}
}

func wrongCode(code string) string {
	b := []byte(code)
	b[0] = '0' + (b[0]-'0'+1)%10
	return string(b)
}

func grep(text, substr string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, substr) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

func TestRestartLosesNothing(t *testing.T) {
	s := startServer(t, "")
	id := s.register(s.key, "gina@example.com", "2015550123")
	s.get(fmt.Sprintf("/protected/json/sms/%d?force=true", id))
	code := s.lastCode("+12015550123")
	r := s.post(fmt.Sprintf("/protected/json/users/%d/secret", id), nil)
	key, err := otp.ParseURI(r.body["uri"].(string))
	if err != nil {
		t.Fatal(err)
	}
	totp := key.Code(time.Now())
	if r := s.get(fmt.Sprintf("/protected/json/verify/%s/%d", totp, id)); r.status != 200 {
		t.Fatalf("TOTP: %s", r.raw)
	}
	s.stop()

	s = startServer(t, s.dataDir)
	if r := s.get(fmt.Sprintf("/protected/json/verify/%s/%d", code, id)); r.status != 200 {
		t.Fatalf("code sent before the restart: %s", r.raw)
	}
	expectError(t, s.get(fmt.Sprintf("/protected/json/verify/%s/%d", totp, id)), 401, "60019")
	if out, _ := s.cli("outbox", "--to", "+12015550123"); !strings.Contains(out, code) {
		t.Fatalf("outbox lost the message:\n%s", out)
	}
	st := s.get(fmt.Sprintf("/protected/json/users/%d/status", id)).body["status"].(map[string]any)
	if st["confirmed"] != true || st["registered"] != true {
		t.Fatalf("user state after restart: %v", st)
	}
}

func TestHealthAndMetrics(t *testing.T) {
	s := startServer(t, "")
	if r := s.do("GET", "/healthz", "", nil); r.status != 200 || r.body["status"] != "ok" {
		t.Fatalf("healthz: %d %s", r.status, r.raw)
	}
	id := s.register(s.key, "hank@example.com", "2015550123")
	s.get(fmt.Sprintf("/protected/json/sms/%d?force=true", id))
	s.get(fmt.Sprintf("/protected/json/verify/%s/%d", s.lastCode("+12015550123"), id))
	s.get(fmt.Sprintf("/protected/json/verify/1111111/%d", id))
	m := s.do("GET", "/metrics", "", nil).raw
	for _, want := range []string{
		`twofold_http_requests_total{code="200",route="GET /protected/json/sms/{id}"} 1`,
		`twofold_http_requests_total{code="401",route="GET /protected/json/verify/{token}/{id}"} 1`,
		`twofold_verifications_total{outcome="success"} 1`,
		`twofold_verifications_total{outcome="invalid"} 1`,
		`twofold_messages_total{channel="sms",provider="outbox",status="recorded"} 1`,
		`twofold_http_request_duration_seconds_bucket{route="POST /protected/json/users/new"`,
	} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if strings.Contains(m, fmt.Sprintf("/users/%d/", id)) {
		t.Error("a raw path with an id became a metric label")
	}
}

func TestGracefulShutdownFinishesInFlight(t *testing.T) {
	s := startServer(t, "")
	pr, pw := io.Pipe()
	req, _ := http.NewRequest("POST", s.url+"/protected/json/users/new", pr)
	req.Header.Set("X-Authy-API-Key", s.key)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	type result struct {
		status int
		err    error
	}
	done := make(chan result, 1)
	go func() {
		res, err := s.client.Do(req)
		if err != nil {
			done <- result{err: err}
			return
		}
		res.Body.Close()
		done <- result{status: res.StatusCode}
	}()
	if _, err := pw.Write([]byte("user[email]=ivy@example.com&")); err != nil {
		t.Fatal(err)
	}
	// Wait until the server is serving it: the in-flight gauge counts it beside /metrics itself.
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(s.do("GET", "/metrics", "", nil).raw, "twofold_http_requests_in_flight 2"); {
		if time.Now().After(deadline) {
			t.Fatal("the request never reached the server")
		}
	}
	s.cancel()
	s.cancel = nil
	// Wait until the listener is closed (shutdown has begun), then finish the request.
	for deadline := time.Now().Add(10 * time.Second); ; {
		c, err := net.DialTimeout("tcp", strings.TrimPrefix(s.url, "http://"), time.Second)
		if err != nil {
			break
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatal("listener still open after shutdown began")
		}
	}
	pw.Write([]byte("user[cellphone]=2015550123&user[country_code]=1"))
	pw.Close()
	if r := <-done; r.err != nil || r.status != 200 {
		t.Fatalf("in-flight request: %+v", r)
	}
	if err := <-s.done; err != nil {
		t.Fatalf("shutdown: %v", err)
	}
}
