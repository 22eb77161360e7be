package callback

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twofold-auth/twofold/internal/apps"
	"github.com/twofold-auth/twofold/internal/twofold"
)

// TestWebhookDeliveries: a Verify webhook's delivery is retried after a failure without
// counting against (or pausing) the application's OneTouch callbacks, delivered once its
// endpoint answers, dropped when its webhook is deleted, and given up after WebhookMaxAttempts.
func TestWebhookDeliveries(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	var status atomic.Int32
	status.Store(http.StatusInternalServerError)
	var got atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got.Add(1)
		w.WriteHeader(int(status.Load()))
	}))
	t.Cleanup(srv.Close)
	d := New(f.st, f.owner, f.apps.Reveal, Config{Workers: 1, Backoff: time.Second, MaxBackoff: time.Second, Threshold: 2,
		Egress: receiverAllowed(t)}, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	d.now = f.clock.Now
	d.SetWebhooks(Webhooks{Store: f.st, Token: f.apps.RevealTwilioToken})

	if _, _, err := f.apps.CreateTwilioAccount(ctx, f.app.ID); err != nil {
		t.Fatal(err)
	}
	svc, err := f.apps.CreateVerifyService(ctx, f.app, apps.NewVerifyService("Shop"))
	if err != nil {
		t.Fatal(err)
	}
	hook := apps.NewVerifyWebhook()
	hook.Name, hook.URL, hook.EventTypes = "h", srv.URL+"/hook", []string{"*"}
	if hook, err = f.apps.CreateVerifyWebhook(ctx, f.app, svc, hook); err != nil {
		t.Fatal(err)
	}
	emit := func() {
		t.Helper()
		if n, err := f.apps.Emit(ctx, f.app.ID, svc.PublicID, twofold.VerifyEventFactorCreated, nil); n != 1 || err != nil {
			t.Fatalf("Emit: %d %v", n, err)
		}
	}
	// once claims what is due now, delivers it, and returns the attempt.
	once := func() Attempt {
		t.Helper()
		cs, err := d.claim(ctx, 1)
		if err != nil || len(cs) != 1 {
			t.Fatalf("claim: %v %v", cs, err)
		}
		var a Attempt
		d.onAttempt = func(x Attempt) { a = x }
		d.deliver(ctx, cs[0])
		f.clock.Advance(time.Second)
		return a
	}

	emit()
	for i := range 3 { // past the callbacks' threshold of 2
		if a := once(); a.OK || a.Dropped || a.Status != 500 || a.Disabled {
			t.Fatalf("attempt %d: %+v", i, a)
		}
	}
	if app, err := f.st.GetApp(ctx, f.app.ID); err != nil || app.CallbackFailures != 0 || !app.CallbackDisabledAt.IsZero() {
		t.Fatalf("the webhook's failures touched the OneTouch callbacks: %+v %v", app, err)
	}
	status.Store(http.StatusNoContent)
	if a := once(); !a.OK || a.Status != 204 || a.Callback.Attempts != 3 {
		t.Fatalf("the fourth attempt: %+v", a)
	}

	emit()
	if err := f.apps.DeleteVerifyWebhook(ctx, f.app, svc, hook.PublicID); err != nil {
		t.Fatal(err)
	}
	before := got.Load()
	if a := once(); !a.Dropped || got.Load() != before {
		t.Fatalf("a deleted webhook's delivery: %+v", a)
	}

	hook.Name = "again"
	if hook, err = f.apps.CreateVerifyWebhook(ctx, f.app, svc, hook); err != nil {
		t.Fatal(err)
	}
	status.Store(http.StatusBadGateway)
	emit()
	for i := range WebhookMaxAttempts {
		a := once()
		if last := i == WebhookMaxAttempts-1; a.OK || a.Dropped != last {
			t.Fatalf("attempt %d: %+v", i+1, a)
		}
	}
	if cs, err := d.claim(ctx, 1); err != nil || len(cs) != 0 {
		t.Fatalf("after giving up: %v %v", cs, err)
	}
}

// TestTwilioSignature: Twilio's scheme, the URL then each parameter's name and value by name.
func TestTwilioSignature(t *testing.T) {
	params := map[string]string{"b": "2", "a": "1", "c": "é & ="}
	sig := TwilioSignature("token", "https://example.com/hook?x=1", params)
	if sig != TwilioSignature("token", "https://example.com/hook?x=1", map[string]string{"c": "é & =", "a": "1", "b": "2"}) {
		t.Error("the signature depends on the map's order")
	}
	for _, other := range []string{
		TwilioSignature("other", "https://example.com/hook?x=1", params),
		TwilioSignature("token", "https://example.com/hook?x=2", params),
		TwilioSignature("token", "https://example.com/hook?x=1", map[string]string{"b": "2", "a": "1", "c": "é & "}),
	} {
		if other == sig {
			t.Error("a different token, URL or parameter gives the same signature")
		}
	}
}
