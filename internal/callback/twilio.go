package callback

import (
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/twofold-auth/twofold/internal/twofold"
)

// Verify webhooks (internal/apps verifywebhooks.go) share the callbacks outbox: a row whose
// WebhookID is set is delivered to that webhook's URL as a form-encoded POST, signed with the
// application's auth token as Twilio signs its requests (X-Twilio-Signature), so that the
// official libraries' validateRequest accepts it. Its failures are retried with the same
// backoff but do not count against the application's OneTouch callbacks; after
// WebhookMaxAttempts it is dropped.

// TwilioSignatureHeader carries a webhook's signature.
const TwilioSignatureHeader = "X-Twilio-Signature"

// WebhookMaxAttempts is how many times a webhook delivery is tried before it is dropped (with
// the default backoff, about seven hours).
const WebhookMaxAttempts = 15

// WebhookStore is what webhook deliveries need from persistence.
type WebhookStore interface {
	VerifyWebhookByID(ctx context.Context, id int64) (twofold.VerifyWebhook, error)
	WebhookDeliveryFailed(ctx context.Context, c twofold.Callback, httpStatus int, msg string, next time.Time) error
}

// Webhooks lets a Dispatcher deliver Verify webhooks: their store, and the application's auth
// token in clear, which signs them.
type Webhooks struct {
	Store WebhookStore
	Token func(ctx context.Context, appID int64) (string, error)
}

// SetWebhooks enables Verify webhook deliveries; without it they are dropped. Call it before Run.
func (d *Dispatcher) SetWebhooks(w Webhooks) { d.webhooks = w }

// TwilioSignature is Twilio's signature of a form POST to fullURL: base64 of the HMAC-SHA1,
// keyed by the auth token, of the URL followed by each parameter's name and value, sorted by name.
func TwilioSignature(authToken, fullURL string, params map[string]string) string {
	names := make([]string, 0, len(params))
	for k := range params {
		names = append(names, k)
	}
	sort.Strings(names)
	var b strings.Builder
	b.WriteString(fullURL)
	for _, k := range names {
		b.WriteString(k)
		b.WriteString(params[k])
	}
	mac := hmac.New(sha1.New, []byte(authToken))
	mac.Write([]byte(b.String()))
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// deliverWebhook makes one attempt of a Verify webhook delivery and records its outcome.
func (d *Dispatcher) deliverWebhook(ctx context.Context, c twofold.Callback, a *Attempt) {
	drop := func(reason string) {
		a.Dropped = true
		if err := d.store.DropCallback(ctx, c, reason); err != nil {
			d.log.Error("drop webhook delivery", "id", c.ID, "err", err)
		}
	}
	if d.webhooks.Store == nil || d.webhooks.Token == nil {
		drop("Verify webhooks are not delivered by this server")
		return
	}
	w, err := d.webhooks.Store.VerifyWebhookByID(ctx, c.WebhookID)
	if errors.Is(err, twofold.ErrNotFound) || (err == nil && w.Status != "enabled") {
		drop("the webhook was deleted or disabled")
		return
	}
	if err != nil {
		d.log.Error("webhook: load", "webhook_id", c.WebhookID, "err", err)
		return // the lease runs out and it is tried again
	}
	status, err := d.postWebhook(ctx, w, c)
	now := d.now()
	a.Status, a.Err = status, err
	if err == nil {
		a.OK = true
		if err := d.store.CallbackDelivered(ctx, c, status, now); err != nil {
			d.log.Error("record webhook delivery", "id", c.ID, "err", err)
		}
		d.log.Info("webhook delivered", "app_id", c.AppID, "event", c.RequestUUID, "status", status)
		return
	}
	d.log.Warn("webhook failed", "app_id", c.AppID, "event", c.RequestUUID, "attempt", c.Attempts+1, "err", err)
	if c.Attempts+1 >= WebhookMaxAttempts {
		drop(trim(fmt.Sprintf("gave up after %d attempts: %v", WebhookMaxAttempts, err)))
		return
	}
	if rerr := d.webhooks.Store.WebhookDeliveryFailed(ctx, c, status, trim(err.Error()), now.Add(d.backoff(c.Attempts))); rerr != nil {
		d.log.Error("record webhook failure", "id", c.ID, "err", rerr)
	}
}

// postWebhook sends the event's parameters to the webhook's URL, signed.
func (d *Dispatcher) postWebhook(ctx context.Context, w twofold.VerifyWebhook, c twofold.Callback) (int, error) {
	token, err := d.webhooks.Token(ctx, c.AppID)
	if err != nil {
		return 0, err
	}
	var params map[string]string
	if err := json.Unmarshal(c.Payload, &params); err != nil {
		return 0, fmt.Errorf("webhook payload: %w", err)
	}
	form := url.Values{}
	for k, v := range params {
		form.Set(k, v)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.URL, strings.NewReader(form.Encode()))
	if err != nil {
		return 0, fmt.Errorf("webhook request: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set(TwilioSignatureHeader, TwilioSignature(token, w.URL, params))
	req.Header.Set("User-Agent", "Twofold-Webhook/1")
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
