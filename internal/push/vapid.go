package push

import (
	"bytes"
	"context"
	"crypto/ecdh"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"github.com/twofold-auth/twofold/internal/store"
)

// vapidKeyName names the VAPID key pair among the server's keys; it is also the sealed private
// key's additional data, so the ciphertext opens only in that row.
const vapidKeyName = "vapid"

// KeyStore keeps the server's own key pairs.
type KeyStore interface {
	ServerKeyOrCreate(ctx context.Context, k store.ServerKey) (store.ServerKey, error)
}

// Sealer seals secrets at rest (seal.Keyring).
type Sealer interface {
	Seal(plaintext []byte, ad string) []byte
	Open(sealed []byte, ad string) ([]byte, error)
}

// VAPIDKey is the server's Web Push identity (RFC 8292): an ECDSA P-256 key pair that signs
// the JWT sent with every push. Browsers bind a subscription to its public half.
type VAPIDKey struct {
	public  []byte // uncompressed point, 65 bytes
	private []byte // scalar, 32 bytes
}

// PublicKey returns the public key as browsers take it for applicationServerKey: the
// uncompressed P-256 point, base64url without padding.
func (k VAPIDKey) PublicKey() string { return base64.RawURLEncoding.EncodeToString(k.public) }

// GenerateVAPIDKey makes a new key pair.
func GenerateVAPIDKey() (VAPIDKey, error) {
	priv, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		return VAPIDKey{}, fmt.Errorf("generate VAPID key: %w", err)
	}
	return VAPIDKey{public: priv.PublicKey().Bytes(), private: priv.Bytes()}, nil
}

// LoadVAPIDKey returns the server's VAPID key, making and storing it on first use. Servers
// starting at once on one database agree on a single key: each offers a fresh one, the store
// keeps the first, and every server uses what the store kept.
func LoadVAPIDKey(ctx context.Context, keys KeyStore, sealer Sealer, now time.Time) (VAPIDKey, error) {
	fresh, err := GenerateVAPIDKey()
	if err != nil {
		return VAPIDKey{}, err
	}
	stored, err := keys.ServerKeyOrCreate(ctx, store.ServerKey{Name: vapidKeyName, PublicKey: fresh.public,
		PrivateSealed: sealer.Seal(fresh.private, store.ServerKeyAD(vapidKeyName)), CreatedAt: now})
	if err != nil {
		return VAPIDKey{}, err
	}
	private, err := sealer.Open(stored.PrivateSealed, store.ServerKeyAD(vapidKeyName))
	if err != nil {
		return VAPIDKey{}, fmt.Errorf("open VAPID key (is this the master key it was made with?): %w", err)
	}
	priv, err := ecdh.P256().NewPrivateKey(private)
	if err != nil {
		return VAPIDKey{}, fmt.Errorf("stored VAPID key: %w", err)
	}
	if !bytes.Equal(priv.PublicKey().Bytes(), stored.PublicKey) {
		return VAPIDKey{}, errors.New("stored VAPID key: public and private halves do not match")
	}
	return VAPIDKey{public: stored.PublicKey, private: private}, nil
}
