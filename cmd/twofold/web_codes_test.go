package main

import (
	"context"
	"fmt"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/fetch"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/twofold-auth/twofold/internal/browsertest"
)

// testClock is the server's clock in a test: the real time until the test holds it at a moment.
type testClock struct {
	mu sync.Mutex
	at time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.at.IsZero() {
		return time.Now()
	}
	return c.at
}

func (c *testClock) Set(at time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.at = at
}

// TestWebAuthenticatorDeviceCodes: a device's codes change every 10 seconds, too fast to read
// and type, so the page shows each one for 20 s, as Authy's app did; and every code it shows,
// at any moment of the time it is shown, is accepted by the verify API. The page's clock and
// the server's are driven together, with no waiting.
func TestWebAuthenticatorDeviceCodes(t *testing.T) {
	for _, vp := range browsertest.Viewports {
		t.Run(vp.Name, func(t *testing.T) { deviceCodesAt(t, vp) })
	}
}

func deviceCodesAt(t *testing.T, vp browsertest.Viewport) {
	clock := &testClock{}
	s := startServerEnv(t, "", func(e *Env) { e.Now = clock.Now }, "--rate-limit", "off")
	alice := s.register(s.key, "alice@example.com", "2015550123")
	reg := s.post("/protected/json/sdk/registrations", url.Values{"authy_id": {fmt.Sprint(alice)}})
	if reg.status != 200 {
		t.Fatalf("sdk/registrations: %s", reg.raw)
	}

	ctx, cancel := context.WithTimeout(newBrowser(t), 2*time.Minute)
	defer cancel()
	p := &page{t: t, ctx: ctx, began: time.Now()}
	defer watchConsole(t, ctx, cancel)()
	p.do(vp.Emulate(), chromedp.Navigate(reg.body["registration_url"].(string)))
	p.click("#confirm-dialog[open] #confirm-ok")
	device := `#account-list li[data-kind="device"]`
	p.visible(device + ` .code[data-ready]`)

	// From here the page works from the server's clock it learned (the same as ours): cut it
	// off the device API, so that the held clocks are not corrected from the server's Date.
	blockDeviceAPI(t, ctx)
	// An answer already on its way when the API was cut off still tells the page the server's
	// time by its Date header, which is the real clock, not the held one: while the clocks are
	// held, such a header reads as the held time, as the server's own clock does.
	p.do(chromedp.Evaluate[chromedp.Void](`(() => {
		const real = Date.now.bind(Date), parse = Date.parse.bind(Date);
		Date.now = () => window.heldNow ?? real();
		Date.parse = (s) => (window.heldNow !== undefined && / GMT$/.test(String(s))) ? window.heldNow : parse(s);
	})()`))
	// shown holds both clocks at `at` and returns the device's code on the page then.
	shown := func(at time.Time) string {
		t.Helper()
		clock.Set(at)
		return p.eval(fmt.Sprintf(`(async () => {
			window.heldNow = %d;
			const accounts = await import(new URL('accounts.js', location.href).href);
			await accounts.updateCodes();
			return document.querySelector('%s .code').dataset.code;
		})()`, at.UnixMilli(), device))
	}

	// Find when the code on screen changes, to the millisecond, over 70 s.
	base := time.Now().Truncate(time.Minute).Add(time.Hour)
	var changes []time.Time
	prev, prevCode := base, shown(base)
	for at := base.Add(250 * time.Millisecond); at.Before(base.Add(70 * time.Second)); at = at.Add(250 * time.Millisecond) {
		code := shown(at)
		if code == prevCode {
			prev = at
			continue
		}
		lo, hi := prev, at // the code changes after lo, by hi
		for hi.Sub(lo) > time.Millisecond {
			mid := lo.Add(hi.Sub(lo) / 2).Truncate(time.Millisecond)
			if shown(mid) == prevCode {
				lo = mid
			} else {
				hi = mid
			}
		}
		changes = append(changes, hi)
		prev, prevCode = at, code
	}
	if len(changes) < 2 {
		t.Fatalf("the code changed %d times in 70 s", len(changes))
	}
	for i := 1; i < len(changes); i++ {
		if d := changes[i].Sub(changes[i-1]); d != 20*time.Second {
			t.Errorf("a code was shown for %v (from %s to %s), want 20 s", d, changes[i-1].Format("15:04:05.000"), changes[i].Format("15:04:05.000"))
		}
	}
	shownFor := changes[1].Sub(changes[0])

	// The ring counts the whole 20 s down.
	shown(changes[0])
	p.do(chromedp.Poll[chromedp.Void](`document.querySelector('` + device + ` .ring-secs').textContent === '20'`))

	// The code shown at each second of its time on screen, and at its last millisecond, is
	// accepted. A code is accepted once, so each moment is tried in a window of its own.
	offsets := []time.Duration{}
	for off := time.Duration(0); off < shownFor; off += time.Second {
		offsets = append(offsets, off)
	}
	offsets = append(offsets, shownFor-time.Millisecond)
	for i, off := range offsets {
		at := changes[0].Add(time.Duration(i)*shownFor + off)
		code := shown(at)
		if r := s.get(fmt.Sprintf("/protected/json/verify/%s/%d", code, alice)); r.status != 200 {
			t.Errorf("the code shown %v into its time on screen (%s) is refused: %d %s", off, at.Format("15:04:05.000"), r.status, r.raw)
		}
	}
}

// blockDeviceAPI makes the page's device API calls fail, as without a network, from now until
// the test ends.
func blockDeviceAPI(t *testing.T, ctx context.Context) {
	t.Helper()
	blockCtx, unblock := context.WithCancel(ctx)
	t.Cleanup(unblock)
	paused := chromedp.Events(blockCtx, fetch.RequestPaused)
	go func() {
		for ev, err := range paused {
			if err != nil {
				return
			}
			chromedp.Call(ctx, fetch.FailRequest, fetch.FailRequestParams{RequestID: ev.RequestID, ErrorReason: network.ErrorReasonInternetDisconnected})
		}
	}()
	if _, err := chromedp.Call(ctx, fetch.Enable, fetch.EnableParams{Patterns: []*fetch.RequestPattern{{URLPattern: "*/device/v1/*"}}}); err != nil {
		t.Fatal(err)
	}
}
