package main

import (
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/twofold-auth/twofold/client"
)

// The offer to add the authenticator app, after a log-in by code, to a user who has none: users
// imported from Authy (their Authy app's seeds stayed behind) and users who never added it.

const testPassword = "correct horse battery"

// newImportedSample starts the sample with users seeded as after a move from Authy: each row
// of rows is "email,authy_id". The fake knows every authy id, with no devices until the test
// gives it some.
func newImportedSample(t *testing.T, tf *fakeTwofold, rows ...string) *sample {
	t.Helper()
	text := "email,password,country_code,phone,authy_id\n"
	for i, r := range rows {
		email, id, _ := strings.Cut(r, ",")
		text += email + "," + testPassword + ",1,201-555-01" + string(rune('0'+i/10)) + string(rune('0'+i%10)) + "," + id + "\n"
	}
	file := filepath.Join(t.TempDir(), "users.csv")
	if err := os.WriteFile(file, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return newSampleWith(t, tf, config{SeedUsers: file})
}

// codeLogin logs email in with the password and the code the fake accepts, and returns where the
// code sends the browser.
func (s *sample) codeLogin(email string) string {
	s.t.Helper()
	if a := s.login(email, testPassword); a.status != http.StatusSeeOther || a.location != "/login/code" {
		s.t.Fatalf("log in %s: %d %s %s", email, a.status, a.location, a.body)
	}
	a := s.post("/login/code", "/login/code", url.Values{"code": {"1234567"}})
	if a.status != http.StatusSeeOther {
		s.t.Fatalf("code for %s: %d %s", email, a.status, a.body)
	}
	return a.location
}

func (tf *fakeTwofold) setDevices(authyID string, kinds ...string) {
	tf.mu.Lock()
	defer tf.mu.Unlock()
	tf.devices[authyID] = kinds
}

func TestOfferToAddApp(t *testing.T) {
	t.Run("not now: asked once", func(t *testing.T) {
		s := newImportedSample(t, newFakeTwofold(t), "carol@example.com,41")
		if got := s.codeLogin("carol@example.com"); got != addAppPath {
			t.Fatalf("after the code: %s, want the offer", got)
		}
		a := s.get(addAppPath)
		for _, want := range []string{`data-page="add-app"`, "/authenticator/#register=tfr_", `id="not-now"`, "/profile/qr.png"} {
			if a.status != http.StatusOK || !strings.Contains(a.body, want) {
				t.Fatalf("offer page lacks %s: %d %s", want, a.status, a.body)
			}
		}
		if a := s.get("/profile/qr.png"); a.status != http.StatusOK {
			t.Fatalf("the offer's QR code: %d", a.status)
		}
		if a := s.post(addAppPath, addAppPath+"/later", url.Values{}); a.status != http.StatusSeeOther || a.location != "/protected" {
			t.Fatalf("not now: %d %s", a.status, a.location)
		}
		if a := s.get("/protected"); !strings.Contains(a.body, "a code sent to your phone by SMS") || !strings.Contains(a.body, "any time from your profile") {
			t.Fatalf("protected after not now: %s", a.body)
		}
		s.logout()
		if got := s.codeLogin("carol@example.com"); got != "/protected" {
			t.Fatalf("next log-in: %s, want no offer", got)
		}
	})
	t.Run("left without answering: asked again", func(t *testing.T) {
		s := newImportedSample(t, newFakeTwofold(t), "carol@example.com,41")
		if got := s.codeLogin("carol@example.com"); got != addAppPath {
			t.Fatalf("after the code: %s", got)
		}
		s.get(addAppPath)
		s.get("/protected")
		s.logout()
		if got := s.codeLogin("carol@example.com"); got != addAppPath {
			t.Fatalf("next log-in: %s, want the offer again", got)
		}
	})
	t.Run("added the app: not asked again", func(t *testing.T) {
		tf := newFakeTwofold(t)
		s := newImportedSample(t, tf, "dave@example.com,42")
		if got := s.codeLogin("dave@example.com"); got != addAppPath {
			t.Fatalf("after the code: %s", got)
		}
		s.get(addAppPath)
		if a := s.get("/profile/registration"); !strings.Contains(a.body, "pending") {
			t.Fatalf("registration before the scan: %s", a.body)
		}
		tf.setDevices("42", "android") // the app opened the QR code's link
		if a := s.get("/profile/registration"); !strings.Contains(a.body, "completed") {
			t.Fatalf("registration after the scan: %s", a.body)
		}
		// With the app, the page has nothing left to offer.
		if a := s.get(addAppPath); a.status != http.StatusSeeOther || a.location != "/protected" {
			t.Fatalf("offer page after the scan: %d %s", a.status, a.location)
		}
		s.logout()
		if a := s.login("dave@example.com", testPassword); a.location != "/login/wait" {
			t.Fatalf("next log-in: %d %s, want the app's approval", a.status, a.location)
		}
		s.post("/login/wait", "/logout", url.Values{})
		// Even without the app (removed elsewhere), the offer was answered.
		tf.setDevices("42")
		if got := s.codeLogin("dave@example.com"); got != "/protected" {
			t.Fatalf("log-in after the app was removed: %s, want no offer", got)
		}
	})
	// Whether the user has an authenticator is Twofold's answer, not a column of the sample's: the
	// users below never answered the offer.
	for _, tt := range []struct {
		name    string
		devices []string
	}{
		{"TOTP authenticator: never asked", []string{"authenticator"}},
		{"device, code instead: never asked", []string{"android"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tf := newFakeTwofold(t)
			s := newImportedSample(t, tf, "erin@example.com,43")
			tf.setDevices("43", tt.devices...)
			a := s.login("erin@example.com", testPassword)
			if a.location == "/login/wait" {
				s.post("/login/wait", "/login/sms", url.Values{}) // "Send me a code instead"
			}
			if a := s.post("/login/code", "/login/code", url.Values{"code": {"1234567"}}); a.location != "/protected" {
				t.Fatalf("after the code: %d %s, want no offer", a.status, a.location)
			}
			if a := s.get(addAppPath); a.location != "/protected" {
				t.Fatalf("the offer page, asked for: %d %s", a.status, a.location)
			}
		})
	}
	t.Run("added elsewhere meanwhile", func(t *testing.T) {
		tf := newFakeTwofold(t)
		s := newImportedSample(t, tf, "erin@example.com,43")
		if got := s.codeLogin("erin@example.com"); got != addAppPath {
			t.Fatalf("after the code: %s", got)
		}
		tf.setDevices("43", "authenticator")
		if a := s.get(addAppPath); a.status != http.StatusSeeOther || a.location != "/protected" {
			t.Fatalf("offer page: %d %s", a.status, a.location)
		}
	})
	t.Run("two-factor off: never asked", func(t *testing.T) {
		s := newSample(t, newFakeTwofold(t))
		s.signup("frank@example.com", "201-555-0177", false)
		s.logout()
		if a := s.login("frank@example.com", testPassword); a.location != "/protected" {
			t.Fatalf("log in: %d %s", a.status, a.location)
		}
		if a := s.get(addAppPath); a.location != "/protected" {
			t.Fatalf("the offer page: %d %s", a.status, a.location)
		}
	})
}

// Someone who knows the password but not the code, or another site, must not answer the offer
// for the user: it would silence it.
func TestOfferToAddAppAttacks(t *testing.T) {
	tf := newFakeTwofold(t)
	s := newImportedSample(t, tf, "carol@example.com,41")
	asked := func() bool {
		u, _ := s.srv.users.byEmailAddr("carol@example.com")
		return !u.AskedToAddApp.IsZero()
	}
	// Half logged in: the password only.
	if a := s.login("carol@example.com", testPassword); a.location != "/login/code" {
		t.Fatalf("log in: %d %s", a.status, a.location)
	}
	if a := s.get(addAppPath); a.status != http.StatusSeeOther || a.location != "/login/code" {
		t.Errorf("offer page while half logged in: %d %s", a.status, a.location)
	}
	if a := s.post("/login/code", addAppPath+"/later", url.Values{}); a.status != http.StatusSeeOther || a.location == "/protected" {
		t.Errorf("not now while half logged in: %d %s", a.status, a.location)
	}
	if asked() {
		t.Fatal("a half-logged-in session answered the offer")
	}
	// Logged in, but the form comes without the session's token (another site's form).
	s.post("/login/code", "/login/code", url.Values{"code": {"1234567"}})
	for _, token := range []string{"", strings.Repeat("A", 43)} {
		if a := s.do(s.hc, "POST", addAppPath+"/later", url.Values{"csrf": {token}}); a.status != http.StatusForbidden {
			t.Errorf("not now with token %q: %d %s", token, a.status, a.location)
		}
	}
	if a := s.do(newBrowserClient(), "POST", addAppPath+"/later", url.Values{"csrf": {""}}); a.status != http.StatusForbidden {
		t.Errorf("not now without a session: %d", a.status)
	}
	if asked() {
		t.Fatal("a forged form answered the offer")
	}
}

func TestHasAuthenticator(t *testing.T) {
	for _, tt := range []struct {
		name string
		st   client.UserStatus
		want bool
	}{
		{"phone only (an imported Authy app user)", client.UserStatus{Devices: []string{}}, false},
		{"nothing at all", client.UserStatus{}, false},
		{"sms listed as a device", client.UserStatus{Devices: []string{"sms"}}, false},
		{"registered", client.UserStatus{Registered: true}, true},
		{"TOTP authenticator (Twofold)", client.UserStatus{Registered: true, Devices: []string{"authenticator"}}, true},
		{"Authy app on a phone", client.UserStatus{Devices: []string{"iphone"}}, true},
		{"hardware token", client.UserStatus{HasHardToken: true}, true},
		// Authy's own example: a device in detailed_devices, registered false, devices empty.
		{"detailed device only", client.UserStatus{DetailedDevices: []client.Device{{DeviceType: "authy"}}}, true},
	} {
		if got := hasAuthenticator(tt.st); got != tt.want {
			t.Errorf("%s: hasAuthenticator = %v, want %v", tt.name, got, tt.want)
		}
	}
}
