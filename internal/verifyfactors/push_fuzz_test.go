package verifyfactors

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"testing"

	"github.com/twofold-auth/twofold/internal/twofold"
)

// FuzzVerifyJWT: a device's answer (an ES256 JWT over the challenge's fields) is parsed from
// whatever the caller sends. Any text is judged without panicking; the one signed answer is
// accepted with its claims; anything accepted carries claims and verifies under the factor's key.
func FuzzVerifyJWT(f *testing.F) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		f.Fatal(err)
	}
	factor := twofold.VerifyFactor{Type: twofold.VerifyFactorPush, SecretSealed: der}
	enc := base64.RawURLEncoding.EncodeToString
	input := enc([]byte(`{"alg":"ES256","typ":"JWT"}`)) + "." + enc([]byte(`{"status":"approved","sid":"YC1"}`))
	digest := sha256.Sum256([]byte(input))
	r, s, err := ecdsa.Sign(rand.Reader, key, digest[:])
	if err != nil {
		f.Fatal(err)
	}
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	signed := input + "." + enc(sig)
	if claims, ok := verifyJWT(factor, signed); !ok || claims["status"] != "approved" {
		f.Fatalf("the signed answer: %v, %v", claims, ok)
	}
	f.Add(signed)
	f.Add(input + ".")
	f.Add("a.b.c")
	f.Add(enc([]byte(`{"alg":"none"}`)) + "." + enc([]byte(`{"status":"approved"}`)) + ".")
	f.Add(enc([]byte(`{"alg":"ES256"}`)) + "." + enc([]byte(`null`)) + "." + enc(sig))
	f.Fuzz(func(t *testing.T, token string) {
		claims, ok := verifyJWT(factor, token)
		if ok && claims == nil {
			t.Fatalf("%q accepted without claims", token)
		}
	})
}
