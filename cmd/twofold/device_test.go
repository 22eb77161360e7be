package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"rsc.io/qr"

	"github.com/twofold-auth/twofold/internal/otp"
	"github.com/twofold-auth/twofold/internal/vault"
)

const testPassphrase = "test vault passphrase"

// authenticator is a user's `twofold device` with a vault of its own, run in-process.
type authenticator struct {
	t     *testing.T
	vault string
	vars  map[string]string
}

// newAuthenticator makes an empty vault with cheap KDF parameters (they are kept in the file,
// so the CLI uses them too) and returns the CLI that uses it.
func newAuthenticator(t *testing.T) *authenticator {
	t.Helper()
	path := filepath.Join(t.TempDir(), "twofold", "vault")
	v, err := vault.Create(path, []byte(testPassphrase), vault.Params{Time: 1, Memory: 1024, Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := v.Save(); err != nil {
		t.Fatal(err)
	}
	return &authenticator{t: t, vault: path, vars: map[string]string{"TWOFOLD_VAULT": path, "TWOFOLD_VAULT_PASSPHRASE": testPassphrase}}
}

func (a *authenticator) env(stdin io.Reader, stdout, stderr io.Writer) Env {
	return Env{Stdin: stdin, Stdout: stdout, Stderr: stderr, Getenv: func(k string) string { return a.vars[k] }}
}

// run runs `twofold device args...` with empty stdin.
func (a *authenticator) run(args ...string) (string, error) {
	var out, errOut bytes.Buffer
	err := run(context.Background(), append([]string{"device"}, args...), a.env(strings.NewReader(""), &out, &errOut))
	if err != nil {
		return out.String(), fmt.Errorf("%w (stderr: %s)", err, errOut.String())
	}
	return out.String(), nil
}

func (a *authenticator) must(args ...string) string {
	a.t.Helper()
	out, err := a.run(args...)
	if err != nil {
		a.t.Fatalf("twofold device %s: %v", strings.Join(args, " "), err)
	}
	return out
}

func (a *authenticator) json(v any, args ...string) {
	a.t.Helper()
	out := a.must(append(args, "--json")...)
	if err := json.Unmarshal([]byte(out), v); err != nil {
		a.t.Fatalf("twofold device %v: bad JSON %v:\n%s", args, err, out)
	}
}

// fails runs a command that must fail with an error mentioning every one of want.
func (a *authenticator) fails(want []string, args ...string) {
	a.t.Helper()
	_, err := a.run(args...)
	if err == nil {
		a.t.Fatalf("twofold device %s succeeded", strings.Join(args, " "))
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			a.t.Fatalf("twofold device %s: error %q does not mention %q", strings.Join(args, " "), err, w)
		}
	}
}

func (a *authenticator) open() *vault.Vault {
	a.t.Helper()
	v, err := vault.Open(a.vault, []byte(testPassphrase))
	if err != nil {
		a.t.Fatal(err)
	}
	return v
}

// tutorialJWT is the registration JWT as the Authy tutorials build it: HS256 with the API key,
// iss the app's name, and the user's id in context. appID is signed as given: the Flask
// tutorials read it from the environment and sign a string ("12345"), others a number.
func tutorialJWT(t *testing.T, apiKey, appName string, appID any, customID string, iat, exp time.Time) string {
	t.Helper()
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"iss": appName, "iat": iat.Unix(), "exp": exp.Unix(),
		"context": map[string]any{"custom_user_id": customID, "authy_app_id": appID},
	}).SignedString([]byte(apiKey))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestDeviceEnrolTutorialQR(t *testing.T) {
	s := startServer(t, "", "--rate-limit", "off")
	a := newAuthenticator(t)
	var app appJSON
	s.cliJSON(&app, "app", "show", "1")
	now := time.Now()
	// Signed as the Flask tutorials sign it: the app id is a string, read from the environment.
	token := tutorialJWT(t, s.key, app.Name, strconv.FormatInt(app.AppID, 10), "42", now, now.Add(300*time.Second))
	enrolLink := "authy://account?token=" + token

	// The QR code the tutorial shows, as a PNG the user saved.
	code, err := qr.Encode(enrolLink, qr.M)
	if err != nil {
		t.Fatal(err)
	}
	png := filepath.Join(t.TempDir(), "qr.png")
	if err := os.WriteFile(png, code.PNG(), 0o600); err != nil {
		t.Fatal(err)
	}
	a.fails([]string{"--server"}, "enrol", "--qr", png) // the link names no server
	var added accountJSON
	a.json(&added, "enrol", "--qr", png, "--server", s.url)
	if added.Type != "device" || added.AppName != app.Name || added.AuthyID == 0 || added.Server != s.url || added.Index != 1 {
		t.Fatalf("enrolled: %+v", added)
	}

	// The tutorial's backend polls and learns the user's Authy id.
	r := s.get("/protected/json/registrations/status?custom_user_id=42")
	reg, _ := r.body["registration"].(map[string]any)
	if r.status != 200 || reg["status"] != "completed" || reg["authy_id"] != float64(added.AuthyID) {
		t.Fatalf("registration status: %s", r.raw)
	}

	// The device's own codes verify.
	var codes []codeJSON
	a.json(&codes, "codes")
	if len(codes) != 1 || codes[0].Type != "device" || len(codes[0].Code) != 7 || codes[0].SecondsLeft < 1 || codes[0].SecondsLeft > codes[0].Period {
		t.Fatalf("codes: %+v", codes)
	}
	if r := s.get(fmt.Sprintf("/protected/json/verify/%s/%d", codes[0].Code, added.AuthyID)); r.status != 200 {
		t.Fatalf("verify the device's code: %s", r.raw)
	}
	text := a.must("codes")
	if !strings.Contains(text, app.Name) || !strings.Contains(text, "LEFT") {
		t.Fatalf("codes text:\n%s", text)
	}
	// --code: the code alone, of the one account the vault holds (or of the one named).
	for _, args := range [][]string{{"codes", "--code"}, {"codes", "1", "--code"}} {
		var before, after []codeJSON
		a.json(&before, "codes")
		got := a.must(args...)
		a.json(&after, "codes")
		if got != before[0].Code+"\n" && got != after[0].Code+"\n" {
			t.Fatalf("%v: %q, want %s (or %s)", args, got, before[0].Code, after[0].Code)
		}
	}

	// The same JWT again, and expired or tampered ones, fail with the server's message; the
	// vault keeps its one device.
	a.fails([]string{"already used", "60037"}, "enrol", enrolLink, "--server", s.url)
	old := tutorialJWT(t, s.key, app.Name, app.AppID, "43", now.Add(-time.Hour), now.Add(-time.Hour+300*time.Second))
	a.fails([]string{"expired", "60086"}, "enrol", "authy://account?token="+old, "--server", s.url)
	fresh := tutorialJWT(t, s.key, app.Name, app.AppID, "44", now, now.Add(300*time.Second))
	parts := strings.Split(fresh, ".")
	claims := strings.Replace(mustDecodeSegment(t, parts[1]), `"44"`, `"45"`, 1)
	forged := parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(claims)) + "." + parts[2]
	a.fails([]string{"not valid", "60101"}, "enrol", "authy://account?token="+forged, "--server", s.url)
	wrongKey := tutorialJWT(t, strings.Repeat("x", 32), app.Name, app.AppID, "46", now, now.Add(300*time.Second))
	a.vars["TWOFOLD_SERVER"] = s.url // the environment's server, for links without one
	a.fails([]string{"60101"}, "enrol", "authy://account?token="+wrongKey)
	var list []accountJSON
	a.json(&list, "list")
	if len(list) != 1 {
		t.Fatalf("failed enrolments changed the vault: %+v", list)
	}
}

func mustDecodeSegment(t *testing.T, seg string) string {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// enrolUser registers a device for authyID through sdk/registrations' registration_url.
func enrolUser(t *testing.T, s *server, a *authenticator, authyID int64) accountJSON {
	t.Helper()
	r := s.post("/protected/json/sdk/registrations", url.Values{"authy_id": {fmt.Sprint(authyID)}})
	regURL, _ := r.body["registration_url"].(string)
	if r.status != 200 || !strings.HasPrefix(regURL, s.url+"/authenticator/#register=tfr_") {
		t.Fatalf("sdk/registrations: %s", r.raw)
	}
	var added accountJSON
	a.json(&added, "enrol", regURL)
	if added.Type != "device" || added.AuthyID != authyID || added.Server != s.url {
		t.Fatalf("enrolled: %+v", added)
	}
	return added
}

func TestDeviceEnrolRegistrationURL(t *testing.T) {
	s := startServer(t, "", "--rate-limit", "off")
	a := newAuthenticator(t)
	alice := s.register(s.key, "alice@example.com", "2015550123")
	r := s.post("/protected/json/sdk/registrations", url.Values{"authy_id": {fmt.Sprint(alice)}})
	regURL := r.body["registration_url"].(string)
	out := a.must("enrol", regURL)
	if !strings.Contains(out, fmt.Sprintf("authy id %d", alice)) || !strings.Contains(out, s.url) {
		t.Fatalf("enrol output:\n%s", out)
	}
	st := s.get(fmt.Sprintf("/protected/json/users/%d/status", alice)).body["status"].(map[string]any)
	if st["registered"] != true {
		t.Fatalf("user status after enrolling: %v", st)
	}
	// The token is single use.
	a.fails([]string{"60035"}, "enrol", regURL)

	v := a.open()
	if len(v.Devices) != 1 {
		t.Fatalf("vault devices: %+v", v.Devices)
	}
	d := v.Devices[0]
	if d.Server != s.url || d.AuthyID != alice || !strings.HasPrefix(d.AccessToken, "tfd_") || len(d.PrivateKey) == 0 || d.Period != 10 {
		t.Fatalf("vault device: %+v", d)
	}
	// Its access token works on the device API.
	dev := &device{token: d.AccessToken}
	if r := dev.call(s, "GET", "/device/v1/device", nil); r.status != 200 {
		t.Fatalf("device info with the stored token: %s", r.raw)
	}
	text := a.must("list")
	if !strings.Contains(text, "device") || !strings.Contains(text, fmt.Sprintf("authy id %d", alice)) {
		t.Fatalf("list:\n%s", text)
	}

	for _, bad := range [][]string{
		{"enrol"},
		{"enrol", "https://example.com/no-token"},
		{"enrol", "mailto:x@example.com"},
		{"enrol", "otpauth://hotp/X:y?secret=JBSWY3DPEHPK3PXP&counter=1"},
		{"enrol", "--qr", filepath.Join(t.TempDir(), "missing.png")},
	} {
		if _, err := a.run(bad...); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
}

func TestDeviceAnswerAndRemove(t *testing.T) {
	s := startServer(t, "", "--rate-limit", "off")
	a := newAuthenticator(t)
	alice := s.register(s.key, "alice@example.com", "2015550123")
	enrolUser(t, s, a, alice)

	uuid := s.createRequest(s.key, alice, url.Values{"message": {"Login"}})
	var res approvalRequest
	a.json(&res, "approve", uuid)
	if res.Status != "approved" || res.UUID != uuid || s.requestStatus(uuid)["status"] != "approved" {
		t.Fatalf("approve: %+v / %v", res, s.requestStatus(uuid))
	}
	a.fails([]string{"already approved"}, "approve", uuid)
	a.fails([]string{"not found", "60049"}, "deny", "1b4e28ba-2fa1-41d2-883f-0016d3cca427")

	uuid = s.createRequest(s.key, alice, url.Values{"message": {"Transfer"}})
	out := a.must("deny", uuid, "--reason", "x")
	if got := s.requestStatus(uuid); got["status"] != "denied" || got["reason"] != "x" || !strings.Contains(out, "Denied") {
		t.Fatalf("deny: %v\n%s", got, out)
	}

	r := s.post(fmt.Sprintf("/onetouch/json/users/%d/approval_requests", alice), url.Values{"message": {"Login"}, "number_matching": {"true"}})
	ar := r.body["approval_request"].(map[string]any)
	uuid, number := ar["uuid"].(string), ar["number"].(string)
	a.fails([]string{"--number"}, "approve", uuid)
	a.must("approve", uuid, "--number", number, "--account", "1")
	if got := s.requestStatus(uuid); got["status"] != "approved" {
		t.Fatalf("number matching approve: %v", got)
	}

	// A plain TOTP account's codes are internal/otp's.
	const uri = "otpauth://totp/GitHub:ada%40example.com?secret=JBSWY3DPEHPK3PXP&issuer=GitHub&algorithm=SHA256&digits=8&period=60"
	var added accountJSON
	a.json(&added, "enrol", uri)
	if added.Type != "totp" || added.Issuer != "GitHub" || added.Account != "ada@example.com" || added.Index != 2 {
		t.Fatalf("otpauth enrol: %+v", added)
	}
	a.fails([]string{"already in the vault"}, "enrol", uri)
	key, _ := otp.ParseURI(uri)
	before := time.Now()
	var codes []codeJSON
	a.json(&codes, "codes", "github")
	after := time.Now()
	if len(codes) != 1 || (codes[0].Code != key.Code(before) && codes[0].Code != key.Code(after)) || codes[0].Period != 60 {
		t.Fatalf("codes %+v, want %s (or %s)", codes, key.Code(before), key.Code(after))
	}
	if got := a.must("codes", "github", "--code"); got != key.Code(after)+"\n" && got != key.Code(time.Now())+"\n" {
		t.Fatalf("codes github --code: %q", got)
	}
	a.fails([]string{"holds 2", "name one"}, "codes", "--code")

	// Removing the device removes it on the server: its token stops working.
	token := a.open().Devices[0].AccessToken
	a.fails([]string{"which account"}, "remove")
	if out := a.must("remove", "1"); !strings.Contains(out, "Removed") {
		t.Fatalf("remove: %s", out)
	}
	expectError(t, (&device{token: token}).call(s, "GET", "/device/v1/device", nil), 401, "60072")
	if st := s.get(fmt.Sprintf("/protected/json/users/%d/status", alice)).body["status"].(map[string]any); st["registered"] != false {
		t.Fatalf("user still registered: %v", st)
	}
	// The TOTP account is now the only one; remove needs no argument.
	a.must("remove")
	var list []accountJSON
	a.json(&list, "list")
	if len(list) != 0 {
		t.Fatalf("after removing everything: %+v", list)
	}
}

func TestDeviceVaultErrors(t *testing.T) {
	a := newAuthenticator(t)
	a.vars["TWOFOLD_VAULT_PASSPHRASE"] = "wrong"
	a.fails([]string{"wrong passphrase"}, "list")
	delete(a.vars, "TWOFOLD_VAULT_PASSPHRASE")
	a.fails([]string{"TWOFOLD_VAULT_PASSPHRASE"}, "list") // stdin is not a terminal
	a.vars["TWOFOLD_VAULT_PASSPHRASE"] = testPassphrase
	a.fails([]string{"no vault", "enrol"}, "list", "--vault", filepath.Join(t.TempDir(), "none"))
	a.fails([]string{"no device"}, "watch")

	// A first enrolment creates the vault (with the default KDF parameters), private.
	path := filepath.Join(t.TempDir(), "new", "vault")
	out := a.must("enrol", "--vault", path, "otpauth://totp/Example:bob?secret=JBSWY3DPEHPK3PXP")
	if !strings.Contains(out, "Example:bob") {
		t.Fatalf("enrol: %s", out)
	}
	if st, err := os.Stat(path); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("new vault: %v %v", st, err)
	}
	if raw, _ := os.ReadFile(path); bytes.Contains(raw, []byte("JBSWY3DPEHPK3PXP")) || bytes.Contains(raw, []byte("bob")) {
		t.Fatal("the vault holds the account in clear")
	}
	text := a.must("list", "--vault", path)
	if !strings.Contains(text, "totp") || !strings.Contains(text, "Example:bob") {
		t.Fatalf("list:\n%s", text)
	}
	help := a.must("--help")
	for _, sub := range []string{"enrol", "list", "codes", "watch", "approve", "deny", "remove"} {
		if !strings.Contains(help, sub) {
			t.Errorf("help lacks %s:\n%s", sub, help)
		}
	}
}

func TestParseLink(t *testing.T) {
	for _, tc := range []struct {
		raw, server     string
		kind, wantSrv   string
		token, failWith string
	}{
		{raw: "authy://account?token=eyJa.b.c", server: "https://2fa.example.com/", kind: "jwt", wantSrv: "https://2fa.example.com", token: "eyJa.b.c"},
		{raw: "authy://account?token=x", failWith: "--server"},
		{raw: "authy://account", server: "https://e.com", failWith: "no token"},
		{raw: "https://2fa.example.com/authenticator/#register=tfr_abc", kind: "token", wantSrv: "https://2fa.example.com", token: "tfr_abc"},
		{raw: "https://example.com/2fa/authenticator/#register=tfr_abc", kind: "token", wantSrv: "https://example.com/2fa", token: "tfr_abc"},
		{raw: "  tfr_abc ", server: "http://127.0.0.1:8080", kind: "token", wantSrv: "http://127.0.0.1:8080", token: "tfr_abc"},
		{raw: "tfr_abc", server: "ftp://x", failWith: "not a server URL"},
		{raw: "otpauth://totp/A:b?secret=JBSWY3DPEHPK3PXP", kind: "otpauth"},
		{raw: "otpauth://totp/A:b", failWith: "secret"},
		{raw: "hello", failWith: "not a link"},
	} {
		l, err := parseLink(tc.raw, tc.server)
		if tc.failWith != "" {
			if err == nil || !strings.Contains(err.Error(), tc.failWith) {
				t.Errorf("%q: error %v, want one mentioning %q", tc.raw, err, tc.failWith)
			}
			continue
		}
		if err != nil || l.kind != tc.kind || l.server != tc.wantSrv || l.token != tc.token {
			t.Errorf("%q: %+v %v", tc.raw, l, err)
		}
	}
}

func FuzzParseLink(f *testing.F) {
	for _, s := range []string{"authy://account?token=a.b.c", "https://h/authenticator/#register=tfr_x",
		"otpauth://totp/A:b?secret=JBSWY3DPEHPK3PXP", "tfr_x", "eyJ.a.b"} {
		f.Add(s, "https://h")
	}
	f.Fuzz(func(t *testing.T, raw, server string) {
		l, err := parseLink(raw, server)
		if err == nil && l.kind != "otpauth" && (l.token == "" || !strings.HasPrefix(l.server, "http")) {
			t.Fatalf("%q %q: %+v", raw, server, l)
		}
	})
}

// notifyBuffer is a writer tests can wait on: waitFor returns once a text appears after what
// earlier waits consumed.
type notifyBuffer struct {
	mu      sync.Mutex
	buf     []byte
	seen    int
	changed chan struct{}
}

func newNotifyBuffer() *notifyBuffer { return &notifyBuffer{changed: make(chan struct{})} }

func (b *notifyBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	close(b.changed)
	b.changed = make(chan struct{})
	return len(p), nil
}

func (b *notifyBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.buf)
}

// waitFor waits until text appears and returns everything written up to it since the last wait.
func (b *notifyBuffer) waitFor(t *testing.T, text string) string {
	t.Helper()
	deadline := time.NewTimer(20 * time.Second)
	defer deadline.Stop()
	for {
		b.mu.Lock()
		if i := bytes.Index(b.buf[b.seen:], []byte(text)); i >= 0 {
			out := string(b.buf[b.seen : b.seen+i+len(text)])
			b.seen += i + len(text)
			b.mu.Unlock()
			return out
		}
		ch := b.changed
		b.mu.Unlock()
		select {
		case <-ch:
		case <-deadline.C:
			t.Fatalf("%q did not appear; output so far:\n%s", text, b.String())
		}
	}
}
