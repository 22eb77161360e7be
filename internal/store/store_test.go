package store

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twofold-auth/twofold/internal/twofold"
)

// SQLite-specific tests and benchmarks. The helpers at the bottom also serve conformance_test.go
// and are engine-agnostic.

func TestRestartLosesNothing(t *testing.T) {
	path := filepath.Join(t.TempDir(), DatabaseFile)
	s, err := OpenSQLite(t.Context(), path)
	must(t, err)
	ctx := t.Context()
	a := mkApp(t, s, "a")
	a.Sandbox, a.Settings.UnconfirmedBypass, a.Settings.CallbackURL = true, true, "https://cb.example"
	must(t, s.UpdateApp(ctx, a))
	u, v := mkUser(t, s, a.ID, 1, "5550000001"), mkUser(t, s, a.ID, 44, "7700900000")
	must(t, s.ConfirmUser(ctx, a.ID, u.ID))
	old := mkCode(t, s, u, "login", t0, ttl)
	live := mkCode(t, s, u, "login", t0.Add(time.Second), ttl)
	used := mkCode(t, s, u, "reset", t0, ttl)
	must(t, s.SpendAttempt(ctx, u, t0))
	must(t, s.SpendAttempt(ctx, u, t0))
	useCode(t, s, used.ID, t0.Add(time.Minute), true)
	au := mkAuthenticator(t, s, v)
	if ok, err := s.AdvanceStep(ctx, v.AppID, v.ID, au.Version, 1000); !ok || err != nil {
		t.Fatalf("AdvanceStep = %v, %v", ok, err)
	}
	qr := mkQRLink(t, s, v, t0.Add(time.Hour))
	for i := range 3 {
		must(t, s.InsertMessage(ctx, mkMessage(a.ID, u.ID, fmt.Sprint("SM", i), "+15550000001", t0)))
		must(t, errOf(s.Incr(ctx, "sends", t0, t0.Add(time.Hour), 1)))
	}
	must(t, s.AddUsage(ctx, a.ID, t0, twofold.UsageSMS, 3))

	type snapshot struct {
		Apps     []twofold.App
		Users    []twofold.User
		Codes    []twofold.OneTimeCode
		Auth     twofold.Authenticator
		QR       twofold.QRLink
		Messages []twofold.Message
		Usage    []twofold.Usage
	}
	snap := func(s *Store) (sn snapshot) {
		t.Helper()
		var errs [5]error
		sn.Apps, errs[0] = s.ListApps(ctx)
		sn.Users = []twofold.User{getUser(t, s, a.ID, u.ID), getUser(t, s, a.ID, v.ID)}
		sn.Codes = codesAt(t, s, u, longAgo)
		sn.Auth, errs[1] = s.GetAuthenticator(ctx, a.ID, v.ID)
		sn.QR, errs[2] = s.GetQRLink(ctx, qr, t0)
		sn.Messages, errs[3] = s.ListMessages(ctx, twofold.MessageFilter{})
		sn.Usage, errs[4] = s.Usage(ctx, a.ID, t0)
		must(t, errors.Join(errs[:]...))
		return sn
	}
	before := snap(s)
	must(t, s.Close())

	s = openSQLiteAt(t, path)
	after := snap(s)
	if d := diff(before, after); d != "" {
		t.Errorf("state changed across a restart:%s", d)
	}
	// And the state is the one written, not merely the same twice.
	wantAttempts := map[int64]int{old.ID: 0, live.ID: 2, used.ID: 2}
	for _, c := range after.Codes {
		if c.Attempts != wantAttempts[c.ID] || c.Superseded != (c.ID == old.ID) || c.UsedAt.IsZero() != (c.ID != used.ID) {
			t.Errorf("code %d after restart: %+v", c.ID, c)
		}
	}
	if len(after.Apps) != 1 || !after.Apps[0].Sandbox || !after.Users[0].Confirmed || after.Auth.LastStep != 1000 ||
		len(after.Codes) != 3 || len(after.Messages) != 3 || len(after.Usage) != 1 || after.Usage[0].SMS != 3 {
		t.Errorf("unexpected state after restart: %+v", after)
	}
	if n, _ := s.Incr(ctx, "sends", t0, t0.Add(time.Hour), 1); n != 4 {
		t.Errorf("counter continued at %d after restart, want 4", n)
	}
	for _, tc := range []struct {
		name string
		call func() (bool, error)
		want bool
	}{
		{"replayed TOTP step", func() (bool, error) { return s.AdvanceStep(ctx, v.AppID, v.ID, au.Version, 1000) }, false},
		{"next TOTP step", func() (bool, error) { return s.AdvanceStep(ctx, v.AppID, v.ID, au.Version, 1001) }, true},
		{"used code", func() (bool, error) { return s.UseCode(ctx, used.ID, t0, 3) }, false},
		{"superseded code", func() (bool, error) { return s.UseCode(ctx, old.ID, t0, 3) }, false},
		{"live code", func() (bool, error) { return s.UseCode(ctx, live.ID, t0, 3) }, true},
	} {
		if ok, err := tc.call(); ok != tc.want || err != nil {
			t.Errorf("%s after restart = %v, %v; want %v", tc.name, ok, err, tc.want)
		}
	}
}

// The database and its -wal and -shm companions hold phone numbers, code MACs and sealed
// secrets: they must be 0600 whatever the umask, the data directory's mode, or a file left 0644.
// The writer's settings are what durability and the group commit's speed rest on: every commit
// waits for an fsync (synchronous=FULL), a batch's savepoint journal stays in memory
// (temp_store=MEMORY) instead of spilling to a temporary file, and the page cache that the
// reads of decisions use holds a large store's hot pages.
func TestSQLiteWriterSettings(t *testing.T) {
	s, err := OpenSQLite(t.Context(), filepath.Join(t.TempDir(), DatabaseFile))
	must(t, err)
	defer s.Close()
	for pragma, want := range map[string]string{"journal_mode": "wal", "synchronous": "2", "temp_store": "2", "foreign_keys": "1", "cache_size": "-65536"} {
		var got string
		err := s.batch.do(t.Context(), true, func(tx *Tx) error {
			return tx.QueryRowContext(t.Context(), "PRAGMA "+pragma).Scan(&got)
		})
		must(t, err)
		if got != want {
			t.Errorf("writer's %s = %s, want %s", pragma, got, want)
		}
	}
}

func TestDatabaseFilesArePrivate(t *testing.T) {
	t.Run("NewDirectory", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "data", "nested")
		s := openSQLiteAt(t, filepath.Join(dir, DatabaseFile))
		mkApp(t, s, "a")
		wantModes(t, dir, fs.ModeDir|0o700, "")
		wantModes(t, filepath.Join(dir, DatabaseFile), 0o600, "", "-wal", "-shm")
	})
	t.Run("ExistingDirectoryAndFile", func(t *testing.T) {
		dir := t.TempDir()
		must(t, os.Chmod(dir, 0o755)) // made by a package or an admin
		path := filepath.Join(dir, DatabaseFile)
		must(t, os.WriteFile(path, nil, 0o644)) // e.g. touched, or restored from a backup
		must(t, os.Chmod(path, 0o644))
		s := openSQLiteAt(t, path)
		mkApp(t, s, "a")
		wantModes(t, path, 0o600, "", "-wal", "-shm")
		ents, err := os.ReadDir(dir)
		must(t, err)
		for _, e := range ents { // a lock file, say
			if fi, err := e.Info(); err != nil || fi.Mode().Perm()&0o077 != 0 {
				t.Errorf("%s in the data directory: %v, %v", e.Name(), fi.Mode(), err)
			}
		}
	})
}

func wantModes(t *testing.T, path string, want fs.FileMode, suffixes ...string) {
	t.Helper()
	for _, suffix := range suffixes {
		if fi, err := os.Stat(path + suffix); err != nil {
			t.Error(err)
		} else if fi.Mode() != want {
			t.Errorf("%s has mode %v, want %v", path+suffix, fi.Mode(), want)
		}
	}
}

// The path goes into a file: URI; a directory named with URI metacharacters must still work
// and must not make SQLite open another file outside it.
func TestPathWithURIMetacharacters(t *testing.T) {
	for _, tc := range []struct{ name, dir string }{
		{"hash", "data #1"}, {"question", "data?x"}, {"percent", "data%41"}, {"ampersand", "a&_pragma=query_only(1)"},
	} {
		t.Run(tc.name, func(t *testing.T) { // tc.name keeps metacharacters out of t.TempDir's own name
			root := t.TempDir()
			path := filepath.Join(root, tc.dir, DatabaseFile)
			s := openSQLiteAt(t, path)
			mkApp(t, s, "a")
			if _, err := os.Stat(path); err != nil {
				t.Errorf("database not at %q: %v", path, err)
			}
			if ents, err := os.ReadDir(root); err != nil || len(ents) != 1 {
				t.Errorf("OpenSQLite created stray files beside the data directory: %v, %v", ents, err)
			}
		})
	}
}

func TestMigrationsAreIdempotent(t *testing.T) {
	path := filepath.Join(t.TempDir(), DatabaseFile)
	first := openSQLiteAt(t, path)
	a := mkApp(t, first, "a")
	second := openSQLiteAt(t, path) // while the first is open, as the CLI beside the server
	must(t, second.Close())
	third := openSQLiteAt(t, path)
	if got := getApp(t, third, a.ID); got.Name != "a" {
		t.Errorf("GetApp after reopening = %+v", got)
	}
	var n int
	must(t, third.r.QueryRowContext(t.Context(), `SELECT COUNT(*) FROM goose_db_version WHERE version_id = 1`).Scan(&n))
	if n != 1 {
		t.Errorf("migration 1 recorded %d times, want once", n)
	}
}

// The server and the CLI may start together on a new data directory: both must open it.
func TestConcurrentFirstOpen(t *testing.T) {
	for round := range 5 {
		path := filepath.Join(t.TempDir(), DatabaseFile)
		race(4, func(i int) {
			s, err := OpenSQLite(t.Context(), path)
			if err != nil {
				t.Errorf("round %d, opener %d: %v", round, i, err)
				return
			}
			s.Close()
		})
	}
}

func TestTwoInstancesShareOneFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), DatabaseFile)
	server, cli := openSQLiteAt(t, path), openSQLiteAt(t, path)
	ctx := t.Context()
	must(t, errors.Join(server.Ping(ctx), cli.Ping(ctx)))
	a := mkApp(t, cli, "made by the cli")
	if got, err := server.AppByKeyMAC(ctx, a.KeyMAC); err != nil || got.ID != a.ID {
		t.Fatalf("server does not see the cli's app: %+v, %v", got, err)
	}
	u := mkUser(t, server, a.ID, 1, "5550000001")
	if got := getUser(t, cli, a.ID, u.ID); got.Phone != u.Phone {
		t.Fatalf("cli does not see the server's user: %+v", got)
	}
	stores := [2]*Store{server, cli}
	au := mkAuthenticator(t, cli, u)
	exactlyOne(t, workers, "AdvanceStep across two instances", func(i int) (bool, error) {
		return stores[i%2].AdvanceStep(ctx, u.AppID, u.ID, au.Version, 77)
	})
	c := mkCode(t, server, u, "login", t0, ttl)
	exactlyOne(t, workers, "UseCode across two instances", func(i int) (bool, error) {
		return stores[i%2].UseCode(ctx, c.ID, t0, 3)
	})
	exactlyOne(t, workers, "CreateUser across two instances", func(i int) (bool, error) {
		x := twofold.User{AppID: a.ID, Email: "x@example.com", CountryCode: 1, Phone: "5559999999", CreatedAt: t0}
		return stores[i%2].CreateUser(ctx, &x)
	})
	race(workers, func(i int) {
		if _, err := stores[i%2].Incr(ctx, "n", t0, t0.Add(time.Hour), 1); err != nil {
			t.Error(err)
		}
	})
	if n, _ := cli.Incr(ctx, "n", t0, t0.Add(time.Hour), 0); n != workers {
		t.Errorf("counter = %d after %d increments across two instances", n, workers)
	}
}

func benchStore(b *testing.B) (*Store, twofold.App, twofold.User) {
	s := openSQLiteAt(b, filepath.Join(b.TempDir(), DatabaseFile))
	var app twofold.App
	var user twofold.User
	for i := range 50 {
		a := mkApp(b, s, fmt.Sprint("app", i))
		for j := range 20 {
			if u := mkUser(b, s, a.ID, 1, fmt.Sprintf("555%07d", j)); i == 25 && j == 10 {
				app, user = a, u
			}
		}
	}
	return s, app, user
}

func BenchmarkAppByKeyMAC(b *testing.B) {
	s, a, _ := benchStore(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.AppByKeyMAC(b.Context(), a.KeyMAC); err != nil {
			b.Fatal(err)
		}
	}
}

// 64 lookups at once, as under load: those that ask while the generation is being read share
// the next read (freshread.go).
func BenchmarkAppByKeyMACParallel(b *testing.B) {
	s, a, _ := benchStore(b)
	b.ReportAllocs()
	b.SetParallelism(32) // × GOMAXPROCS goroutines
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := s.AppByKeyMAC(b.Context(), a.KeyMAC); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func BenchmarkGetUser(b *testing.B) {
	s, _, u := benchStore(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.GetUser(b.Context(), u.AppID, u.ID); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAdvanceStep(b *testing.B) {
	s, _, u := benchStore(b)
	au := mkAuthenticator(b, s, u)
	b.Run("accept", func(b *testing.B) { // a new step: one durable write
		b.ReportAllocs()
		step := int64(0)
		for b.Loop() {
			step++
			if ok, err := s.AdvanceStep(b.Context(), u.AppID, u.ID, au.Version, step); !ok || err != nil {
				b.Fatal(ok, err)
			}
		}
	})
	b.Run("replay", func(b *testing.B) { // a replayed step: the CAS matches no row
		b.ReportAllocs()
		for b.Loop() {
			if ok, err := s.AdvanceStep(b.Context(), u.AppID, u.ID, au.Version, 0); ok || err != nil {
				b.Fatal(ok, err)
			}
		}
	})
}

// openSQLiteAt opens the SQLite store at path and closes it when the test ends.
func openSQLiteAt(tb testing.TB, path string) *Store {
	tb.Helper()
	s, err := OpenSQLite(tb.Context(), path)
	if err != nil {
		tb.Fatalf("OpenSQLite: %v", err)
	}
	tb.Cleanup(func() {
		if err := s.Close(); err != nil {
			tb.Errorf("Close: %v", err)
		}
	})
	return s
}

// diff returns "" if want and got are equal, else both, for a test message. It is what go-cmp
// with EquateEmpty would say (go-cmp is not a requirement in go.mod): times compare with Equal,
// so an engine may return them in any location, and a nil slice equals an empty one.
func diff(want, got any) string {
	if equal(reflect.ValueOf(want), reflect.ValueOf(got)) {
		return ""
	}
	return fmt.Sprintf("\nwant %+v\n got %+v", want, got)
}

func equal(a, b reflect.Value) bool {
	if a.Type() != b.Type() {
		return false
	}
	if t, ok := a.Interface().(time.Time); ok {
		return t.Equal(b.Interface().(time.Time))
	}
	switch a.Kind() {
	case reflect.Struct:
		for i := range a.NumField() {
			if !equal(a.Field(i), b.Field(i)) {
				return false
			}
		}
		return true
	case reflect.Slice, reflect.Array:
		if a.Len() != b.Len() {
			return false
		}
		for i := range a.Len() {
			if !equal(a.Index(i), b.Index(i)) {
				return false
			}
		}
		return true
	case reflect.Map:
		if a.Len() != b.Len() {
			return false
		}
		for _, k := range a.MapKeys() {
			if v := b.MapIndex(k); !v.IsValid() || !equal(a.MapIndex(k), v) {
				return false
			}
		}
		return true
	default:
		return a.Interface() == b.Interface()
	}
}

func must(tb testing.TB, err error) {
	tb.Helper()
	if err != nil {
		tb.Fatal(err)
	}
}

// errOf drops a result, keeping the error: wantErr(t, "...", errOf(s.GetUser(...)), ErrNotFound).
func errOf[T any](_ T, err error) error { return err }

func wantErr(tb testing.TB, what string, err, target error) {
	tb.Helper()
	if !errors.Is(err, target) {
		tb.Errorf("%s: err = %v, want %v", what, err, target)
	}
}

// race runs fn(0..n-1) in n goroutines released together, and waits for them all.
func race(n int, fn func(i int)) {
	var ready, done sync.WaitGroup
	start := make(chan struct{})
	ready.Add(n)
	done.Add(n)
	for i := range n {
		go func() {
			defer done.Done()
			ready.Done()
			<-start
			fn(i)
		}()
	}
	ready.Wait()
	close(start)
	done.Wait()
}

// exactlyOne races n calls and requires that exactly one returns true, and none an error.
func exactlyOne(t *testing.T, n int, what string, call func(i int) (bool, error)) {
	t.Helper()
	var wins atomic.Int32
	race(n, func(i int) {
		ok, err := call(i)
		if err != nil {
			t.Errorf("%s #%d: %v", what, i, err)
		}
		if ok {
			wins.Add(1)
		}
	})
	if w := wins.Load(); w != 1 {
		t.Errorf("%d of %d parallel %s calls succeeded, want exactly 1", w, n, what)
	}
}

func mkApp(tb testing.TB, s *Store, name string) twofold.App {
	tb.Helper()
	a := twofold.App{Name: name, KeyMAC: []byte("mac:" + name), KeySealed: []byte("sealed:" + name),
		Settings: twofold.DefaultSettings(), CreatedAt: t0, UpdatedAt: t0}
	if err := s.CreateApp(tb.Context(), &a); err != nil {
		tb.Fatalf("CreateApp(%q): %v", name, err)
	}
	return a
}

func getApp(tb testing.TB, s *Store, id int64) twofold.App {
	tb.Helper()
	a, err := s.GetApp(tb.Context(), id)
	must(tb, err)
	return a
}

func mkUser(tb testing.TB, s *Store, appID int64, cc int, phone string) twofold.User {
	tb.Helper()
	u := twofold.User{AppID: appID, Email: phone + "@example.com", CountryCode: cc, Phone: phone, CreatedAt: t0}
	if created, err := s.CreateUser(tb.Context(), &u); err != nil || !created {
		tb.Fatalf("CreateUser(%s) = %v, %v; want a new user", phone, created, err)
	}
	return u
}

func getUser(tb testing.TB, s *Store, appID, id int64) twofold.User {
	tb.Helper()
	u, err := s.GetUser(tb.Context(), appID, id)
	if err != nil {
		tb.Fatalf("GetUser(app %d, %d): %v", appID, id, err)
	}
	return u
}

func mkCode(tb testing.TB, s *Store, u twofold.User, action string, created time.Time, ttl time.Duration,
) twofold.OneTimeCode {
	tb.Helper()
	c := twofold.OneTimeCode{AppID: u.AppID, UserID: u.ID, Channel: twofold.SMS, Action: action,
		MAC: []byte(fmt.Sprint(u.ID, action, created.UnixNano())), CreatedAt: created, ExpiresAt: created.Add(ttl)}
	must(tb, s.InsertCode(tb.Context(), &c))
	if c.ID == 0 {
		tb.Fatal("InsertCode did not set the ID")
	}
	return c
}

// useCode calls UseCode (with max attempts 3 unless given) and requires the answer want.
func useCode(tb testing.TB, s *Store, id int64, now time.Time, want bool, maxAttempts ...int) {
	tb.Helper()
	maxAttempts = append(maxAttempts, 3)
	if ok, err := s.UseCode(tb.Context(), id, now, maxAttempts[0]); ok != want || err != nil {
		tb.Fatalf("UseCode(%d, t0%+v, max %d) = %v, %v; want %v", id, now.Sub(t0), maxAttempts[0], ok, err, want)
	}
}

func mkAuthenticator(tb testing.TB, s *Store, u twofold.User) twofold.Authenticator {
	tb.Helper()
	a := twofold.Authenticator{UserID: u.ID, AppID: u.AppID, SecretSealed: []byte("seed"), Digits: 6, Period: 30,
		CreatedAt: t0}
	must(tb, s.PutAuthenticator(tb.Context(), &a))
	return a
}

func qrMAC(u twofold.User) []byte { return []byte(fmt.Sprint("qr-", u.ID)) }

func mkQRLink(tb testing.TB, s *Store, u twofold.User, expires time.Time) []byte {
	tb.Helper()
	l := twofold.QRLink{MAC: qrMAC(u), AppID: u.AppID, UserID: u.ID, Version: 1, Size: 300,
		URISealed: []byte("otpauth sealed"), ExpiresAt: expires}
	must(tb, s.InsertQRLink(tb.Context(), l))
	return l.MAC
}

func mkMessage(appID, userID int64, sid, to string, at time.Time) *twofold.Message {
	return &twofold.Message{SID: sid, AppID: appID, UserID: userID, Channel: twofold.SMS, To: to,
		BodySealed: []byte("sealed " + sid), Status: "recorded", CreatedAt: at}
}

// codesAt is UnexpiredCodes, failing the test on error.
func codesAt(tb testing.TB, s *Store, u twofold.User, now time.Time) []twofold.OneTimeCode {
	tb.Helper()
	cs, err := s.UnexpiredCodes(tb.Context(), u.AppID, u.ID, now)
	must(tb, err)
	return cs
}

func codeIDs(cs []twofold.OneTimeCode) (ids []int64) {
	for _, c := range cs {
		ids = append(ids, c.ID)
	}
	return ids
}

// codeByID finds one of the user's codes whatever its state.
func codeByID(tb testing.TB, s *Store, u twofold.User, id int64) twofold.OneTimeCode {
	tb.Helper()
	for _, c := range codesAt(tb, s, u, longAgo) {
		if c.ID == id {
			return c
		}
	}
	tb.Fatalf("code %d of user %d not found", id, u.ID)
	return twofold.OneTimeCode{}
}
