package authyapi

import (
	"net/http"
	"net/url"
	"time"

	"github.com/twofold-auth/twofold/internal/onetouch"
	"github.com/twofold-auth/twofold/internal/twofold"
)

// createApprovalRequest: POST /onetouch/json/users/{id}/approval_requests (spec 4.1).
func (a *API) createApprovalRequest(w http.ResponseWriter, r *http.Request, c *call) error {
	id, ok := pathID(r, "id")
	if !ok {
		return twofold.ErrUserNotFound()
	}
	p, err := askParams(c.params)
	if err != nil {
		return err
	}
	if nm, present, err := c.params.Bool("number_matching"); err != nil {
		return twofold.ErrInvalidParam("number_matching", "must be true or false")
	} else if present {
		p.NumberMatching = &nm
	}
	req, err := a.onetouch.Create(r.Context(), c.app, id, p)
	if err != nil {
		return err
	}
	type created struct {
		UUID   string `json:"uuid"`
		Number string `json:"number,omitempty"` // Twofold: show it to the user beside "check your phone"
	}
	writeJSON(w, http.StatusOK, struct {
		ApprovalRequest created `json:"approval_request"`
		Success         bool    `json:"success"`
	}{created{req.UUID, req.Number}, true})
	return nil
}

// askParams reads what every OneTouch ask takes (a request, a group, a passwordless sign-in):
// message, details, hidden_details, logos and seconds_to_expire.
func askParams(p Params) (onetouch.CreateParams, error) {
	var out onetouch.CreateParams
	var err error
	if out.Message, err = scalarParam(p, "message"); err != nil {
		return out, err
	}
	if out.Details, err = p.StringMap("details"); err != nil {
		return out, twofold.ErrInvalidParam("details", "must be a hash")
	}
	if out.HiddenDetails, err = p.StringMap("hidden_details"); err != nil {
		return out, twofold.ErrInvalidParam("hidden_details", "must be a hash")
	}
	if out.Logos, err = logos(p); err != nil {
		return out, err
	}
	if ttl, present, err := p.Int("seconds_to_expire"); err != nil {
		return out, twofold.ErrInvalidParam("seconds_to_expire", "must be a number of seconds")
	} else if present {
		out.SecondsToExpire = &ttl
	}
	return out, nil
}

// logos reads logos[][res|url] in any of its encodings (JSON array, indexed or Rails arrays).
func logos(p Params) ([]twofold.Logo, error) {
	list, err := p.List("logos")
	if err != nil {
		return nil, twofold.ErrInvalidParam("logos", "must be a list of {res, url}")
	}
	var out []twofold.Logo
	for _, el := range list {
		m, ok := el.(map[string]any)
		res, okRes := m["res"].(string)
		url, okURL := m["url"].(string)
		if !ok || !okRes || !okURL {
			return nil, twofold.ErrInvalidParam("logos", "each logo needs res and url")
		}
		out = append(out, twofold.Logo{Res: res, URL: url})
	}
	return out, nil
}

func timestamp(t time.Time) *string {
	if t.IsZero() {
		return nil
	}
	s := t.UTC().Format("2006-01-02T15:04:05Z")
	return &s
}

// getApprovalRequest: GET /onetouch/json/approval_requests/{uuid} (spec 4.2).
func (a *API) getApprovalRequest(w http.ResponseWriter, r *http.Request, c *call) error {
	req, err := a.onetouch.Get(r.Context(), c.app, r.PathValue("uuid"))
	if err != nil {
		return err
	}
	return a.writeApprovalRequest(w, r, c, req)
}

// closeApprovalRequest: POST /onetouch/json/approval_requests/{uuid}/close, Twofold's addition:
// the application closes its pending request (the user logged in another way), which devices
// then drop. It answers the request as GET does, now expired with reason "closed"; again, the
// same; 409/60079 for an answered request, 404/60049 for one that is not the application's.
func (a *API) closeApprovalRequest(w http.ResponseWriter, r *http.Request, c *call) error {
	req, err := a.onetouch.Close(r.Context(), c.app, r.PathValue("uuid"))
	if err != nil {
		return err
	}
	return a.writeApprovalRequest(w, r, c, req)
}

// writeApprovalRequest answers with the request in the shape of spec 4.2: every field
// authy-client asserts is present.
func (a *API) writeApprovalRequest(w http.ResponseWriter, r *http.Request, c *call, req twofold.ApprovalRequest) error {
	u, err := a.users.Get(r.Context(), c.app.ID, req.UserID)
	if err != nil {
		return err
	}
	var logos []twofold.Logo
	if len(req.Logos) > 0 {
		logos = req.Logos
	}
	type approval struct {
		AppName         string            `json:"_app_name"`
		AppSerialID     int64             `json:"_app_serial_id"`
		AuthyID         int64             `json:"_authy_id"`
		ID              string            `json:"_id"`
		UserEmail       string            `json:"_user_email"`
		AppID           string            `json:"app_id"`
		CreatedAt       *string           `json:"created_at"`
		Notified        bool              `json:"notified"`
		ProcessedAt     *string           `json:"processed_at"`
		SecondsToExpire int64             `json:"seconds_to_expire"`
		Status          string            `json:"status"`
		UpdatedAt       *string           `json:"updated_at"`
		UserID          string            `json:"user_id"`
		UUID            string            `json:"uuid"`
		Message         string            `json:"message"`
		Details         map[string]string `json:"details"`
		HiddenDetails   map[string]string `json:"hidden_details"`
		Logos           []twofold.Logo    `json:"logos"`
		Reason          string            `json:"reason,omitempty"`
		Number          string            `json:"number,omitempty"`
	}
	writeJSON(w, http.StatusOK, struct {
		ApprovalRequest approval `json:"approval_request"`
		Success         bool     `json:"success"`
	}{approval{
		AppName: c.app.Name, AppSerialID: c.app.ID, AuthyID: u.ID, ID: onetouch.ObjectID(3, req.ID), UserEmail: u.Email,
		AppID: onetouch.ObjectID(1, c.app.ID), CreatedAt: timestamp(req.CreatedAt), Notified: req.Notified,
		ProcessedAt: timestamp(req.ProcessedAt), SecondsToExpire: req.SecondsToExpire, Status: string(req.Status),
		UpdatedAt: timestamp(req.UpdatedAt), UserID: onetouch.ObjectID(2, u.ID), UUID: req.UUID, Message: req.Message,
		Details: req.Details, HiddenDetails: req.HiddenDetails, Logos: logos, Reason: req.Reason, Number: req.Number,
	}, true})
	return nil
}

// sdkRegistration: POST /protected/json/sdk/registrations (spec 8): a single-use token the
// customer's backend hands to the user's device.
func (a *API) sdkRegistration(w http.ResponseWriter, r *http.Request, c *call) error {
	id, present, err := c.params.Int("authy_id")
	if err != nil || !present || id <= 0 {
		return twofold.ErrInvalidParam("authy_id", "Parameter is required")
	}
	token, expires, err := a.devices.RegistrationToken(r.Context(), c.app.ID, id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, struct {
		RegistrationToken string  `json:"registration_token"`
		RegistrationURL   string  `json:"registration_url"`
		ExpiresAt         *string `json:"expires_at"`
		Message           string  `json:"message"`
		Success           bool    `json:"success"`
	}{token, a.baseURL(r) + "/authenticator/#register=" + token + "&app=" + url.QueryEscape(c.app.Name), timestamp(expires), "Registration token created.", true})
	return nil
}

// registrationStatus: GET /protected/json/registrations/status?custom_user_id= (spec 2.7): has
// the user scanned the QR code yet?
func (a *API) registrationStatus(w http.ResponseWriter, r *http.Request, c *call) error {
	customID, _ := c.params.String("custom_user_id")
	if customID == "" {
		return twofold.ErrInvalidParam("custom_user_id", "Parameter is required")
	}
	id, done, err := a.devices.RegistrationStatus(r.Context(), c.app.ID, customID)
	if err != nil {
		return err
	}
	type registration struct {
		Status  string `json:"status"`
		AuthyID int64  `json:"authy_id,omitempty"`
	}
	reg := registration{Status: "pending"}
	if done {
		reg = registration{Status: "completed", AuthyID: id}
	}
	writeJSON(w, http.StatusOK, struct {
		Registration registration `json:"registration"`
		Message      string       `json:"message"`
		Success      bool         `json:"success"`
	}{reg, "Registration status.", true})
	return nil
}

// sdkDeleteDevice: DELETE /protected/json/sdk/devices/{id}.
func (a *API) sdkDeleteDevice(w http.ResponseWriter, r *http.Request, c *call) error {
	id, ok := pathID(r, "id")
	if !ok {
		return twofold.Errorf(twofold.CodeDeviceNotFound, "Device not found.")
	}
	d, err := a.devices.Delete(r.Context(), c.app.ID, id)
	if err != nil {
		return err
	}
	a.live.Publish(d.AppID, d.UserID) // its open streams end
	writeJSON(w, http.StatusOK, okMessage{"Device removed.", true})
	return nil
}
