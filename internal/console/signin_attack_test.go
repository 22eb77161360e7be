package console_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twofold-auth/twofold/internal/console"
	"github.com/twofold-auth/twofold/internal/operators"
	"github.com/twofold-auth/twofold/internal/password"
	"github.com/twofold-auth/twofold/internal/twofold"
)

// The attacks on the password step, over real HTTP: guesses sent in parallel, to several
// servers over one database; emails probed for whether they are operators'; floods of
// sign-ins, from one address or at one account.

const lockAfter = 5 // wrong passwords that lock sign-in (operators.New)

var cheap = password.Params{Time: 1, Memory: 64, Threads: 1}

// checks watches the password checks of operators services (their OnCheck hook): how many ran,
// the most at once, and, while held, it keeps those that begin from finishing.
type checks struct {
	mu            sync.Mutex
	running, most int
	total         int
	hold          chan struct{} // non-nil: a check that begins waits for it to close
	entered       chan struct{} // non-nil: told of each check that begins
}

func (c *checks) hook() (end func()) {
	c.mu.Lock()
	c.running++
	c.total++
	c.most = max(c.most, c.running)
	hold, entered := c.hold, c.entered
	c.mu.Unlock()
	if entered != nil {
		entered <- struct{}{}
	}
	if hold != nil {
		<-hold
	}
	return func() {
		c.mu.Lock()
		c.running--
		c.mu.Unlock()
	}
}

// holdAll makes the checks that begin from now on wait for release; the test's end releases
// them if it has not.
func (c *checks) holdAll(t *testing.T) (entered <-chan struct{}, release func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	hold, ch := make(chan struct{}), make(chan struct{}, 256)
	c.hold, c.entered = hold, ch
	var once sync.Once
	release = func() {
		once.Do(func() {
			c.mu.Lock()
			c.hold, c.entered = nil, nil
			c.mu.Unlock()
			close(hold)
		})
	}
	t.Cleanup(release)
	return ch, release
}

func (c *checks) counts() (total, most int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.total, c.most
}

// serve puts h on a loopback HTTP server for the test.
func serve(t *testing.T, h http.Handler) string {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}

// instance is another server over the database of st: its own operators service, the rest shared.
func (f *fixture) instance(ops *operators.Service, st console.OperatorLookup) http.Handler {
	d := f.deps
	d.Operators, d.Lookup = ops, st
	return console.New(d, f.cfg)
}

// answer is what the server said to one sign-in.
type answer struct {
	status     int
	location   string
	retryAfter string
	body       string
	err        error // no answer
}

func (a answer) String() string {
	if a.err != nil {
		return a.err.Error()
	}
	return fmt.Sprintf("%d Location=%q Retry-After=%q", a.status, a.location, a.retryAfter)
}

var noRedirects = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// signinForm is a sign-in form fetched from the server, ready to be posted.
type signinForm struct {
	base         string
	cookie, csrf string
	header       http.Header
}

func getForm(t *testing.T, base string) signinForm {
	t.Helper()
	res, err := noRedirects.Get(base + "/console/signin")
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(res.Body)
	res.Body.Close()
	m := csrfField.FindStringSubmatch(string(raw))
	var cookie string
	for _, c := range res.Cookies() {
		if c.Name == "twofold_console_signin" {
			cookie = c.Value
		}
	}
	if m == nil || cookie == "" {
		t.Fatalf("no sign-in form: %d\n%s", res.StatusCode, raw)
	}
	return signinForm{base: base, cookie: cookie, csrf: m[1], header: http.Header{}}
}

// post sends the form; it may run on any goroutine.
func (s signinForm) post(email, pw string) answer {
	form := url.Values{"csrf": {s.csrf}, "email": {email}, "password": {pw}}
	req, _ := http.NewRequest("POST", s.base+"/console/signin", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", s.base)
	for k, v := range s.header {
		req.Header[k] = v
	}
	req.AddCookie(&http.Cookie{Name: "twofold_console_signin", Value: s.cookie})
	res, err := noRedirects.Do(req)
	if err != nil {
		return answer{err: err}
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	return answer{status: res.StatusCode, location: res.Header.Get("Location"), retryAfter: res.Header.Get("Retry-After"), body: string(raw)}
}

func signIn(t *testing.T, base, email, pw string) answer {
	t.Helper()
	return getForm(t, base).post(email, pw)
}

// Twenty wrong passwords and the right one, sent together to two servers over one database
// after four wrong ones: at most five guesses are ever checked, and the right one, arriving
// while the last guess let through is still being checked, does not sign in.
func TestParallelGuessesStopAtTheLockout(t *testing.T) {
	engines(t, func(t *testing.T, db database) {
		f := newFixtureOn(t, console.Config{}, db())
		o := f.operator("ana@example.com", true)
		var ck checks
		f.ops.OnCheck(ck.hook).WithHashing(8, 10*time.Second)
		other := operators.New(db(), f.clock.Now).WithParams(cheap).WithHashing(8, 10*time.Second).OnCheck(ck.hook)
		servers := []string{serve(t, f.h), serve(t, f.instance(other, db()))}

		for i := range lockAfter - 1 {
			if a := signIn(t, servers[i%2], o.op.Email, fmt.Sprintf("wrong guess number %d", i)); a.status != http.StatusUnauthorized {
				t.Fatalf("wrong password %d: %v", i+1, a)
			}
		}
		const guesses = 20
		forms := make([]signinForm, guesses)
		for i := range forms {
			forms[i] = getForm(t, servers[i%2])
		}
		right := getForm(t, servers[0])

		entered, release := ck.holdAll(t)
		answers := make(chan answer, guesses)
		start := make(chan struct{})
		for i, form := range forms {
			go func() {
				<-start
				answers <- form.post(o.op.Email, fmt.Sprintf("parallel wrong guess %d", i))
			}()
		}
		close(start)
		// Every guess is either answered or being checked (and held there).
		var got []answer
		checking := 0
		for len(got)+checking < guesses {
			select {
			case a := <-answers:
				got = append(got, a)
			case <-entered:
				checking++
			}
		}
		// Now the right password, while those checks are still running.
		rightAnswer := make(chan answer, 1)
		go func() { rightAnswer <- right.post(o.op.Email, o.pw) }()
		var ra answer
		select {
		case ra = <-rightAnswer:
			release()
		case <-entered:
			release()
			ra = <-rightAnswer
		}
		for len(got) < guesses {
			got = append(got, <-answers)
		}

		if total, _ := ck.counts(); total > lockAfter {
			t.Errorf("%d passwords were checked; the lockout allows %d", total, lockAfter)
		}
		for _, a := range got {
			if a.status != http.StatusUnauthorized && a.status != http.StatusTooManyRequests {
				t.Errorf("a wrong guess: %v", a)
			}
		}
		if ra.status != http.StatusTooManyRequests || !strings.Contains(ra.body, "locked after repeated wrong passwords") || ra.retryAfter == "" {
			t.Fatalf("the right password sent with the guesses: %v, want 429 locked\n%s", ra, ra.body)
		}
		// The lock ends in its time, on either server.
		f.clock.Advance(15 * time.Minute)
		if a := signIn(t, servers[1], o.op.Email, o.pw); a.status != http.StatusSeeOther || a.location != "/console/signin/factor" {
			t.Fatalf("the right password after the lockout: %v\n%s", a, a.body)
		}
	})
}

var csrfValue = regexp.MustCompile(`value="[A-Za-z0-9_-]{20,}"`)

// Guesses at an email that is no operator's count and lock exactly as guesses at one that is:
// the same statuses, pages, Retry-After and number of password checks, try by try.
func TestUnknownEmailsAnswerLikeKnownOnes(t *testing.T) {
	engines(t, func(t *testing.T, db database) {
		f := newFixtureOn(t, console.Config{}, db())
		o := f.operator("ana@example.com", true)
		var ck checks
		f.ops.OnCheck(ck.hook)
		base := serve(t, f.h)
		tries := func(email string) []string {
			var out []string
			for i := range lockAfter + 2 {
				before, _ := ck.counts()
				a := signIn(t, base, email, fmt.Sprintf("wrong password %d!", i))
				after, _ := ck.counts()
				page := csrfValue.ReplaceAllString(strings.ReplaceAll(a.body, email, "EMAIL"), `value="TOKEN"`)
				out = append(out, fmt.Sprintf("try %d: %v, %d checks\n%s", i+1, a, after-before, page))
			}
			return out
		}
		known, unknown := tries(o.op.Email), tries("nobody@example.com")
		for i := range known {
			if known[i] != unknown[i] {
				t.Fatalf("a known and an unknown email answer differently:\n--- ana@example.com\n%s\n--- nobody@example.com\n%s", known[i], unknown[i])
			}
		}
		if !strings.HasPrefix(known[lockAfter], "try 6: 429") || !strings.HasPrefix(known[0], "try 1: 401") {
			t.Fatalf("the known email is not locked after %d tries:\n%s", lockAfter, strings.Join(known, "\n"))
		}
	})
}

// Many sign-ins at once: no more password checks run together than the bound, and the rest are
// answered 429 while those are still running, without a check of their own.
func TestPasswordChecksAreBounded(t *testing.T) {
	engines(t, func(t *testing.T, db database) {
		f := newFixtureOn(t, console.Config{}, db())
		const bound, n = 2, 10
		var ck checks
		f.ops.OnCheck(ck.hook).WithHashing(bound, 20*time.Millisecond)
		base := serve(t, f.h)
		forms := make([]signinForm, n)
		for i := range forms {
			forms[i] = getForm(t, base)
		}
		entered, release := ck.holdAll(t)
		answers := make(chan answer, n)
		for i, form := range forms {
			go func() { answers <- form.post(fmt.Sprintf("someone%d@example.com", i), "a password of someone") }()
		}
		var refused []answer
		checking := 0
		for len(refused) < n-bound {
			select {
			case a := <-answers:
				refused = append(refused, a)
			case <-entered:
				if checking++; checking > bound {
					release()
					t.Fatalf("%d password checks ran at once; the bound is %d", checking, bound)
				}
			}
		}
		for _, a := range refused {
			if a.status != http.StatusTooManyRequests || a.retryAfter == "" || !strings.Contains(a.body, "busy") {
				t.Errorf("a sign-in over the bound: %v\n%s", a, a.body)
			}
		}
		release()
		for range bound {
			if a := <-answers; a.status != http.StatusUnauthorized {
				t.Errorf("a sign-in within the bound: %v", a)
			}
		}
		if total, most := ck.counts(); total != bound || most > bound {
			t.Fatalf("%d checks, %d at once; want %d, at most %d", total, most, bound, bound)
		}
	})
}

// Sign-in is limited per client address and per account (the email as typed, whether an
// operator's or not), with 429 and Retry-After and no password check. X-Forwarded-For names the
// client only when it comes from a trusted proxy.
func TestSignInLimits(t *testing.T) {
	type step struct {
		email, xff string
		wait       time.Duration // the clock moves first
		status     int
	}
	perMinute := func(n int) twofold.Limit { return twofold.Limit{N: n, Window: time.Minute} }
	for _, tc := range []struct {
		name  string
		cfg   console.Config
		steps []step
	}{
		{"per address", console.Config{SignInPerAddress: perMinute(3)}, []step{
			{email: "a@example.com", status: 401}, {email: "b@example.com", status: 401}, {email: "ana@example.com", status: 401},
			{email: "c@example.com", status: 429}, {email: "ana@example.com", status: 429},
			// Three at once, then one a third of a minute later (a token bucket).
			{email: "c@example.com", wait: 19 * time.Second, status: 429},
			{email: "c@example.com", wait: time.Second, status: 401},
			{email: "d@example.com", status: 429},
		}},
		{"per account, known or not", console.Config{SignInPerAccount: perMinute(2)}, []step{
			{email: "ana@example.com", status: 401}, {email: "ana@example.com", status: 401}, {email: " ANA@Example.com", status: 429},
			{email: "nobody@example.com", status: 401}, {email: "Nobody@example.com", status: 401}, {email: "nobody@example.com", status: 429},
			{email: "bob@example.com", status: 401},
			{email: "ana@example.com", wait: time.Minute, status: 401},
		}},
		{"a sign-in one limit refuses spends nothing of the other", console.Config{SignInPerAddress: perMinute(2), SignInPerAccount: perMinute(1)}, []step{
			{email: "ana@example.com", status: 401}, {email: "ana@example.com", status: 429},
			{email: "bob@example.com", status: 401}, {email: "cy@example.com", status: 429},
		}},
		{"X-Forwarded-For from anyone is ignored", console.Config{SignInPerAddress: perMinute(2)}, []step{
			{email: "a@example.com", xff: "198.51.100.1", status: 401}, {email: "b@example.com", xff: "198.51.100.2", status: 401},
			{email: "c@example.com", xff: "198.51.100.3", status: 429},
		}},
		{"X-Forwarded-For from a trusted proxy", console.Config{SignInPerAddress: perMinute(2),
			TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("10.0.0.0/8")}}, []step{
			{email: "a@example.com", xff: "198.51.100.1", status: 401}, {email: "b@example.com", xff: "198.51.100.1, 10.1.2.3", status: 401},
			{email: "c@example.com", xff: "198.51.100.1", status: 429},
			// What the client wrote itself, left of the address the proxy saw, changes nothing.
			{email: "c@example.com", xff: "203.0.113.9, 198.51.100.1", status: 429},
			{email: "c@example.com", xff: "198.51.100.2", status: 401},
			// An IPv6 client counts by its /64.
			{email: "d@example.com", xff: "2001:db8:1:2::1", status: 401}, {email: "d@example.com", xff: "2001:db8:1:2::2", status: 401},
			{email: "d@example.com", xff: "2001:db8:1:2:ffff::3", status: 429}, {email: "d@example.com", xff: "2001:db8:1:3::1", status: 401},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, tc.cfg)
			f.operator("ana@example.com", true)
			var ck checks
			f.ops.OnCheck(ck.hook)
			base := serve(t, f.h)
			for i, s := range tc.steps {
				f.clock.Advance(s.wait)
				form := getForm(t, base)
				if s.xff != "" {
					form.header.Set("X-Forwarded-For", s.xff)
				}
				before, _ := ck.counts()
				a := form.post(s.email, "not the password at all")
				after, _ := ck.counts()
				if a.status != s.status {
					t.Fatalf("step %d (%q from %q): %v, want %d\n%s", i+1, s.email, s.xff, a, s.status, a.body)
				}
				if s.status == http.StatusTooManyRequests && (a.retryAfter == "" || after != before || !strings.Contains(a.body, "Too many sign-in attempts")) {
					t.Fatalf("step %d: refused with %v after %d password checks\n%s", i+1, a, after-before, a.body)
				}
			}
		})
	}
}
