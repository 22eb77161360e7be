// Package seal protects secrets at rest. One master key is expanded (HKDF-SHA256) into an
// AES-256-GCM key for sealing values and separate HMAC keys for lookups and one-time codes, so a
// leak of one derived key does not expose the others.
package seal

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
)

// KeySize is the length of a master key in bytes.
const KeySize = 32

// version prefixes every sealed value so the format (or the master key) can change later.
const version byte = 1

// ErrOpen is returned when a sealed value cannot be opened: wrong key, wrong row, or tampering.
var ErrOpen = errors.New("seal: cannot open sealed value")

// Keyring holds the keys derived from one master key. It is safe for concurrent use.
type Keyring struct {
	aead      cipher.AEAD
	lookupKey []byte
	codeKey   []byte
	master    []byte // for Subkey
}

// New derives a Keyring from a 32-byte master key.
func New(master []byte) (*Keyring, error) {
	if len(master) != KeySize {
		return nil, fmt.Errorf("seal: master key must be %d bytes, got %d", KeySize, len(master))
	}
	derive := func(label string) ([]byte, error) {
		return hkdf.Key(sha256.New, master, nil, "twofold "+label, 32)
	}
	encKey, err := derive("seal v1")
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
	lookup, err := derive("lookup v1")
	if err != nil {
		return nil, fmt.Errorf("seal: derive: %w", err)
	}
	code, err := derive("codes v1")
	if err != nil {
		return nil, fmt.Errorf("seal: derive: %w", err)
	}
	return &Keyring{aead: aead, lookupKey: lookup, codeKey: code, master: bytes.Clone(master)}, nil
}

// Subkey derives a 32-byte key for one purpose of a caller's (label, such as "audit v1") from
// the master key. Subkeys are independent of each other and of the keys the Keyring uses itself:
// knowing one reveals nothing of another.
func (k *Keyring) Subkey(label string) []byte {
	key, err := hkdf.Key(sha256.New, k.master, nil, "twofold subkey "+label, 32)
	if err != nil {
		panic("seal: derive subkey: " + err.Error()) // only for lengths HKDF cannot make
	}
	return key
}

// Seal encrypts plaintext. ad binds the ciphertext to its row (for example "totp:12"), so a
// ciphertext copied into another row does not open.
func (k *Keyring) Seal(plaintext []byte, ad string) []byte {
	out := make([]byte, 1, 1+k.aead.NonceSize()+len(plaintext)+k.aead.Overhead())
	out[0] = version
	nonce := make([]byte, k.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		panic("seal: crypto/rand failed: " + err.Error()) // never happens on supported platforms
	}
	out = append(out, nonce...)
	return k.aead.Seal(out, nonce, plaintext, []byte(ad))
}

// Open reverses Seal with the same ad.
func (k *Keyring) Open(sealed []byte, ad string) ([]byte, error) {
	ns := k.aead.NonceSize()
	if len(sealed) < 1+ns+k.aead.Overhead() || sealed[0] != version {
		return nil, ErrOpen
	}
	pt, err := k.aead.Open(nil, sealed[1:1+ns], sealed[1+ns:], []byte(ad))
	if err != nil {
		return nil, ErrOpen
	}
	return pt, nil
}

// Lookup returns a keyed hash of s for finding a row by a secret (an API key) without storing it.
func (k *Keyring) Lookup(s string) []byte {
	m := hmac.New(sha256.New, k.lookupKey)
	m.Write([]byte(s))
	return m.Sum(nil)
}

// CodeMAC returns the keyed hash under which a one-time code is stored. context binds it to the
// app, user and action, so a stored MAC is useless for any other user.
func (k *Keyring) CodeMAC(context, code string) []byte {
	m := hmac.New(sha256.New, k.codeKey)
	m.Write([]byte(context))
	m.Write([]byte{0})
	m.Write([]byte(code))
	return m.Sum(nil)
}

// Equal compares two MACs in constant time.
func Equal(a, b []byte) bool { return hmac.Equal(a, b) }
