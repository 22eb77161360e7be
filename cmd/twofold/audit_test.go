package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/twofold-auth/twofold/internal/audit"
	"github.com/twofold-auth/twofold/internal/store"
)

// The audit trail of real API calls, CLI commands and authenticator answers: what is recorded,
// by whom, in order; that it verifies; that it says nothing personal; and that a change made
// directly in the database file is found and named.
func TestAuditTrail(t *testing.T) {
	s := startServer(t, "", "--rate-limit", "off", "--limit-failures", "3/15m")
	oldKey := s.key
	id := s.register(s.key, "ana@example.com", "2015550123")

	// A code by SMS: right, reused, wrong until the failure limit answers 429.
	if r := s.get(fmt.Sprintf("/protected/json/sms/%d?force=true", id)); r.status != 200 {
		t.Fatalf("sms: %s", r.raw)
	}
	code := s.lastCode("2015550123")
	verify := func(token string) response { return s.get(fmt.Sprintf("/protected/json/verify/%s/%d", token, id)) }
	if r := verify(code); r.status != 200 {
		t.Fatalf("verify: %s", r.raw)
	}
	expectError(t, verify(code), 401, "60019") // a resubmit, not a failure
	for range 3 {
		expectError(t, verify(wrongCode(code)), 401, "60020")
	}
	for range 2 { // the first refusal is recorded, the second is not
		expectError(t, verify(wrongCode(code)), 429, "60003")
	}

	// The operator rotates the key and changes a setting.
	var rotated appJSON
	s.cliJSON(&rotated, "app", "rotate-key", "1")
	s.key = rotated.APIKey
	if _, err := s.cli("app", "update", "1", "--totp-window", "2"); err != nil {
		t.Fatal(err)
	}

	// A device, by registration token; it approves one request and denies another.
	a := newAuthenticator(t)
	enrolUser(t, s, a, id)
	a.must("approve", s.createRequest(s.key, id, url.Values{"message": {"Log in to Shop"}}))
	denied := s.createRequest(s.key, id, url.Values{"message": {"Pay 10 EUR"}})
	a.must("deny", denied, "--reason", "not me")

	// A second device, by the tutorial's QR code JWT, which also creates its user.
	var app appJSON
	s.cliJSON(&app, "app", "show", "1")
	jwt := tutorialJWT(t, s.key, app.Name, app.AppID, "user-7", time.Now(), time.Now().Add(5*time.Minute))
	var added accountJSON
	a.json(&added, "enrol", "authy://account?token="+jwt, "--server", s.url)
	var codes []codeJSON // its own TOTP codes verify too
	a.json(&codes, "codes", "2")
	if len(codes) != 1 {
		t.Fatalf("codes of the second device: %+v", codes)
	}
	if r := s.get(fmt.Sprintf("/protected/json/verify/%s/%d", codes[0].Code, added.AuthyID)); r.status != 200 {
		t.Fatalf("verify a device code: %s", r.raw)
	}

	// The first device removes itself; the customer deletes the first user.
	a.must("remove", "1")
	if r := s.post(fmt.Sprintf("/protected/json/users/%d/remove", id), nil); r.status != 200 {
		t.Fatalf("remove user: %s", r.raw)
	}

	var entries []audit.Entry
	s.cliJSON(&entries, "audit", "list", "--limit", "100")
	type want struct {
		actor, action string
		user          int64
		details       map[string]string // a subset of the entry's
	}
	app1, dev1, dev2 := "api:app/1", "device:1", "device:2"
	wants := []want{
		{"system", "app.created", 0, map[string]string{"name": "My first app", "sandbox": "false"}},
		{app1, "user.created", id, nil},
		{app1, "verification.succeeded", id, map[string]string{"method": "sms"}},
		{app1, "verification.failed", id, map[string]string{"why": "reused"}},
		{app1, "verification.failed", id, map[string]string{"why": "invalid"}},
		{app1, "verification.failed", id, map[string]string{"why": "invalid"}},
		{app1, "verification.failed", id, map[string]string{"why": "invalid"}},
		{app1, "limit.hit", id, map[string]string{"limit": "failures", "max": "3", "window": "15m0s"}},
		{"cli", "app.key_rotated", 0, nil},
		{"cli", "app.updated", 0, map[string]string{"changed": "totp_window"}},
		{dev1, "device.added", id, map[string]string{"device_id": "1", "via": "registration_token"}},
		{dev1, "approval.approved", id, map[string]string{"device_id": "1"}},
		{dev1, "approval.denied", id, map[string]string{"device_id": "1", "uuid": denied, "reason": "not me"}},
		{app1, "user.created", added.AuthyID, map[string]string{"via": "registration_jwt"}},
		{dev2, "device.added", added.AuthyID, map[string]string{"device_id": "2", "via": "registration_jwt"}},
		{app1, "verification.succeeded", added.AuthyID, map[string]string{"method": "device"}},
		{dev1, "device.removed", id, map[string]string{"device_id": "1"}},
		{app1, "user.deleted", id, nil},
	}
	if len(entries) != len(wants) {
		t.Errorf("audit list has %d entries, want %d", len(entries), len(wants))
	}
	for i, e := range entries {
		if i >= len(wants) {
			t.Errorf("unexpected entry %+v", e)
			continue
		}
		w := wants[i]
		ok := e.ID == int64(i+1) && e.Actor == w.actor && e.Action == w.action && e.UserID == w.user && e.AppID == 1 &&
			len(e.Hash) == 64 && time.Since(e.At) < time.Minute
		for k, v := range w.details {
			ok = ok && e.Details[k] == v
		}
		if !ok {
			t.Errorf("entry %d = %+v\nwant %s %s user %d details ⊇ %v", i+1, e, w.actor, w.action, w.user, w.details)
		}
	}

	// Filters, and the table for people.
	var failed []audit.Entry
	s.cliJSON(&failed, "audit", "list", "--action", "verification.failed", "--user", fmt.Sprint(id), "--since", "1h")
	if len(failed) != 4 || failed[0].ID != 4 {
		t.Errorf("verification.failed of user %d: %+v", id, failed)
	}
	var newest []audit.Entry
	s.cliJSON(&newest, "audit", "list", "--limit", "2")
	if len(newest) != 2 || newest[0].ID != 17 || newest[1].ID != 18 {
		t.Errorf("the newest two: %+v", newest)
	}
	table, err := s.cli("audit", "list", "--app", "1")
	if err != nil || !strings.Contains(table, "ACTOR") || !regexp.MustCompile(`(?m)^13 .* device:1 +approval\.denied +1 +1 .*reason="not me"`).MatchString(table) {
		t.Errorf("audit list table (%v):\n%s", err, table)
	}
	for _, bad := range [][]string{{"list", "--action", "nope"}, {"list", "--since", "yesterday"}, {"list", "--limit", "0"}} {
		if _, err := s.cli(append([]string{"audit"}, bad...)...); err == nil {
			t.Errorf("audit %v accepted", bad)
		}
	}

	// The export says nothing personal or secret.
	export, err := s.cli("audit", "export")
	if err != nil {
		t.Fatal(err)
	}
	if lines := strings.Count(export, "\n"); lines != len(wants) {
		t.Errorf("export has %d lines, want %d", lines, len(wants))
	}
	// (Codes are digits, which hashes and times are full of: look for them in the other fields.)
	var fields strings.Builder
	for _, line := range strings.Split(strings.TrimSpace(export), "\n") {
		var e audit.Entry
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("export line %q: %v", line, err)
		}
		e.At, e.Hash, e.PrevHash = time.Time{}, "", ""
		b, _ := json.Marshal(e)
		fields.Write(b)
	}
	for _, secret := range []string{"2015550123", "201-555", "ana@example.com", code, codes[0].Code, oldKey, s.key, jwt, "tfd_", "tfr_", "user-7"} {
		if strings.Contains(fields.String(), secret) || (len(secret) > 8 && strings.Contains(export, secret)) {
			t.Errorf("the export contains %q", secret)
		}
	}
	exported, err := s.cli("audit", "export", "--app", "1", "--action", "device.added")
	if err != nil || strings.Count(exported, "\n") != 2 {
		t.Errorf("filtered export (%v):\n%s", err, exported)
	}

	// It verifies, also against the head it printed.
	out, err := s.cli("audit", "verify")
	head := regexp.MustCompile(`--head (\d+:[0-9a-f]{64})`).FindStringSubmatch(out)
	if err != nil || !strings.Contains(out, "intact: 18 entries") || head == nil {
		t.Fatalf("audit verify (%v):\n%s", err, out)
	}
	if out, err := s.cli("audit", "verify", "--head", head[1]); err != nil {
		t.Fatalf("audit verify --head %s: %v\n%s", head[1], err, out)
	}
	if _, err := s.cli("audit", "verify", "--head", "18:"+strings.Repeat("ab", 32)); err == nil || !strings.Contains(err.Error(), "entry 18") {
		t.Errorf("verify against another head: %v", err)
	}
	if _, err := s.cli("audit", "verify", "--head", "19:"+strings.Repeat("ab", 32)); err == nil || !strings.Contains(err.Error(), "cut off") {
		t.Errorf("verify against a head past the end: %v", err)
	}

	if m := s.do("GET", "/metrics", "", nil).raw; !strings.Contains(m, "twofold_audit_write_failures_total 0") {
		t.Errorf("no audit failure counter in /metrics:\n%s", grep(m, "audit"))
	}

	// Someone with the database file, but not the master key, rewrites how a user verified.
	s.stop()
	db, err := sql.Open("sqlite", filepath.Join(s.dataDir, store.DatabaseFile))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	if _, err := db.ExecContext(ctx, `UPDATE audit_log SET details = '{"method":"totp"}' WHERE id = 3`); err == nil ||
		!strings.Contains(err.Error(), "append-only") {
		t.Fatalf("an update with the guards in place: %v", err)
	}
	for _, q := range []string{`DROP TRIGGER audit_log_no_update`, `UPDATE audit_log SET details = '{"method":"totp"}' WHERE id = 3`} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	out, err = s.cli("audit", "verify")
	if err == nil || !strings.Contains(err.Error(), "entry 3") || !strings.Contains(out, "TAMPERED: entry 3") {
		t.Fatalf("audit verify after tampering: %v\n%s", err, out)
	}
	out, err = s.cli("audit", "verify", "--json")
	var report verifyJSON
	if err == nil || json.Unmarshal([]byte(out), &report) != nil || report.OK || report.FirstBad != 3 || report.Checked != 2 || report.Problem == "" {
		t.Fatalf("audit verify --json after tampering: %v\n%s", err, out)
	}
}

func TestParseSince(t *testing.T) {
	now := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	for _, tc := range []struct {
		in   string
		want time.Time
		ok   bool
	}{
		{"24h", now.Add(-24 * time.Hour), true},
		{"90m", now.Add(-90 * time.Minute), true},
		{"7d", now.AddDate(0, 0, -7), true},
		{"2026-01-02T03:04:05Z", time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), true},
		{"2026-01-02", time.Date(2026, 1, 2, 0, 0, 0, 0, time.Local), true},
		{"-1h", time.Time{}, false},
		{"0d", time.Time{}, false},
		{"yesterday", time.Time{}, false},
		{"", time.Time{}, false},
	} {
		got, err := parseSince(tc.in, now)
		if (err == nil) != tc.ok || (tc.ok && !got.Equal(tc.want)) {
			t.Errorf("parseSince(%q) = %v, %v; want %v (ok %v)", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

func TestVerifyProgress(t *testing.T) {
	var out bytes.Buffer
	progress := verifyProgress(&out)
	for checked := int64(1000); checked <= 25000; checked += 1000 {
		progress(checked)
	}
	progress(25500)
	if want := "checked 10000 entries...\nchecked 20000 entries...\n"; out.String() != want {
		t.Errorf("progress printed %q, want %q", out.String(), want)
	}
}

func TestAuditHelp(t *testing.T) {
	for _, args := range [][]string{{"audit", "--help"}, {"audit", "list", "--help"}, {"audit", "verify", "--help"}, {"audit", "export", "--help"}} {
		var out bytes.Buffer
		env := Env{Stdout: &out, Stderr: &out, Getenv: func(string) string { return "" }}
		if err := run(context.Background(), args, env); err != nil || !strings.Contains(out.String(), "Usage:") ||
			!strings.Contains(out.String(), "--data-dir") {
			t.Errorf("%v: %v\n%s", args, err, out.String())
		}
	}
}
