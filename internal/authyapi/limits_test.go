package authyapi_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twofold-auth/twofold/internal/apps"
	"github.com/twofold-auth/twofold/internal/authyapi"
	"github.com/twofold-auth/twofold/internal/deliver"
	"github.com/twofold-auth/twofold/internal/devices"
	"github.com/twofold-auth/twofold/internal/metrics"
	"github.com/twofold-auth/twofold/internal/onetouch"
	"github.com/twofold-auth/twofold/internal/otp"
	"github.com/twofold-auth/twofold/internal/seal"
	"github.com/twofold-auth/twofold/internal/store"
	"github.com/twofold-auth/twofold/internal/store/storetest"
	"github.com/twofold-auth/twofold/internal/twofold"
	"github.com/twofold-auth/twofold/internal/users"
	"github.com/twofold-auth/twofold/internal/verify"
)

// The attacks on the failure limit, over HTTP against the API on both engines: guesses placed
// on either side of where a fixed window would end, the same from two instances sharing a
// PostgreSQL database, and resubmits of a valid code.

// testClock is the time every service of a limitServer reads.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *testClock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *testClock) Set(t time.Time) { c.mu.Lock(); defer c.mu.Unlock(); c.now = t }

// engine opens a store; called twice on PostgreSQL, it gives two instances of one database.
type engine struct {
	name string
	open func(t *testing.T) func() *store.Store
}

var engines = []engine{
	{"sqlite", func(t *testing.T) func() *store.Store {
		path := filepath.Join(t.TempDir(), "twofold.db")
		return func() *store.Store { return openStore(t, path) }
	}},
	{"postgres", func(t *testing.T) func() *store.Store {
		dsn := storetest.Schema(t)
		return func() *store.Store { return openStore(t, dsn) }
	}},
}

func openStore(t *testing.T, database string) *store.Store {
	t.Helper()
	st, err := store.Open(context.Background(), database)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// limitServer is one instance of the API on loopback, over a real store.
type limitServer struct {
	t       *testing.T
	url     string
	key     string
	app     twofold.App
	users   *users.Service
	devices *devices.Service
	outbox  *deliver.Outbox
	clock   *testClock
}

var limitKeys = func() *seal.Keyring {
	k, err := seal.New(bytes.Repeat([]byte{9}, seal.KeySize))
	if err != nil {
		panic(err)
	}
	return k
}()

// newLimitServer serves the API over st. like is nil for the first instance, which creates the
// application; another instance serves the same application from its own store handle.
func newLimitServer(t *testing.T, st *store.Store, c *testClock, cfg verify.Config, like *limitServer) *limitServer {
	t.Helper()
	log := slog.New(slog.DiscardHandler)
	appSvc := apps.New(st, limitKeys, c.Now)
	s := &limitServer{t: t, clock: c, users: users.New(st, c.Now), outbox: deliver.NewOutbox(st, limitKeys, log, c.Now)}
	if like == nil {
		app, key, err := appSvc.Create(context.Background(), apps.CreateParams{Name: "Limits"})
		if err != nil {
			t.Fatal(err)
		}
		s.app, s.key = app, key
	} else {
		s.app, s.key = like.app, like.key
	}
	m := metrics.New()
	router, err := deliver.NewRouter(s.outbox, nil, deliver.RouterConfig{}, m, log)
	if err != nil {
		t.Fatal(err)
	}
	s.devices = devices.New(st, limitKeys, appSvc.Reveal, 0, c.Now)
	api := authyapi.New(authyapi.Services{
		Apps: appSvc, Users: s.users, Verify: verify.New(st, router, limitKeys, cfg, c.Now),
		Devices:  s.devices,
		OneTouch: onetouch.New(st, onetouch.Config{}, onetouch.Hooks{}, c.Now),
		Usage:    apps.NewUsageRecorder(st, log),
	}, m, log, authyapi.Config{}, c.Now)
	mux := http.NewServeMux()
	api.Routes(mux)
	srv := httptest.NewServer(authyapi.Handler(mux, m, log))
	t.Cleanup(srv.Close)
	s.url = srv.URL
	return s
}

func (s *limitServer) do(method, path string, form url.Values) answer {
	req, err := http.NewRequest(method, s.url+path, strings.NewReader(form.Encode()))
	if err != nil {
		s.t.Error(err)
		return answer{}
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-Authy-API-Key", s.key)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Error(err)
		return answer{}
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	var body struct {
		ErrorCode string `json:"error_code"`
	}
	if err := json.Unmarshal(raw, &body); err != nil {
		s.t.Errorf("%s %s: not JSON: %q", method, path, raw)
	}
	return answer{status: res.StatusCode, code: body.ErrorCode, retryAfter: res.Header.Get("Retry-After")}
}

func (s *limitServer) verify(token string, userID int64) answer {
	return s.do("GET", fmt.Sprintf("/protected/json/verify/%s/%d", token, userID), nil)
}

var limitPhones = []string{"2015550131", "2015550132", "2015550133", "2015550134", "2015550135"}

func (s *limitServer) user(n int) int64 {
	s.t.Helper()
	u, _, err := s.users.Register(context.Background(), s.app.ID, users.Contact{Email: "u@example.com", Cellphone: limitPhones[n], CountryCode: "1"})
	if err != nil {
		s.t.Fatal(err)
	}
	return u.ID
}

var smsCode = regexp.MustCompile(`is (\d+)\.`)

// smsCode sends the user a code over HTTP and reads it from the outbox.
func (s *limitServer) smsCode(userID int64) string {
	s.t.Helper()
	if a := s.do("GET", fmt.Sprintf("/protected/json/sms/%d?force=true", userID), nil); a.status != 200 {
		s.t.Fatalf("sms: %+v", a)
	}
	return s.lastCode()
}

// lastCode reads the code of the newest message in the outbox.
func (s *limitServer) lastCode() string {
	s.t.Helper()
	msgs, err := s.outbox.List(context.Background(), twofold.MessageFilter{})
	if err != nil {
		s.t.Fatal(err)
	}
	m := smsCode.FindStringSubmatch(msgs[len(msgs)-1].Body)
	if m == nil {
		s.t.Fatalf("no code in %q", msgs[len(msgs)-1].Body)
	}
	return m[1]
}

// authenticator enrols an authenticator app over HTTP and returns its seed.
func (s *limitServer) authenticator(userID int64) otp.TOTP {
	s.t.Helper()
	req, _ := http.NewRequest("POST", fmt.Sprintf("%s/protected/json/users/%d/secret", s.url, userID), nil)
	req.Header.Set("X-Authy-API-Key", s.key)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer res.Body.Close()
	var body struct {
		URI string `json:"uri"`
	}
	if err := json.NewDecoder(res.Body).Decode(&body); err != nil || res.StatusCode != 200 {
		s.t.Fatalf("enrol: %d %v", res.StatusCode, err)
	}
	k, err := otp.ParseURI(body.URI)
	if err != nil {
		s.t.Fatal(err)
	}
	return otp.TOTP{Secret: k.Secret, Digits: k.Digits, Period: k.Period}
}

// device registers an authenticator device for the user and returns its seed.
func (s *limitServer) device(userID int64) otp.TOTP {
	s.t.Helper()
	ctx := context.Background()
	token, _, err := s.devices.RegistrationToken(ctx, s.app.ID, userID)
	if err != nil {
		s.t.Fatal(err)
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	reg, err := s.devices.Register(ctx, token, der, "phone", "android")
	if err != nil {
		s.t.Fatal(err)
	}
	return otp.TOTP{Secret: reg.Secret, Digits: reg.Device.Digits, Period: reg.Device.Period}
}

// wrongToken is a well-formed token that no code of the user matches now.
func wrongToken(n int) string { return fmt.Sprintf("%07d", 1000000+n) }

// guess is one wrong token sent at a time, and what came of it.
type guess struct {
	at         time.Time
	evaluated  bool // judged and refused as wrong (60020), not stopped by the limit (429)
	retryAfter string
}

// slidingViolations lists the evaluated guesses that end an interval of length w (open at its
// start, as "10 per 10s" means: a guess at 0 s and one at 10 s are in different intervals)
// holding more than n evaluated guesses.
func slidingViolations(gs []guess, n int, w time.Duration) []string {
	var out []string
	for _, g := range gs {
		if !g.evaluated {
			continue
		}
		in := 0
		for _, h := range gs {
			if h.evaluated && h.at.After(g.at.Add(-w)) && !h.at.After(g.at) {
				in++
			}
		}
		if in > n {
			out = append(out, fmt.Sprintf("%d evaluated in the %v up to %s", in, w, g.at.Format("15:04:05.000")))
		}
	}
	return out
}

// Guesses just before and just after where a fixed window of the failure limit would end: no
// interval of the window's length gets more than the limit evaluated, a refusal comes only
// when the limit is really full, and its Retry-After is when the oldest counted guess leaves
// the window, to the second.
func TestFailureLimitSlidesOverWindowEdge(t *testing.T) {
	const n, w = 10, 10 * time.Second
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) {
			open := e.open(t)
			edge := time.Date(2026, 5, 6, 7, 8, 10, 0, time.UTC) // a multiple of w: where a fixed window ends
			c := &testClock{now: edge.Add(-2 * time.Second)}
			s := newLimitServer(t, open(), c, verify.Config{FailureLimit: verify.Limit{N: n, Window: w}, MaxAttempts: 1000}, nil)
			id := s.user(0)
			var gs []guess
			at := func(d time.Duration, tries int) {
				c.Set(edge.Add(d))
				for range tries {
					a := s.verify(wrongToken(len(gs)), id)
					switch {
					case a.status == 401 && a.code == "60020":
					case a.status == 429 && a.code == "60003":
					default:
						t.Fatalf("guess at %v: %+v", d, a)
					}
					gs = append(gs, guess{at: c.Now(), evaluated: a.status == 401, retryAfter: a.retryAfter})
				}
			}
			at(-2*time.Second, 6)
			at(-1500*time.Millisecond, 6)         // 12 tries before the edge: 10 evaluated
			at(2*time.Second, 12)                 // just after it: a fixed window would take 10 more
			at(7*time.Second, 5)                  // 9 s after the first guesses: still full
			at(8*time.Second-time.Millisecond, 5) // a moment before they are 10 s old
			at(8*time.Second, 8)                  // the first 6 have left: 6 more
			at(8500*time.Millisecond, 8)          // the next 4 have left: 4 more
			at(30*time.Second, 12)
			if v := slidingViolations(gs, n, w); len(v) > 0 {
				t.Errorf("the limit of %d per %v was passed: %s", n, w, strings.Join(v, "; "))
			}
			evaluated := 0
			for i, g := range gs {
				if g.evaluated {
					evaluated++
					continue
				}
				// Refused: the window up to now is full, and Retry-After says, rounded up to a
				// whole second, when its oldest guess leaves it.
				var in []time.Time
				for _, h := range gs[:i] {
					if h.evaluated && h.at.After(g.at.Add(-w)) {
						in = append(in, h.at)
					}
				}
				if len(in) < n {
					t.Errorf("guess at %s refused with %d evaluated in the window before it", g.at.Format("15:04:05.000"), len(in))
					continue
				}
				wait := in[0].Add(w).Sub(g.at)
				want := int((wait + time.Second - 1) / time.Second)
				if g.retryAfter != strconv.Itoa(want) {
					t.Errorf("guess at %s: Retry-After %q, want %d (the oldest counted guess leaves in %v)",
						g.at.Format("15:04:05.000"), g.retryAfter, want, wait)
				}
			}
			if want := 3 * n; evaluated != want {
				t.Errorf("%d guesses evaluated, want %d", evaluated, want)
			}
		})
	}
}

// Two instances on one PostgreSQL database, guessed at in parallel on either side of where a
// fixed window would end: between them they evaluate no more than the limit.
func TestFailureLimitHoldsAcrossInstances(t *testing.T) {
	const n, w = 10, 10 * time.Second
	open := engines[1].open(t)
	edge := time.Date(2026, 5, 6, 7, 8, 10, 0, time.UTC)
	c := &testClock{now: edge.Add(-time.Second)}
	cfg := verify.Config{FailureLimit: verify.Limit{N: n, Window: w}, MaxAttempts: 1000}
	a := newLimitServer(t, open(), c, cfg, nil)
	b := newLimitServer(t, open(), c, cfg, a)
	id := a.user(0)
	burst := func() map[string]int {
		var mu sync.Mutex
		got := map[string]int{}
		var wg sync.WaitGroup
		for i := range 3 * n {
			wg.Go(func() {
				s := []*limitServer{a, b}[i%2]
				r := s.verify(wrongToken(i), id)
				mu.Lock()
				got[fmt.Sprint(r.status, " ", r.code)]++
				mu.Unlock()
			})
		}
		wg.Wait()
		return got
	}
	before := burst()
	c.Set(edge.Add(time.Second))
	after := burst()
	if before["401 60020"]+after["401 60020"] != n {
		t.Errorf("evaluated %v before and %v after the edge, want %d in all", before, after, n)
	}
	c.Set(edge.Add(w)) // the first burst's guesses have left the window
	if got := burst(); got["401 60020"] != n || got["429 60003"] != 2*n {
		t.Errorf("a window later: %v, want %d evaluated", got, n)
	}
}

// Resubmits of one valid code, sent together, are one success and the rest "reused"
// (60019); none is a failure, so the user can still fail the limit's worth afterwards. A
// wrong token is never "reused": each is counted.
func TestResubmitsAreNotFailures(t *testing.T) {
	const n = 5
	factors := []struct {
		name  string
		token func(s *limitServer, id int64) string
	}{
		{"sms", func(s *limitServer, id int64) string { return s.smsCode(id) }},
		{"authenticator", func(s *limitServer, id int64) string { return s.authenticator(id).Code(s.clock.Now()) }},
		{"authenticator with a code pending", func(s *limitServer, id int64) string {
			totp := s.authenticator(id)
			s.smsCode(id) // the resubmits must not burn it either
			return totp.Code(s.clock.Now())
		}},
		{"device", func(s *limitServer, id int64) string { return s.device(id).Code(s.clock.Now()) }},
	}
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) {
			open := e.open(t)
			c := &testClock{now: time.Date(2026, 5, 6, 7, 8, 10, 0, time.UTC)}
			s := newLimitServer(t, open(), c, verify.Config{FailureLimit: verify.Limit{N: n, Window: time.Hour}, MaxAttempts: 3}, nil)
			for i, f := range factors {
				t.Run(f.name, func(t *testing.T) {
					s.t = t
					id := s.user(i)
					token := f.token(s, id)
					var mu sync.Mutex
					got := map[string]int{}
					var wg sync.WaitGroup
					for range n {
						wg.Go(func() {
							r := s.verify(token, id)
							mu.Lock()
							got[fmt.Sprint(r.status, " ", r.code)]++
							mu.Unlock()
						})
					}
					wg.Wait()
					if got["200 "] != 1 || got["401 60019"] != n-1 {
						t.Fatalf("%d resubmits together: %v, want one success and %d reused", n, got, n-1)
					}
					if f.name == "authenticator with a code pending" {
						if r := s.verify(s.lastCode(), id); r.status != 200 {
							t.Fatalf("the pending SMS code after the resubmits: %+v", r)
						}
					}
					for j := range n {
						if r := s.verify(wrongToken(j), id); r.status != 401 || r.code != "60020" {
							t.Fatalf("wrong token %d after the resubmits: %+v (the resubmits were counted as failures)", j+1, r)
						}
					}
					if r := s.verify(wrongToken(n), id); r.status != 429 || r.code != "60003" {
						t.Fatalf("wrong token %d: %+v, want the limit", n+1, r)
					}
				})
			}
		})
	}
}

// The same for phone verification: resubmits of the code that verified a number, sent
// together, are answered "nothing pending" (60023) but are no failures of the number's limit.
func TestPhoneVerificationResubmitsAreNotFailures(t *testing.T) {
	const n = 3
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) {
			open := e.open(t)
			c := &testClock{now: time.Date(2026, 5, 6, 7, 8, 10, 0, time.UTC)}
			s := newLimitServer(t, open(), c, verify.Config{FailureLimit: verify.Limit{N: n, Window: time.Hour}}, nil)
			number := url.Values{"phone_number": {"2015550139"}, "country_code": {"1"}}
			start := func() string {
				t.Helper()
				form := url.Values{"via": {"sms"}}
				for k, v := range number {
					form[k] = v
				}
				if r := s.do("POST", "/protected/json/phones/verification/start", form); r.status != 200 {
					t.Fatalf("start: %+v", r)
				}
				return s.lastCode()
			}
			check := func(code string) answer {
				return s.do("GET", "/protected/json/phones/verification/check?"+number.Encode()+"&verification_code="+code, nil)
			}
			code := start()
			if r := check(code); r.status != 200 {
				t.Fatalf("check: %+v", r)
			}
			var mu sync.Mutex
			got := map[string]int{}
			var wg sync.WaitGroup
			for range n {
				wg.Go(func() {
					r := check(code)
					mu.Lock()
					got[fmt.Sprint(r.status, " ", r.code)]++
					mu.Unlock()
				})
			}
			wg.Wait()
			if got["404 60023"] != n {
				t.Fatalf("%d resubmits together: %v, want all answered 60023", n, got)
			}
			code = start()
			for i := range n {
				wrong := fmt.Sprintf("%04d", (mustAtoi(t, code)+1+i)%10000)
				if r := check(wrong); r.status != 401 || r.code != "60022" {
					t.Fatalf("wrong code %d after the resubmits: %+v (the resubmits were counted as failures)", i+1, r)
				}
			}
			if r := check(code); r.status != 429 || r.code != "60003" {
				t.Fatalf("past the limit: %+v", r)
			}
		})
	}
}

func mustAtoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}
