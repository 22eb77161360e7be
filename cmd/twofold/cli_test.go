package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
)

func TestAppCommands(t *testing.T) {
	s := startServer(t, "")
	const imported = "1DS9YIwGquvvIdx8GdcdqZGLAewZZyhd" // an Authy-shaped key, as in authy-client's tests

	var created appJSON
	s.cliJSON(&created, "app", "create", "--name", "Migrated", "--api-key", imported)
	if created.AppID == 0 || created.Name != "Migrated" || created.APIKey != imported || created.TokenLength != 7 {
		t.Fatalf("create: %+v", created)
	}
	if key, err := s.cli("app", "key", itoa64(created.AppID)); err != nil || key != imported+"\n" {
		t.Fatalf("app key: %q %v", key, err)
	}
	if _, err := s.cli("app", "key", "99"); err == nil {
		t.Fatal("app key of an application that does not exist succeeded")
	}
	// The imported key works against the running server at once.
	if r := s.do("GET", "/protected/json/app/details", imported, nil); r.status != 200 || r.body["app"].(map[string]any)["name"] != "Migrated" ||
		r.body["app"].(map[string]any)["onetouch_enabled"] != true {
		t.Fatalf("imported key (every application takes OneTouch requests): %s", r.raw)
	}

	var sandbox appJSON
	s.cliJSON(&sandbox, "app", "create", "--name", "Tests", "--sandbox")
	if len(sandbox.APIKey) != 32 || !sandbox.Sandbox {
		t.Fatalf("sandbox create: %+v", sandbox)
	}
	id := s.register(sandbox.APIKey, "t@example.com", "2015550123")
	if r := s.do("GET", "/protected/json/verify/0000000/"+itoa64(id), sandbox.APIKey, nil); r.status != 200 {
		t.Fatalf("sandbox token: %s", r.raw)
	}
	if r := s.do("GET", "/protected/json/app/details", sandbox.APIKey, nil); r.body["app"].(map[string]any)["plan"] != "sandbox" {
		t.Fatalf("sandbox plan: %s", r.raw)
	}

	s.stop()
	s = startServer(t, s.dataDir)
	if !strings.Contains(s.logs.String(), "sandbox application") || !strings.Contains(s.logs.String(), `name=Tests`) {
		t.Fatalf("no warning about the sandbox application at start:\n%s", s.logs.String())
	}
	var list []appJSON
	s.cliJSON(&list, "app", "list")
	if len(list) != 3 || list[2].Name != "Tests" || !list[2].Sandbox || list[0].APIKey != "" {
		t.Fatalf("list: %+v", list)
	}
	text, err := s.cli("app", "list")
	if err != nil || !strings.Contains(text, "SANDBOX") {
		t.Fatalf("list text marks no sandbox app: %v\n%s", err, text)
	}

	var updated appJSON
	s.cliJSON(&updated, "app", "update", itoa64(created.AppID), "--name", "Renamed", "--token-length", "8",
		"--totp-period", "60", "--sms=false", "--callback-url", "https://example.com/cb", "--callback-method", "get")
	if updated.Name != "Renamed" || updated.TokenLength != 8 || updated.TOTPPeriod != 60 || updated.SMSEnabled ||
		!updated.CallEnabled || updated.CallbackURL != "https://example.com/cb" || updated.CallbackMethod != "GET" {
		t.Fatalf("update: %+v", updated)
	}
	uid := s.register(imported, "u@example.com", "2015550124")
	expectError(t, s.do("GET", "/protected/json/sms/"+itoa64(uid)+"?force=true", imported, nil), 400, "60007")
	s.do("GET", "/protected/json/call/"+itoa64(uid)+"?force=true", imported, nil)
	if code := s.lastCode("+12015550124"); len(code) != 8 {
		t.Fatalf("token length 8 not applied: %q", code)
	}

	for _, bad := range [][]string{
		{"--token-length", "5"}, {"--token-length", "11"}, {"--callback-url", "ftp://x"}, {"--callback-method", "PUT"},
		{"--contact-email", "nope"}, {"--name", ""}, {"--totp-window", "9"}, {"--device-totp-period", "5"},
		{"--callback-url", "https://example.com/cb?x=1", "--callback-method", "GET"},
	} {
		if _, err := s.cli(append([]string{"app", "update", itoa64(created.AppID)}, bad...)...); err == nil {
			t.Errorf("update %v accepted", bad)
		}
	}
	if _, err := s.cli("app", "create", "--name", "Dup", "--api-key", imported); err == nil {
		t.Error("a key already in use was imported again")
	}
	if _, err := s.cli("app", "create", "--name", "Bad", "--api-key", "short"); err == nil {
		t.Error("a malformed key was imported")
	}
	if _, err := s.cli("app", "show", "999"); err == nil || !strings.Contains(err.Error(), "no application with id 999") {
		t.Errorf("show missing app: %v", err)
	}

	var rotated appJSON
	s.cliJSON(&rotated, "app", "rotate-key", itoa64(created.AppID))
	if rotated.APIKey == imported || len(rotated.APIKey) != 32 {
		t.Fatalf("rotate: %+v", rotated)
	}
	expectError(t, s.do("GET", "/protected/json/app/details", imported, nil), 401, "60001")
	if r := s.do("GET", "/protected/json/app/details", rotated.APIKey, nil); r.status != 200 {
		t.Fatalf("rotated key: %s", r.raw)
	}
	var shown appJSON
	s.cliJSON(&shown, "app", "show", itoa64(created.AppID), "--show-key")
	if shown.APIKey != rotated.APIKey {
		t.Fatalf("show --show-key: %q, want %q", shown.APIKey, rotated.APIKey)
	}
	var plain appJSON
	s.cliJSON(&plain, "app", "show", itoa64(created.AppID))
	if plain.APIKey != "" || plain.Name != "Renamed" {
		t.Fatal("show printed the key without --show-key")
	}
}

func TestOutboxCommand(t *testing.T) {
	s := startServer(t, "")
	a := s.register(s.key, "a@example.com", "2015550123")
	b := s.register(s.key, "b@example.com", "2015550124")
	s.get("/protected/json/sms/" + itoa64(a) + "?force=true")
	s.get("/protected/json/sms/" + itoa64(b) + "?force=true")
	s.get("/protected/json/call/" + itoa64(a) + "?force=true")
	var all []struct {
		SID     string `json:"sid"`
		To      string `json:"to"`
		Channel string `json:"channel"`
		Body    string `json:"body"`
		Status  string `json:"status"`
	}
	s.cliJSON(&all, "outbox")
	if len(all) != 3 || all[2].Channel != "call" || all[0].To != "+12015550123" || all[0].Status != "recorded" {
		t.Fatalf("outbox: %+v", all)
	}
	s.cliJSON(&all, "outbox", "--to", "(201) 555-0124")
	if len(all) != 1 || all[0].To != "+12015550124" {
		t.Fatalf("outbox --to: %+v", all)
	}
	s.cliJSON(&all, "outbox", "--app", "2")
	if len(all) != 0 {
		t.Fatalf("outbox --app 2: %+v", all)
	}
	text, err := s.cli("outbox", "--limit", "1")
	if err != nil || !strings.Contains(text, "call") || strings.Count(text, "\n") != 2 {
		t.Fatalf("outbox text:\n%s", text)
	}
	// --code prints the newest matching message's code alone: a call's spoken digits joined.
	for _, tc := range []struct{ to, want string }{{"2015550123", s.lastCode("+12015550123")}, {"(201) 555-0124", s.lastCode("+12015550124")}} {
		if code, err := s.cli("outbox", "--to", tc.to, "--code"); err != nil || code != tc.want+"\n" || len(tc.want) != 7 {
			t.Errorf("outbox --to %s --code: %q %v, want %s", tc.to, code, err, tc.want)
		}
	}
	if _, err := s.cli("outbox", "--to", "999", "--code"); err == nil {
		t.Error("outbox --code with no message succeeded")
	}
	if _, err := s.cli("outbox", "--code", "--json"); err == nil {
		t.Error("outbox --code --json succeeded")
	}
	// Voice bodies spell the code out; the log line never carries a code.
	if !strings.Contains(all0Body(t, s), ", ") {
		t.Fatal("voice body does not read the code digit by digit")
	}
	for _, to := range []string{"+12015550124", "+12015550123"} { // an SMS, and a call read digit by digit
		code := s.lastCode(to)
		spoken := strings.Join(strings.Split(code, ""), ", ")
		if logs := s.logs.String(); strings.Contains(logs, code) || strings.Contains(logs, spoken) || strings.Contains(logs, to) {
			t.Fatalf("the logs carry the code %s or the number %s:\n%s", code, to, logs)
		}
	}
}

func all0Body(t *testing.T, s *server) string {
	var msgs []struct {
		Body string `json:"body"`
	}
	out, err := s.cli("outbox", "--json", "--limit", "1")
	if err != nil {
		t.Fatal(err)
	}
	json.Unmarshal([]byte(out), &msgs)
	return msgs[0].Body
}

func TestHelp(t *testing.T) {
	help := func(args ...string) string {
		var out bytes.Buffer
		env := Env{Stdout: &out, Stderr: &out, Getenv: func(string) string { return "" }}
		if err := run(context.Background(), args, env); err != nil || !strings.Contains(out.String(), "Usage:") {
			t.Errorf("%v: %v\n%s", args, err, out.String())
		}
		return out.String()
	}
	for _, args := range [][]string{{"--help"}, {"app", "create", "--help"}, {"outbox", "--help"}, {"app", "update", "--help"}} {
		help(args...)
	}
	out := help("serve", "--help")
	for _, env := range []string{"TWOFOLD_ADDR", "TWOFOLD_DATA_DIR", "TWOFOLD_RATE_LIMIT", "TWOFOLD_CODE_TTL", "TWOFOLD_DEVICE_RATE_LIMIT",
		"TWOFOLD_DEVICE_USER_RATE_LIMIT", "TWOFOLD_ADDRESS_RATE_LIMIT", "TWOFOLD_DEVICE_STREAMS", "TWOFOLD_DEVICE_USER_STREAMS"} {
		if !strings.Contains(out, env) {
			t.Errorf("serve --help does not mention %s", env)
		}
	}
	if _, err := runCLI(t.TempDir(), "serve", "--rate-limit", "lots"); err == nil {
		t.Error("a bad --rate-limit was accepted")
	}
}

func itoa64(n int64) string { return strconv.FormatInt(n, 10) }

// Settings that cannot work together stop the server at start with a message naming them.
func TestServeRefusesBadSettings(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--callback-lease", "5s", "--callback-timeout", "10s"}, "--callback-lease"},
		{[]string{"--limit-sends", "lots"}, "--limit-sends"},
		{[]string{"--device-rate-limit", "lots"}, "--device-rate-limit"},
		{[]string{"--device-user-rate-limit", "5/0s"}, "--device-user-rate-limit"},
		{[]string{"--address-rate-limit", "-1/1m"}, "--address-rate-limit"},
		{[]string{"--device-streams", "-1"}, "--device-streams"},
		{[]string{"--log-format", "xml"}, "--log-format"},
		{[]string{"--database", "mysql://db"}, "postgres://"},
	} {
		args := append([]string{"serve", "--addr", "127.0.0.1:0"}, tc.args...)
		_, err := runCLI(t.TempDir(), args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("serve %v: %v, want an error naming %s", tc.args, err, tc.want)
		}
	}
}
