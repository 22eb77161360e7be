package main

import (
	"context"
	"fmt"
	"html/template"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"golang.org/x/oauth2"

	"github.com/twofold-auth/twofold/internal/hostedstep"
	"github.com/twofold-auth/twofold/internal/seal"
	"github.com/twofold-auth/twofold/internal/store"
	"github.com/twofold-auth/twofold/internal/twofold"
)

// relyingParty is an application that hands its whole second factor to Twofold's hosted step
// through ordinary OpenID Connect libraries (golang.org/x/oauth2 and go-oidc), as a customer's
// would: /login?user=NAME sends the browser to the provider with the user named in a request
// object signed with the client secret, a state, a nonce and PKCE; /callback redeems the code,
// verifies the id token against the provider's JWKS and says who signed in, and how.
// /login?phone=1 is "Sign in with your phone": the same request naming nobody.
type relyingParty struct {
	t        *testing.T
	srv      *httptest.Server
	issuer   string
	client   hostedstep.Created
	conf     oauth2.Config
	verifier *gooidc.IDTokenVerifier

	mu      sync.Mutex
	pending map[string]rpLogin // by state
	results chan rpResult
}

type rpLogin struct{ nonce, verifier string }

// rpResult is what the relying party learnt at its callback.
type rpResult struct {
	Subject, Nonce, WantNonce, ACR, Username string
	AMR                                      []string
	Error                                    string // the provider's error, or what failed
}

// newRelyingParty starts the relying party's server; connect gives it its client.
func newRelyingParty(t *testing.T) *relyingParty {
	rp := &relyingParty{t: t, pending: map[string]rpLogin{}, results: make(chan rpResult, 8)}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /login", rp.login)
	mux.HandleFunc("GET /callback", rp.callback)
	mux.HandleFunc("GET /frame", rp.frame)
	mux.HandleFunc("GET /plain", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `<!doctype html><html lang="en"><title>plain</title><p id="plain">A page that may be framed.</p></html>`)
	})
	rp.srv = httptest.NewServer(mux)
	t.Cleanup(rp.srv.Close)
	return rp
}

// redirectURI is where the provider sends the browser back.
func (rp *relyingParty) redirectURI() string { return rp.srv.URL + "/callback" }

// connect configures the relying party for its client at the provider's issuer, by discovery.
func (rp *relyingParty) connect(ctx context.Context, issuer string, c hostedstep.Created) {
	rp.t.Helper()
	provider, err := gooidc.NewProvider(ctx, issuer)
	if err != nil {
		rp.t.Fatalf("discovery at %s: %v", issuer, err)
	}
	rp.issuer, rp.client = issuer, c
	rp.conf = oauth2.Config{ClientID: c.Client.ClientID, ClientSecret: c.Secret, Endpoint: provider.Endpoint(),
		RedirectURL: rp.redirectURI(), Scopes: []string{gooidc.ScopeOpenID}}
	rp.verifier = provider.Verifier(&gooidc.Config{ClientID: c.Client.ClientID})
}

func (rp *relyingParty) login(w http.ResponseWriter, r *http.Request) {
	state, nonce, verifier := oauth2.GenerateVerifier(), oauth2.GenerateVerifier(), oauth2.GenerateVerifier()
	now := time.Now()
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: []byte(rp.client.Secret)}, nil)
	if err != nil {
		http.Error(w, err.Error(), 500)
		return
	}
	request, err := jwt.Signed(signer).Claims(map[string]any{"iss": rp.client.Client.ClientID, "aud": rp.issuer,
		"iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(), "jti": state, "login_hint": r.URL.Query().Get("user")}).Serialize()
	if err != nil {
		http.Error(w, err.Error(), 500)
		return
	}
	rp.mu.Lock()
	rp.pending[state] = rpLogin{nonce: nonce, verifier: verifier}
	rp.mu.Unlock()
	opts := []oauth2.AuthCodeOption{oauth2.S256ChallengeOption(verifier), gooidc.Nonce(nonce)}
	if !r.URL.Query().Has("phone") {
		opts = append(opts, oauth2.SetAuthURLParam("request", request))
	}
	http.Redirect(w, r, rp.conf.AuthCodeURL(state, opts...), http.StatusFound)
}

var rpPage = template.Must(template.New("rp").Parse(`<!doctype html><html lang="en"><title>Relying party</title>
{{if .Error}}<h1 id="refused">Not signed in: {{.Error}}</h1>{{else}}<h1 id="signed-in">Signed in</h1>
<p>sub <span id="sub">{{.Subject}}</span>, amr <span id="amr">{{range .AMR}}{{.}} {{end}}</span></p>{{end}}</html>`))

func (rp *relyingParty) callback(w http.ResponseWriter, r *http.Request) {
	res := rp.redeem(r)
	rp.results <- res
	_ = rpPage.Execute(w, res)
}

// redeem checks the state, redeems the code with the PKCE verifier and verifies the id token.
func (rp *relyingParty) redeem(r *http.Request) rpResult {
	q := r.URL.Query()
	rp.mu.Lock()
	l, ok := rp.pending[q.Get("state")]
	delete(rp.pending, q.Get("state"))
	rp.mu.Unlock()
	switch {
	case !ok:
		return rpResult{Error: "unknown state"}
	case q.Get("error") != "":
		return rpResult{Error: q.Get("error") + ": " + q.Get("error_description")}
	case q.Get("iss") != rp.issuer:
		return rpResult{Error: "iss " + q.Get("iss")}
	}
	tok, err := rp.conf.Exchange(r.Context(), q.Get("code"), oauth2.VerifierOption(l.verifier))
	if err != nil {
		return rpResult{Error: "exchange: " + err.Error()}
	}
	raw, _ := tok.Extra("id_token").(string)
	idt, err := rp.verifier.Verify(r.Context(), raw)
	if err != nil {
		return rpResult{Error: "verify: " + err.Error()}
	}
	res := rpResult{Subject: idt.Subject, Nonce: idt.Nonce, WantNonce: l.nonce}
	var claims struct {
		AMR      []string `json:"amr"`
		ACR      string   `json:"acr"`
		Username string   `json:"preferred_username"`
	}
	if err := idt.Claims(&claims); err != nil {
		return rpResult{Error: "claims: " + err.Error()}
	}
	res.AMR, res.ACR, res.Username = claims.AMR, claims.ACR, claims.Username
	return res
}

// frame is a page of the relying party's origin that frames src (and its own plain page, which
// renders: the control).
func (rp *relyingParty) frame(w http.ResponseWriter, r *http.Request) {
	_ = template.Must(template.New("f").Parse(`<!doctype html><html lang="en"><title>Framing</title>
<iframe name="own" title="own" src="/plain"></iframe><iframe name="step" title="step" src="{{.}}"></iframe></html>`)).Execute(w, r.URL.Query().Get("src"))
}

// result waits for the relying party's next callback.
func (rp *relyingParty) result() rpResult {
	rp.t.Helper()
	select {
	case res := <-rp.results:
		return res
	case <-time.After(30 * time.Second):
		rp.t.Fatal("the relying party's callback was not called")
		return rpResult{}
	}
}

// expectSignedIn checks a result: signed in as authyID, by amr, with the nonce it sent.
func (rp *relyingParty) expectSignedIn(res rpResult, authyID int64, username string, amr ...string) {
	rp.t.Helper()
	if res.Error != "" {
		rp.t.Fatalf("the relying party: %s", res.Error)
	}
	if res.Subject != strconv.FormatInt(authyID, 10) || res.Nonce == "" || res.Nonce != res.WantNonce || fmt.Sprint(res.AMR) != fmt.Sprint(amr) ||
		res.ACR != "urn:twofold:acr:mfa" || res.Username != username {
		rp.t.Fatalf("id token: %+v, want sub %d, amr %v, preferred_username %s", res, authyID, amr, username)
	}
}

// freeAddr is a loopback address with a port nothing listens on now, for a server whose
// issuer is its listen address.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// stepStore opens the server's store (its --database, else the SQLite file of its data
// directory) and keys beside it (the CLI that manages step clients is another change's), for
// making clients and sessions the way the services do.
func stepStore(t *testing.T, s *server) (*store.Store, *seal.Keyring) {
	t.Helper()
	keys, _, err := loadKeys(s.dataDir, Env{Getenv: func(string) string { return "" }}, false)
	if err != nil {
		t.Fatal(err)
	}
	db := filepath.Join(s.dataDir, store.DatabaseFile)
	if len(s.cliArgs) == 2 {
		db = s.cliArgs[1] // --database
	}
	st, err := store.Open(t.Context(), db)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st, keys
}

// stepClient makes a step client of the first application that names users by email.
func stepClient(t *testing.T, s *server, name, redirectURI string, factors ...twofold.Factor) hostedstep.Created {
	t.Helper()
	uris, match := []string{redirectURI}, twofold.MatchEmail
	sp := hostedstep.Spec{Name: &name, RedirectURIs: &uris, UserMatch: &match}
	if len(factors) > 0 {
		sp.Factors = &factors
	}
	return stepClientSpec(t, s, sp)
}

// stepClientSpec makes a step client of the first application.
func stepClientSpec(t *testing.T, s *server, sp hostedstep.Spec) hostedstep.Created {
	t.Helper()
	st, keys := stepStore(t, s)
	c, err := hostedstep.NewClients(st, keys, nil).Create(t.Context(), 1, sp)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
