package callback

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/twofold-auth/twofold/internal/apps"
	"github.com/twofold-auth/twofold/internal/egress"
	"github.com/twofold-auth/twofold/internal/twofold"
)

func TestDescribe(t *testing.T) {
	now := time.Date(2026, 5, 6, 7, 8, 9, 0, time.UTC)
	live := twofold.App{Settings: twofold.Settings{CallbackURL: "https://shop.example/cb"}}
	paused := live
	paused.CallbackDisabledAt = now.Add(-time.Hour)
	for _, tc := range []struct {
		name string
		c    twofold.Callback
		app  twofold.App
		want Delivery
	}{
		{"delivered at once", twofold.Callback{Status: "delivered", Attempts: 1}, live, Delivery{State: Delivered}},
		{"delivered after failures", twofold.Callback{Status: "delivered", Attempts: 3}, paused, Delivery{State: Delivered, Failures: 2}},
		{"dropped", twofold.Callback{Status: "dropped", Attempts: 1}, live, Delivery{State: Dropped, Failures: 1}},
		{"queued", twofold.Callback{Status: "pending", NextAttemptAt: now.Add(-time.Second)}, live, Delivery{State: Queued}},
		{"retrying later", twofold.Callback{Status: "pending", Attempts: 2, NextAttemptAt: now.Add(time.Minute)}, live,
			Delivery{State: Retrying, Next: now.Add(time.Minute), Failures: 2}},
		{"retry due", twofold.Callback{Status: "pending", Attempts: 2, NextAttemptAt: now.Add(-time.Minute)}, live,
			Delivery{State: Retrying, Failures: 2}},
		// The "next try" of a callback held while paused is in the past: it is not a retry.
		{"held after failing", twofold.Callback{Status: "pending", Attempts: 3, NextAttemptAt: now.Add(-time.Hour)}, paused,
			Delivery{State: Held, Failures: 3}},
		{"held untried", twofold.Callback{Status: "pending", NextAttemptAt: now.Add(-time.Hour)}, paused, Delivery{State: Held}},
		{"no URL", twofold.Callback{Status: "pending"}, twofold.App{}, Delivery{State: NoURL}},
	} {
		if got := Describe(tc.c, tc.app, now); got != tc.want {
			t.Errorf("%s: Describe = %+v, want %+v", tc.name, got, tc.want)
		}
	}
}

// TestDescribeFollowsDelivery describes a callback as the real dispatcher takes it through
// failures, a pause, and delivery after callbacks are re-enabled.
func TestDescribeFollowsDelivery(t *testing.T) {
	f := newFixture(t)
	d, _ := f.dispatcher(f.st, Config{Workers: 1, Backoff: time.Minute, Threshold: 2})
	run(t, d)
	var uuid string
	describe := func() Delivery {
		t.Helper()
		app, err := f.st.GetApp(t.Context(), f.app.ID)
		if err != nil {
			t.Fatal(err)
		}
		return Describe(f.callback(uuid), app, f.clock.Now())
	}
	f.rc.answer(func(string) int { return http.StatusBadGateway })
	uuid = f.queue()
	if got := describe(); got.State != Queued {
		t.Fatalf("before the first try: %+v", got)
	}
	d.Notify()
	next(t, f.attempts, "first attempt")
	if got := describe(); got.State != Retrying || !got.Next.Equal(f.clock.Now().Add(time.Minute)) || got.Failures != 1 {
		t.Fatalf("after one failure: %+v, want retrying in a minute", got)
	}
	f.clock.Advance(time.Minute)
	d.Notify()
	if a := next(t, f.attempts, "second attempt"); !a.Disabled {
		t.Fatalf("second failure did not pause callbacks: %+v", a)
	}
	f.clock.Advance(time.Hour) // the stored next try is long past; it is not a retry
	if got := describe(); got.State != Held || got.Failures != 2 {
		t.Fatalf("while paused: %+v, want held", got)
	}
	f.rc.answer(func(string) int { return http.StatusOK })
	f.update(apps.Update{EnableCallback: true})
	d.Notify()
	if a := next(t, f.attempts, "attempt after re-enabling"); !a.OK {
		t.Fatalf("after re-enabling: %+v", a)
	}
	if got := describe(); got.State != Delivered || got.Failures != 2 {
		t.Fatalf("after delivery: %+v", got)
	}
}

// TestTestCallback sends test callbacks: signed as deliveries are, through the same egress
// rules, recording nothing and counting nothing against the application.
func TestTestCallback(t *testing.T) {
	t.Run("delivered", func(t *testing.T) {
		f := newFixture(t)
		d, _ := f.dispatcher(f.st, Config{Workers: 1})
		var body map[string]any
		f.rc.inspect = func(b map[string]any) { body = b }
		r, err := d.Test(t.Context(), f.app)
		if err != nil || !r.OK() || r.Status != http.StatusOK || r.Method != "POST" || r.URL != f.app.CallbackURL {
			t.Fatalf("Test = %+v, %v", r, err)
		}
		uuid := next(t, f.rc.arrived, "test callback") // the receiver checked its signature
		if body["status"] != TestStatus || body["uuid"] != uuid || len(uuid) != 36 || body["callback_action"] != "approval_request_status" {
			t.Errorf("test callback body: %v", body)
		}
		if cbs, _ := f.st.RecentCallbacks(t.Context(), f.app.ID, 10); len(cbs) != 0 {
			t.Errorf("a test callback was stored: %+v", cbs)
		}
	})
	t.Run("failing endpoint of paused callbacks", func(t *testing.T) {
		f := newFixture(t)
		d, _ := f.dispatcher(f.st, Config{Workers: 1, Threshold: 1})
		run(t, d)
		f.rc.answer(func(string) int { return http.StatusInternalServerError })
		f.queue()
		d.Notify()
		if a := next(t, f.attempts, "attempt"); !a.Disabled {
			t.Fatalf("not paused: %+v", a)
		}
		next(t, f.rc.arrived, "the failed delivery")
		before := f.health()
		app, _ := f.st.GetApp(t.Context(), f.app.ID)
		r, err := d.Test(t.Context(), app)
		if err != nil || r.OK() || r.Status != http.StatusInternalServerError || r.Error != "HTTP 500" {
			t.Fatalf("Test = %+v, %v; want HTTP 500", r, err)
		}
		next(t, f.rc.arrived, "test callback")
		if after := f.health(); after != before {
			t.Errorf("a failed test changed the application's callbacks: %+v, was %+v", after, before)
		}
	})
	t.Run("refused by the egress rules", func(t *testing.T) {
		f := newFixture(t)
		d, _ := f.dispatcher(f.st, Config{Workers: 1, Egress: egress.New(egress.Allowlist{}, nil)})
		r, err := d.Test(t.Context(), f.app)
		if err != nil || r.OK() || r.Status != 0 || !strings.Contains(r.Error, "refused") {
			t.Fatalf("Test to loopback, not allowed = %+v, %v; want refused", r, err)
		}
		if n := len(f.rc.arrived); n != 0 {
			t.Errorf("the endpoint was called %d times", n)
		}
	})
	t.Run("no callback URL", func(t *testing.T) {
		f := newFixture(t)
		empty := ""
		f.update(apps.Update{CallbackURL: &empty})
		d, _ := f.dispatcher(f.st, Config{Workers: 1})
		if _, err := d.Test(t.Context(), f.app); err != ErrNoCallbackURL {
			t.Fatalf("Test without a URL: %v", err)
		}
	})
}
