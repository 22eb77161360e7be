package verify_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/twofold-auth/twofold/internal/apps"
	"github.com/twofold-auth/twofold/internal/deliver"
	"github.com/twofold-auth/twofold/internal/otp"
	"github.com/twofold-auth/twofold/internal/seal"
	"github.com/twofold-auth/twofold/internal/store"
	"github.com/twofold-auth/twofold/internal/store/storetest"
	"github.com/twofold-auth/twofold/internal/twofold"
	"github.com/twofold-auth/twofold/internal/users"
	"github.com/twofold-auth/twofold/internal/verify"

	"log/slog"
)

// clock is a settable time source shared by the services under test.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time          { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Advance(d time.Duration) { c.mu.Lock(); defer c.mu.Unlock(); c.now = c.now.Add(d) }

type fixture struct {
	t      *testing.T
	dbPath string
	store  *store.Store
	keys   *seal.Keyring
	clock  *clock
	apps   *apps.Service
	users  *users.Service
	outbox *deliver.Outbox
	svc    *verify.Service
}

func newFixture(t *testing.T, cfg verify.Config) *fixture {
	t.Helper()
	return newFixtureAt(t, cfg, filepath.Join(t.TempDir(), "twofold.db"))
}

// newFixtureAt is newFixture on the database dbPath names: an SQLite file or a PostgreSQL URL.
func newFixtureAt(t *testing.T, cfg verify.Config, dbPath string) *fixture {
	t.Helper()
	st, err := store.Open(context.Background(), dbPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	keys, err := seal.New(bytes.Repeat([]byte{7}, seal.KeySize))
	if err != nil {
		t.Fatal(err)
	}
	c := &clock{now: time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)}
	log := slog.New(slog.DiscardHandler)
	f := &fixture{t: t, dbPath: dbPath, store: st, keys: keys, clock: c,
		apps: apps.New(st, keys, c.Now), users: users.New(st, c.Now), outbox: deliver.NewOutbox(st, keys, log, c.Now)}
	router, err := deliver.NewRouter(f.outbox, nil, deliver.RouterConfig{}, nil, log)
	if err != nil {
		t.Fatal(err)
	}
	f.svc = verify.New(st, router, keys, cfg, c.Now)
	return f
}

func (f *fixture) app(sandbox bool) twofold.App {
	f.t.Helper()
	a, _, err := f.apps.Create(context.Background(), apps.CreateParams{Name: "Shop", Sandbox: sandbox})
	if err != nil {
		f.t.Fatal(err)
	}
	return a
}

var phones = []string{"2015550123", "2015550124", "2015550125", "2015550126"}

func (f *fixture) user(a twofold.App, n int) twofold.User {
	f.t.Helper()
	u, _, err := f.users.Register(context.Background(), a.ID, users.Contact{Email: "u@example.com", Cellphone: phones[n], CountryCode: "1"})
	if err != nil {
		f.t.Fatal(err)
	}
	return u
}

var codeRE = regexp.MustCompile(`is (\d+)\.`)

// send issues an SMS code and returns it, read back from the outbox.
func (f *fixture) send(a twofold.App, u twofold.User, action string) string {
	f.t.Helper()
	sent, err := f.svc.Send(context.Background(), a, u.ID, verify.SendParams{Channel: twofold.SMS, Force: true, Action: action})
	if err != nil {
		f.t.Fatal(err)
	}
	msgs, err := f.outbox.List(context.Background(), twofold.MessageFilter{})
	if err != nil {
		f.t.Fatal(err)
	}
	last := msgs[len(msgs)-1]
	if last.SID != sent.Message.SID {
		f.t.Fatalf("newest outbox message %s, want %s", last.SID, sent.Message.SID)
	}
	m := codeRE.FindStringSubmatch(last.Body)
	if m == nil || len(m[1]) != a.TokenLength {
		f.t.Fatalf("no %d-digit code in %q", a.TokenLength, last.Body)
	}
	return m[1]
}

func (f *fixture) check(a twofold.App, u twofold.User, token string, p verify.CheckParams) (verify.Method, twofold.Code) {
	f.t.Helper()
	m, err := f.svc.Check(context.Background(), a, u.ID, token, p)
	if err == nil {
		return m, 0
	}
	var e *twofold.Error
	if !errors.As(err, &e) {
		f.t.Fatalf("Check: non-domain error %v", err)
	}
	return "", e.Code
}

// wrong returns a well-formed token different from code.
func wrong(code string) string {
	b := []byte(code)
	b[0] = '0' + (b[0]-'0'+1)%10
	return string(b)
}

func TestCodeLifecycle(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name string
		run  func(f *fixture, a twofold.App, u twofold.User) (verify.Method, twofold.Code)
		want twofold.Code
	}{
		{"right code", func(f *fixture, a twofold.App, u twofold.User) (verify.Method, twofold.Code) {
			return f.check(a, u, f.send(a, u, ""), verify.CheckParams{})
		}, 0},
		{"reused code", func(f *fixture, a twofold.App, u twofold.User) (verify.Method, twofold.Code) {
			code := f.send(a, u, "")
			if _, c := f.check(a, u, code, verify.CheckParams{}); c != 0 {
				t.Fatalf("first use: %d", c)
			}
			return f.check(a, u, code, verify.CheckParams{})
		}, twofold.CodeTokenReused},
		{"wrong code", func(f *fixture, a twofold.App, u twofold.User) (verify.Method, twofold.Code) {
			return f.check(a, u, wrong(f.send(a, u, "")), verify.CheckParams{})
		}, twofold.CodeTokenInvalid},
		{"expired code", func(f *fixture, a twofold.App, u twofold.User) (verify.Method, twofold.Code) {
			code := f.send(a, u, "")
			f.clock.Advance(10*time.Minute + time.Second)
			return f.check(a, u, code, verify.CheckParams{})
		}, twofold.CodeTokenInvalid},
		{"code just before expiry", func(f *fixture, a twofold.App, u twofold.User) (verify.Method, twofold.Code) {
			code := f.send(a, u, "")
			f.clock.Advance(10*time.Minute - time.Second)
			return f.check(a, u, code, verify.CheckParams{})
		}, 0},
		{"superseded by a newer code", func(f *fixture, a twofold.App, u twofold.User) (verify.Method, twofold.Code) {
			old := f.send(a, u, "")
			newer := f.send(a, u, "")
			if old == newer {
				t.Skip("two random codes collided")
			}
			return f.check(a, u, old, verify.CheckParams{})
		}, twofold.CodeTokenInvalid},
		{"right code after five wrong tries", func(f *fixture, a twofold.App, u twofold.User) (verify.Method, twofold.Code) {
			code := f.send(a, u, "")
			for range 5 {
				if _, c := f.check(a, u, wrong(code), verify.CheckParams{}); c != twofold.CodeTokenInvalid {
					t.Fatalf("wrong try: %d", c)
				}
			}
			return f.check(a, u, code, verify.CheckParams{})
		}, twofold.CodeTokenInvalid},
		{"right code after four wrong tries", func(f *fixture, a twofold.App, u twofold.User) (verify.Method, twofold.Code) {
			code := f.send(a, u, "")
			for range 4 {
				f.check(a, u, wrong(code), verify.CheckParams{})
			}
			return f.check(a, u, code, verify.CheckParams{})
		}, 0},
		{"action must match", func(f *fixture, a twofold.App, u twofold.User) (verify.Method, twofold.Code) {
			return f.check(a, u, f.send(a, u, "transfer"), verify.CheckParams{})
		}, twofold.CodeTokenInvalid},
		{"same action verifies", func(f *fixture, a twofold.App, u twofold.User) (verify.Method, twofold.Code) {
			return f.check(a, u, f.send(a, u, "transfer"), verify.CheckParams{Action: "transfer"})
		}, 0},
		{"non-numeric token", func(f *fixture, a twofold.App, u twofold.User) (verify.Method, twofold.Code) {
			f.send(a, u, "")
			return f.check(a, u, "12a4567", verify.CheckParams{})
		}, twofold.CodeTokenInvalid},
		{"too short token", func(f *fixture, a twofold.App, u twofold.User) (verify.Method, twofold.Code) {
			return f.check(a, u, "12345", verify.CheckParams{})
		}, twofold.CodeTokenInvalid},
		{"sandbox token in a live app", func(f *fixture, a twofold.App, u twofold.User) (verify.Method, twofold.Code) {
			return f.check(a, u, "0000000", verify.CheckParams{})
		}, twofold.CodeTokenInvalid},
		{"unconfirmed user without force, bypass off", func(f *fixture, a twofold.App, u twofold.User) (verify.Method, twofold.Code) {
			return f.check(a, u, "1234567", verify.CheckParams{Force: false})
		}, twofold.CodeTokenInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, verify.Config{FailureLimit: verify.Limit{N: 100, Window: time.Hour}})
			a := f.app(false)
			u := f.user(a, 0)
			method, code := tt.run(f, a, u)
			if code != tt.want {
				t.Fatalf("code %d, want %d", code, tt.want)
			}
			if tt.want == 0 && method != verify.MethodCode {
				t.Fatalf("method %q, want code", method)
			}
			got, err := f.users.Get(ctx, a.ID, u.ID)
			if err != nil {
				t.Fatal(err)
			}
			if wantConfirmed := tt.want == 0 || tt.name == "reused code"; got.Confirmed != wantConfirmed {
				t.Fatalf("confirmed = %v after outcome %d", got.Confirmed, tt.want)
			}
		})
	}
}

func TestSandboxAndBypass(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, verify.Config{})
	sandbox := f.app(true)
	u := f.user(sandbox, 0)
	if m, c := f.check(sandbox, u, "0000000", verify.CheckParams{Force: true}); c != 0 || m != verify.MethodSandbox {
		t.Fatalf("sandbox token: %q %d", m, c)
	}
	if _, c := f.check(sandbox, u, "1234567", verify.CheckParams{Force: true}); c != twofold.CodeTokenInvalid {
		t.Fatalf("other token in sandbox: %d", c)
	}
	code := f.send(sandbox, u, "")
	msgs, _ := f.outbox.List(ctx, twofold.MessageFilter{AppID: sandbox.ID})
	if msgs[len(msgs)-1].Status != twofold.MessageSandbox {
		t.Fatalf("sandbox message status %q", msgs[len(msgs)-1].Status)
	}
	if _, c := f.check(sandbox, u, code, verify.CheckParams{}); c != 0 {
		t.Fatalf("sandbox code: %d", c)
	}

	live := f.app(false)
	on := true
	live, err := f.apps.Update(ctx, live.ID, apps.Update{UnconfirmedBypass: &on})
	if err != nil {
		t.Fatal(err)
	}
	lu := f.user(live, 1)
	if m, c := f.check(live, lu, "1234567", verify.CheckParams{Force: false}); c != 0 || m != verify.MethodUnconfirmed {
		t.Fatalf("bypass without force: %q %d", m, c)
	}
	if _, c := f.check(live, lu, "1234567", verify.CheckParams{Force: true}); c != twofold.CodeTokenInvalid {
		t.Fatalf("bypass with force: %d", c)
	}
	// Once the user has verified for real, the bypass no longer applies.
	if _, c := f.check(live, lu, f.send(live, lu, ""), verify.CheckParams{Force: true}); c != 0 {
		t.Fatalf("real code: %d", c)
	}
	if _, c := f.check(live, lu, "1234567", verify.CheckParams{Force: false}); c != twofold.CodeTokenInvalid {
		t.Fatalf("bypass after confirmation: %d", c)
	}
}

func TestTenantIsolation(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, verify.Config{})
	a, b := f.app(false), f.app(false)
	u := f.user(a, 0)
	code := f.send(a, u, "")
	if _, err := f.svc.Send(ctx, b, u.ID, verify.SendParams{Channel: twofold.SMS, Force: true}); twofold.ErrorCode(err) != twofold.CodeUserNotFound {
		t.Fatalf("send to another app's user: %v", err)
	}
	if _, err := f.svc.Check(ctx, b, u.ID, code, verify.CheckParams{}); twofold.ErrorCode(err) != twofold.CodeUserDoesNotExist {
		t.Fatalf("verify another app's user: %v", err)
	}
	if _, err := f.svc.Enroll(ctx, b, u.ID, "", 0); twofold.ErrorCode(err) != twofold.CodeUserNotFound {
		t.Fatalf("enrol another app's user: %v", err)
	}
	// The code still works for its own application.
	if _, c := f.check(a, u, code, verify.CheckParams{}); c != 0 {
		t.Fatalf("own app: %d", c)
	}
}

func TestTOTP(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, verify.Config{})
	a := f.app(false)
	u := f.user(a, 0)
	e, err := f.svc.Enroll(ctx, a, u.ID, "alice", 0)
	if err != nil {
		t.Fatal(err)
	}
	key, err := otp.ParseURI(e.URI)
	if err != nil {
		t.Fatalf("enrolment URI %q: %v", e.URI, err)
	}
	if key.Issuer != "Shop" || key.Account != "alice" || key.Digits != 6 || key.Period != 30 {
		t.Fatalf("key %+v", key)
	}
	now := f.clock.Now()
	if _, c := f.check(a, u, key.Code(now.Add(-60*time.Second)), verify.CheckParams{}); c != twofold.CodeTokenInvalid {
		t.Fatalf("code two steps old: %d", c)
	}
	prev := key.Code(now.Add(-30 * time.Second))
	cur := key.Code(now)
	if m, c := f.check(a, u, cur, verify.CheckParams{}); c != 0 || m != verify.MethodTOTP {
		t.Fatalf("current code: %q %d", m, c)
	}
	if _, c := f.check(a, u, cur, verify.CheckParams{}); c != twofold.CodeTokenReused {
		t.Fatalf("replayed code: %d", c)
	}
	if prev != cur {
		if _, c := f.check(a, u, prev, verify.CheckParams{}); c != twofold.CodeTokenReused {
			t.Fatalf("older step after a newer one: %d", c)
		}
	}
	f.clock.Advance(30 * time.Second)
	if _, c := f.check(a, u, key.Code(f.clock.Now()), verify.CheckParams{}); c != 0 {
		t.Fatalf("next step: %d", c)
	}

	// Users with an authenticator are not sent SMS unless the caller forces it (Authy's rule).
	sent, err := f.svc.Send(ctx, a, u.ID, verify.SendParams{Channel: twofold.SMS})
	if err != nil || !sent.Ignored || sent.Device != "authenticator" {
		t.Fatalf("SMS without force: %+v %v", sent, err)
	}

	// The QR link shows the enrolment's URI until the user enrols again.
	uri, size, err := f.svc.QR(ctx, e.QRLink)
	if err != nil || uri != e.URI || size != 300 {
		t.Fatalf("QR: %q %d %v", uri, size, err)
	}
	if _, err := f.svc.Enroll(ctx, a, u.ID, "alice", 0); err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.svc.QR(ctx, e.QRLink); !errors.Is(err, verify.ErrQRGone) {
		t.Fatalf("QR after re-enrolment: %v", err)
	}
	if _, c := f.check(a, u, key.Code(f.clock.Now()), verify.CheckParams{}); c != twofold.CodeTokenInvalid {
		t.Fatalf("old seed after re-enrolment: %d", c)
	}
	e2, _ := f.svc.Enroll(ctx, a, u.ID, "", 0)
	f.clock.Advance(16 * time.Minute)
	if _, _, err := f.svc.QR(ctx, e2.QRLink); !errors.Is(err, verify.ErrQRGone) {
		t.Fatalf("expired QR: %v", err)
	}
	if _, _, err := f.svc.QR(ctx, "not-a-token"); !errors.Is(err, verify.ErrQRGone) {
		t.Fatalf("garbage QR: %v", err)
	}
}

// parallel runs fn n times at once and counts the outcomes.
func parallel(n int, fn func() twofold.Code) map[twofold.Code]int {
	var mu sync.Mutex
	counts := map[twofold.Code]int{}
	var wg sync.WaitGroup
	start := make(chan struct{})
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			c := fn()
			mu.Lock()
			counts[c]++
			mu.Unlock()
		}()
	}
	close(start)
	wg.Wait()
	return counts
}

func TestParallelReuseWinsOnce(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, verify.Config{FailureLimit: verify.Limit{N: 1000, Window: time.Hour}})
	a := f.app(false)
	u := f.user(a, 0)
	code := f.send(a, u, "")
	got := parallel(16, func() twofold.Code { _, c := f.check(a, u, code, verify.CheckParams{}); return c })
	if got[0] != 1 || got[twofold.CodeTokenReused] != 15 {
		t.Fatalf("SMS code used in parallel: %v", got)
	}

	u2 := f.user(a, 1)
	e, err := f.svc.Enroll(ctx, a, u2.ID, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	key, _ := otp.ParseURI(e.URI)
	totp := key.Code(f.clock.Now())
	got = parallel(16, func() twofold.Code { _, c := f.check(a, u2, totp, verify.CheckParams{}); return c })
	if got[0] != 1 || got[twofold.CodeTokenReused] != 15 {
		t.Fatalf("TOTP code used in parallel: %v", got)
	}
}

func TestFailureLimit(t *testing.T) {
	f := newFixture(t, verify.Config{FailureLimit: verify.Limit{N: 3, Window: 15 * time.Minute}, MaxAttempts: 100})
	a := f.app(false)
	u := f.user(a, 0)
	code := f.send(a, u, "")
	for range 3 {
		if _, c := f.check(a, u, wrong(code), verify.CheckParams{}); c != twofold.CodeTokenInvalid {
			t.Fatalf("wrong try: %d", c)
		}
	}
	// Locked: even the right code is refused until the window ends.
	if _, c := f.check(a, u, code, verify.CheckParams{}); c != twofold.CodeRateLimited {
		t.Fatalf("right code while limited: %d", c)
	}
	_, err := f.svc.Check(context.Background(), a, u.ID, code, verify.CheckParams{})
	var e *twofold.Error
	if !errors.As(err, &e) || e.RetryAfter <= 0 || e.RetryAfter > 15*time.Minute {
		t.Fatalf("limit error %#v", err)
	}
	f.clock.Advance(15 * time.Minute)
	if _, c := f.check(a, u, f.send(a, u, ""), verify.CheckParams{}); c != 0 {
		t.Fatalf("after the window: %d", c)
	}
	// Successes do not count towards the limit.
	for range 5 {
		if _, c := f.check(a, u, f.send(a, u, ""), verify.CheckParams{}); c != 0 && c != twofold.CodeRateLimited {
			t.Fatalf("success: %d", c)
		}
	}
}

// Past the limit, tries are refused without being counted: a flood of guesses against a
// locked-out user costs the store a read each, not a durable write. Only the failures are
// counted; the first refusal is recorded (TestAuditOfVerifications) but is no event of the limit.
func TestLockedOutTriesAreNotCounted(t *testing.T) {
	f := newFixture(t, verify.Config{FailureLimit: verify.Limit{N: 3, Window: 15 * time.Minute}, MaxAttempts: 100})
	a := f.app(false)
	u := f.user(a, 0)
	code := f.send(a, u, "")
	counted := func() int64 {
		t.Helper()
		now := f.clock.Now()
		// The limit verify keeps for the user (failureCounter).
		w := twofold.LimitWindow{Name: fmt.Sprintf("verify-failures:%d:%d", a.ID, u.ID), Since: now.Add(-15 * time.Minute)}
		st, err := f.store.CheckState(context.Background(), a.ID, u.ID, now, w)
		if err != nil {
			t.Fatal(err)
		}
		return st.Failures
	}
	for i := range 10 {
		want := twofold.CodeTokenInvalid
		if i >= 3 {
			want = twofold.CodeRateLimited
		}
		if _, c := f.check(a, u, wrong(code), verify.CheckParams{}); c != want {
			t.Fatalf("try %d: code %d, want %d", i+1, c, want)
		}
	}
	if n := counted(); n != 3 {
		t.Errorf("%d tries counted, want the 3 failures", n)
	}
	// The right code is refused too, and not counted either.
	if _, c := f.check(a, u, code, verify.CheckParams{}); c != twofold.CodeRateLimited {
		t.Fatalf("right code while locked out: %d", c)
	}
	if n := counted(); n != 3 {
		t.Errorf("%d tries counted after the right code, want 3", n)
	}
	f.clock.Advance(15 * time.Minute)
	if _, c := f.check(a, u, f.send(a, u, ""), verify.CheckParams{}); c != 0 {
		t.Fatalf("after the window: %d", c)
	}
}

func TestFailureLimitHoldsUnderParallelGuessing(t *testing.T) {
	f := newFixture(t, verify.Config{FailureLimit: verify.Limit{N: 10, Window: time.Hour}, MaxAttempts: 1000})
	a := f.app(false)
	u := f.user(a, 0)
	code := f.send(a, u, "")
	got := parallel(60, func() twofold.Code { _, c := f.check(a, u, wrong(code), verify.CheckParams{}); return c })
	if got[twofold.CodeTokenInvalid] != 10 || got[twofold.CodeRateLimited] != 50 {
		t.Fatalf("parallel wrong guesses: %v (want exactly 10 evaluated)", got)
	}
}

func TestSendLimitAndChannels(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, verify.Config{SendLimit: verify.Limit{N: 2, Window: 10 * time.Minute}})
	a := f.app(false)
	u := f.user(a, 0)
	for _, ch := range []twofold.Channel{twofold.Call, twofold.Email} {
		sent, err := f.svc.Send(ctx, a, u.ID, verify.SendParams{Channel: ch, Force: true})
		if err != nil {
			t.Fatalf("%s: %v", ch, err)
		}
		want := "+12015550123"
		if ch == twofold.Email {
			want = "u@example.com"
		}
		if sent.Message.To != want || sent.Message.Channel != ch {
			t.Fatalf("%s message %+v", ch, sent.Message)
		}
	}
	if _, err := f.svc.Send(ctx, a, u.ID, verify.SendParams{Channel: twofold.SMS, Force: true}); twofold.ErrorCode(err) != twofold.CodeRateLimited {
		t.Fatalf("third send: %v", err)
	}
	off := false
	a, _ = f.apps.Update(ctx, a.ID, apps.Update{SMSEnabled: &off, CallEnabled: &off})
	f.clock.Advance(10 * time.Minute)
	if _, err := f.svc.Send(ctx, a, u.ID, verify.SendParams{Channel: twofold.SMS, Force: true}); twofold.ErrorCode(err) != twofold.CodeSMSDisabled {
		t.Fatalf("SMS disabled: %v", err)
	}
	if _, err := f.svc.Send(ctx, a, u.ID, verify.SendParams{Channel: twofold.Call, Force: true}); twofold.ErrorCode(err) != twofold.CodeCallDisabled {
		t.Fatalf("calls disabled: %v", err)
	}
}

// A send that fails spends no quota: neither one the store refuses after the limits were counted
// (PostgreSQL refuses a NUL byte in text; the API refuses it sooner, so this reaches the store
// only through the service), nor one a later limit refuses after an earlier one counted it.
func TestFailedSendsSpendNoQuota(t *testing.T) {
	ctx := context.Background()
	t.Run("the store refuses the code", func(t *testing.T) {
		f := newFixtureAt(t, verify.Config{SendLimit: verify.Limit{N: 2, Window: 10 * time.Minute}}, storetest.Schema(t))
		a := f.app(false)
		u := f.user(a, 0)
		for range 3 {
			if _, err := f.svc.Send(ctx, a, u.ID, verify.SendParams{Channel: twofold.SMS, Force: true, Action: "a\x00b"}); err == nil {
				t.Fatal("PostgreSQL stored a NUL byte")
			}
		}
		for i := range 2 {
			if _, err := f.svc.Send(ctx, a, u.ID, verify.SendParams{Channel: twofold.SMS, Force: true}); err != nil {
				t.Fatalf("send %d of 2 after three failed ones: %v", i+1, err)
			}
		}
		if _, err := f.svc.Send(ctx, a, u.ID, verify.SendParams{Channel: twofold.SMS, Force: true}); twofold.ErrorCode(err) != twofold.CodeRateLimited {
			t.Fatalf("a third send: %v, want 60003", err)
		}
	})
	t.Run("a later limit refuses", func(t *testing.T) {
		f := newFixture(t, verify.Config{SendLimit: verify.Limit{N: 1, Window: time.Hour}, AppSendLimit: verify.Limit{N: 1, Window: 10 * time.Minute}})
		a := f.app(false)
		first, second := f.user(a, 0), f.user(a, 1)
		if _, err := f.svc.Send(ctx, a, first.ID, verify.SendParams{Channel: twofold.SMS, Force: true}); err != nil {
			t.Fatal(err)
		}
		// The user's limit counts the send, then the application's refuses it.
		if _, err := f.svc.Send(ctx, a, second.ID, verify.SendParams{Channel: twofold.SMS, Force: true}); twofold.ErrorCode(err) != twofold.CodeRateLimited {
			t.Fatalf("the application's limit: %v, want 60003", err)
		}
		f.clock.Advance(10 * time.Minute) // the application's window has room; the user's has not passed
		if _, err := f.svc.Send(ctx, a, second.ID, verify.SendParams{Channel: twofold.SMS, Force: true}); err != nil {
			t.Fatalf("the refused send was counted against the user: %v", err)
		}
	})
}

// An attacker with a copy of the database file learns no code and no seed.
func TestSecretsNotInDatabaseFile(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, verify.Config{})
	a := f.app(false)
	u := f.user(a, 0)
	code := f.send(a, u, "")
	e, err := f.svc.Enroll(ctx, a, u.ID, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	key, _ := otp.ParseURI(e.URI)
	apiKey, err := f.apps.Reveal(a)
	if err != nil {
		t.Fatal(err)
	}
	f.store.Close()
	raw := readAll(t, f.dbPath)
	for name, secret := range map[string][]byte{
		"code": []byte("is " + code), "seed": key.Secret, "base32 seed": []byte(otp.EncodeSecret(key.Secret)),
		"api key": []byte(apiKey), "otpauth uri": []byte("otpauth://"),
	} {
		if bytes.Contains(raw, secret) {
			t.Errorf("%s found in the database file", name)
		}
	}
}

func readAll(t *testing.T, path string) []byte {
	t.Helper()
	var all []byte
	for _, p := range []string{path, path + "-wal"} {
		b, err := os.ReadFile(p)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
		all = append(all, b...)
	}
	return all
}
