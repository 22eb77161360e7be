package store

import (
	"errors"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twofold-auth/twofold/internal/store/storetest"
	"github.com/twofold-auth/twofold/internal/twofold"
)

// PostgreSQL tests run when TWOFOLD_TEST_POSTGRES names a database, such as
// postgres://postgres@127.0.0.1:5432/test?sslmode=disable; each store gets a schema of its own,
// dropped when its test ends. With TWOFOLD_REQUIRE_POSTGRES=1 a missing database fails.

// postgresOpener returns an open for runConformance: a fresh schema per call, with a store on it.
func postgresOpener(t *testing.T) func(t *testing.T) *Store {
	storetest.DSN(t)
	return func(t *testing.T) *Store {
		t.Helper()
		schemaDSN := storetest.Schema(t)
		s, err := OpenPostgres(t.Context(), schemaDSN)
		if err != nil {
			t.Fatalf("OpenPostgres: %v", err)
		}
		t.Cleanup(func() {
			if err := s.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		})
		return s
	}
}

func TestPostgresConformance(t *testing.T) {
	runConformance(t, postgresOpener(t))
}

// Instances starting together on an empty schema: one migrates, the others wait and find
// nothing to do; all of them work.
func TestPostgresConcurrentFirstOpen(t *testing.T) {
	schemaDSN := storetest.Schema(t)
	stores := make([]*Store, 4)
	race(len(stores), func(i int) {
		s, err := OpenPostgres(t.Context(), schemaDSN)
		if err != nil {
			t.Errorf("opener %d: %v", i, err)
			return
		}
		stores[i] = s
	})
	for _, s := range stores {
		if s != nil {
			defer s.Close()
		}
	}
	if t.Failed() {
		return
	}
	a := mkApp(t, stores[0], "a")
	if got := getApp(t, stores[3], a.ID); got.Name != "a" {
		t.Errorf("another instance reads %+v", got)
	}
	var n int
	must(t, stores[1].r.QueryRowContext(t.Context(), `SELECT COUNT(*) FROM goose_db_version WHERE version_id = 1`).Scan(&n))
	if n != 1 {
		t.Errorf("migration 1 recorded %d times, want once", n)
	}
	// Several instances, several pools: the security properties hold across them too.
	u := mkUser(t, stores[0], a.ID, 1, "5550000001")
	au := mkAuthenticator(t, stores[1], u)
	exactlyOne(t, workers, "AdvanceStep across instances", func(i int) (bool, error) {
		return stores[i%len(stores)].AdvanceStep(t.Context(), u.AppID, u.ID, au.Version, 77)
	})
	c := mkCode(t, stores[2], u, "login", t0, ttl)
	exactlyOne(t, workers, "UseCode across instances", func(i int) (bool, error) {
		return stores[i%len(stores)].UseCode(t.Context(), c.ID, t0, 3)
	})
	errs := make([]error, workers)
	race(workers, func(i int) {
		e := twofold.AuditEvent{At: t0, Actor: "system", Action: twofold.AuditVerificationFailed, UserID: int64(i)}
		errs[i] = stores[i%len(stores)].AppendAudit(t.Context(), &e, testChain)
	})
	for _, err := range errs {
		must(t, err)
	}
	log, err := stores[3].ListAudit(t.Context(), twofold.AuditFilter{Limit: 1000})
	must(t, err)
	if len(log) != workers {
		t.Fatalf("%d audit entries, want %d", len(log), workers)
	}
	checkChain(t, log)
}

func TestIsPostgresDSN(t *testing.T) {
	for in, want := range map[string]bool{
		"postgres://u@h/db": true, "postgresql://h/db?sslmode=disable": true,
		"/var/lib/twofold/twofold.db": false, "twofold.db": false, "postgres.db": false,
	} {
		if got := IsPostgresDSN(in); got != want {
			t.Errorf("IsPostgresDSN(%q) = %v, want %v", in, got, want)
		}
	}
}

// The audit trail's batcher on PostgreSQL holds one connection; when the database ends it (a
// restart, an operator's pg_terminate_backend), the next append takes a new one and succeeds.
func TestPostgresAuditWriterReconnects(t *testing.T) {
	s := postgresOpener(t)(t)
	ctx := t.Context()
	chain := func(prev []byte, e twofold.AuditEvent) []byte { return append([]byte("h"), prev...) }
	e := twofold.AuditEvent{At: t0, Actor: "test", Action: "first"}
	must(t, s.AppendAudit(ctx, &e, chain))
	var pid int
	must(t, s.audit.do(ctx, true, func(tx *Tx) error {
		return tx.QueryRowContext(ctx, `SELECT pg_backend_pid()`).Scan(&pid)
	}))
	var ended bool
	must(t, s.r.QueryRowContext(ctx, `SELECT pg_terminate_backend($1)`, pid).Scan(&ended))
	if !ended {
		t.Fatalf("could not end the audit writer's backend %d", pid)
	}
	next := twofold.AuditEvent{At: t0, Actor: "test", Action: "second"}
	must(t, s.AppendAudit(ctx, &next, chain))
	if next.ID != e.ID+1 {
		t.Fatalf("second entry has id %d, want %d", next.ID, e.ID+1)
	}
}

// Two instances on one database: their decisions about one user are serialised too (the audit
// trail's lock, then the user's), so a failure limit read and counted in decisions holds across
// them.
func TestPostgresDecisionsAcrossInstances(t *testing.T) {
	schemaDSN := storetest.Schema(t)
	var stores []*Store
	for range 2 {
		s, err := OpenPostgres(t.Context(), schemaDSN)
		if err != nil {
			t.Fatalf("OpenPostgres: %v", err)
		}
		t.Cleanup(func() { s.Close() })
		stores = append(stores, s)
	}
	a := mkApp(t, stores[0], "a")
	u := mkUser(t, stores[0], a.ID, 1, "5550000001")
	l := twofold.Limit{N: 5, Window: time.Hour}
	var judged atomic.Int32
	race(workers, func(i int) {
		ok, err := guess(t.Context(), stores[i%2], a.ID, u.ID, "failures:u", l)
		if err != nil {
			t.Error(err)
		}
		if ok {
			judged.Add(1)
		}
	})
	if n := judged.Load(); n != int32(l.N) {
		t.Errorf("%d tokens judged by %d parallel decisions on two instances, want %d", n, workers, l.N)
	}
}

// On PostgreSQL a batch releases each job's savepoint with the next one's start (batch.go): a
// job that fails, before or after others, is still undone alone, and the later ones still see
// the writes of the ones that succeeded.
func TestPostgresBatchUndoesOnlyTheFailedJob(t *testing.T) {
	s := postgresOpener(t)(t)
	ctx := t.Context()
	must(t, errOf(s.db.ExecContext(ctx, `CREATE TABLE scratch (k TEXT PRIMARY KEY, v INTEGER NOT NULL)`)))
	inside, free, held := make(chan struct{}), make(chan struct{}), make(chan error, 1)
	go func() {
		held <- s.audit.do(ctx, false, func(*Tx) error { close(inside); <-free; return nil })
	}()
	<-inside
	insert := func(k string, v int) func(tx *Tx) error {
		return func(tx *Tx) error { return errOf(tx.ExecContext(ctx, `INSERT INTO scratch VALUES ($1, $2)`, k, v)) }
	}
	jobs := []struct {
		name string
		fn   func(*Tx) error
		ok   bool
	}{
		{"ok-1", insert("a", 1), true},
		{"fails-after-write", func(tx *Tx) error {
			if err := insert("b", 2)(tx); err != nil {
				return err
			}
			return errors.New("refused by the job itself")
		}, false},
		{"constraint", func(tx *Tx) error { // a failed statement: PostgreSQL aborts the savepoint
			if err := insert("c", 3)(tx); err != nil {
				return err
			}
			return insert("a", 4)(tx)
		}, false},
		{"ok-2", func(tx *Tx) error {
			var n int
			if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM scratch`).Scan(&n); err != nil {
				return err
			}
			return insert("e", n)(tx)
		}, true},
		{"ok-3", insert("f", 6), true},
	}
	errs := make([]chan error, len(jobs))
	for i, j := range jobs {
		errs[i] = make(chan error, 1)
		go func() { errs[i] <- s.audit.do(ctx, false, j.fn) }()
		for len(s.audit.jobs) < i+1 { // in this order, one batch
			runtime.Gosched()
		}
	}
	close(free)
	must(t, <-held)
	for i, j := range jobs {
		if err := <-errs[i]; (err == nil) != j.ok {
			t.Errorf("%s: err %v, want success %v", j.name, err, j.ok)
		}
	}
	rows, err := s.r.QueryContext(ctx, `SELECT k, v FROM scratch ORDER BY k`)
	must(t, err)
	defer rows.Close()
	var got []string
	for rows.Next() {
		var k string
		var v int
		must(t, rows.Scan(&k, &v))
		got = append(got, fmt.Sprint(k, "=", v))
	}
	if want := []string{"a=1", "e=1", "f=6"}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("committed rows %v, want %v", got, want)
	}
}
