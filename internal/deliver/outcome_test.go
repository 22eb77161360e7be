package deliver_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/twofold-auth/twofold/internal/deliver"
	"github.com/twofold-auth/twofold/internal/twofold"
)

func TestRefuseAndSummary(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	obs := &observer{}
	gw := &provider{name: "gateway", deliver: func(_ context.Context, n int, _ deliver.Outgoing) (deliver.Receipt, error) {
		if n == 2 {
			return deliver.Receipt{}, deliver.Permanent(errors.New("gateway: answered 400"))
		}
		return deliver.Receipt{ID: "gw-1"}, nil
	}}
	r := f.router(t, deliver.RouterConfig{Defaults: map[twofold.Channel]string{twofold.SMS: "gateway"}}, obs, gw)
	ctx := context.Background()
	other := twofold.App{ID: 2, Name: "Other"}
	refuse := func(a twofold.App, ch twofold.Channel, reason string) {
		t.Helper()
		if err := r.Refuse(ctx, a, ch, reason); err != nil {
			t.Fatalf("Refuse: %v", err)
		}
	}

	yesterday := t0.Add(-24 * time.Hour)
	f.clock.Set(yesterday)
	refuse(app, twofold.SMS, twofold.RefusedUserLimit)
	f.clock.Set(t0)
	refuse(app, twofold.SMS, twofold.RefusedUserLimit)
	refuse(app, twofold.SMS, twofold.RefusedUserLimit)
	refuse(app, twofold.SMS, twofold.RefusedCountry)
	refuse(app, twofold.Call, twofold.RefusedLandline)
	refuse(other, twofold.SMS, twofold.RefusedUserLimit)
	if _, err := r.Send(ctx, app, message(twofold.SMS)); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Send(ctx, app, message(twofold.SMS)); !errors.Is(err, twofold.ErrNotDelivered) {
		t.Fatalf("second send: %v, want ErrNotDelivered", err)
	}
	if _, err := r.Send(ctx, app, message(twofold.Email)); err != nil {
		t.Fatal(err)
	}
	otherMsg := message(twofold.SMS)
	otherMsg.AppID = 2
	if _, err := r.Send(ctx, withProviders(other, nil), otherMsg); err != nil {
		t.Fatal(err)
	}

	sorted := cmpopts.SortSlices(func(a, b twofold.DeliveryCount) bool { return fmt.Sprint(a) < fmt.Sprint(b) })
	refused := func(ch twofold.Channel, reason string, n int64) twofold.DeliveryCount {
		return twofold.DeliveryCount{Channel: ch, Status: "refused", Reason: reason, Count: n}
	}
	tests := []struct {
		name  string
		appID int64
		since time.Time
		want  []twofold.DeliveryCount
	}{
		{name: "today", appID: 1, since: t0, want: []twofold.DeliveryCount{
			{Channel: twofold.Email, Provider: "outbox", Status: twofold.MessageRecorded, Count: 1},
			{Channel: twofold.SMS, Provider: "gateway", Status: twofold.MessageFailed, Count: 1},
			{Channel: twofold.SMS, Provider: "gateway", Status: twofold.MessageSent, Count: 1},
			refused(twofold.Call, twofold.RefusedLandline, 1),
			refused(twofold.SMS, twofold.RefusedCountry, 1),
			refused(twofold.SMS, twofold.RefusedUserLimit, 2),
		}},
		{name: "since yesterday", appID: 1, since: yesterday, want: []twofold.DeliveryCount{
			{Channel: twofold.Email, Provider: "outbox", Status: twofold.MessageRecorded, Count: 1},
			{Channel: twofold.SMS, Provider: "gateway", Status: twofold.MessageFailed, Count: 1},
			{Channel: twofold.SMS, Provider: "gateway", Status: twofold.MessageSent, Count: 1},
			refused(twofold.Call, twofold.RefusedLandline, 1),
			refused(twofold.SMS, twofold.RefusedCountry, 1),
			refused(twofold.SMS, twofold.RefusedUserLimit, 3),
		}},
		{name: "other app", appID: 2, since: t0, want: []twofold.DeliveryCount{
			{Channel: twofold.SMS, Provider: "gateway", Status: twofold.MessageSent, Count: 1},
			refused(twofold.SMS, twofold.RefusedUserLimit, 1),
		}},
		{name: "all apps", appID: 0, since: t0, want: []twofold.DeliveryCount{
			{Channel: twofold.Email, Provider: "outbox", Status: twofold.MessageRecorded, Count: 1},
			{Channel: twofold.SMS, Provider: "gateway", Status: twofold.MessageFailed, Count: 1},
			{Channel: twofold.SMS, Provider: "gateway", Status: twofold.MessageSent, Count: 2},
			refused(twofold.Call, twofold.RefusedLandline, 1),
			refused(twofold.SMS, twofold.RefusedCountry, 1),
			refused(twofold.SMS, twofold.RefusedUserLimit, 3),
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := f.outbox.Summary(ctx, tt.appID, tt.since)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got, sorted); diff != "" {
				t.Errorf("Summary (-want +got):\n%s", diff)
			}
		})
	}

	wantRefused := []string{"sms limit_user", "sms limit_user", "sms limit_user", "sms country", "call landline", "sms limit_user"}
	if diff := cmp.Diff(wantRefused, obs.refused); diff != "" {
		t.Errorf("observed refusals (-want +got):\n%s", diff)
	}
	wantDelivered := []string{"sms gateway sent", "sms gateway failed", "email outbox recorded", "sms gateway sent"}
	if diff := cmp.Diff(wantDelivered, obs.delivered); diff != "" {
		t.Errorf("observed deliveries (-want +got):\n%s", diff)
	}
}

func TestReport(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	gw := &provider{name: "gateway", deliver: func(context.Context, int, deliver.Outgoing) (deliver.Receipt, error) {
		return deliver.Receipt{ID: "gw-42", Status: "queued"}, nil
	}}
	r := f.router(t, deliver.RouterConfig{Defaults: map[twofold.Channel]string{twofold.SMS: "gateway"}}, nil, gw)
	ctx := context.Background()
	sent, err := r.Send(ctx, app, message(twofold.SMS))
	if err != nil {
		t.Fatal(err)
	}
	recorded, err := r.Send(ctx, app, message(twofold.Email)) // the outbox: no provider id
	if err != nil {
		t.Fatal(err)
	}

	for i, rep := range []struct{ delivery, errText string }{
		{"delivered", ""},
		{"undelivered", "30003: unreachable destination handset"},
	} {
		f.clock.Advance(time.Minute)
		if err := r.Report(ctx, "gateway", "gw-42", rep.delivery, rep.errText); err != nil {
			t.Fatalf("Report %d: %v", i, err)
		}
		got := f.stored(t, sent.SID)
		if got.Delivery != rep.delivery || got.Error != rep.errText || !got.UpdatedAt.Equal(f.clock.Now()) {
			t.Errorf("after report %d: delivery, error, updated = %q, %q, %v; want %q, %q, %v", i,
				got.Delivery, got.Error, got.UpdatedAt, rep.delivery, rep.errText, f.clock.Now())
		}
		if got.Status != twofold.MessageSent || got.ProviderID != "gw-42" {
			t.Errorf("after report %d: status, provider id = %q, %q", i, got.Status, got.ProviderID)
		}
	}

	for name, ids := range map[string][2]string{
		"unknown id":                 {"gateway", "gw-43"},
		"another provider's message": {"twilio", "gw-42"},
		"empty id":                   {"outbox", ""},
	} {
		if err := r.Report(ctx, ids[0], ids[1], "delivered", ""); !errors.Is(err, twofold.ErrNotFound) {
			t.Errorf("%s: Report = %v, want ErrNotFound", name, err)
		}
	}
	if got := f.stored(t, recorded.SID); got.Delivery != "" || got.Status != twofold.MessageRecorded {
		t.Errorf("the outbox message changed: delivery, status = %q, %q", got.Delivery, got.Status)
	}
}

func TestLogsRedactCodes(t *testing.T) {
	t.Parallel()
	echo := func(m deliver.Outgoing) string {
		return fmt.Sprintf("gateway: answered 503: %q", "cannot send "+m.Text)
	}
	tests := []struct {
		name    string
		app     twofold.App
		ch      twofold.Channel
		deliver func(n int, m deliver.Outgoing) error
	}{
		{name: "outbox only", app: withProviders(app, map[twofold.Channel]string{twofold.SMS: "outbox"}), ch: twofold.SMS},
		{name: "sandbox email", app: sandbox, ch: twofold.Email},
		{name: "call accepted", app: app, ch: twofold.Call},
		{name: "email accepted", app: app, ch: twofold.Email},
		{name: "refusal quoting the message", app: app, ch: twofold.SMS,
			deliver: func(_ int, m deliver.Outgoing) error { return deliver.Permanent(errors.New(echo(m))) }},
		{name: "failures quoting the message", app: app, ch: twofold.SMS,
			deliver: func(_ int, m deliver.Outgoing) error { return errors.New(echo(m)) }},
		{name: "failure quoting the message, then accepted", app: app, ch: twofold.SMS,
			deliver: func(n int, m deliver.Outgoing) error {
				if n == 1 {
					return errors.New(echo(m))
				}
				return nil
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			answer := func(_ context.Context, n int, m deliver.Outgoing) (deliver.Receipt, error) {
				if tt.deliver != nil {
					if err := tt.deliver(n, m); err != nil {
						return deliver.Receipt{}, err
					}
				}
				return deliver.Receipt{ID: "id-1"}, nil
			}
			r := f.router(t, deliver.RouterConfig{Backoff: time.Millisecond,
				Defaults: map[twofold.Channel]string{twofold.SMS: "gateway", twofold.Call: "twilio", twofold.Email: "smtp"}}, nil,
				&provider{name: "gateway", deliver: answer}, &provider{name: "twilio", deliver: answer}, &provider{name: "smtp", deliver: answer})

			m, _ := r.Send(context.Background(), tt.app, message(tt.ch))
			if m.Error != "" && !strings.Contains(m.Error, code) {
				t.Fatalf("the provider's error %q should quote the code for this test to mean anything", m.Error)
			}
			logs := f.logs.String()
			if !strings.Contains(logs, "message recorded") {
				t.Fatalf("nothing logged:\n%s", logs)
			}
			for _, secret := range []string{code, "4, 8, 2, 9, 1, 3, 7"} {
				if strings.Contains(logs, secret) {
					t.Errorf("logs show the code %q:\n%s", secret, logs)
				}
			}
		})
	}
}

func TestSendErrorTextStaysValidUTF8(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	long := strings.Repeat("x", 499) + "é and more" // é is two bytes: the 500th and 501st
	sm := &provider{name: "smtp", deliver: func(context.Context, int, deliver.Outgoing) (deliver.Receipt, error) {
		return deliver.Receipt{}, deliver.Permanent(errors.New(long))
	}}
	r := f.router(t, deliver.RouterConfig{Defaults: map[twofold.Channel]string{twofold.Email: "smtp"}}, nil, sm)
	m, err := r.Send(context.Background(), app, message(twofold.Email))
	if !errors.Is(err, twofold.ErrNotDelivered) {
		t.Fatalf("err = %v, want ErrNotDelivered", err)
	}
	if got := f.stored(t, m.SID).Error; !utf8.ValidString(got) || len(got) > 500 || !strings.HasPrefix(long, got) {
		t.Errorf("stored error (%d bytes, valid UTF-8: %v) is not a valid prefix of at most 500 bytes", len(got), utf8.ValidString(got))
	}
}
