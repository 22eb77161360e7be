package auth0_test

import (
	"bytes"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/twofold-auth/twofold/internal/apps"
	"github.com/twofold-auth/twofold/internal/auth0"
	"github.com/twofold-auth/twofold/internal/deliver"
	"github.com/twofold-auth/twofold/internal/hostedstep"
	"github.com/twofold-auth/twofold/internal/onetouch"
	"github.com/twofold-auth/twofold/internal/otp"
	"github.com/twofold-auth/twofold/internal/seal"
	"github.com/twofold-auth/twofold/internal/store"
	"github.com/twofold-auth/twofold/internal/twofold"
	"github.com/twofold-auth/twofold/internal/users"
	"github.com/twofold-auth/twofold/internal/verify"
	"github.com/twofold-auth/twofold/internal/web/step"
)

// tenant is a stand-in for an Auth0 tenant's /continue: it checks what the Action's
// api.redirect.validateToken checks (a POST, the HS256 signature with the shared secret, iat,
// an exp at least a minute after it and not passed, iss, the sub of the user the Action
// named, the state claim equal to the state of the redirect) and keeps the claims it accepted.
type tenant struct {
	t      *testing.T
	srv    *httptest.Server
	secret []byte
	sub    string

	mu       sync.Mutex
	accepted []map[string]any
	refusals []string
}

func newTenant(t *testing.T, sub string) *tenant {
	tn := &tenant{t: t, sub: sub}
	tn.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		claims, why := tn.validate(r)
		tn.mu.Lock()
		defer tn.mu.Unlock()
		if why != "" {
			tn.refusals = append(tn.refusals, why)
			http.Error(w, why, http.StatusBadRequest)
			return
		}
		tn.accepted = append(tn.accepted, claims)
		_, _ = io.WriteString(w, "resumed")
	}))
	t.Cleanup(tn.srv.Close)
	return tn
}

func (tn *tenant) validate(r *http.Request) (map[string]any, string) {
	if r.Method != http.MethodPost || r.URL.Path != "/continue" {
		return nil, "not a POST to /continue"
	}
	state := r.URL.Query().Get("state")
	if err := r.ParseForm(); err != nil || state == "" {
		return nil, "no state"
	}
	tok, err := jwt.ParseSigned(r.PostForm.Get("session_token"), []jose.SignatureAlgorithm{jose.HS256})
	if err != nil {
		return nil, "session_token is not an HS256 JWT"
	}
	var std jwt.Claims
	all := map[string]any{}
	if err := tok.Claims(tn.secret, &std, &all); err != nil {
		return nil, "invalid signature"
	}
	now := time.Now()
	switch {
	case std.IssuedAt == nil || std.Expiry == nil || std.Issuer == "" || std.Subject == "":
		return nil, "Missing or invalid standard claims"
	case std.Expiry.Time().Before(now):
		return nil, "expired"
	case std.Expiry.Time().Sub(std.IssuedAt.Time()) < time.Minute:
		return nil, "exp less than a minute after iat"
	case std.Subject != tn.sub:
		return nil, "sub does not match the user"
	case all["state"] != state:
		return nil, "State in the token does not match the /continue state"
	}
	return all, ""
}

// encodeToken signs a session token as the Action's api.redirect.encodeToken does.
func encodeToken(t *testing.T, secret []byte, claims map[string]any) string {
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: secret}, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := jwt.Signed(s).Claims(claims).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

type world struct {
	srv     *httptest.Server
	tenant  *tenant
	client  hostedstep.Created
	key     otp.Key
	app     twofold.App
	clients *hostedstep.Clients
}

const domain = "acme.us.auth0.com"

func newWorld(t *testing.T) *world {
	return newWorldWith(t, worldOpts{})
}

// worldOpts change how a world is wired.
type worldOpts struct {
	log   *slog.Logger                        // the dialect's; nil: discard
	marks func(*store.Store) auth0.Marks      // wraps the store that spends states; nil: as it is
	start func(http.Handler) *httptest.Server // starts the server; nil: httptest.NewServer
}

func newWorldWith(t *testing.T, opts worldOpts) *world {
	st, err := store.OpenSQLite(t.Context(), filepath.Join(t.TempDir(), "twofold.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	keys, _ := seal.New(bytes.Repeat([]byte{5}, seal.KeySize))
	log := slog.New(slog.DiscardHandler)
	router, _ := deliver.NewRouter(deliver.NewOutbox(st, keys, log, nil), nil, deliver.RouterConfig{}, nil, log)
	vs := verify.New(st, router, keys, verify.Config{}, nil)
	w := &world{clients: hostedstep.NewClients(st, keys, nil), tenant: newTenant(t, "auth0|ana")}
	w.app, _, _ = apps.New(st, keys, nil).Create(t.Context(), apps.CreateParams{Name: "Shop"})
	u, _, err := users.New(st, nil).Register(t.Context(), w.app.ID, users.Contact{Email: "ana@example.com", Cellphone: "2015550100", CountryCode: "1"})
	if err != nil {
		t.Fatal(err)
	}
	enr, _ := vs.Enroll(t.Context(), w.app, u.ID, "", 0)
	w.key, _ = otp.ParseURI(enr.URI)
	match := twofold.MatchEmail
	w.client, err = w.clients.Create(t.Context(), w.app.ID, hostedstep.Spec{Name: ptr("Auth0"), Auth0Domain: ptr(domain), UserMatch: &match})
	if err != nil {
		t.Fatal(err)
	}
	w.tenant.secret = []byte(w.client.Auth0Secret)
	steps := hostedstep.NewSteps(st, keys, vs, onetouch.New(st, onetouch.Config{}, onetouch.Hooks{}, nil), hostedstep.Config{}, nil)
	mux := http.NewServeMux()
	if opts.start != nil {
		w.srv = opts.start(mux)
	} else {
		w.srv = httptest.NewServer(mux)
		t.Cleanup(w.srv.Close)
	}
	var marks auth0.Marks = st
	if opts.marks != nil {
		marks = opts.marks(st)
	}
	d := auth0.New(auth0.Config{Issuer: w.srv.URL, Clients: w.clients, Steps: steps, Marks: marks, MACs: keys, Log: opts.log,
		ContinueURL: func(d string) string {
			if d != domain {
				t.Errorf("continue at %s", d)
			}
			return w.tenant.srv.URL + "/continue"
		}})
	d.Routes(mux)
	// A stand-in for the step page: ?totp= passes, ?cancel refuses.
	mux.HandleFunc("GET /step/{handle}", func(rw http.ResponseWriter, r *http.Request) {
		h := r.PathValue("handle")
		v, err := steps.Open(r.Context(), h, step.Browser(r, h))
		if err != nil {
			http.Error(rw, err.Error(), http.StatusNotFound)
			return
		}
		switch {
		case r.URL.Query().Has("cancel"):
			_ = d.Refuse(rw, r, v, "The user gave up.")
		case r.URL.Query().Has("totp"):
			if _, err := steps.Check(r.Context(), v, r.URL.Query().Get("totp")); err != nil {
				http.Error(rw, err.Error(), http.StatusForbidden)
				return
			}
			v, _ = steps.Open(r.Context(), h, step.Browser(r, h))
			if err := d.Finish(rw, r, v); err != nil {
				http.Error(rw, err.Error(), http.StatusConflict)
			}
		default:
			_, _ = io.WriteString(rw, "the step page")
		}
	})
	return w
}

func ptr[T any](v T) *T { return &v }

// sessionToken is what the Action sends: iss the tenant, sub the Auth0 user, login_hint the
// email Twofold knows the user by.
func (w *world) sessionToken(t *testing.T, extra map[string]any) string {
	now := time.Now()
	claims := map[string]any{"iss": domain, "sub": "auth0|ana", "iat": now.Unix(), "exp": now.Add(time.Minute).Unix(), "login_hint": "ana@example.com"}
	for k, v := range extra {
		if v == nil {
			delete(claims, k)
		} else {
			claims[k] = v
		}
	}
	return encodeToken(t, []byte(w.client.Auth0Secret), claims)
}

func (w *world) browser() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar}
}

var formRE = regexp.MustCompile(`<form method="post" action="([^"]+)">(.*?)</form>`)
var inputRE = regexp.MustCompile(`name="([^"]+)" value="([^"]*)"`)

// submit posts the auto-submitting form of body as a browser would.
func submit(t *testing.T, hc *http.Client, body string) (*http.Response, string) {
	m := formRE.FindStringSubmatch(strings.ReplaceAll(body, "\n", ""))
	if m == nil {
		t.Fatalf("no form in\n%s", body)
	}
	form := url.Values{}
	for _, in := range inputRE.FindAllStringSubmatch(m[2], -1) {
		form.Add(in[1], unescape(in[2]))
	}
	resp, err := hc.PostForm(unescape(m[1]), form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func unescape(s string) string {
	return strings.NewReplacer("&amp;", "&", "&#43;", "+", "&#34;", `"`, "&#39;", "'", "&lt;", "<", "&gt;", ">").Replace(s)
}

func get(t *testing.T, hc *http.Client, u string) (*http.Response, string) {
	resp, err := hc.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func TestActionRedirectPassesAndValidates(t *testing.T) {
	w := newWorld(t)
	hc := w.browser()
	start := w.srv.URL + "/auth0/" + w.client.Client.ClientID + "?" + url.Values{"session_token": {w.sessionToken(t, nil)}, "state": {"auth0-state-1"}}.Encode()
	resp, _ := get(t, hc, start)
	if !strings.HasPrefix(resp.Request.URL.Path, "/step/") {
		t.Fatalf("the redirect went to %s", resp.Request.URL)
	}
	_, body := get(t, hc, resp.Request.URL.String()+"?totp="+w.key.Code(time.Now()))
	resp, body = submit(t, hc, body)
	if resp.StatusCode != 200 || body != "resumed" {
		t.Fatalf("the tenant refused: %d %s (%v)", resp.StatusCode, body, w.tenant.refusals)
	}
	got := w.tenant.accepted[0]
	if got["twofold_result"] != "passed" || got["twofold_factor"] != "totp" || got["iss"] != w.srv.URL {
		t.Fatalf("claims: %v", got)
	}
	// The same redirect again (a replay of Auth0's state) starts nothing.
	resp, body = get(t, w.browser(), start)
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "used already") {
		t.Fatalf("a replayed redirect: %d %s", resp.StatusCode, body)
	}
}

// tamper changes one character of a token's payload.
func tamper(tok string) string {
	c := byte('x')
	if tok[60] == 'x' {
		c = 'y'
	}
	return tok[:60] + string(c) + tok[61:]
}

func TestActionRedirectRefusals(t *testing.T) {
	w := newWorld(t)
	other := []byte("another secret, not the client's")
	now := time.Now()
	for i, tc := range []struct {
		what  string
		token string
		path  string
	}{
		{"a token signed with another secret", encodeToken(t, other, map[string]any{"iss": domain, "sub": "auth0|ana", "exp": now.Add(time.Minute).Unix()}), ""},
		{"an expired token", w.sessionToken(t, map[string]any{"exp": now.Add(-5 * time.Minute).Unix()}), ""},
		{"a token for a day", w.sessionToken(t, map[string]any{"exp": now.Add(24 * time.Hour).Unix()}), ""},
		{"another tenant", w.sessionToken(t, map[string]any{"iss": "evil.us.auth0.com"}), ""},
		{"no sub", w.sessionToken(t, map[string]any{"sub": nil}), ""},
		{"an unknown client", w.sessionToken(t, nil), "/auth0/tfc_nobody"},
		{"a tampered token", tamper(w.sessionToken(t, nil)), ""},
	} {
		path := tc.path
		if path == "" {
			path = "/auth0/" + w.client.Client.ClientID
		}
		resp, body := get(t, w.browser(), w.srv.URL+path+"?"+url.Values{"session_token": {tc.token}, "state": {"s" + string(rune('a'+i))}}.Encode())
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "Sign-in stopped") || resp.Header.Get("X-Frame-Options") != "DENY" {
			t.Errorf("%s: %d %s", tc.what, resp.StatusCode, body)
		}
	}
	if len(w.tenant.accepted)+len(w.tenant.refusals) != 0 {
		t.Fatal("a refused redirect reached the tenant")
	}
	// The user gave up: the tenant gets a valid token that says so, for the Action to deny.
	hc := w.browser()
	resp, _ := get(t, hc, w.srv.URL+"/auth0/"+w.client.Client.ClientID+"?"+url.Values{"session_token": {w.sessionToken(t, nil)}, "state": {"gave-up"}}.Encode())
	_, body := get(t, hc, resp.Request.URL.String()+"?cancel")
	if resp, body := submit(t, hc, body); resp.StatusCode != 200 || w.tenant.accepted[0]["twofold_result"] != "refused" || w.tenant.accepted[0]["amr"] != nil {
		t.Fatalf("cancel: %d %s %v", resp.StatusCode, body, w.tenant.accepted)
	}
	// A user Twofold does not know: straight back with a token that says so.
	_, body = get(t, w.browser(), w.srv.URL+"/auth0/"+w.client.Client.ClientID+"?"+url.Values{"session_token": {w.sessionToken(t, map[string]any{"login_hint": "nobody@example.com"})}, "state": {"stranger"}}.Encode())
	if resp, _ := submit(t, w.browser(), body); resp.StatusCode != 200 || w.tenant.accepted[1]["twofold_result"] != "unknown_user" {
		t.Fatalf("unknown user: %v", w.tenant.accepted)
	}
}
