package store

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/twofold-auth/twofold/internal/store/storetest"
	"github.com/twofold-auth/twofold/internal/twofold"
)

// The callback claims of runConformance (ClaimDueCallbacks), and the same claims raced by
// several stores on one database, as several instances of the server race for them.

func testClaimCallbacks(t *testing.T, open func(t *testing.T) *Store) {
	t.Run("DueFirstLeasedOnce", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		a, b := mkApp(t, s, "a"), mkApp(t, s, "b")
		u, w := mkUser(t, s, a.ID, 1, "5550000001"), mkUser(t, s, b.ID, 1, "5550000001")
		a1, a2, a3 := mkCallback(t, s, u, t0.Add(-2*time.Minute)), mkCallback(t, s, u, t0.Add(-time.Minute)), mkCallback(t, s, u, t0)
		a4, a5 := mkCallback(t, s, u, t0.Add(time.Second)), mkCallback(t, s, u, t0.Add(-2*time.Minute)) // a5 ties a1
		delivered, dropped := mkCallback(t, s, u, t0.Add(-time.Hour)), mkCallback(t, s, u, t0.Add(-time.Hour))
		must(t, s.CallbackDelivered(ctx, delivered, 200, t0.Add(-time.Hour)))
		must(t, s.DropCallback(ctx, dropped, "no URL"))
		b1 := mkCallback(t, s, w, t0.Add(-time.Hour))
		failCallback(t, s, b1, "down", t0.Add(-5*time.Minute), t0.Add(-time.Hour), 1, true) // disables b
		b1Failed := callbackByID(t, s, b1)
		lease, lease2 := t0.Add(time.Minute), t0.Add(time.Minute+time.Second)
		for i, st := range []struct {
			op       string // claim, or enable b's callbacks
			now      time.Time
			lease    time.Time
			n        int
			want     []twofold.Callback // by id
			wantNext []int64            // then: the ids due, soonest first
		}{
			{"claim", t0, lease, 0, nil, []int64{a1.ID, a5.ID, a2.ID, a3.ID}},
			{"claim", t0, lease, 1, []twofold.Callback{leased(a1, lease)}, []int64{a5.ID, a2.ID, a3.ID}}, // a tie goes by id
			{"claim", t0, lease, 2, []twofold.Callback{leased(a2, lease), leased(a5, lease)}, []int64{a3.ID}},
			{"claim", t0.Add(-time.Minute), lease, 100, nil, nil}, // a3 is not due yet then
			{"claim", t0, lease, 100, []twofold.Callback{leased(a3, lease)}, nil},
			{"claim", t0, lease, 100, nil, nil}, // all leased; a4 and the disabled b1 not due
			{"claim", t0.Add(time.Second), lease2, 100, []twofold.Callback{leased(a4, lease2)}, nil},
			{"enable", t0.Add(time.Second), time.Time{}, 0, nil, []int64{b1.ID}},
			{"claim", t0.Add(time.Second), lease, 100, []twofold.Callback{leased(b1Failed, lease)}, nil},
			{"claim", lease.Add(-time.Second), lease2, 100, nil, nil}, // the leases still hold
			{"claim", lease, lease2, 2, []twofold.Callback{leased(a1, lease2), leased(a2, lease2)}, // they ran out
				[]int64{a3.ID, a5.ID, b1.ID}},
			{"claim", lease2, lease2.Add(time.Minute), 100, []twofold.Callback{leased(a1, lease2.Add(time.Minute)),
				leased(a2, lease2.Add(time.Minute)), leased(a3, lease2.Add(time.Minute)), leased(a4, lease2.Add(time.Minute)),
				leased(a5, lease2.Add(time.Minute)), leased(b1Failed, lease2.Add(time.Minute))}, nil},
		} {
			if st.op == "enable" {
				must(t, s.EnableCallback(ctx, b.ID))
			} else {
				got := noErr(s.ClaimDueCallbacks(ctx, st.now, st.lease, st.n))(t)
				same(t, fmt.Sprintf("step %d: ClaimDueCallbacks(t0%+v, n %d)", i, st.now.Sub(t0), st.n), st.want, got)
				for _, c := range got { // the lease is what the store holds
					same(t, fmt.Sprintf("step %d: stored callback %d", i, c.ID), c, callbackByID(t, s, c))
				}
			}
			same(t, fmt.Sprintf("step %d (%s): due afterwards", i, st.op), st.wantNext, callbacksDue(t, s, st.now))
		}
		for _, c := range []twofold.Callback{delivered, dropped} { // never claimed, never changed
			if got := callbackByID(t, s, c); !got.NextAttemptAt.Equal(c.NextAttemptAt) || got.Status == "pending" {
				t.Errorf("callback %+v was claimed", got)
			}
		}
	})

	t.Run("DisabledNotClaimed", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		a := mkApp(t, s, "a")
		u := mkUser(t, s, a.ID, 1, "5550000001")
		c, d := mkCallback(t, s, u, t0), mkCallback(t, s, u, t0)
		failCallback(t, s, c, "down", t0, t0, 1, true)
		want := callbackByID(t, s, d)
		same(t, "claims of a disabled application", []twofold.Callback(nil),
			noErr(s.ClaimDueCallbacks(ctx, t0.Add(time.Hour), t0.Add(2*time.Hour), 100))(t))
		same(t, "a callback of a disabled application after a claim", want, callbackByID(t, s, d))
	})

	t.Run("QueuedLeasedForAHandOff", func(t *testing.T) { // callback.Dispatcher.Reserve's callbacks
		s, ctx := open(t), t.Context()
		a, b := mkApp(t, s, "a"), mkApp(t, s, "b")
		u, w := mkUser(t, s, a.ID, 1, "5550000001"), mkUser(t, s, b.ID, 1, "5550000001")
		lease := t0.Add(time.Minute + 500*time.Millisecond) // kept in whole seconds, as a claim's
		queue := func(u twofold.User, next time.Time) twofold.Callback {
			t.Helper()
			r := mkRequest(t, s, u, t0.Add(-time.Second), ttl)
			cb := twofold.Callback{AppID: u.AppID, RequestUUID: r.UUID, Payload: []byte(`{}`), NextAttemptAt: next}
			if !finish(t, s, r, twofold.Approved, t0, &cb) || cb.ID == 0 {
				t.Fatalf("FinishApprovalRequest did not queue a callback (id %d)", cb.ID)
			}
			return cb
		}
		handed := queue(u, lease)
		want := twofold.Callback{ID: handed.ID, AppID: a.ID, RequestUUID: handed.RequestUUID, Payload: handed.Payload,
			Status: "pending", NextAttemptAt: t0.Add(time.Minute), CreatedAt: t0}
		same(t, "the callback's lease as the store reports it", want.NextAttemptAt, handed.NextAttemptAt)
		same(t, "the callback as the store holds it", want, callbackByID(t, s, handed))
		// A lease not after the answer's time is no lease: queued due at once.
		unleased := queue(u, t0)
		same(t, "a callback queued without a lease", t0, unleased.NextAttemptAt)
		// The application's callbacks disabled: queued as without a hand-off, for the claims after
		// they are enabled again.
		failCallback(t, s, mkCallback(t, s, w, t0), "down", t0, t0, 1, true)
		held := queue(w, lease)
		same(t, "a callback of a disabled application", t0, held.NextAttemptAt)
		same(t, "a callback of a disabled application as the store holds it", t0, callbackByID(t, s, held).NextAttemptAt)
		// No claim takes the handed-off callback while its lease holds; once it has run out (the
		// process that held it died before delivering it), a claim does.
		same(t, "claimed while the lease holds", []twofold.Callback{leased(callbackByID(t, s, unleased), t0.Add(time.Hour))},
			noErr(s.ClaimDueCallbacks(ctx, t0.Add(time.Minute-time.Second), t0.Add(time.Hour), 100))(t))
		same(t, "claimed once the lease ran out", []twofold.Callback{leased(want, t0.Add(time.Hour))},
			noErr(s.ClaimDueCallbacks(ctx, t0.Add(time.Minute), t0.Add(time.Hour), 100))(t))
	})

	t.Run("ClaimThenOutcome", func(t *testing.T) { // what the dispatcher does with a claim
		s, ctx := open(t), t.Context()
		a := mkApp(t, s, "a")
		u := mkUser(t, s, a.ID, 1, "5550000001")
		ok, bad := mkCallback(t, s, u, t0), mkCallback(t, s, u, t0)
		got := noErr(s.ClaimDueCallbacks(ctx, t0, t0.Add(time.Minute), 2))(t)
		if len(got) != 2 {
			t.Fatalf("claimed %d callbacks, want 2", len(got))
		}
		must(t, s.CallbackDelivered(ctx, got[0], 200, t0.Add(time.Second)))
		failCallback(t, s, got[1], "HTTP 500", t0.Add(10*time.Second), t0.Add(time.Second), 3, false)
		same(t, "due while the failed one waits", []int64(nil), callbacksDue(t, s, t0.Add(9*time.Second)))
		retry := bad
		retry.Attempts, retry.LastStatus, retry.LastError, retry.NextAttemptAt = 1, 500, "HTTP 500", t0.Add(10*time.Second)
		same(t, "claim after the backoff", []twofold.Callback{leased(retry, t0.Add(time.Hour))},
			noErr(s.ClaimDueCallbacks(ctx, t0.Add(10*time.Second), t0.Add(time.Hour), 100))(t))
		if c := callbackByID(t, s, ok); c.Status != "delivered" {
			t.Errorf("delivered callback is %q", c.Status)
		}
	})

	t.Run("DeliveredWritesAppOnlyToClear", func(t *testing.T) { // the apps table changes only for a reason
		s, ctx := open(t), t.Context()
		a := mkApp(t, s, "a")
		u := mkUser(t, s, a.ID, 1, "5550000001")
		writes, failures := countAppWrites(t, s), 0
		for i, st := range []struct {
			op     string // deliver or fail
			writes int    // updates of rows of apps so far
		}{{"deliver", 0}, {"deliver", 0}, {"fail", 1}, {"deliver", 2}, {"deliver", 2}, {"fail", 3}, {"fail", 4}, {"deliver", 5}} {
			c := mkCallback(t, s, u, t0)
			want := twofold.CallbackHealth{}
			if st.op == "fail" {
				failCallback(t, s, c, "down", t0.Add(time.Minute), t0, 5, false)
				failures++
				want = twofold.CallbackHealth{CallbackFailures: failures, CallbackLastError: "down"}
			} else {
				must(t, s.CallbackDelivered(ctx, c, 200, t0))
				failures = 0
			}
			same(t, fmt.Sprintf("step %d (%s): health", i, st.op), want, getApp(t, s, a.ID).CallbackHealth)
			if got := writes(); got != st.writes {
				t.Errorf("step %d (%s): %d updates of apps so far, want %d", i, st.op, got, st.writes)
			}
		}
	})

	t.Run("RaceClaimsEachOnce", func(t *testing.T) {
		s := open(t)
		u := mkUser(t, s, mkApp(t, s, "a").ID, 1, "5550000001")
		raceClaims(t, []*Store{s}, mkCallbacks(t, s, u, 3*workers))
	})
}

// TestClaimCallbacksAcrossStores races claims of several stores on one database, as several
// server instances (on PostgreSQL several pools; on SQLite several writer connections, which
// SQLite serialises across processes as well).
func TestClaimCallbacksAcrossStores(t *testing.T) {
	engines := map[string]func(t *testing.T) []*Store{
		"SQLite": func(t *testing.T) []*Store {
			path := filepath.Join(t.TempDir(), DatabaseFile)
			return []*Store{openSQLiteAt(t, path), openSQLiteAt(t, path), openSQLiteAt(t, path)}
		},
		"Postgres": func(t *testing.T) []*Store {
			dsn := storetest.Schema(t)
			var out []*Store
			for range 3 {
				s, err := OpenPostgres(t.Context(), dsn)
				if err != nil {
					t.Fatalf("OpenPostgres: %v", err)
				}
				t.Cleanup(func() { s.Close() })
				out = append(out, s)
			}
			return out
		},
	}
	for name, open := range engines {
		t.Run(name, func(t *testing.T) {
			stores := open(t)
			u := mkUser(t, stores[0], mkApp(t, stores[0], "a").ID, 1, "5550000001")
			raceClaims(t, stores, mkCallbacks(t, stores[0], u, 3*workers))
		})
	}
}

// A callback being claimed elsewhere (its row locked by another transaction) is skipped, not
// waited for: the claim returns the others at once and the locked one once it is free.
func TestPostgresClaimSkipsLocked(t *testing.T) {
	s := postgresOpener(t)(t)
	u := mkUser(t, s, mkApp(t, s, "a").ID, 1, "5550000001")
	cs := mkCallbacks(t, s, u, 3)
	tx, err := s.db.BeginTx(t.Context(), nil)
	must(t, err)
	defer tx.Rollback()
	if _, err := tx.ExecContext(t.Context(), `SELECT id FROM callbacks WHERE id = $1 FOR UPDATE`, cs[1].ID); err != nil {
		t.Fatal(err)
	}
	// Were the row waited for, this claim would end only with its context.
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	lease := t0.Add(time.Minute)
	got := noErr(s.ClaimDueCallbacks(ctx, t0, lease, 100))(t)
	same(t, "claimed beside a locked row", []int64{cs[0].ID, cs[2].ID}, ids(got))
	must(t, tx.Rollback())
	got = noErr(s.ClaimDueCallbacks(ctx, t0, lease, 100))(t)
	same(t, "claimed once the lock is gone", []int64{cs[1].ID}, ids(got))
}

// raceClaims has workers goroutines, spread over stores, claim three at a time until nothing
// is left, and checks that every callback of cs was claimed exactly once.
func raceClaims(t *testing.T, stores []*Store, cs []twofold.Callback) {
	t.Helper()
	var mu sync.Mutex
	claims := map[int64]int{}
	race(workers, func(i int) {
		s := stores[i%len(stores)]
		for {
			got, err := s.ClaimDueCallbacks(t.Context(), t0, t0.Add(time.Minute), 3)
			if err != nil {
				t.Errorf("ClaimDueCallbacks #%d: %v", i, err)
				return
			}
			if len(got) > 3 {
				t.Errorf("ClaimDueCallbacks(n 3) #%d returned %d", i, len(got))
			}
			if len(got) == 0 {
				return
			}
			mu.Lock()
			for _, c := range got {
				claims[c.ID]++
			}
			mu.Unlock()
		}
	})
	for _, c := range cs {
		if claims[c.ID] != 1 {
			t.Errorf("callback %d claimed %d times by %d racing claimers, want once", c.ID, claims[c.ID], workers)
		}
	}
	if len(claims) != len(cs) {
		t.Errorf("%d callbacks claimed, want %d", len(claims), len(cs))
	}
	if got := noErr(stores[0].ClaimDueCallbacks(t.Context(), t0, t0.Add(time.Minute), 100))(t); len(got) != 0 {
		t.Errorf("claimed %d more after the race", len(got))
	}
}

// mkCallbacks queues n callbacks of u, all due at t0.
func mkCallbacks(tb testing.TB, s *Store, u twofold.User, n int) []twofold.Callback {
	tb.Helper()
	var out []twofold.Callback
	for range n {
		out = append(out, mkCallback(tb, s, u, t0))
	}
	return out
}

// leased is c as a claim until until returns it.
func leased(c twofold.Callback, until time.Time) twofold.Callback { c.NextAttemptAt = until; return c }

// countAppWrites installs a trigger that counts the rows of apps updated, by anyone, from now
// on, and returns what reads the count.
func countAppWrites(t *testing.T, s *Store) func() int {
	t.Helper()
	ddl := []string{`CREATE TABLE app_writes (n INTEGER NOT NULL)`, `INSERT INTO app_writes (n) VALUES (0)`,
		`CREATE TRIGGER count_app_writes AFTER UPDATE ON apps BEGIN UPDATE app_writes SET n = n + 1; END`}
	if s.pg {
		ddl[2] = `CREATE FUNCTION count_app_writes() RETURNS trigger LANGUAGE plpgsql AS
			'BEGIN UPDATE app_writes SET n = n + 1; RETURN NULL; END'`
		ddl = append(ddl, `CREATE TRIGGER count_app_writes AFTER UPDATE ON apps FOR EACH ROW EXECUTE FUNCTION count_app_writes()`)
	}
	must(t, s.tx(t.Context(), func(tx *Tx) error {
		for _, q := range ddl {
			if _, err := tx.ExecContext(t.Context(), q); err != nil {
				return fmt.Errorf("%s: %w", q, err)
			}
		}
		return nil
	}))
	return func() int {
		t.Helper()
		var n int
		must(t, s.r.QueryRowContext(t.Context(), `SELECT n FROM app_writes`).Scan(&n))
		return n
	}
}
