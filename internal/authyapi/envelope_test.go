package authyapi

import (
	"net/http/httptest"
	"testing"
	"time"

	"github.com/twofold-auth/twofold/internal/twofold"
)

// An envelope answered from the cache is byte for byte the one encoded afresh, with the same
// status and headers, and errors that differ in anything the body shows never share one.
func TestErrorEnvelopeCache(t *testing.T) {
	limited := twofold.ErrLimit("too many failed verifications for this user", 90*time.Second)
	for _, tc := range []struct {
		name   string
		err    *twofold.Error
		cached bool
	}{
		{"token invalid", twofold.ErrTokenInvalid(), true},
		{"same code, other message", twofold.Errorf(twofold.CodeTokenInvalid, "Token is wrong."), true},
		{"same message, a token field", &twofold.Error{Code: twofold.CodeTokenInvalid, Message: "Token is wrong.", Token: "is invalid"}, true},
		{"limited, with Retry-After", limited, true},
		{"with fields: not cached", &twofold.Error{Code: twofold.CodeInvalidParameter, Message: "User was not valid",
			Fields: map[string]string{"cellphone": "is invalid"}}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want, err := encodeJSON(envelope(tc.err))
			if err != nil {
				t.Fatal(err)
			}
			var first *httptest.ResponseRecorder
			for i := range 2 {
				rec := httptest.NewRecorder()
				writeError(rec, tc.err)
				if got := rec.Body.String(); got != string(want) {
					t.Fatalf("write %d: body %s, want %s", i+1, got, want)
				}
				if first == nil {
					first = rec
					continue
				}
				if rec.Code != first.Code {
					t.Errorf("status %d, then %d", first.Code, rec.Code)
				}
				for _, h := range []string{"Content-Type", "Content-Length", "Cache-Control", "Retry-After"} {
					if a, b := first.Header().Get(h), rec.Header().Get(h); a != b {
						t.Errorf("%s: %q, then %q", h, a, b)
					}
				}
			}
			_, ok := envelopes.m.Load(envelopeKey{tc.err.Code, tc.err.Message, tc.err.Token})
			if ok != tc.cached {
				t.Errorf("cached = %v, want %v", ok, tc.cached)
			}
		})
	}
	rec := httptest.NewRecorder()
	writeError(rec, limited)
	if got := rec.Header().Get("Retry-After"); got != "90" {
		t.Errorf("Retry-After %q from the cache, want 90", got)
	}
}
