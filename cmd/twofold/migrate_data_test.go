package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twofold-auth/twofold/internal/otp"
	"github.com/twofold-auth/twofold/internal/store"
	"github.com/twofold-auth/twofold/internal/store/storetest"
)

// runMigrateData runs twofold migrate-data --json and returns its report and standard error.
func runMigrateData(t *testing.T, dataDir string, args ...string) (migrateDataJSON, string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	env := Env{Stdout: &out, Stderr: &errOut, Getenv: func(string) string { return "" }}
	err := run(context.Background(), append([]string{"migrate-data", "--data-dir", dataDir, "--json"}, args...), env)
	var rep migrateDataJSON
	if err == nil {
		if jerr := json.Unmarshal(out.Bytes(), &rep); jerr != nil {
			t.Fatalf("migrate-data --json: %v\n%s", jerr, out.String())
		}
	}
	return rep, errOut.String(), err
}

// pgRows counts the rows of every table of the PostgreSQL schema dsn names.
func pgRows(t *testing.T, dsn string) map[string]int64 {
	t.Helper()
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(`SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()
		AND table_type = 'BASE TABLE' AND table_name <> 'goose_db_version'`)
	if err != nil {
		t.Fatal(err)
	}
	var tables []string
	for rows.Next() {
		var name string
		rows.Scan(&name)
		tables = append(tables, name)
	}
	rows.Close()
	counts := map[string]int64{}
	for _, tb := range tables {
		var n int64
		if err := db.QueryRow(`SELECT count(*) FROM ` + tb).Scan(&n); err != nil {
			t.Fatal(err)
		}
		counts[tb] = n
	}
	if len(counts) == 0 {
		t.Fatal("the PostgreSQL schema has no tables")
	}
	return counts
}

// An installation made on SQLite through the API moves to PostgreSQL and goes on working
// there: same API key, users, codes, TOTP seeds, devices, approvals and audit trail, and new
// rows get new ids.
func TestMigrateDataToPostgres(t *testing.T) {
	dsn := storetest.Schema(t)
	s := startServer(t, "", "--rate-limit", "off", "--push-allow-hosts", "127.0.0.1:9", "--callback-allow-hosts", "127.0.0.1:9")
	dir := s.dataDir
	if _, err := s.cli("app", "update", "1", "--callback-url", "http://127.0.0.1:9/authy/callback"); err != nil {
		t.Fatal(err)
	}
	if _, err := runWithStdin(t, dir, "a long enough password\n", "admin", "create", "ops@example.com"); err != nil {
		t.Fatal(err)
	}

	// A user with codes by SMS, one verified and one still outstanding.
	alice := s.register(s.key, "alice@example.com", "2015550123")
	s.get(fmt.Sprintf("/protected/json/sms/%d?force=true", alice))
	if r := s.get(fmt.Sprintf("/protected/json/verify/%s/%d", s.lastCode("+12015550123"), alice)); r.status != 200 {
		t.Fatalf("verify: %s", r.raw)
	}
	if r := s.do("POST", fmt.Sprintf("/protected/json/users/%d/register_activity", alice), s.key,
		`{"data":{"reason":"x"},"type":"password_reset","user_ip":"192.0.2.1"}`); r.status != 200 {
		t.Fatalf("activity: %s", r.raw)
	}
	// A user with a TOTP authenticator, one code used.
	bob := s.register(s.key, "bob@example.com", "2015550124")
	r := s.post(fmt.Sprintf("/protected/json/users/%d/secret", bob), nil)
	key, err := otp.ParseURI(r.body["uri"].(string))
	if err != nil {
		t.Fatal(err)
	}
	usedTOTP := key.Code(time.Now())
	if r := s.get(fmt.Sprintf("/protected/json/verify/%s/%d", usedTOTP, bob)); r.status != 200 {
		t.Fatalf("TOTP: %s", r.raw)
	}
	// A user with a device that approved a request and subscribed to push.
	carol := s.register(s.key, "carol@example.com", "2015550125")
	d := s.newDevice(s.key, carol)
	uuid := s.createRequest(s.key, carol, url.Values{"message": {"Log in"}})
	if r := d.answer(s, uuid, "approved", "", ""); r.status != 200 {
		t.Fatalf("answer: %s", r.raw)
	}
	if r := d.call(s, "POST", "/device/v1/push", map[string]any{"kind": "ntfy", "endpoint": "http://127.0.0.1:9/carol"}); r.status != 200 {
		t.Fatalf("push subscription: %s", r.raw)
	}
	// A phone verification, and the newest user removed: its id must never be given again.
	if r := s.post("/protected/json/phones/verification/start", url.Values{"via": {"sms"}, "phone_number": {"201-555-0199"}, "country_code": {"1"}}); r.status != 200 {
		t.Fatalf("phone verification: %s", r.raw)
	}
	dave := s.register(s.key, "dave@example.com", "2015550126")
	if r := s.post(fmt.Sprintf("/protected/json/users/%d/remove", dave), nil); r.status != 200 {
		t.Fatalf("remove: %s", r.raw)
	}
	apiKey := s.key
	s.stop()

	rep, stderr, err := runMigrateData(t, dir, "--from", "sqlite:"+filepath.Join(dir, store.DatabaseFile), "--to", dsn)
	if err != nil {
		t.Fatalf("migrate-data: %v\n%s", err, stderr)
	}
	if !rep.Match || rep.SchemaVersion == 0 || strings.Contains(rep.To, "password") || !strings.Contains(rep.MasterKey, "master.key") {
		t.Fatalf("report: %+v", rep)
	}
	got := map[string]tableCountJSON{}
	for _, tc := range rep.Tables {
		got[tc.Table] = tc
		if tc.Source != tc.Target {
			t.Errorf("%s: %d rows in SQLite, %d in PostgreSQL", tc.Table, tc.Source, tc.Target)
		}
	}
	for _, table := range []string{"apps", "users", "authenticators", "codes", "messages", "activities", "usage_monthly",
		"registration_tokens", "devices", "approval_requests", "callbacks", "push_subscriptions", "server_keys",
		"phone_verifications", "audit_log", "operators"} {
		if got[table].Target == 0 {
			t.Errorf("table %s: no rows copied (%+v)", table, got[table])
		}
	}
	pg := pgRows(t, dsn)
	if len(pg) != len(rep.Tables) {
		t.Errorf("PostgreSQL has %d tables, the report %d: %v", len(pg), len(rep.Tables), pg)
	}
	for table, n := range pg {
		if got[table].Target != n {
			t.Errorf("%s: %d rows in PostgreSQL, report says %d", table, n, got[table].Target)
		}
	}
	if !strings.Contains(stderr, "copied users: ") {
		t.Errorf("no progress on stderr:\n%s", stderr)
	}

	// The same data directory (so the same master key) on PostgreSQL.
	s = startServer(t, dir, "--database", dsn, "--rate-limit", "off")
	if !strings.Contains(s.logs.String(), "database=postgres") {
		t.Fatalf("not on PostgreSQL:\n%s", s.logs.String())
	}
	if s.key != apiKey {
		t.Fatalf("the API key changed: %q, was %q", s.key, apiKey)
	}
	if r := s.get("/protected/json/app/details"); r.status != 200 {
		t.Fatalf("the old API key: %s", r.raw)
	}
	// An old user gets and verifies a new code (new codes and messages rows).
	if r := s.get(fmt.Sprintf("/protected/json/sms/%d?force=true", alice)); r.status != 200 {
		t.Fatalf("sms on PostgreSQL: %s", r.raw)
	}
	if r := s.get(fmt.Sprintf("/protected/json/verify/%s/%d", s.lastCode("+12015550123"), alice)); r.status != 200 {
		t.Fatalf("verify on PostgreSQL: %s", r.raw)
	}
	// The sealed TOTP seed opens, and the used code is still used.
	if r := s.get(fmt.Sprintf("/protected/json/verify/%s/%d", usedTOTP, bob)); r.status == 200 {
		t.Fatalf("a used TOTP code passed again after the move: %s", r.raw)
	}
	next := key.Code(time.Now().Add(time.Duration(key.Period) * time.Second)) // the next step, inside the default window of 1
	if r := s.get(fmt.Sprintf("/protected/json/verify/%s/%d", next, bob)); r.status != 200 {
		t.Fatalf("TOTP on PostgreSQL: %s", r.raw)
	}
	// The device's token still works and its approval is still approved.
	if r := d.call(s, "GET", "/device/v1/device", nil); r.status != 200 {
		t.Fatalf("device token on PostgreSQL: %s", r.raw)
	}
	if st := s.requestStatus(uuid); st["status"] != "approved" {
		t.Fatalf("approval on PostgreSQL: %v", st)
	}
	// New rows get new ids: past every id SQLite handed out, the removed user's too.
	erin := s.register(s.key, "erin@example.com", "2015550127")
	if erin <= dave {
		t.Fatalf("new user id %d, not past %d", erin, dave)
	}
	if _, err := s.cli("app", "create", "--name", "Second"); err != nil {
		t.Fatalf("a new application on PostgreSQL: %v", err)
	}
	if out, err := s.cli("audit", "verify"); err != nil || !strings.Contains(out, "intact") {
		t.Fatalf("audit verify on PostgreSQL: %v\n%s", err, out)
	}
}

// migrate-data fills only an empty database, and a copy that fails part-way leaves the target
// empty, ready for another try.
func TestMigrateDataRefusesAndRollsBack(t *testing.T) {
	dsn := storetest.Schema(t)
	s := startServer(t, "", "--rate-limit", "off")
	dir := s.dataDir
	s.register(s.key, "alice@example.com", "2015550123")
	s.register(s.key, "bob@example.com", "2015550124")
	s.stop()

	// A row PostgreSQL cannot take: SQLite keeps text in an INTEGER column.
	db, err := sql.Open("sqlite", filepath.Join(dir, store.DatabaseFile))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`UPDATE users SET updated_at = 'yesterday' WHERE id = 2`); err != nil {
		t.Fatal(err)
	}
	_, stderr, err := runMigrateData(t, dir, "--to", dsn)
	if err == nil || !strings.Contains(err.Error(), "nothing was copied") || !strings.Contains(err.Error(), "users") {
		t.Fatalf("a row PostgreSQL refuses: %v", err)
	}
	if !strings.Contains(stderr, "copied apps") {
		t.Fatalf("the copy did not get past the first table before failing:\n%s", stderr)
	}
	for table, n := range pgRows(t, dsn) {
		if n != 0 {
			t.Errorf("after a failed copy, %s has %d rows", table, n)
		}
	}

	// Fixed, the copy goes through (the data directory is the default --from) ...
	if _, err := db.Exec(`UPDATE users SET updated_at = created_at WHERE id = 2`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	rep, stderr, err := runMigrateData(t, dir, "--to", dsn)
	if err != nil || !rep.Match {
		t.Fatalf("migrate-data: %v %+v\n%s", err, rep, stderr)
	}
	// ... once: the target now has rows.
	_, _, err = runMigrateData(t, dir, "--to", dsn)
	if err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Fatalf("a second copy into the same database: %v", err)
	}

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--from", filepath.Join(t.TempDir(), "none.db"), "--to", dsn}, "no SQLite database"},
		{[]string{"--from", dsn, "--to", dsn}, "not supported yet"},
		{[]string{"--to", filepath.Join(dir, "other.db")}, "postgres://"},
		{[]string{}, "--to is required"},
	} {
		if _, _, err := runMigrateData(t, dir, tc.args...); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("migrate-data %v: %v, want %q", tc.args, err, tc.want)
		}
	}
}
