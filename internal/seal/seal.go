// Package seal protects secrets at rest. A master key is expanded (HKDF-SHA256) into an
// AES-256-GCM key for sealing values and separate HMAC keys for lookups and one-time codes, so a
// leak of one derived key does not expose the others.
//
// A Keyring holds one current master key and, while the master key is being rotated, other
// accepted ones: the current key seals every new value and makes every new keyed hash; the
// others still open what they sealed and recognise the hashes they made.
package seal

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
)

// KeySize is the length of a master key in bytes.
const KeySize = 32

// IDSize is the length of a key id in bytes.
const IDSize = 8

// Sealed formats, told apart by their first byte:
//
//	1: version | nonce | ciphertext             (under some key of the ring: each is tried)
//	2: version | key id | nonce | ciphertext    (the header is part of the additional data)
//
// A ring of one key writes version 1, which every Twofold release reads, so instances of an
// older release on the same database keep working (and a downgrade stays possible). A ring of
// several keys writes version 2, which names its key.
const (
	versionAnyKey byte = 1
	versionKeyed  byte = 2
)

// ErrOpen is returned when a sealed value cannot be opened: wrong key, wrong row, or tampering.
var ErrOpen = errors.New("seal: cannot open sealed value")

// KeyID names a master key without revealing anything of it (an HKDF output of the key).
type KeyID [IDSize]byte

// String is the id in hex, as the CLI shows it.
func (id KeyID) String() string { return hex.EncodeToString(id[:]) }

// key is what one master key derives.
type key struct {
	id        KeyID
	aead      cipher.AEAD
	lookupKey []byte
	codeKey   []byte
	master    []byte // for Subkey
}

func derive(master []byte, label string) ([]byte, error) {
	return hkdf.Key(sha256.New, master, nil, "twofold "+label, 32)
}

func newKey(master []byte) (*key, error) {
	if len(master) != KeySize {
		return nil, fmt.Errorf("seal: master key must be %d bytes, got %d", KeySize, len(master))
	}
	encKey, err := derive(master, "seal v1")
	if err != nil {
		return nil, fmt.Errorf("seal: derive: %w", err)
	}
	block, err := aes.NewCipher(encKey)
	if err != nil {
		return nil, fmt.Errorf("seal: cipher: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("seal: gcm: %w", err)
	}
	lookup, err := derive(master, "lookup v1")
	if err != nil {
		return nil, fmt.Errorf("seal: derive: %w", err)
	}
	code, err := derive(master, "codes v1")
	if err != nil {
		return nil, fmt.Errorf("seal: derive: %w", err)
	}
	rawID, err := hkdf.Key(sha256.New, master, nil, "twofold key id v1", IDSize)
	if err != nil {
		return nil, fmt.Errorf("seal: derive: %w", err)
	}
	k := &key{aead: aead, lookupKey: lookup, codeKey: code, master: bytes.Clone(master)}
	copy(k.id[:], rawID)
	return k, nil
}

// Keyring holds the keys derived from the current master key and from any other accepted ones.
// It is safe for concurrent use.
type Keyring struct {
	keys []*key // keys[0] is the current key
}

// New derives a Keyring from one 32-byte master key.
func New(master []byte) (*Keyring, error) { return NewRing(master) }

// NewRing derives a Keyring whose current key is current and which also accepts others (old
// keys being rotated out, or a new key not yet current on every instance). A key given twice
// counts once.
func NewRing(current []byte, others ...[]byte) (*Keyring, error) {
	var r Keyring
	for i, m := range append([][]byte{current}, others...) {
		k, err := newKey(m)
		if err != nil {
			if i > 0 {
				return nil, fmt.Errorf("other key %d: %w", i, err)
			}
			return nil, err
		}
		if r.index(k.id) < 0 {
			r.keys = append(r.keys, k)
		}
	}
	return &r, nil
}

func (r *Keyring) index(id KeyID) int {
	for i, k := range r.keys {
		if k.id == id {
			return i
		}
	}
	return -1
}

// ID is the current key's id.
func (r *Keyring) ID() KeyID { return r.keys[0].id }

// IDs are the ids of every key of the ring, the current one first.
func (r *Keyring) IDs() []KeyID {
	out := make([]KeyID, len(r.keys))
	for i, k := range r.keys {
		out[i] = k.id
	}
	return out
}

// Members returns each key of the ring as a ring of its own, the current one first: for the few
// callers that must tell which key made something (the database's key check).
func (r *Keyring) Members() []*Keyring {
	out := make([]*Keyring, len(r.keys))
	for i, k := range r.keys {
		out[i] = &Keyring{keys: []*key{k}}
	}
	return out
}

// Subkey derives a 32-byte key for one purpose of a caller's (label, such as "audit v1") from
// the current master key. Subkeys are independent of each other and of the keys the Keyring
// uses itself: knowing one reveals nothing of another.
func (r *Keyring) Subkey(label string) []byte {
	key, err := hkdf.Key(sha256.New, r.keys[0].master, nil, "twofold subkey "+label, 32)
	if err != nil {
		panic("seal: derive subkey: " + err.Error()) // only for lengths HKDF cannot make
	}
	return key
}

// Seal encrypts plaintext under the current key. ad binds the ciphertext to its row (for
// example "totp:12"), so a ciphertext copied into another row does not open.
func (r *Keyring) Seal(plaintext []byte, ad string) []byte {
	k := r.keys[0]
	header := []byte{versionAnyKey}
	if len(r.keys) > 1 {
		header = append([]byte{versionKeyed}, k.id[:]...)
	}
	nonce := make([]byte, k.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		panic("seal: crypto/rand failed: " + err.Error()) // never happens on supported platforms
	}
	out := make([]byte, 0, len(header)+len(nonce)+len(plaintext)+k.aead.Overhead())
	out = append(append(out, header...), nonce...)
	return k.aead.Seal(out, nonce, plaintext, additional(header, ad))
}

// additional is what GCM authenticates besides the plaintext: version 2's header (so neither
// its version nor its key id can be changed) and the caller's ad. Version 1 has only ad.
func additional(header []byte, ad string) []byte {
	if header[0] == versionAnyKey {
		return []byte(ad)
	}
	return append(bytes.Clone(header), ad...)
}

// Open reverses Seal with the same ad, under whichever key of the ring sealed it.
func (r *Keyring) Open(sealed []byte, ad string) ([]byte, error) {
	pt, _, err := r.OpenKey(sealed, ad)
	return pt, err
}

// OpenKey is Open that also says which key opened the value. Version 2 names its key; version 1
// is tried under every key, the current one first.
func (r *Keyring) OpenKey(sealed []byte, ad string) ([]byte, KeyID, error) {
	const ns, overhead = 12, 16 // GCM's standard nonce and tag
	if len(sealed) == 0 {
		return nil, KeyID{}, ErrOpen
	}
	switch sealed[0] {
	case versionAnyKey:
		if len(sealed) < 1+ns+overhead {
			return nil, KeyID{}, ErrOpen
		}
		for _, k := range r.keys {
			if pt, err := k.aead.Open(nil, sealed[1:1+ns], sealed[1+ns:], []byte(ad)); err == nil {
				return pt, k.id, nil
			}
		}
	case versionKeyed:
		const hl = 1 + IDSize
		if len(sealed) < hl+ns+overhead {
			return nil, KeyID{}, ErrOpen
		}
		var id KeyID
		copy(id[:], sealed[1:hl])
		if i := r.index(id); i >= 0 {
			pt, err := r.keys[i].aead.Open(nil, sealed[hl:hl+ns], sealed[hl+ns:], additional(sealed[:hl], ad))
			if err == nil {
				return pt, id, nil
			}
		}
	}
	return nil, KeyID{}, ErrOpen
}

// Lookup returns a keyed hash of s under the current key, for finding a row by a secret (an API
// key) without storing it.
func (r *Keyring) Lookup(s string) []byte { return lookup(r.keys[0], s) }

// Lookups returns the keyed hash of s under every key of the ring, the current one first: a row
// stored before the current key became current is found by one of the others.
func (r *Keyring) Lookups(s string) [][]byte {
	out := make([][]byte, len(r.keys))
	for i, k := range r.keys {
		out[i] = lookup(k, s)
	}
	return out
}

func lookup(k *key, s string) []byte {
	m := hmac.New(sha256.New, k.lookupKey)
	m.Write([]byte(s))
	return m.Sum(nil)
}

// CodeMAC returns the keyed hash, under the current key, under which a one-time code is stored.
// context binds it to the app, user and action, so a stored MAC is useless for any other user.
func (r *Keyring) CodeMAC(context, code string) []byte { return codeMAC(r.keys[0], context, code) }

// CodeMACs returns CodeMAC under every key of the ring, the current one first, to compare a
// stored MAC with (EqualAny): a code sent before a key rotation still verifies.
func (r *Keyring) CodeMACs(context, code string) [][]byte {
	out := make([][]byte, len(r.keys))
	for i, k := range r.keys {
		out[i] = codeMAC(k, context, code)
	}
	return out
}

func codeMAC(k *key, context, code string) []byte {
	m := hmac.New(sha256.New, k.codeKey)
	m.Write([]byte(context))
	m.Write([]byte{0})
	m.Write([]byte(code))
	return m.Sum(nil)
}

// Equal compares two MACs in constant time.
func Equal(a, b []byte) bool { return hmac.Equal(a, b) }

// EqualAny reports whether mac equals one of macs. It compares with every one, in constant
// time, so the time taken says nothing of which matched.
func EqualAny(mac []byte, macs [][]byte) bool {
	found := 0
	for _, m := range macs {
		found |= subtle.ConstantTimeCompare(mac, m)
	}
	return found == 1
}
