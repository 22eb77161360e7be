// Package passkeytest is a software WebAuthn authenticator for tests: it answers a relying
// party's options with real "none"-attestation registrations and ES256 assertions, in the JSON
// browsers' PublicKeyCredential.toJSON() gives, and can be told to misbehave (a wrong origin or
// rp id, no user verification, a counter going back, tampered parts).
package passkeytest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"

	"github.com/fxamacker/cbor/v2"
)

// Flags of authenticator data.
const (
	FlagUP = 0x01
	FlagUV = 0x04
	FlagBE = 0x08
	FlagBS = 0x10
	FlagAT = 0x40
)

// Authenticator holds one credential (after Register) and how it answers.
type Authenticator struct {
	Origin string // the origin the "browser" reports in client data
	// RPID, when set, is hashed into authenticator data instead of the options' rp id.
	RPID       string
	UV         bool   // report user verification
	BackedUp   bool   // backup eligible and backed up
	Counter    uint32 // the signature counter: each assertion adds one first, unless Frozen
	Frozen     bool   // keep Counter as it is (an authenticator with no counter keeps 0)
	Discard    bool   // register without returning a user handle in assertions (not discoverable)
	Transports []string

	Key        *ecdsa.PrivateKey
	CredID     []byte
	UserHandle []byte
	AAGUID     [16]byte
}

// New returns an authenticator that answers as origin, with user verification.
func New(origin string) *Authenticator {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	id := make([]byte, 32)
	rand.Read(id)
	return &Authenticator{Origin: origin, UV: true, Key: k, CredID: id, Transports: []string{"internal"},
		AAGUID: [16]byte{0xad, 0xce, 0, 2, 0x35, 0xbc, 0xc6, 0x0a, 0x64, 0x8b, 0x0b, 0x25, 0xf1, 0xf0, 0x55, 0x03}}
}

var b64 = base64.RawURLEncoding

// options is what the authenticator reads of either kind of options.
type options struct {
	PublicKey struct {
		Challenge string `json:"challenge"`
		RP        struct {
			ID string `json:"id"`
		} `json:"rp"`
		RPID string `json:"rpId"`
		User struct {
			ID string `json:"id"`
		} `json:"user"`
	} `json:"publicKey"`
}

func readOptions(raw []byte) (options, error) {
	var o options
	if err := json.Unmarshal(raw, &o); err != nil {
		return o, fmt.Errorf("options: %w", err)
	}
	if o.PublicKey.Challenge == "" {
		return o, fmt.Errorf("options: no challenge")
	}
	return o, nil
}

func (a *Authenticator) flags(extra byte) byte {
	f := byte(FlagUP) | extra
	if a.UV {
		f |= FlagUV
	}
	if a.BackedUp {
		f |= FlagBE | FlagBS
	}
	return f
}

func (a *Authenticator) rpHash(optionsRPID string) []byte {
	id := optionsRPID
	if a.RPID != "" {
		id = a.RPID
	}
	h := sha256.Sum256([]byte(id))
	return h[:]
}

// ClientData is the client data JSON a browser would make.
func (a *Authenticator) ClientData(typ, challenge string) []byte {
	b, _ := json.Marshal(map[string]any{"type": typ, "challenge": challenge, "origin": a.Origin, "crossOrigin": false})
	return b
}

// coseKey is the credential's public key as a COSE_Key (EC2, P-256, ES256).
func (a *Authenticator) coseKey() []byte {
	point, err := a.Key.PublicKey.Bytes() // 0x04 || X || Y
	if err != nil {
		panic(err)
	}
	b, err := cbor.Marshal(map[int]any{1: 2, 3: -7, -1: 1, -2: point[1:33], -3: point[33:]})
	if err != nil {
		panic(err)
	}
	return b
}

// Register answers creation options (the server's {"publicKey": ...}) with a registration
// response, PublicKeyCredential JSON.
func (a *Authenticator) Register(raw []byte) (json.RawMessage, error) {
	o, err := readOptions(raw)
	if err != nil {
		return nil, err
	}
	if a.UserHandle, err = b64.DecodeString(o.PublicKey.User.ID); err != nil {
		return nil, fmt.Errorf("user id: %w", err)
	}
	auth := append([]byte{}, a.rpHash(o.PublicKey.RP.ID)...)
	auth = append(auth, a.flags(FlagAT))
	auth = binary.BigEndian.AppendUint32(auth, a.Counter)
	auth = append(auth, a.AAGUID[:]...)
	auth = binary.BigEndian.AppendUint16(auth, uint16(len(a.CredID)))
	auth = append(auth, a.CredID...)
	auth = append(auth, a.coseKey()...)
	att, err := cbor.Marshal(map[string]any{"fmt": "none", "attStmt": map[string]any{}, "authData": auth})
	if err != nil {
		return nil, err
	}
	cd := a.ClientData("webauthn.create", o.PublicKey.Challenge)
	out := map[string]any{
		"id": b64.EncodeToString(a.CredID), "rawId": b64.EncodeToString(a.CredID), "type": "public-key",
		"authenticatorAttachment": "platform",
		"response": map[string]any{"clientDataJSON": b64.EncodeToString(cd), "attestationObject": b64.EncodeToString(att),
			"transports": a.Transports},
		"clientExtensionResults": map[string]any{"credProps": map[string]any{"rk": true}},
	}
	return json.Marshal(out)
}

// Assertion is an assertion's parts; a test may change them after signing.
type Assertion struct {
	CredID, ClientData, AuthData, Signature, UserHandle []byte
}

// JSON is the assertion as PublicKeyCredential JSON.
func (s Assertion) JSON() json.RawMessage {
	resp := map[string]any{"clientDataJSON": b64.EncodeToString(s.ClientData),
		"authenticatorData": b64.EncodeToString(s.AuthData), "signature": b64.EncodeToString(s.Signature)}
	if len(s.UserHandle) > 0 {
		resp["userHandle"] = b64.EncodeToString(s.UserHandle)
	}
	b, _ := json.Marshal(map[string]any{"id": b64.EncodeToString(s.CredID), "rawId": b64.EncodeToString(s.CredID),
		"type": "public-key", "authenticatorAttachment": "platform", "response": resp, "clientExtensionResults": map[string]any{}})
	return b
}

// Sign answers request options with a signed assertion's parts.
func (a *Authenticator) Sign(raw []byte) (Assertion, error) {
	o, err := readOptions(raw)
	if err != nil {
		return Assertion{}, err
	}
	if !a.Frozen {
		a.Counter++
	}
	auth := append([]byte{}, a.rpHash(o.PublicKey.RPID)...)
	auth = append(auth, a.flags(0))
	auth = binary.BigEndian.AppendUint32(auth, a.Counter)
	cd := a.ClientData("webauthn.get", o.PublicKey.Challenge)
	h := sha256.Sum256(cd)
	digest := sha256.Sum256(append(append([]byte{}, auth...), h[:]...))
	sig, err := ecdsa.SignASN1(rand.Reader, a.Key, digest[:])
	if err != nil {
		return Assertion{}, err
	}
	s := Assertion{CredID: a.CredID, ClientData: cd, AuthData: auth, Signature: sig}
	if !a.Discard {
		s.UserHandle = a.UserHandle
	}
	return s, nil
}

// Assert answers request options with an assertion, PublicKeyCredential JSON.
func (a *Authenticator) Assert(raw []byte) (json.RawMessage, error) {
	s, err := a.Sign(raw)
	if err != nil {
		return nil, err
	}
	return s.JSON(), nil
}
