package store

import (
	"context"
	"database/sql"
	"errors"
	"sync"
)

// How the store's methods run SQL. Three things stand between a method and database/sql:
//
//   - pool, the read pool (and on PostgreSQL also the write pool), which runs each statement
//     through a prepared statement kept for the life of the store: modernc.org/sqlite parses
//     every unprepared statement afresh, and parsing was a quarter of a verification's CPU
//     (BENCHMARKS.md). pgx caches prepared statements per connection itself, so on PostgreSQL
//     the pool runs statements as they are.
//   - Tx, one write transaction as the function given to s.tx sees it.
//   - writer, the writes made outside s.tx: on SQLite each one becomes a transaction of the
//     group-commit writer (batch.go), on PostgreSQL a statement on the pool.

// execer is what runs SQL: *sql.DB, *sql.Conn, *sql.Tx.
type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// writeExecer runs one write statement: the writer (each statement its own transaction) or a
// *Tx (inside one).
type writeExecer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// preparer makes prepared statements: *sql.DB (one per pool, prepared on each connection as it
// is used) or *sql.Conn (bound to that connection).
type preparer interface {
	PrepareContext(ctx context.Context, query string) (*sql.Stmt, error)
}

// maxCachedStatements bounds a statement cache. The store's SQL is a fixed set of texts plus a
// few built from filters (ListAudit, the console's lists), so the bound is never reached in
// practice; past it, statements simply run unprepared.
const maxCachedStatements = 512

// stmtCache keeps one prepared statement per SQL text.
type stmtCache struct {
	on    preparer
	mu    sync.RWMutex
	stmts map[string]*sql.Stmt
}

// onPrepare, when set (by a test, before the store is opened), sees every SQL text the store's
// caches prepare: the query-plan test collects them.
var onPrepare func(query string)

func newStmtCache(on preparer) *stmtCache {
	return &stmtCache{on: on, stmts: map[string]*sql.Stmt{}}
}

// get returns the prepared statement of query, preparing it on first use. A nil statement
// (cache full, or preparing failed) means: run the query unprepared, which reports the error
// of a query that cannot be prepared the ordinary way.
func (c *stmtCache) get(ctx context.Context, query string) *sql.Stmt {
	c.mu.RLock()
	st, ok := c.stmts[query]
	full := len(c.stmts) >= maxCachedStatements
	c.mu.RUnlock()
	if ok || full {
		return st
	}
	if onPrepare != nil {
		onPrepare(query)
	}
	// Not under the lock: on a pool, preparing may wait for a connection, and the goroutines
	// holding the connections may need the cache to give them up.
	st, err := c.on.PrepareContext(ctx, query)
	if err != nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if prev, ok := c.stmts[query]; ok { // prepared meanwhile by another goroutine
		st.Close()
		return prev
	}
	if len(c.stmts) >= maxCachedStatements {
		st.Close()
		return nil
	}
	c.stmts[query] = st
	return st
}

func (c *stmtCache) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for q, st := range c.stmts {
		st.Close()
		delete(c.stmts, q)
	}
}

// cachedExec runs statements of ex through the prepared statements of stmts (nil: unprepared).
type cachedExec struct {
	ex    execer
	stmts *stmtCache
	// detachRows runs single-row reads (QueryRowContext) under context.WithoutCancel. With a
	// context that can be cancelled, database/sql and modernc.org/sqlite each start a goroutine
	// per statement to watch it; a one-row read on SQLite takes microseconds, and those two
	// goroutines were a tenth of its cost. Multi-row reads keep their context: a long listing
	// still stops when its caller goes.
	detachRows bool
}

func (c cachedExec) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if c.stmts != nil {
		if st := c.stmts.get(ctx, query); st != nil {
			return st.ExecContext(ctx, args...)
		}
	}
	return c.ex.ExecContext(ctx, query, args...)
}

func (c cachedExec) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if c.stmts != nil {
		if st := c.stmts.get(ctx, query); st != nil {
			return st.QueryContext(ctx, args...)
		}
	}
	return c.ex.QueryContext(ctx, query, args...)
}

func (c cachedExec) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	if c.detachRows {
		ctx = context.WithoutCancel(ctx)
	}
	if c.stmts != nil {
		if st := c.stmts.get(ctx, query); st != nil {
			return st.QueryRowContext(ctx, args...)
		}
	}
	return c.ex.QueryRowContext(ctx, query, args...)
}

// pool is a connection pool whose statements are prepared once (stmts nil: not prepared).
type pool struct {
	db *sql.DB
	cachedExec
}

// newPool returns db as the store's pool. local says the database is an embedded SQLite file:
// its statements are prepared once, and its single-row reads, which cannot hang on a network,
// run without watching their context.
func newPool(db *sql.DB, local bool) *pool {
	p := &pool{db: db, cachedExec: cachedExec{ex: db, detachRows: local}}
	if local {
		p.stmts = newStmtCache(db)
	}
	return p
}

func (p *pool) Conn(ctx context.Context) (*sql.Conn, error) { return p.db.Conn(ctx) }

func (p *pool) close() error {
	if p.stmts != nil {
		p.stmts.close()
	}
	return p.db.Close()
}

// Tx is one write transaction, as the function that s.tx runs sees it. On SQLite it is a part
// of a group commit (batch.go): its statements run on the writer's connection, and a failure
// undoes only its own changes. The context given to its methods is not allowed to interrupt a
// statement once it runs, because on SQLite an interrupted write rolls back the whole batch.
type Tx struct {
	cachedExec
	detach bool // run statements under context.WithoutCancel (SQLite's shared transaction)
	// audit is the newest audit entry this transaction knows of (audit.go): within one SQLite
	// batch the appends follow each other on the one writer, so each need not read the last.
	audit auditTip
	// readOnly refuses ExecContext: the function only reads (batcher.read). It runs in a batch's
	// transaction with no savepoint of its own, and its caller is answered before the commit.
	readOnly bool
}

// errReadOnly answers a write statement in a read (batcher.read).
var errReadOnly = errors.New("store: write statement in a read")

func (t *Tx) ctx(ctx context.Context) context.Context {
	if t.detach {
		return context.WithoutCancel(ctx)
	}
	return ctx
}

func (t *Tx) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if t.readOnly {
		return nil, errReadOnly
	}
	return t.cachedExec.ExecContext(t.ctx(ctx), query, args...)
}

func (t *Tx) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return t.cachedExec.QueryContext(t.ctx(ctx), query, args...)
}

func (t *Tx) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	return t.cachedExec.QueryRowContext(t.ctx(ctx), query, args...)
}

// writer runs the writes that are one statement each: on SQLite each is a transaction of the
// group-commit writer, on PostgreSQL a statement on the pool.
type writer struct{ s *Store }

func (w writer) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if w.s.pg {
		return w.s.r.ExecContext(ctx, query, args...)
	}
	var res sql.Result
	err := w.s.tx1(ctx, func(tx *Tx) error {
		var err error
		res, err = tx.ExecContext(ctx, query, args...)
		return err
	})
	return res, err
}

// QueryRowContext returns a row that runs query when it is scanned (INSERT/UPDATE … RETURNING).
func (w writer) QueryRowContext(ctx context.Context, query string, args ...any) *writerRow {
	return &writerRow{w: w, ctx: ctx, query: query, args: args}
}

// writerRow is *sql.Row for a write: Scan runs the statement and reads its one row.
type writerRow struct {
	w     writer
	ctx   context.Context
	query string
	args  []any
}

func (r *writerRow) Scan(dest ...any) error {
	if r.w.s.pg {
		return r.w.s.r.QueryRowContext(r.ctx, r.query, r.args...).Scan(dest...)
	}
	return r.w.s.tx1(r.ctx, func(tx *Tx) error {
		return tx.QueryRowContext(r.ctx, r.query, r.args...).Scan(dest...)
	})
}

// rowQuerier runs a single-row query: the read pool, or a Tx.
type rowQuerier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// hotRead runs fn, which only reads, where the read is cheapest: on SQLite in the writer's next
// batch (batcher.read), elsewhere on the read pool. It is for the read a decision starts from,
// made on every verification, not for reads in general: a read made there waits for the batch
// in progress and takes the one writer's time, which the other reads leave to the readers.
// Never call it from inside a write transaction (a function given to s.tx or Decide): on SQLite
// it would wait for the writer it is running on.
func (s *Store) hotRead(ctx context.Context, fn func(rowQuerier) error) error {
	if s.batch == nil {
		return fn(s.r)
	}
	return s.batch.read(ctx, func(tx *Tx) error { return fn(tx) })
}
