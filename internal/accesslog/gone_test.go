package accesslog

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http/httptest"
	"os"
	"strings"
	"syscall"
	"testing"
)

// ClientGone decides by the request's context, or a write to a peer that left; an error the
// server made (a context.Canceled of its own while the client waits, included) is not its to
// swallow.
func TestClientGone(t *testing.T) {
	live := t.Context()
	gone, cancel := context.WithCancel(t.Context())
	cancel()
	pipe := &net.OpError{Op: "write", Net: "tcp", Err: os.NewSyscallError("write", syscall.EPIPE)}
	reset := fmt.Errorf("flush: %w", &net.OpError{Op: "write", Net: "tcp", Err: os.NewSyscallError("write", syscall.ECONNRESET)})
	for _, tc := range []struct {
		name string
		ctx  context.Context
		err  error
		want bool
	}{
		{"no error", gone, nil, false},
		{"an error, client there", live, errors.New("disk full"), false},
		{"the server's own cancel, client there", live, fmt.Errorf("store: %w", context.Canceled), false},
		{"context canceled, client gone", gone, fmt.Errorf("store: %w", context.Canceled), true},
		{"a driver's error, client gone", gone, errors.New("sqlite: interrupted"), true},
		{"write to a closed peer", live, pipe, true},
		{"write to a reset peer", live, reset, true},
	} {
		var logs bytes.Buffer
		log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
		r := httptest.NewRequestWithContext(tc.ctx, "GET", "/verify/123456/1", nil)
		r.Pattern = "GET /verify/{token}/{id}"
		got := ClientGone(log, r, tc.err, "surface", "test")
		lines := strings.Count(logs.String(), "\n")
		switch {
		case got != tc.want:
			t.Errorf("%s: ClientGone = %v, want %v", tc.name, got, tc.want)
		case got && (lines != 1 || !strings.Contains(logs.String(), "level=DEBUG msg=\"client went away\" route=\"GET /verify/{token}/{id}\" surface=test err=")):
			t.Errorf("%s: logged %q, want one DEBUG line with the route", tc.name, logs.String())
		case got && strings.Contains(logs.String(), "123456"):
			t.Errorf("%s: logged the path: %q", tc.name, logs.String())
		case !got && lines != 0:
			t.Errorf("%s: not gone, but logged %q", tc.name, logs.String())
		}
	}
}
