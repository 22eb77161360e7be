package apps

import (
	"net/url"
	"slices"
	"strings"

	"github.com/twofold-auth/twofold/internal/twofold"
)

// normalizeOrigins trims, lowercases and drops empty and repeated origins, keeping the order.
func normalizeOrigins(in []string) []string {
	var out []string
	for _, o := range in {
		o = strings.TrimSuffix(strings.ToLower(strings.TrimSpace(o)), "/")
		if o != "" && !slices.Contains(out, o) {
			out = append(out, o)
		}
	}
	return out
}

// validRPID reports whether id can be a WebAuthn relying party id: a domain name (browsers
// refuse IP addresses), lowercase, of labels of letters, digits and hyphens.
func validRPID(id string) bool {
	if id == "" || len(id) > 253 || strings.Trim(id, "0123456789.") == "" {
		return false
	}
	for _, label := range strings.Split(id, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, c := range label {
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}

// localhost reports whether host is localhost or under it, the one place browsers allow
// WebAuthn over plain http.
func localhost(host string) bool { return host == "localhost" || strings.HasSuffix(host, ".localhost") }

// validatePasskeys checks the relying party settings: an origin must be https (http only for
// localhost), a bare origin, and on the rp id's domain or under it, as browsers require.
func validatePasskeys(p twofold.Settings) []FieldError {
	var bad []FieldError
	if !slices.Contains(twofold.UVPolicies, p.PasskeyUserVerification()) {
		bad = append(bad, FieldError{"passkey_user_verification", "passkey user verification must be required, preferred or discouraged"})
	}
	if p.PasskeyRPID == "" {
		if len(p.PasskeyOrigins) > 0 {
			bad = append(bad, FieldError{"passkey_origins", "passkey origins need a passkey relying party id"})
		}
		return bad
	}
	if !validRPID(p.PasskeyRPID) {
		bad = append(bad, FieldError{"passkey_rp_id", "passkey relying party id must be a domain name such as example.com"})
		return bad
	}
	if len(p.PasskeyOrigins) > 10 {
		bad = append(bad, FieldError{"passkey_origins", "at most 10 passkey origins"})
	}
	for _, o := range p.PasskeyOrigins {
		u, err := url.Parse(o)
		ok := err == nil && u.Host != "" && u.User == nil && u.Path == "" && u.RawQuery == "" && u.Fragment == "" &&
			(u.Scheme == "https" || u.Scheme == "http" && localhost(u.Hostname())) && len(o) <= 200
		if ok {
			h := u.Hostname()
			ok = h == p.PasskeyRPID || strings.HasSuffix(h, "."+p.PasskeyRPID)
		}
		if !ok {
			bad = append(bad, FieldError{"passkey_origins", "passkey origin " + quote(o) +
				" must be https://host[:port] (http only for localhost) on the relying party id's domain"})
			break
		}
	}
	return bad
}

func quote(s string) string {
	if len(s) > 60 {
		s = s[:60] + "…"
	}
	return `"` + s + `"`
}
