package client

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Passkeys (WebAuthn), Twofold's addition to the Authy API (docs/api.md). Your backend begins
// a ceremony, hands Options' publicKey to the browser, and sends the browser's answer back:
//
//	c, _ := tf.BeginPasskeyLogin(ctx, authyID)
//	// browser: PublicKeyCredential.parseRequestOptionsFromJSON(options.publicKey),
//	//          navigator.credentials.get(...), then credential.toJSON() back to your backend
//	login, err := tf.FinishPasskeyLogin(ctx, c.ID, credentialJSON)

// Passkey codes worth telling apart.
const (
	CodePasskeysNotConfigured   = "60170" // the application has no relying party id
	CodePasskeyCeremonyNotFound = "60171" // unknown, expired or already finished
	CodePasskeyInvalid          = "60172" // the assertion was refused (HTTP 401)
	CodePasskeyRegistration     = "60173" // the registration response was refused
	CodePasskeyNotFound         = "60174"
	CodePasskeyCloned           = "60175" // the signature counter went back: a cloned authenticator (401)
	CodeUsernamelessDisabled    = "60176"
	CodeNoPasskeys              = "60177" // the user has no passkey to sign in with
)

// PasskeyCeremony is a begun registration or sign-in: its ID, to finish it with, and Options,
// {"publicKey": {...}}, for the browser (PublicKeyCredential.parseCreationOptionsFromJSON or
// parseRequestOptionsFromJSON of its publicKey).
type PasskeyCeremony struct {
	ID      string          `json:"ceremony"`
	Options json.RawMessage `json:"options"`
}

// Passkey is a user's registered passkey.
type Passkey struct {
	ID             string    `json:"id"`
	Name           string    `json:"name"`
	CreatedAt      time.Time `json:"created_at"`
	LastUsedAt     time.Time `json:"last_used_at"` // zero: never used
	BackupEligible bool      `json:"backup_eligible"`
	BackupState    bool      `json:"backup_state"` // backed up (synced) now
	Transports     []string  `json:"transports"`
	AAGUID         string    `json:"aaguid"` // the authenticator model, when it says
}

// PasskeyLogin is a successful passkey sign-in: the user (their Authy id), the passkey used and
// whether the authenticator verified the user (PIN, biometrics).
type PasskeyLogin struct {
	UserID       int64   `json:"authy_id"`
	Passkey      Passkey `json:"passkey"`
	UserVerified bool    `json:"user_verified"`
}

// BeginPasskeyRegistration starts registering a passkey for the user; name is optional.
func (c *Client) BeginPasskeyRegistration(ctx context.Context, userID int64, name string) (PasskeyCeremony, error) {
	v := url.Values{}
	if name != "" {
		v.Set("name", name)
	}
	var out PasskeyCeremony
	err := c.protected(ctx, http.MethodPost, "/users/"+itoa(userID)+"/passkeys/registrations", v, &out)
	return out, err
}

// FinishPasskeyRegistration sends the browser's credential (PublicKeyCredential.toJSON()) for the
// ceremony and returns the passkey registered; name, when given, replaces the one given at the
// beginning.
func (c *Client) FinishPasskeyRegistration(ctx context.Context, userID int64, ceremony string, credential json.RawMessage, name string) (Passkey, error) {
	if !pathSafe(ceremony) {
		return Passkey{}, &Error{HTTPStatus: http.StatusNotFound, Code: CodePasskeyCeremonyNotFound, Message: "Passkey ceremony not found"}
	}
	v := url.Values{"credential": {string(credential)}}
	if name != "" {
		v.Set("name", name)
	}
	var out struct {
		Passkey Passkey `json:"passkey"`
	}
	err := c.protected(ctx, http.MethodPost, "/users/"+itoa(userID)+"/passkeys/registrations/"+ceremony, v, &out)
	return out.Passkey, err
}

// BeginPasskeyLogin starts a passkey sign-in for the user, or, with userID 0, a usernameless one
// (any discoverable passkey of the application; the application must allow it).
func (c *Client) BeginPasskeyLogin(ctx context.Context, userID int64) (PasskeyCeremony, error) {
	v := url.Values{}
	if userID != 0 {
		v.Set("user_id", itoa(userID))
	}
	var out PasskeyCeremony
	err := c.protected(ctx, http.MethodPost, "/passkeys/authentications", v, &out)
	return out, err
}

// FinishPasskeyLogin sends the browser's assertion (PublicKeyCredential.toJSON()) for the
// ceremony. Success names the user who signed in; a refused assertion is CodePasskeyInvalid
// (or CodePasskeyCloned), and every failure counts against the user's failure limit.
func (c *Client) FinishPasskeyLogin(ctx context.Context, ceremony string, credential json.RawMessage) (PasskeyLogin, error) {
	if !pathSafe(ceremony) {
		return PasskeyLogin{}, &Error{HTTPStatus: http.StatusNotFound, Code: CodePasskeyCeremonyNotFound, Message: "Passkey ceremony not found"}
	}
	var out PasskeyLogin
	err := c.protected(ctx, http.MethodPost, "/passkeys/authentications/"+ceremony, url.Values{"credential": {string(credential)}}, &out)
	return out, err
}

// Passkeys lists the user's passkeys.
func (c *Client) Passkeys(ctx context.Context, userID int64) ([]Passkey, error) {
	var out struct {
		Passkeys []Passkey `json:"passkeys"`
	}
	err := c.protected(ctx, http.MethodGet, "/users/"+itoa(userID)+"/passkeys", nil, &out)
	return out.Passkeys, err
}

// DeletePasskey removes the user's passkey id.
func (c *Client) DeletePasskey(ctx context.Context, userID int64, id string) error {
	if !pathSafe(id) {
		return &Error{HTTPStatus: http.StatusNotFound, Code: CodePasskeyNotFound, Message: "Passkey not found."}
	}
	return c.protected(ctx, http.MethodPost, "/users/"+itoa(userID)+"/passkeys/"+id+"/delete", url.Values{}, nil)
}

// pathSafe reports whether s can be a path segment as it is.
func pathSafe(s string) bool {
	return s != "" && s != "." && s != ".." && !strings.ContainsAny(s, "/?#% ")
}
