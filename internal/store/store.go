// Package store keeps Twofold's state, in SQLite (the default, embedded: OpenSQLite) or in
// PostgreSQL (OpenPostgres; Open picks by the form of its argument). Both engines pass one
// conformance suite (runConformance in conformance_test.go).
//
// SQL is written once with $N placeholders, which both engines bind; where the engines differ,
// the one method that differs branches on s.pg. Each engine has its own embedded migrations
// (migrations/sqlite, migrations/postgres), numbered alike so schema versions match; one is Go
// rather than SQL, SQLite's 34, which edits the schema's text (migrate_audit.go, registered in
// migrator), so migrations/sqlite has no file 00034.
//
// Every method that enforces a security property (single use, replay, limits, the audit
// chain) is correct when parallel requests and several processes race for it:
//   - where one statement can do it (a compare-and-set UPDATE … WHERE, INSERT … ON CONFLICT …
//     RETURNING, UPDATE … RETURNING), it is one statement, atomic on both engines;
//   - where it takes a read and then a write, it runs in s.tx and first takes the lock that
//     serialises it (lockRow, lockKey, lockAudit). On SQLite these are no-ops: the single
//     writer connection and BEGIN IMMEDIATE serialise every write transaction, across processes
//     too. On PostgreSQL (READ COMMITTED, one pool for reads and writes) they are a row lock
//     (SELECT … FOR NO KEY UPDATE) on the row that owns what is counted, a transaction-scoped
//     advisory lock (pg_advisory_xact_lock) where there is no such row, and LOCK TABLE for the
//     audit trail, whose gapless ids are max+1.
//
// Times are stored as integers (Unix seconds; the audit trail's at in nanoseconds): INTEGER on
// SQLite, BIGINT on PostgreSQL.
package store

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/pressly/goose/v3"
	_ "modernc.org/sqlite" // registers the "sqlite" driver

	"github.com/twofold-auth/twofold/internal/twofold"
)

//go:embed migrations
var migrations embed.FS

// DatabaseFile is the SQLite file's name inside the data directory.
const DatabaseFile = "twofold.db"

// Store is the persistent state. It is safe for concurrent use by many goroutines and, for
// SQLite, by several processes on one data directory (the server and the CLI).
type Store struct {
	db    *sql.DB   // PostgreSQL: the pool; SQLite: the writer's one connection (batch owns it after migrating)
	r     *pool     // reads (on PostgreSQL the same pool as db)
	w     writer    // single-statement writes
	batch *batcher  // SQLite: the group-commit writer that runs every write transaction (batch.go)
	apps  *appCache // SQLite: applications by key and id (apps.go)
	// appsGen reads the generation the app cache is checked against, once for the requests
	// that ask together (freshread.go).
	appsGen *freshRead
	audit   *batcher // PostgreSQL: the batcher of audit appends (batch.go)
	pg      bool     // the engine is PostgreSQL (postgres.go), not SQLite
}

// OpenSQLite opens (creating if needed) the database at path and applies pending migrations.
func OpenSQLite(ctx context.Context, path string) (*Store, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("create data directory: %w", err)
	}
	// Create the file 0600 before SQLite does: its -wal and -shm files copy the main file's mode.
	if f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE, 0o600); err == nil {
		f.Close()
	}
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		if err := os.Chmod(p, 0o600); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("restrict database file: %w", err)
		}
	}
	// WAL lets readers run beside the one writer; synchronous=FULL makes every commit durable
	// across power loss, so an accepted code or replay record is never rolled back.
	// temp_store=MEMORY keeps the savepoint journal of a group commit (batch.go: a savepoint per
	// transaction) in memory: SQLite spills it to a temporary file past 64 KiB, and a batch of
	// sends passed that, so the one writer made a write system call for every page a
	// transaction of the batch changed. It holds only what the batch changes, until the commit.
	q := url.Values{}
	for _, p := range []string{"busy_timeout(10000)", "journal_mode(WAL)", "synchronous(FULL)", "foreign_keys(1)", "temp_store(MEMORY)"} {
		q.Add("_pragma", p)
	}
	q.Set("_txlock", "immediate")
	dsn := sqliteURI(path) + "?" + q.Encode()

	// The writer's page cache survives its own commits (a reader's is emptied by any other
	// connection's), and the reads that decisions start from run on it (batcher.read), so it is
	// given room for a large store's hot pages: 64 MiB, against SQLite's default of 2.
	w, err := sql.Open("sqlite", dsn+"&_pragma=cache_size(-65536)")
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	w.SetMaxOpenConns(1) // SQLite has one writer; queueing here beats busy retries
	r, err := sql.Open("sqlite", dsn+"&_pragma=query_only(1)")
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	r.SetMaxOpenConns(8)
	r.SetMaxIdleConns(8) // keep every reader's prepared statements
	s := &Store{db: w, r: newPool(r, true), apps: newAppCache()}
	s.w = writer{s}
	s.appsGen = newFreshRead(s.appsGeneration)
	// The server and the CLI may open a fresh data directory at the same moment; one migrates,
	// the other waits and then finds nothing to do.
	unlock, err := lockFile(path + ".migrate-lock")
	if err != nil {
		s.Close()
		return nil, err
	}
	err = s.migrate(ctx)
	unlock()
	if err == nil {
		s.batch, err = newBatcher(ctx, w, false)
	}
	if err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// migrator returns the goose provider of db's engine, PostgreSQL when pg.
func migrator(db *sql.DB, pg bool) (*goose.Provider, error) {
	dir, dialect := "migrations/sqlite", goose.DialectSQLite3
	if pg {
		dir, dialect = "migrations/postgres", goose.DialectPostgres
	}
	sub, err := fs.Sub(migrations, dir)
	if err != nil {
		return nil, fmt.Errorf("migrations: %w", err)
	}
	var opts []goose.ProviderOption
	if !pg {
		opts = append(opts, goose.WithGoMigrations(sqliteLeanAudit))
	}
	p, err := goose.NewProvider(dialect, db, sub, opts...)
	if err != nil {
		return nil, fmt.Errorf("migrations: %w", err)
	}
	return p, nil
}

func (s *Store) migrate(ctx context.Context) error {
	p, err := migrator(s.db, s.pg)
	if err != nil {
		return err
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("apply migrations: %w", err)
	}
	return nil
}

// Close releases the database.
func (s *Store) Close() error {
	for _, b := range []*batcher{s.batch, s.audit} {
		if b != nil {
			b.close() // answers every write handed over before Close
		}
	}
	if s.pg {
		return s.r.close() // s.db is the same pool
	}
	return errors.Join(s.r.close(), s.db.Close())
}

// Ping checks that the database answers, for /healthz.
func (s *Store) Ping(ctx context.Context) error {
	var one int
	return s.r.QueryRowContext(ctx, "SELECT 1").Scan(&one)
}

// tx runs fn in a write transaction and returns once it is committed, or undone when fn fails.
// On SQLite write transactions are serialised (the group-commit writer, batch.go, and BEGIN
// IMMEDIATE across processes); on PostgreSQL they run concurrently at READ COMMITTED, so fn
// must take the lock that serialises what it reads and then writes (lockRow, lockKey,
// lockAudit) first. fn must run its SQL through tx alone and never call the Store's own write
// methods: on SQLite the writer's connection is busy with the batch fn is part of.
func (s *Store) tx(ctx context.Context, fn func(*Tx) error) error {
	if s.batch != nil {
		return s.batch.do(ctx, false, fn)
	}
	return s.pgTx(ctx, fn)
}

// tx1 is tx for a function that makes at most one write statement (it may read before): on
// SQLite it needs no savepoint of its own in the batch (batch.go).
func (s *Store) tx1(ctx context.Context, fn func(*Tx) error) error {
	if s.batch != nil {
		return s.batch.do(ctx, true, fn)
	}
	return s.pgTx(ctx, fn)
}

// pgTx runs fn in a transaction of the pool. As on SQLite (batch.go), fn's outcome decides: a
// context cancelled after fn's statements ran (a client that hung up) does not roll back what
// fn did behind its back, which database/sql does to a transaction begun under that context.
func (s *Store) pgTx(ctx context.Context, fn func(*Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	tx, err := s.db.BeginTx(context.WithoutCancel(ctx), nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	if err := fn(&Tx{cachedExec: cachedExec{ex: tx}}); err != nil {
		tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// unix stores a time as Unix seconds; the zero time ("never", "not yet") is 0, which is what the
// SQL tests for.
func unix(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.Unix()
}

func fromUnix(sec int64) time.Time {
	if sec == 0 {
		return time.Time{}
	}
	return time.Unix(sec, 0).UTC()
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// notFound maps sql.ErrNoRows to the domain's ErrNotFound.
func notFound(err error) error {
	if errors.Is(err, sql.ErrNoRows) {
		return twofold.ErrNotFound
	}
	return err
}

// lockFile takes an exclusive advisory lock on path (created 0600), blocking until it is free.
func lockFile(path string) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("migration lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("migration lock: %w", err)
	}
	return func() {
		syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}

// rowScanner is a *sql.Row or *sql.Rows.
type rowScanner interface{ Scan(...any) error }

// queryAll runs a query on the read pool and scans every row with scan.
func queryAll[T any](ctx context.Context, db execer, scan func(rowScanner) (T, error), q string, args ...any) ([]T, error) {
	rows, err := db.QueryContext(ctx, q, args...)
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
