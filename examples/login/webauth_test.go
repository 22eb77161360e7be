package main

import (
	"fmt"
	"image"
	_ "image/png"
	"os"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/makiuchi-d/gozxing"
	"github.com/makiuchi-d/gozxing/qrcode"

	"github.com/twofold-auth/twofold/internal/browsertest"
)

// webAuthenticator is Twofold's web authenticator (served by the Twofold server at
// /authenticator/) in a tab of its own: the user's phone, which opens the enrolment QR code's
// link as a phone's camera hands it to the browser.
type webAuthenticator struct{ *tab }

// newWebAuthenticator starts a browser of its own, the size of a phone: the user's phone is not
// the computer they log in on.
func newWebAuthenticator(t *testing.T) *webAuthenticator {
	t.Helper()
	w := &webAuthenticator{&tab{t: t, ctx: browsertest.Start(t)}}
	w.do(browsertest.Phone.Emulate())
	return w
}

// enrol opens the registration link and accepts it: the account's device appears with its code.
func (w *webAuthenticator) enrol(link string) {
	w.t.Helper()
	w.do(chromedp.Navigate(link), chromedp.WaitVisible(chromedp.CSS("#confirm-dialog[open] #confirm-ok")))
	w.click("#confirm-ok")
	w.do(chromedp.WaitVisible(chromedp.CSS(`#account-list li[data-kind="device"] .code[data-ready]`)))
}

func requestCard(uuid string) string {
	return fmt.Sprintf(`#request-list li.request[data-uuid=%q]`, uuid)
}

// request waits for the card of the request uuid and returns the text of its details.
func (w *webAuthenticator) request(uuid string) string {
	w.t.Helper()
	return w.text(requestCard(uuid) + " .request-details")
}

// answer approves or denies the request uuid with one tap.
func (w *webAuthenticator) answer(uuid string, approve bool) {
	w.t.Helper()
	button := " .deny"
	if approve {
		button = " .approve"
	}
	w.do(chromedp.WaitVisible(chromedp.CSS(requestCard(uuid) + button)))
	w.click(requestCard(uuid) + button)
}

// dropped waits until the card of the request uuid is gone from the page.
func (w *webAuthenticator) dropped(uuid string) {
	w.t.Helper()
	w.do(chromedp.WaitNotPresent(chromedp.CSS(requestCard(uuid))))
}

// decodeQR reads the text of the QR code in a PNG file, as a phone's camera would.
func decodeQR(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, _, err := image.Decode(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	bmp, err := gozxing.NewBinaryBitmapFromImage(img)
	if err != nil {
		t.Fatal(err)
	}
	// As the CLI does: the finder-pattern search first, then the whole image as one clean code.
	res, err := qrcode.NewQRCodeReader().Decode(bmp, map[gozxing.DecodeHintType]any{gozxing.DecodeHintType_TRY_HARDER: true})
	if err != nil {
		if res, err = qrcode.NewQRCodeReader().Decode(bmp, map[gozxing.DecodeHintType]any{gozxing.DecodeHintType_PURE_BARCODE: true}); err != nil {
			t.Fatalf("no QR code in %s: %v", path, err)
		}
	}
	return res.GetText()
}
