// Package authyapi is the Authy REST API on the wire: parameter decoding from every encoding
// the client libraries use, API-key authentication, the routes, and the exact response bodies
// and error envelope those libraries expect (see shared/spec/authy-api.md). It holds no business
// rules; it translates to and from the domain services.
package authyapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"path"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/twofold-auth/twofold/internal/accesslog"
	"github.com/twofold-auth/twofold/internal/apps"
	"github.com/twofold-auth/twofold/internal/audit"
	"github.com/twofold-auth/twofold/internal/clientaddr"
	"github.com/twofold-auth/twofold/internal/devices"
	"github.com/twofold-auth/twofold/internal/live"
	"github.com/twofold-auth/twofold/internal/metrics"
	"github.com/twofold-auth/twofold/internal/onetouch"
	"github.com/twofold-auth/twofold/internal/passkeys"
	"github.com/twofold-auth/twofold/internal/passwordless"
	"github.com/twofold-auth/twofold/internal/ratelimit"
	"github.com/twofold-auth/twofold/internal/recovery"
	"github.com/twofold-auth/twofold/internal/twofold"
	"github.com/twofold-auth/twofold/internal/users"
	"github.com/twofold-auth/twofold/internal/verify"
	"github.com/twofold-auth/twofold/internal/wiretext"
)

// MaxBody bounds a request body; Authy requests are small, even approval requests with logos.
const MaxBody = 256 << 10

// MaxHeaderBytes bounds a request's line and headers; Handler answers a request over it with the
// envelope (431). The server lets net/http read more than this (ReadHeaderLimit) so that only
// requests past that answer in net/http's plain text.
const MaxHeaderBytes = 64 << 10

// ReadHeaderLimit is what the http.Server should set as its MaxHeaderBytes.
const ReadHeaderLimit = 1 << 20

// Config tunes the API.
type Config struct {
	// PublicURL is the base URL clients reach this server at, for links in responses (the QR
	// code). Empty means derive it from each request's Host.
	PublicURL string
	// RatePerKey limits requests per application: Rate requests per second with bursts of Burst.
	// A zero Rate disables the limit.
	RatePerKey rate.Limit
	Burst      int
	// Shared, when set, replaces the in-process bucket: servers that share one database share
	// one budget per application (SharedLimiter).
	Shared *SharedLimiter

	// DeviceRate and DeviceUserRate limit the device API per device and per user (all the
	// user's devices together), apart from the application's budget above: an end user's
	// flood never spends it, nor does the application's traffic starve its devices. They are
	// counted in process, by each server: they protect capacity and keep one end user from
	// another, with no quota promised to anyone, so behind N servers a device gets at most N
	// times its limit, and the counting costs no write to the store (the very cost they bound).
	DeviceRate, DeviceUserRate twofold.Limit
	// AddressRate limits requests per client address to the routes that need no key or token
	// (device registration, QR images), counted in process like the device limits.
	AddressRate twofold.Limit
	// TrustedProxies are the reverse proxies whose X-Forwarded-For names the client address.
	TrustedProxies clientaddr.Proxies
	// MaxDeviceStreams and MaxUserStreams bound the open event streams per device and per user
	// on this server; a stream opened over the bound ends the oldest. Zero is no bound.
	MaxDeviceStreams, MaxUserStreams int
}

// Services are the domain services the API translates to.
type Services struct {
	Apps     *apps.Service
	Users    *users.Service
	Verify   *verify.Service
	Devices  *devices.Service
	OneTouch *onetouch.Service
	Usage    *apps.UsageRecorder
	Live     *live.Broker
	// Passwordless runs passwordless sign-ins; nil: its routes answer 404.
	Passwordless *passwordless.Service
	// Recovery makes and describes users' recovery codes; nil: its routes answer 404.
	Recovery *recovery.Service
	// Passkeys runs passkey ceremonies; nil: their routes answer 404.
	Passkeys *passkeys.Service
}

// API serves the Authy-compatible endpoints and the device API.
type API struct {
	apps     *apps.Service
	users    *users.Service
	verify   *verify.Service
	devices  *devices.Service
	onetouch *onetouch.Service
	usage    *apps.UsageRecorder
	live     *live.Broker
	metrics  *metrics.Metrics
	log      *slog.Logger
	cfg      Config
	now      func() time.Time

	passwordless *passwordless.Service // nil when the server has none
	recovery     *recovery.Service     // nil when the server has none
	passkeys     *passkeys.Service     // nil when the server has none

	mu       sync.Mutex
	limiters map[int64]*rate.Limiter

	perDevice  *ratelimit.Keyed[int64] // device ids (devicelimit.go)
	perUser    *ratelimit.Keyed[userKey]
	perAddress *ratelimit.Keyed[netip.Prefix]

	stopStreams chan struct{} // closed on shutdown: event streams end
	stopOnce    sync.Once
	streams     streamSet // the open event streams (events.go)
}

// New returns the API. now may be nil for time.Now.
func New(svc Services, m *metrics.Metrics, log *slog.Logger, cfg Config, now func() time.Time) *API {
	if now == nil {
		now = time.Now
	}
	if svc.Live == nil {
		svc.Live = live.NewBroker()
	}
	return &API{apps: svc.Apps, users: svc.Users, verify: svc.Verify, devices: svc.Devices, onetouch: svc.OneTouch,
		passwordless: svc.Passwordless, passkeys: svc.Passkeys, recovery: svc.Recovery, usage: svc.Usage, live: svc.Live, metrics: m, log: log, cfg: cfg, now: now, limiters: map[int64]*rate.Limiter{},
		perDevice:   ratelimit.New[int64](cfg.DeviceRate),
		perUser:     ratelimit.New[userKey](cfg.DeviceUserRate),
		perAddress:  ratelimit.New[netip.Prefix](cfg.AddressRate),
		stopStreams: make(chan struct{}),
		streams:     streamSet{maxDevice: cfg.MaxDeviceStreams, maxUser: cfg.MaxUserStreams}}
}

// StopStreams ends every open event stream, so a graceful shutdown need not wait for them.
func (a *API) StopStreams() { a.stopOnce.Do(func() { close(a.stopStreams); a.streams.stop() }) }

// call is one authenticated API request: the caller's application and its merged parameters.
type call struct {
	app    twofold.App
	params Params
}

type handlerFunc func(w http.ResponseWriter, r *http.Request, c *call) error

// Mux is where routes are registered: an *http.ServeMux, or one that also notes each pattern.
type Mux interface {
	HandleFunc(pattern string, handler func(http.ResponseWriter, *http.Request))
}

// Routes registers the API's routes on mux.
func (a *API) Routes(mux Mux) {
	const p = "/protected/json"
	a.handle(mux, "POST "+p+"/users/new", a.createUser)
	a.handle(mux, "GET "+p+"/users/{id}/status", a.userStatus)
	a.handle(mux, "GET "+p+"/users/{id}/phone_number", a.userPhone)
	a.handle(mux, "GET "+p+"/users/{id}/secret/export", a.exportSecret)
	// One pattern for the POST user actions: users/{id}/delete and users/delete/{id} would
	// otherwise be ambiguous patterns for the mux.
	a.handle(mux, "POST "+p+"/users/{a}/{b}", a.userAction)
	a.handle(mux, "GET "+p+"/sms/{id}", a.sendCode(twofold.SMS))
	a.handle(mux, "GET "+p+"/call/{id}", a.sendCode(twofold.Call))
	a.handle(mux, "POST "+p+"/email/{id}", a.sendCode(twofold.Email))
	a.handle(mux, "GET "+p+"/verify/{token}/{id}", a.verifyToken)
	if a.recovery != nil { // Twofold's addition
		a.handle(mux, "POST "+p+"/users/{id}/recovery_codes", a.generateRecoveryCodes)
		a.handle(mux, "GET "+p+"/users/{id}/recovery_codes", a.recoveryCodesStatus)
	}
	a.handle(mux, "GET "+p+"/app/details", a.appDetails)
	a.handle(mux, "GET "+p+"/app/stats", a.appStats)
	a.handle(mux, "POST "+p+"/sdk/registrations", a.sdkRegistration)
	a.handle(mux, "GET "+p+"/registrations/status", a.registrationStatus)
	a.handle(mux, "POST "+p+"/phones/verification/start", a.phoneVerificationStart)
	a.handle(mux, "GET "+p+"/phones/verification/check", a.phoneVerificationCheck)
	a.handle(mux, "GET "+p+"/phones/verification/status", a.phoneVerificationStatus)
	a.handle(mux, "GET "+p+"/phones/info", a.phoneInfo)
	a.handle(mux, "DELETE "+p+"/sdk/devices/{id}", a.sdkDeleteDevice)
	const o = "/onetouch/json"
	a.handle(mux, "POST "+o+"/users/{id}/approval_requests", a.createApprovalRequest)
	a.handle(mux, "GET "+o+"/approval_requests/{uuid}", a.getApprovalRequest)
	a.handle(mux, "POST "+o+"/approval_requests/{uuid}/close", a.closeApprovalRequest) // Twofold's addition
	a.handle(mux, "POST "+o+"/approval_groups", a.createApprovalGroup)                 // Twofold's addition
	a.handle(mux, "GET "+o+"/approval_groups/{uuid}", a.getApprovalGroup)
	a.handle(mux, "POST "+o+"/approval_groups/{uuid}/close", a.closeApprovalGroup)
	a.handle(mux, "POST "+o+"/passwordless_requests", a.createPasswordless) // Twofold's addition
	a.handle(mux, "GET "+o+"/passwordless_requests/{uuid}", a.getPasswordless)
	a.passkeyRoutes(mux)
	mux.HandleFunc("GET /qr/{file}", a.qrImage)
	a.deviceRoutes(mux)
}

// handle wraps an authenticated handler: decode parameters, find the application by its key,
// apply the per-key rate limit, count the call, and turn errors into the Authy envelope.
func (a *API) handle(mux Mux, pattern string, h handlerFunc) {
	mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		params, err := readParams(r)
		if err != nil {
			a.fail(w, r, err)
			return
		}
		key := r.Header.Get("X-Authy-API-Key")
		if key == "" {
			key, _ = params.String("api_key")
		}
		app, err := a.apps.Authenticate(r.Context(), key)
		if errors.Is(err, twofold.ErrNotFound) {
			a.fail(w, r, errInvalidKey)
			return
		}
		if err != nil {
			a.fail(w, r, err)
			return
		}
		accesslog.SetApp(w, app.ID)
		if err := a.rateLimit(r.Context(), app.ID); err != nil {
			writeError(w, err)
			return
		}
		a.usage.Add(app.ID, a.now(), twofold.UsageAPICalls)
		r = r.WithContext(audit.WithActor(r.Context(), twofold.AppActor(app.ID)))
		if err := h(w, r, &call{app: app, params: params}); err != nil {
			a.fail(w, r, err)
		}
	})
}

// readParams checks the request's path and reads its parameters: every text of the request
// that can reach the store is checked here, once, so both engines see the same text.
func readParams(r *http.Request) (Params, error) {
	if !wiretext.Valid(r.URL.Path) {
		return Params{}, errPathText
	}
	params, err := ParseParams(r, MaxBody)
	if err != nil {
		return Params{}, decodeError(err)
	}
	return params, nil
}

func decodeError(err error) error {
	if errors.Is(err, ErrBodyTooLarge) {
		return errBodyTooLarge
	}
	var pe *ParseError
	if errors.As(err, &pe) {
		return twofold.Errorf(twofold.CodeInvalidEncoding, "Invalid request: %s", pe.Reason)
	}
	var te *TextError
	if errors.As(err, &te) {
		return twofold.ErrInvalidParam(wiretext.Clip(te.Param), "must be UTF-8 text without NUL bytes")
	}
	return err
}

// fail writes err as the Authy envelope. Errors that are not domain errors are internal: they
// are logged with the request and answered without detail, unless the client went away, which
// is no fault of the server's (logged once, at DEBUG).
func (a *API) fail(w http.ResponseWriter, r *http.Request, err error) {
	e, ok := asDomain(err)
	switch {
	case ok && e == errBodyTooLarge:
		writeErrorStatus(w, http.StatusRequestEntityTooLarge, e)
		return
	case ok:
		if e.Code == twofold.CodeRateLimited {
			a.metrics.Limited.WithLabelValues(limitName(r)).Inc()
		}
		writeError(w, e)
		return
	case accesslog.ClientGone(a.log, r, err):
		return
	}
	a.log.ErrorContext(r.Context(), "request failed", "route", r.Pattern, "err", err)
	writeErrorStatus(w, http.StatusInternalServerError, errInternal)
}

// limitName labels a limit a domain service applied by the route that hit it.
func limitName(r *http.Request) string {
	switch {
	case strings.Contains(r.Pattern, "/verify/"), strings.Contains(r.Pattern, "/verification/check"),
		strings.Contains(r.Pattern, "/passkeys/authentications/"):
		return "verify_failures"
	case strings.Contains(r.Pattern, "/approval_requests"), strings.Contains(r.Pattern, "/approval_groups"):
		return "pending_approvals"
	case strings.Contains(r.Pattern, "/passwordless_requests"):
		return "passwordless"
	}
	return "sends"
}

// rateLimit applies the application's token bucket (its API key's; devices have their own,
// limitDevice) and returns the 60003 error when it is empty.
func (a *API) rateLimit(ctx context.Context, appID int64) *twofold.Error {
	if a.allow(ctx, appID) {
		return nil
	}
	a.metrics.Limited.WithLabelValues("api_key").Inc()
	return twofold.ErrLimit("request rate limit for this application", time.Second)
}

// AllowApp spends one request of the application's rate limit and reports whether it had one
// left: the Verify API (internal/verifyapi) spends the same budget.
func (a *API) AllowApp(ctx context.Context, appID int64) bool { return a.allow(ctx, appID) }

func (a *API) allow(ctx context.Context, appID int64) bool {
	if a.cfg.Shared != nil {
		return a.cfg.Shared.Allow(ctx, appID, a.now())
	}
	if a.cfg.RatePerKey <= 0 {
		return true
	}
	a.mu.Lock()
	l, ok := a.limiters[appID]
	if !ok {
		l = rate.NewLimiter(a.cfg.RatePerKey, max(a.cfg.Burst, 1))
		a.limiters[appID] = l
	}
	a.mu.Unlock()
	return l.Allow()
}

// pathID parses a decimal Authy id from the path; anything else is no user at all.
func pathID(r *http.Request, name string) (int64, bool) {
	id, err := strconv.ParseInt(r.PathValue(name), 10, 64)
	return id, err == nil && id > 0
}

// Handler wraps the mux with what every request needs: tolerance of a doubled leading slash
// (clients concatenate base URL and path), JSON 404/405 bodies, panic recovery and metrics.
func Handler(mux *http.ServeMux, m *metrics.Metrics, log *slog.Logger) http.Handler {
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if allowed := allowedMethods(mux, r); len(allowed) > 0 {
			w.Header().Set("Allow", strings.Join(allowed, ", "))
			writeErrorStatus(w, http.StatusMethodNotAllowed, errMethod)
			return
		}
		writeErrorStatus(w, http.StatusNotFound, errNotFound)
	})
	var h http.Handler = mux
	h = m.Instrument(h)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				log.Error("panic serving request", "path", r.URL.Path, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
				writeErrorStatus(w, http.StatusInternalServerError, errInternal)
			}
		}()
		if headerSize(r) > MaxHeaderBytes {
			writeErrorStatus(w, http.StatusRequestHeaderFieldsTooLarge, errHeaderTooLarge)
			return
		}
		if strings.HasPrefix(r.URL.Path, "//") {
			r.URL.Path = "/" + strings.TrimLeft(r.URL.Path, "/")
			r.URL.RawPath = ""
		}
		// The mux would redirect unclean paths ("/a/./b"); no Authy client sends them, and a
		// redirect of a POST is a trap, so they are simply not found. (A trailing slash is clean:
		// pages such as /authenticator/ end in one.)
		if p := path.Clean(r.URL.Path); p != r.URL.Path && p+"/" != r.URL.Path {
			writeErrorStatus(w, http.StatusNotFound, errNotFound)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// headerSize is about what net/http counts against MaxHeaderBytes: the request line and the
// header lines.
func headerSize(r *http.Request) int {
	n := len(r.Method) + len(r.RequestURI) + len(r.Proto) + len("  \r\nHost: \r\n") + len(r.Host)
	for k, vs := range r.Header {
		for _, v := range vs {
			n += len(k) + len(v) + len(": \r\n")
		}
	}
	return n
}

// allowedMethods lists the methods the mux would route r's path with, other than the catch-all.
func allowedMethods(mux *http.ServeMux, r *http.Request) []string {
	var allowed []string
	for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodPatch} {
		if m == r.Method {
			continue
		}
		probe := r.Clone(r.Context())
		probe.Method = m
		if _, pattern := mux.Handler(probe); pattern != "" && pattern != "/" {
			allowed = append(allowed, m)
		}
	}
	return allowed
}
