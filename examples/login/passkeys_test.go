package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/twofold-auth/twofold/client"
)

// scriptedPasskeys answers the sample's passkey calls as told, and counts the finishes.
type scriptedPasskeys struct {
	probe    error               // BeginPasskeyLogin(0)'s answer
	login    client.PasskeyLogin // FinishPasskeyLogin's
	finishes int
}

func (p *scriptedPasskeys) BeginPasskeyRegistration(context.Context, int64, string) (client.PasskeyCeremony, error) {
	return client.PasskeyCeremony{ID: "reg", Options: json.RawMessage(`{"publicKey":{}}`)}, nil
}
func (p *scriptedPasskeys) FinishPasskeyRegistration(context.Context, int64, string, json.RawMessage, string) (client.Passkey, error) {
	return client.Passkey{ID: "pk1", Name: "Laptop"}, nil
}
func (p *scriptedPasskeys) BeginPasskeyLogin(_ context.Context, userID int64) (client.PasskeyCeremony, error) {
	if userID == 0 && p.probe != nil {
		return client.PasskeyCeremony{}, p.probe
	}
	return client.PasskeyCeremony{ID: "login", Options: json.RawMessage(`{"publicKey":{}}`)}, nil
}
func (p *scriptedPasskeys) FinishPasskeyLogin(context.Context, string, json.RawMessage) (client.PasskeyLogin, error) {
	p.finishes++
	return p.login, nil
}
func (p *scriptedPasskeys) Passkeys(context.Context, int64) ([]client.Passkey, error) {
	return []client.Passkey{{ID: "pk1", Name: "Laptop"}}, nil
}
func (p *scriptedPasskeys) DeletePasskey(context.Context, int64, string) error { return nil }

// What the application allows decides what the pages offer: 60170 (no relying party id) hides
// passkeys everywhere, 60176 (not alone) hides only the login page's button.
func TestPasskeyModes(t *testing.T) {
	for _, c := range []struct {
		name                   string
		probe                  error
		wantLogin, wantProfile bool
	}{
		{"usernameless", nil, true, true},
		{"second factor only", &client.Error{HTTPStatus: 403, Code: client.CodeUsernamelessDisabled}, false, true},
		{"no relying party", &client.Error{HTTPStatus: 400, Code: client.CodePasskeysNotConfigured}, false, false},
		{"a Twofold without passkeys", &client.Error{HTTPStatus: 404}, false, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := newSample(t, newFakeTwofold(t))
			s.srv.pk = &scriptedPasskeys{probe: c.probe}
			if got := strings.Contains(s.get("/login").body, `id="passkey-signin"`); got != c.wantLogin {
				t.Errorf("login page offers a passkey: %v, want %v", got, c.wantLogin)
			}
			s.signup("ada@example.com", "201-555-0123", true)
			if got := strings.Contains(s.get("/profile").body, `id="passkey-add"`); got != c.wantProfile {
				t.Errorf("profile offers passkeys: %v, want %v", got, c.wantProfile)
			}
		})
	}
}

// A finish needs the ceremony its own session began, of the kind its stage allows; a second
// factor's passkey must be the session's user's. Nothing else logs anyone in.
func TestPasskeyFinishBindings(t *testing.T) {
	tf := newFakeTwofold(t)
	s := newSample(t, tf)
	pk := &scriptedPasskeys{}
	s.srv.pk = pk
	s.signup("ada@example.com", "201-555-0123", true)
	ada, _ := s.srv.users.byEmailAddr("ada@example.com")
	s.logout()
	cred := url.Values{"credential": {`{"id":"x","type":"public-key","response":{}}`}}
	post := func(path string, form url.Values) answer {
		t.Helper()
		f := url.Values{}
		for k, v := range form {
			f[k] = v
		}
		f.Set("csrf", s.csrf("/login"))
		return s.do(s.hc, "POST", path, f)
	}

	// No ceremony begun: refused before Twofold is asked.
	if a := post("/login/passkey/finish", cred); a.status != http.StatusBadRequest || pk.finishes != 0 {
		t.Fatalf("finish without a begin: %d %s (Twofold asked %d times)", a.status, a.body, pk.finishes)
	}
	// Without the CSRF token: refused.
	if a := s.do(s.hc, "POST", "/login/passkey/begin", url.Values{}); a.status != http.StatusForbidden {
		t.Fatalf("begin without the token: %d", a.status)
	}
	// Begun in one browser, finished in another: that one has no ceremony.
	if a := post("/login/passkey/begin", url.Values{}); a.status != http.StatusOK {
		t.Fatalf("begin: %d %s", a.status, a.body)
	}
	other := &sample{t: t, srv: s.srv, url: s.url, hc: newBrowserClient()}
	f := url.Values{"credential": cred["credential"], "csrf": {other.csrf("/login")}}
	if a := other.do(other.hc, "POST", "/login/passkey/finish", f); a.status != http.StatusBadRequest || pk.finishes != 0 {
		t.Fatalf("another browser's finish: %d %s", a.status, a.body)
	}

	// The second step: a passkey of someone else's (Twofold named another user) is refused.
	if a := s.login("ada@example.com", "correct horse battery"); a.status != http.StatusSeeOther {
		t.Fatalf("login: %d", a.status)
	}
	pk.login = client.PasskeyLogin{UserID: ada.AuthyID + 1000, Passkey: client.Passkey{Name: "Other"}}
	post2 := func(path string, form url.Values) answer {
		t.Helper()
		f := url.Values{"csrf": {s.csrf("/login/code")}}
		for k, v := range form {
			f[k] = v
		}
		return s.do(s.hc, "POST", path, f)
	}
	if a := post2("/login/passkey/begin", url.Values{}); a.status != http.StatusOK {
		t.Fatalf("second step begin: %d %s", a.status, a.body)
	}
	if a := post2("/login/passkey/finish", cred); a.status != http.StatusUnauthorized || strings.Contains(a.body, "next") {
		t.Fatalf("another user's passkey at the second step: %d %s", a.status, a.body)
	}
	if a := s.get("/protected"); a.status != http.StatusSeeOther || a.location != "/login/code" {
		t.Fatalf("after another user's passkey: %d → %s", a.status, a.location)
	}
	// Ada's: in.
	pk.login = client.PasskeyLogin{UserID: ada.AuthyID, Passkey: client.Passkey{Name: "Laptop"}, UserVerified: true}
	post2("/login/passkey/begin", url.Values{})
	if a := post2("/login/passkey/finish", cred); a.status != http.StatusOK || !strings.Contains(a.body, `"next":"/protected"`) {
		t.Fatalf("ada's passkey: %d %s", a.status, a.body)
	}
	if a := s.get("/protected"); a.status != http.StatusOK || !strings.Contains(a.body, "a passkey (“Laptop”)") {
		t.Fatalf("protected: %d", a.status)
	}
}
