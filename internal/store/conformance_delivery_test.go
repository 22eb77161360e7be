package store

import (
	"testing"
	"time"

	"github.com/twofold-auth/twofold/internal/twofold"
)

// testDelivery covers what happens to a message after the outbox records it: the hand-over's
// outcome, the provider's later reports, refusals counted per day, the summary, and the sweep of
// hand-overs a crash interrupted.
func testDelivery(t *testing.T, s *Store) {
	ctx := t.Context()
	msg := func(app int64, sid string, ch twofold.Channel, provider, status string, at time.Time) twofold.Message {
		m := mkMessage(app, 1, sid, "+15550000000", at)
		m.Channel, m.Provider, m.Status = ch, provider, status
		must(t, s.InsertMessage(ctx, m))
		return *m
	}
	sent := msg(1, "SM1", twofold.SMS, "twilio", twofold.MessageSending, t0)
	sent.Status, sent.ProviderID, sent.Delivery, sent.Attempts, sent.UpdatedAt = twofold.MessageSent, "SMabc", "queued", 2, t0.Add(time.Second)
	must(t, s.UpdateMessage(ctx, sent))
	wantErr(t, "UpdateMessage of an unknown SID", s.UpdateMessage(ctx, twofold.Message{SID: "nope"}), twofold.ErrNotFound)

	must(t, s.SetDelivery(ctx, "twilio", "SMabc", "undelivered", "twilio error 30003", t0.Add(time.Minute)))
	wantErr(t, "SetDelivery of another provider's id", s.SetDelivery(ctx, "gateway", "SMabc", "delivered", "", t0), twofold.ErrNotFound)
	wantErr(t, "SetDelivery of an empty id", s.SetDelivery(ctx, "outbox", "", "delivered", "", t0), twofold.ErrNotFound)
	got, err := s.ListMessages(ctx, twofold.MessageFilter{})
	must(t, err)
	sent.Delivery, sent.Error, sent.UpdatedAt = "undelivered", "twilio error 30003", t0.Add(time.Minute)
	if d := diff([]twofold.Message{sent}, got); d != "" {
		t.Fatalf("message after UpdateMessage and SetDelivery:%s", d)
	}

	msg(1, "SM2", twofold.SMS, "twilio", twofold.MessageFailed, t0.Add(time.Second))
	msg(1, "SM3", twofold.SMS, "twilio", twofold.MessageFailed, t0.Add(2*time.Second))
	msg(2, "EM1", twofold.Email, "outbox", twofold.MessageRecorded, t0)
	msg(1, "SM0", twofold.SMS, "outbox", twofold.MessageRecorded, t0.Add(-48*time.Hour)) // before the window
	for _, r := range []struct {
		app    int64
		at     time.Time
		ch     twofold.Channel
		reason string
	}{
		{1, t0, twofold.SMS, twofold.RefusedUserLimit},
		{1, t0.Add(time.Hour), twofold.SMS, twofold.RefusedUserLimit},
		{1, t0, twofold.Call, twofold.RefusedCountry},
		{2, t0, twofold.SMS, twofold.RefusedUserLimit},
		{1, t0.Add(-48 * time.Hour), twofold.SMS, twofold.RefusedUserLimit}, // another day
	} {
		must(t, s.AddRefusal(ctx, r.app, r.at, r.ch, r.reason))
	}
	count := func(ch twofold.Channel, provider, status, reason string, n int64) twofold.DeliveryCount {
		return twofold.DeliveryCount{Channel: ch, Provider: provider, Status: status, Reason: reason, Count: n}
	}
	for _, tc := range []struct {
		name string
		app  int64
		want []twofold.DeliveryCount
	}{
		{"one application", 1, []twofold.DeliveryCount{
			count(twofold.SMS, "twilio", "failed", "", 2), count(twofold.SMS, "twilio", "sent", "", 1),
			count(twofold.Call, "", "refused", twofold.RefusedCountry, 1), count(twofold.SMS, "", "refused", twofold.RefusedUserLimit, 2),
		}},
		{"all applications", 0, []twofold.DeliveryCount{
			count(twofold.Email, "outbox", "recorded", "", 1),
			count(twofold.SMS, "twilio", "failed", "", 2), count(twofold.SMS, "twilio", "sent", "", 1),
			count(twofold.Call, "", "refused", twofold.RefusedCountry, 1), count(twofold.SMS, "", "refused", twofold.RefusedUserLimit, 3),
		}},
	} {
		got, err := s.DeliverySummary(ctx, tc.app, t0.Add(-time.Minute))
		must(t, err)
		if d := diff(tc.want, got); d != "" {
			t.Errorf("DeliverySummary %s:%s", tc.name, d)
		}
	}
	since, err := s.ListMessages(ctx, twofold.MessageFilter{Since: t0.Add(time.Second)})
	must(t, err)
	if len(since) != 2 || since[0].SID != "SM2" || since[1].SID != "SM3" {
		t.Errorf("ListMessages since t0+1s = %d messages, want SM2 and SM3", len(since))
	}

	// A hand-over a crash cut short: failed after an hour, not before.
	stuck := msg(3, "SM9", twofold.SMS, "twilio", twofold.MessageSending, t0)
	_, err = s.Sweep(ctx, t0.Add(59*time.Minute))
	must(t, err)
	if got := lastMessage(t, s, 3); got.Status != twofold.MessageSending {
		t.Errorf("after 59 minutes the hand-over is %q, want still sending", got.Status)
	}
	n, err := s.Sweep(ctx, t0.Add(time.Hour))
	must(t, err)
	got3 := lastMessage(t, s, 3)
	if n < 1 || got3.SID != stuck.SID || got3.Status != twofold.MessageFailed || got3.Error == "" {
		t.Errorf("after an hour: %d rows swept, message %+v; want it failed with a reason", n, got3)
	}
}

func lastMessage(tb testing.TB, s *Store, appID int64) twofold.Message {
	tb.Helper()
	msgs, err := s.ListMessages(tb.Context(), twofold.MessageFilter{AppID: appID, Limit: 1})
	must(tb, err)
	if len(msgs) != 1 {
		tb.Fatalf("app %d has %d messages", appID, len(msgs))
	}
	return msgs[0]
}
