package main

import (
	"context"
	"encoding/json"
	"time"
)

// TEMPORARY: the passkey calls of the client package (client/passkeys.go, being written on
// another branch), declared here so that the sample builds before it lands. Once it does, these
// types become client.PasskeyCeremony, client.Passkey and client.PasskeyLogin, and *client.Client
// satisfies passkeyAPI.

// PasskeyCeremony is a registration or sign-in begun in Twofold: its id, which stays on this
// server, and the options the browser's navigator.credentials takes ({"publicKey": {...}}).
type PasskeyCeremony struct {
	ID      string
	Options json.RawMessage
}

// Passkey is one of a user's passkeys.
type Passkey struct {
	ID         string
	Name       string
	CreatedAt  time.Time
	LastUsedAt time.Time
}

// PasskeyLogin is a passkey sign-in Twofold verified.
type PasskeyLogin struct {
	UserID       int64
	Passkey      Passkey
	UserVerified bool
}

// passkeyAPI is what the sample asks Twofold about passkeys.
type passkeyAPI interface {
	BeginPasskeyRegistration(ctx context.Context, userID int64, name string) (PasskeyCeremony, error)
	FinishPasskeyRegistration(ctx context.Context, userID int64, ceremony string, credential json.RawMessage, name string) (Passkey, error)
	BeginPasskeyLogin(ctx context.Context, userID int64) (PasskeyCeremony, error)
	FinishPasskeyLogin(ctx context.Context, ceremony string, credential json.RawMessage) (PasskeyLogin, error)
	Passkeys(ctx context.Context, userID int64) ([]Passkey, error)
	DeletePasskey(ctx context.Context, userID int64, id string) error
}
