package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/twofold-auth/twofold/internal/twofold"
)

// Group commit for SQLite. SQLite has one writer at a time and, with synchronous=FULL, every
// commit waits for an fsync of the WAL; a server that committed each write on its own would
// answer no faster than one fsync per write, whatever the number of cores or clients
// (BENCHMARKS.md). Instead one goroutine owns the writer connection and runs the write
// transactions that callers hand it in batches: it takes every transaction waiting, runs each
// inside one BEGIN IMMEDIATE … COMMIT under a savepoint of its own, and answers them all after
// the one commit. A caller still hears back only once its writes are durable, and one whose
// function fails has its own changes undone (ROLLBACK TO its savepoint) and no one else's.
//
// The transactions of a batch run one after another on one connection, so they are as
// serialised as before: each sees the writes of those before it, and what lockRow, lockKey and
// lockAudit provide on PostgreSQL holds here by construction. Other processes on the same file
// (the CLI) still queue on BEGIN IMMEDIATE and busy_timeout.
//
// PostgreSQL runs its write transactions concurrently, with no batcher, except for one kind:
// audit appends, which all queue for one table lock (the chain has one order), so that each
// append waited for the previous one's commit. There a batcher of appends takes the lock once
// per batch (newBatcher with postgres set); PostgreSQL ends a transaction at any failed
// statement, so any failure there abandons the batch.
//
// A transaction that makes at most one write (s.tx1: a single-statement write, an audit
// append) runs without a savepoint: SQLite undoes a failed statement by itself. Its failure is
// harmless when the statement changed nothing by design (no row to return, a constraint);
// any other failure (I/O, a full disk) may have ended the whole transaction, so the batch is
// abandoned and every transaction of it is told.

// maxBatch bounds the transactions of one commit, so that the first of a long queue is not
// held back by all the others.
const maxBatch = 256

// errClosed answers transactions handed to a closed store.
var errClosed = errors.New("store: closed")

type job struct {
	ctx    context.Context
	fn     func(*Tx) error
	single bool // at most one write statement: no savepoint needed
	read   bool // reads only: runs first in its batch, answered before the commit (batcher.read)
	err    error
	panic  any // what fn panicked with, re-raised in the caller's goroutine
	done   chan struct{}
}

type batcher struct {
	db       *sql.DB
	begin    string // the statement that opens a batch's transaction
	postgres bool   // any failed statement ends the transaction (no changedNothing)
	jobs     chan *job
	mu       sync.RWMutex // held for reading while sending on jobs; Close takes it to stop sends
	shut     bool
	done     chan struct{} // closed when the loop has answered every job and returned

	conn    *sql.Conn
	stmts   *stmtCache
	commits atomic.Int64 // batches committed, for tests
}

// newBatcher takes a connection of db (which must allow no other writer in this process) and
// starts the loop that runs write transactions on it.
func newBatcher(ctx context.Context, db *sql.DB, postgres bool) (*batcher, error) {
	b := &batcher{db: db, begin: `BEGIN IMMEDIATE`, postgres: postgres, jobs: make(chan *job, maxBatch), done: make(chan struct{})}
	if postgres {
		b.begin = `BEGIN`
	}
	if err := b.connect(ctx); err != nil {
		return nil, err
	}
	go b.loop()
	return b, nil
}

func (b *batcher) connect(ctx context.Context) error {
	if b.conn != nil {
		b.stmts.close()
		b.conn.Close()
	}
	conn, err := b.db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("writer connection: %w", err)
	}
	b.conn, b.stmts = conn, newStmtCache(conn)
	return nil
}

// do runs fn in a write transaction and returns once it is committed (nil) or undone (fn's
// error, or the batch's). Once handed over, fn runs to its end even if ctx is cancelled: its
// outcome is known before do returns.
func (b *batcher) do(ctx context.Context, single bool, fn func(*Tx) error) error {
	return b.hand(ctx, &job{ctx: ctx, fn: fn, single: single})
}

// read runs fn, which must only read, in the writer's next batch, before any write of it (run):
// it sees what the last commit made durable, nothing of a batch in progress, and is answered
// without waiting for the commit. It serves the read a decision starts from (CheckState): on a
// reader connection that read paid for its own read transaction (a lock on the WAL's shared
// memory, taken and released with system calls) and for a page cache that SQLite empties
// whenever another connection has committed, which under load is before every read. A write
// statement in fn fails (Tx.readOnly).
func (b *batcher) read(ctx context.Context, fn func(*Tx) error) error {
	return b.hand(ctx, &job{ctx: ctx, fn: fn, read: true})
}

// hand gives j to the loop and waits for its answer.
func (b *batcher) hand(ctx context.Context, j *job) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	j.done = make(chan struct{})
	b.mu.RLock()
	if b.shut {
		b.mu.RUnlock()
		return errClosed
	}
	b.jobs <- j
	b.mu.RUnlock()
	<-j.done
	if j.panic != nil {
		panic(j.panic)
	}
	return j.err
}

// close stops taking transactions, runs those already handed over, and releases the
// connection.
func (b *batcher) close() {
	b.mu.Lock()
	if b.shut {
		b.mu.Unlock()
		<-b.done
		return
	}
	b.shut = true
	close(b.jobs)
	b.mu.Unlock()
	<-b.done
	b.stmts.close()
	b.conn.Close()
}

func (b *batcher) loop() {
	defer close(b.done)
	batch := make([]*job, 0, maxBatch)
	for j := range b.jobs {
		batch = append(batch[:0], j)
	gather:
		for len(batch) < maxBatch {
			select {
			case j, ok := <-b.jobs:
				if !ok {
					break gather
				}
				batch = append(batch, j)
			default:
				break gather
			}
		}
		b.run(batch)
		clear(batch)
	}
}

// run commits one batch and answers its jobs. Its reads (batcher.read) run first, right after
// the transaction begins and before any write of the batch, so they see what the last commit
// made durable and nothing else; they are answered at once. Inside the transaction a read takes
// no lock of its own: on its own, each read transaction took and released a lock on the WAL's
// shared memory, two system calls, as much as the read itself.
func (b *batcher) run(batch []*job) {
	live := batch[:0:0]
	var reads []*job
	for _, j := range batch {
		if err := j.ctx.Err(); err != nil {
			j.err = err // gave up before its turn: nothing of it ran
			close(j.done)
			continue
		}
		if j.read {
			reads = append(reads, j)
			continue
		}
		live = append(live, j)
	}
	if len(live) == 0 && len(reads) == 0 {
		return
	}
	defer func() {
		for _, j := range live {
			close(j.done)
		}
	}()
	answerReads := func(err error) {
		for _, j := range reads {
			j.err = err
			close(j.done)
		}
	}
	begin := b.begin
	if len(live) == 0 {
		begin = `BEGIN` // reads alone: no write lock
	}
	bg := context.Background()
	ex := cachedExec{ex: b.conn, stmts: b.stmts}
	if _, err := ex.ExecContext(bg, begin); err != nil {
		// The connection may be broken (a PostgreSQL restart; not a local SQLite file, but a
		// stale connection must not stop every write for good): take a new one and try once
		// more. Errors other than a broken connection (SQLite busy past its timeout) come back
		// the same on the new one.
		if err := b.connect(bg); err != nil {
			answerReads(err)
			failAll(live, err)
			return
		}
		ex = cachedExec{ex: b.conn, stmts: b.stmts}
		if _, err := ex.ExecContext(bg, begin); err != nil {
			answerReads(fmt.Errorf("begin: %w", err))
			failAll(live, fmt.Errorf("begin: %w", err))
			return
		}
	}
	var broken error
	for _, j := range reads {
		runJob(j, &Tx{cachedExec: ex, detach: true, readOnly: true})
		switch {
		case broken != nil:
		case j.panic != nil:
			broken = fmt.Errorf("a read of the batch panicked: %v", j.panic)
		case j.err != nil && !changedNothing(j.err):
			// An error that may have ended the transaction (I/O, a full disk): the writes must
			// not run outside it, each statement committing on its own.
			broken = fmt.Errorf("a read of the batch failed: %w", j.err)
		}
		close(j.done)
	}
	if broken != nil {
		ex.ExecContext(bg, `ROLLBACK`) // nothing was written yet
		failAll(live, broken)
		return
	}
	if len(live) == 0 {
		// Reads alone: end their transaction, which wrote nothing.
		if _, err := ex.ExecContext(bg, `COMMIT`); err != nil {
			ex.ExecContext(bg, `ROLLBACK`)
		}
		return
	}
	tx := &Tx{cachedExec: ex, detach: true}
	if len(live) == 1 {
		// Alone: the transaction is the job's, no savepoint needed.
		j := live[0]
		runJob(j, tx)
		if j.err != nil || j.panic != nil {
			ex.ExecContext(bg, `ROLLBACK`)
			return
		}
		if _, err := ex.ExecContext(bg, `COMMIT`); err != nil {
			ex.ExecContext(bg, `ROLLBACK`)
			j.err = fmt.Errorf("commit: %w", err)
			return
		}
		b.commits.Add(1)
		return
	}
	// On PostgreSQL each statement is a round trip on the one connection the batch runs on, so a
	// job's savepoint is released together with the next one's start, in one exchange (simple
	// protocol, no parameters), or by the commit.
	released := true
	savepoint := func() error {
		if b.postgres && !released {
			_, err := b.conn.ExecContext(bg, `RELEASE job; SAVEPOINT job`)
			return err
		}
		_, err := ex.ExecContext(bg, `SAVEPOINT job`)
		return err
	}
	for i, j := range live {
		if j.single {
			tip := tx.audit
			runJob(j, tx)
			if j.panic == nil && (j.err == nil || !b.postgres && changedNothing(j.err)) {
				if j.err != nil {
					tx.audit = tip
				}
				continue
			}
			err := fmt.Errorf("a write of the batch failed: %w", j.err)
			if j.panic != nil {
				err = fmt.Errorf("a write of the batch panicked: %v", j.panic)
			}
			abort(ex, live[:i], err)
			failAll(live[i+1:], err)
			return
		}
		if err := savepoint(); err != nil {
			abort(ex, live, fmt.Errorf("savepoint: %w", err))
			return
		}
		tip := tx.audit
		runJob(j, tx)
		if j.err != nil || j.panic != nil {
			tx.audit = tip
			// Undo this job alone. If SQLite already rolled the whole transaction back (an I/O
			// error, a full disk), the savepoint is gone and so is every job's work before it.
			if _, err := ex.ExecContext(bg, `ROLLBACK TO job`); err != nil {
				abort(ex, live[:i+1], fmt.Errorf("roll back: %w", err))
				failAll(live[i+1:], fmt.Errorf("roll back: %w", err))
				return
			}
		}
		if b.postgres {
			released = false
			continue
		}
		if _, err := ex.ExecContext(bg, `RELEASE job`); err != nil {
			abort(ex, live, fmt.Errorf("release savepoint: %w", err))
			return
		}
	}
	if _, err := ex.ExecContext(bg, `COMMIT`); err != nil {
		abort(ex, live, fmt.Errorf("commit: %w", err))
		return
	}
	b.commits.Add(1)
}

// changedNothing tells whether a failed single statement left the transaction open with
// nothing of its own in it: SQLite undoes a failed statement, and only the errors listed under
// "Response To Errors Within A Transaction" of its documentation (a full disk, I/O, memory, a
// busy lock, an interrupt) may roll the whole transaction back. An error that is not SQLite's
// and not a missing row is not understood, so it counts as one that might have.
func changedNothing(err error) bool {
	if errors.Is(err, sql.ErrNoRows) || errors.Is(err, twofold.ErrNotFound) {
		return true
	}
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return false
	}
	switch se.Code() & 0xff {
	case sqlite3.SQLITE_FULL, sqlite3.SQLITE_IOERR, sqlite3.SQLITE_NOMEM, sqlite3.SQLITE_BUSY,
		sqlite3.SQLITE_INTERRUPT, sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_LOCKED:
		return false
	}
	return true
}

// runJob runs one job's function, catching a panic so that it reaches the caller and not the
// writer's goroutine.
func runJob(j *job, tx *Tx) {
	defer func() {
		if v := recover(); v != nil {
			j.panic = v
		}
	}()
	j.err = j.fn(tx)
}

// abort rolls the transaction back and fails every job of it that had succeeded with err.
func abort(ex cachedExec, jobs []*job, err error) {
	ex.ExecContext(context.Background(), `ROLLBACK`)
	for _, j := range jobs {
		if j.err == nil && j.panic == nil {
			j.err = err
		}
	}
}

func failAll(jobs []*job, err error) {
	for _, j := range jobs {
		j.err = err
	}
}
