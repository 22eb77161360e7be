package authyapi

import (
	"net/http"
	"time"

	"github.com/twofold-auth/twofold/internal/twofold"
)

// userKey names an end user for the per-user limits: the user's devices share them.
type userKey struct{ app, user int64 }

// limitDevice counts one request of device d against its own limit and its user's, taking from
// both or from neither, and returns the 60003 error when either is spent. A device that is
// refused by its own limit spends nothing of its user's, so a user's other devices still work
// while one of them floods.
func (a *API) limitDevice(d twofold.Device) *twofold.Error {
	now := a.now()
	if ok, wait := a.perDevice.Take(d.ID, now); !ok {
		a.metrics.Limited.WithLabelValues("device").Inc()
		return twofold.ErrLimit("request rate limit for this device", retryAfter(wait))
	}
	if ok, wait := a.perUser.Take(userKey{d.AppID, d.UserID}, now); !ok {
		a.perDevice.GiveBack(d.ID)
		a.metrics.Limited.WithLabelValues("device_user").Inc()
		return twofold.ErrLimit("request rate limit for this user's devices", retryAfter(wait))
	}
	return nil
}

// limitAddress counts one request of a route that needs no key or token against its client
// address, and answers 429 (60003) when the address is over its limit: false then, and the
// caller writes nothing more.
func (a *API) limitAddress(w http.ResponseWriter, r *http.Request) bool {
	ok, wait := a.perAddress.Take(a.cfg.TrustedProxies.Key(r), a.now())
	if ok {
		return true
	}
	a.metrics.Limited.WithLabelValues("address").Inc()
	writeError(w, twofold.ErrLimit("request rate limit for this address", retryAfter(wait)))
	return false
}

// retryAfter is at least a second: Retry-After counts whole seconds, and 0 would invite the
// client straight back.
func retryAfter(wait time.Duration) time.Duration { return max(wait, time.Second) }
