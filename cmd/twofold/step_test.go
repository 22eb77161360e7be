package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/twofold-auth/twofold/internal/hostedstep"
	"github.com/twofold-auth/twofold/internal/twofold"
)

func TestStepIssuer(t *testing.T) {
	for _, c := range []struct {
		public, addr, want, why string
	}{
		{"https://twofold.example.com/", "0.0.0.0:8080", "https://twofold.example.com", ""},
		{"", "127.0.0.1:8080", "http://127.0.0.1:8080", ""},
		{"", "localhost:9000", "http://localhost:9000", ""},
		{"", "[::1]:8080", "http://[::1]:8080", ""},
		{"", "127.0.0.1:0", "", "not fixed"},
		{"", "0.0.0.0:8080", "", "beyond this machine"},
		{"", ":8080", "", "beyond this machine"},
		{"", "192.0.2.7:8080", "", "beyond this machine"},
		{"", "nonsense", "", "not fixed"},
	} {
		got, why := stepIssuer(c.public, c.addr)
		if got != c.want || !strings.Contains(why, c.why) || (c.want == "") != strings.Contains(why, "--public-url") {
			t.Errorf("stepIssuer(%q, %q) = %q, %q; want %q, %q", c.public, c.addr, got, why, c.want, c.why)
		}
	}
}

// The OpenID provider is on with an issuer relying parties can rely on, and off, saying why,
// without one; the page is served either way.
func TestHostedStepIssuer(t *testing.T) {
	off := startServer(t, "") // 127.0.0.1:0: no fixed address to name
	if r := off.do("GET", "/.well-known/openid-configuration", "", nil); r.status != http.StatusNotFound {
		t.Errorf("discovery without an issuer: %d", r.status)
	}
	if !strings.Contains(off.logs.String(), "OpenID provider is off") || !strings.Contains(off.logs.String(), "--public-url") {
		t.Errorf("the log does not say the provider is off and why:\n%s", off.logs.String())
	}
	if r := off.do("GET", "/step/anything", "", nil); r.status != http.StatusNotFound || !strings.Contains(r.raw, "This sign-in has expired") {
		t.Errorf("the step page: %d %s", r.status, r.raw)
	}

	on := startServer(t, "", "--public-url", "https://twofold.example.com/")
	r := on.do("GET", "/.well-known/openid-configuration", "", nil)
	if r.status != http.StatusOK || r.body["issuer"] != "https://twofold.example.com" ||
		r.body["authorization_endpoint"] != "https://twofold.example.com/oauth2/authorize" {
		t.Fatalf("discovery: %d %s", r.status, r.raw)
	}
}

// The key sets the provider fetches (here a client's, for its signed request objects) come
// through the egress guard: a JWKS URL on a private address is refused, and never contacted,
// until the operator allows its host with --jwks-allow-hosts. Then the step page opens, with
// its headers, and its forms refuse posts without the session's token.
func TestHostedStepKeySetsThroughGuard(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	var hits atomic.Int32
	jwks := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		_ = json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "k1", Use: "sig"}}})
	}))
	defer jwks.Close()

	addr := freeAddr(t)
	issuer := "http://" + addr
	s := startServer(t, "", "--addr", addr, "--rate-limit", "off")
	s.register(s.key, "ana@example.com", "2015550123")
	name, uris, match, factors := "Signed requests", []string{"https://rp.example.com/callback"}, twofold.MatchEmail, []twofold.Factor{twofold.FactorSMS}
	jwksURL := jwks.URL + "/jwks.json"
	c := stepClientSpec(t, s, hostedstep.Spec{Name: &name, RedirectURIs: &uris, UserMatch: &match, Factors: &factors, ClientJWKSURL: &jwksURL})

	authorize := func(s *server) (*http.Response, *http.Client) {
		t.Helper()
		signer, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: key, KeyID: "k1"}}, nil)
		now := time.Now()
		request, err := jwt.Signed(signer).Claims(map[string]any{"iss": c.Client.ClientID, "aud": issuer, "exp": now.Add(time.Minute).Unix(),
			"jti": oauthRandom(), "login_hint": "ana@example.com", "redirect_uri": uris[0], "response_type": "code", "scope": "openid", "state": "s"}).Serialize()
		if err != nil {
			t.Fatal(err)
		}
		jar, _ := cookiejar.New(nil)
		hc := &http.Client{Jar: jar, CheckRedirect: func(req *http.Request, _ []*http.Request) error {
			if req.URL.Host != addr {
				return http.ErrUseLastResponse
			}
			return nil
		}}
		resp, err := hc.Get(s.url + "/oauth2/authorize?" + url.Values{"client_id": {c.Client.ClientID}, "redirect_uri": {uris[0]},
			"response_type": {"code"}, "scope": {"openid"}, "request": {request}}.Encode())
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp, hc
	}

	resp, _ := authorize(s)
	back, _ := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusSeeOther || back.Host != "rp.example.com" || back.Query().Get("error") != "invalid_request_object" {
		t.Fatalf("a request object whose key set is on a private address: %d %s", resp.StatusCode, back)
	}
	if hits.Load() != 0 {
		t.Fatalf("the key set was fetched %d times past the guard", hits.Load())
	}
	s.stop()

	s = startServer(t, s.dataDir, "--addr", addr, "--rate-limit", "off", "--jwks-allow-hosts", "127.0.0.1")
	resp, browser := authorize(s)
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Request.URL.Path, "/step/") || hits.Load() == 0 {
		t.Fatalf("with the key set's host allowed: %d %s, %d fetches", resp.StatusCode, resp.Request.URL, hits.Load())
	}
	h := resp.Header
	if !strings.Contains(h.Get("Content-Security-Policy"), "frame-ancestors 'none'") || h.Get("X-Frame-Options") != "DENY" ||
		h.Get("Cache-Control") != "no-store" || h.Get("Referrer-Policy") != "no-referrer" {
		t.Errorf("the page's headers: %v", h)
	}
	// A post without the session's token, from the browser that holds its cookie, sends nothing.
	for _, form := range []url.Values{{"factor": {"sms"}}, {"factor": {"sms"}, "csrf": {"AAAA"}}} {
		r, err := browser.PostForm(resp.Request.URL.String()+"/send", form)
		if err != nil {
			t.Fatal(err)
		}
		r.Body.Close()
		if r.StatusCode != http.StatusForbidden {
			t.Errorf("a post with %v: %d", form, r.StatusCode)
		}
	}
	if msgs := s.outbox(); len(msgs) != 0 {
		t.Errorf("posts without the token sent %d messages", len(msgs))
	}
}

func oauthRandom() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
