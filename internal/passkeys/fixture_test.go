package passkeys_test

import (
	"bytes"
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/twofold-auth/twofold/internal/apps"
	"github.com/twofold-auth/twofold/internal/passkeys"
	"github.com/twofold-auth/twofold/internal/passkeys/passkeytest"
	"github.com/twofold-auth/twofold/internal/seal"
	"github.com/twofold-auth/twofold/internal/store"
	"github.com/twofold-auth/twofold/internal/store/storetest"
	"github.com/twofold-auth/twofold/internal/twofold"
	"github.com/twofold-auth/twofold/internal/users"
	"github.com/twofold-auth/twofold/internal/verify"
)

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time          { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Advance(d time.Duration) { c.mu.Lock(); defer c.mu.Unlock(); c.now = c.now.Add(d) }

// trail is an audit trail in memory.
type trail struct {
	mu     sync.Mutex
	events []twofold.AuditEvent
}

func (a *trail) Record(_ context.Context, e twofold.AuditEvent) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.events = append(a.events, e)
}

func (a *trail) of(action string) []twofold.AuditEvent {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []twofold.AuditEvent
	for _, e := range a.events {
		if e.Action == action {
			out = append(out, e)
		}
	}
	return out
}

func openSQLite(t testing.TB) *store.Store {
	st, err := store.OpenSQLite(t.Context(), filepath.Join(t.TempDir(), "twofold.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func openPostgres(t *testing.T) *store.Store {
	dsn := storetest.Schema(t)
	st, err := store.OpenPostgres(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// engines runs test on SQLite and on PostgreSQL (skipped without TWOFOLD_TEST_POSTGRES).
func engines(t *testing.T, test func(t *testing.T, open func(*testing.T) *store.Store)) {
	t.Run("SQLite", func(t *testing.T) { test(t, func(t *testing.T) *store.Store { return openSQLite(t) }) })
	t.Run("Postgres", func(t *testing.T) { test(t, openPostgres) })
}

const origin = "https://login.shop.example"

type fixture struct {
	t      testing.TB
	st     *store.Store
	clock  *clock
	audit  *trail
	apps   *apps.Service
	svc    *passkeys.Service
	app    twofold.App // passkeys on, usernameless allowed
	other  twofold.App // another tenant with the same rp id
	ana    twofold.User
	bo     twofold.User
	otherU twofold.User // a user of other
}

func newFixture(t testing.TB, st *store.Store) *fixture {
	t.Helper()
	ctx := t.Context()
	keys, _ := seal.New(bytes.Repeat([]byte{9}, seal.KeySize))
	f := &fixture{t: t, st: st, clock: &clock{now: time.Date(2026, 7, 8, 9, 10, 11, 0, time.UTC)}, audit: &trail{}}
	f.apps = apps.New(st, keys, f.clock.Now)
	rp, yes := "shop.example", true
	origins := []string{origin}
	for _, p := range []*twofold.App{&f.app, &f.other} {
		a, _, err := f.apps.Create(ctx, apps.CreateParams{Name: "Shop"})
		if err != nil {
			t.Fatal(err)
		}
		if *p, err = f.apps.Update(ctx, a.ID, apps.Update{PasskeyRPID: &rp, PasskeyOrigins: &origins, PasskeyUsernameless: &yes}); err != nil {
			t.Fatal(err)
		}
	}
	us := users.New(st, f.clock.Now)
	f.ana, _, _ = us.Register(ctx, f.app.ID, users.Contact{Email: "ana@example.com", Cellphone: "2015550123", CountryCode: "1"})
	f.bo, _, _ = us.Register(ctx, f.app.ID, users.Contact{Email: "bo@example.com", Cellphone: "2015550124", CountryCode: "1"})
	f.otherU, _, _ = us.Register(ctx, f.other.ID, users.Contact{Email: "cy@example.com", Cellphone: "2015550125", CountryCode: "1"})
	vs := verify.New(st, nil, keys, verify.Config{FailureLimit: verify.Limit{N: 5, Window: 15 * time.Minute}}, f.clock.Now)
	f.svc = passkeys.New(st, vs, f.audit, f.clock.Now)
	return f
}

// register registers a new software authenticator's passkey for u of app.
func (f *fixture) register(app twofold.App, u twofold.User, name string) (*passkeytest.Authenticator, twofold.Passkey) {
	f.t.Helper()
	a := passkeytest.New(origin)
	p, err := f.registerWith(app, u, a, name)
	if err != nil {
		f.t.Fatalf("register: %v", err)
	}
	return a, p
}

func (f *fixture) registerWith(app twofold.App, u twofold.User, a *passkeytest.Authenticator, name string) (twofold.Passkey, error) {
	f.t.Helper()
	c, err := f.svc.BeginRegistration(f.t.Context(), app, u.ID, name)
	if err != nil {
		return twofold.Passkey{}, err
	}
	resp, err := a.Register(c.Options)
	if err != nil {
		f.t.Fatal(err)
	}
	return f.svc.FinishRegistration(f.t.Context(), app, u.ID, c.ID, resp, "")
}

// login begins a sign-in (userID 0: usernameless) and answers it with a.
func (f *fixture) login(app twofold.App, userID int64, a *passkeytest.Authenticator) (passkeys.Login, error) {
	f.t.Helper()
	c, err := f.svc.BeginLogin(f.t.Context(), app, userID)
	if err != nil {
		return passkeys.Login{}, err
	}
	resp, err := a.Assert(c.Options)
	if err != nil {
		f.t.Fatal(err)
	}
	return f.svc.FinishLogin(f.t.Context(), app, c.ID, resp)
}
