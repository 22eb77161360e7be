package store

import (
	"database/sql"
	"testing"

	"github.com/twofold-auth/twofold/internal/twofold"
)

// skewRowIDs is where users' row ids start in the conformance suite's stores, while public ids
// start at 1.
const skewRowIDs = 500_000

// skewUserRowIDs makes the next user row id of the empty store s skewRowIDs+1.
func skewUserRowIDs(tb testing.TB, s *Store) {
	tb.Helper()
	q := `INSERT INTO sqlite_sequence (name, seq) VALUES ('users', $1)`
	if s.pg {
		q = `SELECT setval(pg_get_serial_sequence('users', 'id'), $1)`
	}
	err := s.tx(tb.Context(), func(tx *Tx) error {
		_, err := tx.ExecContext(tb.Context(), q, skewRowIDs)
		return err
	})
	if err != nil {
		tb.Fatalf("skew user row ids: %v", err)
	}
}

func imported(id int64, cc int, phone string) twofold.ImportedUser {
	return twofold.ImportedUser{User: twofold.User{ID: id, Email: phone + "@example.com", CountryCode: cc, Phone: phone}}
}

func importUsers(tb testing.TB, s *Store, appID int64, users ...twofold.ImportedUser) []twofold.ImportResult {
	tb.Helper()
	got, err := s.ImportUsers(tb.Context(), appID, users, t0, false)
	if err != nil {
		tb.Fatalf("ImportUsers: %v", err)
	}
	return got
}

// testPublicIDs: a user is named by application and public id everywhere; the same public id in
// two applications is two users, each isolated from the other.
func testPublicIDs(t *testing.T, open func(t *testing.T) *Store) {
	t.Run("NativeIDsStartAtOne", func(t *testing.T) {
		s := open(t)
		a := mkApp(t, s, "a")
		if u := mkUser(t, s, a.ID, 1, "5550000001"); u.ID != 1 {
			t.Fatalf("first user's id = %d, want 1 (row ids are skewed to %d; a row id escaped?)", u.ID, skewRowIDs)
		}
	})

	t.Run("SameIDTwoApps", func(t *testing.T) {
		s := open(t)
		ctx := t.Context()
		a, b := mkApp(t, s, "a"), mkApp(t, s, "b")
		importUsers(t, s, a.ID, imported(777, 1, "5550000001"))
		importUsers(t, s, b.ID, imported(777, 44, "7700900001"))
		ua, ub := getUser(t, s, a.ID, 777), getUser(t, s, b.ID, 777)
		if ua.Phone != "5550000001" || ub.Phone != "7700900001" || ua.AppID != a.ID || ub.AppID != b.ID {
			t.Fatalf("user 777: in a %+v, in b %+v", ua, ub)
		}
		// Each application's codes, seeds, devices and requests are its own user's.
		c := mkCode(t, s, ua, "", t0, ttl)
		if cs := codesAt(t, s, ub, longAgo); len(cs) != 0 {
			t.Errorf("b's user 777 sees codes %v of a's", cs)
		}
		if cs := codesAt(t, s, ua, longAgo); len(cs) != 1 || cs[0].ID != c.ID || cs[0].UserID != 777 || cs[0].AppID != a.ID {
			t.Errorf("a's user 777 codes: %+v", cs)
		}
		au := mkAuthenticator(t, s, ua)
		if au.UserID != 777 {
			t.Errorf("authenticator's user = %d", au.UserID)
		}
		wantErr(t, "b's user 777 authenticator", errOf(s.GetAuthenticator(ctx, b.ID, 777)), twofold.ErrNotFound)
		if ok, err := s.AdvanceStep(ctx, b.ID, 777, au.Version, 10); ok || err != nil {
			t.Errorf("AdvanceStep of b's user 777 moved a's seed: %v, %v", ok, err)
		}
		if ok, err := s.AdvanceStep(ctx, a.ID, 777, au.Version, 10); !ok || err != nil {
			t.Errorf("AdvanceStep of a's user 777 = %v, %v", ok, err)
		}
		st, err := s.CheckState(ctx, a.ID, 777, t0, twofold.LimitWindow{})
		if err != nil || st.UserID != 777 || !st.LiveCodes || st.Authenticator == nil || st.Authenticator.LastStep != 10 {
			t.Errorf("CheckState(a, 777) = %+v, %v", st, err)
		}
		st, err = s.CheckState(ctx, b.ID, 777, t0, twofold.LimitWindow{})
		if err != nil || st.UserID != 777 || st.LiveCodes || st.Authenticator != nil {
			t.Errorf("CheckState(b, 777) = %+v, %v", st, err)
		}
		// Deleting one leaves the other.
		must(t, s.DeleteUser(ctx, b.ID, 777))
		if got := getUser(t, s, a.ID, 777); got.Phone != "5550000001" {
			t.Errorf("a's user after deleting b's: %+v", got)
		}
	})

	// Migration 17 on an installation that handed out ids before it: every user keeps the id it
	// had (its row id then), and a user made after it takes none of them, not even a deleted
	// user's (AUTOINCREMENT's and the identity's high-water marks count).
	t.Run("MigrationKeepsIDs", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		a := mkApp(t, s, "a")
		kept := mkUser(t, s, a.ID, 1, "5550000001")
		gone := mkUser(t, s, a.ID, 1, "5550000002")
		keptKey, goneKey := userRowID(t, s, a.ID, kept.ID), userRowID(t, s, a.ID, gone.ID)
		must(t, s.DeleteUser(ctx, a.ID, gone.ID))
		p := noErr(migrator(migrationDB(t, s), s.pg))(t)
		must(t, errOf(p.DownTo(ctx, 16)))
		must(t, errOf(p.Up(ctx)))
		if u := getUser(t, s, a.ID, keptKey); u.Phone != kept.Phone {
			t.Fatalf("after migration 17 the user with row id %d is %+v", keptKey, u)
		}
		next := mkUser(t, s, a.ID, 1, "5550000003")
		if next.ID <= goneKey {
			t.Fatalf("a user made after migration 17 got id %d; ids up to %d were handed out before it", next.ID, goneKey)
		}
	})

	t.Run("NewIDsPassImported", func(t *testing.T) {
		s := open(t)
		a, b := mkApp(t, s, "a"), mkApp(t, s, "b")
		first := mkUser(t, s, a.ID, 1, "5550000001")
		importUsers(t, s, b.ID, imported(first.ID+1000, 1, "5550000002"))
		// The import was into another application, and still no later id takes it: Authy ids
		// were global, and the next application to import may bring the same person.
		next := mkUser(t, s, a.ID, 1, "5550000003")
		if next.ID <= first.ID+1000 {
			t.Fatalf("user made after importing id %d got id %d", first.ID+1000, next.ID)
		}
		custom := twofold.User{AppID: b.ID, CustomUserID: "c-1", CreatedAt: t0}
		if _, err := s.CreateCustomUser(t.Context(), &custom); err != nil || custom.ID <= next.ID {
			t.Fatalf("custom user after import: %+v, %v", custom, err)
		}
	})
}

func testImportUsers(t *testing.T, open func(t *testing.T) *Store) {
	t.Run("Outcomes", func(t *testing.T) {
		s := open(t)
		ctx := t.Context()
		a := mkApp(t, s, "a")
		native := mkUser(t, s, a.ID, 1, "5550000001")
		seeded := imported(90001, 1, "5550000010")
		seeded.Authenticator = &twofold.Authenticator{SecretSealed: []byte("sealed seed"), Digits: 7, Period: 30, LastStep: 1234}
		got := importUsers(t, s, a.ID,
			seeded,
			imported(90002, 1, "5550000001"), // the native user's phone
			imported(native.ID, 1, "5550000020"),
			imported(90003, 0, ""), // no phone
		)
		want := []twofold.ImportResult{
			{Status: twofold.ImportWritten},
			{Status: twofold.ImportPhoneTaken, Owner: native.ID},
			{Status: twofold.ImportPresent},
			{Status: twofold.ImportWritten},
		}
		if d := diff(want, got); d != "" {
			t.Fatalf("results:%s", d)
		}
		u := getUser(t, s, a.ID, 90001)
		if !u.Confirmed || u.Phone != "5550000010" || u.Email != "5550000010@example.com" {
			t.Errorf("imported user: %+v", u)
		}
		au, err := s.GetAuthenticator(ctx, a.ID, 90001)
		if err != nil || string(au.SecretSealed) != "sealed seed" || au.Digits != 7 || au.Period != 30 || au.LastStep != 1234 || au.UserID != 90001 {
			t.Fatalf("imported seed: %+v, %v", au, err)
		}
		if ok, _ := s.AdvanceStep(ctx, a.ID, 90001, au.Version, 1234); ok {
			t.Error("the step used before the move was accepted again")
		}
		if got := getUser(t, s, a.ID, native.ID); got.Phone != "5550000001" {
			t.Errorf("a present user was changed: %+v", got)
		}
		// A re-run changes nothing and says so.
		again := importUsers(t, s, a.ID, seeded)
		if again[0].Status != twofold.ImportPresent {
			t.Errorf("re-run: %+v", again)
		}
		if n, _ := s.CountUsers(ctx, a.ID); n != 3 {
			t.Errorf("users = %d, want 3", n)
		}
	})

	t.Run("DryRun", func(t *testing.T) {
		s := open(t)
		a := mkApp(t, s, "a")
		got, err := s.ImportUsers(t.Context(), a.ID, []twofold.ImportedUser{imported(5, 1, "5550000001")}, t0, true)
		if err != nil || len(got) != 1 || got[0].Status != twofold.ImportWritten {
			t.Fatalf("dry run = %+v, %v", got, err)
		}
		if n, _ := s.CountUsers(t.Context(), a.ID); n != 0 {
			t.Fatalf("a dry run wrote %d users", n)
		}
		if u := mkUser(t, s, a.ID, 1, "5550000002"); u.ID != 1 {
			t.Errorf("after a dry run of id 5, a new user got %d, want 1", u.ID)
		}
	})

	t.Run("Refused", func(t *testing.T) {
		s := open(t)
		a := mkApp(t, s, "a")
		users := make([]twofold.ImportedUser, ImportBatch+1)
		for i := range users {
			users[i] = imported(int64(i+1), 0, "")
		}
		if _, err := s.ImportUsers(t.Context(), a.ID, users, t0, false); err == nil {
			t.Error("a batch over ImportBatch was taken")
		}
		// Which record a written row is would be ambiguous.
		twice := []twofold.ImportedUser{imported(7, 1, "5550000001"), imported(7, 1, "5550000002")}
		if _, err := s.ImportUsers(t.Context(), a.ID, twice, t0, false); err == nil {
			t.Error("a batch with one id twice was taken")
		}
		if n, _ := s.CountUsers(t.Context(), a.ID); n != 0 {
			t.Errorf("refused batches wrote %d users", n)
		}
	})
}

// userRowID is the row id of a user, which other tables reference.
func userRowID(tb testing.TB, s *Store, appID, id int64) int64 {
	tb.Helper()
	var key int64
	must(tb, s.r.QueryRowContext(tb.Context(), `SELECT id FROM users WHERE app_id = $1 AND public_id = $2`, appID, id).Scan(&key))
	return key
}

// migrationDB is a connection to migrate s's database with while s is open: on SQLite the
// store's one writer connection belongs to its batcher, so another one beside it.
func migrationDB(t *testing.T, s *Store) *sql.DB {
	t.Helper()
	if s.pg {
		return s.db
	}
	var path string
	must(t, s.r.QueryRowContext(t.Context(), `SELECT file FROM pragma_database_list WHERE name = 'main'`).Scan(&path))
	other, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)")
	must(t, err)
	t.Cleanup(func() { other.Close() })
	return other
}
