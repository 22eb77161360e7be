package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twofold-auth/twofold/client"
	"github.com/twofold-auth/twofold/internal/audit"
	"github.com/twofold-auth/twofold/internal/callback"
	"github.com/twofold-auth/twofold/internal/onetouch"
	"github.com/twofold-auth/twofold/internal/otp"
	"github.com/twofold-auth/twofold/internal/twofold"
)

// device is a real authenticator: it generates its key pair, registers with a token from
// sdk/registrations, and signs its answers.
type device struct {
	key   *ecdsa.PrivateKey
	token string
	id    int64
	totp  otp.TOTP
	raw   bool // sign in WebCrypto's r||s form instead of ASN.1
}

func (s *server) newDevice(apiKey string, authyID int64) *device {
	s.t.Helper()
	r := s.do("POST", "/protected/json/sdk/registrations", apiKey, url.Values{"authy_id": {fmt.Sprint(authyID)}})
	if r.status != 200 {
		s.t.Fatalf("sdk/registrations: %s", r.raw)
	}
	return s.redeem(r.body["registration_token"].(string))
}

func (s *server) redeem(regToken string) *device {
	s.t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		s.t.Fatal(err)
	}
	der, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	body, _ := json.Marshal(map[string]string{"registration_token": regToken, "public_key": base64.StdEncoding.EncodeToString(der),
		"name": "test phone", "os_type": "cli"})
	r := s.do("POST", "/device/v1/registrations", "", string(body))
	if r.status != 200 {
		s.t.Fatalf("register device: %s", r.raw)
	}
	tk := r.body["totp"].(map[string]any)
	secret, err := otp.DecodeSecret(tk["secret"].(string))
	if err != nil {
		s.t.Fatal(err)
	}
	return &device{key: key, token: r.body["access_token"].(string), id: int64(r.body["device"].(map[string]any)["id"].(float64)),
		totp: otp.TOTP{Secret: secret, Digits: int(tk["digits"].(float64)), Period: int(tk["period"].(float64))}}
}

// call sends a device API request with the device's bearer token.
func (d *device) call(s *server, method, path string, body any) response {
	s.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = strings.NewReader(string(b))
	}
	req, _ := http.NewRequest(method, s.url+path, rd)
	req.Header.Set("Authorization", "Bearer "+d.token)
	req.Header.Set("Content-Type", "application/json")
	res, err := s.client.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	r := response{status: res.StatusCode, header: res.Header, raw: string(raw)}
	json.Unmarshal(raw, &r.body)
	return r
}

func (d *device) sign(uuid, status string, ts int64, number, reason string) string {
	digest := sha256.Sum256(onetouch.AnswerMessage(uuid, twofold.ApprovalStatus(status), ts, number, reason))
	if d.raw {
		r, sv, err := ecdsa.Sign(rand.Reader, d.key, digest[:])
		if err != nil {
			panic(err)
		}
		out := make([]byte, 64)
		r.FillBytes(out[:32])
		sv.FillBytes(out[32:])
		return base64.StdEncoding.EncodeToString(out)
	}
	sig, err := ecdsa.SignASN1(rand.Reader, d.key, digest[:])
	if err != nil {
		panic(err)
	}
	return base64.StdEncoding.EncodeToString(sig)
}

// answer signs and sends a decision now.
func (d *device) answer(s *server, uuid, status, number, reason string) response {
	ts := time.Now().Unix()
	return d.call(s, "POST", "/device/v1/approval_requests/"+uuid, map[string]any{
		"status": status, "timestamp": ts, "signature": d.sign(uuid, status, ts, number, reason), "number": number, "reason": reason,
	})
}

// receiver is the customer's callback endpoint: it checks every signature with the public
// client package and hands the decoded bodies to the test.
type receiver struct {
	srv      *httptest.Server
	got      chan map[string]any
	failWith atomic.Int32 // when non-zero, answer with this status
	key      atomic.Value
}

func newReceiver(t *testing.T) *receiver {
	rc := &receiver{got: make(chan map[string]any, 32)}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if code := rc.failWith.Load(); code != 0 {
			w.WriteHeader(int(code))
			return
		}
		if err := client.VerifyCallback(r, rc.key.Load().(string), rc.srv.URL+"/authy/callback"); err != nil {
			t.Errorf("callback signature: %v", err)
			w.WriteHeader(http.StatusForbidden)
			return
		}
		var body map[string]any
		if r.Method == http.MethodPost {
			json.NewDecoder(r.Body).Decode(&body)
		} else {
			body = map[string]any{"status": r.URL.Query().Get("status"), "uuid": r.URL.Query().Get("uuid"), "query": r.URL.RawQuery}
		}
		rc.got <- body
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *receiver) next(t *testing.T) map[string]any {
	t.Helper()
	select {
	case b := <-rc.got:
		return b
	case <-time.After(20 * time.Second):
		t.Fatal("no callback arrived")
		return nil
	}
}

func (s *server) createRequest(apiKey string, authyID int64, form url.Values) string {
	s.t.Helper()
	r := s.do("POST", fmt.Sprintf("/onetouch/json/users/%d/approval_requests", authyID), apiKey, form)
	if r.status != 200 {
		s.t.Fatalf("create approval request: %s", r.raw)
	}
	return r.body["approval_request"].(map[string]any)["uuid"].(string)
}

func (s *server) requestStatus(uuid string) map[string]any {
	s.t.Helper()
	r := s.get("/onetouch/json/approval_requests/" + uuid)
	if r.status != 200 {
		s.t.Fatalf("get approval request: %s", r.raw)
	}
	return r.body["approval_request"].(map[string]any)
}

func TestOneTouchApproveAndDeny(t *testing.T) {
	rc := newReceiver(t)
	s := startServer(t, "", "--rate-limit", "off", "--callback-allow-hosts", "127.0.0.1")
	rc.key.Store(s.key)
	s.cli("app", "update", "1", "--callback-url", rc.srv.URL+"/authy/callback?source=twofold")
	alice := s.register(s.key, "alice@example.com", "2015550123")

	// No device yet: the customer gets an error and falls back to SMS.
	r := s.post(fmt.Sprintf("/onetouch/json/users/%d/approval_requests", alice), url.Values{"message": {"Login"}})
	expectError(t, r, 400, "60050")

	phone := s.newDevice(s.key, alice)
	st := s.get(fmt.Sprintf("/protected/json/users/%d/status", alice)).body["status"].(map[string]any)
	if st["registered"] != true || fmt.Sprint(st["devices"]) != "[cli]" {
		t.Fatalf("status after registration: %v", st)
	}

	// node-authy's encoding: indexed logos[N][...], details[...] with spaces in keys.
	uuid := s.createRequest(s.key, alice, url.Values{
		"message": {"Login requested"}, "details[Account Number]": {"123"}, "hidden_details[ip]": {"1.2.3.4"},
		"logos[0][res]": {"default"}, "logos[0][url]": {"https://example.com/a.png"},
		"logos[1][res]": {"low"}, "logos[1][url]": {"https://example.com/b.png"},
		"seconds_to_expire": {"120"},
	})
	got := s.requestStatus(uuid)
	for _, k := range []string{"_app_name", "_app_serial_id", "_authy_id", "_id", "_user_email", "app_id", "created_at",
		"notified", "processed_at", "status", "updated_at", "user_id", "uuid", "seconds_to_expire"} {
		if _, ok := got[k]; !ok {
			t.Errorf("approval request lacks %s", k)
		}
	}
	if got["status"] != "pending" || got["processed_at"] != nil || got["_user_email"] != "alice@example.com" ||
		got["_authy_id"] != float64(alice) || got["notified"] != false || len(got["_id"].(string)) != 24 {
		t.Fatalf("pending request: %v", got)
	}

	// The device sees the request, without its hidden details or any number.
	list := phone.call(s, "GET", "/device/v1/approval_requests?status=pending", nil)
	reqs := list.body["approval_requests"].([]any)
	if len(reqs) != 1 || strings.Contains(list.raw, "1.2.3.4") || strings.Contains(list.raw, "hidden") {
		t.Fatalf("device list: %s", list.raw)
	}
	view := reqs[0].(map[string]any)
	if view["uuid"] != uuid || view["message"] != "Login requested" || view["details"].(map[string]any)["Account Number"] != "123" ||
		len(view["logos"].([]any)) != 2 {
		t.Fatalf("device view: %v", view)
	}
	if s.requestStatus(uuid)["notified"] != true {
		t.Fatal("notified not set once the device saw the request")
	}

	if r := phone.answer(s, uuid, "approved", "", ""); r.status != 200 || r.body["approval_request"].(map[string]any)["status"] != "approved" {
		t.Fatalf("approve: %s", r.raw)
	}
	got = s.requestStatus(uuid)
	if got["status"] != "approved" || got["processed_at"] == nil {
		t.Fatalf("after approval: %v", got)
	}
	cb := rc.next(t)
	tx := cb["approval_request"].(map[string]any)["transaction"].(map[string]any)
	if cb["status"] != "approved" || cb["uuid"] != uuid || cb["callback_action"] != "approval_request_status" ||
		cb["authy_id"] != float64(alice) || cb["device_uuid"] != fmt.Sprint(phone.id) || cb["signature"] == "" ||
		tx["hidden_details"].(map[string]any)["ip"] != "1.2.3.4" || tx["message"] != "Login requested" {
		t.Fatalf("callback body: %v", cb)
	}

	// The answer is final: the same answer again, or a different one, is refused.
	expectError(t, phone.answer(s, uuid, "approved", "", ""), 409, "60079")
	expectError(t, phone.answer(s, uuid, "denied", "", ""), 409, "60079")

	// Deny with a reason, signed in WebCrypto's raw form; it reaches the callback.
	phone.raw = true
	uuid2 := s.createRequest(s.key, alice, url.Values{"message": {"Transfer $500"}})
	if r := phone.answer(s, uuid2, "denied", "", "I did not request this"); r.status != 200 {
		t.Fatalf("deny: %s", r.raw)
	}
	cb = rc.next(t)
	tx = cb["approval_request"].(map[string]any)["transaction"].(map[string]any)
	if cb["status"] != "denied" || tx["reason"] != "I did not request this" {
		t.Fatalf("denied callback: %v", cb)
	}
	if got := s.requestStatus(uuid2); got["status"] != "denied" || got["reason"] != "I did not request this" {
		t.Fatalf("denied request: %v", got)
	}

	// The device's own TOTP seed works with verify, once.
	code := phone.totp.Code(time.Now())
	if len(code) != 7 {
		t.Fatalf("device codes are %d digits, want the app's 7", len(code))
	}
	if r := s.get(fmt.Sprintf("/protected/json/verify/%s/%d", code, alice)); r.status != 200 {
		t.Fatalf("device TOTP: %s", r.raw)
	}
	expectError(t, s.get(fmt.Sprintf("/protected/json/verify/%s/%d", code, alice)), 401, "60019")

	// SMS is skipped for a user with a device unless forced.
	if r := s.get(fmt.Sprintf("/protected/json/sms/%d", alice)); r.body["ignored"] != true || r.body["device"] != "cli" {
		t.Fatalf("sms to a device user: %s", r.raw)
	}
}

func TestOneTouchAttacks(t *testing.T) {
	s := startServer(t, "", "--rate-limit", "off", "--max-pending-approvals", "3")
	var other struct {
		APIKey string `json:"api_key"`
	}
	s.cliJSON(&other, "app", "create", "--name", "Other")
	alice := s.register(s.key, "alice@example.com", "2015550123")
	bob := s.register(s.key, "bob@example.com", "2015550124")
	mallory := s.register(other.APIKey, "mallory@example.com", "2015550125")
	alicePhone, bobPhone, malloryPhone := s.newDevice(s.key, alice), s.newDevice(s.key, bob), s.newDevice(other.APIKey, mallory)
	uuid := s.createRequest(s.key, alice, url.Values{"message": {"Login"}})

	// A device is told whose account it is (its own user's email) and the window of steps its
	// codes are accepted in, so that an authenticator can tell two accounts of one app apart.
	for _, tc := range []struct {
		d       *device
		account string
	}{{alicePhone, "alice@example.com"}, {bobPhone, "bob@example.com"}, {malloryPhone, "mallory@example.com"}} {
		dv, _ := tc.d.call(s, "GET", "/device/v1/device", nil).body["device"].(map[string]any)
		if dv["account"] != tc.account || dv["totp_window"] != 1.0 {
			t.Errorf("GET /device/v1/device of %s's device: %v", tc.account, dv)
		}
	}

	// Another application's key cannot read the request.
	expectError(t, s.do("GET", "/onetouch/json/approval_requests/"+uuid, other.APIKey, nil), 404, "60049")
	expectError(t, s.do("POST", fmt.Sprintf("/onetouch/json/users/%d/approval_requests", alice), other.APIKey, url.Values{"message": {"x"}}), 404, "60026")
	// Devices of another user or another application cannot see or answer it.
	for _, d := range []*device{bobPhone, malloryPhone} {
		expectError(t, d.call(s, "GET", "/device/v1/approval_requests/"+uuid, nil), 404, "60049")
		expectError(t, d.answer(s, uuid, "approved", "", ""), 404, "60049")
	}
	// A forged signature (another key), a signature over another decision, and a stale timestamp fail.
	forger := &device{key: bobPhone.key, token: alicePhone.token}
	expectError(t, forger.answer(s, uuid, "approved", "", ""), 401, "60087")
	ts := time.Now().Unix()
	expectError(t, alicePhone.call(s, "POST", "/device/v1/approval_requests/"+uuid, map[string]any{
		"status": "approved", "timestamp": ts, "signature": alicePhone.sign(uuid, "denied", ts, "", ""),
	}), 401, "60087")
	old := time.Now().Add(-time.Hour).Unix()
	expectError(t, alicePhone.call(s, "POST", "/device/v1/approval_requests/"+uuid, map[string]any{
		"status": "approved", "timestamp": old, "signature": alicePhone.sign(uuid, "approved", old, "", ""),
	}), 401, "60087")
	expectError(t, alicePhone.call(s, "POST", "/device/v1/approval_requests/"+uuid, map[string]any{
		"status": "approved", "timestamp": ts, "signature": "not base64!",
	}), 401, "60087")
	// A captured valid answer replayed after it was used is refused.
	sig := alicePhone.sign(uuid, "approved", ts, "", "")
	answer := map[string]any{"status": "approved", "timestamp": ts, "signature": sig}
	if r := alicePhone.call(s, "POST", "/device/v1/approval_requests/"+uuid, answer); r.status != 200 {
		t.Fatalf("valid answer: %s", r.raw)
	}
	expectError(t, alicePhone.call(s, "POST", "/device/v1/approval_requests/"+uuid, answer), 409, "60079")
	// ...and replaying it against another request fails the signature.
	uuid2 := s.createRequest(s.key, alice, url.Values{"message": {"Second"}})
	expectError(t, alicePhone.call(s, "POST", "/device/v1/approval_requests/"+uuid2, answer), 401, "60087")

	// Bad tokens.
	expectError(t, (&device{token: "tfd_nothing"}).call(s, "GET", "/device/v1/approval_requests", nil), 401, "60072")
	expectError(t, (&device{token: ""}).call(s, "GET", "/device/v1/device", nil), 401, "60072")

	// Push fatigue: at most 3 pending per user.
	s.createRequest(s.key, alice, url.Values{"message": {"Third"}})
	s.createRequest(s.key, alice, url.Values{"message": {"Fourth"}})
	expectError(t, s.post(fmt.Sprintf("/onetouch/json/users/%d/approval_requests", alice), url.Values{"message": {"Fifth"}}), 429, "60003")

	// Number matching: the customer shows the number; a wrong one denies.
	r := s.post(fmt.Sprintf("/onetouch/json/users/%d/approval_requests", bob), url.Values{"message": {"Login"}, "number_matching": {"true"}})
	number, _ := r.body["approval_request"].(map[string]any)["number"].(string)
	if len(number) != 2 {
		t.Fatalf("number matching: %s", r.raw)
	}
	matchUUID := r.body["approval_request"].(map[string]any)["uuid"].(string)
	if v := bobPhone.call(s, "GET", "/device/v1/approval_requests/"+matchUUID, nil); v.body["approval_request"].(map[string]any)["number_required"] != true || strings.Contains(v.raw, `"`+number+`"`) {
		t.Fatalf("device view of a number-matching request: %s", v.raw)
	}
	// One wrong number leaves the request pending (a slip of the finger); the second denies it.
	wrong := fmt.Sprint((atoi(number)+1)%90 + 10)
	expectError(t, bobPhone.answer(s, matchUUID, "approved", wrong, ""), 400, "60080")
	if got := s.requestStatus(matchUUID); got["status"] != "pending" {
		t.Fatalf("after one wrong number: %v", got)
	}
	var misses []audit.Entry
	s.cliJSON(&misses, "audit", "list", "--action", "approval.number_mismatch")
	if len(misses) != 1 || misses[0].Details["uuid"] != matchUUID || misses[0].Details["tries_left"] != "1" || len(misses[0].Details) != 3 {
		t.Fatalf("audit of the wrong number: %+v", misses)
	}
	expectError(t, bobPhone.answer(s, matchUUID, "approved", wrong, ""), 400, "60080")
	if got := s.requestStatus(matchUUID); got["status"] != "denied" {
		t.Fatalf("after a second wrong number: %v", got)
	}
	r = s.post(fmt.Sprintf("/onetouch/json/users/%d/approval_requests", bob), url.Values{"message": {"Login"}, "number_matching": {"true"}})
	ar := r.body["approval_request"].(map[string]any)
	if res := bobPhone.answer(s, ar["uuid"].(string), "approved", ar["number"].(string), ""); res.status != 200 {
		t.Fatalf("right number: %s", res.raw)
	}

	// Registration tokens are single use and only for their own application.
	reg := s.post("/protected/json/sdk/registrations", url.Values{"authy_id": {fmt.Sprint(alice)}}).body["registration_token"].(string)
	s.redeem(reg)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	body, _ := json.Marshal(map[string]string{"registration_token": reg, "public_key": base64.StdEncoding.EncodeToString(der)})
	expectError(t, s.do("POST", "/device/v1/registrations", "", string(body)), 404, "60035")
	expectError(t, s.do("POST", "/protected/json/sdk/registrations", other.APIKey, url.Values{"authy_id": {fmt.Sprint(alice)}}), 404, "60026")
	body, _ = json.Marshal(map[string]string{"registration_token": "tfr_x", "public_key": "AAAA"})
	expectError(t, s.do("POST", "/device/v1/registrations", "", string(body)), 400, "60004")

	// Removing a device: not by another app; then its token is dead.
	expectError(t, s.do("DELETE", fmt.Sprintf("/protected/json/sdk/devices/%d", alicePhone.id), other.APIKey, nil), 404, "60092")
	if r := s.do("DELETE", fmt.Sprintf("/protected/json/sdk/devices/%d", alicePhone.id), s.key, nil); r.status != 200 {
		t.Fatalf("delete device: %s", r.raw)
	}
	expectError(t, alicePhone.call(s, "GET", "/device/v1/approval_requests", nil), 401, "60072")
}

func atoi(s string) int {
	n := 0
	fmt.Sscan(s, &n)
	return n
}

func TestOneTouchValidation(t *testing.T) {
	s := startServer(t, "", "--rate-limit", "off")
	alice := s.register(s.key, "alice@example.com", "2015550123")
	s.newDevice(s.key, alice)
	path := fmt.Sprintf("/onetouch/json/users/%d/approval_requests", alice)
	for name, form := range map[string]url.Values{
		"no message":        {},
		"long message":      {"message": {strings.Repeat("x", 201)}},
		"negative expiry":   {"message": {"x"}, "seconds_to_expire": {"-1"}},
		"text expiry":       {"message": {"x"}, "seconds_to_expire": {"soon"}},
		"logo without url":  {"message": {"x"}, "logos[][res]": {"default"}},
		"logo bad res":      {"message": {"x"}, "logos[0][res]": {"huge"}, "logos[0][url]": {"https://e.com/a.png"}},
		"logo bad url":      {"message": {"x"}, "logos[0][res]": {"low"}, "logos[0][url]": {"javascript:alert(1)"}},
		"details not hash":  {"message": {"x"}, "details": {"flat"}},
		"bad number toggle": {"message": {"x"}, "number_matching": {"perhaps"}},
	} {
		t.Run(name, func(t *testing.T) { expectError(t, s.post(path, form), 400, "60004") })
	}
	// JSON with null expiry (authy-python) takes the default of one day; 0 never expires.
	r := s.do("POST", path, s.key, `{"message":"x","seconds_to_expire":null,"logos":[],"details":{}}`)
	if r.status != 200 {
		t.Fatalf("python-style request: %s", r.raw)
	}
	if got := s.requestStatus(r.body["approval_request"].(map[string]any)["uuid"].(string)); got["seconds_to_expire"] != float64(86400) {
		t.Fatalf("default expiry: %v", got)
	}
	r = s.do("POST", path, s.key, `{"message":"x","seconds_to_expire":0,"logos":[{"res":"default","url":"https://e.com/a.png"}]}`)
	if got := s.requestStatus(r.body["approval_request"].(map[string]any)["uuid"].(string)); got["seconds_to_expire"] != float64(0) || len(got["logos"].([]any)) != 1 {
		t.Fatalf("never-expiring request: %v", got)
	}
	expectError(t, s.get("/onetouch/json/approval_requests/not-a-uuid"), 404, "60049")
}

// attempts collects the server's callback delivery attempts, in order.
type attempts chan callback.Attempt

func (a attempts) next(t *testing.T) callback.Attempt {
	t.Helper()
	select {
	case x := <-a:
		return x
	case <-time.After(20 * time.Second):
		t.Fatal("no callback attempt")
		return callback.Attempt{}
	}
}

func TestCallbackFailuresDisableThenReenable(t *testing.T) {
	rc := newReceiver(t)
	rc.failWith.Store(http.StatusInternalServerError)
	seen := make(attempts, 32)
	s := startServerEnv(t, "", func(e *Env) { e.OnCallback = func(a callback.Attempt) { seen <- a } },
		"--rate-limit", "off", "--callback-allow-hosts", "127.0.0.1", "--callback-backoff", "10ms")
	rc.key.Store(s.key)
	s.cli("app", "update", "1", "--callback-url", rc.srv.URL+"/authy/callback", "--contact-email", "owner@example.com")
	alice := s.register(s.key, "alice@example.com", "2015550123")
	phone := s.newDevice(s.key, alice)
	uuid := s.createRequest(s.key, alice, url.Values{"message": {"Login"}})
	phone.answer(s, uuid, "approved", "", "")

	for i := 1; i <= 3; i++ {
		a := seen.next(t)
		if a.OK || a.Status != 500 || a.Disabled != (i == 3) {
			t.Fatalf("attempt %d: %+v", i, a)
		}
	}
	var shown appJSON
	s.cliJSON(&shown, "app", "show", "1")
	if !shown.CallbackDisabled || shown.CallbackFailures != 3 || !strings.Contains(shown.CallbackLastError, "500") {
		t.Fatalf("app show after 3 failures: %+v", shown)
	}
	text, _ := s.cli("app", "show", "1")
	if !strings.Contains(text, "DISABLED") || !strings.Contains(text, "--callback-enabled") {
		t.Fatalf("app show text:\n%s", text)
	}
	var mail []struct {
		To   string `json:"to"`
		Body string `json:"body"`
	}
	s.cliJSON(&mail, "outbox", "--to", "owner@example.com")
	if len(mail) != 1 || !strings.Contains(mail[0].Body, "disabled") {
		t.Fatalf("owner not told: %+v", mail)
	}
	// Polling still works while callbacks are off.
	if s.requestStatus(uuid)["status"] != "approved" {
		t.Fatal("polling while callbacks are disabled")
	}

	rc.failWith.Store(0)
	s.cliJSON(&shown, "app", "update", "1", "--callback-enabled")
	if shown.CallbackDisabled || shown.CallbackFailures != 0 {
		t.Fatalf("after re-enabling: %+v", shown)
	}
	if a := seen.next(t); !a.OK {
		t.Fatalf("attempt after re-enabling: %+v", a)
	}
	if cb := rc.next(t); cb["uuid"] != uuid || cb["status"] != "approved" {
		t.Fatalf("the kept callback: %v", cb)
	}
}

func TestPendingCallbacksSurviveRestart(t *testing.T) {
	rc := newReceiver(t)
	s := startServer(t, "", "--rate-limit", "off", "--callback-allow-hosts", "127.0.0.1", "--callback-workers", "0")
	rc.key.Store(s.key)
	s.cli("app", "update", "1", "--callback-url", rc.srv.URL+"/authy/callback", "--callback-method", "GET")
	alice := s.register(s.key, "alice@example.com", "2015550123")
	phone := s.newDevice(s.key, alice)
	want := map[string]string{}
	for _, status := range []string{"approved", "denied"} {
		uuid := s.createRequest(s.key, alice, url.Values{"message": {"Login"}, "details[Who]": {"Alice A"}})
		if r := phone.answer(s, uuid, status, "", ""); r.status != 200 {
			t.Fatalf("answer: %s", r.raw)
		}
		want[uuid] = status
	}
	s.stop()

	startServer(t, s.dataDir, "--rate-limit", "off", "--callback-allow-hosts", "127.0.0.1") // delivers what was queued
	for range want {
		cb := rc.next(t)
		if want[cb["uuid"].(string)] != cb["status"] {
			t.Fatalf("callback after restart: %v (want %v)", cb, want)
		}
		if !strings.Contains(cb["query"].(string), "approval_request%5Btransaction%5D%5Bdetails%5D%5BWho%5D=Alice+A") {
			t.Fatalf("GET callback query is not in canonical form: %s", cb["query"])
		}
		delete(want, cb["uuid"].(string))
	}
}

func TestApprovalRequestsExpire(t *testing.T) {
	rc := newReceiver(t)
	s := startServer(t, "", "--rate-limit", "off", "--callback-allow-hosts", "127.0.0.1", "--sweep-interval", "20ms")
	rc.key.Store(s.key)
	s.cli("app", "update", "1", "--callback-url", rc.srv.URL+"/authy/callback", "--callback-expired")
	alice := s.register(s.key, "alice@example.com", "2015550123")
	phone := s.newDevice(s.key, alice)
	uuid := s.createRequest(s.key, alice, url.Values{"message": {"Login"}, "seconds_to_expire": {"1"}})
	// The background sweep expires it and calls back; no request needed.
	if cb := rc.next(t); cb["uuid"] != uuid || cb["status"] != "expired" {
		t.Fatalf("expiry callback: %v", cb)
	}
	if got := s.requestStatus(uuid); got["status"] != "expired" || got["processed_at"] == nil {
		t.Fatalf("expired request: %v", got)
	}
	expectError(t, phone.answer(s, uuid, "approved", "", ""), 409, "60079")
}
