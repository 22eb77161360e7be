package authyapi

import (
	"context"
	"net/http"

	"github.com/twofold-auth/twofold/internal/push"
	"github.com/twofold-auth/twofold/internal/twofold"
)

// PushService keeps devices' push subscriptions (push.Notifier).
type PushService interface {
	VAPIDPublicKey() string
	Subscribe(ctx context.Context, d twofold.Device, s push.Subscription) error
	Unsubscribe(ctx context.Context, d twofold.Device, endpoint string) error
}

// PushRoutes registers the device API's push endpoints, with which a device that is not
// connected asks to be woken when a request for its user is created:
//
//	GET    /device/v1/push/vapid  {"public_key"}: the applicationServerKey to subscribe with
//	POST   /device/v1/push        {"kind":"webpush","endpoint","keys":{"p256dh","auth"}} (the
//	                              browser's PushSubscription.toJSON()) or {"kind":"ntfy","endpoint"}
//	DELETE /device/v1/push        {"endpoint"}
func (a *API) PushRoutes(mux Mux, svc PushService) {
	a.handleDevice(mux, "GET "+devicePrefix+"/push/vapid", func(w http.ResponseWriter, r *http.Request, c *deviceCall) error {
		writeJSON(w, http.StatusOK, struct {
			PublicKey string `json:"public_key"`
			Success   bool   `json:"success"`
		}{svc.VAPIDPublicKey(), true})
		return nil
	})
	a.handleDevice(mux, "POST "+devicePrefix+"/push", func(w http.ResponseWriter, r *http.Request, c *deviceCall) error {
		var s push.Subscription
		s.Kind, _ = c.params.String("kind")
		s.Endpoint, _ = c.params.String("endpoint")
		s.P256dh, _ = c.params.String("keys", "p256dh")
		s.Auth, _ = c.params.String("keys", "auth")
		if err := svc.Subscribe(r.Context(), c.device, s); err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, okMessage{"Push subscription saved.", true})
		return nil
	})
	a.handleDevice(mux, "DELETE "+devicePrefix+"/push", func(w http.ResponseWriter, r *http.Request, c *deviceCall) error {
		endpoint, _ := c.params.String("endpoint")
		if err := svc.Unsubscribe(r.Context(), c.device, endpoint); err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, okMessage{"Push subscription removed.", true})
		return nil
	})
}
