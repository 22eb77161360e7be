package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
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
