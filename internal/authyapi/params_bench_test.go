package authyapi

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// Parameter decoding runs on every API request before anything else. BenchmarkParseParams in
// params_test.go decodes approval requests; these are the benchmarked hot routes' requests.
func BenchmarkParseParamsRoutes(b *testing.B) {
	for _, bc := range []struct {
		name, method, target, ctype, body string
	}{
		{"verify/no-params", "GET", "/protected/json/verify/1234567/1", "", ""},
		{"verify/query", "GET", "/protected/json/verify/1234567/1?force=true&action=login", "", ""},
		{"users-new/form", "POST", "/protected/json/users/new", "application/x-www-form-urlencoded",
			"user%5Bemail%5D=ada%40example.com&user%5Bcellphone%5D=201-555-0123&user%5Bcountry_code%5D=1"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			rd := strings.NewReader(bc.body)
			r := httptest.NewRequest(bc.method, bc.target, rd)
			if bc.body == "" {
				r.Body = http.NoBody
			} else {
				r.Header.Set("Content-Type", bc.ctype)
			}
			b.ReportAllocs()
			for b.Loop() {
				rd.Reset(bc.body)
				if _, err := ParseParams(r, MaxBody); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
