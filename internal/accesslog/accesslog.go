// Package accesslog gives every request a request id, echoed in the X-Request-Id response
// header, and logs one line per request once it is answered: method, route, status, duration,
// bytes, the application when one was found, the request id and the connection's peer.
//
// The route is the pattern the request matched (GET /protected/json/verify/{token}/{id}),
// never the path, which carries codes, tokens and ids; nor is the query string logged, which may
// carry the API key, nor any header. What a line holds is fixed here, so no handler can add a
// secret to it by mistake.
package accesslog

import (
	"log/slog"
	"math/rand/v2"
	"net/http"
	"time"

	"github.com/twofold-auth/twofold/internal/clientaddr"
)

// Header is the request and response header that carries the request id.
const Header = "X-Request-Id"

// MaxIDLength bounds a request id taken from a proxy.
const MaxIDLength = 64

// Config says what Handler logs and whose request ids it keeps.
type Config struct {
	// Log receives one line per request (INFO; WARN for a 5xx). Nil logs nothing: requests
	// still get their id.
	Log *slog.Logger
	// Proxies are the reverse proxies whose X-Request-Id is kept (when it is a sane id), so
	// that the proxy's logs and these share ids. From any other peer the header is ignored and
	// an id made here: a client could write anything in it.
	Proxies clientaddr.Proxies
}

// Handler wraps next with request ids and, if cfg.Log is set, the access log.
func Handler(next http.Handler, cfg Config) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &recorder{ResponseWriter: w, id: requestID(r, cfg.Proxies)}
		w.Header()[Header] = []string{rec.id}
		defer func() {
			if cfg.Log != nil {
				rec.log(cfg.Log, r, time.Since(start))
			}
		}()
		next.ServeHTTP(rec, r)
	})
}

// requestID is the proxy's id when r comes from a trusted proxy with a sane one, else a new
// random one.
func requestID(r *http.Request, proxies clientaddr.Proxies) string {
	if v := r.Header[Header]; len(v) == 1 && len(proxies) > 0 && validID(v[0]) && proxies.FromProxy(r) {
		return v[0]
	}
	return newID()
}

// newID is 16 hex digits of a random number: unique enough to find one request, and, unlike a
// counter, saying nothing of how many requests the server answers.
func newID() string {
	const digits = "0123456789abcdef"
	var b [16]byte
	n := rand.Uint64()
	for i := len(b) - 1; i >= 0; i-- {
		b[i] = digits[n&0xf]
		n >>= 4
	}
	return string(b[:])
}

// validID accepts 1 to MaxIDLength letters, digits and . _ : - (what proxies and tracing
// systems put there), so that the id is safe in a header and a log line as it is.
func validID(s string) bool {
	if len(s) == 0 || len(s) > MaxIDLength {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == ':' || c == '-') {
			return false
		}
	}
	return true
}

// recorder notes what the handler answered, and the application SetApp names.
type recorder struct {
	http.ResponseWriter
	id     string
	status int
	bytes  int64
	app    int64
}

func (rec *recorder) WriteHeader(code int) {
	if rec.status == 0 {
		rec.status = code
	}
	rec.ResponseWriter.WriteHeader(code)
}

func (rec *recorder) Write(b []byte) (int, error) {
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	n, err := rec.ResponseWriter.Write(b)
	rec.bytes += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach the connection (flushes, deadlines, hijacking).
func (rec *recorder) Unwrap() http.ResponseWriter { return rec.ResponseWriter }

func (rec *recorder) log(log *slog.Logger, r *http.Request, took time.Duration) {
	level := slog.LevelInfo
	status := rec.status
	if status == 0 {
		status = http.StatusOK // nothing written (or the connection taken over): what net/http sends
	}
	if status >= 500 {
		level = slog.LevelWarn
	}
	ctx := r.Context()
	if !log.Enabled(ctx, level) {
		return
	}
	route := r.Pattern
	if route == "" {
		route = "unmatched" // refused before routing: not the path, which may carry a secret
	}
	attrs := [...]slog.Attr{
		slog.String("method", r.Method),
		slog.String("route", route),
		slog.Int("status", status),
		slog.Float64("ms", float64(took.Microseconds())/1000),
		slog.Int64("bytes", rec.bytes),
		slog.Int64("app_id", rec.app),
		slog.String("request_id", rec.id),
		slog.String("remote", r.RemoteAddr),
	}
	n := len(attrs)
	if rec.app == 0 {
		attrs[5], attrs[6], attrs[7] = attrs[6], attrs[7], slog.Attr{}
		n--
	}
	log.LogAttrs(ctx, level, "request", attrs[:n]...)
}

// SetApp records that the request w answers is for application id, for its log line. w is
// the ResponseWriter a handler was given: Handler's, or one that wraps it (and Unwraps).
func SetApp(w http.ResponseWriter, id int64) {
	if rec := find(w); rec != nil {
		rec.app = id
	}
}

// ID is the request id of the request w answers, "" without Handler.
func ID(w http.ResponseWriter) string {
	if rec := find(w); rec != nil {
		return rec.id
	}
	return ""
}

func find(w http.ResponseWriter) *recorder {
	for {
		switch x := w.(type) {
		case *recorder:
			return x
		case interface{ Unwrap() http.ResponseWriter }:
			w = x.Unwrap()
		default:
			return nil
		}
	}
}
