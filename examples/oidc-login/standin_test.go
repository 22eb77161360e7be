package main

import (
	"bytes"
	"context"
	"fmt"
	"html"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/twofold-auth/twofold/internal/apps"
	"github.com/twofold-auth/twofold/internal/deliver"
	"github.com/twofold-auth/twofold/internal/hostedstep"
	"github.com/twofold-auth/twofold/internal/oidc"
	"github.com/twofold-auth/twofold/internal/onetouch"
	"github.com/twofold-auth/twofold/internal/otp"
	"github.com/twofold-auth/twofold/internal/passwordless"
	"github.com/twofold-auth/twofold/internal/seal"
	"github.com/twofold-auth/twofold/internal/signingkeys"
	"github.com/twofold-auth/twofold/internal/store"
	"github.com/twofold-auth/twofold/internal/twofold"
	"github.com/twofold-auth/twofold/internal/users"
	"github.com/twofold-auth/twofold/internal/verify"
	"github.com/twofold-auth/twofold/internal/web/step"
)

// twofoldUnderTest is the Twofold the sample signs in through: today standIn, Twofold's real
// OpenID provider over real services and SQLite with a stand-in for the step page; once
// `twofold serve` serves the provider and the page, a served one (the sample needs nothing
// else: an issuer URL, a step client, an enrolled user, and a way through the page).
type twofoldUnderTest interface {
	Issuer() string
	// StepClient creates a step client matching users by email, with one redirect URI.
	StepClient(t *testing.T, redirectURI string) (id, secret string)
	// EnrolledUser registers a user with an authenticator app and returns their Twofold id.
	EnrolledUser(t *testing.T, email string) (id string, key otp.Key)
	// PassStep passes the step page open in the browser with the authenticator's code.
	PassStep(t *testing.T, ctx context.Context, key otp.Key)
}

// standIn is the in-process Twofold.
type standIn struct {
	srv      *httptest.Server
	st       *store.Store
	keys     *seal.Keyring
	onetouch *onetouch.Service
	app      twofold.App
	users    *users.Service
	verify   *verify.Service
	clients  *hostedstep.Clients
	steps    *hostedstep.Steps
	p        *oidc.Provider
	phones   int
}

func newStandIn(t *testing.T) *standIn {
	t.Helper()
	ctx := t.Context()
	st, err := store.OpenSQLite(ctx, filepath.Join(t.TempDir(), "twofold.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	keys, _ := seal.New(bytes.Repeat([]byte{7}, seal.KeySize))
	log := slog.New(slog.DiscardHandler)
	router, err := deliver.NewRouter(deliver.NewOutbox(st, keys, log, nil), nil, deliver.RouterConfig{}, nil, log)
	if err != nil {
		t.Fatal(err)
	}
	s := &standIn{st: st, keys: keys, users: users.New(st, nil), verify: verify.New(st, router, keys, verify.Config{}, nil),
		onetouch: onetouch.New(st, onetouch.Config{}, onetouch.Hooks{}, nil)}
	if s.app, _, err = apps.New(st, keys, nil).Create(ctx, apps.CreateParams{Name: "Shop"}); err != nil {
		t.Fatal(err)
	}
	s.clients = hostedstep.NewClients(st, keys, nil)
	s.steps = hostedstep.NewSteps(st, keys, s.verify, s.onetouch, hostedstep.Config{}, nil)
	s.steps.SetPasswordless(passwordless.New(st, s.onetouch, passwordless.Config{}, nil))
	mux := http.NewServeMux()
	s.srv = httptest.NewServer(mux)
	t.Cleanup(s.srv.Close)
	s.p, err = oidc.New(oidc.Config{Issuer: s.srv.URL, Clients: s.clients, Steps: s.steps, Keys: signingkeys.New(st, keys, nil),
		Remote: oidc.NewKeySets(http.DefaultClient, nil), Marks: st, MACs: keys})
	if err != nil {
		t.Fatal(err)
	}
	s.p.Routes(mux)
	mux.HandleFunc("GET /step/{handle}", s.page)
	return s
}

// page stands in for the step page: a form for the authenticator's code (?totp=) and a cancel
// button (?cancel=1); a passed code or a cancel hands back through the provider, as the page does.
func (s *standIn) page(w http.ResponseWriter, r *http.Request) {
	h := r.PathValue("handle")
	v, err := s.steps.Open(r.Context(), h, step.Browser(r, h))
	if err != nil {
		http.Error(w, err.Error(), http.StatusNotFound)
		return
	}
	q := r.URL.Query()
	if v.NeedsUser() { // "Sign in with your phone": ?signin=NAME asks, ?await goes on once approved
		s.phonePage(w, r, v)
		return
	}
	switch {
	case q.Has("cancel"):
		_ = s.p.Refuse(w, r, v, "The user gave up.")
		return
	case !q.Has("totp"):
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!doctype html><html lang="en"><title>Second factor</title><h1>Second factor for %s</h1>
<form><label for="code">Code from your authenticator app</label> <input id="code" name="totp" inputmode="numeric" autocomplete="one-time-code"> <button id="verify">Verify</button></form>
<form><input type="hidden" name="cancel" value="1"><button id="cancel">Cancel</button></form>`, html.EscapeString(v.User.Email))
		return
	}
	if _, err := s.steps.Check(r.Context(), v, q.Get("totp")); err != nil {
		http.Error(w, err.Error(), http.StatusForbidden)
		return
	}
	if v, err = s.steps.Open(r.Context(), h, step.Browser(r, h)); err == nil {
		err = s.p.Finish(w, r, v)
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusConflict)
	}
}

func (s *standIn) Issuer() string { return s.srv.URL }

func (s *standIn) StepClient(t *testing.T, redirectURI string) (string, string) {
	t.Helper()
	name, match := "OIDC login sample", twofold.MatchEmail
	made, err := s.clients.Create(t.Context(), s.app.ID, hostedstep.Spec{Name: &name, RedirectURIs: &[]string{redirectURI}, UserMatch: &match})
	if err != nil {
		t.Fatal(err)
	}
	return made.Client.ClientID, made.Secret
}

func (s *standIn) EnrolledUser(t *testing.T, email string) (string, otp.Key) {
	t.Helper()
	s.phones++
	u, _, err := s.users.Register(t.Context(), s.app.ID, users.Contact{Email: email, Cellphone: "201555" + strconv.Itoa(1000+s.phones), CountryCode: "1"})
	if err != nil {
		t.Fatal(err)
	}
	enr, err := s.verify.Enroll(t.Context(), s.app, u.ID, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	key, err := otp.ParseURI(enr.URI)
	if err != nil {
		t.Fatal(err)
	}
	return strconv.FormatInt(u.ID, 10), key
}

func (s *standIn) PassStep(t *testing.T, ctx context.Context, key otp.Key) { passStep(t, ctx, key) }

// startSample runs the sample against tf with a client of its own, for the users of the CSV
// text, and returns its URL.
func startSample(t *testing.T, tf twofoldUnderTest, usersCSV string, change func(*config)) string {
	t.Helper()
	var h http.Handler
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.ServeHTTP(w, r) }))
	t.Cleanup(srv.Close)
	file := filepath.Join(t.TempDir(), "users.csv")
	if err := os.WriteFile(file, []byte(usersCSV), 0o600); err != nil {
		t.Fatal(err)
	}
	id, secret := tf.StepClient(t, srv.URL+callbackPath)
	cfg := config{TwofoldURL: tf.Issuer(), ClientID: id, ClientSecret: secret, PublicURL: srv.URL, UsersFile: file}
	if change != nil {
		change(&cfg)
	}
	s, err := newServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	h = s
	return srv.URL
}

// csvLine quotes nothing: the tests' values have no commas.
func csvLine(fields ...string) string { return strings.Join(fields, ",") + "\n" }
