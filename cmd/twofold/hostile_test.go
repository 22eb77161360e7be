package main

import (
	"bytes"
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
	"github.com/twofold-auth/twofold/internal/otp"
	"github.com/twofold-auth/twofold/internal/store/storetest"
)

// The hostile-input suite (`make hostile`; also part of `make test`). A real server, on SQLite
// and on PostgreSQL, has every route it registers driven with the families of input an attack
// run used: NUL bytes, invalid UTF-8, huge values, control and bidi characters, SQL, wrong JSON
// types, deep brackets, 100,000 parameters, huge and broken bodies, in the query string, form
// bodies and JSON bodies, in parameters and in path segments. It asserts that no answer is a
// 5xx, that every refusal has its surface's shape (the Authy envelope, repeating no more than a
// short prefix of what was sent; the console's pages), that refused requests spend nothing (no
// message, no send quota, no failure count), and that both engines answer every request alike.

// hostileValues are the parameter values sent; some are valid text on purpose (a request that
// succeeds with them must succeed on both engines).
var hostileValues = []struct{ name, v string }{
	{"nul", "a\x00b"},
	{"bad-utf8", "\xff\xfe"},
	{"surrogate", "\xed\xa0\x80"},
	{"huge", strings.Repeat("A", 30<<10)},
	{"controls", "\r\n\x1b[2J\x7f"},
	{"bidi", "\u202eevil"},
	{"sql", "' OR '1'='1' --"},
	{"number", "-99999999999999999999999"},
}

// hostilePathValues replace one path segment, already escaped.
var hostilePathValues = []struct{ name, v string }{
	{"nul", "a%00b"},
	{"bad-utf8", "%FF%FE"},
	{"huge", strings.Repeat("9", 30<<10)},
	{"dotdot", "..%2F..%2Fetc%2Fpasswd"},
	{"controls", "%0D%0A%1B"},
	{"bidi", "%E2%80%AEevil"},
	{"negative", "-1"},
	{"overflow", "99999999999999999999999"},
}

// hostileJSON are JSON values of the wrong type.
var hostileJSON = []struct{ name, v string }{
	{"number", "5"}, {"float", "1e999"}, {"bool", "true"}, {"null", "null"}, {"array", `["x"]`}, {"object", `{"a":"b"}`},
	{"deep", strings.Repeat(`{"a":`, 40) + "1" + strings.Repeat("}", 40)}, {"nul-escape", `"a\u0000b"`},
}

type hostileCase struct {
	name   string // the same on both engines
	route  *hostileRoute
	path   string // escaped
	query  string // raw
	ctype  string
	body   []byte
	signed url.Values // the form a Twilio signature covers
}

type hostileAnswer struct {
	status int
	ctype  string
	body   []byte
}

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
		"--address-rate-limit", "off", "--signin-limit-address", "off", "--signin-limit-account", "off"}, args...)...)

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
		for _, c := range hostileCases(r, i) {
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
	if accepted := countAccepted(statuses, routes); len(msgs) != accepted {
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
				strings.Contains(r.path, "/email/") || strings.HasSuffix(r.path, "/verification/start")) {
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
	r = s.post(fmt.Sprintf("/protected/json/users/%d/secret", f.user), nil)
	if r.status != 200 {
		t.Fatalf("secret: %s", r.raw)
	}
	qr, err := url.Parse(r.body["qr_code"].(string))
	if err != nil {
		t.Fatal(err)
	}
	f.qr = strings.TrimPrefix(qr.Path, "/qr/")

	var app struct {
		ID     int64  `json:"app_id"`
		APIKey string `json:"api_key"`
	}
	s.cliJSON(&app, "app", "create", "--name", "Console target")
	f.consoleApp = app.ID
	f.consoleUser = s.register(app.APIKey, "console-user@example.com", "2015550125")
	f.consoleDevice = s.newDevice(app.APIKey, f.consoleUser).id
	s.cliJSON(&app, "app", "create", "--name", "Victim app")
	f.consoleVictimApp = app.ID
	return f
}

// hostileCases makes the cases of route r (the i-th): the valid request, then one hostile part
// at a time.
func hostileCases(r *hostileRoute, i int) []hostileCase {
	key := routeKey(r)
	var cases []hostileCase
	add := func(name string, c hostileCase) {
		c.name, c.route = key+" "+name, r
		if c.path == "" {
			c.path = fill(r.path, r.wild, "", "")
		}
		cases = append(cases, c)
	}
	add("valid", paramCase(r, r.params))
	for _, w := range mapKeys(r.wild) {
		for _, v := range hostilePathValues {
			c := paramCase(r, r.params)
			c.path = fill(r.path, r.wild, w, v.v)
			add("path "+w+"="+v.name, c)
		}
	}
	vary := r.vary
	if vary == nil {
		vary = (mapKeys(r.params))
	}
	for _, p := range vary {
		for _, v := range hostileValues {
			params := with1(r.params, p, v.v)
			if r.method == "GET" || r.method == "DELETE" || !r.form {
				add(p+"="+v.name+" in query", queryCase(r, params))
			}
			if r.form {
				add(p+"="+v.name+" in form", formCase(r, params))
			}
			if r.json {
				add(p+"="+v.name+" in JSON", jsonCase(r, params, nil))
			}
		}
		if r.json {
			for _, v := range hostileJSON {
				add(p+" as JSON "+v.name, jsonCase(r, r.params, map[string]string{p: v.v}))
			}
		}
	}
	// Once per route: the shapes of a whole request.
	deep := "x" + strings.Repeat("[a]", 100) + "=1"
	add("deep brackets", hostileCase{query: deep})
	add("many params in query", hostileCase{query: strings.Repeat("a&", 5000)})
	if r.method != "GET" {
		add("100k params in body", hostileCase{ctype: "application/x-www-form-urlencoded", body: []byte(strings.Repeat("a&", 100000))})
		add("huge body", hostileCase{ctype: "application/x-www-form-urlencoded", body: []byte("x=" + strings.Repeat("a", 300<<10))})
		add("broken JSON", hostileCase{ctype: "application/json", body: []byte(`{"user":`)})
		add("JSON not UTF-8", hostileCase{ctype: "application/json", body: []byte("{\"message\":\"\xff\xfe\"}")})
		add("form not UTF-8 key", hostileCase{ctype: "application/x-www-form-urlencoded", body: []byte("%FF%00=1")})
	}
	return cases
}

// routeKey names a route in case names: its method and path template.
func routeKey(r *hostileRoute) string { return r.method + " " + r.path }

// paramCase sends params the way the route reads them.
func paramCase(r *hostileRoute, params map[string]string) hostileCase {
	if r.form && r.method != "GET" && r.method != "DELETE" {
		return formCase(r, params)
	}
	return queryCase(r, params)
}

func encodeParams(params map[string]string) string {
	var b strings.Builder
	for _, k := range mapKeys(params) {
		if b.Len() > 0 {
			b.WriteByte('&')
		}
		b.WriteString(url.QueryEscape(k) + "=" + url.QueryEscape(params[k]))
	}
	return b.String()
}

func queryCase(_ *hostileRoute, params map[string]string) hostileCase {
	return hostileCase{query: encodeParams(params)}
}

func formCase(_ *hostileRoute, params map[string]string) hostileCase {
	form := url.Values{}
	for k, v := range params {
		form.Set(k, v)
	}
	return hostileCase{ctype: "application/x-www-form-urlencoded", body: []byte(encodeParams(params)), signed: form}
}

// jsonCase sends params as one JSON object (bracket names nest, "[]" makes a list of one);
// raw gives some parameters as JSON text instead. Strings are written byte for byte, so invalid
// UTF-8 reaches the server as sent.
func jsonCase(_ *hostileRoute, params, raw map[string]string) hostileCase {
	root := map[string]any{}
	for name, v := range params {
		var value any = jsonString(v)
		if r, ok := raw[name]; ok {
			value = json.RawMessage(r)
		}
		path := bracketPath(name)
		m := root
		for j, k := range path[:len(path)-1] {
			if k == "" {
				continue
			}
			if path[j+1] == "" { // k[] : a list holding one object
				list, _ := m[k].([]any)
				if len(list) == 0 {
					list = []any{map[string]any{}}
				}
				m[k] = list
				m = list[0].(map[string]any)
				continue
			}
			next, ok := m[k].(map[string]any)
			if !ok {
				next = map[string]any{}
				m[k] = next
			}
			m = next
		}
		m[path[len(path)-1]] = value
	}
	return hostileCase{ctype: "application/json", body: writeJSONRaw(root)}
}

// jsonString is a string to be written into JSON byte for byte.
type jsonString string

func writeJSONRaw(v any) []byte {
	var b bytes.Buffer
	var write func(v any)
	write = func(v any) {
		switch t := v.(type) {
		case map[string]any:
			b.WriteByte('{')
			for i, k := range mapKeys(t) {
				if i > 0 {
					b.WriteByte(',')
				}
				write(jsonString(k))
				b.WriteByte(':')
				write(t[k])
			}
			b.WriteByte('}')
		case []any:
			b.WriteByte('[')
			for i, e := range t {
				if i > 0 {
					b.WriteByte(',')
				}
				write(e)
			}
			b.WriteByte(']')
		case json.RawMessage:
			b.Write(t)
		case jsonString:
			b.WriteByte('"')
			for i := 0; i < len(t); i++ {
				switch c := t[i]; {
				case c == '"' || c == '\\':
					b.WriteByte('\\')
					b.WriteByte(c)
				case c < 0x20:
					fmt.Fprintf(&b, `\u%04x`, c)
				default:
					b.WriteByte(c)
				}
			}
			b.WriteByte('"')
		}
	}
	write(v)
	return b.Bytes()
}

// bracketPath splits "a[b][]" into a, b, "".
func bracketPath(name string) []string {
	head, rest, ok := strings.Cut(name, "[")
	if !ok {
		return []string{name}
	}
	out := []string{head}
	for _, seg := range strings.Split(strings.TrimSuffix(rest, "]"), "][") {
		out = append(out, seg)
	}
	return out
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

// sortedStatuses is for failure messages: the statuses seen, most frequent first.
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
