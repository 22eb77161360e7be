package authyapi

import (
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/twofold-auth/twofold/internal/accesslog"
	"github.com/twofold-auth/twofold/internal/audit"
	"github.com/twofold-auth/twofold/internal/devices"
	"github.com/twofold-auth/twofold/internal/onetouch"
	"github.com/twofold-auth/twofold/internal/otp"
	"github.com/twofold-auth/twofold/internal/twofold"
)

// The device API is Twofold's own (Authy never published the SDK's): authenticators register
// with a registration token, then authenticate with their access token as a Bearer token.
const devicePrefix = "/device/v1"

func (a *API) deviceRoutes(mux Mux) {
	mux.HandleFunc("POST "+devicePrefix+"/registrations", a.registerDevice)
	a.handleDevice(mux, "GET "+devicePrefix+"/device", a.deviceInfo)
	a.handleDevice(mux, "DELETE "+devicePrefix+"/device", a.deviceRemove)
	a.handleDevice(mux, "GET "+devicePrefix+"/approval_requests", a.deviceRequests)
	a.handleDevice(mux, "GET "+devicePrefix+"/approval_requests/{uuid}", a.deviceRequest)
	a.handleDevice(mux, "POST "+devicePrefix+"/approval_requests/{uuid}", a.deviceAnswer)
	a.handleDevice(mux, "GET "+devicePrefix+"/events", a.deviceEvents)
}

// deviceCall is one authenticated device request.
type deviceCall struct {
	device twofold.Device
	params Params
}

// handleDevice wraps a device's handler. The device's limits are applied as early as they can
// be: after the token's lookup (which says whose the request is) and before everything else the
// request costs, the body's decoding and the write that records the device was seen.
func (a *API) handleDevice(mux Mux, pattern string, h func(http.ResponseWriter, *http.Request, *deviceCall) error) {
	mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		token, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		d, err := a.devices.Lookup(r.Context(), strings.TrimSpace(token))
		if errors.Is(err, twofold.ErrNotFound) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="twofold device"`)
			a.fail(w, r, twofold.Errorf(twofold.CodeInvalidAccessKey, "Invalid device access token"))
			return
		}
		if err != nil {
			a.fail(w, r, err)
			return
		}
		accesslog.SetApp(w, d.AppID)
		if err := a.limitDevice(d); err != nil {
			writeError(w, err)
			return
		}
		params, err := readParams(r)
		if err != nil {
			a.fail(w, r, err)
			return
		}
		if err := a.devices.Seen(r.Context(), d); err != nil {
			a.fail(w, r, err)
			return
		}
		r = r.WithContext(audit.WithActor(r.Context(), twofold.DeviceActor(d.ID)))
		if err := h(w, r, &deviceCall{device: d, params: params}); err != nil {
			a.fail(w, r, err)
		}
	})
}

// registerDevice: POST /device/v1/registrations {registration_token, public_key, name, os_type}
// (and the web authenticator's touch_points). It needs no token of a device yet, so it is
// limited per client address.
func (a *API) registerDevice(w http.ResponseWriter, r *http.Request) {
	if !a.limitAddress(w, r) {
		return
	}
	params, err := readParams(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	token, _ := params.String("registration_token")
	jwt, _ := params.String("jwt")
	key, _ := params.String("public_key")
	name, _ := params.String("name")
	osType, _ := params.String("os_type")
	if strings.TrimSpace(osType) == osWeb {
		// What the browser runs on, in Authy's terms (ostype.go). touch_points is a hint:
		// without one, or with nonsense, the browser has no touch screen.
		touch, _, _ := params.Int("touch_points")
		osType = webOSType(r.UserAgent(), touch)
	}
	var reg devices.Registration
	switch {
	case jwt != "":
		reg, err = a.devices.RegisterWithJWT(r.Context(), jwt, []byte(key), name, osType)
	case token != "":
		reg, err = a.devices.Register(r.Context(), token, []byte(key), name, osType)
	default:
		err = twofold.ErrInvalidParam("registration_token", "Parameter is required (or jwt)")
	}
	if err != nil {
		a.fail(w, r, err)
		return
	}
	d := reg.Device
	u, err := a.users.Get(r.Context(), d.AppID, d.UserID)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	uri := otp.Key{Issuer: reg.App.Name, Account: "authy_id " + strconv.FormatInt(d.UserID, 10),
		TOTP: otp.TOTP{Secret: reg.Secret, Digits: d.Digits, Period: d.Period, Algorithm: otp.SHA1}}.URI()
	type totp struct {
		Secret string `json:"secret"`
		Digits int    `json:"digits"`
		Period int    `json:"period"`
		URI    string `json:"uri"`
	}
	writeJSON(w, http.StatusOK, struct {
		Device      deviceView `json:"device"`
		AccessToken string     `json:"access_token"`
		TOTP        totp       `json:"totp"`
		Message     string     `json:"message"`
		Success     bool       `json:"success"`
	}{viewDevice(d, reg.App, u), reg.AccessToken, totp{otp.EncodeSecret(reg.Secret), d.Digits, d.Period, uri},
		"Device registered.", true})
}

// deviceView is what a device is told of itself. Account names the user it belongs to, so
// that two accounts of one application can be told apart on a phone; TOTPWindow is how many
// steps either side of now the server accepts its codes (the application's setting), so an
// authenticator can show a code for as long as it is accepted.
type deviceView struct {
	ID         int64  `json:"id"`
	AuthyID    int64  `json:"authy_id"`
	AppID      int64  `json:"app_id"`
	AppName    string `json:"app_name"`
	Account    string `json:"account"`
	Name       string `json:"name"`
	OSType     string `json:"os_type"`
	TOTPWindow int    `json:"totp_window"`
}

func viewDevice(d twofold.Device, app twofold.App, u twofold.User) deviceView {
	return deviceView{ID: d.ID, AuthyID: d.UserID, AppID: app.ID, AppName: app.Name, Account: accountName(u), Name: d.Name,
		OSType: d.OSType, TOTPWindow: app.TOTPSkew}
}

// accountName is how the user's own authenticator names the account: the email the customer
// registered, else the customer's id of a user registered by QR code.
func accountName(u twofold.User) string {
	if u.Email != "" {
		return u.Email
	}
	return u.CustomUserID
}

func (a *API) deviceInfo(w http.ResponseWriter, r *http.Request, c *deviceCall) error {
	app, err := a.apps.Get(r.Context(), c.device.AppID)
	if err != nil {
		return err
	}
	u, err := a.users.Get(r.Context(), c.device.AppID, c.device.UserID)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, struct {
		Device  deviceView `json:"device"`
		Success bool       `json:"success"`
	}{viewDevice(c.device, app, u), true})
	return nil
}

func (a *API) deviceRemove(w http.ResponseWriter, r *http.Request, c *deviceCall) error {
	if _, err := a.devices.Delete(r.Context(), c.device.AppID, c.device.ID); err != nil {
		return err
	}
	a.live.Publish(c.device.AppID, c.device.UserID) // its open streams end
	writeJSON(w, http.StatusOK, okMessage{"Device removed.", true})
	return nil
}

// requestView is what a device sees of a request: never the hidden details, and never the
// matching number, which the user must read off the customer's page. A request an approval
// group asks of its user carries the group as it stands.
type requestView struct {
	UUID            string            `json:"uuid"`
	Status          string            `json:"status"`
	Message         string            `json:"message"`
	Details         map[string]string `json:"details"`
	Logos           []twofold.Logo    `json:"logos"`
	AppName         string            `json:"app_name"`
	NumberRequired  bool              `json:"number_required"`
	Reason          string            `json:"reason,omitempty"`
	CreatedAt       *string           `json:"created_at"`
	ExpiresAt       *string           `json:"expires_at"`
	SecondsToExpire int64             `json:"seconds_to_expire"`
	Group           *groupView        `json:"group,omitempty"`
}

// viewRequest is r as its device sees it, with g, its group (nil for none).
func viewRequest(r twofold.ApprovalRequest, appName string, g *groupView) requestView {
	logos := r.Logos
	if logos == nil {
		logos = []twofold.Logo{}
	}
	return requestView{
		UUID: r.UUID, Status: string(r.Status), Message: r.Message, Details: r.Details, Logos: logos, AppName: appName,
		NumberRequired: r.Number != "", Reason: r.Reason, CreatedAt: timestamp(r.CreatedAt), ExpiresAt: timestamp(r.ExpiresAt),
		SecondsToExpire: r.SecondsToExpire, Group: g,
	}
}

func (a *API) deviceRequests(w http.ResponseWriter, r *http.Request, c *deviceCall) error {
	status, _ := c.params.String("status")
	switch twofold.ApprovalStatus(status) {
	case "", twofold.Pending, twofold.Approved, twofold.Denied, twofold.Expired:
	default:
		return twofold.ErrInvalidParam("status", "must be pending, approved, denied or expired")
	}
	list, err := a.onetouch.ForDevice(r.Context(), c.device, twofold.ApprovalStatus(status), 50)
	if err != nil {
		return err
	}
	app, err := a.apps.Get(r.Context(), c.device.AppID)
	if err != nil {
		return err
	}
	views, err := a.viewRequests(r.Context(), list, app.Name)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, struct {
		ApprovalRequests []requestView `json:"approval_requests"`
		Success          bool          `json:"success"`
	}{views, true})
	return nil
}

func (a *API) writeRequest(w http.ResponseWriter, r *http.Request, c *deviceCall, req twofold.ApprovalRequest) error {
	app, err := a.apps.Get(r.Context(), c.device.AppID)
	if err != nil {
		return err
	}
	views, err := a.viewRequests(r.Context(), []twofold.ApprovalRequest{req}, app.Name)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, struct {
		ApprovalRequest requestView `json:"approval_request"`
		Success         bool        `json:"success"`
	}{views[0], true})
	return nil
}

func (a *API) deviceRequest(w http.ResponseWriter, r *http.Request, c *deviceCall) error {
	req, err := a.onetouch.OneForDevice(r.Context(), c.device, r.PathValue("uuid"))
	if err != nil {
		return err
	}
	return a.writeRequest(w, r, c, req)
}

// deviceAnswer: POST /device/v1/approval_requests/{uuid} {status, timestamp, signature, number, reason},
// the signature being ECDSA P-256 over onetouch.AnswerMessage.
func (a *API) deviceAnswer(w http.ResponseWriter, r *http.Request, c *deviceCall) error {
	var ans onetouch.Answer
	status, _ := c.params.String("status")
	ans.Status = twofold.ApprovalStatus(status)
	ts, present, err := c.params.Int("timestamp")
	if err != nil || !present {
		return twofold.ErrInvalidParam("timestamp", "Parameter is required")
	}
	ans.Timestamp = ts
	ans.Signature, _ = c.params.String("signature")
	ans.Number, _ = c.params.String("number")
	ans.Reason, _ = c.params.String("reason")
	req, err := a.onetouch.Answer(r.Context(), c.device, r.PathValue("uuid"), ans)
	if err != nil {
		return err
	}
	a.metrics.Approvals.WithLabelValues(string(req.Status)).Inc()
	return a.writeRequest(w, r, c, req)
}
