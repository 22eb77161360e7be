package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twofold-auth/twofold/internal/otp"
	"github.com/twofold-auth/twofold/internal/seal"
	"github.com/twofold-auth/twofold/internal/store/storetest"
)

// Master key rotation end to end: real servers through run(), the CLI as an operator runs it,
// and the key files in the data directory (master.key, master.key.others) as docs/operations.md says.

// writeKeys makes master.key hold current and master.key.others hold others (none: removed).
func writeKeys(t *testing.T, dir, current string, others ...string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, seal.MasterKeyFile), []byte(current+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, seal.OtherKeysFile)
	if len(others) == 0 {
		if err := os.Remove(path); err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		return
	}
	body := "# accepted while the master key is rotated\n" + strings.Join(others, "\n") + "\n"
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
}

func readKey(t *testing.T, dir string) string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(dir, seal.MasterKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(raw))
}

// generateKey runs `twofold master-key generate --json`.
func generateKey(t *testing.T) (key, id string) {
	t.Helper()
	out, err := runCLI(t.TempDir(), "master-key", "generate", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var g struct{ Key, ID string }
	if err := json.Unmarshal([]byte(out), &g); err != nil {
		t.Fatalf("generate: %v\n%s", err, out)
	}
	raw, err := seal.ParseMasterKey(g.Key)
	if err != nil {
		t.Fatal(err)
	}
	if ring, _ := seal.New(raw); ring.ID().String() != g.ID {
		t.Fatalf("generate: id %s is not the key's", g.ID)
	}
	return g.Key, g.ID
}

func keyID(t *testing.T, key string) string {
	t.Helper()
	raw, err := seal.ParseMasterKey(key)
	if err != nil {
		t.Fatal(err)
	}
	ring, _ := seal.New(raw)
	return ring.ID().String()
}

// masterKeyReport is `twofold master-key status --json` (and rekey's).
type masterKeyReport struct {
	Current    string   `json:"current"`
	Others     []string `json:"others"`
	CheckKey   string   `json:"check_key"`
	CheckMoved bool     `json:"check_moved"`
	Tables     []struct {
		Table      string `json:"table"`
		Rows       int64  `json:"rows"`
		OldSealed  int64  `json:"old_sealed"`
		OldMAC     int64  `json:"old_mac"`
		Resealed   int64  `json:"resealed"`
		Unreadable int64  `json:"unreadable"`
	} `json:"tables"`
	DevicesWaiting int64 `json:"devices_waiting"`
	Left           int64 `json:"left"`
	Done           bool  `json:"done"`
}

func (r masterKeyReport) table(name string) (rows, oldSealed, oldMAC int64) {
	for _, t := range r.Tables {
		if t.Table == name {
			return t.Rows, t.OldSealed, t.OldMAC
		}
	}
	return -1, -1, -1
}

// registerWithJWT registers a device with a registration JWT (the tutorials' QR code).
func (s *server) registerWithJWT(jwt string) response {
	s.t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		s.t.Fatal(err)
	}
	der, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	body, _ := json.Marshal(map[string]string{"jwt": jwt, "public_key": base64.StdEncoding.EncodeToString(der), "os_type": "cli"})
	return s.do("POST", "/device/v1/registrations", "", string(body))
}

func (s *server) verifies(what, token string, id int64) {
	s.t.Helper()
	if r := s.get(fmt.Sprintf("/protected/json/verify/%s/%d", token, id)); r.status != 200 {
		s.t.Fatalf("%s: %s", what, r.raw)
	}
}

func (s *server) auditVerifies(when string) {
	s.t.Helper()
	var v struct {
		OK      bool  `json:"ok"`
		Checked int64 `json:"checked"`
	}
	s.cliJSON(&v, "audit", "verify")
	if !v.OK || v.Checked == 0 {
		s.t.Fatalf("audit verify %s: %+v", when, v)
	}
}

// The whole procedure on one server, with restarts, on SQLite and on PostgreSQL: every kind of
// secret made under key A still works with B current and A accepted, re-keying moves all of it
// to B online, and then B alone serves everything but the devices not seen since, which must
// register again; a server given only A is refused.
func TestMasterKeyRotation(t *testing.T) {
	t.Run("SQLite", func(t *testing.T) { testMasterKeyRotation(t) })
	t.Run("PostgreSQL", func(t *testing.T) { testMasterKeyRotation(t, "--database", storetest.Schema(t)) })
}

func testMasterKeyRotation(t *testing.T, db ...string) {
	args := append([]string{"--rate-limit", "off"}, db...)
	s := startServer(t, "", args...)
	dir := s.dataDir
	keyA := readKey(t, dir)
	idA := keyID(t, keyA)

	// Under A: a code pending by SMS, a phone verification pending, an authenticator with its
	// QR link, devices, messages in the outbox and audit entries.
	ana := s.register(s.key, "ana@example.com", "2015550123")
	if r := s.get(fmt.Sprintf("/protected/json/sms/%d?force=true", ana)); r.status != 200 {
		t.Fatalf("sms: %s", r.raw)
	}
	anaCode := s.lastCode("+12015550123")
	if r := s.post("/protected/json/phones/verification/start", url.Values{"via": {"sms"}, "phone_number": {"201-555-0199"},
		"country_code": {"1"}}); r.status != 200 {
		t.Fatalf("phone verification: %s", r.raw)
	}
	pvCode := s.lastCode("+12015550199")
	bob := s.register(s.key, "bob@example.com", "2015550124")
	r := s.post(fmt.Sprintf("/protected/json/users/%d/secret", bob), nil)
	if r.status != 200 {
		t.Fatalf("secret: %s", r.raw)
	}
	bobTOTP, err := otp.ParseURI(r.body["uri"].(string))
	if err != nil {
		t.Fatal(err)
	}
	qrLink, err := url.Parse(r.body["qr_code"].(string))
	if err != nil {
		t.Fatal(err)
	}
	carol := s.register(s.key, "carol@example.com", "2015550125")
	seen := s.newDevice(s.key, carol) // connects after the switch
	unseen := s.newDevice(s.key, bob) // never connects again
	r = s.do("POST", "/protected/json/sdk/registrations", s.key, url.Values{"authy_id": {itoa64(carol)}})
	if r.status != 200 {
		t.Fatalf("sdk/registrations: %s", r.raw)
	}
	regToken := r.body["registration_token"].(string) // redeemed after the switch
	r = s.post(fmt.Sprintf("/protected/json/users/%d/recovery_codes", carol), nil)
	if r.status != 200 {
		t.Fatalf("recovery codes: %s", r.raw)
	}
	carolRecovery := r.body["codes"].([]any) // never lapse: they must outlive the rotation
	jwt := tutorialJWT(t, s.key, "My first app", 1, "dave", time.Now().Add(-time.Minute), time.Now().Add(4*time.Minute))
	if r := s.registerWithJWT(jwt); r.status != 200 {
		t.Fatalf("JWT registration: %s", r.raw)
	}
	s.auditVerifies("under A")
	s.stop()

	// Steps 1 to 3: B generated, then current, with A accepted (the rolling restarts are in
	// TestMasterKeyRotationOverlap).
	keyB, idB := generateKey(t)
	writeKeys(t, dir, keyB, keyA)
	s = startServer(t, dir, args...)

	var st masterKeyReport
	s.cliJSON(&st, "master-key", "status")
	if st.Current != idB || len(st.Others) != 1 || st.Others[0] != idA || st.CheckKey != idA || st.Done || st.Left == 0 {
		t.Fatalf("status after the switch: %+v", st)
	}
	if rows, old, mac := st.table("apps"); rows != 1 || old != 1 || mac != 1 {
		t.Fatalf("status apps: %+v", st)
	}

	// Everything made under A works: the API key (found by A's MAC), the pending code, the
	// phone verification, the TOTP, the QR link, the devices' tokens and seeds.
	if r := s.get("/protected/json/app/details"); r.status != 200 {
		t.Fatalf("old API key: %s", r.raw)
	}
	s.verifies("code sent under A", anaCode, ana)
	if r := s.do("GET", "/protected/json/phones/verification/check", s.key, url.Values{"phone_number": {"201-555-0199"},
		"country_code": {"1"}, "verification_code": {pvCode}}); r.status != 200 {
		t.Fatalf("phone verification code sent under A: %s", r.raw)
	}
	s.verifies("TOTP seeded under A", bobTOTP.Code(time.Now()), bob)
	s.verifies("recovery code made under A", fmt.Sprint(carolRecovery[0]), carol)
	if res, err := s.client.Get(s.url + qrLink.Path); err != nil || res.StatusCode != 200 {
		t.Fatalf("QR link made under A: %v %v", res, err)
	} else {
		res.Body.Close()
	}
	if r := seen.call(s, "GET", "/device/v1/device", nil); r.status != 200 {
		t.Fatalf("device registered under A: %s", r.raw)
	}
	s.verifies("device TOTP seeded under A", seen.totp.Code(time.Now()), carol)
	if d := s.redeem(regToken); d.token == "" {
		t.Fatal("registration token issued under A")
	}
	// The attacker's replay: a registration JWT spent under A is still spent.
	if r := s.registerWithJWT(jwt); r.status == 200 || r.body["error_code"] != "60037" {
		t.Fatalf("JWT spent under A registered again after the switch: %d %s", r.status, r.raw)
	}
	// New secrets are B's; old messages still read.
	if r := s.get(fmt.Sprintf("/protected/json/sms/%d?force=true", ana)); r.status != 200 {
		t.Fatalf("sms under B: %s", r.raw)
	}
	s.verifies("code sent under B", s.lastCode("+12015550123"), ana)
	if out, err := s.cli("outbox", "--to", "+12015550123"); err != nil || !strings.Contains(out, anaCode) {
		t.Fatalf("outbox under B and A: %v\n%s", err, out)
	}
	s.auditVerifies("after the switch")

	// Step 4, online: rekey while the server runs.
	var rk masterKeyReport
	s.cliJSON(&rk, "master-key", "rekey")
	if !rk.CheckMoved || rk.CheckKey != idB || rk.Left != 0 || !rk.Done || rk.DevicesWaiting != 2 { // the JWT's, the unseen one
		t.Fatalf("rekey: %+v", rk)
	}
	// Step 5: nothing needs A but the two devices not seen since (the JWT's and the unseen one).
	s.cliJSON(&st, "master-key", "status")
	if !st.Done || st.Left != 0 || st.DevicesWaiting != 2 || st.CheckKey != idB {
		t.Fatalf("status after rekey: %+v", st)
	}
	for _, tab := range st.Tables {
		if tab.OldSealed != 0 || tab.Unreadable != 0 || (tab.Table != "devices" && tab.OldMAC != 0) {
			t.Errorf("status after rekey, %s: %+v", tab.Table, tab)
		}
	}
	s.auditVerifies("after rekey")
	s.stop()

	// Step 6: A dropped.
	writeKeys(t, dir, keyB)
	s = startServer(t, dir, args...)
	if r := s.get("/protected/json/app/details"); r.status != 200 {
		t.Fatalf("API key under B alone: %s", r.raw)
	}
	s.verifies("TOTP under B alone", bobTOTP.Code(time.Now().Add(30*time.Second)), bob)
	s.verifies("recovery code made under A, under B alone", fmt.Sprint(carolRecovery[1]), carol)
	if r := seen.call(s, "GET", "/device/v1/device", nil); r.status != 200 {
		t.Fatalf("re-MAC'd device under B alone: %s", r.raw)
	}
	s.verifies("device TOTP under B alone", seen.totp.Code(time.Now().Add(10*time.Second)), carol)
	if r := unseen.call(s, "GET", "/device/v1/device", nil); r.status != 401 {
		t.Fatalf("a device not seen before A was dropped: %d %s, want 401 (it registers again)", r.status, r.raw)
	}
	// Spent under A alone, before B existed: with A gone its mark cannot be checked, so a JWT
	// issued before the re-key is refused outright.
	if r := s.registerWithJWT(jwt); r.status == 200 || r.body["error_code"] != "60037" {
		t.Fatalf("JWT spent under A registered again under B alone: %s", r.raw)
	}
	// (Issued a second or two ahead, within the leeway for clocks: the re-key's time is kept to
	// the second, and a JWT of the same second counts as issued before it.)
	if r := s.registerWithJWT(tutorialJWT(t, s.key, "My first app", 1, "erin", time.Now().Add(2*time.Second), time.Now().Add(5*time.Minute))); r.status != 200 {
		t.Fatalf("a JWT issued after the re-key: %s", r.raw)
	}
	if r := s.get(fmt.Sprintf("/protected/json/sms/%d?force=true", ana)); r.status != 200 {
		t.Fatalf("sms under B alone: %s", r.raw)
	}
	s.verifies("code under B alone", s.lastCode("+12015550123"), ana)
	if out, err := s.cli("outbox", "--to", "+12015550123"); err != nil || !strings.Contains(out, anaCode) {
		t.Fatalf("outbox under B alone (re-sealed bodies): %v\n%s", err, out)
	}
	s.auditVerifies("under B alone")
	s.cliJSON(&st, "master-key", "status")
	if !st.Done || len(st.Others) != 0 {
		t.Fatalf("status under B alone: %+v", st)
	}
	s.stop()

	// A server (or a CLI) given only A is refused: the database's key check is B's now.
	writeKeys(t, dir, keyA)
	if _, err := runCLI(dir, append([]string{"app", "list"}, db...)...); err == nil || !strings.Contains(err.Error(), "not the one the database") {
		t.Fatalf("CLI with A alone: %v", err)
	}
	err = run(context.Background(), append([]string{"serve", "--addr", "127.0.0.1:0", "--data-dir", dir}, db...),
		Env{Stdout: io.Discard, Stderr: io.Discard, Getenv: func(string) string { return "" }})
	if err == nil || !strings.Contains(err.Error(), "not the one the database") {
		t.Fatalf("serve with A alone: %v", err)
	}
}

// The rolling restarts of steps 2 and 3: for a while some servers have B current (A accepted)
// and others A current (B accepted). Each opens what the other sealed, finds the other's API
// key MACs and codes, and a JWT spent on one is spent on the other. On PostgreSQL the two run
// at once on one database, each with a data directory (key files) of its own.
func TestMasterKeyRotationOverlap(t *testing.T) {
	dsn := storetest.Schema(t)
	keyA, idA := generateKey(t)
	keyB, idB := generateKey(t)
	oldDir, freshDir := t.TempDir(), t.TempDir()
	writeKeys(t, oldDir, keyA) // the database is set up under A, as before a rotation
	startServer(t, oldDir, "--database", dsn).stop()
	writeKeys(t, oldDir, keyA, keyB)   // step 2 done
	writeKeys(t, freshDir, keyB, keyA) // step 3 under way
	old := startServer(t, oldDir, "--database", dsn, "--rate-limit", "off")
	fresh := startServer(t, freshDir, "--database", dsn, "--rate-limit", "off")

	// The keys may come from the environment instead: it wins over the files.
	out, err := old.cliWith(map[string]string{"TWOFOLD_MASTER_KEY": keyB, "TWOFOLD_MASTER_KEY_OTHERS": " " + keyA + " ,"},
		"master-key", "status", "--json")
	var st masterKeyReport
	if err != nil || json.Unmarshal([]byte(out), &st) != nil || st.Current != idB || len(st.Others) != 1 || st.Others[0] != idA {
		t.Fatalf("status with keys from the environment: %v\n%s", err, out)
	}

	// Made by the server with B current, used on the one with A current, and the other way.
	for _, tc := range []struct {
		name     string
		by, with *server
		phone    string
	}{
		{"sealed under B, opened with B as other", fresh, old, "2015550131"},
		{"sealed under A, opened with A as other", old, fresh, "2015550132"},
	} {
		id := tc.by.register(tc.by.key, tc.phone+"@example.com", tc.phone)
		if r := tc.by.get(fmt.Sprintf("/protected/json/sms/%d?force=true", id)); r.status != 200 {
			t.Fatalf("%s: sms: %s", tc.name, r.raw)
		}
		var msgs []struct{ Body string }
		tc.with.cliJSON(&msgs, "outbox", "--to", "+1"+tc.phone)
		if len(msgs) != 1 {
			t.Fatalf("%s: outbox: %+v", tc.name, msgs)
		}
		tc.with.verifies(tc.name+": code", codeIn(t, msgs[0].Body), id)
		r := tc.by.post(fmt.Sprintf("/protected/json/users/%d/secret", id), nil)
		seed, err := otp.ParseURI(r.body["uri"].(string))
		if err != nil {
			t.Fatalf("%s: secret: %s", tc.name, r.raw)
		}
		tc.with.verifies(tc.name+": TOTP", seed.Code(time.Now()), id)
		d := tc.by.newDevice(tc.by.key, id)
		if r := d.call(tc.with, "GET", "/device/v1/device", nil); r.status != 200 {
			t.Fatalf("%s: device: %s", tc.name, r.raw)
		}
		if r := d.call(tc.by, "GET", "/device/v1/device", nil); r.status != 200 {
			t.Fatalf("%s: device back on its first server: %s", tc.name, r.raw)
		}
		jwt := tutorialJWT(t, tc.by.key, "My first app", 1, "user-"+tc.phone, time.Now(), time.Now().Add(5*time.Minute))
		if r := tc.by.registerWithJWT(jwt); r.status != 200 {
			t.Fatalf("%s: JWT: %s", tc.name, r.raw)
		}
		if r := tc.with.registerWithJWT(jwt); r.status == 200 || r.body["error_code"] != "60037" {
			t.Fatalf("%s: JWT spent on one server registered again on the other: %s", tc.name, r.raw)
		}
	}
	// The first application's key is found by both, whichever MAC it has.
	for _, s := range []*server{old, fresh} {
		if r := s.get("/protected/json/app/details"); r.status != 200 {
			t.Fatalf("API key: %s", r.raw)
		}
	}
}

// cliWith runs a CLI command on the server's database with the environment vars.
func (s *server) cliWith(vars map[string]string, args ...string) (string, error) {
	s.t.Helper()
	var out, errOut bytes.Buffer
	env := Env{Stdout: &out, Stderr: &errOut, Getenv: func(k string) string { return vars[k] }}
	err := run(context.Background(), append(append(args, s.cliArgs...), "--data-dir", s.dataDir), env)
	if err != nil {
		return out.String(), fmt.Errorf("%w (stderr: %s)", err, errOut.String())
	}
	return out.String(), nil
}

func TestMasterKeyCommands(t *testing.T) {
	for _, args := range [][]string{{"master-key", "--help"}, {"master-key", "generate", "--help"},
		{"master-key", "status", "--help"}, {"master-key", "rekey", "--help"}} {
		out, err := runCLI(t.TempDir(), args...)
		if err != nil || !strings.Contains(out, "Usage:") {
			t.Errorf("%v: %v\n%s", args, err, out)
		}
	}
	out, err := runCLI(t.TempDir(), "master-key", "generate")
	if key, perr := base64.StdEncoding.DecodeString(strings.TrimSpace(out)); err != nil || perr != nil || len(key) != seal.KeySize {
		t.Fatalf("generate: %q %v %v", out, err, perr)
	}
	if again, err := runCLI(t.TempDir(), "master-key", "generate"); err != nil || again == out {
		t.Fatalf("generate again: %v (the same key twice?)", err)
	}
	if _, err := runCLI(t.TempDir(), "master-key", "rekey", "--batch", "0"); err == nil {
		t.Fatal("rekey --batch 0 accepted")
	}

	// Other keys without a current one: refused, and no master.key is made beside them (it
	// would seal what no other instance can open).
	dir := t.TempDir()
	keyA, _ := generateKey(t)
	if err := os.WriteFile(filepath.Join(dir, seal.OtherKeysFile), []byte(keyA+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := runCLI(dir, "init"); err == nil || !strings.Contains(err.Error(), "none is made") {
		t.Fatalf("other keys without a master key: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, seal.MasterKeyFile)); !os.IsNotExist(err) {
		t.Fatalf("a master.key was made: %v", err)
	}
	// A readable master.key.others is refused like a readable master.key.
	writeKeys(t, dir, keyA, keyA)
	if err := os.Chmod(filepath.Join(dir, seal.OtherKeysFile), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := runCLI(dir, "init"); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("world-readable master.key.others: %v", err)
	}
}
