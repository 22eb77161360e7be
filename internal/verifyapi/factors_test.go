package verifyapi_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/twofold-auth/twofold/internal/apps"
	"github.com/twofold-auth/twofold/internal/otp"
)

const identity = "ff483d1ff591898a9942916050d2ca3f"

// totpFactor makes a verified totp factor of identity in service svc and returns its SID and
// secret. Its first code is spent verifying it, at the current step.
func (s *server) totpFactor(svc, who string) (string, []byte) {
	s.t.Helper()
	a := s.call("POST", "/v2/Services/"+svc+"/Entities/"+who+"/Factors", url.Values{"FriendlyName": {"phone"}, "FactorType": {"totp"}})
	if a.status != 201 {
		s.t.Fatalf("create totp factor: %d %s", a.status, a.raw)
	}
	binding := a.body["binding"].(map[string]any)
	secret, err := otp.DecodeSecret(binding["secret"].(string))
	if err != nil || !strings.HasPrefix(binding["uri"].(string), "otpauth://totp/") || a.body["status"] != "unverified" {
		s.t.Fatalf("totp factor: %s", a.raw)
	}
	sid := a.body["sid"].(string)
	// The previous step's code (within the skew) verifies it, leaving the current one unspent.
	prev := otp.TOTP{Secret: secret}.Code(time.Now().Add(-30 * time.Second))
	if a := s.call("POST", "/v2/Services/"+svc+"/Entities/"+who+"/Factors/"+sid, url.Values{"AuthPayload": {prev}}); a.body["status"] != "verified" {
		s.t.Fatalf("verify totp factor: %d %s", a.status, a.raw)
	}
	return sid, secret
}

func TestTOTPFactorAndChallenges(t *testing.T) {
	s := newServer(t)
	svc := s.newService(url.Values{"FriendlyName": {"Shop"}})
	base := "/v2/Services/" + svc + "/Entities/" + identity
	if a := s.call("POST", "/v2/Services/"+svc+"/Entities", url.Values{"Identity": {identity}}); a.status != 201 || a.body["identity"] != identity ||
		!strings.HasPrefix(a.body["sid"].(string), "YE") {
		t.Fatalf("create entity: %d %s", a.status, a.raw)
	}
	// A new factor's wrong codes leave it unverified; the sixth attempt is refused (60310).
	a := s.call("POST", base+"/Factors", url.Values{"FriendlyName": {"phone"}, "FactorType": {"totp"}, "Config.CodeLength": {"8"}})
	if a.status != 201 {
		t.Fatalf("create: %d %s", a.status, a.raw)
	}
	f := a.body["sid"].(string)
	for i := 0; i < 5; i++ {
		if a := s.call("POST", base+"/Factors/"+f, url.Values{"AuthPayload": {"00000000"}}); a.status != 200 || a.body["status"] != "unverified" {
			t.Fatalf("wrong code %d: %d %s", i, a.status, a.raw)
		}
	}
	wantError(t, "sixth code", s.call("POST", base+"/Factors/"+f, url.Values{"AuthPayload": {"00000000"}}), 429, 60310)
	// A challenge of an unverified factor is refused.
	wantError(t, "unverified factor", s.call("POST", base+"/Challenges", url.Values{"FactorSid": {f}, "AuthPayload": {"12345678"}}), 400, 60200)

	sid, secret := s.totpFactor(svc, identity)
	code := otp.TOTP{Secret: secret}.Code(time.Now())
	a = s.call("POST", base+"/Challenges", url.Values{"FactorSid": {sid}, "AuthPayload": {code}})
	if a.status != 201 || a.body["status"] != "approved" || a.body["factor_type"] != "totp" || a.body["date_responded"] == nil {
		t.Fatalf("challenge with a right code: %d %s", a.status, a.raw)
	}
	// The same code is spent: another challenge with it stays pending.
	a = s.call("POST", base+"/Challenges", url.Values{"FactorSid": {sid}, "AuthPayload": {code}})
	if a.status != 201 || a.body["status"] != "pending" {
		t.Fatalf("replayed code: %d %s", a.status, a.raw)
	}
	ch := a.body["sid"].(string)
	for i := 0; i < 4; i++ {
		if a := s.call("POST", base+"/Challenges/"+ch, url.Values{"AuthPayload": {"000000"}}); a.status != 200 || a.body["status"] != "pending" {
			t.Fatalf("wrong code %d: %d %s", i, a.status, a.raw)
		}
	}
	wantError(t, "sixth answer", s.call("POST", base+"/Challenges/"+ch, url.Values{"AuthPayload": {"000000"}}), 429, 60308)
	// Lists filter by status.
	a = s.call("GET", base+"/Challenges", url.Values{"Status": {"approved"}, "FactorSid": {sid}})
	if list := a.body["challenges"].([]any); len(list) != 1 {
		t.Errorf("approved challenges: %s", a.raw)
	}
	a = s.call("GET", base+"/Challenges", url.Values{"Order": {"desc"}, "PageSize": {"1"}})
	if list := a.body["challenges"].([]any); len(list) != 1 || list[0].(map[string]any)["sid"] != ch || a.body["meta"].(map[string]any)["next_page_url"] == nil {
		t.Errorf("newest challenge: %s", a.raw)
	}
	s.call("POST", "/v2/Services/"+svc+"/Entities", url.Values{"Identity": {"second-entity"}})
	a = s.call("GET", "/v2/Services/"+svc+"/Entities", url.Values{"PageSize": {"1"}})
	if list := a.body["entities"].([]any); len(list) != 1 || list[0].(map[string]any)["identity"] != identity || a.body["meta"].(map[string]any)["next_page_url"] == nil {
		t.Errorf("entities: %s", a.raw)
	}
	if a := s.call("GET", base+"/Factors", nil); len(a.body["factors"].([]any)) != 2 {
		t.Errorf("factors: %s", a.raw)
	}
	for _, c := range []struct {
		what   string
		method string
		path   string
		form   url.Values
	}{
		{"a short identity", "POST", "/v2/Services/" + svc + "/Entities", url.Values{"Identity": {"short"}}},
		{"a bad factor type", "POST", base + "/Factors", url.Values{"FriendlyName": {"x"}, "FactorType": {"sms"}}},
		{"a bad time step", "POST", base + "/Factors", url.Values{"FriendlyName": {"x"}, "FactorType": {"totp"}, "Config.TimeStep": {"5"}}},
		{"a bad secret", "POST", base + "/Factors", url.Values{"FriendlyName": {"x"}, "FactorType": {"totp"}, "Binding.Secret": {"!!"}}},
		{"a bad factor sid", "POST", base + "/Challenges", url.Values{"FactorSid": {"YFnope"}}},
		{"a late expiry", "POST", base + "/Challenges", url.Values{"FactorSid": {sid}, "ExpirationDate": {time.Now().Add(2 * time.Hour).UTC().Format(time.RFC3339)}}},
		{"bad fields", "POST", base + "/Challenges", url.Values{"FactorSid": {sid}, "Details.Fields": {"[1]"}}},
		{"bad hidden details", "POST", base + "/Challenges", url.Values{"FactorSid": {sid}, "HiddenDetails": {"nope"}}},
		{"a bad status", "GET", base + "/Challenges", url.Values{"Status": {"canceled"}}},
	} {
		wantError(t, c.what, s.call(c.method, c.path, c.form), 400, 60200)
	}
	// Deleting the entity deletes its factors and challenges; the user stays an entity.
	if a := s.call("DELETE", base, nil); a.status != 204 {
		t.Fatalf("delete entity: %d %s", a.status, a.raw)
	}
	wantError(t, "a deleted factor", s.call("GET", base+"/Factors/"+sid, nil), 404, 20404)
	wantError(t, "a deleted challenge", s.call("GET", base+"/Challenges/"+ch, nil), 404, 20404)
}

// TestEntitiesAreTheirApplications: another application's credentials, and another service of
// the same application, see nothing of an entity's factors and challenges.
func TestEntitiesAreTheirApplications(t *testing.T) {
	s := newServer(t)
	svc := s.newService(url.Values{"FriendlyName": {"Shop"}})
	svc2 := s.newService(url.Values{"FriendlyName": {"Other"}})
	base := "/v2/Services/" + svc + "/Entities/" + identity
	sid, _ := s.totpFactor(svc, identity)
	ch := s.call("POST", base+"/Challenges", url.Values{"FactorSid": {sid}}).body["sid"].(string)
	other, otherToken, err := s.apps.CreateTwilioAccount(context.Background(), must(s.apps.Create(context.Background(), apps.CreateParams{Name: "Other"})).ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{base, base + "/Factors/" + sid, base + "/Challenges/" + ch} {
		wantError(t, "another application: "+p, s.do("GET", p, nil, other.SID, otherToken), 404, 20404)
		q := strings.Replace(p, svc, svc2, 1)
		if p != base {
			wantError(t, "another service: "+q, s.call("GET", q, nil), 404, 20404)
		}
	}
	wantError(t, "another service's factor", s.call("POST", "/v2/Services/"+svc2+"/Entities/"+identity+"/Challenges",
		url.Values{"FactorSid": {sid}}), 404, 20404)
	wantError(t, "another application's answer", s.do("POST", base+"/Challenges/"+ch, url.Values{"AuthPayload": {"123456"}},
		other.SID, otherToken), 404, 20404)
}

// device is a Verify Push device: its P-256 key.
type device struct{ key *ecdsa.PrivateKey }

func newDevice(t *testing.T) device {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return device{k}
}

func (d device) publicKey() string {
	der, _ := x509.MarshalPKIXPublicKey(&d.key.PublicKey)
	return base64.StdEncoding.EncodeToString(der)
}

// sign makes an ES256 JWT of claims.
func (d device) sign(t *testing.T, claims map[string]any) string {
	h := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"ES256","typ":"JWT"}`))
	body, _ := json.Marshal(claims)
	in := h + "." + base64.RawURLEncoding.EncodeToString(body)
	digest := sha256.Sum256([]byte(in))
	r, sv, err := ecdsa.Sign(rand.Reader, d.key, digest[:])
	if err != nil {
		t.Fatal(err)
	}
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	sv.FillBytes(sig[32:])
	return in + "." + base64.RawURLEncoding.EncodeToString(sig)
}

// answer signs the fields the server lists for challenge ch (as fetched), with status.
func (d device) answer(t *testing.T, fetched answer, status string) string {
	claims := map[string]any{"status": status}
	for _, name := range strings.Split(fetched.header.Get("Twilio-Verify-Signature-Fields"), ",") {
		claims[name] = fetched.body[name]
	}
	return d.sign(t, claims)
}

func TestPushChallenges(t *testing.T) {
	s := newServer(t)
	svc := s.newService(url.Values{"FriendlyName": {"Shop"}})
	base := "/v2/Services/" + svc + "/Entities/" + identity
	phone, thief := newDevice(t), newDevice(t)
	factor := func(d device) string {
		a := s.call("POST", base+"/Factors", url.Values{"FriendlyName": {"phone"}, "FactorType": {"push"}, "Binding.Alg": {"ES256"},
			"Binding.PublicKey": {d.publicKey()}, "Config.NotificationPlatform": {"none"}, "Config.SdkVersion": {"1.0.0"}})
		if a.status != 201 || a.body["status"] != "unverified" {
			t.Fatalf("create push factor: %d %s", a.status, a.raw)
		}
		return a.body["sid"].(string)
	}
	sid, thiefSID := factor(phone), factor(thief)
	challenge := func() answer {
		a := s.call("POST", base+"/Challenges", url.Values{"FactorSid": {sid}, "Details.Message": {"Sign in?"},
			"Details.Fields": {`{"label":"IP","value":"192.0.2.1"}`}, "HiddenDetails": {`{"ip":"192.0.2.1"}`}})
		if a.status != 201 || a.body["status"] != "pending" {
			t.Fatalf("challenge: %d %s", a.status, a.raw)
		}
		f := s.call("GET", base+"/Challenges/"+a.body["sid"].(string), nil)
		if f.header.Get("Twilio-Verify-Signature-Fields") == "" {
			t.Fatalf("no signature fields: %v", f.header)
		}
		return f
	}
	wantError(t, "no message", s.call("POST", base+"/Challenges", url.Values{"FactorSid": {sid}}), 400, 60200)
	wantError(t, "a push challenge answered as it is made", s.call("POST", base+"/Challenges", url.Values{"FactorSid": {sid},
		"Details.Message": {"Sign in?"}, "AuthPayload": {"123456"}}), 400, 60200)
	first, second := challenge(), challenge()
	firstSID := first.body["sid"].(string)
	// The thief's key over the right fields, and the phone's answer to another challenge,
	// answer nothing.
	wantError(t, "another factor's key", s.call("POST", base+"/Challenges/"+firstSID, url.Values{"AuthPayload": {thief.answer(t, first, "approved")}}), 400, 60200)
	wantError(t, "another challenge's answer", s.call("POST", base+"/Challenges/"+firstSID, url.Values{"AuthPayload": {phone.answer(t, second, "approved")}}), 400, 60200)
	wantError(t, "a forged status", s.call("POST", base+"/Challenges/"+firstSID, url.Values{"AuthPayload": {phone.answer(t, first, "maybe")}}), 400, 60200)
	good := phone.answer(t, first, "approved")
	if a := s.call("POST", base+"/Challenges/"+firstSID, url.Values{"AuthPayload": {good}}); a.status != 200 || a.body["status"] != "approved" {
		t.Fatalf("answer: %d %s", a.status, a.raw)
	}
	wantError(t, "a replayed answer", s.call("POST", base+"/Challenges/"+firstSID, url.Values{"AuthPayload": {good}}), 400, 60200)
	// The first approved challenge verified the factor; the thief's stays unverified.
	if a := s.call("GET", base+"/Factors/"+sid, nil); a.body["status"] != "verified" {
		t.Errorf("factor after approval: %s", a.raw)
	}
	if a := s.call("GET", base+"/Factors/"+thiefSID, nil); a.body["status"] != "unverified" {
		t.Errorf("thief's factor: %s", a.raw)
	}
	if a := s.call("POST", base+"/Challenges/"+second.body["sid"].(string), url.Values{"AuthPayload": {phone.answer(t, second, "denied")}}); a.body["status"] != "denied" {
		t.Errorf("deny: %d %s", a.status, a.raw)
	}
	wantError(t, "a bad key", s.call("POST", base+"/Factors", url.Values{"FriendlyName": {"x"}, "FactorType": {"push"}, "Binding.Alg": {"ES256"},
		"Binding.PublicKey": {"AAAA"}}), 400, 60200)
}

// TestTOTPChallengeCaps: a totp factor takes 50 challenges an hour, so that its codes cannot be
// guessed five at a time by making challenge after challenge.
func TestTOTPChallengeCaps(t *testing.T) {
	s := newServer(t)
	svc := s.newService(url.Values{"FriendlyName": {"Shop"}})
	base := "/v2/Services/" + svc + "/Entities/" + identity
	sid, _ := s.totpFactor(svc, identity)
	other, _ := s.totpFactor(svc, identity)
	for i := 0; i < 50; i++ {
		if a := s.call("POST", base+"/Challenges", url.Values{"FactorSid": {sid}, "AuthPayload": {"000000"}}); a.status != 201 {
			t.Fatalf("challenge %d: %d %s", i+1, a.status, a.raw)
		}
	}
	a := s.call("POST", base+"/Challenges", url.Values{"FactorSid": {sid}})
	wantError(t, "the 51st challenge", a, 429, 60312)
	if a.header.Get("Retry-After") == "" {
		t.Error("no Retry-After")
	}
	if a := s.call("POST", base+"/Challenges", url.Values{"FactorSid": {other}}); a.status != 201 {
		t.Errorf("another factor's challenge: %d %s", a.status, a.raw)
	}
}
