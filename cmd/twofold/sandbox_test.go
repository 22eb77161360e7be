package main

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"testing"
)

// sandboxApp makes a sandbox application with `twofold app create --sandbox` and returns its id
// and API key.
func (s *server) sandboxApp(name string) (int64, string) {
	s.t.Helper()
	var a struct {
		AppID  int64  `json:"app_id"`
		APIKey string `json:"api_key"`
	}
	s.cliJSON(&a, "app", "create", "--name", name, "--sandbox")
	if a.AppID == 0 || a.APIKey == "" {
		s.t.Fatalf("app create --sandbox gave no id or key")
	}
	return a.AppID, a.APIKey
}

// TestSandboxPhoneNumbers: a sandbox application takes any 7 to 15 digits under a known calling
// code wherever a number comes in, as Authy's sandbox did (go-authy's sandbox test registered
// 432-123-1111, which no numbering plan has); a production application keeps the numbering
// plan's check.
func TestSandboxPhoneNumbers(t *testing.T) {
	s := startServer(t, "", "--rate-limit", "off")
	sandboxID, sandboxKey := s.sandboxApp("CI")
	// The phone export shows what a number was stored as; it answers only with migration tools on.
	if _, err := s.cli("app", "update", fmt.Sprint(sandboxID), "--migration-tools"); err != nil {
		t.Fatal(err)
	}
	apps := []struct {
		name    string
		key     string
		sandbox bool
	}{{"production", s.key, false}, {"sandbox", sandboxKey, true}}

	register := func(key, email, cellphone, cc string) response {
		t.Helper()
		return s.do("POST", "/protected/json/users/new", key,
			url.Values{"user[email]": {email}, "user[cellphone]": {cellphone}, "user[country_code]": {cc}})
	}
	numbers := []struct {
		name      string
		cellphone string
		cc        string
		inSandbox bool   // accepted by a sandbox application
		field     string // else the field reported
		text      string
	}{
		{"off the plan", "111-111-1111", "1", true, "cellphone", "is invalid"},
		{"go-authy's sandbox number", "432-123-1111", "1", true, "cellphone", "is invalid"},
		{"node-authy's, in Colombia", "825-589-8570", "57", true, "cellphone", "is invalid"},
		{"seven digits", "555 9302", "44", true, "cellphone", "is invalid"},
		{"fifteen digits", "123456789012345", "49", true, "cellphone", "is invalid"},
		{"six digits", "555-930", "1", false, "cellphone", "is invalid"},
		{"sixteen digits", "1234567890123456", "49", false, "cellphone", "is invalid"},
		{"letters", "555-CALL-NOW", "1", false, "cellphone", "is invalid"},
		{"unknown calling code", "2015550123", "999", false, "country_code", "is not supported"},
	}
	for _, app := range apps {
		for i, n := range numbers {
			r := register(app.key, fmt.Sprintf("n%d@example.com", i), n.cellphone, n.cc)
			if app.sandbox && n.inSandbox {
				if r.status != 200 {
					t.Errorf("%s app, %s: %s", app.name, n.name, r.raw)
				}
				continue
			}
			if r.status != 400 || r.body["error_code"] != "60027" || r.body[n.field] != n.text {
				t.Errorf("%s app, %s: want 400 60027 with %s %q: %s", app.name, n.name, n.field, n.text, r.raw)
			}
		}
	}

	// The same number a second time is the same user, as in production.
	first := register(sandboxKey, "a@example.com", "111-111-1111", "1")
	again := register(sandboxKey, "b@example.com", "1111111111", "1")
	if first.status != 200 || again.status != 200 {
		t.Fatalf("register a sandbox number: %s, %s", first.raw, again.raw)
	}
	id := first.body["user"].(map[string]any)["id"]
	if again.body["user"].(map[string]any)["id"] != id {
		t.Fatalf("the same sandbox number registered twice: %s then %s", first.raw, again.raw)
	}
	userPath := fmt.Sprintf("/protected/json/users/%v", id)

	// Codes go out to it (recorded only: a sandbox delivers nothing), and verify.
	if r := s.do("GET", "/protected/json/sms/"+fmt.Sprint(id)+"?force=true", sandboxKey, nil); r.status != 200 ||
		r.body["cellphone"] != "+1-XXX-XXX-XX11" {
		t.Fatalf("sms to a sandbox number: %s", r.raw)
	}
	code := s.lastCode("+11111111111")
	if r := s.do("GET", "/protected/json/verify/"+code+"/"+fmt.Sprint(id), sandboxKey, nil); r.status != 200 {
		t.Fatalf("verify the code sent to a sandbox number: %s", r.raw)
	}

	// A user's update takes any digits in a sandbox, the plan's numbers in production.
	if r := s.do("POST", userPath+"/update", sandboxKey, url.Values{"user[cellphone]": {"222-222-2222"}}); r.status != 200 {
		t.Fatalf("sandbox update: %s", r.raw)
	}
	if r := s.do("GET", userPath+"/phone_number", sandboxKey, nil); r.body["e164"] != "+12222222222" {
		t.Fatalf("after the sandbox update: %s", r.raw)
	}
	prod := s.register(s.key, "p@example.com", "2015550123")
	r := s.post(fmt.Sprintf("/protected/json/users/%d/update", prod), url.Values{"user[cellphone]": {"222-222-2222"}})
	if r.status != 400 || r.body["cellphone"] != "is invalid" {
		t.Fatalf("production update to a number off the plan: %s", r.raw)
	}

	// Phone verification and phone information, by the same rule.
	pv := url.Values{"via": {"sms"}, "phone_number": {"111-111-1111"}, "country_code": {"1"}}
	if r := s.do("POST", "/protected/json/phones/verification/start", sandboxKey, pv); r.status != 200 || r.body["success"] != true {
		t.Fatalf("sandbox phone verification start: %s", r.raw)
	}
	code = s.lastCode("+11111111111")
	check := url.Values{"phone_number": {"111-111-1111"}, "country_code": {"1"}, "verification_code": {code}}
	if r := s.do("GET", "/protected/json/phones/verification/check", sandboxKey, check); r.status != 200 {
		t.Fatalf("sandbox phone verification check: %s", r.raw)
	}
	expectError(t, s.post("/protected/json/phones/verification/start", pv), 400, "60033")
	info := "/protected/json/phones/info?phone_number=111-111-1111&country_code=1"
	if r := s.do("GET", info, sandboxKey, nil); r.status != 200 || r.body["valid"] != false ||
		r.body["formats"].(map[string]any)["e164"] != "+11111111111" {
		t.Fatalf("sandbox phone info: %s", r.raw)
	}
	expectError(t, s.get(info), 400, "60033")
	short := "/protected/json/phones/info?phone_number=12345&country_code=1"
	expectError(t, s.do("GET", short, sandboxKey, nil), 400, "60033")
}

// TestUserBlankFields: the texts Authy gave for blank fields of users/new (co-authy's
// sandbox-era fixtures, spec 2.1): email "is invalid and can't be blank", cellphone "is
// invalid", country_code "is invalid". Sandbox and production applications answer alike.
func TestUserBlankFields(t *testing.T) {
	s := startServer(t, "", "--rate-limit", "off")
	_, sandboxKey := s.sandboxApp("CI")
	tests := []struct {
		name   string
		form   url.Values
		fields map[string]string
	}{
		{"blank email", url.Values{"user[email]": {""}, "user[cellphone]": {"2015550123"}, "user[country_code]": {"1"}},
			map[string]string{"email": "is invalid and can't be blank"}},
		{"no email", url.Values{"user[cellphone]": {"2015550123"}, "user[country_code]": {"1"}},
			map[string]string{"email": "is invalid and can't be blank"}},
		{"bad email", url.Values{"user[email]": {"ada"}, "user[cellphone]": {"2015550123"}, "user[country_code]": {"1"}},
			map[string]string{"email": "is invalid"}},
		{"blank cellphone", url.Values{"user[email]": {"a@example.com"}, "user[cellphone]": {" "}, "user[country_code]": {"1"}},
			map[string]string{"cellphone": "is invalid"}},
		{"blank country_code", url.Values{"user[email]": {"a@example.com"}, "user[cellphone]": {"2015550123"}, "user[country_code]": {""}},
			map[string]string{"country_code": "is invalid"}},
		{"all blank", url.Values{"user[email]": {""}, "user[cellphone]": {""}, "user[country_code]": {""}},
			map[string]string{"email": "is invalid and can't be blank", "cellphone": "is invalid", "country_code": "is invalid"}},
	}
	for _, key := range []string{s.key, sandboxKey} {
		for _, tt := range tests {
			r := s.do("POST", "/protected/json/users/new", key, tt.form)
			expectError(t, r, 400, "60027")
			errs := r.body["errors"].(map[string]any)
			for _, f := range []string{"email", "cellphone", "country_code"} {
				want, wanted := tt.fields[f]
				if got, ok := r.body[f]; ok != wanted || (wanted && (got != want || errs[f] != want)) {
					t.Errorf("%s (sandbox %v): %s is %v, want %q: %s", tt.name, key == sandboxKey, f, got, want, r.raw)
				}
			}
		}
	}
}

// TestSandboxApprovals: in a sandbox application, an approval request for a user without a
// device is accepted and stays pending until its developer answers it with `twofold approval
// answer`, which queues the signed callback as a device's answer would. Production
// applications refuse such requests (60050), and the command refuses their requests.
func TestSandboxApprovals(t *testing.T) {
	rc := newReceiver(t)
	s := startServer(t, "", "--rate-limit", "off", "--callback-allow-hosts", "127.0.0.1")
	sandboxID, sandboxKey := s.sandboxApp("CI")
	otherID, _ := s.sandboxApp("CI 2")
	rc.key.Store(sandboxKey)
	if _, err := s.cli("app", "update", strconv.FormatInt(sandboxID, 10), "--callback-url", rc.srv.URL+"/authy/callback"); err != nil {
		t.Fatal(err)
	}
	ana := s.register(sandboxKey, "ana@example.com", "111-111-1111")
	bob := s.register(s.key, "bob@example.com", "2015550123")

	expectError(t, s.post(fmt.Sprintf("/onetouch/json/users/%d/approval_requests", bob), url.Values{"message": {"Login"}}), 400, "60050")
	uuid := s.createRequest(sandboxKey, ana, url.Values{"message": {"Login"}, "details[Account]": {"42"}})
	status := func(key, uuid string) string {
		t.Helper()
		r := s.do("GET", "/onetouch/json/approval_requests/"+uuid, key, nil)
		if r.status != 200 {
			t.Fatalf("get %s: %s", uuid, r.raw)
		}
		return r.body["approval_request"].(map[string]any)["status"].(string)
	}
	if got := status(sandboxKey, uuid); got != "pending" {
		t.Fatalf("a sandbox request: %s", got)
	}

	bad := []struct {
		name string
		args []string
		want string
	}{
		{"no decision", []string{"approval", "answer", uuid}, "accepts 2 arg"},
		{"not a decision", []string{"approval", "answer", uuid, "maybe"}, "approved or denied"},
		{"unknown request", []string{"approval", "answer", "5e0ba1a7-0000-4000-8000-000000000000", "approved"}, "no approval request"},
		{"another sandbox application", []string{"approval", "answer", uuid, "approved", "--app", strconv.FormatInt(otherID, 10)}, "no approval request"},
		{"a production application", []string{"approval", "answer", uuid, "approved", "--app", "1"}, "not a sandbox"},
		{"no such application", []string{"approval", "answer", uuid, "approved", "--app", "99"}, "no application with id 99"},
	}
	for _, tt := range bad {
		if out, err := s.cli(tt.args...); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want an error with %q\n%s", tt.name, err, tt.want, out)
		}
	}
	if got := status(sandboxKey, uuid); got != "pending" {
		t.Fatalf("after refused answers: %s", got)
	}

	out, err := s.cli("approval", "answer", uuid, "approved")
	if err != nil || !strings.Contains(out, "approved") {
		t.Fatalf("approval answer: %v\n%s", err, out)
	}
	if got := status(sandboxKey, uuid); got != "approved" {
		t.Fatalf("after the answer: %s", got)
	}
	cb := rc.next(t) // its signature checked by the receiver with the client package
	if cb["uuid"] != uuid || cb["status"] != "approved" || cb["authy_id"] != float64(ana) {
		t.Fatalf("callback: %v", cb)
	}
	if _, err := s.cli("approval", "answer", uuid, "denied"); err == nil || !strings.Contains(err.Error(), "no longer pending") {
		t.Fatalf("a second answer: %v", err)
	}
	if got := status(sandboxKey, uuid); got != "approved" {
		t.Fatalf("after a second answer: %s", got)
	}

	// Denied, with the application named and JSON out.
	uuid2 := s.createRequest(sandboxKey, ana, url.Values{"message": {"Transfer"}})
	var answered struct {
		UUID   string `json:"uuid"`
		AppID  int64  `json:"app_id"`
		Status string `json:"status"`
	}
	s.cliJSON(&answered, "approval", "answer", uuid2, "denied", "--app", strconv.FormatInt(sandboxID, 10))
	if answered.UUID != uuid2 || answered.AppID != sandboxID || answered.Status != "denied" || status(sandboxKey, uuid2) != "denied" {
		t.Fatalf("denied: %+v", answered)
	}
	if cb := rc.next(t); cb["uuid"] != uuid2 || cb["status"] != "denied" {
		t.Fatalf("callback: %v", cb)
	}

	// A production application's request is a device's to answer, never the command's.
	phone := s.newDevice(s.key, bob)
	prodUUID := s.createRequest(s.key, bob, url.Values{"message": {"Login"}})
	for _, args := range [][]string{{"approval", "answer", prodUUID, "approved"}, {"approval", "answer", prodUUID, "approved", "--app", "1"}} {
		if _, err := s.cli(args...); err == nil || !strings.Contains(err.Error(), "not a sandbox") {
			t.Errorf("%v on a production request: %v", args, err)
		}
	}
	if got := status(s.key, prodUUID); got != "pending" {
		t.Fatalf("a production request after the command: %s", got)
	}
	if r := phone.answer(s, prodUUID, "approved", "", ""); r.status != 200 {
		t.Fatalf("the device's answer: %s", r.raw)
	}

	// The audit trail says who answered.
	var events []struct {
		Actor   string            `json:"actor"`
		Action  string            `json:"action"`
		Details map[string]string `json:"details"`
	}
	s.cliJSON(&events, "audit", "list", "--app", strconv.FormatInt(sandboxID, 10))
	var seen []string
	for _, e := range events {
		if strings.HasPrefix(e.Action, "approval.") {
			seen = append(seen, e.Actor+" "+e.Action+" "+e.Details["uuid"])
		}
	}
	if want := []string{"cli approval.approved " + uuid, "cli approval.denied " + uuid2}; fmt.Sprint(seen) != fmt.Sprint(want) {
		t.Fatalf("audit: %v, want %v", seen, want)
	}
}
