package console_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twofold-auth/twofold/internal/apps"
	"github.com/twofold-auth/twofold/internal/audit"
	"github.com/twofold-auth/twofold/internal/callback"
	"github.com/twofold-auth/twofold/internal/console"
	"github.com/twofold-auth/twofold/internal/devices"
	"github.com/twofold-auth/twofold/internal/egress"
	"github.com/twofold-auth/twofold/internal/hostedstep"
	"github.com/twofold-auth/twofold/internal/masterkey"
	"github.com/twofold-auth/twofold/internal/onetouch"
	"github.com/twofold-auth/twofold/internal/operators"
	"github.com/twofold-auth/twofold/internal/otp"
	"github.com/twofold-auth/twofold/internal/passkeys"
	"github.com/twofold-auth/twofold/internal/password"
	"github.com/twofold-auth/twofold/internal/recovery"
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

const host = "console.test"

// fixture is a console over real services and a real SQLite store, on a fake clock.
type fixture struct {
	t       *testing.T
	st      *store.Store
	clock   *clock
	ops     *operators.Service
	apps    *apps.Service
	devices *devices.Service
	ot      *onetouch.Service
	factors *console.Factors
	audit   *audit.Log
	verify  *verify.Service
	clients *hostedstep.Clients
	rc      *recovery.Service
	deps    console.Deps
	// passkeys runs passkey ceremonies (the users' pages list and remove passkeys).
	passkeys *passkeys.Service
	cfg      console.Config
	h        http.Handler
}

func newFixture(t *testing.T, cfg console.Config) *fixture {
	t.Helper()
	return newFixtureOn(t, cfg, sqliteDatabase(t)())
}

// database opens a store on one database; each call opens another handle on the same one, as
// another server would (closed when the test ends).
type database func() *store.Store

func sqliteDatabase(t *testing.T) database {
	path := filepath.Join(t.TempDir(), "twofold.db")
	return func() *store.Store {
		t.Helper()
		st, err := store.OpenSQLite(t.Context(), path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return st
	}
}

func postgresDatabase(t *testing.T) database {
	dsn := storetest.Schema(t)
	return func() *store.Store {
		t.Helper()
		st, err := store.OpenPostgres(t.Context(), dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return st
	}
}

// engines runs test on SQLite and on PostgreSQL (skipped without TWOFOLD_TEST_POSTGRES).
func engines(t *testing.T, test func(t *testing.T, db database)) {
	t.Run("SQLite", func(t *testing.T) { test(t, sqliteDatabase(t)) })
	t.Run("Postgres", func(t *testing.T) { test(t, postgresDatabase(t)) })
}

// newFixtureOn is newFixture over the store st.
func newFixtureOn(t *testing.T, cfg console.Config, st *store.Store) *fixture {
	t.Helper()
	keys, err := seal.New(bytes.Repeat([]byte{7}, seal.KeySize))
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, st: st, clock: &clock{now: time.Date(2026, 3, 4, 10, 20, 30, 0, time.UTC)}}
	log := slog.New(slog.DiscardHandler)
	f.audit = audit.New(st, keys.Subkey(audit.KeyLabel), f.clock.Now, log)
	f.ops = operators.New(st, f.clock.Now).WithParams(password.Params{Time: 1, Memory: 64, Threads: 1})
	f.apps = apps.New(st, keys, f.clock.Now)
	f.apps.SetAuditor(f.audit)
	v := verify.New(st, nil, keys, verify.DefaultConfig(), f.clock.Now)
	f.devices = devices.New(st, keys, f.apps.Reveal, 10*time.Minute, f.clock.Now)
	f.devices.SetAuditor(f.audit)
	f.ot = onetouch.New(st, onetouch.DefaultConfig(), onetouch.Hooks{}, f.clock.Now)
	us := users.New(st, f.clock.Now)
	us.SetAuditor(f.audit)
	f.factors = console.NewFactors(console.Services{
		EnsureConsole: f.apps.EnsureConsole, CreateCustomUser: st.CreateCustomUser, ListDevices: st.ListDevices,
		Enroll: v.Enroll, Check: v.Check, RegistrationToken: f.devices.RegistrationToken,
		CreateApproval: f.ot.Create, GetApproval: f.ot.Get, GetAuthenticator: st.GetAuthenticator,
	}, f.clock.Now)
	cfg.Now, cfg.Log = f.clock.Now, log
	f.cfg = cfg
	f.verify = v
	// Test callbacks go out as the server's do; the tests' receivers are on loopback, allowed
	// as an operator allows them with --callback-allow-hosts 127.0.0.1.
	allow, err := egress.ParseAllowlist("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	dispatcher := callback.New(st, nil, f.apps.Reveal, callback.Config{Egress: egress.New(allow, nil)}, log, nil)
	f.clients = hostedstep.NewClients(st, keys, f.clock.Now)
	f.clients.SetAuditor(f.audit)
	f.passkeys = passkeys.New(st, v, f.audit, f.clock.Now)
	recoveryKey, err := masterkey.RecoveryKey(t.Context(), st, keys)
	if err != nil {
		t.Fatal(err)
	}
	f.rc = recovery.New(st, recoveryKey, f.audit, f.clock.Now)
	f.deps = console.Deps{Groups: f.ot, Operators: f.ops, Lookup: st, Factors: f.factors, Apps: f.apps, Users: us,
		Devices: f.devices, Queries: st, Audit: f.audit, Callbacks: dispatcher, EnrolmentQR: v, StepClients: f.clients,
		Passkeys: f.passkeys, RecoveryCodes: f.rc}
	f.h = console.New(f.deps, cfg)
	return f
}

// operator is an operator account with its TOTP seed.
type operator struct {
	op    twofold.Operator
	pw    string
	totp  otp.TOTP
	token string // device registration token
}

func (f *fixture) operator(email string, enrol bool) operator {
	f.t.Helper()
	pw := "correct horse battery " + email
	op, err := f.ops.Create(f.t.Context(), email, pw)
	if err != nil {
		f.t.Fatal(err)
	}
	o := operator{op: op, pw: pw}
	if enrol {
		e, err := f.factors.Enrol(f.t.Context(), op)
		if err != nil {
			f.t.Fatal(err)
		}
		k, err := otp.ParseURI(e.TOTPURI)
		if err != nil {
			f.t.Fatal(err)
		}
		o.totp, o.token = k.TOTP, e.RegistrationToken
	}
	return o
}

// code returns the operator's current TOTP code; step moves it (a code works once).
func (f *fixture) code(o operator, step int64) string {
	return o.totp.At(o.totp.Step(f.clock.Now()) + step)
}

// phone is a registered device that signs its answers.
type phone struct {
	key *ecdsa.PrivateKey
	dev twofold.Device
}

func (f *fixture) registerDevice(token string) *phone {
	f.t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	reg, err := f.devices.Register(f.t.Context(), token, der, "ops phone", "cli")
	if err != nil {
		f.t.Fatal(err)
	}
	return &phone{key: key, dev: reg.Device}
}

func (f *fixture) answer(p *phone, uuid string, status twofold.ApprovalStatus, number string) error {
	ts := f.clock.Now().Unix()
	digest := sha256.Sum256(onetouch.AnswerMessage(uuid, status, ts, number, ""))
	sig, _ := ecdsa.SignASN1(rand.Reader, p.key, digest[:])
	_, err := f.ot.Answer(f.t.Context(), p.dev, uuid, onetouch.Answer{Status: status, Timestamp: ts,
		Signature: base64.StdEncoding.EncodeToString(sig), Number: number})
	return err
}

// browser keeps cookies and sends requests to the console as a browser on its pages would.
type browser struct {
	f       *fixture
	cookies map[string]*http.Cookie
	origin  string // the Origin header of posts; "" sends none
	last    *http.Response
	body    string
}

func (f *fixture) browser() *browser {
	return &browser{f: f, cookies: map[string]*http.Cookie{}, origin: "http://" + host}
}

func (b *browser) do(req *http.Request) *http.Response {
	b.f.t.Helper()
	for _, c := range b.cookies {
		req.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value})
	}
	rec := httptest.NewRecorder()
	b.f.h.ServeHTTP(rec, req)
	res := rec.Result()
	for _, c := range res.Cookies() {
		if c.MaxAge < 0 || c.Value == "" {
			delete(b.cookies, c.Name)
		} else {
			b.cookies[c.Name] = c
		}
	}
	raw, _ := io.ReadAll(res.Body)
	b.last, b.body = res, string(raw)
	return res
}

func (b *browser) get(path string) *http.Response {
	b.f.t.Helper()
	return b.do(httptest.NewRequest("GET", "http://"+host+path, nil))
}

// post sends form; with csrf true, the page's CSRF token (from the last page) is added.
func (b *browser) post(path string, form url.Values, csrf bool) *http.Response {
	b.f.t.Helper()
	if form == nil {
		form = url.Values{}
	}
	if csrf && form.Get("csrf") == "" {
		form.Set("csrf", b.csrf())
	}
	req := httptest.NewRequest("POST", "http://"+host+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if b.origin != "" {
		req.Header.Set("Origin", b.origin)
	}
	return b.do(req)
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// csrf is the CSRF token of the last page shown.
func (b *browser) csrf() string {
	m := csrfField.FindStringSubmatch(b.body)
	if m == nil {
		b.f.t.Fatalf("no CSRF token on the last page:\n%s", b.body)
	}
	return m[1]
}

func (b *browser) sessionID() string {
	if c, ok := b.cookies["twofold_console"]; ok {
		return c.Value
	}
	return ""
}

// expect checks the last response's status and, for redirects, where it goes.
func (b *browser) expect(status int, location string) {
	b.f.t.Helper()
	if b.last.StatusCode != status || b.last.Header.Get("Location") != location {
		b.f.t.Fatalf("%d %q, want %d %q\n%s", b.last.StatusCode, b.last.Header.Get("Location"), status, location, b.body)
	}
}

func (b *browser) contains(texts ...string) {
	b.f.t.Helper()
	for _, s := range texts {
		if !strings.Contains(b.body, s) {
			b.f.t.Fatalf("the page lacks %q:\n%s", s, b.body)
		}
	}
}

func (b *browser) lacks(texts ...string) {
	b.f.t.Helper()
	for _, s := range texts {
		if strings.Contains(b.body, s) {
			b.f.t.Fatalf("the page shows %q:\n%s", s, b.body)
		}
	}
}

// signIn goes through the password and TOTP steps.
func (b *browser) signIn(o operator) {
	b.f.t.Helper()
	b.password(o.op.Email, o.pw)
	b.expect(http.StatusSeeOther, "/console/signin/factor")
	b.get("/console/signin/factor")
	b.post("/console/signin/code", url.Values{"code": {b.f.code(o, 0)}}, true)
	b.expect(http.StatusSeeOther, "/console/")
}

// password fills in the sign-in form.
func (b *browser) password(email, pw string) *http.Response {
	b.f.t.Helper()
	b.get("/console/signin")
	return b.post("/console/signin", url.Values{"email": {email}, "password": {pw}}, true)
}
