package passwordless_test

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twofold-auth/twofold/internal/onetouch"
	"github.com/twofold-auth/twofold/internal/passwordless"
	"github.com/twofold-auth/twofold/internal/store"
	"github.com/twofold-auth/twofold/internal/twofold"
)

// The attacker's tests: anyone can type a username, as often as they like, from wherever.

// Push bombing one username: five requests in a window, then 429 (60003), for a user's name
// (however it is spelled) and for a name of nobody alike; the user's phone gets five pushes at
// most; the first refusal is in the audit trail, without the name.
func TestPushBombingOneUsername(t *testing.T) {
	f := newFixture(t, passwordless.DefaultConfig())
	ctx := t.Context()
	for _, name := range []string{"ana@example.com", "nobody@example.com"} {
		spellings := []string{name, "  " + strings.ToUpper(name), name + " "}
		for i := range 5 {
			f.begin(spellings[i%len(spellings)], fmt.Sprintf("192.0.2.%d", i+1)) // other addresses: the name's limit
		}
		for i, spelled := range spellings {
			_, err := f.svc.Begin(ctx, f.app, passwordless.Start{Email: spelled, UserIP: fmt.Sprintf("198.51.100.%d", i+1)})
			wantCode(t, fmt.Sprintf("request %d for %q", 6+i, spelled), err, twofold.CodeRateLimited)
			var e *twofold.Error
			if !asError(err, &e) || e.RetryAfter <= 0 || e.RetryAfter > 15*time.Minute {
				t.Fatalf("refusal's Retry-After: %+v", e)
			}
		}
	}
	if n := f.pushes(); n != 5 {
		t.Fatalf("ana's phone got %d pushes, want 5", n)
	}
	hits := f.audit.of(twofold.AuditLimitHit)
	if len(hits) != 2 {
		t.Fatalf("limit.hit recorded %d times, want once per name: %+v", len(hits), hits)
	}
	for _, e := range hits {
		if e.Details["limit"] != "passwordless_username" || e.UserID != 0 || e.AppID != f.app.ID || strings.Contains(fmt.Sprint(e.Details), "example.com") {
			t.Fatalf("limit.hit: %+v", e)
		}
	}
	// Another application's users are counted apart, and the window slides on.
	if _, err := f.svc.Begin(ctx, f.other, passwordless.Start{Email: "ana@example.com", UserIP: "192.0.2.1"}); err != nil {
		t.Fatalf("another application: %v", err)
	}
	f.clock.Advance(15 * time.Minute)
	f.begin("ana@example.com", "192.0.2.1")
}

// Many usernames from one address: twenty in a window, then 429 for any name, known or not;
// another address is not held back, and an IPv6 client's whole /64 is one address.
func TestManyUsernamesFromOneAddress(t *testing.T) {
	f := newFixture(t, passwordless.DefaultConfig())
	ctx := t.Context()
	for i := range 20 {
		f.begin(fmt.Sprintf("user%d@example.com", i), "203.0.113.9")
	}
	for _, name := range []string{"ana@example.com", "someone-else@example.com"} {
		_, err := f.svc.Begin(ctx, f.app, passwordless.Start{Email: name, UserIP: "203.0.113.9"})
		wantCode(t, "the 21st request from one address", err, twofold.CodeRateLimited)
	}
	f.begin("ana@example.com", "203.0.113.10")
	if hits := f.audit.of(twofold.AuditLimitHit); len(hits) != 1 || hits[0].Details["limit"] != "passwordless_address" ||
		strings.Contains(fmt.Sprint(hits[0].Details), "203.0.113") {
		t.Fatalf("limit.hit: %+v", hits)
	}

	for i := range 20 {
		f.begin(fmt.Sprintf("v6-%d@example.com", i), fmt.Sprintf("2001:db8:1:2::%x", i+1))
	}
	_, err := f.svc.Begin(ctx, f.app, passwordless.Start{Email: "v6-last@example.com", UserIP: "2001:db8:1:2:ffff:ffff:ffff:ffff"})
	wantCode(t, "another address of the same /64", err, twofold.CodeRateLimited)
	f.begin("v6-other@example.com", "2001:db8:1:3::1")
}

// Parallel requests for one name (on both engines) get no more than the limit: five pass,
// and the user's phone gets five pushes at most.
func TestConcurrentBeginsDoNotPassTheLimit(t *testing.T) {
	engines(t, func(t *testing.T, open func(*testing.T) *store.Store) {
		f := newFixtureOn(t, open(t), passwordless.DefaultConfig(), onetouch.DefaultConfig())
		var ok, limited atomic.Int32
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range 32 {
			wg.Go(func() {
				<-start
				_, err := f.svc.Begin(t.Context(), f.app, passwordless.Start{Email: "ana@example.com", UserIP: fmt.Sprintf("192.0.2.%d", i+1)})
				switch twofold.ErrorCode(err) {
				case twofold.CodeRateLimited:
					limited.Add(1)
				default:
					if err != nil {
						t.Error(err)
					}
					ok.Add(1)
				}
			})
		}
		close(start)
		wg.Wait()
		if ok.Load() != 5 || limited.Load() != 27 || f.pushes() > 5 {
			t.Fatalf("%d passed, %d limited, %d pushes; want 5, 27, at most 5", ok.Load(), limited.Load(), f.pushes())
		}
	})
}

// The limits are counted before the name is looked up: a refused request never reaches the
// lookup, so its answer and its time cannot depend on the name.
func TestLimitsAreCountedBeforeTheLookup(t *testing.T) {
	f := newFixture(t, passwordless.DefaultConfig())
	f.begin("ana@example.com", "192.0.2.1")
	if got := f.store.take(); len(got) < 3 || !slices.Equal(got[:3], []string{"Hit", "Hit", "PasswordlessSubject"}) {
		t.Fatalf("store calls of a request: %v, want the two limits first, then the lookup", got)
	}
	for range 4 {
		f.begin("ana@example.com", "192.0.2.1")
	}
	f.store.take()
	for _, name := range []string{"ana@example.com", "nobody@example.com"} {
		for range 5 {
			f.svc.Begin(t.Context(), f.app, passwordless.Start{Email: name, UserIP: "192.0.2.1"})
		}
		f.store.take()
		_, err := f.svc.Begin(t.Context(), f.app, passwordless.Start{Email: name, UserIP: "192.0.2.1"})
		wantCode(t, "over the limit", err, twofold.CodeRateLimited)
		if got := f.store.take(); slices.Contains(got, "PasswordlessSubject") || slices.Contains(got, "CreatePasswordless") {
			t.Fatalf("a refused request for %q made the store calls %v", name, got)
		}
	}
}

// One user named three ways (email, customer's id, Authy id) is three names to the limit per
// name, but one user: past PerUser requests sent to them, the rest are phantoms, answered alike.
func TestOneUserNamedManyWaysIsBoundedToo(t *testing.T) {
	f := newFixture(t, passwordless.DefaultConfig())
	ctx := t.Context()
	starts := []passwordless.Start{{CustomUserID: "customer-7"}, {AuthyID: f.cy.ID}}
	for i := range 10 {
		st := starts[i%2]
		st.UserIP = fmt.Sprintf("192.0.2.%d", i+1)
		s, err := f.svc.Begin(ctx, f.app, st)
		if err != nil || s.Status != twofold.Pending || len(s.Number) != 2 {
			t.Fatalf("request %d: %+v, %v", i+1, s, err)
		}
	}
	if n := f.pushes(); n != 5 {
		t.Fatalf("cy's phone got %d pushes, want 5 (the per-user bound)", n)
	}
	if got := outcomes(f.audit); got["sent"] != 5 || got["user_limit"] != 5 {
		t.Fatalf("outcomes %v", got)
	}
}

// outcomes counts the passwordless.started events by outcome.
func outcomes(a *trail) map[string]int {
	out := map[string]int{}
	for _, e := range a.of(twofold.AuditPasswordlessStarted) {
		out[e.Details["outcome"]]++
	}
	return out
}
