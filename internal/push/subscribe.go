package push

import (
	"context"
	"crypto/ecdh"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"

	"github.com/twofold-auth/twofold/internal/egress"
	"github.com/twofold-auth/twofold/internal/store"
	"github.com/twofold-auth/twofold/internal/twofold"
)

// The kinds of subscription.
const (
	KindWebPush = "webpush" // a browser's Push API subscription, through its vendor's push service
	KindNtfy    = "ntfy"    // an ntfy topic URL (https://ntfy.sh/<topic> or a self-hosted server)
)

// MaxPerDevice is how many subscriptions one device may hold: a browser or two and a topic,
// with room to spare, but not a way to fill the database.
const MaxPerDevice = 10

const maxEndpoint = 2048

// Subscription is what a device asks to be woken at: for Web Push, the fields of the browser's
// PushSubscription.toJSON(); for ntfy, the topic URL alone.
type Subscription struct {
	Kind     string
	Endpoint string
	P256dh   string // base64url of the browser's uncompressed P-256 public key
	Auth     string // base64url of the 16-byte authentication secret
}

// Subscribe saves s for device d, replacing its subscription to the same endpoint. Invalid
// input is a 60004 error naming the parameter.
func (n *Notifier) Subscribe(ctx context.Context, d twofold.Device, s Subscription) error {
	norm, err := Validate(s, n.cfg.Egress.Allowlist())
	if err != nil {
		return err
	}
	row := store.PushSubscription{AppID: d.AppID, DeviceID: d.ID, Kind: norm.Kind, Endpoint: norm.Endpoint,
		P256dh: norm.P256dh, Auth: norm.Auth, CreatedAt: n.now().UTC()}
	err = n.store.UpsertPushSubscription(ctx, &row, MaxPerDevice)
	if errors.Is(err, twofold.ErrConflict) {
		return twofold.ErrInvalidParam("endpoint", fmt.Sprintf("a device may have at most %d push subscriptions; remove one first", MaxPerDevice))
	}
	if err == nil && row.Kind == KindWebPush {
		n.webPushInUse()
	}
	return err
}

// Unsubscribe removes device d's subscription to endpoint. Removing one that is not there
// succeeds: the caller's wish is met either way.
func (n *Notifier) Unsubscribe(ctx context.Context, d twofold.Device, endpoint string) error {
	if endpoint == "" {
		return twofold.ErrInvalidParam("endpoint", "Parameter is required")
	}
	err := n.store.DeletePushSubscription(ctx, d.ID, endpoint)
	if errors.Is(err, twofold.ErrNotFound) {
		return nil
	}
	return err
}

// Validate checks a subscription and returns it normalized: the kind made explicit (a
// subscription with keys and no kind is Web Push) and keys in unpadded base64url. allow is the
// hosts the operator lets devices reach at private addresses and over http.
func Validate(s Subscription, allow egress.Allowlist) (Subscription, error) {
	if s.Kind == "" && (s.P256dh != "" || s.Auth != "") {
		s.Kind = KindWebPush
	}
	if err := checkEndpoint(s.Endpoint, allow); err != nil {
		return Subscription{}, err
	}
	switch s.Kind {
	case KindWebPush:
		p256dh, err := decodeKey(s.P256dh)
		if err != nil || len(p256dh) != 65 || p256dh[0] != 4 {
			return Subscription{}, twofold.ErrInvalidParam("keys[p256dh]", "must be an uncompressed P-256 public key (65 bytes, base64url)")
		}
		if _, err := ecdh.P256().NewPublicKey(p256dh); err != nil {
			return Subscription{}, twofold.ErrInvalidParam("keys[p256dh]", "is not a point on P-256")
		}
		auth, err := decodeKey(s.Auth)
		if err != nil || len(auth) != 16 {
			return Subscription{}, twofold.ErrInvalidParam("keys[auth]", "must be 16 bytes, base64url")
		}
		s.P256dh, s.Auth = base64.RawURLEncoding.EncodeToString(p256dh), base64.RawURLEncoding.EncodeToString(auth)
	case KindNtfy:
		if s.P256dh != "" || s.Auth != "" {
			return Subscription{}, twofold.ErrInvalidParam("keys", "ntfy subscriptions take no keys")
		}
	case "":
		return Subscription{}, twofold.ErrInvalidParam("kind", "Parameter is required")
	default:
		return Subscription{}, twofold.ErrInvalidParam("kind", "must be webpush or ntfy")
	}
	return s, nil
}

// checkEndpoint accepts absolute https URLs, and http URLs of hosts on allow. An endpoint
// whose host is refused before any connection (an IP literal of a loopback, private or
// link-local address, a localhost name) is refused here, for a clear answer; the rest are
// checked on every connection, on the address the host then resolves to.
func checkEndpoint(endpoint string, allow egress.Allowlist) error {
	if endpoint == "" {
		return twofold.ErrInvalidParam("endpoint", "Parameter is required")
	}
	if len(endpoint) > maxEndpoint {
		return twofold.ErrInvalidParam("endpoint", fmt.Sprintf("must be at most %d characters", maxEndpoint))
	}
	u, err := url.Parse(endpoint)
	if err != nil || u.Opaque != "" || u.Hostname() == "" || strings.ContainsAny(endpoint, " \t\r\n") {
		return twofold.ErrInvalidParam("endpoint", "must be an absolute https URL")
	}
	port := u.Port()
	if _, p, err := net.SplitHostPort(u.Host); err == nil && !validPort(p) {
		return twofold.ErrInvalidParam("endpoint", "has an invalid port")
	}
	if port == "" {
		port = map[string]string{"https": "443", "http": "80"}[u.Scheme]
	}
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && allow.Allows(u.Hostname(), port):
	default:
		return twofold.ErrInvalidParam("endpoint", "must be an absolute https URL (http only for hosts the operator allows)")
	}
	var refused *egress.RefusedError
	if err := allow.Check(u.Hostname(), port); errors.As(err, &refused) {
		return twofold.ErrInvalidParam("endpoint", "must name a public host, not a "+refused.Reason+
			" (an operator may allow hosts with --push-allow-hosts)")
	} else if err != nil {
		return twofold.ErrInvalidParam("endpoint", "has an invalid host")
	}
	return nil
}

func validPort(p string) bool {
	if p == "" || len(p) > 5 {
		return false
	}
	n := 0
	for _, c := range p {
		if c < '0' || c > '9' {
			return false
		}
		n = n*10 + int(c-'0')
	}
	return n > 0 && n < 65536
}

// decodeKey reads base64url as browsers write it (unpadded), and tolerates padding and the
// standard alphabet.
func decodeKey(s string) ([]byte, error) {
	s = strings.TrimRight(s, "=")
	if strings.ContainsAny(s, "+/") {
		return base64.RawStdEncoding.DecodeString(s)
	}
	return base64.RawURLEncoding.DecodeString(s)
}
