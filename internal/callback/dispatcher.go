// Package callback delivers OneTouch callbacks to customers: signed exactly as Authy signed them
// (X-Authy-Signature over nonce, method, URL and the canonical parameters, keyed by the app's API
// key), from a durable outbox in the store, at least once, retried with exponential backoff.
// After a run of consecutive failures an application's callbacks are paused and its owner is
// told; they resume when an operator re-enables them.
package callback

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twofold-auth/twofold/client"
	"github.com/twofold-auth/twofold/internal/egress"
	"github.com/twofold-auth/twofold/internal/twofold"
)

// Store is what the dispatcher needs from persistence.
type Store interface {
	GetApp(ctx context.Context, id int64) (twofold.App, error)
	// ClaimDueCallbacks leases up to n due callbacks until leaseUntil, atomically: no other
	// claim gets them before the lease runs out.
	ClaimDueCallbacks(ctx context.Context, now, leaseUntil time.Time, n int) ([]twofold.Callback, error)
	CallbackDelivered(ctx context.Context, c twofold.Callback, httpStatus int, now time.Time) error
	CallbackFailed(ctx context.Context, c twofold.Callback, httpStatus int, msg string, next, now time.Time, threshold int) (bool, error)
	DropCallback(ctx context.Context, c twofold.Callback, reason string) error
}

// Sender delivers the email that tells an owner their callbacks were disabled.
type Sender interface {
	Send(ctx context.Context, app twofold.App, m twofold.Message) (twofold.Message, error)
}

// Config tunes delivery; zero fields take DefaultConfig's values.
type Config struct {
	Workers      int           // deliveries at once; 0 in DefaultConfig means none (dispatching off)
	Backoff      time.Duration // wait after the first failure; doubles each time
	MaxBackoff   time.Duration
	Timeout      time.Duration // per HTTP attempt
	Threshold    int           // consecutive failures that disable an application's callbacks
	Lease        time.Duration // how long a claimed delivery may take before another try
	PollInterval time.Duration // how often to look for due callbacks when not woken
	// Egress makes every delivery's connection: callback URLs may reach loopback, private or
	// link-local addresses only on hosts its allow-list names. nil allows none.
	Egress *egress.Guard
}

// DefaultConfig is what a server runs with unless told otherwise. A delivery mostly waits (for
// the customer's endpoint, for the store's commits), so workers are cheap; with 4, sixteen
// approvals answered at once queued ~20 ms for a worker (BENCHMARKS.md).
func DefaultConfig() Config {
	return Config{Workers: 16, Backoff: 5 * time.Second, MaxBackoff: time.Hour, Timeout: 10 * time.Second,
		Threshold: 3, Lease: time.Minute, PollInterval: time.Second}
}

// Attempt describes one delivery attempt, for observers (metrics, tests).
type Attempt struct {
	Callback twofold.Callback
	OK       bool
	Status   int   // HTTP status, 0 when none
	Err      error // why it failed
	Disabled bool  // this failure disabled the application's callbacks
	Dropped  bool  // given up: the application has no callback URL any more
}

// Dispatcher delivers due callbacks.
type Dispatcher struct {
	store     Store
	sender    Sender
	revealKey func(twofold.App) (string, error)
	client    *http.Client
	cfg       Config
	log       *slog.Logger
	now       func() time.Time
	wake      chan struct{}
	onAttempt func(Attempt)
	webhooks  Webhooks // Verify webhooks (twilio.go); zero: their deliveries are dropped

	// The workers, shared between Run's claims and hand-offs (handoff.go). mu guards idle,
	// running and base; a worker slot is idle, reserved by a hand-off, or delivering.
	mu       sync.Mutex
	idle     int             // slots neither delivering nor reserved
	running  bool            // Run is running: a hand-off may reserve a slot
	base     context.Context // deliveries' context: Run's, without its cancellation
	inFlight sync.WaitGroup  // deliveries and reservations; Run waits for them before it returns
	finished chan struct{}   // a slot became idle: Run may claim for it
}

// New returns a Dispatcher. revealKey returns an application's API key in clear, which signs its
// callbacks; onAttempt (may be nil) observes every attempt after it is recorded.
func New(store Store, sender Sender, revealKey func(twofold.App) (string, error), cfg Config, log *slog.Logger, onAttempt func(Attempt)) *Dispatcher {
	def := DefaultConfig()
	if cfg.Backoff <= 0 {
		cfg.Backoff = def.Backoff
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = def.MaxBackoff
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = def.Timeout
	}
	if cfg.Threshold <= 0 {
		cfg.Threshold = def.Threshold
	}
	if cfg.Lease <= cfg.Timeout {
		cfg.Lease = cfg.Timeout + def.Lease
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = def.PollInterval
	}
	if onAttempt == nil {
		onAttempt = func(Attempt) {}
	}
	if cfg.Egress == nil {
		cfg.Egress = egress.New(egress.Allowlist{}, nil)
	}
	return &Dispatcher{
		store: store, sender: sender, revealKey: revealKey, cfg: cfg, log: log, now: time.Now,
		wake: make(chan struct{}, 1), finished: make(chan struct{}, 1), onAttempt: onAttempt,
		// No proxy, and a redirect is not a delivery: the customer must fix the URL.
		client: cfg.Egress.Client(cfg.Timeout),
	}
}

// Notify wakes the dispatcher: a callback was queued.
func (d *Dispatcher) Notify() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// Run delivers callbacks until ctx ends, then lets the deliveries in flight finish.
//
// It is a pipeline: Run claims only as many due callbacks as there are idle workers, hands each
// to a worker at once, and claims again as soon as a worker is idle and there may be more (a
// claim filled every idle worker, a callback was queued, or PollInterval passed). So a slow
// delivery holds up its own worker alone, and a lease covers its delivery alone: a callback
// is claimed only when a worker is free to deliver it. The claim is atomic in the store, so
// several servers on one database never deliver one callback at once, and a server that dies
// mid-delivery leaves its callbacks to the others once their leases run out. While Run runs,
// an answer may also hand its callback to an idle worker without a claim (handoff.go).
func (d *Dispatcher) Run(ctx context.Context) {
	if d.cfg.Workers <= 0 {
		return
	}
	d.mu.Lock()
	d.idle, d.running, d.base = d.cfg.Workers, true, context.WithoutCancel(ctx)
	d.mu.Unlock()
	// Deferred in this order: no reservation is made once Run stops, then the deliveries and
	// the reservations already made (an answer's transaction in progress) are waited for.
	defer d.inFlight.Wait()
	defer func() { d.mu.Lock(); d.running = false; d.mu.Unlock() }()
	t := time.NewTicker(d.cfg.PollInterval)
	defer t.Stop()
	more := true // there may be due callbacks not yet claimed
	for {
		if n := d.takeIdle(more && ctx.Err() == nil); n > 0 {
			cs, err := d.claim(ctx, n)
			if err != nil {
				d.log.Warn("claim callbacks", "err", err)
			}
			// A claim that filled every idle worker may have left others due; after one that
			// did not (or failed), look again when woken or at the next tick.
			more = err == nil && len(cs) == n
			d.freeSlots(n - len(cs))
			for _, c := range cs {
				d.start(c)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-d.finished:
		case <-d.wake:
			more = true
		case <-t.C:
			more = true
		}
	}
}

// takeIdle takes every idle worker for a claim when want is true, and returns how many.
func (d *Dispatcher) takeIdle(want bool) int {
	if !want {
		return 0
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	n := d.idle
	d.idle = 0
	return n
}

// freeSlots makes n workers idle again and tells Run, which may claim for them.
func (d *Dispatcher) freeSlots(n int) {
	if n <= 0 {
		return
	}
	d.mu.Lock()
	d.idle += n
	d.mu.Unlock()
	select {
	case d.finished <- struct{}{}:
	default:
	}
}

// start delivers c, leased to this dispatcher, on the worker taken for it, which is idle again
// once the outcome is recorded.
func (d *Dispatcher) start(c twofold.Callback) {
	d.inFlight.Add(1)
	go func() {
		defer d.inFlight.Done()
		defer d.freeSlots(1)
		d.deliver(d.base, c)
	}()
}

// claim leases up to n due callbacks from now for Lease. Once asked, the store's answer is
// waited for even if ctx ends, so that no callback is left leased to nobody.
func (d *Dispatcher) claim(ctx context.Context, n int) ([]twofold.Callback, error) {
	now := d.now()
	cs, err := d.store.ClaimDueCallbacks(context.WithoutCancel(ctx), now, now.Add(d.cfg.Lease), n)
	if err != nil {
		return nil, fmt.Errorf("claim due callbacks: %w", err)
	}
	return cs, nil
}

// deliver makes one attempt and records its outcome.
func (d *Dispatcher) deliver(ctx context.Context, c twofold.Callback) {
	a := Attempt{Callback: c}
	defer func() { d.onAttempt(a) }()
	if c.WebhookID != 0 {
		d.deliverWebhook(ctx, c, &a)
		return
	}
	app, err := d.store.GetApp(ctx, c.AppID)
	if errors.Is(err, twofold.ErrNotFound) || (err == nil && app.CallbackURL == "") {
		a.Dropped = true
		if err := d.store.DropCallback(ctx, c, "the application has no callback URL"); err != nil {
			d.log.Error("drop callback", "id", c.ID, "err", err)
		}
		return
	}
	if err != nil {
		d.log.Error("callback: load application", "app_id", c.AppID, "err", err)
		return // the lease runs out and it is tried again
	}
	status, err := d.post(ctx, app, c)
	now := d.now()
	a.Status, a.Err = status, err
	if err == nil {
		a.OK = true
		if err := d.store.CallbackDelivered(ctx, c, status, now); err != nil {
			d.log.Error("record callback delivery", "id", c.ID, "err", err)
		}
		d.log.Info("callback delivered", "app_id", app.ID, "request", c.RequestUUID, "status", status)
		return
	}
	next := now.Add(d.backoff(c.Attempts))
	disabled, rerr := d.store.CallbackFailed(ctx, c, status, trim(err.Error()), next, now, d.cfg.Threshold)
	if rerr != nil {
		d.log.Error("record callback failure", "id", c.ID, "err", rerr)
		return
	}
	a.Disabled = disabled
	d.log.Warn("callback failed", "app_id", app.ID, "request", c.RequestUUID, "attempt", c.Attempts+1, "err", err, "next_attempt", next)
	if disabled {
		d.tellOwner(ctx, app, err)
	}
}

func (d *Dispatcher) backoff(attempts int) time.Duration {
	b := d.cfg.Backoff
	for i := 0; i < attempts && b < d.cfg.MaxBackoff; i++ {
		b *= 2
	}
	return min(b, d.cfg.MaxBackoff)
}

// post sends the callback, signed with a fresh nonce, in the application's configured mode.
func (d *Dispatcher) post(ctx context.Context, app twofold.App, c twofold.Callback) (int, error) {
	key, err := d.revealKey(app)
	if err != nil {
		return 0, err
	}
	dec := json.NewDecoder(bytes.NewReader(c.Payload))
	dec.UseNumber()
	var params map[string]any
	if err := dec.Decode(&params); err != nil {
		return 0, fmt.Errorf("callback payload: %w", err)
	}
	nonce := strconv.FormatInt(d.now().Unix(), 10)
	method := app.CallbackMethod
	if method != http.MethodGet {
		method = http.MethodPost
	}
	var req *http.Request
	if method == http.MethodGet {
		target := app.CallbackURL
		sep := "?"
		if strings.Contains(target, "?") {
			sep = "&"
		}
		req, err = http.NewRequestWithContext(ctx, method, target+sep+client.Canonical(params), nil)
	} else {
		req, err = http.NewRequestWithContext(ctx, method, app.CallbackURL, bytes.NewReader(c.Payload))
		if req != nil {
			req.Header.Set("Content-Type", "application/json")
		}
	}
	if err != nil {
		return 0, fmt.Errorf("callback request: %w", err)
	}
	req.Header.Set(client.NonceHeader, nonce)
	req.Header.Set(client.SignatureHeader, client.Signature(key, nonce, method, app.CallbackURL, params))
	req.Header.Set("User-Agent", "Twofold-Callback/1")
	res, err := d.client.Do(req)
	if err != nil {
		return 0, err
	}
	defer res.Body.Close()
	io.Copy(io.Discard, io.LimitReader(res.Body, 64<<10))
	if res.StatusCode < 200 || res.StatusCode > 299 {
		return res.StatusCode, fmt.Errorf("HTTP %d", res.StatusCode)
	}
	return res.StatusCode, nil
}

// tellOwner sends the application's contact a message through the delivery outbox.
func (d *Dispatcher) tellOwner(ctx context.Context, app twofold.App, cause error) {
	d.log.Error("callbacks disabled after repeated failures", "app_id", app.ID, "threshold", d.cfg.Threshold, "last_error", cause)
	if app.ContactEmail == "" {
		return
	}
	subject := fmt.Sprintf("Twofold: OneTouch callbacks for %q are disabled", app.Name)
	body := fmt.Sprintf("The last %d deliveries to %s failed (last error: %s), so Twofold has paused callbacks for application %d.\n"+
		"Approval results are still available by polling GET /onetouch/json/approval_requests/{uuid}.\n"+
		"Pending callbacks are kept. Fix the endpoint, then re-enable delivery with:\n\n"+
		"    twofold app update %d --callback-enabled\n",
		d.cfg.Threshold, app.CallbackURL, cause, app.ID, app.ID)
	owner := app
	owner.Sandbox = false // the owner is told even about a sandbox application
	m := twofold.Message{AppID: app.ID, Channel: twofold.Email, To: app.ContactEmail, Subject: subject, Body: body, Locale: "en"}
	if _, err := d.sender.Send(ctx, owner, m); err != nil {
		d.log.Error("tell owner about disabled callbacks", "app_id", app.ID, "err", err)
	}
}

func trim(s string) string {
	if len(s) > 300 {
		return s[:300]
	}
	return s
}
