package console_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/twofold-auth/twofold/internal/console"
	"github.com/twofold-auth/twofold/internal/twofold"
)

// Every page and action needs a signed-in session: without one, pages go to the sign-in form
// and everything else is refused, before anything is read or changed.
func TestEverythingNeedsASession(t *testing.T) {
	f := newFixture(t, console.Config{})
	a, _, err := f.apps.Create(t.Context(), appsCreate("Shop"))
	if err != nil {
		t.Fatal(err)
	}
	app := "/console/apps/" + itoa(a.ID)
	pages := []string{"/console/", "/console/apps", "/console/apps/new", app, app + "/settings", app + "/rotate", app + "/delete",
		app + "/users", app + "/users/1", app + "/users/1/delete", "/console/approvals", "/console/outbox", "/console/callbacks",
		"/console/audit", "/console/activity", "/console/nowhere", "/console/signin/factor", "/console/signin/push"}
	actions := []string{"/console/signout", "/console/apps/new", app + "/settings", app + "/callbacks/enable", app + "/rotate",
		app + "/delete", app + "/users/1/delete", app + "/users/1/devices/1/delete", "/console/signin/code",
		"/console/signin/push", "/console/signin/push/complete"}

	// Without a session; then with a session that has passed only the password.
	o := f.operator("ana@example.com", true)
	for _, who := range []string{"nobody", "half signed in"} {
		b := f.browser()
		if who == "half signed in" {
			b.password(o.op.Email, o.pw)
			b.expect(http.StatusSeeOther, "/console/signin/factor")
			b.get("/console/signin/factor")
		}
		for _, p := range pages {
			if who == "half signed in" && strings.HasPrefix(p, "/console/signin/") {
				continue // the second step's own pages
			}
			b.get(p)
			if b.last.StatusCode != http.StatusSeeOther || b.last.Header.Get("Location") != "/console/signin" {
				t.Errorf("%s: GET %s = %d %q, want a redirect to the sign-in page", who, p, b.last.StatusCode, b.last.Header.Get("Location"))
			}
		}
		b.get("/console/signin/factor")
		for _, p := range actions {
			if who == "half signed in" && strings.HasPrefix(p, "/console/signin/") {
				continue
			}
			form := url.Values{"csrf": {"x"}, "name": {"Evil"}, "confirm_name": {"Shop"}}
			if who == "half signed in" {
				form.Set("csrf", b.csrf()) // even with the session's own token
			}
			b.post(p, form, false)
			if b.last.StatusCode != http.StatusUnauthorized {
				t.Errorf("%s: POST %s = %d, want 401", who, p, b.last.StatusCode)
			}
			if who == "half signed in" {
				b.get("/console/signin/factor") // a page with the token again
			}
		}
		b.get("/console/signin/push/status?uuid=x")
		if want := map[string]int{"nobody": 401, "half signed in": 404}[who]; b.last.StatusCode != want {
			t.Errorf("%s: push status = %d, want %d", who, b.last.StatusCode, want)
		}
	}
	// Nothing changed.
	if got, _ := f.apps.Get(t.Context(), a.ID); got.Name != "Shop" {
		t.Fatalf("the application changed: %+v", got)
	}
	// The sign-in page and the console's files are open to all.
	b := f.browser()
	for _, p := range []string{"/console/signin", "/console/static/console.css", "/console/static/console.js", "/console/static/icon.svg"} {
		if b.get(p); b.last.StatusCode != http.StatusOK {
			t.Errorf("GET %s = %d, want 200", p, b.last.StatusCode)
		}
	}
	if b.get("/console/static/nope.js"); b.last.StatusCode != http.StatusNotFound {
		t.Errorf("an unknown file: %d", b.last.StatusCode)
	}
}

func TestSignInWithACode(t *testing.T) {
	f := newFixture(t, console.Config{})
	o := f.operator("ana@example.com", true)
	b := f.browser()
	b.get("/console/signin")
	b.contains(`name="email"`, `name="password"`)

	b.password(o.op.Email, "wrong password, long enough")
	b.expect(http.StatusUnauthorized, "")
	b.contains("Wrong email or password.")
	b.password("nobody@example.com", o.pw)
	b.expect(http.StatusUnauthorized, "")
	b.contains("Wrong email or password.")
	if b.sessionID() != "" {
		t.Fatal("a wrong password gave a session")
	}

	b.password(o.op.Email, o.pw)
	b.expect(http.StatusSeeOther, "/console/signin/factor")
	half := b.sessionID()
	b.get("/console/signin/factor")
	b.contains("Second factor", `name="code"`)
	b.lacks("push-submit") // no device registered: no push button

	for _, tc := range []struct {
		code, want string
		status     int
	}{
		{"", "Enter the code", http.StatusUnprocessableEntity},
		{"12345", "That code is not right", http.StatusUnauthorized},
		{f.code(o, 5), "That code is not right", http.StatusUnauthorized},
	} {
		b.post("/console/signin/code", url.Values{"code": {tc.code}}, true)
		if b.last.StatusCode != tc.status || !strings.Contains(b.body, tc.want) {
			t.Fatalf("code %q: %d, want %d with %q\n%s", tc.code, b.last.StatusCode, tc.status, tc.want, b.body)
		}
	}
	code := f.code(o, 0)
	b.post("/console/signin/code", url.Values{"code": {code[:3] + " " + code[3:]}}, true)
	b.expect(http.StatusSeeOther, "/console/")
	full := b.sessionID()
	if full == "" || full == half {
		t.Fatalf("the session id did not change at sign-in: %q then %q", half, full)
	}
	b.get("/console/apps")
	b.expect(http.StatusOK, "")
	b.contains("ana@example.com", "Sign out")

	// The half session is gone; the code does not work twice.
	other := f.browser()
	other.cookies["twofold_console"] = &http.Cookie{Name: "twofold_console", Value: half}
	other.get("/console/signin/factor")
	other.expect(http.StatusSeeOther, "/console/signin")
	other.password(o.op.Email, o.pw)
	other.get("/console/signin/factor")
	other.post("/console/signin/code", url.Values{"code": {code}}, true)
	other.expect(http.StatusUnauthorized, "")
	other.contains("used already")

	// The audit trail has the failures and the sign-in, attributed to the operator.
	events, err := f.audit.List(t.Context(), twofold.AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range events {
		if strings.HasPrefix(e.Action, "operator.") {
			got = append(got, e.Action+" "+e.Actor+" "+e.Details["reason"]+e.Details["method"])
		}
	}
	want := []string{
		"operator.login_failed console password", "operator.login_failed console password",
		"operator.login_failed operator:ana@example.com code", "operator.login_failed operator:ana@example.com code",
		"operator.login operator:ana@example.com code", "operator.login_failed operator:ana@example.com code",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("audit trail:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	// Signing out ends the session.
	b.get("/console/apps")
	b.post("/console/signout", nil, true)
	b.expect(http.StatusSeeOther, "/console/signin")
	b.cookies["twofold_console"] = &http.Cookie{Name: "twofold_console", Value: full}
	b.get("/console/apps")
	b.expect(http.StatusSeeOther, "/console/signin")
}

func TestWrongCodesHitTheLimit(t *testing.T) {
	f := newFixture(t, console.Config{})
	o := f.operator("ana@example.com", true)
	b := f.browser()
	b.password(o.op.Email, o.pw)
	b.get("/console/signin/factor")
	for i := 0; ; i++ {
		b.post("/console/signin/code", url.Values{"code": {"000000"}}, true)
		if b.last.StatusCode == http.StatusTooManyRequests {
			b.contains("Too many wrong codes. Wait ")
			break
		}
		if i > 20 {
			t.Fatal("no limit on wrong codes")
		}
	}
	// Even the right code waits.
	b.post("/console/signin/code", url.Values{"code": {f.code(o, 0)}}, true)
	b.expect(http.StatusTooManyRequests, "")
}

func TestLockoutAfterFiveWrongPasswords(t *testing.T) {
	f := newFixture(t, console.Config{})
	o := f.operator("ana@example.com", true)
	b := f.browser()
	for i := range 5 {
		b.password(o.op.Email, "not the password at all")
		if b.last.StatusCode != http.StatusUnauthorized {
			t.Fatalf("wrong password %d: %d", i+1, b.last.StatusCode)
		}
	}
	b.password(o.op.Email, o.pw) // the right one, too late
	b.expect(http.StatusTooManyRequests, "")
	b.contains("locked after repeated wrong passwords", "twofold admin password ana@example.com")
	if b.sessionID() != "" {
		t.Fatal("a locked account got a session")
	}
	f.clock.Advance(15 * time.Minute)
	b.password(o.op.Email, o.pw)
	b.expect(http.StatusSeeOther, "/console/signin/factor")
}

func TestNoSecondFactorNoSignIn(t *testing.T) {
	f := newFixture(t, console.Config{})
	o := f.operator("ana@example.com", false)
	b := f.browser()
	b.password(o.op.Email, o.pw)
	b.expect(http.StatusForbidden, "")
	b.contains("twofold admin enrol ana@example.com")
	if b.sessionID() != "" {
		t.Fatal("an operator without a second factor got a session")
	}
}

func TestCSRFAndOrigin(t *testing.T) {
	f := newFixture(t, console.Config{PublicURL: "https://2fa.example.com"})
	o := f.operator("ana@example.com", true)
	b := f.browser()
	b.signIn(o)
	b.get("/console/apps/new")
	token := b.csrf()
	for _, tc := range []struct {
		name, origin, referer, csrf string
		status                      int
	}{
		{"no token", "http://" + host, "", "", http.StatusForbidden},
		{"wrong token", "http://" + host, "", token + "x", http.StatusForbidden},
		{"another origin", "https://evil.example", "", token, http.StatusForbidden},
		{"no origin or referer", "", "", token, http.StatusForbidden},
		{"null origin", "null", "", token, http.StatusForbidden},
		{"another referer", "", "https://evil.example/console/apps/new", token, http.StatusForbidden},
		{"same-site referer", "", "http://" + host + "/console/apps/new", token, http.StatusCreated},
		{"the public URL's origin", "https://2fa.example.com", "", token, http.StatusCreated},
		{"the request's own host", "http://" + host, "", token, http.StatusCreated},
	} {
		t.Run(tc.name, func(t *testing.T) {
			form := url.Values{"name": {"App " + tc.name}, "csrf": {tc.csrf}}
			req := newPost("/console/apps/new", form)
			if tc.origin != "" {
				req.Header.Set("Origin", tc.origin)
			}
			if tc.referer != "" {
				req.Header.Set("Referer", tc.referer)
			}
			b.do(req)
			if b.last.StatusCode != tc.status {
				t.Fatalf("%d, want %d\n%s", b.last.StatusCode, tc.status, b.body)
			}
		})
	}
	list, _ := f.apps.List(t.Context())
	if len(list) != 4 { // the console's own and the three accepted
		t.Fatalf("%d applications, want 4", len(list))
	}
}

// The sign-in form has a CSRF token of its own (double-submitted in a cookie).
func TestSignInFormCSRF(t *testing.T) {
	f := newFixture(t, console.Config{})
	o := f.operator("ana@example.com", true)
	b := f.browser()
	b.post("/console/signin", url.Values{"email": {o.op.Email}, "password": {o.pw}, "csrf": {"made-up"}}, false)
	b.expect(http.StatusForbidden, "")
	b.get("/console/signin")
	delete(b.cookies, "twofold_console_signin")
	b.post("/console/signin", url.Values{"email": {o.op.Email}, "password": {o.pw}}, true)
	b.expect(http.StatusForbidden, "")
}

func TestCookiesAndHeaders(t *testing.T) {
	for _, tc := range []struct {
		publicURL string
		secure    bool
	}{{"", false}, {"http://127.0.0.1:8080", false}, {"https://2fa.example.com", true}} {
		f := newFixture(t, console.Config{PublicURL: tc.publicURL})
		o := f.operator("ana@example.com", true)
		b := f.browser()
		if tc.publicURL != "" && strings.HasPrefix(tc.publicURL, "https") {
			b.origin = tc.publicURL
		}
		b.password(o.op.Email, o.pw)
		var session *http.Cookie
		for _, c := range b.last.Cookies() {
			if c.Name == "twofold_console" {
				session = c
			}
		}
		if session == nil || len(session.Value) < 43 || !session.HttpOnly || session.SameSite != http.SameSiteStrictMode ||
			session.Path != "/console/" || session.Secure != tc.secure || session.MaxAge != 0 {
			t.Fatalf("public URL %q: session cookie %+v", tc.publicURL, session)
		}
		h := b.last.Header
		if !strings.Contains(h.Get("Content-Security-Policy"), "frame-ancestors 'none'") || h.Get("X-Frame-Options") != "DENY" ||
			h.Get("Cache-Control") != "no-store" || h.Get("X-Content-Type-Options") != "nosniff" {
			t.Fatalf("headers: %v", h)
		}
		csp := console.ContentSecurityPolicy
		if strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "unsafe-eval") || !strings.Contains(csp, "script-src 'self'") {
			t.Fatalf("CSP %q", csp)
		}
	}
}

func TestSessionsExpire(t *testing.T) {
	f := newFixture(t, console.Config{})
	o := f.operator("ana@example.com", true)

	// Idle for 30 minutes: signed out.
	b := f.browser()
	b.signIn(o)
	f.clock.Advance(29 * time.Minute)
	b.get("/console/apps")
	b.expect(http.StatusOK, "")
	f.clock.Advance(30 * time.Minute)
	b.get("/console/apps")
	b.expect(http.StatusSeeOther, "/console/signin")

	// Busy for 12 hours: signed out all the same.
	f.clock.Advance(time.Minute)
	b.signIn(o)
	for range 12 * 3 {
		f.clock.Advance(20 * time.Minute)
		b.get("/console/apps")
	}
	b.expect(http.StatusSeeOther, "/console/signin")

	// The second step has 10 minutes.
	b.password(o.op.Email, o.pw)
	f.clock.Advance(10 * time.Minute)
	b.get("/console/signin/factor")
	b.expect(http.StatusSeeOther, "/console/signin")

	// A new password signs the operator out everywhere.
	f.clock.Advance(time.Minute)
	b.signIn(o)
	b.get("/console/apps")
	b.expect(http.StatusOK, "")
	o.pw = "a brand new password"
	if err := f.ops.SetPassword(t.Context(), o.op.Email, o.pw); err != nil {
		t.Fatal(err)
	}
	b.get("/console/apps")
	b.expect(http.StatusSeeOther, "/console/signin")

	// A removed operator is signed out at once.
	f.clock.Advance(time.Minute)
	b.signIn(o)
	if err := f.ops.Remove(t.Context(), o.op.Email); err != nil {
		t.Fatal(err)
	}
	b.get("/console/apps")
	b.expect(http.StatusSeeOther, "/console/signin")
}

func TestSignInWithAPush(t *testing.T) {
	f := newFixture(t, console.Config{})
	ana := f.operator("ana@example.com", true)
	bob := f.operator("bob@example.com", true)
	anaPhone := f.registerDevice(ana.token)
	f.registerDevice(bob.token)

	b := f.browser()
	b.password(ana.op.Email, ana.pw)
	b.get("/console/signin/factor")
	b.contains(`id="push-submit"`)
	b.post("/console/signin/push", nil, true)
	b.expect(http.StatusSeeOther, "/console/signin/push")
	b.get("/console/signin/push")
	reqs, err := f.st.ListApprovals(t.Context(), twofold.ApprovalFilter{Status: twofold.Pending})
	if err != nil || len(reqs) != 1 {
		t.Fatalf("pending requests: %v %v", reqs, err)
	}
	r := reqs[0]
	if r.Number == "" || !strings.Contains(b.body, r.Number) || r.Details["IP address"] != "192.0.2.1" || !strings.Contains(r.Message, ana.op.Email) {
		t.Fatalf("the push %+v; page:\n%s", r, b.body)
	}
	status := func(b *browser, uuid string) (int, string) {
		b.get("/console/signin/push/status?uuid=" + url.QueryEscape(uuid))
		var v struct{ Status string }
		json.Unmarshal([]byte(b.body), &v)
		return b.last.StatusCode, v.Status
	}
	if code, s := status(b, r.UUID); code != 200 || s != "pending" {
		t.Fatalf("status: %d %q", code, s)
	}
	// Completing before the answer keeps waiting.
	b.get("/console/signin/push")
	b.post("/console/signin/push/complete", nil, true)
	b.expect(http.StatusAccepted, "")
	b.contains("Not approved yet")

	// Another operator cannot poll (or use) ana's push.
	other := f.browser()
	other.password(bob.op.Email, bob.pw)
	other.get("/console/signin/factor")
	if code, _ := status(other, r.UUID); code != http.StatusNotFound {
		t.Fatalf("bob polls ana's push: %d %s", code, other.body)
	}
	other.get("/console/signin/factor")
	other.post("/console/signin/push", nil, true)
	other.get("/console/signin/push")
	bobReq := strings.TrimSpace(strings.SplitN(strings.SplitN(other.body, `data-uuid="`, 2)[1], `"`, 2)[0])
	if code, _ := status(b, bobReq); code != http.StatusNotFound {
		t.Fatalf("ana polls bob's push: %d", code)
	}

	// Approved on ana's device (with the number shown): she is signed in.
	if err := f.answer(anaPhone, r.UUID, twofold.Approved, r.Number); err != nil {
		t.Fatal(err)
	}
	if code, s := status(b, r.UUID); code != 200 || s != "approved" {
		t.Fatalf("status after approval: %d %q", code, s)
	}
	b.get("/console/signin/push")
	half := b.sessionID()
	b.post("/console/signin/push/complete", nil, true)
	b.expect(http.StatusSeeOther, "/console/")
	if b.sessionID() == half {
		t.Fatal("the session id did not change")
	}
	b.get("/console/apps")
	b.expect(http.StatusOK, "")

	// A denied push says so, and signs nobody in.
	c := f.browser()
	c.password(ana.op.Email, ana.pw)
	c.get("/console/signin/factor")
	c.post("/console/signin/push", nil, true)
	reqs, _ = f.st.ListApprovals(t.Context(), twofold.ApprovalFilter{Status: twofold.Pending, UserID: r.UserID})
	if err := f.answer(anaPhone, reqs[0].UUID, twofold.Denied, ""); err != nil {
		t.Fatal(err)
	}
	c.get("/console/signin/push")
	c.post("/console/signin/push/complete", nil, true)
	c.expect(http.StatusUnauthorized, "")
	c.contains("denied on your device")
	c.get("/console/apps")
	c.expect(http.StatusSeeOther, "/console/signin")
}

func newPost(path string, form url.Values) *http.Request {
	req, _ := http.NewRequest("POST", "http://"+host+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.RemoteAddr = "192.0.2.1:1234"
	return req
}
