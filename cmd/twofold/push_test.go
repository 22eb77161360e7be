package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/twofold-auth/twofold/internal/push/pushtest"
)

// waitPush returns the next push a stand-in received, failing on a malformed one.
func waitPush(t *testing.T, c <-chan pushtest.Push, what string) pushtest.Push {
	t.Helper()
	select {
	case p := <-c:
		if p.Err != nil {
			t.Fatalf("%s: %v", what, p.Err)
		}
		return p
	case <-time.After(20 * time.Second):
		t.Fatalf("no %s arrived", what)
	}
	return pushtest.Push{}
}

func (d *device) vapidKey(s *server) string {
	s.t.Helper()
	r := d.call(s, "GET", "/device/v1/push/vapid", nil)
	key, _ := r.body["public_key"].(string)
	if raw, err := base64.RawURLEncoding.DecodeString(key); r.status != 200 || err != nil || len(raw) != 65 || raw[0] != 4 {
		s.t.Fatalf("GET push/vapid: %d %s", r.status, r.raw)
	}
	return key
}

// TestPushNotifications: a device subscribes a browser (Web Push) and an ntfy topic; creating
// an approval request pushes to both without waiting for them, the Web Push payload decrypts
// with the browser's keys and is signed with the server's VAPID key.
func TestPushNotifications(t *testing.T) {
	svc, ntfy := pushtest.NewService(), pushtest.NewNtfy()
	defer svc.Close()
	defer ntfy.Close()
	// The stand-ins listen on loopback: allowed as an operator allows a self-hosted ntfy.
	s := startServer(t, "", "--rate-limit", "off", "--public-url", "http://127.0.0.1:1/", "--push-subject", "mailto:ops@example.com",
		"--push-allow-hosts", "127.0.0.1")
	alice := s.register(s.key, "alice@example.com", "2015550123")
	phone := s.newDevice(s.key, alice)
	vapid := phone.vapidKey(s)
	if r := s.do("GET", "/device/v1/push/vapid", "", nil); r.status != 401 {
		t.Fatalf("push/vapid without a token: %d %s", r.status, r.raw)
	}

	browser := pushtest.NewBrowser()
	endpoint := svc.Subscribe(browser)
	keys := map[string]any{"p256dh": browser.P256dh(), "auth": browser.Auth()}
	for _, tc := range []struct {
		name string
		body map[string]any
	}{
		{"http endpoint elsewhere", map[string]any{"kind": "webpush", "endpoint": "http://push.example/x", "keys": keys}},
		{"relative endpoint", map[string]any{"kind": "webpush", "endpoint": "/x", "keys": keys}},
		{"bad p256dh", map[string]any{"kind": "webpush", "endpoint": endpoint, "keys": map[string]any{"p256dh": "AAAA", "auth": browser.Auth()}}},
		{"bad auth", map[string]any{"kind": "webpush", "endpoint": endpoint, "keys": map[string]any{"p256dh": browser.P256dh(), "auth": "AAAA"}}},
		{"unknown kind", map[string]any{"kind": "sms", "endpoint": endpoint}},
	} {
		r := phone.call(s, "POST", "/device/v1/push", tc.body)
		t.Logf("%s: %s", tc.name, r.raw)
		expectError(t, r, 400, "60004")
	}
	// The browser's PushSubscription.toJSON(), with the kind added.
	for _, body := range []map[string]any{
		{"kind": "webpush", "endpoint": endpoint, "expirationTime": nil, "keys": keys},
		{"kind": "ntfy", "endpoint": ntfy.URL + "/alice-topic"},
		{"kind": "ntfy", "endpoint": ntfy.URL + "/unwanted"},
	} {
		if r := phone.call(s, "POST", "/device/v1/push", body); r.status != 200 || r.body["success"] != true {
			t.Fatalf("subscribe %v: %d %s", body["kind"], r.status, r.raw)
		}
	}
	if r := phone.call(s, "DELETE", "/device/v1/push", map[string]any{"endpoint": ntfy.URL + "/unwanted"}); r.status != 200 {
		t.Fatalf("unsubscribe: %d %s", r.status, r.raw)
	}

	// The push service does not answer until the request is created: creating must not wait.
	release := svc.Hold(endpoint)
	defer release()
	uuid := s.createRequest(s.key, alice, url.Values{"message": {"Log in from Lisbon?"}, "hidden_details[ip]": {"198.51.100.7"},
		"seconds_to_expire": {"300"}, "number_matching": {"true"}})
	release()

	p := waitPush(t, svc.C, "Web Push")
	var payload map[string]any
	if err := json.Unmarshal(p.Body, &payload); err != nil {
		t.Fatalf("payload %q: %v", p.Body, err)
	}
	if payload["type"] != "approval_request" || payload["uuid"] != uuid || payload["message"] != "Log in from Lisbon?" ||
		payload["app_name"] == "" || len(payload) != 4 {
		t.Errorf("payload %s", p.Body)
	}
	if bytes.Contains(p.Body, []byte("198.51.100.7")) {
		t.Errorf("payload carries hidden details: %s", p.Body)
	}
	if p.VAPID.Key != vapid || p.VAPID.Subject != "mailto:ops@example.com" || p.Urgency != "high" || p.TTL <= 0 || p.TTL > 300 {
		t.Errorf("push headers: key %s (want %s), sub %s, urgency %s, TTL %d", p.VAPID.Key, vapid, p.VAPID.Subject, p.Urgency, p.TTL)
	}

	n := waitPush(t, ntfy.C, "ntfy message")
	if n.Path != "/alice-topic" || !strings.HasPrefix(string(n.Body), "Approve sign-in to "+fmt.Sprint(payload["app_name"])+"? Log in from Lisbon?") ||
		n.Header.Get("Priority") != "high" || n.Header.Get("Click") != "http://127.0.0.1:1/authenticator/" || n.Header.Get("Title") == "" {
		t.Errorf("ntfy message to %s: %q %v", n.Path, n.Body, n.Header)
	}
}

// TestVAPIDKeySurvivesRestart: the key browsers subscribed with stays the server's key.
func TestVAPIDKeySurvivesRestart(t *testing.T) {
	s := startServer(t, "", "--rate-limit", "off")
	phone := s.newDevice(s.key, s.register(s.key, "alice@example.com", "2015550123"))
	before := phone.vapidKey(s)
	s.stop()
	s = startServer(t, s.dataDir, "--rate-limit", "off")
	if after := phone.vapidKey(s); after != before {
		t.Fatalf("VAPID key changed across a restart: %s, then %s", before, after)
	}
}

func TestPushSubjectMustBeUsable(t *testing.T) {
	var out bytes.Buffer
	env := Env{Stdout: &out, Stderr: &out, Getenv: func(string) string { return "" }, Ready: func(string) { t.Error("server started") }}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := run(ctx, []string{"serve", "--addr", "127.0.0.1:0", "--data-dir", t.TempDir(), "--push-subject", "admin@example.com"}, env)
	if err == nil || !strings.Contains(err.Error(), "push-subject") {
		t.Fatalf("serve with a bad push subject: %v", err)
	}
}
