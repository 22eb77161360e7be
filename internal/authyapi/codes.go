package authyapi

import (
	"errors"
	"net/http"
	"strings"

	"github.com/twofold-auth/twofold/internal/twofold"
	"github.com/twofold-auth/twofold/internal/verify"
)

// sendCode: GET sms/{id}, GET call/{id}, POST email/{id} (spec 3.1-3.3).
func (a *API) sendCode(ch twofold.Channel) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request, c *call) error {
		id, ok := pathID(r, "id")
		if !ok {
			return twofold.ErrUserNotFound()
		}
		force, err := boolParam(c.params, "force")
		if err != nil {
			return err
		}
		action, _ := c.params.String("action")
		actionMessage, _ := c.params.String("action_message")
		locale, _ := c.params.String("locale")
		sent, err := a.verify.Send(r.Context(), c.app, id, verify.SendParams{
			Channel: ch, Force: force, Action: action, ActionMessage: actionMessage, Locale: locale,
		})
		if err != nil {
			return err
		}
		masked := number(sent.User).Masked()
		if sent.Ignored {
			msg := "Ignored: SMS is not needed for smartphones. Pass force=true if you want to actually send it anyway."
			if ch == twofold.Call {
				msg = "Ignored: Call is not needed for smartphones. Pass force=true if you want to actually call anyway."
			}
			writeJSON(w, http.StatusOK, struct {
				Message   string `json:"message"`
				Cellphone string `json:"cellphone"`
				Device    string `json:"device"`
				Ignored   bool   `json:"ignored"`
				Success   bool   `json:"success"`
			}{msg, masked, sent.Device, true, true})
			return nil
		}
		switch ch {
		case twofold.Email:
			writeJSON(w, http.StatusOK, struct {
				Success bool   `json:"success"`
				Message string `json:"message"`
				Email   string `json:"email"`
				EmailID string `json:"email_id"`
			}{true, "Email token was sent", sent.User.Email, sent.Message.SID})
		default:
			msg := "SMS token was sent"
			if ch == twofold.Call {
				msg = "Call started..."
			}
			writeJSON(w, http.StatusOK, struct {
				Success   bool   `json:"success"`
				Message   string `json:"message"`
				Cellphone string `json:"cellphone"`
			}{true, msg, masked})
		}
		return nil
	}
}

func boolParam(p Params, name string) (bool, error) {
	v, _, err := p.Bool(name)
	if err != nil {
		return false, twofold.ErrInvalidParam(name, "must be true or false")
	}
	return v, nil
}

// verifyDevice is the device object of a successful verify (authy-java's fixture).
type verifyDevice struct {
	ID                    *int64  `json:"id"`
	OSType                string  `json:"os_type"`
	RegistrationDate      int64   `json:"registration_date"`
	RegistrationMethod    *string `json:"registration_method"`
	RegistrationCountry   *string `json:"registration_country"`
	RegistrationRegion    *string `json:"registration_region"`
	RegistrationCity      *string `json:"registration_city"`
	Country               *string `json:"country"`
	Region                *string `json:"region"`
	City                  *string `json:"city"`
	IP                    *string `json:"ip"`
	LastAccountRecoveryAt *int64  `json:"last_account_recovery_at"`
	LastSyncDate          *int64  `json:"last_sync_date"`
}

// verifyToken: GET verify/{token}/{id} (spec 3.4). Success carries "success":"true" as a string,
// as the real API did (sftpgo's parser depends on it).
func (a *API) verifyToken(w http.ResponseWriter, r *http.Request, c *call) error {
	id, ok := pathID(r, "id")
	if !ok {
		a.metrics.Verifications.WithLabelValues("unknown_user").Inc()
		return twofold.ErrUserDoesNotExist()
	}
	force, err := boolParam(c.params, "force")
	if err != nil {
		return err
	}
	action, _ := c.params.String("action")
	res, err := a.verify.CheckResult(r.Context(), c.app, id, r.PathValue("token"), verify.CheckParams{Action: action, Force: force})
	method := res.Method
	if err != nil {
		a.metrics.Verifications.WithLabelValues(outcome(err)).Inc()
		return err
	}
	a.metrics.Verifications.WithLabelValues("success").Inc()
	osType := map[verify.Method]string{verify.MethodTOTP: "authenticator"}[method]
	if osType == "" {
		osType = "sms"
	}
	if method == verify.MethodRecoveryCode {
		// Twofold's addition: a recovery code was spent, a factor of its own. The customer
		// should have the user re-enrol (and make a new set before the last is spent).
		remaining := res.Recovery.Remaining
		writeJSON(w, http.StatusOK, struct {
			Message   string `json:"message"`
			Token     string `json:"token"`
			Success   string `json:"success"`
			Factor    string `json:"factor"`
			Remaining *int   `json:"recovery_codes_remaining"`
		}{"Token is valid.", "is valid", "true", string(verify.MethodRecoveryCode), &remaining})
		return nil
	}
	writeJSON(w, http.StatusOK, struct {
		Message string       `json:"message"`
		Token   string       `json:"token"`
		Success string       `json:"success"`
		Device  verifyDevice `json:"device"`
	}{"Token is valid.", "is valid", "true", verifyDevice{OSType: osType, RegistrationDate: c.app.CreatedAt.Unix()}})
	return nil
}

func outcome(err error) string {
	switch twofold.ErrorCode(err) {
	case twofold.CodeTokenInvalid, twofold.CodePhoneVerificationIncorrect:
		return "invalid"
	case twofold.CodePhoneVerificationNotFound:
		return "not_found"
	case twofold.CodeTokenReused:
		return "reused"
	case twofold.CodeRateLimited:
		return "rate_limited"
	case twofold.CodeUserDoesNotExist:
		return "unknown_user"
	default:
		return "error"
	}
}

// enrollAuthenticator: POST users/{id}/secret (spec 2.6). Beyond Authy, the response carries the
// otpauth URI so any authenticator app can be used without scanning.
func (a *API) enrollAuthenticator(w http.ResponseWriter, r *http.Request, c *call, id int64) error {
	size, _, err := c.params.Int("qr_size")
	if err != nil {
		return twofold.ErrInvalidParam("qr_size", "must be a number")
	}
	label, _ := c.params.String("label")
	e, err := a.verify.Enroll(r.Context(), c.app, id, label, int(size))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, struct {
		Message string `json:"message"`
		Label   string `json:"label"`
		QRCode  string `json:"qr_code"`
		URI     string `json:"uri"`
		Success bool   `json:"success"`
	}{"QR code generated.", e.Label, a.baseURL(r) + "/qr/" + e.QRLink + ".png", e.URI, true})
	return nil
}

func (a *API) baseURL(r *http.Request) string {
	if a.cfg.PublicURL != "" {
		return strings.TrimRight(a.cfg.PublicURL, "/")
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

// qrImage serves the PNG of an enrolment's QR code. The link is the capability: unguessable,
// short-lived, and dead once the user re-enrols. The image holds a secret, so it is never cached.
func (a *API) qrImage(w http.ResponseWriter, r *http.Request) {
	if !a.limitAddress(w, r) { // a page shows it with no key: limited per client address
		return
	}
	token, ok := strings.CutSuffix(r.PathValue("file"), ".png")
	if !ok {
		writeErrorStatus(w, http.StatusNotFound, errNotFound)
		return
	}
	uri, size, err := a.verify.QR(r.Context(), token)
	if errors.Is(err, verify.ErrQRGone) {
		writeErrorStatus(w, http.StatusNotFound, twofold.Errorf(twofold.CodeQRCodeFailed, "QR code not found or expired"))
		return
	}
	if err != nil {
		a.fail(w, r, err)
		return
	}
	png, err := verify.QRPNG(uri, size)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "image/png")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Referrer-Policy", "no-referrer")
	w.Write(png)
}
