package accesslog

import (
	"errors"
	"log/slog"
	"net/http"
	"syscall"
)

// ClientGone reports whether err failed request r only because its client went away, and if
// so logs that, once, at DEBUG, on log with args (the route is added): the handler then answers
// nothing, for there is no one to read it. A client that hangs up mid-request is no fault of the
// server's, so it must never reach the error log (an attack run saw 25 ERROR lines of "context
// canceled" in one run); any other error is the caller's to log and answer.
//
// The client went away when the request's context is done (net/http cancels it when the
// connection closes; whatever the store then returns, context.Canceled or a driver's own
// error, comes of that), or when err is a write to a connection the peer closed or reset.
func ClientGone(log *slog.Logger, r *http.Request, err error, args ...any) bool {
	if err == nil {
		return false
	}
	if r.Context().Err() == nil && !errors.Is(err, syscall.EPIPE) && !errors.Is(err, syscall.ECONNRESET) {
		return false
	}
	route := r.Pattern
	if route == "" {
		route = "unmatched"
	}
	log.DebugContext(r.Context(), "client went away", append(append([]any{"route", route}, args...), "err", err)...)
	return true
}
