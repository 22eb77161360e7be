package main

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/twofold-auth/twofold/client"
)

// passkeyAPI is what the sample asks Twofold about passkeys: *client.Client's calls (tests put
// a double in its place).
type passkeyAPI interface {
	BeginPasskeyRegistration(ctx context.Context, userID int64, name string) (client.PasskeyCeremony, error)
	FinishPasskeyRegistration(ctx context.Context, userID int64, ceremony string, credential json.RawMessage, name string) (client.Passkey, error)
	BeginPasskeyLogin(ctx context.Context, userID int64) (client.PasskeyCeremony, error)
	FinishPasskeyLogin(ctx context.Context, ceremony string, credential json.RawMessage) (client.PasskeyLogin, error)
	Passkeys(ctx context.Context, userID int64) ([]client.Passkey, error)
	DeletePasskey(ctx context.Context, userID int64, id string) error
}

// passkeyModes learns whether the Twofold application has passkeys (a relying party id) and
// allows signing in with a passkey alone, from the answer to a usernameless begin: the API
// key's application settings are the operator's (twofold app update --passkey-rp-id,
// --passkey-usernameless), and Twofold says them this way. The answer is kept a minute, so
// the login page does not ask every time and a change by the operator shows soon.
type passkeyModes struct {
	mu           sync.Mutex
	checked      time.Time
	enabled      bool
	usernameless bool
}

const passkeyModeTTL = time.Minute

// get returns the application's passkey modes, asking Twofold when the last answer is stale.
func (m *passkeyModes) get(ctx context.Context, api passkeyAPI, now time.Time) (enabled, usernameless bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.checked.IsZero() && now.Sub(m.checked) < passkeyModeTTL {
		return m.enabled, m.usernameless
	}
	// Twofold: begin a usernameless sign-in, which nobody finishes (it expires unused).
	_, err := api.BeginPasskeyLogin(ctx, 0)
	switch {
	case err == nil:
		m.enabled, m.usernameless = true, true
	case client.IsCode(err, client.CodeUsernamelessDisabled):
		m.enabled, m.usernameless = true, false
	case client.IsCode(err, client.CodePasskeysNotConfigured), isNotFound(err):
		// No relying party id, or a Twofold from before passkeys (no such route).
		m.enabled, m.usernameless = false, false
	default: // Twofold not answering: try again next time, offer what cannot do harm
		return true, false
	}
	m.checked = now
	return m.enabled, m.usernameless
}

func isNotFound(err error) bool {
	var e *client.Error
	return errors.As(err, &e) && e.HTTPStatus == http.StatusNotFound && e.Code == ""
}
