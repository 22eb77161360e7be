package browsertest

import (
	"context"
	"testing"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/webauthn"
	"github.com/chromedp/chromedp"
)

// Authenticator is a virtual WebAuthn authenticator added to a tab through the DevTools WebAuthn
// domain: the browser's navigator.credentials talks to it as to a platform authenticator (a
// phone's or laptop's built-in one), so pages can make and use passkeys without a person or a
// security key. Its keys live in the browser process and end with the tab.
type Authenticator struct {
	t   testing.TB
	ctx context.Context // the tab's
	ID  webauthn.AuthenticatorID
}

// AuthenticatorOptions changes the defaults of AddAuthenticator.
type AuthenticatorOptions struct {
	// NoUserVerification makes an authenticator without user verification (no PIN nor
	// biometrics): its assertions never carry the UV flag. The default verifies the user.
	NoUserVerification bool
	// NoResidentKeys makes an authenticator that cannot hold discoverable credentials, so it
	// cannot sign in without a username.
	NoResidentKeys bool
	// BackupEligible marks its credentials as synced passkeys (the BE and BS flags), as a
	// password manager's are; the default is a device-bound key.
	BackupEligible bool
	// SecurityKey makes a roaming authenticator on USB (a security key) rather than the
	// platform's own: Chrome allows one internal authenticator per tab.
	SecurityKey bool
}

// AddAuthenticator enables the WebAuthn domain in the tab of ctx (with the browser's own dialogs
// off) and adds a CTAP2.1 authenticator on the internal transport, with resident keys, user
// verification that succeeds, and user presence that succeeds at once: what a passkey on a phone
// or laptop is. It is removed at the end of the test.
func AddAuthenticator(t testing.TB, ctx context.Context, o AuthenticatorOptions) *Authenticator {
	t.Helper()
	a := &Authenticator{t: t, ctx: ctx}
	off := false
	if _, err := chromedp.Call(ctx, webauthn.Enable, webauthn.EnableParams{EnableUI: &off}); err != nil {
		t.Fatalf("enabling the WebAuthn domain: %v", err)
	}
	transport := webauthn.AuthenticatorTransportInternal
	if o.SecurityKey {
		transport = webauthn.AuthenticatorTransportUsb
	}
	res, err := chromedp.Call(ctx, webauthn.AddVirtualAuthenticator, webauthn.AddVirtualAuthenticatorParams{
		Options: &webauthn.VirtualAuthenticatorOptions{
			Protocol:                    webauthn.AuthenticatorProtocolCtap2,
			Ctap2version:                webauthn.Ctap2versionCtap21,
			Transport:                   transport,
			HasResidentKey:              !o.NoResidentKeys,
			HasUserVerification:         !o.NoUserVerification,
			IsUserVerified:              !o.NoUserVerification,
			AutomaticPresenceSimulation: true,
			DefaultBackupEligibility:    o.BackupEligible,
			DefaultBackupState:          o.BackupEligible,
		}})
	if err != nil {
		t.Fatalf("adding a virtual authenticator: %v", err)
	}
	a.ID = res.AuthenticatorID
	t.Cleanup(func() {
		// The tab may be gone already; then so is the authenticator.
		_, _ = chromedp.Call(ctx, webauthn.RemoveVirtualAuthenticator, webauthn.RemoveVirtualAuthenticatorParams{AuthenticatorID: a.ID})
	})
	return a
}

func (a *Authenticator) check(what string, err error) {
	a.t.Helper()
	if err != nil {
		a.t.Fatalf("virtual authenticator: %s: %v", what, err)
	}
}

// Credentials returns the credentials the authenticator holds, with their private keys and
// sign counts.
func (a *Authenticator) Credentials() []*webauthn.Credential {
	a.t.Helper()
	res, err := chromedp.Call(a.ctx, webauthn.GetCredentials, webauthn.GetCredentialsParams{AuthenticatorID: a.ID})
	a.check("get credentials", err)
	return res.Credentials
}

// Credential returns the only credential the authenticator holds, failing the test if it holds
// none or several.
func (a *Authenticator) Credential() *webauthn.Credential {
	a.t.Helper()
	creds := a.Credentials()
	if len(creds) != 1 {
		a.t.Fatalf("virtual authenticator holds %d credentials, want 1", len(creds))
	}
	return creds[0]
}

// AddCredential imports c (a credential read with Credentials, possibly changed, or a new one):
// how a test clones an authenticator, or winds its counter back.
func (a *Authenticator) AddCredential(c *webauthn.Credential) {
	a.t.Helper()
	// cdproto's Credential always sends generateCmtgKeyOnNextOperation, which an authenticator
	// without the cmtgKey extension refuses even when false: send the fields that exist.
	cred := addableCredential{
		CredentialID: c.CredentialID, IsResidentCredential: c.IsResidentCredential, RpID: c.RpID,
		PrivateKey: c.PrivateKey, UserHandle: c.UserHandle, SignCount: c.SignCount,
		BackupEligibility: c.BackupEligibility, BackupState: c.BackupState,
		UserName: c.UserName, UserDisplayName: c.UserDisplayName,
	}
	_, err := chromedp.Call(a.ctx, addCredential, addCredentialParams{AuthenticatorID: a.ID, Credential: cred})
	a.check("add credential", err)
}

// RemoveCredential forgets the credential id.
func (a *Authenticator) RemoveCredential(id []byte) {
	a.t.Helper()
	_, err := chromedp.Call(a.ctx, webauthn.RemoveCredential, webauthn.RemoveCredentialParams{AuthenticatorID: a.ID, CredentialID: id})
	a.check("remove credential", err)
}

// Clear forgets every credential.
func (a *Authenticator) Clear() {
	a.t.Helper()
	_, err := chromedp.Call(a.ctx, webauthn.ClearCredentials, webauthn.ClearCredentialsParams{AuthenticatorID: a.ID})
	a.check("clear credentials", err)
}

// SetUserVerified sets whether the next user verifications (PIN, biometrics) succeed.
func (a *Authenticator) SetUserVerified(ok bool) {
	a.t.Helper()
	_, err := chromedp.Call(a.ctx, webauthn.SetUserVerified, webauthn.SetUserVerifiedParams{AuthenticatorID: a.ID, IsUserVerified: ok})
	a.check("set user verified", err)
}

// ReimportWithSignCount removes the credential id and adds it back, same key, with its counter
// at count: a clone of the authenticator made when its counter stood at count. Its next
// assertion reports count+1; a relying party that saw more must refuse it.
func (a *Authenticator) ReimportWithSignCount(id []byte, count float64) {
	a.t.Helper()
	res, err := chromedp.Call(a.ctx, webauthn.GetCredential, webauthn.GetCredentialParams{AuthenticatorID: a.ID, CredentialID: id})
	a.check("get credential", err)
	a.RemoveCredential(id)
	clone := *res.Credential
	clone.SignCount = count
	a.AddCredential(&clone)
}

// SetResponseOverrides makes the authenticator's next responses carry a bogus (all-zero)
// signature, or clear the UV or UP flags, for tests of a relying party that must refuse them.
func (a *Authenticator) SetResponseOverrides(bogusSignature, badUV, badUP bool) {
	a.t.Helper()
	_, err := chromedp.Call(a.ctx, webauthn.SetResponseOverrideBits, webauthn.SetResponseOverrideBitsParams{
		AuthenticatorID: a.ID, IsBogusSignature: &bogusSignature, IsBadUV: &badUV, IsBadUP: &badUP})
	a.check("set response overrides", err)
}

// addCredential is WebAuthn.addCredential with only the credential fields every authenticator
// takes.
var addCredential = cdp.Command[addCredentialParams, cdp.Empty]{Method: webauthn.CommandAddCredential}

type addCredentialParams struct {
	AuthenticatorID webauthn.AuthenticatorID `json:"authenticatorId"`
	Credential      addableCredential        `json:"credential"`
}

type addableCredential struct {
	CredentialID         []byte  `json:"credentialId"`
	IsResidentCredential bool    `json:"isResidentCredential"`
	RpID                 string  `json:"rpId,omitempty"`
	PrivateKey           []byte  `json:"privateKey"`
	UserHandle           []byte  `json:"userHandle,omitempty"`
	SignCount            float64 `json:"signCount"`
	BackupEligibility    bool    `json:"backupEligibility"`
	BackupState          bool    `json:"backupState"`
	UserName             string  `json:"userName,omitempty"`
	UserDisplayName      string  `json:"userDisplayName,omitempty"`
}
