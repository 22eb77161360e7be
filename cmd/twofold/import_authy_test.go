package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twofold-auth/twofold/internal/userimport"
)

const exportKey = "KeyOfTheOldApp0123456789abcdefAB" // an Authy-shaped key

// exportUser is a user of the Authy export server.
type exportUser struct {
	cc     any    // country_code as the source writes it: a number, or a string as Authy does
	phone  string // "" for a user without a phone
	secret string // "" for a user without an exportable seed (the Authy app's)
	otp    string
	digits int // written only when not 0, as a Twofold source does
	period int
}

// authyExport is a local server that speaks Authy's two export endpoints as the Authy docs
// describe them: phone_number and secret/export, the X-Authy-API-Key header, the error
// envelope, 404 (60026) for an unknown user, 429 (60003) when limiting, 60154 when the
// migration tools are disabled.
type authyExport struct {
	*httptest.Server
	mu          sync.Mutex
	users       map[int64]exportUser
	limit       map[string]int    // path → 429s still to answer before serving it
	retryAfter  string            // the Retry-After of those 429s ("" for none)
	fail        map[string]int    // path → 503s still to answer
	answer      map[string]string // path → a body to answer with 200 instead
	disabled    bool              // the migration tools are disabled: 60154
	requests    map[string]int    // path → requests served
	inFlight    int
	maxInFlight int
	limitedAt   []int // inFlight seen at each request after the first 429
	limited     bool
	onRequest   func(path string) // called with each request, before it is answered
}

func newAuthyExport(t *testing.T, users map[int64]exportUser) *authyExport {
	a := &authyExport{users: users, limit: map[string]int{}, fail: map[string]int{}, answer: map[string]string{}, requests: map[string]int{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /protected/json/users/{id}/phone_number", a.phone)
	mux.HandleFunc("GET /protected/json/users/{id}/secret/export", a.seed)
	a.Server = httptest.NewServer(a.gatekeeper(mux))
	t.Cleanup(a.Close)
	return a
}

func authyError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{"message": msg, "success": false, "errors": map[string]string{"message": msg}, "error_code": code})
}

func (a *authyExport) gatekeeper(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.mu.Lock()
		a.requests[r.URL.Path]++
		a.inFlight++
		a.maxInFlight = max(a.maxInFlight, a.inFlight)
		if a.limited {
			a.limitedAt = append(a.limitedAt, a.inFlight)
		}
		hook := a.onRequest
		a.mu.Unlock()
		defer func() { a.mu.Lock(); a.inFlight--; a.mu.Unlock() }()
		if hook != nil {
			hook(r.URL.Path)
		}
		if r.Header.Get("X-Authy-API-Key") != exportKey {
			authyError(w, 401, "60001", "Invalid API key")
			return
		}
		a.mu.Lock()
		limited, failing, answer, disabled, retryAfter := a.limit[r.URL.Path] > 0, a.fail[r.URL.Path] > 0, a.answer[r.URL.Path], a.disabled, a.retryAfter
		if limited {
			a.limit[r.URL.Path]--
			a.limited = true
		}
		if failing {
			a.fail[r.URL.Path]--
		}
		a.mu.Unlock()
		switch {
		case disabled:
			authyError(w, 403, "60154", "Migration tools disabled.")
		case limited:
			if retryAfter != "" {
				w.Header().Set("Retry-After", retryAfter)
			}
			authyError(w, 429, "60003", "DOS protected.")
		case failing:
			authyError(w, 503, "60000", "An error occurred")
		case answer != "":
			w.Header().Set("Content-Type", "application/json")
			w.Write([]byte(answer))
		default:
			next.ServeHTTP(w, r)
		}
	})
}

func (a *authyExport) user(w http.ResponseWriter, r *http.Request) (exportUser, bool) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	a.mu.Lock()
	u, ok := a.users[id]
	a.mu.Unlock()
	if err != nil || !ok {
		authyError(w, 404, "60026", "User not found.")
		return exportUser{}, false
	}
	return u, true
}

func (a *authyExport) phone(w http.ResponseWriter, r *http.Request) {
	u, ok := a.user(w, r)
	if !ok {
		return
	}
	e164 := ""
	if u.phone != "" {
		e164 = fmt.Sprintf("+%v%s", u.cc, u.phone)
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{"phone_number": u.phone, "country_code": u.cc, "e164": e164, "success": true})
}

func (a *authyExport) seed(w http.ResponseWriter, r *http.Request) {
	u, ok := a.user(w, r)
	if !ok {
		return
	}
	if u.secret == "" {
		authyError(w, 404, "60026", "User not found.")
		return
	}
	body := map[string]any{"secret": u.secret, "otp": u.otp, "success": true}
	if u.digits != 0 {
		body["digits"], body["period"] = u.digits, u.period
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(body)
}

// with changes the server's behaviour while it serves.
func (a *authyExport) with(change func()) {
	a.mu.Lock()
	defer a.mu.Unlock()
	change()
}

func (a *authyExport) served(path string) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.requests[path]
}

// noWait is the backoff of tests that are not about its length.
func noWait(int) time.Duration { return time.Millisecond }

func testSource(t *testing.T, base string, concurrency int, tolerant bool) *authySource {
	t.Helper()
	src, err := newAuthySource(base, exportKey, concurrency, 10*time.Second, tolerant)
	if err != nil {
		t.Fatal(err)
	}
	src.backoff = noWait
	t.Cleanup(src.client.CloseIdleConnections)
	return src
}

func TestAuthySourceFetch(t *testing.T) {
	a := newAuthyExport(t, map[int64]exportUser{
		1: {cc: "1", phone: "2015550123", secret: "JBSWY3DPEHPK3PXP", otp: "123456"},                          // Authy: a string country code, no digits/period
		2: {cc: 44, phone: "7911123456"},                                                                      // the Authy app's user: no seed
		3: {cc: 1, phone: "2015550124", secret: "jbsw y3dp ehpk 3pxp", otp: "1234567", digits: 7, period: 10}, // a Twofold source's device code
		4: {},                                                                                                 // registered by QR code: no phone
		5: {cc: "1", phone: "2015550125", secret: "JBSWY3DPEHPK3PXP", otp: "12345678"},                        // 8 digits, said by the code's length
	})
	src := testSource(t, a.URL+"/", 2, false)
	for _, tc := range []struct {
		id   int64
		want userimport.Record
		fail string
	}{
		{1, userimport.Record{ID: 1, Email: "u@example.com", CountryCode: 1, Phone: "2015550123", Secret: "JBSWY3DPEHPK3PXP", Digits: 6, Line: 7}, ""},
		{2, userimport.Record{ID: 2, Email: "u@example.com", CountryCode: 44, Phone: "7911123456", Line: 7}, ""},
		{3, userimport.Record{ID: 3, Email: "u@example.com", CountryCode: 1, Phone: "2015550124", Secret: "JBSWY3DPEHPK3PXP", Digits: 7, Period: 10, Line: 7}, ""},
		{4, userimport.Record{ID: 4, Email: "u@example.com", Line: 7}, ""},
		{5, userimport.Record{ID: 5, Email: "u@example.com", CountryCode: 1, Phone: "2015550125", Secret: "JBSWY3DPEHPK3PXP", Digits: 8, Line: 7}, ""},
		{6, userimport.Record{ID: 6, Email: "u@example.com", Line: 7}, "not found at the source (404 60026: User not found.)"},
	} {
		got := src.fetch(context.Background(), idItem{line: 7, id: tc.id, email: "u@example.com"})
		if got.err != nil || got.fail != tc.fail || !reflect.DeepEqual(got.rec, tc.want) {
			t.Errorf("user %d: %+v, want %+v %q", tc.id, got, tc.want, tc.fail)
		}
	}
	// A user the source does not know is not asked for a seed.
	if n := a.served("/protected/json/users/6/secret/export"); n != 0 {
		t.Errorf("the seed of an unknown user was asked for %d times", n)
	}
}

// 429 is waited out (Retry-After when given) and tried again; 503 and network errors a few
// times; a source that keeps failing stops the run, or fails the user when tolerant.
func TestAuthySourceRetries(t *testing.T) {
	a := newAuthyExport(t, map[int64]exportUser{1: {cc: "1", phone: "2015550123"}, 2: {cc: "1", phone: "2015550124"}})
	const phone1 = "/protected/json/users/1/phone_number"
	a.with(func() { a.limit[phone1] = 1; a.retryAfter = "1" })
	src := testSource(t, a.URL, 4, false)
	var limits []int
	src.gate.onChange = func(limit, _ int, _ time.Time) { limits = append(limits, limit) }
	start := time.Now()
	got := src.fetch(context.Background(), idItem{line: 1, id: 1})
	if got.err != nil || got.fail != "" || got.rec.Phone != "2015550123" {
		t.Fatalf("after a 429: %+v", got)
	}
	if waited := time.Since(start); waited < time.Second {
		t.Errorf("Retry-After: 1 was not honoured: tried again after %s", waited)
	}
	if n := a.served(phone1); n != 2 {
		t.Errorf("%d requests for a 429 then a 200", n)
	}
	// Halved by the 429, then raised by one after as many answers as it allows.
	if !reflect.DeepEqual(limits, []int{2, 2, 3}) {
		t.Errorf("the concurrency through a 429 and two answers: %v, want 2 of 4, then 3", limits)
	}

	a.with(func() { a.fail[phone1] = 4 }) // four 503s, then an answer: within the five tries
	if got := src.fetch(context.Background(), idItem{line: 1, id: 1}); got.err != nil || got.fail != "" {
		t.Fatalf("after four 503s: %+v", got)
	}
	a.with(func() { a.fail[phone1] = 5 })
	got = src.fetch(context.Background(), idItem{line: 1, id: 1})
	if !isStopErr(got.err) || !strings.Contains(got.err.Error(), "after 5 tries") || !strings.Contains(got.err.Error(), "503") {
		t.Fatalf("a source that keeps failing: %+v", got)
	}
	tolerant := testSource(t, a.URL, 4, true)
	a.with(func() { a.fail[phone1] = 5 })
	got = tolerant.fetch(context.Background(), idItem{line: 1, id: 1})
	if got.err != nil || !strings.Contains(got.fail, "after 5 tries") {
		t.Fatalf("a source that keeps failing, --continue-on-error: %+v", got)
	}

	// A source that limits without end stops the run, saying to come back later.
	a.with(func() { a.limit[phone1] = 1000; a.retryAfter = "" })
	src.limitedTries = 3
	got = src.fetch(context.Background(), idItem{line: 1, id: 1})
	if !isStopErr(got.err) || !strings.Contains(got.err.Error(), "still limits the rate") {
		t.Fatalf("endless 429s: %+v", got)
	}

	// Nothing listens: network errors, tried again, then the run stops.
	dead := testSource(t, "http://127.0.0.1:1", 1, false)
	if got := dead.fetch(context.Background(), idItem{line: 1, id: 2}); !isStopErr(got.err) || !strings.Contains(got.err.Error(), "after 5 tries") {
		t.Fatalf("no source: %+v", got)
	}
}

func isStopErr(err error) bool {
	_, ok := err.(*stopError)
	return ok
}

// Answers that stop the run: the key refused, the migration tools disabled, a redirect.
func TestAuthySourceStops(t *testing.T) {
	a := newAuthyExport(t, map[int64]exportUser{1: {cc: "1", phone: "2015550123"}})
	wrong, err := newAuthySource(a.URL, "WrongKey0123456789abcdefABCDEFGH", 1, time.Second, true)
	if err != nil {
		t.Fatal(err)
	}
	if got := wrong.fetch(context.Background(), idItem{id: 1}); !isStopErr(got.err) || !strings.Contains(got.err.Error(), "refused the API key (401 60001: Invalid API key)") {
		t.Errorf("a wrong key: %+v", got)
	}
	a.with(func() { a.disabled = true })
	src := testSource(t, a.URL, 1, true)
	got := src.fetch(context.Background(), idItem{id: 1})
	if !isStopErr(got.err) || !strings.Contains(got.err.Error(), "60154") || !strings.Contains(got.err.Error(), "enable the Authy migration tools") {
		t.Errorf("migration tools disabled: %+v", got)
	}
	a.with(func() { a.disabled = false })

	// Answers that cannot be read stop the run, or fail the user with --continue-on-error.
	a.with(func() { a.answer["/protected/json/users/1/phone_number"] = `<html>Sign in</html>` })
	strict := testSource(t, a.URL, 1, false)
	if got := strict.fetch(context.Background(), idItem{id: 1}); !isStopErr(got.err) || !strings.Contains(got.err.Error(), "is --authy-url the Authy API?") {
		t.Errorf("an HTML answer: %+v", got)
	}
	if got := src.fetch(context.Background(), idItem{id: 1}); got.err != nil || got.fail != "phone_number: not a JSON object" {
		t.Errorf("an HTML answer, tolerant: %+v", got)
	}
	a.with(func() {
		a.answer["/protected/json/users/1/phone_number"] = `{"phone_number":"2015550123","country_code":"x1"}`
	})
	if got := src.fetch(context.Background(), idItem{id: 1}); got.fail != `phone_number: country_code "x1" is not a number` {
		t.Errorf("a country code that is no number: %+v", got)
	}
	a.with(func() {
		a.answer["/protected/json/users/1/phone_number"] = `{"phone_number":"","country_code":"1","e164":"+12015550123"}`
	})
	if got := src.fetch(context.Background(), idItem{id: 1}); got.fail != "" || got.rec.Phone != "2015550123" || got.rec.CountryCode != 1 {
		t.Errorf("a number given only as e164: %+v", got)
	}
	a.with(func() { a.answer["/protected/json/users/1/secret/export"] = `{"secret":5}` })
	if got := src.fetch(context.Background(), idItem{id: 1}); got.fail != "secret/export: secret: want a string" {
		t.Errorf("a seed that is no string: %+v", got)
	}
	a.with(func() { a.answer["/protected/json/users/1/secret/export"] = `{"secret":"","otp":"","success":true}` })
	if got := src.fetch(context.Background(), idItem{id: 1}); got.fail != "" || got.rec.Secret != "" {
		t.Errorf("an empty seed is no seed: %+v", got)
	}
}

// The key goes to the --authy-url address only: a redirect to another server does not carry
// it, and a source that echoes it back does not get it printed.
func TestAuthySourceKeepsTheKey(t *testing.T) {
	var leaked []string
	var mu sync.Mutex
	thief := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		leaked = append(leaked, r.Header.Get("X-Authy-API-Key"))
		mu.Unlock()
		w.Write([]byte(`{"phone_number":"2015550123","country_code":"1"}`))
	}))
	defer thief.Close()
	redirecting := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, thief.URL+r.URL.Path, http.StatusTemporaryRedirect)
	}))
	defer redirecting.Close()
	src := testSource(t, redirecting.URL, 1, true)
	got := src.fetch(context.Background(), idItem{id: 1})
	if !isStopErr(got.err) || !strings.Contains(got.err.Error(), "redirects (307)") {
		t.Errorf("a redirect: %+v", got)
	}
	if len(leaked) != 0 {
		t.Fatalf("the redirect took the key to another server: %q", leaked)
	}

	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		authyError(w, 400, "60002", "Invalid request for key "+r.Header.Get("X-Authy-API-Key"))
	}))
	defer echo.Close()
	src = testSource(t, echo.URL, 1, true)
	got = src.fetch(context.Background(), idItem{id: 1})
	if strings.Contains(got.fail, exportKey) || !strings.Contains(got.fail, "[the API key]") {
		t.Errorf("the source's echo of the key is printed: %q", got.fail)
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for v, want := range map[string]time.Duration{
		"":                              0,
		"3":                             3 * time.Second,
		"-1":                            0,
		"soon":                          0,
		"86400":                         15 * time.Minute,
		"Fri, 02 Jan 2026 03:04:15 GMT": 10 * time.Second,
		"Fri, 02 Jan 2026 03:04:00 GMT": 0,
	} {
		if got := retryAfter(v, now); got != want {
			t.Errorf("Retry-After %q: %s, want %s", v, got, want)
		}
	}
	for attempt := range 12 {
		d := jittered(attempt)
		ceiling := min(500*time.Millisecond<<attempt, time.Minute)
		if d < ceiling/2 || d > ceiling {
			t.Errorf("backoff %d: %s, want %s to %s", attempt, d, ceiling/2, ceiling)
		}
	}
}

// Users come out in the list's order whatever order they are fetched in, with no more
// requests in flight than the concurrency; a 429 lowers it for a while.
func TestFetchInOrder(t *testing.T) {
	users := map[int64]exportUser{}
	for id := int64(1); id <= 200; id++ {
		users[id] = exportUser{cc: "1", phone: fmt.Sprintf("201555%04d", id)}
	}
	a := newAuthyExport(t, users)
	a.with(func() { a.limit["/protected/json/users/50/phone_number"] = 1; a.retryAfter = "1" })
	src := testSource(t, a.URL, 8, false)
	list := func(yield func(idItem, error) bool) {
		for id := int64(1); id <= 201; id++ { // 201 is not at the source
			if !yield(idItem{line: int(id) + 1, id: id}, nil) {
				return
			}
		}
	}
	out, stop := fetchInOrder(context.Background(), list, 8, 32, 10, src.fetch)
	defer stop()
	var ids []int64
	for f := range out {
		if f.err != nil {
			t.Fatal(f.err)
		}
		if f.rec.Line != int(f.rec.ID)+1 {
			t.Fatalf("user %d came with line %d", f.rec.ID, f.rec.Line)
		}
		if f.rec.ID == 201 && f.fail == "" {
			t.Errorf("user 201 is not at the source, but did not fail")
		}
		ids = append(ids, f.rec.ID)
	}
	for i, id := range ids {
		if id != int64(i+1) {
			t.Fatalf("out of order at %d: %v", i, ids)
		}
	}
	if len(ids) != 201 {
		t.Fatalf("%d users", len(ids))
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.maxInFlight > 8 || a.maxInFlight < 2 {
		t.Errorf("%d requests in flight at most, want 2 to 8", a.maxInFlight)
	}
	if len(a.limitedAt) == 0 || a.limitedAt[0] > 4 {
		t.Errorf("in flight after the 429: %v, want at most 4 (half of 8) at first", a.limitedAt)
	}
}

// Stopping the fetching (the run ends early, or Ctrl-C) ends every goroutine and request.
func TestFetchInOrderStops(t *testing.T) {
	users := map[int64]exportUser{}
	for id := int64(1); id <= 100; id++ {
		users[id] = exportUser{cc: "1", phone: fmt.Sprintf("201555%04d", id)}
	}
	a := newAuthyExport(t, users)
	ctx, cancel := context.WithCancel(context.Background())
	var once sync.Once
	a.with(func() {
		a.onRequest = func(path string) {
			if path == "/protected/json/users/20/phone_number" {
				once.Do(cancel) // Ctrl-C while user 20 is asked for
			}
		}
	})
	src := testSource(t, a.URL, 4, false)
	list := func(yield func(idItem, error) bool) {
		for id := int64(1); id <= 100; id++ {
			if !yield(idItem{line: int(id), id: id}, nil) {
				return
			}
		}
	}
	out, stop := fetchInOrder(ctx, list, 4, 16, 4, src.fetch)
	n := 0
	for f := range out {
		if f.err != nil {
			if f.err != context.Canceled {
				t.Errorf("%v", f.err)
			}
			break
		}
		n++
	}
	stop() // returns once every worker has left
	if n >= 20 {
		t.Errorf("%d users came out after the cancel at user 20", n)
	}
}

// Eight requests limited together halve the bound once, not down to one.
func TestGateHalvesOnce(t *testing.T) {
	g := newGate(8)
	for range 8 {
		if err := g.acquire(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	for range 8 {
		g.release(false, 50*time.Millisecond)
	}
	if g.limit != 4 {
		t.Fatalf("bound %d after eight 429s at once, want 4", g.limit)
	}
	start := time.Now()
	if err := g.acquire(context.Background()); err != nil {
		t.Fatal(err)
	}
	if time.Since(start) < 40*time.Millisecond {
		t.Errorf("a request went before the pause was over")
	}
	for range 4 { // four answers at a bound of four raise it to five
		g.release(true, 0)
		g.acquire(context.Background())
	}
	if g.limit != 5 {
		t.Errorf("bound %d after four answers, want 5", g.limit)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	g.release(false, time.Hour)
	if err := g.acquire(ctx); err != context.Canceled {
		t.Errorf("acquire on a canceled context while paused: %v", err)
	}
}
