package main

import (
	"strings"
	"testing"

	"github.com/twofold-auth/twofold/internal/store/storetest"
)

// The server on PostgreSQL (--database), driven as on SQLite: the first application, a user, a
// code sent and verified, once; the CLI on the same database; `twofold migrate`.
func TestServeOnPostgres(t *testing.T) {
	dsn := storetest.Schema(t)
	dir := t.TempDir()
	if out, err := runCLI(dir, "migrate", "--database", dsn); err != nil || !strings.Contains(out, "up to date") {
		t.Fatalf("migrate: %v\n%s", err, out)
	}
	s := startServer(t, dir, "--database", dsn, "--rate-limit", "off")
	if !strings.Contains(s.logs.String(), "database=postgres") {
		t.Fatalf("the server does not say it runs on PostgreSQL:\n%s", s.logs.String())
	}
	id := s.register(s.key, "ana@example.com", "2015550123")
	if r := s.get("/protected/json/sms/" + itoa64(id) + "?force=true"); r.status != 200 {
		t.Fatalf("sms: %s", r.raw)
	}
	code := s.lastCode("2015550123")
	if r := s.get("/protected/json/verify/" + code + "/" + itoa64(id)); r.status != 200 {
		t.Fatalf("verify: %s", r.raw)
	}
	expectError(t, s.get("/protected/json/verify/"+code+"/"+itoa64(id)), 401, "60019")
	if out, err := s.cli("audit", "verify"); err != nil {
		t.Fatalf("audit verify on PostgreSQL: %v\n%s", err, out)
	}

	// Another data directory's master key is refused: it could read nothing sealed here.
	if _, err := runCLI(t.TempDir(), "app", "list", "--database", dsn); err == nil || !strings.Contains(err.Error(), "master key") {
		t.Fatalf("a second master key: %v", err)
	}
	if _, err := runCLI(dir, "app", "list", "--database", "mysql://x"); err == nil || !strings.Contains(err.Error(), "postgres://") {
		t.Fatalf("a database that is not PostgreSQL: %v", err)
	}
}
