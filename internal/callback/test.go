package callback

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"time"

	"github.com/twofold-auth/twofold/internal/onetouch"
	"github.com/twofold-auth/twofold/internal/twofold"
)

// TestStatus is the status a test callback carries, where a real one says approved, denied or
// expired: a handler that acts on those leaves a test alone.
const TestStatus = "test"

// TestResult is what became of a test callback.
type TestResult struct {
	Method, URL string
	Status      int    // the HTTP status answered; 0 when none came back
	Error       string // why it failed; "" when the endpoint answered 2xx
	At          time.Time
	Took        time.Duration
}

// OK reports whether the endpoint took the test callback (answered 2xx).
func (r TestResult) OK() bool { return r.Error == "" }

// ErrNoCallbackURL means the application has no callback URL to test.
var ErrNoCallbackURL = errors.New("the application has no callback URL")

// Test sends application app one signed test callback now, exactly as deliveries are sent (the
// same signature with the API key, method, timeout and egress rules), so an operator can see
// an endpoint work before re-enabling paused callbacks. Nothing is stored or counted: a failed
// test neither counts against the application nor pauses its callbacks, and nothing is retried.
// The body has the shape of a real callback for a request that does not exist, with status
// "test" (TestStatus).
func (d *Dispatcher) Test(ctx context.Context, app twofold.App) (TestResult, error) {
	if app.CallbackURL == "" {
		return TestResult{}, ErrNoCallbackURL
	}
	payload, err := testPayload(app, d.now())
	if err != nil {
		return TestResult{}, err
	}
	method := app.CallbackMethod
	if method != "GET" {
		method = "POST"
	}
	r := TestResult{Method: method, URL: app.CallbackURL, At: d.now()}
	status, err := d.post(ctx, app, twofold.Callback{AppID: app.ID, Payload: payload})
	r.Took, r.Status = d.now().Sub(r.At), status
	if err != nil {
		r.Error = trim(err.Error())
	}
	d.log.Info("test callback", "app_id", app.ID, "status", status, "ok", r.OK())
	return r, nil
}

// testPayload is a callback's body for a made-up request with status "test".
func testPayload(app twofold.App, now time.Time) ([]byte, error) {
	uuid, err := randomUUID()
	if err != nil {
		return nil, err
	}
	now = now.UTC()
	req := twofold.ApprovalRequest{UUID: uuid, AppID: app.ID, Status: TestStatus,
		Message: "Test callback from the Twofold console", Details: map[string]string{}, HiddenDetails: map[string]string{},
		CreatedAt: now, ProcessedAt: now}
	return onetouch.CallbackPayload(app, twofold.User{}, req, twofold.Device{})
}

// randomUUID returns a random (version 4) UUID, as approval requests have.
func randomUUID() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("test callback uuid: %w", err)
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16]), nil
}
