package verifyfactors

import (
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"strings"

	"github.com/twofold-auth/twofold/internal/devices"
	"github.com/twofold-auth/twofold/internal/twofold"
)

// Push factors: the device's ECDSA P-256 public key (Binding.PublicKey, base64 of its PKIX DER;
// Binding.Alg ES256). The factor is verified by a JWT the key signs (AuthPayload of the factor's
// update, as the Verify Push SDKs send). A challenge is answered by a JWT, signed ES256 by the
// factor's key, whose claims are the challenge's SignatureFields with their values as the API
// shows them, plus status (approved or denied): a JWT of another challenge, or signed by another
// factor's key, answers nothing, and a challenge is answered once.

// PushFactor are the parameters of a new push factor.
type PushFactor struct {
	Name      string
	PublicKey string // base64 of the PKIX DER
	Alg       string
	Config    twofold.FactorConfig
	Metadata  map[string]string
}

// SignatureFields are the challenge's fields a device's answer signs (the API lists them in
// Twilio-Verify-Signature-Fields), with status.
var SignatureFields = []string{"sid", "factor_sid", "entity_sid", "date_created", "expiration_date"}

// CreatePushFactor gives the entity a new, unverified push factor.
func (s *Service) CreatePushFactor(ctx context.Context, app twofold.App, svc twofold.VerifyService, entity twofold.User, p PushFactor) (twofold.VerifyFactor, error) {
	if err := checkName(p.Name); err != nil {
		return twofold.VerifyFactor{}, err
	}
	if !strings.EqualFold(p.Alg, "ES256") {
		return twofold.VerifyFactor{}, twofold.ErrInvalidParam("binding.alg", "must be ES256")
	}
	der, err := base64.StdEncoding.DecodeString(strings.TrimSpace(p.PublicKey))
	if err != nil {
		return twofold.VerifyFactor{}, twofold.ErrInvalidParam("binding.public_key", "must be base64 of a PKIX DER P-256 key")
	}
	if _, err := devices.ParsePublicKey(der); err != nil {
		return twofold.VerifyFactor{}, twofold.ErrInvalidParam("binding.public_key", "must be base64 of a PKIX DER P-256 key")
	}
	cfg := p.Config
	cfg.Alg = "ES256"
	switch cfg.NotificationPlatform = strings.ToLower(cfg.NotificationPlatform); cfg.NotificationPlatform {
	case "none", "apn", "fcm":
	case "":
		cfg.NotificationPlatform = "none"
	default:
		return twofold.VerifyFactor{}, twofold.ErrInvalidParam("config.notification_platform", "must be apn, fcm or none")
	}
	if n := len(cfg.NotificationToken); cfg.NotificationPlatform != "none" && (n < 32 || n > 255) {
		return twofold.VerifyFactor{}, twofold.ErrInvalidParam("config.notification_token", "must be 32 to 255 characters")
	}
	if len(cfg.AppID) > 255 || len(cfg.SdkVersion) > 64 || len(cfg.NotificationToken) > 255 {
		return twofold.VerifyFactor{}, twofold.ErrInvalidParam("config", "is too long")
	}
	if err := checkMetadata(p.Metadata); err != nil {
		return twofold.VerifyFactor{}, err
	}
	now := s.now().UTC()
	f := twofold.VerifyFactor{PublicID: twofold.NewPublicID(), AppID: app.ID, ServiceID: svc.ID, UserID: entity.ID,
		Type: twofold.VerifyFactorPush, Name: p.Name, Status: twofold.FactorUnverified, SecretSealed: der, Config: cfg,
		Metadata: p.Metadata, CreatedAt: now, UpdatedAt: now}
	if err := s.insertFactor(ctx, svc, entity, &f); err != nil {
		return twofold.VerifyFactor{}, fmt.Errorf("create push factor: %w", err)
	}
	return f, nil
}

// verifyJWT checks an ES256 compact JWS against the factor's key and returns its claims.
func verifyJWT(f twofold.VerifyFactor, token string) (map[string]any, bool) {
	pub, err := x509.ParsePKIXPublicKey(f.SecretSealed)
	key, ok := pub.(*ecdsa.PublicKey)
	if err != nil || !ok {
		return nil, false
	}
	parts := strings.Split(strings.TrimSpace(token), ".")
	if len(parts) != 3 {
		return nil, false
	}
	var header struct {
		Alg string `json:"alg"`
	}
	h, err1 := base64.RawURLEncoding.DecodeString(parts[0])
	body, err2 := base64.RawURLEncoding.DecodeString(parts[1])
	sig, err3 := base64.RawURLEncoding.DecodeString(parts[2])
	if err1 != nil || err2 != nil || err3 != nil || json.Unmarshal(h, &header) != nil || header.Alg != "ES256" || len(sig) != 64 {
		return nil, false
	}
	digest := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	r, sv := new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])
	if !ecdsa.Verify(key, digest[:], r, sv) {
		return nil, false
	}
	var claims map[string]any
	if json.Unmarshal(body, &claims) != nil || claims == nil {
		return nil, false
	}
	return claims, true
}

// verifyPushFactor verifies a push factor by a JWT its key signed.
func (s *Service) verifyPushFactor(ctx context.Context, svc twofold.VerifyService, entity twofold.User, f twofold.VerifyFactor, payload string) (twofold.VerifyFactor, error) {
	if f.Status == twofold.FactorVerified {
		return f, nil
	}
	n, err := s.store.AddFactorFailure(ctx, f.ID)
	if err != nil {
		return f, err
	}
	if n > MaxAttempts {
		return f, ErrFactorMaxAttempts
	}
	if _, ok := verifyJWT(f, payload); !ok {
		return f, nil
	}
	return s.markVerified(ctx, svc, entity, f)
}

// answerPush answers a pending challenge of the push factor f with the device's signed answer:
// the JWT must be signed by f's key and carry the challenge's signed fields (want) and a
// status. A first approved challenge verifies an unverified factor.
func (s *Service) answerPush(ctx context.Context, svc twofold.VerifyService, entity twofold.User, f twofold.VerifyFactor, c twofold.VerifyChallenge, payload string, want map[string]string) (twofold.VerifyChallenge, error) {
	if c.StatusAt(s.now()) != twofold.ChallengePending {
		return c, ErrNotPending
	}
	n, err := s.store.AddChallengeFailure(ctx, c.ID)
	if err != nil {
		return c, err
	}
	if n > MaxAttempts {
		return c, ErrChallengeMaxAttempts
	}
	claims, ok := verifyJWT(f, payload)
	if !ok {
		return c, ErrBadSignature
	}
	for name, v := range want {
		if got, _ := claims[name].(string); got != v {
			return c, ErrBadSignature
		}
	}
	status, _ := claims["status"].(string)
	if status != twofold.ChallengeApproved && status != twofold.ChallengeDenied {
		return c, ErrBadSignature
	}
	if c, err = s.answer(ctx, svc, entity, c, status); err != nil {
		return c, err
	}
	if status == twofold.ChallengeApproved && f.Status != twofold.FactorVerified {
		if _, err := s.markVerified(ctx, svc, entity, f); err != nil {
			return c, err
		}
	}
	return c, nil
}
