package push

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"mime"
	"net/http"
	"strings"
	"unicode"

	webpush "github.com/SherClockHolmes/webpush-go"

	"github.com/twofold-auth/twofold/internal/store"
)

// message is what a push says about a request: no hidden details and never the matching
// number, which the user must read off the customer's page.
type message struct {
	uuid, text, app string
	ttl             int // seconds
}

// Payload is the JSON a Web Push carries to the browser's service worker, which shows it and
// then fetches the request itself with the device's token.
type Payload struct {
	Type    string `json:"type"` // "approval_request"
	UUID    string `json:"uuid"`
	Message string `json:"message"`
	AppName string `json:"app_name"`
}

// sendWebPush encrypts the payload for the browser (RFC 8291, aes128gcm) and posts it to the
// push service with a VAPID signature (RFC 8292).
func (n *Notifier) sendWebPush(ctx context.Context, s store.PushSubscription, m message) result {
	payload, err := json.Marshal(Payload{Type: "approval_request", UUID: m.uuid, Message: m.text, AppName: m.app})
	if err != nil {
		return result{err: err}
	}
	res, err := webpush.SendNotificationWithContext(ctx, payload,
		&webpush.Subscription{Endpoint: s.Endpoint, Keys: webpush.Keys{P256dh: s.P256dh, Auth: s.Auth}},
		&webpush.Options{
			HTTPClient:      n.client,
			Subscriber:      n.subscriber,
			TTL:             m.ttl,
			Urgency:         webpush.UrgencyHigh,
			VAPIDPublicKey:  n.key.PublicKey(),
			VAPIDPrivateKey: base64.RawURLEncoding.EncodeToString(n.key.private),
		})
	if err != nil {
		return result{err: err}
	}
	return readResult(res)
}

// sendNtfy publishes a short text to the ntfy topic URL (https://docs.ntfy.sh/publish/).
// Credentials in the URL (https://user:pass@host/topic) are sent as basic auth.
func (n *Notifier) sendNtfy(ctx context.Context, s store.PushSubscription, m message) result {
	body := "Approve sign-in to " + m.app + "?"
	if m.text != "" {
		body += " " + m.text
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.Endpoint, strings.NewReader(body))
	if err != nil {
		return result{err: err}
	}
	h := req.Header
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("Title", headerText("Sign-in request: "+m.app))
	h.Set("Priority", "high")
	h.Set("Tags", "lock")
	if n.openURL != "" && !strings.ContainsAny(n.openURL, ",;") {
		h.Set("Click", n.openURL)
		h.Set("Actions", "view, Open authenticator, "+n.openURL+", clear=true")
	}
	res, err := n.client.Do(req)
	if err != nil {
		return result{err: err}
	}
	return readResult(res)
}

// readResult reads a little of the answer (a failure's reason) and closes it.
func readResult(res *http.Response) result {
	defer res.Body.Close()
	r := result{status: res.StatusCode}
	b, _ := io.ReadAll(io.LimitReader(res.Body, 4<<10))
	if res.StatusCode < 200 || res.StatusCode > 299 {
		r.body = clip(strings.TrimSpace(strings.Map(printable, string(b))), 200)
	}
	return r
}

// headerText makes s safe for a header value: no control characters, and RFC 2047 encoding
// (which ntfy decodes) when it is not plain ASCII.
func headerText(s string) string {
	return mime.QEncoding.Encode("utf-8", strings.Map(printable, s))
}

func printable(r rune) rune {
	if unicode.IsControl(r) {
		return ' '
	}
	return r
}
