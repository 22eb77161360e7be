package authyapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/twofold-auth/twofold/client"
	"github.com/twofold-auth/twofold/internal/apps"
	"github.com/twofold-auth/twofold/internal/authyapi"
	"github.com/twofold-auth/twofold/internal/deliver"
	"github.com/twofold-auth/twofold/internal/devices"
	"github.com/twofold-auth/twofold/internal/metrics"
	"github.com/twofold-auth/twofold/internal/onetouch"
	"github.com/twofold-auth/twofold/internal/passkeys"
	"github.com/twofold-auth/twofold/internal/passkeys/passkeytest"
	"github.com/twofold-auth/twofold/internal/seal"
	"github.com/twofold-auth/twofold/internal/store"
	"github.com/twofold-auth/twofold/internal/users"
	"github.com/twofold-auth/twofold/internal/verify"
)

const pkOrigin = "https://login.shop.example"

// passkeyServer serves the API over loopback with passkeys on (rp id shop.example,
// usernameless allowed) and returns a client of it and a user's Authy id.
func passkeyServer(t *testing.T) (*client.Client, string, string, int64) {
	t.Helper()
	log := slog.New(slog.DiscardHandler)
	ctx := context.Background()
	st, err := store.OpenSQLite(ctx, filepath.Join(t.TempDir(), "twofold.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	keys, _ := seal.New(bytes.Repeat([]byte{3}, seal.KeySize))
	appSvc := apps.New(st, keys, nil)
	app, key, err := appSvc.Create(ctx, apps.CreateParams{Name: "Shop"})
	if err != nil {
		t.Fatal(err)
	}
	rp, origins, yes := "shop.example", []string{pkOrigin}, true
	if _, err := appSvc.Update(ctx, app.ID, apps.Update{PasskeyRPID: &rp, PasskeyOrigins: &origins, PasskeyUsernameless: &yes}); err != nil {
		t.Fatal(err)
	}
	userSvc := users.New(st, nil)
	u, _, err := userSvc.Register(ctx, app.ID, users.Contact{Email: "f@example.com", Cellphone: "2015550123", CountryCode: "1"})
	if err != nil {
		t.Fatal(err)
	}
	m := metrics.New()
	router, err := deliver.NewRouter(deliver.NewOutbox(st, keys, log, nil), nil, deliver.RouterConfig{}, m, log)
	if err != nil {
		t.Fatal(err)
	}
	vs := verify.New(st, router, keys, verify.Config{}, nil)
	api := authyapi.New(authyapi.Services{
		Apps: appSvc, Users: userSvc, Verify: vs,
		Devices:  devices.New(st, keys, appSvc.Reveal, 0, nil),
		OneTouch: onetouch.New(st, onetouch.Config{}, onetouch.Hooks{}, nil),
		Usage:    apps.NewUsageRecorder(st, log),
		Passkeys: passkeys.New(st, vs, nil, nil),
	}, m, log, authyapi.Config{}, nil)
	mux := http.NewServeMux()
	api.Routes(mux)
	srv := httptest.NewServer(authyapi.Handler(mux, m, log))
	t.Cleanup(srv.Close)
	c, err := client.New(srv.URL, key)
	if err != nil {
		t.Fatal(err)
	}
	return c, srv.URL, key, u.ID
}

// The wire contract end to end with the Go client: register, list, status, sign in as second
// factor and usernameless, a refused assertion, remove.
func TestPasskeysOverTheWire(t *testing.T) {
	c, base, key, id := passkeyServer(t)
	ctx := t.Context()
	auth := passkeytest.New(pkOrigin)

	cer, err := c.BeginPasskeyRegistration(ctx, id, "Laptop")
	if err != nil {
		t.Fatal(err)
	}
	var opts struct {
		PublicKey struct {
			RP struct{ ID, Name string }
		} `json:"publicKey"`
	}
	if err := json.Unmarshal(cer.Options, &opts); err != nil || opts.PublicKey.RP.ID != "shop.example" || len(cer.ID) != 32 {
		t.Fatalf("ceremony %s %s: %v", cer.ID, cer.Options, err)
	}
	resp, err := auth.Register(cer.Options)
	if err != nil {
		t.Fatal(err)
	}
	pk, err := c.FinishPasskeyRegistration(ctx, id, cer.ID, resp, "")
	if err != nil {
		t.Fatal(err)
	}
	if pk.Name != "Laptop" || pk.CreatedAt.IsZero() || !pk.LastUsedAt.IsZero() || len(pk.Transports) != 1 {
		t.Fatalf("passkey %+v", pk)
	}
	st, err := c.UserStatus(ctx, id)
	if err != nil || len(st.Passkeys) != 1 || st.Passkeys[0].ID != pk.ID || st.Passkeys[0].Name != "Laptop" {
		t.Fatalf("status %+v %v", st, err)
	}

	for _, user := range []int64{id, 0} {
		cer, err := c.BeginPasskeyLogin(ctx, user)
		if err != nil {
			t.Fatal(err)
		}
		assertion, _ := auth.Assert(cer.Options)
		l, err := c.FinishPasskeyLogin(ctx, cer.ID, assertion)
		if err != nil {
			t.Fatalf("user %d: %v", user, err)
		}
		if l.UserID != id || l.Passkey.ID != pk.ID || !l.UserVerified || l.Passkey.LastUsedAt.IsZero() {
			t.Fatalf("login %+v", l)
		}
		// The same answer again: the ceremony is spent.
		if _, err := c.FinishPasskeyLogin(ctx, cer.ID, assertion); !client.IsCode(err, client.CodePasskeyCeremonyNotFound) {
			t.Fatalf("replay: %v", err)
		}
	}

	// A tampered assertion: 401 with the envelope, as a JSON body.
	cer, _ = c.BeginPasskeyLogin(ctx, id)
	s, _ := auth.Sign(cer.Options)
	s.Signature[len(s.Signature)-1] ^= 1
	body, _ := json.Marshal(map[string]any{"credential": s.JSON()})
	req, _ := http.NewRequest("POST", base+"/protected/json/passkeys/authentications/"+cer.ID, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Authy-API-Key", key)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var env map[string]any
	json.NewDecoder(res.Body).Decode(&env)
	res.Body.Close()
	if res.StatusCode != 401 || env["error_code"] != "60172" || env["success"] != false || !strings.Contains(env["message"].(string), "refused") {
		t.Fatalf("tampered: %d %v", res.StatusCode, env)
	}

	list, err := c.Passkeys(ctx, id)
	if err != nil || len(list) != 1 {
		t.Fatalf("list %+v %v", list, err)
	}
	if err := c.DeletePasskey(ctx, id, pk.ID); err != nil {
		t.Fatal(err)
	}
	if err := c.DeletePasskey(ctx, id, pk.ID); !client.IsCode(err, client.CodePasskeyNotFound) {
		t.Fatalf("delete again: %v", err)
	}
	if _, err := c.BeginPasskeyLogin(ctx, id); !client.IsCode(err, client.CodeNoPasskeys) {
		t.Fatalf("login without passkeys: %v", err)
	}
}
