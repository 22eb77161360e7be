package main

import (
	"fmt"
	"strconv"
	"testing"
	"time"
)

// The registration JWT's context as the tutorials sign it. The Flask tutorials read the app id
// from the environment and sign it as a string ("authy_app_id": "12345"), the Node and Sinatra
// ones as a number: both name the application. Anything else that is not exactly an id (a
// fraction, words, a sign, another application's id) is refused as before, 60101.
func TestRegistrationJWTContextSpellings(t *testing.T) {
	s := startServer(t, "", "--rate-limit", "off")
	var other struct {
		AppID int64 `json:"app_id"`
	}
	s.cliJSON(&other, "app", "create", "--name", "Other")
	existing := s.register(s.key, "existing@example.com", "2015550150")
	now := time.Now()
	iat, exp := now.Unix(), now.Add(5*time.Minute).Unix()
	n := 0
	// signed signs a registration JWT with the first application's key whose context is spelt
	// exactly as given, for a user of its own.
	signed := func(context string) (token, customID string) {
		n++
		customID = "ctx-user-" + strconv.Itoa(n)
		return signedJWT(s.key, `{"alg":"HS256","typ":"JWT"}`, fmt.Sprintf(
			`{"iss":"My first app","iat":%d,"exp":%d,"context":{"custom_user_id":%q,%s}}`, iat, exp, customID, context)), customID
	}
	for _, tc := range []struct {
		name, context string
		ok            bool
	}{
		{"a number", `"authy_app_id":1`, true},
		{"a numeric string (Flask)", `"authy_app_id":"1"`, true},
		{"a number spelt as a float", `"authy_app_id":1.0`, true},
		{"a number in exponent form", `"authy_app_id":1e0`, true},
		{"a string with leading zeros", `"authy_app_id":"001"`, true},
		{"a fraction", `"authy_app_id":1.5`, false},
		{"a fraction in a string", `"authy_app_id":"1.5"`, false},
		{"a float in a string", `"authy_app_id":"1.0"`, false},
		{"words", `"authy_app_id":"one"`, false},
		{"digits and words", `"authy_app_id":"1abc"`, false},
		{"an empty string", `"authy_app_id":""`, false},
		{"a space", `"authy_app_id":" 1"`, false},
		{"a sign", `"authy_app_id":"+1"`, false},
		{"negative", `"authy_app_id":"-1"`, false},
		{"past int64", `"authy_app_id":"99999999999999999999"`, false},
		{"a bool", `"authy_app_id":true`, false},
		{"null", `"authy_app_id":null`, false},
		{"an object", `"authy_app_id":{"id":1}`, false},
		{"missing", `"x":1`, false},
		{"another application's id, as a string", fmt.Sprintf(`"authy_app_id":"%d"`, other.AppID), false},
		{"another application's id, as a number", fmt.Sprintf(`"authy_app_id":%d`, other.AppID), false},
		{"an unknown application", `"authy_app_id":"999"`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			token, customID := signed(tc.context)
			r := s.registerWithJWT(token)
			if !tc.ok {
				expectError(t, r, 400, "60101")
				if st := s.get("/protected/json/registrations/status?custom_user_id=" + customID); st.body["registration"].(map[string]any)["status"] != "pending" {
					t.Fatalf("a refused JWT registered its user: %s", st.raw)
				}
				return
			}
			if r.status != 200 {
				t.Fatalf("%d %s", r.status, r.raw)
			}
			st := s.get("/protected/json/registrations/status?custom_user_id=" + customID)
			reg := st.body["registration"].(map[string]any)
			if reg["status"] != "completed" || reg["authy_id"] != r.body["device"].(map[string]any)["authy_id"] {
				t.Fatalf("registration status: %s", st.raw)
			}
		})
	}

	// Twofold's own context.authy_id (a device for an existing user) is read the same way.
	t.Run("authy_id as a numeric string", func(t *testing.T) {
		token, _ := signed(fmt.Sprintf(`"authy_app_id":"1","authy_id":"%d"`, existing))
		r := s.registerWithJWT(token)
		if r.status != 200 || r.body["device"].(map[string]any)["authy_id"] != float64(existing) {
			t.Fatalf("%d %s", r.status, r.raw)
		}
	})
	t.Run("authy_id as a fraction", func(t *testing.T) {
		token, _ := signed(fmt.Sprintf(`"authy_app_id":1,"authy_id":%d.5`, existing))
		expectError(t, s.registerWithJWT(token), 400, "60101")
	})

	// A numeric custom_user_id is the customer's id as its backend polls for it: 1234567, not
	// the float 1.234567e+06 it decodes to.
	t.Run("a numeric custom_user_id", func(t *testing.T) {
		token := signedJWT(s.key, `{"alg":"HS256","typ":"JWT"}`, fmt.Sprintf(
			`{"iss":"My first app","iat":%d,"exp":%d,"context":{"custom_user_id":1234567,"authy_app_id":"1"}}`, iat, exp))
		if r := s.registerWithJWT(token); r.status != 200 {
			t.Fatalf("%d %s", r.status, r.raw)
		}
		st := s.get("/protected/json/registrations/status?custom_user_id=1234567")
		if st.body["registration"].(map[string]any)["status"] != "completed" {
			t.Fatalf("registration status of 1234567: %s", st.raw)
		}
	})
}
