package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/twofold-auth/twofold/internal/browsertest"
	"github.com/twofold-auth/twofold/internal/otp"
)

// The sign-in in a real browser, at a desktop's and a phone's size: chromium types the password
// into the sample, goes to Twofold's step page, passes it with the authenticator's code, and
// comes back signed in. Every page of the sample passes browsertest.Check, with a long email.
//
// The Twofold here is the in-process one with a stand-in page (newStandIn); TestBrowserSignInServed
// runs the same through `twofold serve` and its real page.
func TestBrowserSignIn(t *testing.T) {
	browserSignIn(t, newStandIn(t))
}

func browserSignIn(t *testing.T, tf twofoldUnderTest) {
	// One user per viewport: a code passes once (Twofold refuses a replay in its time step).
	const domain = "@accounts-payable.subsidiary.example-enterprise.com"
	ids, keys, table := map[string]string{}, map[string]otp.Key{}, ""
	for _, vp := range browsertest.Viewports {
		email := "ana-maria.constantinescu-vasilescu." + vp.Name + domain
		ids[vp.Name], keys[vp.Name] = tf.EnrolledUser(t, email)
		table += csvLine(email, password, ids[vp.Name])
	}
	sample := startSample(t, tf, table, nil)
	ctx := browsertest.Start(t)
	do := func(actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		c, cancel := context.WithTimeout(ctx, 45*time.Second)
		defer cancel()
		if err := chromedp.Do(c, actions...); err != nil {
			loc, _ := chromedp.Run(ctx, chromedp.Location())
			text, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ''`))
			t.Fatalf("browser at %s: %v\n%s", loc, err, text)
		}
	}
	text := func(sel string) string {
		t.Helper()
		c, cancel := context.WithTimeout(ctx, 45*time.Second)
		defer cancel()
		s, err := chromedp.Run(c, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("browser: %s: %v", sel, err)
		}
		return s
	}
	var email string
	logIn := func(pw string) {
		t.Helper()
		do(chromedp.WaitVisible(chromedp.CSS("#log-in")),
			chromedp.SetValue(chromedp.CSS("#email"), email), chromedp.SetValue(chromedp.CSS("#password"), pw),
			chromedp.Click(chromedp.CSS("#log-in")))
	}
	for _, vp := range browsertest.Viewports {
		email = "ana-maria.constantinescu-vasilescu." + vp.Name + domain
		do(vp.Emulate(), chromedp.Navigate(sample+"/"))
		do(chromedp.WaitVisible(chromedp.CSS("#log-in")))
		browsertest.Check(t, ctx, "log-in "+vp.Name)
		screenshot(t, ctx, vp.Name == "phone", "login")

		logIn("not the password")
		do(chromedp.WaitVisible(chromedp.CSS("#problem")))
		if got := text("#problem"); got != "Wrong email or password." {
			t.Fatalf("wrong password: %q", got)
		}
		browsertest.Check(t, ctx, "wrong password "+vp.Name)

		logIn(password)
		tf.PassStep(t, ctx, keys[vp.Name])
		do(chromedp.WaitVisible(chromedp.CSS("#signed-in")))
		if got := text("#signed-in"); got != "Signed in as "+email+", second factor: otp." {
			t.Fatalf("signed in: %q", got)
		}
		if got := text("#sub"); got != ids[vp.Name] {
			t.Fatalf("sub %q, want %s", got, ids[vp.Name])
		}
		browsertest.Check(t, ctx, "signed in "+vp.Name)
		screenshot(t, ctx, vp.Name == "phone", "signed-in")

		do(chromedp.Click(chromedp.CSS("#log-out")), chromedp.WaitVisible(chromedp.CSS("#log-in")))
	}
	// An answer this browser did not ask for.
	do(chromedp.Navigate(sample+callbackPath+"?state=forged&code=forged"), chromedp.WaitVisible(chromedp.CSS("#problem")))
	if got := text("#problem"); !strings.Contains(got, "not started in this browser") {
		t.Fatalf("forged answer: %q", got)
	}
	browsertest.Check(t, ctx, "not signed in")
}

// screenshot saves the viewport as docs/screenshots/oidc-login-name.png, only with
// TWOFOLD_SCREENSHOTS=1 (and when), so that ordinary runs leave the tree alone.
func screenshot(t *testing.T, ctx context.Context, when bool, name string) {
	t.Helper()
	if !when || os.Getenv("TWOFOLD_SCREENSHOTS") != "1" {
		return
	}
	buf, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.WriteFile(filepath.Join("..", "..", "docs", "screenshots", "oidc-login-"+name+".png"), buf, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestBrowserPhoneButton: with "Sign in with your phone" offered, the log-in page passes the
// accessibility and fit checks at both widths, and the button takes the browser to Twofold's
// step naming nobody (TestPhoneSignIn goes through it; TestHostedStepPasswordlessBrowser in
// cmd/twofold drives Twofold's real page).
func TestBrowserPhoneButton(t *testing.T) {
	tf := newStandIn(t)
	sample := startSample(t, tf, "", func(c *config) {
		c.Passwordless = true
		tf.allowPasswordless(t, c.ClientID)
	})
	ctx := browsertest.Start(t)
	for _, vp := range browsertest.Viewports {
		c, cancel := context.WithTimeout(ctx, 45*time.Second)
		err := chromedp.Do(c, vp.Emulate(), chromedp.Navigate(sample+"/login"), chromedp.WaitVisible(chromedp.CSS("#phone-sign-in")))
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		browsertest.Check(t, ctx, "log-in with the phone button "+vp.Name)
		screenshot(t, ctx, vp.Name == "phone", "login-phone")
	}
	c, cancel := context.WithTimeout(ctx, 45*time.Second)
	defer cancel()
	if err := chromedp.Do(c, chromedp.Click(chromedp.CSS("#phone-sign-in"))); err != nil {
		t.Fatal(err)
	}
	// The click navigates twice (the sample, then Twofold): a poll caught between the two is
	// asked again.
	for {
		err := chromedp.Do(c, chromedp.Poll[chromedp.Void](`location.pathname.startsWith('/step/')`))
		if err == nil {
			return
		}
		if c.Err() != nil {
			t.Fatalf("the button did not lead to the step: %v", err)
		}
	}
}
