package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"sync"
	"testing"

	"github.com/twofold-auth/twofold/internal/store/storetest"
)

// tally counts a flood's answers.
type tally struct {
	mu      sync.Mutex
	ok      int
	limited int   // 429 with error_code 60003 and a Retry-After
	other   []int // anything else: a status the flood must never see
}

func (c *tally) add(status int, code, retryAfter string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case status == http.StatusOK:
		c.ok++
	case status == http.StatusTooManyRequests && code == "60003" && retryAfter != "":
		c.limited++
	default:
		c.other = append(c.other, status)
	}
}

// hammer sends n requests from each of conns connections at once: method path with the header
// set (a device's bearer token or the customer's API key), cycling through paths.
func hammer(t *testing.T, s *server, header, value string, conns, n int, paths ...string) *tally {
	var c tally
	var wg sync.WaitGroup
	for i := range conns {
		client := &http.Client{Transport: &http.Transport{}} // a connection of its own
		wg.Go(func() {
			defer client.CloseIdleConnections()
			for j := range n {
				req, _ := http.NewRequest("GET", s.url+paths[(i+j)%len(paths)], nil)
				req.Header.Set(header, value)
				res, err := client.Do(req)
				if err != nil {
					t.Error(err)
					return
				}
				var body struct {
					Code string `json:"error_code"`
				}
				raw, _ := io.ReadAll(res.Body)
				res.Body.Close()
				json.Unmarshal(raw, &body)
				c.add(res.StatusCode, body.Code, res.Header.Get("Retry-After"))
			}
		})
	}
	wg.Wait()
	return &c
}

// TestDeviceFloodSparesCustomer is the attack of issue 15 item 6: one end user's device token,
// sent from many connections at once, drew on the application's own request budget and made the
// customer's API calls fail with 429. Now a device has a budget of its own, and a user's devices
// one more between them; the customer's calls within its limit all succeed.
//
// Every window is 30 days, so no token is refilled while the test runs and each count is exact.
// On PostgreSQL the application's limit is the one counted in the database (SharedLimiter).
func TestDeviceFloodSparesCustomer(t *testing.T) {
	t.Run("SQLite", func(t *testing.T) { deviceFlood(t) })
	t.Run("PostgreSQL", func(t *testing.T) { deviceFlood(t, "--database", storetest.Schema(t)) })
}

func deviceFlood(t *testing.T, args ...string) {
	s := startServer(t, "", append(args, "--rate-limit", "60/720h", "--device-rate-limit", "20/720h", "--device-user-rate-limit", "30/720h")...)
	alice := s.register(s.key, "alice@example.com", "2015550123")
	bob := s.register(s.key, "bob@example.com", "2015550124")
	phone := s.newDevice(s.key, alice)
	bobPhone, bobTablet := s.newDevice(s.key, bob), s.newDevice(s.key, bob)
	// Five of the customer's 60 calls are spent; it makes 20 more during the flood, 10 after.
	status := fmt.Sprintf("/protected/json/users/%d/status", alice)
	deviceRoutes := []string{"/device/v1/device", "/device/v1/approval_requests", "/device/v1/push/vapid"}

	var floods [3]*tally
	var customer *tally
	var wg sync.WaitGroup
	for i, d := range []*device{phone, bobPhone, bobTablet} {
		wg.Go(func() { floods[i] = hammer(t, s, "Authorization", "Bearer "+d.token, 10, 20, deviceRoutes...) })
	}
	wg.Go(func() { customer = hammer(t, s, "X-Authy-API-Key", s.key, 2, 10, status) })
	wg.Wait()
	after := hammer(t, s, "X-Authy-API-Key", s.key, 1, 10, status)

	if customer.ok != 20 || after.ok != 10 {
		t.Errorf("the customer's calls within its limit: %d of 20 during the flood and %d of 10 after succeeded (%d and %d refused)",
			customer.ok, after.ok, customer.limited, after.limited)
	}
	for i, f := range floods {
		if len(f.other) > 0 {
			t.Errorf("device %d got answers other than 200 and 429 60003: %v", i, f.other)
		}
	}
	// Alice's one device: its own limit (20) binds. Bob's two: the user's limit (30) binds.
	if got := floods[0]; got.ok != 20 || got.limited != 180 {
		t.Errorf("alice's device: %d allowed, %d limited; want 20 and 180", got.ok, got.limited)
	}
	if a, b := floods[1], floods[2]; a.ok+b.ok != 30 || a.ok > 20 || b.ok > 20 {
		t.Errorf("bob's devices: %d and %d allowed; want 30 between them, at most 20 each", a.ok, b.ok)
	}

	// Each refusal is counted under the limit that made it.
	m := s.do("GET", "/metrics", "", nil).raw
	count := func(limit string) int {
		got := regexp.MustCompile(`twofold_rate_limited_total\{limit="` + limit + `"\} (\d+)`).FindStringSubmatch(m)
		if got == nil {
			return 0
		}
		n, _ := strconv.Atoi(got[1])
		return n
	}
	limited := floods[0].limited + floods[1].limited + floods[2].limited
	if d, u := count("device"), count("device_user"); d+u != limited || d < 180 || u == 0 || count("api_key") != 0 {
		t.Errorf("metrics: device %d, device_user %d, api_key %d; want %d refusals, none of the application's:\n%s",
			d, u, count("api_key"), limited, grep(m, "rate_limited"))
	}
}
