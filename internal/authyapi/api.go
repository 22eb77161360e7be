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
	"path"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/twofold-auth/twofold/internal/apps"
	"github.com/twofold-auth/twofold/internal/audit"
	"github.com/twofold-auth/twofold/internal/devices"
	"github.com/twofold-auth/twofold/internal/live"
	"github.com/twofold-auth/twofold/internal/metrics"
	"github.com/twofold-auth/twofold/internal/onetouch"
	"github.com/twofold-auth/twofold/internal/twofold"
	"github.com/twofold-auth/twofold/internal/users"
	"github.com/twofold-auth/twofold/internal/verify"
	"github.com/twofold-auth/twofold/internal/wiretext"
)

// MaxBody bounds a request body; Authy requests are small, even approval requests with logos.
const MaxBody = 256 << 10

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

	mu       sync.Mutex
	limiters map[int64]*rate.Limiter

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
		usage: svc.Usage, live: svc.Live, metrics: m, log: log, cfg: cfg, now: now, limiters: map[int64]*rate.Limiter{},
		stopStreams: make(chan struct{})}
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
	// One pattern for the POST user actions: users/{id}/delete and users/delete/{id} would
	// otherwise be ambiguous patterns for the mux.
	a.handle(mux, "POST "+p+"/users/{a}/{b}", a.userAction)
	a.handle(mux, "GET "+p+"/sms/{id}", a.sendCode(twofold.SMS))
	a.handle(mux, "GET "+p+"/call/{id}", a.sendCode(twofold.Call))
	a.handle(mux, "POST "+p+"/email/{id}", a.sendCode(twofold.Email))
	a.handle(mux, "GET "+p+"/verify/{token}/{id}", a.verifyToken)
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
// are logged with the request and answered without detail.
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
	case errors.Is(err, context.Canceled):
		return // the client went away
	}
	a.log.ErrorContext(r.Context(), "request failed", "route", r.Pattern, "err", err)
	writeErrorStatus(w, http.StatusInternalServerError, errInternal)
}

// limitName labels a per-user limit by the route that hit it.
func limitName(r *http.Request) string {
	if strings.Contains(r.Pattern, "/verify/") {
		return "verify_failures"
	}
	return "sends"
}

// rateLimit applies the application's token bucket (shared by its API key and its devices) and
// returns the 60003 error when it is empty.
func (a *API) rateLimit(ctx context.Context, appID int64) *twofold.Error {
	if a.allow(ctx, appID) {
		return nil
	}
	a.metrics.Limited.WithLabelValues("api_key").Inc()
	return twofold.ErrLimit("request rate limit for this application", time.Second)
}

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
