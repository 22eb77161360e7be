package store

import (
	"database/sql"
	"errors"
	"testing"
	"time"

	"github.com/twofold-auth/twofold/internal/twofold"
)

// testAuthenticatorSteps: a TOTP seed's replay state lives in authenticator_steps (migration
// 00035), apart from the seed. Every way in and out keeps it: enrolment starts it, a decision
// advances it once per step, re-enrolment resets it and refuses the old version, an import
// brings its step, deleting the user or the application takes it away, and the migration keeps
// the step of a seed enrolled before it.
func testAuthenticatorSteps(t *testing.T, open func(t *testing.T) *Store) {
	// stepRow is the user's row in authenticator_steps, or ok false.
	stepRow := func(t *testing.T, s *Store, key int64) (version, step int64, ok bool) {
		t.Helper()
		err := s.r.QueryRowContext(t.Context(), `SELECT version, last_step FROM authenticator_steps WHERE user_id = $1`, key).
			Scan(&version, &step)
		if err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				return 0, 0, false
			}
			t.Fatal(err)
		}
		return version, step, true
	}
	advance := func(t *testing.T, s *Store, u twofold.User, version, step int64) bool {
		t.Helper()
		var ok bool
		must(t, s.Decide(t.Context(), u.AppID, u.ID, func(d twofold.Decision) error {
			var err error
			ok, err = d.AdvanceStep(version, step)
			return err
		}))
		return ok
	}
	checkState := func(t *testing.T, s *Store, u twofold.User) twofold.Authenticator {
		t.Helper()
		st := noErr(s.CheckState(t.Context(), u.AppID, u.ID, t0, twofold.LimitWindow{}))(t)
		if st.Authenticator == nil {
			t.Fatal("CheckState: no authenticator")
		}
		return *st.Authenticator
	}

	t.Run("Lifecycle", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		a, b := mkApp(t, s, "a"), mkApp(t, s, "b")
		u := mkUser(t, s, a.ID, 1, "5550000001")
		key := userRowID(t, s, a.ID, u.ID)
		if _, _, ok := stepRow(t, s, key); ok {
			t.Fatal("a step row before enrolment")
		}

		au := mkAuthenticator(t, s, u)
		if v, st, ok := stepRow(t, s, key); !ok || v != 1 || st != -1 || au.Version != 1 {
			t.Fatalf("after enrolment: step row (%d, %d, %v), Version %d; want (1, -1)", v, st, ok, au.Version)
		}
		if !advance(t, s, u, 1, 100) || advance(t, s, u, 1, 100) || advance(t, s, u, 1, 99) {
			t.Fatal("a step is accepted once, and no older one after it")
		}
		if got := noErr(s.GetAuthenticator(ctx, a.ID, u.ID))(t); got.Version != 1 || got.LastStep != 100 {
			t.Fatalf("GetAuthenticator after step 100: version %d, step %d", got.Version, got.LastStep)
		}
		if got := checkState(t, s, u); got.Version != 1 || got.LastStep != 100 || string(got.SecretSealed) != "seed" {
			t.Fatalf("CheckState after step 100: %+v", got)
		}
		// The compare-and-set writes the narrow row only: the seed's row keeps no step. (SQLite
		// keeps the retired columns at their placeholders; PostgreSQL dropped them.)
		if s.pg {
			var n int
			must(t, s.r.QueryRowContext(ctx, `SELECT count(*) FROM information_schema.columns WHERE table_schema = current_schema()
				AND table_name = 'authenticators' AND column_name IN ('version', 'last_step')`).Scan(&n))
			if n != 0 {
				t.Fatalf("authenticators has %d of version, last_step on PostgreSQL", n)
			}
		} else {
			var v, st int64
			must(t, s.r.QueryRowContext(ctx, `SELECT version, last_step FROM authenticators WHERE user_id = $1`, key).Scan(&v, &st))
			if v != 0 || st != -1 {
				t.Fatalf("authenticators' retired columns (%d, %d), want the placeholders (0, -1)", v, st)
			}
		}

		// Re-enrolment: a new version, the step reset, the old version refused even for a newer step.
		again := twofold.Authenticator{UserID: u.ID, AppID: a.ID, SecretSealed: []byte("new seed"), Digits: 8, Period: 60, CreatedAt: t0.Add(time.Hour)}
		must(t, s.PutAuthenticator(ctx, &again))
		if v, st, _ := stepRow(t, s, key); v != 2 || st != -1 || again.Version != 2 {
			t.Fatalf("after re-enrolment: step row (%d, %d), Version %d; want (2, -1)", v, st, again.Version)
		}
		if got := checkState(t, s, u); got.Version != 2 || got.LastStep != -1 || string(got.SecretSealed) != "new seed" || got.Digits != 8 {
			t.Fatalf("CheckState after re-enrolment: %+v", got)
		}
		if advance(t, s, u, 1, 200) {
			t.Fatal("a step of the old version was accepted after re-enrolment")
		}
		if ok, err := s.AdvanceStep(ctx, a.ID, u.ID, 1, 201); ok || err != nil {
			t.Fatalf("AdvanceStep of the old version = %v, %v", ok, err)
		}
		if !advance(t, s, u, 2, 50) || advance(t, s, u, 2, 50) {
			t.Fatal("after re-enrolment step 50 (older than the old seed's 100) is accepted once")
		}
		// Another application's user of the same public id is not this one.
		if ok, err := s.AdvanceStep(ctx, b.ID, u.ID, 2, 60); ok || err != nil {
			t.Fatalf("AdvanceStep through another application = %v, %v", ok, err)
		}

		must(t, s.DeleteUser(ctx, a.ID, u.ID))
		if _, _, ok := stepRow(t, s, key); ok {
			t.Fatal("the step row outlived its user")
		}
	})

	t.Run("Import", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		a := mkApp(t, s, "a")
		seeded := imported(90001, 1, "5550000010")
		seeded.Authenticator = &twofold.Authenticator{SecretSealed: []byte("sealed seed"), Digits: 7, Period: 30, LastStep: 1234}
		importUsers(t, s, a.ID, seeded, imported(90002, 1, "5550000011"))
		u := getUser(t, s, a.ID, 90001)
		if v, st, ok := stepRow(t, s, userRowID(t, s, a.ID, 90001)); !ok || v != 1 || st != 1234 {
			t.Fatalf("imported step row (%d, %d, %v), want (1, 1234)", v, st, ok)
		}
		if _, _, ok := stepRow(t, s, userRowID(t, s, a.ID, 90002)); ok {
			t.Fatal("a step row for an imported user without a seed")
		}
		if advance(t, s, u, 1, 1234) || !advance(t, s, u, 1, 1235) {
			t.Fatal("the imported step is the last accepted: 1234 refused, 1235 accepted")
		}
		if got := checkState(t, s, u); got.LastStep != 1235 {
			t.Fatalf("CheckState after import and step: %+v", got)
		}
		key := userRowID(t, s, a.ID, 90001)
		must(t, s.DeleteApp(ctx, a.ID))
		if _, _, ok := stepRow(t, s, key); ok {
			t.Fatal("the step row outlived its application")
		}
	})

	// Migration 35 on a store with seeds enrolled before it: each keeps its version and step,
	// and the way back down gives them back to authenticators.
	t.Run("Migration", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		a := mkApp(t, s, "a")
		u, bare := mkUser(t, s, a.ID, 1, "5550000001"), mkUser(t, s, a.ID, 1, "5550000002")
		key := userRowID(t, s, a.ID, u.ID)
		p := noErr(migrator(migrationDB(t, s), s.pg))(t)
		must(t, errOf(p.DownTo(ctx, 34)))
		must(t, errOf(s.w.ExecContext(ctx, `INSERT INTO authenticators (user_id, app_id, secret_sealed, digits, period,
			version, last_step, created_at) VALUES ($1, $2, $3, 6, 30, 3, 777, $4)`, key, a.ID, []byte("old seed"), unix(t0))))
		must(t, errOf(p.Up(ctx)))

		got := noErr(s.GetAuthenticator(ctx, a.ID, u.ID))(t)
		if got.Version != 3 || got.LastStep != 777 || string(got.SecretSealed) != "old seed" {
			t.Fatalf("after migration 35: %+v; want version 3, step 777", got)
		}
		if st := noErr(s.CheckState(ctx, a.ID, bare.ID, t0, twofold.LimitWindow{}))(t); st.Authenticator != nil {
			t.Fatalf("a user without a seed has one after migration 35: %+v", st.Authenticator)
		}
		if advance(t, s, u, 3, 777) || !advance(t, s, u, 3, 778) {
			t.Fatal("after migration 35 step 777 is a replay and 778 is accepted")
		}

		must(t, errOf(p.DownTo(ctx, 34)))
		var v, st int64
		must(t, s.r.QueryRowContext(ctx, `SELECT version, last_step FROM authenticators WHERE user_id = $1`, key).Scan(&v, &st))
		if v != 3 || st != 778 {
			t.Fatalf("after migration 35 down: (%d, %d), want (3, 778)", v, st)
		}
		must(t, errOf(p.Up(ctx)))
		if got := noErr(s.GetAuthenticator(ctx, a.ID, u.ID))(t); got.Version != 3 || got.LastStep != 778 {
			t.Fatalf("after migration 35 down and up: %+v", got)
		}
	})
}
