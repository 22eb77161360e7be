package verifyapi

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/twofold-auth/twofold/internal/wiretext"
)

// FuzzReadParams: whatever query string, body and content type a request carries, reading its
// parameters never panics, answers a refusal in Twilio's shape (400) or parameters that are all
// UTF-8 text without NUL bytes, at most maxParams of them, each value as the form encoded it.
func FuzzReadParams(f *testing.F) {
	f.Add("FriendlyName=Shop&CodeLength=6", "To=%2B15017122661&Channel=sms", "application/x-www-form-urlencoded")
	f.Add("", "EventTypes=factor.created&EventTypes=*", "application/x-www-form-urlencoded; charset=utf-8")
	f.Add("a=%zz", "", "")
	f.Add("", "Name=%00", "application/x-www-form-urlencoded")
	f.Add("", "Name=%ff%fe", "application/x-www-form-urlencoded")
	f.Add("&&=&a", "b=1", "text/plain")
	f.Fuzz(func(t *testing.T, query, body, contentType string) {
		r := httptest.NewRequest(http.MethodPost, "/v2/Services", strings.NewReader(body))
		r.URL.RawQuery = query
		r.Header.Set("Content-Type", contentType)
		p, err := readParams(r)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || e.Status != http.StatusBadRequest || e.Code == 0 || e.Message == "" {
				t.Fatalf("refusal %#v, want Twilio's 400 shape", err)
			}
			return
		}
		n := 0
		for k, vs := range p.v {
			if k == "" || !wiretext.Valid(k) {
				t.Fatalf("parameter name %q", k)
			}
			for _, v := range vs {
				if !wiretext.Valid(v) {
					t.Fatalf("parameter %q value %q", k, v)
				}
				n++
			}
			if p.String(k) != vs[len(vs)-1] || !p.Has(k) {
				t.Fatalf("String/Has of %q disagree with the list %q", k, vs)
			}
		}
		if n > maxParams {
			t.Fatalf("%d parameters read, more than %d", n, maxParams)
		}
	})
}
