package authyapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twofold-auth/twofold/internal/authyapi"
	"github.com/twofold-auth/twofold/internal/metrics"
	"github.com/twofold-auth/twofold/internal/twofold"
)

// answer is what a limit test looks at in a reply.
type answer struct {
	status     int
	code       string
	retryAfter string
}

func (e *streamEnv) call(t *testing.T, method, path, token, body string) answer {
	t.Helper()
	req, _ := http.NewRequest(method, e.srv.URL+path, strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	var env struct {
		Code string `json:"error_code"`
	}
	json.Unmarshal(raw, &env)
	return answer{res.StatusCode, env.Code, res.Header.Get("Retry-After")}
}

// limitedCount reads twofold_rate_limited_total{limit} from the metrics page.
func limitedCount(m *metrics.Metrics, limit string) int {
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	got := regexp.MustCompile(`twofold_rate_limited_total\{limit="` + limit + `"\} (\d+)`).FindStringSubmatch(rec.Body.String())
	if got == nil {
		return 0
	}
	n, _ := strconv.Atoi(got[1])
	return n
}

var limited = answer{http.StatusTooManyRequests, "60003", ""}

func (a answer) is(want answer) bool {
	if want == limited {
		return a.status == want.status && a.code == want.code && a.retryAfter != ""
	}
	return a.status == want.status
}

// A device over its limit is refused after its token is looked up and before the request is
// recorded as the device being seen (a write to the store), and gets its requests back as its
// bucket refills; the refusal says when.
func TestDeviceLimitBeforeTouch(t *testing.T) {
	e := newStreamEnvConfig(t, false, authyapi.Config{DeviceRate: twofold.Limit{N: 3, Window: time.Hour}})
	_, token := e.device(t)
	seen := func() time.Time {
		d, err := e.devs.Lookup(context.Background(), token)
		if err != nil {
			t.Fatal(err)
		}
		return d.LastSeenAt
	}
	registered := seen()
	for i := range 3 {
		if a := e.call(t, "GET", "/device/v1/device", token, ""); a.status != 200 {
			t.Fatalf("request %d within the limit: %+v", i+1, a)
		}
	}
	// Seen is written at most once a minute: two minutes on, a request that is let through
	// writes it. This one is over the limit (a token comes back every 20 minutes).
	e.clock.Advance(2 * time.Minute)
	if a := e.call(t, "GET", "/device/v1/device", token, ""); !a.is(limited) || a.retryAfter != "1080" {
		t.Fatalf("over the limit: %+v, want 429 60003 with Retry-After 1080", a)
	}
	if got := seen(); !got.Equal(registered) {
		t.Fatalf("a refused request recorded the device as seen at %v (registered %v)", got, registered)
	}
	e.clock.Advance(18 * time.Minute)
	if a := e.call(t, "GET", "/device/v1/device", token, ""); a.status != 200 {
		t.Fatalf("after the refill: %+v", a)
	}
	if got := seen(); !got.Equal(e.clock.Now()) {
		t.Fatalf("a request let through did not record the device as seen: %v", got)
	}
	if n := limitedCount(e.m, "device"); n != 1 {
		t.Errorf("limited{device} = %d, want 1", n)
	}
}

// The routes that need no key or token share a budget per client address; over it they answer
// 429 60003 with Retry-After, before looking anything up.
func TestAddressLimit(t *testing.T) {
	e := newStreamEnvConfig(t, false, authyapi.Config{AddressRate: twofold.Limit{N: 4, Window: time.Hour}})
	_, token := e.device(t) // a registration: 1 of 4
	qr := "/qr/" + strings.Repeat("a", 48) + ".png"
	steps := []struct {
		method, path, body string
		want               answer
	}{
		{"POST", "/device/v1/registrations", `{"registration_token":"tfr_nothing"}`, answer{status: 400}},
		{"GET", qr, "", answer{status: 404}},
		{"GET", qr, "", answer{status: 404}},
		{"GET", qr, "", limited},
		{"POST", "/device/v1/registrations", `{"registration_token":"tfr_nothing"}`, limited},
		{"POST", "/device/v1/registrations", `not even JSON`, limited},
	}
	for i, s := range steps {
		if a := e.call(t, s.method, s.path, "", s.body); !a.is(s.want) {
			t.Fatalf("step %d, %s %s: %+v, want %+v", i+1, s.method, s.path, a, s.want)
		}
	}
	// A registered device is not held back by its address: it has its own limits.
	if a := e.call(t, "GET", "/device/v1/device", token, ""); a.status != 200 {
		t.Fatalf("device request from a limited address: %+v", a)
	}
	if n := limitedCount(e.m, "address"); n != 3 {
		t.Errorf("limited{address} = %d, want 3", n)
	}
}

// Open event streams are bounded per device and per user: a stream over a bound ends the
// oldest (cleanly), and the others keep receiving.
func TestEventStreamBounds(t *testing.T) {
	for _, p := range protocols {
		t.Run(p.name, func(t *testing.T) {
			e := newStreamEnvConfig(t, p.http2, authyapi.Config{MaxDeviceStreams: 2, MaxUserStreams: 3})
			user, phone := e.device(t)
			tablet := e.deviceFor(t, user)
			a1, a2 := e.open(t, phone, ""), e.open(t, phone, "")
			a3 := e.open(t, phone, "") // the phone's third: its first ends
			if err := a1.ended(t); !errors.Is(err, io.EOF) {
				t.Fatalf("the device's oldest stream ended with %v, want a clean end", err)
			}
			b1 := e.open(t, tablet, "") // the user's third
			b2 := e.open(t, tablet, "") // the user's fourth: its oldest, the phone's second, ends
			if err := a2.ended(t); !errors.Is(err, io.EOF) {
				t.Fatalf("the user's oldest stream ended with %v, want a clean end", err)
			}
			req := e.request(t, user, "Sign in")
			for _, s := range []*sseStream{a3, b1, b2} {
				eventFrame(t, s.next(t), "approval_request", req.UUID)
			}
			if n := limitedCount(e.m, "device_streams"); n != 2 {
				t.Errorf("limited{device_streams} = %d, want 2", n)
			}
		})
	}
}
