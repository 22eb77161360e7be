package devices

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/twofold-auth/twofold/internal/twofold"
)

// jwtLeeway is how far a registration JWT's clock may be from the server's.
const jwtLeeway = 30 * time.Second

// registrationClaims are the claims of the JWT the Authy tutorials put in an
// authy://account?token=JWT QR code (spec 2.7), signed HS256 with the app's API key.
type registrationClaims struct {
	jwt.RegisteredClaims
	Context struct {
		CustomUserID any   `json:"custom_user_id"`
		AuthyAppID   int64 `json:"authy_app_id"`
		// AuthyID (Twofold's addition) names an existing user, e.g. one registered with a phone
		// number, that the device joins instead of a new phoneless user.
		AuthyID int64 `json:"authy_id,omitempty"`
	} `json:"context"`
}

// RegisterWithJWT registers a device from the tutorial's QR code: it checks the JWT against the
// API key of the application it names, creates (or finds) the user by the customer's id, and
// registers the device for them. An expired JWT is 60086, a forged or malformed one 60101, one
// used before 60037.
func (s *Service) RegisterWithJWT(ctx context.Context, token string, publicKey []byte, name, osType string) (Registration, error) {
	name, osType, err := checkDevice(publicKey, name, osType)
	if err != nil {
		return Registration{}, err
	}
	if !compactJWS(token) {
		return Registration{}, twofold.Errorf(twofold.CodeInvalidJWT, "The registration token is not valid.")
	}
	var app twofold.App
	claims := &registrationClaims{}
	// Strict decoding: base64url whose unused bits are not zero is refused, not read as the same
	// bytes as the canonical spelling (which made one signature four spellings).
	parser := jwt.NewParser(jwt.WithValidMethods([]string{"HS256"}), jwt.WithExpirationRequired(), jwt.WithIssuedAt(),
		jwt.WithLeeway(jwtLeeway), jwt.WithTimeFunc(s.now), jwt.WithStrictDecoding())
	_, err = parser.ParseWithClaims(token, claims, func(*jwt.Token) (any, error) {
		a, err := s.store.GetApp(ctx, claims.Context.AuthyAppID)
		if err != nil {
			return nil, fmt.Errorf("unknown application %d", claims.Context.AuthyAppID)
		}
		key, err := s.revealKey(a)
		if err != nil {
			return nil, err
		}
		app = a
		return []byte(key), nil
	})
	switch {
	case errors.Is(err, jwt.ErrTokenExpired):
		return Registration{}, twofold.Errorf(twofold.CodeJWTExpired, "The registration token has expired.")
	case err != nil:
		return Registration{}, twofold.Errorf(twofold.CodeInvalidJWT, "The registration token is not valid.")
	}
	if err := s.issuedSinceRotation(ctx, claims); err != nil {
		return Registration{}, err
	}
	spent, err := spendingKey(parser, token, app.ID, claims.ID)
	if err != nil {
		return Registration{}, twofold.Errorf(twofold.CodeInvalidJWT, "The registration token is not valid.")
	}
	customID := strings.TrimSpace(fmt.Sprint(claims.Context.CustomUserID))
	if claims.Context.CustomUserID == nil || customID == "" || len(customID) > 255 {
		return Registration{}, twofold.Errorf(twofold.CodeInvalidJWT, "The registration token has no context.custom_user_id.")
	}
	now := s.now().UTC()
	u := twofold.User{AppID: app.ID, CustomUserID: customID, CreatedAt: now, UpdatedAt: now}
	if id := claims.Context.AuthyID; id != 0 {
		u, err = s.store.LinkCustomUser(ctx, app.ID, id, customID, now)
		switch {
		case errors.Is(err, twofold.ErrNotFound):
			return Registration{}, twofold.Errorf(twofold.CodeInvalidJWT, "The registration token names an unknown user.")
		case errors.Is(err, twofold.ErrConflict):
			return Registration{}, twofold.Errorf(twofold.CodeInvalidJWT, "The registration token's custom_user_id belongs to another user.")
		case err != nil:
			return Registration{}, err
		}
	} else if created, err := s.store.CreateCustomUser(ctx, &u); err != nil {
		return Registration{}, err
	} else if created {
		// The application's signed token asked for this user.
		s.record(ctx, twofold.AuditEvent{Actor: twofold.AppActor(app.ID), Action: twofold.AuditUserCreated, AppID: app.ID,
			UserID: u.ID, Details: map[string]string{"via": "registration_jwt"}})
	}
	reg, d, err := s.newDevice(app, publicKey, name, osType)
	if err != nil {
		return Registration{}, err
	}
	// The JWT is spent under every key of the ring: one spent before the master key's rotation
	// (under an older key) is refused after it, and instances part-way through a rotation, which
	// share at least one key, cannot each spend it once. It is spent by what it means, and by its
	// text too, as versions before did: a JWT spent by one of them (during a rolling upgrade, or
	// shortly before it) stays spent.
	macs := append(s.keys.Lookups(spent), s.keys.Lookups("jwt:"+token)...)
	// The marks last as long as the token verifies, leeway included; then the sweep takes them.
	err = s.store.RegisterDeviceOnceMACs(ctx, macs, app.ID, u.ID, claims.ExpiresAt.Time.Add(jwtLeeway), now, &d)
	if errors.Is(err, twofold.ErrConflict) {
		return Registration{}, twofold.Errorf(twofold.CodeRegistrationExpired, "The registration token was already used.")
	}
	if err != nil {
		return Registration{}, err
	}
	s.added(ctx, d, "registration_jwt")
	reg.Device = d
	return reg, nil
}

// compactJWS reports whether token is spelt with nothing but base64url and the two dots of a
// JWS: Go's base64 decoder skips CR and LF even in strict mode, so a line break would otherwise
// be another spelling of the same token.
func compactJWS(token string) bool {
	for i := 0; i < len(token); i++ {
		switch c := token[i]; {
		case 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '-', c == '_', c == '.':
		default:
			return false
		}
	}
	return true
}

// spendingKey names what a verified registration JWT means, which is what is recorded as spent:
// no other spelling of it (another encoding of the same claims, another header, signed again)
// can be spent once more. That is the application and the JWT's jti when it has one (RFC 7519
// 4.1.7: the issuer's unique id of the token, so two JWTs with one jti are one registration,
// whatever else they say), otherwise the application and all its claims in one canonical form:
// decoded as JSON (the last of duplicate names wins, numbers are float64, as the claims were
// read), then encoded with sorted names. Two JWTs without a jti whose claims are equal are
// the same registration: only the first registers a device. The tutorials' JWTs, which carry
// iat to the second, are byte for byte the same then anyway.
func spendingKey(parser *jwt.Parser, token string, appID int64, jti string) (string, error) {
	if jti != "" {
		return "jwt-jti:" + strconv.FormatInt(appID, 10) + ":" + jti, nil
	}
	_, rest, _ := strings.Cut(token, ".")
	payload, _, _ := strings.Cut(rest, ".")
	raw, err := parser.DecodeSegment(payload)
	if err != nil {
		return "", err
	}
	var claims map[string]any
	if err := json.Unmarshal(raw, &claims); err != nil {
		return "", fmt.Errorf("registration JWT claims: %w", err)
	}
	canonical, err := json.Marshal(claims) // map keys sorted, at every depth
	if err != nil {
		return "", fmt.Errorf("registration JWT claims: %w", err)
	}
	return "jwt-claims:" + strconv.FormatInt(appID, 10) + ":" + string(canonical), nil
}

// issuedSinceRotation refuses a JWT issued before the master key was last re-keyed, once the
// key re-keyed from is gone from the ring: the JWT may have been spent while that key was the
// only one, and is recorded as spent under it alone, which can no longer be checked. (Until
// then, and for JWTs issued since, the marks under every key of the ring decide.) Registration
// JWTs live minutes, so this refuses only what the customer's backend would reissue anyway.
func (s *Service) issuedSinceRotation(ctx context.Context, claims *registrationClaims) error {
	previous, at, ok, err := s.store.LastRekey(ctx)
	if err != nil || !ok {
		return err
	}
	for _, id := range s.keys.IDs() {
		if bytes.Equal(id[:], previous) {
			return nil
		}
	}
	if claims.IssuedAt == nil || !claims.IssuedAt.After(at) { // to the second: the same second counts as before
		return twofold.Errorf(twofold.CodeRegistrationExpired, "The registration token was issued before the server's master key was rotated: ask for a new one.")
	}
	return nil
}

// RegistrationStatus reports whether the customer's user customID has registered a device by QR
// code yet, and its Authy id when it has.
func (s *Service) RegistrationStatus(ctx context.Context, appID int64, customID string) (int64, bool, error) {
	u, err := s.store.UserByCustomID(ctx, appID, customID)
	if errors.Is(err, twofold.ErrNotFound) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	devs, err := s.store.ListDevices(ctx, appID, u.ID)
	if err != nil || len(devs) == 0 {
		return 0, false, err
	}
	return u.ID, true, nil
}
