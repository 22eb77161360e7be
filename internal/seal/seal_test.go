package seal

import (
	"bytes"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

func testKeyring(t *testing.T, b byte) *Keyring {
	t.Helper()
	k, err := New(bytes.Repeat([]byte{b}, KeySize))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestSealOpen(t *testing.T) {
	k := testKeyring(t, 1)
	sealed := k.Seal([]byte("seed"), "totp:1")
	if bytes.Contains(sealed, []byte("seed")) {
		t.Fatal("plaintext visible in sealed value")
	}
	got, err := k.Open(sealed, "totp:1")
	if err != nil || string(got) != "seed" {
		t.Fatalf("Open = %q, %v", got, err)
	}
	if bytes.Equal(sealed, k.Seal([]byte("seed"), "totp:1")) {
		t.Fatal("two seals of the same value are equal: nonce reused")
	}

	tampered := append([]byte(nil), sealed...)
	tampered[len(tampered)-1] ^= 1
	cases := map[string]struct {
		k      *Keyring
		sealed []byte
		ad     string
	}{
		"other row":    {k, sealed, "totp:2"},
		"other key":    {testKeyring(t, 2), sealed, "totp:1"},
		"tampered":     {k, tampered, "totp:1"},
		"truncated":    {k, sealed[:10], "totp:1"},
		"empty":        {k, nil, "totp:1"},
		"version byte": {k, append([]byte{9}, sealed[1:]...), "totp:1"},
	}
	for name, c := range cases {
		if _, err := c.k.Open(c.sealed, c.ad); err != ErrOpen {
			t.Errorf("%s: Open err = %v, want ErrOpen", name, err)
		}
	}
}

func TestMACsAreKeyedAndSeparate(t *testing.T) {
	a, b := testKeyring(t, 1), testKeyring(t, 2)
	if bytes.Equal(a.Lookup("key"), b.Lookup("key")) {
		t.Fatal("lookup MAC does not depend on the master key")
	}
	if !Equal(a.Lookup("key"), a.Lookup("key")) || Equal(a.Lookup("key"), a.Lookup("kez")) {
		t.Fatal("lookup MAC not deterministic or not distinguishing")
	}
	if bytes.Equal(a.CodeMAC("", "key"), a.Lookup("key")) {
		t.Fatal("code and lookup MACs share a key")
	}
	if bytes.Equal(a.CodeMAC("app1:user1", "123"), a.CodeMAC("app1:user2", "123")) {
		t.Fatal("code MAC not bound to its context")
	}
	if bytes.Equal(a.CodeMAC("ab", "c"), a.CodeMAC("a", "bc")) {
		t.Fatal("context and code run together")
	}
}

func TestSubkeys(t *testing.T) {
	a, b := testKeyring(t, 1), testKeyring(t, 2)
	for _, tc := range []struct {
		name string
		x, y []byte
		same bool
	}{
		{"same label, same master", a.Subkey("audit v1"), a.Subkey("audit v1"), true},
		{"same label, other master", a.Subkey("audit v1"), b.Subkey("audit v1"), false},
		{"other label", a.Subkey("audit v1"), a.Subkey("audit v2"), false},
		{"not the lookup key", a.Subkey("lookup v1"), a.lookupKey, false},
		{"not the code key", a.Subkey("codes v1"), a.codeKey, false},
	} {
		if len(tc.x) != 32 || bytes.Equal(tc.x, tc.y) != tc.same {
			t.Errorf("%s: %x vs %x, want same=%v (32 bytes)", tc.name, tc.x, tc.y, tc.same)
		}
	}
}

func TestLoadMasterKey(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	if _, _, err := LoadMasterKey(dir, "", false); err == nil {
		t.Fatal("missing key without create: want error")
	}
	key, created, err := LoadMasterKey(dir, "", true)
	if err != nil || !created || len(key) != KeySize {
		t.Fatalf("create: %v %v %d", err, created, len(key))
	}
	info, err := os.Stat(filepath.Join(dir, MasterKeyFile))
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode: %v %v", info.Mode(), err)
	}
	again, created, err := LoadMasterKey(dir, "", true)
	if err != nil || created || !bytes.Equal(again, key) {
		t.Fatalf("reload: %v %v", err, created)
	}
	if err := os.Chmod(filepath.Join(dir, MasterKeyFile), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := LoadMasterKey(dir, "", true); err == nil {
		t.Fatal("world-readable key file accepted")
	}

	env := "MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTIzNDU2Nzg5MDE=" // base64 of 32 ASCII bytes
	key, _, err = LoadMasterKey(dir, env, true)
	if err != nil || string(key) != "01234567890123456789012345678901" {
		t.Fatalf("env key: %q %v", key, err)
	}
	if _, _, err := LoadMasterKey(dir, "short", true); err == nil {
		t.Fatal("bad env key accepted")
	}
}

func TestLoadMasterKeyConcurrentFirstStart(t *testing.T) {
	dir := t.TempDir()
	keys := make([][]byte, 8)
	var wg sync.WaitGroup
	for i := range keys {
		wg.Add(1)
		go func() {
			defer wg.Done()
			k, _, err := LoadMasterKey(dir, "", true)
			if err != nil {
				t.Error(err)
			}
			keys[i] = k
		}()
	}
	wg.Wait()
	for _, k := range keys[1:] {
		if !bytes.Equal(k, keys[0]) {
			t.Fatal("concurrent first starts produced different keys")
		}
	}
}
