package signingkeys_test

import (
	"bytes"
	"crypto"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"path/filepath"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/twofold-auth/twofold/internal/seal"
	"github.com/twofold-auth/twofold/internal/signingkeys"
	"github.com/twofold-auth/twofold/internal/store"
)

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time          { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Advance(d time.Duration) { c.mu.Lock(); defer c.mu.Unlock(); c.now = c.now.Add(d) }

func open(t *testing.T) (*store.Store, *seal.Keyring) {
	t.Helper()
	st, err := store.OpenSQLite(t.Context(), filepath.Join(t.TempDir(), "twofold.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	keys, err := seal.New(bytes.Repeat([]byte{3}, seal.KeySize))
	if err != nil {
		t.Fatal(err)
	}
	return st, keys
}

// published reads the JWKS as a verifier would (go-jose), checking each kid is its key's
// RFC 7638 thumbprint.
func published(t *testing.T, k *signingkeys.Keys) []string {
	t.Helper()
	raw, err := k.JWKS(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(raw, &set); err != nil {
		t.Fatalf("JWKS %s: %v", raw, err)
	}
	var kids []string
	for _, key := range set.Keys {
		tp, err := key.Thumbprint(crypto.SHA256)
		if err != nil || base64.RawURLEncoding.EncodeToString(tp) != key.KeyID || key.Algorithm != "RS256" || key.Use != "sig" || !key.IsPublic() {
			t.Errorf("published key %+v: thumbprint %x, %v", key, tp, err)
		}
		// The certificate is of this key, and every instance publishes the same one.
		if len(key.Certificates) != 1 || !key.Certificates[0].PublicKey.(*rsa.PublicKey).Equal(key.Key) {
			t.Errorf("published key %s: certificates %v", key.KeyID, key.Certificates)
		}
		again, _ := k.JWKS(t.Context())
		if !bytes.Equal(raw, again) {
			t.Error("the key set differs from one read to the next")
		}
		kids = append(kids, key.KeyID)
	}
	return kids
}

func TestRotation(t *testing.T) {
	st, sealer := open(t)
	c := &clock{now: time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)}
	k := signingkeys.New(st, sealer, c.Now)
	ctx := t.Context()

	first, err := k.Signer(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := published(t, k); len(got) != 1 || got[0] != first.ID {
		t.Fatalf("first start publishes %v, want the signing key %s", got, first.ID)
	}
	// Another instance on the same database signs with the same key.
	if other, err := signingkeys.New(st, sealer, c.Now).Signer(ctx); err != nil || other.ID != first.ID {
		t.Fatalf("another instance's signer %s, %v; want %s", other.ID, err, first.ID)
	}

	// A key made to start tomorrow is published now and signs from tomorrow.
	next, err := k.Rotate(ctx, c.Now().Add(24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if s, _ := k.Signer(ctx); s.ID != first.ID {
		t.Errorf("before its start the new key signs")
	}
	if got := published(t, k); len(got) != 2 {
		t.Errorf("published %v, want both keys", got)
	}
	c.Advance(24 * time.Hour)
	if s, _ := k.Signer(ctx); s.ID != next.ID {
		t.Errorf("after its start the new key does not sign")
	}
	// The old key stays published for Retain, then goes.
	c.Advance(signingkeys.Retain - time.Second)
	if got := published(t, k); len(got) != 2 {
		t.Errorf("within Retain: published %v", got)
	}
	if _, err := k.Public(ctx, first.ID); err != nil {
		t.Errorf("the old key within Retain: %v", err)
	}
	c.Advance(time.Second)
	if got := published(t, k); len(got) != 1 || got[0] != next.ID {
		t.Errorf("after Retain: published %v, want only %s", got, next.ID)
	}
	if _, err := k.Public(ctx, first.ID); err == nil {
		t.Error("a retired key still verifies")
	}

	// A key made in the second another starts starts a second later, so the two are ordered and
	// the newer signs once it has started.
	same, err := k.Rotate(ctx, c.Now())
	if err != nil {
		t.Fatal(err)
	}
	later, err := k.Rotate(ctx, c.Now())
	if err != nil {
		t.Fatal(err)
	}
	if !later.Start.Equal(same.Start.Add(time.Second)) {
		t.Fatalf("two keys for one second start at %s and %s", same.Start, later.Start)
	}
	c.Advance(time.Second)
	if s, _ := k.Signer(ctx); s.ID != later.ID {
		t.Errorf("the later-made key does not sign once started")
	}

	// At rest the private key is sealed.
	rows, _ := st.ServerKeysNamed(ctx, signingkeys.Prefix)
	for _, r := range rows {
		if _, err := sealer.Open(r.PrivateSealed, store.ServerKeyAD(r.Name)); err != nil {
			t.Errorf("%s is not sealed under its name: %v", r.Name, err)
		}
	}
	// Under another master key the keys cannot be opened: the error says so.
	wrong, _ := seal.New(bytes.Repeat([]byte{4}, seal.KeySize))
	if _, err := signingkeys.New(st, wrong, c.Now).Signer(ctx); err == nil {
		t.Error("keys opened under another master key")
	}
}
