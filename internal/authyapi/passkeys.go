package authyapi

import (
	"encoding/hex"
	"encoding/json"
	"net/http"

	"github.com/twofold-auth/twofold/internal/twofold"
)

// Passkeys (WebAuthn), Twofold's addition to the Authy API (issue 21). The customer's backend
// begins a ceremony, hands options.publicKey to the browser (parseCreationOptionsFromJSON or
// parseRequestOptionsFromJSON), and sends back the browser's credential (toJSON()) to finish it.

func (a *API) passkeyRoutes(mux Mux) {
	const p = "/protected/json"
	a.handle(mux, "POST "+p+"/users/{id}/passkeys/registrations", a.beginPasskeyRegistration)
	// One pattern for registrations/{ceremony} and {passkey_id}/delete: as two they would be
	// ambiguous for the mux.
	a.handle(mux, "POST "+p+"/users/{id}/passkeys/{a}/{b}", a.passkeyAction)
	a.handle(mux, "GET "+p+"/users/{id}/passkeys", a.listPasskeys)
	a.handle(mux, "DELETE "+p+"/users/{id}/passkeys/{passkey}", a.deletePasskey)
	a.handle(mux, "POST "+p+"/passkeys/authentications", a.beginPasskeyLogin)
	a.handle(mux, "POST "+p+"/passkeys/authentications/{ceremony}", a.finishPasskeyLogin)
}

// passkeyJSON is a passkey on the wire.
type passkeyJSON struct {
	ID             string   `json:"id"`
	Name           string   `json:"name"`
	CreatedAt      *string  `json:"created_at"`
	LastUsedAt     *string  `json:"last_used_at"`
	BackupEligible bool     `json:"backup_eligible"`
	BackupState    bool     `json:"backup_state"`
	Transports     []string `json:"transports"`
	AAGUID         string   `json:"aaguid"`
}

func passkeyOut(p twofold.Passkey) passkeyJSON {
	transports := p.Transports
	if transports == nil {
		transports = []string{}
	}
	return passkeyJSON{ID: p.PublicID, Name: p.Name, CreatedAt: timestamp(p.CreatedAt), LastUsedAt: timestamp(p.LastUsedAt),
		BackupEligible: p.BackupEligible, BackupState: p.BackupState, Transports: transports, AAGUID: aaguid(p.AAGUID)}
}

// aaguid formats an authenticator model's id as a UUID; "" when it has none.
func aaguid(b []byte) string {
	if len(b) != 16 {
		return ""
	}
	h := hex.EncodeToString(b)
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// ceremonyJSON answers a begun ceremony.
type ceremonyJSON struct {
	Ceremony string          `json:"ceremony"`
	Options  json.RawMessage `json:"options"`
	Success  bool            `json:"success"`
}

// credentialParam reads the browser's credential: a JSON object, or the same as text (form
// bodies).
func credentialParam(p Params) ([]byte, error) {
	v, ok := p.Get("credential")
	if !ok {
		return nil, twofold.ErrInvalidParam("credential", "is required: the browser's PublicKeyCredential as JSON")
	}
	switch t := v.(type) {
	case map[string]any:
		return json.Marshal(t)
	case string:
		if json.Valid([]byte(t)) {
			return []byte(t), nil
		}
	}
	return nil, twofold.ErrInvalidParam("credential", "must be the browser's PublicKeyCredential as a JSON object")
}

func (a *API) passkeysOn() error {
	if a.passkeys == nil {
		return errNotFound
	}
	return nil
}

// passkeyUser is the user of a users/{id}/passkeys route, on a server that serves passkeys.
func (a *API) passkeyUser(r *http.Request) (int64, error) {
	if err := a.passkeysOn(); err != nil {
		return 0, err
	}
	id, ok := pathID(r, "id")
	if !ok {
		return 0, twofold.ErrUserNotFound()
	}
	return id, nil
}

// beginPasskeyRegistration: POST users/{id}/passkeys/registrations with an optional name.
func (a *API) beginPasskeyRegistration(w http.ResponseWriter, r *http.Request, c *call) error {
	id, err := a.passkeyUser(r)
	if err != nil {
		return err
	}
	name, err := scalarParam(c.params, "name")
	if err != nil {
		return err
	}
	cer, err := a.passkeys.BeginRegistration(r.Context(), c.app, id, name)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, ceremonyJSON{cer.ID, cer.Options, true})
	return nil
}

// passkeyAction dispatches POST users/{id}/passkeys/registrations/{ceremony} and
// users/{id}/passkeys/{passkey_id}/delete.
func (a *API) passkeyAction(w http.ResponseWriter, r *http.Request, c *call) error {
	switch {
	case r.PathValue("a") == "registrations":
		return a.finishPasskeyRegistration(w, r, c, r.PathValue("b"))
	case r.PathValue("b") == "delete":
		return a.removePasskey(w, r, c, r.PathValue("a"))
	}
	writeErrorStatus(w, http.StatusNotFound, errNotFound)
	return nil
}

func (a *API) finishPasskeyRegistration(w http.ResponseWriter, r *http.Request, c *call, ceremony string) error {
	id, err := a.passkeyUser(r)
	if err != nil {
		return err
	}
	name, err := scalarParam(c.params, "name")
	if err != nil {
		return err
	}
	cred, err := credentialParam(c.params)
	if err != nil {
		return err
	}
	p, err := a.passkeys.FinishRegistration(r.Context(), c.app, id, ceremony, cred, name)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, struct {
		Passkey passkeyJSON `json:"passkey"`
		Success bool        `json:"success"`
	}{passkeyOut(p), true})
	return nil
}

func (a *API) listPasskeys(w http.ResponseWriter, r *http.Request, c *call) error {
	id, err := a.passkeyUser(r)
	if err != nil {
		return err
	}
	list, err := a.passkeys.List(r.Context(), c.app, id)
	if err != nil {
		return err
	}
	out := make([]passkeyJSON, 0, len(list))
	for _, p := range list {
		out = append(out, passkeyOut(p))
	}
	writeJSON(w, http.StatusOK, struct {
		Passkeys []passkeyJSON `json:"passkeys"`
		Success  bool          `json:"success"`
	}{out, true})
	return nil
}

func (a *API) deletePasskey(w http.ResponseWriter, r *http.Request, c *call) error {
	return a.removePasskey(w, r, c, r.PathValue("passkey"))
}

func (a *API) removePasskey(w http.ResponseWriter, r *http.Request, c *call, passkey string) error {
	id, err := a.passkeyUser(r)
	if err != nil {
		return err
	}
	if err := a.passkeys.Remove(r.Context(), c.app, id, passkey); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, okMessage{"Passkey removed.", true})
	return nil
}

// beginPasskeyLogin: POST passkeys/authentications with user_id, or without for a usernameless
// sign-in.
func (a *API) beginPasskeyLogin(w http.ResponseWriter, r *http.Request, c *call) error {
	if err := a.passkeysOn(); err != nil {
		return err
	}
	id, present, err := c.params.Int("user_id")
	if err != nil || (present && id <= 0) {
		return twofold.ErrInvalidParam("user_id", "must be a user's id, a positive number")
	}
	cer, err := a.passkeys.BeginLogin(r.Context(), c.app, id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, ceremonyJSON{cer.ID, cer.Options, true})
	return nil
}

// finishPasskeyLogin: POST passkeys/authentications/{ceremony} with the credential.
func (a *API) finishPasskeyLogin(w http.ResponseWriter, r *http.Request, c *call) error {
	if err := a.passkeysOn(); err != nil {
		return err
	}
	cred, err := credentialParam(c.params)
	if err != nil {
		return err
	}
	l, err := a.passkeys.FinishLogin(r.Context(), c.app, r.PathValue("ceremony"), cred)
	if err != nil {
		return err
	}
	a.usage.Add(c.app.ID, a.now(), twofold.UsageAuths)
	writeJSON(w, http.StatusOK, struct {
		AuthyID      int64       `json:"authy_id"`
		Passkey      passkeyJSON `json:"passkey"`
		UserVerified bool        `json:"user_verified"`
		Success      bool        `json:"success"`
	}{l.UserID, passkeyOut(l.Passkey), l.UserVerified, true})
	return nil
}

// statusPasskey is one of the user's passkeys for users/{id}/status: ids and names.
type statusPasskey struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}
