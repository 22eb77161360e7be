package verifyapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/twofold-auth/twofold/internal/apps"
	"github.com/twofold-auth/twofold/internal/authyapi"
	"github.com/twofold-auth/twofold/internal/deliver"
	"github.com/twofold-auth/twofold/internal/metrics"
	"github.com/twofold-auth/twofold/internal/seal"
	"github.com/twofold-auth/twofold/internal/store"
	"github.com/twofold-auth/twofold/internal/twofold"
	"github.com/twofold-auth/twofold/internal/verify"
	"github.com/twofold-auth/twofold/internal/verifyapi"
	"github.com/twofold-auth/twofold/internal/verifyfactors"
)

// server is the Verify API over a real SQLite store, wired as serve wires it, with one
// application's credentials.
type server struct {
	t           *testing.T
	url         string
	apps        *apps.Service
	outbox      *deliver.Outbox
	app         twofold.App
	account     string // the account SID
	token       string
	key, secret string // an API key
	allow       bool   // what the rate limit answers
}

func newServer(t *testing.T) *server {
	t.Helper()
	return newServerWith(t, serverOpts{})
}

// serverOpts change how a server is wired.
type serverOpts struct {
	log    *slog.Logger                        // nil: discard
	verify func(*store.Store) verify.Store     // wraps the code service's store; nil: as it is
	start  func(http.Handler) *httptest.Server // starts the server; nil: httptest.NewServer
}

func newServerWith(t *testing.T, opts serverOpts) *server {
	t.Helper()
	ctx := context.Background()
	st, err := store.OpenSQLite(ctx, filepath.Join(t.TempDir(), store.DatabaseFile))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	keys, _ := seal.New(bytes.Repeat([]byte{5}, seal.KeySize))
	log := opts.log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var verifyStore verify.Store = st
	if opts.verify != nil {
		verifyStore = opts.verify(st)
	}
	m := metrics.New()
	s := &server{t: t, apps: apps.New(st, keys, nil), outbox: deliver.NewOutbox(st, keys, log, nil), allow: true}
	router, err := deliver.NewRouter(s.outbox, nil, deliver.RouterConfig{}, m, log)
	if err != nil {
		t.Fatal(err)
	}
	if s.app, _, err = s.apps.Create(ctx, apps.CreateParams{Name: "Shop"}); err != nil {
		t.Fatal(err)
	}
	acct, token, err := s.apps.CreateTwilioAccount(ctx, s.app.ID)
	if err != nil {
		t.Fatal(err)
	}
	s.account, s.token = acct.SID, token
	key, secret, err := s.apps.CreateTwilioKey(ctx, s.app.ID, "backend")
	if err != nil {
		t.Fatal(err)
	}
	s.key, s.secret = key.SID, secret
	cfg := verifyapi.Config{Allow: func(context.Context, int64) bool { return s.allow }, MaxHeaderBytes: authyapi.MaxHeaderBytes}
	api := verifyapi.New(verifyapi.Services{Apps: s.apps, Verify: verify.New(verifyStore, router, keys, verify.DefaultConfig(), nil),
		Factors: verifyfactors.New(st, keys, nil), Usage: apps.NewUsageRecorder(st, log)}, m, log, cfg, nil)
	mux := http.NewServeMux()
	api.Routes(mux)
	authy := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { http.Error(w, "authy", http.StatusTeapot) })
	var srv *httptest.Server
	if opts.start != nil {
		srv = opts.start(verifyapi.Handler(authy, mux, m, log, cfg))
	} else {
		srv = httptest.NewServer(verifyapi.Handler(authy, mux, m, log, cfg))
		t.Cleanup(srv.Close)
	}
	s.url = srv.URL
	return s
}

type answer struct {
	status int
	header http.Header
	body   map[string]any
	raw    string
}

// do sends a request with the account's credentials (user "" sends none).
func (s *server) do(method, path string, form url.Values, user, password string) answer {
	s.t.Helper()
	var body io.Reader
	target := s.url + path
	if method == "GET" || method == "DELETE" {
		if len(form) > 0 {
			target += "?" + form.Encode()
		}
	} else {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, target, body)
	if err != nil {
		s.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if user != "" {
		req.SetBasicAuth(user, password)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	a := answer{status: res.StatusCode, header: res.Header, raw: string(raw)}
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &a.body); err != nil {
			s.t.Fatalf("%s %s: %d %q is not JSON", method, path, res.StatusCode, raw)
		}
	}
	return a
}

func (s *server) call(method, path string, form url.Values) answer {
	s.t.Helper()
	return s.do(method, path, form, s.account, s.token)
}

// wantError checks Twilio's error shape: code, message, more_info and status.
func wantError(t *testing.T, what string, a answer, status, code int) {
	t.Helper()
	got, _ := a.body["code"].(float64)
	if a.status != status || int(got) != code || a.body["message"] == "" ||
		a.body["more_info"] != "https://www.twilio.com/docs/errors/"+strconv.Itoa(code) || a.body["status"] != float64(status) {
		t.Errorf("%s: %d %s; want %d with code %d", what, a.status, a.raw, status, code)
	}
}

func (s *server) newService(form url.Values) string {
	s.t.Helper()
	a := s.call("POST", "/v2/Services", form)
	if a.status != 201 {
		s.t.Fatalf("create service: %d %s", a.status, a.raw)
	}
	return a.body["sid"].(string)
}

var codeRE = regexp.MustCompile(`\b(\d{4,10})\b`)

// code reads the newest code sent to to from the outbox.
func (s *server) code(to string) string {
	s.t.Helper()
	msgs, err := s.outbox.List(context.Background(), twofold.MessageFilter{To: to})
	if err != nil || len(msgs) == 0 {
		s.t.Fatalf("no message to %s: %v", to, err)
	}
	m := codeRE.FindStringSubmatch(strings.ReplaceAll(msgs[len(msgs)-1].Body, ", ", ""))
	if m == nil {
		s.t.Fatalf("no code in %q", msgs[len(msgs)-1].Body)
	}
	return m[1]
}

func TestCredentials(t *testing.T) {
	s := newServer(t)
	other, otherToken, err := s.apps.CreateTwilioAccount(context.Background(), must(s.apps.Create(context.Background(), apps.CreateParams{Name: "Other"})).ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ name, user, password string }{
		{"none", "", ""},
		{"a wrong token", s.account, strings.Repeat("0", 32)},
		{"another application's token", s.account, otherToken},
		{"the key's secret for the account", s.account, s.secret},
		{"an Authy API key", s.account, "not the token"},
	} {
		a := s.do("GET", "/v2/Services", nil, c.user, c.password)
		wantError(t, c.name, a, 401, 20003)
		if !strings.HasPrefix(a.header.Get("WWW-Authenticate"), "Basic") {
			t.Errorf("%s: no WWW-Authenticate", c.name)
		}
	}
	for _, c := range []struct{ user, password string }{{s.account, s.token}, {s.key, s.secret}, {other.SID, otherToken}} {
		if a := s.do("GET", "/v2/Services", nil, c.user, c.password); a.status != 200 {
			t.Errorf("%s: %d %s", c.user, a.status, a.raw)
		}
	}
	// With an API key the answers still name the account.
	sidVA := s.newService(url.Values{"FriendlyName": {"Shop"}})
	if a := s.do("GET", "/v2/Services/"+sidVA, nil, s.key, s.secret); a.body["account_sid"] != s.account {
		t.Errorf("account_sid with an API key: %v", a.body["account_sid"])
	}
	// Another application's credentials see none of this application's services.
	wantError(t, "another application's service", s.do("GET", "/v2/Services/"+sidVA, nil, other.SID, otherToken), 404, 20404)
	s.allow = false
	a := s.call("GET", "/v2/Services", nil)
	wantError(t, "over the rate limit", a, 429, 20429)
	if a.header.Get("Retry-After") == "" {
		t.Error("no Retry-After")
	}
}

func must[T any](v T, _ string, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func TestServices(t *testing.T) {
	s := newServer(t)
	a := s.call("POST", "/v2/Services", url.Values{"FriendlyName": {"Acme"}, "CodeLength": {"8"}, "Totp.Issuer": {"Acme Inc"},
		"Totp.TimeStep": {"60"}, "Push.IncludeDate": {"true"}, "LookupEnabled": {"True"}, "CustomCodeEnabled": {"true"}})
	if a.status != 201 {
		t.Fatalf("create: %d %s", a.status, a.raw)
	}
	id := a.body["sid"].(string)
	totp, _ := a.body["totp"].(map[string]any)
	push, _ := a.body["push"].(map[string]any)
	if !regexp.MustCompile(`^VA[0-9a-f]{32}$`).MatchString(id) || a.body["account_sid"] != s.account || a.body["code_length"] != 8.0 ||
		a.body["lookup_enabled"] != true || a.body["custom_code_enabled"] != true || a.body["dtmf_input_required"] != true ||
		totp["issuer"] != "Acme Inc" || totp["time_step"] != 60.0 || totp["code_length"] != 6.0 || totp["skew"] != 1.0 ||
		push["include_date"] != true || a.body["tts_name"] != nil ||
		!regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$`).MatchString(a.body["date_created"].(string)) ||
		!strings.HasSuffix(a.body["url"].(string), "/v2/Services/"+id) ||
		!strings.HasSuffix(a.body["links"].(map[string]any)["verifications"].(string), "/v2/Services/"+id+"/Verifications") {
		t.Fatalf("created: %s", a.raw)
	}
	if f := s.call("GET", "/v2/Services/"+id, nil); f.status != 200 || f.raw != a.raw {
		t.Errorf("fetch: %d %s\nwant %s", f.status, f.raw, a.raw)
	}
	u := s.call("POST", "/v2/Services/"+id, url.Values{"FriendlyName": {"Acme 2"}, "Totp.Skew": {"2"}})
	if u.status != 200 || u.body["friendly_name"] != "Acme 2" || u.body["code_length"] != 8.0 || u.body["totp"].(map[string]any)["skew"] != 2.0 {
		t.Errorf("update: %d %s", u.status, u.raw)
	}
	for _, c := range []struct {
		name string
		form url.Values
	}{
		{"no FriendlyName", url.Values{"CodeLength": {"6"}}},
		{"a FriendlyName of 33", url.Values{"FriendlyName": {strings.Repeat("x", 33)}}},
		{"CodeLength 11", url.Values{"FriendlyName": {"x"}, "CodeLength": {"11"}}},
		{"CodeLength not a number", url.Values{"FriendlyName": {"x"}, "CodeLength": {"six"}}},
		{"a bool that is not", url.Values{"FriendlyName": {"x"}, "LookupEnabled": {"yes"}}},
		{"Totp.Skew 3", url.Values{"FriendlyName": {"x"}, "Totp.Skew": {"3"}}},
		{"passkeys", url.Values{"FriendlyName": {"x"}, "Passkeys.RelyingParty.Id": {"example.com"}}},
	} {
		wantError(t, c.name, s.call("POST", "/v2/Services", c.form), 400, 60200)
	}
	if a := s.call("POST", "/v2/Services", url.Values{"FriendlyName": {"x"}, "CodeLength": {"11"}}); !strings.Contains(a.raw, "CodeLength") {
		t.Errorf("the message does not name CodeLength: %s", a.raw)
	}

	// Paging: five services in pages of two, following next_page_url as the libraries do.
	for i := range 4 {
		s.newService(url.Values{"FriendlyName": {"S" + strconv.Itoa(i)}})
	}
	var names []string
	next := "/v2/Services?PageSize=2"
	for pages := 0; next != ""; pages++ {
		if pages > 3 {
			t.Fatal("more than three pages")
		}
		p := s.call("GET", next, nil)
		meta, _ := p.body["meta"].(map[string]any)
		if p.status != 200 || meta["key"] != "services" || meta["page_size"] != 2.0 || meta["page"] != float64(pages) {
			t.Fatalf("page %d: %d %s", pages, p.status, p.raw)
		}
		if (pages == 0) != (meta["previous_page_url"] == nil) {
			t.Errorf("page %d: previous_page_url %v", pages, meta["previous_page_url"])
		}
		for _, v := range p.body["services"].([]any) {
			names = append(names, v.(map[string]any)["friendly_name"].(string))
		}
		next = ""
		if n, ok := meta["next_page_url"].(string); ok {
			next = strings.TrimPrefix(n, s.url)
		}
	}
	if strings.Join(names, ",") != "Acme 2,S0,S1,S2,S3" {
		t.Errorf("listed %v", names)
	}
	for _, q := range []string{"PageSize=0", "PageSize=1001", "Page=-1", "PageToken=XX1", "PageToken=PA-4"} {
		wantError(t, q, s.call("GET", "/v2/Services?"+q, nil), 400, 60200)
	}

	if d := s.call("DELETE", "/v2/Services/"+id, nil); d.status != 204 || d.raw != "" {
		t.Errorf("delete: %d %q", d.status, d.raw)
	}
	for _, path := range []string{"/v2/Services/" + id, "/v2/Services/VA" + strings.Repeat("0", 32), "/v2/Services/" + strings.ToUpper(id),
		"/v2/Services/VE" + id[2:], "/v2/Services/x"} {
		wantError(t, "GET "+path, s.call("GET", path, nil), 404, 20404)
	}
	wantError(t, "delete again", s.call("DELETE", "/v2/Services/"+id, nil), 404, 20404)
}

func TestWireErrors(t *testing.T) {
	s := newServer(t)
	svc := s.newService(url.Values{"FriendlyName": {"Shop"}})
	wantError(t, "an unknown route", s.call("GET", "/v2/Nothing", nil), 404, 20404)
	wantError(t, "/v2 itself", s.call("GET", "/v2", nil), 404, 20404)
	a := s.call("PUT", "/v2/Services", nil)
	wantError(t, "PUT a list", a, 405, 20004)
	if a.header.Get("Allow") != "GET, POST" {
		t.Errorf("Allow: %q", a.header.Get("Allow"))
	}
	wantError(t, "GET a check", s.call("GET", "/v2/Services/"+svc+"/VerificationCheck", nil), 405, 20004)
	wantError(t, "an unclean path", s.call("GET", "/v2/Services/../Services", nil), 404, 20404)
	wantError(t, "a NUL in the path", s.call("GET", "/v2/Services/a%00b", nil), 400, 60200)

	big := url.Values{"FriendlyName": {strings.Repeat("x", verifyapi.MaxBody)}}
	wantError(t, "a body too large", s.call("POST", "/v2/Services", big), 413, 20001)
	for name, body := range map[string]string{
		"bad percent-encoding": "FriendlyName=%ZZ",
		"invalid UTF-8":        "FriendlyName=%FF%FE",
		"too many parameters":  strings.Repeat("a=1&", 1001),
	} {
		req, _ := http.NewRequest("POST", s.url+"/v2/Services", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(s.account, s.token)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(res.Body)
		res.Body.Close()
		var b map[string]any
		json.Unmarshal(raw, &b)
		if res.StatusCode != 400 || (b["code"] != 20001.0 && b["code"] != 60200.0) {
			t.Errorf("%s: %d %s", name, res.StatusCode, raw)
		}
	}
	// A JSON body is not read: the request has no FriendlyName.
	req, _ := http.NewRequest("POST", s.url+"/v2/Services", strings.NewReader(`{"FriendlyName":"x"}`))
	req.Header.Set("Content-Type", "application/json")
	req.SetBasicAuth(s.account, s.token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 400 {
		t.Errorf("a JSON body: %d", res.StatusCode)
	}
	// Other paths are not the Verify API's.
	if r, _ := http.Get(s.url + "/protected/json/app/details"); r.StatusCode != http.StatusTeapot {
		t.Errorf("an Authy path: %d", r.StatusCode)
	}
}
