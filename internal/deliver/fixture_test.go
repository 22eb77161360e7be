package deliver_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/twofold-auth/twofold/internal/deliver"
	"github.com/twofold-auth/twofold/internal/seal"
	"github.com/twofold-auth/twofold/internal/store"
	"github.com/twofold-auth/twofold/internal/twofold"
)

// t0 is the outbox's time when a test starts.
var t0 = time.Date(2026, 3, 4, 10, 0, 0, 0, time.UTC)

// code is the one-time code in every test message; no log line may show it.
const code = "4829137"

// clock is a settable time source for the outbox.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time          { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Set(t time.Time)         { c.mu.Lock(); defer c.mu.Unlock(); c.now = t }
func (c *clock) Advance(d time.Duration) { c.mu.Lock(); defer c.mu.Unlock(); c.now = c.now.Add(d) }

// logBuffer collects log output; the router may log from any goroutine.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}
func (l *logBuffer) String() string { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }

// provider is a fake deliver.Provider. deliver answers call n (from 1); nil accepts every
// message with the receipt {name-n, "queued"}.
type provider struct {
	name    string
	deliver func(ctx context.Context, n int, m deliver.Outgoing) (deliver.Receipt, error)

	mu  sync.Mutex
	got []deliver.Outgoing
}

func (p *provider) Name() string { return p.name }

func (p *provider) Deliver(ctx context.Context, m deliver.Outgoing) (deliver.Receipt, error) {
	p.mu.Lock()
	p.got = append(p.got, m)
	n := len(p.got)
	p.mu.Unlock()
	if p.deliver == nil {
		return deliver.Receipt{ID: fmt.Sprintf("%s-%d", p.name, n), Status: "queued"}, nil
	}
	return p.deliver(ctx, n, m)
}

func (p *provider) calls() []deliver.Outgoing {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]deliver.Outgoing(nil), p.got...)
}

// observer records what the router reports, as "channel provider status" and "channel reason".
type observer struct {
	mu        sync.Mutex
	delivered []string
	refused   []string
}

func (o *observer) Delivered(ch twofold.Channel, provider, status string, took time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.delivered = append(o.delivered, fmt.Sprintf("%s %s %s", ch, provider, status))
}

func (o *observer) Refused(ch twofold.Channel, reason string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.refused = append(o.refused, fmt.Sprintf("%s %s", ch, reason))
}

// fixture is an outbox over a fresh SQLite store, with an injected clock and captured logs.
type fixture struct {
	outbox *deliver.Outbox
	clock  *clock
	logs   *logBuffer
	log    *slog.Logger
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	st, err := store.OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "twofold.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	keys, err := seal.New(bytes.Repeat([]byte{7}, seal.KeySize))
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{clock: &clock{now: t0}, logs: &logBuffer{}}
	f.log = slog.New(slog.NewTextHandler(f.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	f.outbox = deliver.NewOutbox(st, keys, f.log, f.clock.Now)
	return f
}

func (f *fixture) router(t *testing.T, cfg deliver.RouterConfig, obs deliver.Observer, providers ...deliver.Provider) *deliver.Router {
	t.Helper()
	if obs == nil {
		obs = &observer{}
	}
	r, err := deliver.NewRouter(f.outbox, providers, cfg, obs, f.log)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// stored returns the outbox's copy of the message with sid.
func (f *fixture) stored(t *testing.T, sid string) twofold.Message {
	t.Helper()
	msgs, err := f.outbox.List(context.Background(), twofold.MessageFilter{})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range msgs {
		if m.SID == sid {
			return m
		}
	}
	t.Fatalf("message %q is not in the outbox (%d messages)", sid, len(msgs))
	return twofold.Message{}
}

// message returns a test message for ch, from application 1 to user 2.
func message(ch twofold.Channel) twofold.Message {
	m := twofold.Message{AppID: 1, UserID: 2, Channel: ch, To: "+14155550123", Locale: "en",
		Body: "Your Acme code is " + code + ". Do not share it."}
	switch ch {
	case twofold.Call:
		m.Body = "Your Acme code is 4, 8, 2, 9, 1, 3, 7."
		m.Spoken = []string{"Your Acme code is", "4, 8, 2, 9, 1, 3, 7."}
	case twofold.Email:
		m.To, m.Subject, m.HTML = "alice@example.com", "Your Acme verification code", "<p>Your Acme code is <b>"+code+"</b></p>"
	}
	return m
}

func transient(text string) error { return errors.New(text) }

var (
	app     = twofold.App{ID: 1, Name: "Acme"}
	sandbox = twofold.App{ID: 1, Name: "Acme", Sandbox: true}
)

func withProviders(a twofold.App, p map[twofold.Channel]string) twofold.App {
	a.Providers = p
	return a
}
