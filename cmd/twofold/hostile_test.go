package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"maps"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/twofold-auth/twofold/internal/deliver/twilio"
	"github.com/twofold-auth/twofold/internal/hostedstep"
	"github.com/twofold-auth/twofold/internal/otp"
	"github.com/twofold-auth/twofold/internal/passkeys/passkeytest"
	"github.com/twofold-auth/twofold/internal/store/storetest"
	"github.com/twofold-auth/twofold/internal/twofold"
)

// The hostile-input suite (`make hostile`; also part of `make test`). A real server, on SQLite
// and on PostgreSQL, has every route it registers driven with the families of input an attack
// run used: NUL bytes, invalid UTF-8, huge values, control and bidi characters, SQL, wrong JSON
// types, deep brackets, 100,000 parameters, huge and broken bodies, in the query string, form
// bodies and JSON bodies, in parameters and in path segments. It asserts that no answer is a
// 5xx, that every refusal has its surface's shape (the Authy envelope, repeating no more than a
// short prefix of what was sent; the console's pages), that refused requests spend nothing (no
// message, no send quota, no failure count), and that both engines answer every request alike.

func TestHostileInput(t *testing.T) {
	answers := map[string]map[string]int{}
	t.Run("sqlite", func(t *testing.T) { answers["sqlite"] = hostileRun(t) })
	t.Run("postgres", func(t *testing.T) { answers["postgres"] = hostileRun(t, "--database", storetest.Schema(t)) })
	lite, pg := answers["sqlite"], answers["postgres"]
	if lite == nil || pg == nil {
		return // one engine skipped or failed: its own subtest says why
	}
	differ := 0
	for _, name := range mapKeys(lite) {
		if lite[name] != pg[name] {
			if differ++; differ <= 20 {
				t.Errorf("%s: SQLite answered %d, PostgreSQL %d", name, lite[name], pg[name])
			}
		}
	}
	if differ > 0 {
		t.Errorf("%d requests answered differently on the two engines", differ)
	}
}

// mapKeys returns m's keys, sorted.
func mapKeys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }

// hostileRun drives one server (args choose the engine) and returns each case's status.
func hostileRun(t *testing.T, args ...string) map[string]int {
	const email, password, twilioToken = "ops@example.com", "correct horse battery staple", "twilio-auth-token-for-tests"
	const publicURL = "http://twofold.test"
	registered := map[string]bool{}
	twilioEnv := map[string]string{"TWOFOLD_TWILIO_ACCOUNT_SID": "AC" + strings.Repeat("0", 32), "TWOFOLD_TWILIO_AUTH_TOKEN": twilioToken,
		"TWOFOLD_TWILIO_FROM": "+15005550006", "TWOFOLD_TWILIO_BASE_URL": "http://127.0.0.1:9"}
	const sendLimit, failureLimit = 200, 200
	s := startServerEnv(t, "", func(e *Env) {
		e.OnRoute = func(p string) { registered[p] = true }
		e.Getenv = func(k string) string { return twilioEnv[k] }
	}, append([]string{"--rate-limit", "off", "--public-url", publicURL, "--sms-provider", "outbox", "--call-provider", "outbox",
		"--limit-sends", fmt.Sprintf("%d/1h", sendLimit), "--limit-failures", fmt.Sprintf("%d/1h", failureLimit),
		"--limit-number-sends", "100000/1h", "--limit-country-sends", "100000/1h", "--limit-app-sends", "100000/1h",
		"--max-pending-approvals", "100000", "--device-rate-limit", "off", "--device-user-rate-limit", "off",
		"--address-rate-limit", "off", "--signin-limit-address", "off", "--signin-limit-account", "off",
		"--passwordless-limit-username", "off", "--passwordless-limit-address", "off", "--passwordless-limit-user", "off"}, args...)...)

	op := createOperator(t, s.dataDir, email, password, args...)
	f := hostileSetup(t, s)
	con := consoleSignIn(t, s, email, password, op.TOTP)
	routes := hostileRoutes(f)
	covered := map[string]bool{}
	for _, r := range routes {
		covered[r.pattern] = true
	}
	for p := range registered {
		if !covered[p] {
			t.Errorf("route %q is not driven by the hostile-input suite: add it to hostileRoutes", p)
		}
	}
	for p := range covered {
		if !registered[p] {
			t.Errorf("hostileRoutes names %q, which the server does not register", p)
		}
	}

	slices.SortStableFunc(routes, func(a, b hostileRoute) int { return boolCmp(a.last, b.last) })
	statuses := map[string]int{}
	var sent, failures int // 2xx sends to f.user; wrong tokens judged for f.user
	var problems []string
	for i := range routes {
		r := &routes[i]
		for _, c := range hostileCases(r) {
			a := hostileDo(t, s, con, f, c, twilioToken, publicURL)
			statuses[c.name] = a.status
			if p := checkAnswer(c, a); p != "" {
				problems = append(problems, c.name+": "+p)
			}
			if a.status/100 == 2 && isSendTo(c, f.user) && !bytes.Contains(a.body, []byte(`"ignored":true`)) {
				sent++
			}
			// Only well-formed tokens are judged, and counted (the valid request's 0000000).
			if strings.Contains(r.path, "/verify/") && !strings.Contains(c.name, "path token=") && a.status == 401 &&
				bytes.Contains(a.body, []byte(`"error_code":"60020"`)) {
				failures++
			}
		}
	}
	for i, p := range problems {
		if i == 30 {
			t.Errorf("... and %d more", len(problems)-30)
			break
		}
		t.Error(p)
	}
	t.Logf("%d hostile requests (statuses %s), %d codes sent to the test user, %d wrong tokens judged",
		len(statuses), sortedStatuses(statuses), sent, failures)

	// Nothing refused was spent: the outbox holds just the messages of accepted sends...
	var msgs []json.RawMessage
	s.cliJSON(&msgs, "outbox", "--limit", "100000")
	if accepted := countAccepted(statuses, routes) + f.sentInSetup; len(msgs) != accepted {
		t.Errorf("the outbox holds %d messages; %d sends were accepted", len(msgs), accepted)
	}
	// ...the user's send quota lost one per accepted send and no more...
	for i := sent; i < sendLimit; i++ {
		if r := s.get(fmt.Sprintf("/protected/json/sms/%d?force=true", f.user)); r.status != 200 {
			t.Fatalf("send %d of the quota of %d (%d spent by the suite): %d %s", i+1, sendLimit, sent, r.status, r.raw)
		}
	}
	expectError(t, s.get(fmt.Sprintf("/protected/json/sms/%d?force=true", f.user)), 429, "60003")
	// ...and only the wrong tokens that were judged count against the failure limit.
	for i := failures; i < failureLimit; i++ {
		if r := s.get(fmt.Sprintf("/protected/json/verify/0000000/%d", f.user)); r.status != 401 {
			t.Fatalf("wrong token %d of the limit of %d (%d judged in the suite): %d %s", i+1, failureLimit, failures, r.status, r.raw)
		}
	}
	expectError(t, s.get(fmt.Sprintf("/protected/json/verify/0000000/%d", f.user)), 429, "60003")
	return statuses
}

func boolCmp(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return 1
	}
	return -1
}

// isSendTo reports whether c sends a code to user id (sms, call, email).
func isSendTo(c hostileCase, id int64) bool {
	for _, ch := range []string{"/sms/", "/call/", "/email/"} {
		if strings.HasSuffix(c.path, ch+strconv.FormatInt(id, 10)) {
			return true
		}
	}
	return false
}

// countAccepted counts the accepted requests that send a message.
func countAccepted(statuses map[string]int, routes []hostileRoute) int {
	n := 0
	for name, st := range statuses {
		if st/100 != 2 {
			continue
		}
		for _, r := range routes {
			if strings.HasPrefix(name, routeKey(&r)+" ") && (strings.Contains(r.path, "/sms/") || strings.Contains(r.path, "/call/") ||
				strings.Contains(r.path, "/email/") || strings.HasSuffix(r.path, "/verification/start") ||
				r.method == "POST" && strings.HasSuffix(r.path, "/Verifications")) {
				n++
				break
			}
		}
	}
	return n
}

// hostileSetup makes what the routes refer to. It sends no message.
func hostileSetup(t *testing.T, s *server) *hostileFixtures {
	f := &hostileFixtures{phone: "2015550123", victimPhone: "2015550124", pushKey: newPushKey()}
	f.user = s.register(s.key, "user@example.com", f.phone)
	f.victim = s.register(s.key, "victim@example.com", f.victimPhone)
	f.device = s.newDevice(s.key, f.user)
	f.victimDev = s.newDevice(s.key, f.victim)
	f.victimDev2 = s.newDevice(s.key, f.victim)
	r := s.post(fmt.Sprintf("/onetouch/json/users/%d/approval_requests", f.user), url.Values{"message": {"Fixture"}})
	if r.status != 200 {
		t.Fatalf("approval request: %s", r.raw)
	}
	f.uuid = r.body["approval_request"].(map[string]any)["uuid"].(string)
	r = s.post("/onetouch/json/approval_groups", url.Values{"message": {"Fixture"}, "approvers[]": {strconv.FormatInt(f.user, 10)}})
	if r.status != 200 {
		t.Fatalf("approval group: %s", r.raw)
	}
	f.group = r.body["approval_group"].(map[string]any)["uuid"].(string)
	r = s.post("/onetouch/json/passwordless_requests", url.Values{"email": {"user@example.com"}, "user_ip": {"192.0.2.7"}})
	if r.status != 200 {
		t.Fatalf("passwordless request: %s", r.raw)
	}
	f.passwordless = r.body["passwordless_request"].(map[string]any)["uuid"].(string)
	r = s.post(fmt.Sprintf("/protected/json/users/%d/secret", f.user), nil)
	if r.status != 200 {
		t.Fatalf("secret: %s", r.raw)
	}
	qr, err := url.Parse(r.body["qr_code"].(string))
	if err != nil {
		t.Fatal(err)
	}
	f.qr = strings.TrimPrefix(qr.Path, "/qr/")
	// The migration exports answer, so that their handlers are driven past the setting.
	if _, err := s.cli("app", "update", "1", "--migration-tools"); err != nil {
		t.Fatal(err)
	}

	var app struct {
		ID     int64  `json:"app_id"`
		APIKey string `json:"api_key"`
	}
	s.cliJSON(&app, "app", "create", "--name", "Console target")
	f.consoleApp = app.ID
	f.consoleUser = s.register(app.APIKey, "console-user@example.com", "2015550125")
	f.consoleDevice = s.newDevice(app.APIKey, f.consoleUser).id
	r = s.do("POST", "/onetouch/json/approval_groups", app.APIKey, url.Values{"message": {"Console fixture"},
		"approvers[]": {strconv.FormatInt(f.consoleUser, 10)}})
	if r.status != 200 {
		t.Fatalf("console's approval group: %s", r.raw)
	}
	f.consoleGroup = r.body["approval_group"].(map[string]any)["uuid"].(string)
	s.cliJSON(&app, "app", "create", "--name", "Victim app")
	f.consoleVictimApp = app.ID
	// A hosted step client that may name users by an unsigned login_hint, so that a valid
	// authorization request begins a step.
	name, uris, match, hint := "Hostile RP", []string{"https://rp.example.com/callback"}, twofold.MatchEmail, true
	f.stepClient = stepClientSpec(t, s, hostedstep.Spec{Name: &name, RedirectURIs: &uris, UserMatch: &match, AllowLoginHint: &hint}).Client.ClientID
	f.noFollow = &http.Client{Transport: &http.Transport{}, Timeout: time.Minute,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	var cl struct {
		ClientID string `json:"client_id"`
	}
	for _, id := range []*string{&f.consoleClient, &f.consoleVictimClient} {
		s.cliJSON(&cl, "oidc-client", "create", "--app", fmt.Sprint(f.consoleApp), "--name", "Console client",
			"--redirect-uri", "https://idp.example.com/cb", "--auth0-domain", "acme.us.auth0.com", "--json")
		*id = cl.ClientID
	}
	hostileVerifySetup(t, s, f)
	hostilePasskeySetup(t, s, f)
	return f
}

// hostilePasskeySetup turns passkeys on for the first application (rp id localhost) and gives
// the victim two passkeys, a registration ceremony and a sign-in ceremony, each with its
// authenticator's valid answer.
func hostilePasskeySetup(t *testing.T, s *server, f *hostileFixtures) {
	if _, err := s.cli("app", "update", "1", "--passkey-rp-id", "localhost", "--passkey-usernameless"); err != nil {
		t.Fatal(err)
	}
	begin := func(path string, form url.Values) (string, []byte) {
		r := s.post(path, form)
		if r.status != 200 {
			t.Fatalf("%s: %s", path, r.raw)
		}
		opts, _ := json.Marshal(r.body["options"])
		return r.body["ceremony"].(string), opts
	}
	users := fmt.Sprintf("/protected/json/users/%d/passkeys/registrations", f.victim)
	auth := passkeytest.New("https://localhost")
	for _, id := range []*string{&f.passkey, &f.passkey2, &f.passkey3} {
		auth = passkeytest.New("https://localhost")
		ceremony, opts := begin(users, nil)
		cred, err := auth.Register(opts)
		if err != nil {
			t.Fatal(err)
		}
		r := s.post(users+"/"+ceremony, url.Values{"credential": {string(cred)}})
		if r.status != 200 {
			t.Fatalf("passkey: %s", r.raw)
		}
		*id = r.body["passkey"].(map[string]any)["id"].(string)
	}
	ceremony, opts := begin(users, nil)
	cred, err := passkeytest.New("https://localhost").Register(opts)
	if err != nil {
		t.Fatal(err)
	}
	f.passkeyRegistration, f.passkeyCreated = ceremony, string(cred)
	ceremony, opts = begin("/protected/json/passkeys/authentications", url.Values{"user_id": {fmt.Sprint(f.victim)}})
	assertion, err := auth.Assert(opts)
	if err != nil {
		t.Fatal(err)
	}
	f.passkeyLogin, f.passkeyAssertion = ceremony, string(assertion)
}

// hostileVerifySetup gives the first application Verify API credentials, two services, two
// webhooks and a pending verification (whose code is the one message the setup sends).
func hostileVerifySetup(t *testing.T, s *server, f *hostileFixtures) {
	var acct twilioJSON
	s.cliJSON(&acct, "app", "twilio-credentials", "create", "1")
	f.twilioSID, f.twilioToken = acct.AccountSID, acct.AuthToken
	s.cliJSON(&acct, "app", "twilio-credentials", "create", fmt.Sprint(f.consoleApp))
	var key twilioKeyJSON
	s.cliJSON(&key, "app", "twilio-credentials", "create-key", fmt.Sprint(f.consoleApp), "--name", "Victim")
	f.consoleTwilioKey = key.SID
	for _, sid := range []*string{&f.verifyService, &f.victimService} {
		status, body := s.twilioCall("POST", "/v2/Services", f.twilioSID, f.twilioToken, url.Values{"FriendlyName": {"Fixture"}})
		if status != 201 {
			t.Fatalf("Verify service: %d %v", status, body)
		}
		*sid = body["sid"].(string)
	}
	for _, sid := range []*string{&f.verifyWebhook, &f.victimWebhook} {
		status, body := s.twilioCall("POST", "/v2/Services/"+f.verifyService+"/Webhooks", f.twilioSID, f.twilioToken,
			url.Values{"FriendlyName": {"Fixture"}, "EventTypes": {"*"}, "WebhookUrl": {"https://hooks.example.com/fixture"}})
		if status != 201 {
			t.Fatalf("Verify webhook: %d %v", status, body)
		}
		*sid = body["sid"].(string)
	}
	status, body := s.twilioCall("POST", "/v2/Services/"+f.verifyService+"/Verifications", f.twilioSID, f.twilioToken,
		url.Values{"To": {verifyTo}, "Channel": {"sms"}})
	if status != 201 {
		t.Fatalf("verification: %d %v", status, body)
	}
	f.verification, f.sentInSetup = body["sid"].(string), 1

	// An entity with a verified totp factor (its first code is the previous step's, so the
	// routes' codes never match by chance of a spent step), a pending challenge, and victims.
	f.entity, f.victimEntity = "hostile-entity-0", "hostile-victim-0"
	call := func(method, path string, form url.Values) map[string]any {
		status, body := s.twilioCall(method, "/v2/Services/"+f.verifyService+"/Entities/"+path, f.twilioSID, f.twilioToken, form)
		if status/100 != 2 {
			t.Fatalf("%s %s: %d %v", method, path, status, body)
		}
		return body
	}
	newFactor := func(identity string) (string, []byte) {
		body := call("POST", identity+"/Factors", url.Values{"FriendlyName": {"Phone"}, "FactorType": {"totp"}})
		secret, err := otp.DecodeSecret(body["binding"].(map[string]any)["secret"].(string))
		if err != nil {
			t.Fatal(err)
		}
		return body["sid"].(string), secret
	}
	var secret []byte
	f.totpFactor, secret = newFactor(f.entity)
	call("POST", f.entity+"/Factors/"+f.totpFactor, url.Values{"AuthPayload": {otp.TOTP{Secret: secret}.Code(time.Now().Add(-30 * time.Second))}})
	f.challenge = call("POST", f.entity+"/Challenges", url.Values{"FactorSid": {f.totpFactor}})["sid"].(string)
	f.victimFactor, _ = newFactor(f.entity)
	newFactor(f.victimEntity)
	factorKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKIXPublicKey(&factorKey.PublicKey)
	push := call("POST", f.entity+"/Factors", url.Values{"FriendlyName": {"Device"}, "FactorType": {"push"}, "Binding.Alg": {"ES256"},
		"Binding.PublicKey": {base64.StdEncoding.EncodeToString(der)}, "Config.NotificationPlatform": {"none"}})
	f.pushChallenge = call("POST", f.entity+"/Challenges", url.Values{"FactorSid": {push["sid"].(string)},
		"Details.Message": {"Sign in?"}})["sid"].(string)
}

// hostileDo sends c with the route's credentials.
func hostileDo(t *testing.T, s *server, con *consoleSession, f *hostileFixtures, c hostileCase, twilioToken, publicURL string) hostileAnswer {
	t.Helper()
	r := c.route
	client := s.client
	body := c.body
	if r.auth == "console" && r.method == "POST" {
		body = addCSRF(c, con.csrf)
	}
	signin := r.auth == "signin"
	if signin {
		client = newConsoleClient() // a browser of its own, with the sign-in form's cookie
		body = addCSRF(c, consoleCSRF(t, s, client, "/console/signin"))
	}
	target := s.url + c.path
	if c.query != "" {
		target += "?" + c.query
	}
	req, err := http.NewRequest(r.method, target, bytes.NewReader(body))
	if err != nil {
		t.Fatalf("%s: %v", c.name, err)
	}
	if c.ctype != "" {
		req.Header.Set("Content-Type", c.ctype)
	}
	switch r.auth {
	case "key":
		req.Header.Set("X-Authy-API-Key", s.key)
	case "device":
		req.Header.Set("Authorization", "Bearer "+f.device.token)
	case "device2":
		req.Header.Set("Authorization", "Bearer "+f.victimDev2.token)
	case "console":
		client = con.client
		req.Header.Set("Origin", s.url)
	case "signin":
		req.Header.Set("Origin", s.url)
	case "twilio":
		req.Header.Set(twilio.SignatureHeader, twilio.Signature(twilioToken, publicURL+r.path, c.signed))
	case "basic":
		req.SetBasicAuth(f.twilioSID, f.twilioToken)
	case "nofollow": // answers that send the browser to a relying party, which is not there
		client = f.noFollow
	}
	res, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s: %v", c.name, err)
	}
	defer res.Body.Close()
	a := hostileAnswer{status: res.StatusCode, ctype: res.Header.Get("Content-Type")}
	if !strings.HasPrefix(a.ctype, "text/event-stream") { // an event stream does not end
		a.body, _ = io.ReadAll(io.LimitReader(res.Body, 1<<20))
	}
	return a
}

// addCSRF adds the console's CSRF token to a form body.
func addCSRF(c hostileCase, csrf string) []byte {
	if c.ctype != "application/x-www-form-urlencoded" || csrf == "" {
		return c.body
	}
	sep := "&"
	if len(c.body) == 0 {
		sep = ""
	}
	return append(append([]byte{}, c.body...), []byte(sep+"csrf="+url.QueryEscape(csrf))...)
}

// checkAnswer says what is wrong with an answer, or "".
func checkAnswer(c hostileCase, a hostileAnswer) string {
	if a.status >= 500 {
		return fmt.Sprintf("answered %d: %.300s", a.status, a.body)
	}
	text := strings.HasPrefix(a.ctype, "text/") || strings.HasPrefix(a.ctype, "application/json")
	if text && (!utf8.Valid(a.body) || bytes.IndexByte(a.body, 0) >= 0) {
		return fmt.Sprintf("the body (%d) is not UTF-8 text: %.200q", a.status, a.body)
	}
	path := c.route.path
	api := strings.HasPrefix(path, "/protected/") || strings.HasPrefix(path, "/onetouch/") || strings.HasPrefix(path, "/device/") || strings.HasPrefix(path, "/qr/")
	switch {
	case strings.HasPrefix(path, "/v2/") && a.status >= 300:
		var e struct {
			Code     int    `json:"code"`
			Message  string `json:"message"`
			MoreInfo string `json:"more_info"`
			Status   int    `json:"status"`
		}
		if !strings.HasPrefix(a.ctype, "application/json") || json.Unmarshal(a.body, &e) != nil || e.Code < 20000 || e.Message == "" ||
			e.Status != a.status || e.MoreInfo != fmt.Sprintf("https://www.twilio.com/docs/errors/%d", e.Code) {
			return fmt.Sprintf("answered %d without Twilio's error shape (%s): %.300s", a.status, a.ctype, a.body)
		}
		if len(e.Message) > 300 {
			return fmt.Sprintf("the error repeats %d bytes of input: %.200s", len(e.Message), a.body)
		}
	case api && a.status >= 300:
		var env struct {
			Message   string            `json:"message"`
			Success   *bool             `json:"success"`
			ErrorCode string            `json:"error_code"`
			Errors    map[string]string `json:"errors"`
		}
		if !strings.HasPrefix(a.ctype, "application/json") || json.Unmarshal(a.body, &env) != nil ||
			env.Success == nil || *env.Success || env.Message == "" || len(env.ErrorCode) != 5 || env.Errors["message"] != env.Message {
			return fmt.Sprintf("answered %d without the Authy envelope (%s): %.300s", a.status, a.ctype, a.body)
		}
		for k, v := range env.Errors {
			if len(k)+len(v) > 300 {
				return fmt.Sprintf("the envelope repeats %d bytes of input: %.200s", len(k)+len(v), a.body)
			}
		}
	case strings.HasPrefix(path, "/console/") && a.status >= 400:
		if !strings.HasPrefix(a.ctype, "text/html") && !strings.HasPrefix(a.ctype, "application/json") {
			return fmt.Sprintf("the console answered %d with %q: %.200s", a.status, a.ctype, a.body)
		}
	}
	return ""
}

// consoleSession is an operator signed in to the console over HTTP.
type consoleSession struct {
	client *http.Client
	csrf   string
}

func newConsoleClient() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, Transport: &http.Transport{}, Timeout: time.Minute,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

var csrfInput = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// consoleCSRF loads a console page and returns the CSRF token of its form.
func consoleCSRF(t *testing.T, s *server, c *http.Client, path string) string {
	t.Helper()
	res, err := c.Get(s.url + path)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	page, _ := io.ReadAll(res.Body)
	m := csrfInput.FindSubmatch(page)
	if m == nil {
		t.Fatalf("GET %s (%d): no CSRF token in the page", path, res.StatusCode)
	}
	return html.UnescapeString(string(m[1]))
}

// consoleSignIn signs an operator in with their password and a TOTP code, as a browser would.
func consoleSignIn(t *testing.T, s *server, email, password string, seed otp.TOTP) *consoleSession {
	t.Helper()
	c := newConsoleClient()
	post := func(path string, form url.Values, want string) {
		t.Helper()
		req, _ := http.NewRequest("POST", s.url+path, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", s.url)
		res, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if loc := res.Header.Get("Location"); res.StatusCode != http.StatusSeeOther || loc != want {
			t.Fatalf("POST %s: %d to %q, want 303 to %s", path, res.StatusCode, loc, want)
		}
	}
	post("/console/signin", url.Values{"email": {email}, "password": {password}, "csrf": {consoleCSRF(t, s, c, "/console/signin")}},
		"/console/signin/factor")
	post("/console/signin/code", url.Values{"code": {seed.Code(time.Now())}, "csrf": {consoleCSRF(t, s, c, "/console/signin/factor")}},
		"/console/")
	return &consoleSession{client: c, csrf: consoleCSRF(t, s, c, "/console/apps/new")}
}

// sortedStatuses says how many answers had each status, for the log.
func sortedStatuses(m map[string]int) string {
	count := map[int]int{}
	for _, st := range m {
		count[st]++
	}
	var keys []int
	for k := range count {
		keys = append(keys, k)
	}
	sort.Ints(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%d×%d ", k, count[k])
	}
	return b.String()
}
