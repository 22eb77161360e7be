package hostedstep_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/twofold-auth/twofold/internal/apps"
	"github.com/twofold-auth/twofold/internal/deliver"
	"github.com/twofold-auth/twofold/internal/devices"
	"github.com/twofold-auth/twofold/internal/hostedstep"
	"github.com/twofold-auth/twofold/internal/onetouch"
	"github.com/twofold-auth/twofold/internal/otp"
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

// world is a step over real services on a real SQLite store.
type world struct {
	*fixture
	t        *testing.T
	clock    *clock
	users    *users.Service
	outbox   *deliver.Outbox
	verify   *verify.Service
	onetouch *onetouch.Service
	devices  *devices.Service
	steps    *hostedstep.Steps
}

func newWorld(t *testing.T, cfg hostedstep.Config) *world {
	t.Helper()
	f := newFixture(t)
	c := &clock{now: t0}
	log := slog.New(slog.DiscardHandler)
	w := &world{fixture: f, t: t, clock: c, users: users.New(f.st, c.Now), outbox: deliver.NewOutbox(f.st, f.keys, log, c.Now)}
	router, err := deliver.NewRouter(w.outbox, nil, deliver.RouterConfig{}, nil, log)
	if err != nil {
		t.Fatal(err)
	}
	w.verify = verify.New(f.st, router, f.keys, verify.Config{}, c.Now)
	w.onetouch = onetouch.New(f.st, onetouch.Config{}, onetouch.Hooks{}, c.Now)
	w.devices = devices.New(f.st, f.keys, apps.New(f.st, f.keys, c.Now).Reveal, 0, c.Now)
	w.steps = hostedstep.NewSteps(f.st, f.keys, w.verify, w.onetouch, cfg, c.Now)
	return w
}

func (w *world) client(match twofold.UserMatch, factors ...twofold.Factor) twofold.StepClient {
	w.t.Helper()
	sp := hostedstep.Spec{Name: ptr("IdP"), RedirectURIs: ptr([]string{"https://idp.example.com/cb"}), UserMatch: &match}
	if len(factors) > 0 {
		sp.Factors = &factors
	}
	made, err := w.clients.Create(w.t.Context(), w.app.ID, sp)
	if err != nil {
		w.t.Fatal(err)
	}
	return made.Client
}

func (w *world) user(email, phone string) twofold.User {
	w.t.Helper()
	u, _, err := w.users.Register(w.t.Context(), w.app.ID, users.Contact{Email: email, Cellphone: phone, CountryCode: "1"})
	if err != nil {
		w.t.Fatal(err)
	}
	return u
}

// device registers a device for u and returns its answer function.
func (w *world) device(u twofold.User) func(uuid string, status twofold.ApprovalStatus, number string) error {
	w.t.Helper()
	ctx := w.t.Context()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	pub, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	token, _, err := w.devices.RegistrationToken(ctx, w.app.ID, u.ID)
	if err != nil {
		w.t.Fatal(err)
	}
	reg, err := w.devices.Register(ctx, token, pub, "phone", "cli")
	if err != nil {
		w.t.Fatal(err)
	}
	return func(uuid string, status twofold.ApprovalStatus, number string) error {
		ts := w.clock.Now().Unix()
		digest := sha256.Sum256(onetouch.AnswerMessage(uuid, status, ts, number, ""))
		sig, _ := ecdsa.SignASN1(rand.Reader, key, digest[:])
		_, err := w.onetouch.Answer(ctx, reg.Device, uuid, onetouch.Answer{Status: status, Timestamp: ts,
			Signature: base64.StdEncoding.EncodeToString(sig), Number: number})
		return err
	}
}

var codeRE = regexp.MustCompile(`\b(\d{7})\b`)

// lastCode reads the code of the newest message in the outbox.
func (w *world) lastCode() string {
	w.t.Helper()
	msgs, err := w.outbox.List(w.t.Context(), twofold.MessageFilter{})
	if err != nil || len(msgs) == 0 {
		w.t.Fatalf("outbox: %v, %d messages", err, len(msgs))
	}
	m := codeRE.FindStringSubmatch(msgs[len(msgs)-1].Body)
	if m == nil {
		w.t.Fatalf("no code in %q", msgs[len(msgs)-1].Body)
	}
	return m[1]
}

func (w *world) begin(c twofold.StepClient, name string) (hostedstep.Begun, hostedstep.View) {
	w.t.Helper()
	b, err := w.steps.Begin(w.t.Context(), c, name, []byte(`{"state":"xyz"}`))
	if err != nil {
		w.t.Fatalf("Begin(%q): %v", name, err)
	}
	return b, w.open(b)
}

func (w *world) open(b hostedstep.Begun) hostedstep.View {
	w.t.Helper()
	v, err := w.steps.Open(w.t.Context(), b.Handle, b.Browser)
	if err != nil {
		w.t.Fatalf("Open: %v", err)
	}
	return v
}

func TestBeginNamesOnlyTheApplicationsUsers(t *testing.T) {
	w := newWorld(t, hostedstep.Config{})
	ctx := t.Context()
	ana := w.user("ana@example.com", "2015550100")
	// Another application's user with the same id and email.
	otherApp, _, _ := apps.New(w.st, w.keys, nil).Create(ctx, apps.CreateParams{Name: "Other"})
	stranger, _, err := w.users.Register(ctx, otherApp.ID, users.Contact{Email: "eve@example.com", Cellphone: "2015550199", CountryCode: "1"})
	if err != nil {
		t.Fatal(err)
	}
	byID, byEmail, byCustom := w.client(twofold.MatchID), w.client(twofold.MatchEmail), w.client(twofold.MatchCustomID)
	for _, tc := range []struct {
		c    twofold.StepClient
		name string
		ok   bool
	}{
		{byID, strconv.FormatInt(ana.ID, 10), true},
		{byID, "0" + strconv.FormatInt(ana.ID, 10), false},
		{byID, strconv.FormatInt(stranger.ID, 10), stranger.ID == ana.ID}, // ids are per application
		{byID, "abc", false},
		{byEmail, "ANA@example.com", true},
		{byEmail, "eve@example.com", false},
		{byCustom, "", false},
		{byCustom, "ana", false},
	} {
		_, err := w.steps.Begin(ctx, tc.c, tc.name, nil)
		if tc.ok != (err == nil) || (err != nil && !errors.Is(err, hostedstep.ErrUnknownUser)) {
			t.Errorf("Begin(%s, %q) = %v, want ok=%v", tc.c.UserMatch, tc.name, err, tc.ok)
		}
	}
}

// other is s with its first character changed.
func other(s string) string {
	if s[0] == 'x' {
		return "y" + s[1:]
	}
	return "x" + s[1:]
}

func TestOpenNeedsTheBrowserThatBegan(t *testing.T) {
	w := newWorld(t, hostedstep.Config{})
	ctx := t.Context()
	u := w.user("ana@example.com", "2015550100")
	b, _ := w.begin(w.client(twofold.MatchEmail), u.Email)
	for _, tc := range []struct{ what, handle, browser string }{
		{"another browser", b.Handle, other(b.Browser)},
		{"no cookie", b.Handle, ""},
		{"another handle", other(b.Handle), b.Browser},
		{"a huge handle", string(make([]byte, 5000)), b.Browser},
	} {
		if _, err := w.steps.Open(ctx, tc.handle, tc.browser); !errors.Is(err, hostedstep.ErrNoSession) {
			t.Errorf("%s: %v, want ErrNoSession", tc.what, err)
		}
	}
	w.clock.Advance(10 * time.Minute)
	if _, err := w.steps.Open(ctx, b.Handle, b.Browser); !errors.Is(err, hostedstep.ErrNoSession) {
		t.Errorf("an expired step: %v", err)
	}
}

func TestPushPassesAndTheCodeIsRedeemedOnce(t *testing.T) {
	w := newWorld(t, hostedstep.Config{})
	ctx := t.Context()
	u := w.user("ana@example.com", "2015550100")
	answer := w.device(u)
	c := w.client(twofold.MatchEmail)
	b, v := w.begin(c, u.Email)
	want := []twofold.Factor{twofold.FactorPush, twofold.FactorTOTP, twofold.FactorSMS, twofold.FactorCall, twofold.FactorEmail}
	if fmt.Sprint(v.Offer) != fmt.Sprint(want) {
		t.Fatalf("offer %v, want %v", v.Offer, want)
	}
	p, err := w.steps.StartPush(ctx, v, "Firefox on macOS")
	if err != nil {
		t.Fatal(err)
	}
	if p.Number == "" || p.Status != twofold.Pending {
		t.Fatalf("push %+v: want number matching", p)
	}
	// Reloading the page sends nothing new.
	again, err := w.steps.StartPush(ctx, w.open(b), "")
	if err != nil || again.UUID != p.UUID {
		t.Fatalf("StartPush again: %+v, %v; want the same request", again, err)
	}
	if got, _ := w.steps.PushStatus(ctx, w.open(b)); got.Status != twofold.Pending {
		t.Fatalf("status before the answer: %+v", got)
	}
	if _, err := w.steps.IssueCode(ctx, w.open(b)); !errors.Is(err, hostedstep.ErrFinished) {
		t.Fatalf("a code before the step passed: %v", err)
	}
	w.clock.Advance(3 * time.Second)
	if err := answer(p.UUID, twofold.Approved, p.Number); err != nil {
		t.Fatal(err)
	}
	if got, err := w.steps.PushStatus(ctx, w.open(b)); err != nil || got.Status != twofold.Approved {
		t.Fatalf("status after approval: %+v, %v", got, err)
	}
	v = w.open(b)
	if v.Session.Status != twofold.StepPassed || v.Session.Factor != twofold.FactorPush {
		t.Fatalf("session after approval: %+v", v.Session)
	}
	code, err := w.steps.IssueCode(ctx, v)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.steps.IssueCode(ctx, w.open(b)); !errors.Is(err, hostedstep.ErrFinished) {
		t.Fatalf("a second code: %v", err)
	}
	other := w.client(twofold.MatchEmail)
	if _, err := w.steps.Redeem(ctx, other, code); !errors.Is(err, hostedstep.ErrNoCode) {
		t.Fatalf("another client redeemed the code: %v", err)
	}
	res, err := w.steps.Redeem(ctx, c, code)
	if err != nil {
		t.Fatal(err)
	}
	if res.User.ID != u.ID || res.Factor != twofold.FactorPush || !res.AuthTime.Equal(t0.Add(3*time.Second)) || string(res.Session.Request) != `{"state":"xyz"}` {
		t.Fatalf("result %+v", res)
	}
	if _, err := w.steps.Redeem(ctx, c, code); !errors.Is(err, hostedstep.ErrNoCode) {
		t.Fatalf("the code redeemed twice: %v", err)
	}
}

// A user who passes with a code while a push waits on their phone: the push is closed.
func TestCodeClosesThePendingPush(t *testing.T) {
	w := newWorld(t, hostedstep.Config{})
	ctx := t.Context()
	u := w.user("ana@example.com", "2015550100")
	w.device(u)
	b, v := w.begin(w.client(twofold.MatchEmail), u.Email)
	p, err := w.steps.StartPush(ctx, v, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := w.steps.Send(ctx, w.open(b), twofold.FactorSMS, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := w.steps.Check(ctx, w.open(b), w.lastCode()); err != nil {
		t.Fatal(err)
	}
	r, err := w.onetouch.Get(ctx, w.app, p.UUID)
	if err != nil || r.Status != twofold.Expired {
		t.Fatalf("the push after passing by SMS: %s, %v; want closed (expired)", r.Status, err)
	}
}

// A user who gives up: the session fails, so nothing passes it later, and the push goes.
func TestAbandon(t *testing.T) {
	w := newWorld(t, hostedstep.Config{})
	ctx := t.Context()
	u := w.user("ana@example.com", "2015550100")
	answer := w.device(u)
	b, v := w.begin(w.client(twofold.MatchEmail), u.Email)
	p, err := w.steps.StartPush(ctx, v, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := w.steps.Abandon(ctx, w.open(b)); err != nil {
		t.Fatal(err)
	}
	if err := answer(p.UUID, twofold.Approved, p.Number); err == nil {
		t.Fatal("the push was approved after the user gave up")
	}
	if v := w.open(b); v.Session.Status != twofold.StepFailed {
		t.Fatalf("session after abandon: %+v", v.Session)
	}
	if _, err := w.steps.PushStatus(ctx, w.open(b)); err != nil {
		t.Fatal(err)
	}
	if _, err := w.steps.IssueCode(ctx, w.open(b)); !errors.Is(err, hostedstep.ErrFinished) {
		t.Fatalf("a code for an abandoned step: %v", err)
	}
}

func TestDeniedPushFailsTheStep(t *testing.T) {
	w := newWorld(t, hostedstep.Config{})
	ctx := t.Context()
	u := w.user("ana@example.com", "2015550100")
	answer := w.device(u)
	b, v := w.begin(w.client(twofold.MatchEmail), u.Email)
	p, err := w.steps.StartPush(ctx, v, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := answer(p.UUID, twofold.Denied, ""); err != nil {
		t.Fatal(err)
	}
	if got, _ := w.steps.PushStatus(ctx, w.open(b)); got.Status != twofold.Denied {
		t.Fatalf("status %+v", got)
	}
	v = w.open(b)
	if v.Session.Status != twofold.StepFailed {
		t.Fatalf("session %+v", v.Session)
	}
	if _, err := w.steps.Check(ctx, v, "0000000"); !errors.Is(err, hostedstep.ErrFinished) {
		t.Errorf("a code after the step failed: %v", err)
	}
	if _, err := w.steps.StartPush(ctx, v, ""); !errors.Is(err, hostedstep.ErrFinished) {
		t.Errorf("a push after the step failed: %v", err)
	}
}

func TestSentCodePassesOnlyItsStep(t *testing.T) {
	w := newWorld(t, hostedstep.Config{})
	ctx := t.Context()
	u := w.user("ana@example.com", "2015550100")
	c := w.client(twofold.MatchEmail, twofold.FactorCall, twofold.FactorSMS)
	b, v := w.begin(c, u.Email)
	if fmt.Sprint(v.Offer) != "[call sms]" {
		t.Fatalf("offer %v: want the client's factors the user has, in its order", v.Offer)
	}
	if err := w.steps.Send(ctx, v, twofold.FactorEmail, ""); !errors.Is(err, hostedstep.ErrNotOffered) {
		t.Fatalf("a factor the client does not allow: %v", err)
	}
	if _, err := w.steps.StartPush(ctx, v, ""); !errors.Is(err, hostedstep.ErrNotOffered) {
		t.Fatalf("a push to a user without a device: %v", err)
	}
	// A code the application sent through the API does not pass the step.
	if _, err := w.verify.Send(ctx, w.app, u.ID, verify.SendParams{Channel: twofold.SMS, Force: true}); err != nil {
		t.Fatal(err)
	}
	apiCode := w.lastCode()
	if err := w.steps.Send(ctx, v, twofold.FactorSMS, ""); err != nil {
		t.Fatal(err)
	}
	stepCode := w.lastCode()
	v = w.open(b)
	if _, err := w.steps.Check(ctx, v, apiCode); twofold.ErrorCode(err) != twofold.CodeTokenInvalid {
		t.Fatalf("the API's code in the step: %v, want 60020", err)
	}
	// Nor does another session's code.
	_, v2 := w.begin(c, u.Email)
	if _, err := w.steps.Check(ctx, v2, stepCode); err == nil {
		t.Fatal("another session's code passed")
	}
	f, err := w.steps.Check(ctx, v, stepCode)
	if err != nil || f != twofold.FactorSMS {
		t.Fatalf("Check = %s, %v; want sms", f, err)
	}
	if _, err := w.steps.Check(ctx, w.open(b), stepCode); !errors.Is(err, hostedstep.ErrFinished) {
		t.Fatalf("checking again: %v", err)
	}
}

// Starting steps does not push-bomb a user: pushes to one user are limited across sessions,
// and one client's sends (pushes and codes) are limited across its users.
func TestPushesAndSendsAreLimited(t *testing.T) {
	w := newWorld(t, hostedstep.Config{UserPushes: twofold.Limit{N: 3, Window: time.Hour}, ClientSends: twofold.Limit{N: 5, Window: time.Hour}})
	ctx := t.Context()
	ana, bo := w.user("ana@example.com", "2015550100"), w.user("bo@example.com", "2015550101")
	w.device(ana)
	c := w.client(twofold.MatchEmail)
	for i := range 4 {
		_, v := w.begin(c, ana.Email)
		_, err := w.steps.StartPush(ctx, v, "")
		if i < 3 && err != nil {
			t.Fatalf("push %d: %v", i+1, err)
		}
		if i == 3 && twofold.ErrorCode(err) != twofold.CodeRateLimited {
			t.Fatalf("the fourth push to one user within the window: %v, want 60003", err)
		}
	}
	// The client has sent 3; two codes to another user reach its limit of 5, the third is refused.
	for i := range 3 {
		_, v := w.begin(c, bo.Email)
		err := w.steps.Send(ctx, v, twofold.FactorEmail, "")
		if i < 2 && err != nil {
			t.Fatalf("send %d: %v", i+1, err)
		}
		if i == 2 && twofold.ErrorCode(err) != twofold.CodeRateLimited {
			t.Fatalf("a send past the client's limit: %v, want 60003", err)
		}
	}
}

func TestAuthenticatorCodePasses(t *testing.T) {
	w := newWorld(t, hostedstep.Config{})
	ctx := t.Context()
	u := w.user("ana@example.com", "2015550100")
	enr, err := w.verify.Enroll(ctx, w.app, u.ID, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	key, err := otp.ParseURI(enr.URI)
	if err != nil {
		t.Fatal(err)
	}
	// A client that does not allow authenticator codes does not take one, nor spends it.
	b1, v := w.begin(w.client(twofold.MatchEmail, twofold.FactorSMS), u.Email)
	if _, err := w.steps.Check(ctx, v, key.Code(w.clock.Now())); !errors.Is(err, hostedstep.ErrNotOffered) {
		t.Fatalf("a TOTP code where the client allows SMS only, nothing sent: %v", err)
	}
	if err := w.steps.Send(ctx, v, twofold.FactorSMS, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := w.steps.Check(ctx, w.open(b1), key.Code(w.clock.Now())); twofold.ErrorCode(err) != twofold.CodeTokenInvalid {
		t.Fatalf("a TOTP code where the client allows SMS only, a code sent: %v, want 60020", err)
	}
	b, v := w.begin(w.client(twofold.MatchEmail), u.Email)
	if v.Offer[0] != twofold.FactorTOTP {
		t.Fatalf("offer %v: a user without a device is offered the authenticator first", v.Offer)
	}
	if _, err := w.steps.Check(ctx, v, "000000"); twofold.ErrorCode(err) != twofold.CodeTokenInvalid {
		t.Fatalf("a wrong code: %v", err)
	}
	if f, err := w.steps.Check(ctx, w.open(b), key.Code(w.clock.Now())); err != nil || f != twofold.FactorTOTP {
		t.Fatalf("Check = %s, %v", f, err)
	}
	if w.open(b).Session.Status != twofold.StepPassed {
		t.Fatal("the step did not pass")
	}
}
