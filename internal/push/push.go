// Package push wakes a user's devices that are not connected (web app closed, phone asleep)
// when an approval request is created: Web Push (RFC 8030, 8291, 8292) to browsers through
// their vendors' push services, and ntfy topics. It is best effort: devices still learn of
// requests by polling and by their event stream, so a failed push is logged and counted and
// changes nothing else, and sending never holds up the request that created the approval.
package push

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/twofold-auth/twofold/internal/egress"
	"github.com/twofold-auth/twofold/internal/store"
	"github.com/twofold-auth/twofold/internal/twofold"
)

// Store is what the notifier needs from persistence.
type Store interface {
	GetApp(ctx context.Context, id int64) (twofold.App, error)
	PushSubscriptionsForUser(ctx context.Context, appID, userID int64) ([]store.PushSubscription, error)
	UpsertPushSubscription(ctx context.Context, p *store.PushSubscription, maxPerDevice int) error
	DeletePushSubscription(ctx context.Context, deviceID int64, endpoint string) error
	RecordPushFailure(ctx context.Context, id int64, lastError string) (int, error)
	RecordPushSuccess(ctx context.Context, id int64) error
}

// DefaultSubject is the VAPID contact used when neither a subject nor an https public URL is
// configured. Some push services (Apple's) refuse it: configure a real one.
const DefaultSubject = "mailto:admin@localhost"

// Outcomes of a delivery, as reported to Config.Observe.
const (
	OutcomeSent    = "sent"    // the push service or ntfy server took it
	OutcomeGone    = "gone"    // 404/410: the subscription is dead and was removed
	OutcomeFailed  = "failed"  // anything else: kept, and its failures counted
	OutcomeDropped = "dropped" // the queue was full (kind "any")
)

// Config tunes the notifier; zero fields take defaults.
type Config struct {
	// Subject is the VAPID contact push services may use: "mailto:…" or "https://…". Empty
	// means PublicURL when that is https, else DefaultSubject.
	Subject string
	// PublicURL is the base URL of this server; ntfy notifications then link to the web
	// authenticator under it.
	PublicURL string
	Workers   int           // requests notified at once: 4
	Queue     int           // requests waiting to be notified; more are dropped: 256
	Timeout   time.Duration // one delivery: 10 s
	MaxTTL    time.Duration // longest a push service should keep an undelivered push: 1 h
	// Egress makes every connection a push needs, and its allow-list says which hosts devices
	// may subscribe with at private addresses or over http; nil allows none.
	Egress *egress.Guard
	// Observe, if set, is told the outcome of every delivery (for metrics).
	Observe func(kind, outcome string)
}

// Notifier sends pushes for new approval requests.
type Notifier struct {
	store      Store
	key        VAPIDKey
	cfg        Config
	client     *http.Client // through cfg.Egress; follows no redirects
	subscriber string       // the VAPID subject as webpush-go takes it
	openURL    string       // the web authenticator, or ""
	log        *slog.Logger
	now        func() time.Time
	queue      chan twofold.ApprovalRequest

	placeholder bool      // the subject is DefaultSubject
	warned      sync.Once // about it, once Web Push is in use
}

// New returns a notifier that signs with key. now may be nil.
func New(st Store, key VAPIDKey, cfg Config, log *slog.Logger, now func() time.Time) (*Notifier, error) {
	if len(key.public) == 0 {
		return nil, errors.New("push: no VAPID key")
	}
	subject, err := vapidSubject(cfg.Subject, cfg.PublicURL)
	if err != nil {
		return nil, err
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 4
	}
	if cfg.Queue <= 0 {
		cfg.Queue = 256
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.MaxTTL <= 0 {
		cfg.MaxTTL = time.Hour
	}
	if cfg.Egress == nil {
		cfg.Egress = egress.New(egress.Allowlist{}, nil)
	}
	if cfg.Observe == nil {
		cfg.Observe = func(string, string) {}
	}
	if now == nil {
		now = time.Now
	}
	n := &Notifier{store: st, key: key, cfg: cfg, client: cfg.Egress.Client(cfg.Timeout), log: log, now: now,
		queue: make(chan twofold.ApprovalRequest, cfg.Queue), placeholder: subject == DefaultSubject}
	// webpush-go reads a subject that is not an https URL as an e-mail address and adds
	// "mailto:" itself.
	n.subscriber = strings.TrimPrefix(subject, "mailto:")
	if base := strings.TrimRight(cfg.PublicURL, "/"); base != "" {
		n.openURL = base + "/authenticator/"
	}
	return n, nil
}

// webPushInUse warns, once, that the VAPID subject is the placeholder, when a browser subscribes
// or is pushed to: only Web Push sends the subject, and a server whose devices use ntfy or no
// push at all has nothing to fix.
func (n *Notifier) webPushInUse() {
	if n.placeholder {
		n.warned.Do(func() {
			n.log.Warn("Web Push is in use with a placeholder contact that Apple's push service refuses: set --push-subject "+
				"(TWOFOLD_PUSH_SUBJECT) to a mailto: address or an https URL, or an https --public-url", "subject", DefaultSubject)
		})
	}
}

// vapidSubject picks and checks the VAPID subject (RFC 8292 section 2.1).
func vapidSubject(subject, publicURL string) (string, error) {
	if subject == "" {
		subject = DefaultSubject
		if strings.HasPrefix(publicURL, "https://") {
			subject = strings.TrimRight(publicURL, "/")
		}
	}
	if addr, ok := strings.CutPrefix(subject, "mailto:"); ok {
		if at := strings.LastIndexByte(addr, '@'); at > 0 && at < len(addr)-1 && !strings.ContainsAny(addr, " \t\r\n,") {
			return subject, nil
		}
	} else if u, err := url.Parse(subject); err == nil && u.Scheme == "https" && u.Host != "" {
		return subject, nil
	}
	return "", fmt.Errorf("push subject %q must be a mailto: address or an https URL", subject)
}

// VAPIDPublicKey returns the key browsers pass as applicationServerKey when they subscribe.
func (n *Notifier) VAPIDPublicKey() string { return n.key.PublicKey() }

// Enqueue queues req for Run's workers and returns at once. When the queue is full the push
// is dropped and counted: devices still see the request when they next look.
func (n *Notifier) Enqueue(req twofold.ApprovalRequest) {
	select {
	case n.queue <- req:
	default:
		n.cfg.Observe("any", OutcomeDropped)
		n.log.Warn("push queue full: notification dropped", "app_id", req.AppID, "user_id", req.UserID)
	}
}

// Run notifies queued requests with Config.Workers workers until ctx ends. What is still
// queued then is dropped.
func (n *Notifier) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for range n.cfg.Workers {
		wg.Go(func() {
			for {
				select {
				case <-ctx.Done():
					return
				case req := <-n.queue:
					if err := n.Notify(ctx, req); err != nil && ctx.Err() == nil {
						n.log.Warn("push notifications", "app_id", req.AppID, "user_id", req.UserID, "err", err)
					}
				}
			}
		})
	}
	wg.Wait()
}

// Notify pushes req to every subscription of its user's devices, at once, each within
// Config.Timeout. Outcomes are logged and observed; the error is only for failing to look
// the subscriptions up. A request that is no longer pending, or has expired, is not pushed.
func (n *Notifier) Notify(ctx context.Context, req twofold.ApprovalRequest) error {
	ttl, ok := n.ttl(req)
	if !ok {
		return nil
	}
	subs, err := n.store.PushSubscriptionsForUser(ctx, req.AppID, req.UserID)
	if err != nil || len(subs) == 0 {
		return err
	}
	app, err := n.store.GetApp(ctx, req.AppID)
	if err != nil {
		return fmt.Errorf("push: application %d: %w", req.AppID, err)
	}
	m := message{uuid: req.UUID, text: clip(req.Message, 200), app: clip(app.Name, 100), ttl: ttl}
	var wg sync.WaitGroup
	for _, s := range subs {
		wg.Go(func() { n.deliver(ctx, s, m) })
	}
	wg.Wait()
	return nil
}

// ttl is how long a push service should keep the push: until the request expires, at most
// MaxTTL. ok is false when there is nothing to push.
func (n *Notifier) ttl(req twofold.ApprovalRequest) (seconds int, ok bool) {
	if req.Status != "" && req.Status != twofold.Pending {
		return 0, false
	}
	d := n.cfg.MaxTTL
	if !req.ExpiresAt.IsZero() {
		left := req.ExpiresAt.Sub(n.now())
		if left < time.Second {
			return 0, false
		}
		d = min(d, left)
	}
	return int(d / time.Second), true
}

// deliver sends one push and records what became of it.
func (n *Notifier) deliver(parent context.Context, s store.PushSubscription, m message) {
	ctx, cancel := context.WithTimeout(parent, n.cfg.Timeout)
	defer cancel()
	var res result
	switch s.Kind {
	case KindWebPush:
		n.webPushInUse()
		res = n.sendWebPush(ctx, s, m)
	case KindNtfy:
		res = n.sendNtfy(ctx, s, m)
	default:
		res = result{err: fmt.Errorf("unknown kind %q", s.Kind)}
	}

	if res.err != nil && parent.Err() != nil {
		return // cut short by shutdown: not the subscription's failure
	}
	// Bookkeeping outlives a delivery that timed out, briefly.
	bctx, bcancel := context.WithTimeout(context.WithoutCancel(parent), 5*time.Second)
	defer bcancel()
	log := n.log.With("kind", s.Kind, "device_id", s.DeviceID, "host", hostOf(s.Endpoint))
	outcome := OutcomeSent
	switch {
	case res.err == nil && res.status >= 200 && res.status < 300:
		if s.Failures > 0 {
			if err := n.store.RecordPushSuccess(bctx, s.ID); err != nil {
				log.Warn("record push success", "err", err)
			}
		}
		log.Debug("push sent", "status", res.status)
	case res.err == nil && (res.status == http.StatusNotFound || res.status == http.StatusGone):
		outcome = OutcomeGone
		if err := n.store.DeletePushSubscription(bctx, s.DeviceID, s.Endpoint); err != nil && !errors.Is(err, twofold.ErrNotFound) {
			log.Warn("remove dead push subscription", "err", err)
		}
		log.Info("push subscription gone: removed", "status", res.status)
	default:
		outcome = OutcomeFailed
		why := res.describe()
		failures, err := n.store.RecordPushFailure(bctx, s.ID, why)
		if err != nil {
			log.Warn("record push failure", "err", err)
		}
		log.Warn("push failed", "error", why, "failures", failures)
	}
	n.cfg.Observe(s.Kind, outcome)
}

// result is a push service's answer: a status, or the error that prevented one.
type result struct {
	status int
	body   string // the start of a failure's response body
	err    error
}

// describe says why a delivery failed without the endpoint URL, which is a capability (and
// may carry an ntfy password).
func (r result) describe() string {
	if r.err == nil {
		s := fmt.Sprintf("HTTP %d", r.status)
		if r.body != "" {
			s += ": " + r.body
		}
		return s
	}
	err := r.err
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return "timed out"
	}
	return clip(err.Error(), 200)
}

func hostOf(endpoint string) string {
	if u, err := url.Parse(endpoint); err == nil {
		return u.Host
	}
	return ""
}

// clip shortens s to at most n runes.
func clip(s string, n int) string {
	for i := range s {
		if n == 0 {
			return s[:i] + "…"
		}
		n--
	}
	return s
}
