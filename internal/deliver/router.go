package deliver

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/twofold-auth/twofold/internal/twofold"
)

// OutboxOnly is the provider name that records messages and delivers nothing.
const OutboxOnly = "outbox"

// Observer is told what delivery did, for metrics.
type Observer interface {
	Delivered(ch twofold.Channel, provider, status string, took time.Duration)
	Refused(ch twofold.Channel, reason string)
}

// RouterConfig tunes delivery; zero fields take DefaultRouterConfig's values.
type RouterConfig struct {
	Defaults map[twofold.Channel]string // the server's provider per channel; none: the outbox only
	Attempts int                        // hand-over tries per message
	Timeout  time.Duration              // for one try
	Deadline time.Duration              // for all tries of a message: an API call never waits longer
	Backoff  time.Duration              // before the second try, doubling after
}

// DefaultRouterConfig bounds a send to about ten seconds: long enough for a slow provider, short
// enough that client libraries (go-authy waits 10 s, authy-client 5 s by default) see an answer.
func DefaultRouterConfig() RouterConfig {
	return RouterConfig{Attempts: 3, Timeout: 4 * time.Second, Deadline: 9 * time.Second, Backoff: 250 * time.Millisecond}
}

// Router records each message in the outbox and hands it to the provider chosen for the
// application and channel, retrying failures that may pass, within a deadline.
type Router struct {
	outbox    *Outbox
	providers map[string]Provider
	cfg       RouterConfig
	obs       Observer
	log       *slog.Logger
}

// NewRouter returns a Router over the configured providers. Every default must name one of them
// (or the outbox). obs may be nil.
func NewRouter(outbox *Outbox, providers []Provider, cfg RouterConfig, obs Observer, log *slog.Logger) (*Router, error) {
	def := DefaultRouterConfig()
	if cfg.Attempts <= 0 {
		cfg.Attempts = def.Attempts
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = def.Timeout
	}
	if cfg.Deadline <= 0 {
		cfg.Deadline = def.Deadline
	}
	if cfg.Backoff <= 0 {
		cfg.Backoff = def.Backoff
	}
	r := &Router{outbox: outbox, providers: map[string]Provider{}, cfg: cfg, obs: obs, log: log}
	for _, p := range providers {
		r.providers[p.Name()] = p
	}
	for ch, name := range cfg.Defaults {
		if err := r.Check(ch, name); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// Default names the provider that delivers channel ch for an application that chose none.
func (r *Router) Default(ch twofold.Channel) string {
	if name := r.cfg.Defaults[ch]; name != "" {
		return name
	}
	return OutboxOnly
}

// Names lists the providers that can carry channel ch, the outbox first.
func (r *Router) Names(ch twofold.Channel) []string {
	var names []string
	for name := range r.providers {
		if twofold.Carries(name, ch) {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	return append([]string{OutboxOnly}, names...)
}

// Check reports whether provider name is configured here and can carry channel ch.
func (r *Router) Check(ch twofold.Channel, name string) error {
	if name == "" || name == OutboxOnly {
		return nil
	}
	if !twofold.Carries(name, ch) {
		return fmt.Errorf("provider %q cannot deliver %s", name, ch)
	}
	if _, ok := r.providers[name]; !ok {
		return fmt.Errorf("provider %q is not configured on this server (configured for %s: %s)", name, ch,
			strings.Join(r.Names(ch), ", "))
	}
	return nil
}

// Send records m in the outbox and delivers it through the application's provider for its
// channel. A sandbox application's messages are only recorded. It returns the message as
// recorded, and an error wrapping twofold.ErrNotDelivered when the provider did not take it.
func (r *Router) Send(ctx context.Context, app twofold.App, m twofold.Message) (twofold.Message, error) {
	m = r.Prepare(app, m)
	// The API caller hanging up must not leave the message half recorded.
	if err := r.outbox.insert(context.WithoutCancel(ctx), &m); err != nil {
		return twofold.Message{}, err
	}
	return r.Deliver(ctx, app, m)
}

// Prepare makes m the message the outbox records before delivery (Send's first step): its SID,
// sealed body, provider and status — recorded only (a sandbox application, the outbox as
// provider), failed (the provider is not configured here), or sending. It stores nothing: a
// caller stores it in the transaction that makes the code it carries (twofold.Decision), then
// calls Deliver.
func (r *Router) Prepare(app twofold.App, m twofold.Message) twofold.Message {
	name := app.Provider(m.Channel)
	if name == "" {
		name = r.cfg.Defaults[m.Channel]
	}
	if name == "" {
		name = OutboxOnly
	}
	switch {
	case app.Sandbox:
		return r.outbox.prepare(m, twofold.MessageSandbox, OutboxOnly)
	case name == OutboxOnly:
		return r.outbox.prepare(m, twofold.MessageRecorded, OutboxOnly)
	}
	if _, ok := r.providers[name]; !ok || !twofold.Carries(name, m.Channel) {
		m.Error = fmt.Sprintf("provider %q is not configured for %s", name, m.Channel)
		return r.outbox.prepare(m, twofold.MessageFailed, name)
	}
	return r.outbox.prepare(m, twofold.MessageSending, name)
}

// Deliver hands m, prepared by Prepare and stored, to its provider, and records the outcome. A
// message recorded only is left as it is. It returns the message as recorded, and an error
// wrapping twofold.ErrNotDelivered when no provider took it.
func (r *Router) Deliver(ctx context.Context, app twofold.App, m twofold.Message) (twofold.Message, error) {
	r.outbox.logRecorded(ctx, m)
	switch m.Status {
	case twofold.MessageSandbox, twofold.MessageRecorded:
		r.observe(m, 0)
		return m, nil
	case twofold.MessageFailed:
		r.log.ErrorContext(ctx, "message not delivered", "sid", m.SID, "app_id", app.ID, "err", m.Error)
		r.observe(m, 0)
		return m, fmt.Errorf("%w: %s", twofold.ErrNotDelivered, m.Error)
	}
	// The API caller hanging up must not cut a hand-over short and leave it half done.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.cfg.Deadline)
	defer cancel()
	name := m.Provider
	p := r.providers[name]
	start := time.Now()
	receipt, err := r.handOver(ctx, p, &m)
	m.UpdatedAt = r.outbox.now().UTC()
	if err != nil {
		m.Status, m.Error = twofold.MessageFailed, trim(err.Error(), 500)
		r.log.WarnContext(ctx, "message not delivered", "sid", m.SID, "app_id", app.ID, "channel", m.Channel,
			"provider", name, "attempts", m.Attempts, "err", Redact(m.Error))
	} else {
		m.Status, m.ProviderID, m.Delivery = twofold.MessageSent, receipt.ID, receipt.Status
		r.log.InfoContext(ctx, "message delivered to provider", "sid", m.SID, "provider", name,
			"provider_id", receipt.ID, "attempts", m.Attempts)
	}
	// Record the outcome even when the deadline has passed.
	if uerr := r.outbox.store.UpdateMessage(context.WithoutCancel(ctx), m); uerr != nil {
		r.log.ErrorContext(ctx, "record delivery outcome", "sid", m.SID, "err", uerr)
	}
	r.observe(m, time.Since(start))
	if err != nil {
		return m, fmt.Errorf("%w: %s", twofold.ErrNotDelivered, m.Error)
	}
	return m, nil
}

// handOver tries the provider until it accepts m, refuses it for good, or time runs out.
func (r *Router) handOver(ctx context.Context, p Provider, m *twofold.Message) (Receipt, error) {
	out := Outgoing{SID: m.SID, Channel: m.Channel, To: m.To, Text: m.Body, Subject: m.Subject, HTML: m.HTML,
		Spoken: m.Spoken, Locale: m.Locale}
	backoff := r.cfg.Backoff
	for {
		m.Attempts++
		try, cancel := context.WithTimeout(ctx, r.cfg.Timeout)
		receipt, err := p.Deliver(try, out)
		cancel()
		if err == nil {
			return receipt, nil
		}
		if IsPermanent(err) || m.Attempts >= r.cfg.Attempts {
			return Receipt{}, err
		}
		if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) < backoff+r.cfg.Timeout/4 {
			return Receipt{}, fmt.Errorf("%w (no time left to retry)", err)
		}
		r.log.DebugContext(ctx, "delivery failed; retrying", "sid", m.SID, "provider", p.Name(), "attempt", m.Attempts, "err", Redact(err.Error()))
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return Receipt{}, err
		case <-t.C:
		}
		backoff *= 2
	}
}

func (r *Router) observe(m twofold.Message, took time.Duration) {
	if r.obs != nil {
		r.obs.Delivered(m.Channel, m.Provider, m.Status, took)
	}
}

// Refuse counts a send refused before anything was sent, by reason (twofold.Refused*).
func (r *Router) Refuse(ctx context.Context, app twofold.App, ch twofold.Channel, reason string) error {
	if r.obs != nil {
		r.obs.Refused(ch, reason)
	}
	if err := r.outbox.store.AddRefusal(ctx, app.ID, r.outbox.now(), ch, reason); err != nil {
		return fmt.Errorf("outbox: %w", err)
	}
	return nil
}

// Report records a provider's later word on a message it accepted (a delivery receipt).
func (r *Router) Report(ctx context.Context, provider, providerID, delivery, errText string) error {
	err := r.outbox.store.SetDelivery(ctx, provider, providerID, delivery, trim(errText, 500), r.outbox.now().UTC())
	if err == nil {
		r.log.InfoContext(ctx, "delivery report", "provider", provider, "provider_id", providerID, "delivery", delivery, "error", errText)
	}
	return err
}

// trim cuts s to at most n bytes without splitting a UTF-8 character.
func trim(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
