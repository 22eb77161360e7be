package main

import (
	"bytes"
	"crypto/rand"
	"crypto/subtle"
	"embed"
	"encoding/base64"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

//go:embed templates/*.html static
var files embed.FS

// server is the sample web application.
type server struct {
	cfg     config
	log     *slog.Logger
	users   *userTable
	pages   map[string]*template.Template
	handler http.Handler

	mu       sync.Mutex
	provider *gooidc.Provider    // Twofold's discovery document, read at the first sign-in
	sessions map[string]*session // by the cookie's random id
}

// session is a browser's state: half signed in (the password passed, the second factor is
// Twofold's to ask), or signed in.
type session struct {
	Email, TwofoldID       string // who typed the password ("" for "Sign in with your phone")
	Phone                  bool   // "Sign in with your phone": Twofold's id token says who
	State, Nonce, Verifier string // this authorization request's (until the callback)
	SignedIn               bool
	Subject, ACR           string // what Twofold's id token said
	AMR                    []string
	Expires                time.Time
}

const (
	cookieName = "oidc_login"
	pendingTTL = 10 * time.Minute // Twofold's step lasts as long
	sessionTTL = 8 * time.Hour
)

// newServer returns the sample's HTTP handler (a *server).
func newServer(cfg config) (*server, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	us, err := loadUsers(cfg.UsersFile)
	if err != nil {
		return nil, fmt.Errorf("users: %w", err)
	}
	pages := map[string]*template.Template{}
	for _, name := range []string{"home", "login", "problem"} {
		pages[name], err = template.ParseFS(files, "templates/base.html", "templates/"+name+".html")
		if err != nil {
			return nil, err
		}
	}
	s := &server{cfg: cfg, log: cfg.Logger, users: us, pages: pages, sessions: map[string]*session{}}
	static, _ := fs.Sub(files, "static")
	mux := http.NewServeMux()
	mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)))
	mux.HandleFunc("GET /{$}", s.home)
	mux.HandleFunc("GET /login", s.loginPage)
	mux.HandleFunc("POST /login", s.login)
	if cfg.Passwordless {
		mux.HandleFunc("POST /login/phone", s.phoneLogin)
	}
	mux.HandleFunc("GET "+callbackPath, s.callback)
	mux.HandleFunc("POST /logout", s.logout)
	// Forms are CSRF-protected by the browser's Sec-Fetch-Site and Origin headers.
	s.handler = securityHeaders(cfg.TwofoldURL, http.NewCrossOriginProtection().Handler(mux))
	return s, nil
}

func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// securityHeaders: only this origin's styles, no script at all, no framing, no referrer (the
// callback's URL holds a code). Forms post here only, and the log-in form's redirect goes on to
// Twofold: browsers hold a form's redirects to form-action too.
func securityHeaders(twofoldURL string, next http.Handler) http.Handler {
	csp := "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self' " + twofoldURL + "; base-uri 'none'; frame-ancestors 'none'"
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", csp)
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Content-Type-Options", "nosniff")
		if !strings.HasPrefix(r.URL.Path, "/static/") {
			h.Set("Cache-Control", "no-store")
		}
		next.ServeHTTP(w, r)
	})
}

// view is what a page template sees.
type view struct {
	Email, Problem string
	Session        *session
	Passwordless   bool // the log-in page offers "Sign in with your phone"
}

func (s *server) render(w http.ResponseWriter, status int, name string, v view) {
	v.Passwordless = s.cfg.Passwordless
	var buf bytes.Buffer
	if err := s.pages[name].ExecuteTemplate(&buf, "base", v); err != nil {
		s.log.Error("render", "page", name, "err", err)
		http.Error(w, "Internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = buf.WriteTo(w)
}

func (s *server) problem(w http.ResponseWriter, status int, msg string) {
	s.render(w, status, "problem", view{Problem: msg})
}

func randomString() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// start stores sess under a new id, in a new cookie: every change of who the browser is gets a
// new id, so an id seen before (fixed by an attacker, say) never becomes a signed-in one.
func (s *server) start(w http.ResponseWriter, r *http.Request, sess *session) {
	id := randomString()
	now := s.cfg.now()
	s.mu.Lock()
	if c, err := r.Cookie(cookieName); err == nil {
		delete(s.sessions, c.Value)
	}
	for k, old := range s.sessions { // forgotten sessions go too: the table stays small
		if now.After(old.Expires) {
			delete(s.sessions, k)
		}
	}
	s.sessions[id] = sess
	s.mu.Unlock()
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: id, Path: "/", HttpOnly: true,
		Secure: strings.HasPrefix(s.cfg.PublicURL, "https://"), SameSite: http.SameSiteLaxMode})
}

// current returns the browser's session; take also ends it (a pending one is used once).
func (s *server) current(r *http.Request, take bool) *session {
	c, err := r.Cookie(cookieName)
	if err != nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sess := s.sessions[c.Value]
	if sess == nil || take || s.cfg.now().After(sess.Expires) {
		delete(s.sessions, c.Value)
	}
	if sess == nil || s.cfg.now().After(sess.Expires) {
		return nil
	}
	return sess
}

func (s *server) home(w http.ResponseWriter, r *http.Request) {
	sess := s.current(r, false)
	if sess == nil || !sess.SignedIn {
		http.Redirect(w, r, "/login", http.StatusSeeOther)
		return
	}
	s.render(w, http.StatusOK, "home", view{Session: sess})
}

func (s *server) loginPage(w http.ResponseWriter, r *http.Request) {
	s.render(w, http.StatusOK, "login", view{})
}

func (s *server) logout(w http.ResponseWriter, r *http.Request) {
	s.current(r, true)
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: "", Path: "/", MaxAge: -1})
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

// login checks the first factor and sends the browser to Twofold for the second.
func (s *server) login(w http.ResponseWriter, r *http.Request) {
	email := r.PostFormValue("email")
	u, ok, err := s.users.check(email, r.PostFormValue("password"), s.cfg.now())
	switch {
	case err != nil:
		s.render(w, http.StatusTooManyRequests, "login", view{Email: email, Problem: "Too many wrong passwords. Try again in a few minutes."})
		return
	case !ok:
		s.render(w, http.StatusUnauthorized, "login", view{Email: email, Problem: "Wrong email or password."})
		return
	}
	p, err := s.twofold(r.Context())
	if err != nil {
		s.log.Error("Twofold's discovery document", "issuer", s.cfg.TwofoldURL, "err", err)
		s.problem(w, http.StatusBadGateway, "The second-factor service is not answering. Try again in a moment.")
		return
	}
	sess := &session{Email: u.Email, TwofoldID: u.TwofoldID, State: randomString(), Nonce: randomString(),
		Verifier: oauth2.GenerateVerifier(), Expires: s.cfg.now().Add(pendingTTL)}
	target, err := s.authorizeURL(p, sess)
	if err != nil {
		s.log.Error("request object", "err", err)
		s.problem(w, http.StatusInternalServerError, "The sign-in could not start.")
		return
	}
	s.start(w, r, sess)
	http.Redirect(w, r, target, http.StatusSeeOther)
}

// phoneLogin is "Sign in with your phone": no password; Twofold's page asks who, and the
// user approves on their phone (passwordless sign-in, which the step client must allow).
func (s *server) phoneLogin(w http.ResponseWriter, r *http.Request) {
	p, err := s.twofold(r.Context())
	if err != nil {
		s.log.Error("Twofold's discovery document", "issuer", s.cfg.TwofoldURL, "err", err)
		s.problem(w, http.StatusBadGateway, "The sign-in service is not answering. Try again in a moment.")
		return
	}
	sess := &session{Phone: true, State: randomString(), Nonce: randomString(), Verifier: oauth2.GenerateVerifier(),
		Expires: s.cfg.now().Add(pendingTTL)}
	target, err := s.authorizeURL(p, sess)
	if err != nil {
		s.log.Error("request object", "err", err)
		s.problem(w, http.StatusInternalServerError, "The sign-in could not start.")
		return
	}
	s.start(w, r, sess)
	http.Redirect(w, r, target, http.StatusSeeOther)
}

// callback is where Twofold sends the browser back: it checks that this browser started the
// request (state), redeems the code (with the PKCE verifier), verifies the id token (issuer,
// audience, signature against Twofold's JWKS, expiry, nonce) and that it speaks of the user who
// typed the password.
func (s *server) callback(w http.ResponseWriter, r *http.Request) {
	const again = " Log in again."
	sess := s.current(r, true)
	q := r.URL.Query()
	if sess == nil || sess.SignedIn || subtle.ConstantTimeCompare([]byte(q.Get("state")), []byte(sess.State)) != 1 {
		s.problem(w, http.StatusBadRequest, "This sign-in was not started in this browser, or it took too long."+again)
		return
	}
	p, err := s.twofold(r.Context())
	if err != nil {
		s.problem(w, http.StatusBadGateway, "The second-factor service is not answering."+again)
		return
	}
	if iss := q.Get("iss"); iss != "" && iss != s.cfg.TwofoldURL { // RFC 9207: the answer is from our issuer
		s.problem(w, http.StatusBadRequest, "The answer came from another server."+again)
		return
	}
	what := "The second factor"
	if sess.Phone {
		what = "The sign-in with your phone"
	}
	if e := q.Get("error"); e != "" {
		msg := what + " was not confirmed"
		if d := q.Get("error_description"); d != "" {
			msg += ": " + d
		}
		s.problem(w, http.StatusForbidden, msg+again)
		return
	}
	claims, err := s.redeem(r.Context(), p, q.Get("code"), sess)
	if err != nil {
		s.log.Warn("callback", "email", sess.Email, "err", err)
		s.problem(w, http.StatusForbidden, what+" could not be confirmed."+again)
		return
	}
	email := sess.Email
	if sess.Phone {
		email = claims.Username // who approved, checked against the table by redeem
	}
	s.start(w, r, &session{Email: email, Phone: sess.Phone, SignedIn: true, Subject: claims.Subject, ACR: claims.ACR, AMR: claims.AMR,
		Expires: s.cfg.now().Add(sessionTTL)})
	s.log.Info("signed in", "email", email, "sub", claims.Subject, "amr", strings.Join(claims.AMR, " "), "acr", claims.ACR)
	http.Redirect(w, r, "/", http.StatusSeeOther)
}
