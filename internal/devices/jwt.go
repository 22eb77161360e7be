package devices

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
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
		CustomUserID customUserID `json:"custom_user_id"`
		AuthyAppID   claimID      `json:"authy_app_id"`
		// AuthyID (Twofold's addition) names an existing user, e.g. one registered with a phone
		// number, that the device joins instead of a new phoneless user.
		AuthyID claimID `json:"authy_id,omitempty"`
	} `json:"context"`
}

// claimID is an id in a JWT claim, spelt as the tutorials sign it: a JSON number (Node,
// Sinatra) or a string of decimal digits (Flask reads the app id from the environment and signs
// "12345"). A number must be whole (1.0 and 1e0 are 1; JSON does not tell integers from
// floats); a string must be digits only, as nothing signs "1.0" or " 1" for an id. Anything
// else fails the JWT's decoding, which refuses it (60101).
type claimID int64

func (id *claimID) UnmarshalJSON(b []byte) error {
	var text string
	if len(b) > 0 && b[0] == '"' {
		if err := json.Unmarshal(b, &text); err != nil {
			return err
		}
		if text == "" || strings.TrimLeft(text, "0123456789") != "" {
			return fmt.Errorf("id %q is not decimal digits", text)
		}
		n, err := strconv.ParseInt(text, 10, 64)
		if err != nil {
			return fmt.Errorf("id %q: %w", text, err)
		}
		*id = claimID(n)
		return nil
	}
	var num json.Number
	if err := json.Unmarshal(b, &num); err != nil {
		return fmt.Errorf("id %s is neither a number nor a string", b)
	}
	if n, err := num.Int64(); err == nil {
		*id = claimID(n)
		return nil
	}
	// A whole number spelt as a float. Past 2^53 a float64 is whole whatever was written, so
	// only ids a float64 holds exactly are taken.
	f, err := num.Float64()
	if err != nil || f != math.Trunc(f) || math.Abs(f) > 1<<53 {
		return fmt.Errorf("id %s is not a whole number", b)
	}
	*id = claimID(f)
	return nil
}

// customUserID is the customer's own id for its user, a string or a number in the JWT. A
// number is kept as its digits: decoded as a float64 and printed, 1234567 became "1.234567e+06",
// which the customer's backend, polling registrations/status with its id, never asks for.
type customUserID struct {
	text string
	set  bool // present and not null
}

func (c *customUserID) UnmarshalJSON(b []byte) error {
	var v any
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		return err
	}
	switch t := v.(type) {
	case nil:
		*c = customUserID{}
	case string:
		*c = customUserID{text: t, set: true}
	case json.Number:
		text := t.String()
		var id claimID
		if id.UnmarshalJSON([]byte(text)) == nil {
			text = strconv.FormatInt(int64(id), 10) // 42.0 is 42, as it was when printed
		}
		*c = customUserID{text: text, set: true}
	default:
		return fmt.Errorf("custom_user_id is neither a string nor a number")
	}
	return nil
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
		appID := int64(claims.Context.AuthyAppID)
		a, err := s.store.GetApp(ctx, appID)
		if err != nil {
			return nil, fmt.Errorf("unknown application %d", appID)
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
	customID := strings.TrimSpace(claims.Context.CustomUserID.text)
	if !claims.Context.CustomUserID.set || customID == "" || len(customID) > 255 {
		return Registration{}, twofold.Errorf(twofold.CodeInvalidJWT, "The registration token has no context.custom_user_id.")
	}
	spent, err := spendingKey(parser, token, app.ID, claims.ID, customID, int64(claims.Context.AuthyID))
	if err != nil {
		return Registration{}, twofold.Errorf(twofold.CodeInvalidJWT, "The registration token is not valid.")
	}
	now := s.now().UTC()
	u := twofold.User{AppID: app.ID, CustomUserID: customID, CreatedAt: now, UpdatedAt: now}
	if id := int64(claims.Context.AuthyID); id != 0 {
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
// iat to the second, are byte for byte the same then anyway. The context's ids are written as
// what they were read as (authy_app_id 1, "1" and 1.0 are one application; custom_user_id
// " ada" and "ada" one user), so no other spelling of them is another registration.
func spendingKey(parser *jwt.Parser, token string, appID int64, jti, customID string, authyID int64) (string, error) {
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
	if ctx, ok := claims["context"].(map[string]any); ok { // it is: the claims were read
		ctx["authy_app_id"] = appID
		ctx["custom_user_id"] = customID
		if _, ok := ctx["authy_id"]; ok {
			ctx["authy_id"] = authyID
		}
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
