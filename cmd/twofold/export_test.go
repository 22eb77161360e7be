package main

import (
	"fmt"
	"maps"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twofold-auth/twofold/internal/audit"
	"github.com/twofold-auth/twofold/internal/otp"
)

// Authy's migration exports, as a customer moving away (to Twilio Verify, or from one Twofold
// to another) calls them: users/{id}/phone_number and users/{id}/secret/export. Authy answered
// them only for applications it had enabled them for; here they are an application's setting,
// off until the operator turns it on.
func TestMigrationExports(t *testing.T) {
	s := startServer(t, "", "--rate-limit", "off", "--log-level", "debug")
	alice := s.register(s.key, "alice@example.com", "201-555-0123") // a TOTP app
	bob := s.register(s.key, "bob@example.com", "2015550124")       // a device only
	carol := s.register(s.key, "carol@example.com", "2015550125")   // nothing
	enrolled := s.post(fmt.Sprintf("/protected/json/users/%d/secret", alice), nil)
	if enrolled.status != 200 {
		t.Fatalf("secret: %s", enrolled.raw)
	}
	key, err := otp.ParseURI(enrolled.body["uri"].(string))
	if err != nil {
		t.Fatal(err)
	}
	seed := otp.EncodeSecret(key.Secret)
	s.newDevice(s.key, bob)
	secretOf := func(id int64) response { return s.get(fmt.Sprintf("/protected/json/users/%d/secret/export", id)) }
	phoneOf := func(id int64) response { return s.get(fmt.Sprintf("/protected/json/users/%d/phone_number", id)) }

	// Off by default: both exports answer 60154, whoever is asked for.
	var app appJSON
	s.cliJSON(&app, "app", "show", "1")
	if app.MigrationTools {
		t.Fatal("a new application has the migration tools on")
	}
	for _, id := range []int64{alice, carol, 999999} {
		r := secretOf(id)
		expectError(t, r, 400, "60154")
		if r.body["message"] != "Migration tools disabled." {
			t.Fatalf("secret export, disabled: %s", r.raw)
		}
		r = phoneOf(id)
		expectError(t, r, 400, "60154")
		if r.body["message"] != "Phone number export disabled." {
			t.Fatalf("phone export, disabled: %s", r.raw)
		}
	}

	s.cliJSON(&app, "app", "update", "1", "--migration-tools")
	if !app.MigrationTools {
		t.Fatalf("app update --migration-tools: %+v", app)
	}
	s.cliJSON(&app, "app", "show", "1")
	if !app.MigrationTools {
		t.Fatalf("app show after --migration-tools: %+v", app)
	}
	if text, err := s.cli("app", "show", "1"); err != nil || !regexp.MustCompile(`migration exports:\s+on`).MatchString(text) {
		t.Fatalf("app show for people: %v\n%s", err, text)
	}

	// The seed, and a code of it valid now, in Authy's shape: digits and period besides, so an
	// importer makes exactly the same TOTP.
	r := secretOf(alice)
	if r.status != 200 || !strings.HasPrefix(r.header.Get("Content-Type"), "application/json") {
		t.Fatalf("secret export: %d %s", r.status, r.raw)
	}
	if keys := slices.Sorted(maps.Keys(r.body)); !slices.Equal(keys, []string{"digits", "otp", "period", "secret", "success"}) {
		t.Fatalf("secret export has keys %v: %s", keys, r.raw)
	}
	code, _ := r.body["otp"].(string)
	if r.body["secret"] != seed || r.body["digits"] != float64(6) || r.body["period"] != float64(30) || r.body["success"] != true ||
		len(code) != 6 || strings.Contains(r.raw, ": ") {
		t.Fatalf("secret export: %s (seed %s)", r.raw, seed)
	}
	exported, err := otp.DecodeSecret(r.body["secret"].(string))
	if err != nil {
		t.Fatal(err)
	}
	tt := otp.TOTP{Secret: exported, Digits: 6, Period: 30}
	if _, ok := tt.Match(code, time.Now(), 1); !ok {
		t.Fatalf("the exported otp %s is not a code of the exported secret", code)
	}
	// The code verifies, once, like any code of the seed: exporting spent nothing.
	if v := s.get(fmt.Sprintf("/protected/json/verify/%s/%d", code, alice)); v.status != 200 {
		t.Fatalf("verify the exported otp: %s", v.raw)
	}
	expectError(t, s.get(fmt.Sprintf("/protected/json/verify/%s/%d", code, alice)), 401, "60019")

	// Users without a seed to export: a clear 404 of its own, not 60026 (the user exists, and
	// its phone number exports).
	for _, id := range []int64{bob, carol} {
		r := secretOf(id)
		expectError(t, r, 404, "60113")
		if !strings.Contains(r.body["message"].(string), "users/{id}/secret") {
			t.Fatalf("no seed: %s", r.raw)
		}
	}
	expectError(t, secretOf(999999), 404, "60026")
	expectError(t, s.get("/protected/json/users/tony/secret/export"), 404, "60026")

	// The phone number: national digits, country code and E.164, as Authy's export (whose
	// country_code is a string), and when the user last changed.
	r = phoneOf(alice)
	if r.status != 200 || r.body["phone_number"] != "2015550123" || r.body["country_code"] != "1" || r.body["e164"] != "+12015550123" ||
		r.body["success"] != true {
		t.Fatalf("phone export: %s", r.raw)
	}
	if at, err := time.Parse(time.RFC3339, fmt.Sprint(r.body["updated_at"])); err != nil || time.Since(at) > time.Minute {
		t.Fatalf("phone export updated_at: %s", r.raw)
	}
	expectError(t, phoneOf(999999), 404, "60026")
	// A user registered by QR code has no phone number: a 404 of its own, not 60026.
	reg := s.registerWithJWT(tutorialJWT(t, s.key, "My first app", "1", "qr-user", time.Now(), time.Now().Add(5*time.Minute)))
	if reg.status != 200 {
		t.Fatalf("registration by JWT: %s", reg.raw)
	}
	phoneless := int64(reg.body["device"].(map[string]any)["authy_id"].(float64))
	expectError(t, phoneOf(phoneless), 404, "60058")
	expectError(t, secretOf(phoneless), 404, "60113")

	// Tenant isolation: another application's key, migration tools on or off, exports nothing of
	// this one's users.
	var other appJSON
	s.cliJSON(&other, "app", "create", "--name", "Other")
	expectError(t, s.do("GET", fmt.Sprintf("/protected/json/users/%d/secret/export", alice), other.APIKey, nil), 400, "60154")
	s.cliJSON(&other, "app", "update", fmt.Sprint(other.AppID), "--migration-tools")
	for _, path := range []string{"/protected/json/users/%d/secret/export", "/protected/json/users/%d/phone_number"} {
		expectError(t, s.do("GET", fmt.Sprintf(path, alice), other.APIKey, nil), 404, "60026")
	}

	// Every export is in the audit trail, saying what was exported and never the value.
	var entries []audit.Entry
	s.cliJSON(&entries, "audit", "list", "--action", "user.exported", "--limit", "100")
	var got []string
	for _, e := range entries {
		if e.Actor != "api:app/1" || e.AppID != 1 {
			t.Errorf("export entry %+v", e)
		}
		got = append(got, fmt.Sprintf("%d:%s", e.UserID, e.Details["what"]))
	}
	want := []string{fmt.Sprintf("%d:totp_secret", alice), fmt.Sprintf("%d:phone_number", alice)}
	if !slices.Equal(got, want) {
		t.Errorf("export entries %v, want %v", got, want)
	}
	trail, err := s.cli("audit", "export")
	if err != nil {
		t.Fatal(err)
	}
	// Nothing exported is written down: not in the trail, not in the server's log.
	for _, secret := range []string{seed, strings.ToLower(seed), code, "2015550123"} {
		if strings.Contains(trail, secret) {
			t.Errorf("the audit trail holds %q", secret)
		}
		if strings.Contains(s.logs.String(), secret) {
			t.Errorf("the server's log holds %q", secret)
		}
	}

	// Turned off again, the exports stop.
	s.cliJSON(&app, "app", "update", "1", "--migration-tools=false")
	expectError(t, secretOf(alice), 400, "60154")
	expectError(t, phoneOf(alice), 400, "60154")
	var changed []audit.Entry
	s.cliJSON(&changed, "audit", "list", "--action", "app.updated", "--app", "1")
	if len(changed) != 2 || changed[0].Details["changed"] != "migration_tools" || changed[1].Details["changed"] != "migration_tools" {
		t.Errorf("app.updated entries: %+v", changed)
	}
}

// The exports answer the API key's rate limit like every call, 429 with 60003.
func TestMigrationExportsRateLimited(t *testing.T) {
	s := startServer(t, "", "--rate-limit", "3/1h")
	if _, err := s.cli("app", "update", "1", "--migration-tools"); err != nil {
		t.Fatal(err)
	}
	id := s.register(s.key, "dave@example.com", "2015550126") // the first of 3
	if r := s.post(fmt.Sprintf("/protected/json/users/%d/secret", id), url.Values{}); r.status != 200 {
		t.Fatalf("secret: %s", r.raw)
	}
	if r := s.get(fmt.Sprintf("/protected/json/users/%d/secret/export", id)); r.status != 200 {
		t.Fatalf("secret export: %s", r.raw)
	}
	expectError(t, s.get(fmt.Sprintf("/protected/json/users/%d/secret/export", id)), 429, "60003")
	expectError(t, s.get(fmt.Sprintf("/protected/json/users/%d/phone_number", id)), 429, "60003")
}
