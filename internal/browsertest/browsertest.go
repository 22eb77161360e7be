// Package browsertest starts Debian's chromium, headless, for tests that drive a real browser.
// A test is skipped when chromium is missing, unless TWOFOLD_REQUIRE_BROWSER=1 says it must run
// (as .ci/run does).
package browsertest

import (
	"context"
	"os"
	"testing"

	"github.com/chromedp/chromedp"
)

// ChromiumPath is where Debian's chromium package installs the browser.
const ChromiumPath = "/usr/bin/chromium"

// Start launches chromium with a fresh profile and a phone-sized window (390×844), plus extra
// options, and returns the context of its first tab. Both end with the test.
func Start(t testing.TB, extra ...chromedp.ExecAllocatorOption) context.Context {
	t.Helper()
	if _, err := os.Stat(ChromiumPath); err != nil {
		if os.Getenv("TWOFOLD_REQUIRE_BROWSER") == "1" {
			t.Fatalf("TWOFOLD_REQUIRE_BROWSER=1 but there is no browser: %v", err)
		}
		t.Skipf("no browser at %s (install Debian's chromium to run this test)", ChromiumPath)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(ChromiumPath),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(390, 844),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), append(opts, extra...)...)
	t.Cleanup(cancelAlloc)
	ctx, cancel := chromedp.NewContext(allocCtx)
	t.Cleanup(cancel)
	if err := chromedp.Do(ctx); err != nil { // starts the browser, with no deadline
		t.Fatalf("starting chromium: %v", err)
	}
	return ctx
}
