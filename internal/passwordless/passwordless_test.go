package passwordless_test

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twofold-auth/twofold/internal/onetouch"
	"github.com/twofold-auth/twofold/internal/passwordless"
	"github.com/twofold-auth/twofold/internal/twofold"
)

var uuidPattern = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

// A user with a device, a name of nobody, a user without a device and a blocked user get the
// same answer, made with the same store work, and the same statuses over time; only the first
// reaches a phone.
func TestAnswersDoNotTellWhoIsAUser(t *testing.T) {
	f := newFixture(t, passwordless.DefaultConfig())
	ctx := t.Context()
	// cy blocks passwordless requests: they deny one as not requested.
	first, err := f.svc.Begin(ctx, f.app, passwordless.Start{CustomUserID: "customer-7", UserIP: "192.0.2.200"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.answer(f.cyPhone, first.UUID, twofold.Denied, "", onetouch.NotRequestedReason); err != nil {
		t.Fatal(err)
	}
	pushesBefore := f.pushes()
	f.store.take()

	cases := []struct {
		name  string
		start passwordless.Start
		sent  bool
	}{
		{"a user with a device", passwordless.Start{Email: "ana@example.com"}, true},
		{"the same user by Authy id", passwordless.Start{AuthyID: f.ana.ID}, true},
		{"a name of nobody", passwordless.Start{Email: "nobody@example.com"}, false},
		{"an Authy id of nobody", passwordless.Start{AuthyID: 987654}, false},
		{"a user without a device", passwordless.Start{Email: "bo@example.com"}, false},
		{"a blocked user", passwordless.Start{CustomUserID: "customer-7"}, false},
		{"another application's user", passwordless.Start{Email: "ana@example.com", UserIP: "other"}, false},
	}
	var work []string
	var begun []passwordless.Signin
	now := f.clock.Now()
	for i, tc := range cases {
		app := f.app
		if tc.start.UserIP == "other" {
			app = f.other
		}
		tc.start.UserIP = fmt.Sprintf("192.0.2.%d", i+1)
		pushes := f.pushes()
		s, err := f.svc.Begin(ctx, app, tc.start)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		calls := f.store.take()
		if work == nil {
			work = calls
		} else if !slices.Equal(calls, work) {
			t.Errorf("%s: store calls %v, want %v as for %s", tc.name, calls, work, cases[0].name)
		}
		n, _ := strconv.Atoi(s.Number)
		if !uuidPattern.MatchString(s.UUID) || n < 10 || n > 99 || !s.ExpiresAt.Equal(now.Add(2*time.Minute)) ||
			s.Status != twofold.Pending || s.AuthyID != 0 {
			t.Errorf("%s: answer %+v", tc.name, s)
		}
		if sent := f.pushes() > pushes; sent != tc.sent {
			t.Errorf("%s: pushed %v, want %v", tc.name, sent, tc.sent)
		}
		if tc.sent {
			r, err := f.ot.Get(ctx, app, s.UUID)
			if err != nil || r.Number != s.Number || r.Message != "Sign in to Shop?" || r.UserID != f.ana.ID {
				t.Errorf("%s: the approval request sent: %+v, %v", tc.name, r, err)
			}
		}
		begun = append(begun, s)
	}
	if got := f.pushes() - pushesBefore; got != 2 {
		t.Errorf("%d pushes, want 2", got)
	}
	if got := outcomes(f.audit); got["sent"] != 3 || got["unknown"] != 3 || got["no_device"] != 1 || got["blocked"] != 1 {
		t.Errorf("outcomes %v", got)
	}
	for _, e := range f.audit.of(twofold.AuditPasswordlessStarted) {
		if strings.Contains(fmt.Sprint(e.Details), "example.com") || strings.Contains(fmt.Sprint(e.Details), "customer-7") {
			t.Errorf("the audit trail holds a name typed: %+v", e)
		}
	}

	// Over time: pending until the expiry, expired from then on, whoever was named.
	for _, step := range []struct {
		after time.Duration
		want  twofold.ApprovalStatus
	}{{0, twofold.Pending}, {119 * time.Second, twofold.Pending}, {time.Second, twofold.Expired}, {time.Hour, twofold.Expired}} {
		f.clock.Advance(step.after)
		for i, s := range begun {
			app := f.app
			if cases[i].name == "another application's user" {
				app = f.other
			}
			got, err := f.svc.Status(ctx, app, s.UUID)
			if err != nil || got.Status != step.want || got.AuthyID != 0 || got.UUID != s.UUID || got.Number != s.Number || !got.ExpiresAt.Equal(s.ExpiresAt) {
				t.Errorf("%s at +%s: %+v, %v; want %s", cases[i].name, f.clock.Now().Sub(now), got, err, step.want)
			}
		}
	}
}

// Approving with the number shown signs the user in; a wrong number leaves it pending once and
// denies it the second time; a denial and an expiry never sign anyone in.
func TestApproveDenyWrongNumberExpiry(t *testing.T) {
	f := newFixture(t, passwordless.DefaultConfig())
	ctx := t.Context()

	s := f.begin("ana@example.com", "192.0.2.1")
	if _, err := f.answer(f.anaPhone, s.UUID, twofold.Approved, s.Number, ""); err != nil {
		t.Fatal(err)
	}
	if got := f.status(s.UUID); got.Status != twofold.Approved || got.AuthyID != f.ana.ID {
		t.Fatalf("approved: %+v", got)
	}

	s = f.begin("ana@example.com", "192.0.2.1")
	wrong := fmt.Sprint(10 + (mustAtoi(t, s.Number)-10+1)%90)
	_, err := f.answer(f.anaPhone, s.UUID, twofold.Approved, wrong, "")
	wantCode(t, "a wrong number", err, twofold.CodeRequestInvalid)
	if got := f.status(s.UUID); got.Status != twofold.Pending || got.AuthyID != 0 {
		t.Fatalf("after one wrong number: %+v", got)
	}
	_, err = f.answer(f.anaPhone, s.UUID, twofold.Approved, wrong, "")
	wantCode(t, "a second wrong number", err, twofold.CodeRequestInvalid)
	if got := f.status(s.UUID); got.Status != twofold.Denied || got.AuthyID != 0 {
		t.Fatalf("after two wrong numbers: %+v", got)
	}
	_, err = f.answer(f.anaPhone, s.UUID, twofold.Approved, s.Number, "")
	wantCode(t, "the right number after the denial", err, twofold.CodeNotPending)

	s = f.begin("ana@example.com", "192.0.2.1")
	if _, err := f.answer(f.anaPhone, s.UUID, twofold.Denied, "", "wrong account"); err != nil {
		t.Fatal(err)
	}
	if got := f.status(s.UUID); got.Status != twofold.Denied || got.AuthyID != 0 {
		t.Fatalf("denied: %+v", got)
	}
	if until, err := f.svc.BlockedUntil(ctx, f.app, f.ana.ID); err != nil || !until.IsZero() {
		t.Fatalf("a denial for another reason blocks until %v (%v)", until, err)
	}

	s = f.begin("ana@example.com", "192.0.2.1")
	callbacks := f.callbacks
	f.clock.Advance(2 * time.Minute)
	if got := f.status(s.UUID); got.Status != twofold.Expired || got.AuthyID != 0 {
		t.Fatalf("expired: %+v", got)
	}
	if f.callbacks != callbacks+1 {
		t.Fatal("the expiry read through Status queued no callback (the application asked for expiries)")
	}
	_, err = f.answer(f.anaPhone, s.UUID, twofold.Approved, s.Number, "")
	wantCode(t, "an answer after the expiry", err, twofold.CodeNotPending)
}

// "I didn't request this" blocks the user's passwordless requests for BlockFor: the next ones
// are phantoms, answered as before. The block is read from the store: a new service (a
// restarted server) sees it. The callback carries the reason.
func TestNotRequestedBlocks(t *testing.T) {
	f := newFixture(t, passwordless.DefaultConfig())
	ctx := t.Context()
	s := f.begin("ana@example.com", "192.0.2.1")
	f.clock.Advance(10 * time.Second)
	deniedAt := f.clock.Now()
	if _, err := f.answer(f.anaPhone, s.UUID, twofold.Denied, "", onetouch.NotRequestedReason); err != nil {
		t.Fatal(err)
	}
	if got := f.status(s.UUID); got.Status != twofold.Denied {
		t.Fatalf("denied as not requested: %+v", got)
	}
	cbs, err := f.st.ListCallbacks(ctx, twofold.CallbackFilter{AppID: f.app.ID})
	if err != nil || len(cbs) != 1 || !strings.Contains(string(cbs[0].Payload), `"reason":"not requested"`) {
		t.Fatalf("callbacks %v, %v: want one carrying the reason", cbs, err)
	}

	restarted := passwordless.New(f.st, f.ot, passwordless.DefaultConfig(), f.clock.Now)
	for _, svc := range []*passwordless.Service{f.svc, restarted} {
		until, err := svc.BlockedUntil(ctx, f.app, f.ana.ID)
		if err != nil || !until.Equal(deniedAt.Add(time.Hour)) {
			t.Fatalf("BlockedUntil = %v, %v; want %v", until, err, deniedAt.Add(time.Hour))
		}
	}
	if until, err := f.svc.BlockedUntil(ctx, f.app, f.bo.ID); err != nil || !until.IsZero() {
		t.Fatalf("another user is blocked until %v (%v)", until, err)
	}

	pushes := f.pushes()
	blocked := f.begin("ana@example.com", "192.0.2.1")
	if f.pushes() != pushes || blocked.Status != twofold.Pending || len(blocked.Number) != 2 {
		t.Fatalf("while blocked: %+v, %d pushes more", blocked, f.pushes()-pushes)
	}
	_, err = f.ot.Get(ctx, f.app, blocked.UUID)
	wantCode(t, "the blocked request's approval request", err, twofold.CodeRequestNotFound)
	if _, err := restarted.Begin(ctx, f.app, passwordless.Start{AuthyID: f.ana.ID, UserIP: "192.0.2.2"}); err != nil || f.pushes() != pushes {
		t.Fatalf("a restarted service sent a push to a blocked user (%v)", err)
	}

	f.clock.Advance(time.Hour)
	if until, _ := f.svc.BlockedUntil(ctx, f.app, f.ana.ID); !until.IsZero() {
		t.Fatalf("still blocked after an hour: until %v", until)
	}
	f.begin("ana@example.com", "192.0.2.1")
	if f.pushes() != pushes+1 {
		t.Fatal("no push once the block ended")
	}
}

// Every malformed request is 60004 and counts nothing against the limits.
func TestBadInputIsRefusedAndCountsNothing(t *testing.T) {
	f := newFixture(t, passwordless.DefaultConfig())
	ctx := t.Context()
	ttl := func(n int64) *int64 { return &n }
	const ip = "192.0.2.1"
	for _, tc := range []struct {
		start passwordless.Start
		param string
	}{
		{passwordless.Start{UserIP: ip}, "email"},
		{passwordless.Start{Email: "  ", UserIP: ip}, "email"},
		{passwordless.Start{Email: "ana@example.com", AuthyID: f.ana.ID, UserIP: ip}, "email"},
		{passwordless.Start{Email: "ana@example.com", CustomUserID: "customer-7", UserIP: ip}, "email"},
		{passwordless.Start{AuthyID: -1, UserIP: ip}, "authy_id"},
		{passwordless.Start{Email: strings.Repeat("a", 250) + "@example.com", UserIP: ip}, "email"},
		{passwordless.Start{CustomUserID: strings.Repeat("c", 256), UserIP: ip}, "custom_user_id"},
		{passwordless.Start{Email: "ana@example.com"}, "user_ip"},
		{passwordless.Start{Email: "ana@example.com", UserIP: "not an address"}, "user_ip"},
		{passwordless.Start{Email: "ana@example.com", UserIP: "192.0.2.1:443"}, "user_ip"},
		{passwordless.Start{Email: "ana@example.com", UserIP: "999.0.2.1"}, "user_ip"},
		{passwordless.Start{Email: "ana@example.com", UserIP: ip, SecondsToExpire: ttl(0)}, "seconds_to_expire"},
		{passwordless.Start{Email: "ana@example.com", UserIP: ip, SecondsToExpire: ttl(-5)}, "seconds_to_expire"},
		{passwordless.Start{Email: "ana@example.com", UserIP: ip, SecondsToExpire: ttl(601)}, "seconds_to_expire"},
		{passwordless.Start{Email: "ana@example.com", UserIP: ip, Message: strings.Repeat("m", 201)}, "message"},
		{passwordless.Start{Email: "ana@example.com", UserIP: ip, Logos: []twofold.Logo{{Res: "huge", URL: "https://x.example/a.png"}}}, "logos"},
	} {
		for range 3 {
			_, err := f.svc.Begin(ctx, f.app, tc.start)
			var e *twofold.Error
			if !asError(err, &e) || e.Code != twofold.CodeInvalidParameter || !strings.Contains(e.Message, tc.param) {
				t.Fatalf("%+v: %v, want 60004 naming %s", tc.start, err, tc.param)
			}
		}
	}
	if got := f.store.take(); len(got) != 0 {
		t.Fatalf("malformed requests made the store calls %v", got)
	}
	for range 5 {
		f.begin("ana@example.com", ip)
	}
	// A valid one, at the bounds.
	if s, err := f.svc.Begin(ctx, f.app, passwordless.Start{Email: "edge@example.com", UserIP: "::ffff:192.0.2.7", SecondsToExpire: ttl(600), Message: "Log in?"}); err != nil ||
		!s.ExpiresAt.Equal(f.clock.Now().Add(10*time.Minute)) {
		t.Fatalf("at the bounds: %+v, %v", s, err)
	}
}

// An unknown uuid, and another application's, are not found (60049), as approval requests.
func TestStatusOfUnknownRequests(t *testing.T) {
	f := newFixture(t, passwordless.DefaultConfig())
	ctx := t.Context()
	theirs, err := f.svc.Begin(ctx, f.other, passwordless.Start{Email: "ana@example.com", UserIP: "192.0.2.1"})
	if err != nil {
		t.Fatal(err)
	}
	for _, uuid := range []string{theirs.UUID, "00000000-0000-4000-8000-000000000000", "", strings.Repeat("x", 5000)} {
		_, err := f.svc.Status(ctx, f.app, uuid)
		wantCode(t, "Status("+uuid[:min(len(uuid), 40)]+")", err, twofold.CodeRequestNotFound)
		if len(err.Error()) > 300 {
			t.Fatalf("the error echoes the uuid whole: %d bytes", len(err.Error()))
		}
	}
}

func mustAtoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}
