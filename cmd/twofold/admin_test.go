package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/twofold-auth/twofold/internal/otp"
)

// runWithStdin runs a twofold command on dataDir with stdin as its standard input.
func runWithStdin(t *testing.T, dataDir, stdin string, args ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	env := Env{Stdin: strings.NewReader(stdin), Stdout: &out, Stderr: &errOut, Getenv: func(string) string { return "" }}
	err := run(context.Background(), append(args, "--data-dir", dataDir), env)
	if err != nil {
		return out.String() + errOut.String(), err
	}
	return out.String(), nil
}

func TestAdminCLI(t *testing.T) {
	dir := t.TempDir()
	initDir(t, dir)
	if _, err := runWithStdin(t, dir, "short\n", "admin", "create", "ana@example.com"); err == nil || !strings.Contains(err.Error(), "at least 12") {
		t.Fatalf("a short password: %v", err)
	}
	if _, err := runWithStdin(t, dir, "", "admin", "create", "ana@example.com"); err == nil {
		t.Fatal("no password on stdin was accepted")
	}
	if out, err := runWithStdin(t, dir, "a long enough password\n", "admin", "create", "ana@example.com"); err != nil || !strings.Contains(out, "created") {
		t.Fatalf("create: %v\n%s", err, out)
	}
	if _, err := runWithStdin(t, dir, "another long password\n", "admin", "create", "ANA@example.com"); err == nil || !strings.Contains(err.Error(), "exists already") {
		t.Fatalf("a duplicate: %v", err)
	}
	out, err := runWithStdin(t, dir, "", "admin", "list", "--json")
	var list []operatorOut
	if err != nil || json.Unmarshal([]byte(out), &list) != nil || len(list) != 1 || list[0].Email != "ana@example.com" || list[0].LastLoginAt != nil {
		t.Fatalf("list: %v\n%s", err, out)
	}
	if strings.Contains(out, "argon2") || strings.Contains(out, "long enough") {
		t.Fatalf("list shows the password or its hash:\n%s", out)
	}
	if _, err := runWithStdin(t, dir, "a new long password\n", "admin", "password", "ana@example.com"); err != nil {
		t.Fatalf("password: %v", err)
	}
	if _, err := runWithStdin(t, dir, "", "admin", "remove", "ana@example.com"); err != nil {
		t.Fatalf("remove: %v", err)
	}
	if _, err := runWithStdin(t, dir, "", "admin", "remove", "ana@example.com"); err == nil || !strings.Contains(err.Error(), "no operator") {
		t.Fatalf("remove again: %v", err)
	}
}

// A new operator's second factor comes from Twofold itself: a TOTP seed and a device
// registration in the console application, which never passes for the first customer app.
func TestAdminEnrolment(t *testing.T) {
	dir := t.TempDir()
	initDir(t, dir)
	out, err := runWithStdin(t, dir, "a long enough password\n", "admin", "create", "ana@example.com", "--json")
	var e struct {
		Email, TOTPURI, RegistrationToken string
	}
	var raw map[string]any
	if err != nil || json.Unmarshal([]byte(out), &raw) != nil {
		t.Fatalf("create: %v\n%s", err, out)
	}
	e.Email, _ = raw["email"].(string)
	e.TOTPURI, _ = raw["totp_uri"].(string)
	e.RegistrationToken, _ = raw["registration_token"].(string)
	key, err := otp.ParseURI(e.TOTPURI)
	if err != nil || key.Issuer != "Twofold Console" || key.Account != "ana@example.com" || e.RegistrationToken == "" {
		t.Fatalf("enrolment %+v: %v", e, err)
	}

	// The server started afterwards still makes the customers' first application.
	s := startServer(t, dir)
	var first appJSON
	s.cliJSON(&first, "app", "show", "1")
	var apps []appJSON
	s.cliJSON(&apps, "app", "list")
	if len(apps) != 2 || !first.Console || apps[1].Console || apps[1].Name != "My first app" {
		t.Fatalf("applications: %+v", apps)
	}
	if s.key == "" {
		t.Fatal("no key for the first customer application")
	}

	// The registration link registers Twofold's authenticator for the operator.
	a := newAuthenticator(t)
	var added accountJSON
	a.json(&added, "enrol", s.url+"/authenticator/#register="+e.RegistrationToken)
	if added.AppName != "Twofold Console" || added.AuthyID == 0 {
		t.Fatalf("device: %+v", added)
	}
	// A second enrolment replaces the TOTP seed.
	out, err = runWithStdin(t, dir, "", "admin", "enrol", "ana@example.com", "--json")
	if err != nil || !strings.Contains(out, "otpauth://totp/") || strings.Contains(out, e.TOTPURI) {
		t.Fatalf("enrol again: %v\n%s", err, out)
	}
}

// The console's application is not a way around the operators' second factor: its key opens no
// API, and it cannot become a sandbox (where 0000000 verifies) or skip checks.
func TestConsoleAppIsClosed(t *testing.T) {
	dir := t.TempDir()
	initDir(t, dir)
	if _, err := runWithStdin(t, dir, "a long enough password\n", "admin", "create", "ana@example.com"); err != nil {
		t.Fatal(err)
	}
	s := startServer(t, dir)
	var console appJSON
	s.cliJSON(&console, "app", "show", "1", "--show-key")
	if !console.Console || console.APIKey == "" {
		t.Fatalf("app 1: %+v", console)
	}
	for _, path := range []string{"/protected/json/app/details", "/protected/json/users/1/status"} {
		expectError(t, s.do("GET", path, console.APIKey, nil), 401, "60001")
	}
	expectError(t, s.do("POST", "/protected/json/sdk/registrations", console.APIKey, url.Values{"authy_id": {"1"}}), 401, "60001")
	for _, flag := range []string{"--sandbox", "--unconfirmed-bypass"} {
		if _, err := s.cli("app", "update", "1", flag); err == nil {
			t.Errorf("app update %s on the console's application succeeded", flag)
		}
	}
}

// The enrolment's links work as printed: without --public-url they use the address twofold
// serve listens on (no placeholder host), and say how to get links for other machines.
func TestAdminEnrolmentLinks(t *testing.T) {
	dir := t.TempDir()
	initDir(t, dir)
	if _, err := runWithStdin(t, dir, "a long enough password\n", "admin", "create", "ana@example.com"); err != nil {
		t.Fatal(err)
	}
	enrol := func(vars map[string]string, args ...string) string {
		t.Helper()
		var out, errOut bytes.Buffer
		env := Env{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errOut, Getenv: func(k string) string { return vars[k] }}
		if err := run(context.Background(), append([]string{"admin", "enrol", "ana@example.com", "--data-dir", dir}, args...), env); err != nil {
			t.Fatalf("admin enrol %v: %v\n%s", args, err, errOut.String())
		}
		return out.String()
	}
	page := regexp.MustCompile(`(\S+)/console/enrol/[0-9a-f]{48}\n`)
	register := regexp.MustCompile(`open   (\S+)/authenticator/#register=tfr_`)
	for _, tc := range []struct {
		name    string
		vars    map[string]string
		args    []string
		base    string
		guessed bool
	}{
		{"defaults", nil, nil, "http://127.0.0.1:8080", true},
		{"TWOFOLD_ADDR on every interface", map[string]string{"TWOFOLD_ADDR": "0.0.0.0:9000"}, nil, "http://localhost:9000", true},
		{"--addr", nil, []string{"--addr", "[::1]:8443"}, "http://[::1]:8443", true},
		{"TWOFOLD_PUBLIC_URL", map[string]string{"TWOFOLD_PUBLIC_URL": "https://2fa.example.com/"}, nil, "https://2fa.example.com", false},
		{"--public-url", nil, []string{"--public-url", "https://2fa.example.com"}, "https://2fa.example.com", false},
	} {
		out := enrol(tc.vars, tc.args...)
		if m := page.FindStringSubmatch(out); m == nil || m[1] != tc.base {
			t.Errorf("%s: QR page link %q, want on %s:\n%s", tc.name, m, tc.base, out)
		}
		if m := register.FindStringSubmatch(out); m == nil || m[1] != tc.base {
			t.Errorf("%s: registration link %q, want on %s:\n%s", tc.name, m, tc.base, out)
		}
		if strings.Contains(out, "YOUR-") || strings.Contains(out, "These links use "+tc.base+": twofold serve's address") != tc.guessed {
			t.Errorf("%s: a placeholder, or the note on --public-url (want it: %v):\n%s", tc.name, tc.guessed, out)
		}
	}
	// The default is serve's own.
	if def := serveCmd(Env{Getenv: func(string) string { return "" }}).Flags().Lookup("addr").DefValue; def != serveDefaultAddr {
		t.Errorf("serve listens on %s by default, the enrolment links say %s", def, serveDefaultAddr)
	}
}
