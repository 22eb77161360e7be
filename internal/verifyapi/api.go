package verifyapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"path"
	"runtime/debug"
	"strings"
	"time"

	"github.com/twofold-auth/twofold/internal/accesslog"
	"github.com/twofold-auth/twofold/internal/apps"
	"github.com/twofold-auth/twofold/internal/audit"
	"github.com/twofold-auth/twofold/internal/metrics"
	"github.com/twofold-auth/twofold/internal/twofold"
	"github.com/twofold-auth/twofold/internal/verify"
	"github.com/twofold-auth/twofold/internal/verifyfactors"
)

// Prefix is where the Verify API's paths begin; Twilio serves them at https://verify.twilio.com.
const Prefix = "/v2"

// Config tunes the API.
type Config struct {
	// PublicURL is the base URL clients reach this server at, for the url and links of
	// resources and the pages of lists. Empty means derive it from each request's Host.
	PublicURL string
	// Allow spends one request of an application's rate limit, false when it has none left:
	// the Authy API's (authyapi.API.AllowApp), so that an application has one budget whichever
	// API it calls. Nil: no limit.
	Allow func(ctx context.Context, appID int64) bool
	// MaxHeaderBytes bounds a request's line and headers, as the Authy API's Handler does; 0:
	// no bound here.
	MaxHeaderBytes int
}

// Services are the domain services the API translates to.
type Services struct {
	Apps   *apps.Service
	Verify *verify.Service
	// Factors serves entities, factors and challenges.
	Factors *verifyfactors.Service
	Usage   *apps.UsageRecorder // nil: API calls are not counted
}

// API serves the Verify API.
type API struct {
	apps    *apps.Service
	verify  *verify.Service
	factors *verifyfactors.Service
	usage   *apps.UsageRecorder
	metrics *metrics.Metrics
	log     *slog.Logger
	cfg     Config
	now     func() time.Time
}

// New returns the API. now may be nil for time.Now.
func New(svc Services, m *metrics.Metrics, log *slog.Logger, cfg Config, now func() time.Time) *API {
	if now == nil {
		now = time.Now
	}
	return &API{apps: svc.Apps, verify: svc.Verify, factors: svc.Factors, usage: svc.Usage, metrics: m, log: log, cfg: cfg, now: now}
}

// Mux is where routes are registered: an *http.ServeMux, or one that also notes each pattern.
type Mux interface {
	HandleFunc(pattern string, handler func(http.ResponseWriter, *http.Request))
}

// Routes registers the API's routes on mux, and a catch-all for the rest of /v2/ that answers
// 20404 (Handler answers 20004 there instead when another method has a route).
func (a *API) Routes(mux Mux) {
	const s = Prefix + "/Services"
	a.handle(mux, "POST "+s, a.createService)
	a.handle(mux, "GET "+s, a.listServices)
	a.handle(mux, "GET "+s+"/{service}", a.fetchService)
	a.handle(mux, "POST "+s+"/{service}", a.updateService)
	a.handle(mux, "DELETE "+s+"/{service}", a.deleteService)
	a.handle(mux, "POST "+s+"/{service}/Verifications", a.createVerification)
	a.handle(mux, "GET "+s+"/{service}/Verifications/{sid}", a.fetchVerification)
	a.handle(mux, "POST "+s+"/{service}/Verifications/{sid}", a.updateVerification)
	a.handle(mux, "POST "+s+"/{service}/VerificationCheck", a.checkVerification)
	const e = s + "/{service}/Entities"
	a.handle(mux, "POST "+e, a.createEntity)
	a.handle(mux, "GET "+e, a.listEntities)
	a.handle(mux, "GET "+e+"/{identity}", a.fetchEntity)
	a.handle(mux, "DELETE "+e+"/{identity}", a.deleteEntity)
	a.handle(mux, "POST "+e+"/{identity}/Factors", a.createFactor)
	a.handle(mux, "GET "+e+"/{identity}/Factors", a.listFactors)
	a.handle(mux, "GET "+e+"/{identity}/Factors/{sid}", a.fetchFactor)
	a.handle(mux, "POST "+e+"/{identity}/Factors/{sid}", a.updateFactor)
	a.handle(mux, "DELETE "+e+"/{identity}/Factors/{sid}", a.deleteFactor)
	a.handle(mux, "POST "+e+"/{identity}/Challenges", a.createChallenge)
	a.handle(mux, "GET "+e+"/{identity}/Challenges", a.listChallenges)
	a.handle(mux, "GET "+e+"/{identity}/Challenges/{sid}", a.fetchChallenge)
	a.handle(mux, "POST "+e+"/{identity}/Challenges/{sid}", a.updateChallenge)
	a.handle(mux, "POST "+e+"/{identity}/Challenges/{sid}/Notifications", a.notifyChallenge)
	a.handle(mux, "POST "+s+"/{service}/Webhooks", a.createWebhook)
	a.handle(mux, "GET "+s+"/{service}/Webhooks", a.listWebhooks)
	a.handle(mux, "GET "+s+"/{service}/Webhooks/{sid}", a.fetchWebhook)
	a.handle(mux, "POST "+s+"/{service}/Webhooks/{sid}", a.updateWebhook)
	a.handle(mux, "DELETE "+s+"/{service}/Webhooks/{sid}", a.deleteWebhook)
	mux.HandleFunc(Prefix+"/", func(w http.ResponseWriter, r *http.Request) { writeError(w, NotFound(r.URL.Path)) })
}

// call is one authenticated request: who made it and its parameters.
type call struct {
	caller apps.TwilioCaller
	params Params
}

func (c *call) app() twofold.App { return c.caller.App }

type handlerFunc func(w http.ResponseWriter, r *http.Request, c *call) error

// handle wraps a handler with what every request needs: its parameters, HTTP Basic with the
// application's account SID and auth token or an API key's SID and secret, the application's
// rate limit, its usage count, the audit trail's actor, and errors in Twilio's shape.
func (a *API) handle(mux Mux, pattern string, h handlerFunc) {
	mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		params, err := readParams(r)
		if err != nil {
			a.fail(w, r, err)
			return
		}
		user, password, ok := r.BasicAuth()
		if !ok {
			writeError(w, errAuthenticate)
			return
		}
		caller, err := a.apps.AuthenticateTwilio(r.Context(), user, password)
		if errors.Is(err, twofold.ErrNotFound) {
			writeError(w, errAuthenticate)
			return
		}
		if err != nil {
			a.fail(w, r, err)
			return
		}
		accesslog.SetApp(w, caller.App.ID)
		if a.cfg.Allow != nil && !a.cfg.Allow(r.Context(), caller.App.ID) {
			a.metrics.Limited.WithLabelValues("api_key").Inc()
			writeError(w, &Error{Code: CodeTooManyRequests, Status: http.StatusTooManyRequests, Message: "Too Many Requests",
				RetryAfter: time.Second})
			return
		}
		if a.usage != nil {
			a.usage.Add(caller.App.ID, a.now(), twofold.UsageAPICalls)
		}
		r = r.WithContext(audit.WithActor(r.Context(), twofold.AppActor(caller.App.ID)))
		if err := h(w, r, &call{caller: caller, params: params}); err != nil {
			a.fail(w, r, err)
		}
	})
}

// baseURL is where clients reach this server, without a trailing slash.
func (a *API) baseURL(r *http.Request) string {
	if a.cfg.PublicURL != "" {
		return strings.TrimRight(a.cfg.PublicURL, "/")
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

// service loads the service the path's {service} names: 20404 when it is not the caller's.
func (a *API) service(r *http.Request, c *call) (twofold.VerifyService, error) {
	id, ok := publicID(ServicePrefix, r.PathValue("service"))
	if !ok {
		return twofold.VerifyService{}, twofold.ErrNotFound
	}
	return a.apps.VerifyService(r.Context(), c.app(), id)
}

// Handler serves the Verify API's paths (Prefix and below) through mux, with what Twilio's
// clients expect of every answer before a route is found: Twilio's error shape for headers too
// large, unclean paths, unknown routes (20404) and other methods (20004), and for a panic. Every
// other path goes to next (the Authy API's Handler). A doubled leading slash is tolerated, as
// clients concatenate base URL and path.
func Handler(next http.Handler, mux *http.ServeMux, m *metrics.Metrics, log *slog.Logger, cfg Config) http.Handler {
	inner := m.Instrument(mux)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := r.URL.Path
		if strings.HasPrefix(p, "//") {
			p = "/" + strings.TrimLeft(p, "/")
		}
		if p != Prefix && !strings.HasPrefix(p, Prefix+"/") {
			next.ServeHTTP(w, r)
			return
		}
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				log.Error("panic serving request", "path", r.URL.Path, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
				writeError(w, errInternal)
			}
		}()
		if cfg.MaxHeaderBytes > 0 && headerSize(r) > cfg.MaxHeaderBytes {
			writeError(w, errHeaderTooLarge)
			return
		}
		if p != r.URL.Path {
			r.URL.Path, r.URL.RawPath = p, ""
		}
		if path.Clean(p) != p || p == Prefix {
			writeError(w, NotFound(p))
			return
		}
		if _, pattern := mux.Handler(r); pattern == Prefix+"/" {
			if allowed := allowedMethods(mux, r); len(allowed) > 0 {
				w.Header().Set("Allow", strings.Join(allowed, ", "))
				writeError(w, Errorf(CodeMethodNotAllowed, http.StatusMethodNotAllowed, "Method not allowed"))
				return
			}
		}
		inner.ServeHTTP(w, r)
	})
}

// headerSize is about what net/http counts against its MaxHeaderBytes: the request line and
// the header lines.
func headerSize(r *http.Request) int {
	n := len(r.Method) + len(r.RequestURI) + len(r.Proto) + len("  \r\nHost: \r\n") + len(r.Host)
	for k, vs := range r.Header {
		for _, v := range vs {
			n += len(k) + len(v) + len(": \r\n")
		}
	}
	return n
}

// allowedMethods lists the methods that have a route at r's path, other than the catch-all.
func allowedMethods(mux *http.ServeMux, r *http.Request) []string {
	var allowed []string
	for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodDelete} {
		if m == r.Method {
			continue
		}
		probe := r.Clone(r.Context())
		probe.Method = m
		if _, pattern := mux.Handler(probe); pattern != "" && pattern != Prefix+"/" {
			allowed = append(allowed, m)
		}
	}
	return allowed
}
