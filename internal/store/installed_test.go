package store

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/twofold-auth/twofold/internal/store/storetest"
)

// Installed finds the master key check, and creates nothing while it looks: no SQLite file,
// no PostgreSQL schema.
func TestInstalled(t *testing.T) {
	engines := []struct {
		name string
		db   func(t *testing.T) string
	}{
		{"sqlite", func(t *testing.T) string { return filepath.Join(t.TempDir(), "data", DatabaseFile) }},
		{"postgres", func(t *testing.T) string { storetest.DSN(t); return storetest.Schema(t) }},
	}
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) {
			ctx := t.Context()
			db := e.db(t)
			if ok, err := Installed(ctx, db); err != nil || ok {
				t.Fatalf("empty: Installed = %v, %v; want false", ok, err)
			}
			if e.name == "sqlite" {
				if _, err := os.Stat(filepath.Dir(db)); !errors.Is(err, fs.ErrNotExist) {
					t.Fatalf("Installed made the data directory: %v", err)
				}
			} else if ok, err := Installed(ctx, db); err != nil || ok {
				t.Fatalf("empty again: Installed = %v, %v", ok, err)
			}
			s, err := Open(ctx, db)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if e.name == "postgres" {
				var tables int
				if err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM information_schema.tables WHERE table_schema = current_schema()`).Scan(&tables); err != nil || tables == 0 {
					t.Fatalf("the schema has %d tables after Open (%v)", tables, err)
				}
			}
			if ok, err := Installed(ctx, db); err != nil || ok {
				t.Fatalf("schema only (twofold migrate): Installed = %v, %v; want false", ok, err)
			}
			if _, err := s.ServerKeyOrCreate(ctx, ServerKey{Name: KeyCheckRow, PublicKey: []byte("check"), PrivateSealed: []byte{}, CreatedAt: time.Now()}); err != nil {
				t.Fatal(err)
			}
			if ok, err := Installed(ctx, db); err != nil || !ok {
				t.Fatalf("with the key check: Installed = %v, %v; want true", ok, err)
			}
		})
	}
}
