package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/pressly/goose/v3"
)

// Moving an installation between engines (twofold migrate-data): every table of a SQLite store
// is copied, ids and all, into an empty PostgreSQL store at the same schema version, in one
// PostgreSQL transaction.
//
// The copy is generic: the tables are those of the SQLite schema (less goose's and SQLite's own),
// ordered so that a table comes after the tables its foreign keys name, with the columns SQLite's
// table_info lists (less retiredColumns), written under the same names. Values are copied as they are; the ciphertexts,
// MACs and audit hashes are bytes bound to ids and the master key, not to the engine, so they stay
// valid. Afterwards each identity column's sequence is set past the largest id ever handed out.

// ErrTargetNotEmpty is returned by CopyTo when the target already holds rows.
var ErrTargetNotEmpty = errors.New("the target database is not empty")

// CopyProgress is told, after each batch of rows written to table, how many of its total rows
// have been copied (once with 0, 0 for an empty table).
type CopyProgress func(table string, copied, total int64)

// TableRows is the number of rows of one table.
type TableRows struct {
	Table string
	Rows  int64
}

// retiredColumns are, per table, the columns that a SQLite store keeps but no longer uses and
// that PostgreSQL dropped (SQLite's DROP COLUMN rewrites the whole table): the copy leaves them.
var retiredColumns = map[string][]string{
	"authenticators": {"version", "last_step"}, // moved to authenticator_steps (migration 00035)
}

// copyBatch is the most rows one INSERT carries; PostgreSQL allows 65535 parameters.
const copyBatch = 1000

// SchemaVersion returns the newest migration applied to the store.
func (s *Store) SchemaVersion(ctx context.Context) (int64, error) {
	var v sql.NullInt64
	err := s.r.QueryRowContext(ctx, `SELECT max(version_id) FROM `+goose.DefaultTablename).Scan(&v)
	if err != nil {
		return 0, fmt.Errorf("schema version: %w", err)
	}
	return v.Int64, nil
}

// Engine names the store's engine: "sqlite" or "postgres".
func (s *Store) Engine() string {
	if s.pg {
		return "postgres"
	}
	return "sqlite"
}

// Tables returns the names of the store's tables in the order a copy writes them: each after
// those its foreign keys reference. Only a SQLite store can list them.
func (s *Store) Tables(ctx context.Context) ([]string, error) {
	if s.pg {
		return nil, errors.New("listing tables: only a SQLite store can be the source of a copy")
	}
	// generations is the bookkeeping of the SQLite store's cache, not data (migration 00011);
	// user_public_ids is SQLite's counter where PostgreSQL has a sequence, which resetSequences
	// sets from it (migration 00017).
	names, err := queryAll(ctx, s.r, scanString, `SELECT name FROM sqlite_master WHERE type = 'table'
		AND name NOT LIKE 'sqlite\_%' ESCAPE '\' AND name NOT IN ($1, 'generations', 'user_public_ids') ORDER BY name`,
		goose.DefaultTablename)
	if err != nil {
		return nil, fmt.Errorf("list tables: %w", err)
	}
	deps := map[string][]string{}
	for _, t := range names {
		refs, err := queryAll(ctx, s.r, scanString, `SELECT DISTINCT "table" FROM pragma_foreign_key_list($1)`, t)
		if err != nil {
			return nil, fmt.Errorf("foreign keys of %s: %w", t, err)
		}
		deps[t] = refs
	}
	var order []string
	done := map[string]bool{}
	for len(order) < len(names) {
		progressed := false
		for _, t := range names {
			if done[t] {
				continue
			}
			ready := true
			for _, d := range deps[t] {
				if d != t && !done[d] {
					ready = false
				}
			}
			if ready {
				order, done[t], progressed = append(order, t), true, true
			}
		}
		if !progressed {
			return nil, errors.New("list tables: foreign keys form a cycle")
		}
	}
	return order, nil
}

// CountRows counts the rows of each table.
func (s *Store) CountRows(ctx context.Context, tables []string) ([]TableRows, error) {
	out := make([]TableRows, 0, len(tables))
	for _, t := range tables {
		var n int64
		if err := s.r.QueryRowContext(ctx, `SELECT count(*) FROM `+quoteIdent(t)).Scan(&n); err != nil {
			return nil, fmt.Errorf("count %s: %w", t, err)
		}
		out = append(out, TableRows{t, n})
	}
	return out, nil
}

// CopyTo copies every table of s, a SQLite store, into dst, an empty PostgreSQL store at the
// same schema version, and returns the rows copied per table, in the order written. It reads one
// snapshot of s, so a server still writing to s does not tear the copy (but its later writes
// are not copied). It writes in one transaction of dst that first locks every table against
// writers, so a failure leaves dst as it was and nobody writes to dst during the copy.
func (s *Store) CopyTo(ctx context.Context, dst *Store, progress CopyProgress) ([]TableRows, error) {
	if s.pg || !dst.pg {
		return nil, fmt.Errorf("copy from %s to %s: only SQLite to PostgreSQL is supported", s.Engine(), dst.Engine())
	}
	if progress == nil {
		progress = func(string, int64, int64) {}
	}
	from, err := s.SchemaVersion(ctx)
	if err != nil {
		return nil, err
	}
	to, err := dst.SchemaVersion(ctx)
	if err != nil {
		return nil, err
	}
	if from != to {
		return nil, fmt.Errorf("the source is at schema version %d and the target at %d: migrate both with the same twofold first", from, to)
	}
	tables, err := s.Tables(ctx)
	if err != nil {
		return nil, err
	}

	// One read transaction on one connection: a consistent snapshot of the SQLite file. A plain
	// (deferred) BEGIN, not BeginTx, whose BEGIN IMMEDIATE would hold the write lock.
	src, err := s.r.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("read source: %w", err)
	}
	defer src.Close()
	if _, err := src.ExecContext(ctx, `BEGIN`); err != nil {
		return nil, fmt.Errorf("read source: %w", err)
	}
	defer src.ExecContext(context.WithoutCancel(ctx), `ROLLBACK`)

	tx, err := dst.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback()
	quoted := make([]string, len(tables))
	for i, t := range tables {
		quoted[i] = quoteIdent(t)
	}
	// EXCLUSIVE lets readers be but makes every writer (a server started too early) wait.
	if _, err := tx.ExecContext(ctx, `LOCK TABLE `+strings.Join(quoted, ", ")+` IN EXCLUSIVE MODE`); err != nil {
		return nil, fmt.Errorf("lock target tables (does the target have every table of the source?): %w", err)
	}
	for _, t := range tables {
		var some bool
		if err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM `+quoteIdent(t)+`)`).Scan(&some); err != nil {
			return nil, fmt.Errorf("check target %s: %w", t, err)
		}
		if some {
			return nil, fmt.Errorf("%w: table %s has rows", ErrTargetNotEmpty, t)
		}
	}

	var copied []TableRows
	for _, t := range tables {
		n, err := copyTable(ctx, src, tx, t, progress)
		if err != nil {
			return nil, fmt.Errorf("copy %s: %w", t, err)
		}
		copied = append(copied, TableRows{t, n})
	}
	if err := resetSequences(ctx, src, tx); err != nil {
		return nil, err
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("commit: %w", err)
	}
	return copied, nil
}

// copyTable copies table from src (SQLite, in its read transaction) to tx (PostgreSQL).
func copyTable(ctx context.Context, src *sql.Conn, tx *sql.Tx, table string, progress CopyProgress) (int64, error) {
	all, err := connQueryAll(ctx, src, scanString, `SELECT name FROM pragma_table_info($1) ORDER BY cid`, table)
	if err != nil {
		return 0, fmt.Errorf("columns: %w", err)
	}
	cols := slices.DeleteFunc(all, func(c string) bool { return slices.Contains(retiredColumns[table], c) })
	// The target's types, to hand each value over as what PostgreSQL expects of the column.
	types := map[string]string{}
	rows, err := tx.QueryContext(ctx, `SELECT column_name, data_type FROM information_schema.columns
		WHERE table_schema = current_schema() AND table_name = $1`, table)
	if err != nil {
		return 0, fmt.Errorf("target columns: %w", err)
	}
	for rows.Next() {
		var name, typ string
		if err := rows.Scan(&name, &typ); err != nil {
			rows.Close()
			return 0, err
		}
		types[name] = typ
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, err
	}
	var missing []string
	for _, c := range cols {
		if _, ok := types[c]; !ok {
			missing = append(missing, c)
		}
	}
	if len(missing) > 0 || len(types) != len(cols) {
		return 0, fmt.Errorf("the target's columns differ from the source's (source %v, target lacks %v): are both at the same schema version?", cols, missing)
	}

	var total int64
	if err := src.QueryRowContext(ctx, `SELECT count(*) FROM `+quoteIdent(table)).Scan(&total); err != nil {
		return 0, fmt.Errorf("count: %w", err)
	}
	quotedCols := make([]string, len(cols))
	for i, c := range cols {
		quotedCols[i] = quoteIdent(c)
	}
	list := strings.Join(quotedCols, ", ")
	batch := min(copyBatch, math.MaxUint16/len(cols))

	rows, err = src.QueryContext(ctx, `SELECT `+list+` FROM `+quoteIdent(table))
	if err != nil {
		return 0, fmt.Errorf("read: %w", err)
	}
	defer rows.Close()
	var args []any
	var n, pending int64
	flush := func() error {
		if pending == 0 {
			return nil
		}
		var b strings.Builder
		b.WriteString(`INSERT INTO ` + quoteIdent(table) + ` (` + list + `) VALUES `)
		for r := range int(pending) {
			if r > 0 {
				b.WriteString(", ")
			}
			b.WriteByte('(')
			for c := range cols {
				if c > 0 {
					b.WriteString(", ")
				}
				fmt.Fprintf(&b, "$%d", r*len(cols)+c+1)
			}
			b.WriteByte(')')
		}
		if _, err := tx.ExecContext(ctx, b.String(), args...); err != nil {
			return fmt.Errorf("write rows %d to %d: %w", n-pending+1, n, err)
		}
		args, pending = args[:0], 0
		progress(table, n, total)
		return nil
	}
	vals := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return 0, fmt.Errorf("read: %w", err)
		}
		for i, v := range vals {
			args = append(args, convertValue(v, types[cols[i]]))
		}
		n++
		pending++
		if pending == int64(batch) {
			if err := flush(); err != nil {
				return 0, err
			}
		}
	}
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("read: %w", err)
	}
	if err := flush(); err != nil {
		return 0, err
	}
	if n == 0 {
		progress(table, 0, 0)
	}
	return n, nil
}

// convertValue hands a SQLite value over as PostgreSQL's column type wants it: text for a text
// column, bytes for a bytea column (SQLite may hold either in either; an empty blob stays empty,
// not NULL), anything else as it is (integers; a value PostgreSQL cannot take fails the copy).
func convertValue(v any, pgType string) any {
	switch pgType {
	case "bytea":
		switch b := v.(type) {
		case string:
			return []byte(b)
		case []byte:
			// The SQLite driver reads an empty blob as a nil slice (NULL is an untyped nil),
			// which pgx would write as NULL.
			if b == nil {
				return []byte{}
			}
		}
	case "text":
		if b, ok := v.([]byte); ok {
			return string(b)
		}
	case "bigint", "integer", "smallint":
		if f, ok := v.(float64); ok && f == math.Trunc(f) {
			return int64(f)
		}
	}
	return v
}

// resetSequences sets each identity column's sequence so the next id is past the largest the
// source ever handed out: the largest in the table, or, where SQLite's AUTOINCREMENT remembers a
// larger one (the newest user was removed), that one, so no id is used twice.
func resetSequences(ctx context.Context, src *sql.Conn, tx *sql.Tx) error {
	seen := map[string]int64{}
	type seqRow struct {
		name string
		seq  int64
	}
	var hasSeq bool
	if err := src.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE name = 'sqlite_sequence')`).Scan(&hasSeq); err != nil {
		return fmt.Errorf("read sqlite_sequence: %w", err)
	}
	if hasSeq {
		seqs, err := connQueryAll(ctx, src, func(r rowScanner) (seqRow, error) {
			var s seqRow
			return s, r.Scan(&s.name, &s.seq)
		}, `SELECT name, seq FROM sqlite_sequence`)
		if err != nil {
			return fmt.Errorf("read sqlite_sequence: %w", err)
		}
		for _, s := range seqs {
			seen[s.name] = s.seq
		}
	}
	type identity struct{ table, column string }
	rows, err := tx.QueryContext(ctx, `SELECT table_name, column_name FROM information_schema.columns
		WHERE table_schema = current_schema() AND is_identity = 'YES' ORDER BY table_name`)
	if err != nil {
		return fmt.Errorf("list identity columns: %w", err)
	}
	var ids []identity
	for rows.Next() {
		var id identity
		if err := rows.Scan(&id.table, &id.column); err != nil {
			rows.Close()
			return err
		}
		ids = append(ids, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, id := range ids {
		var top int64
		if err := tx.QueryRowContext(ctx, `SELECT COALESCE(max(`+quoteIdent(id.column)+`), 0) FROM `+quoteIdent(id.table)).Scan(&top); err != nil {
			return fmt.Errorf("largest id of %s: %w", id.table, err)
		}
		top = max(top, seen[id.table])
		// is_called false: the next nextval returns top+1 itself.
		if _, err := tx.ExecContext(ctx, `SELECT setval(pg_get_serial_sequence($1, $2), $3, false)`,
			quoteIdent(id.table), id.column, top+1); err != nil {
			return fmt.Errorf("reset the id sequence of %s: %w", id.table, err)
		}
	}
	// New users' public ids: past SQLite's counter and every public id copied.
	var next, top int64
	if err := src.QueryRowContext(ctx, `SELECT next FROM user_public_ids`).Scan(&next); err != nil {
		return fmt.Errorf("read user_public_ids: %w", err)
	}
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE(max(public_id), 0) FROM users`).Scan(&top); err != nil {
		return fmt.Errorf("largest public user id: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `SELECT setval('user_public_ids', $1, false)`, max(next, top+1)); err != nil {
		return fmt.Errorf("reset user_public_ids: %w", err)
	}
	return nil
}

func scanString(r rowScanner) (string, error) {
	var s string
	return s, r.Scan(&s)
}

// connQueryAll is queryAll on one connection.
func connQueryAll[T any](ctx context.Context, c *sql.Conn, scan func(rowScanner) (T, error), q string, args ...any) ([]T, error) {
	rows, err := c.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// quoteIdent quotes a table or column name for either engine.
func quoteIdent(name string) string {
	return `"` + strings.ReplaceAll(name, `"`, `""`) + `"`
}
