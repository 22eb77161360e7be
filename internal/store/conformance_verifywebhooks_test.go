package store

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/twofold-auth/twofold/internal/twofold"
)

// Verify webhooks (migration 00030), part of runConformance: found within their service and
// application only, and an event queued once per enabled webhook that wants it, in the
// callbacks outbox, where it is claimed beside OneTouch callbacks but not held back when those
// are disabled, and its failures leave the application's callbacks alone.
func testVerifyWebhooks(t *testing.T, open func(t *testing.T) *Store) {
	mk := func(tb testing.TB, s *Store, svc twofold.VerifyService, name, status string, events ...string) twofold.VerifyWebhook {
		tb.Helper()
		w := twofold.VerifyWebhook{PublicID: fmt.Sprintf("%032x", fmt.Sprint(svc.ID, name)), AppID: svc.AppID, ServiceID: svc.ID,
			Name: name, URL: "https://hooks.example.com/" + name, EventTypes: events, Status: status, Version: "v2", CreatedAt: t0, UpdatedAt: t0}
		must(tb, s.CreateVerifyWebhook(tb.Context(), &w))
		return w
	}
	t.Run("CRUD", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		a, b := mkApp(t, s, "a"), mkApp(t, s, "b")
		svc, other, theirs := mkVerifyService(t, s, a.ID, "svc"), mkVerifyService(t, s, a.ID, "other"), mkVerifyService(t, s, b.ID, "theirs")
		var made []twofold.VerifyWebhook
		for i := range 3 {
			made = append(made, mk(t, s, svc, fmt.Sprint("hook", i), "enabled", "factor.created", "challenge.denied"))
		}
		hers := mk(t, s, theirs, "hers", "enabled", "*")
		same(t, "get", made[1], noErr(s.GetVerifyWebhook(ctx, a.ID, svc.ID, made[1].PublicID))(t))
		same(t, "by id", made[1], noErr(s.VerifyWebhookByID(ctx, made[1].ID))(t))
		wantErr(t, "in another service", errOf(s.GetVerifyWebhook(ctx, a.ID, other.ID, made[1].PublicID)), twofold.ErrNotFound)
		wantErr(t, "another application's", errOf(s.GetVerifyWebhook(ctx, a.ID, theirs.ID, hers.PublicID)), twofold.ErrNotFound)
		dup := made[0]
		wantErr(t, "a public id taken", s.CreateVerifyWebhook(ctx, &dup), twofold.ErrConflict)

		same(t, "first page", made[:2], noErr(s.ListVerifyWebhooks(ctx, a.ID, svc.ID, 0, 0, 2))(t))
		same(t, "after the second", made[2:], noErr(s.ListVerifyWebhooks(ctx, a.ID, svc.ID, made[1].ID, 0, 2))(t))
		same(t, "by offset", made[1:2], noErr(s.ListVerifyWebhooks(ctx, a.ID, svc.ID, 0, 1, 1))(t))

		up := made[0]
		up.Name, up.URL, up.EventTypes, up.Status, up.Version, up.UpdatedAt = "renamed", "https://x.example/", []string{"*"}, "disabled", "v1", t0.Add(time.Hour)
		must(t, s.UpdateVerifyWebhook(ctx, up))
		same(t, "updated", up, noErr(s.GetVerifyWebhook(ctx, a.ID, svc.ID, up.PublicID))(t))
		stolen := hers
		stolen.AppID = a.ID
		wantErr(t, "update another application's", s.UpdateVerifyWebhook(ctx, stolen), twofold.ErrNotFound)
		wantErr(t, "delete another application's", s.DeleteVerifyWebhook(ctx, a.ID, theirs.ID, hers.PublicID), twofold.ErrNotFound)
		must(t, s.DeleteVerifyWebhook(ctx, a.ID, svc.ID, made[2].PublicID))
		wantErr(t, "deleted", errOf(s.GetVerifyWebhook(ctx, a.ID, svc.ID, made[2].PublicID)), twofold.ErrNotFound)

		must(t, s.DeleteVerifyService(ctx, a.ID, svc.PublicID))
		wantErr(t, "the webhook of a deleted service", errOf(s.VerifyWebhookByID(ctx, made[1].ID)), twofold.ErrNotFound)
		must(t, s.DeleteApp(ctx, b.ID))
		wantErr(t, "the webhook of a deleted application", errOf(s.VerifyWebhookByID(ctx, hers.ID)), twofold.ErrNotFound)
	})
	t.Run("QueueAndClaim", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		a := mkApp(t, s, "a")
		svc := mkVerifyService(t, s, a.ID, "svc")
		all := mk(t, s, svc, "all", "enabled", "*")
		created := mk(t, s, svc, "created", "enabled", "factor.created")
		mk(t, s, svc, "off", "disabled", "*")
		mk(t, s, svc, "deleted", "enabled", "factor.deleted")
		payload := []byte(`{"type":"factor.created"}`)
		same(t, "queued", 2, noErr(s.QueueVerifyEvent(ctx, a.ID, svc.ID, "factor.created", "ev1", payload, t0))(t))
		same(t, "queued for another app's id", 0, noErr(s.QueueVerifyEvent(ctx, a.ID+1, svc.ID, "factor.created", "ev2", payload, t0))(t))

		// The application's OneTouch callbacks are disabled: webhook deliveries go on.
		_, err := s.w.ExecContext(ctx, `UPDATE apps SET callback_disabled_at = 1 WHERE id = $1`, a.ID)
		must(t, err)
		got := noErr(s.ClaimDueCallbacks(ctx, t0, t0.Add(time.Minute), 10))(t)
		if len(got) != 2 || got[0].WebhookID != all.ID || got[1].WebhookID != created.ID || got[0].RequestUUID != "ev1" ||
			string(got[0].Payload) != string(payload) {
			t.Fatalf("claimed %+v", got)
		}
		must(t, s.WebhookDeliveryFailed(ctx, got[0], 500, "HTTP 500", t0.Add(time.Hour)))
		must(t, s.CallbackDelivered(ctx, got[1], 204, t0))
		app := noErr(s.GetApp(ctx, a.ID))(t)
		if app.CallbackFailures != 0 {
			t.Errorf("a webhook failure counted against OneTouch callbacks: %d", app.CallbackFailures)
		}
		if again := noErr(s.ClaimDueCallbacks(ctx, t0.Add(time.Hour), t0.Add(2*time.Hour), 10))(t); len(again) != 1 ||
			again[0].ID != got[0].ID || again[0].Attempts != 1 || again[0].LastStatus != 500 {
			t.Errorf("after a failure: %+v", again)
		}
	})
	t.Run("EventsWithTheirChange", func(t *testing.T) {
		s, ctx := open(t), t.Context()
		a := mkApp(t, s, "a")
		svc := mkVerifyService(t, s, a.ID, "svc")
		mk(t, s, svc, "all", "enabled", "*")
		u := mkUser(t, s, a.ID, 1, "5550000001")
		n := 0
		ev := func(event string) twofold.VerifyWebhookEvent {
			n++
			return twofold.VerifyWebhookEvent{AppID: a.ID, ServiceID: svc.ID, Event: event, EventID: fmt.Sprint("ev", n),
				Payload: []byte(`{"type":"` + event + `"}`), At: t0}
		}
		queued := func(want ...string) {
			t.Helper()
			var got []string
			for _, c := range recentCallbacks(t, s, a.ID) {
				got = append(got, c.RequestUUID)
			}
			slices.Sort(got)
			slices.Sort(want)
			same(t, "queued deliveries", want, got)
		}
		f := mkVerifyFactor(t, s, svc, u.ID, "phone")
		dup := f
		wantErr(t, "a factor refused", s.InsertVerifyFactor(ctx, &dup, ev(twofold.VerifyEventFactorCreated)), twofold.ErrConflict)
		queued() // ev1 went with the refused factor
		f.Status = twofold.FactorVerified
		must(t, s.UpdateVerifyFactor(ctx, f, ev(twofold.VerifyEventFactorVerified)))
		gone := f
		gone.ID = -1
		wantErr(t, "a factor gone", s.UpdateVerifyFactor(ctx, gone, ev(twofold.VerifyEventFactorVerified)), twofold.ErrNotFound)
		queued("ev2")
		c := mkVerifyChallenge(t, s, f, 1, t0.Add(time.Hour))
		same(t, "answered", true, noErr(s.AnswerVerifyChallenge(ctx, c.ID, twofold.ChallengeApproved, "none", t0, ev(twofold.VerifyEventChallengeApproved)))(t))
		same(t, "answered twice", false, noErr(s.AnswerVerifyChallenge(ctx, c.ID, twofold.ChallengeDenied, "none", t0, ev(twofold.VerifyEventChallengeDenied)))(t))
		queued("ev2", "ev4")
		wantErr(t, "delete another's factor", s.DeleteVerifyFactor(ctx, svc.ID, u.ID+1, f.PublicID, ev(twofold.VerifyEventFactorDeleted)), twofold.ErrNotFound)
		must(t, s.DeleteVerifyFactor(ctx, svc.ID, u.ID, f.PublicID, ev(twofold.VerifyEventFactorDeleted)))
		queued("ev2", "ev4", "ev7")
		mkVerifyFactor(t, s, svc, u.ID, "tablet")
		same(t, "entity's factors", int64(1), noErr(s.DeleteVerifyEntity(ctx, svc.ID, u.ID, ev(twofold.VerifyEventFactorDeleted)))(t))
		queued("ev2", "ev4", "ev7", "ev8")
	})
}
