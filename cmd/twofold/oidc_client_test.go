package main

import (
	"strings"
	"testing"
)

func TestOIDCClientCommands(t *testing.T) {
	s := startServer(t, "")
	var made clientJSON
	s.cliJSON(&made, "oidc-client", "create", "--app", "1", "--name", "Okta", "--redirect-uri", "https://acme.okta.com/cb",
		"--redirect-uri", "http://127.0.0.1:3001/callback", "--user-match", "email", "--factors", "push,totp")
	if !strings.HasPrefix(made.ClientID, "tfc_") || !strings.HasPrefix(made.Secret, "tfs_") || made.UserMatch != "email" ||
		strings.Join(made.Factors, ",") != "push,totp" || len(made.RedirectURIs) != 2 || made.Auth0Secret != "" {
		t.Fatalf("create: %+v", made)
	}
	// show and list never print a secret.
	for _, args := range [][]string{{"oidc-client", "show", made.ClientID}, {"oidc-client", "list"}, {"oidc-client", "show", made.ClientID, "--json"}, {"oidc-client", "list", "--json"}} {
		out, err := s.cli(args...)
		if err != nil || !strings.Contains(out, made.ClientID) || strings.Contains(out, made.Secret) {
			t.Errorf("%v: %v\n%s", args, err, out)
		}
	}
	// Only the flags given change; rotation prints the new secret once.
	var up clientJSON
	s.cliJSON(&up, "oidc-client", "update", made.ClientID, "--auth0-domain", "acme.us.auth0.com", "--rotate-secret")
	if up.Name != "Okta" || up.UserMatch != "email" || up.Secret == "" || up.Secret == made.Secret || up.Auth0Secret == "" || up.Auth0Domain != "acme.us.auth0.com" {
		t.Fatalf("update: %+v", up)
	}
	// Passwordless sign-in: only for users named by a name people know, and then on and off.
	if _, err := s.cli("oidc-client", "update", made.ClientID, "--passwordless", "--user-match", "id"); err == nil || !strings.Contains(err.Error(), "--passwordless") {
		t.Fatalf("passwordless by Twofold id: %v", err)
	}
	s.cliJSON(&up, "oidc-client", "update", made.ClientID, "--passwordless")
	if !up.Passwordless || up.UserMatch != "email" {
		t.Fatalf("update --passwordless: %+v", up)
	}
	if out, err := s.cli("oidc-client", "show", made.ClientID); err != nil || !strings.Contains(out, "passwordless sign-in") {
		t.Fatalf("show a passwordless client: %v\n%s", err, out)
	}
	s.cliJSON(&up, "oidc-client", "update", made.ClientID, "--passwordless=false")
	if up.Passwordless {
		t.Fatalf("update --passwordless=false: %+v", up)
	}
	// Every problem at once, each named by its flag.
	_, err := s.cli("oidc-client", "create", "--app", "1", "--name", "x", "--redirect-uri", "http://evil.example/cb", "--factors", "push,fax", "--user-match", "phone")
	if err == nil || !strings.Contains(err.Error(), "--redirect-uri") || !strings.Contains(err.Error(), "--factors") || !strings.Contains(err.Error(), "--user-match") {
		t.Fatalf("invalid create: %v", err)
	}
	if _, err := s.cli("oidc-client", "create", "--app", "99", "--name", "x", "--redirect-uri", "https://a.example/cb"); err == nil || !strings.Contains(err.Error(), "no application") {
		t.Fatalf("create for an unknown app: %v", err)
	}
	if _, err := s.cli("oidc-client", "delete", made.ClientID); err == nil || !strings.Contains(err.Error(), "--yes") {
		t.Fatalf("delete without --yes: %v", err)
	}
	if out, err := s.cli("oidc-client", "delete", made.ClientID, "--yes"); err != nil || !strings.Contains(out, "Deleted") {
		t.Fatalf("delete: %v %s", err, out)
	}
	if _, err := s.cli("oidc-client", "show", made.ClientID); err == nil || !strings.Contains(err.Error(), "no step client") {
		t.Fatalf("show a deleted client: %v", err)
	}
	var audit []struct {
		Action string `json:"action"`
	}
	s.cliJSON(&audit, "audit", "list", "--action", "step_client.updated")
	if len(audit) != 3 {
		t.Fatalf("audit of the updates: %+v", audit)
	}
}

func TestOIDCKeyCommands(t *testing.T) {
	s := startServer(t, "")
	var keys []keyJSON
	s.cliJSON(&keys, "oidc-key", "list")
	if len(keys) != 1 || !keys[0].Signing || !keys[0].Published {
		t.Fatalf("list: %+v", keys)
	}
	first := keys[0].KeyID
	s.cliJSON(&keys, "oidc-key", "rotate", "--start-in", "48h")
	if len(keys) != 2 || keys[0].KeyID != first || !keys[0].Signing || keys[1].Signing || !keys[1].Published {
		t.Fatalf("rotate --start-in 48h: %+v", keys)
	}
	s.cliJSON(&keys, "oidc-key", "rotate")
	if len(keys) != 3 || !keys[1].Start.After(keys[0].Start) || !keys[1].Published || keys[2].Signing {
		t.Fatalf("rotate now (in order of start: the first, the new one, the one of the day after tomorrow): %+v", keys)
	}
	if _, err := s.cli("oidc-key", "rotate", "--start-in", "-1h"); err == nil {
		t.Fatal("a negative --start-in was taken")
	}
}
