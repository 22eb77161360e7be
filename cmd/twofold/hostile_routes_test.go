package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// hostileRoute is one way of calling a route of the server: the pattern it is registered under,
// a concrete path ({name} wildcards are filled from wild), how it authenticates, and the
// parameters it reads with valid values. The suite sends the valid request with one part at a
// time made hostile.
type hostileRoute struct {
	pattern string            // as registered on the mux
	method  string            // of the request
	path    string            // with {wildcards}
	wild    map[string]string // valid values of the wildcards
	auth    string            // "key", "device", "console", "twilio" (a delivery status callback), "basic" (the Verify API) or "" (none)
	params  map[string]string // valid parameters, bracket names allowed ("user[email]")
	vary    []string          // the parameters made hostile; nil: every one of params
	form    bool              // parameters go in a form body (POST) rather than the query string
	json    bool              // the route also reads JSON bodies
	last    bool              // destroys its fixture: driven after the others
}

// hostileFixtures are what the routes' valid requests refer to.
type hostileFixtures struct {
	user, victim        int64  // users of the first application; victim is destroyed
	phone, victimPhone  string // their numbers (as registered, country code 1)
	device, victimDev   *device
	victimDev2          *device      // removed through the device API
	uuid                string       // a pending approval request of user
	group               string       // a pending approval group asking user
	passwordless        string       // a passwordless request for user
	qr                  string       // a QR code file of user's authenticator
	consoleApp          int64        // an application the console changes (not the first: its key must last)
	consoleUser         int64        // a user of consoleApp, deleted through the console
	consoleDevice       int64        // a device of consoleUser
	consoleGroup        string       // a pending approval group of consoleApp asking consoleUser, closed through the console
	consoleVictimApp    int64        // deleted through the console
	consoleClient       string       // a step client of consoleApp (with an Auth0 domain), changed through the console
	consoleVictimClient string       // another, deleted through the console
	pushKey             string       // a valid p256dh
	stepClient          string       // the client_id of a hosted step client that allows login_hint
	twilioSID           string       // the first application's Verify API account SID…
	twilioToken         string       // …and auth token
	verifyService       string       // a Verify service (VA…) of the first application
	victimService       string       // another, deleted through the Verify API
	verifyWebhook       string       // a webhook of verifyService (YW…)
	consoleTwilioKey    string       // an API key of consoleApp, revoked through the console
	victimWebhook       string       // another, deleted through the Verify API
	verification        string       // a pending verification (VE…) of verifyService, to verifyTo
	entity              string       // an entity's Identity in verifyService…
	totpFactor          string       // …its verified totp factor (YF…)…
	challenge           string       // …and a pending challenge of it (YC…)
	pushChallenge       string       // a pending challenge of a push factor of entity
	victimFactor        string       // another factor of entity, deleted through the Verify API
	victimEntity        string       // another entity, deleted through the Verify API
	sentInSetup         int          // messages the setup sent (the verification's code)
	passkeyRegistration string       // a registration ceremony of victim…
	passkeyCreated      string       // …and its authenticator's answer (PublicKeyCredential JSON)
	passkeyLogin        string       // a sign-in ceremony of victim…
	passkeyAssertion    string       // …and its answer
	passkey, passkey2   string       // victim's passkeys, removed by the API's two remove routes…
	passkey3            string       // …and the console's
	noFollow            *http.Client // follows no redirect: the step's answers send browsers to relying parties
}

// newPushKey returns a valid Web Push p256dh key (an uncompressed P-256 point, base64url).
func newPushKey() string {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	der, _ := x509.MarshalPKIXPublicKey(&k.PublicKey)
	// The SPKI DER of a P-256 key ends with its 65-byte uncompressed point.
	return base64.RawURLEncoding.EncodeToString(der[len(der)-65:])
}

// hostileRoutes lists every route with valid requests over the fixtures.
func hostileRoutes(f *hostileFixtures) []hostileRoute {
	const p, o, d = "/protected/json", "/onetouch/json", "/device/v1"
	id := func(n int64) map[string]string { return map[string]string{"id": fmt.Sprint(n)} }
	send := map[string]string{"force": "true", "action": "login", "action_message": "Sign in", "locale": "en"}
	phone := map[string]string{"phone_number": f.phone, "country_code": "1"}
	with := func(base map[string]string, kv ...string) map[string]string {
		m := map[string]string{}
		for k, v := range base {
			m[k] = v
		}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	user := map[string]string{"user[email]": "hostile@example.com", "user[cellphone]": "2015550177", "user[country_code]": "1"}
	routes := []hostileRoute{
		{pattern: "POST " + p + "/users/new", method: "POST", path: p + "/users/new", auth: "key", params: user, form: true, json: true},
		{pattern: "GET " + p + "/users/{id}/status", method: "GET", path: p + "/users/{id}/status", wild: id(f.user), auth: "key"},
		{pattern: "GET " + p + "/users/{id}/phone_number", method: "GET", path: p + "/users/{id}/phone_number", wild: id(f.user), auth: "key"},
		{pattern: "GET " + p + "/users/{id}/secret/export", method: "GET", path: p + "/users/{id}/secret/export", wild: id(f.user), auth: "key"},
		{pattern: "POST " + p + "/users/{a}/{b}", method: "POST", path: p + "/users/{id}/update", wild: id(f.victim), auth: "key",
			params: map[string]string{"user[email]": "victim2@example.com"}, form: true, json: true},
		{pattern: "POST " + p + "/users/{a}/{b}", method: "POST", path: p + "/users/{id}/register_activity", wild: id(f.user), auth: "key",
			params: map[string]string{"type": "cookie_login", "user_ip": "192.0.2.7", "data[reason]": "test"}, form: true, json: true},
		{pattern: "POST " + p + "/users/{a}/{b}", method: "POST", path: p + "/users/{id}/secret", wild: id(f.victim), auth: "key",
			params: map[string]string{"label": "Hostile", "qr_size": "300"}, form: true, json: true},
		{pattern: "GET " + p + "/sms/{id}", method: "GET", path: p + "/sms/{id}", wild: id(f.user), auth: "key", params: send},
		{pattern: "GET " + p + "/call/{id}", method: "GET", path: p + "/call/{id}", wild: id(f.user), auth: "key", params: send},
		{pattern: "POST " + p + "/email/{id}", method: "POST", path: p + "/email/{id}", wild: id(f.user), auth: "key", params: send, form: true, json: true},
		{pattern: "GET " + p + "/verify/{token}/{id}", method: "GET", path: p + "/verify/{token}/{id}",
			wild: map[string]string{"token": "0000000", "id": fmt.Sprint(f.user)}, auth: "key", params: map[string]string{"action": "login", "force": "true"}},
		{pattern: "POST " + p + "/users/{id}/recovery_codes", method: "POST", path: p + "/users/{id}/recovery_codes", wild: id(f.user), auth: "key",
			params: map[string]string{"count": "10"}, form: true, json: true},
		{pattern: "GET " + p + "/users/{id}/recovery_codes", method: "GET", path: p + "/users/{id}/recovery_codes", wild: id(f.user), auth: "key"},
		{pattern: "GET " + p + "/app/details", method: "GET", path: p + "/app/details", auth: "key"},
		{pattern: "GET " + p + "/app/stats", method: "GET", path: p + "/app/stats", auth: "key"},
		{pattern: "POST " + p + "/sdk/registrations", method: "POST", path: p + "/sdk/registrations", auth: "key",
			params: map[string]string{"authy_id": fmt.Sprint(f.user)}, form: true, json: true},
		{pattern: "GET " + p + "/registrations/status", method: "GET", path: p + "/registrations/status", auth: "key",
			params: map[string]string{"custom_user_id": "customer-7"}},
		{pattern: "POST " + p + "/phones/verification/start", method: "POST", path: p + "/phones/verification/start", auth: "key",
			params: with(phone, "via", "sms", "code_length", "6", "locale", "en"), form: true, json: true},
		{pattern: "GET " + p + "/phones/verification/check", method: "GET", path: p + "/phones/verification/check", auth: "key",
			params: with(phone, "verification_code", "123456")},
		{pattern: "GET " + p + "/phones/verification/status", method: "GET", path: p + "/phones/verification/status", auth: "key",
			params: with(phone, "uuid", "00000000-0000-4000-8000-000000000000")},
		{pattern: "GET " + p + "/phones/info", method: "GET", path: p + "/phones/info", auth: "key", params: with(phone, "user_ip", "192.0.2.7")},
		{pattern: "POST " + o + "/users/{id}/approval_requests", method: "POST", path: o + "/users/{id}/approval_requests", wild: id(f.user), auth: "key",
			params: map[string]string{"message": "Sign in", "details[Place]": "Lisbon", "hidden_details[ip]": "192.0.2.7",
				"logos[][res]": "default", "logos[][url]": "https://example.com/logo.png", "seconds_to_expire": "600", "number_matching": "false"},
			form: true, json: true},
		{pattern: "GET " + o + "/approval_requests/{uuid}", method: "GET", path: o + "/approval_requests/{uuid}",
			wild: map[string]string{"uuid": f.uuid}, auth: "key"},
		{pattern: "POST " + o + "/approval_requests/{uuid}/close", method: "POST", path: o + "/approval_requests/{uuid}/close",
			wild: map[string]string{"uuid": f.uuid}, auth: "key", last: true},
		{pattern: "POST " + o + "/approval_groups", method: "POST", path: o + "/approval_groups", auth: "key",
			params: map[string]string{"message": "Pay 10,000 EUR", "details[Amount]": "10,000 EUR", "hidden_details[ref]": "T-1",
				"approvers[][authy_id]": strconv.FormatInt(f.user, 10), "approvers[][name]": "Ana", "quorum": "1",
				"requester_id": strconv.FormatInt(f.victim, 10), "requester_name": "Bob", "exclude_requester": "true",
				"seconds_to_expire": "600"},
			form: true, json: true},
		{pattern: "GET " + o + "/approval_groups/{uuid}", method: "GET", path: o + "/approval_groups/{uuid}",
			wild: map[string]string{"uuid": f.group}, auth: "key"},
		{pattern: "POST " + o + "/approval_groups/{uuid}/close", method: "POST", path: o + "/approval_groups/{uuid}/close",
			wild: map[string]string{"uuid": f.group}, auth: "key", last: true},
		{pattern: "POST " + o + "/passwordless_requests", method: "POST", path: o + "/passwordless_requests", auth: "key",
			params: map[string]string{"email": "user@example.com", "user_ip": "192.0.2.7", "message": "Sign in", "details[Place]": "Lisbon",
				"hidden_details[ip]": "192.0.2.7", "logos[][res]": "default", "logos[][url]": "https://example.com/logo.png", "seconds_to_expire": "120"},
			form: true, json: true},
		{pattern: "POST " + o + "/passwordless_requests", method: "POST", path: o + "/passwordless_requests", auth: "key",
			params: map[string]string{"authy_id": fmt.Sprint(f.user), "user_ip": "2001:db8::7"}, form: true, json: true},
		{pattern: "POST " + o + "/passwordless_requests", method: "POST", path: o + "/passwordless_requests", auth: "key",
			params: map[string]string{"custom_user_id": "customer-7", "user_ip": "192.0.2.8"}, form: true, json: true},
		{pattern: "GET " + o + "/passwordless_requests/{uuid}", method: "GET", path: o + "/passwordless_requests/{uuid}",
			wild: map[string]string{"uuid": f.passwordless}, auth: "key"},
		// Passkeys (Twofold's addition): the victim's, so that failed sign-ins count nothing of user's.
		{pattern: "POST " + p + "/users/{id}/passkeys/registrations", method: "POST", path: p + "/users/{id}/passkeys/registrations",
			wild: id(f.victim), auth: "key", params: map[string]string{"name": "Laptop"}, form: true, json: true},
		{pattern: "POST " + p + "/users/{id}/passkeys/{a}/{b}", method: "POST", path: p + "/users/{id}/passkeys/registrations/{ceremony}",
			wild: map[string]string{"id": fmt.Sprint(f.victim), "ceremony": f.passkeyRegistration}, auth: "key",
			params: map[string]string{"credential": f.passkeyCreated, "name": "Phone"}, form: true, json: true},
		{pattern: "POST " + p + "/users/{id}/passkeys/{a}/{b}", method: "POST", path: p + "/users/{id}/passkeys/{passkey}/delete",
			wild: map[string]string{"id": fmt.Sprint(f.victim), "passkey": f.passkey}, auth: "key", form: true, json: true, last: true},
		{pattern: "GET " + p + "/users/{id}/passkeys", method: "GET", path: p + "/users/{id}/passkeys", wild: id(f.victim), auth: "key"},
		{pattern: "DELETE " + p + "/users/{id}/passkeys/{passkey}", method: "DELETE", path: p + "/users/{id}/passkeys/{passkey}",
			wild: map[string]string{"id": fmt.Sprint(f.victim), "passkey": f.passkey2}, auth: "key", last: true},
		{pattern: "POST " + p + "/passkeys/authentications", method: "POST", path: p + "/passkeys/authentications", auth: "key",
			params: map[string]string{"user_id": fmt.Sprint(f.victim)}, form: true, json: true},
		{pattern: "POST " + p + "/passkeys/authentications/{ceremony}", method: "POST", path: p + "/passkeys/authentications/{ceremony}",
			wild: map[string]string{"ceremony": f.passkeyLogin}, auth: "key", params: map[string]string{"credential": f.passkeyAssertion},
			form: true, json: true},
		{pattern: "GET /qr/{file}", method: "GET", path: "/qr/{file}", wild: map[string]string{"file": f.qr}},

		{pattern: "POST " + d + "/registrations", method: "POST", path: d + "/registrations",
			params: map[string]string{"registration_token": "tfr_unknown", "public_key": "not a key", "name": "phone", "os_type": "web",
				"touch_points": "5"}, form: true, json: true},
		{pattern: "GET " + d + "/device", method: "GET", path: d + "/device", auth: "device"},
		{pattern: "GET " + d + "/approval_requests", method: "GET", path: d + "/approval_requests", auth: "device", params: map[string]string{"status": "pending"}},
		{pattern: "GET " + d + "/approval_requests/{uuid}", method: "GET", path: d + "/approval_requests/{uuid}", wild: map[string]string{"uuid": f.uuid}, auth: "device"},
		{pattern: "POST " + d + "/approval_requests/{uuid}", method: "POST", path: d + "/approval_requests/{uuid}", wild: map[string]string{"uuid": f.uuid}, auth: "device",
			params: map[string]string{"status": "approved", "timestamp": "1700000000", "signature": "c2lnbmF0dXJl", "number": "", "reason": "ok"}, form: true, json: true},
		{pattern: "GET " + d + "/events", method: "GET", path: d + "/events", auth: "device", params: map[string]string{"last_event_id": "1"}},
		{pattern: "GET " + d + "/push/vapid", method: "GET", path: d + "/push/vapid", auth: "device"},
		{pattern: "POST " + d + "/push", method: "POST", path: d + "/push", auth: "device",
			params: map[string]string{"kind": "webpush", "endpoint": "https://push.example.com/sub/1", "keys[p256dh]": f.pushKey, "keys[auth]": "AAAAAAAAAAAAAAAAAAAAAA"},
			form:   true, json: true},
		{pattern: "DELETE " + d + "/push", method: "DELETE", path: d + "/push", auth: "device", params: map[string]string{"endpoint": "https://push.example.com/sub/9"}},

		{pattern: "GET /metrics", method: "GET", path: "/metrics"},
		{pattern: "GET /healthz", method: "GET", path: "/healthz"},
		{pattern: "GET /{$}", method: "GET", path: "/"},
		{pattern: "GET /authenticator/", method: "GET", path: "/authenticator/{file}", wild: map[string]string{"file": "index.html"}},
		{pattern: "POST " + twilioStatusPath, method: "POST", path: twilioStatusPath, auth: "twilio", form: true,
			params: map[string]string{"MessageSid": "SM" + strings.Repeat("0", 32), "MessageStatus": "delivered", "ErrorCode": "30003"}},

		// Routes that destroy what they are given, driven after everything else.
		{pattern: "DELETE " + p + "/sdk/devices/{id}", method: "DELETE", path: p + "/sdk/devices/{id}", wild: id(f.victimDev.id), auth: "key", last: true},
		{pattern: "DELETE " + d + "/device", method: "DELETE", path: d + "/device", auth: "device2", last: true},
		{pattern: "POST " + p + "/users/{a}/{b}", method: "POST", path: p + "/users/{id}/remove", wild: id(f.victim), auth: "key",
			params: map[string]string{"user_ip": "192.0.2.7"}, form: true, json: true, last: true},
		{pattern: "POST " + p + "/users/{a}/{b}", method: "POST", path: p + "/users/delete/{id}", wild: id(f.victim), auth: "key", form: true, last: true},
	}
	routes = append(routes, stepRoutes(f)...)
	routes = append(routes, verifyRoutes(f)...)
	return append(routes, consoleRoutes(f)...)
}

// stepRoutes lists the hosted step's routes: its OpenID provider's, and its page's, driven
// without a session (the page that says to start again; internal/web/step's tests drive
// sessions through every form).
func stepRoutes(f *hostileFixtures) []hostileRoute {
	authorize := map[string]string{"client_id": f.stepClient, "redirect_uri": "https://rp.example.com/callback", "response_type": "code",
		"scope": "openid", "state": "s", "nonce": "n", "login_hint": "user@example.com"}
	token := map[string]string{"grant_type": "authorization_code", "code": "unknown", "redirect_uri": "https://rp.example.com/callback",
		"client_id": f.stepClient, "client_secret": "not the secret", "code_verifier": strings.Repeat("v", 43)}
	handle := map[string]string{"handle": "TmV2ZXJBSGFuZGxlT2ZBU3RlcEF0QWxsX19fX19fX18"}
	const s = "/step/{handle}"
	page := func(method, action string, params map[string]string) hostileRoute {
		return hostileRoute{pattern: method + " " + s + action, method: method, path: s + action, wild: handle, params: params, form: method == "POST",
			auth: "nofollow"}
	}
	return []hostileRoute{
		{pattern: "GET /.well-known/openid-configuration", method: "GET", path: "/.well-known/openid-configuration"},
		{pattern: "GET /oauth2/jwks", method: "GET", path: "/oauth2/jwks"},
		{pattern: "GET /oauth2/authorize", method: "GET", path: "/oauth2/authorize", params: authorize, auth: "nofollow"},
		{pattern: "POST /oauth2/authorize", method: "POST", path: "/oauth2/authorize", params: authorize, form: true, auth: "nofollow"},
		{pattern: "POST /oauth2/token", method: "POST", path: "/oauth2/token", params: token, form: true},
		{pattern: "GET /auth0/{client}", method: "GET", path: "/auth0/{client}", wild: map[string]string{"client": f.stepClient},
			params: map[string]string{"session_token": "eyJhbGciOiJIUzI1NiJ9.e30.sig", "state": "s"}, auth: "nofollow"},
		{pattern: "GET /step/static/step.css", method: "GET", path: "/step/static/step.css"},
		{pattern: "GET /step/static/step.js", method: "GET", path: "/step/static/step.js"},
		page("GET", "", map[string]string{"via": "totp"}),
		page("GET", "/status", nil),
		page("POST", "/send", map[string]string{"csrf": "token", "factor": "sms"}),
		page("POST", "/code", map[string]string{"csrf": "token", "via": "totp", "code": "123456"}),
		page("POST", "/continue", map[string]string{"csrf": "token"}),
		page("POST", "/cancel", map[string]string{"csrf": "token"}),
		page("POST", "/signin", map[string]string{"csrf": "token", "username": "user@example.com"}),
		page("POST", "/passkey/options", map[string]string{"csrf": "token"}),
		page("POST", "/passkey", map[string]string{"csrf": "token", "ceremony": "0123456789abcdef0123456789abcdef", "credential": `{"id":"x","type":"public-key"}`}),
	}
}

// verifyTo is the number the Verify API's routes send codes to.
const verifyTo = "+12015550188"

// verifyRoutes lists the Verify API's routes (internal/verifyapi), with its credentials. Its
// parameters are read from the query string and form bodies only.
func verifyRoutes(f *hostileFixtures) []hostileRoute {
	const v = "/v2/Services"
	svc := map[string]string{"service": f.verifyService}
	ver := map[string]string{"service": f.verifyService, "sid": f.verification}
	const e = v + "/{service}/Entities"
	ent := map[string]string{"service": f.verifyService, "identity": f.entity}
	factor := map[string]string{"service": f.verifyService, "identity": f.entity, "sid": f.totpFactor}
	challenge := map[string]string{"service": f.verifyService, "identity": f.entity, "sid": f.challenge}
	hook := map[string]string{"service": f.verifyService, "sid": f.verifyWebhook}
	route := func(method, path string, wild, params map[string]string) hostileRoute {
		return hostileRoute{pattern: method + " " + path, method: method, path: path, wild: wild, auth: "basic", params: params,
			form: method == "POST"}
	}
	return []hostileRoute{
		route("POST", v, nil, map[string]string{"FriendlyName": "Hostile", "CodeLength": "6", "Totp.Issuer": "Acme",
			"Totp.TimeStep": "30", "Push.IncludeDate": "false", "LookupEnabled": "true"}),
		route("GET", v, nil, map[string]string{"PageSize": "2", "Page": "0"}),
		route("GET", v+"/{service}", svc, nil),
		route("POST", v+"/{service}", svc, map[string]string{"FriendlyName": "Renamed", "CodeLength": "7", "CustomCodeEnabled": "false"}),
		route("POST", v+"/{service}/Verifications", svc, map[string]string{"To": verifyTo, "Channel": "sms", "Locale": "en",
			"CustomFriendlyName": "Shop", "RateLimits": `{"ip":"192.0.2.7"}`}),
		route("GET", v+"/{service}/Verifications/{sid}", ver, nil),
		route("POST", v+"/{service}/VerificationCheck", svc, map[string]string{"To": verifyTo, "Code": "123456"}),
		{pattern: "/v2/", method: "GET", path: "/v2/{rest}", wild: map[string]string{"rest": "Nothing"}, auth: "basic"},
		route("POST", e, svc, map[string]string{"Identity": "hostile-entity-1"}),
		route("GET", e, svc, map[string]string{"PageSize": "2", "Page": "0"}),
		route("GET", e+"/{identity}", ent, nil),
		route("POST", e+"/{identity}/Factors", ent, map[string]string{"FriendlyName": "Phone", "FactorType": "totp",
			"Config.TimeStep": "30", "Config.CodeLength": "6", "Config.Alg": "sha1", "Metadata": `{"os":"Android"}`}),
		route("GET", e+"/{identity}/Factors", ent, map[string]string{"PageSize": "2"}),
		route("GET", e+"/{identity}/Factors/{sid}", factor, nil),
		route("POST", e+"/{identity}/Factors/{sid}", factor, map[string]string{"FriendlyName": "Renamed", "AuthPayload": "123456"}),
		route("POST", e+"/{identity}/Challenges", ent, map[string]string{"FactorSid": f.totpFactor, "Details.Message": "Sign in?",
			"Details.Fields": `{"label":"IP","value":"192.0.2.1"}`, "HiddenDetails": `{"ip":"192.0.2.1"}`, "AuthPayload": "123456"}),
		route("GET", e+"/{identity}/Challenges", ent, map[string]string{"FactorSid": f.totpFactor, "Status": "pending", "Order": "desc",
			"PageSize": "2"}),
		route("GET", e+"/{identity}/Challenges/{sid}", challenge, nil),
		route("POST", e+"/{identity}/Challenges/{sid}", challenge, map[string]string{"AuthPayload": "123456"}),
		route("POST", e+"/{identity}/Challenges/{sid}/Notifications", map[string]string{"service": f.verifyService, "identity": f.entity,
			"sid": f.pushChallenge}, map[string]string{"Ttl": "60"}),
		withLast(route("DELETE", e+"/{identity}/Factors/{sid}", map[string]string{"service": f.verifyService, "identity": f.entity,
			"sid": f.victimFactor}, nil)),
		withLast(route("DELETE", e+"/{identity}", map[string]string{"service": f.verifyService, "identity": f.victimEntity}, nil)),
		route("POST", v+"/{service}/Webhooks", svc, map[string]string{"FriendlyName": "Hostile", "EventTypes": "factor.created",
			"WebhookUrl": "https://hooks.example.com/verify", "Status": "enabled", "Version": "v2"}),
		route("GET", v+"/{service}/Webhooks", svc, map[string]string{"PageSize": "2", "Page": "0"}),
		route("GET", v+"/{service}/Webhooks/{sid}", hook, nil),
		route("POST", v+"/{service}/Webhooks/{sid}", hook, map[string]string{"FriendlyName": "Renamed", "EventTypes": "*",
			"WebhookUrl": "https://hooks.example.com/other", "Status": "disabled", "Version": "v1"}),
		withLast(route("DELETE", v+"/{service}/Webhooks/{sid}", map[string]string{"service": f.verifyService, "sid": f.victimWebhook}, nil)),
		withLast(route("POST", v+"/{service}/Verifications/{sid}", ver, map[string]string{"Status": "canceled"})),
		withLast(route("DELETE", v+"/{service}", map[string]string{"service": f.victimService}, nil)),
	}
}

// consoleRoutes lists the console's routes. Its forms are read as forms only.
func consoleRoutes(f *hostileFixtures) []hostileRoute {
	app := map[string]string{"app": fmt.Sprint(f.consoleApp)}
	appUser := map[string]string{"app": fmt.Sprint(f.consoleApp), "user": fmt.Sprint(f.consoleUser)}
	appClient := map[string]string{"app": fmt.Sprint(f.consoleApp), "client": f.consoleClient}
	since := map[string]string{"since": "24h", "app": fmt.Sprint(f.consoleApp), "status": "pending"}
	get := func(pattern, path string, wild, params map[string]string) hostileRoute {
		return hostileRoute{pattern: pattern, method: "GET", path: path, wild: wild, auth: "console", params: params}
	}
	post := func(pattern, path string, wild, params map[string]string) hostileRoute {
		return hostileRoute{pattern: pattern, method: "POST", path: path, wild: wild, auth: "console", params: params, form: true}
	}
	const c = "/console"
	return []hostileRoute{
		get("GET "+c+"/static/{file}", c+"/static/{file}", map[string]string{"file": "console.css"}, nil),
		{pattern: "GET " + c + "/signin", method: "GET", path: c + "/signin"},
		{pattern: "GET " + c + "/enrol/{token}", method: "GET", path: c + "/enrol/{token}", wild: map[string]string{"token": strings.Repeat("ab", 24)}},
		get("GET "+c+"/signin/factor", c+"/signin/factor", nil, nil),
		post("POST "+c+"/signin/code", c+"/signin/code", nil, map[string]string{"code": "123456"}),
		post("POST "+c+"/signin/push", c+"/signin/push", nil, nil),
		get("GET "+c+"/signin/push", c+"/signin/push", nil, nil),
		get("GET "+c+"/signin/push/status", c+"/signin/push/status", nil, map[string]string{"uuid": f.uuid}),
		post("POST "+c+"/signin/push/complete", c+"/signin/push/complete", nil, nil),
		get("GET "+c+"/{$}", c+"/", nil, nil),
		get("GET "+c+"/apps", c+"/apps", nil, nil),
		get("GET "+c+"/apps/new", c+"/apps/new", nil, nil),
		post("POST "+c+"/apps/new", c+"/apps/new", nil, map[string]string{"name": "Hostile app"}),
		get("GET "+c+"/apps/{app}", c+"/apps/{app}", app, nil),
		get("GET "+c+"/apps/{app}/settings", c+"/apps/{app}/settings", app, nil),
		post("POST "+c+"/apps/{app}/settings", c+"/apps/{app}/settings", app, consoleSettings),
		post("POST "+c+"/apps/{app}/callbacks/enable", c+"/apps/{app}/callbacks/enable", app, nil),
		post("POST "+c+"/apps/{app}/callbacks/test", c+"/apps/{app}/callbacks/test", app, nil),
		get("GET "+c+"/apps/{app}/rotate", c+"/apps/{app}/rotate", app, nil),
		post("POST "+c+"/apps/{app}/rotate", c+"/apps/{app}/rotate", app, nil),
		get("GET "+c+"/apps/{app}/delete", c+"/apps/{app}/delete", app, nil),
		post("POST "+c+"/apps/{app}/twilio/create", c+"/apps/{app}/twilio/create", app, nil),
		post("POST "+c+"/apps/{app}/twilio/rotate", c+"/apps/{app}/twilio/rotate", app, nil),
		post("POST "+c+"/apps/{app}/twilio/keys", c+"/apps/{app}/twilio/keys", app, map[string]string{"name": "Hostile key"}),
		withLast(post("POST "+c+"/apps/{app}/twilio/keys/{sid}/revoke", c+"/apps/{app}/twilio/keys/{sid}/revoke",
			with1(app, "sid", f.consoleTwilioKey), nil)),
		get("GET "+c+"/apps/{app}/clients/new", c+"/apps/{app}/clients/new", app, nil),
		post("POST "+c+"/apps/{app}/clients/new", c+"/apps/{app}/clients/new", app, consoleClientForm),
		get("GET "+c+"/apps/{app}/clients/{client}", c+"/apps/{app}/clients/{client}", appClient, nil),
		post("POST "+c+"/apps/{app}/clients/{client}", c+"/apps/{app}/clients/{client}", appClient, consoleClientForm),
		get("GET "+c+"/apps/{app}/clients/{client}/rotate/{kind}", c+"/apps/{app}/clients/{client}/rotate/{kind}", with1(appClient, "kind", "auth0-secret"), nil),
		post("POST "+c+"/apps/{app}/clients/{client}/rotate/{kind}", c+"/apps/{app}/clients/{client}/rotate/{kind}", with1(appClient, "kind", "secret"), nil),
		get("GET "+c+"/apps/{app}/clients/{client}/delete", c+"/apps/{app}/clients/{client}/delete", appClient, nil),
		withLast(post("POST "+c+"/apps/{app}/clients/{client}/delete", c+"/apps/{app}/clients/{client}/delete",
			with1(appClient, "client", f.consoleVictimClient), nil)),
		get("GET "+c+"/apps/{app}/users", c+"/apps/{app}/users", app, map[string]string{"q": "hostile"}),
		get("GET "+c+"/apps/{app}/users/{user}", c+"/apps/{app}/users/{user}", appUser, nil),
		get("GET "+c+"/apps/{app}/users/{user}/delete", c+"/apps/{app}/users/{user}/delete", appUser, nil),
		post("POST "+c+"/apps/{app}/users/{user}/recovery_codes/revoke", c+"/apps/{app}/users/{user}/recovery_codes/revoke", appUser, nil),
		get("GET "+c+"/apps/{app}/groups", c+"/apps/{app}/groups", app, map[string]string{"before": "1000"}),
		get("GET "+c+"/apps/{app}/groups/{group}", c+"/apps/{app}/groups/{group}", with1(app, "group", f.consoleGroup), nil),
		withLast(post("POST "+c+"/apps/{app}/groups/{group}/close", c+"/apps/{app}/groups/{group}/close", with1(app, "group", f.consoleGroup), nil)),
		get("GET "+c+"/approvals", c+"/approvals", nil, since),
		get("GET "+c+"/outbox", c+"/outbox", nil, with1(since, "channel", "sms")),
		get("GET "+c+"/callbacks", c+"/callbacks", nil, since),
		get("GET "+c+"/audit", c+"/audit", nil, with1(since, "action", "verification.ok")),
		get("GET "+c+"/activity", c+"/activity", nil, map[string]string{"app": fmt.Sprint(f.consoleApp)}),
		get("/console/", c+"/{page}", map[string]string{"page": "nothing-here"}, nil),

		withLast(post("POST "+c+"/apps/{app}/users/{user}/devices/{device}/delete", c+"/apps/{app}/users/{user}/devices/{device}/delete",
			map[string]string{"app": fmt.Sprint(f.consoleApp), "user": fmt.Sprint(f.consoleUser), "device": fmt.Sprint(f.consoleDevice)}, nil)),
		withLast(post("POST "+c+"/apps/{app}/users/{user}/passkeys/{passkey}/delete", c+"/apps/{app}/users/{user}/passkeys/{passkey}/delete",
			map[string]string{"app": "1", "user": fmt.Sprint(f.victim), "passkey": f.passkey3}, nil)),
		withLast(post("POST "+c+"/apps/{app}/users/{user}/delete", c+"/apps/{app}/users/{user}/delete", appUser, nil)),
		withLast(post("POST "+c+"/apps/{app}/delete", c+"/apps/{app}/delete", map[string]string{"app": fmt.Sprint(f.consoleVictimApp)},
			map[string]string{"confirm_name": "Victim app"})),
		// Signing in and out last of all: a success ends the session the other routes use.
		withLast(hostileRoute{pattern: "POST " + c + "/signin", method: "POST", path: c + "/signin", auth: "signin", form: true,
			params: map[string]string{"email": "nobody@example.com", "password": "not the password at all"}}),
		withLast(post("POST "+c+"/signout", c+"/signout", nil, nil)),
	}
}

// consoleSettings is a complete, valid settings form.
var consoleSettings = map[string]string{
	"name": "Console target", "allowed_countries": "", "callback_url": "", "callback_method": "POST", "contact_email": "ops@example.com",
	"sms_enabled": "on", "call_enabled": "on", "token_length": "7", "totp_digits": "6", "totp_period": "30", "totp_window": "1",
	"device_totp_period": "10", "limit_failures": "", "limit_sends": "",
}

// consoleClientForm is a complete, valid step client form.
var consoleClientForm = map[string]string{
	"name": "Hostile client", "redirect_uris": "https://idp.example.com/cb", "user_match": "email", "factors": "totp",
	"hint_jwks_url": "", "hint_issuer": "", "client_jwks_url": "", "auth0_domain": "acme.us.auth0.com", "allow_login_hint": "",
}

// with1 returns a copy of m with k set to v.
func with1(m map[string]string, k, v string) map[string]string {
	out := map[string]string{}
	for a, b := range m {
		out[a] = b
	}
	out[k] = v
	return out
}

func withLast(r hostileRoute) hostileRoute { r.last = true; return r }

// fill replaces each {name} of path with its value in wild, escaped for a path; hostile, when
// not empty, is the already escaped value put in place of the wildcard named target.
func fill(path string, wild map[string]string, target, hostile string) string {
	for name, v := range wild {
		if name == target {
			path = strings.ReplaceAll(path, "{"+name+"}", hostile)
			continue
		}
		path = strings.ReplaceAll(path, "{"+name+"}", url.PathEscape(v))
	}
	return path
}
