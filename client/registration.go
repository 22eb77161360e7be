package client

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"time"
)

// RegistrationClaims say whom a registration QR code is for.
type RegistrationClaims struct {
	AppID        int64  // the application's id (App(ctx).ID)
	AppName      string // the application's name, the JWT's issuer
	CustomUserID string // your id for the user; RegistrationStatus finds the registration by it
	// AuthyID, when set, is an existing user (registered with a phone number) that the device
	// joins; without it the device registers a new user known only by CustomUserID. This is
	// Twofold's addition: Authy ignores it.
	AuthyID int64
	TTL     time.Duration // how long the code can be scanned; 0 means 5 minutes, as Authy's tutorials
}

// RegistrationJWT makes the token of the Authy tutorials' registration QR code: an HS256 JWT
// signed with the application's API key, {"iss", "iat", "exp", "context": {"custom_user_id",
// "authy_app_id"}}. Put it in a QR code with RegistrationQR.
func RegistrationJWT(apiKey string, r RegistrationClaims, now time.Time) (string, error) {
	if apiKey == "" || r.AppID == 0 || r.CustomUserID == "" {
		return "", errors.New("client: a registration token needs the API key, the application id and a custom user id")
	}
	if r.TTL <= 0 {
		r.TTL = 5 * time.Minute
	}
	type context struct {
		CustomUserID string `json:"custom_user_id"`
		AuthyAppID   int64  `json:"authy_app_id"`
		AuthyID      int64  `json:"authy_id,omitempty"`
	}
	claims, err := json.Marshal(struct {
		Iss     string  `json:"iss"`
		Iat     int64   `json:"iat"`
		Exp     int64   `json:"exp"`
		Context context `json:"context"`
	}{r.AppName, now.Unix(), now.Add(r.TTL).Unix(), context{r.CustomUserID, r.AppID, r.AuthyID}})
	if err != nil {
		return "", err
	}
	enc := base64.RawURLEncoding
	unsigned := enc.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`)) + "." + enc.EncodeToString(claims)
	mac := hmac.New(sha256.New, []byte(apiKey))
	mac.Write([]byte(unsigned))
	return unsigned + "." + enc.EncodeToString(mac.Sum(nil)), nil
}

// RegistrationQR is what the registration QR code says: "authy://account?token=JWT".
func RegistrationQR(jwt string) string { return "authy://account?token=" + jwt }
