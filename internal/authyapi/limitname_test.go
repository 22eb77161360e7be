package authyapi

import (
	"net/http"
	"testing"
)

// A limit a domain service applies is counted under the limit it is, by the route that hit it.
func TestLimitName(t *testing.T) {
	mux := http.NewServeMux()
	(&API{}).Routes(mux)
	tests := []struct{ method, path, want string }{
		{"GET", "/protected/json/verify/1234567/1", "verify_failures"},
		{"GET", "/protected/json/phones/verification/check", "verify_failures"},
		{"GET", "/protected/json/sms/1", "sends"},
		{"GET", "/protected/json/call/1", "sends"},
		{"POST", "/protected/json/email/1", "sends"},
		{"POST", "/protected/json/phones/verification/start", "sends"},
		{"POST", "/onetouch/json/users/1/approval_requests", "pending_approvals"},
		{"POST", "/onetouch/json/approval_groups", "pending_approvals"},
		{"POST", "/onetouch/json/passwordless_requests", "passwordless"},
		{"POST", "/protected/json/passkeys/authentications/0123456789abcdef0123456789abcdef", "verify_failures"},
	}
	for _, tt := range tests {
		r, _ := http.NewRequest(tt.method, tt.path, nil)
		_, r.Pattern = mux.Handler(r)
		if got := limitName(r); got != tt.want {
			t.Errorf("%s %s (%s): %q, want %q", tt.method, tt.path, r.Pattern, got, tt.want)
		}
	}
}
