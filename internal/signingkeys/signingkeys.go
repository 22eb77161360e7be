// Package signingkeys keeps the server's keys for signing what relying parties verify (the
// hosted step's id tokens): RSA 2048 keys used with RS256, which every OpenID Connect library
// accepts, published as a JSON Web Key Set. The private halves are sealed in the store's server
// keys (so master-key rotation re-seals them), named by their RFC 7638 thumbprints.
//
// Rotation needs no state beyond each key's start time (the server key's created_at): the
// signing key is the newest key that has started; a key made to start later is published at
// once, so verifiers that cache the key set know it before it signs; a key is published until a
// newer one has been signing for Retain, after which nothing it signed is still valid.
package signingkeys

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"sync"
	"time"

	"github.com/twofold-auth/twofold/internal/store"
)

// Prefix names the signing keys among the server's keys.
const Prefix = "signing:"

// Retain is how long a key stays published after a newer key started signing: longer than
// anything it signed lives (id tokens live minutes) and than verifiers cache a key set.
const Retain = 7 * 24 * time.Hour

// Store keeps the server's keys.
type Store interface {
	ServerKeyOrCreate(ctx context.Context, k store.ServerKey) (store.ServerKey, error)
	ServerKeysNamed(ctx context.Context, prefix string) ([]store.ServerKey, error)
}

// Sealer seals secrets at rest (seal.Keyring).
type Sealer interface {
	Seal(plaintext []byte, ad string) []byte
	Open(sealed []byte, ad string) ([]byte, error)
}

// Key is one signing key.
type Key struct {
	ID      string // the RFC 7638 thumbprint, base64url: the JWS kid
	Private *rsa.PrivateKey
	Start   time.Time // when it starts signing
}

// Keys reads and makes signing keys. Opened keys are kept in memory; the list is read from the
// store on every call, so a key another instance made is used at once.
type Keys struct {
	store  Store
	sealer Sealer
	now    func() time.Time

	mu     sync.Mutex
	opened map[string]Key // by server key name
}

// New returns the signing keys of st. now may be nil for time.Now.
func New(st Store, sealer Sealer, now func() time.Time) *Keys {
	if now == nil {
		now = time.Now
	}
	return &Keys{store: st, sealer: sealer, now: now, opened: map[string]Key{}}
}

// All returns every signing key, oldest start first, making the first if there is none.
func (k *Keys) All(ctx context.Context) ([]Key, error) { return k.all(ctx) }

// all returns every signing key, oldest start first, making the first if there is none.
func (k *Keys) all(ctx context.Context) ([]Key, error) {
	rows, err := k.store.ServerKeysNamed(ctx, Prefix)
	if err != nil {
		return nil, err
	}
	if len(rows) == 0 {
		// The first key: instances starting together each offer one; the store keeps one name
		// per key, so there may briefly be two, and both are valid keys.
		if _, err := k.Rotate(ctx, k.now()); err != nil {
			return nil, err
		}
		if rows, err = k.store.ServerKeysNamed(ctx, Prefix); err != nil {
			return nil, err
		}
	}
	out := make([]Key, 0, len(rows))
	for _, r := range rows {
		key, err := k.open(r)
		if err != nil {
			return nil, err
		}
		out = append(out, key)
	}
	return out, nil
}

func (k *Keys) open(r store.ServerKey) (Key, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if key, ok := k.opened[r.Name]; ok {
		return key, nil
	}
	der, err := k.sealer.Open(r.PrivateSealed, store.ServerKeyAD(r.Name))
	if err != nil {
		return Key{}, fmt.Errorf("open signing key %s (is this the master key it was made with?): %w", r.Name, err)
	}
	priv, err := x509.ParsePKCS1PrivateKey(der)
	if err != nil {
		return Key{}, fmt.Errorf("signing key %s: %w", r.Name, err)
	}
	key := Key{ID: Thumbprint(&priv.PublicKey), Private: priv, Start: r.CreatedAt}
	if Prefix+key.ID != r.Name {
		return Key{}, fmt.Errorf("signing key %s: its name is not its thumbprint %s", r.Name, key.ID)
	}
	k.opened[r.Name] = key
	return key, nil
}

// Rotate makes a new key that starts signing at start (now, or later to publish it first) and
// returns it. Start times are whole seconds and order the keys, so a key made for a second
// another key already starts in starts a second later.
func (k *Keys) Rotate(ctx context.Context, start time.Time) (Key, error) {
	start = start.UTC().Truncate(time.Second)
	existing, err := k.store.ServerKeysNamed(ctx, Prefix)
	if err != nil {
		return Key{}, err
	}
	for taken := true; taken; {
		taken = false
		for _, e := range existing {
			if e.CreatedAt.Equal(start) {
				start, taken = start.Add(time.Second), true
			}
		}
	}
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return Key{}, fmt.Errorf("generate signing key: %w", err)
	}
	id := Thumbprint(&priv.PublicKey)
	name := Prefix + id
	pub, err := x509.MarshalPKIXPublicKey(&priv.PublicKey)
	if err != nil {
		return Key{}, err
	}
	_, err = k.store.ServerKeyOrCreate(ctx, store.ServerKey{Name: name, PublicKey: pub,
		PrivateSealed: k.sealer.Seal(x509.MarshalPKCS1PrivateKey(priv), store.ServerKeyAD(name)), CreatedAt: start})
	if err != nil {
		return Key{}, err
	}
	return Key{ID: id, Private: priv, Start: start}, nil
}

// Signer returns the key that signs now: the newest that has started.
func (k *Keys) Signer(ctx context.Context) (Key, error) {
	keys, err := k.all(ctx)
	if err != nil {
		return Key{}, err
	}
	now := k.now()
	var signer *Key
	for i := range keys {
		if !keys[i].Start.After(now) {
			signer = &keys[i]
		}
	}
	if signer == nil {
		// Every key starts later (the clock went back, or only future keys were made): the
		// earliest signs, rather than nothing.
		signer = &keys[0]
	}
	return *signer, nil
}

// Published returns the keys verifiers should know now: every key that has not started yet, the
// signing key, and older keys until a newer one has been signing for Retain.
func (k *Keys) Published(ctx context.Context) ([]Key, error) {
	keys, err := k.all(ctx)
	if err != nil {
		return nil, err
	}
	now := k.now()
	var out []Key
	for i, key := range keys {
		retired := false
		for _, newer := range keys[i+1:] {
			if !newer.Start.After(now.Add(-Retain)) {
				retired = true
			}
		}
		if !retired {
			out = append(out, key)
		}
	}
	return out, nil
}

// JWK is a public key as RFC 7517 writes it.
type JWK struct {
	Kty     string   `json:"kty"`
	Use     string   `json:"use"`
	Alg     string   `json:"alg"`
	Kid     string   `json:"kid"`
	N       string   `json:"n"`
	E       string   `json:"e"`
	X5C     []string `json:"x5c,omitempty"`      // a certificate of the key (Entra ID asks for one)
	X5TS256 string   `json:"x5t#S256,omitempty"` // its SHA-256 thumbprint
}

// PublicJWK is the public half of an RS256 key.
func PublicJWK(kid string, pub *rsa.PublicKey) JWK {
	return JWK{Kty: "RSA", Use: "sig", Alg: "RS256", Kid: kid,
		N: base64.RawURLEncoding.EncodeToString(pub.N.Bytes()),
		E: base64.RawURLEncoding.EncodeToString(big.NewInt(int64(pub.E)).Bytes())}
}

// JWKS is the key set verifiers fetch: the published keys' public halves.
func (k *Keys) JWKS(ctx context.Context) ([]byte, error) {
	keys, err := k.Published(ctx)
	if err != nil {
		return nil, err
	}
	set := struct {
		Keys []JWK `json:"keys"`
	}{Keys: make([]JWK, 0, len(keys))}
	for _, key := range keys {
		j := PublicJWK(key.ID, &key.Private.PublicKey)
		cert, err := certificate(key)
		if err != nil {
			return nil, err
		}
		sum := sha256.Sum256(cert)
		j.X5C, j.X5TS256 = []string{base64.StdEncoding.EncodeToString(cert)}, base64.RawURLEncoding.EncodeToString(sum[:])
		set.Keys = append(set.Keys, j)
	}
	return json.Marshal(set)
}

// certificate is a self-signed X.509 certificate of a key, for verifiers that want keys as
// certificates. It is made anew each time and comes out the same (every field follows from the
// key, and RSA PKCS #1 v1.5 signatures are deterministic), so instances publish one certificate.
func certificate(key Key) ([]byte, error) {
	serial := new(big.Int).SetBytes([]byte(key.ID)[:16])
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "Twofold signing key " + key.ID},
		NotBefore:             key.Start.Add(-time.Hour),
		NotAfter:              key.Start.AddDate(10, 0, 0),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		SignatureAlgorithm:    x509.SHA256WithRSA,
	}
	der, err := x509.CreateCertificate(nil, tmpl, tmpl, &key.Private.PublicKey, key.Private)
	if err != nil {
		return nil, fmt.Errorf("certificate of signing key %s: %w", key.ID, err)
	}
	return der, nil
}

// Thumbprint is the RFC 7638 JWK thumbprint of an RSA public key, base64url.
func Thumbprint(pub *rsa.PublicKey) string {
	j := PublicJWK("", pub)
	// The required members in lexicographic order, without whitespace (RFC 7638 section 3).
	sum := sha256.Sum256([]byte(`{"e":"` + j.E + `","kty":"RSA","n":"` + j.N + `"}`))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// ErrNoKey is returned when a kid names no published key.
var ErrNoKey = errors.New("signingkeys: no such key")

// Public returns the published key with id kid, for verifying what this server signed.
func (k *Keys) Public(ctx context.Context, kid string) (*rsa.PublicKey, error) {
	keys, err := k.Published(ctx)
	if err != nil {
		return nil, err
	}
	for _, key := range keys {
		if key.ID == kid {
			return &key.Private.PublicKey, nil
		}
	}
	return nil, fmt.Errorf("%w: %s", ErrNoKey, strings.TrimSpace(kid))
}
