package store

import (
	"database/sql"
	"fmt"
	"io/fs"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/pressly/goose/v3"

	"github.com/twofold-auth/twofold/internal/store/storetest"
	"github.com/twofold-auth/twofold/internal/twofold"
)

// testLimits is the part of runConformance for the sliding-window limits (limits.go): Hit,
// RefundHit, RecordRefusal and their rows' sweep.
func testLimits(t *testing.T, open func(t *testing.T) *Store) {
	l := twofold.Limit{N: 3, Window: 10 * time.Second}
	at := func(d time.Duration) time.Time { return t0.Add(d) }

	// hits counts events at the times given, one after another, and reports for each whether
	// it was counted; a refusal is checked against the oldest event and first-refusal wanted.
	type step struct {
		at           time.Duration
		counted      bool
		oldest       time.Duration // when refused
		firstRefusal bool
	}
	run := func(t *testing.T, s *Store, name string, l twofold.Limit, steps []step) []twofold.LimitEvent {
		t.Helper()
		var evs []twofold.LimitEvent
		for _, st := range steps {
			h, err := s.Hit(t.Context(), name, at(st.at), l)
			must(t, err)
			switch {
			case h.Refused != !st.counted:
				t.Fatalf("Hit at %v: refused %v, want %v", st.at, h.Refused, !st.counted)
			case h.Refused && (!h.Oldest.Equal(at(st.oldest)) || h.FirstRefusal != st.firstRefusal):
				t.Errorf("Hit at %v refused: oldest %v, first refusal %v; want %v, %v",
					st.at, h.Oldest.Sub(t0), h.FirstRefusal, st.oldest, st.firstRefusal)
			case !h.Refused && (h.Event.Name != name || !h.Event.At.Equal(at(st.at))):
				t.Errorf("Hit at %v counted %+v", st.at, h.Event)
			}
			evs = append(evs, h.Event)
		}
		return evs
	}

	t.Run("Sliding", func(t *testing.T) {
		// No interval of the window's length holds more than N events, wherever it starts;
		// an event counts from its time to its time plus the window, excluded.
		run(t, open(t), "sends:1", l, []step{
			{at: 0, counted: true},
			{at: time.Second, counted: true},
			{at: 2 * time.Second, counted: true},
			{at: 3 * time.Second, oldest: 0, firstRefusal: true},
			{at: 10*time.Second - time.Nanosecond, oldest: 0},
			{at: 10 * time.Second, counted: true}, // the first has left
			{at: 10 * time.Second, oldest: time.Second},
			{at: 11 * time.Second, counted: true},
			{at: 11 * time.Second, oldest: 2 * time.Second},
			{at: 13 * time.Second, counted: true},
			{at: 13 * time.Second, oldest: 10 * time.Second, firstRefusal: true}, // a window after the first refusal
			{at: time.Hour, counted: true},
		})
	})

	t.Run("Apart", func(t *testing.T) {
		// Limits of other names count apart.
		s := open(t)
		run(t, s, "a", twofold.Limit{N: 1, Window: time.Minute}, []step{{at: 0, counted: true}, {at: time.Second, firstRefusal: true}})
		run(t, s, "b", twofold.Limit{N: 1, Window: time.Minute}, []step{{at: time.Second, counted: true}})
	})

	t.Run("Refund", func(t *testing.T) {
		s := open(t)
		ctx := t.Context()
		// Two events at one instant: giving one back frees one slot, not both.
		evs := run(t, s, "same", twofold.Limit{N: 2, Window: time.Minute}, []step{{at: 0, counted: true}, {at: 0, counted: true}})
		must(t, s.RefundHit(ctx, evs[0]))
		run(t, s, "same", twofold.Limit{N: 2, Window: time.Minute}, []step{{at: 0, counted: true}, {at: 0, firstRefusal: true}})

		// An event given back after it left the window, its slot taken by a newer one, frees
		// nothing; the newer one given back frees its slot.
		one := twofold.Limit{N: 1, Window: 10 * time.Second}
		old := run(t, s, "stale", one, []step{{at: 0, counted: true}})[0]
		newer := run(t, s, "stale", one, []step{{at: 10 * time.Second, counted: true}})[0]
		must(t, s.RefundHit(ctx, old))
		run(t, s, "stale", one, []step{{at: 11 * time.Second, oldest: 10 * time.Second, firstRefusal: true}})
		must(t, s.RefundHit(ctx, newer))
		run(t, s, "stale", one, []step{{at: 11 * time.Second, counted: true}})
	})

	t.Run("RecordRefusal", func(t *testing.T) {
		// Once per window's length.
		s := open(t)
		for _, c := range []struct {
			at    time.Duration
			first bool
		}{{0, true}, {5 * time.Second, false}, {10*time.Second - time.Nanosecond, false}, {10 * time.Second, true}, {11 * time.Second, false}} {
			first, err := s.RecordRefusal(t.Context(), "sends:1", at(c.at), l.Window)
			must(t, err)
			if first != c.first {
				t.Errorf("RecordRefusal at %v = %v, want %v", c.at, first, c.first)
			}
		}
	})

	t.Run("Gaps", func(t *testing.T) {
		// The sweep deletes a row whose event left the window while later ones stay: the free
		// slot in between is found and taken, and the limit holds.
		s := open(t)
		run(t, s, "gaps", l, []step{{at: 0, counted: true}, {at: 5 * time.Second, counted: true}, {at: 6 * time.Second, counted: true}})
		if n, err := s.Sweep(t.Context(), at(10*time.Second)); err != nil || n != 1 {
			t.Fatalf("Sweep = %d, %v; want the first event's row", n, err)
		}
		run(t, s, "gaps", l, []step{{at: 11 * time.Second, counted: true}, {at: 11 * time.Second, oldest: 5 * time.Second, firstRefusal: true}})
	})

	t.Run("LoweredLimit", func(t *testing.T) {
		// Events counted under a larger N still count against a smaller one.
		s := open(t)
		run(t, s, "lowered", twofold.Limit{N: 4, Window: 10 * time.Second}, []step{
			{at: 0, counted: true}, {at: 0, counted: true}, {at: time.Second, counted: true}, {at: time.Second, counted: true}})
		run(t, s, "lowered", twofold.Limit{N: 2, Window: 10 * time.Second}, []step{
			{at: 2 * time.Second, oldest: 0, firstRefusal: true},
			{at: 10 * time.Second, oldest: time.Second}, // two left, two remain: still full
			{at: 11 * time.Second, counted: true},
			{at: 11 * time.Second, counted: true},
			{at: 11 * time.Second, oldest: 11 * time.Second}}) // the refusal at 2 s was recorded
	})

	t.Run("Sweep", func(t *testing.T) {
		// Rows go once their event has left the window, the refusal's too; not before.
		s := open(t)
		run(t, s, "swept", l, []step{{at: 0, counted: true}, {at: 1500 * time.Millisecond, counted: true}})
		must(t, errOf(s.RecordRefusal(t.Context(), "swept", at(time.Second), l.Window)))
		rows := func() int {
			var n int
			must(t, s.r.QueryRowContext(t.Context(), `SELECT COUNT(*) FROM limit_slots`).Scan(&n))
			return n
		}
		for _, c := range []struct {
			at   time.Duration
			left int
		}{{10*time.Second - time.Nanosecond, 3}, {10 * time.Second, 2}, {11 * time.Second, 1}, {12 * time.Second, 0}} {
			if _, err := s.Sweep(t.Context(), at(c.at)); err != nil {
				t.Fatal(err)
			}
			if n := rows(); n != c.left {
				t.Errorf("after Sweep at %v: %d rows, want %d", c.at, n, c.left)
			}
		}
	})

	t.Run("Parallel", func(t *testing.T) {
		s := open(t)
		raceHits(t, []*Store{s}, "parallel", twofold.Limit{N: 5, Window: time.Minute})
	})
}

// raceHits has the suite's workers, spread over stores, each count one event at one instant
// against limit l: exactly l.N are counted. Then half the counted are given back while as many
// workers race again: exactly that many more are counted.
func raceHits(t *testing.T, stores []*Store, name string, l twofold.Limit) {
	t.Helper()
	var mu sync.Mutex
	var counted []twofold.LimitEvent
	hits := func() int {
		n := 0
		race(workers, func(i int) {
			h, err := stores[i%len(stores)].Hit(t.Context(), name, t0, l)
			if err != nil {
				t.Errorf("Hit #%d: %v", i, err)
				return
			}
			if !h.Refused {
				mu.Lock()
				counted = append(counted, h.Event)
				n++
				mu.Unlock()
			}
		})
		return n
	}
	if n := hits(); n != l.N {
		t.Fatalf("%d workers counted %d events against a limit of %d", workers, n, l.N)
	}
	back := l.N / 2
	for i, ev := range counted[:back] {
		must(t, stores[i%len(stores)].RefundHit(t.Context(), ev))
	}
	if n := hits(); n != back {
		t.Errorf("after %d given back, %d more counted", back, n)
	}
}

// TestLimitsAcrossStores races events of one limit from several stores on one database, as
// several server instances count them.
func TestLimitsAcrossStores(t *testing.T) {
	engines := map[string]func(t *testing.T) []*Store{
		"SQLite": func(t *testing.T) []*Store {
			path := filepath.Join(t.TempDir(), DatabaseFile)
			return []*Store{openSQLiteAt(t, path), openSQLiteAt(t, path)}
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
			for _, n := range []int{1, 5, workers - 1} {
				raceHits(t, stores, fmt.Sprint("parallel-", n), twofold.Limit{N: n, Window: time.Minute})
			}
		})
	}
}

// Upgrading to the sliding limits carries the fixed-window counts of the limits that moved over
// as events at the start of their window: a user locked out before the upgrade stays locked out
// until the window would have ended. The API's request rate stays a counter.
func TestMigrationCarriesLimitCountsOver(t *testing.T) {
	engines := map[string]struct {
		driver, dsn, dir string
		dialect          goose.Dialect
	}{
		"SQLite":   {"sqlite", filepath.Join(t.TempDir(), DatabaseFile), "migrations/sqlite", goose.DialectSQLite3},
		"Postgres": {"pgx", "", "migrations/postgres", goose.DialectPostgres},
	}
	for name, e := range engines {
		t.Run(name, func(t *testing.T) {
			if e.driver == "pgx" {
				e.dsn = storetest.Schema(t)
			}
			db, err := sql.Open(e.driver, e.dsn)
			must(t, err)
			defer db.Close()
			sub, err := fs.Sub(migrations, e.dir)
			must(t, err)
			p, err := goose.NewProvider(e.dialect, db, sub)
			must(t, err)
			if _, err := p.UpTo(t.Context(), 13); err != nil {
				t.Fatal(err)
			}
			start := t0.Truncate(15 * time.Minute)
			for _, c := range []struct {
				name  string
				count int
			}{{"verify-failures:1:2", 11}, {"sends:1:2", 2}, {"api:1", 40}} {
				_, err := db.ExecContext(t.Context(), `INSERT INTO counters (name, window_start, count, expires_at) VALUES ($1, $2, $3, $4)`,
					c.name, start.Unix(), c.count, start.Add(15*time.Minute).Unix())
				must(t, err)
			}
			must(t, db.Close())

			st, err := Open(t.Context(), e.dsn)
			must(t, err)
			defer st.Close()
			l := twofold.Limit{N: 10, Window: 15 * time.Minute}
			end := start.Add(l.Window)
			// Locked out until the old window's end (11 events: past a limit of 10), not after.
			if h, err := st.Hit(t.Context(), "verify-failures:1:2", end.Add(-time.Nanosecond), l); err != nil || !h.Refused || !h.Oldest.Equal(start) {
				t.Errorf("Hit before the old window's end = %+v, %v; want refused, oldest at its start", h, err)
			}
			if h, err := st.Hit(t.Context(), "verify-failures:1:2", end, l); err != nil || h.Refused {
				t.Errorf("Hit at the old window's end = %+v, %v; want counted", h, err)
			}
			var sends, api int
			must(t, st.r.QueryRowContext(t.Context(), `SELECT COUNT(*) FROM limit_slots WHERE name = 'sends:1:2'`).Scan(&sends))
			must(t, st.r.QueryRowContext(t.Context(), `SELECT COUNT(*) FROM limit_slots WHERE name = 'api:1'`).Scan(&api))
			if sends != 2 || api != 0 {
				t.Errorf("carried over %d sends and %d API requests, want 2 and none", sends, api)
			}
		})
	}
}
