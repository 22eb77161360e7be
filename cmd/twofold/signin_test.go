package main

import (
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

// twofold serve's sign-in flags reach the console: the per-address limit answers 429 with
// Retry-After, and counts by X-Forwarded-For only from a proxy named in --trusted-proxies.
// Values that do not parse stop the server from starting.
func TestConsoleSignInFlags(t *testing.T) {
	for _, args := range [][]string{
		{"--trusted-proxies", "10.0.0.0/8,nonsense"},
		{"--signin-checks", "0"},
		{"--signin-limit-address", "5"},
		{"--signin-limit-account", "ten/1m"},
	} {
		_, err := runCLI(t.TempDir(), append([]string{"serve", "--addr", "127.0.0.1:0"}, args...)...)
		if err == nil || !strings.Contains(err.Error(), args[0]) {
			t.Errorf("serve %v: %v, want an error naming the flag", args, err)
		}
	}

	s := startServer(t, "", "--signin-limit-address", "1/1m", "--trusted-proxies", "127.0.0.1, 10.0.0.0/8")
	csrf := regexp.MustCompile(`name="csrf" value="([^"]+)"`)
	signIn := func(xff string) *http.Response {
		t.Helper()
		res, err := s.client.Get(s.url + "/console/signin")
		if err != nil {
			t.Fatal(err)
		}
		page, _ := io.ReadAll(res.Body)
		res.Body.Close()
		m := csrf.FindStringSubmatch(string(page))
		if m == nil {
			t.Fatalf("no sign-in form:\n%s", page)
		}
		form := url.Values{"csrf": {m[1]}, "email": {"nobody@example.com"}, "password": {"a guess at a password"}}
		req, _ := http.NewRequest("POST", s.url+"/console/signin", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", s.url)
		req.Header.Set("X-Forwarded-For", xff)
		for _, c := range res.Cookies() {
			req.AddCookie(c)
		}
		res, err = s.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res
	}
	for i, tc := range []struct {
		xff    string
		status int
	}{
		{"198.51.100.1", http.StatusUnauthorized},
		{"198.51.100.1, 10.1.1.1", http.StatusTooManyRequests},
		{"198.51.100.2", http.StatusUnauthorized},
	} {
		res := signIn(tc.xff)
		if res.StatusCode != tc.status || (tc.status == http.StatusTooManyRequests && res.Header.Get("Retry-After") == "") {
			t.Fatalf("sign-in %d from %s: %d Retry-After=%q, want %d", i+1, tc.xff, res.StatusCode, res.Header.Get("Retry-After"), tc.status)
		}
	}
}
