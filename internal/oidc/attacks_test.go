package oidc_test

import (
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/twofold-auth/twofold/internal/apps"
	"github.com/twofold-auth/twofold/internal/hostedstep"
	"github.com/twofold-auth/twofold/internal/otp"
	"github.com/twofold-auth/twofold/internal/twofold"
	"github.com/twofold-auth/twofold/internal/users"
)

const callback = "https://rp.example.com/callback"

// requestObject signs a request object for client made naming name, with extra claims.
func requestObject(t *testing.T, o *op, made hostedstep.Created, name string, extra map[string]any) string {
	now := time.Now()
	claims := map[string]any{"iss": made.Client.ClientID, "aud": o.srv.URL, "exp": now.Add(5 * time.Minute).Unix(), "login_hint": name}
	for k, v := range extra {
		if v == nil {
			delete(claims, k)
		} else {
			claims[k] = v
		}
	}
	return signHS256(t, made.Secret, claims)
}

func authorizeURL(o *op, params url.Values) string {
	return o.srv.URL + "/oauth2/authorize?" + params.Encode()
}

func baseParams(made hostedstep.Created) url.Values {
	return url.Values{"client_id": {made.Client.ClientID}, "redirect_uri": {callback}, "response_type": {"code"},
		"scope": {"openid"}, "state": {"s"}}
}

// Until the redirect URI is known to be the client's, nothing redirects: an unknown client or
// a lookalike of a registered URI gets a page of its own.
func TestAuthorizeNeverRedirectsToAnUnregisteredURI(t *testing.T) {
	o := newOP(t)
	o.user("ana@example.com")
	made := o.client(hostedstep.Spec{UserMatch: ptr(twofold.MatchEmail)})
	for _, tc := range []struct {
		what string
		mod  func(url.Values)
	}{
		{"an unknown client", func(v url.Values) { v.Set("client_id", "tfc_nobody") }},
		{"no redirect URI", func(v url.Values) { v.Del("redirect_uri") }},
		{"a trailing slash", func(v url.Values) { v.Set("redirect_uri", callback+"/") }},
		{"an added query", func(v url.Values) { v.Set("redirect_uri", callback+"?next=/admin") }},
		{"another case", func(v url.Values) { v.Set("redirect_uri", "https://RP.example.com/callback") }},
		{"a lookalike host", func(v url.Values) { v.Set("redirect_uri", "https://rp.example.com.evil.example/callback") }},
		{"http instead of https", func(v url.Values) { v.Set("redirect_uri", "http://rp.example.com/callback") }},
		{"a fragment", func(v url.Values) { v.Set("redirect_uri", callback+"#x") }},
		{"the client id twice", func(v url.Values) { v.Add("client_id", made.Client.ClientID) }},
	} {
		p := baseParams(made)
		p.Set("request", requestObject(t, o, made, "ana@example.com", nil))
		tc.mod(p)
		resp, body := newBrowser(t, o).get(authorizeURL(o, p))
		if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Location") != "" || resp.Request.URL.Host != strings.TrimPrefix(o.srv.URL, "http://") {
			t.Errorf("%s: %d, Location %q", tc.what, resp.StatusCode, resp.Header.Get("Location"))
		}
		if resp.Header.Get("X-Frame-Options") != "DENY" || !strings.Contains(body, "Sign-in stopped") {
			t.Errorf("%s: the error page is framable or says nothing: %v\n%s", tc.what, resp.Header, body)
		}
	}
}

// Once the redirect URI is the client's, refusals go back to it with the RFC 6749 error and
// the state; no step is begun, so nothing is pushed or sent.
func TestAuthorizeRefusals(t *testing.T) {
	o := newOP(t)
	ctx := t.Context()
	o.user("ana@example.com")
	made := o.client(hostedstep.Spec{UserMatch: ptr(twofold.MatchEmail)})
	other := o.client(hostedstep.Spec{UserMatch: ptr(twofold.MatchEmail), AllowLoginHint: ptr(true)})
	// A user of another application, by the same email.
	otherApp, _, err := apps.New(o.st, o.keys, nil).Create(ctx, apps.CreateParams{Name: "Other"})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := users.New(o.st, nil).Register(ctx, otherApp.ID, users.Contact{Email: "eve@example.com", Cellphone: "2015550177", CountryCode: "1"}); err != nil {
		t.Fatal(err)
	}
	good := requestObject(t, o, made, "ana@example.com", nil)
	parts := strings.Split(good, ".")
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	payload = []byte(strings.Replace(string(payload), "ana@", "bob@", 1))
	tampered := []byte(parts[0] + "." + base64.RawURLEncoding.EncodeToString(payload) + "." + parts[2])
	replayed := requestObject(t, o, made, "ana@example.com", map[string]any{"jti": "once"})
	if resp, _ := newBrowser(t, o).get(authorizeURL(o, withParam(baseParams(made), "request", replayed))); !strings.HasPrefix(resp.Request.URL.Path, "/step/") {
		t.Fatalf("the first use of a request object: %s", resp.Request.URL)
	}
	for _, tc := range []struct {
		what   string
		params url.Values
		want   string
	}{
		{"an unsigned login_hint", withParam(baseParams(made), "login_hint", "ana@example.com"), "invalid_request"},
		// A request object's parameters are the only ones used: a login_hint beside it, in the
		// query, names nobody (else a request object captured once would name anyone).
		{"a login_hint beside a request object without one", withParam(withParam(baseParams(made), "request",
			requestObject(t, o, made, "", map[string]any{"login_hint": nil})), "login_hint", "ana@example.com"), "invalid_request"},
		{"no user named", baseParams(made), "invalid_request"},
		{"a tampered request object", withParam(baseParams(made), "request", string(tampered)), "invalid_request_object"},
		{"a request object signed with another secret", withParam(baseParams(made), "request",
			signHS256(t, other.Secret, map[string]any{"iss": made.Client.ClientID, "aud": o.srv.URL, "exp": time.Now().Add(time.Minute).Unix(), "login_hint": "ana@example.com"})), "invalid_request_object"},
		{"another client's request object", withParam(baseParams(made), "request", requestObject(t, o, other, "ana@example.com", nil)), "invalid_request_object"},
		{"a replayed request object", withParam(baseParams(made), "request", replayed), "invalid_request_object"},
		{"an expired request object", withParam(baseParams(made), "request", requestObject(t, o, made, "ana@example.com", map[string]any{"exp": time.Now().Add(-time.Hour).Unix()})), "invalid_request_object"},
		{"a request object without exp", withParam(baseParams(made), "request", requestObject(t, o, made, "ana@example.com", map[string]any{"exp": nil})), "invalid_request_object"},
		{"a request object for a day", withParam(baseParams(made), "request", requestObject(t, o, made, "ana@example.com", map[string]any{"exp": time.Now().Add(24 * time.Hour).Unix()})), "invalid_request_object"},
		{"a request object for another audience", withParam(baseParams(made), "request", requestObject(t, o, made, "ana@example.com", map[string]any{"aud": "https://elsewhere.example"})), "invalid_request_object"},
		{"a user of another application", withParam(baseParams(other), "login_hint", "eve@example.com"), "access_denied"},
		{"an unknown user", withParam(baseParams(made), "request", requestObject(t, o, made, "nobody@example.com", nil)), "access_denied"},
		{"prompt=none", withParam(withParam(baseParams(made), "request", good), "prompt", "none"), "interaction_required"},
		{"response_type token", withParam(withParam(baseParams(made), "request", good), "response_type", "token"), "unsupported_response_type"},
		{"PKCE plain", withParam(withParam(withParam(baseParams(made), "request", good), "code_challenge", strings.Repeat("a", 43)), "code_challenge_method", "plain"), "invalid_request"},
		{"no openid scope", withParam(withParam(baseParams(made), "request", good), "scope", "profile"), "invalid_scope"},
		{"request_uri", withParam(baseParams(made), "request_uri", "https://rp.example.com/req.jwt"), "request_uri_not_supported"},
	} {
		resp, _ := newBrowser(t, o).get(authorizeURL(o, tc.params))
		loc, _ := url.Parse(resp.Header.Get("Location"))
		if resp.StatusCode != http.StatusSeeOther || loc == nil || loc.Host != "rp.example.com" || loc.Query().Get("error") != tc.want ||
			loc.Query().Get("state") != "s" || loc.Query().Get("iss") != o.srv.URL {
			t.Errorf("%s: %d to %s, want error=%s back at the client", tc.what, resp.StatusCode, loc, tc.want)
		}
	}
}

func withParam(v url.Values, k, val string) url.Values {
	out := url.Values{}
	for key, vals := range v {
		out[key] = append([]string(nil), vals...)
	}
	out.Set(k, val)
	return out
}

// codeFor runs a step for client made with PKCE challenge (may be "") and returns its code.
func codeFor(t *testing.T, o *op, made hostedstep.Created, key otp.Key, challenge string) string {
	t.Helper()
	p := withParam(baseParams(made), "request", requestObject(t, o, made, "ana@example.com", nil))
	if challenge != "" {
		p.Set("code_challenge", challenge)
		p.Set("code_challenge_method", "S256")
	}
	b := newBrowser(t, o)
	resp, _ := b.get(authorizeURL(o, p))
	// A fresh TOTP step for each run: the previous one is spent.
	resp, body := b.get(resp.Request.URL.String() + "?totp=" + key.Code(time.Now()))
	loc, _ := url.Parse(resp.Header.Get("Location"))
	if loc == nil || loc.Query().Get("code") == "" {
		t.Fatalf("no code: %d %s", resp.StatusCode, body)
	}
	return loc.Query().Get("code")
}

func basic(id, secret string) string {
	return base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(id) + ":" + url.QueryEscape(secret)))
}

// A code works once, for its own client, with the redirect URI and verifier of its request;
// the client proves who it is by exactly one method.
func TestTokenRefusals(t *testing.T) {
	o := newOP(t)
	_, key := o.user("ana@example.com")
	made := o.client(hostedstep.Spec{UserMatch: ptr(twofold.MatchEmail)})
	other := o.client(hostedstep.Spec{UserMatch: ptr(twofold.MatchEmail)})
	verifier, challenge := pkce()
	exchange := func(code string, extra url.Values, auth string) (int, string) {
		f := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {callback}}
		for k, v := range extra {
			if v[0] == "" {
				f.Del(k)
			} else {
				f[k] = v
			}
		}
		return post(t, o.srv.URL+"/oauth2/token", f, auth)
	}
	// Each case spends a code of its own on the TOTP step of its time: one per 30 s window would
	// make the test slow, so each case's code comes from a step of a fresh user.
	cases := []struct {
		what      string
		challenge string
		extra     url.Values
		auth      string
		status    int
		want      string
	}{
		{"a wrong secret", "", nil, basic(made.Client.ClientID, "tfs_wrong"), 401, "invalid_client"},
		{"an unknown client", "", nil, basic("tfc_nobody", made.Secret), 401, "invalid_client"},
		{"two methods", "", url.Values{"client_id": {made.Client.ClientID}, "client_secret": {made.Secret}}, basic(made.Client.ClientID, made.Secret), 401, "invalid_client"},
		{"another client's code", "", nil, basic(other.Client.ClientID, other.Secret), 400, "invalid_grant"},
		{"another redirect URI", "", url.Values{"redirect_uri": {callback + "/"}}, basic(made.Client.ClientID, made.Secret), 400, "invalid_grant"},
		{"a wrong verifier", challenge, url.Values{"code_verifier": {verifier + "x"}}, basic(made.Client.ClientID, made.Secret), 400, "invalid_grant"},
		{"no verifier", challenge, nil, basic(made.Client.ClientID, made.Secret), 400, "invalid_grant"},
		{"a verifier without a challenge", "", url.Values{"code_verifier": {verifier}}, basic(made.Client.ClientID, made.Secret), 400, "invalid_grant"},
		{"another grant type", "", url.Values{"grant_type": {"client_credentials"}}, basic(made.Client.ClientID, made.Secret), 400, "unsupported_grant_type"},
	}
	for _, tc := range cases {
		_, k := o.user(strings.ReplaceAll(tc.what, " ", "") + "@example.com")
		code := codeForUser(t, o, made, k, tc.challenge, strings.ReplaceAll(tc.what, " ", "")+"@example.com")
		status, body := exchange(code, tc.extra, tc.auth)
		if status != tc.status || !strings.Contains(body, `"error":"`+tc.want+`"`) {
			t.Errorf("%s: %d %s, want %d %s", tc.what, status, body, tc.status, tc.want)
		}
	}
	// The right exchange works once; client_secret_post works as well as Basic.
	code := codeFor(t, o, made, key, challenge)
	if status, body := exchange(code, url.Values{"code_verifier": {verifier}, "client_id": {made.Client.ClientID}, "client_secret": {made.Secret}}, ""); status != 200 {
		t.Fatalf("client_secret_post: %d %s", status, body)
	}
	if status, body := exchange(code, url.Values{"code_verifier": {verifier}}, basic(made.Client.ClientID, made.Secret)); status != 400 || !strings.Contains(body, "invalid_grant") {
		t.Fatalf("the code again: %d %s", status, body)
	}
}

// codeForUser is codeFor for the user with email name.
func codeForUser(t *testing.T, o *op, made hostedstep.Created, key otp.Key, challenge, name string) string {
	t.Helper()
	p := withParam(baseParams(made), "request", requestObject(t, o, made, name, nil))
	if challenge != "" {
		p.Set("code_challenge", challenge)
		p.Set("code_challenge_method", "S256")
	}
	b := newBrowser(t, o)
	resp, _ := b.get(authorizeURL(o, p))
	resp, body := b.get(resp.Request.URL.String() + "?totp=" + key.Code(time.Now()))
	loc, _ := url.Parse(resp.Header.Get("Location"))
	if loc == nil || loc.Query().Get("code") == "" {
		t.Fatalf("no code for %s: %d %s", name, resp.StatusCode, body)
	}
	return loc.Query().Get("code")
}
