package main

import (
	"bytes"
	"context"
	"embed"
	"encoding/json"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/twofold-auth/twofold/client"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// server is the sample web application.
type server struct {
	cfg       config
	log       *slog.Logger
	tf        *client.Client
	users     *userStore
	sessions  *sessionStore
	attempts  *attemptLimiter
	approvals *approvalStore
	phones    *phoneStore
	pages     map[string]*template.Template
	handler   http.Handler
	now       func() time.Time

	appMu sync.Mutex
	app   *client.App // the Twofold application, read once

	// pk makes the passkey calls (passkeys.go): tf, or a test's double. passkeyModes says
	// whether the application has passkeys and allows them alone.
	pk           passkeyAPI
	passkeyModes passkeyModes

	// onCallback, when set (by tests), hears of every valid OneTouch callback.
	onCallback func(uuid, status string)
	// onPhoneDropped, when set (by tests), hears when a sign-in with the phone that was left has
	// been closed in Twofold (or found not to need it).
	onPhoneDropped func(uuid string)
}

// newServer returns the sample's HTTP handler (a *server).
func newServer(cfg config) (http.Handler, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	tf, err := client.New(cfg.TwofoldURL, cfg.APIKey, client.WithHTTPClient(cfg.HTTPClient),
		client.WithUserAgent("twofold-login-sample"))
	if err != nil {
		return nil, fmt.Errorf("TWOFOLD_URL: %w", err)
	}
	pages, err := parsePages()
	if err != nil {
		return nil, err
	}
	s := &server{
		cfg:       cfg,
		log:       cfg.Logger,
		tf:        tf,
		users:     newUserStore(),
		sessions:  newSessionStore(strings.HasPrefix(cfg.PublicURL, "https://"), cfg.now),
		attempts:  newAttemptLimiter(10, 15*time.Minute),
		approvals: newApprovalStore(),
		phones:    newPhoneStore(),
		pages:     pages,
		now:       cfg.now,
		pk:        tf,
	}
	if cfg.SeedUsers != "" {
		n, err := s.seedUsers(cfg.SeedUsers)
		if err != nil {
			return nil, fmt.Errorf("seed users: %w", err)
		}
		s.log.Info("seeded users", "file", cfg.SeedUsers, "users", n)
	}
	s.handler = securityHeaders(s.routes())
	return s, nil
}

func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

func (s *server) routes() *http.ServeMux {
	mux := http.NewServeMux()
	static, _ := fs.Sub(staticFS, "static")
	mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)))
	mux.HandleFunc("GET /{$}", s.home)

	mux.HandleFunc("GET /signup", s.signupPage)
	mux.HandleFunc("POST /signup", s.signup)
	mux.HandleFunc("GET /login", s.loginPage)
	mux.HandleFunc("POST /login", s.login)
	mux.HandleFunc("POST /logout", s.logout)

	// Sign in with the phone (passwordless.go): only these answer a session that waits for it.
	mux.HandleFunc("POST "+phonePath, s.phoneStart)
	mux.HandleFunc("GET "+phonePath, s.phonePage)
	mux.HandleFunc("GET "+phonePath+"/status", s.phoneStatus)
	mux.HandleFunc("POST "+phonePath+"/finish", s.phoneFinish)
	mux.HandleFunc("POST "+phonePath+"/cancel", s.phoneCancel)

	// The second step: only these answer a half-logged-in session.
	mux.HandleFunc("GET /login/wait", s.waitPage)
	mux.HandleFunc("GET /login/wait/status", s.waitStatus)
	mux.HandleFunc("POST /login/wait", s.waitFinish)
	mux.HandleFunc("GET /login/refused", s.refusedPage)
	mux.HandleFunc("GET /login/code", s.codePage)
	mux.HandleFunc("POST /login/code", s.checkCode)
	mux.HandleFunc("POST /login/sms", s.sendCode)
	mux.HandleFunc("POST /login/call", s.sendCode)
	mux.HandleFunc("GET "+recoveryPath, s.recoveryPage)
	mux.HandleFunc("POST "+recoveryPath, s.checkRecoveryCode)
	mux.HandleFunc("GET "+recoveryCodesPath, s.recoveryCodesPage)
	mux.HandleFunc("POST "+recoveryCodesPath, s.recoveryCodesSaved)

	mux.HandleFunc("GET /protected", s.protectedPage)
	mux.HandleFunc("GET /profile", s.profilePage)
	mux.HandleFunc("GET /profile/qr.png", s.profileQR)
	mux.HandleFunc("GET /profile/registration", s.registrationStatus)
	mux.HandleFunc("POST /profile/2fa/enable", s.enable2FA)
	mux.HandleFunc("POST /profile/2fa/disable", s.disable2FA)
	mux.HandleFunc("GET "+addAppPath, s.addAppPage)
	mux.HandleFunc("POST "+addAppPath+"/later", s.addAppLater)

	// Passkeys (passkeys.go): JSON calls from static/app.js, and the profile's remove buttons.
	mux.HandleFunc("POST "+passkeyProfilePath+"/begin", s.passkeyRegisterBegin)
	mux.HandleFunc("POST "+passkeyProfilePath+"/finish", s.passkeyRegisterFinish)
	mux.HandleFunc("POST "+passkeyProfilePath+"/{id}/delete", s.passkeyDelete)
	mux.HandleFunc("POST "+passkeyLoginPath+"/begin", s.passkeyLoginBegin)
	mux.HandleFunc("POST "+passkeyLoginPath+"/finish", s.passkeyLoginFinish)

	mux.HandleFunc("POST "+callbackPath, s.callback)
	mux.HandleFunc("GET "+callbackPath, s.callback) // for apps configured with --callback-method GET
	return mux
}

// securityHeaders sets the headers every answer carries: a Content-Security-Policy that allows
// only this origin's script, styles and images (no inline script), no framing, no referrer.
func securityHeaders(next http.Handler) http.Handler {
	const csp = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; " +
		"form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", csp)
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		if !strings.HasPrefix(r.URL.Path, "/static/") {
			h.Set("Cache-Control", "no-store")
		}
		next.ServeHTTP(w, r)
	})
}

// view is what a page template sees.
type view struct {
	Page    string // the page's name; its heading carries it as data-page
	CSRF    string
	Stage   stage
	Flash   string
	Problem string

	Email, Phone, CountryCode string
	TwoFactor                 bool   // the sign-up checkbox, or the profile's state
	Method                    string // protected page: how the log-in was confirmed
	Number                    string // wait pages: number matching
	Expired                   bool   // wait page: the request expired
	CodeVia                   string // code page: "sms", "call" or "app"
	Resent                    bool   // code page: a new code, sent the same way again
	SendProblem               string // code page: why no code could be sent

	MaskedPhone string // the user's phone, as maskPhone shows it (profile, code page)

	// Profile.
	StatusUnavailable bool
	Devices           []string
	HasPushDevice     bool
	RegLink           string
	RegMinutes        int // how long the link has left, in whole minutes
	AppName           string
	AddApp            bool // the offer after a log-in by code, rather than the profile page

	// Passkeys.
	PasskeysOn          bool             // profile: Twofold's passkeys can be used here
	Passkeys            []client.Passkey // profile: the user's passkeys
	PasskeysUnavailable bool             // profile: Twofold did not list them
	PasskeySignIn       bool             // login page: "Sign in with a passkey" (passwordless); second step: "Use a passkey"
	RecoveryCodes       []string         // the recovery codes page: the codes, shown once
}

func (v view) LoggedIn() bool { return v.Stage == loggedIn }
func (v view) Pending() bool  { return v.Stage == pending2FA }

func parsePages() (map[string]*template.Template, error) {
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return nil, err
	}
	pages := map[string]*template.Template{}
	for _, n := range names {
		name := strings.TrimSuffix(strings.TrimPrefix(n, "templates/"), ".html")
		if name == "base" {
			continue
		}
		t, err := template.New(name).ParseFS(templateFS, "templates/base.html", n)
		if err != nil {
			return nil, err
		}
		pages[name] = t
	}
	return pages, nil
}

// render writes the page name with the session's CSRF token and its one-time notices.
func (s *server) render(w http.ResponseWriter, status int, name string, sess session, v view) {
	if sess.Flash != "" || sess.Problem != "" {
		v.Flash, v.Problem = cmpOr(v.Flash, sess.Flash), cmpOr(v.Problem, sess.Problem)
		sess.Flash, sess.Problem = "", ""
		s.sessions.save(sess)
	}
	v.Page, v.CSRF, v.Stage = name, sess.CSRF, sess.Stage
	var buf bytes.Buffer
	if err := s.pages[name].ExecuteTemplate(&buf, "base", v); err != nil {
		s.log.Error("render", "page", name, "err", err)
		http.Error(w, "Internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func redirect(w http.ResponseWriter, r *http.Request, path string) {
	http.Redirect(w, r, path, http.StatusSeeOther)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// postForm reads a POST form and checks its CSRF token against the session. On failure it
// answers 403 and returns false.
func (s *server) postForm(w http.ResponseWriter, r *http.Request) (session, bool) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		http.Error(w, "Bad form", http.StatusBadRequest)
		return session{}, false
	}
	sess, ok := s.sessions.load(r)
	if !ok || !validCSRF(sess, r) {
		s.log.Warn("refused a form without a valid CSRF token", "path", r.URL.Path, "session", ok)
		fresh := sess
		if !ok {
			fresh = s.sessions.start(w, session{})
		}
		s.render(w, http.StatusForbidden, "expired", fresh, view{})
		return session{}, false
	}
	return sess, true
}

// need returns the request's session if it is at stage want; otherwise it sends the browser
// where that session belongs and returns false. A half-logged-in session goes back to its
// second step, whatever it asked for.
func (s *server) need(w http.ResponseWriter, r *http.Request, want stage) (session, bool) {
	sess, ok := s.sessions.load(r)
	if ok && sess.Stage == want {
		return sess, true
	}
	switch {
	case ok && sess.Stage == pending2FA:
		redirect(w, r, secondStepPath(sess))
	case ok && sess.Stage == loggedIn:
		redirect(w, r, "/protected")
	default:
		redirect(w, r, "/login")
	}
	return session{}, false
}

// needUser is need(loggedIn) with the session's user; a session whose user is gone is ended
// and sent to log in again.
func (s *server) needUser(w http.ResponseWriter, r *http.Request) (session, user, bool) {
	sess, ok := s.need(w, r, loggedIn)
	if !ok {
		return session{}, user{}, false
	}
	u, found := s.users.get(sess.UserID)
	if !found {
		s.sessions.destroy(w, sess.ID)
		redirect(w, r, "/login")
		return session{}, user{}, false
	}
	return sess, u, true
}

func secondStepPath(sess session) string {
	if sess.ApprovalUUID != "" {
		return "/login/wait"
	}
	return "/login/code"
}

func (s *server) home(w http.ResponseWriter, r *http.Request) {
	sess, ok := s.sessions.load(r)
	switch {
	case ok && sess.Stage == loggedIn:
		redirect(w, r, "/protected")
	case ok && sess.Stage == pending2FA:
		redirect(w, r, secondStepPath(sess))
	default:
		redirect(w, r, "/login")
	}
}

// twofoldApp returns the Twofold application of the API key, asked once.
func (s *server) twofoldApp(ctx context.Context) (client.App, error) {
	s.appMu.Lock()
	defer s.appMu.Unlock()
	if s.app != nil {
		return *s.app, nil
	}
	app, err := s.tf.App(ctx)
	if err != nil {
		return client.App{}, err
	}
	s.app = &app
	return app, nil
}

// approval is a OneTouch request this sample made, and what it knows of its answer.
type approval struct {
	UserID  string
	AuthyID int64
	Status  string // pending, approved, denied or expired
	Via     string // how the answer arrived: "callback" or "poll"
	Created time.Time
	checked time.Time // when Twofold was last asked
}

// approvalStore holds the sample's OneTouch requests by uuid: the callback writes the answers,
// the wait page's poll reads them.
type approvalStore struct {
	mu sync.Mutex
	m  map[string]approval
}

func newApprovalStore() *approvalStore { return &approvalStore{m: map[string]approval{}} }

func (st *approvalStore) add(uuid string, a approval) {
	st.mu.Lock()
	defer st.mu.Unlock()
	for id, old := range st.m {
		if a.Created.Sub(old.Created) > 24*time.Hour {
			delete(st.m, id)
		}
	}
	a.checked = a.Created
	st.m[uuid] = a
}

func (st *approvalStore) get(uuid string) (approval, bool) {
	st.mu.Lock()
	defer st.mu.Unlock()
	a, ok := st.m[uuid]
	return a, ok
}

// settle records the answer to a pending request; an answered request keeps its answer.
func (st *approvalStore) settle(uuid, status, via string) (approval, bool) {
	st.mu.Lock()
	defer st.mu.Unlock()
	a, ok := st.m[uuid]
	if !ok {
		return approval{}, false
	}
	if a.Status == "pending" {
		a.Status, a.Via = status, via
		st.m[uuid] = a
	}
	return a, true
}

// due reports whether Twofold should be asked about a pending request now: at most every
// interval, so that the callback, which is immediate, normally brings the answer.
func (st *approvalStore) due(uuid string, now time.Time, interval time.Duration) bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	a, ok := st.m[uuid]
	if !ok || a.Status != "pending" || now.Sub(a.checked) < interval {
		return false
	}
	a.checked = now
	st.m[uuid] = a
	return true
}
