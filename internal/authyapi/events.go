package authyapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/twofold-auth/twofold/internal/twofold"
)

// keepAlive is how often an idle event stream sends a comment, so proxies keep it open and dead
// connections are noticed.
const keepAlive = 15 * time.Second

// deviceEvents: GET /device/v1/events, a Server-Sent Events stream of the device user's approval
// requests. Each pending request is sent once as an "approval_request" event whose id is the
// request's sequence number; a reconnecting client sends Last-Event-ID (browsers do it
// themselves) and gets what it missed. Later changes of a request it was sent come as
// "approval_request_update" events, and a resumed stream first says where each request the
// client already had stands. Wake-ups come from this server's broker; the stream always
// reads the store, so nothing depends on a wake-up arriving.
func (a *API) deviceEvents(w http.ResponseWriter, r *http.Request, c *deviceCall) error {
	rc := http.NewResponseController(w)
	if err := rc.SetWriteDeadline(time.Time{}); err != nil {
		return fmt.Errorf("event stream: %w", err)
	}
	last, _ := strconv.ParseInt(r.Header.Get("Last-Event-ID"), 10, 64)
	if v, ok := c.params.String("last_event_id"); ok && last == 0 {
		last, _ = strconv.ParseInt(v, 10, 64)
	}
	app, err := a.apps.Get(r.Context(), c.device.AppID)
	if err != nil {
		return err
	}
	sub, cancel := a.live.Subscribe(c.device.AppID, c.device.UserID)
	defer cancel()

	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	w.WriteHeader(http.StatusOK)
	fmt.Fprintf(w, "retry: 2000\n\n")

	sent := map[string]twofold.ApprovalStatus{} // requests sent on this stream, by uuid
	resumed := last > 0                         // the client already has requests up to last
	ticker := time.NewTicker(keepAlive)
	defer ticker.Stop()
	for {
		// A device removed while connected gets nothing more.
		if ok, err := a.devices.Registered(r.Context(), c.device); err != nil || !ok {
			return nil
		}
		list, err := a.onetouch.ForDevice(r.Context(), c.device, "", 50)
		if err != nil {
			return nil // the status line is out; the client reconnects
		}
		slices.Reverse(list) // oldest first, so ids only grow
		for _, req := range list {
			data, _ := json.Marshal(viewRequest(req, app.Name))
			switch status, ok := sent[req.UUID]; {
			case !ok && req.Status == twofold.Pending && req.ID > last:
				fmt.Fprintf(w, "id: %d\nevent: approval_request\ndata: %s\n\n", req.ID, data)
				last = req.ID
			case ok && status != req.Status, !ok && resumed && req.ID <= last:
				// A change, or, on resuming, where a request the client had stands now.
				fmt.Fprintf(w, "event: approval_request_update\ndata: %s\n\n", data)
			default:
				continue
			}
			sent[req.UUID] = req.Status
		}
		resumed = false
		if err := rc.Flush(); err != nil {
			return nil
		}
		select {
		case <-r.Context().Done():
			return nil
		case <-a.stopStreams:
			return nil
		case <-sub.C:
		case <-ticker.C:
			fmt.Fprintf(w, ": keep-alive\n\n")
		}
	}
}
