// Package devices registers users' authenticator devices (the Authy SDK flow): the customer's
// backend gets a single-use registration token, the device redeems it with an ECDSA P-256
// public key it generated, and receives an access token and a TOTP seed of its own.
package devices

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"errors"
	"fmt"
	"math/big"
	"strconv"
	"strings"
	"time"

	"github.com/twofold-auth/twofold/internal/otp"
	"github.com/twofold-auth/twofold/internal/seal"
	"github.com/twofold-auth/twofold/internal/twofold"
)

// Store is what the service needs from persistence.
type Store interface {
	GetUser(ctx context.Context, appID, id int64) (twofold.User, error)
	GetApp(ctx context.Context, id int64) (twofold.App, error)
	InsertRegistrationToken(ctx context.Context, t twofold.RegistrationToken) error
	RegistrationTokenApp(ctx context.Context, mac []byte) (int64, error)
	RegisterDevice(ctx context.Context, mac []byte, now time.Time, d *twofold.Device) error
	DeviceByTokenMAC(ctx context.Context, mac []byte) (twofold.Device, error)
	ListDevices(ctx context.Context, appID, userID int64) ([]twofold.Device, error)
	DeleteDevice(ctx context.Context, appID, id int64) error
	GetDevice(ctx context.Context, appID, id int64) (twofold.Device, error)
	TouchDevice(ctx context.Context, id int64, now time.Time) error
	CreateCustomUser(ctx context.Context, u *twofold.User) (bool, error)
	LinkCustomUser(ctx context.Context, appID, id int64, customID string, now time.Time) (twofold.User, error)
	UserByCustomID(ctx context.Context, appID int64, customID string) (twofold.User, error)
	RegisterDeviceOnceMACs(ctx context.Context, macs [][]byte, appID, userID int64, expires, now time.Time, d *twofold.Device) error
	RemacDevice(ctx context.Context, id int64, old, mac, sealed []byte) (bool, error)
	LastRekey(ctx context.Context) (previous []byte, at time.Time, ok bool, err error)
}

// Auditor records security-relevant events (the audit trail); it never fails.
type Auditor interface {
	Record(ctx context.Context, e twofold.AuditEvent)
}

// Service manages devices.
type Service struct {
	audit    Auditor // nil: nothing is recorded
	store    Store
	keys     *seal.Keyring
	tokenTTL time.Duration
	now      func() time.Time
	// revealKey returns an application's API key, which signs its registration JWTs.
	revealKey func(twofold.App) (string, error)
}

// New returns a Service; registration tokens live tokenTTL (0: 10 minutes); revealKey opens an
// application's API key. now may be nil.
func New(store Store, keys *seal.Keyring, revealKey func(twofold.App) (string, error), tokenTTL time.Duration, now func() time.Time) *Service {
	if now == nil {
		now = time.Now
	}
	if tokenTTL <= 0 {
		tokenTTL = 10 * time.Minute
	}
	return &Service{store: store, keys: keys, revealKey: revealKey, tokenTTL: tokenTTL, now: now}
}

// SetAuditor makes the service record devices added and removed. Call it before the service is
// used.
func (s *Service) SetAuditor(a Auditor) { s.audit = a }

func (s *Service) record(ctx context.Context, e twofold.AuditEvent) {
	if s.audit != nil {
		s.audit.Record(ctx, e)
	}
}

// added records a new device; the device, redeeming its token, is the actor.
func (s *Service) added(ctx context.Context, d twofold.Device, via string) {
	s.record(ctx, twofold.AuditEvent{Actor: twofold.DeviceActor(d.ID), Action: twofold.AuditDeviceAdded, AppID: d.AppID,
		UserID: d.UserID, Details: map[string]string{"device_id": strconv.FormatInt(d.ID, 10), "os_type": d.OSType, "via": via}})
}

// randomToken returns n random bytes, base64url without padding, with a prefix saying what it is.
func randomToken(prefix string, n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic("devices: crypto/rand failed: " + err.Error())
	}
	return prefix + base64.RawURLEncoding.EncodeToString(b)
}

// RegistrationToken issues a single-use token that registers one device for the user.
func (s *Service) RegistrationToken(ctx context.Context, appID, userID int64) (string, time.Time, error) {
	if _, err := s.store.GetUser(ctx, appID, userID); errors.Is(err, twofold.ErrNotFound) {
		return "", time.Time{}, twofold.ErrUserNotFound()
	} else if err != nil {
		return "", time.Time{}, err
	}
	token := randomToken("tfr_", 24)
	expires := s.now().UTC().Add(s.tokenTTL)
	err := s.store.InsertRegistrationToken(ctx, twofold.RegistrationToken{
		MAC: s.keys.Lookup("registration:" + token), AppID: appID, UserID: userID, ExpiresAt: expires,
	})
	return token, expires, err
}

// Registration is what a newly registered device receives.
type Registration struct {
	Device      twofold.Device
	App         twofold.App
	AccessToken string
	Secret      []byte // the device's TOTP seed
}

// Register redeems a registration token with the device's public key (PKIX DER or base64 of it).
func (s *Service) Register(ctx context.Context, token string, publicKey []byte, name, osType string) (Registration, error) {
	name, osType, err := checkDevice(publicKey, name, osType)
	if err != nil {
		return Registration{}, err
	}
	// A token issued before the master key's rotation is stored under an older key's hash.
	var regMAC []byte
	var appID int64
	for _, mac := range s.keys.Lookups("registration:" + token) {
		regMAC = mac
		if appID, err = s.store.RegistrationTokenApp(ctx, mac); !errors.Is(err, twofold.ErrNotFound) {
			break
		}
	}
	if errors.Is(err, twofold.ErrNotFound) {
		return Registration{}, errRegistrationNotFound()
	} else if err != nil {
		return Registration{}, err
	}
	app, err := s.store.GetApp(ctx, appID)
	if err != nil {
		return Registration{}, err
	}
	reg, d, err := s.newDevice(app, publicKey, name, osType)
	if err != nil {
		return Registration{}, err
	}
	err = s.store.RegisterDevice(ctx, regMAC, s.now().UTC(), &d)
	switch {
	case errors.Is(err, twofold.ErrNotFound):
		return Registration{}, errRegistrationNotFound()
	case errors.Is(err, twofold.ErrExpired):
		return Registration{}, &twofold.Error{Code: twofold.CodeRegistrationExpired, Message: "Registration token has expired."}
	case err != nil:
		return Registration{}, err
	}
	s.added(ctx, d, "registration_token")
	reg.Device = d
	return reg, nil
}

// checkDevice validates what a device says about itself and fills in defaults.
func checkDevice(publicKey []byte, name, osType string) (string, string, error) {
	if _, err := ParsePublicKey(publicKey); err != nil {
		return "", "", twofold.ErrInvalidParam("public_key", err.Error())
	}
	name, osType = strings.TrimSpace(name), strings.TrimSpace(osType)
	if name == "" {
		name = "authenticator"
	}
	if osType == "" {
		osType = "authenticator"
	}
	if len(name) > 100 || len(osType) > 32 {
		return "", "", twofold.ErrInvalidParam("name", "is too long")
	}
	return name, osType, nil
}

// newDevice makes a device's credentials: an access token and its own TOTP seed, Authy-style
// codes of the app's token length and device period.
func (s *Service) newDevice(app twofold.App, publicKey []byte, name, osType string) (Registration, twofold.Device, error) {
	access := randomToken("tfd_", 32)
	secret, err := otp.NewSecret(20)
	if err != nil {
		return Registration{}, twofold.Device{}, err
	}
	mac := s.keys.Lookup("device:" + access)
	d := twofold.Device{
		PublicKey: publicKey, TokenMAC: mac, Name: name, OSType: osType,
		SecretSealed: s.keys.Seal(secret, SeedAD(mac)), Digits: app.TokenLength, Period: app.DeviceTOTPPeriod,
	}
	return Registration{App: app, AccessToken: access, Secret: secret}, d, nil
}

func errRegistrationNotFound() *twofold.Error {
	return &twofold.Error{Code: twofold.CodeRegistrationNotFound, Message: "Registration token is invalid or was already used."}
}

// SeedAD binds a device's sealed seed to its row.
func SeedAD(tokenMAC []byte) string { return fmt.Sprintf("device-seed:%x", tokenMAC) }

// RekeyedTokenMAC is how re-keying (twofold master-key rekey) marks the token MAC of a device
// that has not connected since the master key changed: the id of the key the MAC was made under,
// then the MAC. Only the device knows its token, so only its next connection can re-MAC it; the
// mark says which key that takes, and that it is still to be done.
func RekeyedTokenMAC(id seal.KeyID, mac []byte) []byte { return append(id[:], mac...) }

// RekeyedKey returns the key id of a token MAC marked by RekeyedTokenMAC.
func RekeyedKey(tokenMAC []byte) (seal.KeyID, bool) {
	var id seal.KeyID
	if len(tokenMAC) != seal.IDSize+32 {
		return id, false
	}
	copy(id[:], tokenMAC)
	return id, true
}

// Authenticate finds the device by its access token and records that it was seen (Lookup, then
// Seen).
func (s *Service) Authenticate(ctx context.Context, token string) (twofold.Device, error) {
	d, err := s.Lookup(ctx, token)
	if err != nil {
		return twofold.Device{}, err
	}
	if err := s.Seen(ctx, d); err != nil {
		return twofold.Device{}, err
	}
	return d, nil
}

// Seen records that device d, as Lookup found it, was seen now: a write, so a caller that may
// refuse the request (a rate limit) does so after Lookup and before Seen. The store keeps the time
// to the minute, so within a minute of the last one there is nothing to write.
func (s *Service) Seen(ctx context.Context, d twofold.Device) error {
	now := s.now()
	if now.Sub(d.LastSeenAt) < time.Minute {
		return nil
	}
	return s.store.TouchDevice(ctx, d.ID, now)
}

// Lookup finds the device by its access token, and records nothing. A device whose token MAC
// was made under another key than the current one (before a master key rotation) is moved to the
// current key's MAC, its seed re-sealed to match, on the way.
func (s *Service) Lookup(ctx context.Context, token string) (twofold.Device, error) {
	if !strings.HasPrefix(token, "tfd_") || len(token) > 100 {
		return twofold.Device{}, twofold.ErrNotFound
	}
	macs := s.keys.Lookups("device:" + token)
	// Under each key (the current key's first), then as marked by re-keying.
	candidates := append([][]byte{}, macs...)
	for i, id := range s.keys.IDs() {
		candidates = append(candidates, RekeyedTokenMAC(id, macs[i]))
	}
	var d twofold.Device
	var err error
	for i, mac := range candidates {
		d, err = s.store.DeviceByTokenMAC(ctx, mac)
		if errors.Is(err, twofold.ErrNotFound) {
			continue
		}
		if err == nil && i > 0 {
			d, err = s.remac(ctx, d, macs[0])
		}
		break
	}
	if err != nil {
		return twofold.Device{}, err
	}
	return d, nil
}

// remac moves d to the token MAC mac (the current key's), with its seed re-sealed under the
// additional data that names mac, in one compare-and-set. Losing the race to another request
// doing the same is fine: d is returned as it was found, and it authenticated.
func (s *Service) remac(ctx context.Context, d twofold.Device, mac []byte) (twofold.Device, error) {
	secret, err := s.keys.Open(d.SecretSealed, SeedAD(d.TokenMAC))
	if err != nil {
		return twofold.Device{}, fmt.Errorf("open TOTP seed of device %d: %w", d.ID, err)
	}
	sealed := s.keys.Seal(secret, SeedAD(mac))
	moved, err := s.store.RemacDevice(ctx, d.ID, d.TokenMAC, mac, sealed)
	if err != nil {
		return twofold.Device{}, err
	}
	if moved {
		d.TokenMAC, d.SecretSealed = mac, sealed
	}
	return d, nil
}

// Registered reports whether the device is still registered (it may have been removed while
// one of its connections stays open).
func (s *Service) Registered(ctx context.Context, d twofold.Device) (bool, error) {
	_, err := s.store.GetDevice(ctx, d.AppID, d.ID)
	if errors.Is(err, twofold.ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

// List returns the user's devices.
func (s *Service) List(ctx context.Context, appID, userID int64) ([]twofold.Device, error) {
	return s.store.ListDevices(ctx, appID, userID)
}

// Delete removes a device of the application and returns what it was.
func (s *Service) Delete(ctx context.Context, appID, id int64) (twofold.Device, error) {
	d, err := s.store.GetDevice(ctx, appID, id)
	if err == nil {
		err = s.store.DeleteDevice(ctx, appID, id)
	}
	if errors.Is(err, twofold.ErrNotFound) {
		return twofold.Device{}, twofold.Errorf(twofold.CodeDeviceNotFound, "Device not found.")
	}
	if err == nil {
		s.record(ctx, twofold.AuditEvent{Action: twofold.AuditDeviceRemoved, AppID: d.AppID, UserID: d.UserID,
			Details: map[string]string{"device_id": strconv.FormatInt(d.ID, 10)}})
	}
	return d, err
}

// ParsePublicKey accepts an ECDSA P-256 public key as PKIX DER, or that DER in base64.
func ParsePublicKey(raw []byte) (*ecdsa.PublicKey, error) {
	if der, err := base64.StdEncoding.DecodeString(string(raw)); err == nil {
		raw = der
	}
	key, err := x509.ParsePKIXPublicKey(raw)
	if err != nil {
		return nil, errors.New("must be an ECDSA P-256 public key in PKIX (SPKI) form")
	}
	pub, ok := key.(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P256() {
		return nil, errors.New("must be an ECDSA P-256 public key")
	}
	return pub, nil
}

// VerifySignature checks sig over message with the device's key. sig is either the 64-byte
// r||s form WebCrypto produces or ASN.1 DER as Go and OpenSSL produce.
func VerifySignature(d twofold.Device, message, sig []byte) bool {
	pub, err := ParsePublicKey(d.PublicKey)
	if err != nil {
		return false
	}
	digest := sha256.Sum256(message)
	if len(sig) == 64 {
		r, s := new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])
		return ecdsa.Verify(pub, digest[:], r, s)
	}
	var parsed struct{ R, S *big.Int }
	if rest, err := asn1.Unmarshal(sig, &parsed); err != nil || len(rest) != 0 || parsed.R == nil || parsed.S == nil {
		return false
	}
	return ecdsa.VerifyASN1(pub, digest[:], sig)
}
