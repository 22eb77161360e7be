package vault

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// cheap keeps the tests fast; the parameters are stored in the file, so Open uses them too.
var cheap = Params{Time: 1, Memory: 1024, Threads: 1}

var pass = []byte("correct horse battery staple")

func sample(t *testing.T, path string) *Vault {
	t.Helper()
	v, err := Create(path, pass, cheap)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Second)
	v.Devices = []Device{{Server: "https://2fa.example.com", AccessToken: "tfd_abc", DeviceID: 7, AuthyID: 42, AppID: 1,
		AppName: "Shop", Name: "laptop", PrivateKey: []byte{1, 2, 3}, TOTPSecret: []byte("12345678901234567890"),
		Digits: 7, Period: 10, AddedAt: now}}
	v.Accounts = []Account{{Issuer: "GitHub", Account: "ada", Secret: []byte("secret"), Digits: 6, Period: 30,
		Algorithm: "SHA1", AddedAt: now}}
	return v
}

func TestRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "vault")
	v := sample(t, path)
	if err := v.Save(); err != nil {
		t.Fatal(err)
	}
	got, err := Open(path, pass)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(v, got, cmp.AllowUnexported(Vault{})); diff != "" {
		t.Fatalf("round trip (-saved +opened):\n%s", diff)
	}
	// Saved again after a change, it opens with the same passphrase.
	got.Accounts = append(got.Accounts, Account{Issuer: "X", Account: "y", Secret: []byte("z"), Digits: 8, Period: 60, Algorithm: "SHA512"})
	if err := got.Save(); err != nil {
		t.Fatal(err)
	}
	again, err := Open(path, pass)
	if err != nil || len(again.Accounts) != 2 || again.Accounts[1].Algorithm != "SHA512" {
		t.Fatalf("after a second save: %v %+v", err, again)
	}
	// The secrets are not in the file in clear.
	raw, _ := os.ReadFile(path)
	for _, s := range []string{"tfd_abc", "GitHub", "12345678901234567890", "Shop"} {
		if bytes.Contains(raw, []byte(s)) {
			t.Errorf("%q is readable in the file", s)
		}
	}
}

func TestWrongPassphrase(t *testing.T) {
	path := filepath.Join(t.TempDir(), "vault")
	if err := sample(t, path).Save(); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"", "correct horse battery stapl", "Correct horse battery staple"} {
		if _, err := Open(path, []byte(p)); !errors.Is(err, ErrWrongPassphrase) {
			t.Errorf("passphrase %q: %v, want ErrWrongPassphrase", p, err)
		}
	}
	if _, err := Open(filepath.Join(t.TempDir(), "none"), pass); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing vault: %v", err)
	}
}

func TestTamperingDetected(t *testing.T) {
	path := filepath.Join(t.TempDir(), "vault")
	if err := sample(t, path).Save(); err != nil {
		t.Fatal(err)
	}
	orig, _ := os.ReadFile(path)
	edit := func(f func(m map[string]any)) []byte {
		var m map[string]any
		if err := json.Unmarshal(orig, &m); err != nil {
			t.Fatal(err)
		}
		f(m)
		b, _ := json.Marshal(m)
		return b
	}
	flip := func(field string) func(map[string]any) {
		return func(m map[string]any) {
			var b []byte
			json.Unmarshal([]byte(`"`+m[field].(string)+`"`), &b)
			b[len(b)/2] ^= 1
			m[field] = b
		}
	}
	for _, tc := range []struct {
		name string
		data []byte
		want error
	}{
		{"ciphertext bit", edit(flip("ciphertext")), ErrTampered},
		{"nonce bit", edit(flip("nonce")), ErrTampered},
		{"check bit", edit(flip("check")), ErrTampered},
		{"truncated ciphertext", edit(func(m map[string]any) { m["ciphertext"] = m["ciphertext"].(string)[:24] }), ErrTampered},
		// The header is bound to the ciphertext; KDF changes derive another key (so they read as
		// a wrong passphrase, which cannot be told apart).
		{"kdf time", edit(func(m map[string]any) { m["kdf"].(map[string]any)["time"] = 2 }), ErrWrongPassphrase},
		{"salt bit", edit(func(m map[string]any) {
			k := m["kdf"].(map[string]any)
			flip("salt")(k)
		}), ErrWrongPassphrase},
		{"other version", edit(func(m map[string]any) { m["version"] = 2 }), nil},
		{"other format", edit(func(m map[string]any) { m["format"] = "x" }), ErrFormat},
		{"huge memory", edit(func(m map[string]any) { m["kdf"].(map[string]any)["memory_kib"] = 1 << 31 }), ErrFormat},
		{"truncated file", orig[:len(orig)/2], ErrFormat},
		{"empty file", nil, ErrFormat},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "vault")
			os.WriteFile(p, tc.data, 0o600)
			v, err := Open(p, pass)
			if err == nil {
				t.Fatalf("opened a tampered vault: %+v", v)
			}
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("error %v, want %v", err, tc.want)
			}
		})
	}
}

func TestFileMode(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "config", "twofold")
	path := filepath.Join(dir, "vault")
	v := sample(t, path)
	if err := v.Save(); err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]fs.FileMode{path: 0o600, dir: 0o700 | fs.ModeDir} {
		st, err := os.Stat(p)
		if err != nil || st.Mode() != want {
			t.Errorf("%s: mode %v, want %v (%v)", p, st.Mode(), want, err)
		}
	}
	// A vault someone made readable is written back private.
	os.Chmod(path, 0o644)
	if err := v.Save(); err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o600 {
		t.Errorf("after save: mode %v", st.Mode())
	}
}

func TestAtomicReplace(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "vault")
	v := sample(t, path)
	if err := v.Save(); err != nil {
		t.Fatal(err)
	}
	first, _ := os.ReadFile(path)
	old, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	before, _ := old.Stat()

	// A save that fails before the rename leaves the old vault whole and no temporary file.
	v.Accounts = nil
	beforeRename = func(tmp string) error {
		if st, err := os.Stat(tmp); err != nil || st.Mode().Perm() != 0o600 {
			t.Errorf("temporary file %s: %v %v", tmp, st, err)
		}
		return errors.New("disk full")
	}
	t.Cleanup(func() { beforeRename = nil })
	if err := v.Save(); err == nil {
		t.Fatal("save succeeded despite the failure")
	}
	beforeRename = nil
	if now, _ := os.ReadFile(path); !bytes.Equal(now, first) {
		t.Fatal("a failed save changed the vault")
	}
	if got, err := Open(path, pass); err != nil || len(got.Accounts) != 1 {
		t.Fatalf("vault after a failed save: %v %+v", err, got)
	}

	// A successful save replaces the file by rename: a reader holding the old file still reads
	// the old, complete vault.
	if err := v.Save(); err != nil {
		t.Fatal(err)
	}
	after, _ := os.Stat(path)
	if os.SameFile(before, after) {
		t.Fatal("the vault was rewritten in place")
	}
	held, _ := io.ReadAll(old)
	if !bytes.Equal(held, first) {
		t.Fatal("the old file changed under its reader")
	}
	if got, err := Open(path, pass); err != nil || len(got.Accounts) != 0 {
		t.Fatalf("new vault: %v %+v", err, got)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("left behind: %v", entries)
	}
}

func TestCreateRefuses(t *testing.T) {
	if _, err := Create("x", nil, cheap); err == nil {
		t.Error("empty passphrase accepted")
	}
	for _, p := range []Params{{}, {Time: 1, Memory: 4, Threads: 1}, {Time: 1, Memory: 1024, Threads: 0}} {
		if _, err := Create("x", pass, p); err == nil {
			t.Errorf("params %+v accepted", p)
		}
	}
}

func TestLockExcludes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "vault")
	unlock, err := Lock(path)
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan func())
	go func() {
		u, err := Lock(path)
		if err != nil {
			t.Error(err)
		}
		got <- u
	}()
	select {
	case <-got:
		t.Fatal("a second lock was granted while the first was held")
	default:
	}
	unlock()
	(<-got)()
}

func FuzzParseEnvelope(f *testing.F) {
	path := filepath.Join(f.TempDir(), "vault")
	v, _ := Create(path, pass, cheap)
	v.Save()
	seed, _ := os.ReadFile(path)
	f.Add(seed)
	f.Add([]byte(`{"format":"twofold-vault","version":1}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := parseEnvelope(data)
		if err == nil && (e.KDF.Params.valid() != nil || len(e.Nonce) != 12) {
			t.Fatalf("accepted a bad envelope: %+v", e)
		}
	})
}
