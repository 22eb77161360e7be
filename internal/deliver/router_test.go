package deliver_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/twofold-auth/twofold/internal/deliver"
	"github.com/twofold-auth/twofold/internal/twofold"
)

func TestSendRecordsOnly(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		app      twofold.App
		ch       twofold.Channel
		wantSID  string // prefix
		wantBody string // as the outbox shows it
		status   string
	}{
		{name: "sms, outbox only", app: app, ch: twofold.SMS, wantSID: "SM",
			wantBody: "Your Acme code is " + code + ". Do not share it.", status: twofold.MessageRecorded},
		{name: "call, outbox only", app: app, ch: twofold.Call, wantSID: "CA",
			wantBody: "Your Acme code is 4, 8, 2, 9, 1, 3, 7.", status: twofold.MessageRecorded},
		{name: "email keeps its subject, outbox only", app: app, ch: twofold.Email, wantSID: "EM",
			wantBody: "Subject: Your Acme verification code\n\nYour Acme code is " + code + ". Do not share it.",
			status:   twofold.MessageRecorded},
		{name: "sandbox sms", app: withProviders(sandbox, map[twofold.Channel]string{twofold.SMS: "twilio"}), ch: twofold.SMS,
			wantSID: "SM", wantBody: "Your Acme code is " + code + ". Do not share it.", status: twofold.MessageSandbox},
		{name: "sandbox email", app: sandbox, ch: twofold.Email, wantSID: "EM",
			wantBody: "Subject: Your Acme verification code\n\nYour Acme code is " + code + ". Do not share it.",
			status:   twofold.MessageSandbox},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			// A sandbox application is never delivered, even with providers configured for it.
			var providers []deliver.Provider
			var cfg deliver.RouterConfig
			twilio, gateway, smtp := &provider{name: "twilio"}, &provider{name: "gateway"}, &provider{name: "smtp"}
			if tt.app.Sandbox {
				providers = []deliver.Provider{twilio, gateway, smtp}
				cfg.Defaults = map[twofold.Channel]string{twofold.SMS: "gateway", twofold.Call: "twilio", twofold.Email: "smtp"}
			}
			r := f.router(t, cfg, nil, providers...)

			m, err := r.Send(context.Background(), tt.app, message(tt.ch))
			if err != nil {
				t.Fatalf("Send: %v", err)
			}
			if m.Status != tt.status || m.Provider != deliver.OutboxOnly || m.Attempts != 0 {
				t.Errorf("status, provider, attempts = %q, %q, %d; want %q, %q, 0", m.Status, m.Provider, m.Attempts, tt.status, deliver.OutboxOnly)
			}
			if !strings.HasPrefix(m.SID, tt.wantSID) || len(m.SID) != 34 {
				t.Errorf("SID = %q, want %s and 32 hex digits", m.SID, tt.wantSID)
			}
			if m.ID == 0 || !m.CreatedAt.Equal(t0) {
				t.Errorf("ID, CreatedAt = %d, %v; want an id and %v", m.ID, m.CreatedAt, t0)
			}
			got := f.stored(t, m.SID)
			if got.Body != tt.wantBody {
				t.Errorf("outbox body = %q, want %q", got.Body, tt.wantBody)
			}
			if got.Status != tt.status || got.Provider != deliver.OutboxOnly || got.To != m.To || got.Channel != tt.ch {
				t.Errorf("outbox has %+v", got)
			}
			for _, p := range []*provider{twilio, gateway, smtp} {
				if n := len(p.calls()); n != 0 {
					t.Errorf("provider %s called %d times", p.name, n)
				}
			}
		})
	}
}

func TestSendChoosesProvider(t *testing.T) {
	t.Parallel()
	defaults := map[twofold.Channel]string{twofold.SMS: "gateway", twofold.Email: "smtp"} // calls: the outbox
	tests := []struct {
		name       string
		choice     map[twofold.Channel]string
		ch         twofold.Channel
		want       string // provider name
		wantStatus string
	}{
		{name: "server default", ch: twofold.SMS, want: "gateway", wantStatus: twofold.MessageSent},
		{name: "app's choice wins", choice: map[twofold.Channel]string{twofold.SMS: "twilio"}, ch: twofold.SMS,
			want: "twilio", wantStatus: twofold.MessageSent},
		{name: "app chooses the outbox", choice: map[twofold.Channel]string{twofold.SMS: "outbox"}, ch: twofold.SMS,
			want: "outbox", wantStatus: twofold.MessageRecorded},
		{name: "app's choice for another channel", choice: map[twofold.Channel]string{twofold.Call: "twilio"}, ch: twofold.SMS,
			want: "gateway", wantStatus: twofold.MessageSent},
		{name: "no default for calls", ch: twofold.Call, want: "outbox", wantStatus: twofold.MessageRecorded},
		{name: "app's choice for calls", choice: map[twofold.Channel]string{twofold.Call: "twilio"}, ch: twofold.Call,
			want: "twilio", wantStatus: twofold.MessageSent},
		{name: "email default", ch: twofold.Email, want: "smtp", wantStatus: twofold.MessageSent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			providers := map[string]*provider{"twilio": {name: "twilio"}, "gateway": {name: "gateway"}, "smtp": {name: "smtp"}}
			r := f.router(t, deliver.RouterConfig{Defaults: defaults}, nil,
				providers["twilio"], providers["gateway"], providers["smtp"])

			in := message(tt.ch)
			m, err := r.Send(context.Background(), withProviders(app, tt.choice), in)
			if err != nil {
				t.Fatalf("Send: %v", err)
			}
			if m.Provider != tt.want || m.Status != tt.wantStatus {
				t.Errorf("provider, status = %q, %q; want %q, %q", m.Provider, m.Status, tt.want, tt.wantStatus)
			}
			for name, p := range providers {
				calls := p.calls()
				if name != tt.want {
					if len(calls) != 0 {
						t.Errorf("provider %s called %d times", name, len(calls))
					}
					continue
				}
				want := []deliver.Outgoing{{SID: m.SID, Channel: tt.ch, To: in.To, Text: in.Body, Subject: in.Subject,
					HTML: in.HTML, Spoken: in.Spoken, Locale: "en"}}
				if diff := cmp.Diff(want, calls); diff != "" {
					t.Errorf("provider got (-want +got):\n%s", diff)
				}
			}
			if got := f.stored(t, m.SID); got.Provider != tt.want || got.Status != tt.wantStatus {
				t.Errorf("outbox has provider, status = %q, %q", got.Provider, got.Status)
			}
		})
	}
}

func TestSendRetries(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name         string
		fail         func(n int) error // the answer to call n; nil accepts
		wantAttempts int
		wantErr      string // "" for a message the provider took
	}{
		{name: "accepted at once", fail: func(int) error { return nil }, wantAttempts: 1},
		{name: "transient failures, then accepted", wantAttempts: 3, fail: func(n int) error {
			if n < 3 {
				return transient(fmt.Sprintf("gateway: answered 503 (call %d)", n))
			}
			return nil
		}},
		{name: "permanent refusal", wantAttempts: 1, wantErr: "gateway: answered 400: invalid number",
			fail: func(int) error { return deliver.Permanent(errors.New("gateway: answered 400: invalid number")) }},
		{name: "permanent refusal after a transient failure", wantAttempts: 2, wantErr: "gateway: answered 400: invalid number",
			fail: func(n int) error {
				if n == 1 {
					return transient("gateway: connection reset")
				}
				return deliver.Permanent(errors.New("gateway: answered 400: invalid number"))
			}},
		{name: "retries exhausted", wantAttempts: 3, wantErr: "gateway: answered 503 (call 3)",
			fail: func(n int) error { return transient(fmt.Sprintf("gateway: answered 503 (call %d)", n)) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			gw := &provider{name: "gateway", deliver: func(_ context.Context, n int, _ deliver.Outgoing) (deliver.Receipt, error) {
				f.clock.Advance(time.Minute) // each try takes a minute of the outbox's time
				if err := tt.fail(n); err != nil {
					return deliver.Receipt{}, err
				}
				return deliver.Receipt{ID: "gw-42", Status: "queued"}, nil
			}}
			r := f.router(t, deliver.RouterConfig{Defaults: map[twofold.Channel]string{twofold.SMS: "gateway"},
				Attempts: 3, Backoff: time.Millisecond}, nil, gw)

			m, err := r.Send(context.Background(), app, message(twofold.SMS))
			if n := len(gw.calls()); n != tt.wantAttempts {
				t.Errorf("provider called %d times, want %d", n, tt.wantAttempts)
			}
			want := twofold.Message{Status: twofold.MessageSent, ProviderID: "gw-42", Delivery: "queued",
				Attempts: tt.wantAttempts, CreatedAt: t0, UpdatedAt: t0.Add(time.Duration(tt.wantAttempts) * time.Minute)}
			if tt.wantErr != "" {
				if !errors.Is(err, twofold.ErrNotDelivered) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("err = %v, want ErrNotDelivered with %q", err, tt.wantErr)
				}
				want.Status, want.ProviderID, want.Delivery, want.Error = twofold.MessageFailed, "", "", tt.wantErr
			} else if err != nil {
				t.Fatalf("Send: %v", err)
			}
			outcome := func(m twofold.Message) twofold.Message {
				return twofold.Message{Status: m.Status, ProviderID: m.ProviderID, Delivery: m.Delivery,
					Attempts: m.Attempts, Error: m.Error, CreatedAt: m.CreatedAt, UpdatedAt: m.UpdatedAt}
			}
			if diff := cmp.Diff(want, outcome(m)); diff != "" {
				t.Errorf("returned message (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(want, outcome(f.stored(t, m.SID))); diff != "" {
				t.Errorf("outbox (-want +got):\n%s", diff)
			}
		})
	}
}

// sendWithin runs Send and fails the test if it has not returned after a long while: a guard
// against hanging, not a timing target.
func sendWithin(t *testing.T, ctx context.Context, r *deliver.Router, a twofold.App, m twofold.Message) (twofold.Message, error) {
	t.Helper()
	type result struct {
		m   twofold.Message
		err error
	}
	done := make(chan result, 1)
	go func() {
		m, err := r.Send(ctx, a, m)
		done <- result{m, err}
	}()
	select {
	case res := <-done:
		return res.m, res.err
	case <-time.After(5 * time.Second):
		t.Fatal("Send did not return within 5s")
		return twofold.Message{}, nil
	}
}

func TestSendDeadline(t *testing.T) {
	t.Parallel()
	// Tries of 50ms within 200ms: at most four tries fit, however many attempts are allowed.
	for _, attempts := range []int{3, 100} {
		t.Run(fmt.Sprint(attempts, " attempts"), func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			var mu sync.Mutex
			var noDeadline int
			hang := &provider{name: "twilio", deliver: func(ctx context.Context, _ int, _ deliver.Outgoing) (deliver.Receipt, error) {
				if _, ok := ctx.Deadline(); !ok {
					mu.Lock()
					noDeadline++
					mu.Unlock()
				}
				<-ctx.Done()
				return deliver.Receipt{}, ctx.Err()
			}}
			r := f.router(t, deliver.RouterConfig{Defaults: map[twofold.Channel]string{twofold.SMS: "twilio"},
				Attempts: attempts, Timeout: 50 * time.Millisecond, Deadline: 200 * time.Millisecond, Backoff: time.Millisecond}, nil, hang)

			m, err := sendWithin(t, context.Background(), r, app, message(twofold.SMS))
			if !errors.Is(err, twofold.ErrNotDelivered) || !strings.Contains(err.Error(), "deadline exceeded") {
				t.Errorf("err = %v, want ErrNotDelivered for a deadline", err)
			}
			calls := len(hang.calls())
			if calls == 0 || calls > 4 || calls > attempts || m.Attempts != calls {
				t.Errorf("%d tries, message says %d; want 1..%d", calls, m.Attempts, min(4, attempts))
			}
			if noDeadline != 0 {
				t.Errorf("%d tries had no deadline", noDeadline)
			}
			// The outcome is recorded even though the deadline has passed.
			if got := f.stored(t, m.SID); got.Status != twofold.MessageFailed || got.Attempts != calls || got.Error == "" {
				t.Errorf("outbox has status, attempts, error = %q, %d, %q", got.Status, got.Attempts, got.Error)
			}
		})
	}
}

func TestSendDetachesFromCaller(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	tw := &provider{name: "twilio", deliver: func(ctx context.Context, _ int, _ deliver.Outgoing) (deliver.Receipt, error) {
		if err := ctx.Err(); err != nil {
			return deliver.Receipt{}, deliver.Permanent(fmt.Errorf("provider saw a dead context: %w", err))
		}
		if _, ok := ctx.Deadline(); !ok {
			return deliver.Receipt{}, deliver.Permanent(errors.New("provider saw no deadline"))
		}
		return deliver.Receipt{ID: "SMxyz"}, nil
	}}
	r := f.router(t, deliver.RouterConfig{Defaults: map[twofold.Channel]string{twofold.SMS: "twilio"}}, nil, tw)
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // the API caller has already hung up
	m, err := r.Send(ctx, app, message(twofold.SMS))
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	if m.Status != twofold.MessageSent || m.ProviderID != "SMxyz" {
		t.Errorf("status, provider id = %q, %q", m.Status, m.ProviderID)
	}
	if got := f.stored(t, m.SID); got.Status != twofold.MessageSent {
		t.Errorf("outbox status = %q", got.Status)
	}
}

func TestSendUnconfiguredProvider(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		choice  string
		ch      twofold.Channel
		wantErr string
	}{
		{name: "not configured here", choice: "twilio", ch: twofold.SMS, wantErr: `provider "twilio" is not configured for sms`},
		{name: "cannot carry the channel", choice: "smtp", ch: twofold.SMS, wantErr: `provider "smtp" is not configured for sms`},
		{name: "configured, wrong channel", choice: "gateway", ch: twofold.Email, wantErr: `provider "gateway" is not configured for email`},
		{name: "unknown provider", choice: "pigeon", ch: twofold.Call, wantErr: `provider "pigeon" is not configured for call`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			obs := &observer{}
			gw, smtp := &provider{name: "gateway"}, &provider{name: "smtp"}
			r := f.router(t, deliver.RouterConfig{}, obs, gw, smtp)
			a := withProviders(app, map[twofold.Channel]string{tt.ch: tt.choice})

			m, err := r.Send(context.Background(), a, message(tt.ch))
			if !errors.Is(err, twofold.ErrNotDelivered) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("err = %v, want ErrNotDelivered with %q", err, tt.wantErr)
			}
			got := f.stored(t, m.SID)
			if got.Status != twofold.MessageFailed || got.Provider != tt.choice || got.Error != tt.wantErr || got.Attempts != 0 {
				t.Errorf("outbox has status, provider, error, attempts = %q, %q, %q, %d", got.Status, got.Provider, got.Error, got.Attempts)
			}
			if n := len(gw.calls()) + len(smtp.calls()); n != 0 {
				t.Errorf("providers called %d times", n)
			}
			if diff := cmp.Diff([]string{fmt.Sprintf("%s %s failed", tt.ch, tt.choice)}, obs.delivered); diff != "" {
				t.Errorf("observed (-want +got):\n%s", diff)
			}
		})
	}
}

func TestNewRouterChecksDefaults(t *testing.T) {
	t.Parallel()
	configured := []deliver.Provider{&provider{name: "twilio"}, &provider{name: "gateway"}, &provider{name: "smtp"}}
	tests := []struct {
		name      string
		providers []deliver.Provider
		defaults  map[twofold.Channel]string
		wantErr   string // "" for a valid configuration
	}{
		{name: "none"},
		{name: "outbox for all", defaults: map[twofold.Channel]string{twofold.SMS: "outbox", twofold.Call: "outbox", twofold.Email: "outbox"}},
		{name: "configured providers", providers: configured,
			defaults: map[twofold.Channel]string{twofold.SMS: "gateway", twofold.Call: "twilio", twofold.Email: "smtp"}},
		{name: "not configured", providers: configured[2:], defaults: map[twofold.Channel]string{twofold.SMS: "twilio"},
			wantErr: `provider "twilio" is not configured on this server (configured for sms: outbox)`},
		{name: "smtp for sms", providers: configured, defaults: map[twofold.Channel]string{twofold.SMS: "smtp"},
			wantErr: `provider "smtp" cannot deliver sms`},
		{name: "gateway for calls", providers: configured, defaults: map[twofold.Channel]string{twofold.Call: "gateway"},
			wantErr: `provider "gateway" cannot deliver call`},
		{name: "unknown", providers: configured, defaults: map[twofold.Channel]string{twofold.Email: "sendgrid"},
			wantErr: `provider "sendgrid" cannot deliver email`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			_, err := deliver.NewRouter(f.outbox, tt.providers, deliver.RouterConfig{Defaults: tt.defaults}, nil, f.log)
			if tt.wantErr == "" && err != nil {
				t.Fatalf("NewRouter: %v", err)
			}
			if tt.wantErr != "" && (err == nil || err.Error() != tt.wantErr) {
				t.Fatalf("NewRouter err = %v, want %q", err, tt.wantErr)
			}
		})
	}

	r := newFixture(t).router(t, deliver.RouterConfig{}, nil, configured...)
	for ch, want := range map[twofold.Channel][]string{
		twofold.SMS:   {"outbox", "gateway", "twilio"},
		twofold.Call:  {"outbox", "twilio"},
		twofold.Email: {"outbox", "smtp"},
	} {
		if diff := cmp.Diff(want, r.Names(ch)); diff != "" {
			t.Errorf("Names(%s) (-want +got):\n%s", ch, diff)
		}
	}
}

func TestNewRouterDefaultsZeroFields(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	def := deliver.DefaultRouterConfig()
	var mu sync.Mutex
	var began, ended []time.Time
	gw := &provider{name: "gateway", deliver: func(ctx context.Context, n int, _ deliver.Outgoing) (deliver.Receipt, error) {
		mu.Lock()
		defer mu.Unlock()
		began = append(began, time.Now())
		if dl, ok := ctx.Deadline(); !ok || time.Until(dl) > def.Timeout {
			t.Errorf("try %d: deadline in %v, want at most %v", n, time.Until(dl), def.Timeout)
		}
		ended = append(ended, time.Now())
		return deliver.Receipt{}, transient("gateway: answered 503")
	}}
	r := f.router(t, deliver.RouterConfig{Defaults: map[twofold.Channel]string{twofold.SMS: "gateway"}}, nil, gw)
	m, err := sendWithin(t, context.Background(), r, app, message(twofold.SMS))
	if !errors.Is(err, twofold.ErrNotDelivered) || m.Attempts != def.Attempts {
		t.Fatalf("err, attempts = %v, %d; want ErrNotDelivered after %d", err, m.Attempts, def.Attempts)
	}
	// Only lower bounds: a timer never fires early.
	for i := 1; i < len(began); i++ {
		want := def.Backoff << (i - 1)
		if gap := began[i].Sub(ended[i-1]); gap < want {
			t.Errorf("try %d began %v after try %d ended, want at least the backoff %v", i+1, gap, i, want)
		}
	}
}
