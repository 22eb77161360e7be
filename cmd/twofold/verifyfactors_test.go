package main

import (
	"encoding/json"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/twofold-auth/twofold/internal/audit"
)

// TestVerifyPushOnTwofoldAuthenticator: a user enrolled with Twofold's CLI authenticator (the
// Authy tutorial's QR link, with the customer's id) is a Verify entity whose device is a
// verified push factor; a Verify challenge of it is an approval request the authenticator
// answers like any other, and Verify reads the answer.
func TestVerifyPushOnTwofoldAuthenticator(t *testing.T) {
	s := startServer(t, "", "--rate-limit", "off")
	var acct twilioJSON
	s.cliJSON(&acct, "app", "twilio-credentials", "create", "1")
	call := func(method, path string, form url.Values) (int, map[string]any) {
		t.Helper()
		return s.twilioCall(method, path, acct.AccountSID, acct.AuthToken, form)
	}
	status, svc := call("POST", "/v2/Services", url.Values{"FriendlyName": {"Shop"}})
	if status != 201 {
		t.Fatalf("service: %d %v", status, svc)
	}
	const identity = "customer-user-0042"
	base := "/v2/Services/" + svc["sid"].(string) + "/Entities/" + identity

	a := newAuthenticator(t)
	var app appJSON
	s.cliJSON(&app, "app", "show", "1")
	now := time.Now()
	token := tutorialJWT(t, s.key, app.Name, strconv.FormatInt(app.AppID, 10), identity, now, now.Add(300*time.Second))
	var added accountJSON
	a.json(&added, "enrol", "authy://account?token="+token, "--server", s.url)

	status, entity := call("GET", base, nil)
	if status != 200 || entity["identity"] != identity {
		t.Fatalf("the enrolled user as an entity: %d %v", status, entity)
	}
	_, list := call("GET", base+"/Factors", nil)
	factors, _ := list["factors"].([]any)
	if len(factors) != 1 {
		t.Fatalf("factors: %v", list)
	}
	f := factors[0].(map[string]any)
	if f["factor_type"] != "push" || f["status"] != "verified" || f["config"].(map[string]any)["notification_platform"] != "twofold" {
		t.Fatalf("the device as a factor: %v", f)
	}
	fsid := f["sid"].(string)
	if status, again := call("GET", base+"/Factors", nil); status != 200 || len(again["factors"].([]any)) != 1 ||
		again["factors"].([]any)[0].(map[string]any)["sid"] != fsid {
		t.Fatalf("listed again: %v", again)
	}
	status, body := call("DELETE", base+"/Factors/"+fsid, nil)
	if status != 400 || body["code"] != float64(60200) {
		t.Fatalf("deleting a device's factor through Verify: %d %v", status, body)
	}

	challenge := func(message string) string {
		t.Helper()
		status, ch := call("POST", base+"/Challenges", url.Values{"FactorSid": {fsid}, "Details.Message": {message},
			"Details.Fields": {`{"label":"Amount","value":"42 EUR"}`}})
		if status != 201 || ch["status"] != "pending" {
			t.Fatalf("challenge: %d %v", status, ch)
		}
		return ch["sid"].(string)
	}
	// pendingUUID is what the authenticator sees: the device's pending approval request.
	phone := &device{token: a.open().Devices[0].AccessToken}
	pendingUUID := func(message string) string {
		t.Helper()
		r := phone.call(s, "GET", "/device/v1/approval_requests?status=pending", nil)
		var pending struct {
			ApprovalRequests []struct {
				UUID    string            `json:"uuid"`
				Message string            `json:"message"`
				Details map[string]string `json:"details"`
				Number  string            `json:"number"`
			} `json:"approval_requests"`
		}
		if err := json.Unmarshal([]byte(r.raw), &pending); err != nil || len(pending.ApprovalRequests) != 1 {
			t.Fatalf("the device's pending requests: %s", r.raw)
		}
		req := pending.ApprovalRequests[0]
		if req.Message != message || req.Details["Amount"] != "42 EUR" || req.Number != "" {
			t.Fatalf("the request the authenticator shows: %+v", req)
		}
		return req.UUID
	}

	ch := challenge("Pay 42 EUR to Shop?")
	status, body = call("POST", base+"/Challenges/"+ch+"/Notifications", url.Values{"Ttl": {"60"}})
	if status != 201 || body["challenge_sid"] != ch || body["ttl"] != float64(60) {
		t.Fatalf("notify: %d %v", status, body)
	}
	a.must("approve", pendingUUID("Pay 42 EUR to Shop?"))
	if _, got := call("GET", base+"/Challenges/"+ch, nil); got["status"] != "approved" || got["date_responded"] == nil {
		t.Fatalf("after the authenticator approved: %v", got)
	}
	status, body = call("POST", base+"/Challenges/"+ch+"/Notifications", nil)
	if status != 400 || body["code"] != float64(60200) {
		t.Fatalf("notify an answered challenge: %d %v", status, body)
	}

	ch = challenge("Sign in from Berlin?")
	a.must("deny", pendingUUID("Sign in from Berlin?"))
	_, denied := call("GET", base+"/Challenges?Status=denied", nil)
	if list := denied["challenges"].([]any); len(list) != 1 || list[0].(map[string]any)["sid"] != ch {
		t.Fatalf("denied challenges: %v", denied)
	}
	// A device's factor is answered by the device, not through the Verify API.
	ch = challenge("Again?")
	status, body = call("POST", base+"/Challenges/"+ch, url.Values{"AuthPayload": {"x.y.z"}})
	if status != 400 || body["code"] != float64(60200) {
		t.Fatalf("answering a device's challenge through Verify: %d %v", status, body)
	}

	// The audit trail has the factor made for the device and the challenges answered, the
	// application as their actor, the user as their subject.
	var entries []audit.Entry
	s.cliJSON(&entries, "audit", "list", "--action", "verify_factor.created")
	if len(entries) != 1 || entries[0].Actor != "api:app/1" || entries[0].UserID != added.AuthyID ||
		entries[0].Details["factor"] != fsid[2:] || entries[0].Details["device_id"] == "" {
		t.Errorf("verify_factor.created: %+v", entries)
	}
	for _, action := range []string{"verify_challenge.approved", "verify_challenge.denied"} {
		s.cliJSON(&entries, "audit", "list", "--action", action)
		if len(entries) != 1 || entries[0].Actor != "api:app/1" || entries[0].UserID != added.AuthyID {
			t.Errorf("%s: %+v", action, entries)
		}
	}
}
