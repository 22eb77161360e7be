package console

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/twofold-auth/twofold/internal/apps"
	"github.com/twofold-auth/twofold/internal/audit"
	"github.com/twofold-auth/twofold/internal/callback"
	"github.com/twofold-auth/twofold/internal/clientaddr"
	"github.com/twofold-auth/twofold/internal/ratelimit"
	"github.com/twofold-auth/twofold/internal/twofold"
	"github.com/twofold-auth/twofold/internal/users"
	"github.com/twofold-auth/twofold/internal/wiretext"
)

// Prefix is where the console is mounted; every route is under it.
const Prefix = "/console/"

// Operators checks an operator's password: the first step of signing in.
type Operators interface {
	SignIn(ctx context.Context, email, password string) (twofold.Operator, error)
}

// OperatorLookup finds an operator by email. The console asks on every request, so an operator
// removed with `twofold admin remove` loses their sessions at once.
type OperatorLookup interface {
	OperatorByEmail(ctx context.Context, email string) (twofold.Operator, error)
}

// SecondFactor is the operators' second factor (*Factors).
type SecondFactor interface {
	Enrolled(ctx context.Context, op twofold.Operator) (totp, device bool, err error)
	CheckCode(ctx context.Context, op twofold.Operator, code string) error
	Push(ctx context.Context, op twofold.Operator, details map[string]string) (twofold.ApprovalRequest, error)
	PushStatus(ctx context.Context, op twofold.Operator, uuid string) (twofold.ApprovalRequest, error)
}

// Apps manages applications (*apps.Service).
type Apps interface {
	List(ctx context.Context) ([]twofold.App, error)
	Get(ctx context.Context, id int64) (twofold.App, error)
	Create(ctx context.Context, p apps.CreateParams) (twofold.App, string, error)
	Update(ctx context.Context, id int64, u apps.Update) (twofold.App, error)
	Validate(ctx context.Context, id int64, u apps.Update) error
	RotateKey(ctx context.Context, id int64) (twofold.App, string, error)
	Delete(ctx context.Context, id int64) error
}

// Users finds, names and deletes users (*users.Service).
type Users interface {
	Delete(ctx context.Context, appID, id int64) error
	Find(ctx context.Context, refs []users.Ref) (map[users.Ref]twofold.User, error)
	Factors(ctx context.Context, appID int64, ids []int64) (map[int64]twofold.UserFactors, error)
}

// Callbacks sends an application a test callback (*callback.Dispatcher).
type Callbacks interface {
	Test(ctx context.Context, app twofold.App) (callback.TestResult, error)
}

// EnrolmentQR resolves the QR link of an operator's authenticator enrolment to its otpauth://
// URI (*verify.Service).
type EnrolmentQR interface {
	QR(ctx context.Context, token string) (uri string, size int, err error)
}

// Devices removes devices (*devices.Service).
type Devices interface {
	Delete(ctx context.Context, appID, id int64) (twofold.Device, error)
}

// PasswordlessBlocks says until when a user's passwordless sign-ins are blocked because they
// reported one they did not make (*passwordless.Service).
type PasswordlessBlocks interface {
	BlockedUntil(ctx context.Context, app twofold.App, userID int64) (time.Time, error)
}

// Passkeys lists and removes users' passkeys (*passkeys.Service).
type Passkeys interface {
	List(ctx context.Context, app twofold.App, userID int64) ([]twofold.Passkey, error)
	Remove(ctx context.Context, app twofold.App, userID int64, id string) error
}

// Queries are the read-only queries behind the console's pages (the store).
type Queries interface {
	CountUsers(ctx context.Context, appID int64) (int64, error)
	GetUser(ctx context.Context, appID, id int64) (twofold.User, error)
	SearchUsers(ctx context.Context, appID int64, query string, limit int) ([]twofold.User, error)
	ListDevices(ctx context.Context, appID, userID int64) ([]twofold.Device, error)
	ListApprovals(ctx context.Context, f twofold.ApprovalFilter) ([]twofold.ApprovalRequest, error)
	ListOutbox(ctx context.Context, f twofold.OutboxFilter) ([]twofold.Message, error)
	ListCallbacks(ctx context.Context, f twofold.CallbackFilter) ([]twofold.Callback, error)
	MessagesPerHour(ctx context.Context, appID int64, since time.Time) ([]twofold.HourCount, error)
	VerificationsPerHour(ctx context.Context, appID int64, since time.Time) ([]twofold.HourCount, error)
	AnswerTimes(ctx context.Context, appID int64, since time.Time, limit int) ([]twofold.AnswerTime, error)
}

// Audit is the audit trail (*audit.Log): the console records sign-ins and shows the entries.
type Audit interface {
	Record(ctx context.Context, e twofold.AuditEvent)
	List(ctx context.Context, f twofold.AuditFilter) ([]twofold.AuditEvent, error)
}

// Deps are the services the console works with. Audit may be nil: then nothing is recorded
// and the audit page says the trail is off. Lookup may be nil: sessions then outlive an
// operator's removal until they expire. Callbacks may be nil: then no test callback is
// offered. EnrolmentQR may be nil: then enrolment links are not found. StepClients may be nil:
// then applications' pages have no step clients. Passwordless may be nil: then users' pages say
// nothing of passwordless blocks. Passkeys may be nil: then users' pages have no passkeys.
type Deps struct {
	Operators   Operators
	Lookup      OperatorLookup
	Factors     SecondFactor
	Apps        Apps
	Users       Users
	Devices     Devices
	Queries     Queries
	Groups      Groups
	Audit       Audit
	Callbacks   Callbacks
	EnrolmentQR EnrolmentQR
	StepClients StepClients
	Twilio      Twilio // an application's Verify API credentials; nil: not shown

	Passwordless PasswordlessBlocks
	Passkeys     Passkeys
	// RecoveryCodes describes and revokes users' recovery codes (*recovery.Service); nil: not shown.
	RecoveryCodes RecoveryCodes
}

// RecoveryCodes describes a user's set of recovery codes (never the codes) and revokes it.
type RecoveryCodes interface {
	Remaining(ctx context.Context, app twofold.App, userID int64) (twofold.RecoveryCodes, error)
	Revoke(ctx context.Context, app twofold.App, userID int64) (int64, error)
}

// Defaults are the server's settings an application gets where it sets none of its own; the
// settings form shows them beside empty fields.
type Defaults struct {
	Limits    map[twofold.LimitKind]twofold.Limit
	Providers map[twofold.Channel]string
}

// Config tunes the console.
type Config struct {
	// PublicURL is the server's base URL. With https, session cookies are Secure; its origin is
	// accepted for form posts (besides the request's own host).
	PublicURL string
	// IdleTimeout ends a session unused this long (default 30 minutes); MaxAge ends any session
	// this long after sign-in (default 12 hours).
	IdleTimeout, MaxAge time.Duration
	// SignInPerAddress and SignInPerAccount bound password sign-ins per client address and per
	// email as typed (known or not), in this process; a zero Limit is off.
	SignInPerAddress, SignInPerAccount twofold.Limit
	// TrustedProxies are the reverse proxies whose X-Forwarded-For names the client; from any
	// other peer the header is ignored. None by default.
	TrustedProxies clientaddr.Proxies
	Now            func() time.Time // nil: time.Now
	Log            *slog.Logger     // nil: slog.Default()
	// OnRoute, if set, is told each route pattern the console registers.
	OnRoute func(pattern string)
	// Defaults are the server's limits and providers (none: the settings form names no value).
	Defaults Defaults
}

// console serves the pages.
type console struct {
	d        Deps
	cfg      Config
	sessions *sessions
	// perAddress and perAccount limit sign-ins (signinAllowed).
	perAddress, perAccount *ratelimit.Keyed[string]
	secure                 bool   // Secure cookies
	origin                 string // the public URL's origin, "" if none
	mux                    *http.ServeMux
}

// New returns the console, to be mounted at Prefix. Sessions live in memory: a restart of the
// server signs every operator out.
func New(d Deps, cfg Config) http.Handler {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = 30 * time.Minute
	}
	if cfg.MaxAge <= 0 {
		cfg.MaxAge = 12 * time.Hour
	}
	c := &console{d: d, cfg: cfg, sessions: newSessions(cfg.Now, cfg.IdleTimeout, cfg.MaxAge), mux: http.NewServeMux(),
		perAddress: ratelimit.New[string](cfg.SignInPerAddress), perAccount: ratelimit.New[string](cfg.SignInPerAccount)}
	if u, err := url.Parse(cfg.PublicURL); err == nil && u.Host != "" {
		c.secure = u.Scheme == "https"
		c.origin = u.Scheme + "://" + u.Host
	}
	c.routes()
	return c
}

func (c *console) routes() {
	m := routeNotes{c.mux, c.cfg.OnRoute}
	// Open to everyone: the sign-in form and the console's own CSS and JS.
	m.HandleFunc("GET /console/static/{file}", c.static)
	m.HandleFunc("GET /console/signin", c.signinForm)
	m.HandleFunc("POST /console/signin", c.post(c.signin))
	m.HandleFunc("GET /console/enrol/{token}", c.enrolment) // the link is the capability
	// Half signed in: the second factor.
	m.HandleFunc("GET /console/signin/factor", c.half(c.factorForm))
	m.HandleFunc("POST /console/signin/code", c.post(c.half(c.code)))
	m.HandleFunc("POST /console/signin/push", c.post(c.half(c.push)))
	m.HandleFunc("GET /console/signin/push", c.half(c.pushWait))
	m.HandleFunc("GET /console/signin/push/status", c.half(c.pushStatus))
	m.HandleFunc("POST /console/signin/push/complete", c.post(c.half(c.pushComplete)))
	// Signed in.
	m.HandleFunc("POST /console/signout", c.post(c.full(c.signout)))
	m.HandleFunc("GET /console/{$}", c.full(func(w http.ResponseWriter, r *http.Request, _ *request) {
		http.Redirect(w, r, "/console/apps", http.StatusSeeOther)
	}))
	m.HandleFunc("GET /console/apps", c.full(c.appList))
	m.HandleFunc("GET /console/apps/new", c.full(c.appNew))
	m.HandleFunc("POST /console/apps/new", c.post(c.full(c.appCreate)))
	m.HandleFunc("GET /console/apps/{app}", c.app(c.appShow))
	m.HandleFunc("GET /console/apps/{app}/settings", c.app(c.appSettings))
	m.HandleFunc("POST /console/apps/{app}/settings", c.post(c.app(c.appSave)))
	m.HandleFunc("POST /console/apps/{app}/callbacks/enable", c.post(c.app(c.appEnableCallbacks)))
	m.HandleFunc("POST /console/apps/{app}/callbacks/test", c.post(c.app(c.appTestCallback)))
	m.HandleFunc("GET /console/apps/{app}/rotate", c.app(c.appRotateConfirm))
	m.HandleFunc("POST /console/apps/{app}/rotate", c.post(c.app(c.appRotate)))
	m.HandleFunc("GET /console/apps/{app}/delete", c.app(c.appDeleteConfirm))
	m.HandleFunc("POST /console/apps/{app}/delete", c.post(c.app(c.appDelete)))
	if c.d.StepClients != nil {
		c.stepClientRoutes(m)
	}
	if c.d.Twilio != nil {
		c.twilioRoutes(m)
	}
	m.HandleFunc("GET /console/apps/{app}/users", c.app(c.userSearch))
	m.HandleFunc("GET /console/apps/{app}/users/{user}", c.app(c.userShow))
	m.HandleFunc("GET /console/apps/{app}/users/{user}/delete", c.app(c.userDeleteConfirm))
	m.HandleFunc("POST /console/apps/{app}/users/{user}/delete", c.post(c.app(c.userDelete)))
	m.HandleFunc("POST /console/apps/{app}/users/{user}/devices/{device}/delete", c.post(c.app(c.deviceDelete)))
	if c.d.RecoveryCodes != nil {
		m.HandleFunc("POST /console/apps/{app}/users/{user}/recovery_codes/revoke", c.post(c.app(c.recoveryRevoke)))
	}
	m.HandleFunc("POST /console/apps/{app}/users/{user}/passkeys/{passkey}/delete", c.post(c.app(c.passkeyDelete)))
	m.HandleFunc("GET /console/apps/{app}/groups", c.app(c.groupList))
	m.HandleFunc("GET /console/apps/{app}/groups/{group}", c.app(c.groupShow))
	m.HandleFunc("POST /console/apps/{app}/groups/{group}/close", c.post(c.app(c.groupClose)))
	m.HandleFunc("GET /console/approvals", c.full(c.approvalList))
	m.HandleFunc("GET /console/outbox", c.full(c.outboxList))
	m.HandleFunc("GET /console/callbacks", c.full(c.callbackList))
	m.HandleFunc("GET /console/audit", c.full(c.auditList))
	m.HandleFunc("GET /console/activity", c.full(c.activity))
	// Anything else: not found, for signed-in operators; the sign-in page for everyone else.
	m.HandleFunc("/console/", c.full(func(w http.ResponseWriter, r *http.Request, q *request) {
		c.notFound(w, r, q)
	}))
}

// routeNotes registers routes and tells onRoute (if set) of each pattern.
type routeNotes struct {
	mux     *http.ServeMux
	onRoute func(string)
}

func (m routeNotes) HandleFunc(pattern string, h func(http.ResponseWriter, *http.Request)) {
	if m.onRoute != nil {
		m.onRoute(pattern)
	}
	m.mux.HandleFunc(pattern, h)
}

// ContentSecurityPolicy is sent with every console response: only the console's own script
// and style files run, nothing is framed, and forms post only to the console.
const ContentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'; " +
	"require-trusted-types-for 'script'; trusted-types console"

var securityHeaders = [][2]string{
	{"Content-Security-Policy", ContentSecurityPolicy},
	{"X-Content-Type-Options", "nosniff"},
	{"X-Frame-Options", "DENY"},
	// same-origin, not no-referrer: browsers send "Origin: null" on form posts under no-referrer,
	// and the console checks that posts come from its own pages.
	{"Referrer-Policy", "same-origin"},
	{"Cross-Origin-Opener-Policy", "same-origin"},
	{"Cross-Origin-Resource-Policy", "same-origin"},
	{"Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=(), usb=()"},
}

func (c *console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	for _, kv := range securityHeaders {
		h.Set(kv[0], kv[1])
	}
	h.Set("Cache-Control", "no-store") // pages show keys and personal data; static files say otherwise
	if !validText(r.URL.Path, r.URL.Query()) {
		c.badText(w, r)
		return
	}
	c.mux.ServeHTTP(w, r)
}

// validText reports whether path and every name and value of form are UTF-8 text without NUL
// bytes: what the store can keep alike on both engines (package wiretext).
func validText(path string, form url.Values) bool {
	if !wiretext.Valid(path) {
		return false
	}
	for k, vs := range form {
		if !wiretext.Valid(k) {
			return false
		}
		for _, v := range vs {
			if !wiretext.Valid(v) {
				return false
			}
		}
	}
	return true
}

// badText answers a request whose address or form holds text that is not UTF-8 or holds NUL
// bytes.
func (c *console) badText(w http.ResponseWriter, r *http.Request) {
	c.render(w, r, http.StatusBadRequest, "message", &view{Title: "Refused", Data: message{
		Heading: "Refused", Text: "The address or the form holds characters that are not text (NUL bytes or invalid UTF-8).",
		Link: "/console/", LinkText: "Back to the console"}})
}

// request is what a handler knows about the operator's session.
type request struct {
	sid  string   // the session's id (the cookie)
	sess *session // a copy; change the session through c.sessions
}

// post wraps a POST handler: the form must come from the console's own pages (Origin or
// Referer), and is read with a size limit. The CSRF token is checked once the session is known.
func (c *console) post(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !c.sameOrigin(r) {
			c.forbidden(w, r, "This form was not sent from the console's own pages.")
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
		if err := r.ParseForm(); err != nil {
			status := http.StatusBadRequest
			if errors.As(err, new(*http.MaxBytesError)) {
				status = http.StatusRequestEntityTooLarge
			}
			c.render(w, r, status, "message", &view{Title: "Refused", Data: message{
				Heading: "Refused", Text: "The form could not be read.", Link: "/console/", LinkText: "Back to the console"}})
			return
		}
		if !validText("", r.PostForm) {
			c.badText(w, r)
			return
		}
		next(w, r)
	}
}

// sameOrigin reports whether a post comes from this server's pages: its Origin (or, without
// one, its Referer) is the request's own host or the public URL's origin.
func (c *console) sameOrigin(r *http.Request) bool {
	from := r.Header.Get("Origin")
	if from == "" || from == "null" {
		ref, err := url.Parse(r.Header.Get("Referer"))
		if err != nil || ref.Host == "" {
			return false
		}
		from = ref.Scheme + "://" + ref.Host
	}
	if c.origin != "" && strings.EqualFold(from, c.origin) {
		return true
	}
	u, err := url.Parse(from)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" && strings.EqualFold(u.Host, r.Host)
}

// half wraps the handlers of the second step of signing in: they need a session that has
// passed the password (and, for posts, its CSRF token). A fully signed-in operator goes home.
func (c *console) half(next func(http.ResponseWriter, *http.Request, *request)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		q := c.session(r)
		switch {
		case q == nil:
			c.signedOut(w, r)
			return
		case q.sess.stage == stageFull:
			http.Redirect(w, r, "/console/", http.StatusSeeOther)
			return
		}
		if r.Method == http.MethodPost && !q.sess.validCSRF(r.PostFormValue("csrf")) {
			c.forbidden(w, r, "The form has expired or was not sent from this console. Go back, reload the page and try again.")
			return
		}
		next(w, r, q)
	}
}

// full wraps the handlers of signed-in operators. Their actions are recorded in the audit
// trail as "operator:EMAIL".
func (c *console) full(next func(http.ResponseWriter, *http.Request, *request)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		q := c.session(r)
		if q == nil || q.sess.stage != stageFull {
			c.signedOut(w, r)
			return
		}
		if r.Method == http.MethodPost && !q.sess.validCSRF(r.PostFormValue("csrf")) {
			c.forbidden(w, r, "The form has expired or was not sent from this console. Go back, reload the page and try again.")
			return
		}
		r = r.WithContext(audit.WithActor(r.Context(), actor(q.sess.op)))
		next(w, r, q)
	}
}

func actor(op twofold.Operator) string { return "operator:" + op.Email }

// session returns the request's live session, or nil. With Lookup, an operator removed, or
// given a new password, since signing in has no session any more.
func (c *console) session(r *http.Request) *request {
	ck, err := r.Cookie(sessionCookie)
	if err != nil || ck.Value == "" {
		return nil
	}
	s, ok := c.sessions.get(ck.Value)
	if !ok {
		return nil
	}
	if c.d.Lookup != nil {
		op, err := c.d.Lookup.OperatorByEmail(r.Context(), s.op.Email)
		// A new password (twofold admin password) ends the sessions opened with the old one.
		if err != nil || op.ID != s.op.ID || op.PasswordHash != s.op.PasswordHash {
			if errors.Is(err, twofold.ErrNotFound) || err == nil {
				c.sessions.delete(ck.Value)
			}
			return nil
		}
	}
	return &request{sid: ck.Value, sess: &s}
}

// signedOut answers a request without a (suitable) session: pages go to the sign-in form,
// anything else is 401.
func (c *console) signedOut(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodGet && !strings.HasSuffix(r.URL.Path, "/status") {
		http.Redirect(w, r, "/console/signin", http.StatusSeeOther)
		return
	}
	if strings.HasSuffix(r.URL.Path, "/status") {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "signed out"})
		return
	}
	c.render(w, r, http.StatusUnauthorized, "message", &view{Title: "Signed out", Data: message{
		Heading: "You are signed out", Text: "Your session has ended. Sign in again to continue.", Link: "/console/signin", LinkText: "Sign in"}})
}

// setCookie gives the browser the session's id.
func (c *console) setCookie(w http.ResponseWriter, r *http.Request, name, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{
		Name: name, Value: value, Path: Prefix, MaxAge: maxAge,
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: c.secure || r.TLS != nil,
	})
}
