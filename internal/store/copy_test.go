package store

import (
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/twofold-auth/twofold/internal/store/storetest"
	"github.com/twofold-auth/twofold/internal/twofold"
)

// CopyTo moves a SQLite store into an empty PostgreSQL one exactly: an empty blob stays empty
// (not NULL), NULL stays NULL, and ids continue past the largest SQLite ever gave, a removed
// row's too.
func TestCopySQLiteToPostgres(t *testing.T) {
	ctx := t.Context()
	dsn := storetest.Schema(t)
	src := openSQLiteAt(t, filepath.Join(t.TempDir(), DatabaseFile))
	a := mkApp(t, src, "a")
	seeded := mkUser(t, src, a.ID, 1, "2015550123")
	// A seed and its replay state (two tables since migration 00035; the SQLite seed's row keeps
	// retired columns that PostgreSQL dropped).
	au := mkAuthenticator(t, src, seeded)
	au.SecretSealed, au.CreatedAt = []byte("new seed"), t0.Add(time.Hour)
	must(t, src.PutAuthenticator(ctx, &au))
	if ok, err := src.AdvanceStep(ctx, a.ID, seeded.ID, au.Version, 4242); !ok || err != nil {
		t.Fatalf("AdvanceStep = %v, %v", ok, err)
	}
	gone := mkUser(t, src, a.ID, 1, "2015550124")
	must(t, src.DeleteUser(ctx, a.ID, gone.ID))
	importUsers(t, src, mkApp(t, src, "b").ID, imported(5000, 1, "2015550126"))
	if _, err := src.ServerKeyOrCreate(ctx, ServerKey{Name: "empty", PublicKey: []byte("pk"), PrivateSealed: []byte{}, CreatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	must(t, errOf(src.w.ExecContext(ctx, `INSERT INTO codes (app_id, user_id, channel, action, mac, created_at, expires_at, used_at)
		VALUES ($1, 1, 'sms', '', x'00', 1, 2, NULL)`, a.ID)))

	dst, err := OpenPostgres(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	if _, err := dst.CopyTo(ctx, src, nil); err == nil {
		t.Fatal("a copy from PostgreSQL to SQLite was accepted")
	}
	var progress []string
	copied, err := src.CopyTo(ctx, dst, func(table string, n, total int64) {
		progress = append(progress, table)
	})
	if err != nil {
		t.Fatalf("CopyTo: %v", err)
	}
	tables, _ := src.Tables(ctx)
	if len(copied) != len(tables) || len(progress) < len(tables) {
		t.Fatalf("copied %v, progress %v; want every table of %v", copied, progress, tables)
	}
	var sealed []byte
	var isNull bool
	must(t, dst.r.QueryRowContext(ctx, `SELECT private_sealed FROM server_keys WHERE name = 'empty'`).Scan(&sealed))
	must(t, dst.r.QueryRowContext(ctx, `SELECT used_at IS NULL FROM codes`).Scan(&isNull))
	if sealed == nil || len(sealed) != 0 || !isNull {
		t.Fatalf("private_sealed %#v (want empty, not NULL), used_at NULL %v", sealed, isNull)
	}
	if got, err := dst.GetAuthenticator(ctx, a.ID, seeded.ID); err != nil || got.Version != 2 || got.LastStep != 4242 ||
		string(got.SecretSealed) != "new seed" {
		t.Fatalf("the authenticator on PostgreSQL: %+v, %v; want version 2, step 4242", got, err)
	}
	if ok, err := dst.AdvanceStep(ctx, a.ID, seeded.ID, 2, 4242); ok || err != nil {
		t.Fatalf("step 4242 again on PostgreSQL = %v, %v; want a replay", ok, err)
	}
	next := twofold.User{AppID: a.ID, Email: "n@example.com", CountryCode: 1, Phone: "2015550125", CreatedAt: t0}
	if _, err := dst.CreateUser(ctx, &next); err != nil || next.ID <= 5000 {
		t.Fatalf("a new user on PostgreSQL: id %d, %v; want past the imported 5000 (and the deleted %d)", next.ID, err, gone.ID)
	}
	if _, err := src.CopyTo(ctx, dst, nil); !errors.Is(err, ErrTargetNotEmpty) {
		t.Fatalf("a second copy: %v", err)
	}
}
