package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/twofold-auth/twofold/client"
)

// The client's side of the wire: what it sends, and how it reads answers, including the odd
// ones Authy gave. Its calls against a real server are tested in cmd/twofold (TestGoClient).
func TestClientWire(t *testing.T) {
	type seen struct {
		method, path, query, ctype, key, body string
	}
	var last seen
	answer := `{"user":{"id":7},"success":true}`
	status := 200
	header := http.Header{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		last = seen{r.Method, r.URL.Path, r.URL.RawQuery, r.Header.Get("Content-Type"), r.Header.Get("X-Authy-API-Key"), string(body)}
		for k, v := range header {
			w.Header()[k] = v
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		io.WriteString(w, answer)
	}))
	defer srv.Close()
	c, err := client.New(srv.URL+"/twofold/", "KEY")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	id, err := c.RegisterUser(ctx, client.NewUser{Email: "a+b@example.com", Phone: "201 555 0123", CountryCode: "1"})
	form, _ := url.ParseQuery(last.body)
	if err != nil || id != 7 || last.method != "POST" || last.path != "/twofold/protected/json/users/new" ||
		last.ctype != "application/x-www-form-urlencoded" || last.key != "KEY" || form.Get("user[email]") != "a+b@example.com" ||
		form.Get("user[cellphone]") != "201 555 0123" || form.Get("user[country_code]") != "1" {
		t.Fatalf("RegisterUser = %d, %v; sent %+v", id, err, last)
	}

	answer = `{"message":"SMS token was sent","cellphone":"+1-XXX-XXX-XX23","success":true}`
	if _, err := c.RequestSMS(ctx, 7, client.SendOptions{Force: true, Action: "pay", ActionMessage: "a & b", Locale: "es"}); err != nil {
		t.Fatal(err)
	}
	q, _ := url.ParseQuery(last.query)
	if last.method != "GET" || last.path != "/twofold/protected/json/sms/7" || q.Get("force") != "true" || q.Get("action") != "pay" ||
		q.Get("action_message") != "a & b" || q.Get("locale") != "es" || last.body != "" {
		t.Fatalf("RequestSMS sent %+v", last)
	}

	for _, tc := range []struct {
		name, answer string
		status       int
		retry        string
		want         client.Error
	}{
		{"string code", `{"message":"Token is invalid","token":"is invalid","success":false,"errors":{"message":"Token is invalid"},"error_code":"60020"}`,
			401, "", client.Error{HTTPStatus: 401, Code: "60020", Message: "Token is invalid"}},
		{"numeric code", `{"message":"User not found.","error_code":60026}`, 404, "", client.Error{HTTPStatus: 404, Code: "60026", Message: "User not found."}},
		{"limit", `{"message":"Too many requests","error_code":"60003"}`, 429, "42", client.Error{HTTPStatus: 429, Code: "60003", Message: "Too many requests", RetryAfter: 42 * time.Second}},
		{"200 with success false", `{"message":"Token is invalid","success":"false","error_code":"60020"}`, 200, "", client.Error{HTTPStatus: 200, Code: "60020", Message: "Token is invalid"}},
		{"not JSON", `<html>bad gateway</html>`, 502, "", client.Error{HTTPStatus: 502, Message: "<html>bad gateway</html>"}},
	} {
		answer, status = tc.answer, tc.status
		header = http.Header{}
		if tc.retry != "" {
			header.Set("Retry-After", tc.retry)
		}
		err := c.Verify(ctx, 7, "1234567", client.VerifyOptions{})
		var e *client.Error
		if !errors.As(err, &e) || *e != tc.want {
			t.Errorf("%s: %#v, want %#v", tc.name, err, tc.want)
		}
	}
	status, answer = 200, `{"message":"Token is valid.","token":"is valid","success":"true"}`
	if err := c.Verify(ctx, 7, "1234567", client.VerifyOptions{Force: true}); err != nil || last.path != "/twofold/protected/json/verify/1234567/7" || last.query != "force=true" {
		t.Fatalf("Verify = %v, sent %+v", err, last)
	}

	answer = `{"approval_request":{"uuid":"u-1"},"success":true}`
	req, err := c.CreateApprovalRequest(ctx, 7, client.ApprovalRequest{Message: "Log in?", Details: map[string]string{"IP": "192.0.2.1"}, SecondsToExpire: 60})
	form, _ = url.ParseQuery(last.body)
	if err != nil || req.UUID != "u-1" || last.path != "/twofold/onetouch/json/users/7/approval_requests" || form.Get("message") != "Log in?" ||
		form.Get("details[IP]") != "192.0.2.1" || form.Get("seconds_to_expire") != "60" {
		t.Fatalf("CreateApprovalRequest = %+v, %v; sent %+v", req, err, last)
	}

	answer = `{"approval_request":{"uuid":"u-1","status":"expired","reason":"closed"},"success":true}`
	closed, err := c.CloseApprovalRequest(ctx, "u-1")
	if err != nil || closed.Status != "expired" || closed.Reason != "closed" || last.method != "POST" ||
		last.path != "/twofold/onetouch/json/approval_requests/u-1/close" || last.key != "KEY" {
		t.Fatalf("CloseApprovalRequest = %+v, %v; sent %+v", closed, err, last)
	}
	for _, bad := range []string{"", "../../app/details", "u-1?x=1", "a#b", "%2e"} {
		if _, err := c.CloseApprovalRequest(ctx, bad); !client.IsCode(err, client.CodeNoRequest) {
			t.Errorf("CloseApprovalRequest(%q): %v", bad, err)
		}
	}
	status, answer = 409, `{"message":"Approval request was already answered: it is approved.","success":false,"error_code":"60079"}`
	if _, err := c.CloseApprovalRequest(ctx, "u-2"); !client.IsCode(err, client.CodeNotPending) {
		t.Fatalf("closing an answered request: %v", err)
	}
	status, answer = 200, `{"registration_token":"tfr_abc","registration_url":"https://2fa.example.com/authenticator/#register=tfr_abc&app=Shop","expires_at":"2026-05-06T07:18:09Z","message":"Registration token created.","success":true}`
	link, err := c.CreateRegistrationLink(ctx, 7)
	form, _ = url.ParseQuery(last.body)
	if err != nil || link.Token != "tfr_abc" || link.URL != "https://2fa.example.com/authenticator/#register=tfr_abc&app=Shop" ||
		!link.ExpiresAt.Equal(time.Date(2026, 5, 6, 7, 18, 9, 0, time.UTC)) || last.method != "POST" ||
		last.path != "/twofold/protected/json/sdk/registrations" || form.Get("authy_id") != "7" {
		t.Fatalf("CreateRegistrationLink = %+v, %v; sent %+v", link, err, last)
	}

	for _, bad := range []string{"", "ftp://x", "/relative", "http://"} {
		if _, err := client.New(bad, "KEY"); err == nil {
			t.Errorf("New(%q) accepted", bad)
		}
	}
	if _, err := client.New(srv.URL, ""); err == nil {
		t.Error("New accepted an empty key")
	}
}

// The registration token is the tutorials' JWT: a standard library reads it with the API key.
func TestRegistrationJWT(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	tok, err := client.RegistrationJWT("KEY", client.RegistrationClaims{AppID: 3, AppName: "Shop", CustomUserID: "u-9", AuthyID: 12}, now)
	if err != nil {
		t.Fatal(err)
	}
	claims := jwt.MapClaims{}
	_, err = jwt.NewParser(jwt.WithValidMethods([]string{"HS256"}), jwt.WithTimeFunc(func() time.Time { return now })).
		ParseWithClaims(tok, claims, func(*jwt.Token) (any, error) { return []byte("KEY"), nil })
	if err != nil {
		t.Fatal(err)
	}
	got, _ := json.Marshal(claims)
	want := `{"context":{"authy_app_id":3,"authy_id":12,"custom_user_id":"u-9"},"exp":1800000300,"iat":1800000000,"iss":"Shop"}`
	if string(got) != want {
		t.Fatalf("claims %s\nwant   %s", got, want)
	}
	if _, err := jwt.Parse(tok, func(*jwt.Token) (any, error) { return []byte("OTHER"), nil }); err == nil {
		t.Fatal("the token verifies with another key")
	}
	if q := client.RegistrationQR(tok); !strings.HasPrefix(q, "authy://account?token=eyJ") {
		t.Fatalf("QR content %q", q)
	}
	if _, err := client.RegistrationJWT("KEY", client.RegistrationClaims{AppID: 3}, now); err == nil {
		t.Fatal("a token without a custom user id")
	}
}
