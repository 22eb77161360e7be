package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"hash/fnv"
	"strings"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver
)

// The PostgreSQL engine: the SQL of the other files, plus the locks that take the place of
// SQLite's single writer (see the package comment).

// migrateLockKey is the session advisory lock under which PostgreSQL migrations run, so that
// instances starting together migrate once: "twofold" in ASCII.
const migrateLockKey int64 = 0x74776f666f6c64

// Pool sizes of a PostgreSQL store. Transactions that wait for a lock hold a connection while
// they wait; beyond maxConns, callers queue in database/sql rather than in the server.
const (
	maxConns        = 20
	maxConnIdleTime = 5 * time.Minute
)

// IsPostgresDSN reports whether database names a PostgreSQL database (a postgres:// or
// postgresql:// URL) rather than a SQLite file.
func IsPostgresDSN(database string) bool {
	return strings.HasPrefix(database, "postgres://") || strings.HasPrefix(database, "postgresql://")
}

// Open opens the store that database names: a PostgreSQL URL (IsPostgresDSN) or the path of a
// SQLite file. Pending migrations are applied.
func Open(ctx context.Context, database string) (*Store, error) {
	if IsPostgresDSN(database) {
		return OpenPostgres(ctx, database)
	}
	return OpenSQLite(ctx, database)
}

// Migrate applies pending migrations to the database that database names (as Open) and closes
// it: for a "twofold migrate" step run before starting servers.
func Migrate(ctx context.Context, database string) error {
	s, err := Open(ctx, database)
	if err != nil {
		return err
	}
	return s.Close()
}

// OpenPostgres connects to the PostgreSQL database dsn names (a URL or key=value string, as
// pgx reads them; search_path=… selects a schema) and applies pending migrations under a
// session advisory lock, so that instances starting together migrate once.
func OpenPostgres(ctx context.Context, dsn string) (*Store, error) {
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		return nil, fmt.Errorf("open postgres: %w", err)
	}
	db.SetMaxOpenConns(maxConns)
	db.SetMaxIdleConns(maxConns)
	db.SetConnMaxIdleTime(maxConnIdleTime)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open postgres: %w", err)
	}
	// PostgreSQL has no single-writer limit: one pool serves reads and writes, and the methods
	// that need serialising take explicit locks.
	s := &Store{db: db, r: newPool(db, false), pg: true}
	s.w = writer{s}
	if err := s.migratePostgres(ctx); err != nil {
		s.Close()
		return nil, err
	}
	if s.audit, err = newBatcher(ctx, db, true); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// migratePostgres runs the migrations while holding a session advisory lock on one connection
// of the pool; another instance waits in pg_advisory_lock and then finds nothing to do.
func (s *Store) migratePostgres(ctx context.Context) error {
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("migration lock: %w", err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock($1)`, migrateLockKey); err != nil {
		return fmt.Errorf("migration lock: %w", err)
	}
	defer func() {
		// A session lock outlives a failed unlock on a pooled connection: then drop the
		// connection, which ends the session and frees the lock.
		if _, err := conn.ExecContext(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, migrateLockKey); err != nil {
			conn.Raw(func(any) error { return driver.ErrBadConn })
		}
	}()
	return s.migrate(ctx)
}

// lockRow serialises, until tx ends, the transactions that lock the same row of table (by id):
// on PostgreSQL a row lock that does not block foreign-key checks of inserts that reference
// the row; on SQLite nothing, the write transaction being serialised already. A missing row
// locks nothing.
func (s *Store) lockRow(ctx context.Context, tx *Tx, table string, id int64) error {
	if !s.pg {
		return nil
	}
	if _, err := tx.ExecContext(ctx, `SELECT 1 FROM `+table+` WHERE id = $1 FOR NO KEY UPDATE`, id); err != nil {
		return fmt.Errorf("lock %s %d: %w", table, id, err)
	}
	return nil
}

// lockUser is lockRow for a user, named by application and public id, as the store's callers
// know users: until tx ends, the transactions that lock the same user wait for each other.
func (s *Store) lockUser(ctx context.Context, tx *Tx, appID, id int64) error {
	if !s.pg {
		return nil
	}
	if _, err := tx.ExecContext(ctx, `SELECT 1 FROM users WHERE app_id = $1 AND public_id = $2 FOR NO KEY UPDATE`, appID, id); err != nil {
		return fmt.Errorf("lock user %d: %w", id, err)
	}
	return nil
}

// lockKey serialises, until tx ends, the transactions that lock the same key, for what has no
// row to lock (a phone number's verifications): on PostgreSQL a transaction-scoped advisory
// lock on a hash of the key; on SQLite nothing. Two keys that hash alike only wait for each
// other.
func (s *Store) lockKey(ctx context.Context, tx *Tx, parts ...any) error {
	if !s.pg {
		return nil
	}
	h := fnv.New64a()
	fmt.Fprint(h, "twofold")
	for _, p := range parts {
		fmt.Fprintf(h, "\x00%v", p)
	}
	key := int64(h.Sum64())
	if key == migrateLockKey {
		key++
	}
	if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, key); err != nil {
		return fmt.Errorf("lock %v: %w", parts, err)
	}
	return nil
}

// lockAudit serialises appends to the audit trail until tx ends. On PostgreSQL it takes an
// EXCLUSIVE table lock, which lets readers be but makes writers queue, so that the last entry
// read is the last entry until this one is committed.
func (s *Store) lockAudit(ctx context.Context, tx *Tx) error {
	if !s.pg {
		return nil
	}
	if _, err := tx.ExecContext(ctx, `LOCK TABLE audit_log IN EXCLUSIVE MODE`); err != nil {
		return fmt.Errorf("lock audit log: %w", err)
	}
	return nil
}
