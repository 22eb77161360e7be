package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
)

// Customers following the Authy tutorials look for Authy's device types in users/{id}/status
// `devices` ("iphone", "android"). Each of Twofold's authenticators is listed by what it runs
// on, in those terms where one is true: the web authenticator by its browser's platform, the
// CLI as "cli", a TOTP app enrolled through users/{id}/secret as "authenticator".
func TestStatusDevicesInAuthyTerms(t *testing.T) {
	s := startServer(t, "", "--rate-limit", "off", "--address-rate-limit", "off")
	user := s.register(s.key, "ada@example.com", "2015550160")

	// registerAs registers a device for user as a browser (or other client) would: os_type as
	// given, with this User-Agent and touch points ("" sends none).
	registerAs := func(osType, userAgent, touch string) map[string]any {
		t.Helper()
		r := s.post("/protected/json/sdk/registrations", url.Values{"authy_id": {fmt.Sprint(user)}})
		if r.status != 200 {
			t.Fatalf("sdk/registrations: %s", r.raw)
		}
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		der, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
		body := map[string]any{"registration_token": r.body["registration_token"], "public_key": base64.StdEncoding.EncodeToString(der),
			"name": "test", "os_type": osType}
		if touch != "" {
			body["touch_points"] = json.RawMessage(touch)
		}
		raw, _ := json.Marshal(body)
		req, _ := http.NewRequest("POST", s.url+"/device/v1/registrations", strings.NewReader(string(raw)))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("User-Agent", userAgent)
		res, err := s.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		out, _ := io.ReadAll(res.Body)
		var got map[string]any
		if res.StatusCode != 200 || json.Unmarshal(out, &got) != nil {
			t.Fatalf("register %s device (%s): %d %s", osType, userAgent, res.StatusCode, out)
		}
		return got["device"].(map[string]any)
	}

	const (
		androidPhone  = "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Mobile Safari/537.36"
		androidTablet = "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36"
		iPhone        = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
		macSafari     = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15"
	)
	want := []string{}
	for _, tc := range []struct {
		name, osType, ua, touch, want string
	}{
		{"the web authenticator on an Android phone", "web", androidPhone, "5", "android"},
		{"the web authenticator on an Android tablet", "web", androidTablet, "10", "android_tablet"},
		{"the web authenticator on an iPhone", "web", iPhone, "5", "iphone"},
		{"the web authenticator on an iPad", "web", macSafari, "5", "ipad"},
		{"the web authenticator on a Mac", "web", macSafari, "0", "web"},
		{"an older web authenticator, without touch points, on a Mac", "web", macSafari, "", "web"},
		{"touch points that are not a number", "web", macSafari, `"many"`, "web"},
		{"a device that names its own platform", "iphone", androidPhone, "", "iphone"},
	} {
		d := registerAs(tc.osType, tc.ua, tc.touch)
		if d["os_type"] != tc.want {
			t.Errorf("%s: registered as %v, want %q", tc.name, d["os_type"], tc.want)
		}
		want = append(want, tc.want)
	}

	// The CLI authenticator, and a TOTP app.
	a := newAuthenticator(t)
	enrolUser(t, s, a, user)
	want = append(want, "cli")
	if r := s.post(fmt.Sprintf("/protected/json/users/%d/secret", user), nil); r.status != 200 {
		t.Fatalf("secret: %s", r.raw)
	}
	want = append(want, "authenticator")

	st := s.get(fmt.Sprintf("/protected/json/users/%d/status", user))
	status := st.body["status"].(map[string]any)
	var got []string
	for _, d := range status["devices"].([]any) {
		got = append(got, d.(string))
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("status devices %v, want %v", got, want)
	}
	for _, d := range status["detailed_devices"].([]any) {
		if os := d.(map[string]any)["os_type"].(string); !slices.Contains(want, os) {
			t.Errorf("detailed device os_type %q", os)
		}
	}
}
