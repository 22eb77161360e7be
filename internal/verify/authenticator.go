package verify

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"rsc.io/qr"

	"github.com/twofold-auth/twofold/internal/otp"
	"github.com/twofold-auth/twofold/internal/twofold"
)

// Enrollment is a new authenticator seed, ready to be shown to the user.
type Enrollment struct {
	Label  string
	URI    string // otpauth://totp/...
	QRLink string // capability token for the QR code image; the HTTP layer makes it a URL
}

// Enroll gives the user a new TOTP seed for a generic authenticator app (Google Authenticator,
// 1Password, Aegis, oathtool...), replacing any earlier one. label names the account in the app;
// empty means the user's email.
func (s *Service) Enroll(ctx context.Context, app twofold.App, userID int64, label string, qrSize int) (Enrollment, error) {
	u, err := s.user(ctx, app.ID, userID, twofold.ErrUserNotFound)
	if err != nil {
		return Enrollment{}, err
	}
	label = strings.TrimSpace(label)
	if label == "" {
		label = u.Email
	}
	if len(label) > 100 {
		return Enrollment{}, twofold.ErrInvalidParam("label", "must be at most 100 characters")
	}
	if qrSize <= 0 {
		qrSize = 300
	}
	if qrSize < 50 || qrSize > 1000 {
		return Enrollment{}, twofold.ErrInvalidParam("qr_size", "must be 50 to 1000")
	}
	secret, err := otp.NewSecret(20)
	if err != nil {
		return Enrollment{}, err
	}
	now := s.now().UTC()
	a := twofold.Authenticator{
		UserID: u.ID, AppID: app.ID, SecretSealed: s.keys.Seal(secret, seedAD(app.ID, u.ID)),
		Digits: app.TOTPDigits, Period: app.TOTPPeriod, CreatedAt: now,
	}
	if err := s.store.PutAuthenticator(ctx, &a); err != nil {
		return Enrollment{}, err
	}
	uri := otp.Key{Issuer: app.Name, Account: label, TOTP: otp.TOTP{Secret: secret, Digits: a.Digits, Period: a.Period, Algorithm: otp.SHA1}}.URI()

	raw := make([]byte, 24)
	if _, err := rand.Read(raw); err != nil {
		return Enrollment{}, fmt.Errorf("qr link: %w", err)
	}
	token := hex.EncodeToString(raw)
	mac := s.keys.Lookup("qr:" + token)
	link := twofold.QRLink{
		MAC: mac, AppID: app.ID, UserID: u.ID, Version: a.Version, Size: qrSize,
		URISealed: s.keys.Seal([]byte(uri), qrAD(mac)), ExpiresAt: now.Add(s.cfg.QRLinkTTL),
	}
	if err := s.store.InsertQRLink(ctx, link); err != nil {
		return Enrollment{}, err
	}
	return Enrollment{Label: label, URI: uri, QRLink: token}, nil
}

// ErrQRGone means a QR link is unknown, expired, or for a seed that has since been replaced.
var ErrQRGone = errors.New("QR code link is unknown or expired")

// QR resolves a QR link token to the otpauth URI it shows and the requested image size.
func (s *Service) QR(ctx context.Context, token string) (uri string, size int, err error) {
	if len(token) != 48 {
		return "", 0, ErrQRGone
	}
	// A link made before the master key's rotation is stored under an older key's hash.
	var mac []byte
	var l twofold.QRLink
	for _, mac = range s.keys.Lookups("qr:" + token) {
		if l, err = s.store.GetQRLink(ctx, mac, s.now()); !errors.Is(err, twofold.ErrNotFound) {
			break
		}
	}
	if errors.Is(err, twofold.ErrNotFound) {
		return "", 0, ErrQRGone
	}
	if err != nil {
		return "", 0, err
	}
	a, err := s.store.GetAuthenticator(ctx, l.AppID, l.UserID)
	if errors.Is(err, twofold.ErrNotFound) || (err == nil && a.Version != l.Version) {
		return "", 0, ErrQRGone
	}
	if err != nil {
		return "", 0, err
	}
	raw, err := s.keys.Open(l.URISealed, qrAD(mac))
	if err != nil {
		return "", 0, fmt.Errorf("open QR link: %w", err)
	}
	return string(raw), l.Size, nil
}

func qrAD(mac []byte) string { return fmt.Sprintf("qr:%x", mac) }

// QRLinkAD is the additional data of a QR link's sealed URI, for re-keying.
func QRLinkAD(mac []byte) string { return qrAD(mac) }

// AuthenticatorSeedAD is the additional data of a user's sealed authenticator seed, for
// re-keying.
func AuthenticatorSeedAD(appID, userID int64) string { return seedAD(appID, userID) }

// QRPNG draws uri as a QR code, a PNG about size pixels wide (with its quiet zone): the image
// a QR link serves, and the console shows an operator.
func QRPNG(uri string, size int) ([]byte, error) {
	code, err := qr.Encode(uri, qr.M)
	if err != nil {
		return nil, fmt.Errorf("QR code: %w", err)
	}
	code.Scale = max(1, size/(code.Size+8))
	return code.PNG(), nil
}
