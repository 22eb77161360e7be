package push_test

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/twofold-auth/twofold/internal/egress"
	"github.com/twofold-auth/twofold/internal/push"
	"github.com/twofold-auth/twofold/internal/push/pushtest"
	"github.com/twofold-auth/twofold/internal/store"
	"github.com/twofold-auth/twofold/internal/twofold"
)

func TestValidate(t *testing.T) {
	b := pushtest.NewBrowser()
	p256dh, auth := b.P256dh(), b.Auth()
	raw, _ := base64.RawURLEncoding.DecodeString(p256dh)
	compressed := base64.RawURLEncoding.EncodeToString(append([]byte{2}, raw[1:33]...))
	offCurve := base64.RawURLEncoding.EncodeToString(append([]byte{4}, make([]byte, 64)...))
	const ep = "https://push.example/send/abc"
	web := func(endpoint, p256dh, auth string) push.Subscription {
		return push.Subscription{Kind: push.KindWebPush, Endpoint: endpoint, P256dh: p256dh, Auth: auth}
	}
	ntfy := func(endpoint string) push.Subscription {
		return push.Subscription{Kind: push.KindNtfy, Endpoint: endpoint}
	}
	allow, err := egress.ParseAllowlist("ntfy.lan, 127.0.0.1:8080")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		in    push.Subscription
		param string // "" when valid
	}{
		{"web push", web(ep, p256dh, auth), ""},
		{"web push without kind", push.Subscription{Endpoint: ep, P256dh: p256dh, Auth: auth}, ""},
		{"ntfy https", ntfy("https://ntfy.sh/twofold-abc"), ""},
		{"ntfy with credentials", ntfy("https://u:p@ntfy.example/t?x=1"), ""},
		{"allowed host over http", ntfy("http://ntfy.lan/t"), ""},
		{"allowed host over https", ntfy("https://NTFY.lan:8443/t"), ""},
		{"allowed loopback port over http", ntfy("http://127.0.0.1:8080/t"), ""},
		{"allowed loopback port, mapped", ntfy("http://[::ffff:127.0.0.1]:8080/t"), ""},
		{"public address", ntfy("https://93.184.215.14/t"), ""},
		{"a name: checked when connecting", ntfy("https://loopback.attacker.example/t"), ""},
		{"loopback on another port", ntfy("http://127.0.0.1:8081/t"), "endpoint"},
		{"loopback over https", ntfy("https://127.0.0.1/t"), "endpoint"},
		{"localhost http", ntfy("http://localhost/t"), "endpoint"},
		{"localhost https", ntfy("https://localhost:8080/t"), "endpoint"},
		{"a localhost name", ntfy("https://push.localhost/t"), "endpoint"},
		{"IPv6 loopback http", ntfy("http://[::1]:9090/t"), "endpoint"},
		{"IPv6 loopback https", ntfy("https://[::1]:9090/t"), "endpoint"},
		{"mapped loopback", web("https://[::ffff:127.0.0.1]/x", p256dh, auth), "endpoint"},
		{"mapped loopback in hex", ntfy("https://[::ffff:7f00:1]/t"), "endpoint"},
		{"NAT64 of loopback", ntfy("https://[64:ff9b::7f00:1]/t"), "endpoint"},
		{"cloud metadata", ntfy("https://169.254.169.254/latest/meta-data/"), "endpoint"},
		{"AWS IPv6 metadata", ntfy("https://[fd00:ec2::254]/latest/meta-data/"), "endpoint"},
		{"IPv6 link-local", ntfy("https://[fe80::1%25eth0]/t"), "endpoint"},
		{"private", web("https://10.0.0.1/x", p256dh, auth), "endpoint"},
		{"carrier-grade NAT", ntfy("https://100.64.0.1/t"), "endpoint"},
		{"unspecified", ntfy("https://0.0.0.0/t"), "endpoint"},
		{"multicast", ntfy("https://224.0.0.1/t"), "endpoint"},
		{"broadcast", ntfy("https://255.255.255.255/t"), "endpoint"},
		{"decimal IPv4", ntfy("https://2130706433/t"), "endpoint"},
		{"short IPv4", ntfy("https://127.1/t"), "endpoint"},
		{"hex IPv4", ntfy("https://0x7f.0.0.1/t"), "endpoint"},
		{"missing endpoint", web("", p256dh, auth), "endpoint"},
		{"relative endpoint", web("/push/1", p256dh, auth), "endpoint"},
		{"no host", ntfy("https:///t"), "endpoint"},
		{"opaque", ntfy("https:ntfy.sh"), "endpoint"},
		{"http elsewhere", ntfy("http://ntfy.example/t"), "endpoint"},
		{"http to a private address", ntfy("http://10.0.0.1/t"), "endpoint"},
		{"other scheme", ntfy("ftp://ntfy.example/t"), "endpoint"},
		{"empty port", ntfy("https://ntfy.example:/t"), "endpoint"},
		{"space", ntfy("https://ntfy.example/a b"), "endpoint"},
		{"too long", ntfy("https://ntfy.example/" + strings.Repeat("a", 2048)), "endpoint"},
		{"no kind", push.Subscription{Endpoint: ep}, "kind"},
		{"unknown kind", push.Subscription{Kind: "apns", Endpoint: ep}, "kind"},
		{"ntfy with keys", push.Subscription{Kind: push.KindNtfy, Endpoint: ep, Auth: auth}, "keys"},
		{"missing p256dh", web(ep, "", auth), "keys[p256dh]"},
		{"p256dh not base64", web(ep, "!!!", auth), "keys[p256dh]"},
		{"p256dh compressed", web(ep, compressed, auth), "keys[p256dh]"},
		{"p256dh off the curve", web(ep, offCurve, auth), "keys[p256dh]"},
		{"p256dh too short", web(ep, p256dh[:80], auth), "keys[p256dh]"},
		{"missing auth", web(ep, p256dh, ""), "keys[auth]"},
		{"auth 15 bytes", web(ep, p256dh, base64.RawURLEncoding.EncodeToString(make([]byte, 15))), "keys[auth]"},
		{"auth 17 bytes", web(ep, p256dh, base64.RawURLEncoding.EncodeToString(make([]byte, 17))), "keys[auth]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := push.Validate(tc.in, allow)
			if tc.param == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			var e *twofold.Error
			if !errors.As(err, &e) || e.Code != twofold.CodeInvalidParameter || !strings.Contains(e.Message, tc.param+" - ") {
				t.Fatalf("Validate = %v; want 60004 about %s", err, tc.param)
			}
		})
	}
}

// TestValidateNormalizesKeys: padded and standard-alphabet keys are stored as unpadded base64url.
func TestValidateNormalizesKeys(t *testing.T) {
	b := pushtest.NewBrowser()
	raw, _ := base64.RawURLEncoding.DecodeString(b.P256dh())
	auth, _ := base64.RawURLEncoding.DecodeString(b.Auth())
	got, err := push.Validate(push.Subscription{Endpoint: "https://push.example/x",
		P256dh: base64.StdEncoding.EncodeToString(raw), Auth: base64.URLEncoding.EncodeToString(auth)}, egress.Allowlist{})
	if err != nil {
		t.Fatal(err)
	}
	want := push.Subscription{Kind: push.KindWebPush, Endpoint: "https://push.example/x", P256dh: b.P256dh(), Auth: b.Auth()}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func FuzzValidate(f *testing.F) {
	b := pushtest.NewBrowser()
	f.Add("webpush", "https://push.example/x", b.P256dh(), b.Auth())
	f.Add("ntfy", "http://[::1]:80/t", "", "")
	f.Add("ntfy", "http://ntfy.lan/t", "", "")
	f.Add("ntfy", "https://[::ffff:a00:1]/t", "", "")
	f.Add("", "http://localhost:0/", "BA", "==")
	allow, err := egress.ParseAllowlist("ntfy.lan")
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, kind, endpoint, p256dh, auth string) {
		s, err := push.Validate(push.Subscription{Kind: kind, Endpoint: endpoint, P256dh: p256dh, Auth: auth}, allow)
		if err != nil {
			if twofold.ErrorCode(err) != twofold.CodeInvalidParameter {
				t.Fatalf("error %v is not 60004", err)
			}
			return
		}
		u, err := url.Parse(s.Endpoint)
		if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
			t.Fatalf("accepted endpoint %q", s.Endpoint)
		}
		allowed := allow.Allows(u.Hostname(), u.Port()) || allow.Allows(u.Hostname(), "80")
		if u.Scheme == "http" && !allowed {
			t.Fatalf("accepted http to a host not allowed: %q", s.Endpoint)
		}
		if a, err := netip.ParseAddr(u.Hostname()); err == nil && egress.Forbidden(a) != "" {
			t.Fatalf("accepted %q, whose host is a %s", s.Endpoint, egress.Forbidden(a))
		}
		if s.Kind == push.KindWebPush {
			k, _ := base64.RawURLEncoding.DecodeString(s.P256dh)
			a, _ := base64.RawURLEncoding.DecodeString(s.Auth)
			if len(k) != 65 || len(a) != 16 {
				t.Fatalf("accepted keys of %d and %d bytes", len(k), len(a))
			}
		}
		again, err := push.Validate(s, allow)
		if err != nil || again != s {
			t.Fatalf("Validate(Validate(x)) = %+v, %v; want %+v", again, err, s)
		}
	})
}

func TestSubscriptions(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	n, _ := f.notifier(t, push.Config{}, time.Now())
	other := mkDevice(t, f.st, f.user, "laptop")
	stranger := mkDevice(t, f.st, mkUser(t, f.st, f.app.ID, "5550000002"), "phone")
	otherApp := mkApp(t, f.st, "Other")
	foreign := mkDevice(t, f.st, mkUser(t, f.st, otherApp.ID, "5550000001"), "phone")

	endpoints := func() []string {
		var out []string
		for _, s := range list(t, f) {
			out = append(out, fmt.Sprint(s.DeviceID, " ", s.Endpoint))
		}
		return out
	}
	sub := func(d twofold.Device, endpoint string) {
		t.Helper()
		if err := n.Subscribe(ctx, d, push.Subscription{Kind: push.KindNtfy, Endpoint: endpoint}); err != nil {
			t.Fatal(err)
		}
	}
	sub(f.dev, "https://ntfy.example/a")
	sub(other, "https://ntfy.example/a") // the same endpoint on another device is another subscription
	sub(stranger, "https://ntfy.example/s")
	sub(foreign, "https://ntfy.example/f")
	want := []string{fmt.Sprint(f.dev.ID, " https://ntfy.example/a"), fmt.Sprint(other.ID, " https://ntfy.example/a")}
	if diff := cmp.Diff(want, endpoints()); diff != "" {
		t.Fatalf("the user's subscriptions (-want +got):\n%s", diff)
	}

	// Subscribing again replaces: one row, the new keys, failures forgotten.
	b := pushtest.NewBrowser()
	if err := n.Subscribe(ctx, f.dev, push.Subscription{Kind: push.KindNtfy, Endpoint: "https://push.example/w"}); err != nil {
		t.Fatal(err)
	}
	id := list(t, f)[2].ID
	if _, err := f.st.RecordPushFailure(ctx, id, "HTTP 500"); err != nil {
		t.Fatal(err)
	}
	if err := n.Subscribe(ctx, f.dev, push.Subscription{Kind: push.KindWebPush, Endpoint: "https://push.example/w", P256dh: b.P256dh(), Auth: b.Auth()}); err != nil {
		t.Fatal(err)
	}
	got := list(t, f)
	if len(got) != 3 || got[2].ID != id || got[2].Kind != push.KindWebPush || got[2].P256dh != b.P256dh() || got[2].Failures != 0 || got[2].LastError != "" {
		t.Fatalf("after subscribing again: %+v", got)
	}

	// At most MaxPerDevice per device; an existing endpoint may still be renewed.
	for i := len(got) - 1; i < push.MaxPerDevice; i++ { // f.dev has 2
		sub(f.dev, fmt.Sprint("https://ntfy.example/more", i))
	}
	err := n.Subscribe(ctx, f.dev, push.Subscription{Kind: push.KindNtfy, Endpoint: "https://ntfy.example/one-too-many"})
	if twofold.ErrorCode(err) != twofold.CodeInvalidParameter {
		t.Fatalf("subscription beyond the limit: %v", err)
	}
	sub(f.dev, "https://ntfy.example/a")
	sub(other, "https://ntfy.example/one-too-many") // the limit is per device

	// Unsubscribe touches only the device's own subscription, and is idempotent.
	for _, d := range []twofold.Device{stranger, foreign, f.dev, f.dev} {
		if err := n.Unsubscribe(ctx, d, "https://ntfy.example/a"); err != nil {
			t.Fatal(err)
		}
	}
	if twofold.ErrorCode(n.Unsubscribe(ctx, f.dev, "")) != twofold.CodeInvalidParameter {
		t.Error("Unsubscribe without endpoint accepted")
	}
	want = []string{fmt.Sprint(other.ID, " https://ntfy.example/a"), fmt.Sprint(other.ID, " https://ntfy.example/one-too-many")}
	for _, e := range endpoints() {
		if strings.HasPrefix(e, fmt.Sprint(f.dev.ID, " https://ntfy.example/a")) {
			t.Errorf("unsubscribed endpoint still there: %s", e)
		}
	}

	// Removing a device removes its subscriptions.
	if err := f.st.DeleteDevice(ctx, f.app.ID, f.dev.ID); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, endpoints()); diff != "" {
		t.Errorf("after deleting the device (-want +got):\n%s", diff)
	}
}

// TestVAPIDKeyOnce: servers starting at once on one database agree on one key pair, which
// survives restarts and opens only with its master key.
func TestVAPIDKeyOnce(t *testing.T) {
	path := filepath.Join(t.TempDir(), store.DatabaseFile)
	stores := make([]*store.Store, 2)
	for i := range stores {
		st, err := store.OpenSQLite(t.Context(), path)
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		stores[i] = st
	}
	keys := keyring(t, 1)
	got := make([]string, 8)
	var wg sync.WaitGroup
	for i := range got {
		wg.Go(func() {
			k, err := push.LoadVAPIDKey(t.Context(), stores[i%2], keys, time.Now())
			if err != nil {
				t.Error(err)
				return
			}
			got[i] = k.PublicKey()
		})
	}
	wg.Wait()
	for _, k := range got {
		if k != got[0] {
			t.Fatalf("servers disagree on the VAPID key: %v", got)
		}
	}
	if raw, err := base64.RawURLEncoding.DecodeString(got[0]); err != nil || len(raw) != 65 || raw[0] != 4 {
		t.Fatalf("public key %q is not an uncompressed P-256 point", got[0])
	}
	again, err := push.LoadVAPIDKey(t.Context(), stores[0], keys, time.Now())
	if err != nil || again.PublicKey() != got[0] {
		t.Fatalf("reloaded key %s, %v; want %s", again.PublicKey(), err, got[0])
	}
	if _, err := push.LoadVAPIDKey(t.Context(), stores[1], keyring(t, 2), time.Now()); err == nil {
		t.Fatal("the VAPID key opened with another master key")
	}
}
