package authyapi

import (
	"net/http"
	"strconv"
	"time"

	"github.com/twofold-auth/twofold/internal/otp"
	"github.com/twofold-auth/twofold/internal/phone"
	"github.com/twofold-auth/twofold/internal/twofold"
	"github.com/twofold-auth/twofold/internal/users"
)

type okMessage struct {
	Message string `json:"message"`
	Success bool   `json:"success"`
}

// createUser: POST users/new with user[email], user[cellphone], user[country_code] (spec 2.1).
func (a *API) createUser(w http.ResponseWriter, r *http.Request, c *call) error {
	u, _, err := a.users.Register(r.Context(), c.app.ID, users.Contact{
		Email:       param(c.params, "user", "email"),
		Cellphone:   param(c.params, "user", "cellphone"),
		CountryCode: param(c.params, "user", "country_code"),
	})
	if err != nil {
		return err
	}
	type user struct {
		ID int64 `json:"id"`
	}
	writeJSON(w, http.StatusOK, struct {
		Message string `json:"message"`
		User    user   `json:"user"`
		Success bool   `json:"success"`
	}{"User created successfully.", user{u.ID}, true})
	return nil
}

// param reads a user field nested (user[email]) or, failing that, at the top level (email):
// both appear in the wild.
func param(p Params, group, name string) string {
	if v, ok := p.String(group, name); ok {
		return v
	}
	v, _ := p.String(name)
	return v
}

func (a *API) userStatus(w http.ResponseWriter, r *http.Request, c *call) error {
	id, ok := pathID(r, "id")
	if !ok {
		return twofold.ErrUserNotFound()
	}
	st, err := a.users.Status(r.Context(), c.app.ID, id)
	if err != nil {
		return err
	}
	u := st.User
	type status struct {
		AuthyID         int64    `json:"authy_id"`
		Confirmed       bool     `json:"confirmed"`
		Registered      bool     `json:"registered"`
		CountryCode     int      `json:"country_code"`
		PhoneNumber     string   `json:"phone_number"`
		Email           string   `json:"email"`
		Devices         []string `json:"devices"`
		HasHardToken    bool     `json:"has_hard_token"`
		AccountDisabled bool     `json:"account_disabled"`
		DetailedDevices []device `json:"detailed_devices"`
		DeletedDevices  []any    `json:"deleted_devices"`
		// Twofold's addition: the user's unspent recovery codes (0 without a set).
		RecoveryCodesRemaining int `json:"recovery_codes_remaining"`
		// Passkeys is Twofold's addition: the user's passkeys, ids and names.
		Passkeys []statusPasskey `json:"passkeys"`
	}
	remaining, err := a.remainingRecoveryCodes(r, c.app, id)
	if err != nil {
		return err
	}
	keys := []statusPasskey{}
	if a.passkeys != nil {
		list, err := a.passkeys.List(r.Context(), c.app, id)
		if err != nil {
			return err
		}
		keys = make([]statusPasskey, 0, len(list))
		for _, p := range list {
			keys = append(keys, statusPasskey{p.PublicID, p.Name})
		}
	}
	writeJSON(w, http.StatusOK, struct {
		Status  status `json:"status"`
		Message string `json:"message"`
		Success bool   `json:"success"`
	}{status{
		AuthyID: u.ID, Confirmed: u.Confirmed, Registered: st.Registered, CountryCode: u.CountryCode,
		PhoneNumber: number(u).MaskedLocal(), Email: u.Email, Devices: st.Devices,
		DetailedDevices: detailed(st.Detailed), DeletedDevices: []any{}, RecoveryCodesRemaining: remaining, Passkeys: keys,
	}, "User status.", true})
	return nil
}

// device is one entry of detailed_devices, in the shape of Authy's.
type device struct {
	DeviceType           string  `json:"device_type"`
	OSType               string  `json:"os_type"`
	Name                 string  `json:"name"`
	RegistrationDeviceID *string `json:"registration_device_id"`
	RegistrationMethod   string  `json:"registration_method"`
	DeviceID             int64   `json:"device_id"`
	LastSyncDate         int64   `json:"last_sync_date"`
	CreationDate         int64   `json:"creation_date"`
}

func detailed(devs []twofold.Device) []device {
	out := make([]device, 0, len(devs))
	for _, d := range devs {
		out = append(out, device{DeviceType: "twofold", OSType: d.OSType, Name: d.Name, RegistrationMethod: "sdk",
			DeviceID: d.ID, LastSyncDate: d.LastSeenAt.Unix(), CreationDate: d.CreatedAt.Unix()})
	}
	return out
}

func number(u twofold.User) phone.Number {
	return phone.Number{CountryCode: u.CountryCode, National: u.Phone}
}

// userPhone: the migration export of a user's phone number (spec 2.8), in the shape of Authy's
// (twilio.com/docs/authy/export-api-for-authy-user-phone-numbers): the national number without
// the country code, the country code as a string, E.164, and when the user last changed, plus
// the message and success every Twofold answer carries. Only for applications that enabled the
// migration tools (60154).
func (a *API) userPhone(w http.ResponseWriter, r *http.Request, c *call) error {
	id, ok := pathID(r, "id")
	if !ok && c.app.MigrationTools { // disabled, the service says so first, whoever is asked for
		return twofold.ErrUserNotFound()
	}
	u, err := a.users.ExportPhone(r.Context(), c.app, id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, struct {
		Message     string `json:"message"`
		PhoneNumber string `json:"phone_number"`
		CountryCode string `json:"country_code"`
		E164        string `json:"e164"`
		UpdatedAt   string `json:"updated_at"`
		Success     bool   `json:"success"`
	}{"Phone number.", u.Phone, strconv.Itoa(u.CountryCode), number(u).E164(), u.UpdatedAt.UTC().Format(time.RFC3339), true})
	return nil
}

// exportSecret: GET users/{id}/secret/export, the migration export of the seed of a user's TOTP
// app (twilio.com/docs/authy/export-totp-secret-seed-for-migrating-to-verify-totp): `secret`
// (base32) and `otp`, a code valid now. digits and period are Twofold's additions, so that an
// importer makes exactly the same TOTP (clients ignore keys they do not know). Only for
// applications that enabled the migration tools (60154).
func (a *API) exportSecret(w http.ResponseWriter, r *http.Request, c *call) error {
	id, ok := pathID(r, "id")
	if !ok && c.app.MigrationTools { // disabled, the service says so first, whoever is asked for
		return twofold.ErrUserNotFound()
	}
	e, err := a.verify.ExportSeed(r.Context(), c.app, id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, struct {
		Secret  string `json:"secret"`
		OTP     string `json:"otp"`
		Digits  int    `json:"digits"`
		Period  int    `json:"period"`
		Success bool   `json:"success"`
	}{otp.EncodeSecret(e.Secret), e.Code, e.Digits, e.Period, true})
	return nil
}

// userAction dispatches POST users/{a}/{b}: users/delete/{id}, users/{id}/remove,
// users/{id}/delete, users/{id}/register_activity, users/{id}/update, users/{id}/secret.
func (a *API) userAction(w http.ResponseWriter, r *http.Request, c *call) error {
	first, second := r.PathValue("a"), r.PathValue("b")
	idText, action := first, second
	if first == "delete" {
		idText, action = second, "delete"
	}
	handler := map[string]func(http.ResponseWriter, *http.Request, *call, int64) error{
		"delete":            a.deleteUser,
		"remove":            a.deleteUser,
		"register_activity": a.registerActivity,
		"update":            a.updateUser,
		"secret":            a.enrollAuthenticator,
	}[action]
	if handler == nil {
		writeErrorStatus(w, http.StatusNotFound, errNotFound)
		return nil
	}
	id, err := strconv.ParseInt(idText, 10, 64)
	if err != nil || id <= 0 {
		return twofold.ErrUserNotFound()
	}
	return handler(w, r, c, id)
}

func (a *API) deleteUser(w http.ResponseWriter, r *http.Request, c *call, id int64) error {
	if err := a.users.Delete(r.Context(), c.app.ID, id); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, okMessage{"User removed from application", true})
	return nil
}

func (a *API) registerActivity(w http.ResponseWriter, r *http.Request, c *call, id int64) error {
	data, err := c.params.StringMap("data")
	if err != nil {
		return twofold.ErrInvalidParam("data", "must be a hash")
	}
	typ, _ := c.params.String("type")
	ip, _ := c.params.String("user_ip")
	if err := a.users.RegisterActivity(r.Context(), c.app.ID, id, typ, data, ip); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, okMessage{"Activity was created.", true})
	return nil
}

func (a *API) updateUser(w http.ResponseWriter, r *http.Request, c *call, id int64) error {
	_, err := a.users.Update(r.Context(), c.app.ID, id, users.Change{
		Email:       param(c.params, "user", "email"),
		Cellphone:   param(c.params, "user", "cellphone"),
		CountryCode: param(c.params, "user", "country_code"),
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, okMessage{"User was updated successfully", true})
	return nil
}
