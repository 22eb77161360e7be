package passwordless_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/twofold-auth/twofold/internal/apps"
	"github.com/twofold-auth/twofold/internal/devices"
	"github.com/twofold-auth/twofold/internal/onetouch"
	"github.com/twofold-auth/twofold/internal/passwordless"
	"github.com/twofold-auth/twofold/internal/seal"
	"github.com/twofold-auth/twofold/internal/store"
	"github.com/twofold-auth/twofold/internal/store/storetest"
	"github.com/twofold-auth/twofold/internal/twofold"
	"github.com/twofold-auth/twofold/internal/users"
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

// calls is a Store that records the name of every call before passing it on: what store work
// each path does, in order.
type calls struct {
	passwordless.Store
	mu  sync.Mutex
	log []string
}

func (c *calls) note(s string) { c.mu.Lock(); c.log = append(c.log, s); c.mu.Unlock() }

func (c *calls) take() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.log
	c.log = nil
	return out
}

func (c *calls) Hit(ctx context.Context, name string, now time.Time, l twofold.Limit) (twofold.LimitHit, error) {
	c.note("Hit")
	return c.Store.Hit(ctx, name, now, l)
}

func (c *calls) PasswordlessSubject(ctx context.Context, appID int64, match twofold.UserMatch, name string) (twofold.PasswordlessSubject, error) {
	c.note("PasswordlessSubject")
	return c.Store.PasswordlessSubject(ctx, appID, match, name)
}

func (c *calls) CreatePasswordless(ctx context.Context, p *twofold.PasswordlessRequest, r *twofold.ApprovalRequest, maxPending int) (bool, error) {
	c.note("CreatePasswordless")
	return c.Store.CreatePasswordless(ctx, p, r, maxPending)
}

func (c *calls) GetPasswordless(ctx context.Context, appID int64, uuid string) (twofold.PasswordlessRequest, error) {
	c.note("GetPasswordless")
	return c.Store.GetPasswordless(ctx, appID, uuid)
}

// phone is a registered device that signs its answers.
type phone struct {
	key *ecdsa.PrivateKey
	dev twofold.Device
}

// fixture is the service over a real store and real OneTouch, on a fake clock. The application
// has a callback URL (with expiries), users ana (a device), bo (none) and cy (known by the
// customer's id, with a device).
type fixture struct {
	t         testing.TB
	st        *store.Store
	clock     *clock
	ot        *onetouch.Service
	svc       *passwordless.Service
	store     *calls
	audit     *trail
	app       twofold.App
	other     twofold.App
	ana, bo   twofold.User
	cy        twofold.User
	anaPhone  *phone
	cyPhone   *phone
	devices   *devices.Service
	mu        sync.Mutex
	announced []twofold.ApprovalRequest // requests pushed to devices
	callbacks int
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

func newFixture(t *testing.T, cfg passwordless.Config) *fixture {
	return newFixtureOn(t, openSQLite(t), cfg, onetouch.DefaultConfig())
}

func newFixtureOn(t testing.TB, st *store.Store, cfg passwordless.Config, otCfg onetouch.Config) *fixture {
	t.Helper()
	ctx := t.Context()
	keys, _ := seal.New(bytes.Repeat([]byte{9}, seal.KeySize))
	f := &fixture{t: t, st: st, clock: &clock{now: time.Date(2026, 7, 8, 9, 10, 11, 0, time.UTC)}, audit: &trail{}}
	appSvc := apps.New(st, keys, f.clock.Now)
	var err error
	f.app, _, err = appSvc.Create(ctx, apps.CreateParams{Name: "Shop"})
	if err != nil {
		t.Fatal(err)
	}
	url, yes := "https://shop.example/cb", true
	if f.app, err = appSvc.Update(ctx, f.app.ID, apps.Update{CallbackURL: &url, CallbackExpired: &yes}); err != nil {
		t.Fatal(err)
	}
	f.other, _, _ = appSvc.Create(ctx, apps.CreateParams{Name: "Other"})
	us := users.New(st, f.clock.Now)
	f.ana, _, _ = us.Register(ctx, f.app.ID, users.Contact{Email: "ana@example.com", Cellphone: "2015550123", CountryCode: "1"})
	f.bo, _, _ = us.Register(ctx, f.app.ID, users.Contact{Email: "bo@example.com", Cellphone: "2015550124", CountryCode: "1"})
	f.cy = twofold.User{AppID: f.app.ID, CustomUserID: "customer-7", CreatedAt: f.clock.Now()}
	if _, err := st.CreateCustomUser(ctx, &f.cy); err != nil {
		t.Fatal(err)
	}
	f.devices = devices.New(st, keys, appSvc.Reveal, time.Minute, f.clock.Now)
	f.anaPhone, f.cyPhone = f.register(f.ana), f.register(f.cy)
	f.ot = onetouch.New(st, otCfg, onetouch.Hooks{
		CallbackQueued: func() { f.mu.Lock(); f.callbacks++; f.mu.Unlock() },
		Created:        func(r twofold.ApprovalRequest) { f.mu.Lock(); f.announced = append(f.announced, r); f.mu.Unlock() },
	}, f.clock.Now)
	f.store = &calls{Store: st}
	f.svc = passwordless.New(f.store, f.ot, cfg, f.clock.Now)
	f.svc.SetAuditor(f.audit)
	return f
}

func (f *fixture) register(u twofold.User) *phone {
	f.t.Helper()
	token, _, err := f.devices.RegistrationToken(f.t.Context(), u.AppID, u.ID)
	if err != nil {
		f.t.Fatal(err)
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	reg, err := f.devices.Register(f.t.Context(), token, der, "phone", "ios")
	if err != nil {
		f.t.Fatal(err)
	}
	return &phone{key: key, dev: reg.Device}
}

// answer signs and sends the phone's decision now.
func (f *fixture) answer(p *phone, uuid string, status twofold.ApprovalStatus, number, reason string) (twofold.ApprovalRequest, error) {
	ts := f.clock.Now().Unix()
	digest := sha256.Sum256(onetouch.AnswerMessage(uuid, status, ts, number, reason))
	sig, _ := ecdsa.SignASN1(rand.Reader, p.key, digest[:])
	return f.ot.Answer(f.t.Context(), p.dev, uuid, onetouch.Answer{Status: status, Timestamp: ts,
		Signature: base64.StdEncoding.EncodeToString(sig), Number: number, Reason: reason})
}

// pushes is how many requests went to devices so far.
func (f *fixture) pushes() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.announced)
}

// begin starts a sign-in for email from ip, failing the test on an error.
func (f *fixture) begin(email, ip string) passwordless.Signin {
	f.t.Helper()
	s, err := f.svc.Begin(f.t.Context(), f.app, passwordless.Start{Email: email, UserIP: ip})
	if err != nil {
		f.t.Fatalf("Begin(%q, %s): %v", email, ip, err)
	}
	return s
}

func (f *fixture) status(uuid string) passwordless.Signin {
	f.t.Helper()
	s, err := f.svc.Status(f.t.Context(), f.app, uuid)
	if err != nil {
		f.t.Fatalf("Status(%s): %v", uuid, err)
	}
	return s
}

// wantCode fails unless err is a *twofold.Error with code.
func wantCode(t *testing.T, what string, err error, code twofold.Code) {
	t.Helper()
	if got := twofold.ErrorCode(err); got != code {
		t.Fatalf("%s: %v (code %d), want %d", what, err, got, code)
	}
}

func asError(err error, target **twofold.Error) bool { return errors.As(err, target) }
