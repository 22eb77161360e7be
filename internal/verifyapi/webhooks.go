package verifyapi

import (
	"net/http"

	"github.com/twofold-auth/twofold/internal/apps"
	"github.com/twofold-auth/twofold/internal/twofold"
)

// Webhooks (/v2/Services/{service}/Webhooks): a service's subscriptions to factor and challenge
// events. The rules and the delivery are internal/apps (verifywebhooks.go) and internal/callback
// (twilio.go): signed as Twilio signs, delivered at least once.

// webhookJSON is a webhook on the wire.
type webhookJSON struct {
	SID           string   `json:"sid"`
	AccountSID    string   `json:"account_sid"`
	ServiceSID    string   `json:"service_sid"`
	FriendlyName  string   `json:"friendly_name"`
	EventTypes    []string `json:"event_types"`
	Status        string   `json:"status"`
	Version       string   `json:"version"`
	WebhookURL    string   `json:"webhook_url"`
	WebhookMethod string   `json:"webhook_method"`
	DateCreated   string   `json:"date_created"`
	DateUpdated   string   `json:"date_updated"`
	URL           string   `json:"url"`
}

func (a *API) webhookJSON(r *http.Request, c *call, svc twofold.VerifyService, w twofold.VerifyWebhook) webhookJSON {
	return webhookJSON{
		SID: sid(WebhookPrefix, w.PublicID), AccountSID: c.caller.AccountSID, ServiceSID: sid(ServicePrefix, svc.PublicID),
		FriendlyName: w.Name, EventTypes: w.EventTypes, Status: w.Status, Version: w.Version, WebhookURL: w.URL,
		WebhookMethod: http.MethodPost,
		DateCreated:   w.CreatedAt.UTC().Format(timeFormat), DateUpdated: w.UpdatedAt.UTC().Format(timeFormat),
		URL: a.baseURL(r) + Prefix + "/Services/" + sid(ServicePrefix, svc.PublicID) + "/Webhooks/" + sid(WebhookPrefix, w.PublicID),
	}
}

// readWebhook applies the request's webhook parameters to w.
func readWebhook(p Params, w *twofold.VerifyWebhook) {
	p.Text("FriendlyName", &w.Name)
	p.Text("WebhookUrl", &w.URL)
	p.Text("Status", &w.Status)
	p.Text("Version", &w.Version)
	if p.Has("EventTypes") {
		w.EventTypes = p.List("EventTypes")
	}
}

// webhook loads the path's service and its webhook.
func (a *API) webhook(r *http.Request, c *call) (twofold.VerifyService, twofold.VerifyWebhook, error) {
	svc, err := a.service(r, c)
	if err != nil {
		return twofold.VerifyService{}, twofold.VerifyWebhook{}, err
	}
	id, ok := publicID(WebhookPrefix, r.PathValue("sid"))
	if !ok {
		return twofold.VerifyService{}, twofold.VerifyWebhook{}, twofold.ErrNotFound
	}
	w, err := a.apps.VerifyWebhook(r.Context(), c.app(), svc, id)
	return svc, w, err
}

// createWebhook: POST /v2/Services/{service}/Webhooks.
func (a *API) createWebhook(w http.ResponseWriter, r *http.Request, c *call) error {
	svc, err := a.service(r, c)
	if err != nil {
		return err
	}
	for _, name := range []string{"FriendlyName", "EventTypes", "WebhookUrl"} {
		if _, err := c.params.Required(name); err != nil {
			return err
		}
	}
	hook := apps.NewVerifyWebhook()
	readWebhook(c.params, &hook)
	hook, err = a.apps.CreateVerifyWebhook(r.Context(), c.app(), svc, hook)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, a.webhookJSON(r, c, svc, hook))
	return nil
}

// fetchWebhook: GET /v2/Services/{service}/Webhooks/{sid}.
func (a *API) fetchWebhook(w http.ResponseWriter, r *http.Request, c *call) error {
	svc, hook, err := a.webhook(r, c)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, a.webhookJSON(r, c, svc, hook))
	return nil
}

// updateWebhook: POST /v2/Services/{service}/Webhooks/{sid}; parameters not sent stay as they are.
func (a *API) updateWebhook(w http.ResponseWriter, r *http.Request, c *call) error {
	svc, hook, err := a.webhook(r, c)
	if err != nil {
		return err
	}
	readWebhook(c.params, &hook)
	if hook, err = a.apps.UpdateVerifyWebhook(r.Context(), c.app(), hook); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, a.webhookJSON(r, c, svc, hook))
	return nil
}

// deleteWebhook: DELETE /v2/Services/{service}/Webhooks/{sid}: 204.
func (a *API) deleteWebhook(w http.ResponseWriter, r *http.Request, c *call) error {
	svc, err := a.service(r, c)
	if err != nil {
		return err
	}
	id, ok := publicID(WebhookPrefix, r.PathValue("sid"))
	if !ok {
		return twofold.ErrNotFound
	}
	if err := a.apps.DeleteVerifyWebhook(r.Context(), c.app(), svc, id); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// listWebhooks: GET /v2/Services/{service}/Webhooks, oldest first, paged.
func (a *API) listWebhooks(w http.ResponseWriter, r *http.Request, c *call) error {
	svc, err := a.service(r, c)
	if err != nil {
		return err
	}
	pg, err := readPage(c.params)
	if err != nil {
		return err
	}
	list, err := a.apps.VerifyWebhooks(r.Context(), c.app(), svc, pg.After, pg.Offset(), pg.Size+1)
	if err != nil {
		return err
	}
	more := len(list) > pg.Size
	list = list[:min(len(list), pg.Size)]
	out := make([]webhookJSON, 0, len(list))
	var last int64
	for _, hook := range list {
		out = append(out, a.webhookJSON(r, c, svc, hook))
		last = hook.ID
	}
	writeJSON(w, http.StatusOK, struct {
		Webhooks []webhookJSON `json:"webhooks"`
		Meta     Meta          `json:"meta"`
	}{out, a.meta(r, "webhooks", pg, last, more)})
	return nil
}
