package authyexport

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twofold-auth/twofold/internal/userimport"
	"github.com/twofold-auth/twofold/internal/userimport/authyexport/authyexporttest"
)

const exportKey = authyexporttest.Key

// noWait is the backoff of tests that are not about its length.
func noWait(int) time.Duration { return time.Millisecond }

func testSource(t *testing.T, base string, concurrency int, tolerant bool) *Source {
	t.Helper()
	src, err := New(Config{URL: base, Key: exportKey, Concurrency: concurrency, Timeout: 10 * time.Second, Tolerant: tolerant})
	if err != nil {
		t.Fatal(err)
	}
	src.backoff = noWait
	t.Cleanup(src.Close)
	return src
}

func TestAuthySourceFetch(t *testing.T) {
	a := authyexporttest.New(t, map[int64]authyexporttest.User{
		1: {CountryCode: "1", Phone: "2015550123", Secret: "JBSWY3DPEHPK3PXP", OTP: "123456"},                          // Authy: a string country code, no digits/period
		2: {CountryCode: 44, Phone: "7911123456"},                                                                      // the Authy app's user: no seed
		3: {CountryCode: 1, Phone: "2015550124", Secret: "jbsw y3dp ehpk 3pxp", OTP: "1234567", Digits: 7, Period: 10}, // a Twofold source's device code
		4: {},                                                                                                          // registered by QR code: no phone
		5: {CountryCode: "1", Phone: "2015550125", Secret: "JBSWY3DPEHPK3PXP", OTP: "12345678"},                        // 8 digits, said by the code's length
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
		got := src.Fetch(context.Background(), Item{Line: 7, ID: tc.id, Email: "u@example.com"})
		if got.Err != nil || got.Fail != tc.fail || !reflect.DeepEqual(got.Record, tc.want) {
			t.Errorf("user %d: %+v, want %+v %q", tc.id, got, tc.want, tc.fail)
		}
	}
	// A user the source does not know is not asked for a seed.
	if n := a.Served("/protected/json/users/6/secret/export"); n != 0 {
		t.Errorf("the seed of an unknown user was asked for %d times", n)
	}
}

// 429 is waited out (Retry-After when given) and tried again; 503 and network errors a few
// times; a source that keeps failing stops the run, or fails the user when tolerant.
func TestAuthySourceRetries(t *testing.T) {
	a := authyexporttest.New(t, map[int64]authyexporttest.User{1: {CountryCode: "1", Phone: "2015550123"}, 2: {CountryCode: "1", Phone: "2015550124"}})
	const phone1 = "/protected/json/users/1/phone_number"
	a.With(func() { a.Limit[phone1] = 1; a.RetryAfter = "1" })
	src := testSource(t, a.URL, 4, false)
	var limits []int
	src.OnLimit(func(limit, _ int, _ time.Time) { limits = append(limits, limit) })
	start := time.Now()
	got := src.Fetch(context.Background(), Item{Line: 1, ID: 1})
	if got.Err != nil || got.Fail != "" || got.Record.Phone != "2015550123" {
		t.Fatalf("after a 429: %+v", got)
	}
	if waited := time.Since(start); waited < time.Second {
		t.Errorf("Retry-After: 1 was not honoured: tried again after %s", waited)
	}
	if n := a.Served(phone1); n != 2 {
		t.Errorf("%d requests for a 429 then a 200", n)
	}
	// Halved by the 429, then raised by one after as many answers as it allows.
	if !reflect.DeepEqual(limits, []int{2, 2, 3}) {
		t.Errorf("the concurrency through a 429 and two answers: %v, want 2 of 4, then 3", limits)
	}

	a.With(func() { a.Fail[phone1] = 4 }) // four 503s, then an answer: within the five tries
	if got := src.Fetch(context.Background(), Item{Line: 1, ID: 1}); got.Err != nil || got.Fail != "" {
		t.Fatalf("after four 503s: %+v", got)
	}
	a.With(func() { a.Fail[phone1] = 5 })
	got = src.Fetch(context.Background(), Item{Line: 1, ID: 1})
	if !isStopErr(got.Err) || !strings.Contains(got.Err.Error(), "after 5 tries") || !strings.Contains(got.Err.Error(), "503") {
		t.Fatalf("a source that keeps failing: %+v", got)
	}
	tolerant := testSource(t, a.URL, 4, true)
	a.With(func() { a.Fail[phone1] = 5 })
	got = tolerant.Fetch(context.Background(), Item{Line: 1, ID: 1})
	if got.Err != nil || !strings.Contains(got.Fail, "after 5 tries") {
		t.Fatalf("a source that keeps failing, --continue-on-error: %+v", got)
	}

	// A source that limits without end stops the run, saying to come back later.
	a.With(func() { a.Limit[phone1] = 1000; a.RetryAfter = "" })
	src.limitedTries = 3
	got = src.Fetch(context.Background(), Item{Line: 1, ID: 1})
	if !isStopErr(got.Err) || !strings.Contains(got.Err.Error(), "still limits the rate") {
		t.Fatalf("endless 429s: %+v", got)
	}

	// Nothing listens: network errors, tried again, then the run stops.
	dead := testSource(t, "http://127.0.0.1:1", 1, false)
	if got := dead.Fetch(context.Background(), Item{Line: 1, ID: 2}); !isStopErr(got.Err) || !strings.Contains(got.Err.Error(), "after 5 tries") {
		t.Fatalf("no source: %+v", got)
	}
}

func isStopErr(err error) bool {
	_, ok := err.(*stopError)
	return ok
}

// Answers that stop the run: the key refused, the migration tools disabled, a redirect.
func TestAuthySourceStops(t *testing.T) {
	a := authyexporttest.New(t, map[int64]authyexporttest.User{1: {CountryCode: "1", Phone: "2015550123"}})
	wrong, err := New(Config{URL: a.URL, Key: "WrongKey0123456789abcdefABCDEFGH", Concurrency: 1, Timeout: time.Second, Tolerant: true})
	if err != nil {
		t.Fatal(err)
	}
	if got := wrong.Fetch(context.Background(), Item{ID: 1}); !isStopErr(got.Err) || !strings.Contains(got.Err.Error(), "refused the API key (401 60001: Invalid API key)") {
		t.Errorf("a wrong key: %+v", got)
	}
	a.With(func() { a.Disabled = true })
	src := testSource(t, a.URL, 1, true)
	got := src.Fetch(context.Background(), Item{ID: 1})
	if !isStopErr(got.Err) || !strings.Contains(got.Err.Error(), "60154") || !strings.Contains(got.Err.Error(), "enable the Authy migration tools") {
		t.Errorf("migration tools disabled: %+v", got)
	}
	a.With(func() { a.Disabled = false })

	// Answers that cannot be read stop the run, or fail the user with --continue-on-error.
	a.With(func() { a.Answer["/protected/json/users/1/phone_number"] = `<html>Sign in</html>` })
	strict := testSource(t, a.URL, 1, false)
	if got := strict.Fetch(context.Background(), Item{ID: 1}); !isStopErr(got.Err) || !strings.Contains(got.Err.Error(), "is --authy-url the Authy API?") {
		t.Errorf("an HTML answer: %+v", got)
	}
	if got := src.Fetch(context.Background(), Item{ID: 1}); got.Err != nil || got.Fail != "phone_number: not a JSON object" {
		t.Errorf("an HTML answer, tolerant: %+v", got)
	}
	a.With(func() {
		a.Answer["/protected/json/users/1/phone_number"] = `{"phone_number":"2015550123","country_code":"x1"}`
	})
	if got := src.Fetch(context.Background(), Item{ID: 1}); got.Fail != `phone_number: country_code "x1" is not a number` {
		t.Errorf("a country code that is no number: %+v", got)
	}
	a.With(func() {
		a.Answer["/protected/json/users/1/phone_number"] = `{"phone_number":"","country_code":"1","e164":"+12015550123"}`
	})
	if got := src.Fetch(context.Background(), Item{ID: 1}); got.Fail != "" || got.Record.Phone != "2015550123" || got.Record.CountryCode != 1 {
		t.Errorf("a number given only as e164: %+v", got)
	}
	a.With(func() { a.Answer["/protected/json/users/1/secret/export"] = `{"secret":5}` })
	if got := src.Fetch(context.Background(), Item{ID: 1}); got.Fail != "secret/export: secret: want a string" {
		t.Errorf("a seed that is no string: %+v", got)
	}
	a.With(func() { a.Answer["/protected/json/users/1/secret/export"] = `{"secret":"","otp":"","success":true}` })
	if got := src.Fetch(context.Background(), Item{ID: 1}); got.Fail != "" || got.Record.Secret != "" {
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
	got := src.Fetch(context.Background(), Item{ID: 1})
	if !isStopErr(got.Err) || !strings.Contains(got.Err.Error(), "redirects (307)") {
		t.Errorf("a redirect: %+v", got)
	}
	if len(leaked) != 0 {
		t.Fatalf("the redirect took the key to another server: %q", leaked)
	}

	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		authyexporttest.WriteError(w, 400, "60002", "Invalid request for key "+r.Header.Get("X-Authy-API-Key"))
	}))
	defer echo.Close()
	src = testSource(t, echo.URL, 1, true)
	got = src.Fetch(context.Background(), Item{ID: 1})
	if strings.Contains(got.Fail, exportKey) || !strings.Contains(got.Fail, "[the API key]") {
		t.Errorf("the source's echo of the key is printed: %q", got.Fail)
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
	users := map[int64]authyexporttest.User{}
	for id := int64(1); id <= 200; id++ {
		users[id] = authyexporttest.User{CountryCode: "1", Phone: fmt.Sprintf("201555%04d", id)}
	}
	a := authyexporttest.New(t, users)
	a.With(func() { a.Limit["/protected/json/users/50/phone_number"] = 1; a.RetryAfter = "1" })
	src := testSource(t, a.URL, 8, false)
	list := func(yield func(Item, error) bool) {
		for id := int64(1); id <= 201; id++ { // 201 is not at the source
			if !yield(Item{Line: int(id) + 1, ID: id}, nil) {
				return
			}
		}
	}
	out, stop := FetchInOrder(context.Background(), list, 8, 32, 10, src.Fetch)
	defer stop()
	var ids []int64
	for f := range out {
		if f.Err != nil {
			t.Fatal(f.Err)
		}
		if f.Record.Line != int(f.Record.ID)+1 {
			t.Fatalf("user %d came with line %d", f.Record.ID, f.Record.Line)
		}
		if f.Record.ID == 201 && f.Fail == "" {
			t.Errorf("user 201 is not at the source, but did not fail")
		}
		ids = append(ids, f.Record.ID)
	}
	for i, id := range ids {
		if id != int64(i+1) {
			t.Fatalf("out of order at %d: %v", i, ids)
		}
	}
	if len(ids) != 201 {
		t.Fatalf("%d users", len(ids))
	}
	if n := a.MaxInFlight(); n > 8 || n < 2 {
		t.Errorf("%d requests in flight at most, want 2 to 8", n)
	}
	if at := a.LimitedAt(); len(at) == 0 || at[0] > 4 {
		t.Errorf("in flight after the 429: %v, want at most 4 (half of 8) at first", at)
	}
}

// Stopping the fetching (the run ends early, or Ctrl-C) ends every goroutine and request.
func TestFetchInOrderStops(t *testing.T) {
	users := map[int64]authyexporttest.User{}
	for id := int64(1); id <= 100; id++ {
		users[id] = authyexporttest.User{CountryCode: "1", Phone: fmt.Sprintf("201555%04d", id)}
	}
	a := authyexporttest.New(t, users)
	ctx, cancel := context.WithCancel(context.Background())
	var once sync.Once
	a.With(func() {
		a.OnRequest = func(path string) {
			if path == "/protected/json/users/20/phone_number" {
				once.Do(cancel) // Ctrl-C while user 20 is asked for
			}
		}
	})
	src := testSource(t, a.URL, 4, false)
	list := func(yield func(Item, error) bool) {
		for id := int64(1); id <= 100; id++ {
			if !yield(Item{Line: int(id), ID: id}, nil) {
				return
			}
		}
	}
	out, stop := FetchInOrder(ctx, list, 4, 16, 4, src.Fetch)
	n := 0
	for f := range out {
		if f.Err != nil {
			if f.Err != context.Canceled {
				t.Errorf("%v", f.Err)
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
