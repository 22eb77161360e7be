package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// The Verify API as twofold serve answers it, with credentials made by the CLI: the codes it
// sends are in twofold outbox, and a revoked key or rotated token stops at once.

// twilioCall sends a Verify API request with HTTP Basic credentials.
func (s *server) twilioCall(method, path, user, password string, form url.Values) (int, map[string]any) {
	s.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, s.url+path, body)
	if err != nil {
		s.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	req.SetBasicAuth(user, password)
	res, err := s.client.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	var out map[string]any
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &out); err != nil {
			s.t.Fatalf("%s %s: %d %q", method, path, res.StatusCode, raw)
		}
	}
	return res.StatusCode, out
}

func TestVerifyAPIWithCLICredentials(t *testing.T) {
	s := startServer(t, "", "--rate-limit", "off")
	var acct twilioJSON
	s.cliJSON(&acct, "app", "twilio-credentials", "create", "1")
	if !strings.HasPrefix(acct.AccountSID, "AC") || len(acct.AccountSID) != 34 || len(acct.AuthToken) != 32 || len(acct.APIKeys) != 0 {
		t.Fatalf("create: %+v", acct)
	}
	if _, err := s.cli("app", "twilio-credentials", "create", "1"); err == nil || !strings.Contains(err.Error(), "rotate") {
		t.Errorf("a second account: %v", err)
	}
	var key struct {
		AccountSID string `json:"account_sid"`
		twilioKeyJSON
	}
	s.cliJSON(&key, "app", "twilio", "create-key", "1", "--name", "backend")
	if key.AccountSID != acct.AccountSID || !strings.HasPrefix(key.SID, "SK") || len(key.Secret) != 32 || key.Name != "backend" {
		t.Fatalf("create-key: %+v", key)
	}
	var shown twilioJSON
	s.cliJSON(&shown, "app", "twilio-credentials", "show", "1")
	if shown.AccountSID != acct.AccountSID || shown.AuthToken != "" || len(shown.APIKeys) != 1 || shown.APIKeys[0].Secret != "" {
		t.Fatalf("show: %+v", shown)
	}
	text, err := s.cli("app", "twilio-credentials", "show", "1")
	if err != nil || strings.Contains(text, acct.AuthToken) || !strings.Contains(text, key.SID) {
		t.Fatalf("show as text: %v\n%s", err, text)
	}

	status, svc := s.twilioCall("POST", "/v2/Services", key.SID, key.Secret, url.Values{"FriendlyName": {"Shop"}})
	if status != 201 {
		t.Fatalf("create a service with the API key: %d %v", status, svc)
	}
	base := "/v2/Services/" + svc["sid"].(string)
	const to = "+12015550177"
	if status, v := s.twilioCall("POST", base+"/Verifications", acct.AccountSID, acct.AuthToken, url.Values{"To": {to}, "Channel": {"sms"}}); status != 201 {
		t.Fatalf("start: %d %v", status, v)
	}
	code := s.lastCode(to) // from twofold outbox, as a developer reads it
	if status, c := s.twilioCall("POST", base+"/VerificationCheck", acct.AccountSID, acct.AuthToken,
		url.Values{"To": {to}, "Code": {code}}); status != 200 || c["status"] != "approved" || c["valid"] != true {
		t.Fatalf("check: %d %v", status, c)
	}

	if _, err := s.cli("app", "twilio-credentials", "revoke-key", "1", key.SID); err != nil {
		t.Fatal(err)
	}
	if status, e := s.twilioCall("GET", "/v2/Services", key.SID, key.Secret, nil); status != 401 || e["code"] != 20003.0 {
		t.Errorf("a revoked key: %d %v", status, e)
	}
	var rotated twilioJSON
	s.cliJSON(&rotated, "app", "twilio-credentials", "rotate-token", "1")
	if rotated.AccountSID != acct.AccountSID || rotated.AuthToken == acct.AuthToken || len(rotated.AuthToken) != 32 {
		t.Fatalf("rotate: %+v", rotated)
	}
	if status, _ := s.twilioCall("GET", "/v2/Services", acct.AccountSID, acct.AuthToken, nil); status != 401 {
		t.Errorf("the token before rotation: %d", status)
	}
	if status, _ := s.twilioCall("GET", "/v2/Services", acct.AccountSID, rotated.AuthToken, nil); status != 200 {
		t.Errorf("the rotated token: %d", status)
	}
	if _, err := s.cli("app", "twilio-credentials", "rotate-token", "2"); err == nil {
		t.Error("rotating the token of an application that does not exist")
	}
	var other struct {
		ID int64 `json:"app_id"`
	}
	s.cliJSON(&other, "app", "create", "--name", "Other")
	if _, err := s.cli("app", "twilio-credentials", "rotate-token", "2"); err == nil || !strings.Contains(err.Error(), "create 2") {
		t.Errorf("rotating the token of an application without an account: %v", err)
	}
	// The audit trail names each change, never a secret.
	out, err := s.cli("audit", "list", "--json")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"twilio_credential.created", "twilio_credential.rotated", "twilio_credential.revoked", "verify_service.created",
		"verification.succeeded"} {
		if !strings.Contains(out, want) {
			t.Errorf("the audit trail has no %s", want)
		}
	}
	for _, secret := range []string{acct.AuthToken, key.Secret, rotated.AuthToken, code} {
		if strings.Contains(out, secret) {
			t.Errorf("the audit trail holds a secret")
		}
	}
}
