package store

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/pressly/goose/v3"
)

// sqliteLeanAudit is SQLite's migration 34, in Go because it edits the schema's text: the audit
// trail's table loses AUTOINCREMENT and its index by time (PostgreSQL's 00034 drops the index;
// its table never had a sequence).
//
// AUTOINCREMENT made every append read and rewrite the trail's row of sqlite_sequence, though
// ids are always given (the last id + 1, under the writer). It changes nothing on disk (the
// table's rows and id are its rowid either way), so the migration rewrites the table's CREATE
// statement in sqlite_schema and bumps the schema version, as SQLite's documentation describes
// for changes that leave the stored format alone (lang_altertable.html, "Making other kinds of
// table schema changes"): constant time on a trail of any size, where rebuilding the table
// would copy it whole at start-up.
//
// audit_log_by_time served reads "since" a time; they now find the first id at or after it by
// binary search over ids (auditFromTime), since appends keep at non-decreasing in id order.
var sqliteLeanAudit = goose.NewGoMigration(34,
	&goose.GoFunc{RunTx: func(ctx context.Context, tx *sql.Tx) error {
		if err := rewriteTableSQL(ctx, tx, "audit_log", "INTEGER PRIMARY KEY AUTOINCREMENT", "INTEGER PRIMARY KEY"); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM sqlite_sequence WHERE name = 'audit_log'`); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `DROP INDEX audit_log_by_time`)
		return err
	}},
	&goose.GoFunc{RunTx: func(ctx context.Context, tx *sql.Tx) error {
		if err := rewriteTableSQL(ctx, tx, "audit_log", "INTEGER PRIMARY KEY", "INTEGER PRIMARY KEY AUTOINCREMENT"); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO sqlite_sequence (name, seq) SELECT 'audit_log', MAX(id) FROM audit_log HAVING MAX(id) IS NOT NULL`); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `CREATE INDEX audit_log_by_time ON audit_log (at)`)
		return err
	}},
)

// rewriteTableSQL replaces old by new, once, in table's CREATE statement, in tx, and bumps the
// schema version so every connection reloads the schema. The change must leave the table's
// stored format as it is (SQLite does not check that, so the callers are two fixed edits).
func rewriteTableSQL(ctx context.Context, tx *sql.Tx, table, old, new string) error {
	var text string
	if err := tx.QueryRowContext(ctx, `SELECT sql FROM sqlite_schema WHERE type = 'table' AND name = $1`, table).Scan(&text); err != nil {
		return fmt.Errorf("schema of %s: %w", table, err)
	}
	if strings.Count(text, old) != 1 {
		return fmt.Errorf("schema of %s: %q is not there once: %s", table, old, text)
	}
	var version int64
	if err := tx.QueryRowContext(ctx, `PRAGMA schema_version`).Scan(&version); err != nil {
		return err
	}
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{`PRAGMA writable_schema = ON`, nil},
		{`UPDATE sqlite_schema SET sql = $1 WHERE type = 'table' AND name = $2`, []any{strings.Replace(text, old, new, 1), table}},
		{fmt.Sprintf(`PRAGMA schema_version = %d`, version+1), nil},
		{`PRAGMA writable_schema = OFF`, nil},
	} {
		if _, err := tx.ExecContext(ctx, q.sql, q.args...); err != nil {
			return fmt.Errorf("rewrite schema of %s: %w", table, err)
		}
	}
	// The next statement reloads the schema: one that does not parse fails here, undone.
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM (SELECT 1 FROM `+table+` LIMIT 1)`).Scan(&n); err != nil {
		return fmt.Errorf("rewrite schema of %s: %w", table, err)
	}
	return nil
}
