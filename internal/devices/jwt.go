package devices

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/twofold-auth/twofold/internal/twofold"
)

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
	var app twofold.App
	claims := &registrationClaims{}
	parser := jwt.NewParser(jwt.WithValidMethods([]string{"HS256"}), jwt.WithExpirationRequired(), jwt.WithIssuedAt(),
		jwt.WithLeeway(30*time.Second), jwt.WithTimeFunc(s.now))
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
	// share at least one key, cannot each spend it once.
	err = s.store.RegisterDeviceOnceMACs(ctx, s.keys.Lookups("jwt:"+token), app.ID, u.ID, claims.ExpiresAt.Time, now, &d)
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
