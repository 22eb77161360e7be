package store

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twofold-auth/twofold/internal/twofold"
)

// The group-commit writer (batch.go): transactions handed over together share one commit, and
// each still succeeds or fails alone.

// batchStore opens a SQLite store with a scratch table, and returns the file's path.
func batchStore(t *testing.T) (*Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), DatabaseFile)
	s, err := OpenSQLite(t.Context(), path)
	must(t, err)
	t.Cleanup(func() { s.Close() })
	must(t, errOf(s.w.ExecContext(t.Context(), `CREATE TABLE scratch (k TEXT PRIMARY KEY, v INTEGER NOT NULL)`)))
	return s, path
}

func scratchRows(t *testing.T, s *Store) map[string]int {
	t.Helper()
	rows, err := s.r.QueryContext(t.Context(), `SELECT k, v FROM scratch`)
	must(t, err)
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var k string
		var v int
		must(t, rows.Scan(&k, &v))
		out[k] = v
	}
	must(t, rows.Err())
	return out
}

// holdWriter runs a transaction that waits until release is closed, so that the transactions
// handed over meanwhile queue up and form the next batch together. It returns once the writer
// is inside the holding transaction.
func holdWriter(t *testing.T, s *Store) (release func(), wait func()) {
	t.Helper()
	inside, free := make(chan struct{}), make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- s.tx(context.Background(), func(tx *Tx) error {
			close(inside)
			<-free
			return nil
		})
	}()
	<-inside
	return func() { close(free) }, func() { must(t, <-done) }
}

// queued waits until n transactions wait for the writer.
func queued(s *Store, n int) {
	for len(s.batch.jobs) < n {
		runtime.Gosched() // the submitters are goroutines started just before

	}
}

func TestBatchFailureUndoesOnlyItsOwn(t *testing.T) {
	s, _ := batchStore(t)
	ctx := t.Context()
	release, waitHold := holdWriter(t, s)

	errWanted := errors.New("refused by the job itself")
	type outcome struct {
		name string
		err  error
		pan  any
	}
	jobs := []struct {
		name string
		fn   func(*Tx) error
	}{
		{"ok-1", func(tx *Tx) error { return errOf(tx.ExecContext(ctx, `INSERT INTO scratch VALUES ('a', 1)`)) }},
		{"fails-after-write", func(tx *Tx) error {
			if _, err := tx.ExecContext(ctx, `INSERT INTO scratch VALUES ('b', 2)`); err != nil {
				return err
			}
			return errWanted
		}},
		{"constraint", func(tx *Tx) error {
			// Its first insert is undone with it when the second breaks the primary key.
			if _, err := tx.ExecContext(ctx, `INSERT INTO scratch VALUES ('c', 3)`); err != nil {
				return err
			}
			return errOf(tx.ExecContext(ctx, `INSERT INTO scratch VALUES ('c', 4)`))
		}},
		{"duplicate single write", nil}, // s.w.ExecContext, below: no savepoint, a constraint
		{"panics", func(tx *Tx) error {
			tx.ExecContext(ctx, `INSERT INTO scratch VALUES ('d', 5)`)
			panic("job panicked")
		}},
		{"ok-2", func(tx *Tx) error {
			// Sees the writes of the successful transactions before it in the batch.
			var n int
			if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM scratch`).Scan(&n); err != nil {
				return err
			}
			return errOf(tx.ExecContext(ctx, `INSERT INTO scratch VALUES ('e', $1)`, n))
		}},
	}
	results := make(chan outcome, len(jobs))
	for i, j := range jobs {
		go func() {
			var o outcome
			o.name = j.name
			defer func() {
				o.pan = recover()
				results <- o
			}()
			if j.fn == nil {
				o.err = errOf(s.w.ExecContext(ctx, `INSERT INTO scratch VALUES ('a', 9)`))
				return
			}
			o.err = s.tx(ctx, j.fn)
		}()
		queued(s, i+1) // in this order
	}
	release()
	waitHold()
	got := map[string]outcome{}
	for range jobs {
		o := <-results
		got[o.name] = o
	}

	if o := got["ok-1"]; o.err != nil || o.pan != nil {
		t.Errorf("ok-1: %v, panic %v", o.err, o.pan)
	}
	if o := got["fails-after-write"]; !errors.Is(o.err, errWanted) {
		t.Errorf("fails-after-write: err %v, want its own", o.err)
	}
	if o := got["constraint"]; o.err == nil {
		t.Error("constraint: a duplicate key was accepted")
	}
	if o := got["duplicate single write"]; o.err == nil {
		t.Error("duplicate single write: a duplicate key was accepted")
	}
	if o := got["panics"]; o.pan != "job panicked" {
		t.Errorf("panics: the caller got panic %v, err %v; want the job's panic re-raised", o.pan, o.err)
	}
	if o := got["ok-2"]; o.err != nil || o.pan != nil {
		t.Errorf("ok-2: %v, panic %v", o.err, o.pan)
	}
	want := map[string]int{"a": 1, "e": 1}
	if d := diff(want, scratchRows(t, s)); d != "" {
		t.Errorf("committed rows:%s", d)
	}
}

func TestBatchSharesOneCommit(t *testing.T) {
	s, path := batchStore(t)
	ctx := t.Context()
	before := s.batch.commits.Load()
	release, waitHold := holdWriter(t, s)
	const n = 50
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- errOf(s.w.ExecContext(ctx, `INSERT INTO scratch VALUES ($1, $2)`, fmt.Sprint("k", i), i))
		}()
	}
	queued(s, n)
	release()
	waitHold()
	wg.Wait()
	close(errs)
	for err := range errs {
		must(t, err)
	}
	if got := len(scratchRows(t, s)); got != n {
		t.Fatalf("%d rows committed, want %d", got, n)
	}
	if got := s.batch.commits.Load() - before; got != 2 {
		t.Errorf("%d commits for the holding transaction and %d queued ones, want 2", got, n)
	}
	// Answered means durable: a fresh connection (another process, a restart) sees them all.
	other := openSQLiteAt(t, path)
	var count int
	must(t, other.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM scratch`).Scan(&count))
	if count != n {
		t.Fatalf("another connection sees %d rows, want %d", count, n)
	}
}

func TestBatchCancelledBeforeItsTurnDoesNothing(t *testing.T) {
	s, _ := batchStore(t)
	release, waitHold := holdWriter(t, s)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		done <- errOf(s.w.ExecContext(ctx, `INSERT INTO scratch VALUES ('late', 1)`))
	}()
	queued(s, 1)
	cancel()
	release()
	waitHold()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled write: %v, want context.Canceled", err)
	}
	if rows := scratchRows(t, s); len(rows) != 0 {
		t.Fatalf("a write cancelled before its turn was committed: %v", rows)
	}
	// A context cancelled while its transaction runs does not interrupt it: it commits, and
	// the caller hears so.
	ctx, cancel = context.WithCancel(t.Context())
	err := s.tx(ctx, func(tx *Tx) error {
		cancel()
		return errOf(tx.ExecContext(ctx, `INSERT INTO scratch VALUES ('mid', 1)`))
	})
	must(t, err)
	if rows := scratchRows(t, s); rows["mid"] != 1 {
		t.Fatalf("rows %v, want mid committed", rows)
	}
}

func TestBatchCloseAnswersEveryQueuedWrite(t *testing.T) {
	s, path := batchStore(t)
	ctx := t.Context()
	release, waitHold := holdWriter(t, s)
	const n = 10
	errs := make(chan error, n)
	for i := range n {
		go func() { errs <- errOf(s.w.ExecContext(ctx, `INSERT INTO scratch VALUES ($1, 1)`, fmt.Sprint(i))) }()
	}
	queued(s, n)
	closed := make(chan error, 1)
	go func() { closed <- s.Close() }()
	release()
	waitHold()
	must(t, <-closed)
	for range n {
		must(t, <-errs)
	}
	if err := errOf(s.w.ExecContext(ctx, `INSERT INTO scratch VALUES ('after', 1)`)); !errors.Is(err, errClosed) {
		t.Fatalf("write after Close: %v, want errClosed", err)
	}
	s2 := openSQLiteAt(t, path)
	if got := len(scratchRows(t, s2)); got != n {
		t.Fatalf("%d of %d queued writes survived Close", got, n)
	}
}

// A single-statement transaction that fails in a way that might have ended SQLite's transaction
// abandons the batch: the transactions before it are undone and every one is told.
func TestBatchAbandonedWhenASingleWriteFailsBadly(t *testing.T) {
	s, _ := batchStore(t)
	ctx := t.Context()
	release, waitHold := holdWriter(t, s)
	errs := make(chan error, 3)
	go func() { errs <- errOf(s.w.ExecContext(ctx, `INSERT INTO scratch VALUES ('before', 1)`)) }()
	queued(s, 1)
	go func() {
		errs <- s.tx1(ctx, func(tx *Tx) error {
			if _, err := tx.ExecContext(ctx, `INSERT INTO scratch VALUES ('bad', 1)`); err != nil {
				return err
			}
			return errors.New("not an error the batcher understands")
		})
	}()
	queued(s, 2)
	go func() { errs <- errOf(s.w.ExecContext(ctx, `INSERT INTO scratch VALUES ('after', 1)`)) }()
	queued(s, 3)
	release()
	waitHold()
	for range 3 {
		if err := <-errs; err == nil {
			t.Error("a transaction of the abandoned batch reported success")
		}
	}
	if rows := scratchRows(t, s); len(rows) != 0 {
		t.Fatalf("rows of an abandoned batch were committed: %v", rows)
	}
	// The writer carries on.
	must(t, errOf(s.w.ExecContext(ctx, `INSERT INTO scratch VALUES ('next', 1)`)))
	if rows := scratchRows(t, s); rows["next"] != 1 {
		t.Fatalf("rows %v after the abandoned batch, want next", rows)
	}
}

func BenchmarkCheckState(b *testing.B) {
	s, _, u := benchStore(b)
	mkAuthenticator(b, s, u)
	b.ReportAllocs()
	for b.Loop() {
		if st, err := s.CheckState(b.Context(), u.AppID, u.ID, t0, twofold.LimitWindow{}); err != nil || st.Authenticator == nil {
			b.Fatal(st, err)
		}
	}
}

// BenchmarkCheckStateLocked is CheckState for a user whose failure limit is full (10 events
// and a refusal recorded): what a guess for a locked-out user costs.
func BenchmarkCheckStateLocked(b *testing.B) {
	s, _, u := benchStore(b)
	mkAuthenticator(b, s, u)
	l := twofold.Limit{N: 10, Window: 15 * time.Minute}
	for range l.N {
		if _, err := s.Hit(b.Context(), "verify-failures:bench", t0, l); err != nil {
			b.Fatal(err)
		}
	}
	if _, err := s.RecordRefusal(b.Context(), "verify-failures:bench", t0, l.Window); err != nil {
		b.Fatal(err)
	}
	w := twofold.LimitWindow{Name: "verify-failures:bench", Since: t0.Add(-l.Window)}
	b.ReportAllocs()
	for b.Loop() {
		if st, err := s.CheckState(b.Context(), u.AppID, u.ID, t0, w); err != nil || st.Failures != 10 || !st.Refused {
			b.Fatal(st, err)
		}
	}
}

// BenchmarkGroupCommit is one durable single-statement write per operation from many goroutines
// at once (as a loaded server makes them): ns/op falls with the writes that share a commit.
// commits/op reports how many did.
func BenchmarkGroupCommit(b *testing.B) {
	for _, par := range []int{1, 16, 64} {
		b.Run(fmt.Sprint("writers=", par), func(b *testing.B) {
			s, _, _ := benchStore(b)
			before := s.batch.commits.Load()
			b.SetParallelism(par) // × GOMAXPROCS goroutines
			b.ReportAllocs()
			var n atomic.Int64
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := s.Incr(b.Context(), fmt.Sprint("bench-", n.Add(1)%1000), t0, t0.Add(time.Hour), 1); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(s.batch.commits.Load()-before)/float64(b.N), "commits/op")
		})
	}
}

// A writer whose connection broke takes a new one: the next write succeeds.
func TestBatchReconnects(t *testing.T) {
	s, _ := batchStore(t)
	ctx := t.Context()
	must(t, s.batch.conn.Close()) // as if the connection had gone bad
	must(t, errOf(s.w.ExecContext(ctx, `INSERT INTO scratch VALUES ('after', 1)`)))
	if rows := scratchRows(t, s); rows["after"] != 1 {
		t.Fatalf("rows %v, want after", rows)
	}
}

// A read handed to the writer (batcher.read) runs in the next batch before any of its writes,
// so it sees only what is committed: not even the writes of a transaction queued before it and
// run in the same batch.
func TestBatchReadSeesOnlyCommitted(t *testing.T) {
	s, _ := batchStore(t)
	ctx := t.Context()
	must(t, errOf(s.w.ExecContext(ctx, `INSERT INTO scratch (k, v) VALUES ('old', 1)`)))
	release, waitHold := holdWriter(t, s)

	wrote := queueInsert(s, "new", 2)
	var seen []string
	read := make(chan error, 1)
	go func() {
		read <- s.batch.read(ctx, func(tx *Tx) error {
			rows, err := tx.QueryContext(ctx, `SELECT k FROM scratch ORDER BY k`)
			if err != nil {
				return err
			}
			defer rows.Close()
			for rows.Next() {
				var k string
				if err := rows.Scan(&k); err != nil {
					return err
				}
				seen = append(seen, k)
			}
			return rows.Err()
		})
	}()
	queued(s, 2)
	release()
	waitHold()
	must(t, <-read)
	must(t, <-wrote)
	if fmt.Sprint(seen) != "[old]" {
		t.Errorf("the read saw %v, want [old]: only what was committed before its batch", seen)
	}
	if got := scratchRows(t, s); got["new"] != 2 {
		t.Errorf("the write queued before the read was lost: %v", got)
	}
}

// A read may not write: outside any transaction, a write would commit on its own.
func TestBatchReadRefusesWrites(t *testing.T) {
	s, _ := batchStore(t)
	ctx := t.Context()
	err := s.batch.read(ctx, func(tx *Tx) error {
		return errOf(tx.ExecContext(ctx, `INSERT INTO scratch (k, v) VALUES ('x', 1)`))
	})
	if !errors.Is(err, errReadOnly) {
		t.Fatalf("a write in a read: %v, want errReadOnly", err)
	}
	if got := scratchRows(t, s); len(got) != 0 {
		t.Errorf("a read wrote %v", got)
	}
}

// A read that fails in a way that may have ended the batch's transaction (here, by panicking)
// stops the batch's writes from running outside it: they fail, and nothing of them is written.
func TestBatchBrokenReadFailsTheWrites(t *testing.T) {
	s, _ := batchStore(t)
	ctx := t.Context()
	release, waitHold := holdWriter(t, s)

	wrote := queueInsert(s, "w", 1)
	panicked := make(chan any, 1)
	go func() {
		defer func() { panicked <- recover() }()
		s.batch.read(ctx, func(*Tx) error { panic("read broke") })
	}()
	queued(s, 2)
	release()
	waitHold()
	if v := <-panicked; v != "read broke" {
		t.Errorf("the read's caller got %v, want its panic", v)
	}
	if err := <-wrote; err == nil {
		t.Error("a write ran in a batch whose read broke")
	}
	if got := scratchRows(t, s); len(got) != 0 {
		t.Errorf("written: %v", got)
	}
	// The writer goes on: the next batch commits.
	must(t, s.tx(ctx, func(tx *Tx) error {
		return errOf(tx.ExecContext(ctx, `INSERT INTO scratch (k, v) VALUES ('after', 2)`))
	}))
	if got := scratchRows(t, s); got["after"] != 2 {
		t.Errorf("after a broken read the writer did not recover: %v", got)
	}
}

// queueInsert hands the writer a transaction that inserts k = v into scratch, waits until it is
// queued behind the one running, and returns where its outcome arrives.
func queueInsert(s *Store, k string, v int) <-chan error {
	wrote := make(chan error, 1)
	waiting := len(s.batch.jobs)
	go func() {
		wrote <- s.tx(context.Background(), func(tx *Tx) error {
			return errOf(tx.ExecContext(context.Background(), `INSERT INTO scratch (k, v) VALUES ($1, $2)`, k, v))
		})
	}()
	queued(s, waiting+1)
	return wrote
}
