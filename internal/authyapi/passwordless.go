package authyapi

import (
	"net/http"

	"github.com/twofold-auth/twofold/internal/passwordless"
	"github.com/twofold-auth/twofold/internal/twofold"
)

// Passwordless sign-in with OneTouch, Twofold's addition to the OneTouch API in Authy's style
// (issue 19): the application passes on the name someone typed, Twofold finds the user and asks
// their device, and the answer never says whether the name is of a user.

// scalarParam reads an optional scalar parameter; a map or a list there is a bad parameter.
func scalarParam(p Params, name string) (string, error) {
	v, ok := p.String(name)
	if !ok && p.Has(name) {
		return "", twofold.ErrInvalidParam(name, "must be text")
	}
	return v, nil
}

// createPasswordless: POST /onetouch/json/passwordless_requests with email, custom_user_id or
// authy_id (exactly one), user_ip, and optionally message, details, hidden_details, logos and
// seconds_to_expire. It answers every accepted request alike: its uuid, the number to show
// and its expiry.
func (a *API) createPasswordless(w http.ResponseWriter, r *http.Request, c *call) error {
	if a.passwordless == nil {
		return errNotFound
	}
	ask, err := askParams(c.params)
	if err != nil {
		return err
	}
	st := passwordless.Start{Message: ask.Message, Details: ask.Details, HiddenDetails: ask.HiddenDetails, Logos: ask.Logos,
		SecondsToExpire: ask.SecondsToExpire}
	for _, f := range []struct {
		name string
		dst  *string
	}{{"email", &st.Email}, {"custom_user_id", &st.CustomUserID}, {"user_ip", &st.UserIP}} {
		if *f.dst, err = scalarParam(c.params, f.name); err != nil {
			return err
		}
	}
	if id, present, err := c.params.Int("authy_id"); err != nil || (present && id <= 0) {
		return twofold.ErrInvalidParam("authy_id", "must be a user's id, a positive number")
	} else if present {
		st.AuthyID = id
	}
	s, err := a.passwordless.Begin(r.Context(), c.app, st)
	if err != nil {
		return err
	}
	type begun struct {
		UUID      string  `json:"uuid"`
		Number    string  `json:"number"`
		ExpiresAt *string `json:"expires_at"`
	}
	writeJSON(w, http.StatusOK, struct {
		PasswordlessRequest begun `json:"passwordless_request"`
		Success             bool  `json:"success"`
	}{begun{s.UUID, s.Number, timestamp(s.ExpiresAt)}, true})
	return nil
}

// getPasswordless: GET /onetouch/json/passwordless_requests/{uuid}: its status, pending,
// approved, denied or expired, and, once approved, the Authy id of the user who signed in.
func (a *API) getPasswordless(w http.ResponseWriter, r *http.Request, c *call) error {
	if a.passwordless == nil {
		return errNotFound
	}
	s, err := a.passwordless.Status(r.Context(), c.app, r.PathValue("uuid"))
	if err != nil {
		return err
	}
	type state struct {
		UUID      string  `json:"uuid"`
		Status    string  `json:"status"`
		Number    string  `json:"number"`
		ExpiresAt *string `json:"expires_at"`
		AuthyID   int64   `json:"authy_id,omitempty"` // only once approved
	}
	writeJSON(w, http.StatusOK, struct {
		PasswordlessRequest state `json:"passwordless_request"`
		Success             bool  `json:"success"`
	}{state{s.UUID, string(s.Status), s.Number, timestamp(s.ExpiresAt), s.AuthyID}, true})
	return nil
}
