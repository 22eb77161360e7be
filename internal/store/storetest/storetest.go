// Package storetest gives tests a PostgreSQL database of their own: a fresh schema in the
// database TWOFOLD_TEST_POSTGRES names (postgres://postgres@127.0.0.1:5432/test?sslmode=disable
// on the CI machine), dropped when the test ends. Without that variable the test is skipped,
// or fails when TWOFOLD_REQUIRE_POSTGRES=1.
package storetest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"strings"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver
)

// DSN returns TWOFOLD_TEST_POSTGRES, or skips tb.
func DSN(tb testing.TB) string {
	tb.Helper()
	dsn := os.Getenv("TWOFOLD_TEST_POSTGRES")
	if dsn == "" {
		if os.Getenv("TWOFOLD_REQUIRE_POSTGRES") == "1" {
			tb.Fatal("TWOFOLD_REQUIRE_POSTGRES=1 but TWOFOLD_TEST_POSTGRES does not name a database")
		}
		tb.Skip("PostgreSQL tests skipped: set TWOFOLD_TEST_POSTGRES to a DSN such as " +
			"postgres://postgres@127.0.0.1:5432/test?sslmode=disable to run them")
	}
	return dsn
}

// Schema creates an empty schema in the test database, dropped with everything in it when tb
// ends (register it before anything that must be closed first), and returns a DSN whose
// search_path is that schema.
func Schema(tb testing.TB) string {
	tb.Helper()
	dsn := DSN(tb)
	admin, err := sql.Open("pgx", dsn)
	if err != nil {
		tb.Fatal(err)
	}
	b := make([]byte, 8)
	rand.Read(b)
	schema := "tf_" + hex.EncodeToString(b)
	if _, err := admin.ExecContext(context.Background(), `CREATE SCHEMA `+schema); err != nil {
		admin.Close()
		tb.Fatalf("create schema: %v", err)
	}
	tb.Cleanup(func() {
		defer admin.Close()
		if _, err := admin.ExecContext(context.Background(), `DROP SCHEMA `+schema+` CASCADE`); err != nil {
			tb.Errorf("drop schema %s: %v", schema, err)
		}
	})
	return WithSearchPath(tb, dsn, schema)
}

// WithSearchPath returns dsn (a URL or key=value string) with search_path set to schema.
func WithSearchPath(tb testing.TB, dsn, schema string) string {
	tb.Helper()
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			tb.Fatalf("TWOFOLD_TEST_POSTGRES: %v", err)
		}
		q := u.Query()
		q.Set("search_path", schema)
		u.RawQuery = q.Encode()
		return u.String()
	}
	return strings.TrimSpace(dsn) + " search_path=" + schema
}
