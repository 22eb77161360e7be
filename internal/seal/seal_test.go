package seal

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
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
		{"not the lookup key", a.Subkey("lookup v1"), a.keys[0].lookupKey, false},
		{"not the code key", a.Subkey("codes v1"), a.keys[0].codeKey, false},
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

func masterOf(b byte) []byte { return bytes.Repeat([]byte{b}, KeySize) }

func testRing(t *testing.T, current byte, others ...byte) *Keyring {
	t.Helper()
	var o [][]byte
	for _, b := range others {
		o = append(o, masterOf(b))
	}
	r, err := NewRing(masterOf(current), o...)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// A ring of one key writes the format every release reads; a ring of several names its key.
func TestSealFormats(t *testing.T) {
	one, two := testRing(t, 1), testRing(t, 1, 2)
	if v := one.Seal([]byte("seed"), "ad")[0]; v != 1 {
		t.Fatalf("one key: version %d, want 1", v)
	}
	v2 := two.Seal([]byte("seed"), "ad")
	if v2[0] != 2 || !bytes.Equal(v2[1:1+IDSize], idBytes(one.ID())) {
		t.Fatalf("several keys: header %x, want 2 and the current key's id %s", v2[:1+IDSize], one.ID())
	}
	// Each opens what the other sealed, while it holds the key.
	for name, c := range map[string]struct {
		by, with *Keyring
	}{"v1 by a ring": {one, two}, "v2 by one key": {two, one}} {
		pt, id, err := c.with.OpenKey(c.by.Seal([]byte("seed"), "ad"), "ad")
		if err != nil || string(pt) != "seed" || id != one.ID() {
			t.Errorf("%s: %q %s %v", name, pt, id, err)
		}
	}
}

func TestRingOpensUnderEveryKey(t *testing.T) {
	a, b, c := testRing(t, 1), testRing(t, 2), testRing(t, 3)
	ba := testRing(t, 2, 1) // b current, a accepted
	for name, tc := range map[string]struct {
		sealed []byte
		ok     bool
		id     KeyID
	}{
		"v1 under the other key":   {a.Seal([]byte("x"), "ad"), true, a.ID()},
		"v1 under the current key": {b.Seal([]byte("x"), "ad"), true, b.ID()},
		"v2 under the other key":   {testRing(t, 1, 2).Seal([]byte("x"), "ad"), true, a.ID()},
		"v2 under the current key": {ba.Seal([]byte("x"), "ad"), true, b.ID()},
		"v1 under a stranger":      {c.Seal([]byte("x"), "ad"), false, KeyID{}},
		"v2 under a stranger":      {testRing(t, 3, 1).Seal([]byte("x"), "ad"), false, KeyID{}},
	} {
		pt, id, err := ba.OpenKey(tc.sealed, "ad")
		if tc.ok != (err == nil) || (tc.ok && (string(pt) != "x" || id != tc.id)) {
			t.Errorf("%s: %q %s %v, want ok=%v by %s", name, pt, id, err, tc.ok, tc.id)
		}
		if !tc.ok && err != ErrOpen {
			t.Errorf("%s: err %v, want ErrOpen", name, err)
		}
	}
}

// Version 2's header is authenticated: its key id cannot be swapped, nor the value passed off
// as version 1, nor the row changed.
func TestSealV2Tampering(t *testing.T) {
	ab := testRing(t, 1, 2)
	sealed := ab.Seal([]byte("seed"), "totp:1")
	flip := func(i int) []byte {
		c := bytes.Clone(sealed)
		c[i] ^= 1
		return c
	}
	otherID := bytes.Clone(sealed)
	bID := testRing(t, 2).ID()
	copy(otherID[1:], bID[:]) // names b, which the ring holds: b must refuse it
	asV1 := append([]byte{1}, sealed[1+IDSize:]...)
	for name, s := range map[string][]byte{
		"key id bit":      flip(1),
		"key id of b":     otherID,
		"nonce bit":       flip(1 + IDSize),
		"ciphertext bit":  flip(len(sealed) - 1),
		"as version 1":    asV1,
		"truncated":       sealed[:1+IDSize+12+15],
		"header only":     sealed[:1+IDSize],
		"unknown version": append([]byte{3}, sealed[1:]...),
	} {
		if _, err := ab.Open(s, "totp:1"); err != ErrOpen {
			t.Errorf("%s: err %v, want ErrOpen", name, err)
		}
	}
	if _, err := ab.Open(sealed, "totp:2"); err != ErrOpen {
		t.Errorf("other row: err %v, want ErrOpen", err)
	}
}

func TestKeyIDs(t *testing.T) {
	a, b := testRing(t, 1), testRing(t, 2)
	if a.ID() == b.ID() || a.ID() != testRing(t, 1).ID() {
		t.Fatal("key ids must be stable per key and differ between keys")
	}
	if a.ID() == (KeyID{}) || bytes.Contains(masterOf(1), idBytes(a.ID())) {
		t.Fatal("key id is empty or part of the key")
	}
	if len(a.ID().String()) != 2*IDSize {
		t.Fatalf("id string %q", a.ID().String())
	}
	ring := testRing(t, 2, 1, 2, 1) // duplicates count once
	if ids := ring.IDs(); len(ids) != 2 || ids[0] != b.ID() || ids[1] != a.ID() {
		t.Fatalf("IDs = %v, want [b a]", ids)
	}
	m := ring.Members()
	if len(m) != 2 || m[0].ID() != b.ID() || m[1].ID() != a.ID() || len(m[1].IDs()) != 1 {
		t.Fatalf("Members = %v", m)
	}
	if !bytes.Equal(m[1].Subkey("audit v1"), a.Subkey("audit v1")) || !bytes.Equal(ring.Subkey("audit v1"), b.Subkey("audit v1")) {
		t.Fatal("Subkey is not the current key's, or a member's is not its key's")
	}
	if _, err := NewRing(masterOf(1), []byte("short")); err == nil {
		t.Fatal("short other key accepted")
	}
}

func TestMACsUnderEveryKey(t *testing.T) {
	a, ba := testRing(t, 1), testRing(t, 2, 1)
	looks := ba.Lookups("device:tok")
	if len(looks) != 2 || !Equal(looks[0], ba.Lookup("device:tok")) || !Equal(looks[1], a.Lookup("device:tok")) {
		t.Fatal("Lookups: want the current key's first, then the other's")
	}
	codes := ba.CodeMACs("1:2:", "123456")
	if len(codes) != 2 || !Equal(codes[0], ba.CodeMAC("1:2:", "123456")) || !Equal(codes[1], a.CodeMAC("1:2:", "123456")) {
		t.Fatal("CodeMACs: want the current key's first, then the other's")
	}
	for name, tc := range map[string]struct {
		mac  []byte
		want bool
	}{
		"made under the other key":   {a.CodeMAC("1:2:", "123456"), true},
		"made under the current key": {ba.CodeMAC("1:2:", "123456"), true},
		"another code":               {a.CodeMAC("1:2:", "123457"), false},
		"another user":               {a.CodeMAC("1:3:", "123456"), false},
		"a stranger's key":           {testRing(t, 3).CodeMAC("1:2:", "123456"), false},
		"empty":                      {nil, false},
		"prefix":                     {codes[1][:16], false},
	} {
		if got := EqualAny(tc.mac, codes); got != tc.want {
			t.Errorf("%s: EqualAny = %v, want %v", name, got, tc.want)
		}
	}
	if EqualAny(codes[0], nil) {
		t.Fatal("EqualAny of nothing matched")
	}
}

func TestLoadOtherKeys(t *testing.T) {
	dir := t.TempDir()
	if keys, err := LoadOtherKeys(dir, ""); err != nil || keys != nil {
		t.Fatalf("no file: %v %v", keys, err)
	}
	hexKey := "0202020202020202020202020202020202020202020202020202020202020202"
	b64Key := "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE="
	path := filepath.Join(dir, OtherKeysFile)
	if err := os.WriteFile(path, []byte("# the old key, until 2026-03\n"+b64Key+"\n\n  "+hexKey+"  \n"), 0o600); err != nil {
		t.Fatal(err)
	}
	keys, err := LoadOtherKeys(dir, "")
	if err != nil || len(keys) != 2 || !bytes.Equal(keys[0], masterOf(1)) || !bytes.Equal(keys[1], masterOf(2)) {
		t.Fatalf("file: %x %v", keys, err)
	}
	keys, err = LoadOtherKeys(dir, " "+hexKey+" ,"+b64Key+",")
	if err != nil || len(keys) != 2 || !bytes.Equal(keys[0], masterOf(2)) || !bytes.Equal(keys[1], masterOf(1)) {
		t.Fatalf("env wins over the file: %x %v", keys, err)
	}
	if _, err := LoadOtherKeys(dir, b64Key+",nope"); err == nil || !strings.Contains(err.Error(), "key 2") {
		t.Fatalf("bad env key: %v", err)
	}
	if err := os.WriteFile(path, []byte(b64Key+"\nnope\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOtherKeys(dir, ""); err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Fatalf("bad line: %v", err)
	}
	if err := os.WriteFile(path, []byte(b64Key+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o640); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOtherKeys(dir, ""); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("group-readable file: %v", err)
	}
}

func idBytes(id KeyID) []byte { return id[:] }
