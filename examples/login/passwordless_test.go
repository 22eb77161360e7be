package main

import (
	"html"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// startPhone sends the log-in form's "Sign in with your phone" with email.
func (s *sample) startPhone(email string) answer {
	s.t.Helper()
	return s.post("/login", phonePath, url.Values{"email": {email}, "password": {""}})
}

// finishPhone posts the wait page's finish form.
func (s *sample) finishPhone() answer {
	s.t.Helper()
	return s.post(phonePath, phonePath+"/finish", url.Values{})
}

// problemText is the text of the page's problem, "" when it has none.
func problemText(body string) string {
	m := regexp.MustCompile(`id="problem">([^<]*)<`).FindStringSubmatch(body)
	if m == nil {
		return ""
	}
	return html.UnescapeString(m[1])
}

// emailField is the value of the log-in form's email field.
func emailField(body string) string {
	m := regexp.MustCompile(`id="email" value="([^"]*)"`).FindStringSubmatch(body)
	if m == nil {
		return "(no email field)"
	}
	return html.UnescapeString(m[1])
}

// The ways a sign-in with the phone ends, against a fake Twofold: only an approval by a user of
// the sample signs in; everything else is the password form, with the email and the same words.
func TestPhoneSignIn(t *testing.T) {
	for _, tt := range []struct {
		name   string
		answer func(tf *fakeTwofold, uuid string, ada int64)
		signed bool
	}{
		{"approved", func(tf *fakeTwofold, uuid string, ada int64) { tf.answerSignin(uuid, "approved", ada) }, true},
		{"denied", func(tf *fakeTwofold, uuid string, _ int64) { tf.answerSignin(uuid, "denied", 0) }, false},
		{"expired", func(tf *fakeTwofold, uuid string, _ int64) { tf.answerSignin(uuid, "expired", 0) }, false},
		{"approved by a user the sample does not have", func(tf *fakeTwofold, uuid string, ada int64) {
			tf.answerSignin(uuid, "approved", ada+100)
		}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tf := newFakeTwofold(t)
			var offset atomic.Int64 // how far the test moved the sample's clock on
			s := newSampleAt(t, tf, func() time.Time { return time.Now().Add(time.Duration(offset.Load())) })
			s.signup("ada@example.com", "201-555-0123", true)
			s.logout()
			u, _ := s.srv.users.byEmailAddr("ada@example.com")
			before := s.sessionID()
			if a := s.startPhone("  Ada@Example.com "); a.status != http.StatusSeeOther || a.location != phonePath {
				t.Fatalf("start: %d %s %s", a.status, a.location, a.body)
			}
			uuid := tf.lastSigninUUID()
			tf.mu.Lock()
			sent := tf.signinForms[len(tf.signinForms)-1]
			number := tf.signins[uuid].number
			tf.mu.Unlock()
			if sent.Get("email") != "ada@example.com" || sent.Get("user_ip") != "127.0.0.1" || sent.Get("seconds_to_expire") != "90" ||
				sent.Has("password") || sent.Get("details[Browser]") == "" {
				t.Fatalf("sent to Twofold: %v", sent)
			}
			page := s.get(phonePath)
			if page.status != http.StatusOK || !strings.Contains(page.body, "Check your phone and tap <strong>"+number+"</strong>") ||
				strings.Contains(page.body, uuid) {
				t.Fatalf("wait page: %d %s", page.status, page.body)
			}
			if a := s.get(phonePath + "/status"); a.body != "{\"status\":\"pending\"}\n" {
				t.Fatalf("status while pending: %s", a.body)
			}
			// Finishing before an answer waits on.
			if a := s.finishPhone(); a.location != phonePath {
				t.Fatalf("finish while pending: %d %s", a.status, a.location)
			}
			if a := s.get(phonePath); !strings.Contains(a.body, "Not approved yet.") {
				t.Fatalf("after finishing early: %s", a.body)
			}
			tt.answer(tf, uuid, u.AuthyID)
			// The page's polls read Twofold at most every pollPhoneEach.
			offset.Store(int64(pollPhoneEach))
			if a := s.get(phonePath + "/status"); a.body != "{\"status\":\"done\"}\n" {
				t.Fatalf("status once answered: %s", a.body)
			}
			a := s.finishPhone()
			if tt.signed {
				if a.location != "/protected" || s.sessionID() == before {
					t.Fatalf("finish: %d %s (session rotated: %v)", a.status, a.location, s.sessionID() != before)
				}
				if a := s.get("/protected"); !strings.Contains(a.body, "ada@example.com") || !strings.Contains(a.body, "passwordless sign-in") {
					t.Fatalf("protected: %d %s", a.status, a.body)
				}
				return
			}
			if a.location != "/login" {
				t.Fatalf("finish: %d %s", a.status, a.location)
			}
			login := s.get("/login")
			if problemText(login.body) != phoneFailed || emailField(login.body) != "ada@example.com" {
				t.Fatalf("the password form says %q with the email %q", problemText(login.body), emailField(login.body))
			}
			if a := s.get("/protected"); a.location != "/login" {
				t.Fatalf("protected: %d %s", a.status, a.location)
			}
			// The sign-in is over: its page and its finish send the browser away.
			if a := s.get(phonePath); a.status != http.StatusSeeOther {
				t.Fatalf("the wait page after the end: %d", a.status)
			}
			if a := s.get(phonePath + "/status"); !strings.Contains(a.body, "gone") {
				t.Fatalf("status after the end: %s", a.body)
			}
		})
	}
}

// "Use my password instead": the password form with the email typed, no problem shown, and the
// request closed so that the phone drops it.
func TestPhoneSignInUsePassword(t *testing.T) {
	tf := newFakeTwofold(t)
	s := newSample(t, tf)
	s.startPhone("ada@example.com")
	if a := s.post(phonePath, phonePath+"/cancel", url.Values{}); a.status != http.StatusSeeOther || a.location != "/login" {
		t.Fatalf("use my password: %d %s", a.status, a.location)
	}
	login := s.get("/login")
	if problemText(login.body) != "" || emailField(login.body) != "ada@example.com" {
		t.Fatalf("the password form says %q with the email %q", problemText(login.body), emailField(login.body))
	}
	if a := s.get(phonePath); a.status != http.StatusSeeOther {
		t.Fatalf("the wait page after using the password: %d", a.status)
	}
}

// The answers to "Sign in with your phone" do not depend on the email: one of a user of the
// sample with two-factor, one without, one of nobody. The fake Twofold answers alike, as Twofold
// does, so a difference could only come from the sample looking the email up.
func TestPhoneSignInSameForEveryone(t *testing.T) {
	tf := newFakeTwofold(t)
	s := newSample(t, tf)
	s.signup("ada@example.com", "201-555-0123", true)
	s.logout()
	s.signup("bob@example.com", "201-555-0124", false)
	s.logout()
	number := regexp.MustCompile(`tap <strong>\d\d</strong>`)
	type seen struct {
		start, page, status string
	}
	var first seen
	emails := []string{"ada@example.com", "bob@example.com", "nobody@example.com"}
	for i, email := range emails {
		a := s.startPhone(email)
		page := s.get(phonePath)
		status := s.get(phonePath + "/status")
		got := seen{
			start:  strings.Join([]string{http.StatusText(a.status), a.location, a.body}, "|"),
			page:   http.StatusText(page.status) + "|" + number.ReplaceAllString(page.body, "tap <strong>NN</strong>"),
			status: http.StatusText(status.status) + "|" + status.body,
		}
		if !number.MatchString(page.body) {
			t.Fatalf("%s: no number on the page:\n%s", email, page.body)
		}
		if i == 0 {
			first = got
			continue
		}
		if got != first {
			t.Errorf("%s is answered otherwise than %s:\n%+v\n%+v", email, emails[0], got, first)
		}
	}
	// Over Twofold's limits, everyone gets the same words and status (the form keeps the email).
	tf.mu.Lock()
	tf.signinsLimit = true
	tf.mu.Unlock()
	var limited string
	for i, email := range emails {
		a := s.startPhone(email)
		if a.status != http.StatusTooManyRequests || problemText(a.body) != phoneLimited || emailField(a.body) != email {
			t.Fatalf("%s over the limit: %d %q", email, a.status, problemText(a.body))
		}
		body := strings.ReplaceAll(a.body, email, "EMAIL")
		if i == 0 {
			limited = body
		} else if body != limited {
			t.Errorf("%s over the limit is answered otherwise than %s", email, emails[0])
		}
	}
}

// The sample's own protections: the forms carry the CSRF token; a sign-in is its browser's, and
// is finished once.
func TestPhoneSignInAttacks(t *testing.T) {
	t.Run("forms without the token", func(t *testing.T) {
		tf := newFakeTwofold(t)
		s := newSample(t, tf)
		s.get("/login")
		if a := s.do(s.hc, "POST", phonePath, url.Values{"email": {"ada@example.com"}}); a.status != http.StatusForbidden {
			t.Fatalf("start without a token: %d", a.status)
		}
		if n := len(tf.signinForms); n != 0 {
			t.Fatalf("Twofold was asked %d times", n)
		}
		s.startPhone("ada@example.com")
		for _, path := range []string{"/finish", "/cancel"} {
			if a := s.do(s.hc, "POST", phonePath+path, url.Values{"csrf": {strings.Repeat("A", 43)}}); a.status != http.StatusForbidden {
				t.Fatalf("%s with a wrong token: %d", path, a.status)
			}
		}
		if a := s.get(phonePath); a.status != http.StatusOK {
			t.Fatalf("the sign-in did not survive the forged forms: %d", a.status)
		}
	})
	t.Run("another browser", func(t *testing.T) {
		tf := newFakeTwofold(t)
		s := newSample(t, tf)
		s.signup("ada@example.com", "201-555-0123", true)
		s.logout()
		u, _ := s.srv.users.byEmailAddr("ada@example.com")
		s.startPhone("ada@example.com")
		uuid := tf.lastSigninUUID()
		tf.answerSignin(uuid, "approved", u.AuthyID)
		// Another browser, with a session of its own, sees and finishes nothing.
		other := &sample{t: t, srv: s.srv, url: s.url, hc: newBrowserClient()}
		if a := other.get(phonePath); a.status != http.StatusSeeOther {
			t.Fatalf("another browser's wait page: %d", a.status)
		}
		if a := other.get(phonePath + "/status"); !strings.Contains(a.body, "gone") {
			t.Fatalf("another browser's status: %s", a.body)
		}
		if a := other.post("/login", phonePath+"/finish", url.Values{}); a.location == "/protected" {
			t.Fatal("another browser finished the sign-in")
		}
		// Even holding the uuid in its session (as if it had leaked), it cannot: the sign-in is
		// bound to the session that started it.
		other.get("/login")
		s.srv.sessions.mu.Lock()
		sess := s.srv.sessions.sessions[other.sessionID()]
		sess.PhoneUUID = uuid
		s.srv.sessions.sessions[other.sessionID()] = sess
		s.srv.sessions.mu.Unlock()
		if a := other.do(other.hc, "POST", phonePath+"/finish", url.Values{"csrf": {sess.CSRF}}); a.location == "/protected" {
			t.Fatal("a session holding another's uuid finished its sign-in")
		}
		if a := other.get("/protected"); a.status == http.StatusOK {
			t.Fatal("another browser got in")
		}
		// The browser that started it still can.
		if a := s.finishPhone(); a.location != "/protected" {
			t.Fatalf("the browser that started it: %d %s", a.status, a.location)
		}
	})
	t.Run("finished once", func(t *testing.T) {
		tf := newFakeTwofold(t)
		s := newSample(t, tf)
		s.signup("ada@example.com", "201-555-0123", true)
		s.logout()
		u, _ := s.srv.users.byEmailAddr("ada@example.com")
		s.startPhone("ada@example.com")
		tf.answerSignin(tf.lastSigninUUID(), "approved", u.AuthyID)
		token := s.csrf(phonePath)
		cookie := s.sessionID()
		// The same browser's session, finished many times at once, each past its reading of
		// Twofold's answer before any goes on: one log-in.
		const n = 8
		tf.mu.Lock()
		tf.signinReads = newBarrier(n)
		tf.mu.Unlock()
		var wg sync.WaitGroup
		var mu sync.Mutex
		in := 0
		for range n {
			wg.Go(func() {
				hc := newBrowserClient()
				base, _ := url.Parse(s.url)
				hc.Jar.SetCookies(base, []*http.Cookie{{Name: "login_session", Value: cookie}})
				res, err := hc.PostForm(s.url+phonePath+"/finish", url.Values{"csrf": {token}})
				if err != nil {
					t.Error(err)
					return
				}
				io.Copy(io.Discard, res.Body)
				res.Body.Close()
				if res.Header.Get("Location") == "/protected" {
					mu.Lock()
					in++
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		if in != 1 {
			t.Fatalf("%d of %d finishes logged in, want 1", in, n)
		}
		// The session that waited is gone: its cookie finishes nothing more.
		stale := newBrowserClient()
		base, _ := url.Parse(s.url)
		stale.Jar.SetCookies(base, []*http.Cookie{{Name: "login_session", Value: cookie}})
		if a := s.do(stale, "POST", phonePath+"/finish", url.Values{"csrf": {token}}); a.location == "/protected" {
			t.Fatal("the old session finished again")
		}
	})
	t.Run("a half-logged-in session", func(t *testing.T) {
		tf := newFakeTwofold(t)
		s := newSample(t, tf)
		s.signup("ada@example.com", "201-555-0123", true)
		s.logout()
		s.login("ada@example.com", "correct horse battery")
		if a := s.post("/login/code", phonePath, url.Values{"email": {"ada@example.com"}}); a.location == phonePath {
			t.Fatalf("a half-logged-in session started a sign-in with the phone: %d %s", a.status, a.location)
		}
		if n := len(tf.signinForms); n != 0 {
			t.Fatalf("Twofold was asked %d times", n)
		}
	})
	t.Run("no email", func(t *testing.T) {
		tf := newFakeTwofold(t)
		s := newSample(t, tf)
		for _, email := range []string{"", "not an email", strings.Repeat("a", 250) + "@example.com"} {
			if a := s.startPhone(email); a.status != http.StatusBadRequest || !strings.Contains(problemText(a.body), "Enter your email address") {
				t.Fatalf("%q: %d %q", email, a.status, problemText(a.body))
			}
		}
		if n := len(tf.signinForms); n != 0 {
			t.Fatalf("Twofold was asked %d times", n)
		}
	})
}

// The wait is configurable, short by default, and bounded by what Twofold accepts.
func TestPhoneWaitConfig(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	key := map[string]string{"TWOFOLD_API_KEY": "k"}
	cfg, err := parseConfig(nil, env(key), io.Discard)
	if err != nil || cfg.check() != nil || cfg.PhoneWait != 90*time.Second {
		t.Fatalf("default: %v %v", cfg.PhoneWait, err)
	}
	cfg, err = parseConfig(nil, env(map[string]string{"TWOFOLD_API_KEY": "k", "SAMPLE_PHONE_WAIT": "1m"}), io.Discard)
	if err != nil || cfg.PhoneWait != time.Minute {
		t.Fatalf("env: %v %v", cfg.PhoneWait, err)
	}
	cfg, err = parseConfig([]string{"--phone-wait", "2m"}, env(map[string]string{"TWOFOLD_API_KEY": "k", "SAMPLE_PHONE_WAIT": "1m"}), io.Discard)
	if err != nil || cfg.PhoneWait != 2*time.Minute {
		t.Fatalf("flag: %v %v", cfg.PhoneWait, err)
	}
	if _, err := parseConfig(nil, env(map[string]string{"TWOFOLD_API_KEY": "k", "SAMPLE_PHONE_WAIT": "soon"}), io.Discard); err == nil {
		t.Fatal("a wait that is not a duration was accepted")
	}
	for _, d := range []time.Duration{500 * time.Millisecond, 11 * time.Minute, -time.Second} {
		if _, err := newServer(config{APIKey: "k", PhoneWait: d}); err == nil {
			t.Errorf("a wait of %s was accepted", d)
		}
	}
}
