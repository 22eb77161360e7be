package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os/exec"
	"strings"
	"testing"
	"time"

	twilioclient "github.com/twilio/twilio-go/client"

	"github.com/twofold-auth/twofold/internal/apps"
	"github.com/twofold-auth/twofold/internal/callback"
	"github.com/twofold-auth/twofold/internal/egress"
	"github.com/twofold-auth/twofold/internal/otp"
	"github.com/twofold-auth/twofold/internal/twofold"
)

// hookDelivery is one webhook delivery as a customer's endpoint got it.
type hookDelivery struct {
	path      string
	signature string
	params    map[string]string
}

// newHookReceiver is a customer's endpoint for Verify webhooks on loopback: it answers 204 and
// passes on what it got.
func newHookReceiver(t *testing.T) (*httptest.Server, chan hookDelivery) {
	got := make(chan hookDelivery, 16)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil || r.Method != http.MethodPost ||
			r.Header.Get("Content-Type") != "application/x-www-form-urlencoded" {
			t.Errorf("webhook: %s %v %q", r.Method, err, r.Header.Get("Content-Type"))
		}
		params := map[string]string{}
		for k := range r.PostForm {
			params[k] = r.PostForm.Get(k)
		}
		got <- hookDelivery{path: r.URL.RequestURI(), signature: r.Header.Get(callback.TwilioSignatureHeader), params: params}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(srv.Close)
	return srv, got
}

func nextDelivery(t *testing.T, got chan hookDelivery) hookDelivery {
	t.Helper()
	select {
	case d := <-got:
		return d
	case <-time.After(20 * time.Second):
		t.Fatal("no webhook arrived")
	}
	return hookDelivery{}
}

// nodeValidates asks the official twilio package's validateRequest (validate-webhook.js)
// whether a delivery is Twilio's.
func nodeValidates(t *testing.T, node, token, hookURL string, d hookDelivery) bool {
	t.Helper()
	return validates(t, node, "validate-webhook.js", token, hookURL, d)
}

// validates runs a compat script that judges one delivery with an official library's validator
// and prints "valid" or "invalid".
func validates(t *testing.T, interpreter, script, token, hookURL string, d hookDelivery) bool {
	t.Helper()
	params, err := json.Marshal(d.params)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, interpreter, script)
	cmd.Dir = compatDir
	cmd.Env = append(cmd.Environ(), "NODE_OPTIONS=", "TWILIO_AUTH_TOKEN="+token, "WEBHOOK_URL="+hookURL,
		"WEBHOOK_SIGNATURE="+d.signature, "WEBHOOK_PARAMS="+string(params))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", script, err, out)
	}
	return strings.TrimSpace(string(out)) == "valid"
}

// TestVerifyWebhooks: a service's webhooks through the Verify API, and the events they get,
// emitted as factor and challenge code emits them (apps.VerifyEvents): delivered form-encoded
// and signed so that the official libraries' validators accept them (twilio-go's here, the npm
// package's validateRequest in TestVerifyWebhooksNodeValidateRequest), a tampered one refused.
func TestVerifyWebhooks(t *testing.T) {
	s, events, acct := startWebhookServer(t)
	rc, got := newHookReceiver(t)
	svc := createService(t, s, acct, "Hooks")
	base := "/v2/Services/" + svc + "/Webhooks"
	hookURL := rc.URL + "/verify/events?tenant=7"
	status, hook := s.twilioCall("POST", base, acct.AccountSID, acct.AuthToken, url.Values{"FriendlyName": {"Factors"},
		"EventTypes": {"factor.created", "challenge.approved"}, "WebhookUrl": {hookURL}})
	if status != 201 || !strings.HasPrefix(hook["sid"].(string), "YW") || hook["status"] != "enabled" || hook["version"] != "v2" ||
		hook["webhook_url"] != hookURL || hook["service_sid"] != svc || hook["account_sid"] != acct.AccountSID ||
		fmt.Sprint(hook["event_types"]) != "[factor.created challenge.approved]" || hook["url"] != s.url+base+"/"+hook["sid"].(string) {
		t.Fatalf("create: %d %v", status, hook)
	}
	// Others that must not get factor.created: disabled, or subscribed to another event.
	for _, form := range []url.Values{
		{"FriendlyName": {"Off"}, "EventTypes": {"*"}, "WebhookUrl": {rc.URL + "/off"}, "Status": {"disabled"}},
		{"FriendlyName": {"Deletions"}, "EventTypes": {"factor.deleted"}, "WebhookUrl": {rc.URL + "/deleted"}, "Version": {"v1"}},
	} {
		if status, body := s.twilioCall("POST", base, acct.AccountSID, acct.AuthToken, form); status != 201 {
			t.Fatalf("create %v: %d %v", form, status, body)
		}
	}

	n, err := events.Emit(context.Background(), 1, strings.TrimPrefix(svc, "VA"), twofold.VerifyEventFactorCreated,
		map[string]string{"entity_identity": "ff483d1ff591898a9942916050d2ca3f", "factor_sid": "YF" + strings.Repeat("0", 32), "factor_type": "push"})
	if err != nil || n != 1 {
		t.Fatalf("Emit factor.created: %d %v", n, err)
	}
	d := nextDelivery(t, got)
	p := d.params
	if d.path != "/verify/events?tenant=7" || p["type"] != "factor.created" || p["account_sid"] != acct.AccountSID || p["service_sid"] != svc ||
		p["factor_type"] != "push" || p["entity_identity"] != "ff483d1ff591898a9942916050d2ca3f" || len(p["uuid"]) != 32 || d.signature == "" {
		t.Fatalf("delivery: %+v", d)
	}
	v := twilioclient.NewRequestValidator(acct.AuthToken)
	if !v.Validate(hookURL, d.params, d.signature) {
		t.Error("twilio-go's RequestValidator refuses the delivery")
	}
	tampered := map[string]string{}
	for k, val := range d.params {
		tampered[k] = val
	}
	tampered["factor_type"] = "totp"
	if v.Validate(hookURL, tampered, d.signature) {
		t.Error("twilio-go's RequestValidator accepts a tampered delivery")
	}
	other := twilioclient.NewRequestValidator("0123456789abcdef0123456789abcdef")
	if other.Validate(hookURL, d.params, d.signature) {
		t.Error("another auth token validates the delivery")
	}

	if n, err := events.Emit(context.Background(), 1, strings.TrimPrefix(svc, "VA"), twofold.VerifyEventFactorDeleted, nil); err != nil || n != 1 {
		t.Fatalf("Emit factor.deleted: %d %v", n, err)
	}
	if d := nextDelivery(t, got); d.path != "/deleted" || d.params["type"] != "factor.deleted" {
		t.Fatalf("factor.deleted went to %+v", d)
	}
	if n, err := events.Emit(context.Background(), 1, strings.TrimPrefix(svc, "VA"), twofold.VerifyEventChallengeDenied, nil); err != nil || n != 0 {
		t.Fatalf("an event nobody wants: %d %v", n, err)
	}
	if _, err := events.Emit(context.Background(), 1, strings.TrimPrefix(svc, "VA"), "factor.eaten", nil); err == nil {
		t.Error("an event that does not exist was emitted")
	}
	if _, err := events.Emit(context.Background(), 2, strings.TrimPrefix(svc, "VA"), twofold.VerifyEventFactorCreated, nil); err == nil {
		t.Error("an event of another application's service was emitted")
	}
	var nilEvents *apps.Service
	if n, err := nilEvents.Emit(context.Background(), 1, strings.TrimPrefix(svc, "VA"), twofold.VerifyEventFactorCreated, nil); n != 0 || err != nil {
		t.Errorf("a nil emitter: %d %v", n, err)
	}

	// Fetch, update, list by pages, delete.
	self := base + "/" + hook["sid"].(string)
	if status, body := s.twilioCall("GET", self, acct.AccountSID, acct.AuthToken, nil); status != 200 || body["friendly_name"] != "Factors" {
		t.Fatalf("fetch: %d %v", status, body)
	}
	status, upd := s.twilioCall("POST", self, acct.AccountSID, acct.AuthToken, url.Values{"Status": {"disabled"}, "EventTypes": {"*"}})
	if status != 200 || upd["status"] != "disabled" || fmt.Sprint(upd["event_types"]) != "[*]" || upd["friendly_name"] != "Factors" {
		t.Fatalf("update: %d %v", status, upd)
	}
	var sids []string
	for next := base + "?PageSize=2"; next != ""; {
		status, page := s.twilioCall("GET", strings.TrimPrefix(next, s.url), acct.AccountSID, acct.AuthToken, nil)
		if status != 200 {
			t.Fatalf("list: %d %v", status, page)
		}
		for _, h := range page["webhooks"].([]any) {
			sids = append(sids, h.(map[string]any)["sid"].(string))
		}
		next, _ = page["meta"].(map[string]any)["next_page_url"].(string)
	}
	if len(sids) != 3 || sids[0] != hook["sid"] {
		t.Fatalf("listed %v", sids)
	}
	if status, _ := s.twilioCall("DELETE", self, acct.AccountSID, acct.AuthToken, nil); status != 204 {
		t.Fatalf("delete: %d", status)
	}
	if status, e := s.twilioCall("GET", self, acct.AccountSID, acct.AuthToken, nil); status != 404 || e["code"] != 20404.0 {
		t.Fatalf("after delete: %d %v", status, e)
	}

	// Bad input: Twilio's 60200 or 21xxx shape, never a 500.
	for _, form := range []url.Values{
		{"EventTypes": {"*"}, "WebhookUrl": {hookURL}},
		{"FriendlyName": {"x"}, "EventTypes": {"factor.eaten"}, "WebhookUrl": {hookURL}},
		{"FriendlyName": {"x"}, "EventTypes": {"*"}, "WebhookUrl": {"ftp://example.com/"}},
		{"FriendlyName": {"x"}, "EventTypes": {"*"}, "WebhookUrl": {"https://user:pw@example.com/"}},
		{"FriendlyName": {"x"}, "EventTypes": {"*"}, "WebhookUrl": {hookURL}, "Status": {"paused"}},
		{"FriendlyName": {"x"}, "EventTypes": {"*"}, "WebhookUrl": {hookURL}, "Version": {"v3"}},
	} {
		if status, e := s.twilioCall("POST", base, acct.AccountSID, acct.AuthToken, form); status != 400 || e["code"] == nil {
			t.Errorf("%v: %d %v", form, status, e)
		}
	}

	// The audit trail names the webhooks' changes, never their URLs.
	out, err := s.cli("audit", "list", "--json")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"verify_webhook.created", "verify_webhook.updated", "verify_webhook.deleted"} {
		if !strings.Contains(out, want) {
			t.Errorf("the audit trail has no %s", want)
		}
	}
	if strings.Contains(out, "tenant=7") {
		t.Error("the audit trail holds a webhook's URL")
	}
}

// TestVerifyWebhooksNodeValidateRequest: the official twilio npm package's validateRequest
// accepts a delivered webhook, and refuses it tampered or judged with another token.
func TestVerifyWebhooksNodeValidateRequest(t *testing.T) {
	node := compatNode(t, "twilio")
	s, events, acct := startWebhookServer(t)
	rc, got := newHookReceiver(t)
	svc := createService(t, s, acct, "Node")
	hookURL := rc.URL + "/hook?a=1&b=two"
	if status, body := s.twilioCall("POST", "/v2/Services/"+svc+"/Webhooks", acct.AccountSID, acct.AuthToken,
		url.Values{"FriendlyName": {"Node"}, "EventTypes": {"*"}, "WebhookUrl": {hookURL}}); status != 201 {
		t.Fatalf("create: %d %v", status, body)
	}
	if _, err := events.Emit(context.Background(), 1, strings.TrimPrefix(svc, "VA"), twofold.VerifyEventChallengeApproved,
		map[string]string{"challenge_sid": "YC" + strings.Repeat("1", 32), "challenge_status": "approved", "details": "Pay €10 & more"}); err != nil {
		t.Fatal(err)
	}
	d := nextDelivery(t, got)
	if !nodeValidates(t, node, acct.AuthToken, hookURL, d) {
		t.Errorf("validateRequest refuses the delivery %+v", d)
	}
	d.params["challenge_status"] = "denied"
	if nodeValidates(t, node, acct.AuthToken, hookURL, d) {
		t.Error("validateRequest accepts a tampered delivery")
	}
	d.params["challenge_status"] = "approved"
	if nodeValidates(t, node, "0123456789abcdef0123456789abcdef", hookURL, d) {
		t.Error("validateRequest accepts the delivery under another token")
	}
}

// TestVerifyWebhooksAttacker: a webhook at a private address is refused when it would be
// delivered, as OneTouch callbacks are, unless the operator allows the host; another account's
// service's webhooks are out of reach.
func TestVerifyWebhooksAttacker(t *testing.T) {
	attempts := make(chan callback.Attempt, 16)
	var events apps.VerifyEvents
	s := startServerEnv(t, "", func(e *Env) {
		e.OnCallback = func(a callback.Attempt) { attempts <- a }
		e.OnVerifyEvents = func(v apps.VerifyEvents) { events = v }
	}, "--rate-limit", "off") // no --callback-allow-hosts: loopback is private
	var acct twilioJSON
	s.cliJSON(&acct, "app", "twilio-credentials", "create", "1")
	rc, got := newHookReceiver(t)
	svc := createService(t, s, acct, "Victim")
	status, hook := s.twilioCall("POST", "/v2/Services/"+svc+"/Webhooks", acct.AccountSID, acct.AuthToken,
		url.Values{"FriendlyName": {"Inside"}, "EventTypes": {"*"}, "WebhookUrl": {rc.URL + "/internal"}})
	if status != 201 {
		t.Fatalf("create: %d %v", status, hook)
	}
	if n, err := events.Emit(context.Background(), 1, strings.TrimPrefix(svc, "VA"), twofold.VerifyEventFactorVerified, nil); err != nil || n != 1 {
		t.Fatalf("Emit: %d %v", n, err)
	}
	select {
	case a := <-attempts:
		if a.OK || !egress.IsRefused(a.Err) || a.Callback.WebhookID == 0 {
			t.Fatalf("attempt %+v; want refused", a)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("no webhook attempt")
	}
	select {
	case d := <-got:
		t.Fatalf("the receiver on loopback got a webhook: %+v", d)
	default:
	}

	// Another application, with its own account: the victim's service and webhook are 20404.
	var other struct {
		ID int64 `json:"app_id"`
	}
	s.cliJSON(&other, "app", "create", "--name", "Attacker")
	var mallory twilioJSON
	s.cliJSON(&mallory, "app", "twilio-credentials", "create", fmt.Sprint(other.ID))
	self := "/v2/Services/" + svc + "/Webhooks/" + hook["sid"].(string)
	for _, c := range []struct {
		method, path string
		form         url.Values
	}{
		{"GET", self, nil},
		{"POST", self, url.Values{"WebhookUrl": {"https://attacker.example/steal"}}},
		{"DELETE", self, nil},
		{"GET", "/v2/Services/" + svc + "/Webhooks", nil},
		{"POST", "/v2/Services/" + svc + "/Webhooks", url.Values{"FriendlyName": {"Mine"}, "EventTypes": {"*"},
			"WebhookUrl": {"https://attacker.example/steal"}}},
	} {
		if status, e := s.twilioCall(c.method, c.path, mallory.AccountSID, mallory.AuthToken, c.form); status != 404 || e["code"] != 20404.0 {
			t.Errorf("%s %s by another account: %d %v", c.method, c.path, status, e)
		}
	}
	if status, body := s.twilioCall("GET", self, acct.AccountSID, acct.AuthToken, nil); status != 200 || body["webhook_url"] != rc.URL+"/internal" {
		t.Errorf("the victim's webhook changed: %d %v", status, body)
	}
}

// startWebhookServer starts a server whose callbacks may reach loopback, with the first
// application's Verify account, and returns its entry point for events.
func startWebhookServer(t *testing.T) (*server, apps.VerifyEvents, twilioJSON) {
	var events apps.VerifyEvents
	s := startServerEnv(t, "", func(e *Env) { e.OnVerifyEvents = func(v apps.VerifyEvents) { events = v } },
		"--rate-limit", "off", "--callback-allow-hosts", "127.0.0.1")
	if events == nil {
		t.Fatal("the server gave no entry point for Verify events")
	}
	var acct twilioJSON
	s.cliJSON(&acct, "app", "twilio-credentials", "create", "1")
	return s, events, acct
}

func createService(t *testing.T, s *server, acct twilioJSON, name string) string {
	t.Helper()
	status, svc := s.twilioCall("POST", "/v2/Services", acct.AccountSID, acct.AuthToken, url.Values{"FriendlyName": {name}})
	if status != 201 {
		t.Fatalf("create a service: %d %v", status, svc)
	}
	return svc["sid"].(string)
}

// TestVerifyWebhooksFromFactors: the events of real factors reach the service's webhooks: a TOTP
// factor made through the Verify API (factor.created), verified by its first code
// (factor.verified), each delivery signed so that twilio-go's validator accepts it.
func TestVerifyWebhooksFromFactors(t *testing.T) {
	s, _, acct := startWebhookServer(t)
	rc, got := newHookReceiver(t)
	svc := createService(t, s, acct, "Factors")
	hookURL := rc.URL + "/verify"
	if status, body := s.twilioCall("POST", "/v2/Services/"+svc+"/Webhooks", acct.AccountSID, acct.AuthToken, url.Values{
		"FriendlyName": {"All"}, "EventTypes": {"*"}, "WebhookUrl": {hookURL}}); status != 201 {
		t.Fatalf("webhook: %d %v", status, body)
	}
	entity := "/v2/Services/" + svc + "/Entities/webhook-entity-01"
	status, factor := s.twilioCall("POST", entity+"/Factors", acct.AccountSID, acct.AuthToken, url.Values{
		"FriendlyName": {"Phone"}, "FactorType": {"totp"}})
	if status != 201 {
		t.Fatalf("factor: %d %v", status, factor)
	}
	v := twilioclient.NewRequestValidator(acct.AuthToken)
	d := nextDelivery(t, got)
	if d.params["type"] != "factor.created" || d.params["factor_sid"] != factor["sid"] || d.params["entity_identity"] != "webhook-entity-01" ||
		d.params["factor_type"] != "totp" || !v.Validate(hookURL, d.params, d.signature) {
		t.Fatalf("factor.created delivery: %+v", d)
	}
	secret, err := otp.DecodeSecret(factor["binding"].(map[string]any)["secret"].(string))
	if err != nil {
		t.Fatal(err)
	}
	code := otp.TOTP{Secret: secret}.Code(time.Now().Add(-30 * time.Second))
	if status, body := s.twilioCall("POST", entity+"/Factors/"+factor["sid"].(string), acct.AccountSID, acct.AuthToken,
		url.Values{"AuthPayload": {code}}); status != 200 || body["status"] != "verified" {
		t.Fatalf("verify the factor: %d %v", status, body)
	}
	if d := nextDelivery(t, got); d.params["type"] != "factor.verified" || d.params["factor_sid"] != factor["sid"] || !v.Validate(hookURL, d.params, d.signature) {
		t.Fatalf("factor.verified delivery: %+v", d)
	}
}
