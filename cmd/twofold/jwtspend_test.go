package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twofold-auth/twofold/internal/store/storetest"
)

// signedJWT signs header.payload, given as JSON text exactly as it is to be encoded, with key
// (HS256): a registration JWT spelt as its issuer chooses.
func signedJWT(key, header, payload string) string {
	enc := base64.RawURLEncoding
	unsigned := enc.EncodeToString([]byte(header)) + "." + enc.EncodeToString([]byte(payload))
	mac := hmac.New(sha256.New, []byte(key))
	mac.Write([]byte(unsigned))
	return unsigned + "." + enc.EncodeToString(mac.Sum(nil))
}

// lastCharSpellings returns token with the last character of its signature replaced by each
// other base64url character that a lenient decoder reads as the same bytes.
func lastCharSpellings(t *testing.T, token string) []string {
	t.Helper()
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	dot := strings.LastIndexByte(token, '.')
	sig := token[dot+1:]
	want, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, c := range alphabet {
		other := sig[:len(sig)-1] + string(c)
		if other == sig {
			continue
		}
		if got, err := base64.RawURLEncoding.DecodeString(other); err == nil && string(got) == string(want) {
			out = append(out, token[:dot+1]+other)
		}
	}
	if len(out) == 0 {
		t.Fatalf("no other spelling of %q's signature", sig)
	}
	return out
}

// The attack of issue 15 item 1: someone who sees a used enrolment QR code re-spells its JWT
// (the signature's last character, a line break the decoder skips, padding) and registers
// another device on the victim. Whatever the spelling, a JWT registers one device: a spelling
// no strict decoder reads is not valid (60101), and the same claims re-serialised and signed
// again are the same registration, already used (60037).
func TestRegistrationJWTRespelled(t *testing.T) {
	t.Run("SQLite", func(t *testing.T) { testRegistrationJWTRespelled(t) })
	t.Run("PostgreSQL", func(t *testing.T) { testRegistrationJWTRespelled(t, "--database", storetest.Schema(t)) })
}

func testRegistrationJWTRespelled(t *testing.T, db ...string) {
	s := startServer(t, "", append([]string{"--rate-limit", "off"}, db...)...)
	now := time.Now()
	iat, exp := now.Unix(), now.Add(5*time.Minute).Unix()
	token := tutorialJWT(t, s.key, "My first app", 1, "victim", now, now.Add(5*time.Minute))
	r := s.registerWithJWT(token)
	if r.status != 200 {
		t.Fatalf("the first registration: %s", r.raw)
	}
	victim := int64(r.body["device"].(map[string]any)["authy_id"].(float64))
	devicesOf := func(id int64) int {
		t.Helper()
		r := s.get(fmt.Sprintf("/protected/json/users/%d/status", id))
		if r.status != 200 {
			t.Fatalf("status of %d: %s", id, r.raw)
		}
		return len(r.body["status"].(map[string]any)["detailed_devices"].([]any))
	}

	dot := strings.LastIndexByte(token, '.')
	type attempt struct {
		name, token, code string
	}
	var attempts []attempt
	for _, v := range lastCharSpellings(t, token) {
		attempts = append(attempts, attempt{"signature's last character " + v[len(v)-1:], v, "60101"})
	}
	attempts = append(attempts,
		attempt{"the same token", token, "60037"},
		attempt{"a line feed in the signature", token[:dot+5] + "\n" + token[dot+5:], "60101"},
		attempt{"a CR LF after the signature", token + "\r\n", "60101"},
		attempt{"padding", token + "=", "60101"},
		attempt{"a space before", " " + token, "60101"},
		// The issuer's key re-spells the claims: other key order, white space, escapes, a
		// number spelt otherwise, another header. The same claims are the same registration.
		attempt{"claims re-serialised", signedJWT(s.key, `{"typ":"JWT","alg":"HS256"}`,
			fmt.Sprintf(`{ "context": {"authy_app_id": 1, "custom_user_id": "vict\u0069m"}, "exp": %d, "iat": %de0, "iss": "My first app" }`, exp, iat)), "60037"},
		attempt{"another header", signedJWT(s.key, `{"alg":"HS256","typ":"JWT","kid":"x"}`,
			fmt.Sprintf(`{"iss":"My first app","iat":%d,"exp":%d,"context":{"custom_user_id":"victim","authy_app_id":1}}`, iat, exp)), "60037"},
		// The app id spelt as the Flask tutorials spell it names the same application.
		attempt{"the app id as a string", signedJWT(s.key, `{"alg":"HS256","typ":"JWT"}`,
			fmt.Sprintf(`{"iss":"My first app","iat":%d,"exp":%d,"context":{"custom_user_id":"victim","authy_app_id":"1"}}`, iat, exp)), "60037"},
		attempt{"the app id as a float", signedJWT(s.key, `{"alg":"HS256","typ":"JWT"}`,
			fmt.Sprintf(`{"iss":"My first app","iat":%d,"exp":%d,"context":{"custom_user_id":"victim","authy_app_id":1.0}}`, iat, exp)), "60037"},
	)
	for _, a := range attempts {
		r := s.registerWithJWT(a.token)
		if r.body["error_code"] != a.code {
			t.Errorf("%s: %d %s, want error %s", a.name, r.status, r.raw, a.code)
			continue
		}
		expectError(t, r, 400, a.code)
	}
	if n := devicesOf(victim); n != 1 {
		t.Fatalf("after %d re-spelt registrations the victim has %d devices, want 1", len(attempts), n)
	}

	// A jti names the registration: a second JWT with it is the same one, whatever else it
	// says; JWTs that differ in their jti, or in any claim without one, are distinct.
	withJTI := func(jti, user string, iat int64) string {
		return signedJWT(s.key, `{"alg":"HS256","typ":"JWT"}`, fmt.Sprintf(
			`{"iss":"My first app","iat":%d,"exp":%d,"jti":%q,"context":{"custom_user_id":%q,"authy_app_id":1}}`, iat, exp, jti, user))
	}
	for _, tc := range []struct {
		name, token string
		code        string // "" for registered
	}{
		{"a jti", withJTI("reg-1", "zoe", iat), ""},
		{"the jti again, issued a second later", withJTI("reg-1", "zoe", iat+1), "60037"},
		{"the jti again, for another user", withJTI("reg-1", "yann", iat), "60037"},
		{"another jti, the same claims", withJTI("reg-2", "zoe", iat), ""},
		{"no jti, another user in the same second", tutorialJWT(t, s.key, "My first app", 1, "xavier", now, now.Add(5*time.Minute)), ""},
		{"no jti, an extra claim", signedJWT(s.key, `{"alg":"HS256","typ":"JWT"}`, fmt.Sprintf(
			`{"iss":"My first app","iat":%d,"exp":%d,"nonce":"a","context":{"custom_user_id":"victim","authy_app_id":1}}`, iat, exp)), ""},
	} {
		r := s.registerWithJWT(tc.token)
		switch {
		case tc.code == "" && r.status != 200:
			t.Errorf("%s: %s", tc.name, r.raw)
		case tc.code != "" && r.body["error_code"] != tc.code:
			t.Errorf("%s: %d %s, want error %s", tc.name, r.status, r.raw, tc.code)
		case tc.code != "":
			expectError(t, r, 400, tc.code)
		}
	}
	if n := devicesOf(victim); n != 2 { // the first, and the one with the extra claim
		t.Fatalf("the victim has %d devices, want 2", n)
	}

	// The customer removes the user; the JWT, still unexpired, stays spent: replayed, it would
	// make the user again with the attacker's device, which the customer's next registration
	// for that custom_user_id would then join.
	if r := s.post(fmt.Sprintf("/protected/json/users/%d/remove", victim), nil); r.status != 200 {
		t.Fatalf("remove the victim: %s", r.raw)
	}
	expectError(t, s.registerWithJWT(token), 400, "60037")
	if r := s.get("/protected/json/registrations/status?custom_user_id=victim"); r.status != 200 ||
		r.body["registration"].(map[string]any)["status"] != "pending" {
		t.Fatalf("registration status of the removed user: %s", r.raw)
	}
}
