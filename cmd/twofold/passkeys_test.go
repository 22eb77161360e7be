package main

import (
	"context"
	"slices"
	"testing"

	"github.com/twofold-auth/twofold/client"
	"github.com/twofold-auth/twofold/internal/audit"
	"github.com/twofold-auth/twofold/internal/passkeys/passkeytest"
	"github.com/twofold-auth/twofold/internal/store/storetest"
)

// Passkeys through the real server, on both engines: the operator sets the relying party with
// `twofold app update`, the customer's backend registers a passkey and signs in with it as
// second factor and usernameless through the Go client, and the audit trail records each step.
func TestPasskeysEndToEnd(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) { passkeysEndToEnd(t) })
	t.Run("postgres", func(t *testing.T) { passkeysEndToEnd(t, "--database", storetest.Schema(t)) })
}

func passkeysEndToEnd(t *testing.T, args ...string) {
	s := startServer(t, "", append([]string{"--rate-limit", "off"}, args...)...)
	ctx := context.Background()
	c, err := client.New(s.url, s.key, client.WithHTTPClient(s.client))
	if err != nil {
		t.Fatal(err)
	}
	id, err := c.RegisterUser(ctx, client.NewUser{Email: "ana@example.com", Phone: "2015550123", CountryCode: "1"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.BeginPasskeyRegistration(ctx, id, "Laptop"); !client.IsCode(err, client.CodePasskeysNotConfigured) {
		t.Fatalf("before the operator set a relying party: %v", err)
	}
	var app appJSON
	s.cliJSON(&app, "app", "update", "1", "--passkey-rp-id", "shop.example", "--passkey-origins", "https://login.shop.example",
		"--passkey-usernameless")
	if app.PasskeyRPID != "shop.example" || !slices.Equal(app.PasskeyOrigins, []string{"https://login.shop.example"}) ||
		app.PasskeyUV != "preferred" || !app.PasskeyUsernameless {
		t.Fatalf("app update: %+v", app)
	}

	auth := passkeytest.New("https://login.shop.example")
	cer, err := c.BeginPasskeyRegistration(ctx, id, "Laptop")
	if err != nil {
		t.Fatal(err)
	}
	resp, _ := auth.Register(cer.Options)
	pk, err := c.FinishPasskeyRegistration(ctx, id, cer.ID, resp, "")
	if err != nil || pk.Name != "Laptop" {
		t.Fatalf("register: %+v %v", pk, err)
	}
	for _, user := range []int64{id, 0} {
		cer, err := c.BeginPasskeyLogin(ctx, user)
		if err != nil {
			t.Fatal(err)
		}
		assertion, _ := auth.Assert(cer.Options)
		l, err := c.FinishPasskeyLogin(ctx, cer.ID, assertion)
		if err != nil || l.UserID != id || l.Passkey.ID != pk.ID {
			t.Fatalf("sign in (user %d): %+v %v", user, l, err)
		}
	}
	clone := *auth
	clone.Counter = 0
	cer, _ = c.BeginPasskeyLogin(ctx, id)
	assertion, _ := clone.Assert(cer.Options)
	if _, err := c.FinishPasskeyLogin(ctx, cer.ID, assertion); !client.IsCode(err, client.CodePasskeyCloned) {
		t.Fatalf("a clone: %v", err)
	}
	st, err := c.UserStatus(ctx, id)
	if err != nil || len(st.Passkeys) != 1 || st.Passkeys[0].ID != pk.ID {
		t.Fatalf("status: %+v %v", st, err)
	}
	if err := c.DeletePasskey(ctx, id, pk.ID); err != nil {
		t.Fatal(err)
	}
	var events []audit.Entry
	s.cliJSON(&events, "audit", "list", "--user", itoa64(id))
	var actions []string
	for _, e := range events {
		actions = append(actions, e.Action)
	}
	want := []string{"user.created", "passkey.registered", "passkey.used", "passkey.used", "passkey.clone_detected",
		"verification.failed", "passkey.removed"}
	if !slices.Equal(actions, want) {
		t.Fatalf("audit trail: %v\nwant %v", actions, want)
	}
}
